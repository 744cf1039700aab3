//! Log replication (§5.3) and commitment (§5.4.2): the leader's appends and
//! heartbeats, the follower's consistency check, fast backtracking, and
//! advancing the commit index.

use crate::errors::{ProposeError, StepError};
use crate::raft::Raft;
use crate::tracker::ProgressState;
use crate::types::{Entry, EntryPayload, LogIndex, MessageBody, NodeId, RejectHint, Role, Term};

impl Raft {
    /// Appends a client command to the leader's log. Replication starts at the
    /// next `ready()`, so proposals between two readies share messages.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<LogIndex, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if data.len() > self.cfg.max_bytes_per_append {
            return Err(ProposeError::TooLarge {
                size: data.len(),
                max: self.cfg.max_bytes_per_append,
            });
        }
        if self.log.uncommitted_len() >= self.cfg.max_uncommitted_entries as u64 {
            return Err(ProposeError::TooManyUncommitted {
                max: self.cfg.max_uncommitted_entries,
            });
        }
        if let Some(to) = self.lead_transferee {
            // §3.10: the leader stops accepting proposals while it hands
            // over, or the target might never catch up.
            return Err(ProposeError::TransferInProgress { to });
        }
        // §5.3: "the leader appends the command to its log as a new entry".
        let index = self.log.append_new(self.term, EntryPayload::Command(data));
        self.broadcast_due = true;
        Ok(index)
    }

    /// Sends what each follower is missing, as far as its progress allows.
    pub fn bcast_append(&mut self) {
        self.broadcast_due = false;
        for peer in self.tracker.peers(self.id) {
            self.send_appends(peer);
        }
    }

    /// Sends appends to `to` until it is paused or has been sent the whole
    /// log: one in Probe, up to `max_inflight_appends` in Replicate.
    pub fn send_appends(&mut self, to: NodeId) {
        // Bounded: each iteration either pauses the peer (Probe) or fills one
        // more inflight slot (Replicate).
        for _ in 0..=self.cfg.max_inflight_appends {
            let Some(pr) = self.tracker.get(to) else {
                return;
            };
            if pr.state == ProgressState::Snapshot {
                self.send_snapshot_chunk(to);
                return;
            }
            if pr.is_paused() || pr.next_index > self.log.last_index() {
                return;
            }
            if pr.next_index < self.log.first_index() {
                // §7: the entries it needs were compacted away.
                self.start_snapshot(to);
                return;
            }
            self.send_one_append(to);
        }
    }

    /// One AppendEntries starting at `to`'s next index, bounded by
    /// `max_entries_per_append` and `max_bytes_per_append`.
    fn send_one_append(&mut self, to: NodeId) {
        let Some(pr) = self.tracker.get(to) else {
            return;
        };
        let next = pr.next_index;
        let prev = next.prev();
        let Some(prev_term) = self.log.term_at(prev) else {
            debug_assert!(false, "next index {next} beyond the leader's log");
            return;
        };
        let entries = self.log.entries_for_append(
            next,
            self.cfg.max_entries_per_append,
            self.cfg.max_bytes_per_append,
        );
        let last = entries.last().map_or(prev, |e| e.index);
        let committed = self.log.committed();
        let read_round = self.reads.round_for_send(self.now_tick);
        if let Some(pr) = self.tracker.get_mut(to) {
            pr.sent_entries(last);
            pr.commit_sent = pr.commit_sent.max(committed.min(last));
        }
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_log_index: prev,
                prev_log_term: prev_term,
                entries,
                leader_commit: committed,
                read_round,
            },
        );
    }

    /// A heartbeat: an AppendEntries without entries whose consistency check
    /// is at the follower's match index, so it always passes and tells the
    /// follower the commit index (it commits `min(leader_commit, match)`).
    fn send_heartbeat(&mut self, to: NodeId) {
        let Some(pr) = self.tracker.get(to) else {
            return;
        };
        // Below the snapshot the term at the match index is gone; the empty
        // prefix at 0 matches every log, so the heartbeat still passes.
        let (prev, prev_term) = match self.log.term_at(pr.match_index) {
            Some(term) => (pr.match_index, term),
            None => {
                debug_assert!(
                    pr.match_index < self.log.first_index(),
                    "match beyond the log"
                );
                (LogIndex(0), Term(0))
            }
        };
        let committed = self.log.committed();
        let read_round = self.reads.round_for_send(self.now_tick);
        if let Some(pr) = self.tracker.get_mut(to) {
            // Below the snapshot, the heartbeat cannot carry the commit
            // index; the snapshot transfer will. Counting it as sent keeps
            // `maybe_send_commit` from asking for heartbeat after heartbeat.
            let proven = if prev.0 == 0 { pr.match_index } else { prev };
            pr.commit_sent = pr.commit_sent.max(committed.min(proven));
            // Its answer may re-arm the probe (see `Progress::probe_rearm`).
            pr.probe_rearm = true;
        }
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_log_index: prev,
                prev_log_term: prev_term,
                entries: Vec::new(),
                leader_commit: committed,
                read_round,
            },
        );
    }

    /// Heartbeats to every follower (§5.2: leaders send periodic heartbeats to
    /// maintain their authority), carrying the current read round.
    pub fn bcast_heartbeat(&mut self) {
        for peer in self.tracker.peers(self.id) {
            self.send_heartbeat(peer);
        }
        // Even with no peer to send to, the round is now sealed.
        self.reads.round_broadcast();
    }

    /// The heartbeat interval elapsed on the leader.
    pub fn heartbeat_timeout(&mut self) {
        let last = self.log.last_index();
        for peer in self.tracker.peers(self.id) {
            if let Some(pr) = self.tracker.get_mut(peer) {
                // A Replicate stream whose match index did not move during a
                // whole heartbeat interval while entries are outstanding has
                // lost an append: probe again from the match point.
                if pr.state == ProgressState::Replicate
                    && pr.match_index < last
                    && pr.match_index == pr.match_at_last_heartbeat
                    && pr.inflights.len() > 0
                {
                    pr.become_probe();
                }
                pr.match_at_last_heartbeat = pr.match_index;
            }
        }
        if self.cfg.lease_read_ticks > 0 {
            // Every heartbeat renews the lease (§6.4.1).
            self.reads.start_lease_round();
        }
        self.bcast_heartbeat();
        self.resume_stalled_snapshots();
    }

    /// Follower side of AppendEntries, in our term (§5.3, Figure 2 receiver
    /// implementation).
    pub(crate) fn handle_append_entries(
        &mut self,
        from: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: &[Entry],
        leader_commit: LogIndex,
        read_round: u64,
    ) -> Result<(), StepError> {
        debug_assert_eq!(self.role, Role::Follower);
        self.leader = Some(from);
        self.election_elapsed = 0;
        // §5.3 consistency check: "reply false if log doesn't contain an
        // entry at prevLogIndex whose term matches prevLogTerm".
        if prev_log_index < self.log.snapshot_index() {
            // The consistency check falls in what our snapshot covers: that
            // prefix is committed, so it matches the leader's log (§5.4).
            // Acknowledge it, and the leader goes on from there.
            let committed = self.log.committed();
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    success: true,
                    index: committed,
                    reject_hint: None,
                    read_round,
                },
            );
            return Ok(());
        }
        if self.log.term_at(prev_log_index) != Some(prev_log_term) {
            let hint = self.log.reject_hint(prev_log_index);
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    success: false,
                    index: prev_log_index,
                    reject_hint: Some(hint),
                    read_round,
                },
            );
            return Ok(());
        }
        // §5.3: truncate only at a real conflict, append what is new.
        self.log
            .append_from_leader(entries)
            .map_err(|c| StepError::ConflictsWithCommitted { index: c.0 })?;
        // The last index known to match the leader: what this message proved,
        // not our last index (our log may hold a stale suffix beyond it).
        let matched = LogIndex(prev_log_index.0 + entries.len() as u64);
        // Figure 2: "if leaderCommit > commitIndex, set commitIndex =
        // min(leaderCommit, index of last new entry)".
        self.log
            .commit_to(leader_commit.min(matched).max(self.log.committed()));
        // The answer leaves only once the entries are durable.
        self.send(
            from,
            MessageBody::AppendEntriesResponse {
                success: true,
                index: matched,
                reject_hint: None,
                read_round,
            },
        );
        Ok(())
    }

    /// Where to probe next after a rejection of the append at `rejected`
    /// (§5.3 fast backtracking): past the leader's last entry of the
    /// conflicting term if it has one, else the first index the follower holds
    /// of that term; never past the follower's log, never at or past
    /// `rejected`.
    fn next_from_hint(&self, rejected: LogIndex, hint: Option<RejectHint>) -> LogIndex {
        let Some(hint) = hint else {
            return rejected;
        };
        let next = match hint.conflict_term {
            Some(term) => {
                let j = self.log.last_index_with_term_at_most(term, rejected);
                if j.0 > 0 && self.log.term_at(j) == Some(term) {
                    j.next()
                } else {
                    hint.conflict_first_index
                }
            }
            None => hint.conflict_first_index,
        };
        next.min(hint.last_index.next())
            .min(rejected)
            .max(LogIndex(1))
    }

    /// Leader side: an answer to an append or heartbeat, in our term.
    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: LogIndex,
        hint: Option<RejectHint>,
        read_round: u64,
    ) -> Result<(), StepError> {
        if success && index > self.log.last_index() {
            return Err(StepError::Malformed {
                reason: "acknowledges entries past the leader's log",
            });
        }
        let hint_next = self.next_from_hint(index, hint);
        let Some(pr) = self.tracker.get_mut(from) else {
            return Ok(());
        };
        // Dissertation §6.2: any answer in our term shows the follower is
        // reachable and still accepts us.
        pr.recent_active = true;
        if !success {
            if pr.maybe_decrease_to(index, hint_next) {
                self.send_appends(from);
            }
        } else if pr.maybe_update(index) {
            if pr.state == ProgressState::Probe {
                // The logs agree up to `index`: stream from there.
                pr.become_replicate();
            }
            if self.maybe_commit() {
                self.on_commit_advanced();
            } else {
                self.send_appends(from);
                self.maybe_send_commit(from);
            }
            // §3.10: a transfer target that now holds the whole log may
            // take over.
            if self.role == Role::Leader {
                self.maybe_send_timeout_now(from);
            }
        } else {
            // An answer at or below the match index: a heartbeat's answer, a
            // duplicate, or one overtaken by a later answer. One such answer
            // per heartbeat re-arms the probe, so a lost probe never stalls
            // the follower for good. Re-arming on every one re-sent the same
            // append for every stale answer, and duplicated answers
            // multiplied into a message storm (found once appends carried
            // one entry with 64 in flight, sweep seed 827). Telling a
            // heartbeat's answer apart by its index instead missed answers
            // that name the follower's own commit index (seeds 230, 288,
            // 752, 1577, 1916 then stalled a follower below the snapshot).
            if pr.state == ProgressState::Probe && pr.probe_rearm {
                pr.probe_sent = false;
                pr.probe_rearm = false;
            }
            self.send_appends(from);
            self.maybe_send_commit(from);
        }
        // Dissertation §6.4: an answer in our term confirms our leadership
        // for the rounds up to the one it carries.
        if self.role == Role::Leader {
            self.ack_read_round(from, read_round);
        }
        Ok(())
    }

    /// §5.4.2: "Raft never commits log entries from previous terms by
    /// counting replicas. Only log entries from the leader's current term are
    /// committed by counting replicas"; earlier entries commit with them
    /// (Log Matching). Figure 8 shows why. Each replica counts up to its
    /// match index, the leader up to what it has persisted.
    pub fn maybe_commit(&mut self) -> bool {
        let index = self.tracker.committed_index();
        if index > self.log.committed() && self.log.term_at(index) == Some(self.term) {
            self.log.commit_to(index)
        } else {
            false
        }
    }

    /// The commit index moved: release reads waiting for it and tell the
    /// followers (new entries carry it; otherwise a commit-only heartbeat).
    pub fn on_commit_advanced(&mut self) {
        if !self.membership_after_commit() {
            return; // Removed by the configuration just committed.
        }
        self.release_waiting_reads();
        for peer in self.tracker.peers(self.id) {
            self.send_appends(peer);
            self.maybe_send_commit(peer);
        }
    }

    /// Sends a heartbeat to `to` if it could learn a higher commit index from
    /// one than from everything sent to it so far.
    fn maybe_send_commit(&mut self, to: NodeId) {
        let committed = self.log.committed();
        if let Some(pr) = self.tracker.get(to)
            && committed.min(pr.match_index) > pr.commit_sent
        {
            self.send_heartbeat(to);
        }
    }

    /// The driver reports entries up to `index` (of `term`) durable.
    pub fn on_persisted(&mut self, term: Term, index: LogIndex) {
        if !self.log.stable_to(term, index) || self.role != Role::Leader {
            return;
        }
        if term == self.term {
            // An entry of our term is durable, so is the term itself (the
            // hard state is written in the same batch, before its entries
            // are reported).
            self.term_durable = true;
        }
        let persisted = self.log.persisted();
        let me = self.id;
        if let Some(pr) = self.tracker.get_mut(me) {
            pr.maybe_update(persisted);
        }
        if self.maybe_commit() {
            self.on_commit_advanced();
        }
    }
}
