//! The model: three real replicas, their disks, a network, clients, and
//! the faults, as a stateright [`Model`] whose every step is one choice the
//! checker makes.

use crate::durable::Durable;
use crate::spec::KvSpec;
use kv::{Command, Op};
use raft::{Config, EntryPayload, LogIndex, NodeId, Role, Term};
use replica::{
    ClientReply, ClientRequest, Effect, EntryDigest, Envelope, Input, Replica, ReplicaEvent,
    ReplicaOptions, SnapshotPolicy, StorageLimits, Write,
};
use serde::{Deserialize, Serialize};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::{Model, Property};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The cluster id every envelope carries.
const CLUSTER_ID: u64 = 1;
/// Election timeout in ticks: the smallest the core accepts above the
/// heartbeat, so that a follower leaves a leader's lease after two ticks.
const ELECTION_TICK: u32 = 2;
/// Heartbeat interval in ticks: every leader tick sends heartbeats.
const HEARTBEAT_TICK: u32 = 1;

/// The bounds of the search: the small scope in which it is exhaustive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Replicas (voters), ids 1..=nodes.
    pub nodes: usize,
    /// Each client's operations, issued in order, one at a time.
    pub clients: Vec<Vec<Op>>,
    /// No election starts for a term above this one (§5.1 terms).
    pub max_term: u64,
    /// Crashes, over all nodes.
    pub crashes: u8,
    /// Deliveries that keep a copy of the message in the network.
    pub duplicates: u8,
    /// Whether a message may be dropped. Safety never needs it (a message
    /// never delivered is a dropped one), but dropping shrinks the state.
    pub drops: bool,
    /// Sends of one operation (the first and its retries), per client op.
    pub sends_per_op: u8,
    /// Ticks per node over the whole run.
    pub ticks: u8,
    /// Messages in flight; a message sent beyond it is lost (the network
    /// may lose any message, so this only prunes).
    pub max_in_flight: usize,
    /// Whether elections start with a pre-vote round (dissertation §9.6), as
    /// the real node's do. Off shortens every election by two steps, which
    /// puts the planted bugs' counterexamples within a quick search.
    pub pre_vote: bool,
    /// A bug planted in every replica (tests only), by its name
    /// (`replica::PlantedBug::name`).
    pub planted: Option<String>,
}

impl Default for Bounds {
    /// The default scope of `cargo xtask modelcheck`: 3 nodes, two clients
    /// (a put then a get; a compare-and-swap), terms up to 2, one crash,
    /// one duplicate.
    fn default() -> Bounds {
        Bounds {
            nodes: 3,
            clients: vec![
                vec![put("x", "1"), get("x")],
                vec![cas("x", Some("1"), "2")],
            ],
            max_term: 2,
            crashes: 1,
            duplicates: 1,
            drops: false,
            sends_per_op: 2,
            ticks: 4,
            max_in_flight: 8,
            pre_vote: true,
            planted: None,
        }
    }
}

/// `put key value`.
pub fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
    }
}

/// `get key`.
pub fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

/// `cas key expected new`.
pub fn cas(key: &str, expected: Option<&str>, new: &str) -> Op {
    Op::Cas {
        key: key.into(),
        expected: expected.map(Into::into),
        new: new.into(),
    }
}

/// One node: its process (if up), its disk, and its writes in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// The running replica; `None` while crashed.
    pub replica: Option<ReplicaBox>,
    /// What its completed writes made durable.
    pub durable: Durable,
    /// Writes issued and not yet done, oldest first.
    pub writes: VecDeque<Write>,
    /// Ticks left to this node.
    pub ticks_left: u8,
}

/// A replica in the state: `Debug` prints its raft summary only (a whole
/// replica per step would drown a trace).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReplicaBox(pub Replica);

impl std::fmt::Debug for ReplicaBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0.raft();
        write!(
            f,
            "{:?} term {} commit {} last {} applied {} writes {}",
            r.role(),
            r.term().0,
            r.commit_index().0,
            r.last_index().0,
            r.applied_index().0,
            self.0.writes_in_flight()
        )
    }
}

/// One client: where it is in its script.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// The index of its current (or next) operation in its script.
    pub next: usize,
    /// Whether the current operation was invoked and has not returned.
    pub pending: bool,
    /// Sends of the current operation left.
    pub sends_left: u8,
}

/// Something a property found broken on the way (a fact the state alone
/// no longer shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Broken {
    /// Two replicas applied different entries at one index.
    StateMachineSafety,
    /// A replica's commit index went back while it ran.
    CommitWentBack,
    /// A replica stopped on an error (fail-stop): a bug in the model's
    /// executor or the replica.
    ReplicaError,
    /// The clients' history stopped being linearizable (checked when an
    /// operation returns: an invocation alone cannot break it).
    NotLinearizable,
}

/// What the properties need that no single replica knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Every (term, node) that became leader.
    pub leaders: BTreeSet<(Term, NodeId)>,
    /// Entries applied anywhere, by index, with the lowest term a replica
    /// applying it was in (the entry was committed in that term or before).
    pub applied: BTreeMap<LogIndex, (EntryDigest, Term)>,
    /// Payload digests of the writes acknowledged to clients.
    pub acked: BTreeSet<u64>,
    /// What broke.
    pub broken: BTreeSet<Broken>,
}

/// The state of the whole world.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The nodes, node `i` has id `i + 1`.
    pub nodes: Vec<Node>,
    /// Messages in flight, encoded (the recipient's index, then postcard)
    /// and sorted: a multiset, so that the order in which messages were
    /// sent does not split states.
    pub network: Vec<Vec<u8>>,
    /// The clients.
    pub clients: Vec<Client>,
    /// The clients' history, for the linearizability check.
    pub history: LinearizabilityTester<usize, KvSpec>,
    /// Crashes left.
    pub crashes_left: u8,
    /// Duplicating deliveries left.
    pub duplicates_left: u8,
    /// What the properties track.
    pub ghost: Ghost,
}

/// One step the checker may choose.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Node `i` ticks.
    Tick(usize),
    /// Node `i`'s election timeout fires (§5.2): the checker, not an RNG,
    /// decides when.
    Timeout(usize),
    /// A message (encoded) is delivered and leaves the network.
    Deliver(Vec<u8>),
    /// A message is delivered and a copy stays in the network.
    Duplicate(Vec<u8>),
    /// A message is lost.
    Drop(Vec<u8>),
    /// Node `i`'s oldest write becomes durable.
    WriteDone(usize),
    /// Node `i` crashes: its writes in flight are lost.
    Crash(usize),
    /// Node `i` restarts from its disk.
    Restart(usize),
    /// Client `c` sends its current operation (invoking it, or retrying it
    /// with the same sequence number) to node `i`.
    Send {
        /// The client.
        client: usize,
        /// The node.
        node: usize,
    },
}

/// The model of a raftlab cluster under `bounds`.
#[derive(Clone, Debug)]
pub struct RaftModel {
    /// The scope of the search.
    pub bounds: Bounds,
}

impl RaftModel {
    /// A model searching within `bounds`.
    pub fn new(bounds: Bounds) -> RaftModel {
        RaftModel { bounds }
    }

    fn raft_config(&self, node: usize) -> Config {
        let voters = (1..=self.bounds.nodes as u64).map(NodeId).collect();
        let mut cfg = Config::new(NodeId(node as u64 + 1), voters, 0);
        cfg.election_tick = ELECTION_TICK;
        cfg.heartbeat_tick = HEARTBEAT_TICK;
        cfg.external_election_timer = true;
        cfg.pre_vote = self.bounds.pre_vote;
        cfg
    }

    fn options() -> ReplicaOptions {
        ReplicaOptions {
            // Snapshots are not modelled: the logs stay a few entries long.
            snapshot_policy: SnapshotPolicy::NEVER,
            storage: StorageLimits::DEFAULT,
        }
    }

    /// Opens node `i` from its disk and carries out the effects of opening.
    fn open(&self, state: &mut State, i: usize) {
        let recovered = state.nodes[i].durable.recovered();
        match Replica::open(CLUSTER_ID, self.raft_config(i), Self::options(), recovered) {
            Ok((replica, effects)) => {
                #[allow(unused_mut)]
                let mut replica = replica;
                self.plant(&mut replica);
                state.nodes[i].replica = Some(ReplicaBox(replica));
                self.carry_out(state, i, effects);
            }
            Err(_) => {
                state.ghost.broken.insert(Broken::ReplicaError);
            }
        }
    }

    #[cfg(feature = "planted-bugs")]
    fn plant(&self, replica: &mut Replica) {
        if let Some(name) = &self.bounds.planted {
            let bug = replica::PlantedBug::ALL
                .into_iter()
                .find(|b| b.name() == name)
                .expect("a planted bug's name");
            replica.plant(Some(bug));
        }
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn plant(&self, _replica: &mut Replica) {
        assert!(
            self.bounds.planted.is_none(),
            "planting a bug needs the model's `planted-bugs` feature"
        );
    }

    /// Runs `f` on node `i`'s replica and carries out its effects; an error
    /// stops the replica (fail-stop) and is recorded as broken.
    fn step(
        &self,
        state: &mut State,
        i: usize,
        f: impl FnOnce(&mut Replica, &mut Vec<Effect>) -> Result<(), replica::ReplicaError>,
    ) {
        let Some(ReplicaBox(replica)) = state.nodes[i].replica.as_mut() else {
            return;
        };
        let commit_before = replica.raft().commit_index();
        let mut effects = Vec::new();
        let result = f(replica, &mut effects);
        // Figure 2: commitIndex only grows while a server runs.
        if replica.raft().commit_index() < commit_before {
            state.ghost.broken.insert(Broken::CommitWentBack);
        }
        if result.is_err() {
            state.ghost.broken.insert(Broken::ReplicaError);
            state.nodes[i].replica = None;
            state.nodes[i].writes.clear();
        }
        self.carry_out(state, i, effects);
    }

    /// Carries out node `i`'s effects: messages into the network, writes
    /// into its queue, replies to the clients, events into the ghost.
    fn carry_out(&self, state: &mut State, i: usize, effects: Vec<Effect>) {
        let id = NodeId(i as u64 + 1);
        for effect in effects {
            match effect {
                Effect::Send(envelope) => {
                    if state.network.len() < self.bounds.max_in_flight {
                        let bytes = encode(&envelope);
                        let at = state.network.partition_point(|m| *m < bytes);
                        state.network.insert(at, bytes);
                    }
                }
                Effect::Write(write) => state.nodes[i].writes.push_back(write),
                Effect::Reply(reply) => self.reply(state, reply),
                Effect::AdminReply(_) => {}
                Effect::Event(ReplicaEvent::SoftState(soft)) => {
                    if soft.role == Role::Leader {
                        state.ghost.leaders.insert((soft.term, id));
                    }
                }
                Effect::Event(ReplicaEvent::Applied(digest)) => {
                    let term = state.nodes[i]
                        .replica
                        .as_ref()
                        .map_or(Term(0), |r| r.0.raft().term());
                    match state.ghost.applied.get_mut(&digest.index) {
                        Some((seen, _)) if *seen != digest => {
                            state.ghost.broken.insert(Broken::StateMachineSafety);
                        }
                        Some((_, lowest)) => *lowest = (*lowest).min(term),
                        None => {
                            state.ghost.applied.insert(digest.index, (digest, term));
                        }
                    }
                }
                Effect::Event(_) => {}
            }
        }
    }

    /// A client hears `reply`: an answer to its pending operation returns
    /// it; an error, or an answer to an earlier send, changes nothing (the
    /// client may send again).
    fn reply(&self, state: &mut State, reply: ClientReply) {
        let (c, seq) = split_req_id(reply.req_id);
        let Some(client) = state.clients.get(c) else {
            return;
        };
        if !client.pending || client.next as u64 + 1 != seq {
            return;
        }
        let Ok(output) = reply.result else {
            return;
        };
        let op = self.bounds.clients[c][client.next].clone();
        if !matches!(op, Op::Get { .. }) {
            let command = Command {
                client: c as u64 + 1,
                seq,
                op,
            };
            state
                .ghost
                .acked
                .insert(replica::payload_digest(&EntryPayload::Command(
                    command.encode(),
                )));
        }
        // The tester refuses only a return without an invocation, which
        // `pending` rules out.
        let _ = state.history.on_return(c, output);
        if state.history.serialized_history().is_none() {
            state.ghost.broken.insert(Broken::NotLinearizable);
        }
        let client = &mut state.clients[c];
        client.pending = false;
        client.next += 1;
    }

    fn request(&self, c: usize, client: &Client) -> ClientRequest {
        let seq = client.next as u64 + 1;
        ClientRequest {
            req_id: req_id(c, seq),
            client: c as u64 + 1,
            seq,
            op: self.bounds.clients[c][client.next].clone(),
        }
    }
}

/// A request id naming the client and the operation's sequence number.
fn req_id(client: usize, seq: u64) -> u64 {
    ((client as u64) << 32) | seq
}

fn split_req_id(req_id: u64) -> (usize, u64) {
    ((req_id >> 32) as usize, req_id & 0xffff_ffff)
}

/// A message as the network holds it: the recipient's index (one byte,
/// so that finding it costs no decoding), then the envelope (postcard).
pub(crate) fn encode(envelope: &Envelope) -> Vec<u8> {
    let to = u8::try_from(envelope.msg.to.0 - 1).expect("a handful of nodes");
    let mut bytes = vec![to];
    bytes.extend(postcard::to_allocvec(envelope).expect("an envelope encodes"));
    bytes
}

/// The index of the node a message in the network is for.
fn recipient(bytes: &[u8]) -> usize {
    usize::from(bytes[0])
}

/// The envelope a message in the network carries.
pub fn decode(bytes: &[u8]) -> Envelope {
    postcard::from_bytes(&bytes[1..]).expect("the network holds only encoded envelopes")
}

impl Model for RaftModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut state = State {
            nodes: vec![
                Node {
                    replica: None,
                    durable: Durable::default(),
                    writes: VecDeque::new(),
                    ticks_left: self.bounds.ticks,
                };
                self.bounds.nodes
            ],
            network: Vec::new(),
            clients: vec![
                Client {
                    next: 0,
                    pending: false,
                    sends_left: self.bounds.sends_per_op,
                };
                self.bounds.clients.len()
            ],
            history: LinearizabilityTester::new(KvSpec::default()),
            crashes_left: self.bounds.crashes,
            duplicates_left: self.bounds.duplicates,
            ghost: Ghost::default(),
        };
        for i in 0..self.bounds.nodes {
            self.open(&mut state, i);
        }
        vec![state]
    }

    /// Every step possible in `state`. The order matters only to the
    /// depth-first search, which tries the last first: progress (deliver,
    /// complete a write, send a request) before timers, and faults last, so
    /// that a capped depth-first run gets through elections and client
    /// operations before it varies the faults.
    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        let (mut faults, mut timers, mut progress) = (Vec::new(), Vec::new(), Vec::new());
        for (i, node) in state.nodes.iter().enumerate() {
            let Some(ReplicaBox(replica)) = &node.replica else {
                timers.push(Action::Restart(i));
                continue;
            };
            let raft = replica.raft();
            if state.crashes_left > 0 {
                faults.push(Action::Crash(i));
            }
            // A follower's ticks matter until it leaves the leader's lease
            // (§4.2.3); later ones only move its clock, which nothing reads
            // (lease reads are off).
            if node.ticks_left > 0
                && (raft.role() == Role::Leader || raft.election_elapsed() < ELECTION_TICK)
            {
                timers.push(Action::Tick(i));
            }
            // Any moment is a moment the timeout may fire: safety must not
            // depend on timing (§5.2), so the checker tries them all.
            if raft.role() != Role::Leader
                && raft.is_promotable()
                && raft.term().0 < self.bounds.max_term
            {
                timers.push(Action::Timeout(i));
            }
            if !node.writes.is_empty() {
                progress.push(Action::WriteDone(i));
            }
        }
        for (c, client) in state.clients.iter().enumerate() {
            let can_send = if client.pending {
                client.sends_left > 0
            } else {
                client.next < self.bounds.clients[c].len()
            };
            if can_send {
                // Only to a node that believes it leads (perhaps wrongly):
                // any other answers NotLeader and changes nothing but the
                // invocation time, and invoking later only makes the
                // linearizability check stricter.
                for (i, node) in state.nodes.iter().enumerate() {
                    if node
                        .replica
                        .as_ref()
                        .is_some_and(|r| r.0.raft().role() == Role::Leader)
                    {
                        progress.push(Action::Send { client: c, node: i });
                    }
                }
            }
        }
        let mut previous: Option<&Vec<u8>> = None;
        for bytes in &state.network {
            if previous == Some(bytes) {
                continue; // the same message twice: one choice
            }
            previous = Some(bytes);
            if state.nodes[recipient(bytes)].replica.is_some() {
                progress.push(Action::Deliver(bytes.clone()));
                if state.duplicates_left > 0 {
                    faults.push(Action::Duplicate(bytes.clone()));
                }
            }
            if self.bounds.drops {
                faults.push(Action::Drop(bytes.clone()));
            }
        }
        actions.extend(faults);
        actions.extend(timers);
        actions.extend(progress);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Tick(i) => {
                state.nodes[i].ticks_left -= 1;
                self.step(&mut state, i, |r, e| r.handle(Input::Tick, e));
            }
            Action::Timeout(i) => self.step(&mut state, i, |r, e| r.campaign(e)),
            Action::Deliver(bytes) | Action::Duplicate(bytes) | Action::Drop(bytes)
                if !state.network.contains(&bytes) =>
            {
                return None;
            }
            Action::Deliver(bytes) => {
                let at = state.network.iter().position(|m| *m == bytes)?;
                state.network.remove(at);
                let envelope = decode(&bytes);
                let to = envelope.msg.to.0 as usize - 1;
                self.step(&mut state, to, |r, e| r.handle(Input::Message(envelope), e));
            }
            Action::Duplicate(bytes) => {
                state.duplicates_left -= 1;
                let envelope = decode(&bytes);
                let to = envelope.msg.to.0 as usize - 1;
                self.step(&mut state, to, |r, e| r.handle(Input::Message(envelope), e));
            }
            Action::Drop(bytes) => {
                let at = state.network.iter().position(|m| *m == bytes)?;
                state.network.remove(at);
            }
            Action::WriteDone(i) => {
                let write = state.nodes[i].writes.pop_front()?;
                state.nodes[i].durable.complete(&write);
                self.step(&mut state, i, |r, e| {
                    r.handle(Input::WriteDone(write.id), e)
                });
            }
            Action::Crash(i) => {
                state.crashes_left -= 1;
                let node = &mut state.nodes[i];
                node.replica = None;
                node.writes.clear();
            }
            Action::Restart(i) => self.open(&mut state, i),
            Action::Send { client: c, node: i } => {
                let client = state.clients[c].clone();
                if client.pending {
                    state.clients[c].sends_left -= 1;
                } else {
                    let op = self.bounds.clients[c][client.next].clone();
                    let _ = state.history.on_invoke(c, op);
                    state.clients[c].pending = true;
                    state.clients[c].sends_left = self.bounds.sends_per_op - 1;
                }
                let request = self.request(c, &client);
                self.step(&mut state, i, |r, e| r.handle(Input::Request(request), e));
            }
        }
        Some(state)
    }

    fn format_action(&self, action: &Action) -> String {
        let message = |verb: &str, bytes: &[u8]| {
            let m = decode(bytes).msg;
            format!(
                "{verb} {} -> {} (term {}): {:?}",
                m.from.0, m.to.0, m.term.0, m.body
            )
        };
        match action {
            Action::Deliver(b) => message("deliver", b),
            Action::Duplicate(b) => message("deliver a copy", b),
            Action::Drop(b) => message("drop", b),
            Action::Tick(i) => format!("tick node {}", i + 1),
            Action::Timeout(i) => format!("election timeout at node {}", i + 1),
            Action::WriteDone(i) => format!("write done at node {}", i + 1),
            Action::Crash(i) => format!("crash node {}", i + 1),
            Action::Restart(i) => format!("restart node {}", i + 1),
            Action::Send { client, node } => {
                format!("client {} sends to node {}", client + 1, node + 1)
            }
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        crate::properties::all()
    }
}
