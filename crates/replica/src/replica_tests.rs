//! The replica's unit tests. `Node` is the smallest executor: it carries
//! out every write at once (`instant`) or holds writes until told
//! (`manual`), so the tests can look at the states in between.

use super::*;
use crate::effects::{Effect, EntryDigest, Input, ReplicaEvent, payload_digest};
use crate::envelope::{ClientReply, ClientRequest, ReplyError, WireError};
use crate::storage::Storage;
use crate::write::Write;
use kv::{Op, Output};
use raft::{EntryPayload, Message, MessageBody, NodeId, Role, Term};
use std::collections::VecDeque;
use wal::Disk;
use wal::MemDisk;

const CLUSTER: u64 = 7;

/// A replica with its storage and the simplest executor.
struct Node {
    replica: Replica,
    storage: Storage<MemDisk>,
    /// Writes issued and not yet reported done (manual mode).
    in_flight: VecDeque<Write>,
    /// Carry out every write at once.
    instant: bool,
}

impl Node {
    fn open(disk: MemDisk, config: Config, policy: SnapshotPolicy) -> (Node, Vec<Effect>) {
        let (storage, recovered) = Storage::open(disk).expect("the log opens");
        let options = ReplicaOptions {
            snapshot_policy: policy,
            storage: StorageLimits::DEFAULT,
        };
        let (replica, effects) =
            Replica::open(CLUSTER, config, options, recovered).expect("the replica opens");
        let mut node = Node {
            replica,
            storage,
            in_flight: VecDeque::new(),
            instant: true,
        };
        let effects = node.carry_out(effects).expect("recovery steps");
        (node, effects)
    }

    /// Hands `input` to the replica; returns every effect but writes, which
    /// it carries out (at once in instant mode).
    fn handle(&mut self, input: Input) -> Result<Vec<Effect>, ReplicaError> {
        let mut effects = Vec::new();
        self.replica.handle(input, &mut effects)?;
        self.carry_out(effects)
    }

    fn carry_out(&mut self, effects: Vec<Effect>) -> Result<Vec<Effect>, ReplicaError> {
        let mut out = Vec::new();
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Write(write) => {
                    self.storage.write(&write)?;
                    self.in_flight.push_back(write);
                    if self.instant {
                        let more = self.complete_oldest()?;
                        queue.extend(more);
                    }
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }

    /// Syncs, and reports the oldest write in flight done.
    fn complete_oldest(&mut self) -> Result<Vec<Effect>, ReplicaError> {
        let write = self.in_flight.pop_front().expect("a write in flight");
        self.storage.sync()?;
        let mut effects = Vec::new();
        self.replica
            .handle(Input::WriteDone(write.id), &mut effects)?;
        Ok(effects)
    }

    /// Manual mode: completes the oldest write, carrying out what follows
    /// (further writes stay in flight).
    fn finish_one(&mut self) -> Vec<Effect> {
        let effects = self.complete_oldest().expect("completes");
        self.carry_out(effects).expect("carries out")
    }

    fn raft(&self) -> &RawNode {
        self.replica.raft()
    }

    fn kv(&self) -> &KvStore {
        self.replica.kv()
    }

    fn wal(&self) -> &wal::Wal<MemDisk> {
        self.storage.wal()
    }
}

fn replies(effects: &[Effect]) -> Vec<ClientReply> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(reply) => Some(reply.clone()),
            _ => None,
        })
        .collect()
}

fn sent(effects: &[Effect]) -> Vec<Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(envelope) => Some(envelope.msg.clone()),
            _ => None,
        })
        .collect()
}

fn single_node_with(disk: MemDisk, policy: SnapshotPolicy) -> Node {
    let config = Config::new(NodeId(1), vec![NodeId(1)], 42);
    let (mut node, _) = Node::open(disk, config, policy);
    for _ in 0..100 {
        node.handle(Input::Tick).expect("ticks");
        if node.raft().role() == Role::Leader {
            return node;
        }
    }
    panic!("a single node elects itself within 100 ticks");
}

fn single_node(disk: MemDisk) -> Node {
    single_node_with(disk, SnapshotPolicy::DEFAULT)
}

fn client_request(req_id: u64, seq: u64, op: Op) -> Input {
    Input::Request(ClientRequest {
        req_id,
        client: 9,
        seq,
        op,
    })
}

fn request(node: &mut Node, req_id: u64, seq: u64, op: Op) -> Vec<ClientReply> {
    replies(
        &node
            .handle(client_request(req_id, seq, op))
            .expect("handles"),
    )
}

fn append(value: &str) -> Op {
    Op::Append {
        key: "k".into(),
        value: value.into(),
    }
}

#[test]
fn a_retried_write_takes_effect_once_and_gets_its_first_result() {
    let mut replica = single_node(MemDisk::new());
    let first = request(&mut replica, 1, 1, append("x"));
    assert_eq!(
        first,
        vec![ClientReply {
            req_id: 1,
            result: Ok(Output::Done)
        }]
    );
    let retry = request(&mut replica, 2, 1, append("x"));
    assert_eq!(
        retry,
        vec![ClientReply {
            req_id: 2,
            result: Ok(Output::Done)
        }]
    );
    assert_eq!(
        replica.kv().get("k"),
        Some("x"),
        "the retry did not append again"
    );
}

#[test]
fn a_read_is_served_after_read_index_confirms_leadership() {
    let mut replica = single_node(MemDisk::new());
    request(
        &mut replica,
        1,
        1,
        Op::Put {
            key: "k".into(),
            value: "v".into(),
        },
    );
    let read = request(&mut replica, 2, 1, Op::Get { key: "k".into() });
    assert_eq!(
        read,
        vec![ClientReply {
            req_id: 2,
            result: Ok(Output::Value(Some("v".into())))
        }]
    );
}

#[test]
fn a_node_that_does_not_lead_refuses_clients_definitely() {
    let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)], 1);
    let (mut replica, _) = Node::open(MemDisk::new(), config, SnapshotPolicy::DEFAULT);
    let replies = request(&mut replica, 5, 1, append("x"));
    assert_eq!(replies.len(), 1);
    let err = replies[0].result.clone().unwrap_err();
    assert_eq!(err, ReplyError::NotLeader { leader: None });
    assert!(err.is_definite());
    let read = request(&mut replica, 6, 1, Op::Get { key: "k".into() });
    assert_eq!(read[0].result, Err(ReplyError::NotLeader { leader: None }));
}

#[test]
fn a_message_from_another_cluster_is_refused_and_changes_nothing() {
    let mut replica = single_node(MemDisk::new());
    let term = replica.raft().term();
    let msg = Message {
        from: NodeId(2),
        to: NodeId(1),
        term: raft::Term(term.0 + 5),
        body: MessageBody::RequestVote {
            last_log_index: LogIndex(100),
            last_log_term: raft::Term(term.0 + 5),
            transfer: false,
        },
    };
    let effects = replica
        .handle(Input::Message(Envelope {
            cluster_id: CLUSTER + 1,
            msg,
        }))
        .unwrap();
    assert_eq!(
        effects,
        vec![Effect::Event(ReplicaEvent::Refused(
            WireError::WrongCluster {
                expected: CLUSTER,
                got: CLUSTER + 1
            }
        ))]
    );
    assert_eq!(replica.raft().term(), term);
    assert_eq!(replica.raft().role(), Role::Leader);
}

#[test]
fn an_oversized_value_is_refused_before_it_reaches_the_log() {
    let mut replica = single_node(MemDisk::new());
    let last = replica.raft().last_index();
    let huge = "x".repeat(kv::MAX_VALUE_BYTES + 1);
    let replies = request(
        &mut replica,
        1,
        1,
        Op::Put {
            key: "k".into(),
            value: huge,
        },
    );
    assert!(
        matches!(replies[0].result, Err(ReplyError::Invalid(_))),
        "{replies:?}"
    );
    assert_eq!(replica.raft().last_index(), last);
}

#[test]
fn a_restarted_replica_rebuilds_its_state_machine_from_the_disk() {
    let disk = MemDisk::new();
    let mut replica = single_node(disk.clone());
    request(&mut replica, 1, 1, append("a"));
    request(&mut replica, 2, 2, append("b"));
    let digest = replica.kv().digest();
    drop(replica);
    disk.crash();
    let config = Config::new(NodeId(1), vec![NodeId(1)], 43);
    let (restarted, effects) = Node::open(disk, config, SnapshotPolicy::DEFAULT);
    assert_eq!(restarted.kv().get("k"), Some("ab"));
    assert_eq!(restarted.kv().digest(), digest);
    let applied = effects
        .iter()
        .filter(|e| matches!(e, Effect::Event(ReplicaEvent::Applied(_))))
        .count();
    assert!(applied >= 2, "recovery reports what it re-applied");
}

#[test]
fn open_reports_what_recovery_found_first() {
    let disk = MemDisk::new();
    let mut replica = single_node(disk.clone());
    request(&mut replica, 1, 1, append("a"));
    let log: Vec<EntryDigest> = replica
        .wal()
        .read_entries()
        .expect("the log reads back")
        .iter()
        .map(EntryDigest::of)
        .collect();
    let hard_state = replica.wal().hard_state();
    drop(replica);
    let config = Config::new(NodeId(1), vec![NodeId(1)], 43);
    let (_, effects) = Node::open(disk, config, SnapshotPolicy::DEFAULT);
    assert_eq!(
        effects[0],
        Effect::Event(ReplicaEvent::Recovered {
            hard_state,
            snapshot: None,
            entries: log,
            truncated_tail_bytes: 0
        })
    );
}

#[test]
fn a_full_disk_stops_the_replica_and_a_restart_recovers_once_space_returns() {
    let disk = MemDisk::new();
    let mut replica = single_node(disk.clone());
    request(&mut replica, 1, 1, append("a"));
    disk.set_capacity(Some(disk.len(wal::WAL_FILE).unwrap()));
    // The executor's write fails: the replica is stopped (fail-stop)
    // before any answer leaves.
    let mut effects = Vec::new();
    replica
        .replica
        .handle(client_request(2, 2, append("b")), &mut effects)
        .expect("the replica only asks for the write");
    assert!(replies(&effects).is_empty(), "nothing acknowledged yet");
    let write = effects
        .iter()
        .find_map(|e| match e {
            Effect::Write(w) => Some(w.clone()),
            _ => None,
        })
        .expect("a write asked for");
    let err = ReplicaError::from(replica.storage.execute(&write).unwrap_err());
    assert!(err.is_disk_failure(), "{err}");
    assert!(!err.is_disk_corruption());
    drop(replica);
    disk.crash();
    disk.set_capacity(None);
    let config = Config::new(NodeId(1), vec![NodeId(1)], 43);
    let (mut restarted, _) = Node::open(disk, config, SnapshotPolicy::DEFAULT);
    assert_eq!(restarted.kv().get("k"), Some("a"));
    while restarted.raft().role() != Role::Leader {
        restarted.handle(Input::Tick).expect("ticks");
    }
    request(&mut restarted, 3, 2, append("c"));
    assert_eq!(restarted.kv().get("k"), Some("ac"));
}

#[test]
fn a_corrupt_log_keeps_the_replica_down_and_says_where() {
    let disk = MemDisk::new();
    let mut replica = single_node(disk.clone());
    request(&mut replica, 1, 1, append("a"));
    request(&mut replica, 2, 2, append("b"));
    drop(replica);
    assert!(disk.corrupt(wal::WAL_FILE, 20, 0x04));
    let config = Config::new(NodeId(1), vec![NodeId(1)], 43);
    let opened = Storage::open(disk)
        .map_err(ReplicaError::from)
        .and_then(|(_, recovered)| {
            Replica::open(CLUSTER, config, ReplicaOptions::default(), recovered)
        });
    match opened {
        Err(e) => {
            assert!(e.is_disk_corruption(), "{e}");
            assert!(e.to_string().contains(wal::WAL_FILE), "{e}");
        }
        Ok(_) => panic!("opened on a corrupt log"),
    }
}

#[test]
fn every_durable_promise_follows_a_sync() {
    let disk = MemDisk::new();
    let mut replica = single_node(disk.clone());
    let syncs = disk.syncs();
    request(&mut replica, 1, 1, append("a"));
    assert!(disk.syncs() > syncs, "an acknowledged write was synced");
    assert_eq!(
        disk.contents(wal::WAL_FILE),
        disk.durable_contents(wal::WAL_FILE)
    );
}

#[test]
fn the_log_is_compacted_by_the_policy_and_a_restart_starts_from_the_snapshot() {
    let disk = MemDisk::new();
    let policy = SnapshotPolicy { every: 8, keep: 3 };
    let mut replica = single_node_with(disk.clone(), policy);
    for seq in 1..=50 {
        let replies = request(&mut replica, seq, seq, append("x"));
        assert_eq!(replies[0].result, Ok(Output::Done));
        let applied_held = replica.kv().applied_index() - replica.wal().snapshot_meta().index.0;
        assert!(
            applied_held <= policy.max_applied_entries(),
            "{applied_held} applied entries held"
        );
        assert_eq!(replica.raft().first_index(), replica.wal().first_index());
    }
    let first = replica.wal().first_index();
    assert!(first.0 > 30, "compacted up to {first}");
    let applied = replica.kv().applied_index();
    assert!(
        applied - replica.wal().snapshot_meta().index.0 >= policy.keep,
        "at least `keep` applied entries stay in the log"
    );
    let digest = replica.kv().digest();
    drop(replica);
    disk.crash();
    let config = Config::new(NodeId(1), vec![NodeId(1)], 43);
    let (restarted, effects) = Node::open(disk, config, policy);
    assert_eq!(restarted.kv().digest(), digest);
    assert_eq!(restarted.kv().get("k").map(str::len), Some(50));
    match &effects[0] {
        Effect::Event(ReplicaEvent::Recovered {
            snapshot: Some(s), ..
        }) => assert_eq!(s.index.next(), first),
        other => panic!("expected recovery from a snapshot, got {other:?}"),
    }
    let reapplied = effects
        .iter()
        .filter(|e| matches!(e, Effect::Event(ReplicaEvent::Applied(_))))
        .count() as u64;
    assert!(
        reapplied <= policy.every + policy.keep + 1,
        "only the tail after the snapshot is re-applied ({reapplied})"
    );
}

#[test]
fn snapshots_report_what_they_cover() {
    let policy = SnapshotPolicy { every: 4, keep: 0 };
    let mut replica = single_node_with(MemDisk::new(), policy);
    let mut taken = Vec::new();
    for seq in 1..=9 {
        let effects = replica
            .handle(client_request(seq, seq, append("y")))
            .unwrap();
        taken.extend(effects.into_iter().filter_map(|e| match e {
            Effect::Event(ReplicaEvent::SnapshotTaken { snapshot, .. }) => Some(snapshot),
            _ => None,
        }));
    }
    assert!(taken.len() >= 2, "{taken:?}");
    assert!(taken.windows(2).all(|w| w[0].index < w[1].index));
    let last = taken.last().unwrap();
    assert_eq!(last.index, replica.wal().snapshot_meta().index);
    assert_eq!(last.term, replica.wal().snapshot_meta().term);
}

#[test]
fn payload_digests_are_stable() {
    // Pinned: the trace hash of every recorded seed depends on these.
    assert_eq!(
        payload_digest(&EntryPayload::Command(b"abc".to_vec())),
        0xe71f_a219_0541_574b
    );
    assert_ne!(
        payload_digest(&EntryPayload::Noop),
        payload_digest(&EntryPayload::Command(vec![]))
    );
}

// ----- asynchronous storage: each rule, with a test that fails without it --

/// Three nodes and the messages between them, delivered by hand.
struct Cluster {
    nodes: Vec<Node>,
    /// Messages sent and not yet delivered, in order.
    outbox: VecDeque<Message>,
    /// Client replies seen, from any node.
    replies: Vec<ClientReply>,
}

impl Cluster {
    fn three() -> Cluster {
        let voters = vec![NodeId(1), NodeId(2), NodeId(3)];
        let nodes = (1..=3)
            .map(|id| {
                let config = Config::new(NodeId(id), voters.clone(), id);
                Node::open(MemDisk::new(), config, SnapshotPolicy::NEVER).0
            })
            .collect();
        Cluster {
            nodes,
            outbox: VecDeque::new(),
            replies: Vec::new(),
        }
    }

    fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    /// Keeps what `effects` send, and the replies.
    fn route(&mut self, effects: Vec<Effect>) {
        self.replies.extend(replies(&effects));
        self.outbox.extend(sent(&effects));
    }

    fn step(&mut self, id: u64, input: Input) {
        let effects = self.node(id).handle(input).expect("steps");
        self.route(effects);
    }

    fn deliver(&mut self, msg: Message) {
        let to = msg.to.0;
        self.step(
            to,
            Input::Message(Envelope {
                cluster_id: CLUSTER,
                msg,
            }),
        );
    }

    /// Delivers everything sent until nothing more is (bounded).
    fn pump(&mut self) {
        for _ in 0..1_000 {
            let Some(msg) = self.outbox.pop_front() else {
                return;
            };
            self.deliver(msg);
        }
        panic!("messages kept flowing");
    }

    /// Ticks node 1 (only) until it leads, delivering everything.
    fn elect_node_1(&mut self) {
        for _ in 0..200 {
            self.step(1, Input::Tick);
            self.pump();
            if self.node(1).raft().role() == Role::Leader {
                self.pump();
                return;
            }
        }
        panic!("node 1 did not become leader");
    }

    /// Takes the queued messages matching `keep`, leaving the others.
    fn take(&mut self, keep: impl Fn(&Message) -> bool) -> Vec<Message> {
        let (taken, rest): (Vec<Message>, Vec<Message>) =
            self.outbox.drain(..).partition(|m| keep(m));
        self.outbox = rest.into();
        taken
    }
}

fn is_append_to(to: u64) -> impl Fn(&Message) -> bool {
    move |m| m.to == NodeId(to) && matches!(m.body, MessageBody::AppendEntries { .. })
}

fn is_ack(m: &Message) -> bool {
    matches!(
        m.body,
        MessageBody::AppendEntriesResponse { success: true, .. }
    )
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn a_client_hears_of_its_write_only_once_durable_and_applied() {
    let mut node = single_node(MemDisk::new());
    node.instant = false;
    let effects = node.handle(client_request(1, 1, put("k", "v"))).unwrap();
    assert!(replies(&effects).is_empty(), "answered before the write");
    assert_eq!(node.in_flight.len(), 1, "the entry went to the executor");
    assert_eq!(node.kv().get("k"), None, "nothing applied yet");
    let done = node.finish_one();
    assert_eq!(
        replies(&done),
        vec![ClientReply {
            req_id: 1,
            result: Ok(Output::Done)
        }]
    );
    assert_eq!(node.kv().get("k"), Some("v"));
}

#[test]
fn writes_that_arrive_during_a_sync_cost_one_more_sync_not_one_each() {
    let mut node = single_node(MemDisk::new());
    node.instant = false;
    node.handle(client_request(1, 1, put("k", "0"))).unwrap();
    assert_eq!(node.in_flight.len(), 1);
    for i in 2..=33u64 {
        let input = Input::Request(ClientRequest {
            req_id: i,
            client: 100 + i,
            seq: 1,
            op: put("k", &i.to_string()),
        });
        node.handle(input).unwrap();
    }
    assert_eq!(node.in_flight.len(), 1, "one write in flight at a time");
    let first = node.finish_one();
    assert_eq!(replies(&first).len(), 1);
    assert_eq!(node.in_flight.len(), 1, "the others were gathered");
    assert_eq!(node.in_flight[0].entries.len(), 32, "32 writes, one sync");
    let rest = node.finish_one();
    assert_eq!(replies(&rest).len(), 32);
}

#[test]
fn a_follower_acknowledges_entries_only_after_its_write_completes() {
    let mut c = Cluster::three();
    c.elect_node_1();
    c.node(2).instant = false;
    c.step(1, client_request(1, 1, put("k", "v")));
    for m in c.take(is_append_to(2)) {
        c.deliver(m);
    }
    assert!(
        !c.outbox.iter().any(|m| m.from == NodeId(2) && is_ack(m)),
        "acknowledged before its write completed"
    );
    assert_eq!(c.node(2).in_flight.len(), 1);
    let effects = c.node(2).finish_one();
    assert!(
        sent(&effects).iter().any(is_ack),
        "the acknowledgement leaves once the write is done"
    );
}

#[test]
fn a_vote_is_answered_only_once_it_is_durable() {
    let mut c = Cluster::three();
    c.node(2).instant = false;
    // Node 1 campaigns: its (pre-)vote requests reach node 2 only.
    let mut asked = false;
    for _ in 0..200 {
        c.step(1, Input::Tick);
        // Node 3 hears nothing; node 1 hears node 2's (pre-)vote answers.
        while !asked && !c.outbox.is_empty() {
            c.take(|m| m.to == NodeId(3));
            for m in c.take(|m| m.to != NodeId(3)) {
                asked |= m.to == NodeId(2) && matches!(m.body, MessageBody::RequestVote { .. });
                c.deliver(m);
            }
        }
        if asked {
            break;
        }
    }
    assert!(asked, "node 1 asked node 2 for its vote");
    let granted =
        |m: &Message| matches!(m.body, MessageBody::RequestVoteResponse { granted: true });
    assert!(
        !c.outbox.iter().any(granted),
        "a vote answered before the write recording it completed"
    );
    let effects = c.node(2).finish_one();
    assert!(sent(&effects).iter().any(granted), "answered once durable");
    assert_eq!(c.node(2).wal().hard_state().vote, Some(NodeId(1)));
}

#[test]
fn a_leader_replicates_before_its_own_write_but_counts_itself_only_after() {
    let mut c = Cluster::three();
    c.elect_node_1();
    c.node(1).instant = false;
    c.step(1, client_request(1, 1, put("k", "v")));
    let index = c.node(1).raft().last_index();
    // §10.2.1: the appends left before the leader's own write completed.
    let appends = c.take(is_append_to(2));
    assert!(!appends.is_empty(), "no append left before the write");
    assert_eq!(c.node(1).in_flight.len(), 1);
    for m in appends {
        c.deliver(m);
    }
    for m in c.take(|m| m.to == NodeId(1)) {
        c.deliver(m);
    }
    // Node 2 holds it durably; node 1 has only handed it to its disk.
    assert!(
        c.node(1).raft().commit_index() < index,
        "committed counting a leader whose own write is not done"
    );
    assert!(c.replies.is_empty());
    let effects = c.node(1).finish_one();
    c.route(effects);
    assert_eq!(c.node(1).raft().commit_index(), index);
    assert_eq!(c.replies.len(), 1, "answered once committed and applied");
}

#[test]
fn a_completion_out_of_order_stops_the_replica() {
    let mut node = single_node(MemDisk::new());
    node.instant = false;
    node.handle(client_request(1, 1, put("k", "v"))).unwrap();
    let id = node.in_flight[0].id;
    let mut effects = Vec::new();
    let err = node
        .replica
        .handle(Input::WriteDone(WriteId(id.0 + 1)), &mut effects)
        .unwrap_err();
    assert!(
        matches!(err, ReplicaError::CompletionOutOfOrder { .. }),
        "{err}"
    );
}

#[test]
fn past_the_bound_on_bytes_in_flight_new_writes_are_told_busy() {
    let config = Config::new(NodeId(1), vec![NodeId(1)], 42);
    let (storage, recovered) = Storage::open(MemDisk::new()).unwrap();
    let options = ReplicaOptions {
        snapshot_policy: SnapshotPolicy::NEVER,
        storage: StorageLimits {
            max_writes_in_flight: 1,
            max_bytes_in_flight: 200,
        },
    };
    let (replica, _) = Replica::open(CLUSTER, config, options, recovered).unwrap();
    let mut node = Node {
        replica,
        storage,
        in_flight: VecDeque::new(),
        instant: true,
    };
    while node.raft().role() != Role::Leader {
        node.handle(Input::Tick).unwrap();
    }
    node.instant = false;
    let mut busy = 0;
    for i in 1..=20u64 {
        let input = Input::Request(ClientRequest {
            req_id: i,
            client: i,
            seq: 1,
            op: put("k", &"x".repeat(40)),
        });
        let effects = node.handle(input).unwrap();
        busy += replies(&effects)
            .iter()
            .filter(|r| r.result == Err(ReplyError::Busy))
            .count();
    }
    assert!(busy > 0, "nothing was refused past the bound");
    assert!(busy < 20, "the first writes were taken");
}

#[test]
fn membership_changes_and_transfers_are_inputs_answered_at_once() {
    use crate::admin::{AdminAccepted, AdminOp, AdminRefused, AdminRequest};
    let mut node = single_node(MemDisk::new());
    let ask = |node: &mut Node, req_id, op| {
        let effects = node
            .handle(Input::Admin(AdminRequest { req_id, op }))
            .unwrap();
        effects
            .into_iter()
            .find_map(|e| match e {
                Effect::AdminReply(r) => Some(r),
                _ => None,
            })
            .expect("an admin request is answered in the same step")
    };
    let added = ask(
        &mut node,
        1,
        AdminOp::ChangeMembership(raft::ConfChange::AddLearner(NodeId(2))),
    );
    assert_eq!(added.req_id, 1);
    assert!(
        matches!(added.result, Ok(AdminAccepted::MembershipProposed(_))),
        "{added:?}"
    );
    let transfer = ask(&mut node, 2, AdminOp::TransferLeadership(NodeId(7)));
    assert!(
        matches!(transfer.result, Err(AdminRefused::Transfer(_))),
        "{transfer:?}"
    );
}

#[test]
fn a_compaction_is_a_write_and_raft_forgets_entries_only_once_it_is_done() {
    let policy = SnapshotPolicy { every: 4, keep: 0 };
    let mut node = single_node_with(MemDisk::new(), policy);
    node.instant = false;
    let before = node.raft().snapshot_meta().index;
    let mut seq = 0;
    // Apply writes one at a time until the policy asks for a compaction.
    while node.replica.compacting_to() == before {
        seq += 1;
        node.handle(client_request(seq, seq, append("z"))).unwrap();
        while node.replica.compacting_to() == before && !node.in_flight.is_empty() {
            node.finish_one();
        }
        assert!(seq < 20, "no compaction asked for");
    }
    let asked = node.replica.compacting_to();
    // Complete the writes one by one: raft keeps its entries until the write
    // carrying the compaction is done, and forgets them right after.
    let mut carried = false;
    for _ in 0..10 {
        let Some(front) = node.in_flight.front() else {
            break;
        };
        let is_compaction = front
            .compact
            .as_ref()
            .is_some_and(|s| s.meta.index == asked);
        assert_eq!(
            node.raft().snapshot_meta().index,
            before,
            "raft forgot entries before the compaction's write completed"
        );
        node.finish_one();
        if is_compaction {
            carried = true;
            break;
        }
    }
    assert!(carried, "the compaction went to the executor as a write");
    assert_eq!(node.raft().snapshot_meta().index, asked);
    assert_eq!(node.wal().snapshot_meta().index, asked, "durable first");
}

#[test]
fn appends_too_small_for_the_largest_command_are_refused_with_a_reason() {
    let mut config = Config::new(NodeId(1), vec![NodeId(1)], 42);
    config.max_bytes_per_append = 512;
    let (_, recovered) = Storage::open(MemDisk::new()).unwrap();
    match Replica::open(CLUSTER, config, ReplicaOptions::default(), recovered) {
        Err(ReplicaError::UnsupportedConfig(why)) => {
            assert!(why.contains("max_bytes_per_append"), "{why}")
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a replica that could never replicate a large command opened"),
    }
}

#[test]
fn a_retry_of_a_write_still_waiting_proposes_no_second_entry_and_gets_the_answer_in_its_place() {
    let mut c = Cluster::three();
    c.elect_node_1();
    let before = c.node(1).raft().last_index();
    c.step(1, client_request(1, 1, append("x")));
    // The appends are held back: the write waits, uncommitted.
    let held = c.take(|m| matches!(m.body, MessageBody::AppendEntries { .. }));
    assert!(c.replies.is_empty());
    let proposed = c.node(1).raft().last_index();
    assert_eq!(proposed.0, before.0 + 1, "the first attempt is proposed");
    // The client timed out and retries, twice, with the same session and
    // sequence number.
    c.step(1, client_request(2, 1, append("x")));
    c.step(1, client_request(3, 1, append("x")));
    assert_eq!(
        c.node(1).raft().last_index(),
        proposed,
        "a retry of a write already in the leader's log adds no entry"
    );
    let superseded = |req_id| ClientReply {
        req_id,
        result: Err(ReplyError::Superseded),
    };
    assert_eq!(
        c.replies,
        vec![superseded(1), superseded(2)],
        "each replaced attempt is told at once, with an indefinite answer"
    );
    assert!(!ReplyError::Superseded.is_definite());
    c.replies.clear();
    for msg in held {
        c.deliver(msg);
    }
    c.pump();
    answered_once_then_a_new_sequence_number_is_proposed(&mut c, 1, 3, proposed);
}

/// After a write of `x` to key `k` (client 9, sequence number 1) applied
/// on leader `node`, whose log ended at `last`: its one answer went to
/// request `req_id`, `x` was appended once, and the session's next sequence
/// number is a new write, proposed at `last + 1`.
fn answered_once_then_a_new_sequence_number_is_proposed(
    c: &mut Cluster,
    node: u64,
    req_id: u64,
    last: LogIndex,
) {
    assert_eq!(
        c.replies,
        vec![ClientReply {
            req_id,
            result: Ok(Output::Done)
        }],
        "the entry's answer goes to the latest attempt, once"
    );
    assert_eq!(c.node(node).kv().get("k"), Some("x"), "appended once");
    c.step(node, client_request(req_id + 1, 2, append("y")));
    assert_eq!(c.node(node).raft().last_index(), last.next());
}

#[test]
fn a_retry_at_a_new_leader_waits_on_the_copy_it_inherited_uncommitted_instead_of_proposing_another()
{
    let mut c = Cluster::three();
    c.elect_node_1();
    c.step(1, client_request(1, 1, append("x")));
    let index = c.node(1).raft().last_index();
    // The appends reach node 2 only, and its answer is lost: the entry is
    // in two logs, committed in neither.
    let appends = c.take(|m| matches!(m.body, MessageBody::AppendEntries { .. }));
    for msg in appends.into_iter().filter(is_append_to(2)) {
        c.deliver(msg);
    }
    c.take(is_ack);
    assert!(c.outbox.is_empty());
    assert!(
        c.node(2).raft().entry(index).is_some(),
        "node 2 holds the entry"
    );
    assert!(c.node(2).raft().commit_index() < index);
    // Node 1 hears no more from anyone but candidates; node 2 times out and
    // is elected (node 3 cannot be: its log lacks the entry). Node 2's
    // appends are held once it leads.
    let mut leads = false;
    for _ in 0..500 {
        c.step(2, Input::Tick);
        c.step(3, Input::Tick);
        while !leads && let Some(msg) = c.outbox.pop_front() {
            if matches!(msg.body, MessageBody::AppendEntries { .. }) && msg.from == NodeId(1) {
                continue;
            }
            c.deliver(msg);
            leads = c.node(2).raft().role() == Role::Leader;
        }
        if leads {
            break;
        }
    }
    assert!(leads, "node 2 did not become leader");
    // What node 2 sent node 1 (its vote request, its appends) deposes it;
    // node 1's answers are lost.
    for msg in c.take(|m| m.to == NodeId(1)) {
        c.deliver(msg);
    }
    c.take(|m| m.from == NodeId(1));
    assert_ne!(c.node(1).raft().role(), Role::Leader);
    assert_eq!(
        c.replies,
        vec![ClientReply {
            req_id: 1,
            result: Err(ReplyError::LeadershipLost)
        }],
        "the deposed leader answers its waiting write as indefinite"
    );
    c.replies.clear();
    let noop = index.next();
    assert_eq!(c.node(2).raft().last_index(), noop);
    assert!(matches!(
        c.node(2).raft().entry(noop).map(|e| &e.payload),
        Some(EntryPayload::Noop)
    ));
    assert!(c.node(2).raft().commit_index() < index, "still uncommitted");
    // The client retries at the new leader, with the same session and
    // sequence number.
    c.step(2, client_request(2, 1, append("x")));
    assert!(c.replies.is_empty(), "the retry waits");
    assert_eq!(
        c.node(2).raft().last_index(),
        noop,
        "a retry of a write inherited uncommitted adds no entry"
    );
    c.pump();
    assert!(
        c.node(2).raft().commit_index() >= noop,
        "the no-op committed"
    );
    answered_once_then_a_new_sequence_number_is_proposed(&mut c, 2, 2, noop);
}

#[test]
fn a_sessions_next_write_replaces_its_waiting_one_and_that_one_is_answered_superseded() {
    let mut c = Cluster::three();
    c.elect_node_1();
    c.step(1, client_request(1, 1, append("x")));
    c.take(|m| matches!(m.body, MessageBody::AppendEntries { .. }));
    // The client gave up on sequence number 1 and moved on.
    c.step(1, client_request(2, 2, append("y")));
    assert_eq!(
        c.replies,
        vec![ClientReply {
            req_id: 1,
            result: Err(ReplyError::Superseded)
        }],
        "the first write's waiter is not left waiting for good"
    );
}

#[test]
fn a_leader_that_steps_down_answers_its_waiting_writes_as_indefinite() {
    let mut c = Cluster::three();
    c.elect_node_1();
    c.step(1, client_request(1, 1, put("k", "v")));
    // The appends never arrive: the write cannot commit under node 1.
    c.take(|m| matches!(m.body, MessageBody::AppendEntries { .. }));
    assert!(c.replies.is_empty());
    let term = c.node(1).raft().term();
    let last = c.node(2).raft().last_index();
    let last_term = c.node(2).raft().term_at(last).expect("in its log");
    // A candidate of a higher term: node 1 steps down (§5.1), whether or
    // not it grants the vote.
    c.deliver(Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(term.0 + 1),
        body: MessageBody::RequestVote {
            last_log_index: last,
            last_log_term: last_term,
            transfer: true,
        },
    });
    assert_ne!(c.node(1).raft().role(), Role::Leader);
    assert_eq!(
        c.replies,
        vec![ClientReply {
            req_id: 1,
            result: Err(ReplyError::LeadershipLost)
        }]
    );
    assert!(
        !ReplyError::LeadershipLost.is_definite(),
        "the entry may still commit: the answer must not say it did not"
    );
}

#[test]
fn an_operator_snapshot_compacts_the_log_at_once_and_only_when_there_is_something_new() {
    use crate::admin::{AdminAccepted, AdminOp, AdminRefused, AdminRequest};
    let mut node = single_node_with(MemDisk::new(), SnapshotPolicy::NEVER);
    for seq in 1..=5 {
        request(&mut node, seq, seq, append("x"));
    }
    let applied = node.raft().applied_index();
    let ask = |node: &mut Node, req_id| {
        node.handle(Input::Admin(AdminRequest {
            req_id,
            op: AdminOp::Snapshot,
        }))
        .unwrap()
        .into_iter()
        .find_map(|e| match e {
            Effect::AdminReply(r) => Some(r.result),
            _ => None,
        })
        .expect("answered in the same step")
    };
    assert_eq!(ask(&mut node, 1), Ok(AdminAccepted::SnapshotTaken(applied)));
    assert_eq!(node.raft().snapshot_meta().index, applied, "compacted");
    assert_eq!(node.wal().snapshot_meta().index, applied, "durably");
    assert_eq!(
        ask(&mut node, 2),
        Err(AdminRefused::NothingToSnapshot { applied })
    );
}

#[test]
fn requests_handled_as_a_batch_share_one_write_and_each_get_their_answer() {
    let mut node = single_node(MemDisk::new());
    node.instant = false;
    let batch: Vec<ClientRequest> = (0..8)
        .map(|i| ClientRequest {
            req_id: 100 + i,
            client: 1_000 + i,
            seq: 1,
            op: Op::Put {
                key: format!("k{i}"),
                value: format!("v{i}"),
            },
        })
        .collect();
    let mut effects = Vec::new();
    node.replica
        .handle_requests(batch, &mut effects)
        .expect("handles");
    let writes = effects
        .iter()
        .filter(|e| matches!(e, Effect::Write(_)))
        .count();
    assert_eq!(writes, 1, "one storage write for the whole batch");
    node.carry_out(effects).expect("carries out");
    let mut answered = replies(&node.finish_one());
    answered.sort_by_key(|r| r.req_id);
    assert_eq!(
        answered.iter().map(|r| r.req_id).collect::<Vec<_>>(),
        (100..108).collect::<Vec<_>>()
    );
    assert!(answered.iter().all(|r| r.result.is_ok()));
    for i in 0..8 {
        assert_eq!(
            node.kv().get(&format!("k{i}")),
            Some(format!("v{i}").as_str())
        );
    }
}
