//! The protocol state of one node and the dispatch of its inputs: term
//! handling (§5.1), role changes, timers. The rules of each sub-protocol live
//! beside it: `election` (§5.2, §5.4.1, §9.6), `replication` (§5.3, §5.4.2),
//! `read_index` (dissertation §6.4).

use crate::config::Config;
use crate::errors::StepError;
use crate::log::RaftLog;
use crate::read_index::ReadOnly;
use crate::tracker::ProgressTracker;
use crate::types::{
    Entry, HardState, LogIndex, Message, MessageBody, NodeId, ReadState, Role, SoftState, Term,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The most entries one AppendEntries may carry, whatever the sender's
/// configuration; beyond this the message is refused as malformed.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1 << 16;
/// The most messages held for sending between two `ready()` calls, per kind
/// (immediate and after-persistence). Beyond this, new messages are dropped:
/// Raft tolerates lost messages, and a driver that never calls `ready()` must
/// not make the node grow without bound.
pub const MAX_OUTBOX_MESSAGES: usize = 1 << 16;

/// One node's protocol state.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Raft {
    /// This node.
    pub id: NodeId,
    /// The validated configuration.
    pub cfg: Config,
    /// The current term (§5.1). Invariant: never decreases.
    pub term: Term,
    /// The vote cast in `term` (§5.2). Invariant: at most one per term; it
    /// only changes from `None` to `Some` within a term.
    pub vote: Option<NodeId>,
    /// The role played now.
    pub role: Role,
    /// The leader known for `term`. Invariant: `role == Leader` implies
    /// `leader == Some(id)`.
    pub leader: Option<NodeId>,
    /// The log and its progress marks.
    pub log: RaftLog,
    /// Per-voter replication progress (leader) and election votes.
    pub tracker: ProgressTracker,
    /// Ticks since the last reset. For followers and candidates: since the
    /// leader or a granted vote was last heard; for a leader: since the last
    /// check-quorum.
    pub election_elapsed: u32,
    /// Leader only: ticks since the last heartbeat broadcast.
    pub heartbeat_elapsed: u32,
    /// The election timeout in force. Invariant: in `[election_tick,
    /// 2 * election_tick)` (§5.2 randomized timeouts).
    pub randomized_election_timeout: u32,
    /// The deterministic source of election jitter.
    pub(crate) rng: ElectionRng,
    /// Leader only: reads being confirmed.
    pub reads: ReadOnly,
    /// Messages that may be sent at once. Invariant: `len() <=
    /// MAX_OUTBOX_MESSAGES`.
    pub msgs: Vec<Message>,
    /// Messages that may leave only after the pending hard state and entries
    /// are durable. Invariant: `len() <= MAX_OUTBOX_MESSAGES`.
    pub persisted_msgs: Vec<Message>,
    /// Reads confirmed and not yet handed out. Bounded by
    /// `max_pending_reads`, since each comes from a pending read.
    pub read_states: Vec<ReadState>,
    /// Leader only: entries were proposed since appends were last broadcast.
    /// Appends are sent when `ready()` is called, so proposals between two
    /// readies share messages.
    pub broadcast_due: bool,
    /// Messages dropped because an outbox was full (for diagnostics).
    pub dropped_messages: u64,
    /// Follower: a snapshot being received chunk by chunk (§7). Invariant:
    /// its data is at most `MAX_SNAPSHOT_BYTES`, and its index is above the
    /// commit index when it was last extended.
    pub incoming_snapshot: Option<crate::snapshot::IncomingSnapshot>,
    /// The (index, term) of the configuration entry the tracker follows
    /// ((0, 0) for the founding configuration, the snapshot's for one that
    /// came with a snapshot). Invariant: the tracker follows the log's
    /// configuration after every call into the node.
    pub membership_key: (LogIndex, Term),
    /// Leader only: the voter leadership is being handed to (§3.10).
    /// Invariant: `None` unless leader.
    pub lead_transferee: Option<NodeId>,
    /// Ticks since the transfer started.
    pub transfer_elapsed: u32,
    /// Whether TimeoutNow was sent for the transfer under way.
    pub transfer_sent: bool,
    /// Candidate: this election was started by TimeoutNow, so its vote
    /// requests carry `transfer` (voters answer within a lease).
    pub campaign_transfer: bool,
    /// Ticks since this node started: its own clock, for lease reads.
    pub now_tick: u64,
    /// Whether the current term (and this node's vote in it) is known
    /// durable. A candidate's vote requests leave only after its term is
    /// persisted, so any vote answer proves it; a candidate that wins on
    /// its own vote alone (the only voter, with learners to replicate to)
    /// has sent nothing, and until its first entry of the term is persisted
    /// its messages wait for persistence too. Otherwise a crash could take
    /// the term back, the node could lead the same term again, and two
    /// different entries of one (index, term) would exist (Log Matching,
    /// §5.3). Found by the randomized test with membership changes.
    pub term_durable: bool,
}

/// The election-jitter RNG, hashable so that a model checker can search
/// raft states. Hashed by what determines every future draw (seed, stream,
/// word position): two generators equal there draw the same numbers, so
/// states that hash alike behave alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ElectionRng(ChaCha8Rng);

impl std::hash::Hash for ElectionRng {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.get_seed().hash(state);
        self.0.get_stream().hash(state);
        self.0.get_word_pos().hash(state);
    }
}

/// Mixes a node id into a seed (splitmix64), so that nodes sharing one seed
/// draw different election timeouts.
fn mix_seed(seed: u64, id: NodeId) -> u64 {
    stablehash::mix64(seed ^ id.0.wrapping_mul(stablehash::GOLDEN_GAMMA))
}

impl Raft {
    /// A node with the given durable state. `cfg` is valid and the log
    /// consistent with `hard_state` (the caller checked).
    pub fn new(cfg: Config, hard_state: HardState, log: RaftLog) -> Raft {
        let tracker = ProgressTracker::new(log.membership(), cfg.max_inflight_appends);
        let membership_index = log.membership_index();
        let membership_key = (
            membership_index,
            log.term_at(membership_index).unwrap_or(Term(0)),
        );
        let rng = ElectionRng(ChaCha8Rng::seed_from_u64(mix_seed(cfg.seed, cfg.id)));
        let mut raft = Raft {
            id: cfg.id,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            tracker,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: cfg.election_tick,
            rng,
            reads: ReadOnly::default(),
            msgs: Vec::new(),
            persisted_msgs: Vec::new(),
            read_states: Vec::new(),
            broadcast_due: false,
            dropped_messages: 0,
            incoming_snapshot: None,
            membership_key,
            lead_transferee: None,
            transfer_elapsed: 0,
            transfer_sent: false,
            campaign_transfer: false,
            now_tick: 0,
            term_durable: true,
            cfg,
        };
        raft.reset_timers();
        raft.check_invariants();
        raft
    }

    /// The volatile state observers track.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            term: self.term,
            leader: self.leader,
        }
    }

    /// The state that must be durable before responses leave.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// Whether this node may campaign: a voter of the configuration in
    /// force, or of the one before it while the latest is not known
    /// committed. The second case is a leader that appended a C_new without
    /// itself and lost leadership before C_new committed: its log may be
    /// the only one holding C_new, so the others cannot win without its
    /// vote, which it refuses them (§5.4.1); it must be able to lead again,
    /// as §4.2.2's leader that is not in C_new does, until C_new commits.
    /// Votes are still counted with the configuration in force (its own
    /// vote does not count where it is not a voter).
    pub fn is_promotable(&self) -> bool {
        if self.tracker.config().contains(self.id) {
            return true;
        }
        let index = self.log.membership_index();
        index > self.log.committed() && self.log.membership_at(index.prev()).is_voter(self.id)
    }

    /// §4.2.3 (leases) and §9.6: whether this node heard from a current
    /// leader within the minimum election timeout. A leader is always in its
    /// own lease; with check-quorum it steps down when the lease is gone,
    /// without it only a higher term (an append or an answer) deposes it.
    pub fn in_lease(&self) -> bool {
        match self.role {
            Role::Leader => true,
            _ => self.leader.is_some() && self.election_elapsed < self.cfg.election_tick,
        }
    }

    /// Restarts the timers and draws a new election timeout from
    /// `[election_tick, 2 * election_tick)` (§5.2: "election timeouts are
    /// chosen randomly from a fixed interval").
    pub fn reset_timers(&mut self) {
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        if self.cfg.external_election_timer {
            // The driver decides when the timeout fires (`RawNode::campaign`);
            // no draw, so the RNG never moves and adds nothing to the state.
            self.randomized_election_timeout = self.cfg.election_tick;
            return;
        }
        let base = u64::from(self.cfg.election_tick);
        let jitter = self.rng.0.next_u64() % base;
        // Fits: election_tick <= MAX_ELECTION_TICK, so 2 * election_tick < u32::MAX.
        self.randomized_election_timeout = (base + jitter) as u32;
    }

    /// Queues a message from this node in its current term.
    pub fn send(&mut self, to: NodeId, body: MessageBody) {
        let term = self.term;
        self.send_with_term(to, term, body);
    }

    /// Queues a message with an explicit term (pre-votes and their grants
    /// carry the term being campaigned for, not the current one).
    ///
    /// Routing: every response goes out only after persistence (Figure 2:
    /// respond after updating stable storage), and so does RequestVote: the
    /// candidate's own vote for itself must be durable before anyone can
    /// grant it the rest, or a crash could let it vote twice in one term.
    /// Everything else (pre-votes, AppendEntries: §10.2.1) leaves at once.
    pub fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        debug_assert_ne!(to, self.id, "never send to self");
        let after_persist = body.is_response()
            || matches!(body, MessageBody::RequestVote { .. })
            || !self.term_durable;
        let queue = if after_persist {
            &mut self.persisted_msgs
        } else {
            &mut self.msgs
        };
        if queue.len() >= MAX_OUTBOX_MESSAGES {
            self.dropped_messages += 1;
            return;
        }
        queue.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    /// A message only a leader sends arrived from `from` in our term: a
    /// candidate or pre-candidate returns to follower (§5.2: "if AppendEntries
    /// RPC received from new leader: convert to follower"); a leader refuses
    /// it, since Election Safety (§5.2) says a second leader of this term
    /// cannot exist.
    fn follow_leader_of_this_term(
        &mut self,
        from: NodeId,
        refusal: &'static str,
    ) -> Result<(), StepError> {
        match self.role {
            Role::Leader => Err(StepError::Malformed { reason: refusal }),
            Role::Follower => Ok(()),
            Role::PreCandidate | Role::Candidate => {
                let term = self.term;
                self.become_follower(term, Some(from));
                Ok(())
            }
        }
    }

    /// Becomes a follower in `term` (which is not below the current one),
    /// knowing `leader` if given.
    pub fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(term >= self.term, "terms never decrease (§5.1)");
        if term > self.term {
            // §5.1: a new term starts with no vote cast in it.
            self.term = term;
            self.vote = None;
            // A follower's messages are responses, which wait for
            // persistence anyway.
            self.term_durable = true;
        }
        if self.role == Role::Leader {
            // Dissertation §6.4: only a leader can confirm reads; the driver
            // sees the role change in the soft state and fails its waiters.
            self.reads.clear();
        }
        let was_follower = self.role == Role::Follower;
        self.role = Role::Follower;
        self.leader = leader;
        self.broadcast_due = false;
        self.lead_transferee = None;
        self.campaign_transfer = false;
        self.tracker.reset_votes();
        // Figure 2: a follower's election timer restarts only when it hears
        // from the leader or grants a vote, not when it merely learns a
        // higher term. Otherwise every failed candidacy would restart the
        // timers of the servers that refused it (those whose logs are ahead,
        // the only ones that can win), and elections could keep failing.
        if !was_follower {
            self.reset_timers();
        }
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        self.now_tick += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Followers and candidates: §5.2, "if election timeout elapses without
    /// receiving AppendEntries from the current leader or granting vote to
    /// candidate: convert to candidate".
    fn tick_election(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if !self.cfg.external_election_timer
            && self.is_promotable()
            && self.election_elapsed >= self.randomized_election_timeout
        {
            self.hup();
        }
    }

    fn tick_leader(&mut self) {
        self.tick_transfer();
        self.heartbeat_elapsed = self.heartbeat_elapsed.saturating_add(1);
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            // Dissertation §6.2: a leader that has not heard from a majority
            // within an election timeout steps down, so that clients find
            // the real leader and its lease (§4.2.3) is never stale.
            if self.cfg.check_quorum && !self.tracker.quorum_active_and_reset(self.id) {
                let term = self.term;
                self.become_follower(term, None);
                return;
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            self.heartbeat_timeout();
        }
    }

    /// Checks that a message could have come from a correct peer, before any
    /// state changes.
    fn validate(&self, m: &Message) -> Result<(), StepError> {
        if m.to != self.id {
            return Err(StepError::NotAddressedToMe { to: m.to });
        }
        if m.from == self.id {
            return Err(StepError::FromMyself);
        }
        // Messages from nodes outside our configuration are accepted: a
        // joining node hears from a leader it does not know yet, and a
        // removed node's requests are answered by the usual rules (pre-vote
        // and the lease keep it from disrupting anyone, §4.2.3).
        let malformed = |reason| Err(StepError::Malformed { reason });
        if m.term == Term(0) {
            return malformed("term 0 (no message is sent before term 1)");
        }
        match &m.body {
            MessageBody::PreVote { last_log_term, .. }
            | MessageBody::RequestVote { last_log_term, .. } => {
                if *last_log_term >= m.term {
                    return malformed("candidate's last log term is not below its term");
                }
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            } => {
                if entries.len() > MAX_ENTRIES_PER_MESSAGE {
                    return malformed("too many entries in one AppendEntries");
                }
                if *prev_log_term > m.term {
                    return malformed("prev_log_term above the leader's term");
                }
                if (prev_log_index.0 == 0) != (prev_log_term.0 == 0) {
                    return malformed("term 0 only at index 0");
                }
                let mut expected = prev_log_index.next();
                let mut previous_term = *prev_log_term;
                for e in entries {
                    if e.index != expected {
                        return malformed("entries not contiguous after prev_log_index");
                    }
                    if e.term.0 == 0 || e.term > m.term {
                        return malformed("entry term is 0 or above the leader's term");
                    }
                    if e.term < previous_term {
                        return malformed("entry terms decrease");
                    }
                    previous_term = e.term;
                    expected = expected.next();
                }
            }
            MessageBody::InstallSnapshot {
                index,
                snapshot_term,
                membership,
                offset,
                data,
                ..
            } => {
                if index.0 == 0 || snapshot_term.0 == 0 {
                    return malformed("snapshot at index 0 or of term 0");
                }
                if *snapshot_term > m.term {
                    return malformed("snapshot term above the leader's term");
                }
                if membership.voters.is_empty() {
                    return malformed("snapshot configuration without voters");
                }
                if let Err(reason) = membership.validate() {
                    return malformed(reason);
                }
                if data.len() > crate::config::MAX_SNAPSHOT_CHUNK_BYTES {
                    return malformed("snapshot chunk too large");
                }
                let end = offset.checked_add(data.len() as u64);
                if end.is_none_or(|end| end > crate::config::MAX_SNAPSHOT_BYTES) {
                    return malformed("snapshot larger than MAX_SNAPSHOT_BYTES");
                }
            }
            MessageBody::PreVoteResponse { .. }
            | MessageBody::RequestVoteResponse { .. }
            | MessageBody::AppendEntriesResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
            | MessageBody::TimeoutNow => {}
        }
        Ok(())
    }

    /// Handles one message.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        self.validate(&m)?;
        if m.term > self.term {
            match &m.body {
                MessageBody::PreVote { .. } => {
                    // §9.6: a pre-vote never changes the receiver's term. A
                    // node in a leader's lease does not even answer it.
                    if self.in_lease() {
                        return Ok(());
                    }
                }
                MessageBody::RequestVote { transfer, .. } => {
                    // §4.2.3: "if a server receives a RequestVote request
                    // within the minimum election timeout of hearing from a
                    // current leader, it does not update its term or grant
                    // its vote", unless the leader itself asked for the
                    // election by transferring leadership (§3.10). Applied
                    // with check-quorum off too (a leader then counts as in
                    // its own lease until a higher term deposes it): without
                    // it, and without pre-vote, a removed server's vote
                    // requests raise every member's term (drawn-config sim
                    // seeds 94 and 190).
                    if self.in_lease() && !transfer {
                        return Ok(());
                    }
                    self.become_follower(m.term, None);
                }
                // A granted pre-vote carries the term we would campaign in;
                // it is not a term anyone has entered.
                MessageBody::PreVoteResponse { granted: true } => {}
                MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(m.term, Some(m.from))
                }
                // §5.1: "if RPC request or response contains term T >
                // currentTerm: set currentTerm = T, convert to follower".
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            self.answer_stale(m);
            return Ok(());
        }

        let from = m.from;
        match m.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => self.handle_pre_vote(from, m.term, last_log_index, last_log_term),
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => self.handle_request_vote(from, last_log_index, last_log_term),
            MessageBody::TimeoutNow => {
                if self.role == Role::Follower && self.leader == Some(from) {
                    self.handle_timeout_now();
                }
            }
            MessageBody::PreVoteResponse { granted } => {
                self.handle_pre_vote_response(from, m.term, granted)
            }
            MessageBody::RequestVoteResponse { granted } => {
                self.handle_vote_response(from, granted)
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
            } => {
                self.follow_leader_of_this_term(
                    from,
                    "AppendEntries from a second leader of this term",
                )?;
                return self.handle_append_entries(
                    from,
                    prev_log_index,
                    prev_log_term,
                    &entries,
                    leader_commit,
                    read_round,
                );
            }
            MessageBody::InstallSnapshot {
                index,
                snapshot_term,
                membership,
                offset,
                data,
                done,
            } => {
                self.follow_leader_of_this_term(
                    from,
                    "InstallSnapshot from a second leader of this term",
                )?;
                let meta = crate::SnapshotMeta {
                    index,
                    term: snapshot_term,
                    membership,
                };
                self.handle_install_snapshot(from, meta, offset, data, done);
            }
            MessageBody::InstallSnapshotResponse {
                index,
                offset,
                done,
            } => {
                if self.role == Role::Leader {
                    return self.handle_install_snapshot_response(from, index, offset, done);
                }
            }
            MessageBody::AppendEntriesResponse {
                success,
                index,
                reject_hint,
                read_round,
            } => {
                if self.role == Role::Leader {
                    return self.handle_append_response(
                        from,
                        success,
                        index,
                        reject_hint,
                        read_round,
                    );
                }
            }
        }
        Ok(())
    }

    /// A message from an older term. Requests are answered with our term so
    /// that the sender learns it and steps down (Figure 2: "reply false if
    /// term < currentTerm"). This matters with check-quorum and pre-vote: a
    /// node whose term ran ahead during a partition ignores the leader's
    /// appends, while the leader (in its lease) ignores the node's votes;
    /// only this answer, whose higher term the leader does adopt, breaks the
    /// deadlock (the etcd approach). Stale responses are dropped.
    ///
    /// The answer carries our term, so it counts as an answer in that term
    /// if its sender has since come to lead it: it must acknowledge no
    /// ReadIndex round (§6.4: only an answer to a message of the leader's
    /// own leadership confirms it). Echoing the old append's round did: a
    /// leader of term 15 re-elected in term 16 (rounds restart at each
    /// leadership) took a follower's answer to its held and replayed
    /// term-15 append (round 581) as confirming its term-16 round 152, and
    /// served reads while cut off from the majority that had since
    /// committed newer writes (stale reads: sweep `--nodes 3 --clients 30
    /// --swarm off`, seed 236).
    fn answer_stale(&mut self, m: Message) {
        match m.body {
            MessageBody::AppendEntries { prev_log_index, .. } => self.send(
                m.from,
                MessageBody::AppendEntriesResponse {
                    success: false,
                    index: prev_log_index,
                    reject_hint: None,
                    read_round: 0,
                },
            ),
            MessageBody::PreVote { .. } => {
                self.send(m.from, MessageBody::PreVoteResponse { granted: false })
            }
            MessageBody::RequestVote { .. } => {
                self.send(m.from, MessageBody::RequestVoteResponse { granted: false })
            }
            // A stale leader's snapshot: answer with our term so it steps
            // down; the answer acknowledges nothing.
            MessageBody::InstallSnapshot { index, .. } => self.send(
                m.from,
                MessageBody::InstallSnapshotResponse {
                    index,
                    offset: 0,
                    done: false,
                },
            ),
            MessageBody::PreVoteResponse { .. }
            | MessageBody::RequestVoteResponse { .. }
            | MessageBody::AppendEntriesResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
            | MessageBody::TimeoutNow => {}
        }
    }

    /// The entry at `index` as a clone-free reference.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// Asserts the invariants stated on the fields (debug builds only).
    pub fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.log.debug_check();
        let e = self.cfg.election_tick;
        assert!(self.randomized_election_timeout >= e && self.randomized_election_timeout < 2 * e);
        assert!(self.msgs.len() <= MAX_OUTBOX_MESSAGES);
        assert!(self.persisted_msgs.len() <= MAX_OUTBOX_MESSAGES);
        if self.role == Role::Leader {
            assert_eq!(self.leader, Some(self.id), "a leader knows itself");
            // Leader Completeness (§5.4): a leader holds every committed
            // entry; with an in-memory log that is `committed <= last`.
            assert!(self.log.committed() <= self.log.last_index());
            for pr in self.tracker.peer_progress(self.id) {
                assert!(pr.match_index < pr.next_index);
                assert!(pr.next_index <= self.log.last_index().next());
            }
            if let Some(last) = self.log.entry(self.log.last_index()) {
                assert!(last.term <= self.term);
            }
        } else {
            assert!(self.reads.is_empty(), "only a leader holds reads");
            assert!(!self.broadcast_due);
            assert!(self.lead_transferee.is_none(), "only a leader transfers");
        }
        assert!(
            self.tracker.follows(self.log.membership()),
            "the tracker follows the log's configuration (§4.1)"
        );
        if self.role == Role::Candidate {
            assert_eq!(self.vote, Some(self.id), "a candidate votes for itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> Raft {
        let cfg = Config::new(NodeId(id), vec![NodeId(1), NodeId(2), NodeId(3)], 42);
        Raft::new(
            cfg,
            HardState::default(),
            RaftLog::new(crate::Membership::of_voters([
                NodeId(1),
                NodeId(2),
                NodeId(3),
            ])),
        )
    }

    #[test]
    fn election_timeout_is_drawn_from_the_jitter_interval() {
        let mut r = node(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            r.reset_timers();
            assert!((10..20).contains(&r.randomized_election_timeout));
            seen.insert(r.randomized_election_timeout);
        }
        assert!(seen.len() > 5, "timeouts actually vary: {seen:?}");
    }

    #[test]
    fn nodes_sharing_a_seed_draw_different_timeouts() {
        let draws = |id| {
            let mut r = node(id);
            (0..8)
                .map(|_| {
                    r.reset_timers();
                    r.randomized_election_timeout
                })
                .collect::<Vec<_>>()
        };
        assert_ne!(draws(1), draws(2));
        assert_eq!(draws(1), draws(1), "and the same id draws the same");
    }

    #[test]
    fn malformed_appends_are_refused_before_any_state_change() {
        let mut r = node(1);
        let bad = Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(3),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(0),
                prev_log_term: Term(0),
                entries: vec![Entry {
                    term: Term(3),
                    index: LogIndex(2),
                    payload: crate::EntryPayload::Noop,
                }],
                leader_commit: LogIndex(0),
                read_round: 0,
            },
        };
        assert!(matches!(r.step(bad), Err(StepError::Malformed { .. })));
        assert_eq!(r.term, Term(0), "term not adopted from a malformed message");
    }
}
