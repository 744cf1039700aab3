//! The log as the WAL holds it in memory: the base and the term of each
//! entry. The payloads live in raft's log (one owner); the WAL needs only
//! the terms, to check appends and compactions.

use super::WalError;
use raft::{Entry, LogIndex, SnapshotMeta, Term};

/// The log as the WAL holds it: the snapshot it continues from and the
/// term of every entry after it (8 bytes an entry, not the entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LogImage {
    /// What the log starts after: index 0 (term 0) until the first
    /// compaction. Invariant: `base.index > 0` implies `base.term > 0`.
    pub(super) base: SnapshotMeta,
    /// The term of the entry at `base.index + i + 1`. Invariant: terms
    /// never decrease along it, starting from `base.term`.
    pub(super) terms: Vec<Term>,
}

impl LogImage {
    pub(super) fn last_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.terms.len() as u64)
    }

    /// The term at `index`: the base's at the base, `None` below the base
    /// or past the end.
    pub(super) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        let offset = index.0.checked_sub(self.base.index.0 + 1)?;
        self.terms.get(usize::try_from(offset).ok()?).copied()
    }

    /// Checks that `new` can be appended: indices contiguous from a first
    /// index in `base.index + 1..=last + 1`, terms non-decreasing from the
    /// entry before.
    pub(super) fn check_append(&self, new: &[Entry]) -> Result<(), WalError> {
        let Some(first) = new.first() else {
            return Ok(());
        };
        let last = self.last_index();
        if first.index <= self.base.index {
            return Err(WalError::InvalidEntries {
                reason: format!(
                    "an entry at {}, at or below the snapshot at {}",
                    first.index, self.base.index
                ),
            });
        }
        if first.index > last.next() {
            return Err(WalError::Gap {
                expected: last.next(),
                got: first.index,
            });
        }
        let mut prev_term = self
            .term_at(first.index.prev())
            .expect("base < first index <= last + 1");
        let mut expected = first.index;
        for e in new {
            if e.index != expected {
                return Err(WalError::InvalidEntries {
                    reason: format!(
                        "indices not contiguous: {} where {expected} belongs",
                        e.index
                    ),
                });
            }
            // Terms never decrease along a Raft log: each leader appends in
            // its own term, which exceeds the terms of the entries it
            // inherited.
            if e.term < prev_term {
                return Err(WalError::InvalidEntries {
                    reason: format!(
                        "term goes back from {prev_term} to {} at {}",
                        e.term, e.index
                    ),
                });
            }
            prev_term = e.term;
            expected = expected.next();
        }
        Ok(())
    }

    /// Replaces the suffix from `new`'s first index with `new`.
    /// Precondition: `check_append(new)` passed.
    pub(super) fn splice(&mut self, new: &[Entry]) {
        if let Some(first) = new.first() {
            self.truncate_from(first.index);
            self.terms.extend(new.iter().map(|e| e.term));
            debug_assert_eq!(self.last_index(), new.last().expect("non-empty").index);
        }
    }

    /// Removes the entries from `index` on. Precondition: `index > base`.
    pub(super) fn truncate_from(&mut self, index: LogIndex) {
        debug_assert!(index > self.base.index);
        self.terms
            .truncate((index.0 - self.base.index.0 - 1) as usize);
    }

    /// The log after compacting up to `base` (§7, Figure 13 step 6): the
    /// terms after it if this log holds `base`'s entry with its term, else
    /// none ("discard the entire log").
    pub(super) fn compacted_to(&self, base: &SnapshotMeta) -> LogImage {
        let terms = if self.term_at(base.index) == Some(base.term) {
            let skip = (base.index.0 - self.base.index.0) as usize;
            self.terms[skip..].to_vec()
        } else {
            Vec::new()
        };
        LogImage {
            base: base.clone(),
            terms,
        }
    }

    /// Checks that `kept` are exactly the entries this log holds after its
    /// base: the same indices, in order, with the same terms.
    pub(super) fn check_holds(&self, kept: &[Entry]) -> Result<(), WalError> {
        if kept.len() != self.terms.len() {
            return Err(WalError::InvalidEntries {
                reason: format!(
                    "{} entries given to keep after the snapshot at {}, but the log holds {}",
                    kept.len(),
                    self.base.index,
                    self.terms.len()
                ),
            });
        }
        let mut expected = self.base.index;
        for (e, &term) in kept.iter().zip(&self.terms) {
            expected = expected.next();
            if e.index != expected || e.term != term {
                return Err(WalError::InvalidEntries {
                    reason: format!(
                        "an entry to keep at {} term {} where the log holds {expected} term {term}",
                        e.index, e.term
                    ),
                });
            }
        }
        Ok(())
    }
}
