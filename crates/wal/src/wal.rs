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
//! number and offset. (Segments let a later snapshot design drop a prefix of
//! the log by removing whole files.)
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
//! Before believing corruption, recovery reads the file again (up to
//! [`MAX_READ_ATTEMPTS`] reads): a bit flipped in transit from the medium
//! reads differently the second time.
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
use raft::{Entry, HardState, LogIndex, Term};
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

/// The most segments a log may have (with [`MAX_WAL_BYTES`], a bound on what
/// recovery lists and reads).
pub const MAX_SEGMENTS: u64 = MAX_WAL_BYTES / SEGMENT_BYTES + 1;

/// The file name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("raft-{seq:08}.wal")
}

/// The sequence number of a segment file name, if it is one.
fn parse_segment(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("raft-")?.strip_suffix(".wal")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The position a frame's header checksum is bound to: its segment and its
/// offset in it, so a frame found in another file or at another offset
/// fails its check.
fn position(seq: u64, offset: u64) -> u64 {
    debug_assert!(offset < 1 << 40 && seq < 1 << 24);
    (seq << 40) | offset
}

/// The largest the log file may grow. Until snapshots compact the log (a
/// later design), an append that would grow the file past it fails with
/// [`WalError::LogFull`]; a file found larger than it on open is corrupt.
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
    /// The log, from index 1, contiguous.
    pub entries: Vec<Entry>,
    /// Bytes of a torn last write cut off the end of the file (0 if none).
    pub truncated_tail_bytes: u64,
}

/// The durable Raft log and hard state over a [`Disk`].
///
/// Changes ([`Wal::append`], [`Wal::set_hard_state`]) are written at once and
/// take effect in memory at once, but are durable only after [`Wal::sync`],
/// which issues one disk sync for everything since the last one.
#[derive(Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    /// The log. Invariant: `entries[i].index == i + 1` (the log starts at
    /// index 1 until snapshots exist), and terms never decrease along it.
    entries: Vec<Entry>,
    /// The latest hard state written.
    hard_state: HardState,
    /// The commit index as of the last sync (or open): entries up to it are
    /// known committed, so no append may remove or change them.
    /// Invariant: `durable_commit <= hard_state.commit`.
    durable_commit: LogIndex,
    /// The segment records go to. Invariant: the last segment; segments
    /// `0..=seq` exist, and every one before it is synced.
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

/// The state replayed so far, with the checks every record must pass. The
/// same checks guard [`Wal::append`] and [`Wal::set_hard_state`]: what the
/// writer refuses to write, the reader refuses to believe.
#[derive(Default)]
struct Replay {
    entries: Vec<Entry>,
    hard_state: HardState,
}

fn last_index(entries: &[Entry]) -> LogIndex {
    LogIndex(entries.len() as u64)
}

fn term_at(entries: &[Entry], index: LogIndex) -> Option<Term> {
    if index.0 == 0 {
        return Some(Term(0));
    }
    let i = usize::try_from(index.0 - 1).ok()?;
    entries.get(i).map(|e| e.term)
}

/// Checks that `new` can be appended to `entries`: indices contiguous from a
/// first index in `1..=last + 1`, terms non-decreasing from the entry before.
fn check_segment(entries: &[Entry], new: &[Entry]) -> Result<(), WalError> {
    let Some(first) = new.first() else {
        return Ok(());
    };
    let last = last_index(entries);
    if first.index.0 == 0 {
        return Err(WalError::InvalidEntries {
            reason: "an entry at index 0".into(),
        });
    }
    if first.index > last.next() {
        return Err(WalError::Gap {
            expected: last.next(),
            got: first.index,
        });
    }
    let mut prev_term = term_at(entries, first.index.prev()).expect("first index <= last + 1");
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
        // Terms never decrease along a Raft log: each leader appends in its
        // own term, which exceeds the terms of the entries it inherited.
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

fn check_hard_state(old: &HardState, new: &HardState) -> Result<(), WalError> {
    let reason = if new.term < old.term {
        format!("term goes back from {} to {}", old.term, new.term)
    } else if new.term == old.term && old.vote.is_some() && new.vote != old.vote {
        // §5.2: each server votes for at most one candidate in a term.
        format!(
            "vote changes within {} from {:?} to {:?}",
            old.term, old.vote, new.vote
        )
    } else if new.commit < old.commit {
        format!("commit goes back from {} to {}", old.commit, new.commit)
    } else {
        return Ok(());
    };
    Err(WalError::InvalidHardState { reason })
}

/// Replaces the suffix of `entries` from `new`'s first index with `new`.
/// Precondition: `check_segment(entries, new)` passed.
fn splice(entries: &mut Vec<Entry>, new: &[Entry]) {
    if let Some(first) = new.first() {
        entries.truncate((first.index.0 - 1) as usize);
        entries.extend_from_slice(new);
        debug_assert_eq!(entries.last().map(|e| e.index), new.last().map(|e| e.index));
    }
}

impl Replay {
    fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Entries(new) => {
                let Some(first) = new.first() else {
                    return Err("empty entries record".into());
                };
                if first.index != last_index(&self.entries).next() {
                    return Err(format!(
                        "entries record starts at {} but the log ends at {}",
                        first.index,
                        last_index(&self.entries)
                    ));
                }
                check_segment(&self.entries, &new).map_err(|e| e.to_string())?;
                splice(&mut self.entries, &new);
            }
            Record::HardState(hs) => {
                check_hard_state(&self.hard_state, &hs).map_err(|e| e.to_string())?;
                self.hard_state = hs;
            }
            Record::TruncateFrom(index) => {
                if index.0 == 0 || index > last_index(&self.entries) {
                    return Err(format!(
                        "truncation from {index} outside the log 1..={}",
                        last_index(&self.entries)
                    ));
                }
                self.entries.truncate((index.0 - 1) as usize);
            }
        }
        Ok(())
    }
}

/// How many times recovery reads the file while reads keep disagreeing. A
/// damaged frame read the same twice is damage on the medium
/// ([`WalError::Corrupt`]); reads that never agree are an I/O error.
pub const MAX_READ_ATTEMPTS: u32 = 4;

/// Replays the whole file held in `buf`. Returns the state, where the valid
/// records end, and how many bytes of a torn last write follow them.
fn replay_file(buf: &[u8], seq: u64, replay: &mut Replay) -> Result<(usize, u64), WalError> {
    let mut offset = 0usize;
    while offset < buf.len() {
        let corrupt = |reason: String| WalError::Corrupt {
            file: segment_name(seq),
            offset: offset as u64,
            reason,
        };
        match record::decode_at(buf, offset, position(seq, 0)) {
            Ok((record, len)) => {
                replay.apply(record).map_err(corrupt)?;
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

/// Reads segment `seq` whole and replays it onto `replay`, reading again
/// while a damaged frame might be a transient read fault. Returns where its
/// valid records end and the bytes of a torn tail after them.
fn replay_segment<D: Disk>(
    disk: &D,
    seq: u64,
    replay: &mut Replay,
) -> Result<(usize, u64), WalError> {
    let name = segment_name(seq);
    let file_len = disk.len(&name)?;
    if file_len > MAX_SEGMENT_FILE_BYTES {
        return Err(WalError::Corrupt {
            file: name,
            offset: MAX_SEGMENT_FILE_BYTES,
            reason: format!(
                "segment of {file_len} bytes exceeds the limit of {MAX_SEGMENT_FILE_BYTES}"
            ),
        });
    }
    // Fits: bounded by MAX_SEGMENT_FILE_BYTES above.
    let mut buf = disk.read_at(&name, 0, file_len as usize)?;
    let mut attempts = 1;
    loop {
        // Replay onto a copy: a failed attempt must not leave half a
        // segment behind.
        let mut attempt = Replay {
            entries: replay.entries.clone(),
            hard_state: replay.hard_state,
        };
        match replay_file(&buf, seq, &mut attempt) {
            Ok(done) => {
                *replay = attempt;
                return Ok(done);
            }
            Err(e) => {
                // A bit flipped on the way from the medium (a transient read
                // fault) is not damage: read again, and believe corruption
                // only when two reads agree on it.
                if attempts >= MAX_READ_ATTEMPTS {
                    // Every read differed from the one before: the disk
                    // cannot be read reliably now, which says nothing about
                    // what is on it.
                    return Err(WalError::Disk(DiskError::Io(format!(
                        "{attempts} reads of {name} disagree"
                    ))));
                }
                attempts += 1;
                let again = disk.read_at(&name, 0, file_len as usize)?;
                if again == buf {
                    return Err(e);
                }
                buf = again;
            }
        }
    }
}

impl<D: Disk> Wal<D> {
    /// Opens the log on `disk`, creating the file on a fresh disk, and
    /// returns what it holds. A torn tail is cut off; corruption anywhere
    /// else is an error (see the module documentation).
    pub fn open(mut disk: D) -> Result<(Wal<D>, Recovered), WalError> {
        let mut segments: Vec<u64> = disk
            .list()?
            .iter()
            .filter_map(|name| parse_segment(name))
            .collect();
        segments.sort_unstable();
        if segments.is_empty() {
            // The entry must be durable before anything written to the file
            // can be: data synced into a file whose name is lost is lost.
            disk.create(WAL_FILE)?;
            disk.sync_dir()?;
            let wal = Wal {
                disk,
                entries: Vec::new(),
                hard_state: HardState::default(),
                durable_commit: LogIndex(0),
                seq: 0,
                end: 0,
                closed_bytes: 0,
                dirty: false,
                poisoned: false,
            };
            return Ok((wal, Recovered::default()));
        }
        // Segments are numbered from 0 without gaps (until snapshots let
        // the oldest go): a missing one is lost data, not a shorter log.
        for (expected, &seq) in segments.iter().enumerate() {
            if seq != expected as u64 || seq >= MAX_SEGMENTS {
                return Err(WalError::Corrupt {
                    file: segment_name(expected as u64),
                    offset: 0,
                    reason: format!(
                        "segment missing: found segments {:?}",
                        segments.iter().take(8).collect::<Vec<_>>()
                    ),
                });
            }
        }
        let last = *segments.last().expect("non-empty");
        let mut replay = Replay::default();
        let mut closed_bytes = 0;
        let mut end = 0;
        let mut truncated_tail_bytes = 0;
        for &seq in &segments {
            let (valid, torn) = replay_segment(&disk, seq, &mut replay)?;
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
        if truncated_tail_bytes > 0 {
            let name = segment_name(last);
            disk.truncate(&name, end)?;
            disk.sync(&name)?;
        }
        let recovered = Recovered {
            hard_state: replay.hard_state,
            entries: replay.entries.clone(),
            truncated_tail_bytes,
        };
        let wal = Wal {
            disk,
            entries: replay.entries,
            hard_state: replay.hard_state,
            durable_commit: replay.hard_state.commit,
            seq: last,
            end,
            closed_bytes,
            dirty: false,
            poisoned: false,
        };
        debug_assert_eq!(wal.disk.len(&segment_name(last)).ok(), Some(wal.end));
        Ok((wal, recovered))
    }

    /// Appends entries, replacing the stored suffix from the first new index
    /// if it is at or before the last stored index (a Raft conflict, §5.3).
    /// The entries must be contiguous, start at or before `last_index() + 1`
    /// (else [`WalError::Gap`]) and keep terms non-decreasing; they must not
    /// remove or change an entry at or below the durable commit index. On any
    /// error nothing is written. Durable after [`Wal::sync`].
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        self.check_usable()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        check_segment(&self.entries, entries)?;
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
                .find(|e| term_at(&self.entries, e.index) != Some(e.term))
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
        splice(&mut self.entries, entries);
        Ok(())
    }

    /// Records a new hard state. Terms and commit indices never go back, and
    /// a vote never changes within a term (§5.2); a hard state equal to the
    /// current one writes nothing. Durable after [`Wal::sync`].
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), WalError> {
        self.check_usable()?;
        check_hard_state(&self.hard_state, &hs)?;
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

    /// The index of the last entry (0 if the log is empty).
    pub fn last_index(&self) -> LogIndex {
        last_index(&self.entries)
    }

    /// The latest hard state written (durable or not).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The log, from index 1.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at `index`, if stored.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let i = usize::try_from(index.0.checked_sub(1)?).ok()?;
        self.entries.get(i)
    }

    /// The term of the entry at `index` (`Term(0)` for index 0), if stored.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        term_at(&self.entries, index)
    }

    /// The disk underneath.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The size of the current (last) segment file, in bytes.
    pub fn file_len(&self) -> u64 {
        self.end
    }

    /// The current (last) segment's sequence number; segments `0..=seq`
    /// hold the log.
    pub fn segment(&self) -> u64 {
        self.seq
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
        if next >= MAX_SEGMENTS {
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
        // Two reads that agree on a flipped bit are damage on the medium.
        assert!(matches!(Wal::open(flaky(2)), Err(WalError::Corrupt { .. })));
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
            1 => Just(Step::Crash),
            1 => proptest::collection::vec(any::<u8>(), 1..24).prop_map(Step::CrashWithTornTail),
        ]
    }

    #[derive(Clone, Debug, Default, PartialEq)]
    struct Model {
        entries: Vec<Entry>,
        hard_state: HardState,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
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
                        let last = live.entries.len() as u64;
                        let floor = synced.hard_state.commit.0 + 1;
                        let first = (last + 1).saturating_sub(back).max(floor).min(last + 1);
                        let prev = term_at(&live.entries, LogIndex(first - 1)).unwrap();
                        let new: Vec<Entry> = (first..first + count)
                            .map(|i| {
                                counter += 1;
                                let data = format!("{counter}-{}", "p".repeat(len));
                                entry(i, prev.0 + bump, &data)
                            })
                            .collect();
                        wal.append(&new).unwrap();
                        splice(&mut live.entries, &new);
                    }
                    Step::HardState { bump, vote, commit_bump } => {
                        let old = live.hard_state;
                        let term = old.term.0 + bump;
                        let vote = if bump > 0 || old.vote.is_none() { vote } else { old.vote.map(|v| v.0) };
                        let last = live.entries.len() as u64;
                        let commit = old.commit.0.max((old.commit.0 + commit_bump).min(last));
                        let new = hs(term, vote, commit);
                        wal.set_hard_state(new).unwrap();
                        live.hard_state = new;
                    }
                    Step::Sync => {
                        wal.sync().unwrap();
                        synced = live.clone();
                    }
                    Step::Crash | Step::CrashWithTornTail(_) => {
                        drop(wal);
                        disk.crash();
                        let mut torn = 0;
                        if let Step::CrashWithTornTail(payload) = &step {
                            // A prefix of an unsynced write reached the disk.
                            let end = disk.len(WAL_FILE).unwrap();
                            let next = live.entries.len() as u64 + 1;
                            let lost = Entry {
                                term: Term(live.hard_state.term.0.max(1) + 7),
                                index: LogIndex(next),
                                payload: EntryPayload::Command(payload.clone()),
                            };
                            let mut frame = Vec::new();
                            record::encode_into(&Record::Entries(vec![lost]), end, &mut frame);
                            let cut = 1 + payload.len() * 7 % (frame.len() - 1);
                            disk.write_at(WAL_FILE, end, &frame[..cut]).unwrap();
                            disk.sync(WAL_FILE).unwrap();
                            torn = cut as u64;
                        }
                        let (reopened, rec) = open(&disk);
                        prop_assert_eq!(&rec.entries, &synced.entries);
                        prop_assert_eq!(rec.hard_state, synced.hard_state);
                        prop_assert_eq!(rec.truncated_tail_bytes, torn);
                        wal = reopened;
                        live = synced.clone();
                    }
                }
                prop_assert_eq!(wal.entries(), &live.entries[..]);
                prop_assert_eq!(wal.hard_state(), live.hard_state);
            }
            wal.sync().unwrap();
            drop(wal);
            disk.crash();
            let (_, rec) = open(&disk);
            prop_assert_eq!(rec.entries, live.entries);
            prop_assert_eq!(rec.hard_state, live.hard_state);
        }
    }
}
