//! Disks for tests of what a crash at each step leaves behind.

use crate::disk::{Disk, DiskError, MemDisk};

/// A disk that loses power at its `n`-th mutating call: that call and every
/// later one fail, and what the wrapped [`MemDisk`] holds is what a crash
/// there leaves (after [`MemDisk::crash`]).
pub(crate) struct FailsAt {
    pub(crate) mem: MemDisk,
    calls: u32,
    n: u32,
}

impl FailsAt {
    pub(crate) fn new(mem: MemDisk, n: u32) -> FailsAt {
        FailsAt { mem, calls: 0, n }
    }

    /// Mutating calls made so far (including failed ones).
    pub(crate) fn calls(&self) -> u32 {
        self.calls
    }

    fn step(&mut self) -> Result<(), DiskError> {
        self.calls += 1;
        if self.calls >= self.n {
            return Err(DiskError::Io("power lost".into()));
        }
        Ok(())
    }
}

impl Disk for FailsAt {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.mem.list()
    }
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        self.step()?;
        self.mem.create(name)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.step()?;
        self.mem.write_at(name, offset, data)
    }
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.mem.read_at(name, offset, len)
    }
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.mem.len(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        self.step()?;
        self.mem.truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.step()?;
        self.mem.sync(name)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.step()?;
        self.mem.sync_dir()
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.step()?;
        self.mem.rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.step()?;
        self.mem.remove(name)
    }
}
