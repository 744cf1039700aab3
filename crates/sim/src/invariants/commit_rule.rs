//! The commit rule (§5.4.2, Figure 8): a leader advances its commit index
//! only by counting replicas of an entry of its current term. Entries of
//! earlier terms are committed indirectly, by Log Matching, once an entry of
//! the current term after them is. Counting replicas of an older entry is
//! the Figure 8 bug: that entry can be on a majority and still be replaced
//! by a later leader.

use super::{Invariants, ViolationKind};
use crate::queue::Nanos;
use raft::{LogIndex, Term};

impl Invariants {
    /// A leader of `leader_term` moved its commit index to `commit`, whose
    /// entry is of `entry_term`. The rule (§5.4.2): the entry at the new
    /// commit index is of the leader's own term; the leader's commit index
    /// can only move to where `log[N].term == currentTerm` (Figure 2,
    /// "Rules for Servers", Leaders).
    pub(super) fn commit_rule(
        &mut self,
        at: Nanos,
        node: u64,
        commit: LogIndex,
        entry_term: Term,
        leader_term: Term,
    ) {
        if entry_term != leader_term {
            self.violate(
                ViolationKind::CommitRule,
                at,
                node,
                format!(
                    "the leader of {leader_term} moved its commit index to {commit}, an entry of {entry_term} (§5.4.2: only entries of the current term are committed by counting replicas)"
                ),
            );
        }
    }
}
