//! Writes as effects: what the replica asks its executor to make durable,
//! and the book-keeping that ties each completion back to what it promised.
//!
//! The replica never touches its disk. A ready cycle's storage work (a
//! snapshot to install, the hard state, entries, a compaction) becomes a
//! [`Write`] with an id; the executor carries it out in its own time and
//! reports [`crate::Input::WriteDone`]. Several writes may be in flight;
//! per disk they complete in the order they were issued. While
//! [`StorageLimits::max_writes_in_flight`] are in flight, new storage work
//! is merged into one buffered write (group commit: what arrives during a
//! sync costs one more sync, not one per input).

use crate::effects::{EntryDigest, SnapshotDigest};
use raft::{Entry, HardState, LogIndex, Message, MessageBody, Snapshot};
use std::collections::VecDeque;

/// Identifies a write; ids increase by one per write issued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// Storage work for the executor, carried out in this order: install
/// `install` (Figure 13: the log after it is kept only if it holds the
/// snapshot's last entry), write `hard_state`, append `entries` (replacing
/// any stored suffix from the first one's index), make all of it durable
/// with one sync, then make `compact` the start of the log.
///
/// The WAL keeps only the terms of its entries (raft's log holds the
/// entries), so a snapshot carries the entries the log keeps after it:
/// `install_keep` and `compact_keep`, taken from raft's log when the write
/// was asked for.
///
/// The hard state goes before the entries: a write cut short then keeps the
/// new term without the entries, never entries of a term the disk has no
/// record of (its commit index may run past the entries; recovery clamps
/// it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Write {
    /// This write's id, to report in [`crate::Input::WriteDone`].
    pub id: WriteId,
    /// A snapshot from the leader to make the start of the log (§7).
    pub install: Option<Snapshot>,
    /// The entries the log keeps after `install`: those it holds after the
    /// snapshot's index if it holds the snapshot's last entry with its term,
    /// else none (Figure 13, steps 6–7).
    pub install_keep: Vec<Entry>,
    /// The hard state to record, if it changed.
    pub hard_state: Option<HardState>,
    /// Entries to append, contiguous, in index order.
    pub entries: Vec<Entry>,
    /// A snapshot of this node's state machine to compact the log to.
    pub compact: Option<Snapshot>,
    /// The entries the log keeps after `compact`: all it holds after the
    /// snapshot's index, once this write's entries are appended.
    pub compact_keep: Vec<Entry>,
}

impl Write {
    /// Bytes this write holds (payloads and snapshots), for the limits. The
    /// kept entries are not counted: they are copies of entries raft's log
    /// holds anyway, bounded by the snapshot policy's `keep`.
    pub fn bytes(&self) -> u64 {
        let entries: u64 = self.entries.iter().map(entry_bytes).sum();
        let snapshots: u64 = [&self.install, &self.compact]
            .into_iter()
            .flatten()
            .map(|s| s.data.len() as u64)
            .sum();
        entries + snapshots
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.install.is_none()
            && self.hard_state.is_none()
            && self.entries.is_empty()
            && self.compact.is_none()
    }
}

/// The bytes an entry counts for in [`Write::bytes`].
fn entry_bytes(e: &Entry) -> u64 {
    e.payload_len() as u64 + 24
}

/// Bounds on the storage work a replica has outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StorageLimits {
    /// Writes issued to the executor and not yet reported done. Past it,
    /// storage work waits in one buffered write (group commit).
    pub max_writes_in_flight: usize,
    /// Bytes in writes issued or buffered. Past it, new client writes are
    /// answered Busy (peers' entries are bounded by raft's own flow
    /// control: in-flight appends per follower times bytes per append).
    pub max_bytes_in_flight: u64,
}

impl StorageLimits {
    /// One write in flight at a time: the classic group commit of a log
    /// with one sync at a time (what etcd's WAL does), 64 MiB outstanding.
    pub const DEFAULT: StorageLimits = StorageLimits {
        max_writes_in_flight: 1,
        max_bytes_in_flight: 64 << 20,
    };
}

impl Default for StorageLimits {
    fn default() -> Self {
        StorageLimits::DEFAULT
    }
}

/// What a write promised, kept until it completes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Pending {
    /// The write being gathered; once issued, only what completion needs
    /// (id, hard state, compaction): the entries went to the executor, not
    /// copied (their digests are kept instead).
    pub write: Write,
    /// The digests of the entries written, taken when the write is issued.
    pub digests: Vec<EntryDigest>,
    /// The bytes the write counted for, taken when it is issued.
    pub bytes: u64,
    /// The entries issued, kept only for the planted bug that answers
    /// clients when their entry is durable.
    #[cfg(feature = "planted-bugs")]
    pub planted_entries: Vec<Entry>,
    /// Messages that may leave only once this write is durable (Figure 2:
    /// "respond to RPCs only after updating stable storage"): votes, append
    /// acknowledgements, InstallSnapshot answers.
    pub held_messages: Vec<Message>,
    /// The install's fingerprint, reported when the write completes.
    pub installed: Option<SnapshotDigest>,
    /// The compaction's fingerprint, reported when the write completes.
    pub compacted: Option<SnapshotDigest>,
}

impl Pending {
    /// The index of the first entry written, gathered or issued.
    fn first_index(&self) -> Option<LogIndex> {
        self.write
            .entries
            .first()
            .map(|e| e.index)
            .or_else(|| self.digests.first().map(|d| d.index))
    }
}

/// The replica's outstanding storage work: writes in flight, in the order
/// issued, then at most a few buffered writes not yet issued.
///
/// Invariant: `in_flight` ids are consecutive and below every buffered
/// write's; `in_flight.len() <= limits.max_writes_in_flight` (the limit
/// may drop below it only by reconfiguration, never by issuing).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WriteQueue {
    limits: StorageLimits,
    next_id: u64,
    in_flight: VecDeque<Pending>,
    /// Work gathered while `in_flight` is full. Several only when a write
    /// cannot be merged into the last (an install after other work, a
    /// second compaction).
    buffered: VecDeque<Pending>,
    /// Bytes in `in_flight` and `buffered`.
    bytes: u64,
}

impl WriteQueue {
    pub fn new(limits: StorageLimits) -> WriteQueue {
        assert!(
            limits.max_writes_in_flight >= 1,
            "at least one write in flight"
        );
        WriteQueue {
            limits,
            next_id: 1,
            in_flight: VecDeque::new(),
            buffered: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Whether any write is issued or buffered.
    pub fn is_busy(&self) -> bool {
        !self.in_flight.is_empty() || !self.buffered.is_empty()
    }

    /// Writes issued and not yet done.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The oldest write in flight, if any.
    pub fn oldest(&self) -> Option<WriteId> {
        self.in_flight.front().map(|p| p.write.id)
    }

    /// Whether a new client write would pass the byte bound.
    pub fn over_byte_limit(&self) -> bool {
        self.bytes >= self.limits.max_bytes_in_flight
    }

    /// Adds storage work: merged into the last buffered write when it can
    /// be, else a new buffered write. Held messages join the same write.
    pub fn add(
        &mut self,
        install: Option<(Snapshot, SnapshotDigest, Vec<Entry>)>,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
        held_messages: Vec<Message>,
    ) {
        if install.is_none() && hard_state.is_none() && entries.is_empty() {
            if held_messages.is_empty() {
                return;
            }
            // Nothing new to write, but the answers may report state that
            // an outstanding write is still making durable: they wait for
            // the last one (writes complete in order).
            let last = self
                .buffered
                .back_mut()
                .or(self.in_flight.back_mut())
                .expect("held messages without a write are sent at once");
            last.held_messages.extend(held_messages);
            return;
        }
        // The end of what a pending write vouches for: its own entries, and
        // the entries its held answers acknowledge (those may have been
        // written by an earlier write: an answer with nothing new to write
        // waits for the last outstanding write, see above).
        let vouched_end = |last: &Pending| {
            let gathered_end = last.write.entries.last().map(|e| e.index);
            let acked_end = last
                .held_messages
                .iter()
                .filter_map(|m| match m.body {
                    MessageBody::AppendEntriesResponse {
                        success: true,
                        index,
                        ..
                    } => Some(index),
                    _ => None,
                })
                .max();
            gathered_end.max(acked_end)
        };
        let rewrites = |last: &Pending| {
            let new_start = entries.first().map(|e| e.index);
            matches!((vouched_end(last), new_start), (Some(end), Some(start)) if start <= end)
        };
        let mergeable = self
            .buffered
            .back()
            // An install starts the log afresh: it may not follow other
            // work in the same write (entries before it would be appended
            // after it). Entries that replace gathered ones go to a new
            // write: the answers gathered with the old ones acknowledge
            // them, and stay true only if those entries reach the disk
            // first (found by a 300-seed sweep, seed 343: a follower
            // acknowledged to a deposed leader entries that a gathered
            // conflict had replaced before they were ever written). The
            // same holds for entries an earlier write made durable and a
            // held answer acknowledges (seed 250 of the drawn-config sweep:
            // a duplicate append's answer waited on a hard-state write that
            // then gathered a new leader's conflicting suffix).
            .is_some_and(|last| {
                install.is_none() && last.write.compact.is_none() && !rewrites(last)
            });
        if !mergeable {
            self.buffered.push_back(Pending::default());
        }
        let pending = self.buffered.back_mut().expect("pushed above");
        // Counted by difference, not by summing the gathered write again
        // (which grows with every input while a write is in flight).
        let mut added = entries.iter().map(entry_bytes).sum::<u64>();
        if let Some((snapshot, digest, keep)) = install {
            added += snapshot.data.len() as u64;
            pending.write.install = Some(snapshot);
            pending.write.install_keep = keep;
            pending.installed = Some(digest);
        }
        if hard_state.is_some() {
            // Only the latest counts; writing it before all the gathered
            // entries keeps the rule (terms only grow; a commit index past
            // the entries is clamped by recovery).
            pending.write.hard_state = hard_state;
        }
        let removed = splice(&mut pending.write.entries, entries);
        pending.held_messages.extend(held_messages);
        self.bytes = self.bytes + added - removed;
    }

    /// Adds a compaction to `snapshot` (durable once the write completes),
    /// keeping `keep`: every entry the log holds after the snapshot.
    pub fn add_compaction(&mut self, snapshot: Snapshot, digest: SnapshotDigest, keep: Vec<Entry>) {
        let mergeable = self
            .buffered
            .back()
            .is_some_and(|last| last.write.compact.is_none());
        if !mergeable {
            self.buffered.push_back(Pending::default());
        }
        let pending = self.buffered.back_mut().expect("pushed above");
        self.bytes += snapshot.data.len() as u64;
        pending.write.compact = Some(snapshot);
        pending.write.compact_keep = keep;
        pending.compacted = Some(digest);
    }

    /// Issues buffered writes while fewer than the limit are in flight.
    /// Returns the writes to hand to the executor.
    pub fn issue(&mut self) -> Vec<Write> {
        let mut out = Vec::new();
        while self.in_flight.len() < self.limits.max_writes_in_flight {
            let Some(mut pending) = self.buffered.pop_front() else {
                break;
            };
            let id = WriteId(self.next_id);
            self.next_id += 1;
            pending.write.id = id;
            pending.bytes = pending.write.bytes();
            pending.digests = pending.write.entries.iter().map(EntryDigest::of).collect();
            #[cfg(feature = "planted-bugs")]
            {
                pending.planted_entries = pending.write.entries.clone();
            }
            // The write goes to the executor whole; what completion needs
            // stays (a compaction's snapshot is copied: raft keeps it).
            let kept = Write {
                id,
                hard_state: pending.write.hard_state,
                compact: pending.write.compact.clone(),
                ..Write::default()
            };
            out.push(std::mem::replace(&mut pending.write, kept));
            self.in_flight.push_back(pending);
        }
        out
    }

    /// The oldest write in flight, which must be `id` (writes complete in
    /// order), removed. `None` if `id` is not the oldest.
    pub fn complete(&mut self, id: WriteId) -> Option<Pending> {
        if self.in_flight.front().map(|p| p.write.id) != Some(id) {
            return None;
        }
        let pending = self.in_flight.pop_front().expect("checked above");
        self.bytes -= pending.bytes;
        Some(pending)
    }

    /// The highest index that a completed write may report durable: below
    /// the first entry of every write still outstanding. A later write that
    /// rewrites an index may not be durable yet, so an entry a completion
    /// names could be replaced on disk by that later write's truncation and
    /// then restored (same index and term) in raft's log: reporting it
    /// durable would let a leader count itself for an entry its disk no
    /// longer holds (Figure 2; etcd's async storage guards the same case).
    pub fn durable_bound(&self) -> Option<LogIndex> {
        self.in_flight
            .iter()
            .chain(self.buffered.iter())
            .filter_map(|p| {
                if p.installed.is_some() {
                    // An install may discard the whole log after it.
                    Some(LogIndex(0))
                } else {
                    p.first_index().map(|i| i.prev())
                }
            })
            .min()
    }
}

/// Appends `new` to `log`, replacing the suffix of `log` from `new`'s first
/// index (a Raft conflict, §5.3, within one gathered write). Returns the
/// bytes (as [`Write::bytes`] counts them) of the entries replaced.
fn splice(log: &mut Vec<Entry>, new: Vec<Entry>) -> u64 {
    let Some(first) = new.first() else {
        return 0;
    };
    let mut removed = 0;
    if let Some(start) = log.first().map(|e| e.index) {
        let keep = if first.index <= start {
            0
        } else {
            ((first.index.0 - start.0) as usize).min(log.len())
        };
        removed = log[keep..].iter().map(entry_bytes).sum();
        log.truncate(keep);
    }
    debug_assert!(
        log.last().is_none_or(|e| e.index.next() == first.index),
        "a gathered write stays contiguous"
    );
    log.extend(new);
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{EntryPayload, Term};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            payload: EntryPayload::Noop,
        }
    }

    fn queue(max: usize) -> WriteQueue {
        WriteQueue::new(StorageLimits {
            max_writes_in_flight: max,
            max_bytes_in_flight: 1 << 20,
        })
    }

    #[test]
    fn work_that_arrives_during_a_write_joins_the_next_one() {
        let mut q = queue(1);
        q.add(None, None, vec![entry(1, 1)], vec![]);
        assert_eq!(q.issue().len(), 1);
        for i in 2..=10 {
            q.add(None, None, vec![entry(i, 1)], vec![]);
            assert!(q.issue().is_empty(), "one write in flight at a time");
        }
        let first = q.complete(WriteId(1)).expect("in order");
        assert_eq!(first.digests.len(), 1);
        let next = q.issue();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].entries.len(), 9, "nine inputs, one write");
    }

    #[test]
    fn work_that_rewrites_gathered_entries_waits_for_them_in_a_write_of_its_own() {
        let mut q = queue(1);
        q.add(None, None, vec![entry(1, 1)], vec![]);
        q.issue();
        let ack = Message {
            from: raft::NodeId(2),
            to: raft::NodeId(1),
            term: Term(1),
            body: raft::MessageBody::TimeoutNow,
        };
        let gathered = vec![entry(2, 1), entry(3, 1), entry(4, 1)];
        q.add(None, None, gathered.clone(), vec![ack.clone()]);
        q.add(None, None, vec![entry(3, 2)], vec![]);
        q.complete(WriteId(1)).unwrap();
        let w = q.issue().pop().unwrap();
        assert_eq!(w.entries, gathered, "written as acknowledged");
        let done = q.complete(w.id).unwrap();
        assert_eq!(done.held_messages, vec![ack]);
        let rewrite = q.issue().pop().unwrap();
        assert_eq!(rewrite.entries, vec![entry(3, 2)]);
    }

    /// Seed 250 of the drawn-config sweep: a duplicate append's answer (it
    /// writes nothing) waited on a buffered hard-state write; a new leader's
    /// conflicting suffix then merged into that write, so the answer left
    /// after the entries it acknowledged were replaced.
    #[test]
    fn work_that_rewrites_entries_a_held_answer_acknowledges_waits_in_a_write_of_its_own() {
        let mut q = queue(1);
        q.add(None, None, (1..=4).map(|i| entry(i, 1)).collect(), vec![]);
        q.issue();
        let hs = |term| HardState {
            term: Term(term),
            ..HardState::default()
        };
        q.add(None, Some(hs(1)), vec![], vec![]);
        let ack = Message {
            from: raft::NodeId(1),
            to: raft::NodeId(2),
            term: Term(1),
            body: MessageBody::AppendEntriesResponse {
                success: true,
                index: LogIndex(4),
                reject_hint: None,
                read_round: 0,
            },
        };
        q.add(None, None, vec![], vec![ack.clone()]);
        q.add(None, Some(hs(2)), vec![entry(3, 2)], vec![]);
        q.complete(WriteId(1)).unwrap();
        let w = q.issue().pop().unwrap();
        assert!(w.entries.is_empty(), "the rewrite is not gathered here");
        let done = q.complete(w.id).unwrap();
        assert_eq!(done.held_messages, vec![ack]);
        let rewrite = q.issue().pop().unwrap();
        assert_eq!(rewrite.entries, vec![entry(3, 2)]);
    }

    #[test]
    fn completions_are_accepted_only_in_order() {
        let mut q = queue(2);
        q.add(None, None, vec![entry(1, 1)], vec![]);
        q.issue();
        q.add(None, None, vec![entry(2, 1)], vec![]);
        q.issue();
        assert!(q.complete(WriteId(2)).is_none());
        assert!(q.complete(WriteId(1)).is_some());
        assert!(q.complete(WriteId(2)).is_some());
        assert!(!q.is_busy());
    }

    #[test]
    fn a_completion_reports_nothing_a_later_write_may_rewrite() {
        let mut q = queue(2);
        q.add(None, None, vec![entry(5, 1), entry(6, 1)], vec![]);
        q.issue();
        q.add(None, None, vec![entry(6, 2)], vec![]);
        q.issue();
        q.complete(WriteId(1)).unwrap();
        assert_eq!(q.durable_bound(), Some(LogIndex(5)));
        q.complete(WriteId(2)).unwrap();
        assert_eq!(q.durable_bound(), None);
    }

    #[test]
    fn answers_with_nothing_new_to_write_wait_for_the_last_write() {
        let mut q = queue(1);
        q.add(None, None, vec![entry(1, 1)], vec![]);
        q.issue();
        let msg = Message {
            from: raft::NodeId(1),
            to: raft::NodeId(2),
            term: Term(1),
            body: raft::MessageBody::TimeoutNow,
        };
        q.add(None, None, vec![], vec![msg.clone()]);
        let done = q.complete(WriteId(1)).unwrap();
        assert_eq!(done.held_messages, vec![msg]);
    }

    #[test]
    fn bytes_are_counted_while_outstanding() {
        let mut q = WriteQueue::new(StorageLimits {
            max_writes_in_flight: 1,
            max_bytes_in_flight: 50,
        });
        assert!(!q.over_byte_limit());
        q.add(
            None,
            None,
            vec![entry(1, 1), entry(2, 1), entry(3, 1)],
            vec![],
        );
        assert!(q.over_byte_limit(), "three entries of 24 bytes each");
        q.issue();
        q.complete(WriteId(1)).unwrap();
        assert!(!q.over_byte_limit());
    }

    #[test]
    fn bytes_counted_by_difference_match_the_writes() {
        let mut q = queue(1);
        let outstanding = |q: &WriteQueue| -> u64 {
            q.in_flight.iter().map(|p| p.bytes).sum::<u64>()
                + q.buffered.iter().map(|p| p.write.bytes()).sum::<u64>()
        };
        q.add(None, None, vec![entry(1, 1)], vec![]);
        q.issue();
        for i in 2..=6 {
            q.add(None, None, vec![entry(i, 1)], vec![]);
            assert_eq!(q.bytes, outstanding(&q));
        }
        // A rewrite of gathered entries, and a compaction.
        q.add(None, None, vec![entry(4, 2)], vec![]);
        q.add_compaction(
            Snapshot {
                meta: raft::SnapshotMeta::default(),
                data: vec![0; 10],
            },
            SnapshotDigest {
                index: LogIndex(0),
                term: Term(0),
                state: 0,
            },
            vec![],
        );
        assert_eq!(q.bytes, outstanding(&q));
        let mut next = 1;
        while q.is_busy() {
            q.complete(WriteId(next)).unwrap();
            next += 1;
            q.issue();
            assert_eq!(q.bytes, outstanding(&q));
        }
        assert_eq!(q.bytes, 0);
    }
}
