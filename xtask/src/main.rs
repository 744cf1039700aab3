//! `cargo xtask`: raftlab's command line. `simulate` runs one seeded
//! simulation; `sweep` runs many seeds in parallel; `check` checks a recorded
//! history for linearizability.
//!
//! This is the one place allowed to read the wall clock, spawn threads and
//! write files: it sits outside the determinism boundary and only measures
//! and stores what the simulator computes.

mod bench;
mod bench_cluster;
mod bench_raft;
mod bench_sim;
mod check_cmd;
mod cli;
mod cluster;
mod error;
mod jepsen;
mod modelcheck;
mod mutants;
mod report_cmd;
mod scenario_cmd;
mod sweep;

use check::{Budget, History};
use clap::Parser;
use cli::{Cli, Command, SimulateArgs};
use error::{EXIT_EXPECTATION_FAILED, EXIT_USAGE, Error};
use sim::{SimConfig, Summary, TraceFilter, Tracer};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Counts live heap bytes for `bench raft` (idle otherwise).
#[global_allocator]
static ALLOCATOR: bench_raft::alloc_count::Counting = bench_raft::alloc_count::Counting;

fn main() -> ExitCode {
    let json = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help or --version.
                let _ = e.print();
                return ExitCode::from(0);
            }
            if json {
                let rendered = e.to_string();
                let message = rendered
                    .lines()
                    .next()
                    .unwrap_or("usage error")
                    .trim_start_matches("error: ")
                    .to_string();
                println!("{}", Error::Usage(message).to_json());
            }
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    ExitCode::from(run(cli.command))
}

/// Runs a parsed command line and returns its exit status, reporting an
/// error on stderr (and, under `--json`, as a JSON object on stdout). A
/// panic is an internal error.
fn run(command: Command) -> u8 {
    let json = command.json();
    let result = std::panic::catch_unwind(move || dispatch(command))
        .unwrap_or_else(|_| Err(Error::Internal("panicked (see above)".to_string())));
    match result {
        Ok(code) => code,
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            }
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Runs one subcommand.
fn dispatch(command: Command) -> Result<u8, Error> {
    match command {
        Command::Simulate(args) => simulate(&args),
        Command::Sweep(args) => match &args.action {
            Some(cli::SweepAction::Merge(merge)) => sweep::merge(merge),
            None => sweep::sweep(&args),
        },
        Command::Shrink(args) => scenario_cmd::shrink(&args),
        Command::Replay(args) => scenario_cmd::replay(&args),
        Command::Cluster(args) => cluster::cluster(&args),
        Command::Jepsen(args) => jepsen::jepsen(&args),
        Command::Modelcheck(args) => modelcheck::modelcheck(&args),
        Command::Mutants(args) => mutants::mutants(&args),
        Command::Bench(args) => match &args.what {
            cli::BenchWhat::Check(a) => bench::bench_check(a),
            cli::BenchWhat::Raft(a) => Ok(bench_raft::bench_raft(a)?),
            cli::BenchWhat::Cluster(a) => bench_cluster::bench_cluster(a),
            cli::BenchWhat::Sim(a) => Ok(bench_sim::bench_sim(a)?),
        },
        Command::Check(args) => {
            let code = check_cmd::check(&args)?;
            if args.report {
                let path = report_cmd::write_check_report(&args)?;
                eprintln!("report: {}", path.display());
            }
            Ok(code)
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

fn simulate(args: &SimulateArgs) -> Result<u8, Error> {
    let config = args.config()?;
    let expect = args.shape.scenario()?.map_or(sim::Expect::Ok, |s| s.expect);
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
    let stem = args.shape.file_stem(config.seed);
    let history_path = args.history.clone().unwrap_or_else(|| {
        workspace_root()
            .join("histories/runs")
            .join(format!("{stem}.jsonl"))
    });
    write_history(&outcome.history, &history_path)?;
    let summary = &outcome.summary;
    let code = exit_code(summary, expect);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(summary).map_err(|e| e.to_string())?
        );
    } else {
        print_verdict(summary, &history_path);
        print_expectation(summary, expect);
    }
    if args.report {
        let path = report_cmd::write_run_report(&outcome, &stem, &history_path)?;
        // stdout carries the JSON summary alone under --json.
        if args.json {
            eprintln!("report: {}", path.display());
        } else {
            println!("report: {}", path.display());
        }
    }
    Ok(code)
}

/// A run's exit status, given what its scenario expects: the run's own
/// (0, 1, 2, 3), except 5 when a failure was expected and the run passed.
pub fn exit_code(summary: &Summary, expect: sim::Expect) -> u8 {
    let code = summary.exit_code();
    if expect.is_failure() && code == 0 {
        EXIT_EXPECTATION_FAILED
    } else {
        code as u8
    }
}

/// Says whether a scenario that expects a failure got it.
pub fn print_expectation(summary: &Summary, expect: sim::Expect) {
    if !expect.is_failure() {
        return;
    }
    let what = if expect == sim::Expect::Violation {
        "a safety violation"
    } else {
        "a liveness failure"
    };
    if expect.met_by(summary.exit_code()) {
        println!("expectation met: the scenario expects {what}, and the run shows it");
    } else {
        println!("EXPECTATION FAILED: the scenario expects {what}, and the run did not show it");
    }
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
        "  network: latency {:.1}-{:.1}ms, random loss {:.1}%, duplicate {:.1}% (partitions, crashes and churn drop more)",
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
    if p.hold_share > 0.0 && p.partition_every_ms > 0 {
        nemesis.push(format!(
            "partitions hold {:.0}% of what they cut and replay it {}-{}ms later",
            p.hold_share * 100.0,
            sim::config::HOLD_MIN_MS,
            p.hold_max_ms
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

/// The disk faults of a run in a line: the count of each kind, and the
/// nodes that halted on a corrupt log.
pub fn disk_fault_line(s: &Summary) -> String {
    let total: u64 = s.disk_faults.values().sum();
    let kinds: Vec<String> = s
        .disk_faults
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let mut line = if total == 0 {
        "disk faults: none".to_string()
    } else {
        format!("disk faults: {total} ({})", kinds.join(", "))
    };
    if s.failed_nodes.is_empty() {
        line += "; no node halted";
    } else {
        line += &format!(
            "; {} halted on a corrupt log: {}",
            s.failed_nodes.len(),
            s.failed_nodes.join("; ")
        );
    }
    line
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
        "  faults: {} crashes, {} partitions; {} messages, {} dropped (random loss, partitions and dead receivers), {} duplicated",
        s.stats.crashes,
        s.stats.partitions,
        s.stats.messages,
        s.stats.messages_dropped,
        s.stats.messages_duplicated
    );
    println!("  {}", disk_fault_line(s));
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
    if st.pauses + st.fast_restarts + st.long_delayed_messages + s.stats.messages_held > 0
        || !st.slow_disks.is_empty()
    {
        println!(
            "  process and network: {} pauses, {} fast restarts, {} long-delayed messages, {} held by partitions and replayed, slow disks {:?}",
            st.pauses,
            st.fast_restarts,
            st.long_delayed_messages,
            s.stats.messages_held,
            st.slow_disks
        );
    }
    if s.stats.lease_reads > 0 {
        println!(
            "  lease reads: {} confirmed, each checked by lease safety within the drift bound",
            s.stats.lease_reads
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
        assert!(err.message().contains("no-such-scenario.toml"), "{err}");
        assert_eq!(err.exit_code(), EXIT_USAGE);
    }

    /// The exit status of a command line, as `main` would return it (clap's
    /// own errors are usage errors).
    fn status(args: &[&str]) -> u8 {
        match Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied())) {
            Ok(cli) => run(cli.command),
            Err(e) if e.use_stderr() => EXIT_USAGE,
            Err(_) => 0,
        }
    }

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-exit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// Every user mistake is a usage error (64), not an internal one (70).
    #[test]
    fn usage_errors_exit_64() {
        let no_seed = temp("no-seed.toml", "description = \"pins nothing\"\n");
        let late = temp(
            "late.toml",
            "duration_ms = 2000\n[[events]]\nat_ms = 5000\naction = { kind = \"heal\" }\n",
        );
        let malformed = temp("malformed.toml", "nodes = \"five\"\n");
        let (no_seed, late, malformed) = (
            no_seed.to_str().unwrap(),
            late.to_str().unwrap(),
            malformed.to_str().unwrap(),
        );
        for args in [
            &["simulate", "--seed", "1", "--nodes", "2"][..],
            &["simulate", "--seed", "1", "--nodes", "9"],
            &["simulate", "--seed", "1", "--clients", "0"],
            &["simulate", "--seed", "1", "--duration", "soon"],
            &["simulate", "--seed", "1", "--scenario", "no-such-scenario"],
            &["simulate", "--seed", "1", "--scenario", malformed],
            &["simulate", "--seed", "1", "--scenario", late],
            &["simulate", "--seed", "1", "--trace-node", "99"],
            &["simulate", "--seed", "1", "--trace-node", "0"],
            &["sweep"],
            &["sweep", "--seeds", "1..=2", "--recheck", "2"],
            &["sweep", "--seeds", "1..=2", "--recheck", "nan"],
            &["sweep", "--seeds", "1..=2", "--recheck", "-0.5"],
            &["sweep", "--seeds", "1..=2", "--jobs", "0"],
            &["sweep", "--seeds", "1..=2", "--shard", "3/4"],
            &["sweep", "--seeds", "1..=2", "--nodes", "1"],
            &["sweep", "merge", "/no/such/shard.json"],
            &["replay", no_seed],
            &["replay", "/no/such/file.toml"],
            &["shrink", "--seed", "1", "--clients", "0"],
            // A seed that passes is refused, with the reason.
            &[
                "shrink",
                "--seed",
                "1",
                "--faults",
                "off",
                "--duration",
                "1s",
            ],
        ] {
            assert_eq!(status(args), EXIT_USAGE, "{args:?}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_summary_is_bad_input() {
        let bad = temp("not-a-summary.json", "{\"hello\": 1}");
        assert_eq!(
            status(&["sweep", "merge", bad.to_str().unwrap()]),
            error::EXIT_INPUT
        );
    }

    #[test]
    fn with_json_an_error_is_a_json_object() {
        let cli = Cli::try_parse_from(["xtask", "simulate", "--seed", "1", "--json"]).unwrap();
        assert!(cli.command.json());
        let e = Error::Usage("--nodes must be 3 to 7".into());
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"], "--nodes must be 3 to 7");
        assert_eq!(v["kind"], "usage");
        assert_eq!(v["exit_code"], 64);
        assert_eq!(Error::from("disk full".to_string()).exit_code(), 70);
    }

    /// clock-skew-lease-violation keeps its promise on every seed of 1..=20:
    /// a stale read the checker catches, never a pass (which would exit 5).
    #[test]
    fn the_lease_violation_scenario_fails_on_every_seed() {
        let (_, scenario) = scenario_cmd::load("clock-skew-lease-violation").unwrap();
        assert_eq!(scenario.expect, sim::Expect::Violation);
        let passed: Vec<u64> = (1..=20)
            .filter(|&seed| {
                let config = scenario.config("clock-skew-lease-violation", seed).unwrap();
                let outcome =
                    run_one(&config, TraceFilter::Off, false, &Budget::default()).unwrap();
                exit_code(&outcome.summary, scenario.expect) != 1
            })
            .collect();
        assert!(passed.is_empty(), "expectation not met on seeds {passed:?}");
    }

    /// A scenario expecting a violation that passes exits 5, and says so.
    #[test]
    fn an_expected_violation_that_does_not_happen_exits_5() {
        let text =
            fs::read_to_string(workspace_root().join("scenarios/clock-skew-lease-violation.toml"))
                .unwrap()
                .replace("lease_reads = true", "lease_reads = false");
        let path = temp("expects-but-passes.toml", &text);
        let mut args = scenario_run(path.to_str().unwrap(), 1);
        args.shape.duration = Some(4_000 * sim::queue::MS);
        assert_eq!(simulate(&args), Ok(error::EXIT_EXPECTATION_FAILED));
        let _ = fs::remove_file(args.history.expect("set"));
    }

    /// shrink exits 0 when it wrote the shrunk file.
    #[test]
    fn a_successful_shrink_exits_0() {
        let out = std::env::temp_dir().join(format!("xtask-shrunk-{}.toml", std::process::id()));
        let out_str = out.to_str().unwrap().to_string();
        assert_eq!(
            status(&[
                "shrink",
                "--seed",
                "1",
                "--scenario",
                "clock-skew-lease-violation",
                "--out",
                &out_str,
            ]),
            0
        );
        let text = fs::read_to_string(&out).unwrap();
        assert!(text.contains("expect = \"violation\""), "{text}");
        let _ = fs::remove_file(out);
    }

    /// replay: the run's status when reproduced, 4 when the trace hash
    /// differs or none is pinned.
    #[test]
    fn replay_tells_a_faithful_file_from_a_tampered_one() {
        let (_, scenario) = scenario_cmd::load("leader-isolation").unwrap();
        let mut config = scenario.config("leader-isolation", 1).unwrap();
        config.duration = 3_000 * sim::queue::MS;
        config.script.retain(|f| f.at_ms < 3_000);
        let outcome = run_one(&config, TraceFilter::Off, false, &Budget::default()).unwrap();
        assert_eq!(outcome.summary.exit_code(), 0);
        let dir = std::env::temp_dir().join(format!("xtask-replay-{}", std::process::id()));
        let faithful = dir.join("faithful.toml");
        scenario_cmd::write_scenario(
            &config,
            &outcome.summary,
            sim::Expect::Ok,
            "test",
            &faithful,
        )
        .unwrap();
        let text = fs::read_to_string(&faithful).unwrap();
        let tampered = temp(
            "tampered.toml",
            &text.replace(&outcome.summary.trace_hash, "0000000000000000"),
        );
        let unpinned = temp(
            "unpinned.toml",
            &text.replace(
                &format!("trace_hash = \"{}\"", outcome.summary.trace_hash),
                "",
            ),
        );
        let replay = |p: &Path| {
            scenario_cmd::replay(&cli::ReplayArgs {
                file: p.to_path_buf(),
                report: false,
            })
        };
        assert_eq!(replay(&faithful), Ok(0));
        assert_eq!(replay(&tampered), Ok(error::EXIT_REPLAY_DIFFERS));
        assert_eq!(replay(&unpinned), Ok(error::EXIT_REPLAY_DIFFERS));
    }

    /// A run's files are named by what produced it: a scenario's or a
    /// flag's run never overwrites the default run's `seed-N` files.
    #[test]
    fn files_are_named_by_scenario_seed_and_flags() {
        let default = RunShape::default();
        let scenario = RunShape {
            scenario: Some("crash-storm".into()),
            ..RunShape::default()
        };
        let by_path = RunShape {
            scenario: Some("histories/shrunk/seed-2.toml".into()),
            ..RunShape::default()
        };
        let flags = RunShape {
            nodes: Some(3),
            faults: Some(cli::Switch::Off),
            ..RunShape::default()
        };
        assert_eq!(default.file_stem(2), "seed-2");
        assert_eq!(scenario.file_stem(2), "crash-storm-seed-2");
        assert_eq!(by_path.file_stem(2), "seed-2-seed-2");
        assert_eq!(flags.file_stem(2), "default-nodes-3-faults-off-seed-2");
    }

    /// The human output shows disk faults and halts (not only --json).
    #[test]
    fn disk_faults_and_halts_are_in_the_human_output() {
        let config = SimConfig {
            duration: 500 * sim::queue::MS,
            ..SimConfig::new(3)
        };
        let outcome = run_one(&config, TraceFilter::Off, false, &Budget::default()).unwrap();
        let mut s = outcome.summary;
        s.disk_faults = [("torn".to_string(), 2), ("bit flip".to_string(), 1)].into();
        s.failed_nodes = vec!["n2: wal.log at 4096".into()];
        assert_eq!(
            disk_fault_line(&s),
            "disk faults: 3 (1 bit flip, 2 torn); 1 halted on a corrupt log: n2: wal.log at 4096"
        );
        s.disk_faults.clear();
        s.failed_nodes.clear();
        assert_eq!(disk_fault_line(&s), "disk faults: none; no node halted");
    }

    /// A single run's report is named like its history and leaves the
    /// sweeps' index alone.
    #[test]
    fn a_run_report_never_writes_an_index() {
        let config = cli::RunShape::default().config(3).unwrap();
        let config = SimConfig {
            duration: 500 * sim::queue::MS,
            ..config
        };
        let outcome = run_one(&config, TraceFilter::Off, false, &Budget::default()).unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        let path =
            report_cmd::write_run_report_in(&dir, &outcome, "x-seed-3", Path::new("h.jsonl"))
                .unwrap();
        assert_eq!(path, dir.join("x-seed-3.html"));
        assert!(fs::read_to_string(&path).unwrap().contains("h.jsonl"));
        assert!(!dir.join("index.html").exists());
    }
}
