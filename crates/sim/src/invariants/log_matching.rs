//! Log matching (§5.3): entries with the same index and term are preceded by
//! identical logs; a committed entry is never overwritten.

use super::{Invariants, ViolationKind, chain_hash, slot};
use crate::queue::Nanos;
use raft::Term;
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
        // §5.4.3 (Leader Completeness): an entry committed by the leader of
        // term T is in the log of every leader of a term after T, and the
        // leader of T never replaces its own entries; so every entry of a
        // term >= T written at its index is that entry. An entry of an
        // older term may still replace it on a node that has not yet heard
        // of term T (a deposed leader appending its own proposals, or a
        // paused ex-leader replaying queued messages of a leader elected
        // before the commit: seed 585). Such a node was not counted in the
        // commit, and the leader of T or a later one will repair it.
        for entry in entries {
            let i = entry.index.0 as usize;
            if let (Some(committed), Some(&commit_term)) =
                (self.applied.get(&entry.index), self.commit_terms.get(i))
                && commit_term != Term(0)
                && entry.term >= commit_term
                && committed != entry
            {
                self.violate(
                    ViolationKind::CommittedEntryOverwritten,
                    at,
                    node,
                    format!(
                        "persisted {} of {} over the committed {} of {} (committed in {commit_term})",
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
