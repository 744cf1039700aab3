//! The errors the node's entry points return. None of them changes state: an
//! input that is refused is refused whole.

use crate::config::ConfigError;
use crate::types::{LogIndex, NodeId, Term};
use std::fmt;

/// Why [`crate::RawNode::restore`] refused the durable state it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The entries are not contiguous from index 1.
    NotContiguous {
        /// The index the entry at this position should have.
        expected: LogIndex,
        /// The index it has.
        found: LogIndex,
    },
    /// An entry has term 0, which only the empty prefix at index 0 has.
    ZeroTerm {
        /// The entry's index.
        index: LogIndex,
    },
    /// Terms decrease along the log, which no Raft log can do (§5.3).
    TermDecreases {
        /// The index whose term is lower than its predecessor's.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The predecessor's term.
        previous: Term,
    },
    /// An entry's term is above the hard state's term: the hard state is older
    /// than the log, so the term (and vote) may have gone backwards.
    TermAboveHardState {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The hard state's term.
        hard_state_term: Term,
    },
    /// The commit index points past the end of the log.
    CommitBeyondLog {
        /// The hard state's commit index.
        commit: LogIndex,
        /// The last index of the log.
        last_index: LogIndex,
    },
    /// The hard state records a vote for `NodeId(0)`.
    ZeroVote,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Config(e) => write!(f, "invalid configuration: {e}"),
            RestoreError::NotContiguous { expected, found } => {
                write!(f, "log not contiguous: expected {expected}, found {found}")
            }
            RestoreError::ZeroTerm { index } => write!(f, "entry {index} has term 0"),
            RestoreError::TermDecreases {
                index,
                term,
                previous,
            } => write!(
                f,
                "entry {index} has term {term}, below its predecessor's {previous}"
            ),
            RestoreError::TermAboveHardState {
                index,
                term,
                hard_state_term,
            } => write!(
                f,
                "entry {index} has term {term}, above the hard state's {hard_state_term}"
            ),
            RestoreError::CommitBeyondLog { commit, last_index } => {
                write!(f, "commit {commit} is past the last index {last_index}")
            }
            RestoreError::ZeroVote => write!(f, "hard state votes for node 0"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<ConfigError> for RestoreError {
    fn from(e: ConfigError) -> Self {
        RestoreError::Config(e)
    }
}

/// Why [`crate::RawNode::step`] refused a message. The node's state is
/// unchanged; the caller may log the error and carry on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The message is addressed to another node.
    NotAddressedToMe {
        /// Its addressee.
        to: NodeId,
    },
    /// The message claims to come from this node.
    FromMyself,
    /// The message cannot have come from a correct peer (the reason says why).
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An AppendEntries would overwrite a committed entry with a different one.
    /// No correct leader sends that (Leader Completeness, §5.4); the message
    /// is refused rather than let it destroy committed data.
    ConflictsWithCommitted {
        /// The committed index that would have been overwritten.
        index: LogIndex,
    },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::NotAddressedToMe { to } => write!(f, "message addressed to {to}"),
            StepError::FromMyself => write!(f, "message claims to come from this node"),
            StepError::Malformed { reason } => write!(f, "malformed message: {reason}"),
            StepError::ConflictsWithCommitted { index } => {
                write!(f, "append would overwrite committed entry {index}")
            }
        }
    }
}

impl std::error::Error for StepError {}

/// Why [`crate::RawNode::propose`] refused a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader accepts proposals; `leader` is the one this node knows
    /// of, if any, so that the client can be redirected.
    NotLeader {
        /// The leader this node knows of in its term.
        leader: Option<NodeId>,
    },
    /// The payload is larger than `max_bytes_per_append`: it could never be
    /// replicated.
    TooLarge {
        /// The payload size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Too many entries are not yet committed; retry once some commit.
    TooManyUncommitted {
        /// The bound.
        max: usize,
    },
    /// Leadership is being handed to `to` (dissertation §3.10: the leader
    /// stops accepting proposals during a transfer); retry at the new leader.
    TransferInProgress {
        /// The node taking over.
        to: NodeId,
    },
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => write!(f, "not the leader; try {l}"),
            ProposeError::NotLeader { leader: None } => write!(f, "not the leader; none known"),
            ProposeError::TooLarge { size, max } => {
                write!(f, "proposal of {size} bytes exceeds {max}")
            }
            ProposeError::TooManyUncommitted { max } => {
                write!(f, "{max} entries already await commit")
            }
            ProposeError::TransferInProgress { to } => {
                write!(f, "leadership is being transferred to {to}")
            }
        }
    }
}

impl std::error::Error for ProposeError {}

/// Why [`crate::RawNode::read_index`] refused a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadIndexError {
    /// Only the leader serves ReadIndex; `leader` is the one this node knows.
    NotLeader {
        /// The leader this node knows of in its term.
        leader: Option<NodeId>,
    },
    /// `max_pending_reads` reads are already held.
    TooManyPending {
        /// The bound.
        max: usize,
    },
}

impl fmt::Display for ReadIndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadIndexError::NotLeader { leader: Some(l) } => {
                write!(f, "not the leader; try {l}")
            }
            ReadIndexError::NotLeader { leader: None } => {
                write!(f, "not the leader; none known")
            }
            ReadIndexError::TooManyPending { max } => write!(f, "{max} reads already pending"),
        }
    }
}

impl std::error::Error for ReadIndexError {}

/// Why [`crate::RawNode::propose_membership`] refused a configuration
/// change. Nothing was appended and nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// Only the leader changes the configuration.
    NotLeader {
        /// The leader this node knows of in its term.
        leader: Option<NodeId>,
    },
    /// The leader has not yet committed an entry of its own term. Until it
    /// has, an earlier leader's configuration entry may still commit, and a
    /// second change could then skip a step (the single-server change bug
    /// of 2015; dissertation errata: "a leader may not append a new
    /// configuration entry until it has committed an entry from its
    /// current term").
    LeaderNotSettled,
    /// Another change is under way (an uncommitted configuration entry, or
    /// a joint configuration not yet left): one change at a time.
    ChangeInProgress {
        /// The index of the configuration entry in force.
        index: LogIndex,
    },
    /// Leadership is being transferred.
    TransferInProgress,
    /// The node named is not a member (or not a voter, where one is needed).
    UnknownNode(NodeId),
    /// The node is already a member.
    AlreadyMember(NodeId),
    /// A new voter must first join as a learner and catch up (dissertation
    /// §4.2.1), so that it does not stall commitment while it catches up.
    NotALearner(NodeId),
    /// The learner has not caught up with the commit index yet.
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// What it holds.
        matched: LogIndex,
        /// The leader's commit index.
        committed: LogIndex,
    },
    /// The change would leave no voter (removing the last one).
    NoVoters,
    /// The change would leave the configuration as it is.
    NoChange,
    /// The resulting configuration is invalid (the reason says why).
    Invalid(&'static str),
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::NotLeader { leader: Some(l) } => write!(f, "not the leader; try {l}"),
            MembershipError::NotLeader { leader: None } => write!(f, "not the leader; none known"),
            MembershipError::LeaderNotSettled => {
                write!(f, "the leader has not committed an entry of its term yet")
            }
            MembershipError::ChangeInProgress { index } => {
                write!(f, "the configuration change at {index} is still under way")
            }
            MembershipError::TransferInProgress => write!(f, "a leadership transfer is under way"),
            MembershipError::UnknownNode(id) => write!(f, "{id} is not a member"),
            MembershipError::AlreadyMember(id) => write!(f, "{id} is already a member"),
            MembershipError::NotALearner(id) => {
                write!(f, "{id} must join as a learner and catch up first")
            }
            MembershipError::LearnerBehind {
                id,
                matched,
                committed,
            } => write!(
                f,
                "{id} holds up to {matched}, behind the commit index {committed}"
            ),
            MembershipError::NoVoters => write!(f, "the change would leave no voter"),
            MembershipError::NoChange => write!(f, "the configuration would not change"),
            MembershipError::Invalid(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for MembershipError {}

/// Why [`crate::RawNode::transfer_leadership`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Only the leader hands over leadership.
    NotLeader {
        /// The leader this node knows of in its term.
        leader: Option<NodeId>,
    },
    /// The target is not a voter of the configuration in force.
    NotAVoter(NodeId),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::NotLeader { leader: Some(l) } => write!(f, "not the leader; try {l}"),
            TransferError::NotLeader { leader: None } => write!(f, "not the leader; none known"),
            TransferError::NotAVoter(id) => write!(f, "{id} is not a voter"),
        }
    }
}

impl std::error::Error for TransferError {}
