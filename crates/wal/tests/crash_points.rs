//! The crash-point test: a scripted workload on the log, with the power
//! failing at every sync point of the write path in turn (the directory sync
//! that creates the file, every log sync, the sync after cutting a torn
//! tail), each time losing the unsynced writes entirely or tearing them at
//! every sector boundary. After each crash the log must open, and hold
//! exactly what was synced, or more of what was being written, but never
//! less of what was synced and committed, and never an older term or vote.

use raft::{Entry, EntryPayload, HardState, LogIndex, NodeId, Term};
use std::cell::Cell;
use std::rc::Rc;
use wal::{DelegatingDisk, DiskError, MemDisk, Mutation, SEGMENT_BYTES, Wal};

const SECTOR: u64 = 512;

/// A disk that loses power at its `crash_at`-th sync (counting `sync` and
/// `sync_dir`): that sync fails and persists nothing, as does everything
/// after it.
#[derive(Debug)]
struct PowerFailsAt {
    mem: MemDisk,
    syncs: Rc<Cell<u64>>,
    crash_at: u64,
}

impl PowerFailsAt {
    fn barrier(&self) -> Result<(), DiskError> {
        let n = self.syncs.get();
        self.syncs.set(n + 1);
        if n >= self.crash_at {
            return Err(DiskError::Io("power lost".into()));
        }
        Ok(())
    }
}

impl DelegatingDisk for PowerFailsAt {
    type Inner = MemDisk;
    fn inner(&self) -> &MemDisk {
        &self.mem
    }
    fn inner_mut(&mut self) -> &mut MemDisk {
        &mut self.mem
    }
    fn before_mutation(&mut self, call: Mutation) -> Result<(), DiskError> {
        match call {
            Mutation::Sync | Mutation::SyncDir => self.barrier(),
            _ => Ok(()),
        }
    }
}

fn entry(index: u64, term: u64, tag: &str) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        // Entries of several sectors, so that tears fall inside records.
        payload: EntryPayload::Command(format!("{tag}{}", "-".repeat(300)).into_bytes()),
    }
}

fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: vote.map(NodeId),
        commit: LogIndex(commit),
    }
}

/// What the log held at its last successful sync.
#[derive(Clone, Debug, Default, PartialEq)]
struct Synced {
    entries: Vec<Entry>,
    hard_state: HardState,
}

/// One step of the script.
enum Step {
    Append(Vec<Entry>),
    HardState(HardState),
    Sync,
}

/// A follower's life: a vote, appends, a commit, a conflicting suffix
/// replaced by a new leader's entries (§5.3), more appends and commits.
fn script() -> Vec<Step> {
    use Step::*;
    vec![
        HardState(hs(1, Some(2), 0)),
        Sync,
        Append(vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")]),
        Sync,
        HardState(hs(1, Some(2), 2)),
        Append(vec![entry(4, 1, "d")]),
        Sync,
        HardState(hs(2, None, 2)),
        Sync,
        HardState(hs(2, Some(3), 2)),
        Append(vec![entry(3, 2, "C"), entry(4, 2, "D"), entry(5, 2, "E")]),
        Sync,
        Append(vec![entry(6, 2, "F")]),
        HardState(hs(2, Some(3), 5)),
        Sync,
        Append((7..=12).map(|i| entry(i, 2, "bulk")).collect()),
        Sync,
        // Past a segment's size: the log rolls to a new segment (a sync of
        // the old one, a create, a directory sync) in the middle.
        Append((13..=16).map(big).collect()),
        HardState(hs(2, Some(3), 12)),
        Sync,
        Append(vec![entry(17, 2, "after the roll")]),
        Sync,
    ]
}

fn big(index: u64) -> Entry {
    Entry {
        term: Term(2),
        index: LogIndex(index),
        payload: EntryPayload::Command(vec![index as u8; (SEGMENT_BYTES / 3) as usize]),
    }
}

/// Runs the script until the power fails. Returns what was last synced.
fn run_until_power_fails(disk: PowerFailsAt) -> Synced {
    let mut synced = Synced::default();
    let Ok((mut wal, _)) = Wal::open(disk) else {
        return synced;
    };
    // The log as appended so far (the WAL keeps only terms; reading it
    // back would add disk operations to the schedule being tested).
    let mut log: Vec<Entry> = Vec::new();
    for step in script() {
        let ok = match step {
            Step::Append(entries) => {
                let ok = wal.append(&entries).is_ok();
                if ok && let Some(first) = entries.first() {
                    log.truncate(first.index.0 as usize - 1);
                    log.extend(entries);
                }
                ok
            }
            Step::HardState(h) => wal.set_hard_state(h).is_ok(),
            Step::Sync => {
                let ok = wal.sync().is_ok();
                if ok {
                    synced = Synced {
                        entries: log.clone(),
                        hard_state: wal.hard_state(),
                    };
                }
                ok
            }
        };
        if !ok {
            break;
        }
    }
    synced
}

/// Recovers after a crash, and checks the recovered state against what was
/// synced. The recovery itself runs on a disk that may fail at its sync
/// (the cut of a torn tail), followed by a second recovery.
fn check_recovery(mem: &MemDisk, synced: &Synced, what: &str) {
    let first = Wal::open(PowerFailsAt {
        mem: mem.clone(),
        syncs: Rc::new(Cell::new(0)),
        crash_at: 0,
    });
    if first.is_err() {
        // The power failed again while recovery cut a torn tail.
        mem.crash();
    }
    let (_, rec) = match Wal::open(mem.clone()) {
        Ok(opened) => opened,
        Err(e) => panic!("{what}: recovery failed: {e}"),
    };
    let h = rec.hard_state;
    let s = synced.hard_state;
    assert!(h.term >= s.term, "{what}: term went back: {h:?} < {s:?}");
    if h.term == s.term && s.vote.is_some() {
        assert_eq!(h.vote, s.vote, "{what}: vote forgotten");
    }
    assert!(h.commit >= s.commit, "{what}: commit went back");
    let committed = s.commit.0 as usize;
    assert!(
        rec.entries.len() >= committed && rec.entries[..committed] == synced.entries[..committed],
        "{what}: lost committed entries"
    );
    for (i, e) in rec.entries.iter().enumerate() {
        assert_eq!(e.index, LogIndex(i as u64 + 1), "{what}: indices");
    }
}

#[test]
fn recovery_holds_at_every_sync_point_whole_or_torn() {
    // A dry run counts the sync points.
    let counter = Rc::new(Cell::new(0));
    let full = run_until_power_fails(PowerFailsAt {
        mem: MemDisk::new(),
        syncs: counter.clone(),
        crash_at: u64::MAX,
    });
    let sync_points = counter.get();
    assert!(sync_points >= 8, "the script syncs: {sync_points}");
    assert_eq!(full.entries.len(), 17);

    let mut crashes = 0;
    for crash_at in 0..=sync_points {
        // The unsynced writes are lost whole, or torn after 1, 2, 4, ...
        // sectors, up to all of them.
        let mut sector = 0;
        loop {
            let mem = MemDisk::new();
            let synced = run_until_power_fails(PowerFailsAt {
                mem: mem.clone(),
                syncs: Rc::new(Cell::new(0)),
                crash_at,
            });
            let mut torn_more = false;
            mem.crash_torn(|from, len| {
                let keep = (from / SECTOR + sector) * SECTOR;
                torn_more |= keep < len;
                if sector == 0 { from } else { keep }
            });
            crashes += 1;
            check_recovery(
                &mem,
                &synced,
                &format!("crash at sync {crash_at}, {sector} sectors kept"),
            );
            if !torn_more {
                break;
            }
            sector = (sector * 2).max(1);
        }
    }
    assert!(crashes > sync_points, "torn variants ran: {crashes}");
}
