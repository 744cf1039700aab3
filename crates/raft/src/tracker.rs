//! What a leader knows about each voter's log (Figure 2, "volatile state on
//! leaders": nextIndex and matchIndex), how it paces appends to each one, and
//! the votes of the current election.
//!
//! A follower is in one of two replication states, after etcd-raft:
//! * **Probe**: the leader does not know where the logs agree. It sends one
//!   append at a time and waits for the answer (or the next heartbeat answer)
//!   before sending another, walking `next_index` back on rejections.
//! * **Replicate**: the logs agree up to `match_index`; appends are pipelined
//!   optimistically, at most `max_inflight_appends` unacknowledged at once.
//! * **Snapshot**: the follower needs entries the leader has compacted away
//!   (§7); the leader sends its snapshot in chunks, one at a time, resuming
//!   from the offset the follower says it holds, and no appends.

use crate::quorum::{JointConfig, MajorityConfig, VoteResult};
use crate::types::{LogIndex, Membership, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The quorum arithmetic of a configuration: both halves while joint
/// (dissertation §4.3).
fn joint_config(m: &Membership) -> JointConfig {
    JointConfig {
        incoming: MajorityConfig::new(m.voters.iter().copied()),
        outgoing: MajorityConfig::new(m.outgoing.iter().copied()),
    }
}

/// How the leader replicates to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ProgressState {
    /// Looking for the point where the logs agree; one append at a time.
    Probe,
    /// Streaming appends optimistically from the agreed point.
    Replicate,
    /// Sending the snapshot at `pending_snapshot`, chunk by chunk.
    Snapshot,
}

/// The appends in flight to one follower in Replicate state, by the index of
/// their last entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Inflights {
    /// Invariant: strictly increasing, and `len() <= cap`.
    last_indexes: VecDeque<LogIndex>,
    /// The bound (`max_inflight_appends`).
    cap: usize,
}

impl Inflights {
    fn new(cap: usize) -> Inflights {
        Inflights {
            last_indexes: VecDeque::with_capacity(cap.min(64)),
            cap,
        }
    }

    fn is_full(&self) -> bool {
        self.last_indexes.len() >= self.cap
    }

    fn add(&mut self, last: LogIndex) {
        debug_assert!(!self.is_full(), "inflights overflow");
        debug_assert!(self.last_indexes.back().is_none_or(|&b| b < last));
        self.last_indexes.push_back(last);
    }

    /// Frees every append acknowledged by a match at `index`.
    fn free_up_to(&mut self, index: LogIndex) {
        while self.last_indexes.front().is_some_and(|&f| f <= index) {
            self.last_indexes.pop_front();
        }
    }

    fn clear(&mut self) {
        self.last_indexes.clear();
    }

    /// How many appends are in flight.
    pub fn len(&self) -> usize {
        self.last_indexes.len()
    }
}

/// The leader's view of one voter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Progress {
    /// The highest index known to match the leader's log (Figure 2
    /// matchIndex). Never decreases within a term: stale or duplicated
    /// responses cannot lower it. Invariant: `match_index < next_index`.
    pub match_index: LogIndex,
    /// The next index to send (Figure 2 nextIndex). In Probe: the index
    /// being probed. In Replicate: one past the last entry sent.
    pub next_index: LogIndex,
    /// The replication state. Invariant: in Probe, `inflights` is empty.
    pub state: ProgressState,
    /// In Probe: an append was sent and neither its answer nor a heartbeat
    /// answer has come back yet.
    pub probe_sent: bool,
    /// A heartbeat was sent since an answer last re-armed the probe. An
    /// answer that proves nothing new (at or below the match index) re-arms
    /// the probe only while this is set, and clears it: one re-sent probe
    /// per heartbeat at most, however many stale or duplicated answers
    /// arrive (sweep seed 827), and never fewer (a lost probe is re-sent at
    /// the next heartbeat's answer: seeds 230, 288, 752, 1577, 1916, whose
    /// heartbeat answers name an index that is neither the match index nor 0).
    pub probe_rearm: bool,
    /// In Replicate: the appends not yet acknowledged.
    pub inflights: Inflights,
    /// Heard from in the current check-quorum window (dissertation §6.2).
    pub recent_active: bool,
    /// The match index at the previous heartbeat, to notice a Replicate
    /// stream that stopped making progress (a lost append).
    pub match_at_last_heartbeat: LogIndex,
    /// The highest commit index this follower can have learnt from what was
    /// sent to it: `min(leader_commit, last index the message proves
    /// matching)`, maximised over the messages sent. Lets the leader send a
    /// commit-only update when nothing else would carry it.
    pub commit_sent: LogIndex,
    /// In Snapshot: the index of the snapshot being sent. Invariant: in
    /// Snapshot state, `match_index < pending_snapshot`.
    pub pending_snapshot: LogIndex,
    /// In Snapshot: the offset of the next chunk to send, as the follower
    /// last reported it (0 at the start).
    pub snapshot_offset: u64,
    /// In Snapshot: the offset at the previous heartbeat, to notice a
    /// transfer that stopped (a lost chunk or answer).
    pub snapshot_offset_at_heartbeat: Option<u64>,
}

impl Progress {
    fn new(next_index: LogIndex, max_inflight: usize) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            probe_rearm: false,
            inflights: Inflights::new(max_inflight),
            recent_active: false,
            match_at_last_heartbeat: LogIndex(0),
            commit_sent: LogIndex(0),
            pending_snapshot: LogIndex(0),
            snapshot_offset: 0,
            snapshot_offset_at_heartbeat: None,
        }
    }

    /// Whether no append may be sent now.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
        }
    }

    /// Enters Probe, resuming from just after the match point.
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflights.clear();
        self.check();
    }

    /// Enters Replicate from the match point.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflights.clear();
        self.check();
    }

    /// Enters Snapshot: the follower needs the snapshot at `index` (§7).
    pub fn become_snapshot(&mut self, index: LogIndex) {
        debug_assert!(self.match_index < index);
        self.state = ProgressState::Snapshot;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflights.clear();
        self.pending_snapshot = index;
        self.snapshot_offset = 0;
        self.snapshot_offset_at_heartbeat = None;
        self.check();
    }

    /// Records that an append ending at `last` was sent.
    pub fn sent_entries(&mut self, last: LogIndex) {
        match self.state {
            ProgressState::Replicate => {
                self.next_index = last.next();
                self.inflights.add(last);
            }
            ProgressState::Probe | ProgressState::Snapshot => self.probe_sent = true,
        }
        self.check();
    }

    /// Raises the match index to `index` if it is higher (a successful
    /// answer). Returns whether anything changed. Idempotent: duplicated and
    /// reordered answers cannot move it backwards.
    pub fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        if self.next_index <= index {
            self.next_index = index.next();
        }
        self.inflights.free_up_to(index);
        if self.state == ProgressState::Snapshot && self.match_index >= self.pending_snapshot {
            // The follower has what the snapshot covers (§7): back to
            // appends, from the match point.
            self.become_probe();
        }
        self.check();
        updated
    }

    /// Handles a rejection of the append whose `prev_log_index` was
    /// `rejected`; `hint_next` is where the hint says to probe next. Returns
    /// whether the rejection was current (stale ones change nothing).
    pub fn maybe_decrease_to(&mut self, rejected: LogIndex, hint_next: LogIndex) -> bool {
        match self.state {
            // The snapshot transfer decides; rejections of older appends or
            // of heartbeats say nothing new.
            ProgressState::Snapshot => false,
            ProgressState::Replicate => {
                // At or below the match point the logs agree: the rejection
                // must answer an append sent before a newer one succeeded.
                if rejected <= self.match_index {
                    return false;
                }
                // The stream broke (a lost or reordered append): fall back to
                // probing from the match point.
                self.become_probe();
                true
            }
            ProgressState::Probe => {
                // Only the answer to the probe now outstanding counts.
                if rejected != self.next_index.prev() {
                    return false;
                }
                let next = hint_next.min(rejected).max(self.match_index.next());
                self.probe_sent = false;
                if next == self.next_index {
                    // The follower refuses even the entry at our match point:
                    // it lost entries it acknowledged (a disk that lied).
                    // Probing again at once would answer every rejection, and
                    // every duplicate of it, with a new probe: a storm. The
                    // next heartbeat probes again instead.
                    return false;
                }
                self.next_index = next;
                self.check();
                true
            }
        }
    }

    fn check(&self) {
        debug_assert!(
            self.match_index < self.next_index,
            "match {} must be below next {}",
            self.match_index,
            self.next_index
        );
        debug_assert!(self.state == ProgressState::Replicate || self.inflights.len() == 0);
        debug_assert!(
            self.state != ProgressState::Snapshot || self.match_index < self.pending_snapshot
        );
    }
}

/// The leader's view of every member, and the votes of an election.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProgressTracker {
    /// The voting configuration.
    config: JointConfig,
    /// Members that receive the log but do not vote (dissertation §4.2.1).
    /// Invariant: disjoint from `config`'s voters.
    learners: BTreeSet<NodeId>,
    /// Invariant: exactly one entry per voter of `config` and per learner
    /// (this node too, whose match index is what it has persisted).
    progress: BTreeMap<NodeId, Progress>,
    /// Answers received in the current election (pre-vote or vote); the first
    /// answer of each voter counts.
    votes: BTreeMap<NodeId, bool>,
    /// The bound on appends in flight per follower.
    max_inflight: usize,
}

impl ProgressTracker {
    /// A tracker for the members of `membership`.
    pub fn new(membership: &Membership, max_inflight: usize) -> ProgressTracker {
        let mut t = ProgressTracker {
            config: joint_config(membership),
            learners: membership.learners.clone(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            max_inflight,
        };
        t.reset(LogIndex(0));
        t
    }

    /// The voting configuration.
    pub fn config(&self) -> &JointConfig {
        &self.config
    }

    /// Forgets everything learnt in the previous term: every voter is
    /// probed from just after `last_index` (Figure 2: "nextIndex initialized
    /// to leader last log index + 1, matchIndex initialized to 0").
    pub fn reset(&mut self, last_index: LogIndex) {
        self.progress = self
            .members()
            .into_iter()
            .map(|id| (id, Progress::new(last_index.next(), self.max_inflight)))
            .collect();
        self.votes.clear();
    }

    /// Every member: the voters of both halves and the learners.
    fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.config.ids();
        all.extend(&self.learners);
        all
    }

    /// Whether this tracker follows `membership`.
    pub fn follows(&self, membership: &Membership) -> bool {
        // Field by field rather than `== joint_config(membership)`: no
        // allocation (this runs in `check_invariants` after every step).
        self.config.incoming.is(&membership.voters)
            && self.config.outgoing.is(&membership.outgoing)
            && self.learners == membership.learners
    }

    /// Moves to `membership` (§4.1: a configuration takes effect as soon as
    /// it is in the log). Members that stay keep their progress; new ones
    /// are probed at `last_index`; removed ones are forgotten,
    /// and so are their votes.
    pub fn set_membership(&mut self, membership: &Membership, last_index: LogIndex) {
        self.config = joint_config(membership);
        self.learners = membership.learners.clone();
        let members = self.members();
        self.progress.retain(|id, _| members.contains(id));
        // A new member is probed at the last entry (the configuration entry
        // that added it): its answer tells the leader where its log ends.
        let probe_at = LogIndex(last_index.0.max(1));
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(probe_at, self.max_inflight));
        }
        self.votes.retain(|id, _| self.config.contains(*id));
    }

    /// The progress of `id`, if it is a member.
    pub fn get(&self, id: NodeId) -> Option<&Progress> {
        self.progress.get(&id)
    }

    /// The progress of `id`, if it is a member.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Progress> {
        self.progress.get_mut(&id)
    }

    /// The progress of every member other than `me`, in id order, without
    /// collecting them (for checks that run after every step).
    pub fn peer_progress(&self, me: NodeId) -> impl Iterator<Item = &Progress> {
        self.progress
            .iter()
            .filter(move |&(&id, _)| id != me)
            .map(|(_, pr)| pr)
    }

    /// The members other than `me` (voters and learners: everyone the
    /// leader replicates to), in id order.
    pub fn peers(&self, me: NodeId) -> Vec<NodeId> {
        self.progress
            .keys()
            .copied()
            .filter(|&id| id != me)
            .collect()
    }

    /// The voters other than `me` (everyone a candidate asks), in id order.
    pub fn voter_peers(&self, me: NodeId) -> Vec<NodeId> {
        self.config
            .ids()
            .into_iter()
            .filter(|&id| id != me)
            .collect()
    }

    /// The highest index stored on a quorum, by match index.
    pub fn committed_index(&self) -> LogIndex {
        self.config.committed_index(|id| {
            self.progress
                .get(&id)
                .map_or(LogIndex(0), |p| p.match_index)
        })
    }

    /// Whether a quorum was heard from in the current window (`me` always
    /// counts), and starts a new window. Dissertation §6.2 (check-quorum).
    pub fn quorum_active_and_reset(&mut self, me: NodeId) -> bool {
        let active = self.config.vote_result(|id| {
            Some(id == me || self.progress.get(&id).is_some_and(|p| p.recent_active))
        }) == VoteResult::Won;
        for (&id, p) in self.progress.iter_mut() {
            p.recent_active = id == me;
        }
        active
    }

    /// Clears the votes for a new election.
    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Records `id`'s answer unless it already answered (only voters count).
    pub fn record_vote(&mut self, id: NodeId, granted: bool) {
        if self.config.contains(id) {
            self.votes.entry(id).or_insert(granted);
        }
    }

    /// The election outcome so far.
    pub fn tally_votes(&self) -> VoteResult {
        self.config.vote_result(|id| self.votes.get(&id).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicate(match_index: u64, cap: usize) -> Progress {
        let mut p = Progress::new(LogIndex(match_index + 1), cap);
        p.match_index = LogIndex(match_index);
        p.become_replicate();
        p
    }

    #[test]
    fn match_index_never_decreases_on_stale_answers() {
        let mut p = replicate(5, 4);
        assert!(p.maybe_update(LogIndex(8)));
        assert!(!p.maybe_update(LogIndex(6)));
        assert_eq!(p.match_index, LogIndex(8));
        assert_eq!(p.next_index, LogIndex(9));
    }

    #[test]
    fn replicate_pauses_when_inflights_are_full_and_resumes_on_ack() {
        let mut p = replicate(0, 2);
        p.sent_entries(LogIndex(3));
        assert!(!p.is_paused());
        p.sent_entries(LogIndex(6));
        assert!(p.is_paused());
        p.maybe_update(LogIndex(3));
        assert!(!p.is_paused());
        assert_eq!(p.next_index, LogIndex(7));
    }

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = Progress::new(LogIndex(10), 4);
        assert!(!p.is_paused());
        p.sent_entries(LogIndex(12));
        assert!(p.is_paused());
        assert_eq!(p.next_index, LogIndex(10), "probe does not advance next");
    }

    #[test]
    fn stale_rejection_in_replicate_is_ignored() {
        let mut p = replicate(5, 4);
        p.sent_entries(LogIndex(9));
        assert!(!p.maybe_decrease_to(LogIndex(4), LogIndex(1)));
        assert_eq!(p.state, ProgressState::Replicate);
        assert!(p.maybe_decrease_to(LogIndex(7), LogIndex(1)));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next_index, LogIndex(6));
    }

    #[test]
    fn a_rejection_at_the_match_point_waits_for_the_next_heartbeat() {
        // A follower that lost acknowledged entries rejects even our match
        // point. Re-probing at once would turn every (duplicated) rejection
        // into a new probe: a message storm.
        let mut p = Progress::new(LogIndex(6), 4);
        p.match_index = LogIndex(5);
        p.sent_entries(LogIndex(8));
        assert!(p.is_paused());
        assert!(
            !p.maybe_decrease_to(LogIndex(5), LogIndex(1)),
            "no immediate re-probe"
        );
        assert_eq!(p.next_index, LogIndex(6), "never below the match point");
        assert!(!p.is_paused(), "the next heartbeat may probe again");
    }

    #[test]
    fn probe_rejection_moves_next_to_the_hint_but_not_below_match() {
        let mut p = Progress::new(LogIndex(10), 4);
        p.match_index = LogIndex(2);
        p.sent_entries(LogIndex(10));
        // Stale: not the outstanding probe's prev (9).
        assert!(!p.maybe_decrease_to(LogIndex(5), LogIndex(1)));
        assert!(p.maybe_decrease_to(LogIndex(9), LogIndex(1)));
        assert_eq!(p.next_index, LogIndex(3));
        assert!(!p.is_paused());
    }

    #[test]
    fn check_quorum_counts_self_and_recently_active_peers() {
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let mut t = ProgressTracker::new(&Membership::of_voters(ids), 4);
        assert!(!t.quorum_active_and_reset(NodeId(1)));
        t.get_mut(NodeId(3)).unwrap().recent_active = true;
        assert!(t.quorum_active_and_reset(NodeId(1)));
        assert!(!t.quorum_active_and_reset(NodeId(1)), "window was reset");
    }

    #[test]
    fn first_vote_of_each_voter_counts_and_non_voters_are_ignored() {
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let mut t = ProgressTracker::new(&Membership::of_voters(ids), 4);
        t.record_vote(NodeId(1), true);
        t.record_vote(NodeId(2), false);
        t.record_vote(NodeId(2), true);
        t.record_vote(NodeId(9), true);
        assert_eq!(t.tally_votes(), VoteResult::Pending);
        t.record_vote(NodeId(3), true);
        assert_eq!(t.tally_votes(), VoteResult::Won);
    }

    #[test]
    fn learners_are_replicated_to_but_never_counted() {
        let mut m = Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]);
        m.learners.insert(NodeId(4));
        let mut t = ProgressTracker::new(&m, 4);
        assert_eq!(t.peers(NodeId(1)), [NodeId(2), NodeId(3), NodeId(4)]);
        assert_eq!(t.voter_peers(NodeId(1)), [NodeId(2), NodeId(3)]);
        t.get_mut(NodeId(4)).unwrap().maybe_update(LogIndex(9));
        t.get_mut(NodeId(1)).unwrap().maybe_update(LogIndex(9));
        assert_eq!(t.committed_index(), LogIndex(0), "a learner is no quorum");
        t.record_vote(NodeId(4), true);
        t.record_vote(NodeId(1), true);
        assert_eq!(t.tally_votes(), VoteResult::Pending, "nor a voter");
    }

    #[test]
    fn a_joint_configuration_needs_both_majorities_and_keeps_progress() {
        let mut t =
            ProgressTracker::new(&Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]), 4);
        t.get_mut(NodeId(2)).unwrap().maybe_update(LogIndex(5));
        let joint = Membership {
            voters: [NodeId(1), NodeId(4), NodeId(5)].into(),
            outgoing: [NodeId(1), NodeId(2), NodeId(3)].into(),
            learners: BTreeSet::new(),
        };
        t.set_membership(&joint, LogIndex(7));
        assert_eq!(t.get(NodeId(2)).unwrap().match_index, LogIndex(5), "kept");
        assert_eq!(
            t.get(NodeId(4)).unwrap().next_index,
            LogIndex(7),
            "new, probed at the last entry"
        );
        for id in [1, 2] {
            t.get_mut(NodeId(id)).unwrap().maybe_update(LogIndex(6));
        }
        assert_eq!(
            t.committed_index(),
            LogIndex(0),
            "the old majority alone is not enough"
        );
        t.get_mut(NodeId(4)).unwrap().maybe_update(LogIndex(6));
        assert_eq!(t.committed_index(), LogIndex(6));
        t.set_membership(&joint.leave_joint(), LogIndex(7));
        assert!(t.get(NodeId(2)).is_none(), "removed members are forgotten");
        assert!(t.follows(&joint.leave_joint()));
    }
}
