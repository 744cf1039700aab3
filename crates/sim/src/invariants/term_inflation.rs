//! No term inflation after the heal: once the healed cluster has a leader,
//! terms settle. Each election after that needs a reason the heal removed
//! (a partition, a crash, a pause); a node that keeps raising its term
//! disrupts a leader that is reachable (pre-vote, §9.6, and check-quorum's
//! leader stickiness, §4.2.3, exist to prevent it). Reported with the
//! liveness failures; checked in every Raft configuration (raft applies
//! §4.2.3 with check-quorum off too: before it did, with both defences off,
//! drawn-config seeds 94 and 190 showed a removed server raising every
//! member's term after the heal), over the members of the leader's
//! configuration, and only when no message held by a partition is replayed
//! after the heal (a held vote request of a high term raises terms then,
//! legitimately).

use raft::Term;

/// Elections allowed after the first leader of the healed cluster (a node
/// that restarted at the heal with a higher term may disrupt once, and its
/// election may split).
pub const MAX_TERMS_AFTER_HEAL: u64 = 3;

/// What is wrong, if terms did not settle after the heal. `settled` is the
/// term of the first leader after the heal, `leader` the current leader's
/// term if one leads, `terms` each live member's `(node, term)` at the end.
///
/// Terms have not settled when some member is past the current leader's
/// term (or no member leads at the highest term): someone is still raising
/// it. With pre-vote on, a term is raised only by a candidate a quorum
/// would elect (§9.6), so more than [`MAX_TERMS_AFTER_HEAL`] elections after
/// the first healed leader are disruptions too. Without pre-vote, a split
/// vote legitimately costs a term per round (§5.2), so only settling counts
/// (drawn-config seed 81: pre-vote off, t34 → t38 in two split rounds, then
/// a stable leader).
pub fn inflation(
    settled: Term,
    leader: Option<Term>,
    pre_vote: bool,
    terms: &[(u64, Term)],
) -> Option<String> {
    let &(node, highest) = terms
        .iter()
        .max_by_key(|&&(node, term)| (term, u64::MAX - node))?;
    if leader.is_some_and(|l| highest > l) {
        return Some(format!(
            "terms did not settle after the heal: the leader is in {}, n{node} reached {highest}",
            leader.expect("checked")
        ));
    }
    (pre_vote && highest.0 > settled.0 + MAX_TERMS_AFTER_HEAL).then(|| {
        format!(
            "terms kept rising after the heal: the first leader after it led {settled}, n{node} reached {highest} (at most {MAX_TERMS_AFTER_HEAL} more terms allowed with pre-vote on)"
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
        assert_eq!(inflation(settled, Some(Term(13)), true, &calm), None);
        // Planted: a disruptive node raising its term election after
        // election, with pre-vote on.
        let inflated = [(1, Term(20)), (2, Term(20)), (3, Term(20))];
        let report = inflation(settled, Some(Term(20)), true, &inflated).expect("reported");
        assert!(report.contains("n1 reached t20"), "{report}");
        // Without pre-vote, split votes may cost terms: settled is fine.
        assert_eq!(inflation(settled, Some(Term(20)), false, &inflated), None);
        // A member past the leader's term has not settled, either way.
        let unsettled = [(1, Term(12)), (2, Term(15)), (3, Term(12))];
        for pre_vote in [true, false] {
            let report =
                inflation(settled, Some(Term(12)), pre_vote, &unsettled).expect("reported");
            assert!(report.contains("n2 reached t15"), "{report}");
        }
    }
}
