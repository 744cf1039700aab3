//! Pruning rule: on a key without appends, an operation of unknown outcome is tried
//! only right before an operation it unblocks.

use crate::model::{Model, Step, ValueId};

use super::SearchOp;

/// Whether linearizing the unknown operation `op` next, in `state`, lets some other
/// candidate (in `candidates`: the failing reads, the other known candidates, the
/// unknown candidates) take effect in a way it could not without it. On a key without
/// appends, only such unknown operations need trying.
///
/// Why: take any linearization that includes an unknown operation `w` (a put, delete or
/// cas). After `w` comes a stretch of reads, refused cases and unknown cases that do not
/// swap, up to the next put, delete or swapping cas (no appends). Move `w` later, past
/// each of those that does the same without it: nothing changes for them, and `w` has
/// no return to be bound by. It stops at the first operation that needs it, which,
/// since `w` changes no candidate set, was a candidate where `w` was; if none needs it,
/// drop `w`: nothing told it apart. So some linearization puts every unknown operation
/// it includes right before an operation it unblocks. With appends in between, moving
/// `w` would change what they build, so keys with appends try every unknown operation.
pub(super) fn unblocks(
    op: usize,
    state: ValueId,
    model: &mut Model,
    ops: &[SearchOp],
    candidates: [&[usize]; 3],
) -> bool {
    let Some(after) = model.step(state, &ops[op].step) else {
        return false;
    };
    if after == state {
        return false;
    }
    candidates.iter().flat_map(|c| c.iter()).any(|&x| {
        x != op
            && match ops[x].step {
                // An unknown cas does something else after `op` if it swaps there.
                Step::CasMaybe { expected, .. } => expected == after,
                Step::Write(_) | Step::Delete | Step::Append(_) => false,
                ref step => model.step(after, step).is_some() && model.step(state, step).is_none(),
            }
    })
}
