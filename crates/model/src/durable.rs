//! A node's disk as a value: what its completed writes made durable.
//!
//! The simulator's `MemDisk` is a shared handle (clones see one disk), so it
//! cannot be part of a state that a model checker copies and hashes. This is
//! the same durable content, kept as plain data: [`Durable::complete`]
//! applies a [`Write`] exactly as `replica::Storage::write` lays it out on
//! the WAL (install, hard state, append replacing the suffix, compaction),
//! and [`Durable::recovered`] is what `wal::Wal::open` would return for it.
//! A write is all or nothing here: the WAL's recovery cuts a torn tail back
//! to the last whole record, and a write reported done was synced whole, so
//! a crash leaves every completed write and none of the others (the
//! simulator's torn writes and disk faults are its own business, tested
//! there against the real WAL).

use raft::{Entry, HardState, LogIndex, Snapshot};
use replica::Write;
use wal::Recovered;

/// The durable state of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Durable {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The snapshot the log starts from, if any.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl Durable {
    /// Makes `write` durable, in the order `replica::Storage::write` does.
    pub fn complete(&mut self, write: &Write) {
        if let Some(snapshot) = &write.install {
            self.snapshot = Some(snapshot.clone());
            self.entries = write.install_keep.clone();
        }
        if let Some(hs) = write.hard_state {
            self.hard_state = hs;
        }
        if let Some(first) = write.entries.first() {
            // The first entry replaces whatever is stored at its index and
            // everything after it (§5.3: a conflicting suffix is deleted).
            let base = self.snapshot_index();
            let keep = first.index.0.saturating_sub(base.0 + 1) as usize;
            self.entries.truncate(keep);
            self.entries.extend(write.entries.iter().cloned());
        }
        if let Some(snapshot) = &write.compact {
            self.snapshot = Some(snapshot.clone());
            self.entries = write.compact_keep.clone();
        }
    }

    /// The index the log starts after (0 without a snapshot).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index)
    }

    /// The index of the last durable entry.
    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    /// The durable entry at `index`, if the log holds it.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let base = self.snapshot_index().0;
        if index.0 <= base {
            return None;
        }
        self.entries.get((index.0 - base - 1) as usize)
    }

    /// What recovery finds: as `wal::Wal::open` reports it, with the commit
    /// index clamped to the log (the WAL's recovery does the same: the
    /// commit index is a hint, recomputable from the leader).
    pub fn recovered(&self) -> Recovered {
        let mut hard_state = self.hard_state;
        hard_state.commit = hard_state.commit.min(self.last_index());
        Recovered {
            hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            truncated_tail_bytes: 0,
        }
    }
}
