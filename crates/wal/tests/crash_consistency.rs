//! Crash consistency of the log over the real file system: a child process
//! (this very test binary, re-executed) appends and syncs entries and
//! reports each sync on stdout; the parent kills it at an arbitrary moment,
//! mid-write or not, and recovers. Every entry the child reported synced
//! must be there, intact and in order; whatever it was writing when it died
//! is either complete or cut off as a torn tail, never an error.

use raft::{Entry, EntryPayload, LogIndex, Term};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use wal::{FsDisk, Wal};

/// Set in the child's environment to the directory it writes in.
const CHILD_ENV: &str = "RAFTLAB_WAL_CRASH_CHILD";

/// The most entries a child writes, should nobody kill it.
const CHILD_MAX_ENTRIES: u64 = 100_000;

/// The payload of entry `index`: large enough that one write spans several
/// pages, and recognisable.
fn payload(index: u64) -> Vec<u8> {
    let mut bytes = format!("entry {index}:").into_bytes();
    bytes.resize(3_000 + (index % 7) as usize * 500, (index % 251) as u8);
    bytes
}

fn entry(index: u64) -> Entry {
    Entry {
        term: Term(1),
        index: LogIndex(index),
        payload: EntryPayload::Command(payload(index)),
    }
}

/// The child's body: a test that does nothing unless it is the child.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut wal, recovered) = Wal::open(FsDisk::open(dir).expect("dir")).expect("opens");
    let mut next = recovered.entries.len() as u64 + 1;
    while next < CHILD_MAX_ENTRIES {
        let batch: Vec<Entry> = (next..next + 1 + next % 3).map(entry).collect();
        wal.append(&batch).expect("append");
        wal.sync().expect("sync");
        next += batch.len() as u64;
        println!("synced {}", next - 1);
    }
}

#[test]
fn a_writer_killed_mid_write_recovers_every_entry_it_synced() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let exe = std::env::current_exe().expect("the test binary");
    let mut last_synced = 0;
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().expect("piped");
        let kill_after = 20 + round * 17;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("utf-8 lines");
            if let Some(n) = line.strip_prefix("synced ") {
                last_synced = n.parse().expect("a number");
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        child.kill().expect("the child is killed");
        child.wait().expect("reaped");

        let (_, recovered) = Wal::open(FsDisk::open(dir.path()).unwrap()).expect("recovers");
        assert!(
            recovered.entries.len() as u64 >= last_synced,
            "round {round}: synced up to {last_synced}, recovered {}",
            recovered.entries.len()
        );
        for (i, e) in recovered.entries.iter().enumerate() {
            assert_eq!(*e, entry(i as u64 + 1), "round {round}: entry {}", i + 1);
        }
    }
    assert!(last_synced > 0, "the child wrote");
}
