//! Catch-up liveness after the heal: every live member of the leader's
//! configuration reaches the leader's commit index within the liveness
//! bound (Figure 2: the leader retries AppendEntries until each follower's
//! log matches; §7: InstallSnapshot for one that fell below the snapshot).
//! "Some leader finished the pending operations" is not enough: a follower
//! the leader stopped replicating to (a probe lost and never re-sent) only
//! shows here.

use raft::LogIndex;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_below_the_leaders_commit_index_is_lagging() {
        let members = [(1, LogIndex(10)), (2, LogIndex(10)), (3, LogIndex(7))];
        assert_eq!(lagging(LogIndex(10), &members), vec![(3, LogIndex(7))]);
        assert!(lagging(LogIndex(7), &members).is_empty());
    }
}
