//! The replicated log as this node holds it in memory, with the four marks
//! that say how far each duty has got: handed out for persistence, reported
//! persisted, committed, handed out for applying, applied.
//!
//! The log after the last snapshot is kept in memory, so the node can answer
//! `entry(i)` and build appends without asking storage. Everything up to the
//! snapshot's index is compacted away (§7): the snapshot stands for it.

use crate::types::{Entry, EntryPayload, LogIndex, Membership, RejectHint, Snapshot, Term};

/// The in-memory log and its progress marks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct RaftLog {
    /// The last snapshot (§7): it stands for every entry up to
    /// `snapshot.meta.index` (0 and empty when there is none). Invariant:
    /// `snapshot.meta.index <= committed` and `<= applying`: only committed,
    /// applied state is ever compacted. So `first_index() <= applied + 1`,
    /// except between the hand-out of a snapshot received from a leader and
    /// the driver's `snapshot_installed` (then `applying` is at it).
    snapshot: Snapshot,
    /// A snapshot received from a leader and not yet handed out to the driver.
    /// Invariant: when set, it equals `snapshot`.
    unstable_snapshot: Option<Snapshot>,
    /// A received snapshot handed out to the driver and not yet reported
    /// installed. Invariant: `snapshot.meta.index <= applied` unless this or
    /// `unstable_snapshot` is set.
    installing: Option<LogIndex>,
    /// The entries after the snapshot. Invariant: `entries[k].index ==
    /// snapshot.meta.index + k + 1` (contiguous after the snapshot) and terms
    /// are non-decreasing along the log, starting at or above the snapshot's
    /// term (§5.3: a leader only appends entries of its own term, and terms
    /// only grow).
    entries: Vec<Entry>,
    /// The highest index known committed. Invariant: `committed <=
    /// last_index()`, and it never decreases (§5.4.2).
    committed: LogIndex,
    /// The highest index the driver reported durable. Invariant: `persisted <
    /// unstable_from`: only what was handed out can have been persisted.
    persisted: LogIndex,
    /// The first index not yet handed out in `Ready::entries`. Invariant:
    /// `first_index() <= unstable_from <= last_index() + 1`.
    unstable_from: LogIndex,
    /// The highest index handed out in `Ready::committed_entries`. Invariant:
    /// `applied <= applying <= min(committed, persisted)`: only committed
    /// entries this node holds durably are applied.
    applying: LogIndex,
    /// The highest index the driver reported applied.
    applied: LogIndex,
    /// The indices of the membership entries in `entries`, ascending.
    /// Invariant: exactly those entries whose payload is a `Membership`. The
    /// configuration in force is the last of them, or the snapshot's (§4.1:
    /// a server uses the latest configuration in its log, committed or not).
    memberships: Vec<LogIndex>,
}

/// Why [`crate::RawNode::compact`] refused to compact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactError {
    /// The state machine has not applied `index` yet (only applied state can
    /// be snapshotted).
    NotApplied {
        /// The index asked for.
        index: LogIndex,
        /// The applied index.
        applied: LogIndex,
    },
    /// The log is already compacted up to `snapshot_index`, at or past
    /// `index`.
    AlreadyCompacted {
        /// The index asked for.
        index: LogIndex,
        /// The current snapshot's index.
        snapshot_index: LogIndex,
    },
}

impl std::fmt::Display for CompactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompactError::NotApplied { index, applied } => {
                write!(f, "cannot compact to {index}: only {applied} is applied")
            }
            CompactError::AlreadyCompacted {
                index,
                snapshot_index,
            } => write!(
                f,
                "cannot compact to {index}: already compacted to {snapshot_index}"
            ),
        }
    }
}

impl std::error::Error for CompactError {}

/// An AppendEntries tried to overwrite a committed entry (see
/// [`crate::StepError::ConflictsWithCommitted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CommittedConflict(pub LogIndex);

impl RaftLog {
    /// An empty log whose configuration, until an entry changes it, is
    /// `bootstrap` (the founding members; empty for a node that will join
    /// an existing cluster).
    pub fn new(bootstrap: Membership) -> RaftLog {
        let mut log = RaftLog {
            unstable_from: LogIndex(1),
            ..RaftLog::default()
        };
        log.snapshot.meta.membership = bootstrap;
        log
    }

    /// The configuration in force: the latest in the log (§4.1), or the
    /// snapshot's.
    pub fn membership(&self) -> &Membership {
        match self.memberships.last() {
            Some(&i) => match &self.entry(i).expect("indexed entries are held").payload {
                EntryPayload::Membership(m) => m,
                _ => unreachable!("memberships indexes membership entries only"),
            },
            None => &self.snapshot.meta.membership,
        }
    }

    /// The index of the entry that set the configuration in force (the
    /// snapshot's index if it came with the snapshot).
    pub fn membership_index(&self) -> LogIndex {
        self.memberships
            .last()
            .copied()
            .unwrap_or(self.snapshot.meta.index)
    }

    /// The configuration as of `index` (at least the snapshot's index): the
    /// latest set at or before it.
    pub fn membership_at(&self, index: LogIndex) -> Membership {
        let upto = self.memberships.partition_point(|&i| i <= index);
        match upto.checked_sub(1).map(|k| self.memberships[k]) {
            Some(i) => match &self.entry(i).expect("indexed entries are held").payload {
                EntryPayload::Membership(m) => m.clone(),
                _ => unreachable!("memberships indexes membership entries only"),
            },
            None => self.snapshot.meta.membership.clone(),
        }
    }

    /// Re-derives `memberships` from the entries.
    fn index_memberships(&mut self) {
        self.memberships = self
            .entries
            .iter()
            .filter(|e| matches!(e.payload, EntryPayload::Membership(_)))
            .map(|e| e.index)
            .collect();
    }

    /// A log rebuilt from durable storage: everything is persisted, nothing is
    /// applied yet (the state machine is rebuilt by re-applying up to
    /// `committed`). The caller has validated the entries.
    ///
    /// With a snapshot, the driver has already installed it into the state
    /// machine, so applying resumes after it, and the commit index is at
    /// least its index.
    pub fn restore(
        bootstrap: Membership,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        committed: LogIndex,
    ) -> RaftLog {
        let snapshot = snapshot.unwrap_or_else(|| {
            let mut empty = Snapshot::default();
            empty.meta.membership = bootstrap;
            empty
        });
        let base = snapshot.meta.index;
        let last = LogIndex(base.0 + entries.len() as u64);
        let committed = committed.max(base);
        debug_assert!(committed <= last);
        let mut log = RaftLog {
            snapshot,
            unstable_snapshot: None,
            installing: None,
            entries,
            committed,
            persisted: last,
            unstable_from: last.next(),
            applying: base,
            applied: base,
            memberships: Vec::new(),
        };
        log.index_memberships();
        log.debug_check();
        log
    }

    /// The index the snapshot stands for (0 when there is none).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.meta.index
    }

    /// The current snapshot (index 0 and empty when there is none).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The first index held as an entry (`snapshot_index() + 1`).
    pub fn first_index(&self) -> LogIndex {
        self.snapshot_index().next()
    }

    /// The index of the last entry (the snapshot's when no entry follows
    /// it), 0 when empty.
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index().0 + self.entries.len() as u64)
    }

    /// The term of the last entry (the snapshot's when no entry follows it),
    /// 0 when empty.
    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.meta.term, |e| e.term)
    }

    /// The term at `index`: `Some(Term(0))` for the empty prefix at 0, the
    /// snapshot's term at its index, `None` past the end or below the
    /// snapshot (compacted away).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        if index == self.snapshot_index() {
            return Some(self.snapshot.meta.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let pos = index.0.checked_sub(self.first_index().0)?;
        self.entries.get(usize::try_from(pos).ok()?)
    }

    /// The committed index.
    pub fn committed(&self) -> LogIndex {
        self.committed
    }

    /// The highest index reported durable.
    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// The highest index reported applied.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// How many entries are not yet committed.
    pub fn uncommitted_len(&self) -> u64 {
        self.last_index().0 - self.committed.0
    }

    /// §5.4.1: a log is at least as up-to-date as ours if its last term is
    /// higher, or the last terms are equal and it is at least as long.
    pub fn is_up_to_date(&self, last_term: Term, last_index: LogIndex) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends a new entry of `term` at the end (the leader's own appends,
    /// which never truncate: Leader Append-Only, Figure 3).
    pub fn append_new(&mut self, term: Term, payload: EntryPayload) -> LogIndex {
        debug_assert!(term >= self.last_term(), "terms never decrease along a log");
        let index = self.last_index().next();
        if matches!(payload, EntryPayload::Membership(_)) {
            self.memberships.push(index);
        }
        self.entries.push(Entry {
            term,
            index,
            payload,
        });
        index
    }

    /// Stores what a leader sent after a successful consistency check at
    /// `entries[0].index - 1`. §5.3: "If an existing entry conflicts with a
    /// new one (same index but different terms), delete the existing entry
    /// and all that follow it; append any new entries not already in the
    /// log." Entries already present with the same term are kept as they are,
    /// so a stale, duplicated or reordered AppendEntries never truncates
    /// entries this node already acknowledged.
    pub fn append_from_leader(&mut self, entries: &[Entry]) -> Result<(), CommittedConflict> {
        // Entries at or below the snapshot are committed here and so match
        // any leader's (§5.4); skip them.
        let base = self.snapshot_index();
        let entries = &entries[entries.partition_point(|e| e.index <= base)..];
        let Some(conflict) = entries
            .iter()
            .position(|e| self.term_at(e.index) != Some(e.term))
        else {
            return Ok(()); // Everything is already here.
        };
        let first_new = entries[conflict].index;
        if first_new <= self.last_index() {
            // A real conflict: truncation. Leader Completeness (§5.4) means a
            // correct leader never conflicts with a committed entry.
            if first_new <= self.committed {
                return Err(CommittedConflict(first_new));
            }
            self.truncate_from(first_new);
        }
        debug_assert_eq!(first_new, self.last_index().next());
        for e in &entries[conflict..] {
            if matches!(e.payload, EntryPayload::Membership(_)) {
                self.memberships.push(e.index);
            }
        }
        self.entries.extend_from_slice(&entries[conflict..]);
        Ok(())
    }

    /// Drops `index` and everything after it. The marks that covered the
    /// dropped entries move back: they must be handed out (and persisted)
    /// again.
    fn truncate_from(&mut self, index: LogIndex) {
        debug_assert!(
            index > self.committed,
            "committed entries are never truncated"
        );
        debug_assert!(index > self.snapshot_index());
        self.entries
            .truncate((index.0 - self.first_index().0) as usize);
        // §4.1: a configuration truncated away is no longer in force; the
        // one before it is again.
        let kept = self.memberships.partition_point(|&i| i < index);
        self.memberships.truncate(kept);
        self.unstable_from = self.unstable_from.min(index);
        self.persisted = self.persisted.min(index.prev());
    }

    /// Raises the commit index to `index` (never lowers it).
    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        debug_assert!(index <= self.last_index(), "cannot commit past the log");
        if index > self.committed {
            self.committed = index;
            true
        } else {
            false
        }
    }

    /// The hint a follower sends when the consistency check at `prev` fails
    /// (§5.3, "the follower can include the term of the conflicting entry and
    /// the first index it stores for that term").
    pub fn reject_hint(&self, prev: LogIndex) -> RejectHint {
        let last_index = self.last_index();
        match self.term_at(prev) {
            None => RejectHint {
                last_index,
                conflict_term: None,
                conflict_first_index: last_index.next(),
            },
            Some(term) => {
                // Walk back over the entries of `term`, but not into the
                // committed prefix: it matches any leader (§5.4), so the
                // leader never needs to go below `committed + 1`.
                let floor = self.committed.next();
                let mut first = prev;
                while first > floor && self.term_at(first.prev()) == Some(term) {
                    first = first.prev();
                }
                RejectHint {
                    last_index,
                    conflict_term: Some(term),
                    conflict_first_index: first,
                }
            }
        }
    }

    /// The largest index `<= at_most` whose term is `<= term`, found by binary
    /// search because terms are non-decreasing along the log.
    pub fn last_index_with_term_at_most(&self, term: Term, at_most: LogIndex) -> LogIndex {
        let base = self.snapshot_index();
        let hi = at_most.min(self.last_index());
        if hi < base {
            return LogIndex(0); // Compacted away: unknown.
        }
        // Entries (base, hi] are candidates; partition_point finds how many
        // have term <= `term`.
        let n = self.entries[..(hi.0 - base.0) as usize].partition_point(|e| e.term <= term);
        if n == 0 && self.snapshot.meta.term > term {
            return LogIndex(0);
        }
        LogIndex(base.0 + n as u64)
    }

    /// Up to `max_count` entries from `from`, bounded by `max_bytes` of
    /// payload, but always at least one if there is one (an entry larger than
    /// the byte bound must still be sent).
    pub fn entries_for_append(
        &self,
        from: LogIndex,
        max_count: usize,
        max_bytes: usize,
    ) -> Vec<Entry> {
        let Some(start) = from.0.checked_sub(self.first_index().0) else {
            return Vec::new(); // Compacted: the caller sends a snapshot.
        };
        let Ok(start) = usize::try_from(start) else {
            return Vec::new();
        };
        if start >= self.entries.len() {
            return Vec::new();
        }
        let mut bytes = 0usize;
        let mut end = start;
        for e in self.entries[start..].iter().take(max_count) {
            let len = e.payload_len();
            if end > start && bytes.saturating_add(len) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(len);
            end += 1;
        }
        self.entries[start..end].to_vec()
    }

    /// Whether some entries were not yet handed out for persistence.
    pub fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Hands out the entries not yet handed out, for the driver to persist.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let start = (self.unstable_from.0 - self.first_index().0) as usize;
        let out = self.entries[start..].to_vec();
        self.unstable_from = self.last_index().next();
        out
    }

    /// Records that entries up to `index`, whose term is `term`, are durable.
    /// Ignored when `index` was never handed out or the log no longer has
    /// `term` there (the entries were replaced after being handed out).
    pub fn stable_to(&mut self, term: Term, index: LogIndex) -> bool {
        if index.0 == 0 || index >= self.unstable_from || self.term_at(index) != Some(term) {
            return false;
        }
        if index > self.persisted {
            self.persisted = index;
            true
        } else {
            false
        }
    }

    /// The end of what may be applied now: committed and durable here.
    fn applicable_to(&self) -> LogIndex {
        self.committed.min(self.persisted)
    }

    /// Whether committed entries wait to be handed out for applying.
    pub fn has_next_committed(&self) -> bool {
        self.applicable_to() > self.applying
    }

    /// Hands out the committed, durable entries not yet handed out.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        let hi = self.applicable_to();
        if hi <= self.applying {
            return Vec::new();
        }
        let base = self.snapshot_index().0;
        let out = self.entries[(self.applying.0 - base) as usize..(hi.0 - base) as usize].to_vec();
        self.applying = hi;
        out
    }

    /// Records that the state machine applied up to `index`. Values beyond
    /// what was handed out are clamped: the driver cannot have applied them.
    pub fn applied_to(&mut self, index: LogIndex) {
        let index = index.min(self.applying);
        if index > self.applied {
            self.applied = index;
        }
    }

    /// Compacts the log up to `index` (§7), which the state machine has
    /// applied and snapshotted into `data`; `voters` is the configuration at
    /// `index`.
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>) -> Result<(), CompactError> {
        if index <= self.snapshot_index() {
            return Err(CompactError::AlreadyCompacted {
                index,
                snapshot_index: self.snapshot_index(),
            });
        }
        if index > self.applied {
            return Err(CompactError::NotApplied {
                index,
                applied: self.applied,
            });
        }
        let term = self.term_at(index).expect("applied entries are in the log");
        // §7: the snapshot carries the configuration as of its last entry.
        let membership = self.membership_at(index);
        let drop = (index.0 - self.snapshot_index().0) as usize;
        self.entries.drain(..drop);
        let kept = self.memberships.partition_point(|&i| i <= index);
        self.memberships.drain(..kept);
        self.snapshot = Snapshot {
            meta: crate::SnapshotMeta {
                index,
                term,
                membership,
            },
            data,
        };
        self.debug_check();
        Ok(())
    }

    /// Installs a snapshot received from a leader (§7, Figure 13 receiver
    /// implementation, steps 6–8). Returns false, changing nothing, when it
    /// is at or below the commit index: what it covers is committed here
    /// already, and installing it would move the state machine backwards.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let index = snapshot.meta.index;
        if index <= self.committed {
            return false;
        }
        if self.term_at(index) == Some(snapshot.meta.term) {
            // "If existing log entry has same index and term as snapshot's
            // last included entry, retain log entries following it."
            let drop = (index.0 - self.snapshot_index().0) as usize;
            self.entries.drain(..drop);
        } else {
            // "Discard the entire log."
            self.entries.clear();
        }
        // The configuration is the snapshot's, or a later one kept after it.
        self.snapshot = snapshot.clone();
        self.index_memberships();
        self.unstable_snapshot = Some(snapshot);
        self.committed = index;
        // Everything up to `index` is durable once the driver has persisted
        // the snapshot, which it does before anything else of this ready.
        // Entries handed out beyond a discarded log must be handed out again.
        self.persisted = self.persisted.max(index).min(self.last_index());
        self.unstable_from = self
            .unstable_from
            .max(index.next())
            .min(self.last_index().next());
        // The snapshot replaces applying the entries it covers.
        self.applying = self.applying.max(index);
        self.debug_check();
        true
    }

    /// Whether a received snapshot waits to be handed out.
    pub fn has_unstable_snapshot(&self) -> bool {
        self.unstable_snapshot.is_some()
    }

    /// Hands out the received snapshot, for the driver to persist and install.
    pub fn take_unstable_snapshot(&mut self) -> Option<Snapshot> {
        let s = self.unstable_snapshot.take();
        if let Some(s) = &s {
            self.installing = Some(s.meta.index);
        }
        s
    }

    /// Records that the state machine installed the snapshot at `index`.
    pub fn snapshot_installed(&mut self, index: LogIndex) {
        if index <= self.applying && index > self.applied {
            self.applied = index;
        }
        if self.installing.is_some_and(|i| i <= index) {
            self.installing = None;
        }
    }

    /// Checks the invariants stated on the fields (cheaply: only the tail of
    /// the log is examined).
    pub fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let last = self.last_index();
            assert!(
                self.committed <= last,
                "commit {} > last {}",
                self.committed,
                last
            );
            assert!(self.persisted < self.unstable_from);
            assert!(self.unstable_from >= self.first_index() && self.unstable_from <= last.next());
            let base = self.snapshot_index();
            assert!(base <= self.committed, "snapshot {base} above commit");
            assert!(base <= self.applying, "snapshot {base} not applied");
            if let Some(first) = self.entries.first() {
                assert_eq!(first.index, base.next());
                assert!(first.term >= self.snapshot.meta.term);
            }
            if let Some(s) = &self.unstable_snapshot {
                assert_eq!(s, &self.snapshot);
            }
            assert!(
                base <= self.applied
                    || self.unstable_snapshot.is_some()
                    || self.installing.is_some(),
                "snapshot {base} above applied {} with no install pending",
                self.applied
            );
            assert!(self.applied <= self.applying);
            assert!(self.applying <= self.committed.min(self.persisted));
            if let Some(e) = self.entries.last() {
                assert_eq!(e.index, last);
            }
            if self.entries.len() >= 2 {
                let n = self.entries.len();
                assert!(self.entries[n - 2].term <= self.entries[n - 1].term);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(term: u64, index: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Command(vec![index as u8]),
        }
    }

    /// A persisted log with these terms at indices 1, 2, ...
    fn log_with_terms(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| e(t, i as u64 + 1))
            .collect();
        RaftLog::restore(Membership::default(), None, entries, LogIndex(0))
    }

    #[test]
    fn term_at_zero_is_zero_and_past_the_end_is_none() {
        let log = log_with_terms(&[1, 1, 2]);
        assert_eq!(log.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(4)), None);
    }

    #[test]
    fn up_to_date_compares_last_term_then_length_5_4_1() {
        let log = log_with_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(Term(3), LogIndex(1)));
        assert!(log.is_up_to_date(Term(2), LogIndex(3)));
        assert!(!log.is_up_to_date(Term(2), LogIndex(2)));
        assert!(!log.is_up_to_date(Term(1), LogIndex(9)));
    }

    #[test]
    fn append_truncates_only_from_the_first_real_conflict() {
        let mut log = log_with_terms(&[1, 1, 1, 1]);
        // Entries 2..3 match, 4 conflicts (term 2), 5 is new.
        log.append_from_leader(&[e(1, 2), e(1, 3), e(2, 4), e(2, 5)])
            .unwrap();
        let terms: Vec<u64> = (1..=5)
            .map(|i| log.term_at(LogIndex(i)).unwrap().0)
            .collect();
        assert_eq!(terms, vec![1, 1, 1, 2, 2]);
        // The truncation moved the persistence mark back before index 4.
        assert_eq!(log.persisted(), LogIndex(3));
        assert_eq!(log.take_unstable(), vec![e(2, 4), e(2, 5)]);
    }

    #[test]
    fn stale_append_of_a_matching_prefix_does_not_truncate() {
        let mut log = log_with_terms(&[1, 1, 1, 1]);
        log.append_from_leader(&[e(1, 2)]).unwrap();
        assert_eq!(log.last_index(), LogIndex(4));
        assert!(!log.has_unstable());
    }

    #[test]
    fn append_refuses_to_overwrite_committed_entries() {
        let mut log = log_with_terms(&[1, 1, 1]);
        log.commit_to(LogIndex(2));
        assert_eq!(
            log.append_from_leader(&[e(2, 2)]),
            Err(CommittedConflict(LogIndex(2)))
        );
        assert_eq!(log.last_index(), LogIndex(3));
    }

    #[test]
    fn reject_hint_names_the_conflicting_term_and_its_first_index() {
        let log = log_with_terms(&[1, 2, 2, 2, 3]);
        let h = log.reject_hint(LogIndex(4));
        assert_eq!(h.conflict_term, Some(Term(2)));
        assert_eq!(h.conflict_first_index, LogIndex(2));
        assert_eq!(h.last_index, LogIndex(5));
        let h = log.reject_hint(LogIndex(9));
        assert_eq!(h.conflict_term, None);
        assert_eq!(h.conflict_first_index, LogIndex(6));
    }

    #[test]
    fn reject_hint_never_points_into_the_committed_prefix() {
        let mut log = log_with_terms(&[2, 2, 2, 2]);
        log.commit_to(LogIndex(2));
        assert_eq!(
            log.reject_hint(LogIndex(4)).conflict_first_index,
            LogIndex(3)
        );
    }

    #[test]
    fn last_index_with_term_at_most_binary_searches() {
        let log = log_with_terms(&[1, 1, 3, 3, 5]);
        assert_eq!(
            log.last_index_with_term_at_most(Term(3), LogIndex(5)),
            LogIndex(4)
        );
        assert_eq!(
            log.last_index_with_term_at_most(Term(2), LogIndex(5)),
            LogIndex(2)
        );
        assert_eq!(
            log.last_index_with_term_at_most(Term(3), LogIndex(3)),
            LogIndex(3)
        );
        assert_eq!(
            log.last_index_with_term_at_most(Term(0), LogIndex(5)),
            LogIndex(0)
        );
    }

    #[test]
    fn commit_to_only_raises_and_says_whether_it_moved() {
        let mut log = log_with_terms(&[1, 1, 1]);
        assert!(log.commit_to(LogIndex(2)));
        assert!(!log.commit_to(LogIndex(2)), "the same index moves nothing");
        assert!(!log.commit_to(LogIndex(1)), "never lowered (§5.4.2)");
        assert_eq!(log.committed(), LogIndex(2));
        assert!(log.commit_to(LogIndex(3)));
        assert_eq!(log.committed(), LogIndex(3));
    }

    #[test]
    fn last_index_with_term_at_most_answers_at_and_below_the_snapshot() {
        // Snapshot at 3 (term 2); entries 4 and 5 of term 3.
        let mut log = applied_log(&[1, 1, 2, 3, 3]);
        log.compact(LogIndex(3), vec![]).unwrap();
        let at_most = |log: &RaftLog, term: u64, index: u64| {
            log.last_index_with_term_at_most(Term(term), LogIndex(index))
        };
        // No entry after the snapshot qualifies, but the snapshot's own
        // last entry does: its term equals the one asked for.
        assert_eq!(at_most(&log, 2, 5), LogIndex(3));
        // Bounded exactly at the snapshot's index.
        assert_eq!(at_most(&log, 2, 3), LogIndex(3));
        assert_eq!(at_most(&log, 3, 3), LogIndex(3));
        // Below the snapshot: compacted away, unknown.
        assert_eq!(at_most(&log, 2, 2), LogIndex(0));
        // A term below the snapshot's: unknown too.
        assert_eq!(at_most(&log, 1, 5), LogIndex(0));
        assert_eq!(at_most(&log, 3, 5), LogIndex(5));
        // Snapshot at 3 of term 1, entries of term 3: asked for term 2, the
        // snapshot's entry (term 1 <= 2) is the answer.
        let mut log = applied_log(&[1, 1, 1, 3, 3]);
        log.compact(LogIndex(3), vec![]).unwrap();
        assert_eq!(at_most(&log, 2, 5), LogIndex(3));
    }

    #[test]
    fn entries_for_append_fills_its_byte_bound_exactly() {
        let mut log = RaftLog::new(Membership::default());
        for n in [10usize, 10, 10] {
            log.append_new(Term(1), EntryPayload::Command(vec![0; n]));
        }
        assert_eq!(log.entries_for_append(LogIndex(1), 10, 20).len(), 2);
        assert_eq!(log.entries_for_append(LogIndex(1), 10, 19).len(), 1);
        assert_eq!(log.entries_for_append(LogIndex(1), 10, 30).len(), 3);
    }

    #[test]
    fn new_entries_are_unstable_until_handed_out() {
        let mut log = RaftLog::new(Membership::default());
        assert!(!log.has_unstable());
        log.append_new(Term(1), EntryPayload::Noop);
        assert!(log.has_unstable());
        assert_eq!(log.take_unstable().len(), 1);
        assert!(!log.has_unstable());
        log.append_from_leader(&[e(1, 2)]).unwrap();
        assert!(log.has_unstable(), "a leader's entries too");
    }

    #[test]
    fn stable_to_says_whether_the_durable_mark_moved() {
        let mut log = RaftLog::new(Membership::default());
        log.append_new(Term(1), EntryPayload::Noop);
        log.append_new(Term(1), EntryPayload::Noop);
        log.take_unstable();
        assert!(log.stable_to(Term(1), LogIndex(2)));
        assert!(!log.stable_to(Term(1), LogIndex(2)), "a repeated report");
        assert!(!log.stable_to(Term(1), LogIndex(1)), "an older report");
        assert_eq!(log.persisted(), LogIndex(2));
    }

    #[test]
    fn entries_for_append_respects_count_and_bytes_but_sends_one_oversized() {
        let mut log = RaftLog::new(Membership::default());
        for n in [10usize, 10, 10, 100] {
            log.append_new(Term(1), EntryPayload::Command(vec![0; n]));
        }
        assert_eq!(log.entries_for_append(LogIndex(1), 2, 1000).len(), 2);
        assert_eq!(log.entries_for_append(LogIndex(1), 10, 25).len(), 2);
        assert_eq!(log.entries_for_append(LogIndex(4), 10, 25).len(), 1);
        assert!(log.entries_for_append(LogIndex(5), 10, 25).is_empty());
    }

    #[test]
    fn committed_entries_wait_for_persistence() {
        let mut log = RaftLog::new(Membership::default());
        log.append_new(Term(1), EntryPayload::Noop);
        log.append_new(Term(1), EntryPayload::Noop);
        log.commit_to(LogIndex(2));
        assert!(!log.has_next_committed());
        assert_eq!(log.take_unstable().len(), 2);
        assert!(log.stable_to(Term(1), LogIndex(1)));
        assert_eq!(log.take_committed().len(), 1);
        assert!(log.stable_to(Term(1), LogIndex(2)));
        assert_eq!(log.take_committed()[0].index, LogIndex(2));
        log.applied_to(LogIndex(9));
        assert_eq!(log.applied(), LogIndex(2));
        log.debug_check();
    }

    /// A log with these terms at 1.., all committed and applied.
    fn applied_log(terms: &[u64]) -> RaftLog {
        let mut log = log_with_terms(terms);
        let last = log.last_index();
        log.commit_to(last);
        log.take_committed();
        log.applied_to(last);
        log
    }

    #[test]
    fn compaction_keeps_indices_terms_and_appends_working_7() {
        let mut log = applied_log(&[1, 1, 2, 2, 3]);
        log.compact(LogIndex(3), b"s".to_vec()).unwrap();
        assert_eq!(log.first_index(), LogIndex(4));
        assert_eq!(log.last_index(), LogIndex(5));
        assert_eq!(log.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term_at(LogIndex(2)), None);
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.entry(LogIndex(4)), Some(&e(2, 4)));
        assert!(log.entries_for_append(LogIndex(3), 10, 100).is_empty());
        assert_eq!(log.entries_for_append(LogIndex(4), 10, 100).len(), 2);
        assert_eq!(
            log.last_index_with_term_at_most(Term(2), LogIndex(5)),
            LogIndex(4)
        );
        assert_eq!(
            log.last_index_with_term_at_most(Term(1), LogIndex(5)),
            LogIndex(0)
        );
        // Appending after the snapshot, and a stale append reaching below
        // it, work and do not truncate.
        log.append_from_leader(&[e(2, 3), e(2, 4), e(3, 5), e(3, 6)])
            .unwrap();
        assert_eq!(log.last_index(), LogIndex(6));
        assert_eq!(log.take_unstable(), vec![e(3, 6)]);
        log.debug_check();
        // Compacting everything leaves the snapshot as the last entry.
        log.stable_to(Term(3), LogIndex(6));
        log.commit_to(LogIndex(6));
        log.take_committed();
        log.applied_to(LogIndex(6));
        log.compact(LogIndex(6), vec![]).unwrap();
        assert_eq!(
            (log.first_index(), log.last_index()),
            (LogIndex(7), LogIndex(6))
        );
        assert_eq!(log.last_term(), Term(3));
        assert!(log.is_up_to_date(Term(3), LogIndex(6)));
        log.debug_check();
    }

    #[test]
    fn install_below_or_at_commit_is_refused_and_above_it_resets_the_marks_7() {
        let mut log = applied_log(&[1, 1, 1]);
        let snap = |index: u64, term: u64| Snapshot {
            meta: crate::SnapshotMeta {
                index: LogIndex(index),
                term: Term(term),
                membership: Membership::default(),
            },
            data: vec![],
        };
        assert!(!log.install_snapshot(snap(3, 1)));
        assert!(!log.install_snapshot(snap(2, 1)));
        assert!(log.install_snapshot(snap(9, 2)));
        assert_eq!(
            (log.first_index(), log.last_index()),
            (LogIndex(10), LogIndex(9))
        );
        assert_eq!(log.committed(), LogIndex(9));
        assert!(!log.has_next_committed(), "the snapshot replaces applying");
        assert!(log.has_unstable_snapshot());
        assert_eq!(
            log.take_unstable_snapshot().map(|s| s.meta.index),
            Some(LogIndex(9))
        );
        assert!(!log.has_unstable_snapshot(), "handed out once");
        assert_eq!(log.applied(), LogIndex(3), "until the driver reports it");
        log.snapshot_installed(LogIndex(9));
        assert_eq!(log.applied(), LogIndex(9));
        log.debug_check();
    }

    #[test]
    fn a_snapshot_reported_installed_moves_applied_only_forward_and_within_what_was_handed_out() {
        let snap = |index: u64| Snapshot {
            meta: crate::SnapshotMeta {
                index: LogIndex(index),
                term: Term(2),
                membership: Membership::default(),
            },
            data: vec![],
        };
        let mut log = applied_log(&[1, 1, 1]);
        assert!(log.install_snapshot(snap(9)));
        log.take_unstable_snapshot();
        assert_eq!(log.installing, Some(LogIndex(9)));
        // A report past what was handed out: the driver cannot have
        // installed it.
        log.snapshot_installed(LogIndex(12));
        assert_eq!(log.applied(), LogIndex(3));
        log.snapshot_installed(LogIndex(9));
        assert_eq!(log.applied(), LogIndex(9));
        assert_eq!(log.installing, None, "no longer installing");
        // A late report of an older snapshot moves nothing back.
        log.snapshot_installed(LogIndex(2));
        assert_eq!(log.applied(), LogIndex(9));
        log.debug_check();
    }

    #[test]
    fn stable_to_ignores_replaced_or_never_handed_out_entries() {
        let mut log = RaftLog::new(Membership::default());
        log.append_new(Term(1), EntryPayload::Noop);
        assert!(!log.stable_to(Term(1), LogIndex(1)), "not handed out yet");
        log.take_unstable();
        log.append_from_leader(&[e(2, 1)]).unwrap();
        assert!(!log.stable_to(Term(1), LogIndex(1)), "replaced by term 2");
        assert_eq!(log.persisted(), LogIndex(0));
    }

    fn config_entry(term: u64, index: u64, voters: &[u64]) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Membership(Membership::of_voters(
                voters.iter().copied().map(crate::NodeId),
            )),
        }
    }

    #[test]
    fn a_configuration_is_in_force_once_in_the_log_and_gone_when_truncated_away() {
        // §4.1: the latest configuration in the log, committed or not.
        let founders = Membership::of_voters([1, 2, 3].map(crate::NodeId));
        let mut log = RaftLog::new(founders.clone());
        assert_eq!(log.membership(), &founders);
        log.append_from_leader(&[e(1, 1), config_entry(1, 2, &[1, 2, 3, 4])])
            .unwrap();
        assert_eq!(log.membership().voters.len(), 4);
        assert_eq!(log.membership_index(), LogIndex(2));
        // A new leader's log without it: the configuration before is back.
        log.append_from_leader(&[e(2, 2)]).unwrap();
        assert_eq!(log.membership(), &founders);
        assert_eq!(log.membership_index(), LogIndex(0));
        assert_eq!(log.membership_at(LogIndex(2)), founders);
    }

    #[test]
    fn compaction_keeps_the_configuration_in_the_snapshot() {
        let founders = Membership::of_voters([1, 2, 3].map(crate::NodeId));
        let entries = vec![e(1, 1), config_entry(1, 2, &[1, 2]), e(1, 3)];
        let mut log = RaftLog::restore(founders, None, entries, LogIndex(3));
        log.take_committed();
        log.applied_to(LogIndex(3));
        log.compact(LogIndex(3), vec![]).unwrap();
        let two = Membership::of_voters([1, 2].map(crate::NodeId));
        assert_eq!(log.snapshot().meta.membership, two);
        assert_eq!(log.membership(), &two);
        assert_eq!(log.membership_index(), LogIndex(3));
    }
}
