//! Checking a whole history: split it per key, search each key, combine the verdicts.
//!
//! Every operation touches one key and keys do not interact, so a history is
//! linearizable exactly when each key's sub-history is (P-compositionality, Herlihy &
//! Wing's locality): each key is checked as an independent register, which turns one
//! search over all operations into many small ones.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::history::{Call, History, HistoryError, OpId, Operation, Outcome};
use crate::model::Model;
use crate::search::{self, SearchOp};

/// How much work a check may do. Deterministic: it counts search steps (one step is one
/// event or candidate the search looks at), never wall time, so a verdict never depends
/// on the machine. Memory grows with the steps taken too, so the budget bounds both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Most search steps per key. A history with `k` keys takes at most `k * max_steps`
    /// steps.
    pub max_steps: u64,
}

impl Budget {
    /// The default step limit per key. A linearizable 10k-operation history from ten
    /// clients takes about 10-100 steps per operation, so around a million at most; the
    /// limit bites on histories whose search goes exponential (many concurrent clients
    /// on one key; many outcomes unknown on a key with appends; some violations, which
    /// take ruling out every order), and stops them after about a second (debug build)
    /// and under 100 MB. See the crate documentation for measurements.
    pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: Self::DEFAULT_MAX_STEPS,
        }
    }
}

/// Whether a history is linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every key's operations can be ordered consistently with real time and the model.
    Linearizable,
    /// Some key's operations cannot; the first such key (in key order) is described.
    NotLinearizable(Counterexample),
    /// No key was found non-linearizable, but the search of this key (the first, in key
    /// order) ran out of budget.
    Undecided {
        /// The key whose search was cut short.
        key: String,
    },
}

/// Why one key's operations are not linearizable, Porcupine-style: a linearizable
/// prefix the search found, and the operations that could not follow it.
///
/// Of the places the search got stuck, the one reported is the one that reaches latest
/// in real time: the deepest configuration whose every candidate the model rejected, or
/// a configuration where a pending read was proved unable ever to see its value; a
/// stale read is found that way on the path that is right up to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The key.
    pub key: String,
    /// A linearizable prefix, in linearization order: the longest the search found, or
    /// the one after which it proved a read dead (see `stuck`). The field keeps
    /// Porcupine's name.
    pub longest_prefix: Vec<OpId>,
    /// Operations with a known outcome that cannot be linearized next after
    /// `longest_prefix`, and no order extending the prefix works. Either it is one read
    /// that can never return its value after the prefix: whatever can still precede it
    /// (appends, and the puts, deletes and cases called before its return) cannot
    /// produce that value. Or they are, in call order, the operations that could go next
    /// as far as real time goes (their calls precede the earliest return not yet
    /// linearized) whose results the model rejects in the state the prefix leaves; the
    /// others that could go next (rarely any) lead only to dead ends. If the model
    /// rejects none of them, all are listed. Never an operation of unknown outcome: it
    /// has no result to reject.
    pub stuck: Vec<OpId>,
}

/// The verdict for one key, with a witness either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyVerdict {
    /// A linearization of the key's operations: every operation that completed ok, and
    /// those of unknown outcome that took effect, in order. Failed operations, unknown
    /// operations left out (they never took effect) and gets of unknown outcome are not
    /// in it.
    Linearizable {
        /// The order.
        order: Vec<OpId>,
    },
    /// No linearization exists.
    NotLinearizable(Counterexample),
    /// The search ran out of budget.
    Undecided,
}

/// Check a recorded history (see [`History::operations`] for what makes one malformed).
pub fn check_history(history: &History, budget: &Budget) -> Result<Verdict, HistoryError> {
    Ok(check_operations(&history.operations()?, budget))
}

/// Check operations (as built by [`History::operations`], or by hand).
///
/// Operations that failed are left out: they took no effect. So are gets of unknown
/// outcome: they changed nothing and returned nothing anyone saw. An operation of unknown
/// outcome may take effect at any time after its call (whatever `complete_ns` says: a
/// timed-out request can still be applied later), or never. An `Ok` operation whose
/// result does not fit its call can never be linearized; one without `complete_ns` must
/// be linearized but is bounded by no return. Operations at equal times overlap.
pub fn check_operations(ops: &[Operation], budget: &Budget) -> Verdict {
    combine(check_per_key(ops, budget))
}

/// Combine per-key verdicts into one: the first key (in the iteration order, key order
/// for a `BTreeMap`) that is not linearizable decides; otherwise the first undecided key
/// makes the whole undecided.
pub fn combine(verdicts: impl IntoIterator<Item = (String, KeyVerdict)>) -> Verdict {
    let mut undecided = None;
    for (key, verdict) in verdicts {
        match verdict {
            KeyVerdict::Linearizable { .. } => {}
            KeyVerdict::NotLinearizable(c) => return Verdict::NotLinearizable(c),
            KeyVerdict::Undecided => {
                undecided.get_or_insert(key);
            }
        }
    }
    match undecided {
        Some(key) => Verdict::Undecided { key },
        None => Verdict::Linearizable,
    }
}

/// Check each key separately, and return every key's verdict with its witness (the
/// linearization order, for reports to number the operations). A key appears if some
/// operation on it is neither failed nor a get of unknown outcome.
pub fn check_per_key(ops: &[Operation], budget: &Budget) -> BTreeMap<String, KeyVerdict> {
    partition(ops)
        .into_iter()
        .map(|(key, ops)| (key.to_owned(), check_key(key, &ops, budget, None)))
        .collect()
}

/// The operations that matter, grouped by key (P-compositionality): each group can be
/// checked on its own with [`check_key`], in any order or in parallel. Failed operations
/// and gets of unknown outcome are left out (they took no effect anyone saw).
pub fn partition(ops: &[Operation]) -> BTreeMap<&str, Vec<&Operation>> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        let relevant = !matches!(
            (&op.outcome, &op.call),
            (Outcome::Fail, _) | (Outcome::Unknown, Call::Get { .. })
        );
        if relevant {
            by_key.entry(op.call.key()).or_default().push(op);
        }
    }
    by_key
}

/// Check one key's operations (a group from [`partition`]).
///
/// `cancel`, if given, is polled every few thousand steps: once set, the search stops
/// and the key is [`KeyVerdict::Undecided`]. It exists for callers outside the
/// determinism boundary (a wall-clock timeout, or stopping the other keys once one has
/// failed); the search itself never reads a clock, so with `None` the verdict is a
/// function of the operations and the budget alone.
pub fn check_key(
    key: &str,
    ops: &[&Operation],
    budget: &Budget,
    cancel: Option<&AtomicBool>,
) -> KeyVerdict {
    let mut model = Model::new();
    let search_ops: Vec<SearchOp> = ops
        .iter()
        .map(|op| SearchOp {
            step: model.compile(&op.call, &op.outcome),
            call: op.invoke_ns,
            ret: match op.outcome {
                // A completion recorded before the call is malformed; treat the two as
                // simultaneous rather than panic.
                Outcome::Ok(_) => Some(op.complete_ns.unwrap_or(u64::MAX).max(op.invoke_ns)),
                _ => None,
            },
        })
        .collect();
    let ids = |indices: Vec<usize>| indices.into_iter().map(|i| ops[i].id).collect();
    match search::search(&search_ops, &mut model, budget.max_steps, cancel) {
        search::Outcome::Linearizable(order) => KeyVerdict::Linearizable { order: ids(order) },
        search::Outcome::NotLinearizable { prefix, stuck } => {
            KeyVerdict::NotLinearizable(Counterexample {
                key: key.to_owned(),
                longest_prefix: ids(prefix),
                stuck: ids(stuck),
            })
        }
        search::Outcome::Undecided => KeyVerdict::Undecided,
    }
}
