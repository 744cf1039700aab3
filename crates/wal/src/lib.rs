//! The durable side of a raftlab replica: the Raft log and hard state,
//! written through a small [`Disk`] trait so that the same recovery code runs
//! over the simulator's [`MemDisk`] and, later, a real file system.
//!
//! * [`disk`]: the [`Disk`] trait and [`MemDisk`], which loses unsynced
//!   writes on [`MemDisk::crash`].
//! * [`fs_disk`]: [`FsDisk`], the real node's disk on `std::fs` (the only
//!   module here that does real I/O; the simulator never uses it).
//! * [`record`]: the on-disk frame (length, CRC32C, postcard payload).
//! * [`snapshot`]: snapshot files, saved by write, sync, rename, sync of the
//!   directory, so a crash leaves the old snapshot or the new one, whole.
//! * [`wal`](mod@wal): [`Wal`], a segmented log: append / set hard state /
//!   sync, and recovery that cuts a torn tail but reports any other damage.

pub mod disk;
pub mod fs_disk;
pub mod record;
pub mod reread;
pub mod snapshot;
pub mod wal;

#[cfg(test)]
mod testing;

pub use disk::{DelegatingDisk, Disk, DiskError, MemDisk, Mutation};
pub use fs_disk::FsDisk;
pub use record::{FRAME_HEADER_BYTES, MAX_ENTRY_PAYLOAD_BYTES, MAX_RECORD_BYTES};
pub use snapshot::{MAX_SNAPSHOT_BYTES, SnapshotMeta, load_snapshot, save_snapshot, snapshot_name};
pub use wal::{
    MAX_READ_ATTEMPTS, MAX_SEGMENT_FILE_BYTES, MAX_SEGMENTS, MAX_WAL_BYTES, Recovered,
    SEGMENT_BYTES, WAL_FILE, Wal, WalError, segment_name,
};
