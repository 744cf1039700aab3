//! Vote durability (§5.2; Figure 2: `currentTerm` and `votedFor` are
//! persistent state): after a recovery, a node's vote for its term is the
//! one it last granted. A node that forgets a vote it granted can grant
//! another in the same term, and two leaders of one term follow.
//!
//! Checked against the votes seen leaving the node, not against what its
//! disk reported synced ("hard state durable" does that): a vote that left
//! without ever reaching the disk, or a recovery that reads back another
//! vote, both show here.

use super::{Invariants, ViolationKind, slot};
use crate::queue::Nanos;
use raft::{HardState, NodeId, Term};

impl Invariants {
    /// `node` granted its vote in `term` to `candidate` (the answer left).
    pub(super) fn vote_granted(&mut self, node: u64, term: Term, candidate: NodeId) {
        let n = slot(node);
        if self.granted_votes[n].is_none_or(|(t, _)| t <= term) {
            self.granted_votes[n] = Some((term, candidate));
        }
    }

    /// `node` recovered `hard_state`: its term is at least that of the last
    /// vote it granted, and in that same term, its vote is that vote.
    pub(super) fn vote_recovered(&mut self, at: Nanos, node: u64, hard_state: HardState) {
        let n = slot(node);
        let Some((term, candidate)) = self.granted_votes[n] else {
            return;
        };
        let kept = hard_state.term > term
            || (hard_state.term == term && hard_state.vote == Some(candidate));
        if !kept {
            self.violate(
                ViolationKind::VoteDurability,
                at,
                node,
                format!(
                    "recovered {} vote {:?} after granting its vote in {term} to n{}",
                    hard_state.term,
                    hard_state.vote.map(|v| v.0),
                    candidate.0
                ),
            );
        }
    }
}
