//! Lease-based reads (dissertation §6.4.1): answered at once while a quorum
//! recently confirmed the leader, by ReadIndex rounds otherwise.

use super::network::Network;
use crate::{Config, ConfigError, NodeId, RawNode};

fn leased(lease: u32) -> Network {
    let mut net = Network::with_config(3, |c| c.lease_read_ticks = lease);
    assert!(net.elect(1));
    net.deliver_all();
    net
}

#[test]
fn a_leader_within_its_lease_answers_a_read_without_a_round() {
    let mut net = leased(8);
    // A heartbeat round confirmed by a quorum starts the lease.
    for _ in 0..3 {
        net.tick(1);
    }
    net.deliver_all();
    net.read_index(1, 7).unwrap();
    let states = net.read_states.get(&NodeId(1)).cloned().unwrap_or_default();
    assert!(
        states.iter().any(|r| r.ctx == 7),
        "answered at once, with nothing delivered: {states:?}"
    );
}

#[test]
fn an_expired_lease_falls_back_to_a_read_index_round() {
    let mut net = leased(8);
    for _ in 0..3 {
        net.tick(1);
    }
    net.deliver_all();
    // Cut off: heartbeats go unanswered and the lease runs out.
    net.isolate(1);
    for _ in 0..9 {
        net.tick(1);
    }
    net.read_index(1, 9).unwrap();
    let states = net.read_states.get(&NodeId(1)).cloned().unwrap_or_default();
    assert!(
        !states.iter().any(|r| r.ctx == 9),
        "no answer without a quorum: {states:?}"
    );
}

#[test]
fn without_lease_reads_every_read_waits_for_its_round() {
    let mut net = leased(0);
    for _ in 0..3 {
        net.tick(1);
    }
    net.deliver_all();
    net.read_index(1, 5).unwrap();
    let states = net.read_states.get(&NodeId(1)).cloned().unwrap_or_default();
    assert!(!states.iter().any(|r| r.ctx == 5), "{states:?}");
    net.deliver_all();
    net.tick_all(1);
    let states = net.read_states.get(&NodeId(1)).cloned().unwrap_or_default();
    assert!(
        states.iter().any(|r| r.ctx == 5),
        "after its round: {states:?}"
    );
}

#[test]
fn a_lease_must_be_shorter_than_the_election_timeout_and_need_check_quorum() {
    let mut c = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)], 1);
    c.lease_read_ticks = c.election_tick;
    assert!(matches!(
        RawNode::new(c.clone()).err(),
        Some(ConfigError::LeaseOutlivesElection { .. })
    ));
    c.lease_read_ticks = c.election_tick - 1;
    c.check_quorum = false;
    assert!(RawNode::new(c.clone()).is_err());
    c.check_quorum = true;
    assert!(RawNode::new(c).is_ok());
}
