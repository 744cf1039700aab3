//! `cargo xtask`: raftlab's command line. `simulate` runs one seeded
//! simulation; `sweep` runs many seeds in parallel; `check` checks a recorded
//! history for linearizability.
//!
//! This is the one place allowed to read the wall clock, spawn threads and
//! write files: it sits outside the determinism boundary and only measures
//! and stores what the simulator computes.

mod bench;
mod bench_raft;
mod check_cmd;
mod cli;
mod cluster;
mod report_cmd;
mod scenario_cmd;
mod sweep;

use check::{Budget, History};
use clap::Parser;
use cli::{Cli, Command, SimulateArgs};
use sim::{SimConfig, Summary, TraceFilter, Tracer};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Exit status for a usage error (clap's own would be 2, which means
/// "undecided" here).
const EXIT_USAGE: u8 = 64;
/// Exit status for an internal error (a file that cannot be written, say).
const EXIT_INTERNAL: u8 = 70;

/// Counts live heap bytes for `bench raft` (idle otherwise).
#[global_allocator]
static ALLOCATOR: bench_raft::alloc_count::Counting = bench_raft::alloc_count::Counting;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Simulate(args) => simulate(&args),
        Command::Sweep(args) => match &args.action {
            Some(cli::SweepAction::Merge(merge)) => sweep::merge(merge),
            None => sweep::sweep(&args),
        },
        Command::Shrink(args) => scenario_cmd::shrink(&args),
        Command::Replay(args) => scenario_cmd::replay(&args),
        Command::Cluster(args) => cluster::cluster(&args),
        Command::Bench(args) => match &args.what {
            cli::BenchWhat::Check(a) => bench::bench_check(a),
            cli::BenchWhat::Raft(a) => bench_raft::bench_raft(a),
        },
        Command::Check(args) => check_cmd::check(&args).and_then(|code| {
            if args.report {
                let path = report_cmd::write_check_report(&args)?;
                eprintln!("report: {}", path.display());
            }
            Ok(code)
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// The workspace root, where histories/ and reports/ live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Runs one simulation and times it. Tracing goes to stdout, or to stderr
/// when stdout carries JSON.
pub fn run_one(
    config: &SimConfig,
    trace: TraceFilter,
    trace_to_stderr: bool,
    budget: &Budget,
) -> Result<sim::Outcome, String> {
    let tracer = match trace {
        TraceFilter::Off => Tracer::silent(),
        filter => {
            let out: Box<dyn Write> = if trace_to_stderr {
                Box::new(BufWriter::new(std::io::stderr()))
            } else {
                Box::new(BufWriter::new(std::io::stdout()))
            };
            let mut out = out;
            Tracer::new(
                filter,
                Box::new(move |line| {
                    let _ = writeln!(out, "{line}");
                }),
            )
        }
    };
    let started = Instant::now();
    let mut outcome = sim::run(config, tracer, budget)?;
    outcome.summary.wall_time_ms = started.elapsed().as_millis() as u64;
    Ok(outcome)
}

fn simulate(args: &SimulateArgs) -> Result<u8, String> {
    let config = args.config()?;
    let filter = match (args.trace, args.trace_node) {
        (_, Some(n)) => TraceFilter::Node(n),
        (true, None) => TraceFilter::All,
        (false, None) => TraceFilter::Off,
    };
    if !args.json {
        print_header(&config);
    }
    let budget = Budget::default();
    let outcome = run_one(&config, filter, args.json, &budget)?;
    let history_path = args.history.clone().unwrap_or_else(|| {
        workspace_root()
            .join("histories/runs")
            .join(format!("seed-{}.jsonl", config.seed))
    });
    write_history(&outcome.history, &history_path)?;
    let summary = &outcome.summary;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(summary).map_err(|e| e.to_string())?
        );
    } else {
        print_verdict(summary, &history_path);
    }
    if args.report {
        let path = report_cmd::write_run_report(&outcome)?;
        // stdout carries the JSON summary alone under --json.
        if args.json {
            eprintln!("report: {}", path.display());
        } else {
            println!("report: {}", path.display());
        }
    }
    Ok(summary.exit_code() as u8)
}

/// Writes a history as JSON lines, creating the directory.
pub fn write_history(history: &History, path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file =
        fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    history
        .write_jsonl(BufWriter::new(file))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Prints the seed, the configuration and what the seed drew.
pub fn print_header(config: &SimConfig) {
    let p = sim::Params::draw(config);
    println!(
        "raftlab simulate: seed {}, {} nodes, {} clients, {}s of workload, faults {}",
        config.seed,
        config.nodes,
        config.clients,
        config.duration as f64 / 1e9,
        if config.faults { "on" } else { "off" }
    );
    println!(
        "  drawn: tick {}ms, election timeout {}-{} ticks, heartbeat {} ticks, {} keys",
        p.tick_ms,
        p.election_ticks,
        2 * p.election_ticks - 1,
        p.heartbeat_ticks,
        p.keys
    );
    println!(
        "  network: latency {:.1}-{:.1}ms, drop {:.1}%, duplicate {:.1}%",
        p.latency_min_us as f64 / 1000.0,
        p.latency_max_us as f64 / 1000.0,
        p.drop_rate * 100.0,
        p.duplicate_rate * 100.0
    );
    let mut nemesis = Vec::new();
    if p.partition_every_ms > 0 {
        nemesis.push(format!(
            "a partition every ~{}ms lasting up to {}ms",
            p.partition_every_ms, p.partition_max_ms
        ));
    }
    if p.crash_every_ms > 0 {
        nemesis.push(format!(
            "a crash every ~{}ms, down up to {}ms",
            p.crash_every_ms, p.downtime_max_ms
        ));
    }
    if p.pause_every_ms > 0 {
        nemesis.push(format!(
            "a pause every ~{}ms of up to {}ms",
            p.pause_every_ms, p.pause_max_ms
        ));
    }
    if p.fast_restart_every_ms > 0 {
        nemesis.push(format!(
            "a fast restart every ~{}ms",
            p.fast_restart_every_ms
        ));
    }
    if p.long_delay_rate > 0.0 {
        nemesis.push(format!(
            "{:.1}% of messages delayed up to {}ms",
            p.long_delay_rate * 100.0,
            p.long_delay_max_ms
        ));
    }
    if !nemesis.is_empty() {
        println!("  nemesis: {}", nemesis.join("; "));
    }
    let slow = if p.slow_disks.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = p.slow_disks.iter().map(|n| format!("n{n}")).collect();
        format!(
            "; slow disks {} ({}x, stalls up to {}ms)",
            names.join(","),
            p.slow_disk_factor,
            p.disk_stall_max_ms
        )
    };
    println!(
        "  disks: writes take ~{}us ({:.1}% up to {}x longer), {} in flight per replica{slow}",
        p.disk_latency_us,
        p.disk_tail_rate * 100.0,
        p.disk_tail_factor,
        p.writes_in_flight
    );
    println!(
        "  clients: request timeout {}ms, give up after {}ms, think up to {}ms",
        p.request_timeout_ms, p.op_deadline_ms, p.think_max_ms
    );
    println!(
        "  fault families: {}{}",
        p.families,
        if config.swarm && config.faults {
            " (swarm: drawn for this seed)"
        } else {
            ""
        }
    );
    if p.families.clocks {
        let drifts: Vec<String> = p
            .clock_drift_ppm
            .iter()
            .take(config.nodes)
            .enumerate()
            .map(|(i, d)| format!("n{} {:+.1}%", i + 1, *d as f64 / 10_000.0))
            .collect();
        println!(
            "  clocks: drift {}; a jump every ~{}ms of up to {}ms",
            drifts.join(", "),
            p.clock_jump_every_ms,
            p.clock_jump_max_ms
        );
    }
    let onoff = |b: bool| if b { "on" } else { "off" };
    let r = &p.raft;
    println!(
        "  raft{}: pre-vote {}, check-quorum {}, lease reads {}, appends of at most {} entries / {} bytes, {} in flight, snapshot chunks of {} bytes",
        if config.vary_raft { " (drawn)" } else { "" },
        onoff(r.pre_vote),
        onoff(r.check_quorum),
        onoff(r.lease_reads),
        r.max_entries_per_append,
        r.max_bytes_per_append,
        r.max_inflight_appends,
        r.max_snapshot_chunk_bytes
    );
    if r.lease_reads {
        println!("  reads: lease-based (safe within a 25% relative clock drift)");
    }
    if p.churn_every_ms > 0 {
        println!(
            "  churn: a membership step every ~{}ms (add, remove, replace, transfer leadership)",
            p.churn_every_ms
        );
    }
    if p.snapshot_every > 0 {
        println!(
            "  snapshots: every {} applied entries, {} kept after each",
            p.snapshot_every, p.snapshot_keep
        );
    } else {
        println!("  snapshots: off");
    }
}

/// Prints the verdict, the violations and the counts of a run.
pub fn print_verdict(s: &Summary, history: &Path) {
    let verdict = match (s.exit_code(), s.linearizable) {
        (0, _) => "OK: linearizable, every invariant held".to_string(),
        (2, _) => "UNDECIDED: the checker ran out of budget; no invariant broke".to_string(),
        (3, _) => {
            "LIVENESS FAILURE: safe (linearizable, every invariant held), but the healed cluster did not recover in time".to_string()
        }
        (_, Some(true)) => "VIOLATION: linearizable, but an invariant broke".to_string(),
        (_, Some(false)) => "VIOLATION: not linearizable".to_string(),
        (_, None) => "VIOLATION: an invariant broke (linearizability undecided)".to_string(),
    };
    println!("verdict: {verdict}");
    for v in &s.violations {
        println!("  - {v}");
    }
    for l in &s.liveness {
        println!("  - liveness: {l}");
    }
    println!(
        "  operations: {} ok, {} failed, {} unknown",
        s.stats.ops_ok, s.stats.ops_failed, s.stats.ops_unknown
    );
    println!(
        "  faults: {} crashes, {} partitions; {} messages, {} dropped, {} duplicated",
        s.stats.crashes,
        s.stats.partitions,
        s.stats.messages,
        s.stats.messages_dropped,
        s.stats.messages_duplicated
    );
    println!(
        "  raft: {} elections, {} entries committed; {} snapshots taken, {} installed, at most {} entries in a log",
        s.elections,
        s.commits,
        s.stats.snapshots_taken,
        s.stats.snapshots_installed,
        s.stats.max_log_entries
    );
    let m = &s.stats.membership;
    if m.completed > 0 || m.transfers > 0 {
        println!(
            "  membership: {} changes completed ({} nodes added, {} removed, {} replaced, {} removing the leader), {} leadership transfers, {} nodes retired",
            m.completed,
            m.nodes_added,
            m.nodes_removed,
            m.replacements,
            m.leader_removals,
            m.transfers,
            m.retired
        );
    }
    let st = &s.storage;
    println!(
        "  storage: {} writes; fsync latency median {}us, p99 {}us, max {}us; entries per fsync median {}, max {}; {} writes in flight at crashes",
        st.writes,
        st.fsync_latency_median_us,
        st.fsync_latency_p99_us,
        st.fsync_latency_max_us,
        st.entries_per_fsync_median,
        st.entries_per_fsync_max,
        st.writes_in_flight_at_crashes
    );
    if st.pauses + st.fast_restarts + st.long_delayed_messages > 0 || !st.slow_disks.is_empty() {
        println!(
            "  process and network: {} pauses, {} fast restarts, {} long-delayed messages, slow disks {:?}",
            st.pauses, st.fast_restarts, st.long_delayed_messages, st.slow_disks
        );
    }
    println!(
        "  trace: {} events, hash {}; {:.1}s simulated in {:.2}s",
        s.trace_events,
        s.trace_hash,
        s.sim_time_ms as f64 / 1000.0,
        s.wall_time_ms as f64 / 1000.0
    );
    println!("  history: {}", history.display());
    println!("replay: {}", s.replay);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli::RunShape;

    fn scenario_run(name: &str, seed: u64) -> SimulateArgs {
        SimulateArgs {
            seed,
            shape: RunShape {
                scenario: Some(name.to_string()),
                ..RunShape::default()
            },
            json: true,
            trace: false,
            trace_node: None,
            history: Some(std::env::temp_dir().join(format!(
                "xtask-simulate-{}-{name}-{seed}.jsonl",
                std::process::id()
            ))),
            report: false,
        }
    }

    /// The exit status tells a passing run (0), a safety violation (1) and a
    /// liveness failure (3) apart.
    #[test]
    fn simulate_exit_status_tells_safety_from_liveness() {
        for (name, seed, status) in [
            ("leader-isolation", 1, 0),
            ("clock-skew-lease-violation", 2, 1),
            ("quorum-never-heals", 1, 3),
        ] {
            let args = scenario_run(name, seed);
            assert_eq!(simulate(&args), Ok(status), "{name} seed {seed}");
            let _ = fs::remove_file(args.history.expect("set"));
        }
    }

    #[test]
    fn an_unknown_scenario_is_an_error_naming_the_file() {
        let err = simulate(&scenario_run("no-such-scenario", 1)).unwrap_err();
        assert!(err.contains("no-such-scenario.toml"), "{err}");
    }
}
