//! The `Disk` contract, written once and run against every implementation:
//! the simulator's `MemDisk` and the real node's `FsDisk` (in a temporary
//! directory). Whatever the write-ahead log relies on is asserted here, so a
//! log that recovers over one disk recovers over the other.

use raft::{Entry, EntryPayload, HardState, LogIndex, NodeId, Term};
use wal::{Disk, DiskError, FsDisk, MemDisk, WAL_FILE, Wal, WalError};

/// A disk under test, and how to get a fresh handle on the same storage (a
/// restart of the process that owns it; nothing unsynced is required to
/// vanish, nothing synced may).
trait Subject {
    type D: Disk + std::fmt::Debug;
    fn disk(&self) -> Self::D;
}

struct Mem(MemDisk);
impl Subject for Mem {
    type D = MemDisk;
    fn disk(&self) -> MemDisk {
        self.0.clone()
    }
}

struct Fs(tempfile::TempDir);
impl Subject for Fs {
    type D = FsDisk;
    fn disk(&self) -> FsDisk {
        FsDisk::open(self.0.path()).expect("temporary directory opens")
    }
}

fn mem() -> Mem {
    Mem(MemDisk::new())
}

fn fs() -> Fs {
    Fs(tempfile::tempdir().expect("a temporary directory"))
}

fn files_list_sorted_and_create_refuses_duplicates(s: &impl Subject) {
    let mut d = s.disk();
    assert_eq!(d.list().unwrap(), Vec::<String>::new());
    for name in ["b", "a", "c.tmp"] {
        d.create(name).unwrap();
    }
    d.sync_dir().unwrap();
    assert_eq!(d.list().unwrap(), vec!["a", "b", "c.tmp"]);
    assert_eq!(d.create("a"), Err(DiskError::AlreadyExists("a".into())));
    assert_eq!(d.len("a").unwrap(), 0);
}

fn writes_read_back_and_gaps_are_zeros(s: &impl Subject) {
    let mut d = s.disk();
    d.create("f").unwrap();
    d.write_at("f", 0, b"hello").unwrap();
    d.write_at("f", 8, b"world").unwrap();
    d.write_at("f", 1, b"E").unwrap();
    assert_eq!(d.len("f").unwrap(), 13);
    assert_eq!(d.read_at("f", 0, 13).unwrap(), b"hEllo\0\0\0world");
    assert_eq!(d.read_at("f", 13, 0).unwrap(), b"");
    assert_eq!(
        d.read_at("f", 10, 4),
        Err(DiskError::OutOfRange {
            name: "f".into(),
            offset: 10,
            len: 4,
            file_len: 13
        })
    );
    assert!(matches!(
        d.read_at("f", u64::MAX, 2),
        Err(DiskError::OutOfRange { .. })
    ));
}

fn truncate_cuts_and_extends_with_zeros(s: &impl Subject) {
    let mut d = s.disk();
    d.create("f").unwrap();
    d.write_at("f", 0, b"abcdef").unwrap();
    d.truncate("f", 2).unwrap();
    assert_eq!(d.read_at("f", 0, 2).unwrap(), b"ab");
    d.truncate("f", 4).unwrap();
    assert_eq!(d.read_at("f", 0, 4).unwrap(), b"ab\0\0");
}

fn rename_replaces_and_remove_removes(s: &impl Subject) {
    let mut d = s.disk();
    d.create("a").unwrap();
    d.write_at("a", 0, b"old").unwrap();
    d.create("tmp").unwrap();
    d.write_at("tmp", 0, b"new!").unwrap();
    d.sync("tmp").unwrap();
    d.rename("tmp", "a").unwrap();
    d.sync_dir().unwrap();
    assert_eq!(d.list().unwrap(), vec!["a"]);
    assert_eq!(d.read_at("a", 0, 4).unwrap(), b"new!");
    d.remove("a").unwrap();
    d.sync_dir().unwrap();
    assert_eq!(d.list().unwrap(), Vec::<String>::new());
}

fn missing_files_are_not_found(s: &impl Subject) {
    let mut d = s.disk();
    let nf = || DiskError::NotFound("nope".into());
    assert_eq!(d.len("nope"), Err(nf()));
    assert_eq!(d.read_at("nope", 0, 0), Err(nf()));
    assert_eq!(d.write_at("nope", 0, b"x"), Err(nf()));
    assert_eq!(d.truncate("nope", 0), Err(nf()));
    assert_eq!(d.sync("nope"), Err(nf()));
    assert_eq!(d.remove("nope"), Err(nf()));
    assert_eq!(d.rename("nope", "other"), Err(nf()));
}

fn synced_data_survives_a_new_handle(s: &impl Subject) {
    let mut d = s.disk();
    d.create("f").unwrap();
    d.sync_dir().unwrap();
    d.write_at("f", 0, b"durable").unwrap();
    d.sync("f").unwrap();
    drop(d);
    let d = s.disk();
    assert_eq!(d.list().unwrap(), vec!["f"]);
    assert_eq!(d.read_at("f", 0, 7).unwrap(), b"durable");
}

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: EntryPayload::Command(data.as_bytes().to_vec()),
    }
}

fn the_log_recovers_what_it_synced(s: &impl Subject) {
    let (mut wal, recovered) = Wal::open(s.disk()).unwrap();
    assert!(recovered.entries.is_empty());
    let log = vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c")];
    let hs = HardState {
        term: Term(2),
        vote: Some(NodeId(3)),
        commit: LogIndex(2),
    };
    wal.append(&log).unwrap();
    wal.set_hard_state(hs).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = Wal::open(s.disk()).unwrap();
    assert_eq!(recovered.entries, log);
    assert_eq!(recovered.hard_state, hs);
}

fn the_log_reports_a_damaged_middle_record_by_file_and_offset(s: &impl Subject) {
    let (mut wal, _) = Wal::open(s.disk()).unwrap();
    let mut offsets = Vec::new();
    for i in 1..=3 {
        offsets.push(wal.file_len());
        wal.append(&[entry(i, 1, "payload")]).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let mut d = s.disk();
    let at = offsets[1] + 14;
    let byte = d.read_at(WAL_FILE, at, 1).unwrap()[0];
    d.write_at(WAL_FILE, at, &[byte ^ 0x20]).unwrap();
    d.sync(WAL_FILE).unwrap();
    match Wal::open(s.disk()) {
        Err(WalError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, WAL_FILE);
            assert_eq!(offset, offsets[1]);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// Runs one contract check against both disks.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod mem_disk {
            $(#[test] fn $check() { super::$check(&super::mem()); })*
        }
        mod fs_disk {
            $(#[test] fn $check() { super::$check(&super::fs()); })*
        }
    };
}

conformance!(
    files_list_sorted_and_create_refuses_duplicates,
    writes_read_back_and_gaps_are_zeros,
    truncate_cuts_and_extends_with_zeros,
    rename_replaces_and_remove_removes,
    missing_files_are_not_found,
    synced_data_survives_a_new_handle,
    the_log_recovers_what_it_synced,
    the_log_reports_a_damaged_middle_record_by_file_and_offset,
);
