//! What the search reports when it fails: the best prefix found and the operations
//! stuck after it.

use super::Frame;
use super::links::{Links, NIL};

/// A candidate counterexample: a prefix (a snapshot of the stack), the operations stuck
/// after it, and the key it is ranked by. The snapshot is kept in step with the stack
/// cheaply: taking a new one copies only what was popped and pushed since the last.
pub(super) struct Record {
    pub(super) key: Option<(u64, u64)>,
    pub(super) prefix: Vec<usize>,
    pub(super) stuck: Vec<usize>,
    /// Invariant: `prefix[..valid]` equals the bottom `valid` operations of the stack.
    pub(super) valid: usize,
}

impl Record {
    pub(super) fn new() -> Self {
        Record {
            key: None,
            prefix: Vec::new(),
            stuck: Vec::new(),
            valid: 0,
        }
    }

    /// The stack was popped down to `len`.
    pub(super) fn popped(&mut self, len: usize) {
        self.valid = self.valid.min(len);
    }

    pub(super) fn take(&mut self, key: (u64, u64), stack: &[Frame], stuck: Vec<usize>) {
        self.key = Some(key);
        self.prefix.truncate(self.valid);
        self.prefix.extend(stack[self.valid..].iter().map(|f| f.op));
        self.valid = stack.len();
        self.stuck = stuck;
        debug_assert!(self.prefix.iter().eq(stack.iter().map(|f| &f.op)));
    }
}

/// The known operations that may go next in the current configuration: their calls
/// come before the first pending return. (Operations of unknown outcome are never
/// "stuck": they have no result the model could reject.)
pub(super) fn candidates(links: &Links, events: &[(u64, bool, usize)]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut node = links.next[NIL as usize];
    while node != NIL {
        let (_, is_return, op) = events[node as usize - 1];
        if is_return {
            break;
        }
        out.push(op);
        node = links.next[node as usize];
    }
    out
}
