//! Election safety and leader completeness (Raft, Figure 3 and §5.4): one
//! leader per term, holding every committed entry, and a voter.

use super::{Invariants, ViolationKind, slot};
use crate::queue::Nanos;
use raft::{Membership, Role, SoftState, Term};

impl Invariants {
    /// Election safety (Figure 3): at most one leader per term. Leader
    /// completeness (§5.4): a new leader's log holds every committed entry.
    pub fn soft_state(&mut self, at: Nanos, node: u64, soft: SoftState) {
        if soft.role != Role::Leader {
            return;
        }
        match self.leaders.get(&soft.term) {
            Some(&other) if other != node => self.violate(
                ViolationKind::ElectionSafety,
                at,
                node,
                format!("n{node} and n{other} both lead {}", soft.term),
            ),
            Some(_) => {}
            None => {
                self.leaders.insert(soft.term, node);
            }
        }
        let (index, hash) = self.committed;
        let chain = &self.chains[slot(node)];
        if chain.get(index.0 as usize) != Some(&hash) {
            self.violate(
                ViolationKind::LeaderCompleteness,
                at,
                node,
                format!(
                    "leader of {} lacks committed entries up to {index} (its log ends at i{})",
                    soft.term,
                    chain.len() - 1
                ),
            );
        }
    }

    /// Only a voter leads (§4.1): of the configuration in force, or of the
    /// one before while the latest is not known committed (see raft's
    /// membership module). `promotable` is the leader's own view. Also
    /// checks that a quorum of `membership` voted for it in `term`
    /// (`stale_answers`).
    pub fn leader_is_voter(
        &mut self,
        at: Nanos,
        node: u64,
        term: Term,
        promotable: bool,
        membership: &Membership,
    ) {
        self.elected_by_own_term_votes(at, node, term, membership);
        if !promotable {
            self.violate(
                ViolationKind::LeaderIsAVoter,
                at,
                node,
                format!("leads {term} but is not a voter of {membership}"),
            );
        }
    }
}
