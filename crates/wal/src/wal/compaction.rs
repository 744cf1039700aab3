//! Compaction: making a snapshot the start of the log.

use super::segment::{MAX_WAL_BYTES, position, segment_name, temporary_name};
use super::{Wal, WalError, chunks};
use crate::disk::{Disk, DiskError};
use crate::record::{self, RecordRef};
use crate::snapshot;
use raft::{Entry, Snapshot};

impl<D: Disk> Wal<D> {
    /// Makes `snapshot` the start of the log (§7), durably, and drops the
    /// files it makes unnecessary. Used both for a snapshot this node took
    /// (log compaction) and for one received from the leader
    /// (InstallSnapshot). The entries after the snapshot are kept if the log
    /// holds the snapshot's last entry with its term, else the whole log is
    /// discarded (Figure 13, receiver steps 6–7).
    ///
    /// The WAL holds only the terms of its entries (raft's log holds the
    /// entries themselves), so the caller passes the entries to keep:
    /// exactly those the log holds after the snapshot's index when it holds
    /// the snapshot's last entry with its term, none otherwise. Entries
    /// that do not match the log's indices and terms are refused
    /// ([`WalError::InvalidEntries`]) and nothing is written.
    ///
    /// The steps, each durable before the next, so that a crash anywhere
    /// leaves the old log or the new one, whole:
    /// 1. the snapshot file (temporary name, sync, rename, directory sync);
    /// 2. a new segment, written under a temporary name: a checkpoint record
    ///    (the snapshot's metadata and the current hard state) and the
    ///    retained entries; synced, renamed into place, directory synced.
    ///    That rename is the commit point: recovery replays from the newest
    ///    segment that begins with a checkpoint;
    /// 3. the older segments and snapshot files are removed.
    ///
    /// Everything written before it (synced or not) is durable when it
    /// returns. A snapshot at or below the current one, or one whose last
    /// entry contradicts a durably committed entry, is refused.
    pub fn save_snapshot(&mut self, snapshot: &Snapshot, kept: &[Entry]) -> Result<(), WalError> {
        self.check_usable()?;
        let meta = &snapshot.meta;
        if meta.index <= self.log.base.index || meta.term.0 == 0 {
            return Err(WalError::InvalidEntries {
                reason: format!(
                    "a snapshot at index {} term {} does not follow the one at {}",
                    meta.index, meta.term, self.log.base.index
                ),
            });
        }
        if meta.index <= self.durable_commit
            && self.log.term_at(meta.index).is_some_and(|t| t != meta.term)
        {
            return Err(WalError::TruncateCommitted {
                index: meta.index,
                commit: self.durable_commit,
            });
        }
        let file_meta = snapshot::SnapshotMeta {
            index: meta.index,
            term: meta.term,
        };
        let log = self.log.compacted_to(meta);
        log.check_holds(kept)?;
        let next = self.seq + 1;
        let mut records = vec![RecordRef::Checkpoint {
            hard_state: self.hard_state,
            base: meta,
        }];
        for chunk in chunks(kept) {
            records.push(RecordRef::Entries(chunk));
        }
        let mut bytes = Vec::new();
        for r in &records {
            record::encode_ref_into(r, position(next, bytes.len() as u64), &mut bytes);
        }
        if bytes.len() as u64 > MAX_WAL_BYTES {
            return Err(WalError::LogFull {
                bytes: bytes.len() as u64,
                max: MAX_WAL_BYTES,
            });
        }
        let tmp = temporary_name(next);
        let name = segment_name(next);
        let disk = &mut self.disk;
        let result =
            snapshot::write_snapshot_file(disk, file_meta, &snapshot.data).and_then(|()| {
                match disk.remove(&tmp) {
                    Ok(()) | Err(DiskError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                disk.create(&tmp)?;
                disk.write_at(&tmp, 0, &bytes)?;
                disk.sync(&tmp)?;
                disk.rename(&tmp, &name)?;
                disk.sync_dir()?;
                Ok(())
            });
        if let Err(e) = result {
            self.poisoned = true;
            return Err(e);
        }
        // Committed: the new segment is the log.
        let mut old = self.first_seq..next;
        self.log = log;
        self.first_seq = next;
        self.seq = next;
        self.end = bytes.len() as u64;
        self.closed_bytes = 0;
        self.dirty = false;
        self.durable_commit = self.hard_state.commit;
        let disk = &mut self.disk;
        let cleanup = old
            .try_for_each(|seq| disk.remove(&segment_name(seq)).map_err(WalError::from))
            .and_then(|()| Ok(disk.sync_dir()?))
            .and_then(|()| snapshot::remove_snapshots_except(disk, Some(file_meta)));
        if let Err(e) = cleanup {
            self.poisoned = true;
            return Err(e);
        }
        Ok(())
    }
}
