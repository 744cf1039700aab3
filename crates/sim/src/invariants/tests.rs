//! Unit tests of the invariant checks: each catches what it guards, and lets
//! through what is allowed.

use super::*;
use raft::{Membership, Message, NodeId, Role, SoftState};
use replica::SnapshotDigest;

fn digest(index: u64, term: u64, payload: u64) -> EntryDigest {
    EntryDigest {
        index: LogIndex(index),
        term: Term(term),
        payload,
    }
}

fn leader(term: u64) -> SoftState {
    SoftState {
        role: Role::Leader,
        term: Term(term),
        leader: None,
    }
}

#[test]
fn two_leaders_in_one_term_break_election_safety() {
    let mut inv = Invariants::new(3);
    inv.soft_state(0, 1, leader(2));
    inv.soft_state(0, 2, leader(3));
    assert!(inv.violations().is_empty());
    inv.soft_state(5, 3, leader(2));
    assert_eq!(inv.violations()[0].invariant, "election safety");
}

#[test]
fn same_index_and_term_with_different_history_breaks_log_matching() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 2, 20)]);
    inv.persisted(0, 2, &[digest(1, 1, 11), digest(2, 2, 20)]);
    assert_eq!(inv.violations()[0].invariant, "log matching");
}

#[test]
fn different_entries_applied_at_one_index_break_state_machine_safety() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10)]);
    inv.persisted(0, 2, &[digest(1, 2, 11)]);
    inv.applied(0, 1, digest(1, 1, 10));
    assert!(inv.violations().is_empty());
    inv.applied(0, 2, digest(1, 2, 11));
    assert_eq!(inv.violations()[0].invariant, "state machine safety");
}

#[test]
fn a_leader_missing_a_committed_entry_breaks_leader_completeness() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10)]);
    inv.applied(0, 1, digest(1, 1, 10));
    inv.soft_state(0, 2, leader(2));
    assert_eq!(inv.violations()[0].invariant, "leader completeness");
}

#[test]
fn a_conflicting_suffix_may_be_replaced_when_uncommitted() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
    inv.persisted(0, 1, &[digest(2, 2, 30)]);
    inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 2, 30)]);
    inv.applied(0, 2, digest(1, 1, 10));
    inv.applied(0, 2, digest(2, 2, 30));
    inv.soft_state(0, 1, leader(3));
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
}

#[test]
fn replacing_a_committed_entry_is_caught_but_replacing_a_divergent_one_is_not() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
    let voters = Membership::of_voters([1].map(NodeId));
    inv.leader_committed(0, 1, LogIndex(2), Term(1), Term(1), &voters);
    inv.applied(0, 1, digest(1, 1, 10));
    inv.applied(0, 1, digest(2, 1, 20));
    // Node 2 held a divergent entry at index 2; the committed one replaces it.
    inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 3, 99)]);
    inv.violations.clear();
    inv.persisted(0, 2, &[digest(2, 1, 20)]);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    inv.persisted(0, 1, &[digest(2, 4, 40)]);
    assert_eq!(inv.violations()[0].invariant, "committed entry overwritten");
}

/// Seed 585 (drawn config, pauses): n2, leader of t36, held i2228/t36 and
/// was paused. n6 won t38 without i2228 (not committed then) and appended its
/// own i2228/t38; n8 then won t40 holding i2228/t36 and committed it in t40.
/// On resume n2 replayed its queued messages in arrival order, accepting
/// n6's t38 append over i2228/t36. Legal: n2 was in term 38 < 40, not
/// counted in the t40 commit, and n8 repaired it next. An entry of a term
/// at or after the commit term written there is a real overwrite.
#[test]
fn an_entry_older_than_the_commit_term_may_replace_a_committed_one_on_a_lagging_node() {
    let mut inv = Invariants::new(3);
    let voters = Membership::of_voters([1, 2, 3].map(NodeId));
    let log = [digest(1, 1, 10), digest(2, 36, 20), digest(3, 40, 30)];
    inv.persisted(0, 1, &log[..2]);
    inv.persisted(0, 2, &log);
    inv.persisted(0, 3, &log);
    inv.answer_sent(0, 2, &ack(2, 3, 40, 3));
    inv.leader_committed(0, 3, LogIndex(3), Term(40), Term(40), &voters);
    for entry in log {
        inv.applied(0, 3, entry);
    }
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // Node 1 replays the append of the term-38 leader that lacked i2.
    inv.persisted(0, 1, &[digest(2, 38, 99)]);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // The same overwrite by an entry of the commit term is caught.
    inv.persisted(0, 1, &[digest(2, 40, 98)]);
    assert_eq!(inv.violations()[0].invariant, "committed entry overwritten");
}

#[test]
fn a_leader_committing_by_counting_an_older_term_entry_breaks_the_commit_rule() {
    let mut inv = Invariants::new(3);
    let voters = Membership::of_voters([1, 2, 3].map(NodeId));
    let log = [digest(1, 2, 10), digest(2, 4, 20)];
    inv.persisted(0, 1, &log);
    inv.persisted(0, 2, &log);
    inv.answer_sent(0, 2, &ack(2, 1, 4, 2));
    // The leader of term 4 commits its own entry: fine.
    inv.leader_committed(0, 1, LogIndex(2), Term(4), Term(4), &voters);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // The Figure 8 bug: the leader of term 4 commits index 1, of term 2,
    // by counting its replicas.
    let mut inv = Invariants::new(3);
    inv.persisted(0, 1, &log[..1]);
    inv.persisted(0, 2, &log[..1]);
    inv.leader_committed(0, 1, LogIndex(1), Term(2), Term(4), &voters);
    assert_eq!(inv.violations()[0].invariant, "commit rule");
    assert_eq!(inv.violations()[0].kind, ViolationKind::CommitRule);
}

#[test]
fn a_deposed_leader_may_append_where_it_never_held_the_committed_entry() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10)]);
    inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 2, 20)]);
    inv.applied(0, 2, digest(1, 1, 10));
    inv.applied(0, 2, digest(2, 2, 20));
    // Node 1, cut off, appends its own proposal of its old term at i2.
    inv.persisted(0, 1, &[digest(2, 1, 99)]);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
}

fn hs(term: u64, vote: Option<u64>) -> HardState {
    HardState {
        term: Term(term),
        vote: vote.map(NodeId),
        commit: LogIndex(0),
    }
}

#[test]
fn a_forgotten_term_or_vote_breaks_hard_state_durability() {
    let mut inv = Invariants::new(1);
    inv.persisted_hard_state(1, hs(3, Some(2)));
    inv.recovered(0, 1, hs(4, None), None, &[]);
    assert!(
        inv.violations().is_empty(),
        "a newer hard state may survive"
    );
    inv.persisted_hard_state(1, hs(4, Some(1)));
    inv.recovered(0, 1, hs(4, None), None, &[]);
    assert_eq!(inv.violations()[0].invariant, "hard state durable");
    inv.recovered(0, 1, hs(2, None), None, &[]);
    assert_eq!(inv.violations().len(), 2);
}

#[test]
fn a_synced_committed_entry_missing_after_recovery_is_a_lost_write() {
    let mut inv = Invariants::new(2);
    let log = [digest(1, 1, 10), digest(2, 1, 20), digest(3, 1, 30)];
    inv.persisted(0, 1, &log);
    inv.applied(0, 1, log[0]);
    inv.applied(0, 1, log[1]);
    // Losing the uncommitted third entry is fine; so is gaining one.
    inv.recovered(0, 1, HardState::default(), None, &log[..2]);
    inv.recovered(0, 1, HardState::default(), None, &log);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    inv.recovered(0, 1, HardState::default(), None, &log[..1]);
    assert_eq!(inv.violations()[0].invariant, "acknowledged write lost");
    // A node that never synced index 2 loses nothing by lacking it.
    inv.persisted(0, 2, &log[..1]);
    inv.recovered(0, 2, HardState::default(), None, &log[..1]);
    assert_eq!(inv.violations().len(), 1);
}

#[test]
fn sending_an_entry_with_a_payload_nobody_persisted_is_caught() {
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10)]);
    inv.sent_entries(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
    assert!(inv.violations().is_empty());
    inv.sent_entries(0, 2, &[digest(1, 1, 11)]);
    assert_eq!(inv.violations()[0].invariant, "replicates verified data");
}

#[test]
fn commit_index_going_back_is_caught_but_restart_resets_it() {
    let mut inv = Invariants::new(1);
    inv.commit_index(0, 1, LogIndex(5), LogIndex(5));
    inv.restarted(1);
    inv.commit_index(0, 1, LogIndex(2), LogIndex(5));
    assert!(inv.violations().is_empty());
    inv.commit_index(0, 1, LogIndex(1), LogIndex(5));
    assert_eq!(inv.violations()[0].invariant, "commit index monotonic");
}

fn snap(index: u64, term: u64, state: u64) -> SnapshotDigest {
    SnapshotDigest {
        index: LogIndex(index),
        term: Term(term),
        state,
    }
}

/// Node 1 persists and applies `log`; returns the checker.
fn committed(log: &[EntryDigest], nodes: usize) -> Invariants {
    let mut inv = Invariants::new(nodes);
    inv.persisted(0, 1, log);
    for e in log {
        inv.applied(0, 1, *e);
    }
    inv
}

#[test]
fn a_snapshot_of_uncommitted_or_other_entries_is_caught() {
    let log = [digest(1, 1, 10), digest(2, 1, 20)];
    let mut inv = committed(&log, 2);
    inv.snapshot_taken(0, 1, snap(2, 1, 7));
    assert!(inv.violations().is_empty());
    inv.snapshot_taken(0, 2, snap(3, 1, 7));
    inv.snapshot_installed(0, 2, snap(2, 2, 7));
    let names: Vec<_> = inv.violations().iter().map(|v| v.invariant).collect();
    assert_eq!(names, ["snapshot of committed state"; 2]);
}

#[test]
fn snapshots_with_different_states_at_one_index_are_caught() {
    let log = [digest(1, 1, 10), digest(2, 1, 20)];
    let mut inv = committed(&log, 2);
    inv.snapshot_taken(0, 1, snap(2, 1, 7));
    inv.state_machine_replaced(0, 2, snap(2, 1, 8));
    assert_eq!(inv.violations()[0].invariant, "state machine agreement");
}

#[test]
fn an_installed_snapshot_replaces_a_conflicting_log_and_applying_resumes_after_it() {
    let log = [digest(1, 1, 10), digest(2, 1, 20), digest(3, 1, 30)];
    let mut inv = committed(&log, 2);
    // Node 2 holds a conflicting, uncommitted entry at 2.
    inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 2, 99)]);
    inv.state_machine_replaced(0, 2, snap(2, 1, 5));
    inv.snapshot_installed(0, 2, snap(2, 1, 5));
    // Its log is now the committed prefix: entry 3 follows it, and
    // applying resumes at 3.
    inv.persisted(0, 2, &[digest(3, 1, 30)]);
    inv.applied(0, 2, digest(3, 1, 30));
    inv.soft_state(0, 2, leader(3));
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
}

#[test]
fn recovery_from_a_snapshot_that_lost_a_synced_committed_entry_is_caught() {
    let log = [digest(1, 1, 10), digest(2, 1, 20), digest(3, 1, 30)];
    let mut inv = committed(&log, 1);
    inv.restarted(1);
    // The snapshot covers 1..=2 but entry 3, synced and committed, is gone.
    inv.recovered(0, 1, HardState::default(), Some(snap(2, 1, 5)), &[]);
    assert_eq!(inv.violations()[0].invariant, "acknowledged write lost");
    let mut inv = committed(&log, 1);
    inv.restarted(1);
    inv.recovered(0, 1, HardState::default(), Some(snap(2, 1, 5)), &log[2..]);
    inv.applied(0, 1, digest(3, 1, 30));
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
}

#[test]
fn a_commit_without_a_quorum_of_the_configuration_in_force_is_caught() {
    let log = [digest(1, 1, 10)];
    let mut inv = Invariants::new(5);
    inv.persisted(0, 1, &log);
    inv.persisted(0, 2, &log);
    inv.answer_sent(0, 2, &ack(2, 1, 1, 1));
    let three = Membership::of_voters([1, 2, 3].map(NodeId));
    inv.leader_committed(0, 1, LogIndex(1), Term(1), Term(1), &three);
    assert!(inv.violations().is_empty(), "two of three");
    // Joint {1,2,3} -> {3,4,5}: the new majority does not hold it.
    let joint = Membership {
        voters: [3, 4, 5].map(NodeId).into(),
        outgoing: [1, 2, 3].map(NodeId).into(),
        learners: Default::default(),
    };
    inv.leader_committed(0, 1, LogIndex(1), Term(1), Term(1), &joint);
    assert!(
        inv.violations()
            .iter()
            .any(|v| v.kind == ViolationKind::CommitSafety),
        "{:?}",
        inv.violations()
    );
}

#[test]
fn a_wiped_node_may_come_back_empty() {
    let log = [digest(1, 1, 10)];
    let mut inv = committed(&log, 1);
    inv.persisted_hard_state(1, hs(3, Some(1)));
    inv.wiped(1);
    inv.restarted(1);
    inv.recovered(0, 1, HardState::default(), None, &[]);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
}

#[test]
fn an_uncommitted_synced_entry_replaced_before_a_crash_is_not_a_lost_write() {
    // Node 1 synced i2 of t1, never committed; the cluster committed a
    // different i2 (t2), and node 1's conflicting write of it was cut by
    // a crash after its truncation reached the disk.
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
    let committed = [digest(1, 1, 10), digest(2, 2, 99), digest(3, 2, 30)];
    inv.persisted(0, 2, &committed);
    for e in committed {
        inv.applied(0, 2, e);
    }
    inv.restarted(1);
    inv.recovered(0, 1, HardState::default(), None, &committed[..2]);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // Losing the committed i1 is still caught.
    let mut inv = Invariants::new(2);
    inv.persisted(0, 1, &committed[..2]);
    inv.persisted(0, 2, &committed);
    for e in committed {
        inv.applied(0, 2, e);
    }
    inv.restarted(1);
    inv.recovered(0, 1, HardState::default(), None, &[]);
    assert_eq!(inv.violations()[0].invariant, "acknowledged write lost");
}

/// An append's answer: `from` acknowledges to `to` entries up to `index`
/// in `term`.
fn ack(from: u64, to: u64, term: u64, index: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: raft::MessageBody::AppendEntriesResponse {
            success: true,
            index: LogIndex(index),
            reject_hint: None,
            read_round: 0,
        },
    }
}

fn vote(from: u64, to: u64, term: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: raft::MessageBody::RequestVoteResponse { granted: true },
    }
}

#[test]
fn a_recovered_vote_other_than_the_one_granted_breaks_vote_durability() {
    let mut inv = Invariants::new(3);
    // The vote reached the disk before it left, as it must.
    inv.persisted_hard_state(1, hs(5, Some(2)));
    inv.answer_sent(0, 1, &vote(1, 2, 5));
    inv.recovered(0, 1, hs(5, Some(2)), None, &[]);
    inv.recovered(0, 1, hs(6, None), None, &[]);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // Planted: a recovery that reads back another candidate in that term
    // (a disk that lost the vote's record and an older one in its place).
    let mut inv = Invariants::new(3);
    inv.answer_sent(0, 1, &vote(1, 2, 5));
    inv.recovered(0, 1, hs(5, Some(3)), None, &[]);
    assert!(
        inv.violations()
            .iter()
            .any(|v| v.kind == ViolationKind::VoteDurability),
        "{:?}",
        inv.violations()
    );
    // And one that forgot the term altogether.
    let mut inv = Invariants::new(3);
    inv.persisted_hard_state(1, hs(5, Some(2)));
    inv.answer_sent(0, 1, &vote(1, 2, 5));
    inv.recovered(0, 1, hs(4, None), None, &[]);
    assert_eq!(inv.violations()[0].kind, ViolationKind::VoteDurability);
}

#[test]
fn a_leader_elected_by_votes_of_an_older_term_is_caught() {
    let three = Membership::of_voters([1, 2, 3].map(NodeId));
    let mut inv = Invariants::new(3);
    inv.persisted_hard_state(2, hs(4, Some(1)));
    inv.answer_sent(0, 2, &vote(2, 1, 4));
    inv.leader_is_voter(0, 1, Term(4), true, &three);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // Planted: node 1 counts node 2's vote of term 3 to lead term 4.
    let mut inv = Invariants::new(3);
    inv.persisted_hard_state(2, hs(3, Some(1)));
    inv.answer_sent(0, 2, &vote(2, 1, 3));
    inv.leader_is_voter(0, 1, Term(4), true, &three);
    assert_eq!(inv.violations()[0].kind, ViolationKind::StaleAnswers);
}

#[test]
fn a_leader_committing_on_acknowledgements_of_an_older_term_is_caught() {
    let three = Membership::of_voters([1, 2, 3].map(NodeId));
    let log = [digest(1, 4, 10)];
    let mut inv = Invariants::new(3);
    inv.persisted(0, 1, &log);
    inv.persisted(0, 2, &log);
    // Node 2 acknowledged i1 to node 1 while node 1 led term 3; a rejection
    // of term 5 does not erase what term 4 recorded.
    inv.answer_sent(0, 2, &ack(2, 1, 3, 1));
    inv.leader_committed(0, 1, LogIndex(1), Term(4), Term(4), &three);
    assert_eq!(inv.violations()[0].kind, ViolationKind::StaleAnswers);
    let mut inv = Invariants::new(3);
    inv.persisted(0, 1, &log);
    inv.persisted(0, 2, &log);
    inv.answer_sent(0, 2, &ack(2, 1, 4, 1));
    let mut rejection = ack(3, 1, 5, 0);
    rejection.body = raft::MessageBody::AppendEntriesResponse {
        success: false,
        index: LogIndex(0),
        reject_hint: None,
        read_round: 0,
    };
    inv.answer_sent(0, 3, &rejection);
    inv.leader_committed(0, 1, LogIndex(1), Term(4), Term(4), &three);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
}

#[test]
fn a_lease_read_after_a_higher_term_committed_breaks_lease_safety_within_the_drift_bound() {
    let one = Membership::of_voters([2].map(NodeId));
    let mut inv = Invariants::new(2);
    inv.persisted(0, 2, &[digest(1, 3, 10)]);
    inv.lease_read(0, 1, Term(2), LogIndex(0), true);
    assert!(inv.violations().is_empty(), "nothing committed yet");
    // A single-voter configuration: node 2 commits in term 3 on its own.
    inv.leader_committed(0, 2, LogIndex(1), Term(3), Term(3), &one);
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    inv.lease_read(0, 1, Term(2), LogIndex(0), false);
    assert!(
        inv.violations().is_empty(),
        "beyond the drift bound: not checked"
    );
    inv.lease_read(0, 2, Term(3), LogIndex(1), true);
    assert!(inv.violations().is_empty(), "the current leader may");
    inv.lease_read(0, 1, Term(2), LogIndex(0), true);
    assert_eq!(inv.violations()[0].kind, ViolationKind::LeaseSafety);
    assert_eq!(inv.lease_reads(), 4);
}

/// An AppendEntries (a heartbeat) from `from` to `to` in `term` carrying
/// read round `round`.
fn heartbeat(from: u64, to: u64, term: u64, round: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: raft::MessageBody::AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: Vec::new(),
            leader_commit: LogIndex(0),
            read_round: round,
        },
    }
}

/// The answer `from` sends `to` in `term`, echoing read round `round`.
fn answer(from: u64, to: u64, term: u64, round: u64, success: bool) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: raft::MessageBody::AppendEntriesResponse {
            success,
            index: LogIndex(0),
            reject_hint: None,
            read_round: round,
        },
    }
}

/// Seed 236: node 2 led term 15 (rounds up to 581) and again term 16
/// (rounds restarted, up to 152); node 3, in term 16, answered a held
/// term-15 append echoing its round 581.
#[test]
fn an_answer_echoing_a_round_of_an_older_leadership_breaks_read_rounds() {
    let mut inv = Invariants::new(3);
    for round in [1, 300, 581] {
        inv.answer_sent(0, 2, &heartbeat(2, 3, 15, round));
        inv.answer_sent(0, 3, &answer(3, 2, 15, round, true));
    }
    for round in [0, 1, 152] {
        inv.answer_sent(0, 2, &heartbeat(2, 3, 16, round));
        inv.answer_sent(0, 3, &answer(3, 2, 16, round, true));
    }
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    inv.answer_sent(7, 3, &answer(3, 2, 16, 581, false));
    assert_eq!(inv.violations().len(), 1, "{:?}", inv.violations());
    let v = &inv.violations()[0];
    assert_eq!(v.kind, ViolationKind::ReadRounds);
    assert_eq!((v.node, v.time_ns), (3, 7));
    assert_eq!(
        v.detail,
        "read round 581 answered in t16 but n2 sent at most round 152 to n3 in t16 \
         (§6.4: only an answer to the leader's own message of its term confirms a round)"
    );
    // Before the leader of 16 sent anything, the same answer is caught too.
    let mut inv = Invariants::new(3);
    inv.answer_sent(0, 2, &heartbeat(2, 3, 15, 581));
    inv.answer_sent(0, 3, &answer(3, 2, 16, 581, false));
    assert_eq!(inv.violations()[0].kind, ViolationKind::ReadRounds);
    assert!(inv.violations()[0].detail.contains("sent at most round 0"));
    // And a round sent to another peer only is no round sent to this one.
    let mut inv = Invariants::new(3);
    inv.answer_sent(0, 2, &heartbeat(2, 1, 16, 5));
    inv.answer_sent(0, 3, &answer(3, 2, 16, 5, true));
    assert_eq!(inv.violations()[0].kind, ViolationKind::ReadRounds);
}

#[test]
fn answers_to_a_leaders_own_rounds_and_older_terms_rounds_as_zero_are_legal() {
    let mut inv = Invariants::new(3);
    // Node 2 leads term 15; node 3 answers late and out of order.
    for round in [1, 2, 581] {
        inv.answer_sent(0, 2, &heartbeat(2, 3, 15, round));
    }
    inv.answer_sent(0, 3, &answer(3, 2, 15, 581, true));
    inv.answer_sent(0, 3, &answer(3, 2, 15, 2, true));
    // Re-elected in 16, rounds restart.
    inv.answer_sent(0, 2, &heartbeat(2, 3, 16, 1));
    inv.answer_sent(0, 2, &heartbeat(2, 3, 16, 152));
    // The answer to a held term-15 append, sent in 16, carries no round.
    inv.answer_sent(0, 3, &answer(3, 2, 16, 0, false));
    inv.answer_sent(0, 3, &answer(3, 2, 16, 152, true));
    // A late answer in 15 to 15's own round: not checked once node 2 leads
    // a newer term (it drops answers of an older term).
    inv.answer_sent(0, 3, &answer(3, 2, 15, 581, true));
    // A held term-15 append leaving node 2 after it leads 16 changes nothing.
    inv.answer_sent(0, 2, &heartbeat(2, 3, 15, 600));
    inv.answer_sent(0, 3, &answer(3, 2, 16, 152, true));
    // Node 1 leads 17; node 2 leads again in 18, rounds from 1.
    inv.answer_sent(0, 1, &heartbeat(1, 3, 17, 4));
    inv.answer_sent(0, 3, &answer(3, 1, 17, 4, true));
    inv.answer_sent(0, 2, &heartbeat(2, 3, 18, 1));
    inv.answer_sent(0, 3, &answer(3, 2, 18, 1, true));
    inv.answer_sent(0, 3, &answer(3, 2, 18, 0, false));
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    // Memory: one term per leader.
    assert_eq!(inv.read_rounds.len(), 2);
    assert_eq!(inv.read_rounds[&NodeId(2)].term, Term(18));
}

#[test]
fn a_follower_committing_past_every_leaders_commit_breaks_commit_from_a_leader() {
    // The deposed-leader bug (raft's
    // a_deposed_leader_commits_only_what_its_new_leader_says_5_3): a
    // follower counts the match indexes it kept from its own leadership and
    // commits index 3, which no leader has committed.
    let mut inv = Invariants::new(5);
    let voters = Membership::of_voters([1, 2, 3, 4, 5].map(NodeId));
    let log = [digest(1, 1, 10), digest(2, 5, 20), digest(3, 5, 30)];
    for node in [1, 5] {
        inv.persisted(0, node, &log);
    }
    for node in [2, 3] {
        inv.persisted(0, node, &log[..2]);
        inv.answer_sent(0, node, &ack(node, 5, 5, 2));
    }
    // The leader of term 5 commits index 2, its own entry, on n2, n3, n5.
    inv.leader_committed(0, 5, LogIndex(2), Term(5), Term(5), &voters);
    // What a leader committed, a follower may commit.
    inv.commit_from_a_leader(0, 1, LogIndex(2));
    assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    inv.commit_from_a_leader(0, 1, LogIndex(3));
    let v = inv.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].invariant, "commit from a leader");
    assert!(
        v[0].detail.contains("no leader has committed past i2"),
        "{v:?}"
    );
}
