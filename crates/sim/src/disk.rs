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
    Off,
    /// Faults drawn from the seed, within a budget that keeps every
    /// committed entry intact on a majority (the cluster stays recoverable).
    /// The default.
    #[default]
    On,
    /// Faults without the budget: safety is checked, liveness is not
    /// expected.
    NoLimits,
}

/// The sector size: the unit in which a crash tears writes and misdirected
/// writes miss their target.
pub const SECTOR: u64 = 512;

/// How often each fault strikes, when the mode allows it. Rates are per
/// call (reads, writes, syncs) or per crash.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FaultRates {
    /// Per crash: part of the unsynced data reaches the medium (a prefix of
    /// its sectors) instead of none.
    pub torn_write: f64,
    /// Per sync: the power fails during the sync: it returns an error and
    /// persists nothing, and the node is expected to go down (the world
    /// crashes the disk, which may tear the unsynced writes). This puts
    /// crashes at the worst moment: between a write and its sync.
    pub power_loss_in_sync: f64,
    /// Per read: one bit of the returned data is flipped on the way (the
    /// medium is intact; reading again helps).
    pub read_bit_flip: f64,
    /// Per read: the read fails with an I/O error.
    pub read_error: f64,
    /// Per write: the disk is full (for this and, a third of the time, the
    /// first write after the restart too).
    pub no_space: f64,
    /// Per crash, on disks that may lose data: one bit of synced data rots.
    pub bit_rot: f64,
    /// Per write, on disks that may lose data: the data lands some sectors
    /// away from where it was meant to.
    pub misdirected_write: f64,
    /// Per sync, only without limits: the sync reports success and persists
    /// nothing.
    pub lying_fsync: f64,
}

impl FaultRates {
    /// The rates of `mode`, scaled by this disk's draw (swarm testing: some
    /// runs are gentle, some harsh).
    fn draw(mode: DiskFaultMode, rng: &mut SimRng) -> FaultRates {
        if mode == DiskFaultMode::Off {
            return FaultRates {
                torn_write: 0.0,
                power_loss_in_sync: 0.0,
                read_bit_flip: 0.0,
                read_error: 0.0,
                no_space: 0.0,
                bit_rot: 0.0,
                misdirected_write: 0.0,
                lying_fsync: 0.0,
            };
        }
        let harsh = 0.25 + rng.unit() * 1.5;
        FaultRates {
            torn_write: 0.7,
            power_loss_in_sync: 0.000_2 * harsh,
            read_bit_flip: 0.05 * harsh,
            read_error: 0.03 * harsh,
            // A node writes thousands of times a run: a full disk or a
            // misdirected write a few times per run, on some nodes.
            no_space: 0.000_05 * harsh,
            bit_rot: 0.1 * harsh,
            misdirected_write: 0.000_05 * harsh,
            lying_fsync: if mode == DiskFaultMode::NoLimits {
                0.3 * harsh
            } else {
                0.0
            },
        }
    }
}

/// One node's disk in the simulator.
///
/// # Faults and the budget
///
/// With [`DiskFaultMode::On`], every disk may tear unsynced writes on a
/// crash, flip bits on the way to a reader, fail reads, and run out of
/// space for a few writes. Those lose nothing that was synced, or are
/// detected (checksums, re-reads), so the node either recovers or refuses
/// to start. Only disks that [`SimDisk::may_lose_data`] (a minority, chosen
/// by the world) also rot synced bits and misdirect writes: damage to synced
/// data that recovery detects, after which the node stays down.
///
/// An fsync that lies is *undetectable* data loss: the node acknowledged
/// entries it then forgets, and, with no protocol-aware recovery, its vote
/// can elect a leader that lacks a committed entry, even when it is the only
/// faulty node. So it is injected only with [`DiskFaultMode::NoLimits`],
/// which checks safety and expects the checks to fire.
///
/// Slow fsync (a timing fault) is not modelled: a sync takes no virtual
/// time here.
#[derive(Clone, Debug)]
pub struct SimDisk {
    mem: MemDisk,
    state: Rc<RefCell<FaultState>>,
}

#[derive(Debug)]
struct FaultState {
    rng: SimRng,
    mode: DiskFaultMode,
    rates: FaultRates,
    /// Whether the budget lets this disk lose or corrupt synced data.
    /// Invariant: true on at most a minority of nodes unless `NoLimits`.
    may_lose_data: bool,
    /// Writes still refused for lack of space.
    full_for: u32,
    /// Faults injected so far, by kind.
    injected: BTreeMap<&'static str, u64>,
}

impl FaultState {
    fn count(&mut self, kind: &'static str) {
        *self.injected.entry(kind).or_insert(0) += 1;
    }

    /// Whether a fault of the rate `pick` strikes now.
    fn roll(&mut self, pick: impl Fn(&FaultRates) -> f64) -> bool {
        let p = pick(&self.rates);
        self.rng.chance(p)
    }

    /// Whether the next growing write is refused for lack of space.
    fn out_of_space(&mut self) -> bool {
        if self.full_for == 0 && self.rng.chance(self.rates.no_space) {
            self.full_for = 1 + u32::from(self.rng.chance(1.0 / 3.0));
        }
        if self.full_for > 0 {
            self.full_for -= 1;
            self.count("no_space");
            return true;
        }
        false
    }
}

impl SimDisk {
    /// A disk drawing its faults from `rng`. `may_lose_data` is the fault
    /// budget's say for this disk; without limits, every disk may.
    pub fn new(mut rng: SimRng, mode: DiskFaultMode, may_lose_data: bool) -> SimDisk {
        let rates = FaultRates::draw(mode, &mut rng);
        SimDisk {
            mem: MemDisk::new(),
            state: Rc::new(RefCell::new(FaultState {
                rng,
                mode,
                rates,
                may_lose_data: match mode {
                    DiskFaultMode::Off => false,
                    DiskFaultMode::On => may_lose_data,
                    DiskFaultMode::NoLimits => true,
                },
                full_for: 0,
                injected: BTreeMap::new(),
            })),
        }
    }

    /// Replaces the disk's contents with nothing, durably (a new, empty
    /// disk in the same slot; its fault state carries on).
    pub fn wipe(&self) {
        let mut mem = self.mem.clone();
        for name in mem.list().unwrap_or_default() {
            // MemDisk's own operations cannot fail on a name it listed.
            let _ = mem.remove(&name);
        }
        let _ = mem.sync_dir();
        mem.crash();
    }

    /// Power loss: unsynced writes are gone, or (a torn write) a prefix of
    /// their sectors persisted; on a disk that may lose data, a synced bit
    /// may rot while the power is off.
    pub fn crash(&self) {
        let mut st = self.state.borrow_mut();
        if st.roll(|r| r.torn_write) {
            let rng = &mut st.rng;
            let kept = self.mem.crash_torn(|from, len| {
                let first = from / SECTOR * SECTOR;
                let sectors = (len - first).div_ceil(SECTOR);
                first + rng.range(0, sectors + 1) * SECTOR
            });
            if kept > 0 {
                st.count("torn_write");
            }
        } else {
            self.mem.crash();
        }
        if st.may_lose_data && st.roll(|r| r.bit_rot) {
            let files = self.mem.list().unwrap_or_default();
            if !files.is_empty() {
                let name = &files[st.rng.index(files.len())];
                let len = self.mem.len(name).unwrap_or(0);
                if len > 0 {
                    let offset = st.rng.range(0, len);
                    let mask = 1u8 << st.rng.range(0, 8);
                    if self.mem.corrupt(name, offset, mask) {
                        st.count("bit_rot");
                    }
                }
            }
        }
    }

    /// The faults injected so far, by kind.
    pub fn fault_counts(&self) -> BTreeMap<&'static str, u64> {
        self.state.borrow().injected.clone()
    }

    /// The fault mode.
    pub fn mode(&self) -> DiskFaultMode {
        self.state.borrow().mode
    }

    /// The fault rates this disk drew.
    pub fn rates(&self) -> FaultRates {
        self.state.borrow().rates
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
        let mut st = self.state.borrow_mut();
        let grows = offset + data.len() as u64 > self.mem.len(name)?;
        if grows && st.out_of_space() {
            return Err(DiskError::NoSpace);
        }
        if st.may_lose_data && st.roll(|r| r.misdirected_write) {
            let miss = (1 + st.rng.range(0, 4)) * SECTOR;
            let wrong = if offset >= miss {
                offset - miss
            } else {
                offset + miss
            };
            st.count("misdirected_write");
            // The write reports success: the disk does not know.
            return self.mem.write_at(name, wrong, data);
        }
        self.mem.write_at(name, offset, data)
    }
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let mut st = self.state.borrow_mut();
        if st.roll(|r| r.read_error) {
            st.count("read_error");
            return Err(DiskError::Io(format!(
                "injected read error on {name} at {offset}"
            )));
        }
        let mut data = self.mem.read_at(name, offset, len)?;
        if !data.is_empty() && st.roll(|r| r.read_bit_flip) {
            let at = st.rng.index(data.len());
            data[at] ^= 1u8 << st.rng.range(0, 8);
            st.count("read_bit_flip");
        }
        Ok(data)
    }
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.mem.len(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        let mut st = self.state.borrow_mut();
        if len > self.mem.len(name)? && st.out_of_space() {
            return Err(DiskError::NoSpace);
        }
        self.mem.truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        let mut st = self.state.borrow_mut();
        if st.roll(|r| r.power_loss_in_sync) {
            st.count("power_loss_in_sync");
            return Err(DiskError::Io(format!("power lost while syncing {name}")));
        }
        if st.roll(|r| r.lying_fsync) {
            st.count("lying_fsync");
            self.mem.len(name)?;
            return Ok(());
        }
        self.mem.sync(name)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        let mut st = self.state.borrow_mut();
        if st.roll(|r| r.lying_fsync) {
            st.count("lying_fsync");
            return Ok(());
        }
        self.mem.sync_dir()
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.mem.rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.mem.remove(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Concern;

    fn disk(mode: DiskFaultMode, may_lose_data: bool, seed: u64) -> SimDisk {
        SimDisk::new(
            SimRng::for_concern(seed, Concern::Disk(1)),
            mode,
            may_lose_data,
        )
    }

    /// Drives a disk through appends, syncs, reads and crashes.
    fn workout(d: &mut SimDisk) {
        let _ = d.create("f");
        let _ = d.sync_dir();
        for round in 0..400u64 {
            let len = d.len("f").unwrap_or(0);
            let _ = d.write_at("f", len, &[round as u8; 700]);
            if round % 3 == 0 {
                let _ = d.sync("f");
            }
            let len = d.len("f").unwrap_or(0);
            let _ = d.read_at("f", 0, len as usize);
            if round % 7 == 0 {
                d.crash();
            }
        }
    }

    #[test]
    fn off_injects_nothing() {
        let mut d = disk(DiskFaultMode::Off, true, 1);
        workout(&mut d);
        assert!(d.fault_counts().is_empty(), "{:?}", d.fault_counts());
    }

    #[test]
    fn on_within_budget_injects_only_faults_that_lose_no_synced_data_undetected() {
        let mut d = disk(DiskFaultMode::On, false, 2);
        workout(&mut d);
        let counts = d.fault_counts();
        for kind in ["torn_write", "read_bit_flip", "read_error"] {
            assert!(counts.contains_key(kind), "no {kind}: {counts:?}");
        }
        for kind in ["bit_rot", "misdirected_write", "lying_fsync"] {
            assert!(!counts.contains_key(kind), "{kind} off budget: {counts:?}");
        }
    }

    #[test]
    fn on_disks_that_may_lose_data_also_rot_but_never_lie() {
        let mut d = disk(DiskFaultMode::On, true, 3);
        workout(&mut d);
        let counts = d.fault_counts();
        assert!(counts.contains_key("bit_rot"), "{counts:?}");
        assert!(!counts.contains_key("lying_fsync"), "{counts:?}");
    }

    #[test]
    fn no_limits_lies_about_syncs() {
        let mut d = disk(DiskFaultMode::NoLimits, false, 4);
        assert!(d.may_lose_data());
        workout(&mut d);
        assert!(d.fault_counts().contains_key("lying_fsync"));
    }

    #[test]
    fn torn_crash_keeps_whole_sectors_of_unsynced_data() {
        let mut seen_partial = false;
        for seed in 0..20 {
            let mut d = disk(DiskFaultMode::On, false, seed);
            d.create("f").unwrap();
            d.sync_dir().unwrap();
            d.write_at("f", 0, &[1; 100]).unwrap();
            d.sync("f").unwrap();
            d.write_at("f", 100, &[2; 2000]).unwrap();
            d.crash();
            let len = d.mem().len("f").unwrap();
            assert!(
                len == 100 || len == 2100 || len.is_multiple_of(SECTOR),
                "{len}"
            );
            assert_eq!(d.mem().contents("f").unwrap()[..100], [1; 100]);
            seen_partial |= len > 100 && len < 2100;
        }
        assert!(seen_partial, "some crash tore a write");
    }

    #[test]
    fn the_same_seed_injects_the_same_faults() {
        let (mut a, mut b) = (
            disk(DiskFaultMode::NoLimits, true, 9),
            disk(DiskFaultMode::NoLimits, true, 9),
        );
        workout(&mut a);
        workout(&mut b);
        assert_eq!(a.fault_counts(), b.fault_counts());
        assert_eq!(a.mem().contents("f"), b.mem().contents("f"));
    }
}
