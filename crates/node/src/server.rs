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
use crate::directory::Directory;
use crate::metrics::{Metrics, label};
use crate::storage::{self, fail_stop};
use crate::transport::{self, Outbox};
use crate::{Shared, Status, http};
use kv::{ClientId, Op, Output};
use raft::{ConfChange, NodeId, Role, SoftState};
use replica::{
    AdminOp, AdminReply, AdminRequest, ClientRequest, Effect, Envelope, Input, Replica,
    ReplicaEvent, ReplicaOptions, ReplyError, SnapshotPolicy, Storage, StorageLimits, Write,
    WriteId,
};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use wal::FsDisk;

/// Requests queued for the replica task at most; past it, HTTP answers 503.
const COMMAND_QUEUE: usize = 4096;
/// Peer messages queued for the replica task at most.
const INBOUND_QUEUE: usize = 4096;
/// How often (in ticks) a leader tries to promote its caught-up learners.
const PROMOTE_EVERY_TICKS: u64 = 10;
/// Sessions kept for writes that bring none (see [`AnonSessions`]).
const ANON_SESSIONS: usize = 1024;
/// Client requests handed to the replica in one step at most: enough to
/// batch every connection of a busy server, few enough that the replica's
/// bound on storage bytes in flight (checked per step) is not overrun far.
const MAX_BATCH: usize = 256;

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
    /// Dial member `id` at `addr` (learnt from its handshake).
    Dial {
        /// The member.
        id: u64,
        /// Its peer address.
        addr: SocketAddr,
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
    let directory = members(&config).await?;
    let founders = directory
        .founders()
        .map(<[u64]>::to_vec)
        .unwrap_or_else(|| config.voters());
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
        founders.into_iter().map(NodeId).collect(),
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
        directory: Mutex::new(directory),
        ready_bar: Mutex::new(None),
        commands: commands_tx,
    });
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let storage_tx = if config.unsafe_no_fsync {
        storage::spawn_unsafe_no_fsync(store, done_tx)
    } else {
        storage::spawn(store, done_tx, metrics.clone())
    };
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
        start = match (config.bootstrap, &config.join) {
            (true, _) => "bootstrap",
            (_, Some(_)) => "join",
            _ => "restart",
        },
        "node started"
    );
    if config.unsafe_no_fsync {
        tracing::warn!(
            "UNSAFE SETTING unsafe_no_fsync: writes are acknowledged before they reach the disk \
             and are never synced; a crash LOSES ACKNOWLEDGED WRITES. For testing the tests only, \
             never in production."
        );
    }
    if config.unsafe_local_reads {
        tracing::warn!(
            "UNSAFE SETTING unsafe_local_reads: reads are answered from this node's own state \
             without ReadIndex; reads can be STALE (not linearizable). For testing the tests \
             only, never in production."
        );
    }
    if config.admin_token.is_some() {
        tracing::info!("admin endpoints require the configured bearer token");
    } else {
        tracing::info!("no admin token configured: admin endpoints answer loopback clients only");
    }

    let mut task = ReplicaTask {
        soft: replica.raft().soft_state(),
        members: member_ids(replica.raft().membership()),
        replica,
        shared,
        outbox,
        storage: storage_tx,
        pending: HashMap::new(),
        pending_admin: HashMap::new(),
        next_req: 1,
        last_leader_contact: None,
        anon: AnonSessions::new(SplitMix(seed ^ 0x5eed).next()),
        promotions: BTreeSet::new(),
    };
    task.carry_out(first_effects);
    task.publish();
    task.run(done_rx, inbound_rx, commands_rx).await;
    Ok(())
}

/// The member list this node starts with: the file's, plus this node and
/// the `--peers` given, plus, for a join, what the cluster answered.
async fn members(config: &Config) -> Result<Directory, String> {
    let mut directory = Directory::load(&config.data_dir)?;
    directory.learn(
        config.node_id,
        config.peer_addr,
        Some(config.http_addr.to_string()),
    )?;
    for (&id, &addr) in &config.peers {
        directory.learn(id, addr, None)?;
    }
    if config.bootstrap {
        directory.set_founders(config.voters())?;
    }
    if let Some(via) = &config.join {
        tracing::info!(node = config.node_id, via, "asking to join the cluster");
        for (id, m) in crate::join::join(config, via).await? {
            if id != config.node_id {
                directory.learn(id, m.peer, m.http)?;
            }
        }
        // A joined node learns the configuration from the log (or a
        // snapshot) the leader sends, as a node the simulator adds does.
        directory.set_founders(Vec::new())?;
        tracing::info!(
            members = ?directory.members().keys().collect::<Vec<_>>(),
            "joined: added as a learner, promoted once caught up"
        );
    }
    Ok(directory)
}

/// Every member of `m`, as plain ids.
fn member_ids(m: &raft::Membership) -> BTreeSet<u64> {
    m.members().into_iter().map(|n| n.0).collect()
}

/// Sessions for writes that bring none, reused so the state machine's
/// session table (at most `kv::MAX_SESSIONS`) is not flooded by one fresh
/// session per write. A session serves one write at a time (one
/// outstanding request, §6.3) and goes back to the pool when that write is
/// answered; past [`ANON_SESSIONS`] writes at once, a write gets a
/// one-off session.
struct AnonSessions {
    /// Sessions free for the next write, with their last sequence number.
    free: Vec<(ClientId, u64)>,
    /// Sessions lent, by the request they serve.
    lent: HashMap<u64, (ClientId, u64)>,
    /// Ids are `base + n`, with the top bit set so they cannot meet a
    /// client's own small ids.
    base: u64,
    /// Sessions made so far.
    made: u64,
}

impl AnonSessions {
    fn new(base: u64) -> AnonSessions {
        AnonSessions {
            free: Vec::new(),
            lent: HashMap::new(),
            base: base | 1 << 63,
            made: 0,
        }
    }

    /// A session for request `req_id`: (client, next sequence number).
    fn lend(&mut self, req_id: u64) -> (ClientId, u64) {
        let (client, seq) = match self.free.pop() {
            Some((client, last)) => (client, last + 1),
            None => {
                self.made += 1;
                (self.base.wrapping_add(self.made) | 1 << 63, 1)
            }
        };
        if self.lent.len() < ANON_SESSIONS {
            self.lent.insert(req_id, (client, seq));
        }
        (client, seq)
    }

    /// Request `req_id` was answered: its session serves the next write,
    /// unless the state machine no longer knows it.
    fn give_back(&mut self, req_id: u64, result: &Result<Output, ReplyError>) {
        let Some(session) = self.lent.remove(&req_id) else {
            return;
        };
        match result {
            // The state machine no longer knows this session.
            Err(ReplyError::Kv(
                kv::KvError::SessionExpired { .. } | kv::KvError::StaleSequence { .. },
            )) => {}
            // Refused before it reached the log (not leader, busy,
            // invalid): the sequence number was never used, so the next
            // write reuses it (a session's first write must be number 1).
            Err(e) if e.is_definite() && !matches!(e, ReplyError::Kv(_)) => {
                let (client, seq) = session;
                self.free.push((client, seq - 1));
            }
            _ => self.free.push(session),
        }
    }
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
    /// Sessions for writes that bring none.
    anon: AnonSessions,
    /// The members of the configuration last applied, to notice removals.
    members: BTreeSet<u64>,
    /// Promotions this node asked for itself (admin requests with no one
    /// waiting), by request id.
    promotions: BTreeSet<u64>,
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
                        if ticks.is_multiple_of(PROMOTE_EVERY_TICKS) {
                            self.promote_caught_up_learners();
                        }
                    }
                }
                Some(ids) = done.recv() => {
                    for id in ids {
                        self.step(Input::WriteDone(id));
                    }
                    // Syncs that finished meanwhile, before the requests
                    // they make room for.
                    while let Ok(ids) = done.try_recv() {
                        for id in ids {
                            self.step(Input::WriteDone(id));
                        }
                    }
                }
                Some(envelope) = inbound.recv() => {
                    if self.replica.raft().leader() == Some(envelope.msg.from) {
                        self.last_leader_contact = Some(Instant::now());
                    }
                    self.step(Input::Message(envelope));
                }
                Some(command) = commands.recv() => {
                    // Every request queued meanwhile goes in one batch: one
                    // storage write and one append per follower for all of
                    // them (see `Replica::handle_requests`).
                    let mut batch = Vec::new();
                    self.command(command, &mut batch);
                    while batch.len() < MAX_BATCH {
                        let Ok(command) = commands.try_recv() else { break };
                        self.command(command, &mut batch);
                    }
                    self.step_requests(batch);
                }
                else => return,
            }
            self.publish();
        }
    }

    /// Takes one command: a client request joins `batch` (handled by the
    /// caller in one step); admin and stale reads are answered now.
    fn command(&mut self, command: Command, batch: &mut Vec<ClientRequest>) {
        match command {
            Command::Client { op, session, reply } => {
                let req_id = self.next_req;
                self.next_req += 1;
                let (client, seq) = match (&op, session) {
                    (_, Some(session)) => session,
                    // Reads take no session.
                    (Op::Get { .. }, None) => (0, 0),
                    // A write that brings no session borrows one.
                    (_, None) => self.anon.lend(req_id),
                };
                self.pending.insert(req_id, reply);
                batch.push(ClientRequest {
                    req_id,
                    client,
                    seq,
                    op,
                });
            }
            Command::Admin { op, reply } => {
                // In arrival order: the requests before it go first.
                self.step_requests(std::mem::take(batch));
                let req_id = self.next_req;
                self.next_req += 1;
                self.pending_admin.insert(req_id, reply);
                self.step(Input::Admin(AdminRequest { req_id, op }));
            }
            Command::Dial { id, addr } => self.outbox.dial(id, addr),
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

    /// Hands a batch of client requests to the replica in one step.
    fn step_requests(&mut self, batch: Vec<ClientRequest>) {
        if batch.is_empty() {
            return;
        }
        let mut effects = Vec::new();
        if let Err(e) = self.replica.handle_requests(batch, &mut effects) {
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
                    if reply.result.is_err() {
                        self.shared.metrics.proposals_failed.inc();
                    }
                    self.anon.give_back(reply.req_id, &reply.result);
                    if let Some(tx) = self.pending.remove(&reply.req_id) {
                        let _ = tx.send(Answer {
                            result: reply.result,
                            index: self.replica.raft().applied_index().0,
                            term: self.replica.raft().term().0,
                        });
                    }
                }
                Effect::AdminReply(reply) if self.promotions.remove(&reply.req_id) => {
                    match reply.result {
                        Ok(_) => tracing::info!("promoting a caught-up learner to voter"),
                        Err(why) => tracing::debug!("learner not promoted yet: {why}"),
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
                let now = member_ids(&membership);
                for gone in self.members.difference(&now) {
                    if *gone == self.shared.config.node_id {
                        tracing::warn!("this node was removed from the cluster");
                        continue;
                    }
                    tracing::info!(node = gone, "member removed: no longer dialled");
                    self.outbox.forget(*gone);
                    let forgot = self
                        .shared
                        .directory
                        .lock()
                        .expect("not poisoned")
                        .forget(*gone);
                    if let Err(e) = forgot {
                        tracing::warn!("cannot update the member list: {e}");
                    }
                }
                self.members = now;
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

    /// A leader promotes each learner once it holds the commit index
    /// (dissertation §4.2.1: a new server catches up without a vote first).
    /// Raft refuses a learner still behind, or a change while another is
    /// under way; the next attempt comes [`PROMOTE_EVERY_TICKS`] later.
    /// Every leader does this, so a promotion survives a change of leader.
    fn promote_caught_up_learners(&mut self) {
        let raft = self.replica.raft();
        if raft.role() != Role::Leader || !self.promotions.is_empty() {
            return;
        }
        let learners: Vec<NodeId> = raft.membership().learners.iter().copied().collect();
        for learner in learners {
            let req_id = self.next_req;
            self.next_req += 1;
            self.promotions.insert(req_id);
            self.step(Input::Admin(AdminRequest {
                req_id,
                op: AdminOp::ChangeMembership(ConfChange::Promote(learner)),
            }));
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
            // O(1): the store keeps running sums of its data and sessions.
            digest: format!("{:016x}", self.replica.kv().digest()),
        };
        let m = &self.shared.metrics;
        let committed_before = m.commit_index.set(status.commit as i64);
        let applied_before = m.applied_index.set(status.applied as i64);
        m.proposals_committed
            .inc_by(status.commit.saturating_sub(committed_before.max(0) as u64));
        m.proposals_applied
            .inc_by(status.applied.saturating_sub(applied_before.max(0) as u64));
        m.proposals_pending.set(self.pending.len() as i64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooled_session_reuses_a_sequence_number_that_never_reached_the_log() {
        let mut pool = AnonSessions::new(7);
        let (client, first) = pool.lend(1);
        assert_eq!(first, 1, "a new session starts at 1");
        pool.give_back(1, &Err(ReplyError::Busy));
        assert_eq!(pool.lend(2), (client, 1), "Busy: number 1 was never used");
        pool.give_back(2, &Ok(Output::Done));
        assert_eq!(pool.lend(3), (client, 2), "applied: the next number");
        pool.give_back(3, &Err(ReplyError::LeadershipLost));
        assert_eq!(pool.lend(4), (client, 3), "maybe applied: never reused");
        pool.give_back(
            4,
            &Err(ReplyError::Kv(kv::KvError::SessionExpired { client })),
        );
        let (other, seq) = pool.lend(5);
        assert_ne!(other, client, "a forgotten session is not lent again");
        assert_eq!(seq, 1);
    }
}
