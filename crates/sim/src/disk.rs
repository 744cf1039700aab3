//! The simulator's disk, per node: a [`MemDisk`] (which loses unsynced writes
//! on a crash) behind a layer that injects the faults real disks have.
//!
//! A `SimDisk` is a cheap handle: the world keeps one to crash it and to read
//! its fault counters, the node's write-ahead log owns another.

use crate::rng::SimRng;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use wal::{Disk, DiskError, MemDisk};

/// How hostile the disks are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFaultMode {
    /// Disks lose unsynced writes on a crash, and nothing else.
    #[default]
    Off,
    /// Faults drawn from the seed, within a budget that keeps every
    /// committed entry intact on a majority (the cluster stays recoverable).
    On,
    /// Faults without the budget: safety is checked, liveness is not
    /// expected.
    NoLimits,
}

/// One node's disk in the simulator.
#[derive(Clone, Debug)]
pub struct SimDisk {
    mem: MemDisk,
    state: Rc<RefCell<FaultState>>,
}

#[derive(Debug)]
struct FaultState {
    #[allow(dead_code)] // drawn from by the fault injector
    rng: SimRng,
    mode: DiskFaultMode,
    /// Whether the budget lets this disk lose or corrupt synced data.
    /// Invariant: true on at most a minority of nodes unless `NoLimits`.
    may_lose_data: bool,
    /// Faults injected so far, by kind.
    injected: BTreeMap<&'static str, u64>,
}

impl SimDisk {
    /// A disk drawing its faults from `rng`.
    pub fn new(rng: SimRng, mode: DiskFaultMode, may_lose_data: bool) -> SimDisk {
        SimDisk {
            mem: MemDisk::new(),
            state: Rc::new(RefCell::new(FaultState {
                rng,
                mode,
                may_lose_data,
                injected: BTreeMap::new(),
            })),
        }
    }

    /// Power loss: every unsynced write is gone.
    pub fn crash(&self) {
        self.mem.crash();
    }

    /// The faults injected so far, by kind.
    pub fn fault_counts(&self) -> BTreeMap<&'static str, u64> {
        self.state.borrow().injected.clone()
    }

    /// The fault mode.
    pub fn mode(&self) -> DiskFaultMode {
        self.state.borrow().mode
    }

    /// Whether the fault budget lets this disk lose synced data.
    pub fn may_lose_data(&self) -> bool {
        self.state.borrow().may_lose_data
    }

    /// The memory underneath, for tests and invariants.
    pub fn mem(&self) -> &MemDisk {
        &self.mem
    }
}

impl Disk for SimDisk {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.mem.list()
    }
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        self.mem.create(name)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.mem.write_at(name, offset, data)
    }
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.mem.read_at(name, offset, len)
    }
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.mem.len(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        self.mem.truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.mem.sync(name)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.mem.sync_dir()
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.mem.rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.mem.remove(name)
    }
}
