//! The replica task: the one owner of the [`Replica`], and the node's start.
//!
//! A `select!` loop, biased in this order: ticks, write completions, peer
//! messages, client commands. Ticks are counted from a monotonic clock
//! ([`Instant`]): each wake-up delivers every tick due since the start, so
//! after a stall (a pause, a slow disk, a descheduled process) the missed
//! ticks arrive at once and before any message or request queued during the
//! stall, which is how the simulator's pause family delivers them
//! (`resume_ticks_first`).

use crate::config::{Config, dir_has_log};
use crate::metrics::{Metrics, label};
use crate::storage::{self, fail_stop};
use crate::transport::{self, Outbox};
use crate::{Shared, Status, http};
use kv::{ClientId, Op, Output};
use raft::{NodeId, Role, SoftState};
use replica::{
    AdminOp, AdminReply, AdminRequest, ClientRequest, Effect, Envelope, Input, Replica,
    ReplicaEvent, ReplicaOptions, ReplyError, SnapshotPolicy, Storage, StorageLimits, Write,
    WriteId,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use wal::FsDisk;

/// Requests queued for the replica task at most; past it, HTTP answers 503.
const COMMAND_QUEUE: usize = 4096;
/// Peer messages queued for the replica task at most.
const INBOUND_QUEUE: usize = 4096;

/// A request for the replica task.
#[derive(Debug)]
pub enum Command {
    /// A client operation. `session` is the client's (id, sequence number);
    /// without one, a write gets a session of its own.
    Client {
        /// What to do.
        op: Op,
        /// The client's session, if it gave one.
        session: Option<(ClientId, u64)>,
        /// Where to send the answer.
        reply: oneshot::Sender<Answer>,
    },
    /// An operator's request (membership change, leadership transfer).
    Admin {
        /// What is asked.
        op: AdminOp,
        /// Where to send the answer.
        reply: oneshot::Sender<AdminReply>,
    },
    /// A read of this node's state machine as it is (`?consistency=stale`).
    StaleRead {
        /// The key.
        key: String,
        /// Where to send the answer.
        reply: oneshot::Sender<StaleAnswer>,
    },
}

/// The answer to a [`Command::StaleRead`].
#[derive(Debug)]
pub struct StaleAnswer {
    /// The value, if present.
    pub value: Option<String>,
    /// The applied index the value reflects.
    pub index: u64,
    /// The term.
    pub term: u64,
    /// Time since this node last heard from its leader (zero on the
    /// leader; `None` if it never heard from one).
    pub since_leader: Option<Duration>,
}

/// The replica's answer to a client operation.
#[derive(Debug)]
pub struct Answer {
    /// The outcome.
    pub result: Result<Output, ReplyError>,
    /// The applied index when it was answered.
    pub index: u64,
    /// The term when it was answered.
    pub term: u64,
}

/// Opens the disk and the replica, binds the listeners and runs the node.
pub async fn run(config: Config) -> Result<(), String> {
    let has_log = dir_has_log(&config.data_dir)?;
    config.check_start(has_log)?;
    let disk = FsDisk::open(&config.data_dir)
        .map_err(|e| format!("cannot open data dir {}: {e:?}", config.data_dir.display()))?;
    let (store, recovered) =
        Storage::open(disk).map_err(|e| format!("cannot recover the log: {e:?}"))?;
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ config.node_id;
    let mut raft_config = raft::Config::new(
        NodeId(config.node_id),
        config.voters().into_iter().map(NodeId).collect(),
        seed,
    );
    raft_config.election_tick = config.election_ticks;
    raft_config.heartbeat_tick = config.heartbeat_ticks;
    raft_config.lease_read_ticks = config.lease_read_ticks;
    let options = ReplicaOptions {
        snapshot_policy: SnapshotPolicy {
            every: config.snapshot_every,
            keep: config.snapshot_keep,
        },
        storage: StorageLimits::DEFAULT,
    };
    let (replica, first_effects) =
        Replica::open(config.cluster_id, raft_config, options, recovered)
            .map_err(|e| format!("cannot open the replica: {e:?}"))?;

    let peer_listener = tokio::net::TcpListener::bind(config.peer_addr)
        .await
        .map_err(|e| format!("cannot listen for peers on {}: {e}", config.peer_addr))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", config.http_addr))?;

    let metrics = Arc::new(Metrics::new());
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let shared = Arc::new(Shared {
        config: config.clone(),
        metrics: metrics.clone(),
        status: Mutex::new(Status::default()),
        peer_http: Mutex::new(Default::default()),
        commands: commands_tx,
    });
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let storage_tx = storage::spawn(store, done_tx, metrics.clone());
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let outbox = transport::start_diallers(&shared);
    tokio::spawn(transport::accept(peer_listener, shared.clone(), inbound_tx));
    tokio::spawn(http::serve(http_listener, shared.clone()));
    tracing::info!(
        node = config.node_id,
        cluster = config.cluster_id,
        http = %config.http_addr,
        peers = %config.peer_addr,
        data_dir = %config.data_dir.display(),
        start = if config.bootstrap { "bootstrap" } else { "restart" },
        "node started"
    );
    if config.admin_token.is_some() {
        tracing::info!("admin endpoints require the configured bearer token");
    } else {
        tracing::info!("no admin token configured: admin endpoints answer loopback clients only");
    }

    let mut task = ReplicaTask {
        soft: replica.raft().soft_state(),
        replica,
        shared,
        outbox,
        storage: storage_tx,
        pending: HashMap::new(),
        pending_admin: HashMap::new(),
        next_req: 1,
        last_leader_contact: None,
        anon: SplitMix(seed ^ 0x5eed),
    };
    task.carry_out(first_effects);
    task.publish();
    task.run(done_rx, inbound_rx, commands_rx).await;
    Ok(())
}

/// The replica and what its loop needs.
struct ReplicaTask {
    replica: Replica,
    shared: Arc<Shared>,
    outbox: Outbox,
    storage: std::sync::mpsc::Sender<Write>,
    /// Clients waiting for an answer, by request id.
    pending: HashMap<u64, oneshot::Sender<Answer>>,
    /// Admin requests waiting (answered in the same step).
    pending_admin: HashMap<u64, oneshot::Sender<AdminReply>>,
    next_req: u64,
    /// When a message from the leader last arrived.
    last_leader_contact: Option<Instant>,
    /// The soft state last seen, to notice changes.
    soft: SoftState,
    /// Draws the session ids of requests that bring none.
    anon: SplitMix,
}

impl ReplicaTask {
    async fn run(
        &mut self,
        mut done: mpsc::UnboundedReceiver<Vec<WriteId>>,
        mut inbound: mpsc::Receiver<Envelope>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let tick = Duration::from_millis(self.shared.config.tick_ms);
        let start = Instant::now();
        let mut ticks: u64 = 0;
        let mut timer = tokio::time::interval(tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = timer.tick() => {
                    let due = (start.elapsed().as_nanos() / tick.as_nanos()) as u64;
                    while ticks < due {
                        ticks += 1;
                        self.step(Input::Tick);
                        if ticks.is_multiple_of(64) {
                            self.pending.retain(|_, tx| !tx.is_closed());
                        }
                    }
                }
                Some(ids) = done.recv() => {
                    for id in ids {
                        self.step(Input::WriteDone(id));
                    }
                }
                Some(envelope) = inbound.recv() => {
                    if self.replica.raft().leader() == Some(envelope.msg.from) {
                        self.last_leader_contact = Some(Instant::now());
                    }
                    self.step(Input::Message(envelope));
                }
                Some(command) = commands.recv() => self.command(command),
                else => return,
            }
            self.publish();
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Client { op, session, reply } => {
                let req_id = self.next_req;
                self.next_req += 1;
                let (client, seq) = match (&op, session) {
                    (_, Some(session)) => session,
                    // Reads take no session.
                    (Op::Get { .. }, None) => (0, 0),
                    // A write of its own: a fresh session, first request.
                    (_, None) => (self.anon.next() | 1 << 63, 1),
                };
                self.pending.insert(req_id, reply);
                self.step(Input::Request(ClientRequest {
                    req_id,
                    client,
                    seq,
                    op,
                }));
            }
            Command::Admin { op, reply } => {
                let req_id = self.next_req;
                self.next_req += 1;
                self.pending_admin.insert(req_id, reply);
                self.step(Input::Admin(AdminRequest { req_id, op }));
            }
            Command::StaleRead { key, reply } => {
                let raft = self.replica.raft();
                let since_leader = if raft.role() == Role::Leader {
                    Some(Duration::ZERO)
                } else {
                    self.last_leader_contact.map(|t| t.elapsed())
                };
                let _ = reply.send(StaleAnswer {
                    value: self.replica.kv().get(&key).map(str::to_owned),
                    index: raft.applied_index().0,
                    term: raft.term().0,
                    since_leader,
                });
            }
        }
    }

    fn step(&mut self, input: Input) {
        let mut effects = Vec::new();
        if let Err(e) = self.replica.handle(input, &mut effects) {
            fail_stop(&format!("the replica stopped: {e:?}"));
        }
        self.carry_out(effects);
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(envelope) => self.outbox.send(envelope),
                Effect::Write(write) => {
                    if self.storage.send(write).is_err() {
                        fail_stop("the storage thread is gone");
                    }
                }
                Effect::Reply(reply) => {
                    let outcome = match &reply.result {
                        Ok(_) => "ok",
                        Err(ReplyError::NotLeader { .. }) => "not_leader",
                        Err(ReplyError::Busy) => "busy",
                        Err(_) => "failed",
                    };
                    self.shared
                        .metrics
                        .proposals
                        .get_or_create(&label("outcome", outcome))
                        .inc();
                    if let Some(tx) = self.pending.remove(&reply.req_id) {
                        let _ = tx.send(Answer {
                            result: reply.result,
                            index: self.replica.raft().applied_index().0,
                            term: self.replica.raft().term().0,
                        });
                    }
                }
                Effect::AdminReply(reply) => {
                    tracing::info!(result = ?reply.result, "admin request answered");
                    if let Some(tx) = self.pending_admin.remove(&reply.req_id) {
                        let _ = tx.send(reply);
                    }
                }
                Effect::Event(event) => self.observe(event),
            }
        }
    }

    fn observe(&mut self, event: ReplicaEvent) {
        let m = &self.shared.metrics;
        match event {
            ReplicaEvent::SoftState(soft) => {
                m.term.set(soft.term.0 as i64);
                m.state.set(match soft.role {
                    Role::Leader => 2,
                    Role::Candidate => 1,
                    _ => 0,
                });
                m.has_leader.set(soft.leader.is_some() as i64);
                if soft.leader != self.soft.leader {
                    m.leader_changes.inc();
                    tracing::info!(term = soft.term.0, leader = ?soft.leader.map(|l| l.0), "leader changed");
                }
                if soft.role == Role::Leader && self.soft.role != Role::Leader {
                    m.leader_elections.inc();
                    tracing::info!(term = soft.term.0, "this node is the leader");
                }
                self.soft = soft;
            }
            ReplicaEvent::Persisted { entries, .. } => {
                m.log_entries.inc_by(entries.len() as u64);
            }
            ReplicaEvent::Applied(_) => {
                m.commits.inc();
            }
            ReplicaEvent::Refused(why) => {
                m.messages_refused.inc();
                tracing::warn!("message refused: {why}");
            }
            ReplicaEvent::MembershipApplied { index, membership } => {
                tracing::info!(index = index.0, ?membership, "configuration applied");
            }
            ReplicaEvent::Recovered {
                hard_state,
                snapshot,
                entries,
                truncated_tail_bytes,
            } => tracing::info!(
                term = hard_state.term.0,
                snapshot = ?snapshot.map(|s| s.index.0),
                entries = entries.len(),
                truncated_tail_bytes,
                "log recovered"
            ),
            ReplicaEvent::SnapshotTaken { snapshot, .. } => {
                m.snapshots.get_or_create(&label("kind", "taken")).inc();
                tracing::info!(index = snapshot.index.0, "snapshot taken, log compacted");
            }
            ReplicaEvent::StateMachineReplaced { snapshot } => {
                tracing::info!(
                    index = snapshot.index.0,
                    "state machine replaced by the leader's snapshot"
                );
            }
            ReplicaEvent::SnapshotInstalled { snapshot, .. } => {
                m.snapshots.get_or_create(&label("kind", "installed")).inc();
                tracing::info!(index = snapshot.index.0, "snapshot installed");
            }
            ReplicaEvent::LeaseReadConfirmed { .. } => {}
        }
    }

    /// Publishes the replica's state for the HTTP side.
    fn publish(&self) {
        let raft = self.replica.raft();
        let membership = raft.membership();
        let status = Status {
            id: raft.id().0,
            role: match raft.role() {
                Role::Follower => "follower",
                Role::PreCandidate => "pre-candidate",
                Role::Candidate => "candidate",
                Role::Leader => "leader",
            }
            .into(),
            term: raft.term().0,
            leader: raft.leader().map(|l| l.0),
            commit: raft.commit_index().0,
            applied: raft.applied_index().0,
            voters: membership.voters.iter().map(|v| v.0).collect(),
            learners: membership.learners.iter().map(|v| v.0).collect(),
            first_index: raft.first_index().0,
            last_index: raft.last_index().0,
            snapshot_index: raft.snapshot_meta().index.0,
        };
        self.shared.metrics.commit_index.set(status.commit as i64);
        self.shared.metrics.applied_index.set(status.applied as i64);
        *self.shared.status.lock().expect("not poisoned") = status;
    }
}

/// A small generator of session ids (splitmix64): an executor may draw
/// randomness, and these ids only need to differ between requests.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
