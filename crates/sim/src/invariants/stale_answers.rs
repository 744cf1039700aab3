//! Stale answers: a leader counts only the votes and acknowledgements of
//! its own term (Figure 2: a candidate becomes leader on "votes received
//! from majority of servers" in its election; a leader sets `commitIndex`
//! from the `matchIndex` its followers reported, §5.3-5.4). A vote granted
//! or an append acknowledged in an earlier term says nothing about this
//! one: the voter may have voted again, the follower's log may have been
//! cut since.
//!
//! Checked from the answers seen leaving each node: when a node becomes
//! leader of term T, the voters that granted it their vote in T (itself
//! included) form a quorum of its configuration; when a leader of T moves
//! its commit index to `c`, the voters that acknowledged `c` or more in T
//! (itself included) form one. Answers sent are a superset of those
//! received, so a leader short of a quorum here counted something else.

use super::{Invariants, ViolationKind, slot};
use crate::queue::Nanos;
use raft::{LogIndex, Membership, Message, MessageBody, NodeId, Term};
use std::collections::{BTreeMap, BTreeSet};

/// What the answers sent to one node in one term granted it. Invariant:
/// only answers whose message term is `term` are recorded here.
#[derive(Clone, Debug, Default)]
pub(super) struct Answers {
    /// The term of the answers recorded.
    term: Term,
    /// The voters that granted this node their vote in `term`.
    votes: BTreeSet<NodeId>,
    /// The highest index each follower acknowledged as matching in `term`
    /// (an append's answer, or a completed snapshot's).
    acked: BTreeMap<NodeId, LogIndex>,
}

impl Invariants {
    /// Records an answer as it leaves `msg.from` for `msg.to`.
    pub(super) fn answer_recorded(&mut self, msg: &Message) {
        // Only grants and successful acknowledgements: a node is sent one in
        // a term only once it stands (candidate) or leads in that term, so
        // a newer one ends what the older term recorded. (A rejection may
        // carry a newer term while the node still leads the older one.)
        let acked = match msg.body {
            MessageBody::RequestVoteResponse { granted: true } => None,
            MessageBody::AppendEntriesResponse {
                success: true,
                index,
                ..
            }
            | MessageBody::InstallSnapshotResponse {
                index, done: true, ..
            } => Some(index),
            _ => return,
        };
        let Some(answers) = self.answers.get_mut((msg.to.0 as usize).wrapping_sub(1)) else {
            return;
        };
        if msg.term < answers.term {
            return;
        }
        if msg.term > answers.term {
            *answers = Answers {
                term: msg.term,
                ..Answers::default()
            };
        }
        match acked {
            None => {
                answers.votes.insert(msg.from);
            }
            Some(index) => {
                let acked = answers.acked.entry(msg.from).or_default();
                *acked = (*acked).max(index);
            }
        }
    }

    /// `node` became leader of `term` under `membership`: a quorum of it
    /// granted their votes in `term` (a sole voter votes for itself).
    pub(super) fn elected_by_own_term_votes(
        &mut self,
        at: Nanos,
        node: u64,
        term: Term,
        membership: &Membership,
    ) {
        let me = NodeId(node);
        let answers = &self.answers[slot(node)];
        let votes = |id: &NodeId| *id == me || (answers.term == term && answers.votes.contains(id));
        if !quorum(membership, votes) {
            let granted: Vec<u64> = if answers.term == term {
                answers.votes.iter().map(|id| id.0).collect()
            } else {
                Vec::new()
            };
            self.violate(
                ViolationKind::StaleAnswers,
                at,
                node,
                format!(
                    "became leader of {term} with votes granted in {term} only by {granted:?} (and itself), no quorum of {membership}"
                ),
            );
        }
    }

    /// The leader `node` of `term` moved its commit index to `commit`: a
    /// quorum acknowledged `commit` or more in `term` (the leader counts
    /// itself).
    pub(super) fn committed_by_own_term_acks(
        &mut self,
        at: Nanos,
        node: u64,
        commit: LogIndex,
        term: Term,
        membership: &Membership,
    ) {
        let me = NodeId(node);
        let answers = &self.answers[slot(node)];
        let holds = |id: &NodeId| {
            *id == me
                || (answers.term == term && answers.acked.get(id).is_some_and(|&i| i >= commit))
        };
        if !quorum(membership, holds) {
            let acked: Vec<(u64, u64)> = if answers.term == term {
                answers.acked.iter().map(|(id, i)| (id.0, i.0)).collect()
            } else {
                Vec::new()
            };
            self.violate(
                ViolationKind::StaleAnswers,
                at,
                node,
                format!(
                    "the leader of {term} committed {commit} with acknowledgements of {term} only from {acked:?} (node, index), no quorum of {membership}"
                ),
            );
        }
    }
}

/// Whether the nodes for which `counts` holds are a quorum of `membership`:
/// a majority of its voters and, while joint, of the outgoing voters too.
fn quorum(membership: &Membership, counts: impl Fn(&NodeId) -> bool) -> bool {
    let majority = |set: &BTreeSet<NodeId>| {
        set.is_empty() || set.iter().filter(|id| counts(id)).count() > set.len() / 2
    };
    majority(&membership.voters) && majority(&membership.outgoing)
}
