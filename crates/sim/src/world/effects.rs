//! Carrying out what a replica asks for: one step, its effects (messages to
//! the network, replies, writes, events for the trace and the invariant
//! checkers), and the checks of the replica after it.

use super::*;
use crate::invariants::ViolationKind;

impl World {
    /// Hands one input to a replica and carries out its effects.
    pub(super) fn step(&mut self, node: usize, input: Input) {
        self.with_replica(node, |replica, effects| replica.handle(input, effects));
    }

    /// Runs `f` on a live replica and carries out the effects it pushed,
    /// then checks the replica (or takes it down if it failed). Returns
    /// what `f` returned, if the replica did not fail.
    pub(super) fn with_replica<T>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut Replica, &mut Vec<Effect>) -> Result<T, ReplicaError>,
    ) -> Option<T> {
        let mut effects = std::mem::take(&mut self.effects);
        effects.clear();
        let slot = &mut self.nodes[node];
        let replica = slot.replica.as_mut().expect("step only live replicas");
        slot.snapshot_floor = replica.raft().snapshot_meta().index;
        // A leader that commits and steps down in one step, in its term
        // (one that removed itself: §4.2.2), still committed as leader; one
        // deposed by a higher term learnt its commit from the new leader.
        let led = slot.leading;
        let result = f(replica, &mut effects);
        let incarnation = self.nodes[node].incarnation;
        for effect in effects.drain(..) {
            // A write that fails stops the process (fail-stop): nothing
            // after it is carried out.
            if self.nodes[node].incarnation != incarnation {
                break;
            }
            self.carry_out(node, effect);
        }
        self.effects = effects;
        if self.nodes[node].incarnation != incarnation {
            return None;
        }
        match result {
            Ok(value) => {
                self.check_replica(node, led);
                Some(value)
            }
            Err(e) => {
                self.halt(node, e);
                None
            }
        }
    }

    /// Stops `node` on `e` (fail-stop) and schedules its restart. A disk
    /// failure is expected with disk faults on; anything else is a bug.
    pub(super) fn halt(&mut self, node: usize, e: ReplicaError) {
        let id = self.nodes[node].id.0;
        self.trace(Actor::Node(id), TraceEvent::Halted(e.to_string()));
        self.mark(TimelineEvent::Halted {
            node: id,
            reason: e.to_string(),
        });
        if self.nodes[node].disk.mode() != DiskFaultMode::Off && e.is_disk_failure() {
            // Fail-stop on a disk error (a full disk, an I/O error): the
            // restart recovers from what the disk holds.
            self.stats.disk_halts += 1;
        } else {
            self.stats.halts += 1;
            self.invariants_violation(ViolationKind::ReplicaHalted, id, e.to_string());
        }
        self.take_down(node);
        let at = self.now + self.params.downtime_max_ms * MS;
        self.queue.push(at, Event::Restart { node });
    }

    /// Plants the configured bug in a replica (tests only).
    #[cfg(feature = "planted-bugs")]
    pub(super) fn plant(&self, replica: &mut Replica) {
        replica.plant(self.config.planted);
    }

    /// Without the `planted-bugs` feature nothing can be planted
    /// ([`World::new`] refuses a configuration that asks).
    #[cfg(not(feature = "planted-bugs"))]
    pub(super) fn plant(&self, _replica: &mut Replica) {}

    /// Checks the invariants on `node`'s state after a step; `led` is the
    /// term it led when the step began, if it led.
    pub(super) fn check_replica(&mut self, node: usize, led: Option<u64>) {
        let id = self.nodes[node].id.0;
        let replica = self.nodes[node].replica.as_ref().expect("checked live");
        let raft = replica.raft();
        let (commit, last) = (raft.commit_index(), raft.last_index());
        let applied = replica.kv().applied_index();
        let digest = (applied != self.nodes[node].applied && applied.is_multiple_of(DIGEST_EVERY))
            .then(|| replica.kv().digest());
        // The log starts, as far as the replica has asked of its disk, at
        // the latest compaction it issued; raft forgets those entries once
        // the write completes.
        let snapshot_index = replica.compacting_to();
        // Commit safety against the configuration in force at the leader
        // when it committed (joint: both majorities). A leader deposed by a
        // higher term's append moves its commit index in the same step as
        // that leader's follower, not as a leader.
        let leader_commit = (commit > self.nodes[node].commit
            && (raft.role() == raft::Role::Leader || led == Some(raft.term().0)))
        .then(|| {
            (
                raft.term_at(commit).unwrap_or_default(),
                raft.term(),
                raft.membership().clone(),
            )
        });
        // The log stays bounded: at most `max(every, keep) + keep` applied
        // entries after the snapshot (see `SnapshotPolicy`).
        let applied_held = applied - snapshot_index.0;
        let log_entries = last.0 - snapshot_index.0;
        let bound = self.params.snapshot_policy().max_applied_entries();
        self.stats.max_applied_entries_held = self.stats.max_applied_entries_held.max(applied_held);
        self.stats.max_log_entries = self.stats.max_log_entries.max(log_entries);
        self.invariants
            .log_bounded(self.now, id, applied_held, snapshot_index, bound);
        self.nodes[node].applied = applied;
        if let Some((term, leader_term, membership)) = leader_commit {
            self.invariants
                .leader_committed(self.now, id, commit, term, leader_term, &membership);
        }
        if commit > self.nodes[node].commit {
            self.invariants.commit_from_a_leader(self.now, id, commit);
        }
        if commit != self.nodes[node].commit {
            self.nodes[node].commit = commit;
            self.nodes[node].commit_moved_at = self.now;
            self.trace(Actor::Node(id), TraceEvent::Committed { index: commit });
        }
        self.invariants.commit_index(self.now, id, commit, last);
        if let Some(digest) = digest {
            self.invariants.state_digest(self.now, id, applied, digest);
        }
    }

    pub(super) fn carry_out(&mut self, node: usize, effect: Effect) {
        let id = self.nodes[node].id.0;
        match effect {
            Effect::Send(envelope) => {
                if let raft::MessageBody::AppendEntries {
                    entries,
                    prev_log_index,
                    ..
                } = &envelope.msg.body
                {
                    let floor = self.nodes[node].snapshot_floor;
                    self.invariants.append_above_snapshot(
                        self.now,
                        id,
                        *prev_log_index,
                        !entries.is_empty(),
                        floor,
                    );
                    if !entries.is_empty() {
                        let sent: Vec<EntryDigest> = entries.iter().map(EntryDigest::of).collect();
                        self.invariants.sent_entries(self.now, id, &sent);
                    }
                }
                self.invariants.answer_sent(self.now, id, &envelope.msg);
                let summary = MessageSummary::of(&envelope.msg);
                self.stats.messages += 1;
                self.trace(Actor::Node(id), TraceEvent::Sent(summary));
                let Some(to) = self.node_index(envelope.msg.to) else {
                    self.trace(
                        Actor::Node(id),
                        TraceEvent::Refused(format!("no node {}", envelope.msg.to)),
                    );
                    return;
                };
                match self.net.fate(node, to) {
                    Fate::Lost => {
                        self.stats.messages_dropped += 1;
                        self.trace(
                            Actor::Node(id),
                            TraceEvent::Dropped(summary, DropReason::Loss),
                        );
                    }
                    Fate::Partitioned => {
                        self.stats.messages_dropped += 1;
                        self.trace(
                            Actor::Node(id),
                            TraceEvent::Dropped(summary, DropReason::Partition),
                        );
                    }
                    Fate::Held(delay) => {
                        self.stats.messages_held += 1;
                        self.held_until = self.held_until.max(self.now + delay);
                        self.queue
                            .push(self.now + delay, Event::Deliver { to, envelope });
                    }
                    Fate::Delivered(delays) => {
                        if delays.len() > 1 {
                            self.stats.messages_duplicated += 1;
                            self.trace(Actor::Node(id), TraceEvent::Duplicated(summary));
                        }
                        self.stats.long_delayed += delays
                            .iter()
                            .filter(|&&d| crate::network::is_long_delay(d))
                            .count() as u64;
                        let (last, extra) = delays.split_last().expect("at least one delivery");
                        for delay in extra {
                            let envelope = envelope.clone();
                            self.queue
                                .push(self.now + delay, Event::Deliver { to, envelope });
                        }
                        self.queue
                            .push(self.now + last, Event::Deliver { to, envelope });
                    }
                }
            }
            Effect::Write(write) => self.issue_write(node, write),
            Effect::AdminReply(reply) => self.admin_reply = Some(reply),
            Effect::Reply(reply) => {
                let (client, _, _) = split_req_id(reply.req_id);
                if let Some(replica) = self.nodes[node].replica.as_ref() {
                    let raft = replica.raft();
                    let how = match (&reply.result, self.answering == Some(reply.req_id)) {
                        (Ok(kv::Output::Value(_)), true) => ServedHow::AtOnce,
                        (Ok(kv::Output::Value(_)), false) => ServedHow::ReadIndexRound,
                        _ => ServedHow::Log,
                    };
                    let served = Served {
                        node: id,
                        role: match raft.role() {
                            raft::Role::Leader => "leader",
                            raft::Role::Candidate => "candidate",
                            raft::Role::PreCandidate => "pre-candidate",
                            raft::Role::Follower => "follower",
                        },
                        term: raft.term().0,
                        commit: raft.commit_index().0,
                        applied: raft.applied_index().0,
                        how,
                        clock_drift_ppm: self
                            .params
                            .clock_drift_ppm
                            .get(node)
                            .copied()
                            .unwrap_or(0),
                        fastest_other_ppm: (0..self.nodes.len())
                            .filter(|&n| n != node && self.nodes[n].replica.is_some())
                            .map(|n| self.params.clock_drift_ppm.get(n).copied().unwrap_or(0))
                            .max()
                            .unwrap_or(0),
                    };
                    self.replied.insert(reply.req_id, served);
                }
                if client < self.clients.len() {
                    let at = self.now + self.net.latency();
                    self.queue.push(at, Event::Reply { client, reply });
                }
            }
            Effect::Event(ReplicaEvent::SoftState(soft)) => {
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Role {
                        role: soft.role,
                        term: soft.term,
                        leader: soft.leader.map(|l| l.0),
                    },
                );
                self.invariants.soft_state(self.now, id, soft);
                if soft.role == raft::Role::Leader
                    && self.healed_at.is_some()
                    && self.leader_after_heal.is_none()
                {
                    self.leader_after_heal = Some(self.now);
                    self.term_after_heal = Some(soft.term);
                }
                if soft.role == raft::Role::Leader
                    && let Some(replica) = &self.nodes[node].replica
                {
                    let raft = replica.raft();
                    self.invariants.leader_is_voter(
                        self.now,
                        id,
                        soft.term,
                        raft.is_promotable(),
                        raft.membership(),
                    );
                }
                if soft.role == raft::Role::Leader {
                    if self.nodes[node].leading != Some(soft.term.0) {
                        self.stop_leading(node);
                        self.nodes[node].leading = Some(soft.term.0);
                        self.mark(TimelineEvent::Leader {
                            node: id,
                            term: soft.term.0,
                        });
                    }
                } else {
                    self.stop_leading(node);
                }
            }
            Effect::Event(ReplicaEvent::Persisted {
                hard_state,
                entries,
            }) => {
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Persisted {
                        term: hard_state.map(|h| h.term),
                        vote: hard_state.and_then(|h| h.vote.map(|v| v.0)),
                        first: entries.first().map(|e| e.index),
                        last: entries.last().map(|e| e.index),
                    },
                );
                if let Some(hs) = hard_state {
                    self.invariants.persisted_hard_state(id, hs);
                }
                self.invariants.persisted(self.now, id, &entries);
            }
            Effect::Event(ReplicaEvent::Recovered {
                hard_state,
                snapshot,
                entries,
                truncated_tail_bytes,
            }) => {
                if truncated_tail_bytes > 0 {
                    self.trace(
                        Actor::Node(id),
                        TraceEvent::Fault(format!(
                            "recovery cut a torn tail of {truncated_tail_bytes} bytes"
                        )),
                    );
                }
                if snapshot.is_some() {
                    self.stats.recoveries_from_snapshot += 1;
                    self.stats.recoveries_from_snapshot_only += u64::from(entries.is_empty());
                }
                self.invariants
                    .recovered(self.now, id, hard_state, snapshot, &entries);
            }
            Effect::Event(ReplicaEvent::SnapshotTaken {
                snapshot,
                log_entries,
            }) => {
                self.stats.snapshots_taken += 1;
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Snapshot {
                        installed: false,
                        index: snapshot.index,
                        term: snapshot.term,
                        log_entries,
                    },
                );
                self.invariants.snapshot_taken(self.now, id, snapshot);
            }
            Effect::Event(ReplicaEvent::SnapshotInstalled {
                snapshot,
                log_entries,
            }) => {
                self.stats.snapshots_installed += 1;
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Snapshot {
                        installed: true,
                        index: snapshot.index,
                        term: snapshot.term,
                        log_entries,
                    },
                );
                self.invariants.snapshot_installed(self.now, id, snapshot);
            }
            Effect::Event(ReplicaEvent::LeaseReadConfirmed { term, index }) => {
                let within = self.lease_within_drift_bound();
                self.stats.lease_reads += 1;
                self.invariants
                    .lease_read(self.now, id, term, index, within);
            }
            Effect::Event(ReplicaEvent::StateMachineReplaced { snapshot }) => {
                self.invariants
                    .state_machine_replaced(self.now, id, snapshot);
            }
            Effect::Event(ReplicaEvent::Applied(entry)) => {
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Applied {
                        index: entry.index,
                        term: entry.term,
                    },
                );
                self.invariants.applied(self.now, id, entry);
            }
            Effect::Event(ReplicaEvent::MembershipApplied { index, membership }) => {
                self.membership_applied(id, index, membership);
            }
            Effect::Event(ReplicaEvent::Refused(why)) => {
                self.trace(Actor::Node(id), TraceEvent::Refused(why.to_string()));
            }
        }
    }
}
