//! Log matching (§5.3): entries with the same index and term are preceded by
//! identical logs; a committed entry is never overwritten.

use super::{Invariants, ViolationKind, chain_hash, slot};
use crate::queue::Nanos;
use replica::EntryDigest;

impl Invariants {
    /// Log matching (§5.3): entries with the same index and term are
    /// preceded by identical logs. Checked on every persisted batch.
    pub fn persisted(&mut self, at: Nanos, node: u64, entries: &[EntryDigest]) {
        let n = slot(node);
        let Some(first) = entries.first() else { return };
        let keep = first.index.0 as usize;
        if keep == 0 || keep > self.chains[n].len() {
            let len = self.chains[n].len() - 1;
            self.violate(
                ViolationKind::LogMatching,
                at,
                node,
                format!(
                    "persisted entries from {} after a log ending at i{len}",
                    first.index
                ),
            );
            return;
        }
        // §5.4: a committed entry is never replaced, so a node that holds
        // the entry applied at an index never persists another one there.
        // (A node that never held it, such as a deposed leader appending its
        // own proposals, may: those entries will never commit.)
        for entry in entries {
            let i = entry.index.0 as usize;
            if let (Some(committed), Some(&held)) =
                (self.applied.get(&entry.index), self.terms[n].get(i))
                && held == committed.term
                && committed != entry
            {
                self.violate(
                    ViolationKind::CommittedEntryOverwritten,
                    at,
                    node,
                    format!(
                        "persisted {} of {} over the committed {} of {}",
                        entry.index, entry.term, committed.index, committed.term
                    ),
                );
            }
        }
        self.chains[n].truncate(keep);
        self.terms[n].truncate(keep);
        self.extend(at, node, entries);
    }

    /// Appends `entries` to the mirror of `node`'s durable log, checking log
    /// matching. Precondition: they follow the mirror's last entry.
    pub(super) fn extend(&mut self, at: Nanos, node: u64, entries: &[EntryDigest]) {
        let n = slot(node);
        debug_assert!(
            entries
                .first()
                .is_none_or(|e| e.index.0 as usize == self.chains[n].len())
        );
        for entry in entries {
            self.payloads
                .entry((entry.index, entry.term))
                .or_insert(entry.payload);
            let prev = *self.chains[n].last().expect("chain holds index 0");
            let hash = chain_hash(prev, entry);
            self.chains[n].push(hash);
            self.terms[n].push(entry.term);
            match self.chain_at.get(&(entry.index, entry.term)) {
                Some(&seen) if seen != hash => {
                    self.violate(
                        ViolationKind::LogMatching,
                        at,
                        node,
                        format!(
                            "entry {} of {} has a different history than on another node",
                            entry.index, entry.term
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    self.chain_at.insert((entry.index, entry.term), hash);
                }
            }
        }
    }
}
