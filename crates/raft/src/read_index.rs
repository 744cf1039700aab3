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

use crate::errors::ReadIndexError;
use crate::raft::Raft;
use crate::types::{LogIndex, NodeId, ReadState, Role};
use std::collections::{BTreeMap, VecDeque};

/// A read with its index, waiting for its round to be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRead {
    ctx: u64,
    index: LogIndex,
    round: u64,
}

/// The leader's reads in flight. Cleared whenever the node stops being leader
/// or starts a new term as leader.
#[derive(Clone, Debug, Default)]
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

    /// The round a message sent now carries; the round is sealed, so later
    /// reads start a new one.
    pub fn round_for_send(&mut self) -> u64 {
        self.round_open = false;
        self.round
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

    /// Records that `from` answered a message of round `round` in our term.
    pub(crate) fn ack_read_round(&mut self, from: NodeId, round: u64) {
        // A round we never started cannot have been answered.
        let round = round.min(self.reads.round);
        let ack = self.reads.acks.entry(from).or_insert(0);
        if round > *ack {
            *ack = round;
            self.confirm_reads();
        }
    }

    /// Hands out every read whose round a quorum has confirmed.
    fn confirm_reads(&mut self) {
        if self.reads.pending.is_empty() {
            return;
        }
        let me = self.id;
        let (current, acks) = (self.reads.round, &self.reads.acks);
        let confirmed = self.tracker.config().quorum_value(|id| {
            if id == me {
                current
            } else {
                acks.get(&id).copied().unwrap_or(0)
            }
        });
        while let Some(read) = self.reads.pending.front().copied() {
            if read.round > confirmed {
                break;
            }
            self.reads.pending.pop_front();
            self.read_states.push(ReadState {
                ctx: read.ctx,
                index: read.index,
            });
        }
    }
}
