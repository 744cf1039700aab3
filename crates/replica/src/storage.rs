//! The executor's half of a write: carrying out a [`Write`] on the WAL.
//!
//! The replica decides what is written; an executor decides when, using
//! this type, so that the simulator and the real node write the same bytes
//! in the same order. It is split in two steps so that an executor can model
//! (or use) the page cache: [`Storage::write`] issues everything (in the
//! simulator: at once, unsynced, so a crash loses or tears it), and
//! [`Storage::sync`] is the barrier after which the write may be reported
//! done. [`Storage::execute`] does both, for executors that do not care.
//!
//! A snapshot (install or compaction) is durable when `write` returns: the
//! WAL makes a snapshot the start of the log with syncs of its own, so that
//! a crash at any step leaves the old log or the new. It is still reported
//! only at completion, like the rest of its write.

use crate::write::Write;
use wal::{Disk, Recovered, Wal, WalError};

/// The durable side of one replica: its WAL on its disk.
#[derive(Debug)]
pub struct Storage<D: Disk> {
    wal: Wal<D>,
}

impl<D: Disk> Storage<D> {
    /// Opens the WAL on `disk` (empty for a new node) and returns what
    /// recovery found, for [`crate::Replica::open`].
    pub fn open(disk: D) -> Result<(Storage<D>, Recovered), WalError> {
        let (wal, recovered) = Wal::open(disk)?;
        Ok((Storage { wal }, recovered))
    }

    /// Issues `write`: the snapshot installed (durably), the hard state and
    /// the entries written (not yet synced), the compaction made (durably).
    /// An error poisons the log: the replica must be stopped (fail-stop),
    /// since its memory may be ahead of its disk.
    pub fn write(&mut self, write: &Write) -> Result<(), WalError> {
        if let Some(snapshot) = &write.install {
            self.wal.save_snapshot(snapshot, &write.install_keep)?;
        }
        if let Some(hs) = write.hard_state {
            self.wal.set_hard_state(hs)?;
        }
        if !write.entries.is_empty() {
            self.wal.append(&write.entries)?;
        }
        if let Some(snapshot) = &write.compact {
            // The WAL writes everything before a compaction durably first.
            self.wal.save_snapshot(snapshot, &write.compact_keep)?;
        }
        Ok(())
    }

    /// Makes everything issued so far durable, with one disk sync (none if
    /// nothing is unsynced). After it returns, every write issued before it
    /// may be reported done.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.wal.sync()
    }

    /// Issues `write` and syncs.
    pub fn execute(&mut self, write: &Write) -> Result<(), WalError> {
        self.write(write)?;
        self.sync()
    }

    /// The write-ahead log, for inspection.
    pub fn wal(&self) -> &Wal<D> {
        &self.wal
    }
}
