//! The sans-IO face of the core: inputs in, [`Ready`] out. The driver (the
//! replica) owns storage, the network and the clock; this type owns only the
//! protocol's decisions.

use crate::ConfigError;
use crate::Membership;
use crate::config::Config;
use crate::errors::{
    MembershipError, ProposeError, ReadIndexError, RestoreError, StepError, TransferError,
};
use crate::log::{CompactError, RaftLog};
use crate::membership::ConfChange;
use crate::raft::Raft;
use crate::types::{
    Entry, HardState, LogIndex, Message, MessageBody, NodeId, Ready, Role, Snapshot, SnapshotMeta,
    SoftState, Term,
};

/// One Raft node as a pure state machine. See [`Ready`] for the driver's
/// duties and their order.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawNode {
    raft: Raft,
    /// The soft state last handed out (or the initial one).
    prev_soft: SoftState,
    /// The hard state last handed out (or the restored one).
    prev_hard: HardState,
}

impl RawNode {
    /// A fresh node: empty log, term 0, no vote.
    pub fn new(config: Config) -> Result<RawNode, ConfigError> {
        config.validate()?;
        let log = RaftLog::new(config.bootstrap_membership());
        Ok(RawNode::from_raft(Raft::new(
            config,
            HardState::default(),
            log,
        )))
    }

    /// A node restarted from durable state: `entries` is the whole durable
    /// log (contiguous from index 1) and all of it is persisted. Committed
    /// entries up to `hard_state.commit` are handed out again for applying,
    /// since the state machine is rebuilt from the log.
    pub fn restore(
        config: Config,
        hard_state: HardState,
        entries: Vec<Entry>,
    ) -> Result<RawNode, RestoreError> {
        RawNode::restore_with_snapshot(config, hard_state, None, entries)
    }

    /// A node restarted from durable state that includes a snapshot (§7):
    /// `snapshot` stands for every entry up to its index, and `entries` is the
    /// durable log after it (contiguous from `snapshot.meta.index + 1`). The
    /// driver has already installed the snapshot into its state machine, so
    /// applying resumes after it: committed entries past it are handed out
    /// again. The commit index is at least the snapshot's index.
    pub fn restore_with_snapshot(
        config: Config,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    ) -> Result<RawNode, RestoreError> {
        config.validate()?;
        let snapshot = snapshot.filter(|s| s.meta.index.0 > 0);
        let (base, mut previous) = match &snapshot {
            Some(s) => {
                if s.meta.term == Term(0) {
                    return Err(RestoreError::ZeroTerm {
                        index: s.meta.index,
                    });
                }
                if s.meta.term > hard_state.term {
                    return Err(RestoreError::TermAboveHardState {
                        index: s.meta.index,
                        term: s.meta.term,
                        hard_state_term: hard_state.term,
                    });
                }
                (s.meta.index, s.meta.term)
            }
            None => (LogIndex(0), Term(0)),
        };
        for (pos, e) in entries.iter().enumerate() {
            let expected = LogIndex(base.0 + pos as u64 + 1);
            if e.index != expected {
                return Err(RestoreError::NotContiguous {
                    expected,
                    found: e.index,
                });
            }
            if e.term == Term(0) {
                return Err(RestoreError::ZeroTerm { index: e.index });
            }
            if e.term < previous {
                return Err(RestoreError::TermDecreases {
                    index: e.index,
                    term: e.term,
                    previous,
                });
            }
            if e.term > hard_state.term {
                return Err(RestoreError::TermAboveHardState {
                    index: e.index,
                    term: e.term,
                    hard_state_term: hard_state.term,
                });
            }
            previous = e.term;
        }
        let last_index = LogIndex(base.0 + entries.len() as u64);
        if hard_state.commit > last_index {
            return Err(RestoreError::CommitBeyondLog {
                commit: hard_state.commit,
                last_index,
            });
        }
        if hard_state.vote == Some(NodeId(0)) {
            return Err(RestoreError::ZeroVote);
        }
        let log = RaftLog::restore(
            config.bootstrap_membership(),
            snapshot,
            entries,
            hard_state.commit,
        );
        let mut node = RawNode::from_raft(Raft::new(config, hard_state, log));
        debug_assert!(node.prev_hard.commit >= hard_state.commit);
        // What was restored is what storage holds: nothing to hand out.
        node.prev_hard = hard_state;
        Ok(node)
    }

    /// After every call into the node: the tracker follows the log's
    /// configuration (§4.1), and the invariants hold (debug builds).
    fn settle(&mut self) {
        self.raft.sync_membership();
        self.raft.check_invariants();
    }

    fn from_raft(raft: Raft) -> RawNode {
        RawNode {
            prev_soft: raft.soft_state(),
            prev_hard: raft.hard_state(),
            raft,
        }
    }

    /// Advances logical time by one tick: election timeouts, heartbeats,
    /// check-quorum.
    pub fn tick(&mut self) {
        self.raft.tick();
        self.settle();
    }

    /// Handles a message from a peer. An error leaves the node unchanged.
    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        let result = self.raft.step(msg);
        self.settle();
        result
    }

    /// Proposes a command; on the leader returns the index it will occupy if
    /// it commits (it may still be lost if leadership changes first).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<LogIndex, ProposeError> {
        let result = self.raft.propose(data);
        self.settle();
        result
    }

    /// Leader: proposes a configuration change (dissertation ch. 4): a
    /// learner change at once, a change of voters through joint consensus
    /// (the leader leaves the joint configuration by itself once it
    /// commits). Refused, changing nothing, when unsafe or impossible (see
    /// [`MembershipError`]). Returns the index of the configuration entry.
    pub fn propose_membership(&mut self, change: ConfChange) -> Result<LogIndex, MembershipError> {
        let result = self.raft.propose_membership(change);
        self.settle();
        result
    }

    /// Leader: hands leadership to voter `to` (dissertation §3.10): brings
    /// it up to date, then tells it to campaign at once. Proposals are
    /// refused until the transfer completes or is abandoned (after an
    /// election timeout).
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), TransferError> {
        let result = self.raft.transfer_leadership(to);
        self.settle();
        result
    }

    /// Ticks since the election timer was last reset (the leader's lease, as
    /// a follower sees it, lasts while this is below `election_tick`). For
    /// drivers with an external election timer, which decide when the
    /// timeout fires.
    pub fn election_elapsed(&self) -> u32 {
        self.raft.election_elapsed
    }

    /// Tests only: as if a minimum election timeout passed without word from
    /// the leader, so the leader's lease (§4.2.3) is over here, without
    /// firing the election timer. A leader is unaffected.
    #[cfg(test)]
    pub(crate) fn expire_lease(&mut self) {
        if self.raft.role != crate::Role::Leader {
            let r = &mut self.raft;
            r.election_elapsed = r.election_elapsed.max(r.cfg.election_tick);
        }
    }

    /// Tests only: how the leader replicates to `peer` (probing one append
    /// at a time, streaming, or sending a snapshot), if it tracks `peer`.
    #[cfg(test)]
    pub(crate) fn progress_state(&self, peer: NodeId) -> Option<crate::tracker::ProgressState> {
        self.raft.tracker.get(peer).map(|p| p.state)
    }

    /// The voter leadership is being handed to, if a transfer is under way.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.raft.lead_transferee
    }

    /// Asks for a linearizable read identified by `ctx`; it comes back as a
    /// [`crate::ReadState`] in a later `ready()` (or never, if leadership is
    /// lost: watch the soft state).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadIndexError> {
        let result = self.raft.read_index(ctx);
        self.settle();
        result
    }

    /// Starts an election now (pre-vote first when configured). Does nothing
    /// on a leader or a non-voter.
    pub fn campaign(&mut self) {
        self.raft.hup();
        self.settle();
    }

    /// Whether `ready()` would hand out anything.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        r.soft_state() != self.prev_soft
            || r.hard_state() != self.prev_hard
            || r.log.has_unstable()
            || !r.msgs.is_empty()
            || !r.persisted_msgs.is_empty()
            || r.log.has_next_committed()
            || !r.read_states.is_empty()
            || r.broadcast_due
            || r.reads.heartbeat_due()
            || r.log.has_unstable_snapshot()
    }

    /// Takes everything pending. Work is proportional to what is pending:
    /// only new entries, new committed entries and queued messages are
    /// copied.
    pub fn ready(&mut self) -> Ready {
        let r = &mut self.raft;
        if r.broadcast_due {
            r.bcast_append();
        }
        if r.reads.heartbeat_due() {
            r.bcast_heartbeat();
        }
        let soft = r.soft_state();
        let hard = r.hard_state();
        let ready = Ready {
            soft_state: (soft != self.prev_soft).then_some(soft),
            hard_state: (hard != self.prev_hard).then_some(hard),
            entries: r.log.take_unstable(),
            messages: std::mem::take(&mut r.msgs),
            persisted_messages: std::mem::take(&mut r.persisted_msgs),
            committed_entries: r.log.take_committed(),
            read_states: std::mem::take(&mut r.read_states),
        };
        self.prev_soft = soft;
        self.prev_hard = hard;
        if cfg!(debug_assertions) {
            check_ready(&ready, self.raft.log.committed());
        }
        self.settle();
        ready
    }

    /// The snapshot received from the leader (§7), to persist and install.
    /// Call it right after every [`RawNode::ready`] (it is part of that
    /// ready; see [`Ready`] for where it goes in the driver's order): persist
    /// it before `entries` and before sending `persisted_messages`, install
    /// it into the state machine before applying `committed_entries`, then
    /// report [`RawNode::snapshot_installed`].
    ///
    /// Never below the commit index: what it covers is committed, and no
    /// entry of the handed out `committed_entries` is at or below its index.
    pub fn take_snapshot(&mut self) -> Option<Snapshot> {
        let snapshot = self.raft.log.take_unstable_snapshot();
        self.settle();
        snapshot
    }

    /// The state machine installed the snapshot at `index` handed out by
    /// [`RawNode::take_snapshot`]: the applied index moves to it.
    pub fn snapshot_installed(&mut self, index: LogIndex) {
        self.raft.log.snapshot_installed(index);
        self.settle();
    }

    /// Compacts the log up to `index` (§7): the driver has taken a snapshot
    /// of its state machine at applied index `index`, made `data` durable,
    /// and may now drop its stored entries up to `index`. The node keeps the
    /// snapshot (to send to followers that need it) and the entries after
    /// it. The policy (when, and how many entries to keep for slow
    /// followers) is the driver's.
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>) -> Result<(), CompactError> {
        let result = self.raft.log.compact(index, data);
        self.settle();
        result
    }

    /// What the current snapshot covers (index 0 when there is none).
    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.raft.log.snapshot().meta
    }

    /// The current snapshot: the last compaction's, or the last one
    /// received from a leader (index 0 and empty when there is none).
    pub fn snapshot(&self) -> &Snapshot {
        self.raft.log.snapshot()
    }

    /// The driver made entries up to `index` (whose term is `term`) durable.
    /// Ignored if the log no longer holds `term` at `index`, or if `index`
    /// was never handed out.
    ///
    /// Readies must be persisted in the order they were handed out, and each
    /// report must come before the next ready is persisted: a stale report
    /// could otherwise name an entry that a later ready replaced and a still
    /// later one restored (same term and index), before the last write is
    /// durable.
    pub fn persisted(&mut self, term: Term, index: LogIndex) {
        self.raft.on_persisted(term, index);
        self.settle();
    }

    /// The state machine applied up to `index` (clamped to what was handed
    /// out for applying).
    pub fn applied(&mut self, index: LogIndex) {
        self.raft.log.applied_to(index);
        self.settle();
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.raft.id
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.raft.term
    }

    /// The role played now.
    pub fn role(&self) -> Role {
        self.raft.role
    }

    /// The leader known for the current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader
    }

    /// Role, term and known leader.
    pub fn soft_state(&self) -> SoftState {
        self.raft.soft_state()
    }

    /// Term, vote and commit index (as they are now, durable or not).
    pub fn hard_state(&self) -> HardState {
        self.raft.hard_state()
    }

    /// The commit index. Never decreases.
    pub fn commit_index(&self) -> LogIndex {
        self.raft.log.committed()
    }

    /// The index the driver reported applied.
    pub fn applied_index(&self) -> LogIndex {
        self.raft.log.applied()
    }

    /// The first index held as an entry: 1, or the snapshot's index + 1
    /// after compaction (§7). Entries below it are only in the snapshot.
    pub fn first_index(&self) -> LogIndex {
        self.raft.log.first_index()
    }

    /// The last index of the log (0 when empty).
    pub fn last_index(&self) -> LogIndex {
        self.raft.log.last_index()
    }

    /// The term at `index`: `Some(Term(0))` for index 0, `None` outside the log.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.raft.log.term_at(index)
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.raft.entry(index)
    }

    /// The voters (both halves while joint), in id order.
    pub fn voters(&self) -> Vec<NodeId> {
        self.raft.tracker.config().ids().into_iter().collect()
    }

    /// Whether this node may campaign (see the membership module): a
    /// voter, or a voter of the previous configuration while the latest is
    /// not known committed.
    pub fn is_promotable(&self) -> bool {
        self.raft.is_promotable()
    }

    /// The configuration in force: the latest in the log (§4.1).
    pub fn membership(&self) -> &Membership {
        self.raft.log.membership()
    }

    /// The configuration as of `index` (at or above the snapshot's index):
    /// what a snapshot at `index` must carry (§7).
    pub fn membership_at(&self, index: LogIndex) -> Membership {
        self.raft.log.membership_at(index)
    }

    /// The index of the entry that set the configuration in force.
    pub fn membership_index(&self) -> LogIndex {
        self.raft.log.membership_index()
    }

    /// The index this node has reported durable (for tests and tracing).
    pub fn persisted_index(&self) -> LogIndex {
        self.raft.log.persisted()
    }

    /// How many outgoing messages were dropped because the driver did not
    /// call `ready()` often enough to drain the bounded outboxes.
    pub fn dropped_messages(&self) -> u64 {
        self.raft.dropped_messages
    }
}

/// Checks what a Ready promises (debug builds).
fn check_ready(ready: &Ready, committed: LogIndex) {
    for pair in ready.entries.windows(2) {
        assert_eq!(pair[1].index, pair[0].index.next(), "entries contiguous");
    }
    for pair in ready.committed_entries.windows(2) {
        assert_eq!(pair[1].index, pair[0].index.next(), "committed contiguous");
    }
    if let Some(last) = ready.committed_entries.last() {
        assert!(
            last.index <= committed,
            "only committed entries are applied"
        );
    }
    for m in &ready.messages {
        assert!(
            !m.body.is_response() && !matches!(m.body, MessageBody::RequestVote { .. }),
            "responses and vote requests leave only after persistence"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::MAX_OUTBOX_MESSAGES;

    fn node(id: u64, check_quorum: bool) -> RawNode {
        let mut cfg = Config::new(NodeId(id), vec![NodeId(1), NodeId(2), NodeId(3)], 5);
        cfg.check_quorum = check_quorum;
        RawNode::new(cfg).expect("valid")
    }

    #[test]
    fn a_fresh_node_has_nothing_to_do() {
        let mut n = node(1, true);
        assert!(!n.has_ready());
        assert!(n.ready().is_empty());
        assert_eq!(
            (n.first_index(), n.last_index()),
            (LogIndex(1), LogIndex(0))
        );
        assert_eq!(n.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(n.voters(), vec![NodeId(1), NodeId(2), NodeId(3)]);
    }

    #[test]
    fn with_an_external_election_timer_only_the_driver_starts_elections() {
        let mut cfg = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)], 5);
        cfg.external_election_timer = true;
        let mut n = RawNode::new(cfg).expect("valid");
        let before = n.clone();
        for _ in 0..10 * crate::config::DEFAULT_ELECTION_TICK {
            n.tick();
        }
        assert_eq!(n.role(), Role::Follower, "ticks never fire the timeout");
        n.campaign();
        assert_eq!(n.role(), Role::PreCandidate, "the driver fires it");
        // No jitter was drawn: a node that ticked is, apart from its clocks,
        // the node it was (the RNG is part of the hashed state).
        let mut fresh = before.clone();
        fresh.campaign();
        assert_eq!(fresh.raft.rng, n.raft.rng);
    }

    #[test]
    fn ready_hands_out_each_thing_once() {
        let mut n = node(1, true);
        n.campaign();
        assert!(n.has_ready());
        let rd = n.ready();
        assert_eq!(rd.soft_state.map(|s| s.role), Some(Role::PreCandidate));
        assert_eq!(rd.messages.len(), 2, "a pre-vote to each peer");
        assert!(rd.hard_state.is_none(), "pre-vote changes no durable state");
        assert!(!n.has_ready());
        assert!(n.ready().is_empty());
    }

    #[test]
    fn outboxes_are_bounded_when_ready_is_never_called() {
        let mut n = node(1, false);
        n.campaign();
        for peer in [2, 3] {
            n.step(Message {
                from: NodeId(peer),
                to: NodeId(1),
                term: Term(1),
                body: crate::MessageBody::PreVoteResponse { granted: true },
            })
            .unwrap();
        }
        n.step(Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(1),
            body: crate::MessageBody::RequestVoteResponse { granted: true },
        })
        .unwrap();
        assert_eq!(n.role(), Role::Leader);
        for _ in 0..(MAX_OUTBOX_MESSAGES as u64) {
            n.tick();
        }
        assert!(n.dropped_messages() > 0);
        assert_eq!(n.ready().messages.len(), MAX_OUTBOX_MESSAGES);
    }

    #[test]
    fn applied_is_clamped_to_what_was_handed_out() {
        let mut n = node(1, true);
        n.applied(LogIndex(5));
        assert_eq!(n.applied_index(), LogIndex(0));
    }
}
