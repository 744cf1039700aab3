//! Recovery: replaying the segments on open.

use super::image::LogImage;
use super::segment::{
    MAX_SEGMENT_FILE_BYTES, MAX_SEGMENTS, MAX_WAL_BYTES, TMP_SUFFIX, WAL_FILE, parse_segment,
    position, read_segment, segment_name,
};
use super::{Wal, WalError, check_hard_state};
use crate::disk::Disk;
use crate::record::{self, BadFrame, FRAME_HEADER_BYTES, MAX_RECORD_BYTES, Record, RecordRef};
use crate::reread::MAX_READ_ATTEMPTS;
use crate::snapshot;
use raft::{Entry, HardState, LogIndex, Snapshot};

/// What [`Wal::open`] found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last hard state written (the default if none was).
    pub hard_state: HardState,
    /// The snapshot the log starts from, if it was ever compacted: the
    /// state machine's image at `snapshot.meta.index`.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot (from index 1 if there is none),
    /// contiguous.
    pub entries: Vec<Entry>,
    /// Bytes of a torn last write cut off the end of the file (0 if none).
    pub truncated_tail_bytes: u64,
}

/// The state replayed so far, with the checks every record must pass. The
/// same checks guard [`Wal::append`] and [`Wal::set_hard_state`]: what the
/// writer refuses to write, the reader refuses to believe.
#[derive(Clone, Default)]
pub(super) struct Replay {
    pub(super) log: LogImage,
    /// The entries read, for [`Recovered::entries`] (the only time the WAL
    /// holds payloads). Invariant: one for each of `log`'s terms.
    pub(super) entries: Vec<Entry>,
    pub(super) hard_state: HardState,
}

impl Replay {
    /// Replays `record`; `first_of_replay` says whether it is the first
    /// record of the first segment replayed, the only place a checkpoint
    /// may be.
    pub(super) fn apply(&mut self, record: Record, first_of_replay: bool) -> Result<(), String> {
        match record {
            Record::Entries(new) => {
                let Some(first) = new.first() else {
                    return Err("empty entries record".into());
                };
                if first.index != self.log.last_index().next() {
                    return Err(format!(
                        "entries record starts at {} but the log ends at {}",
                        first.index,
                        self.log.last_index()
                    ));
                }
                self.log.check_append(&new).map_err(|e| e.to_string())?;
                self.log.splice(&new);
                self.entries.extend(new);
            }
            Record::HardState(hs) => {
                check_hard_state(&self.hard_state, &hs, true).map_err(|e| e.to_string())?;
                self.hard_state = hs;
            }
            Record::TruncateFrom(index) => {
                if index <= self.log.base.index || index > self.log.last_index() {
                    return Err(format!(
                        "truncation from {index} outside the log {}..={}",
                        self.log.base.index.next(),
                        self.log.last_index()
                    ));
                }
                self.log.truncate_from(index);
                self.entries.truncate(self.log.terms.len());
            }
            Record::Checkpoint { hard_state, base } => {
                if !first_of_replay {
                    return Err("a checkpoint that does not start the log".into());
                }
                if base.index.0 == 0 || base.term.0 == 0 {
                    return Err(format!(
                        "a checkpoint at index {} term {}",
                        base.index, base.term
                    ));
                }
                self.log = LogImage {
                    base,
                    terms: Vec::new(),
                };
                self.entries.clear();
                self.hard_state = hard_state;
            }
        }
        Ok(())
    }
}

/// Replays the whole file held in `buf`. Returns the state, where the valid
/// records end, and how many bytes of a torn last write follow them.
fn replay_file(
    buf: &[u8],
    seq: u64,
    starts_replay: bool,
    replay: &mut Replay,
) -> Result<(usize, u64), WalError> {
    let mut offset = 0usize;
    while offset < buf.len() {
        let corrupt = |reason: String| WalError::Corrupt {
            file: segment_name(seq),
            offset: offset as u64,
            reason,
        };
        match record::decode_at(buf, offset, position(seq, 0)) {
            Ok((record, len)) => {
                replay
                    .apply(record, starts_replay && offset == 0)
                    .map_err(corrupt)?;
                offset += len;
            }
            // The file ends inside this frame: the last write was cut short
            // by a crash (sectors persist in order, so what reached the
            // medium is a prefix). It was never synced, so no one was
            // promised it: cut it off.
            Err(BadFrame::Short(_)) => {
                return Ok((offset, (buf.len() - offset) as u64));
            }
            // A complete frame that does not check out is damage, at the
            // tail as anywhere else: never a silently shorter log.
            Err(BadFrame::Damaged(reason)) => {
                let reason = match next_valid_frame(buf, offset, position(seq, 0)) {
                    Some(next) => format!("{reason}; a valid record follows at offset {next}"),
                    None => reason,
                };
                return Err(corrupt(reason));
            }
        }
    }
    Ok((offset, 0))
}

/// The offset of the first valid frame after `bad`, if any.
fn next_valid_frame(buf: &[u8], bad: usize, base: u64) -> Option<usize> {
    (bad + 1..buf.len().saturating_sub(FRAME_HEADER_BYTES - 1))
        .find(|&offset| record::decode_at(buf, offset, base).is_ok())
}

/// Whether segment `seq` begins with a checkpoint (see [`Wal::save_snapshot`]):
/// such a segment was written whole and renamed into place, so the log can
/// be replayed from it alone. A first frame that does not decode (read
/// again, in case the read itself flipped a bit) is not a checkpoint; if
/// the segment is in the replayed range, replay reports the damage.
fn starts_with_checkpoint<D: Disk>(disk: &D, seq: u64) -> Result<bool, WalError> {
    // Only the first frame is needed, not the whole (possibly large)
    // checkpoint segment that replay reads anyway.
    let name = segment_name(seq);
    let first_frame = disk
        .len(&name)?
        .min((FRAME_HEADER_BYTES + MAX_RECORD_BYTES) as u64);
    for _ in 0..MAX_READ_ATTEMPTS {
        // Fits: bounded by one frame above.
        let buf = disk.read_at(&name, 0, first_frame as usize)?;
        match record::decode_at(&buf, 0, position(seq, 0)) {
            Ok((record, _)) => return Ok(matches!(record, Record::Checkpoint { .. })),
            Err(BadFrame::Short(_)) => return Ok(false),
            Err(BadFrame::Damaged(_)) => continue,
        }
    }
    Ok(false)
}

/// Reads segment `seq` whole and replays it onto `replay`, reading again
/// while a damaged frame might be a transient read fault. Returns where its
/// valid records end and the bytes of a torn tail after them.
fn replay_segment<D: Disk>(
    disk: &D,
    seq: u64,
    starts_replay: bool,
    replay: &mut Replay,
) -> Result<(usize, u64), WalError> {
    // A checkpoint segment holds the whole retained log, which may exceed
    // a segment's usual size; any other is bounded by the roll.
    let max_len = if starts_replay {
        MAX_WAL_BYTES
    } else {
        MAX_SEGMENT_FILE_BYTES
    };
    let name = segment_name(seq);
    crate::reread::read_checked(
        &name,
        || read_segment(disk, seq, max_len),
        |buf| {
            // Replay onto a copy: a failed attempt must not leave half a
            // segment behind.
            let mut attempt = replay.clone();
            let done = replay_file(buf, seq, starts_replay, &mut attempt)?;
            *replay = attempt;
            Ok(done)
        },
    )
}

impl<D: Disk> Wal<D> {
    /// Opens the log on `disk`, creating the file on a fresh disk, and
    /// returns what it holds. A torn tail is cut off; corruption anywhere
    /// else is an error (see the module documentation). Files an
    /// interrupted compaction left behind are removed.
    pub fn open(mut disk: D) -> Result<(Wal<D>, Recovered), WalError> {
        let names = disk.list()?;
        let mut segments: Vec<u64> = names.iter().filter_map(|n| parse_segment(n)).collect();
        segments.sort_unstable();
        if segments.is_empty() {
            // The entry must be durable before anything written to the file
            // can be: data synced into a file whose name is lost is lost.
            disk.create(WAL_FILE)?;
            disk.sync_dir()?;
            let wal = Wal {
                disk,
                log: LogImage::default(),
                hard_state: HardState::default(),
                durable_commit: LogIndex(0),
                first_seq: 0,
                seq: 0,
                end: 0,
                closed_bytes: 0,
                dirty: false,
                poisoned: false,
            };
            return Ok((wal, Recovered::default()));
        }
        // The log is replayed from the newest checkpoint segment (older
        // segments are what a compaction had not yet removed when it was
        // interrupted), or from segment 0 if there is none.
        let mut start = segments.len() - 1;
        while start > 0 && !starts_with_checkpoint(&disk, segments[start])? {
            start -= 1;
        }
        // Segment 0 is where a fresh log starts; every other oldest segment
        // must begin with a checkpoint. (Checkpoint segments are never 0.)
        if segments[start] != 0 && !starts_with_checkpoint(&disk, segments[start])? {
            return Err(WalError::Corrupt {
                file: segment_name(segments[start]),
                offset: 0,
                reason: format!(
                    "the oldest segment is {} but it does not begin with a checkpoint: \
                     the segments before it are missing",
                    segments[start]
                ),
            });
        }
        let live = &segments[start..];
        // Live segments are numbered without gaps: a missing one is lost
        // data, not a shorter log.
        for (i, &seq) in live.iter().enumerate() {
            let expected = live[0] + i as u64;
            if seq != expected || i as u64 >= MAX_SEGMENTS {
                return Err(WalError::Corrupt {
                    file: segment_name(expected),
                    offset: 0,
                    reason: format!(
                        "segment missing: found segments {:?}",
                        live.iter().take(8).collect::<Vec<_>>()
                    ),
                });
            }
        }
        let first = live[0];
        let last = *live.last().expect("non-empty");
        let mut replay = Replay::default();
        let mut closed_bytes = 0;
        let mut end = 0;
        let mut truncated_tail_bytes = 0;
        for &seq in live {
            let (valid, torn) = replay_segment(&disk, seq, seq == first, &mut replay)?;
            if torn > 0 && seq != last {
                // Only the last write can be torn, and it went to the last
                // segment: every earlier one was synced when it was closed.
                return Err(WalError::Corrupt {
                    file: segment_name(seq),
                    offset: valid as u64,
                    reason: format!("a closed segment ends with {torn} bytes of a cut record"),
                });
            }
            if seq == last {
                end = valid as u64;
                truncated_tail_bytes = torn;
            } else {
                closed_bytes += valid as u64;
            }
        }
        // The commit index is recorded lazily and may have been written
        // with a batch whose entries were cut short (the replica writes a
        // batch's hard state before its entries): it is a hint that the
        // log may not reach, recomputable from the leader. Clamp it.
        let last_index = replay.log.last_index();
        let clamped = replay.hard_state.commit > last_index;
        if clamped {
            replay.hard_state.commit = last_index;
        }
        let base = replay.log.base.clone();
        let snapshot = if base.index.0 > 0 {
            let file_meta = snapshot::SnapshotMeta {
                index: base.index,
                term: base.term,
            };
            let data = snapshot::read_snapshot_file(&disk, file_meta)?;
            Some(Snapshot { meta: base, data })
        } else {
            None
        };
        if truncated_tail_bytes > 0 {
            let name = segment_name(last);
            disk.truncate(&name, end)?;
            disk.sync(&name)?;
        }
        // Finish what an interrupted compaction started.
        let mut removed = false;
        for name in &names {
            let stale_segment = parse_segment(name).is_some_and(|seq| seq < first);
            if stale_segment || name.ends_with(TMP_SUFFIX) && name.starts_with("raft-") {
                disk.remove(name)?;
                removed = true;
            }
        }
        if removed {
            disk.sync_dir()?;
        }
        snapshot::remove_snapshots_except(
            &mut disk,
            snapshot.as_ref().map(|s| snapshot::SnapshotMeta {
                index: s.meta.index,
                term: s.meta.term,
            }),
        )?;
        let recovered = Recovered {
            hard_state: replay.hard_state,
            snapshot,
            entries: replay.entries,
            truncated_tail_bytes,
        };
        let mut wal = Wal {
            disk,
            log: replay.log,
            hard_state: replay.hard_state,
            durable_commit: replay.hard_state.commit,
            first_seq: first,
            seq: last,
            end,
            closed_bytes,
            dirty: false,
            poisoned: false,
        };
        debug_assert_eq!(wal.disk.len(&segment_name(last)).ok(), Some(wal.end));
        if clamped {
            // Record the clamped value, so that the stale hint can never
            // later cover an entry written in the place of a lost one.
            wal.write(&[RecordRef::HardState(wal.hard_state)])?;
            wal.sync()?;
        }
        Ok((wal, recovered))
    }

    /// Reads the entries after [`Wal::first_index`] back from the disk:
    /// the WAL holds only their terms (raft's log holds the entries). For
    /// tests and tools; it reads and decodes every live segment.
    pub fn read_entries(&self) -> Result<Vec<Entry>, WalError> {
        let mut replay = Replay::default();
        for seq in self.first_seq..=self.seq {
            let (_, torn) = replay_segment(&self.disk, seq, seq == self.first_seq, &mut replay)?;
            if torn > 0 {
                return Err(WalError::Corrupt {
                    file: segment_name(seq),
                    offset: self.end,
                    reason: format!("{torn} bytes of a cut record in a live log"),
                });
            }
        }
        if replay.log != self.log {
            return Err(WalError::Corrupt {
                file: segment_name(self.seq),
                offset: 0,
                reason: "the segments read back do not hold the log written".into(),
            });
        }
        Ok(replay.entries)
    }
}
