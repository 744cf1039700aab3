//! The vocabulary that crosses the boundary of the consensus core: identifiers,
//! log entries, hard state, messages, and what [`crate::RawNode::ready`] hands out.
//!
//! A type per concept (`NodeId`, `Term`, `LogIndex`) so that a term can never be
//! passed where an index is expected.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The identity of one server in the cluster. `0` is never a valid id: it is
/// reserved so that "no node" can never be confused with a real one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u64);

/// A Raft term (§5.1): a logical clock that only ever grows on every server.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Term(pub u64);

/// A position in the replicated log. The first entry has index 1; index 0 is the
/// empty prefix that every log shares (§5.3).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogIndex(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one, saturating at 0.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryPayload {
    /// The empty entry a new leader appends at the start of its term, so that
    /// it can commit something of its own term (§5.4.2, §8; dissertation §6.4).
    Noop,
    /// An opaque command for the state machine (the kv crate decodes it).
    Command(Vec<u8>),
    /// A new cluster configuration (dissertation ch. 4). It takes effect on
    /// every server as soon as it is in the server's log, committed or not
    /// (§4.1), and the previous one is back if it is truncated away.
    Membership(Membership),
}

/// A cluster configuration: who votes, and who only receives the log.
///
/// Invariant (checked by [`Membership::validate`]): no id is 0, the voters
/// and learners are disjoint, the outgoing voters and learners are disjoint,
/// and there is at least one voter unless the set is entirely empty (a node
/// that has not joined a cluster yet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters; while joint, the configuration being moved to
    /// (dissertation §4.3, C_new).
    pub voters: BTreeSet<NodeId>,
    /// While joint, the voters being left (C_old); empty otherwise.
    pub outgoing: BTreeSet<NodeId>,
    /// Members that receive the log and snapshots but neither vote nor count
    /// towards a quorum (dissertation §4.2.1: new servers join as
    /// non-voting members until they have caught up).
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A plain configuration of these voters and no learners.
    pub fn of_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// Whether a change of voters is under way (joint consensus).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes in either half.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether `id` is a member: a voter in either half, or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member, in id order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        all.extend(&self.outgoing);
        all.extend(&self.learners);
        all
    }

    /// The configuration after leaving the joint one: the incoming voters
    /// alone.
    pub fn leave_joint(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            outgoing: BTreeSet::new(),
            learners: self.learners.clone(),
        }
    }

    /// Checks the invariant stated on the type, and the size limit.
    pub fn validate(&self) -> Result<(), &'static str> {
        let all = self.members();
        if all.contains(&NodeId(0)) {
            return Err("node 0 in a configuration");
        }
        if all.len() > crate::config::MAX_VOTERS {
            return Err("too many members");
        }
        if self.voters.iter().any(|id| self.learners.contains(id))
            || self.outgoing.iter().any(|id| self.learners.contains(id))
        {
            return Err("a node both voter and learner");
        }
        if self.voters.is_empty() && !all.is_empty() {
            return Err("a configuration without voters");
        }
        Ok(())
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |set: &BTreeSet<NodeId>| {
            set.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "voters {{{}}}", ids(&self.voters))?;
        if self.is_joint() {
            write!(f, " joint with {{{}}}", ids(&self.outgoing))?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners {{{}}}", ids(&self.learners))?;
        }
        Ok(())
    }
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// The number of payload bytes, used to bound batches.
    pub fn payload_len(&self) -> usize {
        match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(bytes) => bytes.len(),
            // A few bytes per member, bounded by MAX_VOTERS.
            EntryPayload::Membership(m) => 8 * m.members().len(),
        }
    }
}

/// What a snapshot stands for: the state machine after applying every
/// entry up to `index` (§7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers (§7 "lastIncludedIndex").
    /// `LogIndex(0)` for "no snapshot".
    pub index: LogIndex,
    /// The term of the entry at `index` (§7 "lastIncludedTerm").
    pub term: Term,
    /// The configuration as of `index` (§7: "the latest configuration as of
    /// lastIncludedIndex").
    pub membership: Membership,
}

/// A snapshot: its metadata and the state machine's opaque bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The state machine's encoding of its state at `meta.index`.
    pub data: Vec<u8>,
}

/// The state every server must persist before it answers a message (Figure 2,
/// "Persistent state on all servers"), plus the commit index, persisted lazily
/// so that a restarted server can re-apply what it knew was committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this server has seen.
    pub term: Term,
    /// The candidate this server voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known committed. Invariant: every entry up to
    /// `commit` is in the same persisted batch or an earlier one.
    pub commit: LogIndex,
}

/// The role a server plays (§5.1, plus the pre-candidate of §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Passive: answers leaders and candidates.
    Follower,
    /// Probing with pre-votes whether an election could be won, without
    /// disturbing anyone's term (dissertation §9.6).
    PreCandidate,
    /// Asking for votes in a new term (§5.2).
    Candidate,
    /// Handles clients and replicates the log (§5.3).
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(name)
    }
}

/// Volatile state that an observer (tracing, metrics, the simulator's
/// invariants) wants to know about whenever it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SoftState {
    /// The role now played.
    pub role: Role,
    /// The current term.
    pub term: Term,
    /// The leader this server knows of for `term`, if any.
    pub leader: Option<NodeId>,
}

/// A message between two servers. Every message carries the sender's term; a
/// receiver that sees a higher term than its own adopts it (§5.1), with the
/// exceptions for pre-votes (dissertation §9.6) and for leases (§4.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term; for a pre-vote request, the term the sender would
    /// campaign in (its current term + 1), which it has not adopted.
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message the protocol exchanges.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageBody {
    /// Pre-vote request (dissertation §9.6): "would you vote for me in `term`?"
    PreVote {
        /// Index of the candidate's last log entry.
        last_log_index: LogIndex,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
    /// Answer to a pre-vote. Its `term` is the term the request asked about when
    /// granted, and the responder's own term when refused.
    PreVoteResponse {
        /// Whether the vote would be granted.
        granted: bool,
    },
    /// RequestVote RPC (§5.2, Figure 2).
    RequestVote {
        /// Index of the candidate's last log entry.
        last_log_index: LogIndex,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
        /// The election was started by a leadership transfer (TimeoutNow):
        /// voters answer even within a leader's lease (dissertation §3.10,
        /// §4.2.3), since the leader itself asked for it.
        transfer: bool,
    },
    /// Answer to RequestVote. Only sent after the vote is persisted.
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries RPC (§5.3, Figure 2). Also the heartbeat when `entries`
    /// is empty.
    AppendEntries {
        /// Index of the entry immediately preceding `entries`.
        prev_log_index: LogIndex,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: Term,
        /// Entries to store, in index order, contiguous after `prev_log_index`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: LogIndex,
        /// A ReadIndex round the leader wants confirmed by this answer (0 if none).
        read_round: u64,
    },
    /// Answer to AppendEntries. A success is only sent after the entries it
    /// acknowledges are persisted.
    AppendEntriesResponse {
        /// Whether the consistency check passed.
        success: bool,
        /// On success: the index of the last entry known to match the leader's
        /// log. On rejection: the `prev_log_index` that was rejected.
        index: LogIndex,
        /// On rejection: a hint for fast backtracking (§5.3, "the follower can
        /// include the term of the conflicting entry and the first index it
        /// stores for that term").
        reject_hint: Option<RejectHint>,
        /// The `read_round` of the request being answered.
        read_round: u64,
    },
    /// InstallSnapshot RPC (§7, Figure 13), one chunk of it. Sent when the
    /// follower needs an entry the leader has compacted away. Chunks are
    /// sent in order; the follower assembles them and answers with how many
    /// bytes it holds, so a lost chunk is resent from there.
    InstallSnapshot {
        /// The snapshot's last included index.
        index: LogIndex,
        /// The term at `index`.
        snapshot_term: Term,
        /// The configuration as of `index`.
        membership: Membership,
        /// Where `data` starts in the snapshot's bytes.
        offset: u64,
        /// The chunk.
        data: Vec<u8>,
        /// Whether this chunk is the last.
        done: bool,
    },
    /// Answer to InstallSnapshot. Only sent after a completed snapshot is
    /// persisted.
    InstallSnapshotResponse {
        /// The index of the snapshot being answered.
        index: LogIndex,
        /// How many bytes of the snapshot the follower holds: the offset of
        /// the next chunk it wants.
        offset: u64,
        /// The follower has the snapshot (installed, or its commit index was
        /// already at or past it): its log matches the leader's up to
        /// `index`.
        done: bool,
    },
    /// Leadership transfer (dissertation §3.10): the leader tells a voter
    /// whose log it has brought up to date to start an election at once.
    TimeoutNow,
}

/// What a follower tells a leader when an AppendEntries consistency check
/// fails, so that the leader can skip a whole term of entries per round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RejectHint {
    /// The follower's last log index.
    pub last_index: LogIndex,
    /// The term of the follower's entry at the rejected `prev_log_index`, if it
    /// has one.
    pub conflict_term: Option<Term>,
    /// The first index the follower stores for `conflict_term`.
    pub conflict_first_index: LogIndex,
}

/// A linearizable read is safe to serve once the local state machine has
/// applied `index` (dissertation §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReadState {
    /// The caller's identifier for the read, as given to `read_index`.
    pub ctx: u64,
    /// The commit index at the time the read was confirmed.
    pub index: LogIndex,
    /// Answered from the leader's lease (§6.4.1), without a quorum round of
    /// its own: safe only within the clock drift bound.
    pub lease: bool,
}

/// Everything the node asks its driver to do, handed out by
/// [`crate::RawNode::ready`]. The driver must, in this order:
///
/// 1. send `messages` (they do not depend on local durability: a leader may
///    replicate before its own write completes, dissertation §10.2.1);
/// 2. append `entries` to stable storage — an entry at an index that already
///    exists replaces it and everything after it — and store `hard_state`,
///    then sync;
/// 3. report that with [`crate::RawNode::persisted`];
/// 4. send `persisted_messages` (votes and append acknowledgements: §5.2,
///    Figure 2 "respond after persisting"; also a candidate's RequestVote
///    requests, which must not win it votes before its own vote for itself
///    is durable);
/// 5. apply `committed_entries` in order and report with
///    [`crate::RawNode::applied`];
/// 6. serve reads in `read_states` once the applied index reaches theirs.
///
/// Snapshots (§7) come out of [`crate::RawNode::take_snapshot`], to be called
/// right after `ready()`: a snapshot handed out there is persisted in step 2,
/// *before* `entries` (which follow it in the log), replacing every stored
/// entry up to its index; stored entries after it are kept only if the
/// stored entry at its index has its term, otherwise the whole stored log is
/// dropped (§7: "if existing log entry has same index and term as
/// snapshot's last included entry, retain log entries following it"). In
/// step 5 it is installed into the state machine *before* `committed_entries`
/// are applied (they follow it), and reported with
/// [`crate::RawNode::snapshot_installed`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Set when the role, term or known leader changed since the last ready.
    pub soft_state: Option<SoftState>,
    /// Set when the hard state changed and must be persisted.
    pub hard_state: Option<HardState>,
    /// Entries to persist, in index order, contiguous.
    pub entries: Vec<Entry>,
    /// Messages that may be sent at once.
    pub messages: Vec<Message>,
    /// Messages that may leave only after `hard_state` and `entries` are durable.
    pub persisted_messages: Vec<Message>,
    /// Entries newly known committed and ready to apply, in index order.
    /// Invariant: only entries that this node has reported persisted.
    pub committed_entries: Vec<Entry>,
    /// Reads confirmed since the last ready.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }
}

impl MessageBody {
    /// Whether this is an answer to a request (the answers must leave only
    /// after the state they report is durable).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            MessageBody::PreVoteResponse { .. }
                | MessageBody::RequestVoteResponse { .. }
                | MessageBody::AppendEntriesResponse { .. }
                | MessageBody::InstallSnapshotResponse { .. }
        )
    }

    /// A short name of the message kind, for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
        }
    }
}
