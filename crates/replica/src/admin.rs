//! Operator requests: membership changes, leadership transfers and
//! snapshots on demand reach the replica as inputs like everything else,
//! and are answered as effects in the same step.

use raft::{ConfChange, LogIndex, MembershipError, NodeId, TransferError};
use std::fmt;

/// An operator's request to the replica (which must lead to accept it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    /// Chosen by the executor; echoed in the reply.
    pub req_id: u64,
    /// What is asked.
    pub op: AdminOp,
}

/// What an operator can ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// Change the configuration (dissertation ch. 4): add or promote a
    /// learner, add or remove voters through joint consensus.
    ChangeMembership(ConfChange),
    /// Hand leadership to this voter (§3.10).
    TransferLeadership(NodeId),
    /// Snapshot the state machine at its applied index now and compact the
    /// log to it (§7), whatever the snapshot policy says. Any member may
    /// do it: each compacts its own log. A follower that then needs the
    /// compacted entries is sent the leader's snapshot instead.
    Snapshot,
}

/// The answer to an [`AdminRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminReply {
    /// The request's `req_id`.
    pub req_id: u64,
    /// What became of it.
    pub result: Result<AdminAccepted, AdminRefused>,
}

/// An accepted request: under way, not yet done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAccepted {
    /// The configuration entry is in the leader's log at this index; it is
    /// in force once there (§4.1) and done once committed.
    MembershipProposed(LogIndex),
    /// The transfer started; done when the target leads, abandoned after
    /// an election timeout.
    TransferStarted,
    /// A snapshot at this applied index was taken; the log is compacted to
    /// it once the write carrying it completes.
    SnapshotTaken(LogIndex),
}

/// A refused request: nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRefused {
    /// The membership change is unsafe or impossible now.
    Membership(MembershipError),
    /// The transfer is impossible now.
    Transfer(TransferError),
    /// Nothing was applied since the last snapshot: there is nothing to
    /// compact.
    NothingToSnapshot {
        /// The applied index, which the log already starts at or after.
        applied: LogIndex,
    },
}

impl fmt::Display for AdminRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminRefused::Membership(e) => write!(f, "membership change refused: {e:?}"),
            AdminRefused::Transfer(e) => write!(f, "leadership transfer refused: {e:?}"),
            AdminRefused::NothingToSnapshot { applied } => write!(
                f,
                "snapshot refused: nothing applied since the last one (applied index {})",
                applied.0
            ),
        }
    }
}
