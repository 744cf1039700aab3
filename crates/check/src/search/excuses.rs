//! Pruning rule: operations of unknown outcome that could matter only to a refused cas
//! are interchangeable "excuses", merged into one opaque value.

use crate::model::{Model, Step};

use super::SearchOp;
use super::unobservable::{UNOBSERVABLE_APPEND_WORK, UNOBSERVABLE_PREFIX_WORK, compared_values};

/// Which unknown operations are interchangeable "excuses": puts of unknown outcome (and
/// kept by [`unobservable_unknowns`]) whose value no read returns and no cas expects,
/// nor (with appends) any extension of it; and appends of unknown outcome whose text no
/// such value contains. Such an operation can matter only to a refused cas,
/// which needs the value to differ from what it expected, and any of them does that
/// equally: their values, and what appends make of them, are never compared equal to
/// anything. So the search treats them all as writing one opaque value (which appends
/// leave opaque), and, of those available at a configuration (called before the first
/// pending return), tries only the first. Using another available one instead leaves an
/// equivalent set behind: all of them stay available from then on.
///
/// This is what keeps a history with many timed-out writes and refused cases tractable:
/// without it, every choice of which timed-out write explains which refused cas is a
/// different configuration.
pub(super) fn excuses(ops: &[SearchOp], unobservable: &[bool], model: &mut Model) -> Vec<bool> {
    let has_appends = ops.iter().any(|op| matches!(op.step, Step::Append(_)));
    let compared = compared_values(ops);
    let puts = ops
        .iter()
        .zip(unobservable)
        .filter(|(op, gone)| !**gone && op.ret.is_none() && matches!(op.step, Step::Write(_)))
        .count();
    if has_appends && puts.saturating_mul(compared.len()) > UNOBSERVABLE_PREFIX_WORK {
        return vec![false; ops.len()];
    }
    // The bytes of the compared values, to look for appended text in (if affordable).
    let appends = ops
        .iter()
        .zip(unobservable)
        .filter(|(op, gone)| !**gone && op.ret.is_none() && matches!(op.step, Step::Append(_)))
        .count();
    let total: usize = if appends > 0 {
        compared.iter().map(|&v| model.bytes(v).len()).sum()
    } else {
        0
    };
    let compared_bytes: Option<Vec<Vec<u8>>> = (appends > 0
        && total.saturating_mul(appends) <= UNOBSERVABLE_APPEND_WORK)
        .then(|| compared.iter().map(|&v| model.bytes(v)).collect());
    ops.iter()
        .zip(unobservable)
        .map(|(op, &gone)| match op.step {
            _ if gone || op.ret.is_some() => false,
            Step::Write(v) => {
                if has_appends {
                    !compared.iter().any(|&c| model.may_grow_into(v, c))
                } else {
                    compared.binary_search(&v).is_err()
                }
            }
            // An append whose text no compared value contains: every value from it to
            // the next reset contains that text, so nothing compares equal to any of
            // them, exactly like the opaque value.
            Step::Append(suffix) => {
                let text = model.suffix(suffix).as_bytes();
                !text.is_empty()
                    && compared_bytes.as_ref().is_some_and(|values| {
                        !values
                            .iter()
                            .any(|v| v.windows(text.len()).any(|w| w == text))
                    })
            }
            _ => false,
        })
        .collect()
}
