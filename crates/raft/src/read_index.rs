//! Linearizable reads without writing to the log: ReadIndex (dissertation
//! §6.4).
//!
//! 1. The leader must have committed an entry of its current term, so that its
//!    commit index is at least that of any earlier leader; reads arriving
//!    before that wait.
//! 2. It records its commit index as the read's index.
//! 3. It confirms it is still the leader: it starts a *round*, and every
//!    AppendEntries sent from then on carries the round number; once a
//!    majority (itself included) has answered in the leader's term with that
//!    round or a later one, no other leader can have existed at the time the
//!    read was recorded.
//! 4. The read is served once the state machine has applied its index (the
//!    driver's job, from the `ReadState`).
//!
//! # Lease-based reads (opt-in, dissertation §6.4.1)
//!
//! With `Config::lease_read_ticks` set, a leader answers a read at once,
//! without a round, while its lease holds. Every heartbeat starts a round;
//! when a quorum has answered round `r`, the leader knows that each of those
//! followers heard from it after the tick `t(r)` at which `r` was first
//! sent, so none of them will vote for another candidate until its own
//! clock has advanced `election_tick` ticks past then (§4.2.3, the lease
//! every follower honours with check-quorum). A new leader needs one of
//! their votes, so none can exist before `t(r) + election_tick` on the
//! followers' clocks. The leader's lease runs until `t(r) + lease_read_ticks`
//! on its own clock.
//!
//! **The drift bound.** That is safe as long as no voter's clock runs faster
//! than the leader's by more than a factor `election_tick /
//! lease_read_ticks` (for 15 and 12: 25%), since a fast follower's
//! `election_tick` then still outlasts the leader's `lease_read_ticks`.
//! Clock jumps count as drift. Beyond the bound an old leader can serve a
//! stale read; the simulator's clock-skew scenario shows the checker
//! catching exactly that. ReadIndex alone, the default, is clock-free.

use crate::errors::ReadIndexError;
use crate::raft::Raft;
use crate::types::{LogIndex, NodeId, ReadState, Role};
use std::collections::{BTreeMap, VecDeque};

/// A read with its index, waiting for its round to be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PendingRead {
    ctx: u64,
    index: LogIndex,
    round: u64,
}

/// The leader's reads in flight. Cleared whenever the node stops being leader
/// or starts a new term as leader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ReadOnly {
    /// The latest round started in this term. Invariant: every pending read's
    /// round is `<= round`.
    round: u64,
    /// Whether `round` has not yet been carried by any message. Only then may
    /// a new read join it: an answer confirms only what was registered before
    /// its request was sent.
    round_open: bool,
    /// The highest round carried by a heartbeat to every peer. Invariant:
    /// `broadcast_round <= round`.
    broadcast_round: u64,
    /// The highest round each peer has answered in this term.
    acks: BTreeMap<NodeId, u64>,
    /// Reads waiting for the first commit of the leader's term.
    waiting: VecDeque<u64>,
    /// Reads with an index, waiting for confirmation. Invariant: rounds are
    /// non-decreasing from front to back.
    pending: VecDeque<PendingRead>,
    /// Lease reads: the tick each round was first sent at, for the last
    /// round a quorum confirmed and every round after it. Invariant: no key
    /// is below the last confirmed round (kept so that a message sent later
    /// in that round cannot record a later first send).
    round_ticks: BTreeMap<u64, u64>,
    /// Lease reads: the tick (on the leader's clock) before which the
    /// lease holds. 0: no lease.
    lease_until: u64,
}

impl ReadOnly {
    /// Drops every read and starts over (new leadership, or leadership lost).
    pub fn clear(&mut self) {
        *self = ReadOnly::default();
    }

    /// Whether no read is held.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.pending.is_empty()
    }

    /// How many reads are held.
    pub fn len(&self) -> usize {
        self.waiting.len() + self.pending.len()
    }

    /// Whether a round with reads waits for its heartbeats to be sent.
    pub fn heartbeat_due(&self) -> bool {
        self.pending
            .back()
            .is_some_and(|r| r.round > self.broadcast_round)
    }

    /// Records that the current round went out to every peer.
    pub fn round_broadcast(&mut self) {
        self.round_open = false;
        self.broadcast_round = self.round;
    }

    /// The round that reads registered now belong to.
    fn start_round(&mut self) -> u64 {
        if !self.round_open {
            self.round += 1;
            self.round_open = true;
        }
        self.round
    }

    /// The round a message sent now (at tick `now`) carries; the round is
    /// sealed, so later reads start a new one.
    pub fn round_for_send(&mut self, now: u64) -> u64 {
        self.round_open = false;
        if self.round > 0 {
            self.round_ticks.entry(self.round).or_insert(now);
        }
        self.round
    }

    /// Starts a round for the lease (a heartbeat is about to go out).
    pub fn start_lease_round(&mut self) {
        self.start_round();
    }
}

impl Raft {
    /// Registers a linearizable read identified by `ctx`.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadIndexError> {
        if self.role != Role::Leader {
            return Err(ReadIndexError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads.len() >= self.cfg.max_pending_reads {
            return Err(ReadIndexError::TooManyPending {
                max: self.cfg.max_pending_reads,
            });
        }
        if !self.committed_in_current_term() {
            // §6.4 step 1: wait for the no-op of this term to commit.
            self.reads.waiting.push_back(ctx);
            return Ok(());
        }
        if self.lease_holds() {
            // §6.4.1: within the lease no other leader can exist.
            self.read_states.push(ReadState {
                ctx,
                index: self.log.committed(),
                lease: true,
            });
            return Ok(());
        }
        let round = self.reads.start_round();
        self.reads.pending.push_back(PendingRead {
            ctx,
            index: self.log.committed(),
            round,
        });
        // A single voter is its own majority.
        self.confirm_reads();
        Ok(())
    }

    /// Whether the commit index covers an entry of the current term (terms
    /// are non-decreasing along the log, so checking the committed entry
    /// suffices).
    fn committed_in_current_term(&self) -> bool {
        self.log.term_at(self.log.committed()) == Some(self.term)
    }

    /// Moves waiting reads into a round once the leader's term has a
    /// committed entry.
    pub(crate) fn release_waiting_reads(&mut self) {
        if self.reads.waiting.is_empty() || !self.committed_in_current_term() {
            return;
        }
        let round = self.reads.start_round();
        let index = self.log.committed();
        while let Some(ctx) = self.reads.waiting.pop_front() {
            self.reads
                .pending
                .push_back(PendingRead { ctx, index, round });
        }
        self.confirm_reads();
    }

    /// Whether a lease read may be answered now: lease reads on, the lease
    /// not expired, and no leadership transfer under way (the target may
    /// win an election inside our lease: TimeoutNow bypasses it).
    pub(crate) fn lease_holds(&self) -> bool {
        self.cfg.lease_read_ticks > 0
            && self.role == Role::Leader
            && self.lead_transferee.is_none()
            && self.now_tick < self.reads.lease_until
    }

    /// Records that `from` answered a message of round `round` in our term.
    pub(crate) fn ack_read_round(&mut self, from: NodeId, round: u64) {
        // A round we never started cannot have been answered.
        let round = round.min(self.reads.round);
        let ack = self.reads.acks.entry(from).or_insert(0);
        *ack = (*ack).max(round);
        // Every answer re-counts, not only one that raises a round: the
        // quorum may have changed since the rounds were answered (§4.3, a
        // joint configuration left), and rounds already answered may now be
        // a quorum of the new one (§6.4).
        self.confirm_reads();
        self.extend_lease();
    }

    /// The highest round a quorum (this node included, at the current
    /// round) has answered.
    fn confirmed_round(&self) -> u64 {
        let me = self.id;
        let (current, acks) = (self.reads.round, &self.reads.acks);
        self.tracker.config().quorum_value(|id| {
            if id == me {
                current
            } else {
                acks.get(&id).copied().unwrap_or(0)
            }
        })
    }

    /// Lease reads: a quorum confirmed a round; the lease runs from when
    /// that round was first sent.
    fn extend_lease(&mut self) {
        if self.cfg.lease_read_ticks == 0 {
            return;
        }
        let confirmed = self.confirmed_round();
        let sent = self.reads.round_ticks.range(..=confirmed).next_back();
        if let Some((_, &sent)) = sent {
            let until = sent + u64::from(self.cfg.lease_read_ticks);
            self.reads.lease_until = self.reads.lease_until.max(until);
        }
        // Older rounds can no longer extend anything. The confirmed round
        // itself is kept: messages sent later in the same round (a
        // proposal's appends before the next heartbeat opens a round) must
        // not record a later first send, or a late answer to its first
        // message would date the lease from after that message (§6.4.1).
        self.reads.round_ticks = self.reads.round_ticks.split_off(&confirmed);
    }

    /// Hands out every read whose round a quorum has confirmed.
    fn confirm_reads(&mut self) {
        if self.reads.pending.is_empty() {
            return;
        }
        let confirmed = self.confirmed_round();
        while let Some(read) = self.reads.pending.front().copied() {
            if read.round > confirmed {
                break;
            }
            self.reads.pending.pop_front();
            self.read_states.push(ReadState {
                ctx: read.ctx,
                index: read.index,
                lease: false,
            });
        }
    }
}
