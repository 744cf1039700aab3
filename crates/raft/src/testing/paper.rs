//! Scenarios named after the rules of the Raft paper (§) and Ongaro's
//! dissertation, told through the test network or by stepping one node.

use super::network::{Network, carries, ids};
use crate::{
    Config, Entry, EntryPayload, HardState, LogIndex, Message, MessageBody, NodeId, ProposeError,
    RawNode, ReadIndexError, ReadState, RestoreError, Role, StepError, Term,
};

fn ent(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: EntryPayload::Command(format!("{term}.{index}").into_bytes()),
    }
}

/// Entries at indices 1.. with these terms.
fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| ent(t, i as u64 + 1))
        .collect()
}

fn append(
    from: u64,
    to: u64,
    term: u64,
    prev: (u64, u64),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(prev.0),
            prev_log_term: Term(prev.1),
            entries,
            leader_commit: LogIndex(commit),
            read_round: 0,
        },
    }
}

fn request_vote(from: u64, to: u64, term: u64, last: (u64, u64)) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: MessageBody::RequestVote {
            last_log_index: LogIndex(last.0),
            last_log_term: Term(last.1),
            transfer: false,
        },
    }
}

fn config(id: u64, n: u64) -> Config {
    Config::new(NodeId(id), ids(n), 1)
}

/// A node of a 3-node cluster restored with a log of these terms.
fn restored(id: u64, term: u64, terms: &[u64], commit: u64) -> RawNode {
    let hs = HardState {
        term: Term(term),
        vote: None,
        commit: LogIndex(commit),
    };
    RawNode::restore(config(id, 3), hs, log_of(terms)).expect("valid restore")
}

fn terms_of(node: &RawNode) -> Vec<u64> {
    (1..=node.last_index().0)
        .map(|i| node.term_at(LogIndex(i)).unwrap().0)
        .collect()
}

fn append_response(m: &Message) -> (bool, LogIndex) {
    match m.body {
        MessageBody::AppendEntriesResponse { success, index, .. } => (success, index),
        ref other => panic!("expected an append response, got {other:?}"),
    }
}

// ---------------------------------------------------------------- election

#[test]
fn a_single_election_makes_one_leader_that_commits_a_noop_5_2() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    assert_eq!(net.node(1).term(), Term(1));
    for id in 1..=3 {
        assert_eq!(net.node(id).leader(), Some(NodeId(1)));
        assert_eq!(net.node(id).commit_index(), LogIndex(1));
        assert_eq!(net.applied[&NodeId(id)][0].payload, EntryPayload::Noop);
    }
}

#[test]
fn election_timeout_elects_someone_without_help_5_2() {
    let mut net = Network::new(5);
    net.tick_all(40);
    let leader = net.leader().expect("a leader within 2 election timeouts");
    for id in 1..=5 {
        assert_eq!(net.node(id).leader(), Some(NodeId(leader)));
    }
}

#[test]
fn one_vote_per_term_5_2() {
    let mut node = RawNode::new(config(1, 3)).unwrap();
    node.step(request_vote(2, 1, 1, (0, 0))).unwrap();
    node.step(request_vote(3, 1, 1, (0, 0))).unwrap();
    let rd = node.ready();
    assert_eq!(rd.hard_state.unwrap().vote, Some(NodeId(2)));
    let grants: Vec<(NodeId, bool)> = rd
        .persisted_messages
        .iter()
        .map(|m| match m.body {
            MessageBody::RequestVoteResponse { granted } => (m.to, granted),
            _ => panic!("unexpected {m:?}"),
        })
        .collect();
    assert_eq!(grants, vec![(NodeId(2), true), (NodeId(3), false)]);
}

#[test]
fn a_candidate_with_a_stale_log_never_wins_5_4_1() {
    let mut net = Network::with_config(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    assert!(net.elect(1));
    net.isolate(3);
    for i in 0..3 {
        net.propose(1, &[i]).unwrap();
        net.deliver_all();
    }
    assert_eq!(net.node(2).commit_index(), LogIndex(4));
    net.crash(1);
    net.heal();
    // An election timeout later (node 2's lease of node 1 is over, §4.2.3),
    // node 3 lacks the committed entries 2..=4: node 2 refuses its vote.
    start_campaign(&mut net, 3);
    net.deliver_all();
    assert_ne!(net.node(3).role(), Role::Leader);
    // Node 2, whose log is complete, can win (node 3 votes for it).
    assert!(net.elect(2));
    net.deliver_all();
    assert_eq!(net.applied_commands(3), vec![vec![0], vec![1], vec![2]]);
}

#[test]
fn votes_are_persisted_before_the_response_leaves_5_2() {
    let mut node = RawNode::new(config(1, 3)).unwrap();
    node.step(request_vote(2, 1, 4, (0, 0))).unwrap();
    let rd = node.ready();
    let hs = rd.hard_state.expect("term and vote to persist");
    assert_eq!((hs.term, hs.vote), (Term(4), Some(NodeId(2))));
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages.len(), 1);
}

#[test]
fn vote_and_append_responses_come_only_in_persisted_messages() {
    let mut net = Network::new(3);
    net.record_sent = true;
    assert!(net.elect(1));
    net.propose(1, b"x").unwrap();
    net.deliver_all();
    net.tick_all(5);
    let mut kinds = std::collections::BTreeSet::new();
    for (m, persisted) in &net.sent_log {
        kinds.insert(m.body.kind());
        let must_wait = m.body.is_response() || matches!(m.body, MessageBody::RequestVote { .. });
        assert_eq!(*persisted, must_wait, "{m:?}");
    }
    assert_eq!(kinds.len(), 6, "every kind was exercised: {kinds:?}");
}

// ---------------------------------------------------------------- pre-vote, leases, check-quorum

#[test]
fn pre_vote_keeps_a_partitioned_node_from_disrupting_9_6() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    let term = net.node(1).term();
    net.partition(&[&[1, 2], &[3]]);
    net.tick_all(100);
    assert_eq!(net.node(3).term(), term, "pre-votes never raise the term");
    net.heal();
    net.tick_all(10);
    assert_eq!(net.leader(), Some(1));
    assert_eq!(net.node(1).term(), term, "the leader kept leading");
    assert_eq!(net.node(3).leader(), Some(NodeId(1)));
}

#[test]
fn without_pre_vote_a_rejoining_node_deposes_the_leader() {
    // The contrast to the test above: the disruption pre-vote prevents.
    let mut net = Network::with_config(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    assert!(net.elect(1));
    let term = net.node(1).term();
    net.isolate(3);
    net.tick_all(100);
    assert!(net.node(3).term() > term);
    net.heal();
    net.tick_all(30);
    assert!(net.node(1).term() > term, "the old term ended");
}

#[test]
fn within_a_leader_lease_a_vote_request_raises_no_term_even_without_check_quorum_4_2_3() {
    // Pre-vote and check-quorum both off: only §4.2.3 stands between a
    // removed server (node 9, outside the configuration, with a long log)
    // and the cluster's terms.
    let mut net = Network::with_config(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    assert!(net.elect(1));
    let term = net.node(1).term().0;
    for id in [1, 2] {
        net.node_mut(id)
            .step(request_vote(9, id, term + 5, (9, term)))
            .unwrap();
        assert_eq!(net.node(id).term(), Term(term), "node {id} kept its term");
        assert!(!net.node(id).has_ready(), "node {id} did not answer");
    }
    assert_eq!(net.node(1).role(), Role::Leader);
    // Once node 2's lease has run out, the same request is an election.
    net.node_mut(2).expire_lease();
    net.node_mut(2)
        .step(request_vote(9, 2, term + 5, (9, term)))
        .unwrap();
    assert_eq!(net.node(2).term(), Term(term + 5));
    assert_eq!(net.node(2).hard_state().vote, Some(NodeId(9)));
}

fn pre_vote(from: u64, to: u64, term: u64, last: (u64, u64)) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: MessageBody::PreVote {
            last_log_index: LogIndex(last.0),
            last_log_term: Term(last.1),
        },
    }
}

fn pre_vote_answer(node: &mut RawNode) -> (Term, bool) {
    let rd = node.ready();
    assert!(
        rd.hard_state.is_none(),
        "a pre-vote changes no durable state"
    );
    match rd.persisted_messages.as_slice() {
        [m] => match m.body {
            MessageBody::PreVoteResponse { granted } => (m.term, granted),
            _ => panic!("unexpected {m:?}"),
        },
        other => panic!("expected one answer, got {other:?}"),
    }
}

#[test]
fn a_pre_vote_changes_neither_term_nor_vote_9_6() {
    let mut node = restored(2, 3, &[1, 3], 0);
    node.step(pre_vote(1, 2, 4, (2, 3))).unwrap();
    assert_eq!(pre_vote_answer(&mut node), (Term(4), true));
    assert_eq!((node.term(), node.hard_state().vote), (Term(3), None));
}

#[test]
fn a_pre_vote_for_a_stale_log_is_refused_with_our_term_9_6() {
    let mut node = restored(2, 3, &[1, 3], 0);
    node.step(pre_vote(1, 2, 4, (5, 2))).unwrap();
    assert_eq!(pre_vote_answer(&mut node), (Term(3), false));
}

/// Node 2 (term 3, log [1, 2], no leader known) after voting for node 1 in
/// term 3.
fn voted_for_1_in_term_3() -> RawNode {
    let mut node = restored(2, 3, &[1, 2], 0);
    node.step(request_vote(1, 2, 3, (2, 2))).unwrap();
    assert_eq!(node.hard_state().vote, Some(NodeId(1)));
    let _ = node.ready();
    node
}

#[test]
fn a_pre_vote_in_our_own_term_is_refused_to_all_but_our_candidate_9_6() {
    // A pre-vote asking about our current term (its sender is a term
    // behind, so its last log term is below 3) is a question about the vote we may already have cast: the
    // one-vote rule of §5.2 answers it.
    let mut node = voted_for_1_in_term_3();
    node.step(pre_vote(3, 2, 3, (2, 2))).unwrap();
    assert_eq!(pre_vote_answer(&mut node), (Term(3), false), "node 3");
    node.step(pre_vote(1, 2, 3, (2, 2))).unwrap();
    assert_eq!(pre_vote_answer(&mut node), (Term(3), true), "node 1");
    // In the next term our vote is free again.
    node.step(pre_vote(3, 2, 4, (2, 2))).unwrap();
    assert_eq!(
        pre_vote_answer(&mut node),
        (Term(4), true),
        "node 3, term 4"
    );
    assert_eq!(
        (node.term(), node.hard_state().vote),
        (Term(3), Some(NodeId(1)))
    );
}

#[test]
fn a_pre_vote_in_our_term_is_granted_when_we_have_not_voted_9_6() {
    let mut node = restored(2, 3, &[1, 2], 0);
    node.step(pre_vote(3, 2, 3, (2, 2))).unwrap();
    assert_eq!(pre_vote_answer(&mut node), (Term(3), true));
}

#[test]
fn a_pre_vote_for_a_later_term_is_granted_once_the_lease_is_over_9_6() {
    // Node 2 knows a leader (node 1, term 3) but has not heard from it for
    // an election timeout: its lease is over, and a later term's vote is
    // free whoever led this one.
    let mut node = restored(2, 3, &[1, 3], 0);
    node.step(append(1, 2, 3, (2, 3), vec![], 0)).unwrap();
    assert_eq!(node.leader(), Some(NodeId(1)));
    node.expire_lease();
    let _ = node.ready();
    node.step(pre_vote(3, 2, 4, (2, 3))).unwrap();
    assert_eq!(pre_vote_answer(&mut node), (Term(4), true));
    assert_eq!(node.leader(), Some(NodeId(1)), "a pre-vote changes nothing");
}

fn pre_vote_response(from: u64, term: u64, granted: bool) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body: MessageBody::PreVoteResponse { granted },
    }
}

#[test]
fn a_pre_candidate_counts_only_grants_of_its_own_round_9_6() {
    // Node 1 of 3, term 3: its pre-votes ask about term 4.
    let mut node = restored(1, 3, &[1, 3], 0);
    node.campaign();
    assert_eq!(node.role(), Role::PreCandidate);
    // A grant for term 3 answers a round of term 2: it does not count.
    node.step(pre_vote_response(2, 3, true)).unwrap();
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(3)));
    // A grant for term 4 does: with its own, a quorum of 2. It campaigns.
    node.step(pre_vote_response(3, 4, true)).unwrap();
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(4)));
}

#[test]
fn a_pre_candidate_that_a_quorum_refuses_returns_to_follower_9_6() {
    let mut node = restored(1, 3, &[1, 3], 0);
    node.campaign();
    assert_eq!(node.role(), Role::PreCandidate);
    // Refusals carry the refuser's term: ours, so they answer this round.
    node.step(pre_vote_response(2, 3, false)).unwrap();
    assert_eq!(node.role(), Role::PreCandidate);
    node.step(pre_vote_response(3, 3, false)).unwrap();
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(3)));
}

#[test]
fn a_pre_vote_is_ignored_within_a_leader_lease_9_6() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    let term = net.node(2).term().0;
    net.node_mut(2)
        .step(pre_vote(3, 2, term + 1, (9, term)))
        .unwrap();
    assert!(
        !net.node(2).has_ready(),
        "no answer while the leader is heard"
    );
    // Once the lease has run out (no heartbeat for an election timeout), the
    // same request is granted.
    for _ in 0..10 {
        net.node_mut(2).tick();
    }
    let _ = net.node_mut(2).ready();
    net.node_mut(2)
        .step(pre_vote(3, 2, term + 1, (9, term)))
        .unwrap();
    assert_eq!(pre_vote_answer(net.node_mut(2)), (Term(term + 1), true));
}

#[test]
fn a_candidate_returns_to_follower_on_an_append_of_its_term_5_2() {
    let mut node = RawNode::new(Config {
        pre_vote: false,
        ..config(1, 3)
    })
    .unwrap();
    node.campaign();
    assert_eq!(node.role(), Role::Candidate);
    node.step(append(2, 1, 1, (0, 0), vec![], 0)).unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.leader(), Some(NodeId(2)));
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down_6_2() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    net.isolate(1);
    for _ in 0..20 {
        net.tick(1);
    }
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(net.node(1).leader(), None);
}

#[test]
fn without_check_quorum_an_isolated_leader_stays_leader() {
    let mut net = Network::with_config(3, |c| c.check_quorum = false);
    assert!(net.elect(1));
    net.isolate(1);
    for _ in 0..20 {
        net.tick(1);
    }
    assert_eq!(net.node(1).role(), Role::Leader);
}

#[test]
fn a_follower_in_a_leader_lease_ignores_higher_term_votes_4_2_3() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    let term = net.node(2).term().0;
    net.node_mut(2)
        .step(request_vote(3, 2, term + 1, (9, term)))
        .unwrap();
    assert_eq!(net.node(2).term(), Term(term), "term not adopted");
    assert!(!net.node(2).has_ready(), "no answer at all");
}

#[test]
fn a_node_whose_term_ran_ahead_rejoins_without_livelock() {
    // With check-quorum and pre-vote, nobody adopts the high term through
    // votes (leases), and the node ignores the leader's stale appends; its
    // answer to them is what lets the cluster move to its term.
    let mut net = Network::new(3);
    assert!(net.elect(1));
    net.propose(1, b"a").unwrap();
    net.deliver_all();
    net.crash(3);
    let high = net.node(1).term().0 + 10;
    net.storage.get_mut(&NodeId(3)).unwrap().hard_state.term = Term(high);
    net.restart(3);
    net.tick_all(60);
    let leader = net.leader().expect("a leader again");
    assert!(net.node(leader).term() >= Term(high));
    net.propose(leader, b"b").unwrap();
    net.deliver_all();
    net.tick_all(3);
    for id in 1..=3 {
        assert_eq!(net.applied_commands(id), vec![b"a".to_vec(), b"b".to_vec()]);
    }
}

#[test]
fn a_stale_leader_learns_the_new_term_from_the_answer_to_its_append_5_1() {
    let mut node = restored(2, 5, &[1], 1);
    node.step(append(1, 2, 3, (1, 1), vec![], 1)).unwrap();
    let rd = node.ready();
    assert_eq!(rd.persisted_messages.len(), 1);
    let m = &rd.persisted_messages[0];
    assert_eq!(m.term, Term(5));
    assert!(!append_response(m).0);
}

// ---------------------------------------------------------------- replication

#[test]
fn follower_truncates_only_the_conflicting_suffix_5_3() {
    let mut node = restored(2, 2, &[1, 1, 2, 2, 2], 2);
    // The leader of term 3 has [1, 1, 3, 3].
    node.step(append(1, 2, 3, (2, 1), vec![ent(3, 3), ent(3, 4)], 2))
        .unwrap();
    assert_eq!(terms_of(&node), vec![1, 1, 3, 3]);
    let rd = node.ready();
    assert_eq!(rd.entries, vec![ent(3, 3), ent(3, 4)]);
    assert_eq!(
        append_response(&rd.persisted_messages[0]),
        (true, LogIndex(4))
    );
}

#[test]
fn duplicated_and_reordered_appends_do_not_truncate_5_3() {
    let mut node = restored(2, 1, &[], 0);
    let first = append(1, 2, 1, (0, 0), vec![ent(1, 1), ent(1, 2)], 0);
    let second = append(1, 2, 1, (2, 1), vec![ent(1, 3), ent(1, 4)], 0);
    node.step(second.clone()).unwrap(); // arrives first: rejected
    assert_eq!(node.last_index(), LogIndex(0));
    node.step(first.clone()).unwrap();
    node.step(second).unwrap();
    assert_eq!(node.last_index(), LogIndex(4));
    let rd = node.ready();
    node.persisted(Term(1), LogIndex(4));
    node.step(first).unwrap(); // a late duplicate
    assert_eq!(node.last_index(), LogIndex(4), "acknowledged entries kept");
    let rd2 = node.ready();
    assert!(rd2.entries.is_empty());
    // It is still answered, acknowledging what it proves.
    assert_eq!(
        append_response(&rd2.persisted_messages[0]),
        (true, LogIndex(2))
    );
    let answers: Vec<_> = rd.persisted_messages.iter().map(append_response).collect();
    assert_eq!(
        answers,
        vec![
            (false, LogIndex(2)),
            (true, LogIndex(2)),
            (true, LogIndex(4))
        ]
    );
}

#[test]
fn follower_commits_only_what_matches_the_leader() {
    // Entries 2..=3 came from an old leader; the new leader's log may differ
    // there, so its commit index 3 only commits index 1 here.
    let mut node = restored(2, 1, &[1, 1, 1], 0);
    node.step(append(1, 2, 2, (1, 1), vec![], 3)).unwrap();
    assert_eq!(node.commit_index(), LogIndex(1));
}

#[test]
fn append_overwriting_a_committed_entry_is_refused() {
    let mut node = restored(2, 2, &[1, 1], 2);
    let err = node
        .step(append(1, 2, 3, (1, 1), vec![ent(3, 2)], 2))
        .unwrap_err();
    assert_eq!(
        err,
        StepError::ConflictsWithCommitted { index: LogIndex(2) }
    );
    assert_eq!(terms_of(&node), vec![1, 1]);
}

#[test]
fn log_matching_holds_after_a_leader_change_with_divergent_logs_5_3() {
    let mut net = Network::with_config(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    assert!(net.elect(1));
    // Leader 1 appends entries that reach nobody.
    net.isolate(1);
    for i in 0..3 {
        net.propose(1, &[i]).unwrap();
    }
    net.heal();
    net.crash(1);
    net.restart(1);
    net.expire_leases();
    assert!(net.elect(2));
    net.propose(2, b"new").unwrap();
    net.deliver_all();
    net.tick_all(3);
    net.check_log_matching();
    assert_eq!(terms_of(net.node(1)), terms_of(net.node(2)));
    assert_eq!(net.applied_commands(1), vec![b"new".to_vec()]);
}

#[test]
fn fast_backtracking_reaches_the_match_point_in_few_round_trips_5_3() {
    let mut net = Network::with_config(3, |c| c.pre_vote = false);
    // Node 1 and 3: [1, then 50 entries of term 3]; node 2: [1, then 100 of
    // term 2]. Only index 1 is shared.
    let mut long_a = vec![1];
    long_a.extend([3; 50]);
    let mut long_b = vec![1];
    long_b.extend([2; 100]);
    for (id, terms, term) in [(1, &long_a, 3), (2, &long_b, 2), (3, &long_a, 3)] {
        let s = net.storage.get_mut(&NodeId(id)).unwrap();
        s.entries = log_of(terms);
        s.hard_state = HardState {
            term: Term(term),
            vote: None,
            commit: LogIndex(1),
        };
        net.crash(id);
        net.restart(id);
    }
    net.record_sent = true;
    assert!(net.elect(1));
    net.deliver_all();
    let rejections = net
        .sent_log
        .iter()
        .filter(|(m, _)| {
            m.from == NodeId(2)
                && matches!(
                    m.body,
                    MessageBody::AppendEntriesResponse { success: false, .. }
                )
        })
        .count();
    assert!(rejections <= 2, "{rejections} rejections");
    assert_eq!(terms_of(net.node(2)), terms_of(net.node(1)));
    assert_eq!(net.node(2).commit_index(), LogIndex(52));
}

#[test]
fn fast_backtracking_skips_to_the_end_of_the_leaders_entries_of_the_conflict_term() {
    // Leader [1, 2, 2, 4]; follower [1, 2, 2, 3, 3, 3]. The follower rejects
    // prev 4 naming term 3 (first index 4); the leader has no term 3, so it
    // probes from 4 with prev 3, which matches.
    let mut net = Network::with_config(3, |c| c.pre_vote = false);
    for (id, terms, term) in [
        (1, vec![1, 2, 2, 4], 4),
        (2, vec![1, 2, 2, 3, 3, 3], 3),
        (3, vec![1, 2, 2, 4], 4),
    ] {
        let s = net.storage.get_mut(&NodeId(id)).unwrap();
        s.entries = log_of(&terms);
        s.hard_state.term = Term(term);
        net.crash(id);
        net.restart(id);
    }
    net.record_sent = true;
    assert!(net.elect(1));
    let rejected: Vec<LogIndex> = net
        .sent_log
        .iter()
        .filter_map(|(m, _)| match m.body {
            MessageBody::AppendEntriesResponse {
                success: false,
                index,
                ..
            } if m.from == NodeId(2) => Some(index),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![LogIndex(4)]);
    assert_eq!(terms_of(net.node(2)), vec![1, 2, 2, 4, 5]);
}

/// Node 1 (log `leader`, term 5) is elected with `follower`'s log on node 2
/// (term of its last entry, commit 1) and node 1's on node 3; returns the
/// network (recording what was sent) with the logs reconciled.
fn backtrack(leader: &[u64], follower: &[u64]) -> Network {
    let mut net = Network::with_config(3, |c| c.pre_vote = false);
    for (id, terms) in [(1, leader), (2, follower), (3, leader)] {
        let s = net.storage.get_mut(&NodeId(id)).unwrap();
        s.entries = log_of(terms);
        s.hard_state = HardState {
            term: Term(*terms.last().unwrap()),
            vote: None,
            commit: LogIndex(1),
        };
        net.crash(id);
        net.restart(id);
    }
    net.record_sent = true;
    assert!(net.elect(1));
    net
}

/// The prev index of each append with entries node 1 sent node 2, and the
/// index of each rejection node 2 answered.
fn probes_and_rejections(net: &Network) -> (Vec<u64>, Vec<u64>) {
    let mut probes = Vec::new();
    let mut rejections = Vec::new();
    for (m, _) in &net.sent_log {
        match &m.body {
            MessageBody::AppendEntries {
                prev_log_index,
                entries,
                ..
            } if m.to == NodeId(2) && !entries.is_empty() => probes.push(prev_log_index.0),
            MessageBody::AppendEntriesResponse {
                success: false,
                index,
                ..
            } if m.from == NodeId(2) => rejections.push(index.0),
            _ => {}
        }
    }
    (probes, rejections)
}

#[test]
fn fast_backtracking_resumes_after_the_leaders_last_entry_of_the_conflict_term_5_3() {
    // Leader [1, 2, 2, 5, 5, 5]; follower [1, 2, 2, 2, 2, 2, 2]. The
    // follower rejects prev 6 naming term 2 (its first index of it above the
    // commit: 2). The leader's last entry of term 2 is at 3, so the logs
    // agree up to 3 (Log Matching): it probes with prev 3, not 1.
    let net = backtrack(&[1, 2, 2, 5, 5, 5], &[1, 2, 2, 2, 2, 2, 2]);
    assert_eq!(probes_and_rejections(&net), (vec![6, 3], vec![6]));
    assert_eq!(terms_of(net.node(2)), vec![1, 2, 2, 5, 5, 5, 6]);
}

#[test]
fn fast_backtracking_resumes_at_the_followers_first_entry_of_a_term_the_leader_lacks_5_3() {
    // Leader [1, 2, 2, 2, 5, 5]; follower [1, 2, 2, 3, 3, 3, 3]. The
    // follower rejects prev 6 naming term 3, first held at 4. The leader has
    // no term 3: everything from 4 on conflicts, so it probes with prev 3,
    // which matches; its own last entry of a lower term (at 4, term 2) is no
    // match point (the follower holds term 3 there).
    let net = backtrack(&[1, 2, 2, 2, 5, 5], &[1, 2, 2, 3, 3, 3, 3]);
    assert_eq!(probes_and_rejections(&net), (vec![6, 3], vec![6]));
    assert_eq!(terms_of(net.node(2)), vec![1, 2, 2, 2, 5, 5, 6]);
}

/// Ticks the leader, node 1, through one heartbeat interval without running
/// its ready loop.
fn heartbeat_interval_unprocessed(net: &mut Network) {
    for _ in 0..crate::config::DEFAULT_HEARTBEAT_TICK {
        net.node_mut(1).tick();
    }
}

/// Node 1 leads three nodes with one entry per append, one heartbeat
/// interval already past and answered.
fn streaming_leader() -> Network {
    let mut net = Network::with_config(3, |c| c.max_entries_per_append = 1);
    assert!(net.elect(1));
    heartbeat_interval_unprocessed(&mut net);
    net.process(NodeId(1));
    net.deliver_all();
    net
}

#[test]
fn a_stream_whose_match_index_advanced_within_the_heartbeat_keeps_streaming_5_3() {
    // §5.3: the leader retries appends that are lost. A Replicate stream is
    // reset to probing only when its match index stalled for a whole
    // heartbeat interval with appends outstanding; one that advanced keeps
    // streaming although appends are in flight.
    use crate::tracker::ProgressState;
    let mut net = streaming_leader();
    net.propose(1, b"a").unwrap();
    net.deliver_all();
    // The match index of node 2 moved (1 -> 2) since that heartbeat; three
    // appends are now in flight to it.
    for data in [b"b", b"c", b"d"] {
        net.propose(1, data).unwrap();
    }
    heartbeat_interval_unprocessed(&mut net);
    assert_eq!(
        net.node(1).progress_state(NodeId(2)),
        Some(ProgressState::Replicate)
    );
    net.process(NodeId(1));
    net.deliver_all();
    assert_eq!(net.applied_commands(2).len(), 4);
}

#[test]
fn a_stream_with_nothing_in_flight_is_not_reset_to_probing_5_3() {
    // Entries proposed but not yet sent (they leave at the next ready) are
    // no lost append: with nothing in flight the stream stays Replicate at a
    // heartbeat, although its match index did not move.
    use crate::tracker::ProgressState;
    let mut net = streaming_leader();
    net.node_mut(1).propose(b"a".to_vec()).unwrap();
    net.node_mut(1).propose(b"b".to_vec()).unwrap();
    heartbeat_interval_unprocessed(&mut net);
    assert_eq!(
        net.node(1).progress_state(NodeId(2)),
        Some(ProgressState::Replicate)
    );
    net.process(NodeId(1));
    net.deliver_all();
    assert_eq!(net.applied_commands(2).len(), 2);
}

#[test]
fn a_commit_heartbeat_below_the_snapshot_is_sent_once_not_on_every_answer_7() {
    // §7: entries below the leader's snapshot are gone, so a heartbeat to a
    // follower whose match index lies there cannot prove the commit index
    // to it (it checks at 0); the snapshot transfer will. Sent once, that
    // heartbeat counts as done, or every answer would ask for another and
    // the two would ping-pong for ever.
    let mut net = Network::with_config(3, |c| {
        c.max_entries_per_append = 1;
        c.max_inflight_appends = 1;
    });
    assert!(net.elect(1));
    net.deliver_all();
    // Node 3 stores index 2, but its answer is held back; node 2's commits 2.
    net.propose(1, b"a").unwrap();
    let mut held = Vec::new();
    for _ in 0..1000 {
        let Some(m) = net.queue.pop_front() else {
            break;
        };
        if m.from == NodeId(3) && m.to == NodeId(1) {
            held.push(m);
        } else {
            net.deliver(m);
        }
    }
    assert_eq!(held.len(), 1, "{held:?}");
    // Node 3's one append in flight pauses it; 3 and 4 commit through 2.
    net.propose(1, b"b").unwrap();
    net.propose(1, b"c").unwrap();
    net.deliver_all();
    assert_eq!(net.node(1).commit_index(), LogIndex(4));
    // The leader compacts up to 3: index 2 is below its snapshot.
    assert_eq!(net.compact(1, 1), Some(LogIndex(3)));
    net.record_sent = true;
    net.deliver(held.pop().unwrap());
    // The held answer raises node 3's match to 2: one heartbeat checking
    // at 0. Snapshots to node 3 are dropped, so nothing raises it further.
    let mut delivered = 0;
    while let Some(m) = net.queue.pop_front() {
        delivered += 1;
        assert!(delivered < 100, "the network never goes quiet");
        if !matches!(m.body, MessageBody::InstallSnapshot { .. }) {
            net.deliver(m);
        }
    }
    let heartbeats_at_0 = net
        .sent_log
        .iter()
        .filter(|(m, _)| {
            m.to == NodeId(3)
                && matches!(
                    &m.body,
                    MessageBody::AppendEntries { prev_log_index, entries, .. }
                        if prev_log_index.0 == 0 && entries.is_empty()
                )
        })
        .count();
    assert_eq!(heartbeats_at_0, 1);
}

#[test]
fn probe_sends_one_append_until_the_follower_answers() {
    let mut net = Network::with_config(3, |c| c.max_entries_per_append = 1);
    net.isolate(3);
    net.record_sent = true;
    assert!(net.elect(1));
    for i in 0..5 {
        net.propose(1, &[i]).unwrap();
        net.deliver_all();
    }
    let with_entries = |to: u64| {
        net.sent_log
            .iter()
            .filter(|(m, _)| {
                m.to == NodeId(to)
                    && matches!(&m.body, MessageBody::AppendEntries { entries, .. } if !entries.is_empty())
            })
            .count()
    };
    assert_eq!(with_entries(3), 1, "node 3 is probed once");
    assert_eq!(
        with_entries(2),
        6,
        "node 2 gets every entry, one per message"
    );
}

#[test]
fn stale_answers_re_arm_a_probe_at_most_once_per_heartbeat() {
    // Node 3 is cut off: its progress stays in Probe with the first probe
    // (the no-op) unanswered. Answers at or below its match index (a
    // heartbeat's, duplicates) may re-send the probe once per heartbeat
    // sent, never once per answer (that multiplied duplicated answers into
    // a message storm: sweep seed 827).
    let mut net = Network::with_config(3, |c| c.max_entries_per_append = 1);
    net.isolate(3);
    net.record_sent = true;
    assert!(net.elect(1));
    net.propose(1, b"x").unwrap();
    net.deliver_all();
    let probes_to_3 = |net: &Network| {
        net.sent_log
            .iter()
            .filter(|(m, _)| {
                m.to == NodeId(3)
                    && matches!(&m.body, MessageBody::AppendEntries { entries, .. } if !entries.is_empty())
            })
            .count()
    };
    assert_eq!(probes_to_3(&net), 1);
    let stale = Message {
        from: NodeId(3),
        to: NodeId(1),
        term: net.node(1).term(),
        body: MessageBody::AppendEntriesResponse {
            success: true,
            index: LogIndex(0),
            reject_hint: None,
            read_round: 0,
        },
    };
    let answer = |net: &mut Network| {
        net.node_mut(1).step(stale.clone()).unwrap();
        net.process(NodeId(1));
    };
    // No heartbeat went out yet: the probe stays paused.
    answer(&mut net);
    assert_eq!(probes_to_3(&net), 1, "before any heartbeat");
    for _ in 0..crate::config::DEFAULT_HEARTBEAT_TICK {
        net.tick(1);
    }
    answer(&mut net);
    answer(&mut net);
    assert_eq!(probes_to_3(&net), 2, "one heartbeat, one re-sent probe");
}

#[test]
fn replicate_pipelines_at_most_max_inflight_appends() {
    let mut net = Network::with_config(3, |c| {
        c.max_entries_per_append = 1;
        c.max_inflight_appends = 2;
    });
    assert!(net.elect(1));
    net.hold_persistence(2);
    net.hold_persistence(3);
    for i in 0..5 {
        net.propose(1, &[i]).unwrap();
    }
    let to_2 = net
        .queue
        .iter()
        .filter(|m| m.to == NodeId(2) && (2..=6).any(|i| carries(m, i)))
        .count();
    assert_eq!(to_2, 2, "two appends in flight, the rest wait");
    net.release_persistence(2);
    net.release_persistence(3);
    for _ in 0..5 {
        net.deliver_all();
        net.tick_all(1);
    }
    assert_eq!(net.applied_commands(2).len(), 5);
}

#[test]
fn a_lost_append_is_resent_without_new_proposals() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    net.propose(1, b"lost").unwrap();
    net.deliver_all_dropping(|m| m.to == NodeId(3) && carries(m, 2));
    assert_eq!(net.node(3).last_index(), LogIndex(1));
    net.tick_all(6);
    assert_eq!(net.applied_commands(3), vec![b"lost".to_vec()]);
}

#[test]
fn a_restarted_follower_catches_up() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    net.crash(3);
    for i in 0..10 {
        net.propose(1, &[i]).unwrap();
        net.deliver_all();
    }
    net.restart(3);
    net.tick_all(5);
    assert_eq!(net.applied_commands(3).len(), 10);
    net.check_log_matching();
}

// ---------------------------------------------------------------- commitment

#[test]
fn figure_8_a_leader_does_not_commit_an_old_term_entry_by_counting_5_4_2() {
    let mut net = figure_8_until_c();
    // (c) S1, leader of term 4, has put index 2 (term 2) on S1, S2, S3: a
    // majority. It must not count it committed: it is not of term 4.
    for id in 1..=3 {
        assert_eq!(
            net.node(id).term_at(LogIndex(2)),
            Some(Term(2)),
            "node {id}: {:?}",
            terms_of(net.node(id))
        );
    }
    assert_eq!(net.node(1).commit_index(), LogIndex(1));
    // (d) S1 crashes; S5 (last term 3) wins votes from S2, S3, S4 and
    // overwrites index 2. That is safe only because it was never committed.
    net.crash(1);
    net.take_where(|m| m.from == NodeId(1));
    net.restart(5);
    start_campaign(&mut net, 5);
    net.deliver_all();
    if net.node(5).role() != Role::Leader {
        // Its first try was at term 4, where everyone had voted for S1.
        assert!(net.elect(5));
    }
    net.deliver_all();
    for id in 2..=4 {
        assert_eq!(net.node(id).term_at(LogIndex(2)), Some(Term(3)));
    }
    assert!(net.applied[&NodeId(2)].iter().all(|e| e.term != Term(2)));
}

#[test]
fn figure_8_an_old_term_entry_commits_together_with_one_of_the_current_term_5_4_2() {
    let mut net = figure_8_until_c();
    assert_eq!(net.node(1).commit_index(), LogIndex(1));
    // (e) S1 also puts index 3 (its term-4 no-op) on S2 and S3: both entries
    // commit at once.
    net.deliver_all();
    net.tick_all(2);
    assert_eq!(net.node(1).commit_index(), LogIndex(3));
    // Now S5 cannot win: its last term 3 is behind the majority's 4.
    net.crash(1);
    net.restart(5);
    for _ in 0..3 {
        // Refused on its log (§5.4.1), not for S1's lease (§4.2.3).
        net.expire_leases();
        net.elect(5);
        assert_ne!(net.node(5).role(), Role::Leader);
    }
}

/// Builds Figure 8 up to (c), in our terms: 5 nodes, the first entry of each
/// term being that leader's no-op. One entry per append, so that index 2 and
/// index 3 travel separately. On return, index 3's appends are still queued.
fn figure_8_until_c() -> Network {
    let mut net = Network::with_config(5, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
        c.max_entries_per_append = 1;
    });
    // Term 1: S1 leads, index 1 (term 1) committed everywhere.
    assert!(net.elect(1));
    net.tick_all(1);
    // (a) Term 2: S1 leads again; its no-op at index 2 reaches only S2.
    net.crash(1);
    net.restart(1);
    start_campaign(&mut net, 1);
    net.deliver_all_dropping(|m| m.from == NodeId(1) && m.to.0 >= 3 && carries(m, 2));
    assert_eq!(net.node(1).term(), Term(2));
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(2).term_at(LogIndex(2)), Some(Term(2)));
    // (b) S1 crashes; S5 wins term 3 with S3 and S4; its no-op (index 2,
    // term 3) reaches nobody.
    net.crash(1);
    start_campaign(&mut net, 5);
    net.deliver_all_dropping(|m| m.from == NodeId(5) && carries(m, 2));
    assert_eq!(net.node(5).role(), Role::Leader);
    assert_eq!(net.node(5).term(), Term(3));
    net.crash(5);
    // (c) S1 restarts and wins term 4 (after a lost try at term 3). It puts
    // index 2 on S3 (and S4), but its own index 3 reaches nobody yet.
    net.restart(1);
    let mut held = Vec::new();
    for _ in 0..2 {
        start_campaign(&mut net, 1);
        held.extend(deliver_unless_it_would_append(&mut net, 3));
    }
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).term(), Term(4));
    net.tick(1);
    net.tick(1);
    held.extend(deliver_unless_it_would_append(&mut net, 3));
    net.queue.extend(held);
    net
}

#[test]
fn a_deposed_leader_commits_only_what_its_new_leader_says_5_3() {
    // Only a leader counts replicas (§5.3: a follower sets its commit index
    // from leaderCommit). A deposed leader keeps the match indexes it
    // learned while it led; they describe its old log, not the one its new
    // leader rewrote. Counted after the rewrite, they would commit an entry
    // nobody else holds.
    let mut net = Network::with_config(5, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
        c.max_entries_per_append = 1;
    });
    let held_from = |net: &mut Network, from: u64, indexes: &[u64]| {
        net.deliver_all_dropping(|m| {
            m.from == NodeId(from) && indexes.iter().any(|&i| carries(m, i))
        })
    };
    // Term 1: S1 leads, index 1 committed everywhere.
    assert!(net.elect(1));
    net.tick_all(1);
    // Term 2: S1 leads again; its no-op (2) and a proposal (3) reach nobody.
    net.crash(1);
    net.restart(1);
    start_campaign(&mut net, 1);
    held_from(&mut net, 1, &[2, 3]);
    assert_eq!(net.node(1).role(), Role::Leader);
    net.propose(1, b"t2").unwrap();
    held_from(&mut net, 1, &[2, 3]);
    // Term 3: S5 leads with S2, S3, S4; its no-op (2, term 3) reaches nobody.
    net.crash(1);
    start_campaign(&mut net, 5);
    held_from(&mut net, 5, &[2]);
    assert_eq!(
        (net.node(5).role(), net.node(5).term()),
        (Role::Leader, Term(3))
    );
    net.crash(5);
    // Term 4: S1 leads again and puts indexes 2 and 3 (term 2) on S2, S3
    // and S4, but not its own no-op (4). Older-term entries: not committed
    // by counting (§5.4.2), but S1 now records matches of 3.
    net.restart(1);
    for _ in 0..2 {
        start_campaign(&mut net, 1);
        deliver_unless_it_would_append(&mut net, 4); // lost
    }
    assert_eq!(
        (net.node(1).role(), net.node(1).term()),
        (Role::Leader, Term(4))
    );
    for _ in 0..4 {
        net.tick(1);
        deliver_unless_it_would_append(&mut net, 4); // lost
    }
    for id in 2..=4 {
        assert_eq!(terms_of(net.node(id)), vec![1, 2, 2], "node {id}");
    }
    assert_eq!(net.node(1).commit_index(), LogIndex(1));
    // Term 5: S1 is cut off; S5 (last term 3) wins S2, S3 and S4. Its no-op
    // (3, term 5) and its index 2 reach only S1, once S1 is back.
    net.isolate(1);
    net.restart(5);
    for _ in 0..3 {
        if net.node(5).role() == Role::Leader {
            break;
        }
        start_campaign(&mut net, 5);
        held_from(&mut net, 5, &[2, 3]);
    }
    assert_eq!(
        (net.node(5).role(), net.node(5).term()),
        (Role::Leader, Term(5))
    );
    net.heal();
    net.take_where(|_| true);
    let between_1_and_5 = |m: &Message| {
        (m.from, m.to) == (NodeId(5), NodeId(1)) || (m.from, m.to) == (NodeId(1), NodeId(5))
    };
    for _ in 0..6 {
        net.tick(5);
        net.deliver_all_dropping(|m| !between_1_and_5(m));
    }
    assert_eq!(terms_of(net.node(1)), vec![1, 3, 5], "S5 rewrote S1's log");
    assert_eq!(net.node(1).role(), Role::Follower);
    // S1's old matches (3 on S2, S3, S4) would make index 3 a majority,
    // but index 3 is now S5's, held by S1 and S5 alone.
    assert_eq!(net.node(5).commit_index(), LogIndex(1));
    assert_eq!(net.node(1).commit_index(), LogIndex(1));
}

/// Delivers everything, except that an append carrying `index` to a node
/// that would accept it (its log matches the append's previous entry) is
/// set aside and returned: a node that would refuse it still refuses, so
/// the leader probes back.
fn deliver_unless_it_would_append(net: &mut Network, index: u64) -> Vec<Message> {
    let mut withheld = Vec::new();
    // Bounded as `Network::deliver_all` is: a message storm fails the test
    // instead of hanging it.
    for _ in 0..200_000 {
        let Some(m) = net.queue.pop_front() else {
            return withheld;
        };
        let accepts = match &m.body {
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                ..
            } => net
                .nodes
                .get(&m.to)
                .is_some_and(|n| n.term_at(*prev_log_index) == Some(*prev_log_term)),
            _ => false,
        };
        if carries(&m, index) && accepts {
            withheld.push(m);
        } else {
            net.deliver(m);
        }
    }
    panic!("the network never goes quiet");
}

/// `id` starts an election once the leases have run out (§4.2.3), and runs
/// its loop; nothing is delivered.
fn start_campaign(net: &mut Network, id: u64) {
    net.expire_leases();
    net.node_mut(id).campaign();
    net.process(NodeId(id));
}

#[test]
fn leader_counts_itself_only_up_to_what_it_persisted() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    net.hold_persistence(1);
    net.hold_persistence(2);
    net.propose(1, b"x").unwrap();
    net.deliver_all();
    // Only node 3 has persisted index 2.
    assert_eq!(net.node(1).commit_index(), LogIndex(1));
    net.release_persistence(2);
    net.deliver_all();
    // Nodes 2 and 3 are a majority; the leader's own copy is not needed.
    assert_eq!(net.node(1).commit_index(), LogIndex(2));
    // But the leader applies only what it holds durably.
    assert!(net.applied_commands(1).is_empty());
    net.release_persistence(1);
    assert_eq!(net.applied_commands(1), vec![b"x".to_vec()]);
}

#[test]
fn a_single_voter_sends_appends_before_its_own_write_once_its_term_is_durable_10_2_1() {
    // §10.2.1: a leader may send AppendEntries in parallel with writing its
    // own log, once its term is durable (a candidate's vote for itself must
    // be). A single voter wins with no vote response to tell it that; the
    // report that its no-op, an entry of its term, is durable does.
    let mut net = Network::new(1);
    assert!(net.elect(1));
    net.add_node(2);
    net.record_sent = true;
    net.node_mut(1)
        .propose_membership(crate::ConfChange::AddLearner(NodeId(2)))
        .expect("adds the learner");
    net.process(NodeId(1));
    let after_write: Vec<bool> = net
        .sent_log
        .iter()
        .filter(|(m, _)| m.to == NodeId(2) && matches!(m.body, MessageBody::AppendEntries { .. }))
        .map(|&(_, persisted)| persisted)
        .collect();
    assert!(!after_write.is_empty(), "an append goes to the learner");
    assert!(
        after_write.iter().all(|&p| !p),
        "appends wait for the leader's write: {after_write:?}"
    );
}

#[test]
fn single_voter_commits_once_it_persisted() {
    let mut net = Network::new(1);
    assert!(net.elect(1));
    net.hold_persistence(1);
    let index = net.propose(1, b"solo").unwrap();
    assert_eq!(index, LogIndex(2));
    assert_eq!(net.node(1).commit_index(), LogIndex(1));
    net.release_persistence(1);
    assert_eq!(net.node(1).commit_index(), LogIndex(2));
    assert_eq!(net.applied_commands(1), vec![b"solo".to_vec()]);
}

#[test]
fn leader_completeness_a_new_leader_holds_every_committed_entry_5_4() {
    let mut net = Network::new(5);
    assert!(net.elect(1));
    for i in 0..5 {
        net.propose(1, &[i]).unwrap();
        net.deliver_all();
    }
    net.crash(1);
    net.tick_all(40);
    let leader = net.leader().expect("a new leader");
    for i in 1..=6 {
        assert!(net.node(leader).entry(LogIndex(i)).is_some());
    }
    // (The network also asserted this when the leader took office.)
}

// ---------------------------------------------------------------- ReadIndex

#[test]
fn without_lease_reads_heartbeats_open_no_read_round_6_4() {
    // §6.4: a read round is what a ReadIndex request waits on; only with
    // lease reads (§6.4.1) does every heartbeat renew one. With leases off
    // and no read asked, heartbeats carry no round (0).
    let mut net = Network::with_config(3, |c| c.lease_read_ticks = 0);
    assert!(net.elect(1));
    net.deliver_all();
    net.record_sent = true;
    for _ in 0..3 * crate::config::DEFAULT_HEARTBEAT_TICK {
        net.tick(1);
        net.deliver_all();
    }
    let rounds: Vec<u64> = net
        .sent_log
        .iter()
        .filter_map(|(m, _)| match m.body {
            MessageBody::AppendEntries { read_round, .. } if m.from == NodeId(1) => {
                Some(read_round)
            }
            _ => None,
        })
        .collect();
    assert!(rounds.len() >= 6, "three heartbeats to two followers");
    assert!(rounds.iter().all(|&r| r == 0), "{rounds:?}");
}

#[test]
fn read_index_waits_for_a_commit_in_the_leaders_term_6_4() {
    let mut net = Network::new(3);
    net.node_mut(1).campaign();
    net.process(NodeId(1));
    while net.node(1).role() != Role::Leader {
        assert!(net.deliver_one());
    }
    // The followers' disks stall: the no-op cannot be acknowledged.
    net.hold_persistence(2);
    net.hold_persistence(3);
    net.deliver_all();
    assert_eq!(net.node(1).commit_index(), LogIndex(0));
    net.read_index(1, 7).unwrap();
    net.tick_all(3);
    assert!(net.read_states.get(&NodeId(1)).is_none_or(|r| r.is_empty()));
    net.release_persistence(2);
    net.release_persistence(3);
    net.deliver_all();
    net.tick_all(2);
    assert_eq!(
        net.read_states[&NodeId(1)],
        vec![ReadState {
            ctx: 7,
            index: LogIndex(1),
            lease: false
        }]
    );
}

#[test]
fn read_index_needs_a_quorum_to_answer_a_round_started_after_the_read_6_4() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    // A heartbeat goes out and is answered, but the answers are still in
    // flight when the read arrives: they prove nothing about it.
    net.tick(1);
    net.tick(1);
    let heartbeats = net.take_where(|m| m.from == NodeId(1));
    assert_eq!(heartbeats.len(), 2);
    for m in heartbeats {
        net.deliver(m);
    }
    net.read_index(1, 9).unwrap();
    let old_answers = net.take_where(|m| m.to == NodeId(1));
    assert_eq!(old_answers.len(), 2);
    for m in old_answers {
        net.deliver(m);
    }
    assert!(net.read_states.get(&NodeId(1)).is_none_or(|r| r.is_empty()));
    // The read's own round: answered by one follower = a majority with us.
    let round = net.take_where(|m| m.from == NodeId(1));
    net.deliver(round[0].clone());
    net.deliver_all();
    assert_eq!(
        net.read_states[&NodeId(1)],
        vec![ReadState {
            ctx: 9,
            index: LogIndex(1),
            lease: false
        }]
    );
}

#[test]
fn the_answer_to_an_older_terms_append_acknowledges_no_read_round_6_4() {
    let mut node = restored(2, 5, &[1], 1);
    let mut stale = append(1, 2, 3, (1, 1), vec![], 1);
    if let MessageBody::AppendEntries { read_round, .. } = &mut stale.body {
        *read_round = 581;
    }
    node.step(stale).unwrap();
    let rd = node.ready();
    let answers: Vec<&Message> = rd.messages.iter().chain(&rd.persisted_messages).collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers[0].term,
        Term(5),
        "our term, so the sender steps down"
    );
    match answers[0].body {
        MessageBody::AppendEntriesResponse {
            success,
            read_round,
            ..
        } => {
            assert!(!success);
            assert_eq!(read_round, 0, "it answers no round of term 5");
        }
        ref other => panic!("expected an append response, got {other:?}"),
    }
}

#[test]
fn a_re_elected_leader_is_not_confirmed_by_answers_to_its_old_terms_rounds_6_4() {
    // Seed 236 of the sweep at 30 clients, swarm off: node 1 leads a term
    // and runs read rounds; an append of that leadership is held up. Node 1
    // leads again in a later term, where rounds start over. The held append
    // reaches a follower of the new term, whose answer (in the new term)
    // must not confirm the new leadership's read: only the follower's
    // answers to the new leadership's own messages can (§6.4).
    let mut net = Network::new(3);
    assert!(net.elect(1));
    for ctx in 1..=3 {
        net.read_index(1, ctx).unwrap();
        net.deliver_all();
        net.tick_all(1);
    }
    assert_eq!(
        net.read_states[&NodeId(1)].len(),
        3,
        "three rounds answered"
    );
    // A heartbeat of the first leadership, carrying its latest round, is
    // held up on its way to node 2.
    let mut held = Vec::new();
    for _ in 0..10 {
        net.tick(1);
        held.extend(net.take_where(|m| {
            m.to == NodeId(2) && matches!(m.body, MessageBody::AppendEntries { .. })
        }));
        net.deliver_all();
        if !held.is_empty() {
            break;
        }
    }
    let held = held.pop().expect("a heartbeat to node 2");
    let old_round = match held.body {
        MessageBody::AppendEntries { read_round, .. } => read_round,
        _ => unreachable!(),
    };
    assert!(old_round >= 3, "round {old_round}");
    let old_term = held.term;
    // Node 1 leads again, in a later term: it restarts, another node
    // leads, and hands leadership back (§3.10).
    net.crash(1);
    net.restart(1);
    net.tick_all(60);
    let other = net.leader().expect("a leader");
    if other != 1 {
        net.node_mut(other).transfer_leadership(NodeId(1)).unwrap();
        net.process(NodeId(other));
        net.deliver_all();
        net.tick_all(2);
    }
    assert_eq!(net.leader(), Some(1));
    assert!(net.node(1).term() > old_term);
    net.deliver_all();
    net.tick_all(2);
    // Cut off from both followers, it takes a read.
    net.isolate(1);
    net.read_index(1, 9).unwrap();
    net.tick(1);
    net.deliver_all();
    assert!(!net.read_states[&NodeId(1)].iter().any(|r| r.ctx == 9));
    // The held append reaches node 2, whose answer reaches node 1.
    net.heal();
    net.cut(1, 3);
    let _ = net.take_where(|m| m.from == NodeId(1));
    net.deliver(held);
    let answers = net.take_where(|m| m.from == NodeId(2) && m.to == NodeId(1));
    assert_eq!(answers.len(), 1, "node 2 answers the stale append");
    assert_eq!(answers[0].term, net.node(1).term(), "in node 1's new term");
    net.deliver(answers[0].clone());
    assert!(
        !net.read_states[&NodeId(1)].iter().any(|r| r.ctx == 9),
        "an answer to the old leadership's round confirmed the new one's read"
    );
}

#[test]
fn read_index_is_never_confirmed_by_a_leader_cut_off_from_the_majority() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    net.isolate(1);
    net.read_index(1, 1).unwrap();
    for _ in 0..30 {
        net.tick(1);
        net.deliver_all();
    }
    assert!(net.read_states.get(&NodeId(1)).is_none_or(|r| r.is_empty()));
    assert_eq!(
        net.node(1).role(),
        Role::Follower,
        "and the read was dropped"
    );
    assert_eq!(
        net.node_mut(1).read_index(2),
        Err(ReadIndexError::NotLeader { leader: None })
    );
}

#[test]
fn read_index_on_a_single_voter_confirms_at_once() {
    let mut net = Network::new(1);
    assert!(net.elect(1));
    net.read_index(1, 3).unwrap();
    assert_eq!(
        net.read_states[&NodeId(1)],
        vec![ReadState {
            ctx: 3,
            index: LogIndex(1),
            lease: false
        }]
    );
}

#[test]
fn read_index_bounds_pending_reads() {
    let mut net = Network::with_config(3, |c| c.max_pending_reads = 2);
    assert!(net.elect(1));
    net.isolate(1);
    net.read_index(1, 1).unwrap();
    net.read_index(1, 2).unwrap();
    assert_eq!(
        net.read_index(1, 3),
        Err(ReadIndexError::TooManyPending { max: 2 })
    );
}

#[test]
fn reads_in_one_batch_share_a_round() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    for ctx in 0..10 {
        net.node_mut(1).read_index(ctx).unwrap();
    }
    net.process(NodeId(1));
    assert_eq!(net.queue.len(), 2, "one heartbeat per follower");
    net.deliver_all();
    assert_eq!(net.read_states[&NodeId(1)].len(), 10);
}

// ---------------------------------------------------------------- limits and errors

#[test]
fn proposals_are_refused_with_a_reason() {
    let mut net = Network::with_config(3, |c| {
        c.max_bytes_per_append = 8;
        c.max_uncommitted_entries = 3;
    });
    assert!(net.elect(1));
    assert_eq!(
        net.propose(2, b"x"),
        Err(ProposeError::NotLeader {
            leader: Some(NodeId(1))
        })
    );
    assert_eq!(
        net.propose(1, &[0; 9]),
        Err(ProposeError::TooLarge { size: 9, max: 8 })
    );
    // The limit itself is allowed: a command of exactly 8 bytes fits.
    assert!(net.propose(1, &[0; 8]).is_ok());
    net.deliver_all();
    net.isolate(1);
    for i in 0..3 {
        net.propose(1, &[i]).unwrap();
    }
    assert_eq!(
        net.propose(1, b"4"),
        Err(ProposeError::TooManyUncommitted { max: 3 })
    );
}

#[test]
fn step_refuses_messages_not_meant_for_this_node() {
    let mut node = RawNode::new(config(1, 3)).unwrap();
    let mut m = request_vote(2, 3, 1, (0, 0));
    assert_eq!(
        node.step(m.clone()),
        Err(StepError::NotAddressedToMe { to: NodeId(3) })
    );
    m.to = NodeId(1);
    m.from = NodeId(1);
    assert_eq!(node.step(m.clone()), Err(StepError::FromMyself));
    m.from = NodeId(2);
    m.term = Term(0);
    assert!(matches!(node.step(m), Err(StepError::Malformed { .. })));
    assert!(!node.has_ready(), "nothing changed");
}

#[test]
fn restore_validates_its_inputs() {
    let hs = |term, commit| HardState {
        term: Term(term),
        vote: None,
        commit: LogIndex(commit),
    };
    let restore = |h, e| RawNode::restore(config(1, 3), h, e).err();
    assert_eq!(restore(hs(2, 0), log_of(&[1, 2])), None);
    assert_eq!(
        restore(hs(2, 0), vec![ent(1, 1), ent(1, 3)]),
        Some(RestoreError::NotContiguous {
            expected: LogIndex(2),
            found: LogIndex(3)
        })
    );
    assert_eq!(
        restore(hs(2, 0), vec![ent(0, 1)]),
        Some(RestoreError::ZeroTerm { index: LogIndex(1) })
    );
    assert!(matches!(
        restore(hs(2, 0), log_of(&[2, 1])),
        Some(RestoreError::TermDecreases { .. })
    ));
    assert!(matches!(
        restore(hs(1, 0), log_of(&[1, 2])),
        Some(RestoreError::TermAboveHardState { .. })
    ));
    assert!(matches!(
        restore(hs(2, 3), log_of(&[1, 2])),
        Some(RestoreError::CommitBeyondLog { .. })
    ));
    let mut bad = config(1, 3);
    bad.voters = vec![NodeId(2), NodeId(2)];
    assert!(matches!(
        RawNode::restore(bad, hs(0, 0), vec![]).err(),
        Some(RestoreError::Config(_))
    ));
}

#[test]
fn a_restored_node_reapplies_what_was_committed() {
    let mut node = restored(1, 2, &[1, 1, 2], 2);
    assert_eq!(node.hard_state().commit, LogIndex(2));
    let rd = node.ready();
    assert_eq!(rd.hard_state, None, "nothing new to persist");
    assert!(rd.entries.is_empty());
    assert_eq!(rd.committed_entries, log_of(&[1, 1]));
}

#[test]
fn persisted_for_a_replaced_entry_is_ignored() {
    let mut node = restored(2, 1, &[], 0);
    node.step(append(1, 2, 1, (0, 0), vec![ent(1, 1)], 0))
        .unwrap();
    let _ = node.ready();
    // Before that write completes, a new leader replaces index 1.
    node.step(append(3, 2, 2, (0, 0), vec![ent(2, 1)], 0))
        .unwrap();
    node.persisted(Term(1), LogIndex(1));
    assert_eq!(node.persisted_index(), LogIndex(0));
    let rd = node.ready();
    assert_eq!(rd.entries, vec![ent(2, 1)]);
    node.persisted(Term(2), LogIndex(1));
    assert_eq!(node.persisted_index(), LogIndex(1));
}
