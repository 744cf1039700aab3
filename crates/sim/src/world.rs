//! The simulated world: replicas, clients, the network and the nemesis, driven
//! by one event queue in virtual time.

use crate::config::{Params, SimConfig};
use crate::disk::{DiskFaultMode, SimDisk};
use crate::invariants::ViolationKind;
use crate::invariants::{DIGEST_EVERY, Invariants};
use crate::network::{Fate, Network, Partition, names};
use crate::queue::{EventQueue, MS, Nanos};
use crate::rng::{Concern, SimRng};
use crate::script::Action;
use crate::served::{Served, ServedHow};
use crate::timeline::{Timed, TimelineEvent};
use crate::trace::{Actor, DropReason, MessageSummary, TraceEvent, Tracer};
use crate::workload::Workload;
use check::History;
use kv::Op;
use raft::{Config, LogIndex, NodeId};
use replica::{
    AdminReply, ClientReply, ClientRequest, Effect, EntryDigest, Envelope, Input, Replica,
    ReplicaError, ReplicaEvent, ReplicaOptions, Storage, StorageLimits, WriteId,
};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

mod churn;
mod clients;
mod effects;
mod faults;
mod liveness;
mod process;
mod scripted;
mod writes;

pub use churn::ChurnStats;
pub use writes::{StorageSummary, WriteStats};

/// The cluster id every simulated replica shares.
const CLUSTER_ID: u64 = 0x7261_6674; // "raft"

/// After the workload ends, the run goes on at most this long for clients to
/// finish their last operations.
pub const DRAIN_LIMIT: Nanos = 30_000 * MS;

/// A run stops as a "message storm" when more than [`STORM_EVENTS`] events
/// fall within [`STORM_WINDOW`] of virtual time: a healthy 5-node run has
/// about 1,500 per 100 ms, so this is two orders of magnitude beyond, where
/// virtual time has all but stopped.
const STORM_EVENTS: u64 = 200_000;
/// See [`STORM_EVENTS`].
const STORM_WINDOW: Nanos = 100 * MS;

/// After the chaos, a healed cluster must elect a leader and finish every
/// operation in flight within this much virtual time (liveness), plus the
/// time its members need to copy what they lag by at the drawn replication
/// pace (`World::catch_up_allowance`).
pub const LIVENESS_BOUND: Nanos = 10_000 * MS;

/// After the first leader of the healed cluster, the run goes on at least
/// this long once the clients are done, so that a follower left behind
/// and terms that keep rising have time to show (see `liveness`).
pub const SETTLE_WINDOW: Nanos = 1_000 * MS;

/// Pause before retrying once the chaos is over: longer, so that a client's
/// attempts span the whole liveness bound.
const LIVENESS_BACKOFF: (Nanos, Nanos) = (40 * MS, 80 * MS);

/// A client gives up an operation after this many attempts, whatever time
/// is left (attempt numbers travel in 8 bits of a request id).
const MAX_ATTEMPTS: u32 = 200;

/// Shortest and longest pause before retrying after a definite rejection.
const RETRY_BACKOFF: (Nanos, Nanos) = (5 * MS, 40 * MS);

/// What can happen next.
#[derive(Debug)]
enum Event {
    Tick {
        node: usize,
        incarnation: u64,
    },
    Deliver {
        to: usize,
        envelope: Envelope,
    },
    Request {
        node: usize,
        request: ClientRequest,
    },
    Reply {
        client: usize,
        reply: ClientReply,
    },
    ClientNext {
        client: usize,
    },
    ClientRetry {
        client: usize,
        op_id: u64,
        attempt: u32,
    },
    ClientTimeout {
        client: usize,
        op_id: u64,
        attempt: u32,
    },
    Partition,
    Heal,
    Crash,
    Restart {
        node: usize,
    },
    /// A node's disk finished a write.
    WriteDone {
        node: usize,
        incarnation: u64,
        id: WriteId,
    },
    /// The nemesis pauses a process.
    Pause,
    /// A paused process runs again.
    Resume {
        node: usize,
        incarnation: u64,
    },
    /// The nemesis crashes a process and restarts it at once.
    FastRestart,
    /// A scripted wipe waits for the node's data to be committed.
    WipeWhenSafe {
        node: usize,
        since: Nanos,
    },
    Scripted(Action),
    Churn,
    ClockJump,
    EndOfWorkload,
}

/// One server slot: its disk outlives its process.
struct NodeSlot {
    id: NodeId,
    replica: Option<Replica>,
    /// The replica's log on `disk`, while the process runs.
    storage: Option<Storage<SimDisk>>,
    disk: SimDisk,
    /// Writes handed to the disk and not yet complete, oldest first.
    writes: VecDeque<writes::WriteInFlight>,
    /// When the disk finishes the last write handed to it.
    disk_busy_until: Nanos,
    /// Draws how long each write takes.
    disk_latency_rng: SimRng,
    /// Paused (SIGSTOP) until then: what arrives waits in `held`.
    paused_until: Option<Nanos>,
    /// Events that arrived during a pause, in arrival order.
    held: Vec<Event>,
    /// Ticks that fell during a pause, delivered at once on resume.
    missed_ticks: u32,
    /// Bumped at every crash, so that ticks scheduled for a dead process are
    /// recognised as stale.
    incarnation: u64,
    rng: SimRng,
    /// The applied index after the last step, to notice when it moves.
    applied: u64,
    /// The commit index after the last step, to trace when it moves.
    commit: LogIndex,
    /// When `commit` last moved (catch-up liveness: a member behind the
    /// leader whose commit index stands still is stalled).
    commit_moved_at: Nanos,
    /// The term this node leads, if it is leader (for the timeline).
    leading: Option<u64>,
    /// The node's snapshot index when its current step began: no message
    /// of that step may need a log entry below it.
    snapshot_floor: LogIndex,
    /// Why this node stays down for the rest of the run: its disk holds
    /// damaged data (found by recovery), and rejoining with less than it
    /// acknowledged could lose committed writes. Never restarted once set.
    failed: Option<String>,
    /// A spare slot churn has not used yet: no process, never restarted.
    dormant: bool,
    /// Removed from the cluster and shut down for good by churn.
    retired: bool,
    /// Whether a committed configuration ever included this node.
    joined: bool,
    /// The node's clock jumped back: its next tick waits until then.
    clock_paused_until: Nanos,
    /// Crashed by the script for good: never restarted, not even by the
    /// heal at the end of the chaos.
    gone_for_good: bool,
}

/// The operation a client has in flight.
#[derive(Clone, Debug)]
struct InFlight {
    op_id: u64,
    op: Op,
    seq: u64,
    invoked: Nanos,
    /// The latest attempt number. Replies and timeouts of older attempts do
    /// not start new attempts (results of any attempt are still accepted).
    attempt: u32,
    /// Whether the latest attempt still waits for an answer.
    outstanding: bool,
    /// Whether some attempt may have reached a leader and been proposed: if
    /// so, giving up leaves the outcome unknown.
    maybe_applied: bool,
}

struct ClientSlot {
    session: u64,
    last_seq: u64,
    leader_guess: usize,
    current: Option<InFlight>,
    done: bool,
}

/// The run's counters. The summary carries them as they are (its JSON lists
/// them among its own fields), so each is named and documented once, here.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Operations that completed with a result.
    pub ops_ok: u64,
    /// Operations that definitely did not take effect.
    pub ops_failed: u64,
    /// Operations whose outcome is unknown.
    pub ops_unknown: u64,
    /// Process crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// Messages between replicas handed to the network.
    pub messages: u64,
    /// Messages lost at random or to partitions (or to a dead receiver).
    pub messages_dropped: u64,
    /// Messages delivered twice.
    pub messages_duplicated: u64,
    /// Messages a partition held and released later (hold and replay).
    pub messages_held: u64,
    /// Lease reads confirmed by leaders (each checked by lease safety
    /// while the clocks are within the drift bound).
    pub lease_reads: u64,
    /// Replicas that stopped on an internal error (each is also a
    /// violation, so the summary's JSON leaves the count out).
    #[serde(skip)]
    pub halts: u64,
    /// Replicas that stopped on a disk fault they detected (a read error, a
    /// full disk, a power loss in a sync, corruption): expected with disk
    /// faults on, and never a violation by itself.
    pub disk_halts: u64,
    /// Snapshots replicas took of their own state (log compactions).
    pub snapshots_taken: u64,
    /// Snapshots replicas installed from a leader (InstallSnapshot).
    pub snapshots_installed: u64,
    /// The most applied entries any replica's log held after its snapshot,
    /// at the end of any step (the snapshot policy bounds it).
    pub max_applied_entries_held: u64,
    /// The most entries any replica's log held after its snapshot, applied
    /// or not, at the end of any step.
    pub max_log_entries: u64,
    /// Restarts that recovered from a snapshot (and the log after it).
    pub recoveries_from_snapshot: u64,
    /// Restarts that recovered from a snapshot with no entry after it.
    pub recoveries_from_snapshot_only: u64,
    /// Membership churn: changes asked for, completed and refused.
    pub membership: ChurnStats,
    /// How long after the heal the cluster had to recover, in ms: the
    /// liveness bound plus the catch-up time the drawn replication pace
    /// needs (0 when the run never healed).
    pub liveness_bound_ms: u64,
    /// Process pauses injected. (The summary's `storage` section reports it.)
    #[serde(skip)]
    pub pauses: u64,
    /// Crashes whose node was back before one network delay. (The summary's
    /// `storage` section reports it.)
    #[serde(skip)]
    pub fast_restarts: u64,
    /// Messages delayed far beyond the latency range (the heavy tail). (The
    /// summary's `storage` section reports it.)
    #[serde(skip)]
    pub long_delayed: u64,
    /// Writes: latencies, group commit, writes lost in flight. (The summary's
    /// `storage` section reports it.)
    #[serde(skip)]
    pub writes: WriteStats,
}

/// The result of a run, before checking.
pub struct RunOutput {
    /// What clients saw.
    pub history: History,
    /// The invariant checker, with its findings.
    pub invariants: Invariants,
    /// Counters.
    pub stats: Stats,
    /// Hash of every traced event.
    pub trace_hash: u64,
    /// Number of traced events.
    pub trace_events: u64,
    /// Virtual time at the end.
    pub sim_time: Nanos,
    /// Faults and leadership over time.
    pub timeline: Vec<Timed>,
    /// Who answered each operation that completed, by op id.
    pub served: BTreeMap<u64, Served>,
    /// Disk faults injected, by kind, over all nodes.
    pub disk_faults: BTreeMap<String, u64>,
    /// Nodes that stayed down for good on a corrupt disk, and why.
    pub failed_nodes: Vec<String>,
    /// Liveness failures: what the healed cluster did not do in time.
    pub liveness: Vec<String>,
    /// Writes and the faults of asynchronous storage.
    pub storage: StorageSummary,
}

/// A whole simulated cluster.
pub struct World {
    config: SimConfig,
    params: Params,
    now: Nanos,
    queue: EventQueue<Event>,
    net: Network,
    nodes: Vec<NodeSlot>,
    clients: Vec<ClientSlot>,
    workload: Workload,
    workload_rng: SimRng,
    nemesis: SimRng,
    history: History,
    invariants: Invariants,
    tracer: Tracer,
    stats: Stats,
    next_op_id: u64,
    chaos_over: bool,
    /// Scratch buffer for a replica's effects, reused across steps.
    effects: Vec<Effect>,
    /// The request being handled in the current step, if any: a read
    /// answered within it was answered at once.
    answering: Option<u64>,
    /// Who answered, by request id, until the client takes the answer.
    replied: BTreeMap<u64, Served>,
    /// Who answered each completed operation, by op id.
    served: BTreeMap<u64, Served>,
    /// Faults and leadership over time, for reports.
    timeline: Vec<Timed>,
    /// Draws membership changes.
    churn_rng: SimRng,
    /// Draws clock jumps.
    clock_rng: SimRng,
    /// The membership change under way, if any.
    churn_plan: Option<churn::Plan>,
    /// Indices of configuration entries seen applied (each counted once).
    applied_memberships: std::collections::BTreeSet<LogIndex>,
    /// When the chaos ended and the cluster was healed, if it has.
    healed_at: Option<Nanos>,
    /// How long after the heal the cluster has to recover:
    /// [`LIVENESS_BOUND`], plus the time to copy at the drawn replication
    /// pace the log a live node lags by at the heal (see
    /// `catch_up_allowance`). Invariant: at most `DRAIN_LIMIT -
    /// SETTLE_WINDOW`, so the run lasts long enough to see it kept.
    liveness_bound: Nanos,
    /// When a leader first emerged after the heal.
    leader_after_heal: Option<Nanos>,
    /// The term of that leader (terms settle from there: see
    /// `invariants::term_inflation`).
    term_after_heal: Option<raft::Term>,
    /// Liveness failures found after the heal.
    liveness: Vec<String>,
    /// A clock jumped during the run: lease reads are beyond the drift
    /// bound from then on (see `invariants::lease_safety`).
    clock_jumped: bool,
    /// When the last message a partition held is released (0: none held).
    held_until: Nanos,
    /// Draws pauses and fast restarts.
    process_rng: SimRng,
    /// The answer to the last admin request (same step).
    admin_reply: Option<AdminReply>,
    /// The chaos is over: no disk is slow any more.
    disks_healed: bool,
}

impl World {
    /// Builds the world for `config`, with `params` drawn from its seed.
    pub fn new(config: SimConfig, params: Params, tracer: Tracer) -> World {
        let seed = config.seed;
        let slots = params.slots(&config);
        let net = Network::new(
            SimRng::for_concern(seed, Concern::Network),
            slots,
            (params.latency_min_us * 1_000, params.latency_max_us * 1_000),
            params.drop_rate,
            params.duplicate_rate,
        )
        .with_long_delays(params.long_delay_rate, params.long_delay_max_ms * MS)
        .with_holds(
            SimRng::for_concern(seed, Concern::Hold),
            params.hold_share,
            crate::config::HOLD_MIN_MS * MS,
            params.hold_max_ms * MS,
        );
        let nodes = (0..slots)
            .map(|i| NodeSlot {
                id: NodeId(i as u64 + 1),
                replica: None,
                storage: None,
                writes: VecDeque::new(),
                disk_busy_until: 0,
                disk_latency_rng: SimRng::for_concern(seed, Concern::DiskLatency(i as u64 + 1)),
                paused_until: None,
                held: Vec::new(),
                missed_ticks: 0,
                // The fault budget: at most a minority of disks may lose or
                // corrupt synced data, so every committed entry survives on a
                // majority.
                disk: SimDisk::new(
                    SimRng::for_concern(seed, Concern::Disk(i as u64 + 1)),
                    params.disk_faults,
                    i < (config.nodes - 1) / 2,
                ),
                incarnation: 0,
                rng: SimRng::for_concern(seed, Concern::Node(i as u64 + 1)),
                applied: 0,
                commit: LogIndex(0),
                commit_moved_at: 0,
                leading: None,
                snapshot_floor: LogIndex(0),
                failed: None,
                dormant: i >= config.nodes,
                retired: false,
                joined: i < config.nodes,
                clock_paused_until: 0,
                gone_for_good: false,
            })
            .collect();
        let clients = (0..config.clients)
            .map(|c| ClientSlot {
                session: c as u64 + 1,
                last_seq: 0,
                leader_guess: c % config.nodes,
                current: None,
                done: false,
            })
            .collect();
        let workload_rng = SimRng::for_concern(seed, Concern::Workload);
        World {
            workload: Workload::with_spec(
                workload_rng.clone(),
                params.keys,
                config.workload.clone(),
            ),
            // A second stream for the workload's timing, so that what is
            // asked does not depend on when it is asked.
            workload_rng: SimRng::for_concern(seed ^ 0x5eed, Concern::Workload),
            nemesis: SimRng::for_concern(seed, Concern::Nemesis),
            invariants: Invariants::new(slots),
            churn_rng: SimRng::for_concern(seed, Concern::Churn),
            clock_rng: SimRng::for_concern(seed, Concern::Clock),
            churn_plan: None,
            applied_memberships: std::collections::BTreeSet::new(),
            healed_at: None,
            liveness_bound: LIVENESS_BOUND,
            leader_after_heal: None,
            term_after_heal: None,
            liveness: Vec::new(),
            clock_jumped: false,
            held_until: 0,
            process_rng: SimRng::for_concern(seed, Concern::Process),
            admin_reply: None,
            disks_healed: false,
            config,
            params,
            now: 0,
            queue: EventQueue::default(),
            net,
            nodes,
            clients,
            history: History::new(),
            tracer,
            stats: Stats::default(),
            next_op_id: 1,
            chaos_over: false,
            effects: Vec::new(),
            answering: None,
            replied: BTreeMap::new(),
            served: BTreeMap::new(),
            timeline: Vec::new(),
        }
    }

    /// Runs the whole simulation.
    pub fn run(mut self) -> RunOutput {
        for n in 0..self.config.nodes {
            self.start_node(n);
        }
        for c in 0..self.clients.len() {
            let at = self
                .workload_rng
                .range(0, self.params.think_max_ms * MS + 1);
            self.queue.push(at, Event::ClientNext { client: c });
        }
        if self.params.partition_every_ms > 0 {
            let at = self
                .nemesis
                .range(0, 2 * self.params.partition_every_ms * MS);
            self.queue.push(at, Event::Partition);
        }
        if self.params.crash_every_ms > 0 {
            let at = self.nemesis.range(0, 2 * self.params.crash_every_ms * MS);
            self.queue.push(at, Event::Crash);
        }
        if self.params.clock_jump_every_ms > 0 {
            let at = self
                .clock_rng
                .range(0, 2 * self.params.clock_jump_every_ms * MS);
            self.queue.push(at, Event::ClockJump);
        }
        if self.params.pause_every_ms > 0 {
            let at = self
                .process_rng
                .range(0, 2 * self.params.pause_every_ms * MS);
            self.queue.push(at, Event::Pause);
        }
        if self.params.fast_restart_every_ms > 0 {
            let at = self
                .process_rng
                .range(0, 2 * self.params.fast_restart_every_ms * MS);
            self.queue.push(at, Event::FastRestart);
        }
        if self.params.churn_every_ms > 0 {
            let at = self.churn_rng.range(0, 2 * self.params.churn_every_ms * MS);
            self.queue.push(at, Event::Churn);
        }
        for fault in self.config.script.clone() {
            self.queue
                .push(fault.at_ms * MS, Event::Scripted(fault.action));
        }
        self.queue.push(self.config.duration, Event::EndOfWorkload);

        let deadline = self.config.duration + DRAIN_LIMIT;
        let (mut window_start, mut window_events) = (0, 0u64);
        while let Some((at, event)) = self.queue.pop() {
            if at > deadline {
                break;
            }
            if at >= window_start + STORM_WINDOW {
                (window_start, window_events) = (at, 0);
            }
            window_events += 1;
            if window_events > STORM_EVENTS {
                // A message storm keeps virtual time from advancing and would
                // hang the run (and a sweep): stop, and say so.
                let detail = format!(
                    "more than {STORM_EVENTS} events within {}ms of virtual time from {}ms: a message storm",
                    STORM_WINDOW / MS,
                    window_start / MS
                );
                self.invariants
                    .external(ViolationKind::EventStorm, at, 0, detail);
                break;
            }
            debug_assert!(at >= self.now, "virtual time never goes back");
            self.now = at;
            self.dispatch(event);
            if self.chaos_over && self.clients.iter().all(|c| c.done) && self.settled() {
                break;
            }
        }
        self.check_liveness();
        self.abandon_pending_ops();
        let failed_nodes = self
            .nodes
            .iter()
            .filter_map(|n| n.failed.as_ref().map(|why| format!("{}: {why}", n.id)))
            .collect();
        RunOutput {
            storage: StorageSummary::of(&self.stats, &self.params.slow_disks),
            disk_faults: self.disk_faults(),
            failed_nodes,
            liveness: std::mem::take(&mut self.liveness),
            history: self.history,
            invariants: self.invariants,
            stats: self.stats,
            trace_hash: self.tracer.hash(),
            trace_events: self.tracer.events(),
            sim_time: self.now,
            timeline: self.timeline,
            served: self.served,
        }
    }

    fn dispatch(&mut self, event: Event) {
        // A paused process handles nothing: what is addressed to it waits.
        let target = match &event {
            Event::Tick { node, incarnation }
            | Event::WriteDone {
                node, incarnation, ..
            } => (self.nodes[*node].incarnation == *incarnation).then_some(*node),
            Event::Deliver { to, .. } => Some(*to),
            Event::Request { node, .. } => Some(*node),
            _ => None,
        };
        let event = match target {
            Some(node) if self.nodes[node].replica.is_some() => {
                match self.hold_if_paused(node, event) {
                    Some(event) => event,
                    None => return,
                }
            }
            _ => event,
        };
        match event {
            Event::WriteDone {
                node,
                incarnation,
                id,
            } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].replica.is_some()
                {
                    self.write_done(node, id);
                }
            }
            Event::Pause => self.pause(),
            Event::Resume { node, incarnation } => self.resume(node, incarnation),
            Event::FastRestart => self.fast_restart(),
            Event::WipeWhenSafe { node, since } => self.wipe_when_safe(node, since),
            Event::Tick { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].replica.is_some()
                {
                    let paused = self.nodes[node].clock_paused_until;
                    if paused > self.now {
                        // The node's clock jumped back: no tick until it
                        // reads the same time again.
                        self.queue.push(paused, Event::Tick { node, incarnation });
                        return;
                    }
                    self.step(node, Input::Tick);
                    let next = self.now + self.tick_interval(node);
                    self.queue.push(next, Event::Tick { node, incarnation });
                }
            }
            Event::Deliver { to, envelope } => {
                let summary = MessageSummary::of(&envelope.msg);
                if self.nodes[to].replica.is_none() {
                    self.stats.messages_dropped += 1;
                    self.trace(
                        Actor::Node(to as u64 + 1),
                        TraceEvent::Dropped(summary, DropReason::ReceiverDown),
                    );
                } else {
                    self.trace(Actor::Node(to as u64 + 1), TraceEvent::Delivered(summary));
                    self.step(to, Input::Message(envelope));
                }
            }
            Event::Request { node, request } => {
                if self.nodes[node].replica.is_some() {
                    self.answering = Some(request.req_id);
                    self.step(node, Input::Request(request));
                    self.answering = None;
                }
                // A request to a node that is down is lost; the client times out.
            }
            Event::Reply { client, reply } => self.client_reply(client, reply),
            Event::ClientNext { client } => self.client_next(client),
            Event::ClientRetry {
                client,
                op_id,
                attempt,
            } => {
                let current = self.clients[client].current.as_ref();
                if current.is_some_and(|op| op.op_id == op_id && op.attempt == attempt) {
                    self.send_attempt(client);
                }
            }
            Event::ClientTimeout {
                client,
                op_id,
                attempt,
            } => self.client_timeout(client, op_id, attempt),
            Event::Partition => self.partition(),
            Event::Heal => self.heal(),
            Event::Crash => self.crash(),
            Event::Scripted(action) => self.scripted(action),
            Event::Churn => self.churn(),
            Event::ClockJump => self.clock_jump(),
            Event::Restart { node } => self.restart(node),
            Event::EndOfWorkload => self.end_of_workload(),
        }
    }

    fn trace(&mut self, actor: Actor, event: TraceEvent) {
        self.tracer.record(self.now, actor, event);
    }

    fn mark(&mut self, event: TimelineEvent) {
        self.timeline.push(Timed {
            time_ns: self.now,
            event,
        });
    }

    /// Virtual time between two ticks of `node`'s clock: the tick period,
    /// shortened by a clock that runs fast, lengthened by one that runs slow.
    fn tick_interval(&self, node: usize) -> Nanos {
        let drift = self.params.clock_drift_ppm.get(node).copied().unwrap_or(0);
        let rate = (1_000_000 + drift).max(1) as u64;
        (self.params.tick_ms * MS * 1_000_000 / rate).max(1)
    }

    /// Notes on the timeline that `node` stopped leading (if it led).
    fn stop_leading(&mut self, node: usize) {
        if let Some(term) = self.nodes[node].leading.take() {
            let node = self.nodes[node].id.0;
            self.mark(TimelineEvent::SteppedDown { node, term });
        }
    }

    // ----- replicas -----------------------------------------------------

    fn raft_config(&mut self, node: usize) -> Config {
        // Founding members bootstrap with the founding voters; a node churn
        // adds starts with none and learns the configuration from the log.
        let voters = if node < self.config.nodes {
            self.nodes[..self.config.nodes]
                .iter()
                .map(|n| n.id)
                .collect()
        } else {
            Vec::new()
        };
        let seed = self.nodes[node].rng.next_u64();
        self.params.raft_config(self.nodes[node].id, voters, seed)
    }

    fn start_node(&mut self, node: usize) {
        let config = self.raft_config(node);
        let disk = self.nodes[node].disk.clone();
        let id = self.nodes[node].id.0;
        let options = ReplicaOptions {
            snapshot_policy: self.params.snapshot_policy(),
            storage: StorageLimits {
                max_writes_in_flight: self.params.writes_in_flight,
                ..StorageLimits::DEFAULT
            },
        };
        self.nodes[node].snapshot_floor = LogIndex(0);
        let opened =
            Storage::open(disk)
                .map_err(ReplicaError::from)
                .and_then(|(storage, recovered)| {
                    Replica::open(CLUSTER_ID, config, options, recovered)
                        .map(|(replica, effects)| (storage, replica, effects))
                });
        match opened {
            Ok((storage, mut replica, effects)) => {
                self.plant(&mut replica);
                self.nodes[node].applied = replica.kv().applied_index();
                self.nodes[node].commit = replica.raft().commit_index();
                self.nodes[node].replica = Some(replica);
                self.nodes[node].storage = Some(storage);
                let interval = self.tick_interval(node);
                let phase = self.nodes[node].rng.range(0, interval);
                let incarnation = self.nodes[node].incarnation;
                self.queue
                    .push(self.now + phase, Event::Tick { node, incarnation });
                // Recovery re-applies the committed prefix: the invariants
                // see it like any other step.
                let incarnation = self.nodes[node].incarnation;
                for effect in effects {
                    if self.nodes[node].incarnation != incarnation {
                        break; // a write failed: the node stopped again
                    }
                    self.carry_out(node, effect);
                }
                if self.nodes[node].incarnation == incarnation {
                    // A recovered node is a follower.
                    self.check_replica(node, None);
                }
            }
            Err(e) => {
                self.trace(Actor::Node(id), TraceEvent::Halted(e.to_string()));
                self.mark(TimelineEvent::Halted {
                    node: id,
                    reason: e.to_string(),
                });
                let disk = &self.nodes[node].disk;
                let faults_on = disk.mode() != DiskFaultMode::Off;
                if faults_on && e.is_disk_corruption() && disk.may_lose_data() {
                    // Damage the budget allowed, and recovery caught: the
                    // node stays down, and says why.
                    self.stats.disk_halts += 1;
                    self.nodes[node].failed = Some(e.to_string());
                } else if faults_on && e.is_disk_failure() {
                    // A read error, unstable reads, a full disk: try again
                    // later, as a supervisor would.
                    self.stats.disk_halts += 1;
                    let at = self.now + self.params.downtime_max_ms * MS;
                    self.queue.push(at, Event::Restart { node });
                } else {
                    // Within the budget a disk loses only unsynced data,
                    // which a correct log never depends on: failing to
                    // recover is a bug.
                    self.stats.halts += 1;
                    self.invariants_violation(
                        ViolationKind::Recovery,
                        id,
                        format!("cannot recover: {e}"),
                    );
                }
            }
        }
    }

    fn invariants_violation(&mut self, what: ViolationKind, node: u64, detail: String) {
        self.invariants.external(what, self.now, node, detail);
    }

    fn node_index(&self, id: NodeId) -> Option<usize> {
        let i = id.0.checked_sub(1)? as usize;
        (i < self.nodes.len()).then_some(i)
    }

    // ----- the nemesis --------------------------------------------------

    fn leader_index(&self) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.replica
                .as_ref()
                .is_some_and(|r| r.raft().role() == raft::Role::Leader)
        })
    }

    fn end_of_workload(&mut self) {
        self.chaos_over = true;
        self.healed_at = Some(self.now);
        self.mark(TimelineEvent::EndOfWorkload);
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault("end of workload: heal everything".into()),
        );
        self.heal();
        // Slow disks and heavy-tailed delays are faults too: the healed
        // cluster runs on healthy disks and network (messages already in
        // flight still arrive when they were due).
        self.disks_healed = true;
        self.net.end_long_delays();
        for node in 0..self.nodes.len() {
            self.restart(node);
        }
        self.liveness_bound = LIVENESS_BOUND + self.catch_up_allowance();
        self.stats.liveness_bound_ms = self.liveness_bound / MS;
        for client in 0..self.clients.len() {
            if self.clients[client].current.is_none() {
                self.clients[client].done = true;
            }
        }
    }

    /// Disk faults injected on every node, by kind.
    pub fn disk_faults(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for node in &self.nodes {
            for (kind, n) in node.disk.fault_counts() {
                *total.entry(kind.to_string()).or_insert(0) += n;
            }
        }
        total
    }

    /// The highest index applied anywhere.
    pub fn committed_index(&self) -> LogIndex {
        self.invariants.committed_index()
    }
}

/// Bits of a request id that carry the operation id.
const OP_ID_MASK: u64 = (1 << 40) - 1;

/// A request id carries (client: 16 bits, operation: 40 bits, attempt: 8
/// bits), so a reply can be routed and matched without a lookup table.
fn make_req_id(client: usize, op_id: u64, attempt: u32) -> u64 {
    debug_assert!(client < (1 << 16) && attempt < 256);
    ((client as u64) << 48) | ((op_id & OP_ID_MASK) << 8) | u64::from(attempt)
}

fn split_req_id(req_id: u64) -> (usize, u64, u32) {
    (
        (req_id >> 48) as usize,
        (req_id >> 8) & OP_ID_MASK,
        (req_id & 0xff) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_round_trip() {
        let id = make_req_id(9, 123_456, 7);
        assert_eq!(split_req_id(id), (9, 123_456, 7));
    }
}
