//! Quorum arithmetic and nothing else: which index a majority has reached,
//! whether an election is won. Joint consensus (dissertation §4.3) is the
//! conjunction of two majorities; with an empty outgoing half it is a plain
//! majority, so the rest of the core always asks a [`JointConfig`].

use crate::types::{LogIndex, NodeId};
use std::collections::BTreeSet;

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// A quorum can no longer grant.
    Lost,
    /// Neither yet.
    Pending,
}

/// A set of voters decided by simple majority.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MajorityConfig {
    /// Sorted, without duplicates. A slice rather than a `BTreeSet`: the
    /// sets are a handful of ids, built once per configuration and read on
    /// every step (debug builds compare them after each one).
    voters: Vec<NodeId>,
}

impl MajorityConfig {
    /// The majority configuration of these voters (duplicates collapse).
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> MajorityConfig {
        let set: BTreeSet<NodeId> = voters.into_iter().collect();
        MajorityConfig {
            voters: set.into_iter().collect(),
        }
    }

    /// Whether `id` votes here.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Whether exactly `voters` vote here. Compares in place: the check
    /// runs after every step in debug builds, where building a
    /// configuration to compare with cost a fifth of the simulator's time.
    pub fn is(&self, voters: &BTreeSet<NodeId>) -> bool {
        self.voters.len() == voters.len() && self.voters.iter().eq(voters.iter())
    }

    /// The number of voters.
    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// Whether there are no voters.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// The voters in id order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().copied()
    }

    /// The largest `v` such that a majority reports a value `>= v`. An empty
    /// configuration returns `u64::MAX`, so that it never constrains a joint
    /// answer (the joint answer takes the minimum).
    pub fn quorum_value(&self, value_of: impl Fn(NodeId) -> u64) -> u64 {
        if self.voters.is_empty() {
            return u64::MAX;
        }
        // On the stack for any real cluster: this runs on every
        // acknowledgement the leader receives.
        let n = self.voters.len();
        let mut small = [0u64; 16];
        let mut large = Vec::new();
        let values: &mut [u64] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, 0);
            &mut large
        };
        for (value, &id) in values.iter_mut().zip(&self.voters) {
            *value = value_of(id);
        }
        values.sort_unstable_by(|a, b| b.cmp(a));
        // With n voters sorted descending, the (n/2+1)-th value is held by a
        // majority: n/2+1 voters report at least it.
        values[self.voters.len() / 2]
    }

    /// The highest index stored on a majority, given each voter's match index
    /// (§5.3, §5.4.2 count replicas; the caller checks the entry's term).
    pub fn committed_index(&self, match_of: impl Fn(NodeId) -> LogIndex) -> LogIndex {
        LogIndex(self.quorum_value(|id| match_of(id).0))
    }

    /// The election outcome given each voter's answer (`None`: not yet heard).
    /// An empty configuration wins, so that it never constrains a joint answer.
    pub fn vote_result(&self, vote_of: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0usize, 0usize);
        for &id in &self.voters {
            match vote_of(id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        if granted >= quorum {
            VoteResult::Won
        } else if granted + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// Two majority configurations that must both agree (joint consensus,
/// dissertation §4.3). With `outgoing` empty this is `incoming`'s majority.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JointConfig {
    /// The configuration being moved to (or the only one).
    pub incoming: MajorityConfig,
    /// The configuration being left; empty outside a membership change.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// A plain majority configuration of `voters`.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(voters),
            outgoing: MajorityConfig::default(),
        }
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: NodeId) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// Every voter of either half, once, in id order.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.incoming.iter().chain(self.outgoing.iter()).collect()
    }

    /// The largest `v` reported by a quorum of both halves.
    pub fn quorum_value(&self, value_of: impl Fn(NodeId) -> u64) -> u64 {
        self.incoming
            .quorum_value(&value_of)
            .min(self.outgoing.quorum_value(&value_of))
    }

    /// The highest index stored on a majority of both halves.
    pub fn committed_index(&self, match_of: impl Fn(NodeId) -> LogIndex) -> LogIndex {
        LogIndex(self.quorum_value(|id| match_of(id).0))
    }

    /// Won when both halves are won, lost when either is lost.
    pub fn vote_result(&self, vote_of: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let a = self.incoming.vote_result(&vote_of);
        let b = self.outgoing.vote_result(&vote_of);
        match (a, b) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn committed_index_is_the_highest_index_on_a_majority() {
        let c = MajorityConfig::new(ids(&[1, 2, 3]));
        let m: BTreeMap<u64, u64> = [(1, 5), (2, 3), (3, 9)].into();
        assert_eq!(c.committed_index(|id| LogIndex(m[&id.0])), LogIndex(5));
        let c = MajorityConfig::new(ids(&[1, 2, 3, 4]));
        let m: BTreeMap<u64, u64> = [(1, 5), (2, 3), (3, 9), (4, 1)].into();
        // Four voters need three: 9, 5, 3 are >= 3.
        assert_eq!(c.committed_index(|id| LogIndex(m[&id.0])), LogIndex(3));
    }

    #[test]
    fn single_voter_commits_its_own_index() {
        let c = MajorityConfig::new(ids(&[7]));
        assert_eq!(c.committed_index(|_| LogIndex(4)), LogIndex(4));
    }

    #[test]
    fn vote_result_needs_a_strict_majority() {
        let c = MajorityConfig::new(ids(&[1, 2, 3, 4]));
        let votes = |v: &[(u64, bool)]| {
            let m: BTreeMap<u64, bool> = v.iter().copied().collect();
            c.vote_result(|id| m.get(&id.0).copied())
        };
        assert_eq!(votes(&[(1, true), (2, true)]), VoteResult::Pending);
        assert_eq!(votes(&[(1, true), (2, true), (3, true)]), VoteResult::Won);
        assert_eq!(
            votes(&[(1, true), (2, false), (3, false)]),
            VoteResult::Lost
        );
    }

    #[test]
    fn empty_majority_never_constrains_a_joint_answer() {
        let j = JointConfig::new(ids(&[1, 2, 3]));
        assert_eq!(j.committed_index(|_| LogIndex(3)), LogIndex(3));
        assert_eq!(j.vote_result(|_| Some(true)), VoteResult::Won);
    }

    #[test]
    fn joint_config_needs_both_majorities() {
        let j = JointConfig {
            incoming: MajorityConfig::new(ids(&[1, 2, 3])),
            outgoing: MajorityConfig::new(ids(&[3, 4, 5])),
        };
        let m: BTreeMap<u64, u64> = [(1, 9), (2, 9), (3, 2), (4, 4), (5, 1)].into();
        // incoming majority reaches 9, outgoing only 2.
        assert_eq!(j.committed_index(|id| LogIndex(m[&id.0])), LogIndex(2));
        let v: BTreeMap<u64, bool> = [(1, true), (2, true), (4, false), (5, false)].into();
        assert_eq!(j.vote_result(|id| v.get(&id.0).copied()), VoteResult::Lost);
        let v: BTreeMap<u64, bool> = [(1, true), (2, true), (4, true)].into();
        assert_eq!(
            j.vote_result(|id| v.get(&id.0).copied()),
            VoteResult::Pending
        );
        let v: BTreeMap<u64, bool> = [(1, true), (2, true), (3, true), (4, true)].into();
        assert_eq!(j.vote_result(|id| v.get(&id.0).copied()), VoteResult::Won);
    }

    proptest! {
        /// The committed index is reached by a majority and no higher value is.
        #[test]
        fn committed_index_is_held_by_a_majority_and_is_maximal(
            matches in proptest::collection::vec(0u64..20, 1..8)
        ) {
            let c = MajorityConfig::new((1..=matches.len() as u64).map(NodeId));
            let ci = c.committed_index(|id| LogIndex(matches[(id.0 - 1) as usize])).0;
            let at_least = |v: u64| matches.iter().filter(|&&m| m >= v).count();
            let quorum = matches.len() / 2 + 1;
            prop_assert!(at_least(ci) >= quorum);
            prop_assert!(at_least(ci + 1) < quorum);
        }
    }
}
