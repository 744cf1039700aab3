//! Pruning rule: operations of unknown outcome whose effect no operation could observe
//! are left out of the search.

use crate::model::{ABSENT, Model, Step, ValueId};

use super::SearchOp;

/// Most byte comparisons [`unobservable_unknowns`] spends looking for appended text in
/// the values operations compare against; past it, unknown appends are all kept.
pub(super) const UNOBSERVABLE_APPEND_WORK: usize = 1 << 26;

/// Most (unknown operation, compared value) pairs [`unobservable_unknowns`] checks by
/// prefix on a key with appends; past it, unknown operations there are all kept.
pub(super) const UNOBSERVABLE_PREFIX_WORK: usize = 1 << 22;

/// Every value some operation compares the state with (a read's, a cas's expected),
/// sorted, without repeats.
pub(super) fn compared_values(ops: &[SearchOp]) -> Vec<ValueId> {
    let mut compared: Vec<ValueId> = ops
        .iter()
        .filter_map(|op| match op.step {
            Step::Read(v) => Some(v),
            Step::CasSwapped { expected, .. }
            | Step::CasRefused { expected }
            | Step::CasMaybe { expected, .. } => Some(expected),
            _ => None,
        })
        .collect();
    compared.sort_unstable();
    compared.dedup();
    compared
}

/// Which operations of unknown outcome can be left out of the search: those whose
/// effect no operation could observe. Each left in may be linearized at any point after
/// its call, which multiplies the configurations to explore, and a history from a
/// faulty run can have hundreds.
///
/// Leaving out an unknown operation `w` that a linearization `L` includes gives `L`
/// without `w`, which is still a linearization if nothing in `L` told `w`'s effect from
/// its absence. Its effect lasts from `w` to the next put, delete or swapping cas (a
/// "reset"); in between, the value is "what `w` made it, plus appends". An operation
/// there can tell only by comparing: a read must return that value, a cas expect it (or
/// a refused cas not expect it), and a later unknown cas either swaps, which needs its
/// expected value to be that value, or does nothing, in which case it can be left out
/// too. So `w` is left out when:
///
/// - no read returns, and no cas expects, a value that could be `w`'s plus appends
///   (for a put or a swapping cas: a value that extends the one it writes; for an
///   append: one that contains the text it appends; a delete is always kept); and
/// - no refused cas that could follow `w` (returning after `w`'s call) expects a value
///   that some operation could write: without `w`, such a cas might see that value.
pub(super) fn unobservable_unknowns(ops: &[SearchOp], model: &mut Model) -> Vec<bool> {
    let mut out = vec![false; ops.len()];
    let has_appends = ops.iter().any(|op| matches!(op.step, Step::Append(_)));
    let compared = compared_values(ops);
    let written: std::collections::BTreeSet<ValueId> =
        ops.iter().filter_map(|op| op.step.reset_value()).collect();
    let writable = |v: ValueId| v == ABSENT || has_appends || written.contains(&v);
    // The latest return of a refused cas whose expected value might be seen.
    let last_refusal = ops
        .iter()
        .filter_map(|op| match (op.ret, &op.step) {
            (Some(ret), Step::CasRefused { expected }) if writable(*expected) => Some(ret),
            _ => None,
        })
        .max();
    let unknown: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].ret.is_none() && last_refusal.is_none_or(|r| r < ops[i].call))
        .collect();
    let prefix_budget_ok = unknown.len().saturating_mul(compared.len()) <= UNOBSERVABLE_PREFIX_WORK;
    let compared_bytes: Vec<Vec<u8>> = if has_appends {
        let total: usize = compared.iter().map(|&v| model.bytes(v).len()).sum();
        let appends = unknown
            .iter()
            .filter(|&&i| matches!(ops[i].step, Step::Append(_)))
            .count();
        if total.saturating_mul(appends) <= UNOBSERVABLE_APPEND_WORK {
            compared.iter().map(|&v| model.bytes(v)).collect()
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    for i in unknown {
        out[i] = match ops[i].step {
            Step::Append(suffix) => {
                let text = model.suffix(suffix).as_bytes();
                !compared_bytes.is_empty()
                    && !text.is_empty()
                    && !compared_bytes
                        .iter()
                        .any(|v| v.windows(text.len()).any(|w| w == text))
            }
            _ => match ops[i].step.reset_value() {
                Some(ABSENT) | None => false,
                Some(v) if has_appends => {
                    prefix_budget_ok && !compared.iter().any(|&c| model.may_grow_into(v, c))
                }
                Some(v) => compared.binary_search(&v).is_err(),
            },
        };
    }
    out
}
