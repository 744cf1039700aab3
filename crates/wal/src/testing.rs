//! Disks for tests of what a crash at each step leaves behind.

use crate::disk::{DelegatingDisk, DiskError, MemDisk, Mutation};

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

impl DelegatingDisk for FailsAt {
    type Inner = MemDisk;
    fn inner(&self) -> &MemDisk {
        &self.mem
    }
    fn inner_mut(&mut self) -> &mut MemDisk {
        &mut self.mem
    }
    fn before_mutation(&mut self, _: Mutation) -> Result<(), DiskError> {
        self.step()
    }
}
