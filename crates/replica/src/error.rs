//! Why a replica could not start or had to stop.

use crate::write::WriteId;
use raft::{CompactError, ConfigError, RestoreError};
use std::fmt;
use wal::WalError;

/// Why a replica could not start or had to stop. After an error from
/// [`crate::Replica::handle`] the replica must be discarded (fail-stop):
/// its memory may be ahead of its disk.
#[derive(Debug)]
pub enum ReplicaError {
    /// The raft configuration is invalid.
    Config(ConfigError),
    /// The raft configuration is valid for raft but not for this replica
    /// (it could never replicate a command the state machine accepts).
    UnsupportedConfig(String),
    /// The recovered log or hard state is inconsistent.
    Restore(RestoreError),
    /// The write-ahead log failed (reported by the executor, or found by
    /// recovery).
    Wal(WalError),
    /// A snapshot (from the disk or from the leader) does not decode, or
    /// does not match what it claims to cover. Nothing was installed.
    InvalidSnapshot(String),
    /// Compacting the log was refused (a bug in the snapshot policy).
    Compact(CompactError),
    /// The executor reported a write done that is not the oldest one in
    /// flight (writes complete in order): an executor bug.
    CompletionOutOfOrder {
        /// What was reported.
        got: WriteId,
        /// The oldest write in flight, if any.
        expected: Option<WriteId>,
    },
    /// The loop did not settle (a bug in the raft core).
    Livelock,
}

impl fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaError::Config(e) => write!(f, "invalid raft configuration: {e:?}"),
            ReplicaError::UnsupportedConfig(why) => {
                write!(f, "unsupported raft configuration: {why}")
            }
            ReplicaError::Restore(e) => write!(f, "cannot restore from the log: {e:?}"),
            ReplicaError::Wal(e) => write!(f, "write-ahead log failed: {e:?}"),
            ReplicaError::InvalidSnapshot(why) => write!(f, "invalid snapshot: {why}"),
            ReplicaError::Compact(e) => write!(f, "compaction refused: {e:?}"),
            ReplicaError::CompletionOutOfOrder { got, expected } => write!(
                f,
                "write {} reported done, but the oldest in flight is {}",
                got.0,
                expected.map_or("none".to_string(), |id| id.0.to_string())
            ),
            ReplicaError::Livelock => write!(f, "ready loop did not settle"),
        }
    }
}

impl std::error::Error for ReplicaError {}

impl ReplicaError {
    /// Whether the replica stopped because its disk holds damaged data
    /// (see [`WalError::is_corruption`]). Such a node stays down: rejoining
    /// with less than it acknowledged could lose committed writes.
    pub fn is_disk_corruption(&self) -> bool {
        matches!(self, ReplicaError::Wal(e) if e.is_corruption())
    }

    /// Whether the replica stopped because its disk failed an operation (an
    /// I/O error, a full disk). Fail-stop: its memory may be ahead of its
    /// disk, so it is discarded, and a restart recovers from what the disk
    /// holds once the disk works again.
    pub fn is_disk_failure(&self) -> bool {
        matches!(self, ReplicaError::Wal(e) if e.is_disk_failure())
    }
}

impl From<WalError> for ReplicaError {
    fn from(e: WalError) -> Self {
        ReplicaError::Wal(e)
    }
}
