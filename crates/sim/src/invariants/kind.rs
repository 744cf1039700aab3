//! What kind of rule a violation broke: a closed set, so that the shrinker
//! keeps a shrink on the same bug, a sweep counts failures by kind, and a
//! report names the rule, without parsing text.

use serde::{Serialize, Serializer};
use std::fmt;

/// The rule a run broke. Its [`ViolationKind::name`] is the text every
/// report and trace has always printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// Figure 3: at most one leader per term.
    ElectionSafety,
    /// §5.3: logs that agree at an index agree before it.
    LogMatching,
    /// §5.4: a new leader holds every committed entry.
    LeaderCompleteness,
    /// Figure 3: one entry applied at each index, everywhere.
    StateMachineSafety,
    /// Entries apply in order, each once.
    ApplyOrder,
    /// §5.4: a committed entry is never overwritten.
    CommittedEntryOverwritten,
    /// Figure 2: the commit index never goes back.
    CommitIndexMonotonic,
    /// The commit index stays within the log.
    CommitWithinLog,
    /// §4.3: a commit is held durably by a quorum of the configuration.
    CommitSafety,
    /// §5.4.2: a leader commits by counting replicas only of an entry of
    /// its current term.
    CommitRule,
    /// §5.3, Figure 2: only a leader counts replicas; any other node's
    /// commit index comes from a leader's, so it never passes the highest
    /// index a leader has committed.
    CommitFromALeader,
    /// §4.1: a leader is a voter.
    LeaderIsAVoter,
    /// §5.2: after recovery a node's vote for its term is the one it last
    /// granted.
    VoteDurability,
    /// Figure 2: a leader counts only the votes and acknowledgements of its
    /// own term.
    StaleAnswers,
    /// §6.4.1: no lease read after a leader of a higher term committed
    /// (within the clock drift bound).
    LeaseSafety,
    /// §6.4: a read round is confirmed only by an answer to a message the
    /// leader sent in that term with that round (or a later one).
    ReadRounds,
    /// Replicas at the same applied index have the same state.
    StateMachineAgreement,
    /// §7: a snapshot stands for committed state.
    SnapshotOfCommittedState,
    /// §7: nothing is read below a node's snapshot.
    NothingReadBelowTheSnapshot,
    /// The snapshot policy bounds the log.
    LogBounded,
    /// §5.2: term and vote survive a crash.
    HardStateDurable,
    /// Figure 2: a synced, committed entry survives recovery.
    AcknowledgedWriteLost,
    /// A node applies only entries it persisted.
    Durability,
    /// §5.3: a node replicates only data it persisted.
    ReplicatesVerifiedData,
    /// Figure 2: a granted vote is durable when it leaves.
    VoteDurableBeforeAnswered,
    /// Figure 2: acknowledged entries are durable when the answer leaves.
    EntriesDurableBeforeAcknowledged,
    /// A replica reopens from its disk.
    Recovery,
    /// A replica stopped on an internal error.
    ReplicaHalted,
    /// Virtual time all but stopped (a livelock).
    EventStorm,
    /// The clients' history is not linearizable.
    NotLinearizable,
}

impl ViolationKind {
    /// Every kind.
    pub const ALL: [ViolationKind; 30] = [
        ViolationKind::ElectionSafety,
        ViolationKind::LogMatching,
        ViolationKind::LeaderCompleteness,
        ViolationKind::StateMachineSafety,
        ViolationKind::ApplyOrder,
        ViolationKind::CommittedEntryOverwritten,
        ViolationKind::CommitIndexMonotonic,
        ViolationKind::CommitWithinLog,
        ViolationKind::CommitSafety,
        ViolationKind::CommitRule,
        ViolationKind::CommitFromALeader,
        ViolationKind::LeaderIsAVoter,
        ViolationKind::VoteDurability,
        ViolationKind::StaleAnswers,
        ViolationKind::LeaseSafety,
        ViolationKind::ReadRounds,
        ViolationKind::StateMachineAgreement,
        ViolationKind::SnapshotOfCommittedState,
        ViolationKind::NothingReadBelowTheSnapshot,
        ViolationKind::LogBounded,
        ViolationKind::HardStateDurable,
        ViolationKind::AcknowledgedWriteLost,
        ViolationKind::Durability,
        ViolationKind::ReplicatesVerifiedData,
        ViolationKind::VoteDurableBeforeAnswered,
        ViolationKind::EntriesDurableBeforeAcknowledged,
        ViolationKind::Recovery,
        ViolationKind::ReplicaHalted,
        ViolationKind::EventStorm,
        ViolationKind::NotLinearizable,
    ];

    /// The rule's name, as printed ("election safety", ...).
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::ElectionSafety => "election safety",
            ViolationKind::LogMatching => "log matching",
            ViolationKind::LeaderCompleteness => "leader completeness",
            ViolationKind::StateMachineSafety => "state machine safety",
            ViolationKind::ApplyOrder => "apply order",
            ViolationKind::CommittedEntryOverwritten => "committed entry overwritten",
            ViolationKind::CommitIndexMonotonic => "commit index monotonic",
            ViolationKind::CommitWithinLog => "commit within log",
            ViolationKind::CommitSafety => "commit safety",
            ViolationKind::CommitRule => "commit rule",
            ViolationKind::CommitFromALeader => "commit from a leader",
            ViolationKind::LeaderIsAVoter => "leader is a voter",
            ViolationKind::VoteDurability => "vote durability",
            ViolationKind::StaleAnswers => "stale answers counted",
            ViolationKind::LeaseSafety => "lease safety",
            ViolationKind::ReadRounds => "read rounds",
            ViolationKind::StateMachineAgreement => "state machine agreement",
            ViolationKind::SnapshotOfCommittedState => "snapshot of committed state",
            ViolationKind::NothingReadBelowTheSnapshot => "nothing read below the snapshot",
            ViolationKind::LogBounded => "log bounded",
            ViolationKind::HardStateDurable => "hard state durable",
            ViolationKind::AcknowledgedWriteLost => "acknowledged write lost",
            ViolationKind::Durability => "durability",
            ViolationKind::ReplicatesVerifiedData => "replicates verified data",
            ViolationKind::VoteDurableBeforeAnswered => "vote durable before answered",
            ViolationKind::EntriesDurableBeforeAcknowledged => {
                "entries durable before acknowledged"
            }
            ViolationKind::Recovery => "recovery",
            ViolationKind::ReplicaHalted => "replica halted",
            ViolationKind::EventStorm => "event storm",
            ViolationKind::NotLinearizable => "not linearizable",
        }
    }

    /// The kind whose name is `name`.
    pub fn from_name(name: &str) -> Option<ViolationKind> {
        ViolationKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ViolationKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_round_trip() {
        let mut names: Vec<&str> = ViolationKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ViolationKind::ALL.len());
        for kind in ViolationKind::ALL {
            assert_eq!(ViolationKind::from_name(kind.name()), Some(kind));
        }
    }
}
