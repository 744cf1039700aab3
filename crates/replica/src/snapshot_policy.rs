//! When a replica compacts its log (§7).
//!
//! A snapshot of the state machine is taken every [`SnapshotPolicy::every`]
//! applied entries, and the log is compacted up to it once
//! [`SnapshotPolicy::keep`] more entries have been applied: so the log
//! always holds at least `keep` entries below the applied index, which a
//! follower that is only slightly behind can be sent as entries, rather
//! than the whole snapshot. (etcd does the same with
//! `SnapshotCatchUpEntries`; here the snapshot itself is older, and the
//! kept entries are exactly those after it.)
//!
//! One snapshot waits at a time, so snapshots are at least `keep` entries
//! apart. The policy is checked after every applied entry, so a log holds
//! at most `max(every, keep) + keep` applied entries
//! ([`SnapshotPolicy::max_applied_entries`]),
//! plus those not yet applied, which raft's own limits bound (uncommitted
//! entries, entries per append). The simulator checks this bound after
//! every step.

use raft::LogIndex;

/// How often a replica snapshots its state machine and compacts its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotPolicy {
    /// Take a snapshot once this many entries were applied since the last
    /// one (0: never; the log then grows until the disk's limit).
    pub every: u64,
    /// Compact only once this many entries have been applied after the
    /// snapshot, and keep them in the log for followers that lag a little.
    pub keep: u64,
}

impl SnapshotPolicy {
    /// Defaults for a real node: a snapshot every 1,024 applied entries,
    /// 256 kept after it. Small enough that a restart replays little, large
    /// enough that a snapshot (which copies the whole state) is rare.
    pub const DEFAULT: SnapshotPolicy = SnapshotPolicy {
        every: 1024,
        keep: 256,
    };

    /// Never compact.
    pub const NEVER: SnapshotPolicy = SnapshotPolicy { every: 0, keep: 0 };

    /// The most applied entries a log holds after the snapshot it starts
    /// from (unbounded when snapshots are off).
    pub fn max_applied_entries(&self) -> u64 {
        if self.every == 0 {
            u64::MAX
        } else {
            self.every.max(self.keep).saturating_add(self.keep)
        }
    }

    /// Whether to take a snapshot at `applied`, the last being at `last`.
    pub(crate) fn snapshot_due(&self, applied: LogIndex, last: LogIndex) -> bool {
        self.every > 0 && applied.0 >= last.0.saturating_add(self.every)
    }

    /// Whether a snapshot taken at `taken` may now become the start of the
    /// log.
    pub(crate) fn compaction_due(&self, applied: LogIndex, taken: LogIndex) -> bool {
        applied.0 >= taken.0.saturating_add(self.keep)
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy::DEFAULT
    }
}

/// A snapshot taken and waiting for `keep` more entries to apply before
/// the log is compacted to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PendingSnapshot {
    /// The applied index the state machine was at.
    pub index: LogIndex,
    /// The state machine's encoding at `index`.
    pub data: Vec<u8>,
    /// The state machine's digest at `index`.
    pub state_digest: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_every_n_applied_entries_and_compaction_keep_later() {
        let p = SnapshotPolicy { every: 10, keep: 4 };
        assert!(!p.snapshot_due(LogIndex(9), LogIndex(0)));
        assert!(p.snapshot_due(LogIndex(10), LogIndex(0)));
        assert!(!p.compaction_due(LogIndex(13), LogIndex(10)));
        assert!(p.compaction_due(LogIndex(14), LogIndex(10)));
        assert!(!SnapshotPolicy::NEVER.snapshot_due(LogIndex(u64::MAX), LogIndex(0)));
        assert_eq!(p.max_applied_entries(), 14);
        assert_eq!(
            SnapshotPolicy { every: 3, keep: 8 }.max_applied_entries(),
            16
        );
    }
}
