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
//! hard state) followed by the entries kept after the snapshot — synced and
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

use crate::disk::{Disk, DiskError};
use crate::record::{
    self, BadFrame, ENTRY_OVERHEAD_BYTES, FRAME_HEADER_BYTES, MAX_ENTRY_PAYLOAD_BYTES,
    MAX_RECORD_BYTES, Record,
};
use crate::snapshot;
#[cfg(test)]
use crate::snapshot::snapshot_name;
use raft::{Entry, HardState, LogIndex, Snapshot, SnapshotMeta, Term};
use std::fmt;

/// The name of the log's first segment file. Segment `n` is named
/// [`segment_name`]`(n)`.
pub const WAL_FILE: &str = "raft-00000000.wal";

/// Small enough that a simulated run rolls segments several times, large
/// enough that a real node syncs a closed segment rarely.
///
/// A segment is closed and the next one started when a record would grow it
/// past this size (a record never spans two segments, so a segment holding
/// one huge record may be larger, up to [`MAX_SEGMENT_FILE_BYTES`]).
pub const SEGMENT_BYTES: u64 = 256 << 10;

/// The largest a segment file can legitimately be; a larger one is corrupt.
pub const MAX_SEGMENT_FILE_BYTES: u64 =
    SEGMENT_BYTES + (MAX_RECORD_BYTES + FRAME_HEADER_BYTES) as u64;

/// The most live segments a log may have (with [`MAX_WAL_BYTES`], a bound
/// on what recovery lists and reads).
pub const MAX_SEGMENTS: u64 = MAX_WAL_BYTES / SEGMENT_BYTES + 1;

/// The file name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("raft-{seq:08}.wal")
}

/// The sequence number of a segment file name, if it is one.
fn parse_segment(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("raft-")?.strip_suffix(".wal")?;
    // At least 8 digits, more once the numbers outgrow them.
    if !(8..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The position a frame's header checksum is bound to: its segment and its
/// offset in it, so a frame found in another file or at another offset
/// fails its check.
fn position(seq: u64, offset: u64) -> u64 {
    debug_assert!(offset < 1 << 40);
    // Segment numbers grow with every compaction; the low 24 bits are
    // enough to tell a frame's segment from its neighbours'.
    ((seq & 0xff_ffff) << 40) | offset
}

/// The largest the log's segments may grow, together. An append that would
/// grow them past it fails with [`WalError::LogFull`] (compaction,
/// [`Wal::save_snapshot`], is what keeps a long-lived log below it); a
/// segment found larger than it on open is corrupt.
pub const MAX_WAL_BYTES: u64 = 1 << 30;

/// Why a log operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalError {
    /// The disk failed.
    Disk(DiskError),
    /// The file holds damaged or contradictory data that is not a torn tail.
    Corrupt {
        /// The file.
        file: String,
        /// The offset of the bad frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An append that does not connect to the log: its first index is past
    /// the last index + 1.
    Gap {
        /// The index the append had to start at or before.
        expected: LogIndex,
        /// The index it started at.
        got: LogIndex,
    },
    /// An append whose entries are not a valid log segment: an index 0,
    /// indices that are not contiguous, or terms that go backwards.
    InvalidEntries {
        /// What is wrong.
        reason: String,
    },
    /// An append that would remove or change an entry at or below the commit
    /// index made durable by the last sync. Raft never does that (§5.3, Figure
    /// 2 AppendEntries rule 3 deletes only conflicting entries, and by Leader
    /// Completeness, §5.4, committed entries never conflict).
    TruncateCommitted {
        /// The first index the append would remove or change.
        index: LogIndex,
        /// The durable commit index.
        commit: LogIndex,
    },
    /// A hard state that goes backwards: a lower term, a lower commit index,
    /// or a different vote in the same term (§5.2: at most one vote per term).
    InvalidHardState {
        /// What is wrong.
        reason: String,
    },
    /// An entry whose payload is larger than [`MAX_ENTRY_PAYLOAD_BYTES`].
    TooLarge {
        /// The entry.
        index: LogIndex,
        /// Its payload size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The file would grow past [`MAX_WAL_BYTES`].
    LogFull {
        /// The size it would reach.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// An earlier write or sync failed; the log must be reopened.
    Poisoned,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Disk(e) => write!(f, "disk: {e}"),
            WalError::Corrupt {
                file,
                offset,
                reason,
            } => write!(f, "{file} is corrupt at offset {offset}: {reason}"),
            WalError::Gap { expected, got } => write!(
                f,
                "append at {got} leaves a gap (must start at or before {expected})"
            ),
            WalError::InvalidEntries { reason } => write!(f, "invalid entries: {reason}"),
            WalError::TruncateCommitted { index, commit } => write!(
                f,
                "append would remove or change {index}, at or below the durable commit index {commit}"
            ),
            WalError::InvalidHardState { reason } => write!(f, "invalid hard state: {reason}"),
            WalError::TooLarge { index, bytes, max } => write!(
                f,
                "entry {index} has {bytes} payload bytes, more than the limit of {max}"
            ),
            WalError::LogFull { bytes, max } => {
                write!(
                    f,
                    "the log would grow to {bytes} bytes, past the limit of {max}"
                )
            }
            WalError::Poisoned => write!(f, "an earlier write failed; reopen the log"),
        }
    }
}

impl std::error::Error for WalError {}

impl WalError {
    /// Whether this is damage found in durable data (the disk holds
    /// something it was never given): the node must not run on it.
    pub fn is_corruption(&self) -> bool {
        matches!(self, WalError::Corrupt { .. })
    }

    /// Whether the disk failed an operation (an I/O error, a full disk, or
    /// an earlier such failure): reopening later may succeed.
    pub fn is_disk_failure(&self) -> bool {
        matches!(self, WalError::Disk(_) | WalError::Poisoned)
    }
}

impl From<DiskError> for WalError {
    fn from(e: DiskError) -> Self {
        WalError::Disk(e)
    }
}

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

/// The log as the WAL holds it: the snapshot it continues from and the
/// entries after it.
#[derive(Clone, Debug, Default)]
struct LogImage {
    /// What the log starts after: index 0 (term 0) until the first
    /// compaction. Invariant: `base.index > 0` implies `base.term > 0`.
    base: SnapshotMeta,
    /// Invariant: `entries[i].index == base.index + i + 1`, and terms never
    /// decrease along it, starting from `base.term`.
    entries: Vec<Entry>,
}

impl LogImage {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.entries.len() as u64)
    }

    /// The term at `index`: the base's at the base, `None` below the base
    /// or past the end.
    fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.entry(index).map(|e| e.term)
    }

    fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let offset = index.0.checked_sub(self.base.index.0 + 1)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Checks that `new` can be appended: indices contiguous from a first
    /// index in `base.index + 1..=last + 1`, terms non-decreasing from the
    /// entry before.
    fn check_append(&self, new: &[Entry]) -> Result<(), WalError> {
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
    fn splice(&mut self, new: &[Entry]) {
        if let Some(first) = new.first() {
            self.truncate_from(first.index);
            self.entries.extend_from_slice(new);
            debug_assert_eq!(self.last_index(), new.last().expect("non-empty").index);
        }
    }

    /// Removes the entries from `index` on. Precondition: `index > base`.
    fn truncate_from(&mut self, index: LogIndex) {
        debug_assert!(index > self.base.index);
        self.entries
            .truncate((index.0 - self.base.index.0 - 1) as usize);
    }

    /// The log after compacting up to `base` (§7, Figure 13 step 6): the
    /// entries after it if this log holds `base`'s entry with its term,
    /// else none ("discard the entire log").
    fn compacted_to(&self, base: &SnapshotMeta) -> LogImage {
        let entries = if self.term_at(base.index) == Some(base.term) {
            self.entries
                .iter()
                .filter(|e| e.index > base.index)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        LogImage {
            base: base.clone(),
            entries,
        }
    }
}

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

/// The state replayed so far, with the checks every record must pass. The
/// same checks guard [`Wal::append`] and [`Wal::set_hard_state`]: what the
/// writer refuses to write, the reader refuses to believe.
#[derive(Clone, Default)]
struct Replay {
    log: LogImage,
    hard_state: HardState,
}

impl Replay {
    /// Replays `record`; `first_of_replay` says whether it is the first
    /// record of the first segment replayed, the only place a checkpoint
    /// may be.
    fn apply(&mut self, record: Record, first_of_replay: bool) -> Result<(), String> {
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
                    entries: Vec::new(),
                };
                self.hard_state = hard_state;
            }
        }
        Ok(())
    }
}

pub use crate::reread::MAX_READ_ATTEMPTS;

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

/// Reads segment `seq` whole, refusing a file larger than `max_len`.
fn read_segment<D: Disk>(disk: &D, seq: u64, max_len: u64) -> Result<Vec<u8>, WalError> {
    let name = segment_name(seq);
    let file_len = disk.len(&name)?;
    if file_len > max_len {
        return Err(WalError::Corrupt {
            file: name,
            offset: max_len,
            reason: format!("segment of {file_len} bytes exceeds the limit of {max_len}"),
        });
    }
    // Fits: bounded by `max_len`, at most MAX_WAL_BYTES.
    Ok(disk.read_at(&name, 0, file_len as usize)?)
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

/// The name a checkpoint segment is written under before it is renamed
/// into place.
fn temporary_name(seq: u64) -> String {
    format!("{}{TMP_SUFFIX}", segment_name(seq))
}

const TMP_SUFFIX: &str = ".tmp";

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
            entries: replay.log.entries.clone(),
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
            wal.write(&[Record::HardState(wal.hard_state)])?;
            wal.sync()?;
        }
        Ok((wal, recovered))
    }

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
            records.push(Record::TruncateFrom(first.index));
        }
        for chunk in chunks(entries) {
            records.push(Record::Entries(chunk.to_vec()));
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
        self.write(&[Record::HardState(hs)])?;
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

    /// Makes `snapshot` the start of the log (§7), durably, and drops the
    /// files it makes unnecessary. Used both for a snapshot this node took
    /// (log compaction) and for one received from the leader
    /// (InstallSnapshot). The entries after the snapshot are kept if the log
    /// holds the snapshot's last entry with its term, else the whole log is
    /// discarded (Figure 13, receiver steps 6–7).
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
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), WalError> {
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
        let next = self.seq + 1;
        let mut records = vec![Record::Checkpoint {
            hard_state: self.hard_state,
            base: meta.clone(),
        }];
        for chunk in chunks(&log.entries) {
            records.push(Record::Entries(chunk.to_vec()));
        }
        let mut bytes = Vec::new();
        for r in &records {
            record::encode_into(r, position(next, bytes.len() as u64), &mut bytes);
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

    /// The entries held, from [`Wal::first_index`].
    pub fn entries(&self) -> &[Entry] {
        &self.log.entries
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
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
    fn write(&mut self, records: &[Record]) -> Result<(), WalError> {
        let mut bytes = Vec::new();
        for r in records {
            let mut frame = Vec::new();
            let at = self.end + bytes.len() as u64;
            record::encode_into(r, position(self.seq, at), &mut frame);
            if at > 0 && at + frame.len() as u64 > SEGMENT_BYTES {
                self.write_bytes(&bytes)?;
                bytes.clear();
                self.roll()?;
                frame.clear();
                record::encode_into(r, position(self.seq, 0), &mut frame);
            }
            bytes.extend_from_slice(&frame);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use proptest::prelude::*;
    use raft::{EntryPayload, NodeId};

    fn entry(index: u64, term: u64, data: &str) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Command(data.as_bytes().to_vec()),
        }
    }

    fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
        HardState {
            term: Term(term),
            vote: vote.map(NodeId),
            commit: LogIndex(commit),
        }
    }

    fn open(disk: &MemDisk) -> (Wal<MemDisk>, Recovered) {
        Wal::open(disk.clone()).expect("open")
    }

    #[test]
    fn fresh_disk_opens_empty_with_a_durable_file() {
        let disk = MemDisk::new();
        let (wal, rec) = open(&disk);
        assert_eq!(rec, Recovered::default());
        assert_eq!(wal.last_index(), LogIndex(0));
        disk.crash();
        assert_eq!(disk.list().unwrap(), vec![WAL_FILE.to_string()]);
    }

    #[test]
    fn appends_and_hard_state_survive_reopen() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        let log = vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c")];
        wal.append(&log[..2]).unwrap();
        wal.set_hard_state(hs(1, Some(2), 1)).unwrap();
        wal.append(&log[2..]).unwrap();
        wal.set_hard_state(hs(2, None, 3)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (wal, rec) = open(&disk);
        assert_eq!(rec.entries, log);
        assert_eq!(rec.hard_state, hs(2, None, 3));
        assert_eq!(rec.truncated_tail_bytes, 0);
        assert_eq!(wal.entries(), &log[..]);
        assert_eq!(wal.term(LogIndex(3)), Some(Term(2)));
        assert_eq!(wal.entry(LogIndex(2)), Some(&log[1]));
        assert_eq!(wal.entry(LogIndex(0)), None);
    }

    #[test]
    fn conflict_truncation_survives_reopen() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")])
            .unwrap();
        wal.sync().unwrap();
        // A new leader's log conflicts from index 2 (§5.3).
        let replacement = [entry(2, 2, "x")];
        wal.append(&replacement).unwrap();
        assert_eq!(wal.last_index(), LogIndex(2));
        wal.sync().unwrap();
        disk.crash();
        let (_, rec) = open(&disk);
        assert_eq!(rec.entries, vec![entry(1, 1, "a"), entry(2, 2, "x")]);
    }

    #[test]
    fn crash_loses_exactly_the_unsynced_suffix() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
        wal.set_hard_state(hs(1, Some(1), 1)).unwrap();
        wal.sync().unwrap();
        wal.append(&[entry(3, 1, "c")]).unwrap();
        wal.set_hard_state(hs(2, None, 2)).unwrap();
        disk.crash();
        let (wal, rec) = open(&disk);
        assert_eq!(rec.entries, vec![entry(1, 1, "a"), entry(2, 1, "b")]);
        assert_eq!(rec.hard_state, hs(1, Some(1), 1));
        assert_eq!(rec.truncated_tail_bytes, 0);
        assert_eq!(wal.last_index(), LogIndex(2));
    }

    /// Writes two synced batches and returns the offsets where each record
    /// starts, plus the file length.
    fn three_records(disk: &MemDisk) -> Vec<u64> {
        let (mut wal, _) = open(disk);
        let mut offsets = vec![wal.file_len()];
        wal.append(&[entry(1, 1, "first")]).unwrap();
        offsets.push(wal.file_len());
        wal.append(&[entry(2, 1, "second")]).unwrap();
        offsets.push(wal.file_len());
        wal.append(&[entry(3, 1, "third")]).unwrap();
        offsets.push(wal.file_len());
        wal.sync().unwrap();
        offsets
    }

    #[test]
    fn torn_tail_mid_record_is_cut_and_reported() {
        let mut disk = MemDisk::new();
        let offsets = three_records(&disk);
        let cut = offsets[2] + 5;
        disk.truncate(WAL_FILE, cut).unwrap();
        disk.sync(WAL_FILE).unwrap();
        let (mut wal, rec) = open(&disk);
        assert_eq!(
            rec.entries,
            vec![entry(1, 1, "first"), entry(2, 1, "second")]
        );
        assert_eq!(rec.truncated_tail_bytes, 5);
        // The cut is durable, and appending continues where the log ends.
        wal.append(&[entry(3, 2, "again")]).unwrap();
        wal.sync().unwrap();
        disk.crash();
        let (_, rec) = open(&disk);
        assert_eq!(rec.truncated_tail_bytes, 0);
        assert_eq!(rec.entries.last(), Some(&entry(3, 2, "again")));
    }

    #[test]
    fn torn_header_is_cut_and_reported() {
        let mut disk = MemDisk::new();
        let offsets = three_records(&disk);
        disk.truncate(WAL_FILE, offsets[3] - 1).unwrap();
        disk.truncate(WAL_FILE, offsets[2] + 3).unwrap();
        let (_, rec) = open(&disk);
        assert_eq!(rec.entries.len(), 2);
        assert_eq!(rec.truncated_tail_bytes, 3);
    }

    #[test]
    fn garbage_after_the_last_record_is_cut_and_reported() {
        let mut disk = MemDisk::new();
        let offsets = three_records(&disk);
        let garbage = [0x17, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
        disk.write_at(WAL_FILE, offsets[3], &garbage).unwrap();
        disk.sync(WAL_FILE).unwrap();
        let (_, rec) = open(&disk);
        assert_eq!(rec.entries.len(), 3);
        assert_eq!(rec.truncated_tail_bytes, garbage.len() as u64);
        assert_eq!(disk.len(WAL_FILE).unwrap(), offsets[3]);
    }

    #[test]
    fn complete_garbage_header_at_the_tail_is_corruption_not_a_torn_write() {
        // A torn write leaves a prefix of what was written; a whole header
        // that fails its checksum is damage, even at the end of the file.
        let mut disk = MemDisk::new();
        let offsets = three_records(&disk);
        disk.write_at(WAL_FILE, offsets[3], &[0xff; 12]).unwrap();
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, offsets[3]),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn flipped_byte_in_a_middle_record_is_corruption_at_its_offset() {
        let disk = MemDisk::new();
        let offsets = three_records(&disk);
        assert!(disk.corrupt(WAL_FILE, offsets[1] + FRAME_HEADER_BYTES as u64 + 2, 0x01));
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt {
                file,
                offset,
                reason,
            }) => {
                assert_eq!(file, WAL_FILE);
                assert_eq!(offset, offsets[1]);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn flipped_length_in_a_middle_record_is_corruption_not_a_short_log() {
        // A damaged length that points past the end looks like a torn tail;
        // the valid records after it give it away.
        let disk = MemDisk::new();
        let offsets = three_records(&disk);
        assert!(disk.corrupt(WAL_FILE, offsets[1] + 2, 0x01));
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, offsets[1]);
                assert!(
                    reason.contains(&format!("offset {}", offsets[2])),
                    "{reason}"
                );
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn flipped_byte_in_the_last_record_is_corruption_not_a_torn_tail() {
        // The last record was synced and may have been acknowledged:
        // cutting it off would silently forget it.
        let disk = MemDisk::new();
        let offsets = three_records(&disk);
        assert!(disk.corrupt(WAL_FILE, offsets[3] - 1, 0x40));
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, offsets[2]);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    /// A disk whose first `flips` reads come back with one bit flipped.
    struct FlakyReads {
        inner: MemDisk,
        flips: std::cell::Cell<u32>,
    }

    impl Disk for FlakyReads {
        fn list(&self) -> Result<Vec<String>, DiskError> {
            self.inner.list()
        }
        fn create(&mut self, name: &str) -> Result<(), DiskError> {
            self.inner.create(name)
        }
        fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
            self.inner.write_at(name, offset, data)
        }
        fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
            let mut data = self.inner.read_at(name, offset, len)?;
            if self.flips.get() > 0 && !data.is_empty() {
                self.flips.set(self.flips.get() - 1);
                let at = data.len() / 2;
                data[at] ^= 0x08;
            }
            Ok(data)
        }
        fn len(&self, name: &str) -> Result<u64, DiskError> {
            self.inner.len(name)
        }
        fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
            self.inner.truncate(name, len)
        }
        fn sync(&mut self, name: &str) -> Result<(), DiskError> {
            self.inner.sync(name)
        }
        fn sync_dir(&mut self) -> Result<(), DiskError> {
            self.inner.sync_dir()
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
            self.inner.rename(from, to)
        }
        fn remove(&mut self, name: &str) -> Result<(), DiskError> {
            self.inner.remove(name)
        }
    }

    /// Regression (seed 3249 of a 3,000-seed sweep): a disk filled up
    /// between a batch's records, and recovery found entries of a term its
    /// hard state had never reached. The replica now writes the hard state
    /// first; a batch cut after it may leave a commit index past the log,
    /// which recovery clamps.
    #[test]
    fn a_batch_cut_after_its_hard_state_recovers_with_the_commit_clamped() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
        wal.set_hard_state(hs(1, Some(1), 1)).unwrap();
        wal.sync().unwrap();
        // The next batch: a new term and commit, then its entries, which
        // never reach the disk (full).
        wal.set_hard_state(hs(2, None, 4)).unwrap();
        disk.set_capacity(Some(disk.len(WAL_FILE).unwrap()));
        assert!(wal.append(&[entry(3, 2, "c"), entry(4, 2, "d")]).is_err());
        drop(wal);
        disk.crash_torn(|_, len| len);
        disk.set_capacity(None);
        let (wal, rec) = open(&disk);
        assert_eq!(rec.entries.len(), 2);
        assert_eq!(rec.hard_state, hs(2, None, 2), "term kept, commit clamped");
        assert_eq!(wal.hard_state().commit, LogIndex(2));
    }

    #[test]
    fn transient_bit_flips_on_read_are_read_again_not_believed() {
        let disk = MemDisk::new();
        three_records(&disk);
        let flaky = |flips| FlakyReads {
            inner: disk.clone(),
            flips: std::cell::Cell::new(flips),
        };
        let (_, rec) = Wal::open(flaky(1)).expect("the second read is clean");
        assert_eq!(rec.entries.len(), 3);
        // Two reads flipped alike (chance, on a small file) are read past.
        let (_, rec) = Wal::open(flaky(2)).expect("the third read is clean");
        assert_eq!(rec.entries.len(), 3);
        // Three reads that agree on a flipped bit are damage on the medium.
        assert!(matches!(Wal::open(flaky(3)), Err(WalError::Corrupt { .. })));
    }

    #[test]
    fn valid_record_that_contradicts_the_log_is_corruption() {
        // A record that checks out but starts past the log's end (as a
        // misdirected write would leave) must not be believed.
        let mut disk = MemDisk::new();
        let offsets = three_records(&disk);
        let mut bogus = Vec::new();
        record::encode_into(
            &Record::Entries(vec![entry(9, 1, "stray")]),
            offsets[3],
            &mut bogus,
        );
        disk.write_at(WAL_FILE, offsets[3], &bogus).unwrap();
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, offsets[3]);
                assert!(reason.contains("starts at i9"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn invalid_appends_are_refused_and_write_nothing() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 2, "a"), entry(2, 2, "b")]).unwrap();
        wal.set_hard_state(hs(2, None, 2)).unwrap();
        wal.sync().unwrap();
        let len = wal.file_len();
        assert_eq!(
            wal.append(&[entry(4, 2, "gap")]),
            Err(WalError::Gap {
                expected: LogIndex(3),
                got: LogIndex(4)
            })
        );
        assert!(matches!(
            wal.append(&[entry(3, 2, "a"), entry(5, 2, "b")]),
            Err(WalError::InvalidEntries { .. })
        ));
        assert!(matches!(
            wal.append(&[entry(3, 1, "older term")]),
            Err(WalError::InvalidEntries { .. })
        ));
        assert!(matches!(
            wal.append(&[entry(0, 2, "zero")]),
            Err(WalError::InvalidEntries { .. })
        ));
        assert_eq!(
            wal.append(&[entry(2, 3, "overwrites committed")]),
            Err(WalError::TruncateCommitted {
                index: LogIndex(2),
                commit: LogIndex(2)
            })
        );
        let big = Entry {
            term: Term(2),
            index: LogIndex(3),
            payload: EntryPayload::Command(vec![0; MAX_ENTRY_PAYLOAD_BYTES + 1]),
        };
        assert!(matches!(
            wal.append(&[big]),
            Err(WalError::TooLarge {
                index: LogIndex(3),
                ..
            })
        ));
        assert_eq!(wal.file_len(), len);
        assert_eq!(wal.disk().len(WAL_FILE).unwrap(), len);
        assert_eq!(wal.last_index(), LogIndex(2));
    }

    #[test]
    fn rewriting_committed_entries_unchanged_is_allowed() {
        // A leader may resend entries the follower already has; storing
        // them again changes nothing committed.
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
        wal.set_hard_state(hs(1, None, 2)).unwrap();
        wal.sync().unwrap();
        wal.append(&[entry(2, 1, "b"), entry(3, 1, "c")]).unwrap();
        wal.sync().unwrap();
        let (_, rec) = open(&disk);
        assert_eq!(rec.entries.len(), 3);
        // But a shorter resend that would cut committed entry 2 off is not.
        let (mut wal, _) = open(&disk);
        assert_eq!(
            wal.append(&[entry(1, 1, "a")]),
            Err(WalError::TruncateCommitted {
                index: LogIndex(2),
                commit: LogIndex(2)
            })
        );
    }

    #[test]
    fn extending_past_a_durable_commit_beyond_the_log_is_allowed() {
        // Only stored entries can be removed or changed: new entries past
        // the log's end never trip the committed-entry check, even when the
        // durable commit index runs ahead of the stored log.
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a")]).unwrap();
        wal.set_hard_state(hs(1, None, 3)).unwrap();
        wal.sync().unwrap();
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")])
            .unwrap();
        assert_eq!(wal.last_index(), LogIndex(3));
    }

    #[test]
    fn truncating_below_an_unsynced_commit_is_allowed() {
        // Raft may hand over the commit index and the conflicting entries
        // in one batch, hard state first; only the synced commit binds.
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
        wal.sync().unwrap();
        wal.set_hard_state(hs(2, None, 2)).unwrap();
        wal.append(&[entry(2, 2, "x")]).unwrap();
        wal.sync().unwrap();
        let (_, rec) = open(&disk);
        assert_eq!(rec.entries, vec![entry(1, 1, "a"), entry(2, 2, "x")]);
    }

    #[test]
    fn hard_state_regressions_are_refused() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.set_hard_state(hs(3, Some(1), 2)).unwrap();
        for bad in [
            hs(2, Some(1), 2),
            hs(3, Some(2), 2),
            hs(3, None, 2),
            hs(3, Some(1), 1),
        ] {
            assert!(
                matches!(
                    wal.set_hard_state(bad),
                    Err(WalError::InvalidHardState { .. })
                ),
                "{bad:?} accepted"
            );
        }
        wal.set_hard_state(hs(4, None, 2)).unwrap();
        wal.set_hard_state(hs(4, Some(3), 3)).unwrap();
        assert_eq!(wal.hard_state(), hs(4, Some(3), 3));
    }

    #[test]
    fn unchanged_hard_state_and_clean_sync_touch_nothing() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.set_hard_state(hs(1, None, 0)).unwrap();
        wal.sync().unwrap();
        let (written, syncs) = (disk.bytes_written(), disk.syncs());
        wal.set_hard_state(hs(1, None, 0)).unwrap();
        wal.sync().unwrap();
        wal.append(&[]).unwrap();
        wal.sync().unwrap();
        assert_eq!(disk.bytes_written(), written);
        assert_eq!(disk.syncs(), syncs);
        wal.append(&[entry(1, 1, "a")]).unwrap();
        wal.set_hard_state(hs(1, None, 1)).unwrap();
        wal.sync().unwrap();
        assert_eq!(disk.syncs(), syncs + 1, "one sync per batch");
    }

    #[test]
    fn large_batch_is_split_into_records_and_round_trips() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        let payload = "x".repeat(MAX_RECORD_BYTES / 3);
        let batch: Vec<Entry> = (1..=7).map(|i| entry(i, 1, &payload)).collect();
        assert!(chunks(&batch).len() >= 3);
        wal.append(&batch).unwrap();
        wal.sync().unwrap();
        let (_, rec) = open(&disk);
        assert_eq!(rec.entries, batch);
    }

    #[test]
    fn failed_write_poisons_the_log_until_reopened() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a")]).unwrap();
        wal.sync().unwrap();
        disk.set_capacity(Some(disk.len(WAL_FILE).unwrap()));
        assert_eq!(
            wal.append(&[entry(2, 1, "b")]),
            Err(WalError::Disk(DiskError::NoSpace))
        );
        assert_eq!(wal.sync(), Err(WalError::Poisoned));
        assert_eq!(wal.set_hard_state(hs(1, None, 1)), Err(WalError::Poisoned));
        disk.set_capacity(None);
        let (mut wal, rec) = open(&disk);
        assert_eq!(rec.entries, vec![entry(1, 1, "a")]);
        wal.append(&[entry(2, 1, "b")]).unwrap();
    }

    fn big(index: u64) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: EntryPayload::Command(vec![index as u8; (SEGMENT_BYTES / 4) as usize]),
        }
    }

    /// Writes a log of three segments; returns it.
    fn three_segments(disk: &MemDisk) -> Vec<Entry> {
        let (mut wal, _) = open(disk);
        let log: Vec<Entry> = (1..=8).map(big).collect();
        for e in &log {
            wal.append(std::slice::from_ref(e)).unwrap();
        }
        wal.set_hard_state(hs(1, None, 8)).unwrap();
        wal.sync().unwrap();
        assert_eq!(wal.segment(), 2);
        log
    }

    fn snapshot(index: u64, term: u64, data: &str) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(index),
                term: Term(term),
                membership: raft::Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]),
            },
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_compaction_leaves_one_segment_and_recovers_snapshot_and_tail() {
        let disk = MemDisk::new();
        let log = three_segments(&disk);
        let (mut wal, _) = open(&disk);
        wal.save_snapshot(&snapshot(6, 1, "six")).unwrap();
        assert_eq!(wal.first_index(), LogIndex(7));
        assert_eq!(wal.entries(), &log[6..]);
        assert_eq!(wal.first_segment(), wal.segment());
        wal.append(&[entry(9, 2, "nine")]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        disk.crash();
        let (wal, rec) = open(&disk);
        assert_eq!(rec.snapshot, Some(snapshot(6, 1, "six")));
        let mut tail = log[6..].to_vec();
        tail.push(entry(9, 2, "nine"));
        assert_eq!(rec.entries, tail);
        assert_eq!(rec.hard_state, hs(1, None, 8));
        assert_eq!(wal.term(LogIndex(6)), Some(Term(1)));
        assert_eq!(wal.term(LogIndex(5)), None, "below the snapshot");
        let files = disk.list().unwrap();
        assert_eq!(
            files,
            vec![
                segment_name(3),
                snapshot_name(crate::SnapshotMeta {
                    index: LogIndex(6),
                    term: Term(1)
                })
            ],
            "older segments and nothing else removed"
        );
        assert!(
            wal.size_bytes() < SEGMENT_BYTES,
            "the old segments' bytes are gone"
        );
    }

    #[test]
    fn an_installed_snapshot_keeps_a_matching_suffix_and_discards_a_conflicting_log() {
        // Figure 13, receiver steps 6 and 7.
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        let log: Vec<Entry> = (1..=5).map(|i| entry(i, 1, "x")).collect();
        wal.append(&log).unwrap();
        wal.sync().unwrap();
        wal.save_snapshot(&snapshot(3, 1, "same entry")).unwrap();
        assert_eq!(wal.entries(), &log[3..]);
        wal.save_snapshot(&snapshot(5, 2, "another leader's entry"))
            .unwrap();
        assert!(wal.entries().is_empty());
        assert_eq!(wal.last_index(), LogIndex(5));
        wal.append(&[entry(6, 2, "after")]).unwrap();
        assert!(matches!(
            wal.append(&[entry(5, 2, "below")]),
            Err(WalError::InvalidEntries { .. })
        ));
        assert!(matches!(
            wal.save_snapshot(&snapshot(4, 2, "older")),
            Err(WalError::InvalidEntries { .. })
        ));
        wal.sync().unwrap();
        let (_, rec) = open(&disk);
        assert_eq!(rec.snapshot.unwrap().meta.index, LogIndex(5));
        assert_eq!(rec.entries, vec![entry(6, 2, "after")]);
    }

    #[test]
    fn a_snapshot_contradicting_a_durably_committed_entry_is_refused() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        wal.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
        wal.set_hard_state(hs(2, None, 2)).unwrap();
        wal.sync().unwrap();
        assert!(matches!(
            wal.save_snapshot(&snapshot(2, 2, "other")),
            Err(WalError::TruncateCommitted { .. })
        ));
        assert_eq!(wal.entries().len(), 2, "nothing changed");
    }

    #[test]
    fn a_crash_at_any_step_of_a_compaction_leaves_the_old_log_or_the_new() {
        let mem = MemDisk::new();
        let log = three_segments(&mem);
        let new = snapshot(6, 1, "six");
        let mut completed = false;
        for n in 1..64 {
            let image = mem.fork();
            let disk = crate::testing::FailsAt::new(image.clone(), n);
            let (mut wal, _) = Wal::open(disk).expect("open makes no changes here");
            let saved = wal.save_snapshot(&new).is_ok();
            let calls = wal.disk().calls();
            drop(wal);
            image.crash();
            let (_, rec) = open(&image);
            let old_state = rec.snapshot.is_none() && rec.entries == log;
            let new_state = rec.snapshot.as_ref() == Some(&new) && rec.entries == log[6..];
            assert!(old_state || new_state, "crash at step {n}: {rec:?}");
            assert_eq!(rec.hard_state, hs(1, None, 8));
            if saved {
                assert!(new_state, "a completed compaction is durable");
            }
            // A reopen finishes the cleanup: nothing but the live files.
            let (_, again) = open(&image);
            assert_eq!(
                again,
                Recovered {
                    truncated_tail_bytes: 0,
                    ..rec
                }
            );
            let stray = image
                .list()
                .unwrap()
                .into_iter()
                .filter(|f| f.ends_with(".tmp"))
                .count();
            assert_eq!(stray, 0, "crash at step {n} left temporary files");
            if saved && calls < n {
                completed = true;
                break;
            }
        }
        assert!(completed, "the compaction finished within the steps tried");
    }

    #[test]
    fn a_missing_snapshot_file_is_corruption() {
        let disk = MemDisk::new();
        three_segments(&disk);
        let (mut wal, _) = open(&disk);
        wal.save_snapshot(&snapshot(6, 1, "six")).unwrap();
        drop(wal);
        let mut d = disk.clone();
        d.remove(&snapshot_name(crate::SnapshotMeta {
            index: LogIndex(6),
            term: Term(1),
        }))
        .unwrap();
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { file, .. }) => assert!(file.starts_with("snap-"), "{file}"),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn an_oldest_segment_without_a_checkpoint_is_corruption() {
        let disk = MemDisk::new();
        three_segments(&disk);
        let mut d = disk.clone();
        d.remove(&segment_name(0)).unwrap();
        assert!(matches!(
            Wal::open(disk.clone()),
            Err(WalError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_log_rolls_into_segments_and_recovers_across_them() {
        let disk = MemDisk::new();
        let log = three_segments(&disk);
        assert_eq!(
            disk.list().unwrap(),
            vec![segment_name(0), segment_name(1), segment_name(2)]
        );
        assert!(disk.len(&segment_name(0)).unwrap() <= SEGMENT_BYTES);
        disk.crash();
        let (mut wal, rec) = open(&disk);
        assert_eq!(rec.entries, log);
        assert_eq!(rec.hard_state, hs(1, None, 8));
        assert_eq!(wal.segment(), 2);
        wal.append(&[entry(9, 1, "more")]).unwrap();
        wal.sync().unwrap();
        assert_eq!(open(&disk).1.entries.len(), 9);
    }

    #[test]
    fn a_missing_segment_is_corruption_not_a_shorter_log() {
        let mut disk = MemDisk::new();
        three_segments(&disk);
        disk.remove(&segment_name(1)).unwrap();
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { file, .. }) => assert_eq!(file, segment_name(1)),
            other => panic!("expected corruption, got {other:?}"),
        }
        // Nor can the first (until snapshots let old segments go). A last
        // segment lost whole leaves no gap: it cannot happen without a lying
        // directory sync, since a segment's name is synced before any write.
        let mut disk = MemDisk::new();
        three_segments(&disk);
        disk.remove(&segment_name(0)).unwrap();
        assert!(matches!(
            Wal::open(disk.clone()),
            Err(WalError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_cut_record_at_the_end_of_a_closed_segment_is_corruption() {
        let mut disk = MemDisk::new();
        three_segments(&disk);
        let name = segment_name(0);
        let len = disk.len(&name).unwrap();
        disk.truncate(&name, len - 3).unwrap();
        match Wal::open(disk.clone()) {
            Err(WalError::Corrupt { file, reason, .. }) => {
                assert_eq!(file, name);
                assert!(reason.contains("closed segment"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_segment_copied_over_another_fails_its_header_checks() {
        // Same offsets, another segment: the position bound into each
        // header tells them apart.
        let mut disk = MemDisk::new();
        three_segments(&disk);
        let one = disk.contents(&segment_name(1)).unwrap();
        disk.truncate(&segment_name(2), 0).unwrap();
        disk.write_at(&segment_name(2), 0, &one).unwrap();
        assert!(matches!(
            Wal::open(disk.clone()),
            Err(WalError::Corrupt { .. })
        ));
    }

    #[test]
    fn noop_entries_round_trip() {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        let noop = Entry {
            term: Term(1),
            index: LogIndex(1),
            payload: EntryPayload::Noop,
        };
        wal.append(std::slice::from_ref(&noop)).unwrap();
        wal.sync().unwrap();
        assert_eq!(open(&disk).1.entries, vec![noop]);
    }

    /// One step against the log; numbers are turned into a valid operation
    /// against the model's current state.
    #[derive(Clone, Debug)]
    enum Step {
        Append {
            back: u64,
            count: u64,
            bump: u64,
            len: usize,
        },
        HardState {
            bump: u64,
            vote: Option<u64>,
            commit_bump: u64,
        },
        Sync,
        /// Compact at the commit index minus `back`, as a node does after
        /// snapshotting what it applied.
        Compact {
            back: u64,
        },
        /// Install a leader's snapshot `ahead` entries past the commit
        /// index, whose term is `bump` above the term there (0: the same
        /// entry, so the suffix after it is kept).
        Install {
            ahead: u64,
            bump: u64,
        },
        Crash,
        CrashWithTornTail(Vec<u8>),
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            5 => (0..4u64, 1..4u64, 0..2u64, 0..40usize)
                .prop_map(|(back, count, bump, len)| Step::Append { back, count, bump, len }),
            3 => (0..2u64, proptest::option::of(1..4u64), 0..3u64)
                .prop_map(|(bump, vote, commit_bump)| Step::HardState { bump, vote, commit_bump }),
            3 => Just(Step::Sync),
            1 => (0..3u64).prop_map(|back| Step::Compact { back }),
            1 => (1..4u64, 0..2u64).prop_map(|(ahead, bump)| Step::Install { ahead, bump }),
            1 => Just(Step::Crash),
            1 => proptest::collection::vec(any::<u8>(), 1..24).prop_map(Step::CrashWithTornTail),
        ]
    }

    #[derive(Clone, Debug, Default)]
    struct Model {
        log: LogImage,
        hard_state: HardState,
    }

    fn snapshot_at(index: u64, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(index),
                term: Term(term),
                membership: raft::Membership::of_voters([NodeId(1)]),
            },
            data: format!("state at {index}").into_bytes(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]
        #[test]
        fn recovery_equals_the_last_synced_state(steps in proptest::collection::vec(arb_step(), 0..40)) {
            let mut disk = MemDisk::new();
            let (mut wal, _) = open(&disk);
            let mut live = Model::default();
            let mut synced = Model::default();
            let mut counter = 0u64;
            for step in steps {
                match step {
                    Step::Append { back, count, bump, len } => {
                        let last = live.log.last_index().0;
                        let floor = synced.hard_state.commit.0.max(live.log.base.index.0) + 1;
                        let first = (last + 1).saturating_sub(back).max(floor).min(last + 1);
                        let prev = live.log.term_at(LogIndex(first - 1)).unwrap();
                        let new: Vec<Entry> = (first..first + count)
                            .map(|i| {
                                counter += 1;
                                let data = format!("{counter}-{}", "p".repeat(len));
                                entry(i, prev.0 + bump, &data)
                            })
                            .collect();
                        wal.append(&new).unwrap();
                        live.log.splice(&new);
                    }
                    Step::HardState { bump, vote, commit_bump } => {
                        let old = live.hard_state;
                        let term = old.term.0 + bump;
                        let vote = if bump > 0 || old.vote.is_none() { vote } else { old.vote.map(|v| v.0) };
                        let last = live.log.last_index().0;
                        let commit = old.commit.0.max((old.commit.0 + commit_bump).min(last));
                        let new = hs(term, vote, commit);
                        wal.set_hard_state(new).unwrap();
                        live.hard_state = new;
                    }
                    Step::Sync => {
                        wal.sync().unwrap();
                        synced = live.clone();
                    }
                    Step::Compact { back } => {
                        let index = LogIndex(live.hard_state.commit.0.saturating_sub(back));
                        if index > live.log.base.index {
                            // (The commit index may run past a log that an
                            // unsynced conflict cut short.)
                            let Some(term) = live.log.term_at(index) else { continue };
                            if term.0 == 0 {
                                continue; // Not a Raft log: raft's entries have terms >= 1.
                            }
                            wal.save_snapshot(&snapshot_at(index.0, term.0)).unwrap();
                            live.log = live.log.compacted_to(&snapshot_at(index.0, term.0).meta);
                            synced = live.clone();
                        }
                    }
                    Step::Install { ahead, bump } => {
                        // Raft installs only above the commit index, and
                        // moves its commit index there in the same ready.
                        let committed = live.hard_state.commit.max(live.log.base.index);
                        let index = committed.0 + ahead;
                        let here = live.log.term_at(LogIndex(index));
                        let term = here.map_or(live.hard_state.term.0.max(1), |t| t.0 + bump);
                        // A snapshot's term is at most the leader's, which
                        // is at most ours once we accept its message.
                        let term = term.min(live.hard_state.term.0.max(1)).max(1);
                        if term > live.hard_state.term.0 {
                            continue;
                        }
                        let snapshot = snapshot_at(index, term);
                        let new_hs = HardState { commit: LogIndex(index), ..live.hard_state };
                        wal.save_snapshot(&snapshot).unwrap();
                        live.log = live.log.compacted_to(&snapshot.meta);
                        synced = live.clone();
                        wal.set_hard_state(new_hs).unwrap();
                        live.hard_state = new_hs;
                    }
                    Step::Crash | Step::CrashWithTornTail(_) => {
                        let segment = wal.segment();
                        drop(wal);
                        disk.crash();
                        let mut torn = 0;
                        if let Step::CrashWithTornTail(payload) = &step {
                            // A prefix of an unsynced write reached the disk.
                            let name = segment_name(segment);
                            let end = disk.len(&name).unwrap();
                            let next = live.log.last_index().next();
                            let lost = Entry {
                                term: Term(live.hard_state.term.0.max(1) + 7),
                                index: next,
                                payload: EntryPayload::Command(payload.clone()),
                            };
                            let mut frame = Vec::new();
                            record::encode_into(&Record::Entries(vec![lost]), position(segment, end), &mut frame);
                            let cut = 1 + payload.len() * 7 % (frame.len() - 1);
                            disk.write_at(&name, end, &frame[..cut]).unwrap();
                            disk.sync(&name).unwrap();
                            torn = cut as u64;
                        }
                        let (reopened, rec) = open(&disk);
                        prop_assert_eq!(&rec.entries, &synced.log.entries);
                        prop_assert_eq!(rec.snapshot.as_ref().map(|s| &s.meta), (synced.log.base.index.0 > 0).then_some(&synced.log.base));
                        // Recovery clamps a commit index the log does not reach.
                        synced.hard_state.commit =
                            synced.hard_state.commit.min(synced.log.last_index());
                        prop_assert_eq!(rec.hard_state, synced.hard_state);
                        prop_assert_eq!(rec.truncated_tail_bytes, torn);
                        wal = reopened;
                        live = synced.clone();
                    }
                }
                prop_assert_eq!(wal.entries(), &live.log.entries[..]);
                prop_assert_eq!(wal.snapshot_meta(), &live.log.base);
                prop_assert_eq!(wal.hard_state(), live.hard_state);
            }
            wal.sync().unwrap();
            drop(wal);
            disk.crash();
            let (_, rec) = open(&disk);
            let mut expected = live.hard_state;
            expected.commit = expected.commit.min(live.log.last_index());
            prop_assert_eq!(rec.entries, live.log.entries);
            prop_assert_eq!(rec.hard_state, expected);
            if let Some(s) = &rec.snapshot {
                prop_assert_eq!(&s.data, &format!("state at {}", s.meta.index.0).into_bytes());
            }
        }
    }
}
