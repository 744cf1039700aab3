//! No term inflation after the heal: once the healed cluster has a leader,
//! terms settle. Each election after that needs a reason the heal removed
//! (a partition, a crash, a pause); a node that keeps raising its term
//! disrupts a leader that is reachable (pre-vote, §9.6, and check-quorum's
//! leader stickiness, §4.2.3, exist to prevent it). Reported with the
//! liveness failures; checked only when one of those defences is on, over
//! the members of the leader's configuration, and only when no message held
//! by a partition is replayed after the heal (a held vote request of a
//! high term raises terms then, legitimately) (with both off, raftlab, like
//! etcd, has no defence: drawn-config seeds 94 and 190 showed a removed
//! server raising every member's term after the heal).

use raft::Term;

/// Elections allowed after the first leader of the healed cluster (a node
/// that restarted at the heal with a higher term may disrupt once, and its
/// election may split).
pub const MAX_TERMS_AFTER_HEAL: u64 = 3;

/// What is wrong, if terms rose more than [`MAX_TERMS_AFTER_HEAL`] from
/// `settled` (the term of the first leader after the heal) to `terms`
/// (each live node's `(node, term)` at the end).
pub fn inflation(settled: Term, terms: &[(u64, Term)]) -> Option<String> {
    let &(node, highest) = terms
        .iter()
        .max_by_key(|&&(node, term)| (term, u64::MAX - node))?;
    (highest.0 > settled.0 + MAX_TERMS_AFTER_HEAL).then(|| {
        format!(
            "terms kept rising after the heal: the first leader after it led {settled}, n{node} reached {highest} (at most {MAX_TERMS_AFTER_HEAL} more terms allowed)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_rising_past_the_bound_after_the_heal_are_reported() {
        let settled = Term(10);
        let calm = [(1, Term(10)), (2, Term(11)), (3, Term(13))];
        assert_eq!(inflation(settled, &calm), None);
        // Planted: a disruptive node raising its term election after
        // election.
        let inflated = [(1, Term(12)), (2, Term(20)), (3, Term(12))];
        let report = inflation(settled, &inflated).expect("reported");
        assert!(report.contains("n2 reached t20"), "{report}");
    }
}
