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
pub mod served;
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
    /// The rule each of `violations` broke, in the same order.
    #[serde(default, skip_deserializing)]
    pub violation_kinds: Vec<invariants::ViolationKind>,
    /// Virtual time of the first invariant violation, in ms (rounded up),
    /// if one broke; else, for a history that is not linearizable, when
    /// the last operation of its counterexample (the linearizable prefix
    /// and the stuck operations) completed. A run cut just after it fails
    /// the same way (the shrinker's first cut).
    #[serde(default)]
    pub first_violation_ms: Option<u64>,
    /// Liveness failures: after the chaos, with the cluster healed, what
    /// did not happen within the bound (a leader, every pending operation).
    /// Reported apart from safety violations.
    pub liveness: Vec<String>,
    /// The run's counters: operations, faults, messages, snapshots,
    /// churn. Flattened: their fields sit among the summary's own in the
    /// JSON (`ops_ok`, `messages_dropped`, `membership`, ...).
    #[serde(flatten)]
    pub stats: world::Stats,
    /// Terms that had a leader.
    pub elections: u64,
    /// The highest log index committed (and applied) anywhere.
    pub commits: u64,
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
    /// Nodes that stayed down for the rest of the run because recovery found
    /// their log corrupt, each with the file and offset.
    pub failed_nodes: Vec<String>,
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
    /// Who answered each operation that completed, by op id.
    pub served: std::collections::BTreeMap<u64, served::Served>,
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
    if !config.vary_raft {
        cmd += " --raft-config fixed";
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
    let mut violation_kinds: Vec<invariants::ViolationKind> = output
        .invariants
        .violations()
        .iter()
        .map(|v| v.kind)
        .collect();
    let mut first_violation_ms = output
        .invariants
        .violations()
        .iter()
        .map(|v| v.time_ns.div_ceil(MS))
        .min();
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
            violation_kinds.push(invariants::ViolationKind::NotLinearizable);
            if first_violation_ms.is_none()
                && let Ok(ops) = output.history.operations()
            {
                let involved: std::collections::BTreeSet<_> = counterexample
                    .longest_prefix
                    .iter()
                    .chain(&counterexample.stuck)
                    .collect();
                first_violation_ms = ops
                    .iter()
                    .filter(|op| involved.contains(&op.id))
                    .filter_map(|op| op.complete_ns)
                    .max()
                    .map(|t| t.div_ceil(MS));
            }
            Some(false)
        }
        Verdict::Undecided { .. } => None,
    };
    let summary = Summary {
        seed: config.seed,
        ok: violations.is_empty() && linearizable == Some(true) && output.liveness.is_empty(),
        linearizable,
        violations,
        violation_kinds,
        first_violation_ms,
        liveness: output.liveness,
        stats: output.stats,
        elections: output.invariants.elections() as u64,
        commits: output.invariants.committed_index().0,
        trace_events: output.trace_events,
        trace_hash: format!("{:016x}", output.trace_hash),
        sim_time_ms: output.sim_time / MS,
        wall_time_ms: 0,
        replay: replay_command(config),
        disk_faults: output.disk_faults,
        failed_nodes: output.failed_nodes,
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
        served: output.served,
    })
}
