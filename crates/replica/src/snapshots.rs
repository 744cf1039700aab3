//! Snapshots: installing one from the leader, and taking and compacting to
//! this node's own by the [`SnapshotPolicy`](crate::SnapshotPolicy).

use crate::effects::{Effect, ReplicaEvent, SnapshotDigest};
use crate::error::ReplicaError;
use crate::replica::{Replica, restore_state_machine};
use crate::snapshot_policy::PendingSnapshot;
use raft::{Entry, LogIndex, Snapshot, SnapshotMeta};

impl Replica {
    /// Installs a snapshot the leader sent (§7, Figure 13 receiver steps
    /// 5–8): decoded and checked first, then the state machine replaced and
    /// the writes it covers answered from its session table. Returns the
    /// snapshot with its fingerprint, for the write that makes it durable;
    /// the leader hears of it only once that write completes (its answer is
    /// among the ready's held messages).
    ///
    /// Replacing the state machine before the write completes is safe: a
    /// snapshot from the leader covers only committed entries, and the state
    /// machine is volatile (a crash rebuilds it from the disk).
    pub(crate) fn install_snapshot(
        &mut self,
        snapshot: Snapshot,
        effects: &mut Vec<Effect>,
    ) -> Result<(Snapshot, SnapshotDigest), ReplicaError> {
        let kv = restore_state_machine(&snapshot)?;
        let digest = SnapshotDigest::of(&snapshot.meta, &kv);
        self.kv = kv;
        let index = snapshot.meta.index;
        self.raft.snapshot_installed(index);
        self.last_snapshot = self.last_snapshot.max(index);
        self.compacting_to = self.compacting_to.max(index);
        if self
            .pending_snapshot
            .as_ref()
            .is_some_and(|p| p.index <= index)
        {
            self.pending_snapshot = None;
        }
        effects.push(Effect::Event(ReplicaEvent::StateMachineReplaced {
            snapshot: digest,
        }));
        self.answer_from_sessions(effects);
        Ok((snapshot, digest))
    }

    /// Applies the snapshot policy after an entry was applied: take a
    /// snapshot when one is due, and hand the executor a compaction to the
    /// pending one once enough entries followed it.
    pub(crate) fn maybe_compact(&mut self) {
        let applied = LogIndex(self.kv.applied_index());
        if let Some(pending) = &self.pending_snapshot {
            if pending.index <= self.compacting_to {
                // A snapshot from the leader overtook it.
                self.pending_snapshot = None;
            } else if self.policy.compaction_due(applied, pending.index) {
                let pending = self.pending_snapshot.take().expect("checked above");
                self.compact_to(pending);
            }
        }
        // After a compaction, so that the next snapshot can be taken at
        // once (only one waits at a time).
        if self.pending_snapshot.is_none() && self.policy.snapshot_due(applied, self.last_snapshot)
        {
            self.pending_snapshot = Some(PendingSnapshot {
                index: applied,
                data: self.kv.snapshot(),
                state_digest: self.kv.digest(),
            });
            self.last_snapshot = applied;
            if self.policy.keep == 0 {
                let pending = self.pending_snapshot.take().expect("set above");
                self.compact_to(pending);
            }
        }
    }

    /// An operator's snapshot (`AdminOp::Snapshot`): the state machine at
    /// its applied index, compacted to at once rather than after
    /// `policy.keep` more entries. A snapshot the policy took and that
    /// still waits is superseded by this newer one. Refused (with the
    /// applied index) when the log already starts there.
    pub(crate) fn snapshot_now(&mut self) -> Result<LogIndex, LogIndex> {
        let applied = LogIndex(self.kv.applied_index());
        if applied <= self.compacting_to {
            return Err(applied);
        }
        self.pending_snapshot = None;
        self.last_snapshot = applied;
        self.compact_to(PendingSnapshot {
            index: applied,
            data: self.kv.snapshot(),
            state_digest: self.kv.digest(),
        });
        Ok(applied)
    }

    /// Asks for `pending` to become the start of the log: durably first
    /// (§7: the log may be discarded once the snapshot is written, so a
    /// crash from then on recovers from the snapshot); raft forgets the
    /// entries when the write completes.
    fn compact_to(&mut self, pending: PendingSnapshot) {
        let term = self
            .raft
            .term_at(pending.index)
            .expect("an applied entry above the snapshot is in the log");
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: pending.index,
                term,
                membership: self.raft.membership_at(pending.index),
            },
            data: pending.data,
        };
        let digest = SnapshotDigest {
            index: pending.index,
            term,
            state: pending.state_digest,
        };
        self.compacting_to = pending.index;
        // Every entry in raft's log is in a write issued or gathered by
        // now, so these are what the disk holds after the snapshot when
        // the compaction runs (it follows those writes).
        let keep = self.log_after(pending.index, self.raft.last_index());
        self.writes.add_compaction(snapshot, digest, keep);
    }

    /// Raft's entries after `index` up to `last`, copied: what a snapshot at
    /// `index` keeps (the WAL holds only their terms).
    pub(crate) fn log_after(&self, index: LogIndex, last: LogIndex) -> Vec<Entry> {
        (index.0 + 1..=last.0)
            .map(|i| {
                self.raft
                    .entry(LogIndex(i))
                    .cloned()
                    .expect("raft's log holds the entries after its snapshot")
            })
            .collect()
    }
}
