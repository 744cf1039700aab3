//! Snapshot files: the state machine's image at a log position, written so
//! that a crash at any point leaves either the old snapshot or the new one,
//! whole, and never a damaged file taken for a good one.
//!
//! ```text
//! file   = magic "RLSNAP01" | index: u64 LE | term: u64 LE | len: u64 LE
//!          | crc: u32 LE | header_crc: u32 LE | data: [u8; len]
//! crc        = crc32c(data)
//! header_crc = crc32c(every header byte before it)
//! name       = snap-<index, 20 digits>-<term, 20 digits>.snap
//! ```
//!
//! [`save_snapshot`] writes a temporary file, syncs it, renames it into place
//! and syncs the directory: the rename is the commit point. Only then are
//! older snapshots removed. [`load_snapshot`] returns the newest snapshot; if
//! that one is damaged it is [`WalError::Corrupt`], not a silent fall back to
//! an older one (whose successor entries the log may no longer hold).
//! What the bytes mean is the state machine's business (`kv` encodes and
//! versions them); this module only keeps them safe.

use crate::disk::{Disk, DiskError};
use crate::wal::WalError;
use raft::{LogIndex, Term};

/// The largest snapshot accepted, checked before anything is allocated:
/// the same limit raft puts on a snapshot it receives.
pub const MAX_SNAPSHOT_BYTES: u64 = raft::MAX_SNAPSHOT_BYTES;

const MAGIC: &[u8; 8] = b"RLSNAP01";
const HEADER_BYTES: usize = 8 + 8 + 8 + 8 + 4 + 4;
const TMP_SUFFIX: &str = ".tmp";

/// Where a snapshot sits in the log: it covers every entry up to `index`,
/// whose term is `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of that entry.
    pub term: Term,
}

/// The file name of the snapshot at `meta`.
pub fn snapshot_name(meta: SnapshotMeta) -> String {
    format!("snap-{:020}-{:020}.snap", meta.index.0, meta.term.0)
}

fn parse_name(name: &str) -> Option<SnapshotMeta> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let (index, term) = rest.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(term) {
        return None;
    }
    Some(SnapshotMeta {
        index: LogIndex(index.parse().ok()?),
        term: Term(term.parse().ok()?),
    })
}

fn encode(meta: SnapshotMeta, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&meta.index.0.to_le_bytes());
    out.extend_from_slice(&meta.term.0.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let header_crc = crc32c::crc32c(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Writes the snapshot at `meta` durably, then removes older snapshots (and
/// any temporary file a crash left). Fails with
/// [`WalError::InvalidEntries`] if `data` exceeds [`MAX_SNAPSHOT_BYTES`].
pub fn save_snapshot<D: Disk>(
    disk: &mut D,
    meta: SnapshotMeta,
    data: &[u8],
) -> Result<(), WalError> {
    write_snapshot_file(disk, meta, data)?;
    // The new snapshot is the durable one: the old ones can go.
    remove_snapshots_except(disk, Some(meta))
}

/// Writes the snapshot at `meta` durably under its name (temporary file,
/// sync, rename, directory sync: the rename is the commit point), leaving
/// every other snapshot file in place.
pub(crate) fn write_snapshot_file<D: Disk>(
    disk: &mut D,
    meta: SnapshotMeta,
    data: &[u8],
) -> Result<(), WalError> {
    if data.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(WalError::InvalidEntries {
            reason: format!(
                "snapshot of {} bytes exceeds the limit of {MAX_SNAPSHOT_BYTES}",
                data.len()
            ),
        });
    }
    let name = snapshot_name(meta);
    let tmp = format!("{name}{TMP_SUFFIX}");
    match disk.remove(&tmp) {
        Ok(()) | Err(DiskError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    disk.create(&tmp)?;
    disk.write_at(&tmp, 0, &encode(meta, data))?;
    // The data must be durable before the name points at it, or a crash
    // could leave the new name on an empty file.
    disk.sync(&tmp)?;
    disk.rename(&tmp, &name)?;
    disk.sync_dir()?;
    Ok(())
}

/// Removes every snapshot file but the one at `keep` (all of them if
/// `None`), and temporary files a crash left, syncing the directory if
/// anything went.
pub(crate) fn remove_snapshots_except<D: Disk>(
    disk: &mut D,
    keep: Option<SnapshotMeta>,
) -> Result<(), WalError> {
    let mut removed = false;
    for file in disk.list()? {
        let other = parse_name(&file).is_some_and(|m| Some(m) != keep);
        let stale_tmp = file.starts_with("snap-") && file.ends_with(TMP_SUFFIX);
        if other || stale_tmp {
            disk.remove(&file)?;
            removed = true;
        }
    }
    if removed {
        disk.sync_dir()?;
    }
    Ok(())
}

/// The newest snapshot on `disk` and its data, if there is one. A damaged
/// newest snapshot is [`WalError::Corrupt`], naming the file.
pub fn load_snapshot<D: Disk>(disk: &D) -> Result<Option<(SnapshotMeta, Vec<u8>)>, WalError> {
    let Some(meta) = disk.list()?.iter().filter_map(|n| parse_name(n)).max() else {
        return Ok(None);
    };
    read_snapshot_file(disk, meta).map(|data| Some((meta, data)))
}

/// The data of the snapshot at `meta`. A missing file or a damaged one is
/// [`WalError::Corrupt`], naming the file: the log refers to it, so it was
/// durable once. As with the log, damage is believed only when repeated
/// reads agree on it (see [`crate::reread`]).
pub(crate) fn read_snapshot_file<D: Disk>(
    disk: &D,
    meta: SnapshotMeta,
) -> Result<Vec<u8>, WalError> {
    let name = snapshot_name(meta);
    let file_len = match disk.len(&name) {
        Ok(len) => len,
        Err(DiskError::NotFound(_)) => {
            return Err(WalError::Corrupt {
                file: name,
                offset: 0,
                reason: "the snapshot the log starts from is missing".into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if file_len > HEADER_BYTES as u64 + MAX_SNAPSHOT_BYTES {
        return Err(WalError::Corrupt {
            file: name,
            offset: 0,
            reason: format!("{file_len} bytes, more than a snapshot may hold"),
        });
    }
    // Fits: bounded above.
    crate::reread::read_checked(
        &name,
        || Ok(disk.read_at(&name, 0, file_len as usize)?),
        |bytes| decode_file(&name, meta, bytes),
    )
}

/// Checks a whole snapshot file read into `bytes` and returns its data.
fn decode_file(name: &str, meta: SnapshotMeta, bytes: &[u8]) -> Result<Vec<u8>, WalError> {
    let corrupt = |offset: u64, reason: String| WalError::Corrupt {
        file: name.to_string(),
        offset,
        reason,
    };
    let file_len = bytes.len() as u64;
    if file_len < HEADER_BYTES as u64 {
        return Err(corrupt(
            0,
            format!("{file_len} bytes, shorter than a header"),
        ));
    }
    let header = &bytes[..HEADER_BYTES];
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let stored_header_crc = u32::from_le_bytes(header[36..40].try_into().expect("4 bytes"));
    if &header[..8] != MAGIC || crc32c::crc32c(&header[..36]) != stored_header_crc {
        return Err(corrupt(0, "bad snapshot header".into()));
    }
    let (index, term, len) = (word(8), word(16), word(24));
    if (LogIndex(index), Term(term)) != (meta.index, meta.term) {
        return Err(corrupt(
            8,
            format!("header says i{index} t{term}, the name differs"),
        ));
    }
    if len > MAX_SNAPSHOT_BYTES || HEADER_BYTES as u64 + len != file_len {
        return Err(corrupt(
            24,
            format!("length {len} does not match the file ({file_len} bytes)"),
        ));
    }
    let data = &bytes[HEADER_BYTES..];
    let crc = u32::from_le_bytes(header[32..36].try_into().expect("4 bytes"));
    if crc32c::crc32c(data) != crc {
        return Err(corrupt(
            HEADER_BYTES as u64,
            "snapshot data checksum mismatch".into(),
        ));
    }
    Ok(data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use crate::testing::FailsAt;

    fn meta(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
        }
    }

    #[test]
    fn a_saved_snapshot_loads_back_and_replaces_older_ones() {
        let mut disk = MemDisk::new();
        assert_eq!(load_snapshot(&disk).unwrap(), None);
        save_snapshot(&mut disk, meta(10, 2), b"ten").unwrap();
        save_snapshot(&mut disk, meta(20, 3), b"twenty").unwrap();
        disk.crash();
        assert_eq!(
            load_snapshot(&disk).unwrap(),
            Some((meta(20, 3), b"twenty".to_vec()))
        );
        assert_eq!(disk.list().unwrap(), vec![snapshot_name(meta(20, 3))]);
    }

    #[test]
    fn a_crash_at_any_step_of_a_save_leaves_the_old_or_the_new_snapshot_whole() {
        for n in 1..=12 {
            let mut mem = MemDisk::new();
            save_snapshot(&mut mem, meta(5, 1), b"old").unwrap();
            let mut disk = FailsAt::new(mem.clone(), n);
            let saved = save_snapshot(&mut disk, meta(9, 2), b"new").is_ok();
            mem.crash();
            let loaded = load_snapshot(&mem).unwrap().expect("a snapshot survives");
            assert!(
                loaded == (meta(5, 1), b"old".to_vec()) || loaded == (meta(9, 2), b"new".to_vec()),
                "crash at step {n}: {loaded:?}"
            );
            if saved {
                assert_eq!(loaded.0, meta(9, 2), "a completed save is durable");
            }
            // The next save cleans up whatever the crash left.
            save_snapshot(&mut mem, meta(12, 2), b"next").unwrap();
            assert_eq!(mem.list().unwrap(), vec![snapshot_name(meta(12, 2))]);
        }
    }

    #[test]
    fn a_damaged_snapshot_is_corruption_naming_the_file() {
        let mut disk = MemDisk::new();
        save_snapshot(&mut disk, meta(7, 1), b"payload").unwrap();
        let name = snapshot_name(meta(7, 1));
        assert!(disk.corrupt(&name, HEADER_BYTES as u64 + 2, 0x10));
        match load_snapshot(&disk) {
            Err(WalError::Corrupt { file, offset, .. }) => {
                assert_eq!(file, name);
                assert_eq!(offset, HEADER_BYTES as u64);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        assert!(disk.corrupt(&name, 3, 0x01));
        assert!(matches!(
            load_snapshot(&disk),
            Err(WalError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn names_round_trip_and_other_files_are_ignored() {
        let m = meta(123, 45);
        assert_eq!(parse_name(&snapshot_name(m)), Some(m));
        for other in ["raft-00000000.wal", "snap-1-2.snap", "snap-x.snap.tmp"] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
