//! The clients: Jepsen-style processes, one operation at a time, retrying
//! with the same session and sequence number, recording what they saw in the
//! history (an outcome is unknown only when some attempt may have been
//! proposed and none was answered).

use super::{
    Event, InFlight, LIVENESS_BACKOFF, LIVENESS_BOUND, MAX_ATTEMPTS, OP_ID_MASK, RETRY_BACKOFF,
    World, make_req_id, split_req_id,
};
use crate::queue::{MS, Nanos};
use crate::trace::{Actor, TraceEvent};
use crate::workload::{describe, to_call, to_ret};
use check::Record;
use kv::KvError;
use replica::{ClientReply, ClientRequest, ReplyError};

impl World {
    pub(super) fn client_next(&mut self, client: usize) {
        if self.chaos_over {
            self.clients[client].done = true;
            return;
        }
        let process = client as u64;
        let op = self.workload.next_op(process);
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        let slot = &mut self.clients[client];
        let seq = if op.is_write() {
            slot.last_seq += 1;
            slot.last_seq
        } else {
            slot.last_seq
        };
        self.history.push(Record::Invoke {
            id: op_id,
            process,
            time_ns: self.now,
            call: to_call(&op),
        });
        self.trace(
            Actor::Client(process),
            TraceEvent::Invoke {
                op: op_id,
                call: describe(&op),
            },
        );
        self.clients[client].current = Some(InFlight {
            op_id,
            op,
            seq,
            invoked: self.now,
            attempt: 0,
            outstanding: false,
            maybe_applied: false,
        });
        self.send_attempt(client);
    }

    pub(super) fn send_attempt(&mut self, client: usize) {
        let slot = &mut self.clients[client];
        let node = slot.leader_guess;
        let session = slot.session;
        let op = slot.current.as_mut().expect("an operation is in flight");
        op.attempt += 1;
        op.outstanding = true;
        let (op_id, attempt) = (op.op_id, op.attempt);
        let request = ClientRequest {
            req_id: make_req_id(client, op_id, attempt),
            client: session,
            seq: op.seq,
            op: op.op.clone(),
        };
        self.trace(
            Actor::Client(client as u64),
            TraceEvent::Attempt {
                op: op_id,
                attempt,
                node: node as u64 + 1,
            },
        );
        let at = self.now + self.net.latency();
        self.queue.push(at, Event::Request { node, request });
        let timeout = self.now + self.params.request_timeout_ms * MS;
        self.queue.push(
            timeout,
            Event::ClientTimeout {
                client,
                op_id,
                attempt,
            },
        );
    }

    pub(super) fn client_reply(&mut self, client: usize, reply: ClientReply) {
        let (_, op_id, attempt) = split_req_id(reply.req_id);
        let served = self.replied.remove(&reply.req_id);
        let Some(op) = self.clients[client].current.as_ref() else {
            return;
        };
        if op.op_id & OP_ID_MASK != op_id {
            return; // a late answer to an operation already finished
        }
        let (id, process, time_ns) = (op.op_id, client as u64, self.now);
        let latest_outstanding = attempt == op.attempt && op.outstanding;
        match reply.result {
            Ok(output) => {
                if let Some(served) = served {
                    self.served.insert(id, served);
                }
                let ret = to_ret(output);
                self.complete(
                    client,
                    Record::Ok {
                        id,
                        process,
                        time_ns,
                        ret,
                    },
                );
            }
            Err(ReplyError::Kv(
                e @ (KvError::SessionExpired { .. } | KvError::StaleSequence { .. }),
            )) => {
                // The session no longer knows this request: an earlier copy
                // of it may have been applied before the session went.
                let reason = format!("{e}");
                self.complete(
                    client,
                    Record::Info {
                        id,
                        process,
                        time_ns,
                        reason,
                    },
                );
            }
            Err(ReplyError::Kv(e)) => {
                // The state machine refused this (client, seq) and cached the
                // refusal, so every attempt of it got the same answer.
                let error = format!("{e}");
                self.complete(
                    client,
                    Record::Fail {
                        id,
                        process,
                        time_ns,
                        error,
                    },
                );
            }
            Err(ReplyError::LeadershipLost) => {
                // Indefinite: the entry may still commit. Like a timeout,
                // the client retries with the same sequence number, which
                // the session table applies at most once (§6.3).
                if !latest_outstanding {
                    return;
                }
                let slot = &mut self.clients[client];
                let op = slot.current.as_mut().expect("checked");
                op.outstanding = false;
                op.maybe_applied = true;
                slot.leader_guess = (slot.leader_guess + 1) % self.nodes.len();
                self.trace(
                    Actor::Client(client as u64),
                    TraceEvent::Rejected {
                        op: id,
                        attempt,
                        why: ReplyError::LeadershipLost.to_string(),
                    },
                );
                self.retry_or_give_up(client, RETRY_BACKOFF);
            }
            Err(ReplyError::Superseded) => {
                // Another attempt of this write now waits on its entry and
                // gets the outcome; this one keeps waiting, as if unanswered
                // (an older attempt that arrived late may have superseded
                // the latest one: its timeout still stands).
            }
            Err(e) => {
                debug_assert!(e.is_definite());
                if !latest_outstanding {
                    return; // a stale rejection: a newer attempt is in flight
                }
                let op_id = id;
                self.trace(
                    Actor::Client(client as u64),
                    TraceEvent::Rejected {
                        op: op_id,
                        attempt,
                        why: e.to_string(),
                    },
                );
                let slot = &mut self.clients[client];
                slot.leader_guess = match e {
                    ReplyError::NotLeader { leader: Some(l) }
                        if l.0 >= 1 && (l.0 as usize) <= self.nodes.len() =>
                    {
                        l.0 as usize - 1
                    }
                    _ => (slot.leader_guess + 1) % self.nodes.len(),
                };
                slot.current.as_mut().expect("checked").outstanding = false;
                self.retry_or_give_up(client, RETRY_BACKOFF);
            }
        }
    }

    pub(super) fn client_timeout(&mut self, client: usize, op_id: u64, attempt: u32) {
        let slot = &mut self.clients[client];
        let Some(op) = slot.current.as_mut() else {
            return;
        };
        if op.op_id != op_id || op.attempt != attempt || !op.outstanding {
            return;
        }
        op.outstanding = false;
        // The request may have reached a leader and been proposed.
        op.maybe_applied |= op.op.is_write();
        slot.leader_guess = (slot.leader_guess + 1) % self.nodes.len();
        self.trace(
            Actor::Client(client as u64),
            TraceEvent::TimedOut { op: op_id, attempt },
        );
        self.retry_or_give_up(client, (0, 0));
    }

    pub(super) fn retry_or_give_up(&mut self, client: usize, backoff: (Nanos, Nanos)) {
        let op = self.clients[client].current.as_ref().expect("in flight");
        let elapsed = self.now - op.invoked;
        // Once the cluster is healed, a client waits out the liveness bound
        // rather than its own deadline: giving up would hide a stuck cluster.
        let (out_of_time, backoff) = match self.healed_at {
            Some(healed) if self.config.liveness => {
                // A longer bound (a slow catch-up allowed for) spaces the
                // attempts out by as much, so they still span it.
                let stretch = |pause: Nanos| pause * self.liveness_bound / LIVENESS_BOUND;
                let (lo, hi) = LIVENESS_BACKOFF;
                (
                    self.now >= healed + self.liveness_bound,
                    (stretch(lo), stretch(hi)),
                )
            }
            _ => (elapsed >= self.params.op_deadline_ms * MS, backoff),
        };
        if out_of_time || op.attempt >= MAX_ATTEMPTS {
            if let Some(healed) = self.healed_at
                && self.config.liveness
            {
                self.liveness.push(format!(
                    "client {client}'s op {} ({}) gave up {}ms after the heal (bound {}ms)",
                    op.op_id,
                    describe(&op.op),
                    (self.now - healed) / MS,
                    self.liveness_bound / MS
                ));
            }
            self.give_up(client, "gave up after retries");
            return;
        }
        let (op_id, attempt) = (op.op_id, op.attempt);
        let delay = self.workload_rng.range(backoff.0, backoff.1 + 1);
        self.queue.push(
            self.now + delay,
            Event::ClientRetry {
                client,
                op_id,
                attempt,
            },
        );
    }

    /// Ends the operation without a result: unknown if any attempt may have
    /// been proposed, failed otherwise. Never guessed.
    pub(super) fn give_up(&mut self, client: usize, why: &str) {
        let op = self.clients[client].current.as_ref().expect("in flight");
        let (id, process, time_ns) = (op.op_id, client as u64, self.now);
        let record = if op.maybe_applied {
            Record::Info {
                id,
                process,
                time_ns,
                reason: why.to_string(),
            }
        } else {
            Record::Fail {
                id,
                process,
                time_ns,
                error: why.to_string(),
            }
        };
        self.complete(client, record);
    }

    pub(super) fn complete(&mut self, client: usize, record: Record) {
        let (op, outcome) = match &record {
            Record::Ok { id, ret, .. } => {
                self.stats.ops_ok += 1;
                (*id, format!("ok {ret:?}"))
            }
            Record::Fail { id, error, .. } => {
                self.stats.ops_failed += 1;
                (*id, format!("fail: {error}"))
            }
            Record::Info { id, reason, .. } => {
                self.stats.ops_unknown += 1;
                (*id, format!("unknown: {reason}"))
            }
            Record::Invoke { .. } => unreachable!("completions only"),
        };
        self.trace(
            Actor::Client(client as u64),
            TraceEvent::Complete { op, outcome },
        );
        self.history.push(record);
        self.clients[client].current = None;
        let think = self
            .workload_rng
            .range(0, self.params.think_max_ms * MS + 1);
        self.queue
            .push(self.now + think, Event::ClientNext { client });
    }

    pub(super) fn abandon_pending_ops(&mut self) {
        for client in 0..self.clients.len() {
            if let Some(op) = self.clients[client].current.as_mut() {
                // An attempt still outstanding may yet be proposed.
                op.maybe_applied |= op.outstanding && op.op.is_write();
                self.give_up(client, "run ended");
            }
        }
    }
}
