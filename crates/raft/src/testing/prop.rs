//! Randomized properties: arbitrary interleavings of ticks, deliveries, drops,
//! duplicates, partitions, crashes, slow disks and membership changes (joint
//! consensus, learners, removals, leadership transfers) never break Figure 3's
//! safety properties (the network asserts them after every ready), and once
//! the faults stop, the cluster elects a leader and commits again. Nodes
//! compact their logs at random points, so followers catch up by
//! InstallSnapshot too (and the network checks every installed snapshot
//! against the committed entries it stands for).

use super::network::Network;
use crate::{ConfChange, NodeId, Role};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Tick node `i % n`.
    Tick(u8),
    /// Tick every node once (messages stay queued).
    TickAll,
    /// Deliver everything queued, in order, until quiet.
    DeliverAll,
    /// Deliver the queued message at position `k % len` (reordering).
    Deliver(u16),
    /// Lose it.
    Drop(u16),
    /// Deliver a copy later as well.
    Duplicate(u16),
    /// Split the cluster: nodes whose bit is set on one side.
    Partition(u8),
    Heal,
    /// Propose on node `i % n` (refused unless it leads).
    Propose(u8),
    /// Propose on the leader of the highest term, if any.
    ProposeToLeader,
    Read(u8),
    /// Ask a read of one of the nodes that believe they lead (stale
    /// leaders included).
    ReadAtALeader(u8),
    /// Node `i % n` starts an election now.
    Campaign(u8),
    /// Crash and restart at once: volatile state and held writes are lost.
    CrashRestart(u8),
    /// Start holding a node's writes (a slow disk).
    Hold(u8),
    /// Make its held writes durable.
    Release(u8),
    /// Node `i % n` snapshots its state machine and compacts its log,
    /// keeping the last `keep % 4` applied entries (§7).
    Compact(u8, u8),
    /// The leader of the highest term is asked for a membership change
    /// about node `i % n` (by `kind % 4`: add it as a learner, promote it,
    /// remove it, or hand it leadership); refusals are fine.
    Membership(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => any::<u8>().prop_map(Op::Tick),
        10 => Just(Op::TickAll),
        40 => any::<u16>().prop_map(Op::Deliver),
        3 => Just(Op::DeliverAll),
        5 => any::<u16>().prop_map(Op::Drop),
        5 => any::<u16>().prop_map(Op::Duplicate),
        2 => any::<u8>().prop_map(Op::Partition),
        4 => Just(Op::Heal),
        3 => any::<u8>().prop_map(Op::Propose),
        8 => Just(Op::ProposeToLeader),
        2 => any::<u8>().prop_map(Op::Read),
        4 => any::<u8>().prop_map(Op::ReadAtALeader),
        3 => any::<u8>().prop_map(Op::Campaign),
        3 => any::<u8>().prop_map(Op::CrashRestart),
        1 => any::<u8>().prop_map(Op::Hold),
        8 => any::<u8>().prop_map(Op::Release),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(i, keep)| Op::Compact(i, keep)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(kind, i)| Op::Membership(kind, i)),
    ]
}

fn run(net: &mut Network, n: u64, ops: &[Op], proposals: &mut u32, reads: &mut u64) {
    let pick = |i: u8| u64::from(i) % n + 1;
    for op in ops {
        match *op {
            Op::Tick(i) => net.tick(pick(i)),
            Op::TickAll => {
                for id in 1..=n {
                    net.tick(id);
                }
            }
            Op::DeliverAll => net.deliver_all(),
            Op::Deliver(k) | Op::Drop(k) | Op::Duplicate(k) if net.queue.is_empty() => {
                let _ = k;
            }
            Op::Deliver(k) => {
                let m = net.queue.remove(usize::from(k) % net.queue.len());
                net.deliver(m.expect("in range"));
            }
            Op::Drop(k) => {
                net.queue.remove(usize::from(k) % net.queue.len());
            }
            Op::Duplicate(k) => {
                let m = net.queue[usize::from(k) % net.queue.len()].clone();
                net.queue.push_back(m);
            }
            Op::Partition(mask) => {
                net.heal();
                for a in 1..=n {
                    for b in (a + 1)..=n {
                        let side = |x: u64| mask >> (x - 1) & 1;
                        if side(a) != side(b) {
                            net.cut(a, b);
                        }
                    }
                }
            }
            Op::Heal => net.heal(),
            Op::Propose(i) => {
                *proposals += 1;
                let _ = net.propose(pick(i), &proposals.to_le_bytes());
            }
            Op::ReadAtALeader(i) => {
                let leaders: Vec<u64> = (1..=n)
                    .filter(|&id| net.node(id).role() == Role::Leader)
                    .collect();
                if !leaders.is_empty() {
                    *reads += 1;
                    let _ = net.read_index(leaders[usize::from(i) % leaders.len()], *reads);
                }
            }
            Op::ProposeToLeader => {
                if let Some(leader) = net.leader() {
                    *proposals += 1;
                    let _ = net.propose(leader, &proposals.to_le_bytes());
                }
            }
            Op::Read(i) => {
                *reads += 1;
                let _ = net.read_index(pick(i), *reads);
            }
            Op::Campaign(i) => {
                net.node_mut(pick(i)).campaign();
                net.process(NodeId(pick(i)));
            }
            Op::CrashRestart(i) => {
                net.crash(pick(i));
                net.restart(pick(i));
            }
            Op::Hold(i) => net.hold_persistence(pick(i)),
            Op::Release(i) => net.release_persistence(pick(i)),
            Op::Compact(i, keep) => {
                net.compact(pick(i), u64::from(keep % 4));
            }
            Op::Membership(kind, i) => {
                if let Some(leader) = net.leader() {
                    let id = NodeId(pick(i));
                    let node = net.node_mut(leader);
                    let _ = match kind % 4 {
                        0 => node
                            .propose_membership(ConfChange::AddLearner(id))
                            .map(drop),
                        1 => node.propose_membership(ConfChange::Promote(id)).map(drop),
                        2 => node.propose_membership(ConfChange::Remove(id)).map(drop),
                        _ => node
                            .transfer_leadership(id)
                            .map_err(|_| crate::MembershipError::TransferInProgress),
                    };
                    net.process(NodeId(leader));
                }
            }
        }
        net.check_log_matching();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Election Safety, Log Matching, Leader Completeness and State Machine
    /// Safety under arbitrary faults; then liveness once they stop.
    #[test]
    fn random_faults_never_break_safety_and_the_cluster_recovers(
        n in 3u64..=5,
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
        chunk in 1usize..48,
        ops in proptest::collection::vec(op(), 50..1000),
    ) {
        let mut net = Network::with_config(n, |c| {
            c.election_tick = 4;
            c.heartbeat_tick = 1;
            c.pre_vote = pre_vote;
            c.check_quorum = check_quorum;
            c.max_entries_per_append = 3;
            c.max_inflight_appends = 4;
            c.max_snapshot_chunk_bytes = chunk;
        });
        let (mut proposals, mut reads) = (0, 0);
        run(&mut net, n, &ops, &mut proposals, &mut reads);

        // Faults stop: the cluster must elect a leader and commit again.
        net.heal();
        for id in 1..=n {
            net.release_persistence(id);
        }
        net.deliver_all();
        let mut committed = false;
        for _ in 0..200 {
            net.tick_all(1);
            if let Some(leader) = net.leader()
                && net.node(leader).role() == Role::Leader
                && let Ok(index) = net.propose(leader, b"final")
            {
                net.deliver_all();
                net.tick_all(2);
                // Every member commits it (nodes removed along the way are
                // no longer replicated to).
                let members = net.node(leader).membership().members();
                if members.iter().all(|id| net.node(id.0).commit_index() >= index) {
                    committed = true;
                    break;
                }
            }
        }
        prop_assert!(committed, "no progress after healing");
        net.check_log_matching();
        // Everyone applied the same sequence.
        let first = net.applied[&NodeId(1)].clone();
        for id in 2..=n {
            let other = &net.applied[&NodeId(id)];
            let common = first.len().min(other.len());
            prop_assert_eq!(&first[..common], &other[..common]);
        }
    }
}
