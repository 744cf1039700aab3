//! Unit and property tests of the log.

use super::segment::position;
use super::*;
use crate::disk::MemDisk;
use crate::disk::{Disk, DiskError};
use crate::record::{self, FRAME_HEADER_BYTES, Record};
use crate::snapshot::snapshot_name;
use proptest::prelude::*;
use raft::{Entry, HardState, LogIndex, Snapshot, SnapshotMeta, Term};
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
    assert_eq!(wal.read_entries().unwrap(), log);
    assert_eq!(wal.term(LogIndex(3)), Some(Term(2)));
    assert_eq!(wal.term(LogIndex(3)), Some(Term(2)));
    assert_eq!(wal.term(LogIndex(4)), None);
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
    wal.save_snapshot(&snapshot(6, 1, "six"), &log[6..])
        .unwrap();
    assert_eq!(wal.first_index(), LogIndex(7));
    assert_eq!(wal.read_entries().unwrap(), &log[6..]);
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
    wal.save_snapshot(&snapshot(3, 1, "same entry"), &log[3..])
        .unwrap();
    assert_eq!(wal.read_entries().unwrap(), &log[3..]);
    wal.save_snapshot(&snapshot(5, 2, "another leader's entry"), &[])
        .unwrap();
    assert!(wal.read_entries().unwrap().is_empty());
    assert_eq!(wal.last_index(), LogIndex(5));
    wal.append(&[entry(6, 2, "after")]).unwrap();
    assert!(matches!(
        wal.append(&[entry(5, 2, "below")]),
        Err(WalError::InvalidEntries { .. })
    ));
    assert!(matches!(
        wal.save_snapshot(&snapshot(4, 2, "older"), &[]),
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
        wal.save_snapshot(&snapshot(2, 2, "other"), &[]),
        Err(WalError::TruncateCommitted { .. })
    ));
    assert_eq!(wal.read_entries().unwrap().len(), 2, "nothing changed");
}

#[test]
fn kept_entries_that_do_not_match_the_log_are_refused_and_write_nothing() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    let log: Vec<Entry> = (1..=5).map(|i| entry(i, 1, "x")).collect();
    wal.append(&log).unwrap();
    wal.sync().unwrap();
    let files = disk.list().unwrap();
    let mut other_term = log[3..].to_vec();
    other_term[1].term = Term(2);
    for kept in [
        &log[4..],       // one short
        &log[2..],       // one too many
        &[][..],         // none, though the log holds the snapshot's entry
        &other_term[..], // a term the log does not hold
    ] {
        assert!(
            matches!(
                wal.save_snapshot(&snapshot(3, 1, "three"), kept),
                Err(WalError::InvalidEntries { .. })
            ),
            "{kept:?}"
        );
    }
    assert_eq!(disk.list().unwrap(), files, "nothing written");
    assert_eq!(wal.first_index(), LogIndex(1));
    wal.save_snapshot(&snapshot(3, 1, "three"), &log[3..])
        .unwrap();
    assert_eq!(open(&disk).1.entries, &log[3..]);
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
        let saved = wal.save_snapshot(&new, &log[6..]).is_ok();
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
    let log = three_segments(&disk);
    let (mut wal, _) = open(&disk);
    wal.save_snapshot(&snapshot(6, 1, "six"), &log[6..])
        .unwrap();
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

/// The log as a model: the base and the entries after it (what the WAL
/// held before it kept only terms).
#[derive(Clone, Debug, Default)]
struct ModelLog {
    base: SnapshotMeta,
    entries: Vec<Entry>,
}

impl ModelLog {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.entries.len() as u64)
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        let offset = index.0.checked_sub(self.base.index.0 + 1)?;
        self.entries.get(offset as usize).map(|e| e.term)
    }

    fn splice(&mut self, new: &[Entry]) {
        let first = new.first().expect("non-empty").index;
        self.entries
            .truncate((first.0 - self.base.index.0 - 1) as usize);
        self.entries.extend_from_slice(new);
    }

    fn compacted_to(&self, base: &SnapshotMeta) -> ModelLog {
        let entries = if self.term_at(base.index) == Some(base.term) {
            self.entries
                .iter()
                .filter(|e| e.index > base.index)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        ModelLog {
            base: base.clone(),
            entries,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    log: ModelLog,
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
                        let next = live.log.compacted_to(&snapshot_at(index.0, term.0).meta);
                        wal.save_snapshot(&snapshot_at(index.0, term.0), &next.entries).unwrap();
                        live.log = next;
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
                    let next = live.log.compacted_to(&snapshot.meta);
                    wal.save_snapshot(&snapshot, &next.entries).unwrap();
                    live.log = next;
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
            prop_assert_eq!(wal.read_entries().unwrap(), live.log.entries.clone());
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
