//! Membership changes (dissertation chapter 4) and leadership transfer
//! (§3.10), scenario by scenario. The network checks Election Safety, State
//! Machine Safety and Leader Completeness after every ready.

use super::network::Network;
use crate::{
    ConfChange, LogIndex, Membership, MembershipError, Message, NodeId, ProposeError, Role,
    TransferError,
};
use std::collections::BTreeSet;

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// A cluster of `n` with node 1 leading and its first entry committed.
fn settled(n: u64) -> Network {
    let mut net = Network::new(n);
    assert!(net.elect(1));
    net.deliver_all();
    net
}

fn change(net: &mut Network, leader: u64, c: ConfChange) -> Result<LogIndex, MembershipError> {
    let r = net.node_mut(leader).propose_membership(c);
    net.process(NodeId(leader));
    r
}

/// Adds node `id` as a learner through leader 1 and lets it catch up.
fn add_learner(net: &mut Network, id: u64) {
    net.add_node(id);
    change(net, 1, ConfChange::AddLearner(NodeId(id))).expect("adds the learner");
    net.deliver_all();
    net.tick_all(3);
}

/// Leader 1 changes the voters to `voters` (joint consensus, left on its
/// own) and the change completes.
fn shrink_to(net: &mut Network, voters: &[u64]) {
    change(
        net,
        1,
        ConfChange::Set {
            voters: set(voters),
            learners: BTreeSet::new(),
        },
    )
    .unwrap();
    net.deliver_all();
    net.tick_all(3);
    let m = net.node(1).membership();
    assert_eq!(m.voters, set(voters));
    assert!(!m.is_joint(), "the joint configuration was left");
}

#[test]
fn a_learner_receives_the_log_but_never_counts_towards_a_quorum() {
    let mut net = settled(3);
    add_learner(&mut net, 4);
    assert_eq!(net.node(4).membership().learners, set(&[4]));
    assert_eq!(
        net.node(4).last_index(),
        net.node(1).last_index(),
        "caught up"
    );
    // With two voters cut off, the learner's acknowledgement is no quorum.
    net.isolate(2);
    net.isolate(3);
    let index = net.propose(1, b"x").unwrap();
    net.deliver_all();
    assert!(net.node(4).last_index() >= index, "the learner has it");
    assert!(
        net.node(1).commit_index() < index,
        "but it is not committed"
    );
    // A learner never campaigns.
    for _ in 0..100 {
        net.tick(4);
    }
    assert_eq!(net.node(4).role(), Role::Follower);
}

#[test]
fn a_caught_up_learner_is_promoted_through_joint_consensus_left_automatically() {
    let mut net = settled(3);
    add_learner(&mut net, 4);
    let index = change(&mut net, 1, ConfChange::Promote(NodeId(4))).unwrap();
    // §4.3: C_old,new is in force on the leader as soon as it is in its log.
    let joint = net.node(1).membership().clone();
    assert!(joint.is_joint());
    assert_eq!(joint.voters, set(&[1, 2, 3, 4]));
    assert_eq!(joint.outgoing, set(&[1, 2, 3]));
    net.deliver_all();
    net.tick_all(2);
    // Once C_old,new committed, the leader appended C_new by itself.
    for id in 1..=4 {
        let m = net.node(id).membership();
        assert!(!m.is_joint(), "n{id}: {m}");
        assert_eq!(m.voters, set(&[1, 2, 3, 4]), "n{id}");
        assert!(net.node(id).membership_index() > index, "n{id}");
    }
    // The new voter now counts: with two of four cut off, nothing commits.
    net.isolate(3);
    net.isolate(4);
    let i = net.propose(1, b"y").unwrap();
    net.deliver_all();
    assert!(net.node(1).commit_index() < i);
}

#[test]
fn grow_three_to_seven_through_learners() {
    let mut net = settled(3);
    for id in 4..=7 {
        add_learner(&mut net, id);
    }
    change(
        &mut net,
        1,
        ConfChange::Set {
            voters: set(&[1, 2, 3, 4, 5, 6, 7]),
            learners: BTreeSet::new(),
        },
    )
    .unwrap();
    net.deliver_all();
    net.tick_all(3);
    for id in 1..=7 {
        assert_eq!(
            net.node(id).membership().voters,
            set(&[1, 2, 3, 4, 5, 6, 7])
        );
    }
    // Any four of seven now elect a leader; the old three alone cannot.
    net.partition(&[&[1, 2, 3], &[4, 5, 6, 7]]);
    net.tick_all(60);
    let leader = net.leader().expect("a leader");
    assert!(leader >= 4, "the majority side leads, not n{leader}");
}

#[test]
fn remove_two_of_five() {
    let mut net = settled(5);
    shrink_to(&mut net, &[1, 2, 3]);
    // Nodes 4 and 5 are gone: 1, 2 are a majority of the rest.
    net.crash(4);
    net.crash(5);
    net.isolate(3);
    let i = net.propose(1, b"z").unwrap();
    net.deliver_all();
    assert!(net.node(1).commit_index() >= i, "two of three commit");
}

#[test]
fn a_read_is_confirmed_by_the_first_answer_after_its_quorum_shrank_6_4() {
    // Five voters shrink to {1, 2, 3}. A read's round is answered by node 2
    // while the joint configuration is in force: 1 and 2 are a majority of
    // C_new but not of C_old, so the read waits (§4.3: both must agree).
    // The answer that commits the joint configuration (node 4's, to an
    // append sent before the read's round) puts C_new in force, where 1 and
    // 2 suffice (§6.4): that answer confirms the read, though it raises no
    // round.
    let mut net = settled(5);
    change(
        &mut net,
        1,
        ConfChange::Set {
            voters: set(&[1, 2, 3]),
            learners: BTreeSet::new(),
        },
    )
    .unwrap();
    let mut joint_appends = net.take_where(|_| true);
    net.read_index(1, 7).unwrap();
    let heartbeats = net.take_where(|_| true);
    assert!(!heartbeats.is_empty(), "the read's round went out");
    let answered = |net: &Network| {
        net.read_states
            .get(&NodeId(1))
            .is_some_and(|states| states.iter().any(|r| r.ctx == 7))
    };
    // Delivers node 1's queued messages to `to` and `to`'s answers back.
    let exchange = |net: &mut Network, msgs: &mut Vec<Message>, to: u64| {
        for m in msgs.iter().filter(|m| m.to == NodeId(to)).cloned() {
            net.deliver(m);
        }
        msgs.retain(|m| m.to != NodeId(to));
        for m in net.take_where(|m| m.from == NodeId(to)) {
            net.deliver(m);
        }
        net.take_where(|_| true);
    };
    exchange(&mut net, &mut heartbeats.clone(), 2);
    assert!(!answered(&net), "two of five are no majority of C_old");
    exchange(&mut net, &mut joint_appends, 3);
    assert!(net.node(1).membership().is_joint());
    assert!(!answered(&net), "node 3 answered an older round");
    exchange(&mut net, &mut joint_appends, 4);
    assert!(!net.node(1).membership().is_joint(), "C_new is in force");
    assert!(answered(&net), "1 and 2 are a majority of C_new");
}

#[test]
fn replace_the_leader_and_it_steps_down_once_c_new_commits() {
    let mut net = settled(3);
    add_learner(&mut net, 4);
    change(
        &mut net,
        1,
        ConfChange::Replace {
            remove: NodeId(1),
            add: NodeId(4),
        },
    )
    .unwrap();
    // While joint, node 1 still leads (counting itself only in C_old).
    assert_eq!(net.node(1).role(), Role::Leader);
    net.deliver_all();
    net.tick_all(2);
    assert_ne!(net.node(1).role(), Role::Leader, "§4.2.2: steps down");
    assert_eq!(net.node(2).membership().voters, set(&[2, 3, 4]));
    // The rest elect a leader among themselves; node 1 never campaigns.
    net.tick_all(80);
    let leader = net.leader().expect("a new leader");
    assert!([2, 3, 4].contains(&leader));
    let term = net.node(leader).term();
    for _ in 0..200 {
        net.tick(1);
    }
    net.deliver_all();
    assert_eq!(
        net.node(leader).term(),
        term,
        "the removed node disturbs no one"
    );
    assert_eq!(net.node(1).role(), Role::Follower);
}

#[test]
fn a_removed_node_that_never_heard_of_its_removal_does_not_disrupt_the_cluster() {
    let mut net = settled(3);
    net.isolate(3);
    change(&mut net, 1, ConfChange::Remove(NodeId(3))).unwrap();
    net.deliver_all();
    net.tick_all(3);
    assert_eq!(net.node(1).membership().voters, set(&[1, 2]));
    assert!(
        net.node(3).membership().is_voter(NodeId(3)),
        "n3 never learnt"
    );
    // Node 3 times out again and again while cut off, then rejoins.
    for _ in 0..200 {
        net.tick(3);
    }
    net.heal();
    let term = net.node(1).term();
    net.tick_all(50);
    assert_eq!(
        net.leader(),
        Some(1),
        "§4.2.3, §9.6: the leader keeps leading"
    );
    assert_eq!(net.node(1).term(), term);
}

#[test]
fn shrink_five_to_three_during_a_partition() {
    let mut net = settled(5);
    // Nodes 4 and 5 are cut off; the majority {1, 2, 3} removes them.
    net.isolate(4);
    net.isolate(5);
    shrink_to(&mut net, &[1, 2, 3]);
    // The minority cannot elect anyone, even after the partition heals.
    for _ in 0..100 {
        net.tick(4);
        net.tick(5);
    }
    net.heal();
    net.tick_all(50);
    assert_eq!(net.leader(), Some(1));
}

#[test]
fn each_unsafe_or_impossible_request_gets_its_error_and_changes_nothing() {
    let mut net = Network::new(3);
    net.node_mut(1).campaign();
    net.process(NodeId(1));
    net.deliver_all_dropping(|m| matches!(m.body, crate::MessageBody::AppendEntries { .. }));
    assert_eq!(net.node(1).role(), Role::Leader);
    // Before the leader's no-op commits: not settled (the 2015 bug).
    let before = (net.node(1).last_index(), net.node(1).membership().clone());
    assert_eq!(
        change(&mut net, 1, ConfChange::AddLearner(NodeId(4))),
        Err(MembershipError::LeaderNotSettled)
    );
    assert_eq!(
        (net.node(1).last_index(), net.node(1).membership().clone()),
        before
    );
    net.tick_all(3);
    let refuse = |net: &mut Network, leader: u64, c: ConfChange, want: MembershipError| {
        let before = (
            net.node(leader).last_index(),
            net.node(leader).membership().clone(),
        );
        assert_eq!(change(net, leader, c.clone()), Err(want), "{c:?}");
        let after = (
            net.node(leader).last_index(),
            net.node(leader).membership().clone(),
        );
        assert_eq!(after, before, "{c:?} changed something");
    };
    refuse(
        &mut net,
        2,
        ConfChange::AddLearner(NodeId(4)),
        MembershipError::NotLeader {
            leader: Some(NodeId(1)),
        },
    );
    refuse(
        &mut net,
        1,
        ConfChange::Remove(NodeId(9)),
        MembershipError::UnknownNode(NodeId(9)),
    );
    refuse(
        &mut net,
        1,
        ConfChange::AddLearner(NodeId(2)),
        MembershipError::AlreadyMember(NodeId(2)),
    );
    refuse(
        &mut net,
        1,
        ConfChange::Promote(NodeId(9)),
        MembershipError::UnknownNode(NodeId(9)),
    );
    refuse(
        &mut net,
        1,
        ConfChange::Set {
            voters: set(&[1, 2, 3, 4]),
            learners: BTreeSet::new(),
        },
        MembershipError::NotALearner(NodeId(4)),
    );
    refuse(
        &mut net,
        1,
        ConfChange::Set {
            voters: BTreeSet::new(),
            learners: BTreeSet::new(),
        },
        MembershipError::NoVoters,
    );
    refuse(
        &mut net,
        1,
        ConfChange::Set {
            voters: set(&[1, 2, 3]),
            learners: BTreeSet::new(),
        },
        MembershipError::NoChange,
    );
    // A learner that has not caught up is not promoted.
    net.add_node(4);
    net.isolate(4);
    change(&mut net, 1, ConfChange::AddLearner(NodeId(4))).unwrap();
    net.deliver_all();
    let committed = net.node(1).commit_index();
    refuse(
        &mut net,
        1,
        ConfChange::Promote(NodeId(4)),
        MembershipError::LearnerBehind {
            id: NodeId(4),
            matched: LogIndex(0),
            committed,
        },
    );
    // One change at a time: while one is uncommitted, a second is refused.
    net.heal();
    net.isolate(2);
    net.isolate(3);
    let pending = change(&mut net, 1, ConfChange::Remove(NodeId(4))).unwrap();
    refuse(
        &mut net,
        1,
        ConfChange::AddLearner(NodeId(5)),
        MembershipError::ChangeInProgress { index: pending },
    );
    // The last voter cannot be removed.
    let mut single = Network::new(1);
    assert!(single.elect(1));
    single.deliver_all();
    refuse(
        &mut single,
        1,
        ConfChange::Remove(NodeId(1)),
        MembershipError::NoVoters,
    );
}

#[test]
fn leadership_transfer_hands_over_to_an_up_to_date_voter() {
    let mut net = settled(3);
    net.propose(1, b"a").unwrap();
    assert_eq!(
        net.node_mut(1).transfer_leadership(NodeId(9)),
        Err(TransferError::NotAVoter(NodeId(9)))
    );
    assert_eq!(
        net.node_mut(2).transfer_leadership(NodeId(3)),
        Err(TransferError::NotLeader {
            leader: Some(NodeId(1))
        })
    );
    net.node_mut(1).transfer_leadership(NodeId(2)).unwrap();
    net.process(NodeId(1));
    // §3.10: no proposals while handing over.
    assert_eq!(
        net.propose(1, b"b"),
        Err(ProposeError::TransferInProgress { to: NodeId(2) })
    );
    net.deliver_all();
    assert_eq!(net.leader(), Some(2), "the target took over at once");
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(net.node(2).applied_index(), net.node(2).commit_index());
}

#[test]
fn a_transfer_to_an_unreachable_voter_is_abandoned_after_an_election_timeout() {
    let mut net = settled(3);
    net.isolate(3);
    net.node_mut(1).transfer_leadership(NodeId(3)).unwrap();
    net.process(NodeId(1));
    assert!(net.propose(1, b"x").is_err());
    net.tick_all(25);
    assert_eq!(net.leader(), Some(1));
    assert_eq!(net.node(1).transfer_target(), None);
    assert!(net.propose(1, b"x").is_ok(), "proposals accepted again");
}

#[test]
fn a_snapshot_carries_the_configuration_to_a_new_node() {
    let mut net = settled(3);
    net.add_node(4);
    change(&mut net, 1, ConfChange::AddLearner(NodeId(4))).unwrap();
    net.isolate(4);
    for i in 0..10 {
        net.propose(1, format!("v{i}").as_bytes()).unwrap();
        net.deliver_all();
    }
    for id in 1..=3 {
        net.compact(id, 0).expect("compacts");
    }
    net.heal();
    net.tick_all(5);
    assert!(
        net.installed.contains_key(&NodeId(4)),
        "caught up by snapshot"
    );
    let mut want = Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]);
    want.learners.insert(NodeId(4));
    assert_eq!(net.node(4).membership(), &want);
    assert_eq!(net.node(4).snapshot_meta().membership, want);
}

#[test]
fn a_configuration_survives_a_restart_and_a_joining_node_restarts_into_it() {
    let mut net = settled(3);
    add_learner(&mut net, 4);
    change(&mut net, 1, ConfChange::Promote(NodeId(4))).unwrap();
    net.deliver_all();
    net.tick_all(3);
    for id in [1, 4] {
        net.crash(id);
        net.restart(id);
        assert_eq!(
            net.node(id).membership().voters,
            set(&[1, 2, 3, 4]),
            "n{id}"
        );
    }
}

/// Regression (found by the randomized test once it changed membership): a
/// leader appended C_new without itself, then crashed before C_new reached
/// anyone. The other voter needed its vote (joint {2} / {1, 2}) but could
/// not get it (n1's log is longer, §5.4.1), and n1 would not campaign (not a
/// voter of C_new): no leader, ever. A node that was a voter of the previous
/// configuration may campaign while the latest is not known committed.
#[test]
fn a_leader_that_crashed_holding_the_only_copy_of_its_removal_leads_again_to_finish_it() {
    let mut net = settled(3);
    shrink_to(&mut net, &[1, 2]);
    change(&mut net, 1, ConfChange::Remove(NodeId(1))).unwrap();
    let is_c_new_to_2 = |m: &crate::Message| {
        m.to == NodeId(2)
            && matches!(&m.body, crate::MessageBody::AppendEntries { entries, .. }
                if entries.iter().any(|e| matches!(&e.payload,
                    crate::EntryPayload::Membership(c) if !c.is_joint())))
    };
    net.deliver_all_dropping(is_c_new_to_2);
    assert_eq!(net.node(1).membership().voters, set(&[2]), "C_new on n1");
    assert!(net.node(2).membership().is_joint(), "but not on n2");
    net.crash(1);
    net.restart(1);
    assert!(
        net.node(1).is_promotable(),
        "a voter of the configuration before"
    );
    net.tick_all(60);
    assert_eq!(net.leader(), Some(2), "C_new committed, and n2 leads");
    assert_eq!(net.node(2).membership().voters, set(&[2]));
    assert!(!net.node(2).membership().is_joint());
    assert!(!net.node(1).is_promotable(), "removed for good now");
}

/// Regression (found by the randomized test once it changed membership): a
/// sole voter wins an election by its own vote, sending nothing, so its new
/// term was not yet durable when its appends left for a learner. A crash
/// then took the term back, the node led the same term again, and wrote a
/// different entry at an (index, term) the learner already held: Log
/// Matching broken. A leader's messages now wait until its term is durable.
#[test]
fn a_sole_voter_sends_nothing_of_a_term_that_is_not_yet_durable() {
    let mut net = Network::new(1);
    assert!(net.elect(1));
    net.deliver_all();
    net.add_node(2);
    change(&mut net, 1, ConfChange::AddLearner(NodeId(2))).unwrap();
    net.deliver_all();
    net.tick_all(3);
    net.crash(1);
    net.restart(1);
    // A slow disk: the new term and its entries stay in memory.
    net.hold_persistence(1);
    net.node_mut(1).campaign();
    net.process(NodeId(1));
    assert_eq!(net.node(1).role(), Role::Leader);
    let _ = net.propose(1, b"lost with the crash");
    net.deliver_all();
    net.crash(1);
    net.restart(1);
    net.release_persistence(1);
    net.node_mut(1).campaign();
    net.process(NodeId(1));
    let _ = net.propose(1, b"written after the restart");
    net.deliver_all();
    net.tick_all(3);
    // The network checks Log Matching across every pair of nodes.
    net.check_log_matching();
    assert_eq!(net.node(2).last_index(), net.node(1).last_index());
}
