//! Explaining a violation: which operation cannot be linearized, what the key could hold
//! at that point, why the model rejects it, and a small failing sub-history found by
//! delta debugging.
//!
//! Everything here runs after the verdict, on the failing key only, and is bounded: the
//! reduction makes at most [`MAX_REDUCTION_TESTS`] searches of at most a fraction of the
//! budget each, so an explanation never costs more than a small multiple of the check.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::history::{Call, OpId, Operation, Outcome, Ret};
use crate::partition::{Budget, Counterexample, KeyVerdict, check_key, partition};

/// Most searches the reduction to a minimal failing sub-history runs.
pub const MAX_REDUCTION_TESTS: usize = 400;

/// Each reduction search gets the budget's `max_steps` divided by this: with
/// [`MAX_REDUCTION_TESTS`], the reduction costs at most twice the check's budget.
pub const REDUCTION_BUDGET_DIVISOR: u64 = 200;

/// Most states [`Explanation::states`] lists (the walk over what may precede the stuck
/// operation stops there).
pub const MAX_EXPLAINED_STATES: usize = 16;

/// Why a key is not linearizable, in terms a person (or the HTML report) can use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The key.
    pub key: String,
    /// The operation that cannot be linearized: the first of the counterexample's
    /// `stuck` operations.
    pub op: OpId,
    /// The values the key could hold when `op` would take effect: the value after the
    /// longest linearizable prefix, and what operations of unknown outcome called before
    /// `op` returned could make of it (`None`: absent). Sorted, at most
    /// [`MAX_EXPLAINED_STATES`].
    pub states: Vec<Option<String>>,
    /// Why the model rejects `op` in those states, in words.
    pub reason: String,
    /// The longest linearizable prefix (the counterexample's), in order.
    pub longest_prefix: Vec<OpId>,
    /// A small sub-history of the key that is still not linearizable on its own, in
    /// operation order. Each read in it comes with a write of the value it returned
    /// (and the appends whose text it contains), so it never fails merely because its
    /// writer was left out.
    pub minimal: Vec<OpId>,
    /// Whether `minimal` is 1-minimal (removing any one more operation, with the reads
    /// that depend on it, makes it linearizable or undecided). False when the reduction
    /// ran out of tests.
    pub minimal_is_minimal: bool,
}

/// Explain `counterexample`, found by checking `ops` with `budget`.
pub fn explain(ops: &[Operation], counterexample: &Counterexample, budget: &Budget) -> Explanation {
    let key = counterexample.key.as_str();
    // Batches split per key first, as the checker does (`project_batches`).
    let projected = crate::history::project_batches(ops);
    let groups = partition(&projected);
    let key_ops: Vec<&Operation> = groups.get(key).cloned().unwrap_or_default();
    let by_id: BTreeMap<OpId, &Operation> = key_ops.iter().map(|o| (o.id, *o)).collect();
    let op = counterexample.stuck.first().copied().unwrap_or_default();
    let after_prefix = counterexample
        .longest_prefix
        .iter()
        .filter_map(|id| by_id.get(id))
        .fold(None, |state, o| apply(&o.call, state));
    let states = reachable(after_prefix, op, counterexample, &key_ops, &by_id);
    let reason = match by_id.get(&op) {
        Some(o) => reason(o, &states),
        None => "the operation is not in the history".to_string(),
    };
    let (minimal, minimal_is_minimal) = reduce(key, &key_ops, op, budget);
    Explanation {
        key: key.to_owned(),
        op,
        states,
        reason,
        longest_prefix: counterexample.longest_prefix.clone(),
        minimal,
        minimal_is_minimal,
    }
}

/// The sequential model on one key (the same as the search's, on plain strings): the
/// state after `call` takes effect, ignoring its result.
fn apply(call: &Call, state: Option<String>) -> Option<String> {
    match call {
        Call::Get { .. } => state,
        Call::Put { value, .. } => Some(value.clone()),
        Call::Delete { .. } => None,
        Call::Cas { expected, new, .. } => {
            if state == *expected {
                Some(new.clone())
            } else {
                state
            }
        }
        Call::Append { value, .. } => Some(state.unwrap_or_default() + value),
        // Batches are split per key before any key is checked (`project_batches`).
        Call::Batch { .. } => {
            debug_assert!(false, "a whole batch reached the per-key model");
            state
        }
    }
}

/// The value after the prefix, then everything unknown operations (not in the prefix,
/// called before `op` returned) could make of it, breadth first, bounded.
fn reachable(
    start: Option<String>,
    op: OpId,
    c: &Counterexample,
    key_ops: &[&Operation],
    by_id: &BTreeMap<OpId, &Operation>,
) -> Vec<Option<String>> {
    let bound = by_id
        .get(&op)
        .and_then(|o| o.complete_ns)
        .unwrap_or(u64::MAX);
    let in_prefix: BTreeSet<OpId> = c.longest_prefix.iter().copied().collect();
    let free: Vec<&Operation> = key_ops
        .iter()
        .copied()
        .filter(|o| {
            o.outcome == Outcome::Unknown && o.invoke_ns <= bound && !in_prefix.contains(&o.id)
        })
        .collect();
    let mut seen: BTreeSet<Option<String>> = BTreeSet::from([start.clone()]);
    let mut frontier = vec![start];
    while let Some(state) = frontier.pop() {
        for o in &free {
            if seen.len() >= MAX_EXPLAINED_STATES {
                return seen.into_iter().collect();
            }
            let next = apply(&o.call, state.clone());
            if seen.insert(next.clone()) {
                frontier.push(next);
            }
        }
    }
    seen.into_iter().collect()
}

fn show(v: &Option<String>) -> String {
    v.as_ref()
        .map_or("absent".to_string(), |s| format!("{s:?}"))
}

fn show_states(states: &[Option<String>]) -> String {
    match states {
        [one] => format!("the value is {} in every reachable state", show(one)),
        many => format!(
            "the value is one of {} in the reachable states",
            many.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Why the model rejects `o` in every one of `states`, or why it is stuck anyway.
fn reason(o: &Operation, states: &[Option<String>]) -> String {
    let key = o.call.key();
    let accepted = states.iter().any(|s| accepts(o, s));
    let rejected = match (&o.call, &o.outcome) {
        (Call::Get { .. }, Outcome::Ok(Ret::Value(v))) => {
            format!("get {key} returned {} but {}", show(v), show_states(states))
        }
        (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(true))) => format!(
            "cas {key} swapped, so it saw {}, but {}",
            show(expected),
            show_states(states)
        ),
        (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(false))) => format!(
            "cas {key} refused, so it saw something other than {}, but {}",
            show(expected),
            show_states(states)
        ),
        (call, Outcome::Ok(ret)) if !call.accepts(ret) => {
            format!(
                "{} {key} returned {ret:?}, which it cannot return",
                call.name()
            )
        }
        (call, _) => {
            return format!(
                "{} {key} could take effect after the longest linearizable prefix, but \
                 no order of the remaining operations that starts with it works",
                call.name()
            );
        }
    };
    if accepted {
        format!(
            "{} {key} fits one of the reachable states, but no order of the operations \
             that must precede it leads there",
            o.call.name()
        )
    } else {
        rejected
    }
}

/// Whether the model accepts `o`'s result in `state`.
fn accepts(o: &Operation, state: &Option<String>) -> bool {
    match (&o.call, &o.outcome) {
        (Call::Get { .. }, Outcome::Ok(Ret::Value(v))) => v == state,
        (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(swapped))) => {
            (state == expected) == *swapped
        }
        (call, Outcome::Ok(ret)) => call.accepts(ret),
        _ => true,
    }
}

/// What a kept operation needs beside it to make sense: for a read (a get, or a cas)
/// of a value, an operation that could write it, and the appends whose text it
/// contains.
struct Deps {
    /// The operations that write the value (puts and cases): at least one must be kept.
    writers: Vec<usize>,
    /// The one added when none is: the latest called before the read returned.
    preferred: Option<usize>,
    /// Appends whose text the value contains: all are kept.
    appends: Vec<usize>,
}

fn dependencies(key_ops: &[&Operation]) -> Vec<Deps> {
    let observed = |o: &Operation| -> Option<String> {
        match (&o.call, &o.outcome) {
            (Call::Get { .. }, Outcome::Ok(Ret::Value(v))) => v.clone(),
            (Call::Cas { expected, .. }, _) => expected.clone(),
            _ => None,
        }
    };
    let mut writers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, o) in key_ops.iter().enumerate() {
        match &o.call {
            Call::Put { value, .. } => writers.entry(value).or_default().push(i),
            Call::Cas { new, .. } => writers.entry(new).or_default().push(i),
            _ => {}
        }
    }
    let appends: Vec<(usize, &str)> = key_ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match &o.call {
            Call::Append { value, .. } if !value.is_empty() => Some((i, value.as_str())),
            _ => None,
        })
        .collect();
    key_ops
        .iter()
        .map(|o| {
            let Some(v) = observed(o) else {
                return Deps {
                    writers: Vec::new(),
                    preferred: None,
                    appends: Vec::new(),
                };
            };
            let writers = writers.get(v.as_str()).cloned().unwrap_or_default();
            let until = o.complete_ns.unwrap_or(u64::MAX);
            let preferred = writers
                .iter()
                .copied()
                .filter(|&w| key_ops[w].invoke_ns <= until)
                .max_by_key(|&w| (key_ops[w].invoke_ns, w))
                .or(writers.first().copied());
            // Bounded: a value built by thousands of appends keeps them all anyway.
            let appends = if appends.len() <= 4096 {
                appends
                    .iter()
                    .filter(|(_, text)| v.contains(text))
                    .map(|&(i, _)| i)
                    .collect()
            } else {
                Vec::new()
            };
            Deps {
                writers,
                preferred,
                appends,
            }
        })
        .collect()
}

/// `set` plus, transitively, what everything in it needs ([`Deps`]); sorted.
fn closure(set: &[usize], deps: &[Deps]) -> Vec<usize> {
    let mut out: BTreeSet<usize> = set.iter().copied().collect();
    let mut todo: Vec<usize> = set.to_vec();
    while let Some(i) = todo.pop() {
        let d = &deps[i];
        let writer = d
            .preferred
            .filter(|_| !d.writers.iter().any(|w| out.contains(w)));
        for &x in d.appends.iter().chain(writer.iter()) {
            if out.insert(x) {
                todo.push(x);
            }
        }
    }
    out.into_iter().collect()
}

/// Delta debugging (Zeller's ddmin) over the key's operations: a small set whose
/// closure under [`dependencies`] is still not linearizable. It starts from the
/// shortest window of operations called before `op` returned (doubling backwards) that
/// still fails, then removes chunks of halving size. Bounded by
/// [`MAX_REDUCTION_TESTS`] searches.
fn reduce(key: &str, key_ops: &[&Operation], op: OpId, budget: &Budget) -> (Vec<OpId>, bool) {
    let deps = dependencies(key_ops);
    let small = Budget {
        max_steps: (budget.max_steps / REDUCTION_BUDGET_DIVISOR).max(1),
        ..*budget
    };
    let mut tests = 0usize;
    let fails = |set: &[usize], tests: &mut usize| -> bool {
        *tests += 1;
        let sub: Vec<&Operation> = closure(set, &deps).iter().map(|&i| key_ops[i]).collect();
        matches!(
            check_key(key, &sub, &small, None),
            KeyVerdict::NotLinearizable(_)
        )
    };
    let ids = |set: &[usize]| -> Vec<OpId> {
        closure(set, &deps).iter().map(|&i| key_ops[i].id).collect()
    };
    let all: Vec<usize> = (0..key_ops.len()).collect();
    // Operations in call order, and those called by the time `op` returned.
    let mut by_call = all.clone();
    by_call.sort_by_key(|&i| (key_ops[i].invoke_ns, i));
    let bound = key_ops
        .iter()
        .find(|o| o.id == op)
        .and_then(|o| o.complete_ns)
        .unwrap_or(u64::MAX);
    let before: Vec<usize> = by_call
        .iter()
        .copied()
        .filter(|&i| key_ops[i].invoke_ns <= bound)
        .collect();
    let mut current: Vec<usize> = all;
    let mut window = 8usize;
    while window < before.len() && tests < MAX_REDUCTION_TESTS / 4 {
        let mut w: Vec<usize> = before[before.len() - window..].to_vec();
        w.sort_unstable();
        if fails(&w, &mut tests) {
            current = w;
            break;
        }
        window *= 2;
    }
    if current.len() == key_ops.len() && !before.is_empty() && before.len() < key_ops.len() {
        let mut w = before.clone();
        w.sort_unstable();
        if fails(&w, &mut tests) {
            current = w;
        }
    }
    // ddmin: try removing each of `chunks` pieces; on success keep the rest and
    // coarsen, else refine, down to single operations.
    let mut chunks = 2usize;
    let mut minimal = false;
    while current.len() >= 2 {
        if tests >= MAX_REDUCTION_TESTS {
            return (ids(&current), false);
        }
        let size = current.len().div_ceil(chunks);
        let mut reduced = false;
        for start in (0..current.len()).step_by(size) {
            if tests >= MAX_REDUCTION_TESTS {
                return (ids(&current), false);
            }
            let end = (start + size).min(current.len());
            let rest: Vec<usize> = current[..start]
                .iter()
                .chain(&current[end..])
                .copied()
                .collect();
            if !rest.is_empty() && fails(&rest, &mut tests) {
                current = rest;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if size == 1 {
                minimal = true;
                break;
            }
            chunks = (chunks * 2).min(current.len());
        }
    }
    if current.len() < 2 {
        minimal = true;
    }
    (ids(&current), minimal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{Verdict, check_operations};

    fn op(id: OpId, call: Call, invoke: u64, complete: u64, outcome: Outcome) -> Operation {
        Operation {
            id,
            process: id,
            call,
            invoke_ns: invoke,
            outcome,
            complete_ns: Some(complete),
        }
    }

    fn put(id: OpId, v: &str, t: u64) -> Operation {
        let call = Call::Put {
            key: "x".into(),
            value: v.into(),
        };
        op(id, call, t, t + 10, Outcome::Ok(Ret::Done))
    }

    fn get(id: OpId, v: Option<&str>, t: u64) -> Operation {
        let call = Call::Get { key: "x".into() };
        op(
            id,
            call,
            t,
            t + 10,
            Outcome::Ok(Ret::Value(v.map(Into::into))),
        )
    }

    fn explained(ops: &[Operation]) -> Explanation {
        match check_operations(ops, &Budget::default()) {
            Verdict::NotLinearizable(c) => explain(ops, &c, &Budget::default()),
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn a_stale_read_is_explained_by_the_value_it_missed_and_reduced_to_three_operations() {
        // Noise before and after: reads and writes that have nothing to do with it.
        let mut ops = vec![put(1, "a", 0), get(2, Some("a"), 20), put(3, "1", 40)];
        ops.extend([put(4, "2", 60), get(5, Some("1"), 80), put(6, "z", 100)]);
        ops.push(get(7, Some("z"), 120));
        let e = explained(&ops);
        assert_eq!(e.op, 5);
        assert_eq!(e.states, vec![Some("2".to_string())]);
        assert_eq!(
            e.reason,
            "get x returned \"1\" but the value is \"2\" in every reachable state"
        );
        assert_eq!(e.minimal, vec![3, 4, 5]);
        assert!(e.minimal_is_minimal);
        // The minimal sub-history is itself not linearizable.
        let sub: Vec<Operation> = ops
            .iter()
            .filter(|o| e.minimal.contains(&o.id))
            .cloned()
            .collect();
        assert!(matches!(
            check_operations(&sub, &Budget::default()),
            Verdict::NotLinearizable(_)
        ));
    }

    #[test]
    fn an_unknown_write_widens_the_reachable_states() {
        let mut ops = vec![put(1, "1", 0), put(2, "2", 20)];
        ops.push(op(
            3,
            Call::Put {
                key: "x".into(),
                value: "u".into(),
            },
            25,
            26,
            Outcome::Unknown,
        ));
        ops.push(get(4, Some("1"), 40));
        let e = explained(&ops);
        assert_eq!(e.op, 4);
        assert_eq!(e.states, vec![Some("2".into()), Some("u".into())]);
        assert!(e.reason.contains("one of \"2\", \"u\""), "{}", e.reason);
    }

    #[test]
    fn a_refused_cas_is_explained_by_the_value_it_expected() {
        let mut ops = vec![put(1, "a", 0)];
        let cas = Call::Cas {
            key: "x".into(),
            expected: Some("a".into()),
            new: "b".into(),
        };
        ops.push(op(2, cas, 20, 30, Outcome::Ok(Ret::Cas(false))));
        let e = explained(&ops);
        assert_eq!(e.op, 2);
        assert!(e.reason.starts_with("cas x refused"), "{}", e.reason);
        assert_eq!(e.minimal, vec![1, 2]);
    }
}
