//! The simulated world: replicas, clients, the network and the nemesis, driven
//! by one event queue in virtual time.

use crate::config::{Params, SimConfig};
use crate::disk::{DiskFaultMode, SimDisk};
use crate::invariants::{DIGEST_EVERY, Invariants};
use crate::network::{Fate, Network, Partition, names};
use crate::queue::{EventQueue, MS, Nanos};
use crate::rng::{Concern, SimRng};
use crate::script::Action;
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
use std::collections::{BTreeMap, VecDeque};

mod churn;
mod clients;
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
const DRAIN_LIMIT: Nanos = 30_000 * MS;

/// A run stops as a "message storm" when more than [`STORM_EVENTS`] events
/// fall within [`STORM_WINDOW`] of virtual time: a healthy 5-node run has
/// about 1,500 per 100 ms, so this is two orders of magnitude beyond, where
/// virtual time has all but stopped.
const STORM_EVENTS: u64 = 200_000;
/// See [`STORM_EVENTS`].
const STORM_WINDOW: Nanos = 100 * MS;

/// After the chaos, a healed cluster must elect a leader and finish every
/// operation in flight within this much virtual time (liveness).
pub const LIVENESS_BOUND: Nanos = 10_000 * MS;

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

/// Counters for the summary.
#[derive(Clone, Debug, Default)]
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
    /// Messages lost at random or to partitions.
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Replicas that stopped on an internal error.
    pub halts: u64,
    /// Replicas that stopped on a disk fault they detected (expected with
    /// disk faults on, never a violation by itself).
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
    /// Membership churn: what was asked, what completed, what was refused.
    pub churn: ChurnStats,
    /// Process pauses injected.
    pub pauses: u64,
    /// Crashes whose node was back before one network delay.
    pub fast_restarts: u64,
    /// Messages delayed far beyond the latency range (the heavy tail).
    pub long_delayed: u64,
    /// Writes: latencies, group commit, writes lost in flight.
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
    /// When a leader first emerged after the heal.
    leader_after_heal: Option<Nanos>,
    /// Liveness failures found after the heal.
    liveness: Vec<String>,
    /// Draws pauses and fast restarts.
    process_rng: SimRng,
    /// The answer to the last admin request (same step).
    admin_reply: Option<AdminReply>,
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
        .with_long_delays(params.long_delay_rate, params.long_delay_max_ms * MS);
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
            leader_after_heal: None,
            liveness: Vec::new(),
            process_rng: SimRng::for_concern(seed, Concern::Process),
            admin_reply: None,
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
                self.invariants.external("event storm", at, 0, detail);
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
                    self.stats.dropped += 1;
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
                    self.step(node, Input::Request(request));
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

    /// A clock jump on a random live node (see `jump_clock`).
    fn clock_jump(&mut self) {
        if self.chaos_over {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some())
            .collect();
        if !up.is_empty() {
            let node = up[self.clock_rng.index(up.len())];
            let ms = self.clock_rng.range(1, self.params.clock_jump_max_ms + 1) as i64;
            let ms = if self.clock_rng.chance(0.5) { ms } else { -ms };
            self.jump_clock(node, ms);
        }
        let every = self.params.clock_jump_every_ms * MS;
        let next = self.now + self.clock_rng.range(every / 2, every + every / 2);
        self.queue.push(next, Event::ClockJump);
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
        let mut config = Config::new(self.nodes[node].id, voters, seed);
        config.election_tick = self.params.election_ticks;
        config.heartbeat_tick = self.params.heartbeat_ticks;
        if self.config.lease_reads {
            // A lease of 4/5 of the election timeout: safe while no voter's
            // clock runs more than 25% faster than the leader's.
            config.lease_read_ticks = self.params.election_ticks * 4 / 5;
        }
        config
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
                    self.check_replica(node);
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
                    self.invariants_violation("recovery", id, format!("cannot recover: {e}"));
                }
            }
        }
    }

    fn invariants_violation(&mut self, what: &'static str, node: u64, detail: String) {
        self.invariants.external(what, self.now, node, detail);
    }

    /// Hands one input to a replica and carries out its effects.
    fn step(&mut self, node: usize, input: Input) {
        self.with_replica(node, |replica, effects| replica.handle(input, effects));
    }

    /// Runs `f` on a live replica and carries out the effects it pushed,
    /// then checks the replica (or takes it down if it failed). Returns
    /// what `f` returned, if the replica did not fail.
    fn with_replica<T>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut Replica, &mut Vec<Effect>) -> Result<T, ReplicaError>,
    ) -> Option<T> {
        let mut effects = std::mem::take(&mut self.effects);
        effects.clear();
        let slot = &mut self.nodes[node];
        let replica = slot.replica.as_mut().expect("step only live replicas");
        slot.snapshot_floor = replica.raft().snapshot_meta().index;
        let result = f(replica, &mut effects);
        let incarnation = self.nodes[node].incarnation;
        for effect in effects.drain(..) {
            // A write that fails stops the process (fail-stop): nothing
            // after it is carried out.
            if self.nodes[node].incarnation != incarnation {
                break;
            }
            self.carry_out(node, effect);
        }
        self.effects = effects;
        if self.nodes[node].incarnation != incarnation {
            return None;
        }
        match result {
            Ok(value) => {
                self.check_replica(node);
                Some(value)
            }
            Err(e) => {
                self.halt(node, e);
                None
            }
        }
    }

    /// Stops `node` on `e` (fail-stop) and schedules its restart. A disk
    /// failure is expected with disk faults on; anything else is a bug.
    fn halt(&mut self, node: usize, e: ReplicaError) {
        let id = self.nodes[node].id.0;
        self.trace(Actor::Node(id), TraceEvent::Halted(e.to_string()));
        self.mark(TimelineEvent::Halted {
            node: id,
            reason: e.to_string(),
        });
        if self.nodes[node].disk.mode() != DiskFaultMode::Off && e.is_disk_failure() {
            // Fail-stop on a disk error (a full disk, an I/O error): the
            // restart recovers from what the disk holds.
            self.stats.disk_halts += 1;
        } else {
            self.stats.halts += 1;
            self.invariants_violation("replica halted", id, e.to_string());
        }
        self.take_down(node);
        let at = self.now + self.params.downtime_max_ms * MS;
        self.queue.push(at, Event::Restart { node });
    }

    /// Plants the configured bug in a replica (tests only).
    #[cfg(feature = "planted-bugs")]
    fn plant(&self, replica: &mut Replica) {
        replica.plant(self.config.planted);
    }

    /// Without the `planted-bugs` feature nothing can be planted
    /// ([`World::new`] refuses a configuration that asks).
    #[cfg(not(feature = "planted-bugs"))]
    fn plant(&self, _replica: &mut Replica) {}

    fn check_replica(&mut self, node: usize) {
        let id = self.nodes[node].id.0;
        let replica = self.nodes[node].replica.as_ref().expect("checked live");
        let raft = replica.raft();
        let (commit, last) = (raft.commit_index(), raft.last_index());
        let applied = replica.kv().applied_index();
        let digest = (applied != self.nodes[node].applied && applied.is_multiple_of(DIGEST_EVERY))
            .then(|| replica.kv().digest());
        // The log starts, as far as the replica has asked of its disk, at
        // the latest compaction it issued; raft forgets those entries once
        // the write completes.
        let snapshot_index = replica.compacting_to();
        // Commit safety against the configuration in force at the leader
        // when it committed (joint: both majorities).
        let leader_commit = (commit > self.nodes[node].commit && raft.role() == raft::Role::Leader)
            .then(|| {
                (
                    raft.term_at(commit).unwrap_or_default(),
                    raft.membership().clone(),
                )
            });
        // The log stays bounded: at most `max(every, keep) + keep` applied
        // entries after the snapshot (see `SnapshotPolicy`).
        let applied_held = applied - snapshot_index.0;
        let log_entries = last.0 - snapshot_index.0;
        let bound = self.params.snapshot_policy().max_applied_entries();
        self.stats.max_applied_entries_held = self.stats.max_applied_entries_held.max(applied_held);
        self.stats.max_log_entries = self.stats.max_log_entries.max(log_entries);
        if applied_held > bound {
            self.invariants_violation(
                "log bounded",
                id,
                format!(
                    "the log holds {applied_held} applied entries after the snapshot at {snapshot_index}, more than the policy's {bound}"
                ),
            );
        }
        self.nodes[node].applied = applied;
        if let Some((term, membership)) = leader_commit {
            self.invariants
                .leader_committed(self.now, id, commit, term, &membership);
        }
        if commit != self.nodes[node].commit {
            self.nodes[node].commit = commit;
            self.trace(Actor::Node(id), TraceEvent::Committed { index: commit });
        }
        self.invariants.commit_index(self.now, id, commit, last);
        if let Some(digest) = digest {
            self.invariants.state_digest(self.now, id, applied, digest);
        }
    }

    fn carry_out(&mut self, node: usize, effect: Effect) {
        let id = self.nodes[node].id.0;
        match effect {
            Effect::Send(envelope) => {
                if let raft::MessageBody::AppendEntries {
                    entries,
                    prev_log_index,
                    ..
                } = &envelope.msg.body
                {
                    // §7: what a snapshot covers is gone from the log; a
                    // follower that needs it gets the snapshot. (A
                    // heartbeat after index 0, the empty prefix every log
                    // matches, reads nothing.)
                    let floor = self.nodes[node].snapshot_floor;
                    let heartbeat_at_zero = entries.is_empty() && prev_log_index.0 == 0;
                    if *prev_log_index < floor && !heartbeat_at_zero {
                        self.invariants_violation(
                            "nothing read below the snapshot",
                            id,
                            format!(
                                "sent an append after {prev_log_index}, below its snapshot at {floor}"
                            ),
                        );
                    }
                    if !entries.is_empty() {
                        let sent: Vec<EntryDigest> = entries.iter().map(EntryDigest::of).collect();
                        self.invariants.sent_entries(self.now, id, &sent);
                    }
                }
                self.invariants.answer_sent(self.now, id, &envelope.msg);
                let summary = MessageSummary::of(&envelope.msg);
                self.stats.messages += 1;
                self.trace(Actor::Node(id), TraceEvent::Sent(summary));
                let Some(to) = self.node_index(envelope.msg.to) else {
                    self.trace(
                        Actor::Node(id),
                        TraceEvent::Refused(format!("no node {}", envelope.msg.to)),
                    );
                    return;
                };
                match self.net.fate(node, to) {
                    Fate::Lost => {
                        self.stats.dropped += 1;
                        self.trace(
                            Actor::Node(id),
                            TraceEvent::Dropped(summary, DropReason::Loss),
                        );
                    }
                    Fate::Partitioned => {
                        self.stats.dropped += 1;
                        self.trace(
                            Actor::Node(id),
                            TraceEvent::Dropped(summary, DropReason::Partition),
                        );
                    }
                    Fate::Delivered(delays) => {
                        if delays.len() > 1 {
                            self.stats.duplicated += 1;
                            self.trace(Actor::Node(id), TraceEvent::Duplicated(summary));
                        }
                        self.stats.long_delayed += delays
                            .iter()
                            .filter(|&&d| crate::network::is_long_delay(d))
                            .count() as u64;
                        let (last, extra) = delays.split_last().expect("at least one delivery");
                        for delay in extra {
                            let envelope = envelope.clone();
                            self.queue
                                .push(self.now + delay, Event::Deliver { to, envelope });
                        }
                        self.queue
                            .push(self.now + last, Event::Deliver { to, envelope });
                    }
                }
            }
            Effect::Write(write) => self.issue_write(node, write),
            Effect::AdminReply(reply) => self.admin_reply = Some(reply),
            Effect::Reply(reply) => {
                let (client, _, _) = split_req_id(reply.req_id);
                if client < self.clients.len() {
                    let at = self.now + self.net.latency();
                    self.queue.push(at, Event::Reply { client, reply });
                }
            }
            Effect::Event(ReplicaEvent::SoftState(soft)) => {
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Role {
                        role: soft.role,
                        term: soft.term,
                        leader: soft.leader.map(|l| l.0),
                    },
                );
                self.invariants.soft_state(self.now, id, soft);
                if soft.role == raft::Role::Leader
                    && self.healed_at.is_some()
                    && self.leader_after_heal.is_none()
                {
                    self.leader_after_heal = Some(self.now);
                }
                if soft.role == raft::Role::Leader
                    && let Some(replica) = &self.nodes[node].replica
                    && !replica.raft().is_promotable()
                {
                    // §4.1: only a voter leads (of the configuration in
                    // force, or of the one before while the latest is not
                    // known committed: see raft's membership module).
                    self.invariants_violation(
                        "leader is a voter",
                        id,
                        format!(
                            "leads {} but is not a voter of {}",
                            soft.term,
                            replica.raft().membership()
                        ),
                    );
                }
                if soft.role == raft::Role::Leader {
                    if self.nodes[node].leading != Some(soft.term.0) {
                        self.stop_leading(node);
                        self.nodes[node].leading = Some(soft.term.0);
                        self.mark(TimelineEvent::Leader {
                            node: id,
                            term: soft.term.0,
                        });
                    }
                } else {
                    self.stop_leading(node);
                }
            }
            Effect::Event(ReplicaEvent::Persisted {
                hard_state,
                entries,
            }) => {
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Persisted {
                        term: hard_state.map(|h| h.term),
                        vote: hard_state.and_then(|h| h.vote.map(|v| v.0)),
                        first: entries.first().map(|e| e.index),
                        last: entries.last().map(|e| e.index),
                    },
                );
                if let Some(hs) = hard_state {
                    self.invariants.persisted_hard_state(id, hs);
                }
                self.invariants.persisted(self.now, id, &entries);
            }
            Effect::Event(ReplicaEvent::Recovered {
                hard_state,
                snapshot,
                entries,
                truncated_tail_bytes,
            }) => {
                if truncated_tail_bytes > 0 {
                    self.trace(
                        Actor::Node(id),
                        TraceEvent::Fault(format!(
                            "recovery cut a torn tail of {truncated_tail_bytes} bytes"
                        )),
                    );
                }
                if snapshot.is_some() {
                    self.stats.recoveries_from_snapshot += 1;
                    self.stats.recoveries_from_snapshot_only += u64::from(entries.is_empty());
                }
                self.invariants
                    .recovered(self.now, id, hard_state, snapshot, &entries);
            }
            Effect::Event(ReplicaEvent::SnapshotTaken {
                snapshot,
                log_entries,
            }) => {
                self.stats.snapshots_taken += 1;
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Snapshot {
                        installed: false,
                        index: snapshot.index,
                        term: snapshot.term,
                        log_entries,
                    },
                );
                self.invariants.snapshot_taken(self.now, id, snapshot);
            }
            Effect::Event(ReplicaEvent::SnapshotInstalled {
                snapshot,
                log_entries,
            }) => {
                self.stats.snapshots_installed += 1;
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Snapshot {
                        installed: true,
                        index: snapshot.index,
                        term: snapshot.term,
                        log_entries,
                    },
                );
                self.invariants.snapshot_installed(self.now, id, snapshot);
            }
            Effect::Event(ReplicaEvent::StateMachineReplaced { snapshot }) => {
                self.invariants
                    .state_machine_replaced(self.now, id, snapshot);
            }
            Effect::Event(ReplicaEvent::Applied(entry)) => {
                self.trace(
                    Actor::Node(id),
                    TraceEvent::Applied {
                        index: entry.index,
                        term: entry.term,
                    },
                );
                self.invariants.applied(self.now, id, entry);
            }
            Effect::Event(ReplicaEvent::MembershipApplied { index, membership }) => {
                self.membership_applied(id, index, membership);
            }
            Effect::Event(ReplicaEvent::Refused(why)) => {
                self.trace(Actor::Node(id), TraceEvent::Refused(why.to_string()));
            }
        }
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

    fn partition(&mut self) {
        if self.chaos_over {
            return;
        }
        let n = self.nodes.len();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.nemesis.index(i + 1);
            order.swap(i, j);
        }
        let shape = self.nemesis.range(0, 5);
        let partition = match shape {
            0 => {
                let target = self.leader_index().unwrap_or(order[0]);
                Partition::split(n, &[target], format!("isolate leader n{}", target + 1))
            }
            1 => Partition::split(n, &[order[0]], format!("isolate n{}", order[0] + 1)),
            2 => {
                let minority = &order[..n.div_ceil(2) - 1];
                let desc = format!(
                    "split {} | {}",
                    names(minority),
                    names(&order[minority.len()..])
                );
                Partition::split(n, minority, desc)
            }
            3 => Partition::bridge(n, &order),
            _ => Partition::one_way_out(n, self.leader_index().unwrap_or(order[0])),
        };
        self.apply_partition(partition);
        let lasts = self
            .nemesis
            .range(200 * MS, self.params.partition_max_ms * MS + 1);
        self.queue.push(self.now + lasts, Event::Heal);
        let every = self.params.partition_every_ms * MS;
        let next = self.now + lasts + self.nemesis.range(every / 2, every + every / 2);
        self.queue.push(next, Event::Partition);
    }

    /// Puts `partition` in force (replacing any other).
    fn apply_partition(&mut self, partition: Partition) {
        self.stats.partitions += 1;
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault(format!("partition: {partition}")),
        );
        let cut = partition
            .cut_links()
            .into_iter()
            .map(|(from, to)| (from as u64 + 1, to as u64 + 1))
            .collect();
        self.mark(TimelineEvent::Partitioned {
            shape: partition.shape.clone(),
            cut,
        });
        self.net.partition(partition);
    }

    fn heal(&mut self) {
        if self.net.current_partition().is_active() {
            self.trace(Actor::Nemesis, TraceEvent::Fault("heal network".into()));
            self.net.partition(Partition::none(self.nodes.len()));
            self.mark(TimelineEvent::Healed);
        }
    }

    fn crash(&mut self) {
        if self.chaos_over {
            return;
        }
        let voters = self.current_voters();
        let n = voters.len();
        let down = voters
            .iter()
            .filter(|&&i| self.nodes[i].replica.is_none())
            .count();
        let every = self.params.crash_every_ms * MS;
        // Keep a majority of the voters up during the chaos, so the run
        // makes progress; safety does not depend on it.
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some())
            .collect();
        if down < n.saturating_sub(1) / 2 && !up.is_empty() {
            let victim = match self.leader_index() {
                Some(leader) if self.nemesis.chance(0.4) => leader,
                _ => up[self.nemesis.index(up.len())],
            };
            self.stats.crashes += 1;
            self.trace(
                Actor::Nemesis,
                TraceEvent::Fault(format!("crash n{}", victim + 1)),
            );
            self.take_down(victim);
            self.mark(TimelineEvent::Crashed {
                node: victim as u64 + 1,
            });
            let downtime = self
                .nemesis
                .range(10 * MS, self.params.downtime_max_ms * MS + 1);
            self.queue
                .push(self.now + downtime, Event::Restart { node: victim });
        }
        let next = self.now + self.nemesis.range(every / 2, every + every / 2);
        self.queue.push(next, Event::Crash);
    }

    /// Power loss: the process and every unsynced write are gone.
    fn take_down(&mut self, node: usize) {
        self.stop_leading(node);
        self.drop_writes_in_flight(node);
        let slot = &mut self.nodes[node];
        slot.replica = None;
        slot.storage = None;
        slot.incarnation += 1;
        slot.paused_until = None;
        slot.held.clear();
        slot.missed_ticks = 0;
        slot.disk.crash();
    }

    fn restart(&mut self, node: usize) {
        let slot = &self.nodes[node];
        if slot.replica.is_some()
            || slot.failed.is_some()
            || slot.dormant
            || slot.retired
            || slot.gone_for_good
        {
            return;
        }
        let id = self.nodes[node].id.0;
        self.trace(Actor::Nemesis, TraceEvent::Fault(format!("restart n{id}")));
        self.invariants.restarted(id);
        self.mark(TimelineEvent::Restarted { node: id });
        self.start_node(node);
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
        for node in 0..self.nodes.len() {
            self.restart(node);
        }
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
