//! Catch-up liveness after the heal: every live member of the leader's
//! configuration reaches the leader's commit index within the liveness
//! bound (Figure 2: the leader retries AppendEntries until each follower's
//! log matches; §7: InstallSnapshot for one that fell below the snapshot).
//! "Some leader finished the pending operations" is not enough: a follower
//! the leader stopped replicating to (a probe lost and never re-sent) only
//! shows here.
//!
//! What is reported is a stall: a member still behind at the bound whose
//! commit index stood still for the last [`STALL`]. A member still moving
//! is slow, not stuck: with one entry per append, one append in flight and
//! a slow disk, a follower 600 entries behind at the heal legitimately
//! needs more than the bound (drawn-config seed 1215: about 55 entries/s).

use crate::queue::{MS, Nanos};
use raft::LogIndex;

/// How long a lagging member's commit index must stand still to count as
/// stalled.
pub const STALL: Nanos = 1_000 * MS;

/// The members behind `leader_commit`: each `(node, commit index)` of
/// `members` (the live members of the leader's configuration, the leader
/// included) whose commit index is below it.
pub fn lagging(leader_commit: LogIndex, members: &[(u64, LogIndex)]) -> Vec<(u64, LogIndex)> {
    members
        .iter()
        .copied()
        .filter(|&(_, commit)| commit < leader_commit)
        .collect()
}

/// Whether a lagging member whose commit index last moved at `moved_at`
/// is stalled at `now`.
pub fn stalled(moved_at: Nanos, now: Nanos) -> bool {
    now.saturating_sub(moved_at) >= STALL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_below_the_leaders_commit_index_is_lagging() {
        let members = [(1, LogIndex(10)), (2, LogIndex(10)), (3, LogIndex(7))];
        assert_eq!(lagging(LogIndex(10), &members), vec![(3, LogIndex(7))]);
        assert!(lagging(LogIndex(7), &members).is_empty());
    }

    #[test]
    fn a_lagging_member_is_stalled_only_once_its_commit_index_stood_still() {
        assert!(!stalled(9_500 * MS, 10_000 * MS));
        assert!(stalled(9_000 * MS, 10_000 * MS));
    }
}
