//! Why a log operation failed.

use crate::disk::DiskError;
use raft::LogIndex;
use std::fmt;

/// Why a log operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalError {
    /// The disk failed.
    Disk(DiskError),
    /// The file holds damaged or contradictory data that is not a torn tail.
    Corrupt {
        /// The file.
        file: String,
        /// The offset of the bad frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An append that does not connect to the log: its first index is past
    /// the last index + 1.
    Gap {
        /// The index the append had to start at or before.
        expected: LogIndex,
        /// The index it started at.
        got: LogIndex,
    },
    /// An append whose entries are not a valid log segment: an index 0,
    /// indices that are not contiguous, or terms that go backwards.
    InvalidEntries {
        /// What is wrong.
        reason: String,
    },
    /// An append that would remove or change an entry at or below the commit
    /// index made durable by the last sync. Raft never does that (§5.3, Figure
    /// 2 AppendEntries rule 3 deletes only conflicting entries, and by Leader
    /// Completeness, §5.4, committed entries never conflict).
    TruncateCommitted {
        /// The first index the append would remove or change.
        index: LogIndex,
        /// The durable commit index.
        commit: LogIndex,
    },
    /// A hard state that goes backwards: a lower term, a lower commit index,
    /// or a different vote in the same term (§5.2: at most one vote per term).
    InvalidHardState {
        /// What is wrong.
        reason: String,
    },
    /// An entry whose payload is larger than [`crate::MAX_ENTRY_PAYLOAD_BYTES`].
    TooLarge {
        /// The entry.
        index: LogIndex,
        /// Its payload size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The file would grow past [`super::MAX_WAL_BYTES`].
    LogFull {
        /// The size it would reach.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// An earlier write or sync failed; the log must be reopened.
    Poisoned,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Disk(e) => write!(f, "disk: {e}"),
            WalError::Corrupt {
                file,
                offset,
                reason,
            } => write!(f, "{file} is corrupt at offset {offset}: {reason}"),
            WalError::Gap { expected, got } => write!(
                f,
                "append at {got} leaves a gap (must start at or before {expected})"
            ),
            WalError::InvalidEntries { reason } => write!(f, "invalid entries: {reason}"),
            WalError::TruncateCommitted { index, commit } => write!(
                f,
                "append would remove or change {index}, at or below the durable commit index {commit}"
            ),
            WalError::InvalidHardState { reason } => write!(f, "invalid hard state: {reason}"),
            WalError::TooLarge { index, bytes, max } => write!(
                f,
                "entry {index} has {bytes} payload bytes, more than the limit of {max}"
            ),
            WalError::LogFull { bytes, max } => {
                write!(
                    f,
                    "the log would grow to {bytes} bytes, past the limit of {max}"
                )
            }
            WalError::Poisoned => write!(f, "an earlier write failed; reopen the log"),
        }
    }
}

impl std::error::Error for WalError {}

impl WalError {
    /// Whether this is damage found in durable data (the disk holds
    /// something it was never given): the node must not run on it.
    pub fn is_corruption(&self) -> bool {
        matches!(self, WalError::Corrupt { .. })
    }

    /// Whether the disk failed an operation (an I/O error, a full disk, or
    /// an earlier such failure): reopening later may succeed.
    pub fn is_disk_failure(&self) -> bool {
        matches!(self, WalError::Disk(_) | WalError::Poisoned)
    }
}

impl From<DiskError> for WalError {
    fn from(e: DiskError) -> Self {
        WalError::Disk(e)
    }
}
