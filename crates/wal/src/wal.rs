//! The durable Raft log and hard state: append-only segment files of framed
//! records (see [`crate::record`]), replayed in order on open.
//!
//! # Segments
//!
//! Records go to the last segment, `raft-NNNNNNNN.wal`, numbered from 0
//! without gaps. When a record would grow it past [`SEGMENT_BYTES`], the
//! segment is closed: synced, then the next one is created and the directory
//! synced before anything is written to it. So only the last segment can end
//! in a torn write; a cut record at the end of any other, or a missing
//! segment, is corruption. Each frame's header checksum covers its segment
//! number and offset.
//!
//! # Snapshots and compaction
//!
//! [`Wal::save_snapshot`] makes a snapshot the start of the log (§7). The
//! snapshot's data goes to its own file (see [`crate::snapshot`]); then a
//! new segment is written whole under a temporary name — a checkpoint
//! record (the snapshot's index, term and configuration, and the current
//! hard state) followed by the entries kept after the snapshot (which the
//! caller passes: the WAL keeps only the terms of its entries, the entries
//! themselves live in raft's log) — synced and
//! renamed into place. That rename commits the compaction: recovery
//! replays from the newest segment that begins with a checkpoint, and
//! removes any older segments and snapshot files a crash left behind.
//! Rewriting the kept entries costs a little (the snapshot policy keeps a
//! bounded tail), and buys a simple rule: the log is always one checkpoint
//! (or segment 0) and the segments after it, so a crash at any step leaves
//! the old log or the new one, whole.
//!
//! # Hard state
//!
//! Term, vote and commit index are a record in the same log, appended after
//! the previous one, never written in place. A torn write of a new hard state
//! therefore cannot damage the old one: recovery finds the last complete
//! hard-state record, which is the last one synced or a newer one that
//! happened to reach the medium whole. There is always a valid copy.
//!
//! # Sync discipline
//!
//! [`Wal::sync`] is the only barrier; the replica calls it once per Raft
//! `Ready`, after writing that batch's entries and hard state, and before
//! anything that depends on them leaves the node:
//!
//! * a **vote** (RequestVote response): the new term and vote are synced
//!   first (§5.2: at most one vote per term, across crashes);
//! * an **append acknowledgement** (AppendEntries response, and a leader
//!   counting itself towards a commit): the entries are synced first
//!   (Figure 2: respond only after updating stable storage);
//! * a **commit**: entries are applied and clients answered only once a
//!   majority has synced them; the commit index itself is recorded in the
//!   hard state lazily (it is recomputable from peers), so losing it to a
//!   crash is harmless.
//!
//! The file's directory entry is synced when the file is created, before any
//! record is written to it.
//!
//! # Recovery
//!
//! [`Wal::open`] reads the file from the start and replays each record. At
//! the first frame that does not check out it decides between two
//! explanations:
//!
//! * **A torn tail**: the file ends inside the frame (an incomplete header,
//!   or a length, itself covered by the header checksum, that runs past the
//!   end). That is what a crash during the last, unsynced write leaves when
//!   sectors persist in order. The bytes are cut off (the truncation is
//!   synced), and their number reported in [`Recovered::truncated_tail_bytes`].
//!   Such bytes were never synced, so no one was promised they were durable.
//! * **Corruption**: a *complete* frame that fails its header or payload
//!   checksum, at the tail or anywhere else. Data that was once durable has
//!   been damaged; recovery stops with [`WalError::Corrupt`] naming the file
//!   and the bad frame's offset. It never returns a silently shorter log: a
//!   node that silently forgot an acknowledged entry could vote for a
//!   candidate that lacks it, and lose a committed write.
//!
//! Before believing corruption, recovery reads the file again until three
//! reads agree (up to [`MAX_READ_ATTEMPTS`] reads): a bit flipped in transit
//! from the medium reads differently the next time (see [`crate::reread`]).
//!
//! A record that checks out but contradicts the state built so far (a gap in
//! the indices, a term that goes backwards, a vote that changes within a
//! term) is also [`WalError::Corrupt`]: it is either a misdirected write or a
//! bug, and both need a human. Each frame's header checksum covers the offset
//! it was written for, so a frame written to the wrong place fails its check.
//!
//! Known limits, all failing loudly, never silently: a crash that persists a
//! *later* sector of an unsynced write while losing an earlier one (sector
//! reordering), or a file system that extends the file before its data lands
//! (zeros at the tail), is reported as corruption although no synced data
//! was lost.
//!
//! # A node with a corrupt log stays down
//!
//! The replica does not repair a damaged log from its peers (as
//! "Protocol-Aware Recovery for Consensus-Based Storage", FAST '18, would):
//! it refuses to start, and says where the damage is. Rejoining with the
//! valid prefix would be unsafe (the lost suffix may hold entries it
//! acknowledged), and rejoining empty is unsafe for the same reason. An
//! operator replaces the node (a later membership change).
//!
//! # Errors while running
//!
//! A failed write or sync leaves the file in an unknown state (after a failed
//! fsync the kernel may even have dropped the dirty pages), so the log
//! *poisons* itself: every later call fails with [`WalError::Poisoned`], and
//! the owner must reopen it, which recovers whatever is really on disk.

mod compaction;
mod error;
mod image;
mod recovery;
mod segment;
#[cfg(test)]
mod tests;

pub use crate::reread::MAX_READ_ATTEMPTS;
pub use error::WalError;
pub use recovery::Recovered;
pub use segment::{
    MAX_SEGMENT_FILE_BYTES, MAX_SEGMENTS, MAX_WAL_BYTES, SEGMENT_BYTES, WAL_FILE, segment_name,
};

use crate::disk::Disk;
use crate::record::{
    self, ENTRY_OVERHEAD_BYTES, MAX_ENTRY_PAYLOAD_BYTES, MAX_RECORD_BYTES, RecordRef,
};
use image::LogImage;
use raft::{Entry, HardState, LogIndex, SnapshotMeta, Term};
use segment::position;

/// The durable Raft log and hard state over a [`Disk`].
///
/// Changes ([`Wal::append`], [`Wal::set_hard_state`]) are written at once and
/// take effect in memory at once, but are durable only after [`Wal::sync`],
/// which issues one disk sync for everything since the last one.
/// [`Wal::save_snapshot`] is durable when it returns.
#[derive(Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    /// The log.
    log: LogImage,
    /// The latest hard state written.
    hard_state: HardState,
    /// The commit index as of the last sync (or open): entries up to it are
    /// known committed, so no append may remove or change them.
    /// Invariant: `durable_commit <= hard_state.commit`.
    durable_commit: LogIndex,
    /// The first segment that holds the log. Invariant: segments
    /// `first_seq..=seq` exist; `first_seq` is 0 or begins with the
    /// checkpoint of `log.base`.
    first_seq: u64,
    /// The segment records go to. Invariant: the last segment, and every
    /// one before it is synced.
    seq: u64,
    /// Where the next record goes in the current segment. Invariant: the
    /// segment file's length.
    end: u64,
    /// Bytes in the segments before the current one.
    closed_bytes: u64,
    /// Whether anything was written since the last sync.
    dirty: bool,
    /// Set when a write or sync failed; every later call then fails.
    poisoned: bool,
}

/// Checks a new hard state against the last. Terms never go back and a vote
/// never changes within a term (§5.2); the commit index never goes back
/// while the log is open (`commit_may_regress` false). Across a restart it
/// may: recovery clamps a commit index that its log does not reach (see
/// [`Wal::open`]), and the records written after that start from the
/// clamped value, so replay accepts it going back.
fn check_hard_state(
    old: &HardState,
    new: &HardState,
    commit_may_regress: bool,
) -> Result<(), WalError> {
    let reason = if new.term < old.term {
        format!("term goes back from {} to {}", old.term, new.term)
    } else if new.term == old.term && old.vote.is_some() && new.vote != old.vote {
        // §5.2: each server votes for at most one candidate in a term.
        format!(
            "vote changes within {} from {:?} to {:?}",
            old.term, old.vote, new.vote
        )
    } else if new.commit < old.commit && !commit_may_regress {
        format!("commit goes back from {} to {}", old.commit, new.commit)
    } else {
        return Ok(());
    };
    Err(WalError::InvalidHardState { reason })
}

impl<D: Disk> Wal<D> {
    /// Appends entries, replacing the stored suffix from the first new index
    /// if it is at or before the last stored index (a Raft conflict, §5.3).
    /// The entries must be contiguous, start after the snapshot and at or
    /// before `last_index() + 1` (else [`WalError::Gap`]) and keep terms
    /// non-decreasing; they must not remove or change an entry at or below
    /// the durable commit index. On any error nothing is written. Durable
    /// after [`Wal::sync`].
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        self.check_usable()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        self.log.check_append(entries)?;
        if let Some(e) = entries
            .iter()
            .find(|e| e.payload_len() > MAX_ENTRY_PAYLOAD_BYTES)
        {
            return Err(WalError::TooLarge {
                index: e.index,
                bytes: e.payload_len(),
                max: MAX_ENTRY_PAYLOAD_BYTES,
            });
        }
        let last = self.last_index();
        if first.index <= last {
            // The first index whose entry is removed or changed: a term
            // mismatch, or the end of the new entries if the old log is longer.
            let changed = entries
                .iter()
                .take_while(|e| e.index <= last)
                .find(|e| self.log.term_at(e.index) != Some(e.term))
                .map(|e| e.index)
                .or_else(|| {
                    let after = entries.last().expect("non-empty").index.next();
                    (after <= last).then_some(after)
                });
            if let Some(index) = changed
                && index <= self.durable_commit
            {
                return Err(WalError::TruncateCommitted {
                    index,
                    commit: self.durable_commit,
                });
            }
        }

        let mut records = Vec::new();
        if first.index <= last {
            records.push(RecordRef::TruncateFrom(first.index));
        }
        for chunk in chunks(entries) {
            records.push(RecordRef::Entries(chunk));
        }
        self.write(&records)?;
        self.log.splice(entries);
        Ok(())
    }

    /// Records a new hard state. Terms and commit indices never go back, and
    /// a vote never changes within a term (§5.2); a hard state equal to the
    /// current one writes nothing. Durable after [`Wal::sync`].
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), WalError> {
        self.check_usable()?;
        check_hard_state(&self.hard_state, &hs, false)?;
        if hs == self.hard_state {
            return Ok(());
        }
        self.write(&[RecordRef::HardState(hs)])?;
        self.hard_state = hs;
        Ok(())
    }

    /// Makes every append and hard state since the last sync durable, with
    /// one disk sync (none if nothing was written).
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if self.dirty {
            if let Err(e) = self.disk.sync(&segment_name(self.seq)) {
                self.poisoned = true;
                return Err(e.into());
            }
            self.dirty = false;
        }
        self.durable_commit = self.hard_state.commit;
        Ok(())
    }

    /// The index of the last entry (the snapshot's if there is no entry
    /// after it; 0 if the log is empty).
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// The index of the first entry held (1 until the first snapshot).
    pub fn first_index(&self) -> LogIndex {
        self.log.base.index.next()
    }

    /// What the log starts after: the snapshot's metadata (index 0 when
    /// there is none).
    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.log.base
    }

    /// The latest hard state written (durable or not).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The term of the entry at `index` (`Term(0)` for index 0, the
    /// snapshot's at its index), if known.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        self.log.term_at(index)
    }

    /// The disk underneath.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The size of the current (last) segment file, in bytes.
    pub fn file_len(&self) -> u64 {
        self.end
    }

    /// The current (last) segment's sequence number; segments
    /// [`Wal::first_segment`]`..=segment` hold the log.
    pub fn segment(&self) -> u64 {
        self.seq
    }

    /// The first segment that holds the log.
    pub fn first_segment(&self) -> u64 {
        self.first_seq
    }

    /// The bytes of every segment that holds the log.
    pub fn size_bytes(&self) -> u64 {
        self.closed_bytes + self.end
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }

    /// Writes records, framed, at the end of the log, starting a new
    /// segment whenever one would grow past [`SEGMENT_BYTES`]. Poisons the
    /// log if a write fails.
    fn write(&mut self, records: &[RecordRef<'_>]) -> Result<(), WalError> {
        let mut bytes = Vec::new();
        for r in records {
            let start = bytes.len();
            let at = self.end + start as u64;
            record::encode_ref_into(r, position(self.seq, at), &mut bytes);
            if at > 0 && at + (bytes.len() - start) as u64 > SEGMENT_BYTES {
                bytes.truncate(start);
                self.write_bytes(&bytes)?;
                bytes.clear();
                self.roll()?;
                record::encode_ref_into(r, position(self.seq, 0), &mut bytes);
            }
        }
        self.write_bytes(&bytes)
    }

    /// Closes the current segment (synced, so that only the last segment
    /// can ever hold a torn write) and starts the next (its name synced
    /// before anything is written to it).
    fn roll(&mut self) -> Result<(), WalError> {
        let next = self.seq + 1;
        if next - self.first_seq >= MAX_SEGMENTS {
            return Err(WalError::LogFull {
                bytes: self.closed_bytes + self.end,
                max: MAX_WAL_BYTES,
            });
        }
        let result = self
            .disk
            .sync(&segment_name(self.seq))
            .and_then(|()| self.disk.create(&segment_name(next)))
            .and_then(|()| self.disk.sync_dir());
        if let Err(e) = result {
            self.poisoned = true;
            return Err(e.into());
        }
        self.closed_bytes += self.end;
        self.seq = next;
        self.end = 0;
        Ok(())
    }

    /// Writes bytes at the end of the current segment.
    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let total = self.closed_bytes + self.end + bytes.len() as u64;
        if total > MAX_WAL_BYTES {
            return Err(WalError::LogFull {
                bytes: total,
                max: MAX_WAL_BYTES,
            });
        }
        if let Err(e) = self.disk.write_at(&segment_name(self.seq), self.end, bytes) {
            self.poisoned = true;
            return Err(e.into());
        }
        self.end += bytes.len() as u64;
        self.dirty = true;
        Ok(())
    }
}

/// Splits entries into runs that each fit one record.
fn chunks(entries: &[Entry]) -> Vec<&[Entry]> {
    // Record tag and vector length, with room to spare.
    const RECORD_OVERHEAD: usize = 16;
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = RECORD_OVERHEAD;
    for (i, e) in entries.iter().enumerate() {
        let entry_size = e.payload_len() + ENTRY_OVERHEAD_BYTES;
        if size + entry_size > MAX_RECORD_BYTES && i > start {
            out.push(&entries[start..i]);
            start = i;
            size = RECORD_OVERHEAD;
        }
        size += entry_size;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}
