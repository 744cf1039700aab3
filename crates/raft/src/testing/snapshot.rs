//! Scenarios of §7: log compaction, and followers catching up by
//! InstallSnapshot (chunked, resumable, never below the commit index).

use super::network::{Network, state_bytes};
use crate::{
    Config, Entry, EntryPayload, HardState, LogIndex, Membership, Message, MessageBody, NodeId,
    RawNode, Snapshot, SnapshotMeta, Term,
};
use std::cell::Cell;

fn chunked(bytes: usize) -> Network {
    Network::with_config(3, |c| c.max_snapshot_chunk_bytes = bytes)
}

/// Elects 1, cuts 3 off, commits `count` commands on 1 and 2, and compacts
/// node 1 keeping `keep` entries. Returns the snapshot's index.
fn leave_three_behind(net: &mut Network, count: u32, keep: u64) -> LogIndex {
    assert!(net.elect(1));
    net.isolate(3);
    for i in 0..count {
        net.propose(1, &i.to_le_bytes()).unwrap();
        net.deliver_all();
    }
    net.tick_all(2);
    let index = net.compact(1, keep).expect("compacts");
    assert!(net.node(1).first_index() > net.node(3).last_index().next());
    index
}

/// Offsets of the InstallSnapshot chunks sent to `to`, in order.
fn chunk_offsets(net: &Network, to: u64) -> Vec<u64> {
    net.sent_log
        .iter()
        .filter(|(m, _)| m.to == NodeId(to))
        .filter_map(|(m, _)| match &m.body {
            MessageBody::InstallSnapshot { offset, .. } => Some(*offset),
            _ => None,
        })
        .collect()
}

fn is_chunk_to(m: &Message, to: u64, at: u64) -> bool {
    m.to == NodeId(to)
        && matches!(m.body, MessageBody::InstallSnapshot { offset, .. } if offset == at)
}

#[test]
fn compaction_moves_the_first_index_and_keeps_the_tail_7() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    for i in 0..5u32 {
        net.propose(1, &i.to_le_bytes()).unwrap();
    }
    net.deliver_all();
    let applied = net.node(1).applied_index();
    assert_eq!(applied, LogIndex(6));
    let index = net.compact(1, 2).unwrap();
    let node = net.node(1);
    assert_eq!(index, LogIndex(4));
    assert_eq!(node.first_index(), LogIndex(5));
    assert_eq!(node.snapshot_meta().index, LogIndex(4));
    assert_eq!(
        node.snapshot_meta().membership,
        Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)])
    );
    assert_eq!(
        node.term_at(LogIndex(4)),
        Some(Term(1)),
        "the snapshot's term"
    );
    assert_eq!(node.term_at(LogIndex(3)), None, "compacted away");
    assert!(node.entry(LogIndex(4)).is_none() && node.entry(LogIndex(5)).is_some());
    // Compacting past the applied index, or not past the snapshot, is refused.
    let mut node = net.nodes.remove(&NodeId(1)).unwrap();
    assert!(matches!(
        node.compact(LogIndex(7), vec![]),
        Err(crate::CompactError::NotApplied { .. })
    ));
    assert!(matches!(
        node.compact(LogIndex(4), vec![]),
        Err(crate::CompactError::AlreadyCompacted { .. })
    ));
}

#[test]
fn a_follower_behind_the_first_index_catches_up_by_install_snapshot_7() {
    let mut net = chunked(16);
    net.record_sent = true;
    let index = leave_three_behind(&mut net, 10, 2);
    net.heal();
    net.tick_all(5);
    assert_eq!(net.installed[&NodeId(3)], vec![index]);
    // 40 bytes in chunks of 16: offsets 0, 16, 32, each once.
    assert_eq!(chunk_offsets(&net, 3), vec![0, 16, 32]);
    let three = net.node(3);
    assert_eq!(three.first_index(), index.next());
    assert_eq!(three.applied_index(), net.node(1).applied_index());
    assert_eq!(net.applied_commands(3), net.applied_commands(1));
    // And it goes on replicating normally.
    let i = net.propose(1, b"after").unwrap();
    net.deliver_all();
    assert_eq!(net.node(3).commit_index(), i);
    net.check_log_matching();
}

#[test]
fn a_lost_chunk_is_resent_and_the_transfer_resumes_from_the_follower_offset_7() {
    let mut net = chunked(8);
    net.record_sent = true;
    let index = leave_three_behind(&mut net, 10, 0);
    net.heal();
    // The chunk at offset 16 is lost, once.
    let lost = Cell::new(false);
    for _ in 0..10 {
        for id in 1..=3 {
            net.tick(id);
        }
        net.deliver_all_dropping(|m| is_chunk_to(m, 3, 16) && !lost.replace(true));
    }
    assert!(lost.get(), "the chunk was sent and lost");
    assert_eq!(net.installed[&NodeId(3)], vec![index]);
    let offsets = chunk_offsets(&net, 3);
    assert_eq!(
        offsets.iter().filter(|&&o| o == 16).count(),
        2,
        "{offsets:?}"
    );
    assert_eq!(
        offsets.iter().filter(|&&o| o == 0).count(),
        1,
        "not restarted: {offsets:?}"
    );
    assert_eq!(net.applied_commands(3), net.applied_commands(1));
}

#[test]
fn a_leader_change_mid_transfer_discards_the_partial_snapshot_and_completes_7() {
    let mut net = chunked(8);
    net.record_sent = true;
    let index = leave_three_behind(&mut net, 10, 0);
    // Node 2 compacts too, so that as leader it must also send a snapshot.
    net.compact(2, 0).unwrap();
    net.heal();
    // Leader 1 gets two chunks through, then is cut off.
    let sent = Cell::new(0);
    net.tick(1);
    net.deliver_all_dropping(|m| {
        if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
            sent.set(sent.get() + 1);
            sent.get() > 2
        } else {
            false
        }
    });
    assert!(!net.installed.contains_key(&NodeId(3)), "partial only");
    net.isolate(1);
    for _ in 0..100 {
        net.tick_all(1);
        if net.leader() == Some(2) {
            break;
        }
    }
    assert_eq!(net.leader(), Some(2));
    net.tick_all(10);
    let installed = &net.installed[&NodeId(3)];
    assert_eq!(installed.len(), 1);
    assert!(installed[0] >= index);
    assert_eq!(net.applied_commands(3), net.applied_commands(2));
    // The new leader's transfer started from offset 0.
    let from_two: Vec<u64> = net
        .sent_log
        .iter()
        .filter(|(m, _)| m.from == NodeId(2) && m.to == NodeId(3))
        .filter_map(|(m, _)| match m.body {
            MessageBody::InstallSnapshot { offset, .. } => Some(offset),
            _ => None,
        })
        .collect();
    assert_eq!(from_two.first(), Some(&0));
}

#[test]
fn restart_from_snapshot_and_log_tail_reapplies_only_the_tail_7() {
    let mut net = Network::new(3);
    assert!(net.elect(1));
    for i in 0..8u32 {
        net.propose(1, &i.to_le_bytes()).unwrap();
        net.deliver_all();
    }
    net.tick_all(2);
    let index = net.compact(2, 3).unwrap();
    let before = net.applied_commands(2);
    net.crash(2);
    net.restart(2);
    let two = net.node(2);
    assert_eq!(two.first_index(), index.next());
    assert_eq!(two.snapshot_meta().index, index);
    assert!(two.commit_index() >= index);
    net.tick_all(3);
    assert_eq!(net.applied_commands(2), before);
    let i = net.propose(1, b"more").unwrap();
    net.deliver_all();
    assert_eq!(net.node(2).commit_index(), i);
    // And the restarted node can lead, sending its snapshot if needed.
    net.check_log_matching();
}

fn node(id: u64) -> RawNode {
    RawNode::new(Config::new(
        NodeId(id),
        vec![NodeId(1), NodeId(2), NodeId(3)],
        3,
    ))
    .unwrap()
}

fn chunk(
    term: u64,
    index: u64,
    snapshot_term: u64,
    offset: u64,
    data: &[u8],
    done: bool,
) -> Message {
    Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(term),
        body: MessageBody::InstallSnapshot {
            index: LogIndex(index),
            snapshot_term: Term(snapshot_term),
            membership: Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]),
            offset,
            data: data.to_vec(),
            done,
        },
    }
}

/// The InstallSnapshotResponses handed out: (term, index, offset, done).
fn answers(n: &mut RawNode) -> Vec<(Term, LogIndex, u64, bool)> {
    let rd = n.ready();
    rd.persisted_messages
        .into_iter()
        .filter_map(|m| match m.body {
            MessageBody::InstallSnapshotResponse {
                index,
                offset,
                done,
            } => Some((m.term, index, offset, done)),
            _ => None,
        })
        .collect()
}

fn restored_follower(commit: u64, last: u64) -> RawNode {
    let entries = (1..=last)
        .map(|i| Entry {
            term: Term(1),
            index: LogIndex(i),
            payload: EntryPayload::Noop,
        })
        .collect();
    let hs = HardState {
        term: Term(2),
        vote: None,
        commit: LogIndex(commit),
    };
    RawNode::restore(
        Config::new(NodeId(2), vec![NodeId(1), NodeId(2), NodeId(3)], 3),
        hs,
        entries,
    )
    .unwrap()
}

#[test]
fn a_snapshot_at_or_below_the_commit_index_is_never_installed_7() {
    let mut n = restored_follower(10, 12);
    n.ready();
    n.step(chunk(2, 5, 1, 0, b"old", true)).unwrap();
    assert!(n.take_snapshot().is_none());
    assert_eq!(answers(&mut n), vec![(Term(2), LogIndex(5), 3, true)]);
    assert_eq!(
        (n.first_index(), n.last_index()),
        (LogIndex(1), LogIndex(12))
    );
    n.step(chunk(2, 10, 1, 0, b"old", true)).unwrap();
    assert!(n.take_snapshot().is_none(), "at the commit index either");
}

#[test]
fn a_snapshot_matching_the_log_keeps_the_suffix_and_a_conflicting_one_discards_it_7() {
    // Index 8 has term 1 in our log: keep 9..=12.
    let mut n = restored_follower(2, 12);
    n.ready();
    n.step(chunk(2, 8, 1, 0, b"s", true)).unwrap();
    let s = n.take_snapshot().expect("installed");
    assert_eq!(s.meta.index, LogIndex(8));
    assert_eq!(
        (n.first_index(), n.last_index()),
        (LogIndex(9), LogIndex(12))
    );
    assert_eq!(n.commit_index(), LogIndex(8));
    // Index 8 with term 2: our log conflicts, so all of it goes.
    let mut n = restored_follower(2, 12);
    n.ready();
    n.step(chunk(2, 8, 2, 0, b"s", true)).unwrap();
    assert!(n.take_snapshot().is_some());
    assert_eq!(
        (n.first_index(), n.last_index()),
        (LogIndex(9), LogIndex(8))
    );
    n.snapshot_installed(LogIndex(8));
    assert_eq!(n.applied_index(), LogIndex(8));
}

#[test]
fn a_stale_install_snapshot_is_ignored_7() {
    // Lower term: refused with our term, nothing assembled.
    let mut n = restored_follower(0, 0);
    n.ready();
    n.step(chunk(1, 5, 1, 0, b"abc", true)).unwrap();
    assert!(n.take_snapshot().is_none());
    let rd = n.ready();
    let answer = rd
        .persisted_messages
        .iter()
        .chain(&rd.messages)
        .find_map(|m| match m.body {
            MessageBody::InstallSnapshotResponse { done, .. } => Some((m.term, done)),
            _ => None,
        });
    assert_eq!(answer, Some((Term(2), false)));
    // An older index from the same leader while a newer transfer is under
    // way: ignored, and the newer transfer goes on.
    n.step(chunk(2, 20, 1, 0, b"new-", false)).unwrap();
    assert_eq!(answers(&mut n), vec![(Term(2), LogIndex(20), 4, false)]);
    n.step(chunk(2, 10, 1, 0, b"old", true)).unwrap();
    assert!(n.take_snapshot().is_none());
    assert_eq!(answers(&mut n), vec![(Term(2), LogIndex(10), 0, false)]);
    n.step(chunk(2, 20, 1, 4, b"data", true)).unwrap();
    let s = n.take_snapshot().expect("the newer one completes");
    assert_eq!(s.data, b"new-data");
}

#[test]
fn a_chunk_out_of_order_is_answered_with_the_offset_held_7() {
    let mut n = restored_follower(0, 0);
    n.ready();
    n.step(chunk(2, 5, 1, 0, b"ab", false)).unwrap();
    assert_eq!(answers(&mut n), vec![(Term(2), LogIndex(5), 2, false)]);
    n.step(chunk(2, 5, 1, 4, b"ef", true)).unwrap();
    assert!(n.take_snapshot().is_none());
    assert_eq!(answers(&mut n), vec![(Term(2), LogIndex(5), 2, false)]);
    // A chunk of a transfer this node never started: start over.
    n.step(chunk(2, 6, 1, 2, b"cd", false)).unwrap();
    assert_eq!(answers(&mut n), vec![(Term(2), LogIndex(6), 0, false)]);
}

#[test]
fn malformed_install_snapshots_are_refused_without_state_change() {
    let mut n = node(2);
    let mut bad = chunk(2, 0, 1, 0, b"x", true);
    assert!(n.step(bad.clone()).is_err(), "index 0");
    bad = chunk(2, 5, 3, 0, b"x", true);
    assert!(n.step(bad).is_err(), "snapshot term above the message's");
    bad = chunk(2, 5, 1, u64::MAX, b"x", true);
    assert!(n.step(bad).is_err(), "offset overflow");
    assert_eq!(n.term(), Term(0));
}

#[test]
fn restore_with_snapshot_validates_the_tail() {
    let cfg = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)], 3);
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(5),
            term: Term(2),
            membership: Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]),
        },
        data: state_bytes(&[]),
    };
    let hs = HardState {
        term: Term(3),
        vote: None,
        commit: LogIndex(0),
    };
    let tail = |first: u64, term: u64| {
        vec![Entry {
            term: Term(term),
            index: LogIndex(first),
            payload: EntryPayload::Noop,
        }]
    };
    let n = RawNode::restore_with_snapshot(cfg.clone(), hs, Some(snapshot.clone()), tail(6, 3))
        .unwrap();
    assert_eq!(n.commit_index(), LogIndex(5), "at least the snapshot");
    assert_eq!(n.applied_index(), LogIndex(5), "the driver installed it");
    assert!(
        RawNode::restore_with_snapshot(cfg.clone(), hs, Some(snapshot.clone()), tail(7, 3))
            .is_err()
    );
    assert!(RawNode::restore_with_snapshot(cfg, hs, Some(snapshot), tail(6, 1)).is_err());
}

#[test]
fn periodic_compaction_keeps_every_log_bounded_while_a_slow_follower_catches_up_7() {
    const EVERY: u64 = 20;
    const KEEP: u64 = 5;
    let mut net = chunked(16);
    assert!(net.elect(1));
    let mut longest = 0;
    for i in 0..300u32 {
        // Node 3 is cut off for stretches, so it falls behind the first index.
        if i % 100 == 10 {
            net.isolate(3);
        }
        if i % 100 == 60 {
            net.heal();
        }
        net.propose(1, &i.to_le_bytes()).unwrap();
        net.deliver_all();
        net.tick_all(1);
        for id in 1..=3 {
            let n = net.node(id);
            if n.applied_index().0 >= n.snapshot_meta().index.0 + EVERY + KEEP {
                net.compact(id, KEEP);
            }
            let n = net.node(id);
            longest = longest.max(n.last_index().0 + 1 - n.first_index().0);
        }
    }
    net.heal();
    net.tick_all(10);
    assert!(longest <= EVERY + KEEP + 2, "a log held {longest} entries");
    assert!(net.installed.get(&NodeId(3)).is_some_and(|v| v.len() >= 2));
    assert_eq!(net.applied_commands(3), net.applied_commands(1));
    net.check_log_matching();
}
