//! Snapshots (§7): a snapshot stands for committed entries, with the state
//! every replica had at its index.

use super::{Invariants, ViolationKind, slot};
use crate::queue::Nanos;
use raft::LogIndex;
use replica::SnapshotDigest;

impl Invariants {
    /// Whether `snap` stands for committed entries: its index was applied
    /// somewhere, with its term. A violation if not.
    pub(super) fn snapshot_is_committed(
        &mut self,
        at: Nanos,
        node: u64,
        snap: SnapshotDigest,
    ) -> bool {
        let i = snap.index.0 as usize;
        match self.committed_terms.get(i) {
            Some(&term) if term == snap.term => true,
            Some(&term) => {
                self.violate(
                    ViolationKind::SnapshotOfCommittedState,
                    at,
                    node,
                    format!(
                        "a snapshot at {} of {} where the committed entry is of {term}",
                        snap.index, snap.term
                    ),
                );
                false
            }
            None => {
                self.violate(
                    ViolationKind::SnapshotOfCommittedState,
                    at,
                    node,
                    format!(
                        "a snapshot at {} beyond the highest applied index {}",
                        snap.index, self.committed.0
                    ),
                );
                false
            }
        }
    }

    /// A node compacted its log to a snapshot of its own state machine
    /// (§7): the snapshot stands for committed entries, and its state is
    /// every replica's state at that index.
    pub fn snapshot_taken(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) {
        if self.snapshot_is_committed(at, node, snap) {
            self.state_digest(at, node, snap.index.0, snap.state);
        }
    }

    /// A node's install of a snapshot from the leader became durable (§7,
    /// Figure 13): it must stand for committed entries, and the node's log
    /// becomes the committed prefix up to it, followed by its own entries
    /// after it only if it held the snapshot's last entry.
    pub fn snapshot_installed(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) {
        if !self.snapshot_is_committed(at, node, snap) {
            return;
        }
        let n = slot(node);
        let upto = snap.index.0 as usize;
        if self.terms[n].get(upto) != Some(&snap.term) {
            self.chains[n] = self.committed_chain[..=upto].to_vec();
            self.terms[n] = self.committed_terms[..=upto].to_vec();
        }
    }

    /// A node replaced its state machine with a snapshot from the leader
    /// (its log follows when the install is durable: see
    /// [`Invariants::snapshot_installed`]). The snapshot stands for
    /// committed state, with every replica's digest at its index, and the
    /// node's applied index jumps to it.
    pub fn state_machine_replaced(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) {
        if !self.snapshot_is_committed(at, node, snap) {
            return;
        }
        self.state_digest(at, node, snap.index.0, snap.state);
        let n = slot(node);
        if snap.index > self.last_applied[n] {
            self.last_applied[n] = snap.index;
        }
    }

    /// Nothing is read below the snapshot (§7): what a snapshot covers is
    /// gone from the log, so an append a node sends starts at or after its
    /// snapshot `floor` (a follower that needs less gets the snapshot). A
    /// heartbeat after index 0, the empty prefix every log matches, reads
    /// nothing.
    pub fn append_above_snapshot(
        &mut self,
        at: Nanos,
        node: u64,
        prev_log_index: LogIndex,
        has_entries: bool,
        floor: LogIndex,
    ) {
        let heartbeat_at_zero = !has_entries && prev_log_index.0 == 0;
        if prev_log_index < floor && !heartbeat_at_zero {
            self.violate(
                ViolationKind::NothingReadBelowTheSnapshot,
                at,
                node,
                format!("sent an append after {prev_log_index}, below its snapshot at {floor}"),
            );
        }
    }

    /// The log stays bounded: at most `bound` applied entries after the
    /// snapshot at `snapshot_index` (`max(every, keep) + keep`: see
    /// `SnapshotPolicy`).
    pub fn log_bounded(
        &mut self,
        at: Nanos,
        node: u64,
        applied_held: u64,
        snapshot_index: LogIndex,
        bound: u64,
    ) {
        if applied_held > bound {
            self.violate(
                ViolationKind::LogBounded,
                at,
                node,
                format!(
                    "the log holds {applied_held} applied entries after the snapshot at {snapshot_index}, more than the policy's {bound}"
                ),
            );
        }
    }
}
