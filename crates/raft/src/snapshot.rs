//! Log compaction and InstallSnapshot (§7, Figure 13): the leader sends its
//! snapshot to a follower that needs entries it has compacted away, in
//! chunks of at most `max_snapshot_chunk_bytes`; the follower assembles them
//! and installs the whole.
//!
//! Resumption: every chunk is answered with the number of bytes the follower
//! holds, and the leader always sends the chunk at the offset the follower
//! last named. A lost chunk or answer is noticed at a heartbeat (the offset
//! did not move for a whole heartbeat interval) and the chunk is resent; a
//! follower that lost its partial snapshot (a restart) answers 0 and the
//! transfer starts over. A partial snapshot belongs to one leader term and
//! one snapshot index: a chunk of another is not mixed in.
//!
//! §7: a snapshot at or below the follower's commit index is never
//! installed (it would move the state machine backwards); the follower
//! answers as if it had installed it, since its committed prefix matches any
//! leader's log (§5.4).

use crate::errors::StepError;
use crate::raft::Raft;
use crate::tracker::ProgressState;
use crate::types::{LogIndex, MessageBody, NodeId, Snapshot, SnapshotMeta, Term};

/// A snapshot being assembled on a follower.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IncomingSnapshot {
    /// The term of the leader sending it.
    pub leader_term: Term,
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The bytes received so far, contiguous from offset 0. Invariant: at
    /// most `MAX_SNAPSHOT_BYTES`.
    pub data: Vec<u8>,
}

impl Raft {
    /// Leader: sends `to` the chunk of the current snapshot at the offset it
    /// last asked for, unless a chunk is already in flight.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let snapshot_index = self.log.snapshot_index();
        let Some(pr) = self.tracker.get_mut(to) else {
            return;
        };
        debug_assert_eq!(pr.state, ProgressState::Snapshot);
        if pr.pending_snapshot != snapshot_index {
            // The leader compacted again since the transfer started: send
            // the newer snapshot instead, from the beginning.
            if pr.match_index >= snapshot_index {
                pr.become_probe();
                return;
            }
            pr.become_snapshot(snapshot_index);
        }
        if pr.probe_sent {
            return;
        }
        let snapshot = self.log.snapshot();
        let len = snapshot.data.len();
        let start = usize::try_from(pr.snapshot_offset).map_or(len, |o| o.min(len));
        let end = start
            .saturating_add(self.cfg.max_snapshot_chunk_bytes)
            .min(len);
        let body = MessageBody::InstallSnapshot {
            index: snapshot.meta.index,
            snapshot_term: snapshot.meta.term,
            membership: snapshot.meta.membership.clone(),
            offset: start as u64,
            data: snapshot.data[start..end].to_vec(),
            done: end == len,
        };
        pr.probe_sent = true;
        self.send(to, body);
    }

    /// Leader: the follower `to` needs entries below the first index; start
    /// (or keep) sending it the snapshot.
    pub(crate) fn start_snapshot(&mut self, to: NodeId) {
        let index = self.log.snapshot_index();
        if let Some(pr) = self.tracker.get_mut(to)
            && pr.state != ProgressState::Snapshot
        {
            pr.become_snapshot(index);
        }
        self.send_snapshot_chunk(to);
    }

    /// Follower side of InstallSnapshot, in our term (Figure 13 receiver
    /// implementation).
    pub(crate) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        debug_assert_eq!(self.role, crate::Role::Follower);
        self.leader = Some(from);
        self.election_elapsed = 0;
        let index = meta.index;
        let answer = |raft: &mut Raft, offset: u64, done: bool| {
            raft.send(
                from,
                MessageBody::InstallSnapshotResponse {
                    index,
                    offset,
                    done,
                },
            );
        };
        // §7: never install at or below the commit index. Our log (or our
        // own snapshot) already holds that committed prefix.
        if index <= self.log.committed() {
            let committed = self.log.committed();
            if self
                .incoming_snapshot
                .as_ref()
                .is_some_and(|inc| inc.meta.index <= committed)
            {
                self.incoming_snapshot = None;
            }
            answer(self, offset.saturating_add(data.len() as u64), true);
            return;
        }
        let term = self.term;
        let same = |inc: &IncomingSnapshot| {
            inc.leader_term == term && inc.meta.index == index && inc.meta.term == meta.term
        };
        match &self.incoming_snapshot {
            Some(inc) if same(inc) => {}
            Some(inc) if inc.leader_term == term && inc.meta.index > index => {
                // A stale chunk of an older snapshot from this same leader:
                // the newer transfer goes on.
                answer(self, 0, false);
                return;
            }
            _ if offset == 0 => {
                // A new transfer; a partial snapshot of another term or index
                // is discarded.
                self.incoming_snapshot = Some(IncomingSnapshot {
                    leader_term: term,
                    meta,
                    data: Vec::new(),
                });
            }
            _ => {
                // The middle of a transfer we do not hold: start over.
                answer(self, 0, false);
                return;
            }
        }
        let inc = self.incoming_snapshot.as_mut().expect("set above");
        let have = inc.data.len() as u64;
        if offset != have {
            // A duplicate, or a chunk after a lost one: say where we are.
            answer(self, have, false);
            return;
        }
        // Validation bounded `offset + data.len()` by MAX_SNAPSHOT_BYTES.
        inc.data.extend_from_slice(&data);
        let have = inc.data.len() as u64;
        if !done {
            answer(self, have, false);
            return;
        }
        let inc = self.incoming_snapshot.take().expect("set above");
        let installed = self.log.install_snapshot(Snapshot {
            meta: inc.meta,
            data: inc.data,
        });
        debug_assert!(installed, "the index is above the commit index");
        // The answer is a response: it leaves only after the driver has
        // persisted the snapshot (see `RawNode::take_snapshot`).
        answer(self, have, true);
    }

    /// Leader side: an answer to a chunk, in our term.
    pub(crate) fn handle_install_snapshot_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        offset: u64,
        done: bool,
    ) -> Result<(), StepError> {
        if done && index > self.log.last_index() {
            return Err(StepError::Malformed {
                reason: "acknowledges a snapshot past the leader's log",
            });
        }
        let Some(pr) = self.tracker.get_mut(from) else {
            return Ok(());
        };
        pr.recent_active = true;
        if done {
            // The follower's log matches ours up to `index` (§7).
            let updated = pr.maybe_update(index);
            if updated && pr.state == ProgressState::Probe {
                pr.become_replicate();
            }
            if updated && self.maybe_commit() {
                self.on_commit_advanced();
            } else {
                self.send_appends(from);
            }
            return Ok(());
        }
        if pr.state != ProgressState::Snapshot || index != pr.pending_snapshot {
            return Ok(()); // About another transfer.
        }
        if offset == pr.snapshot_offset && pr.probe_sent {
            // A duplicate answer: the chunk it asks for is in flight.
            return Ok(());
        }
        pr.snapshot_offset = offset;
        pr.probe_sent = false;
        self.send_snapshot_chunk(from);
        Ok(())
    }

    /// Leader: at a heartbeat, resend the chunk of every transfer whose
    /// offset did not move during the whole interval (a lost chunk or
    /// answer).
    pub(crate) fn resume_stalled_snapshots(&mut self) {
        for peer in self.tracker.peers(self.id) {
            let Some(pr) = self.tracker.get_mut(peer) else {
                continue;
            };
            if pr.state != ProgressState::Snapshot {
                continue;
            }
            if pr.snapshot_offset_at_heartbeat == Some(pr.snapshot_offset) {
                pr.probe_sent = false;
                pr.snapshot_offset_at_heartbeat = None;
                self.send_snapshot_chunk(peer);
            } else {
                pr.snapshot_offset_at_heartbeat = Some(pr.snapshot_offset);
            }
        }
    }
}
