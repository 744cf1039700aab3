//! Segment files: their names, sizes and limits, and the position each
//! frame's checksum is bound to.

use super::WalError;
use crate::disk::Disk;
use crate::record::{FRAME_HEADER_BYTES, MAX_RECORD_BYTES};

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
pub(super) fn parse_segment(name: &str) -> Option<u64> {
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
pub(super) fn position(seq: u64, offset: u64) -> u64 {
    debug_assert!(offset < 1 << 40);
    // Segment numbers grow with every compaction; the low 24 bits are
    // enough to tell a frame's segment from its neighbours'.
    ((seq & 0xff_ffff) << 40) | offset
}

/// The largest the log's segments may grow, together. An append that would
/// grow them past it fails with [`WalError::LogFull`] (compaction,
/// [`super::Wal::save_snapshot`], is what keeps a long-lived log below it); a
/// segment found larger than it on open is corrupt.
pub const MAX_WAL_BYTES: u64 = 1 << 30;

/// Reads segment `seq` whole, refusing a file larger than `max_len`.
pub(super) fn read_segment<D: Disk>(disk: &D, seq: u64, max_len: u64) -> Result<Vec<u8>, WalError> {
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

/// The name a checkpoint segment is written under before it is renamed
/// into place.
pub(super) fn temporary_name(seq: u64) -> String {
    format!("{}{TMP_SUFFIX}", segment_name(seq))
}

pub(super) const TMP_SUFFIX: &str = ".tmp";
