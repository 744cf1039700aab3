//! What a run is asked to do ([`SimConfig`]) and what it drew from its seed
//! ([`Params`]).

use crate::disk::DiskFaultMode;
use crate::families::Families;
use crate::queue::{MS, Nanos};
use crate::rng::{Concern, SimRng};
use crate::script::ScriptedFault;
use serde::Serialize;

/// The smallest cluster the simulator runs.
pub const MIN_NODES: usize = 3;
/// The largest cluster the simulator runs.
pub const MAX_NODES: usize = 7;
/// The most client processes a run may have.
pub const MAX_CLIENTS: usize = 256;
/// The longest workload a run may have (a bound on memory and time).
pub const MAX_DURATION: Nanos = 3_600_000 * MS;

/// What the user asks for. Everything not here is drawn from the seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimConfig {
    /// The root seed: the whole run is a function of it and of this config.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Concurrent client processes.
    pub clients: usize,
    /// How long clients issue new operations (virtual time).
    pub duration: Nanos,
    /// Whether the nemesis injects faults at all (off: a clean world).
    pub faults: bool,
    /// The fault families a run may use (see [`Families`]).
    pub allowed: Families,
    /// Swarm testing: each allowed family is drawn on or off per seed
    /// (each off about half the time). Off: every allowed family is on.
    pub swarm: bool,
    /// How hostile the disks are, when the disk family is on (`On` or
    /// `NoLimits`; `Off` keeps the disk family off).
    pub disk_faults: DiskFaultMode,
    /// When replicas snapshot and compact their logs.
    pub snapshots: Snapshots,
    /// Faults at fixed times, besides those drawn from the seed.
    pub script: Vec<ScriptedFault>,
    /// Lease-based reads (opt-in): a leader serves reads without a quorum
    /// round while its lease holds. Safe only within the clock drift bound
    /// (see `raft::Config::lease_read_ticks`).
    pub lease_reads: bool,
    /// Per-node clock drift set by the run, in parts per million, for the
    /// nodes listed (others draw theirs when the clock family is on).
    pub clock_drift_ppm: Vec<(u64, i64)>,
    /// After the chaos, check liveness: heal a quorum, and require a leader
    /// and every pending operation to complete within a bound.
    pub liveness: bool,
    /// What clients ask for.
    pub workload: crate::workload::WorkloadSpec,
    /// Rates set by the run rather than drawn (a scenario's).
    pub overrides: ParamOverrides,
    /// The scenario this configuration came from, if any (for the replay
    /// command).
    pub scenario: Option<String>,
    /// On resume from a pause, deliver the missed ticks before the queued
    /// messages and requests, as a real executor's timer does (true, the
    /// default). What keeps a paused leader from serving a stale lease read
    /// when it resumes: its lease, counted in its own ticks, has run out
    /// before any queued read reaches it. False only in the test that shows
    /// what goes wrong otherwise.
    pub resume_ticks_first: bool,
    /// Draw Raft's own settings per seed (pre-vote, check-quorum, lease
    /// reads, timeouts, append and in-flight limits, snapshot chunks); off:
    /// the raft crate's defaults with the simulator's timeouts.
    pub vary_raft: bool,
    /// A bug planted in every replica (tests only: needs the
    /// `planted-bugs` feature; see `replica::PlantedBug`).
    pub planted: Option<replica::PlantedBug>,
}

/// Parameters a scenario sets instead of drawing them. Each applies only
/// when its family is on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamOverrides {
    /// Probability that a message is lost.
    pub drop_rate: Option<f64>,
    /// Probability that a message is delivered twice.
    pub duplicate_rate: Option<f64>,
    /// Mean time between partitions.
    pub partition_every_ms: Option<u64>,
    /// Longest partition.
    pub partition_max_ms: Option<u64>,
    /// Mean time between crashes.
    pub crash_every_ms: Option<u64>,
    /// Longest downtime after a crash.
    pub downtime_max_ms: Option<u64>,
    /// Mean time between membership steps.
    pub churn_every_ms: Option<u64>,
    /// Mean time between clock jumps.
    pub clock_jump_every_ms: Option<u64>,
    /// Largest clock jump.
    pub clock_jump_max_ms: Option<u64>,
    /// Longest pause between a client's operations.
    pub think_max_ms: Option<u64>,
    /// How long a client waits for a reply before trying another node.
    pub request_timeout_ms: Option<u64>,
    /// A disk's typical write latency.
    pub disk_latency_us: Option<u64>,
    /// Slow disks (node ids), when the slow-disks family is on.
    pub slow_disks: Option<Vec<u64>>,
    /// How many times slower a slow disk is.
    pub slow_disk_factor: Option<u64>,
    /// Mean time between process pauses.
    pub pause_every_ms: Option<u64>,
    /// Longest pause.
    pub pause_max_ms: Option<u64>,
    /// Share of messages delayed far beyond the latency range.
    pub long_delay_rate: Option<f64>,
    /// Longest such delay.
    pub long_delay_max_ms: Option<u64>,
    /// Mean time between fast restarts.
    pub fast_restart_every_ms: Option<u64>,
}

impl Eq for ParamOverrides {}

/// Spare node slots a run with churn keeps for nodes it adds (ids after the
/// founding members').
pub const SPARE_NODES: usize = 4;

/// When replicas snapshot their state machines and compact their logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshots {
    /// Thresholds drawn from the seed, often small, so that most runs both
    /// take snapshots and send them to lagging followers.
    #[default]
    Drawn,
    /// Never: logs only grow.
    Off,
    /// A snapshot every `every` applied entries, `keep` entries kept after it.
    Fixed {
        /// Applied entries between snapshots.
        every: u64,
        /// Entries kept in the log after a snapshot.
        keep: u64,
    },
}

impl std::str::FromStr for Snapshots {
    type Err = String;

    /// `drawn`, `off`, or `EVERY:KEEP` (e.g. `100:20`).
    fn from_str(s: &str) -> Result<Snapshots, String> {
        match s {
            "drawn" => Ok(Snapshots::Drawn),
            "off" => Ok(Snapshots::Off),
            _ => {
                let bad = || format!("expected drawn, off or EVERY:KEEP (like 100:20), got {s:?}");
                let (every, keep) = s.split_once(':').ok_or_else(bad)?;
                let every: u64 = every.parse().map_err(|_| bad())?;
                let keep: u64 = keep.parse().map_err(|_| bad())?;
                if every == 0 {
                    return Err("EVERY must be positive (use off for no snapshots)".into());
                }
                Ok(Snapshots::Fixed { every, keep })
            }
        }
    }
}

impl SimConfig {
    /// The defaults of `cargo xtask simulate` for `seed`.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 5,
            clients: 10,
            duration: 30_000 * MS,
            faults: true,
            allowed: Families::ALL,
            swarm: true,
            disk_faults: DiskFaultMode::default(),
            snapshots: Snapshots::default(),
            script: Vec::new(),
            lease_reads: false,
            clock_drift_ppm: Vec::new(),
            liveness: true,
            workload: crate::workload::WorkloadSpec::default(),
            overrides: ParamOverrides::default(),
            scenario: None,
            resume_ticks_first: true,
            vary_raft: true,
            planted: None,
        }
    }

    /// Refuses configurations the simulator cannot run.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_NODES..=MAX_NODES).contains(&self.nodes) {
            return Err(format!(
                "--nodes must be {MIN_NODES} to {MAX_NODES}, got {}",
                self.nodes
            ));
        }
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(format!(
                "--clients must be 1 to {MAX_CLIENTS}, got {}",
                self.clients
            ));
        }
        for fault in &self.script {
            fault.validate(self.nodes)?;
        }
        for &(node, ppm) in &self.clock_drift_ppm {
            if node == 0 || node > self.nodes as u64 {
                return Err(format!("a clock drift names n{node}, outside the cluster"));
            }
            if ppm.abs() >= MAX_DRIFT_PPM {
                return Err(format!(
                    "a clock drift of {ppm} ppm is beyond +-{MAX_DRIFT_PPM}"
                ));
            }
        }
        self.workload.validate()?;
        if self.planted.is_some() && !cfg!(feature = "planted-bugs") {
            return Err("planting a bug needs the planted-bugs feature (tests only)".into());
        }
        if let Some(slow) = &self.overrides.slow_disks
            && let Some(bad) = slow.iter().find(|&&n| n == 0 || n > self.nodes as u64)
        {
            return Err(format!("slow_disks names n{bad}, outside the cluster"));
        }
        if let Some(rate) = self.overrides.long_delay_rate
            && !(0.0..=0.5).contains(&rate)
        {
            return Err(format!("a long-delay rate of {rate} is outside 0 to 0.5"));
        }
        for rate in [self.overrides.drop_rate, self.overrides.duplicate_rate]
            .into_iter()
            .flatten()
        {
            if !(0.0..=0.5).contains(&rate) {
                return Err(format!("a message rate of {rate} is outside 0 to 0.5"));
            }
        }
        if self.duration == 0 || self.duration > MAX_DURATION {
            return Err(format!(
                "--duration must be positive and at most {}s",
                MAX_DURATION / (1000 * MS)
            ));
        }
        Ok(())
    }
}

/// Parameters drawn from the seed: how hostile this run's world is. Printed
/// before the run and included in the JSON summary, so a reader of a failure
/// knows what the world was like.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    /// Virtual time between two ticks of a node's raft clock.
    pub tick_ms: u64,
    /// Raft's minimum election timeout, in ticks.
    pub election_ticks: u32,
    /// Raft's heartbeat interval, in ticks.
    pub heartbeat_ticks: u32,
    /// Shortest one-way message latency.
    pub latency_min_us: u64,
    /// Longest one-way message latency (wide ranges reorder messages).
    pub latency_max_us: u64,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Probability that a message is delivered twice.
    pub duplicate_rate: f64,
    /// Mean virtual time between two partitions (0: no partitions).
    pub partition_every_ms: u64,
    /// How long a partition lasts, at most.
    pub partition_max_ms: u64,
    /// Mean virtual time between two crashes (0: no crashes).
    pub crash_every_ms: u64,
    /// How long a crashed node stays down, at most.
    pub downtime_max_ms: u64,
    /// How many keys clients use.
    pub keys: usize,
    /// How long a client waits for a reply before trying another node.
    pub request_timeout_ms: u64,
    /// How long a client keeps retrying one operation before it gives up.
    pub op_deadline_ms: u64,
    /// The longest pause between a client's operations.
    pub think_max_ms: u64,
    /// Replicas take a snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Entries a replica keeps in its log after a snapshot.
    pub snapshot_keep: u64,
    /// Mean virtual time between two membership steps (0: no churn).
    pub churn_every_ms: u64,
    /// The fault families this run has (drawn per seed under swarm).
    pub families: Families,
    /// The disk fault mode in force (off unless the disk family is on).
    pub disk_faults: DiskFaultMode,
    /// Each node slot's clock drift, in parts per million (positive: the
    /// node's clock runs fast, its ticks come sooner).
    pub clock_drift_ppm: Vec<i64>,
    /// Mean virtual time between two clock jumps on some node (0: none).
    pub clock_jump_every_ms: u64,
    /// The largest clock jump, forwards or backwards.
    pub clock_jump_max_ms: u64,
    /// A disk's typical time to carry out a write (write and sync).
    pub disk_latency_us: u64,
    /// The share of writes that hit the heavy tail, and how many times the
    /// typical latency they take at most.
    pub disk_tail_rate: f64,
    /// See [`Params::disk_tail_rate`].
    pub disk_tail_factor: u64,
    /// How many writes a replica hands its disk before the rest waits for
    /// one to complete (group commit gathers what waits).
    pub writes_in_flight: usize,
    /// Slow disks (node ids): every write there takes
    /// [`Params::slow_disk_factor`] times longer (empty unless the
    /// slow-disks family is on).
    pub slow_disks: Vec<u64>,
    /// See [`Params::slow_disks`].
    pub slow_disk_factor: u64,
    /// The share of a slow disk's writes that stall, for up to
    /// [`Params::disk_stall_max_ms`].
    pub disk_stall_rate: f64,
    /// See [`Params::disk_stall_rate`].
    pub disk_stall_max_ms: u64,
    /// Mean virtual time between two process pauses (0: none).
    pub pause_every_ms: u64,
    /// The longest pause (several election timeouts).
    pub pause_max_ms: u64,
    /// The share of messages delayed far beyond the latency range (0:
    /// none), and the longest such delay.
    pub long_delay_rate: f64,
    /// See [`Params::long_delay_rate`].
    pub long_delay_max_ms: u64,
    /// Mean virtual time between two fast restarts (0: none): a crash
    /// whose node is back before one network delay.
    pub fast_restart_every_ms: u64,
    /// Hold and replay: the share of the messages a partition cuts that it
    /// holds and releases later instead of dropping (0: none).
    pub hold_share: f64,
    /// The longest a held message is held (at least one second).
    pub hold_max_ms: u64,
    /// Raft's own settings for this run.
    pub raft: RaftKnobs,
}

/// Raft's own configuration, drawn per seed (swarm over the protocol's
/// settings: a bug that one setting masks shows under another, e.g. a
/// broken vote check behind pre-vote's identical check, or a broken §5.4.2
/// commit rule that never shows while a new leader's first entry always
/// travels with the older entries it commits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RaftKnobs {
    /// Pre-vote (§9.6).
    pub pre_vote: bool,
    /// Check-quorum: a leader steps down without a quorum's contact, and
    /// voters honour a leader's lease (§6.2, §4.2.3).
    pub check_quorum: bool,
    /// Lease reads (§6.4.1); only with check-quorum (the config refuses
    /// them without it).
    pub lease_reads: bool,
    /// Entries per AppendEntries, at most.
    pub max_entries_per_append: usize,
    /// Bytes per AppendEntries, at most (one entry always fits).
    pub max_bytes_per_append: usize,
    /// AppendEntries in flight per follower.
    pub max_inflight_appends: usize,
    /// Bytes per InstallSnapshot chunk.
    pub max_snapshot_chunk_bytes: usize,
}

impl RaftKnobs {
    /// The raft crate's defaults (lease reads off).
    pub fn defaults() -> RaftKnobs {
        RaftKnobs {
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            max_entries_per_append: raft::DEFAULT_MAX_ENTRIES_PER_APPEND,
            max_bytes_per_append: raft::DEFAULT_MAX_BYTES_PER_APPEND,
            max_inflight_appends: raft::DEFAULT_MAX_INFLIGHT_APPENDS,
            max_snapshot_chunk_bytes: raft::DEFAULT_MAX_SNAPSHOT_CHUNK_BYTES,
        }
    }
}

/// The shortest time a held message is held (see [`Families::holds`]):
/// longer than any election timeout the run draws, so that what it carries
/// arrives in a later term.
pub const HOLD_MIN_MS: u64 = 1_000;

/// The largest clock drift a run may set (90%: a clock at 10% speed, or
/// 1.9 times as fast).
pub const MAX_DRIFT_PPM: i64 = 900_000;
/// The largest drift the clock family draws (5%): well inside the lease
/// read bound, so that swarm runs with lease reads stay safe.
pub const DRAWN_DRIFT_PPM: u64 = 50_000;

impl Params {
    /// Node slots: the founding members, and spares for nodes churn adds.
    pub fn slots(&self, config: &SimConfig) -> usize {
        config.nodes + if self.families.churn { SPARE_NODES } else { 0 }
    }

    /// The raft configuration of node `id` under this run's settings.
    pub fn raft_config(
        &self,
        id: raft::NodeId,
        voters: Vec<raft::NodeId>,
        seed: u64,
    ) -> raft::Config {
        let mut config = raft::Config::new(id, voters, seed);
        config.election_tick = self.election_ticks;
        config.heartbeat_tick = self.heartbeat_ticks;
        let knobs = &self.raft;
        config.pre_vote = knobs.pre_vote;
        config.check_quorum = knobs.check_quorum;
        config.max_entries_per_append = knobs.max_entries_per_append;
        config.max_bytes_per_append = knobs.max_bytes_per_append;
        config.max_inflight_appends = knobs.max_inflight_appends;
        config.max_snapshot_chunk_bytes = knobs.max_snapshot_chunk_bytes;
        config.lease_read_ticks = self.lease_read_ticks();
        config
    }

    /// The lease reads' length in ticks, 0 when lease reads are off: 4/5 of
    /// the election timeout, safe while no voter's clock runs more than 25%
    /// faster than the leader's.
    pub fn lease_read_ticks(&self) -> u32 {
        if self.raft.lease_reads {
            self.election_ticks * 4 / 5
        } else {
            0
        }
    }

    /// The replicas' snapshot policy.
    pub fn snapshot_policy(&self) -> replica::SnapshotPolicy {
        replica::SnapshotPolicy {
            every: self.snapshot_every,
            keep: self.snapshot_keep,
        }
    }
}

/// Snapshot intervals a seed draws from: mostly small, so that runs of a
/// few thousand operations compact many times and lagging followers need
/// InstallSnapshot, sometimes the size a real node would use.
const SNAPSHOT_EVERY_CHOICES: [u64; 8] = [3, 5, 8, 16, 32, 64, 128, 1024];
/// Typical disk latencies a seed draws from (µs): NVMe to slow volumes.
const DISK_LATENCY_CHOICES_US: [u64; 6] = [20, 50, 100, 300, 1_000, 2_000];
/// Writes a replica may have in flight: mostly one (classic group commit),
/// sometimes several, so that completions in order are exercised.
const WRITES_IN_FLIGHT_CHOICES: [usize; 5] = [1, 1, 2, 4, 8];
/// Entries kept after a snapshot, drawn the same way (0: a follower one
/// entry behind already needs the snapshot).
const SNAPSHOT_KEEP_CHOICES: [u64; 5] = [0, 1, 4, 16, 64];

impl Params {
    /// Draws the parameters for `config`'s seed.
    pub fn draw(config: &SimConfig) -> Params {
        let mut rng = SimRng::for_concern(config.seed, Concern::Params);
        let latency_min_us = rng.range(100, 2_000);
        let latency_max_us = latency_min_us + rng.range(500, 15_000);
        let mut params = Params {
            tick_ms: 10,
            election_ticks: 15,
            heartbeat_ticks: 3,
            latency_min_us,
            latency_max_us,
            drop_rate: rng.range(0, 50) as f64 / 1000.0,
            duplicate_rate: rng.range(0, 30) as f64 / 1000.0,
            partition_every_ms: rng.range(1_000, 6_000),
            partition_max_ms: rng.range(500, 4_000),
            crash_every_ms: rng.range(1_000, 8_000),
            downtime_max_ms: rng.range(100, 3_000),
            keys: rng.range(3, 8) as usize,
            // Timeouts shorter than an election make clients hop between
            // nodes mid-election; short deadlines leave outcomes unknown.
            // Both stress exactly-once sessions and the checker.
            request_timeout_ms: rng.range(50, 600),
            op_deadline_ms: rng.range(1_000, 5_000),
            think_max_ms: rng.range(0, 40),
            // Drawn last, so that adding them left the other draws as
            // they were.
            snapshot_every: SNAPSHOT_EVERY_CHOICES
                [rng.range(0, SNAPSHOT_EVERY_CHOICES.len() as u64) as usize],
            snapshot_keep: SNAPSHOT_KEEP_CHOICES
                [rng.range(0, SNAPSHOT_KEEP_CHOICES.len() as u64) as usize],
            churn_every_ms: rng.range(800, 4_000),
            families: Families::NONE,
            disk_faults: DiskFaultMode::Off,
            clock_drift_ppm: Vec::new(),
            clock_jump_every_ms: 0,
            clock_jump_max_ms: 0,
            disk_latency_us: 0,
            disk_tail_rate: 0.0,
            disk_tail_factor: 1,
            writes_in_flight: 1,
            slow_disks: Vec::new(),
            slow_disk_factor: 1,
            disk_stall_rate: 0.0,
            disk_stall_max_ms: 0,
            pause_every_ms: 0,
            pause_max_ms: 0,
            long_delay_rate: 0.0,
            long_delay_max_ms: 0,
            hold_share: 0.0,
            hold_max_ms: 0,
            fast_restart_every_ms: 0,
            raft: RaftKnobs::defaults(),
        };
        // Drawn last, so that adding them left the other draws as they
        // were: which families this seed has (swarm), and the clocks.
        let drawn = Families {
            network: rng.chance(0.5),
            partitions: rng.chance(0.5),
            crashes: rng.chance(0.5),
            disk: rng.chance(0.5),
            churn: rng.chance(0.5),
            clocks: rng.chance(0.5),
            ..Families::NONE
        };
        let slots = config.nodes + SPARE_NODES;
        let drifts: Vec<i64> = (0..slots)
            .map(|_| rng.range(0, 2 * DRAWN_DRIFT_PPM + 1) as i64 - DRAWN_DRIFT_PPM as i64)
            .collect();
        params.clock_jump_every_ms = rng.range(2_000, 10_000);
        params.clock_jump_max_ms = rng.range(10, 500);
        // Asynchronous storage and the families that came with it: drawn
        // after everything above, so that those draws stay as they were.
        let later = Families {
            pauses: rng.chance(0.5),
            slow_disks: rng.chance(0.5),
            delays: rng.chance(0.5),
            fast_restarts: rng.chance(0.5),
            ..Families::NONE
        };
        let drawn = Families {
            pauses: later.pauses,
            slow_disks: later.slow_disks,
            delays: later.delays,
            fast_restarts: later.fast_restarts,
            ..drawn
        };
        // Disks always take time: a typical latency from a fast NVMe sync
        // (20 µs) to a slow cloud volume (2 ms), and a heavy tail.
        params.disk_latency_us =
            DISK_LATENCY_CHOICES_US[rng.range(0, DISK_LATENCY_CHOICES_US.len() as u64) as usize];
        params.disk_tail_rate = rng.range(5, 50) as f64 / 1000.0;
        params.disk_tail_factor = rng.range(5, 50);
        params.writes_in_flight =
            WRITES_IN_FLIGHT_CHOICES[rng.range(0, WRITES_IN_FLIGHT_CHOICES.len() as u64) as usize];
        let slow_count = 1 + rng.range(0, 2) as usize;
        let slow_disks: Vec<u64> = (0..slow_count)
            .map(|_| rng.range(1, config.nodes as u64 + 1))
            .collect();
        params.slow_disk_factor = rng.range(10, 101);
        params.disk_stall_rate = rng.range(1, 20) as f64 / 1000.0;
        params.disk_stall_max_ms = rng.range(100, 1_001);
        let election_ms = u64::from(params.election_ticks) * params.tick_ms;
        params.pause_every_ms = rng.range(1_500, 8_000);
        params.pause_max_ms = rng.range(election_ms, 5 * election_ms + 1);
        params.long_delay_rate = rng.range(1, 30) as f64 / 1000.0;
        params.long_delay_max_ms = rng.range(500, 3_001);
        params.fast_restart_every_ms = rng.range(1_500, 8_000);
        // Raft's own settings: drawn after everything above. Every
        // combination drawn here is one the raft config accepts.
        let election_ticks = rng.range(8, 31) as u32;
        let heartbeat_ticks = rng.range(1, u64::from(election_ticks / 3).max(1) + 1) as u32;
        let check_quorum = rng.chance(0.7);
        let knobs = RaftKnobs {
            pre_vote: rng.chance(0.7),
            check_quorum,
            lease_reads: check_quorum && rng.chance(0.3),
            max_entries_per_append: [1, 4, 64][rng.range(0, 3) as usize],
            // Never below the largest command (the replica refuses such a
            // config): one entry per message comes from the entry limit.
            max_bytes_per_append: [kv::MAX_COMMAND_BYTES, 256 << 10, 1 << 20]
                [rng.range(0, 3) as usize],
            max_inflight_appends: [1, 2, 8, 64][rng.range(0, 4) as usize],
            max_snapshot_chunk_bytes: [256, 4 << 10, 64 << 10][rng.range(0, 3) as usize],
        };
        // Hold and replay (issue 20): drawn after everything above.
        let holds_drawn = rng.chance(0.5);
        params.hold_share = rng.range(100, 1_001) as f64 / 1000.0;
        params.hold_max_ms = rng.range(HOLD_MIN_MS, 8_001);
        let drawn = Families {
            holds: holds_drawn,
            ..drawn
        };
        if config.vary_raft {
            params.election_ticks = election_ticks;
            params.heartbeat_ticks = heartbeat_ticks;
            params.raft = knobs;
        }
        if config.lease_reads {
            // Asked for: on, with what it needs.
            params.raft.lease_reads = true;
            params.raft.check_quorum = true;
        }
        let mut families = if !config.faults {
            Families::NONE
        } else if config.swarm {
            config.allowed.and(drawn)
        } else {
            config.allowed
        };
        if config.disk_faults == DiskFaultMode::Off {
            families.disk = false;
        }
        params.families = families;
        if !families.network {
            (params.drop_rate, params.duplicate_rate) = (0.0, 0.0);
        }
        if !families.partitions {
            params.partition_every_ms = 0;
        }
        if !families.crashes {
            params.crash_every_ms = 0;
        }
        params.disk_faults = if families.disk {
            config.disk_faults
        } else {
            DiskFaultMode::Off
        };
        if !families.churn {
            params.churn_every_ms = 0;
        }
        params.clock_drift_ppm = if families.clocks {
            drifts
        } else {
            vec![0; slots]
        };
        if !families.clocks {
            params.clock_jump_every_ms = 0;
        }
        if families.slow_disks {
            let mut slow = slow_disks;
            slow.sort_unstable();
            slow.dedup();
            params.slow_disks = slow;
        } else {
            (params.slow_disk_factor, params.disk_stall_rate) = (1, 0.0);
        }
        if !families.pauses {
            params.pause_every_ms = 0;
        }
        if !families.delays {
            params.long_delay_rate = 0.0;
        }
        if !families.fast_restarts {
            params.fast_restart_every_ms = 0;
        }
        if !families.holds {
            params.hold_share = 0.0;
        }
        for &(node, ppm) in &config.clock_drift_ppm {
            params.clock_drift_ppm[node as usize - 1] = ppm;
        }
        if let Some(keys) = config.workload.keys {
            params.keys = keys;
        }
        let o = &config.overrides;
        let set = |value: &mut u64, over: Option<u64>, on: bool| {
            if let (Some(v), true) = (over, on) {
                *value = v;
            }
        };
        if families.network {
            params.drop_rate = o.drop_rate.unwrap_or(params.drop_rate);
            params.duplicate_rate = o.duplicate_rate.unwrap_or(params.duplicate_rate);
        }
        set(
            &mut params.partition_every_ms,
            o.partition_every_ms,
            families.partitions,
        );
        set(
            &mut params.partition_max_ms,
            o.partition_max_ms,
            families.partitions,
        );
        set(
            &mut params.crash_every_ms,
            o.crash_every_ms,
            families.crashes,
        );
        set(&mut params.downtime_max_ms, o.downtime_max_ms, true);
        set(&mut params.churn_every_ms, o.churn_every_ms, families.churn);
        set(
            &mut params.clock_jump_every_ms,
            o.clock_jump_every_ms,
            families.clocks,
        );
        set(
            &mut params.clock_jump_max_ms,
            o.clock_jump_max_ms,
            families.clocks,
        );
        set(&mut params.think_max_ms, o.think_max_ms, true);
        set(&mut params.disk_latency_us, o.disk_latency_us, true);
        if families.slow_disks {
            if let Some(slow) = &o.slow_disks {
                params.slow_disks = slow.clone();
            }
            set(&mut params.slow_disk_factor, o.slow_disk_factor, true);
        }
        set(
            &mut params.pause_every_ms,
            o.pause_every_ms,
            families.pauses,
        );
        set(&mut params.pause_max_ms, o.pause_max_ms, families.pauses);
        if families.delays {
            params.long_delay_rate = o.long_delay_rate.unwrap_or(params.long_delay_rate);
        }
        set(
            &mut params.long_delay_max_ms,
            o.long_delay_max_ms,
            families.delays,
        );
        set(
            &mut params.fast_restart_every_ms,
            o.fast_restart_every_ms,
            families.fast_restarts,
        );
        set(&mut params.request_timeout_ms, o.request_timeout_ms, true);
        match config.snapshots {
            Snapshots::Drawn => {}
            Snapshots::Off => (params.snapshot_every, params.snapshot_keep) = (0, 0),
            Snapshots::Fixed { every, keep } => {
                (params.snapshot_every, params.snapshot_keep) = (every, keep)
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drawn_raft_configuration_is_one_raft_and_the_replica_accept() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..2_000 {
            let p = Params::draw(&SimConfig::new(seed));
            let k = &p.raft;
            let c = p.raft_config(raft::NodeId(1), vec![raft::NodeId(1)], seed);
            assert_eq!(c.validate(), Ok(()), "seed {seed}: {k:?}");
            assert!(
                c.max_bytes_per_append >= kv::MAX_COMMAND_BYTES,
                "seed {seed}"
            );
            seen.insert((
                k.pre_vote,
                k.check_quorum,
                k.lease_reads,
                k.max_entries_per_append,
            ));
        }
        // Every switch is drawn both ways, one entry per message included.
        assert!(seen.iter().any(|s| !s.0) && seen.iter().any(|s| s.0));
        assert!(seen.iter().any(|s| !s.1) && seen.iter().any(|s| s.2));
        assert!(seen.iter().any(|s| s.3 == 1));
    }

    #[test]
    fn fixed_raft_settings_are_the_raft_defaults() {
        let p = Params::draw(&SimConfig {
            vary_raft: false,
            ..SimConfig::new(9)
        });
        assert_eq!(p.raft, RaftKnobs::defaults());
        assert_eq!((p.election_ticks, p.heartbeat_ticks), (15, 3));
    }

    #[test]
    fn params_are_a_function_of_the_seed() {
        let a = Params::draw(&SimConfig::new(11));
        let b = Params::draw(&SimConfig::new(11));
        let c = Params::draw(&SimConfig::new(12));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn no_faults_means_a_clean_network() {
        let config = SimConfig {
            faults: false,
            ..SimConfig::new(3)
        };
        let p = Params::draw(&config);
        assert_eq!((p.drop_rate, p.duplicate_rate), (0.0, 0.0));
        assert_eq!((p.partition_every_ms, p.crash_every_ms), (0, 0));
    }

    #[test]
    fn snapshot_settings_parse_and_override_the_draw() {
        assert_eq!("drawn".parse(), Ok(Snapshots::Drawn));
        assert_eq!("off".parse(), Ok(Snapshots::Off));
        assert_eq!("10:2".parse(), Ok(Snapshots::Fixed { every: 10, keep: 2 }));
        for bad in ["", "10", "0:1", "a:b", "10:-1"] {
            assert!(bad.parse::<Snapshots>().is_err(), "{bad}");
        }
        let off = Params::draw(&SimConfig {
            snapshots: Snapshots::Off,
            ..SimConfig::new(5)
        });
        assert_eq!(off.snapshot_every, 0);
        let drawn: Vec<u64> = (0..64)
            .map(|seed| Params::draw(&SimConfig::new(seed)).snapshot_every)
            .collect();
        assert!(drawn.iter().all(|&e| e > 0));
        assert!(
            drawn.iter().filter(|&&e| e <= 64).count() > 32,
            "mostly small: {drawn:?}"
        );
    }

    #[test]
    fn validate_refuses_out_of_range_sizes() {
        assert!(
            SimConfig {
                nodes: 2,
                ..SimConfig::new(1)
            }
            .validate()
            .is_err()
        );
        assert!(
            SimConfig {
                nodes: 8,
                ..SimConfig::new(1)
            }
            .validate()
            .is_err()
        );
        assert!(
            SimConfig {
                clients: 0,
                ..SimConfig::new(1)
            }
            .validate()
            .is_err()
        );
        assert!(SimConfig::new(1).validate().is_ok());
    }
}
