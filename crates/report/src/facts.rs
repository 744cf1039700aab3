//! What a report draws, derived from a run's timeline and history: intervals
//! when a node was down or cut off, who led in which term, and each key's
//! operations with their place in the linearization. Pure functions of their
//! inputs, so they are tested without rendering anything.

use check::{Call, Counterexample, KeyVerdict, OpId, Operation, Outcome, Ret};
use sim::timeline::{Timed, TimelineEvent};
use std::collections::{BTreeMap, BTreeSet};

/// Why a stretch of time is shaded in every chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// A node's process was down (crashed, or halted on an internal error).
    Down,
    /// The network was partitioned.
    Partition,
    /// A node's process was paused (SIGSTOP, a long GC pause).
    Paused,
}

/// A moment worth marking on the fault timeline: a scripted fault, a clock
/// change, a committed configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// When.
    pub time_ns: u64,
    /// The node it concerns (`None`: the whole cluster).
    pub node: Option<u64>,
    /// What happened, briefly.
    pub label: String,
}

/// A fault that lasted from `start_ns` to `end_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// When it began.
    pub start_ns: u64,
    /// When it ended (the end of the run if it never healed).
    /// Invariant: `end_ns >= start_ns`.
    pub end_ns: u64,
    /// What it was.
    pub kind: FaultKind,
    /// The node it concerns (`None` for a partition, which concerns several).
    pub node: Option<u64>,
    /// For humans: "crashed", "halted: ...", or the partition's shape.
    pub label: String,
}

/// One partition interval as seen by one node: whom it could not reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// When the partition began.
    pub start_ns: u64,
    /// When it healed or was replaced.
    pub end_ns: u64,
    /// The node.
    pub node: u64,
    /// Nodes it could not send to.
    pub cannot_send_to: BTreeSet<u64>,
    /// Nodes it could not hear from.
    pub cannot_hear_from: BTreeSet<u64>,
    /// The partition's shape.
    pub shape: String,
}

/// A node leading one term, from `start_ns` to `end_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reign {
    /// The leader.
    pub node: u64,
    /// Its term.
    pub term: u64,
    /// When it became leader.
    pub start_ns: u64,
    /// When it stepped down, crashed, or the run ended.
    pub end_ns: u64,
}

/// A node taken out of the cluster by a membership change (churn, or an
/// operator): drawn apart from a failure, from `time_ns` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The node.
    pub node: u64,
    /// When it was removed and stopped.
    pub time_ns: u64,
    /// Why, as the run said it.
    pub reason: String,
}

/// Everything drawn on the run-wide time axis.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    /// Down intervals (per node) and partitions, in start order.
    pub faults: Vec<Fault>,
    /// Partitions, per node.
    pub cuts: Vec<Cut>,
    /// Leaders over time, in start order.
    pub reigns: Vec<Reign>,
    /// When clients stopped issuing operations, if the timeline says.
    pub end_of_workload_ns: Option<u64>,
    /// Scripted faults, clock changes and configurations, in time order.
    pub markers: Vec<Marker>,
    /// Nodes that joined during the run, with when: before that they were
    /// not part of it (a node absent here was there from the start).
    pub joined: BTreeMap<u64, u64>,
    /// Nodes removed from the cluster, in time order: not failures, so not
    /// among `faults` (and not shaded in every chart).
    pub removals: Vec<Removal>,
}

/// A partition not yet healed: since when, its shape, its cut links.
type OpenPartition = (u64, String, Vec<(u64, u64)>);

/// Derives intervals from the timeline's point events. `end_ns` closes what
/// never ended.
pub fn run_facts(timeline: &[Timed], end_ns: u64) -> RunFacts {
    let mut facts = RunFacts::default();
    // node -> (since, label) while down.
    let mut down: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut paused: BTreeMap<u64, u64> = BTreeMap::new();
    let end_pause = |facts: &mut RunFacts, node: u64, since: u64, t: u64| {
        facts.faults.push(Fault {
            start_ns: since,
            end_ns: t,
            kind: FaultKind::Paused,
            node: Some(node),
            label: "paused".into(),
        });
    };
    let end_down = |facts: &mut RunFacts, node: u64, (since, label): (u64, String), t: u64| {
        facts.faults.push(Fault {
            start_ns: since,
            end_ns: t,
            kind: FaultKind::Down,
            node: Some(node),
            label,
        });
    };
    // The partition in force.
    let mut partition: Option<OpenPartition> = None;
    let mut leading: BTreeMap<u64, (u64, u64)> = BTreeMap::new(); // node -> (term, since)
    let close_partition = |facts: &mut RunFacts, p: OpenPartition, t: u64| {
        let (since, shape, cut) = p;
        let nodes: BTreeSet<u64> = cut.iter().flat_map(|&(a, b)| [a, b]).collect();
        for node in nodes {
            facts.cuts.push(Cut {
                start_ns: since,
                end_ns: t,
                node,
                cannot_send_to: cut.iter().filter(|l| l.0 == node).map(|l| l.1).collect(),
                cannot_hear_from: cut.iter().filter(|l| l.1 == node).map(|l| l.0).collect(),
                shape: shape.clone(),
            });
        }
        facts.faults.push(Fault {
            start_ns: since,
            end_ns: t,
            kind: FaultKind::Partition,
            node: None,
            label: shape,
        });
    };
    let end_reign = |facts: &mut RunFacts, node: u64, term: u64, since: u64, t: u64| {
        facts.reigns.push(Reign {
            node,
            term,
            start_ns: since,
            end_ns: t,
        });
    };
    for timed in timeline {
        let t = timed.time_ns.min(end_ns);
        match &timed.event {
            TimelineEvent::Paused { node, .. } => {
                paused.entry(*node).or_insert(t);
            }
            TimelineEvent::Resumed { node } => {
                if let Some(since) = paused.remove(node) {
                    end_pause(&mut facts, *node, since, t);
                }
            }
            TimelineEvent::Crashed { node } => {
                if let Some(since) = paused.remove(node) {
                    end_pause(&mut facts, *node, since, t);
                }
                down.entry(*node).or_insert((t, "crashed".into()));
                if let Some((term, since)) = leading.remove(node) {
                    end_reign(&mut facts, *node, term, since, t);
                }
            }
            TimelineEvent::Halted { node, reason } => {
                down.entry(*node)
                    .or_insert((t, format!("halted: {reason}")));
                if let Some((term, since)) = leading.remove(node) {
                    end_reign(&mut facts, *node, term, since, t);
                }
            }
            TimelineEvent::Joined { node } => {
                facts.joined.entry(*node).or_insert(t);
                facts.markers.push(Marker {
                    time_ns: t,
                    node: Some(*node),
                    label: "joined".into(),
                });
            }
            TimelineEvent::Removed { node, reason } => {
                // Whatever it was doing ends here, and is not a failure.
                if let Some(since) = paused.remove(node) {
                    end_pause(&mut facts, *node, since, t);
                }
                if let Some(was) = down.remove(node) {
                    end_down(&mut facts, *node, was, t);
                }
                if let Some((term, since)) = leading.remove(node) {
                    end_reign(&mut facts, *node, term, since, t);
                }
                facts.removals.push(Removal {
                    node: *node,
                    time_ns: t,
                    reason: reason.clone(),
                });
            }
            TimelineEvent::Restarted { node } => {
                if let Some(was) = down.remove(node) {
                    end_down(&mut facts, *node, was, t);
                }
            }
            TimelineEvent::Partitioned { shape, cut } => {
                if let Some(p) = partition.take() {
                    close_partition(&mut facts, p, t);
                }
                partition = Some((t, shape.clone(), cut.clone()));
            }
            TimelineEvent::Healed => {
                if let Some(p) = partition.take() {
                    close_partition(&mut facts, p, t);
                }
            }
            TimelineEvent::Leader { node, term } => {
                if let Some((old, since)) = leading.insert(*node, (*term, t)) {
                    end_reign(&mut facts, *node, old, since, t);
                }
            }
            TimelineEvent::SteppedDown { node, .. } => {
                if let Some((term, since)) = leading.remove(node) {
                    end_reign(&mut facts, *node, term, since, t);
                }
            }
            TimelineEvent::EndOfWorkload => facts.end_of_workload_ns = Some(t),
            TimelineEvent::ClockDrift { node, ppm } => facts.markers.push(Marker {
                time_ns: t,
                node: Some(*node),
                label: format!("clock {:+.1}%", *ppm as f64 / 10_000.0),
            }),
            TimelineEvent::ClockJumped { node, ms } => facts.markers.push(Marker {
                time_ns: t,
                node: Some(*node),
                label: format!("clock jump {ms:+}ms"),
            }),
            TimelineEvent::Membership { config } => facts.markers.push(Marker {
                time_ns: t,
                node: None,
                label: format!("config {config}"),
            }),
            TimelineEvent::Scripted { action } => facts.markers.push(Marker {
                time_ns: t,
                node: None,
                label: format!("scripted {action}"),
            }),
        }
    }
    for (node, since) in paused {
        end_pause(&mut facts, node, since, end_ns.max(since));
    }
    for (node, was) in down {
        let t = end_ns.max(was.0);
        end_down(&mut facts, node, was, t);
    }
    if let Some(p) = partition.take() {
        let since = p.0;
        close_partition(&mut facts, p, end_ns.max(since));
    }
    for (node, (term, since)) in leading {
        end_reign(&mut facts, node, term, since, end_ns.max(since));
    }
    facts.faults.sort_by_key(|f| (f.start_ns, f.kind, f.node));
    facts.reigns.sort_by_key(|r| (r.start_ns, r.term));
    facts.cuts.sort_by_key(|c| (c.start_ns, c.node));
    facts
}

/// The model's value of a key: absent, or a string.
pub type State = Option<String>;

/// Applies `op` to `state` the way the checker's model does, for an operation
/// that took effect. Returns whether the model accepts the result the client saw.
pub fn apply(state: &mut State, op: &Operation) -> bool {
    let ret = match &op.outcome {
        Outcome::Ok(ret) => Some(ret),
        _ => None,
    };
    match (&op.call, ret) {
        (Call::Get { .. }, None) => true,
        (Call::Get { .. }, Some(Ret::Value(v))) => v == state,
        (Call::Put { value, .. }, _) => {
            *state = Some(value.clone());
            true
        }
        (Call::Delete { .. }, _) => {
            *state = None;
            true
        }
        (Call::Append { value, .. }, _) => {
            let mut s = state.take().unwrap_or_default();
            s.push_str(value);
            *state = Some(s);
            true
        }
        (Call::Cas { expected, new, .. }, ret) => {
            let swaps = expected == state;
            match ret {
                Some(Ret::Cas(said)) if *said != swaps => false,
                _ => {
                    if swaps {
                        *state = Some(new.clone());
                    }
                    true
                }
            }
        }
        (_, Some(_)) => false,
        // Batches are drawn split per key (`check::project_batches`); one
        // left whole changes no key's state here.
        (Call::Batch { .. }, None) => true,
    }
}

/// Shows a state the way the report prints values.
pub fn show_state(state: &State) -> String {
    match state {
        Some(v) => format!("{v:?}"),
        None => "absent".into(),
    }
}

/// Why a history is not linearizable, as the report explains it. Built from
/// the checker's [`Counterexample`]; fields the checker does not compute yet
/// are derived here (the state after the prefix, each stuck operation's
/// reason), so a richer checker can fill them in directly later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The key.
    pub key: String,
    /// The longest linearizable prefix, in order.
    pub prefix: Vec<OpId>,
    /// The operations that cannot follow the prefix.
    pub stuck: Vec<OpId>,
    /// The value the prefix leaves.
    pub state_after_prefix: State,
    /// Per stuck operation, why the model rejects it there.
    pub reasons: BTreeMap<OpId, String>,
    /// A minimal set of operations that is not linearizable on its own, if
    /// the checker found one (drawn outlined); empty otherwise.
    pub minimal_set: Vec<OpId>,
    /// Anything more the checker says (e.g. the states the model could be
    /// in), one line each.
    pub notes: Vec<String>,
}

/// Explains `counterexample` over the operations of its history.
pub fn explain(counterexample: &Counterexample, ops: &BTreeMap<OpId, &Operation>) -> Explanation {
    let mut state: State = None;
    for id in &counterexample.longest_prefix {
        if let Some(op) = ops.get(id) {
            apply(&mut state, op);
        }
    }
    let shown = show_state(&state);
    let reasons = counterexample
        .stuck
        .iter()
        .filter_map(|id| ops.get(id).map(|op| (*id, op)))
        .map(|(id, op)| {
            let reason = match (&op.call, &op.outcome) {
                (Call::Get { .. }, Outcome::Ok(Ret::Value(v))) => {
                    if *v == state {
                        format!(
                            "get returned {}, which the prefix leaves, but real time \
                             forbids placing it next",
                            show_state(v)
                        )
                    } else {
                        format!(
                            "get returned {}, but the value after the prefix is {shown}",
                            show_state(v)
                        )
                    }
                }
                (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(swapped))) => format!(
                    "cas expecting {} reported {}, but the value after the prefix is {shown}",
                    show_state(expected),
                    if *swapped { "a swap" } else { "no swap" }
                ),
                (call, _) => format!(
                    "{} is accepted by the model after the prefix ({shown}), but no order \
                     of what must follow it works",
                    call.name()
                ),
            };
            (id, reason)
        })
        .collect();
    Explanation {
        key: counterexample.key.clone(),
        prefix: counterexample.longest_prefix.clone(),
        stuck: counterexample.stuck.clone(),
        state_after_prefix: state,
        reasons,
        minimal_set: Vec::new(),
        notes: Vec::new(),
    }
}

/// Adds what the checker's own explanation says: its reason for the
/// operation it names (preferred over the derived one), the values the key
/// could hold there, and its reduced failing sub-history.
pub fn enrich(e: &mut Explanation, checker: &check::Explanation) {
    if e.key != checker.key {
        return;
    }
    e.reasons.insert(checker.op, checker.reason.clone());
    let states: Vec<String> = checker.states.iter().map(show_state).collect();
    if !states.is_empty() {
        e.notes.push(format!(
            "when op {} would take effect, the key could hold: {}",
            checker.op,
            states.join(", ")
        ));
    }
    if !checker.minimal.is_empty() {
        e.minimal_set = checker.minimal.clone();
        e.notes.push(format!(
            "these {} operations are not linearizable on their own{}",
            checker.minimal.len(),
            if checker.minimal_is_minimal {
                ", and leaving out any one of them makes them so"
            } else {
                ""
            }
        ));
    }
}

/// Each operation's place in its key's linearization (1-based) and the state
/// after it, for keys the checker ordered; for a failing key, the prefix.
pub fn positions(
    verdicts: &BTreeMap<String, KeyVerdict>,
    ops: &BTreeMap<OpId, &Operation>,
) -> BTreeMap<OpId, (usize, State)> {
    let mut out = BTreeMap::new();
    for verdict in verdicts.values() {
        let order = match verdict {
            KeyVerdict::Linearizable { order } => order,
            KeyVerdict::NotLinearizable(c) => &c.longest_prefix,
            KeyVerdict::Undecided => continue,
        };
        let mut state: State = None;
        for (i, id) in order.iter().enumerate() {
            if let Some(op) = ops.get(id) {
                apply(&mut state, op);
                out.insert(*id, (i + 1, state.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time_ns: u64, event: TimelineEvent) -> Timed {
        Timed { time_ns, event }
    }

    #[test]
    fn a_crash_lasts_until_the_restart_and_ends_the_reign() {
        let timeline = vec![
            at(10, TimelineEvent::Leader { node: 2, term: 1 }),
            at(50, TimelineEvent::Crashed { node: 2 }),
            at(80, TimelineEvent::Restarted { node: 2 }),
            at(90, TimelineEvent::Crashed { node: 3 }),
        ];
        let facts = run_facts(&timeline, 100);
        assert_eq!(
            facts.reigns,
            vec![Reign {
                node: 2,
                term: 1,
                start_ns: 10,
                end_ns: 50
            }]
        );
        let down: Vec<_> = facts
            .faults
            .iter()
            .map(|f| (f.node, f.start_ns, f.end_ns))
            .collect();
        assert_eq!(down, vec![(Some(2), 50, 80), (Some(3), 90, 100)]);
    }

    /// A node that joined starts there; a removal is recorded apart from
    /// failures and ends the node's outage and reign at the removal.
    #[test]
    fn a_join_starts_a_node_and_a_removal_is_not_a_failure() {
        let timeline = vec![
            at(10, TimelineEvent::Leader { node: 2, term: 1 }),
            at(40, TimelineEvent::Joined { node: 4 }),
            at(60, TimelineEvent::Crashed { node: 3 }),
            at(
                70,
                TimelineEvent::Removed {
                    node: 2,
                    reason: "removed from the cluster".into(),
                },
            ),
            at(
                80,
                TimelineEvent::Removed {
                    node: 3,
                    reason: "removed from the cluster".into(),
                },
            ),
        ];
        let facts = run_facts(&timeline, 100);
        assert_eq!(facts.joined, BTreeMap::from([(4, 40)]));
        let removed: Vec<(u64, u64)> = facts.removals.iter().map(|m| (m.node, m.time_ns)).collect();
        assert_eq!(removed, vec![(2, 70), (3, 80)]);
        assert_eq!(facts.reigns[0].end_ns, 70, "a removed leader stops leading");
        let down: Vec<_> = facts
            .faults
            .iter()
            .map(|f| (f.node, f.start_ns, f.end_ns, f.kind))
            .collect();
        assert_eq!(
            down,
            vec![(Some(3), 60, 80, FaultKind::Down)],
            "the outage ends at the removal; the removals are no faults"
        );
        assert!(
            facts
                .markers
                .iter()
                .any(|m| m.node == Some(4) && m.label == "joined")
        );
    }

    #[test]
    fn a_partition_cuts_each_node_from_the_other_side_until_healed() {
        let timeline = vec![
            at(
                5,
                TimelineEvent::Partitioned {
                    shape: "isolate 1".into(),
                    cut: vec![(1, 2), (2, 1), (1, 3)],
                },
            ),
            at(20, TimelineEvent::Healed),
        ];
        let facts = run_facts(&timeline, 100);
        assert_eq!(facts.faults.len(), 1);
        assert_eq!(facts.faults[0].kind, FaultKind::Partition);
        assert_eq!((facts.faults[0].start_ns, facts.faults[0].end_ns), (5, 20));
        let one = facts.cuts.iter().find(|c| c.node == 1).unwrap();
        assert_eq!(one.cannot_send_to, BTreeSet::from([2, 3]));
        assert_eq!(one.cannot_hear_from, BTreeSet::from([2]));
        let three = facts.cuts.iter().find(|c| c.node == 3).unwrap();
        assert!(three.cannot_send_to.is_empty());
        assert_eq!(three.cannot_hear_from, BTreeSet::from([1]));
    }

    #[test]
    fn a_new_partition_replaces_the_old_and_an_unhealed_one_lasts_to_the_end() {
        let cut = vec![(1, 2)];
        let timeline = vec![
            at(
                5,
                TimelineEvent::Partitioned {
                    shape: "a".into(),
                    cut: cut.clone(),
                },
            ),
            at(
                7,
                TimelineEvent::Partitioned {
                    shape: "b".into(),
                    cut,
                },
            ),
        ];
        let facts = run_facts(&timeline, 30);
        let spans: Vec<_> = facts
            .faults
            .iter()
            .map(|f| (f.label.as_str(), f.start_ns, f.end_ns))
            .collect();
        assert_eq!(spans, vec![("a", 5, 7), ("b", 7, 30)]);
    }

    fn op(id: OpId, call: Call, outcome: Outcome) -> Operation {
        Operation {
            id,
            process: id,
            call,
            invoke_ns: id * 10,
            outcome,
            complete_ns: Some(id * 10 + 5),
        }
    }

    #[test]
    fn the_explanation_names_the_value_a_stale_read_should_have_seen() {
        let k = || "k".to_string();
        let ops = [
            op(
                1,
                Call::Put {
                    key: k(),
                    value: "a".into(),
                },
                Outcome::Ok(Ret::Done),
            ),
            op(
                2,
                Call::Put {
                    key: k(),
                    value: "b".into(),
                },
                Outcome::Ok(Ret::Done),
            ),
            op(
                3,
                Call::Get { key: k() },
                Outcome::Ok(Ret::Value(Some("a".into()))),
            ),
        ];
        let by_id: BTreeMap<OpId, &Operation> = ops.iter().map(|o| (o.id, o)).collect();
        let c = Counterexample {
            key: k(),
            longest_prefix: vec![1, 2],
            stuck: vec![3],
        };
        let e = explain(&c, &by_id);
        assert_eq!(e.state_after_prefix, Some("b".into()));
        assert_eq!(
            e.reasons[&3],
            "get returned \"a\", but the value after the prefix is \"b\""
        );
    }

    #[test]
    fn apply_follows_the_model_for_cas_and_append() {
        let k = || "k".to_string();
        let mut s: State = None;
        let append = op(
            1,
            Call::Append {
                key: k(),
                value: "x".into(),
            },
            Outcome::Unknown,
        );
        assert!(apply(&mut s, &append));
        assert!(apply(&mut s, &append));
        assert_eq!(s, Some("xx".into()));
        let failed_cas = op(
            2,
            Call::Cas {
                key: k(),
                expected: None,
                new: "n".into(),
            },
            Outcome::Ok(Ret::Cas(true)),
        );
        assert!(!apply(&mut s, &failed_cas), "the value is not absent");
        assert_eq!(s, Some("xx".into()));
    }
}
