//! Commit safety: a quorum of the configuration in force holds what a leader
//! commits, and a commit index never goes back nor passes the log.

use super::{Invariants, ViolationKind, slot};
use crate::queue::Nanos;
use raft::{LogIndex, Membership, NodeId, Term};

impl Invariants {
    /// Commit safety under membership changes (dissertation §4.3): when a
    /// leader's commit index moves to `commit` (whose entry has `term`), a
    /// quorum of the configuration in force at that leader holds the entry
    /// durably: a majority of its voters, and while joint, a majority of the
    /// outgoing voters too. Learners never count. `leader_term` is the
    /// leader's current term: it is recorded as the commit term of every
    /// index not committed before (see `commit_terms`), and checked against
    /// the commit rule (§5.4.2, `commit_rule`).
    pub fn leader_committed(
        &mut self,
        at: Nanos,
        node: u64,
        commit: LogIndex,
        term: Term,
        leader_term: Term,
        membership: &Membership,
    ) {
        let i = commit.0 as usize;
        if self.commit_terms.len() <= i {
            self.commit_terms.resize(i + 1, leader_term);
        }
        self.commit_rule(at, node, commit, term, leader_term);
        self.committed_by_own_term_acks(at, node, commit, leader_term, membership);
        self.highest_commit_term = self.highest_commit_term.max(leader_term);
        let holds = |id: &NodeId| {
            let n = (id.0 as usize).wrapping_sub(1);
            self.terms.get(n).and_then(|t| t.get(i)) == Some(&term)
        };
        let majority = |set: &std::collections::BTreeSet<NodeId>| {
            set.is_empty() || set.iter().filter(|id| holds(id)).count() > set.len() / 2
        };
        if !majority(&membership.voters) || !majority(&membership.outgoing) {
            let holders: Vec<u64> = membership
                .members()
                .iter()
                .filter(|id| holds(id))
                .map(|id| id.0)
                .collect();
            self.violate(
                ViolationKind::CommitSafety,
                at,
                node,
                format!(
                    "committed {commit} of {term} held durably only by {holders:?}, no quorum of {membership}"
                ),
            );
        }
    }

    /// Commit index monotonicity: a live node's commit index never goes back,
    /// and never passes its log.
    pub fn commit_index(&mut self, at: Nanos, node: u64, commit: LogIndex, last: LogIndex) {
        let n = slot(node);
        if commit < self.commit[n] {
            self.violate(
                ViolationKind::CommitIndexMonotonic,
                at,
                node,
                format!("commit index went from {} back to {commit}", self.commit[n]),
            );
        }
        if commit > last {
            self.violate(
                ViolationKind::CommitWithinLog,
                at,
                node,
                format!("commit index {commit} beyond last index {last}"),
            );
        }
        self.commit[n] = commit;
    }
}
