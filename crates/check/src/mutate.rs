//! Mutations of recorded histories, for tests that prove the checks have
//! teeth: take a history the system really produced, break it in a known
//! way, and require the checker to notice.

use crate::history::{Call, History, OpId, Record, Ret};
use std::collections::BTreeMap;

/// Makes one successful read return a value it cannot have seen, and returns
/// that read's id (`None` if the history has no such read).
///
/// The planted value was written by a put P1 that completed before another
/// put P2 to the same key began, and P2 completed before the read began: P1
/// precedes P2 precedes the read in every linearization, so with unique
/// written values no linearization lets the read see P1's value.
pub fn plant_stale_read(history: &mut History) -> Option<OpId> {
    let (index, stale) = find_read_to_make_stale(history)?;
    match &mut history.records[index] {
        Record::Ok { id, ret, .. } => {
            *ret = Ret::Value(Some(stale));
            Some(*id)
        }
        _ => None,
    }
}

fn find_read_to_make_stale(history: &History) -> Option<(usize, String)> {
    let mut invoked: BTreeMap<OpId, (u64, &Call)> = BTreeMap::new();
    // Per key: completed puts as (invoked, completed, value).
    let mut puts: BTreeMap<&str, Vec<(u64, u64, &str)>> = BTreeMap::new();
    for (i, record) in history.records.iter().enumerate() {
        match record {
            Record::Invoke {
                id, call, time_ns, ..
            } => {
                invoked.insert(*id, (*time_ns, call));
            }
            Record::Ok {
                id, ret, time_ns, ..
            } => match (invoked.get(id), ret) {
                (Some((start, Call::Put { key, value })), _) => {
                    puts.entry(key).or_default().push((*start, *time_ns, value));
                }
                (Some((start, Call::Get { key })), Ret::Value(seen)) => {
                    let done = puts.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
                    for p2 in done.iter().filter(|p| p.1 < *start) {
                        if let Some(p1) = done
                            .iter()
                            .find(|p| p.1 < p2.0 && seen.as_deref() != Some(p.2))
                        {
                            return Some((i, p1.2.to_string()));
                        }
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Budget, Verdict, check_history};

    /// Two puts to "k" over the given intervals, then a get over [40, 50]
    /// that returned "b".
    fn puts_then_read(first: (u64, u64), second: (u64, u64)) -> History {
        let mut history = History::new();
        for (id, (t0, t1), value) in [(1, first, "a"), (2, second, "b")] {
            let call = Call::Put {
                key: "k".into(),
                value: value.into(),
            };
            history.push(Record::Invoke {
                id,
                process: id,
                time_ns: t0,
                call,
            });
            history.push(Record::Ok {
                id,
                process: id,
                time_ns: t1,
                ret: Ret::Done,
            });
        }
        let get = Call::Get { key: "k".into() };
        history.push(Record::Invoke {
            id: 3,
            process: 3,
            time_ns: 40,
            call: get,
        });
        history.push(Record::Ok {
            id: 3,
            process: 3,
            time_ns: 50,
            ret: Ret::Value(Some("b".into())),
        });
        history
    }

    #[test]
    fn a_planted_stale_read_makes_a_linearizable_history_fail() {
        let mut history = puts_then_read((0, 10), (20, 30));
        assert_eq!(
            check_history(&history, &Budget::default()).unwrap(),
            Verdict::Linearizable
        );
        assert_eq!(plant_stale_read(&mut history), Some(3));
        assert!(matches!(
            check_history(&history, &Budget::default()).unwrap(),
            Verdict::NotLinearizable(_)
        ));
    }

    #[test]
    fn concurrent_puts_give_no_stale_value_to_plant() {
        let mut history = puts_then_read((0, 25), (20, 30));
        assert_eq!(
            plant_stale_read(&mut history),
            None,
            "P1 and P2 overlap: either may come last"
        );
    }
}
