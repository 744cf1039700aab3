//! What the search precomputes about one key's operations: the event lists, the try
//! order, and which operations of unknown outcome the pruning rules leave out or merge.

use crate::model::{Model, Step};

use super::SearchOp;
use super::excuses::excuses;
use super::links::NIL;
use super::unobservable::unobservable_unknowns;

/// What the search precomputes about its operations.
pub(super) struct Tables {
    /// The operations, with interchangeable unknown ones (see [`excuses`]) rewritten to
    /// write the opaque value.
    pub(super) ops: Vec<SearchOp>,
    /// Events of known operations, sorted by (time, calls before returns, op). Ties put
    /// calls first: an operation that returns at the instant another is called overlaps
    /// it, which can only admit more orders, never report a false violation.
    pub(super) events: Vec<(u64, bool, usize)>,
    /// Unknown operations left in (see [`unobservable_unknowns`]), by (call, op).
    pub(super) unknown: Vec<(u64, usize)>,
    /// Per op: its call node and return node in the event list (known), or its node in
    /// the unknown list. Node k (1-based) is events[k - 1] / unknown[k - 1].
    pub(super) call_node: Vec<u32>,
    pub(super) return_node: Vec<u32>,
    pub(super) unknown_node: Vec<u32>,
    /// Per op: a known pure read (taken greedily when it succeeds).
    pub(super) read_only: Vec<bool>,
    /// Per op: try order among known candidates (interval midpoint, then index).
    pub(super) priority: Vec<(u64, usize)>,
    /// Per op: an interchangeable excuse (see [`excuses`]).
    pub(super) excuse: Vec<bool>,
    /// Whether any operation appends (see [`unblocks`] for why it matters).
    pub(super) has_appends: bool,
    /// Per op: its rank among all operations in call order (its bit in the linearized
    /// set), and among known operations (its bit in [`Dominance`]'s known set).
    pub(super) rank: Vec<usize>,
    pub(super) known_rank: Vec<Option<usize>>,
    pub(super) known_count: usize,
}

pub(super) fn prepare(ops: &[SearchOp], model: &mut Model) -> Tables {
    let n = ops.len();
    let unobservable = unobservable_unknowns(ops, model);
    let excuse = excuses(ops, &unobservable, model);
    let opaque = excuse.iter().any(|&e| e).then(|| model.opaque());
    let ops: Vec<SearchOp> = ops
        .iter()
        .zip(&excuse)
        .map(|(op, &e)| match opaque {
            Some(opaque) if e => SearchOp {
                step: Step::Write(opaque),
                ..op.clone()
            },
            _ => op.clone(),
        })
        .collect();
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    let mut unknown: Vec<(u64, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op.ret {
            Some(ret) => {
                debug_assert!(ret >= op.call);
                events.push((op.call, false, i));
                events.push((ret.max(op.call), true, i));
            }
            None if unobservable[i] => {}
            None => unknown.push((op.call, i)),
        }
    }
    events.sort_unstable();
    unknown.sort_unstable();
    let mut call_node = vec![NIL; n];
    let mut return_node = vec![NIL; n];
    let mut unknown_node = vec![NIL; n];
    for (k, &(_, ret, op)) in events.iter().enumerate() {
        let node = k as u32 + 1;
        if ret {
            return_node[op] = node;
        } else {
            call_node[op] = node;
        }
    }
    for (k, &(_, op)) in unknown.iter().enumerate() {
        unknown_node[op] = k as u32 + 1;
    }
    let mut by_call: Vec<usize> = (0..n).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let mut rank = vec![0usize; n];
    for (r, &i) in by_call.iter().enumerate() {
        rank[i] = r;
    }
    let mut known_rank: Vec<Option<usize>> = vec![None; n];
    for (r, &i) in by_call
        .iter()
        .filter(|&&i| ops[i].ret.is_some())
        .enumerate()
    {
        known_rank[i] = Some(r);
    }
    Tables {
        read_only: ops
            .iter()
            .map(|op| op.ret.is_some() && op.step.is_read_only())
            .collect(),
        priority: ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.call / 2 + op.ret.unwrap_or(u64::MAX) / 2, i))
            .collect(),
        has_appends: ops.iter().any(|op| matches!(op.step, Step::Append(_))),
        known_count: events.len() / 2,
        ops,
        events,
        unknown,
        call_node,
        return_node,
        unknown_node,
        excuse,
        rank,
        known_rank,
    }
}
