//! Command-line arguments.

use crate::error::Error;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sim::queue::MS;
use sim::{DiskFaultMode, SimConfig, Snapshots};
use std::path::PathBuf;

/// raftlab: a Raft key-value store and the testbed that tries to break it.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate one seeded run of a cluster under faults and check it.
    ///
    /// Exit status: 0 every invariant held, the history is linearizable and
    /// the healed cluster recovered; 1 a safety violation; 2 undecided (the
    /// checker ran out of budget); 3 a liveness failure (safe, but stuck
    /// after the heal); 5 the scenario expects a failure (`expect =
    /// "violation"` or `"liveness"`) and the run passed; 64 a usage error
    /// (a bad flag value, an unknown or malformed scenario); 70 an internal
    /// error.
    Simulate(SimulateArgs),
    /// Simulate a range of seeds in parallel and summarise.
    ///
    /// Exit status: 0 every seed passed; 1 a violation, an error or a
    /// nondeterministic seed; 2 some seed undecided; 3 some seed failed
    /// liveness; 5 some seed of a scenario that expects a failure passed;
    /// 64 a usage error (`sweep merge`: a missing or empty shard file,
    /// shards missing, duplicated or overlapping); 65 a shard file that is
    /// not a sweep summary; 70 an internal error.
    Sweep(SweepArgs),
    /// Check a recorded history (JSON lines, a Jepsen register `.log`, or
    /// Jepsen EDN `.edn`).
    ///
    /// Exit status: 0 linearizable; 1 not linearizable; 2 undecided (budget
    /// or timeout); 64 a usage error; 65 an input error (unreadable or
    /// malformed file, the line named).
    Check(CheckArgs),
    /// Benchmarks (`bench check`: the checker on generated histories).
    Bench(BenchArgs),
    /// Reduce a failing seed to a small scenario file: fault families off,
    /// fewer clients, a shorter run, fewer nodes, fewer scripted faults,
    /// re-running each step; writes the result (seed and trace hash pinned)
    /// and prints the replay command.
    ///
    /// Exit status: 0 shrunk (the file is written); 1 the seed passes:
    /// nothing to shrink; 2 the seed is undecided (the checker ran out of
    /// budget): refused, since an undecided run is not a failure to keep;
    /// 64 a usage error; 70 an internal error.
    Shrink(ShrinkArgs),
    /// Replay a scenario file with a pinned seed (a shrunk failure, or a
    /// sweep's histories/failures/seed-N.toml) and check that it reproduces
    /// its trace hash.
    ///
    /// Exit status: 0 reproduced, and the run passed; 1 reproduced a safety
    /// violation; 2 reproduced, undecided; 3 reproduced a liveness failure;
    /// 4 the trace hash differs from the pinned one, or the file pins none
    /// (nothing to check it against); 5 the file expects a failure and the
    /// run passed; 64 a usage error (no such file, no pinned seed, a
    /// malformed scenario); 70 an internal error.
    Replay(ReplayArgs),
    /// Start a local cluster of real `raftlab-node` processes on 127.0.0.1
    /// (node i: HTTP 8080+i, peers 9080+i) until Ctrl-C.
    Cluster(crate::cluster::ClusterArgs),
    /// A Jepsen-style test of real `raftlab-node` processes: clients,
    /// kill -9, pauses, partitions (as root) and membership changes, then
    /// the heal and the checks. Not deterministic (real time).
    ///
    /// Exit status: 0 linearizable, nothing lost, recovered; 1 not
    /// linearizable, or an acknowledged write lost, or digests differ; 2
    /// undecided; 3 not recovered after the heal; 64 a usage error; 70 an
    /// internal error; 130 interrupted (after cleaning up).
    Jepsen(crate::jepsen::JepsenArgs),
    /// Search every interleaving of a small cluster of real replicas
    /// (crates/model) for a violated Raft property.
    ///
    /// Exit status: 0 no violation within the bounds; 1 a violation (the
    /// trace printed and written as a regression test); 64 a usage error.
    Modelcheck(crate::modelcheck::ModelcheckArgs),
    /// The mutation score: cargo-mutants over raft's election.rs,
    /// replication.rs, read_index.rs and log.rs (or --file F), every mutant
    /// tested by raft's tests, and those that survive by a short sweep of
    /// the default swarm; equivalent mutants listed with reasons in
    /// .cargo/mutants.toml.
    ///
    /// Exit status: 0 every mutant caught or unviable, 2 some missed by
    /// both phases, 3 some timed out, 4 the tests fail unmutated; 64 cargo
    /// mutants is not installed.
    Mutants(crate::mutants::MutantsArgs),
}

impl Command {
    /// Whether the command was asked for JSON on stdout (errors then come
    /// as a JSON object there too).
    pub fn json(&self) -> bool {
        match self {
            Command::Simulate(a) => a.json,
            Command::Sweep(a) => match &a.action {
                Some(SweepAction::Merge(m)) => m.json,
                None => a.json,
            },
            Command::Check(a) => a.json,
            Command::Bench(b) => match &b.what {
                BenchWhat::Cluster(a) => a.json,
                BenchWhat::Check(_) | BenchWhat::Raft(_) | BenchWhat::Sim(_) => false,
            },
            Command::Shrink(_)
            | Command::Replay(_)
            | Command::Cluster(_)
            | Command::Jepsen(_)
            | Command::Modelcheck(_)
            | Command::Mutants(_) => false,
        }
    }
}

/// Arguments of `shrink`.
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The failing seed.
    #[arg(long)]
    pub seed: u64,
    /// The run that fails (as given to `simulate`).
    #[command(flatten)]
    pub shape: RunShape,
    /// Where to write the shrunk scenario (default:
    /// histories/shrunk/seed-N.toml).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A scenario file that pins its seed.
    pub file: PathBuf,
    /// Also write an HTML report.
    #[arg(long)]
    pub report: bool,
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to benchmark.
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// The linearizability checker on generated histories: median time and
    /// peak memory per case, as a Markdown table. Exit 1 if a target is missed.
    Check(BenchCheckArgs),
    /// Three replicas in one process on in-memory disks: proposals/s and µs
    /// per proposal at several proposals in flight, and the memory a log
    /// holds per million entries. Markdown on stdout, JSON in a file.
    Raft(BenchRaftArgs),
    /// A real cluster (fsync on, real disk) under a closed-loop HTTP load:
    /// throughput and p50/p90/p99/max per connection count; `--against
    /// etcd` runs the same load against a 3-node etcd in the same run.
    /// Markdown on stdout and in target/bench/cluster.md, JSON in
    /// target/bench/cluster.json.
    Cluster(BenchClusterArgs),
    /// The simulator's speed: simulated ÷ wall time, events/s and seeds/hour
    /// for the default run of a few seeds and for a sweep on every core.
    /// Markdown on stdout and in target/bench/sim.md, JSON in
    /// target/bench/sim.json.
    Sim(BenchSimArgs),
}

/// The systems `bench cluster` drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// raftlab-node (always run).
    Raftlab,
    /// etcd 3.4 through its JSON gateway (the binary from Debian's
    /// `etcd-server`, or `$ETCD`).
    Etcd,
}

impl Target {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Target::Raftlab => "raftlab",
            Target::Etcd => "etcd",
        }
    }
}

/// Parses a wall-clock duration (`20s`, `500ms`, `2m`).
fn parse_wall(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s).map(std::time::Duration::from_nanos)
}

/// Arguments of `bench cluster`.
#[derive(Debug, Args)]
pub struct BenchClusterArgs {
    /// Voters in each cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=7))]
    pub nodes: u16,
    /// Concurrent connections, one row each (one request outstanding per
    /// connection: closed loop).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64, 256])]
    pub connections: Vec<usize>,
    /// Bytes per written value.
    #[arg(long, default_value_t = 256)]
    pub value_bytes: usize,
    /// Measured time per row (`20s`, `500ms`).
    #[arg(long, default_value = "20s", value_parser = parse_wall)]
    pub duration: std::time::Duration,
    /// Unmeasured time before each row's measured window.
    #[arg(long, default_value = "2s", value_parser = parse_wall)]
    pub warmup: std::time::Duration,
    /// Share of requests that are linearizable reads (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub read_fraction: f64,
    /// Distinct keys, drawn uniformly.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Also run the same load against this system, in the same run, and
    /// print the ratios.
    #[arg(long, value_enum)]
    pub against: Option<Target>,
    /// Also print the results as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bench sim`.
#[derive(Debug, Args)]
pub struct BenchSimArgs {
    /// Seeds run one after another for the default-run figures (median).
    #[arg(long, default_value_t = 5)]
    pub runs: u64,
    /// Seeds in the parallel sweep (0: skip the sweep).
    #[arg(long, default_value_t = 100)]
    pub sweep_seeds: u64,
    /// Workers for the sweep (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// First seed (the runs and the sweep take consecutive seeds from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `bench raft`.
#[derive(Debug, Args)]
pub struct BenchRaftArgs {
    /// Proposals kept in flight (one per client), one row each.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 1024])]
    pub in_flight: Vec<usize>,
    /// Runs per row (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Proposals timed per run (after a warm-up).
    #[arg(long, default_value_t = 100_000)]
    pub proposals: u64,
    /// The disks under the replicas.
    #[arg(long, value_enum, default_value_t = BenchDisk::Mem)]
    pub disk: BenchDisk,
    /// Snapshot every this many applied entries (0: never).
    #[arg(long, default_value_t = 1024)]
    pub snapshot_every: u64,
    /// Entries kept after a snapshot.
    #[arg(long, default_value_t = 256)]
    pub snapshot_keep: u64,
    /// Entries in the log whose memory is measured (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    pub memory_entries: u64,
    /// Where to write the JSON (default: target/bench/raft.json).
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// The disks `bench raft` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchDisk {
    /// `wal::MemDisk`, the simulator's in-memory disk (keeps the bytes).
    Mem,
    /// A disk that keeps only file lengths (writes cost nothing).
    Null,
}

/// Arguments of `bench check`.
#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Runs per case (the median time is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Run only this case.
    #[arg(long)]
    pub case: Option<String>,
    /// The checker's search budget, in steps per key.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Internal: run one case in this process and print one JSON line.
    #[arg(long, hide = true)]
    pub child: bool,
}

/// An on/off flag: a fault family, swarm drawing, or a check. What on and
/// off mean is the flag's own help; the values say only that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On: what the flag names happens.
    On,
    /// Off: it does not.
    Off,
}

/// The shape of one run; shared by `simulate`, `sweep` and `shrink`. Every
/// flag overrides the scenario's setting (or the default) when given.
#[derive(Clone, Debug, Default, Args)]
pub struct RunShape {
    /// A scenario: a name from scenarios/ (e.g. leader-isolation) or a path
    /// to a .toml file. Its settings are the base the flags below adjust.
    #[arg(long, value_name = "NAME|FILE")]
    pub scenario: Option<String>,
    /// Cluster size (3 to 7) [default: 5].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Concurrent client processes [default: 10].
    #[arg(long)]
    pub clients: Option<usize>,
    /// How long clients issue operations, in virtual time (e.g. 30s, 500ms)
    /// [default: 30s].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<u64>,
    /// Faults at all (off: a clean world) [default: on].
    #[arg(long, value_enum)]
    pub faults: Option<Switch>,
    /// Swarm testing: each fault family drawn on or off per seed (off: every
    /// allowed family on) [default: on].
    #[arg(long, value_enum)]
    pub swarm: Option<Switch>,
    /// Message loss, duplication and reordering [default: on].
    #[arg(long, value_enum)]
    pub network: Option<Switch>,
    /// Network partitions [default: on].
    #[arg(long, value_enum)]
    pub partitions: Option<Switch>,
    /// Crashes and restarts [default: on].
    #[arg(long, value_enum)]
    pub crashes: Option<Switch>,
    /// Disk faults: off, on (within a budget that keeps the cluster
    /// recoverable), or no-limits (safety only) [default: on].
    #[arg(long, value_enum)]
    pub disk_faults: Option<DiskFaults>,
    /// Membership churn: add, remove and replace nodes (the leader too),
    /// transfer leadership [default: on].
    #[arg(long, value_enum)]
    pub churn: Option<Switch>,
    /// Clock faults: per-node drift and jumps [default: on].
    #[arg(long, value_enum)]
    pub clocks: Option<Switch>,
    /// Process pauses (SIGSTOP, a GC pause): a node handles nothing for up
    /// to several election timeouts, then catches up at once [default: on].
    #[arg(long, value_enum)]
    pub pauses: Option<Switch>,
    /// Slow disks: one or two nodes' disks 10-100x slower, with stalls of
    /// up to a second [default: on].
    #[arg(long, value_enum)]
    pub slow_disks: Option<Switch>,
    /// Heavy-tailed network delay: a few messages arrive seconds late,
    /// after elections and restarts [default: on].
    #[arg(long, value_enum)]
    pub delays: Option<Switch>,
    /// Fast restarts: a crashed node back before one network delay
    /// [default: on].
    #[arg(long, value_enum)]
    pub fast_restarts: Option<Switch>,
    /// Hold and replay: partitions hold a share of the messages they cut
    /// and release them 1-8 s later, in later terms [default: on].
    #[arg(long, value_enum)]
    pub holds: Option<Switch>,
    /// Snapshots and log compaction: drawn (thresholds drawn from the
    /// seed, often small), off, or EVERY:KEEP (a snapshot every EVERY
    /// applied entries, KEEP entries kept after it) [default: drawn].
    #[arg(long)]
    pub snapshots: Option<Snapshots>,
    /// Lease-based reads (opt-in; safe within the clock drift bound).
    #[arg(long)]
    pub lease_reads: bool,
    /// Raft's own settings (pre-vote, check-quorum, lease reads, timeouts,
    /// append and in-flight limits, snapshot chunks): drawn per seed, or
    /// fixed at the raft crate's defaults [default: drawn].
    #[arg(long, value_enum)]
    pub raft_config: Option<RaftConfigMode>,
    /// The liveness check after the chaos [default: on].
    #[arg(long, value_enum)]
    pub liveness: Option<Switch>,
}

/// The `--raft-config` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RaftConfigMode {
    /// Each seed draws Raft's settings.
    Drawn,
    /// The raft crate's defaults, every seed.
    Fixed,
}

/// The `--disk-faults` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiskFaults {
    /// Disks lose unsynced writes on a crash, nothing else.
    Off,
    /// Faults within a budget that keeps committed data on a majority.
    On,
    /// Faults without a budget: safety only.
    NoLimits,
}

impl From<DiskFaults> for DiskFaultMode {
    fn from(mode: DiskFaults) -> Self {
        match mode {
            DiskFaults::Off => DiskFaultMode::Off,
            DiskFaults::On => DiskFaultMode::On,
            DiskFaults::NoLimits => DiskFaultMode::NoLimits,
        }
    }
}

impl RunShape {
    /// The flags given (besides `--scenario`), as a command line suffix.
    fn flags(&self) -> String {
        let mut out = String::new();
        let switch = |s: Switch| if s == Switch::On { "on" } else { "off" };
        let mut add = |flag: &str, value: Option<String>| {
            if let Some(v) = value {
                out += &format!(" --{flag} {v}");
            }
        };
        add("nodes", self.nodes.map(|n| n.to_string()));
        add("clients", self.clients.map(|n| n.to_string()));
        add("duration", self.duration.map(|d| format!("{}ms", d / MS)));
        add("faults", self.faults.map(|s| switch(s).into()));
        add("swarm", self.swarm.map(|s| switch(s).into()));
        add("network", self.network.map(|s| switch(s).into()));
        add("partitions", self.partitions.map(|s| switch(s).into()));
        add("crashes", self.crashes.map(|s| switch(s).into()));
        add(
            "disk-faults",
            self.disk_faults.map(|d| {
                match d {
                    DiskFaults::Off => "off",
                    DiskFaults::On => "on",
                    DiskFaults::NoLimits => "no-limits",
                }
                .into()
            }),
        );
        add("churn", self.churn.map(|s| switch(s).into()));
        add("clocks", self.clocks.map(|s| switch(s).into()));
        add("pauses", self.pauses.map(|s| switch(s).into()));
        add("slow-disks", self.slow_disks.map(|s| switch(s).into()));
        add("delays", self.delays.map(|s| switch(s).into()));
        add(
            "fast-restarts",
            self.fast_restarts.map(|s| switch(s).into()),
        );
        add("holds", self.holds.map(|s| switch(s).into()));
        add(
            "snapshots",
            self.snapshots.map(|s| match s {
                Snapshots::Drawn => "drawn".into(),
                Snapshots::Off => "off".into(),
                Snapshots::Fixed { every, keep } => format!("{every}:{keep}"),
            }),
        );
        add("liveness", self.liveness.map(|s| switch(s).into()));
        if self.lease_reads {
            out += " --lease-reads";
        }
        if self.raft_config == Some(RaftConfigMode::Fixed) {
            out += " --raft-config fixed";
        }
        out
    }

    /// What names this shape's files: the scenario's file stem (or
    /// `default`) and the flags given, e.g. `crash-storm` or
    /// `default-nodes-3-faults-off`. Only `[A-Za-z0-9._-]`.
    pub fn name(&self) -> String {
        let scenario = self.scenario.as_deref().map_or("default".to_string(), |s| {
            std::path::Path::new(s)
                .file_stem()
                .map_or(s.to_string(), |f| f.to_string_lossy().into_owned())
        });
        // A name of dots only would name a parent directory, which a sweep
        // clears: never.
        let scenario = if scenario.chars().all(|c| c == '.') {
            "scenario".to_string()
        } else {
            scenario
        };
        let flags = self.flags().replace(" --", "-").replace([' ', ':'], "-");
        sanitize(&format!("{scenario}{flags}"))
    }

    /// The stem of a run's files (history, report): `seed-N` for the
    /// default run, else the shape's [`name`](Self::name) first, e.g.
    /// `crash-storm-seed-N`, so that runs of different shapes never
    /// overwrite each other's files.
    pub fn file_stem(&self, seed: u64) -> String {
        let name = self.name();
        if name == "default" {
            format!("seed-{seed}")
        } else {
            format!("{name}-seed-{seed}")
        }
    }

    /// The scenario named, if any (for its `expect`).
    pub fn scenario(&self) -> Result<Option<sim::Scenario>, Error> {
        match &self.scenario {
            Some(name) => Ok(Some(crate::scenario_cmd::load(name)?.1)),
            None => Ok(None),
        }
    }

    /// The simulator's configuration for `seed`: the scenario's (or the
    /// defaults), adjusted by the flags given. Every error is a usage error.
    pub fn config(&self, seed: u64) -> Result<SimConfig, Error> {
        self.config_inner(seed).map_err(Error::Usage)
    }

    fn config_inner(&self, seed: u64) -> Result<SimConfig, String> {
        let mut config = match &self.scenario {
            Some(name) => {
                let (display, scenario) =
                    crate::scenario_cmd::load(name).map_err(|e| e.to_string())?;
                scenario.config(&display, seed)?
            }
            None => SimConfig::new(seed),
        };
        if let Some(n) = self.nodes {
            config.nodes = n;
        }
        if let Some(c) = self.clients {
            config.clients = c;
        }
        if let Some(d) = self.duration {
            config.duration = d;
        }
        if let Some(f) = self.faults {
            config.faults = f == Switch::On;
        }
        if let Some(s) = self.swarm {
            config.swarm = s == Switch::On;
        }
        for (name, switch) in [
            ("network", self.network),
            ("partitions", self.partitions),
            ("crashes", self.crashes),
            ("churn", self.churn),
            ("clocks", self.clocks),
            ("pauses", self.pauses),
            ("slow-disks", self.slow_disks),
            ("delays", self.delays),
            ("fast-restarts", self.fast_restarts),
            ("holds", self.holds),
        ] {
            if let Some(switch) = switch {
                config.allowed = config
                    .allowed
                    .with(name, switch == Switch::On)
                    .expect("a family name");
            }
        }
        if let Some(d) = self.disk_faults {
            config.disk_faults = d.into();
            config.allowed.disk = d != DiskFaults::Off;
        }
        if let Some(s) = self.snapshots {
            config.snapshots = s;
        }
        if self.lease_reads {
            config.lease_reads = true;
        }
        if let Some(mode) = self.raft_config {
            config.vary_raft = mode == RaftConfigMode::Drawn;
        }
        if let Some(l) = self.liveness {
            config.liveness = l == Switch::On;
        }
        if let Some(name) = &config.scenario {
            // The replay command names the scenario and the flags given.
            let flags = self.flags();
            if !flags.is_empty() {
                config.scenario = Some(format!("{name}{flags}"));
            }
        }
        config.validate()?;
        Ok(config)
    }
}

/// `s` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Arguments of `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The root seed: the run is a function of it.
    #[arg(long)]
    pub seed: u64,
    /// The cluster and workload.
    #[command(flatten)]
    pub shape: RunShape,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Print every event of the run, one per line.
    #[arg(long)]
    pub trace: bool,
    /// Print only the events of one node (by id, 1-based; nodes churn adds
    /// come after the founding members).
    #[arg(long, value_name = "N")]
    pub trace_node: Option<u64>,
    /// Where to write the history (JSON lines). Default:
    /// histories/runs/seed-N.jsonl, or SCENARIO[-FLAGS]-seed-N.jsonl when a
    /// scenario or flags shape the run.
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// Also write a self-contained HTML report to reports/seed-N.html (named
    /// like the history). Never touches reports/index.html.
    #[arg(long)]
    pub report: bool,
}

impl SimulateArgs {
    /// The simulator's configuration, with `--trace-node` checked against
    /// the cluster's node ids.
    pub fn config(&self) -> Result<SimConfig, Error> {
        let config = self.shape.config(self.seed)?;
        if let Some(n) = self.trace_node {
            let slots = sim::Params::draw(&config).slots(&config) as u64;
            if n == 0 || n > slots {
                return Err(Error::Usage(format!(
                    "--trace-node {n}: this run's nodes are n1 to n{slots}"
                )));
            }
        }
        Ok(config)
    }
}

/// Arguments of `sweep`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    /// `merge`: combine shard summaries instead of running seeds.
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    /// Seeds to run: `A..B` (B excluded) or `A..=B`.
    #[arg(long, value_parser = parse_seed_range)]
    pub seeds: Option<SeedRange>,
    /// Run only shard K of N (`K/N`, 1-based): every Nth seed of the range.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Parallel workers, at least 1 (default: the number of cores).
    #[arg(long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Re-run this fraction of seeds (0 to 1) and fail on any trace-hash
    /// mismatch: the determinism self-check.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub recheck: f64,
    /// Also write the JSON summary (with every seed's result) to this file,
    /// for `sweep merge`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Shrink every failing seed afterwards (histories/shrunk/seed-N.toml).
    #[arg(long)]
    pub shrink: bool,
    /// The cluster and workload.
    #[command(flatten)]
    pub shape: RunShape,
    /// Print one JSON object at the end instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// What `sweep` can do besides running seeds.
#[derive(Debug, Subcommand)]
pub enum SweepAction {
    /// Merge the `--out` summaries of a sweep's shards into one.
    Merge(MergeArgs),
}

/// Arguments of `sweep merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' summary files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also write the merged summary to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// One shard of a sweep: the `index`th (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("need at least one job".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a number of jobs, got {s:?}")),
    }
}

/// A fraction within 0..=1 (finite).
fn parse_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a fraction from 0 to 1, got {s:?}"))?;
    if f.is_finite() && (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{s:?} is not a fraction from 0 to 1"))
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected K/N, got {s:?}"))?;
    let index: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("bad shard index {k:?}"))?;
    let count: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count {n:?}"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("shard {s:?}: need 1 <= K <= N"));
    }
    Ok(Shard { index, count })
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history file.
    pub path: PathBuf,
    /// The checker's search budget, in steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Also write a self-contained HTML report, reports/FILE-STEM.html.
    #[arg(long)]
    pub report: bool,
    /// The file's format. Default: from the extension (`.log` jepsen, `.edn`
    /// edn, `.jsonl` or `.json` jsonl), else from the first line that is not
    /// blank or a `;` comment (`{"` jsonl, `{:` or `[` edn, anything else jepsen).
    #[arg(long, value_enum)]
    pub format: Option<HistoryFormat>,
    /// Print one JSON object instead of the human verdict.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds of wall time (verdict: undecided). Without
    /// --max-steps, the step budget then grows until every key is decided or the
    /// time or the memory limit runs out.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Most megabytes the search's cache may hold per key (default 512); past it
    /// the key is undecided.
    #[arg(long, value_name = "MB")]
    pub max_cache_mb: Option<u64>,
    /// What a cas's `:fail` means in a Jepsen history. Default: did-not-happen
    /// (Jepsen's meaning) for EDN, compare-failed for Jepsen etcd logs. The
    /// output says which reading was used.
    #[arg(long, value_enum)]
    pub fail_means: Option<FailMeans>,
    /// Also write the history as Jepsen EDN (one operation map a line), for
    /// Knossos or Elle.
    #[arg(long, value_name = "OUT")]
    pub export_edn: Option<PathBuf>,
}

/// How a cas's `:fail` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailMeans {
    /// The cas did not take effect (Jepsen's meaning of `:fail`).
    DidNotHappen,
    /// The comparison failed: the cas took effect as a read of another value.
    CompareFailed,
}

/// The history formats `check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    /// A Jepsen text log (`INFO jepsen.util - <process> :<type> :<f> <value>`
    /// lines, tabs or spaces; other lines skipped).
    Jepsen,
    /// Jepsen or Knossos EDN: a vector of operation maps or maps one per line
    /// (register :read/:write/:cas, or Porcupine's :get/:put/:append).
    Edn,
    /// raftlab's JSON lines.
    Jsonl,
}

/// A range of seeds, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub first: u64,
    /// Last seed.
    pub last: u64,
}

fn parse_seed_range(s: &str) -> Result<SeedRange, String> {
    let (a, b, inclusive) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        return Err(format!("expected A..B or A..=B, got {s:?}"));
    };
    let first: u64 = a.trim().parse().map_err(|_| format!("bad seed {a:?}"))?;
    let end: u64 = b.trim().parse().map_err(|_| format!("bad seed {b:?}"))?;
    let last = if inclusive {
        end
    } else {
        end.checked_sub(1).ok_or("empty range")?
    };
    if last < first {
        return Err(format!("empty range {s:?}"));
    }
    Ok(SeedRange { first, last })
}

/// Parses `30s`, `500ms`, `2m` or a bare number of seconds into virtual
/// nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit_ns) = if let Some(n) = s.strip_suffix("ms") {
        (n, MS)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000 * MS)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000 * MS)
    } else {
        (s, 1_000 * MS)
    };
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (try 30s or 500ms)"))?;
    n.checked_mul(unit_ns)
        .ok_or_else(|| format!("duration {s:?} too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(30_000 * MS));
        assert_eq!(parse_duration("500ms"), Ok(500 * MS));
        assert_eq!(parse_duration("2m"), Ok(120_000 * MS));
        assert_eq!(parse_duration("7"), Ok(7_000 * MS));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn seed_ranges_parse_both_forms() {
        assert_eq!(
            parse_seed_range("1..=200"),
            Ok(SeedRange {
                first: 1,
                last: 200
            })
        );
        assert_eq!(
            parse_seed_range("1..200"),
            Ok(SeedRange {
                first: 1,
                last: 199
            })
        );
        assert!(parse_seed_range("5..5").is_err());
        assert!(parse_seed_range("x").is_err());
    }

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
        assert!(parse_shard("1").is_err());
    }

    /// Every on/off flag's help names what it switches, and none repeats
    /// another's: the fault families' flags are the families' list.
    #[test]
    fn every_switch_flag_describes_its_own_family() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let simulate = cli.find_subcommand_mut("simulate").expect("simulate");
        let help = simulate.render_long_help().to_string();
        assert!(!help.contains("A clean network and no crashes"), "{help}");
        assert!(!help.contains("Faults on (the default)"), "{help}");
        let keyword = |family: &str| match family {
            "network" => "loss",
            "partitions" => "partition",
            "crashes" => "Crash",
            "disk" => "Disk",
            "churn" => "churn",
            "clocks" => "Clock",
            "pauses" => "pause",
            "slow-disks" => "disks",
            "delays" => "delay",
            "fast-restarts" => "restart",
            "holds" => "hold",
            other => panic!("a family without a flag: {other}"),
        };
        let mut seen = Vec::new();
        for (family, _) in sim::Families::NONE.list() {
            let flag = if family == "disk" {
                "disk-faults"
            } else {
                family
            };
            let arg = simulate
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("no --{flag} for the {family} family"));
            let text = arg.get_help().expect("documented").to_string();
            assert!(
                text.contains(keyword(family)),
                "--{flag}: {text:?} does not name its family"
            );
            assert!(!seen.contains(&text), "--{flag} repeats another's help");
            seen.push(text);
        }
        for flag in ["faults", "swarm", "liveness"] {
            let arg = simulate
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .expect("a switch");
            let text = arg.get_help().expect("documented").to_string();
            assert!(!seen.contains(&text), "--{flag} repeats another's help");
            seen.push(text);
        }
    }

    /// A shape's name is one safe path component, whatever the scenario is
    /// called: a sweep clears the directory it names.
    #[test]
    fn a_shape_name_never_names_a_parent_directory() {
        for odd in ["..toml", "...toml", "a/..toml", "we ird:name.toml"] {
            let shape = RunShape {
                scenario: Some(odd.into()),
                ..RunShape::default()
            };
            let name = shape.name();
            assert!(!name.chars().all(|c| c == '.'), "{odd:?} -> {name:?}");
            assert!(!name.contains('/'), "{odd:?} -> {name:?}");
        }
    }

    #[test]
    fn recheck_is_a_fraction_and_jobs_at_least_one() {
        assert_eq!(parse_fraction("0.1"), Ok(0.1));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        for bad in ["2", "nan", "inf", "-0.1", "x"] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_jobs("3"), Ok(3));
        assert!(parse_jobs("0").is_err());
    }

    /// The `cargo xtask` alias builds the sim profile without `--quiet`, so
    /// the first, minutes-long build shows its progress.
    #[test]
    fn the_alias_shows_build_progress() {
        let config =
            std::fs::read_to_string(crate::workspace_root().join(".cargo/config.toml")).unwrap();
        let alias = config
            .lines()
            .find(|l| l.trim_start().starts_with("xtask"))
            .expect("the xtask alias");
        assert!(alias.contains("--profile sim"), "{alias}");
        assert!(!alias.contains("--quiet"), "{alias}");
    }
}
