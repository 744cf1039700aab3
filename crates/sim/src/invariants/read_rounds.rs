//! Read rounds (dissertation §6.4): a leader's read is confirmed by a
//! quorum's answers to a heartbeat it sent after the read arrived, in its
//! own term. Rounds number those heartbeats: every AppendEntries (heartbeat
//! or not) a leader sends carries its current `read_round`, rounds restart
//! at 0 in every term a node leads, and an answer echoes the round of the
//! request it answers. So an answer in term T carrying round r > 0 to node
//! L must answer a message L sent to that node in T with round r or more;
//! one carrying a round L never sent it in T confirms a round it does not
//! answer (seed 236: an answer to a held term-15 append, sent in term 16
//! with the term-15 round 581, confirmed the re-elected leader's term-16
//! round 152 and it served a stale read).
//!
//! Checked from the messages seen leaving each node: a leader's
//! AppendEntries records the highest round it sent to each peer in its
//! latest term; an AppendEntriesResponse with a round above that for its
//! (term, leader, sender) is a violation. Only AppendEntries and its answer
//! carry a round (InstallSnapshot and votes carry none). Answers addressed
//! to a leadership older than the latest one seen of that node are not
//! checked (forgotten; the leader drops answers of an older term anyway).

use super::{Invariants, ViolationKind};
use crate::queue::Nanos;
use raft::{Message, MessageBody, NodeId, Term};
use std::collections::BTreeMap;

/// The read rounds one node sent as leader of its latest term seen.
#[derive(Clone, Debug, Default)]
pub(super) struct SentRounds {
    /// The latest term the node was seen to send AppendEntries in (it led
    /// that term). Rounds of older terms are forgotten once it sends in a
    /// newer one, so memory stays bounded by nodes × peers.
    pub(super) term: Term,
    /// The highest `read_round` the node sent in `term` to each peer, in an
    /// AppendEntries or heartbeat. Invariant (§6.4: a read is confirmed by
    /// answers to the leader's own heartbeats of its own term): every
    /// AppendEntriesResponse that leaves a peer for this node in `term`
    /// carries a round of at most this (0 if nothing was sent to it). A
    /// leader's round never decreases within a term, so the highest round
    /// sent bounds every round a true answer can echo.
    sent: BTreeMap<NodeId, u64>,
}

impl Invariants {
    /// Records the read round of an AppendEntries leaving `msg.from`, and
    /// checks the one an AppendEntriesResponse leaving it echoes.
    pub(super) fn read_round_observed(&mut self, at: Nanos, node: u64, msg: &Message) {
        match msg.body {
            MessageBody::AppendEntries { read_round, .. } => {
                let rounds = self.read_rounds.entry(msg.from).or_default();
                if msg.term < rounds.term {
                    // Held and sent after a newer leadership began: its
                    // answers are to a forgotten term, not checked.
                    return;
                }
                if msg.term > rounds.term {
                    *rounds = SentRounds {
                        term: msg.term,
                        sent: BTreeMap::new(),
                    };
                }
                let sent = rounds.sent.entry(msg.to).or_insert(0);
                *sent = (*sent).max(read_round);
            }
            MessageBody::AppendEntriesResponse { read_round, .. } if read_round > 0 => {
                let sent = match self.read_rounds.get(&msg.to) {
                    Some(rounds) if rounds.term > msg.term => return,
                    Some(rounds) if rounds.term == msg.term => {
                        rounds.sent.get(&msg.from).copied().unwrap_or(0)
                    }
                    _ => 0,
                };
                if read_round > sent {
                    self.violate(
                        ViolationKind::ReadRounds,
                        at,
                        node,
                        format!(
                            "read round {read_round} answered in {} but n{} sent at most round {sent} to n{} in {} (§6.4: only an answer to the leader's own message of its term confirms a round)",
                            msg.term, msg.to.0, msg.from.0, msg.term
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}
