//! The deterministic simulator: whole raftlab clusters in one thread, in
//! virtual time, through message loss, duplication, reordering, partitions
//! and crashes, all drawn from one seed.
//!
//! A run is a pure function of its [`SimConfig`] (and the build): the same
//! seed gives the same events, the same history and the same trace hash.
//! [`run`] simulates, checks the safety invariants online after every step,
//! checks the clients' history for linearizability, and returns a
//! [`Summary`].
//!
//! Nothing here reads a clock, spawns a thread, touches the file system or
//! draws OS randomness: time is [`queue::Nanos`] of virtual time and every
//! random choice comes from a ChaCha stream derived from the seed
//! ([`rng`]). The caller measures wall time and writes files.

pub mod config;
pub mod disk;
pub mod families;
pub mod invariants;
pub mod network;
pub mod queue;
pub mod rng;
pub mod scenario;
pub mod script;
pub mod shrink;
pub mod timeline;
pub mod trace;
pub mod workload;
pub mod world;

pub use config::{Params, SimConfig, Snapshots};
pub use disk::DiskFaultMode;
pub use families::Families;
pub use scenario::{Expect, Scenario};
pub use script::{Action, ScriptedFault};
pub use trace::{TraceFilter, Tracer};

use check::{Budget, History, Verdict};
use queue::MS;
use serde::Serialize;

/// Everything a run reports, as printed by `cargo xtask simulate --json`.
/// Fields are only ever added; none changes meaning.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The root seed.
    pub seed: u64,
    /// Whether every invariant held and the history is linearizable.
    pub ok: bool,
    /// The checker's verdict: `None` when it ran out of budget.
    pub linearizable: Option<bool>,
    /// Every broken invariant and the checker's counterexample, as text.
    pub violations: Vec<String>,
    /// Liveness failures: after the chaos, with the cluster healed, what
    /// did not happen within the bound (a leader, every pending operation).
    /// Reported apart from safety violations.
    pub liveness: Vec<String>,
    /// Operations that completed with a result.
    pub ops_ok: u64,
    /// Operations that definitely did not take effect.
    pub ops_failed: u64,
    /// Operations whose outcome is unknown.
    pub ops_unknown: u64,
    /// Terms that had a leader.
    pub elections: u64,
    /// Process crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// The highest log index committed (and applied) anywhere.
    pub commits: u64,
    /// Messages between replicas handed to the network.
    pub messages: u64,
    /// Messages lost at random or to partitions (or to a dead receiver).
    pub messages_dropped: u64,
    /// Messages delivered twice.
    pub messages_duplicated: u64,
    /// Events in the trace.
    pub trace_events: u64,
    /// Hash of the whole trace, in hex: the same seed and build give the
    /// same hash.
    pub trace_hash: String,
    /// Virtual time simulated.
    pub sim_time_ms: u64,
    /// Wall-clock time of the run, filled in by the caller (the simulator
    /// itself never reads a clock).
    pub wall_time_ms: u64,
    /// The command that replays this run.
    pub replay: String,
    /// Disk faults injected, by kind, over all nodes.
    pub disk_faults: std::collections::BTreeMap<String, u64>,
    /// Replicas that stopped on a disk fault they detected (a read error, a
    /// full disk, a power loss in a sync, corruption): expected with disk
    /// faults on, and never a violation by itself.
    pub disk_halts: u64,
    /// Nodes that stayed down for the rest of the run because recovery found
    /// their log corrupt, each with the file and offset.
    pub failed_nodes: Vec<String>,
    /// Snapshots replicas took of their own state machines (compactions).
    pub snapshots_taken: u64,
    /// Snapshots replicas installed from a leader (InstallSnapshot).
    pub snapshots_installed: u64,
    /// The most applied entries any log held after its snapshot (bounded by
    /// `params.snapshot_every + params.snapshot_keep`).
    pub max_applied_entries_held: u64,
    /// The most entries any log held after its snapshot, applied or not.
    pub max_log_entries: u64,
    /// Restarts that recovered from a snapshot (and the log after it).
    pub recoveries_from_snapshot: u64,
    /// Restarts that recovered from a snapshot with no entry after it.
    pub recoveries_from_snapshot_only: u64,
    /// Membership churn: changes asked for, completed and refused.
    pub membership: world::ChurnStats,
    /// Cluster size.
    pub nodes: usize,
    /// Client processes.
    pub clients: usize,
    /// What the seed drew.
    pub params: Params,
    /// Writes (fsync latency, entries per fsync), and the process and
    /// network faults of asynchronous storage (pauses, fast restarts,
    /// long-delayed messages, slow disks).
    pub storage: world::StorageSummary,
}

impl Summary {
    /// The process exit status for this outcome: 0 all held, 1 a safety
    /// violation, 2 undecided (the checker ran out of budget), 3 a liveness
    /// failure with safety intact.
    pub fn exit_code(&self) -> i32 {
        if !self.violations.is_empty() {
            1
        } else if self.linearizable.is_none() {
            2
        } else if !self.liveness.is_empty() {
            3
        } else {
            0
        }
    }
}

/// What a run produced.
pub struct Outcome {
    /// The summary.
    pub summary: Summary,
    /// Every client invocation and completion.
    pub history: History,
    /// Faults and leadership over time.
    pub timeline: Vec<timeline::Timed>,
    /// The checker's verdict, in full (the summary keeps only its gist).
    pub verdict: Verdict,
}

/// The command line that replays `config` (flags at their defaults left out).
pub fn replay_command(config: &SimConfig) -> String {
    let defaults = SimConfig::new(config.seed);
    if let Some(name) = &config.scenario {
        // A scenario (or a shrunk failure) describes everything else; the
        // name may carry the flags that adjusted it.
        let (name, flags) = name
            .split_once(' ')
            .map_or((name.as_str(), ""), |(n, f)| (n, f));
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" {flags}")
        };
        return format!(
            "cargo xtask simulate --scenario {name} --seed {}{flags}",
            config.seed
        );
    }
    let mut cmd = format!("cargo xtask simulate --seed {}", config.seed);
    if config.nodes != defaults.nodes {
        cmd += &format!(" --nodes {}", config.nodes);
    }
    if config.clients != defaults.clients {
        cmd += &format!(" --clients {}", config.clients);
    }
    if config.duration != defaults.duration {
        cmd += &format!(" --duration {}ms", config.duration / MS);
    }
    if config.faults != defaults.faults {
        cmd += " --faults off";
    }
    if config.disk_faults != defaults.disk_faults {
        let mode = match config.disk_faults {
            DiskFaultMode::Off => "off",
            DiskFaultMode::On => "on",
            DiskFaultMode::NoLimits => "no-limits",
        };
        cmd += &format!(" --disk-faults {mode}");
    }
    match config.snapshots {
        _ if config.snapshots == defaults.snapshots => {}
        config::Snapshots::Drawn => cmd += " --snapshots drawn",
        config::Snapshots::Off => cmd += " --snapshots off",
        config::Snapshots::Fixed { every, keep } => cmd += &format!(" --snapshots {every}:{keep}"),
    }
    for (name, allowed) in config.allowed.list() {
        // The disk family is switched by --disk-faults.
        if !allowed && name != "disk" {
            cmd += &format!(" --{name} off");
        }
    }
    if config.swarm != defaults.swarm {
        cmd += " --swarm off";
    }
    if config.lease_reads {
        cmd += " --lease-reads";
    }
    if config.liveness != defaults.liveness {
        cmd += " --liveness off";
    }
    if !config.script.is_empty() {
        // Not expressible as flags (yet): say so rather than mislead.
        cmd += &format!(
            " # plus {} scripted faults from the test that ran it",
            config.script.len()
        );
    }
    cmd
}

/// Simulates `config`, checks invariants and linearizability, and reports.
pub fn run(config: &SimConfig, tracer: Tracer, budget: &Budget) -> Result<Outcome, String> {
    config.validate()?;
    run_with_params(config, Params::draw(config), tracer, budget)
}

/// Like [`run`], with `params` in place of what the seed draws: for tests
/// that need a world the draw does not give (an unreliable network without
/// crashes, say). The summary's replay command does not reproduce such a
/// run; its `params` field does.
pub fn run_with_params(
    config: &SimConfig,
    params: Params,
    tracer: Tracer,
    budget: &Budget,
) -> Result<Outcome, String> {
    config.validate()?;
    let output = world::World::new(config.clone(), params.clone(), tracer).run();

    let mut violations: Vec<String> = output
        .invariants
        .violations()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let verdict = check::check_history(&output.history, budget)
        .map_err(|e| format!("the simulator wrote an invalid history: {e:?}"))?;
    let linearizable = match &verdict {
        Verdict::Linearizable => Some(true),
        Verdict::NotLinearizable(counterexample) => {
            violations.push(format!(
                "not linearizable on key {:?}: no operation among {:?} can follow the longest linearizable prefix ({} operations)",
                counterexample.key,
                counterexample.stuck,
                counterexample.longest_prefix.len()
            ));
            Some(false)
        }
        Verdict::Undecided { .. } => None,
    };
    let stats = output.stats;
    let summary = Summary {
        seed: config.seed,
        ok: violations.is_empty() && linearizable == Some(true) && output.liveness.is_empty(),
        linearizable,
        violations,
        liveness: output.liveness,
        ops_ok: stats.ops_ok,
        ops_failed: stats.ops_failed,
        ops_unknown: stats.ops_unknown,
        elections: output.invariants.elections() as u64,
        crashes: stats.crashes,
        partitions: stats.partitions,
        commits: output.invariants.committed_index().0,
        messages: stats.messages,
        messages_dropped: stats.dropped,
        messages_duplicated: stats.duplicated,
        trace_events: output.trace_events,
        trace_hash: format!("{:016x}", output.trace_hash),
        sim_time_ms: output.sim_time / MS,
        wall_time_ms: 0,
        replay: replay_command(config),
        disk_faults: output.disk_faults,
        disk_halts: stats.disk_halts,
        failed_nodes: output.failed_nodes,
        snapshots_taken: stats.snapshots_taken,
        snapshots_installed: stats.snapshots_installed,
        max_applied_entries_held: stats.max_applied_entries_held,
        max_log_entries: stats.max_log_entries,
        recoveries_from_snapshot: stats.recoveries_from_snapshot,
        recoveries_from_snapshot_only: stats.recoveries_from_snapshot_only,
        membership: stats.churn.clone(),
        nodes: config.nodes,
        clients: config.clients,
        storage: output.storage,
        params,
    };
    Ok(Outcome {
        summary,
        history: output.history,
        timeline: output.timeline,
        verdict,
    })
}
