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

    /// Commit from a leader (§5.3, Figure 2: a follower sets its commit
    /// index from the leader's `leaderCommit`; a snapshot it installs is of
    /// a leader's applied, so committed, state): `node`'s commit index moved
    /// to `commit`, which no leader has committed. Only a leader counts
    /// replicas; a node that counts anything else, such as the match
    /// indexes a deposed leader kept from its term, commits an entry a
    /// quorum may not hold. Called after [`Invariants::leader_committed`]
    /// for the same step, so a leader's own commit passes.
    pub fn commit_from_a_leader(&mut self, at: Nanos, node: u64, commit: LogIndex) {
        // `commit_terms` covers every index some leader was seen to commit;
        // appends carry what their leader committed, even one that halted
        // in the step that committed it.
        let highest =
            LogIndex(self.commit_terms.len() as u64 - 1).max(self.highest_leader_commit_sent);
        if commit > highest {
            self.violate(
                ViolationKind::CommitFromALeader,
                at,
                node,
                format!(
                    "commit index moved to {commit}, but no leader has committed past {highest} (§5.3: only a leader counts replicas; others learn the commit index from it)"
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
