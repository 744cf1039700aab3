//! What crosses the wire between replicas and between clients and replicas.

use kv::{ClientId, KvError, Op, Output};
use raft::{Message, NodeId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A raft message stamped with the cluster it belongs to, so that a message
/// from another cluster (a misconfigured peer, a reused address) is refused
/// instead of corrupting this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The cluster the sender belongs to.
    pub cluster_id: u64,
    /// The raft message.
    pub msg: Message,
}

/// Why an incoming message was refused before it reached raft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The message belongs to another cluster.
    WrongCluster {
        /// This replica's cluster.
        expected: u64,
        /// The message's cluster.
        got: u64,
    },
    /// Raft refused the message (not addressed to us, malformed, ...).
    Refused(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::WrongCluster { expected, got } => {
                write!(f, "message from cluster {got}, this is cluster {expected}")
            }
            WireError::Refused(why) => write!(f, "message refused: {why}"),
        }
    }
}

/// One client operation sent to one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Chosen by the client; echoed in the reply so the client can match it.
    pub req_id: u64,
    /// The client's session (dissertation §6.3).
    pub client: ClientId,
    /// The client's sequence number for this write; a retry reuses it so that
    /// the write takes effect once. Reads carry the number of the client's last
    /// write (they do not take effect and need no session).
    pub seq: u64,
    /// What to do.
    pub op: Op,
}

/// A replica's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReply {
    /// The request's `req_id`.
    pub req_id: u64,
    /// The outcome.
    pub result: Result<Output, ReplyError>,
}

/// Why a replica did not complete a request.
///
/// Every variant says whether the request may still take effect: a client
/// must treat a write as definitely not applied only when
/// [`ReplyError::is_definite`] says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyError {
    /// This replica is not the leader; the request was not proposed.
    NotLeader {
        /// The leader this replica knows of, if any.
        leader: Option<NodeId>,
    },
    /// The leader is overloaded (too many uncommitted entries or pending
    /// reads); the request was not proposed.
    Busy,
    /// The request is malformed or too large; it was not proposed.
    Invalid(String),
    /// The state machine refused the command after it was committed; it had
    /// no effect.
    Kv(KvError),
    /// Leadership was lost while a read waited for confirmation; reads have no
    /// effect, so this is definite.
    ReadAborted,
    /// Leadership was lost while a write waited to commit. Indefinite: its
    /// entry may still commit under the next leader. Retry with the same
    /// sequence number to learn the outcome (it takes effect at most once).
    LeadershipLost,
    /// A later request of the same session (a retry of this write, or the
    /// session's next write) now waits where this one did, and gets the
    /// outcome. Indefinite: this write may still apply (at most once).
    Superseded,
}

impl ReplyError {
    /// Whether the request is known not to have taken effect, and never will.
    pub fn is_definite(&self) -> bool {
        // A proposed write is answered with an error only when leadership
        // is lost before it applies; every other error comes before the
        // proposal (or is the state machine's own, final answer).
        match self {
            ReplyError::NotLeader { .. }
            | ReplyError::Busy
            | ReplyError::Invalid(_)
            | ReplyError::Kv(_)
            | ReplyError::ReadAborted => true,
            ReplyError::LeadershipLost | ReplyError::Superseded => false,
        }
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::NotLeader { leader: Some(l) } => write!(f, "not leader (try {l})"),
            ReplyError::NotLeader { leader: None } => write!(f, "not leader (leader unknown)"),
            ReplyError::Busy => write!(f, "busy"),
            ReplyError::Invalid(why) => write!(f, "invalid request: {why}"),
            ReplyError::Kv(e) => write!(f, "state machine error: {e:?}"),
            ReplyError::ReadAborted => write!(f, "read aborted: leadership lost"),
            ReplyError::LeadershipLost => {
                write!(
                    f,
                    "leadership lost before the write applied: outcome unknown"
                )
            }
            ReplyError::Superseded => write!(
                f,
                "superseded by a later request of the same session, which gets the outcome"
            ),
        }
    }
}
