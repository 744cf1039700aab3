//! `cargo xtask jepsen`: a Jepsen-style test of the real cluster.
//!
//! Real `raftlab-node` processes ([`procs`]), concurrent clients through
//! crates/client recording a history ([`history`]), a nemesis drawn from the
//! seed ([`nemesis`]) carried out on the processes and, as root, on network
//! namespaces ([`faults`], [`netns`]); then the heal, the checks on the
//! healed cluster ([`after_heal`]), the history through crates/check, the
//! history as Jepsen EDN ([`edn`]) and an HTML report ([`html`]).
//!
//! The run is not deterministic: it runs in real time on real processes.
//! The seed fixes the schedule (what strikes when) and the clients' draws,
//! not the interleaving.

mod after_heal;
mod edn;
mod faults;
mod history;
mod html;
mod nemesis;
mod netns;
mod procs;
mod rng;

use crate::error::Error;
use clap::{Args, ValueEnum};
use nemesis::{Families, Step};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Exit status of a run stopped by Ctrl-C (after cleaning up).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Set by Ctrl-C.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A node setting that must make the test fail (see `raftlab-node --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnsafeSetting {
    /// `--unsafe-no-fsync`: writes acknowledged before they are durable.
    NoFsync,
    /// `--unsafe-local-reads`: reads answered from the node's own copy.
    LocalReads,
}

impl UnsafeSetting {
    fn flag(self) -> &'static str {
        match self {
            UnsafeSetting::NoFsync => "--unsafe-no-fsync",
            UnsafeSetting::LocalReads => "--unsafe-local-reads",
        }
    }

    fn name(self) -> &'static str {
        match self {
            UnsafeSetting::NoFsync => "no-fsync",
            UnsafeSetting::LocalReads => "local-reads",
        }
    }

    fn why(self) -> &'static str {
        match self {
            UnsafeSetting::NoFsync => {
                "the nodes ran with the UNSAFE setting unsafe_no_fsync: they acknowledge writes \
                 before any disk holds them, so a kill -9 of a majority loses acknowledged writes \
                 (a new leader is elected without them and the rest are overwritten)"
            }
            UnsafeSetting::LocalReads => {
                "the nodes ran with the UNSAFE setting unsafe_local_reads: they answer reads from \
                 their own copy without ReadIndex, so a follower behind the leader, or a deposed \
                 leader, returns a value that a completed write had already replaced"
            }
        }
    }
}

/// Arguments of `jepsen`.
#[derive(Debug, Args)]
pub struct JepsenArgs {
    /// How many nodes (founding voters).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(3..=9))]
    pub nodes: u16,
    /// How long the clients run under the nemesis (e.g. 60s, 90s, 2m).
    #[arg(long, default_value = "60s", value_parser = crate::cli::parse_duration)]
    pub duration: u64,
    /// Concurrent clients (Jepsen processes).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clients: u16,
    /// Fault families: kill, pause, partition, membership, all or none,
    /// separated by commas. Partitions need root (network namespaces); without,
    /// the run says so and goes on with the rest.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// The seed of the schedule and the clients' draws (default: drawn from
    /// the clock, and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Strike exactly this schedule instead of drawing one: steps
    /// `AT+LASTS:FAULT` separated by commas, as a run prints its own (e.g.
    /// `2s+3s:kill-majority-pause-rest`).
    #[arg(long, value_name = "SCHEDULE")]
    pub script: Option<String>,
    /// Keys per generation (they rotate every 10 s): registers, registers
    /// with compare-and-swap and append lists in turn.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(3..=60))]
    pub keys: u16,
    /// Run the nodes with an UNSAFE setting, to see the test fail.
    #[arg(long, value_enum, value_name = "SETTING")]
    pub unsafe_setting: Option<UnsafeSetting>,
    /// How long the healed cluster has to serve again and converge.
    #[arg(long, default_value = "20s", value_parser = crate::cli::parse_duration)]
    pub recovery_bound: u64,
    /// Wall-clock limit of the linearizability check (past it: undecided).
    #[arg(long, default_value = "120s", value_parser = crate::cli::parse_duration)]
    pub check_timeout: u64,
    /// Run on loopback even as root (no namespaces: no partitions).
    #[arg(long)]
    pub loopback: bool,
    /// Also write an HTML report (reports/jepsen-....html).
    #[arg(long)]
    pub report: bool,
}

/// The node binary: `RAFTLAB_NODE` if set, else built with cargo (as
/// `cargo xtask cluster` does).
fn node_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("RAFTLAB_NODE") {
        return Ok(PathBuf::from(path));
    }
    let root = crate::workspace_root();
    eprintln!("building raftlab-node ...");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "node", "--bin", "raftlab-node"])
            .current_dir(&root)
            .status()
            .map_err(|e| Error::Internal(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return Err(Error::Internal("building raftlab-node failed".into()));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug").join("raftlab-node"))
}

/// Sleeps until `t` (ms after `origin`), calling `tick` every 500 ms while
/// more than a second is left (a tick polls the nodes and may take a
/// moment; the heal must not wait for it); false if interrupted first.
fn sleep_until(origin: Instant, t_ms: u64, mut tick: impl FnMut()) -> bool {
    let mut last_tick = Instant::now();
    let until = Duration::from_millis(t_ms);
    while origin.elapsed() < until {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return false;
        }
        let left = until.saturating_sub(origin.elapsed());
        if last_tick.elapsed() >= Duration::from_millis(500) && left > Duration::from_secs(1) {
            tick();
            last_tick = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs the test; the exit status (0 ok, 1 not linearizable or data lost,
/// 2 undecided, 3 not recovered after the heal, 130 interrupted).
pub fn jepsen(args: &JepsenArgs) -> Result<u8, Error> {
    let families = Families::parse(&args.nemesis).map_err(Error::Usage)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let duration_ms = args.duration / 1_000_000;
    if duration_ms < 1_000 {
        return Err(Error::Usage("--duration must be at least 1s".into()));
    }
    let nodes = args.nodes as usize;
    let mut steps: Vec<Step> = match &args.script {
        Some(text) => nemesis::parse(text).map_err(Error::Usage)?,
        None => nemesis::draw(seed, duration_ms, nodes, families),
    };
    if let Some(last) = steps.last()
        && last.at_ms + last.lasts_ms > duration_ms
    {
        return Err(Error::Usage(format!(
            "the schedule's last fault ends at {} ms, after --duration",
            last.at_ms + last.lasts_ms
        )));
    }

    // Namespaces, or loopback with partitions off (and saying so).
    let wants_netns = steps.iter().any(|s| s.fault.needs_netns());
    let net_problem = if !wants_netns {
        None
    } else if args.loopback {
        Some("--loopback given".to_string())
    } else {
        netns::available().err()
    };
    if let Some(why) = &net_problem {
        let before = steps.len();
        steps.retain(|s| !s.fault.needs_netns());
        println!(
            "PARTITIONS OFF: {why}. This run has kill and pause only ({} partition step(s) \
             dropped from the schedule).",
            before - steps.len()
        );
    }
    let use_netns = wants_netns && net_problem.is_none();

    let stem = match args.unsafe_setting {
        Some(u) => format!("jepsen-unsafe-{}-seed-{seed}", u.name()),
        None => format!("jepsen-seed-{seed}"),
    };
    let schedule = nemesis::to_text(&steps);
    println!(
        "jepsen: {nodes} real raftlab-node processes, {} clients, {} s, nemesis {}, seed {seed}{}",
        args.clients,
        duration_ms as f64 / 1000.0,
        families.names(),
        args.unsafe_setting.map_or(String::new(), |u| format!(
            ", UNSAFE node setting {}",
            u.flag()
        ))
    );
    println!(
        "network: {}",
        if use_netns {
            "a network namespace per node, veth pairs and a bridge (partitions on)"
        } else {
            "loopback (no partitions)"
        }
    );
    println!("schedule ({} faults): {schedule}", steps.len());
    println!(
        "NOT DETERMINISTIC: real time and real processes. The seed fixes the schedule and the \
         clients' draws, not the run; --script '{schedule}' strikes the same faults again."
    );

    let binary = node_binary()?;
    if !binary.exists() {
        return Err(Error::Internal(format!(
            "no node binary at {}",
            binary.display()
        )));
    }
    netns::remove_stale();
    let dir = std::env::temp_dir().join(format!("raftlab-jepsen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));

    let result = run(
        args, seed, &steps, use_netns, &binary, &dir, &stem, &schedule,
    );
    // The cluster and the namespaces are gone (dropped inside `run`); the
    // data is removed, the logs kept only when the run failed.
    let keep_logs = !matches!(result, Ok(0));
    for i in 1..=nodes + nemesis::MAX_ADDED {
        let _ = std::fs::remove_dir_all(dir.join(format!("node{i}")));
    }
    if keep_logs {
        eprintln!("node logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// What [`run`] counted, for the summary.
struct Counts {
    ok: usize,
    failed: usize,
    unknown: usize,
}

fn counts(history: &check::History) -> Counts {
    let mut c = Counts {
        ok: 0,
        failed: 0,
        unknown: 0,
    };
    if let Ok(ops) = history.operations() {
        for op in ops {
            match op.outcome {
                check::Outcome::Ok(_) => c.ok += 1,
                check::Outcome::Fail => c.failed += 1,
                check::Outcome::Unknown => c.unknown += 1,
            }
        }
    }
    c
}

#[allow(clippy::too_many_arguments)]
fn run(
    args: &JepsenArgs,
    seed: u64,
    steps: &[Step],
    use_netns: bool,
    binary: &std::path::Path,
    dir: &std::path::Path,
    stem: &str,
    schedule: &str,
) -> Result<u8, Error> {
    let nodes = args.nodes as usize;
    let net = if use_netns {
        Some(netns::Net::create(nodes + nemesis::MAX_ADDED).map_err(Error::Internal)?)
    } else {
        None
    };
    // The founders' addresses, then the spare ones of nodes that join.
    let slots = nodes + nemesis::MAX_ADDED;
    let mut addrs: Vec<(String, String, Option<String>)> = match &net {
        Some(net) => (0..slots)
            .map(|i| {
                (
                    format!("{}:8080", net.ip(i)),
                    format!("{}:9080", net.ip(i)),
                    Some(net.namespace(i)),
                )
            })
            .collect(),
        None => {
            let ports = procs::free_ports(2 * slots).map_err(Error::Internal)?;
            (0..slots)
                .map(|i| {
                    (
                        format!("127.0.0.1:{}", ports[2 * i]),
                        format!("127.0.0.1:{}", ports[2 * i + 1]),
                        None,
                    )
                })
                .collect()
        }
    };
    let token = format!("jepsen-{seed}-{}", std::process::id());
    let mut extra: Vec<String> = [
        "--admin-token",
        &token,
        // Snapshots often, so that restarted nodes catch up by snapshot too.
        "--snapshot-every",
        "500",
        "--snapshot-keep",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(u) = args.unsafe_setting {
        extra.push(u.flag().into());
    }
    let spare = addrs.split_off(nodes);
    let mut cluster = procs::Cluster::new(binary, dir, &addrs, extra);
    for i in 0..nodes {
        cluster.spawn(i, true).map_err(Error::Internal)?;
    }
    if cluster.wait_leader(Duration::from_secs(30)).is_none() {
        return Err(Error::Internal(format!(
            "no leader within 30 s of the start; see the logs in {}",
            dir.display()
        )));
    }

    let origin = Instant::now();
    let shared = Arc::new(history::Shared {
        recorder: history::Recorder::new(origin),
        endpoints: RwLock::new(cluster.endpoints()),
        stop: AtomicBool::new(false),
        keys: Mutex::new(Default::default()),
    });
    let workers: Vec<_> = (1..=u64::from(args.clients))
        .map(|p| {
            let shared = shared.clone();
            let keys = args.keys as usize;
            std::thread::spawn(move || history::client_loop(shared, p, seed, keys, origin))
        })
        .collect();

    let duration_ms = args.duration / 1_000_000;
    let mut nem = faults::Nemesis::new(&mut cluster, net.as_ref(), &shared, token, seed);
    nem.spare = spare.into();
    nem.observe_leader();
    let mut crashed_on_their_own = Vec::new();
    let mut tick = |nem: &mut faults::Nemesis| {
        nem.observe_leader();
        for (id, status) in nem.cluster.exited() {
            crashed_on_their_own.push(format!("node {id} exited on its own ({status})"));
        }
    };
    let mut interrupted = false;
    for step in steps {
        if !sleep_until(origin, step.at_ms, || tick(&mut nem)) {
            interrupted = true;
            break;
        }
        println!(
            "{:>7.1}s  {} ({:.1} s)",
            origin.elapsed().as_secs_f64(),
            step.fault.name(),
            step.lasts_ms as f64 / 1000.0
        );
        let active = nem.begin(step);
        let on_time = sleep_until(origin, step.at_ms + step.lasts_ms, || tick(&mut nem));
        nem.heal(active);
        if !on_time {
            interrupted = true;
            break;
        }
    }
    if !interrupted {
        interrupted = !sleep_until(origin, duration_ms, || tick(&mut nem));
    }
    shared.stop.store(true, Ordering::SeqCst);
    nem.heal_all();
    nem.end_of_workload();
    for w in workers {
        let _ = w.join();
    }
    if interrupted {
        eprintln!("interrupted: every node stopped, every namespace removed");
        return Ok(EXIT_INTERRUPTED);
    }
    let workload_end_ns = shared.recorder.now_ns();
    println!(
        "{:>7.1}s  workload over, everything healed; checking the healed cluster ...",
        origin.elapsed().as_secs_f64()
    );
    let after = after_heal::check(
        nem.cluster,
        &shared,
        Duration::from_nanos(args.recovery_bound),
    );
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("interrupted: every node stopped, every namespace removed");
        return Ok(EXIT_INTERRUPTED);
    }
    nem.observe_leader();
    let timeline = std::mem::take(&mut nem.events);
    let fault_counts = std::mem::take(&mut nem.counts);
    let mut notes = std::mem::take(&mut nem.notes);
    notes.extend(crashed_on_their_own);
    drop(nem);
    let end_ns = shared.recorder.now_ns();
    let nodes_seen = cluster.nodes.len() as u64;
    drop(cluster);
    drop(net);

    // The history, as JSON lines and as Jepsen EDN.
    let history = shared.recorder.history();
    let out_dir = crate::workspace_root().join("histories/jepsen");
    let history_path = out_dir.join(format!("{stem}.jsonl"));
    crate::write_history(&history, &history_path).map_err(Error::Internal)?;
    let edn_path = out_dir.join(format!("{stem}.edn"));
    std::fs::write(&edn_path, edn::history_edn(&history, &timeline))
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", edn_path.display())))?;

    // The verdict.
    let ops = history
        .operations()
        .map_err(|e| Error::Internal(format!("the recorded history is malformed: {e}")))?;
    let checked = crate::check_cmd::check_parallel(
        &ops,
        &check::Budget::default(),
        2,
        Some(Duration::from_nanos(args.check_timeout)),
        true,
    );
    let c = counts(&history);
    let elections = timeline
        .iter()
        .filter(|t| matches!(t.event, sim::timeline::TimelineEvent::Leader { .. }))
        .count();
    println!(
        "ops: {} ok, {} failed, {} unknown (of {}; {} during the workload)",
        c.ok,
        c.failed,
        c.unknown,
        ops.len(),
        ops.iter().filter(|o| o.invoke_ns < workload_end_ns).count()
    );
    let faults_text: Vec<String> = fault_counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "faults: {} ({}); leaders seen: {elections}",
        fault_counts.values().sum::<u64>(),
        if faults_text.is_empty() {
            "none".into()
        } else {
            faults_text.join(", ")
        }
    );
    for n in &notes {
        println!("note: {n}");
    }
    match after.recovered_in {
        Some(t) => println!(
            "after the heal: served and converged in {:.2} s; digests {}; {} acknowledged appends read back from every node",
            t.as_secs_f64(),
            after
                .digests
                .iter()
                .map(|(id, applied, d)| format!("n{id}@{applied}={d}"))
                .collect::<Vec<_>>()
                .join(" "),
            after.appends_checked
        ),
        None => println!("after the heal: NOT RECOVERED"),
    }
    for v in &after.violations {
        println!("VIOLATION: {v}");
    }
    for l in &after.liveness {
        println!("NOT RECOVERED: {l}");
    }
    let code = match &checked.verdict {
        _ if !after.violations.is_empty() => 1,
        check::Verdict::NotLinearizable(c) => {
            println!(
                "NOT LINEARIZABLE on key {:?}: none of ops {:?} can follow the longest linearizable prefix ({} ops)",
                c.key,
                c.stuck,
                c.longest_prefix.len()
            );
            1
        }
        check::Verdict::Undecided { key } => {
            println!(
                "UNDECIDED: the checker ran out of budget on key {key:?}{}",
                if checked.timed_out { " (timeout)" } else { "" }
            );
            2
        }
        check::Verdict::Linearizable if !after.liveness.is_empty() => 3,
        check::Verdict::Linearizable => {
            println!("linearizable ({} keys)", checked.partitions);
            0
        }
    };
    if code != 0
        && let Some(u) = args.unsafe_setting
    {
        println!("why: {}", u.why());
    }
    println!(
        "history: {} (EDN: {})",
        history_path.display(),
        edn_path.display()
    );
    if args.report {
        let mut params = vec![
            (
                "kind".to_string(),
                "real cluster (not deterministic)".to_string(),
            ),
            ("seed".into(), seed.to_string()),
            ("nodes".into(), args.nodes.to_string()),
            ("clients".into(), args.clients.to_string()),
            ("duration".into(), format!("{} s", duration_ms / 1000)),
            ("schedule".into(), schedule.to_string()),
            ("faults".into(), faults_text.join(", ")),
            ("leaders seen".into(), elections.to_string()),
            (
                "network".into(),
                if use_netns { "namespaces" } else { "loopback" }.into(),
            ),
        ];
        if let Some(u) = args.unsafe_setting {
            params.push(("UNSAFE node setting".into(), u.flag().into()));
        }
        if let Some(t) = after.recovered_in {
            params.push((
                "recovered after the heal in".into(),
                format!("{:.2} s", t.as_secs_f64()),
            ));
        }
        let facts = html::RunFacts {
            title: format!("jepsen, seed {seed}"),
            replay: replay_command(args, seed, schedule),
            nodes: nodes_seen,
            verdict: checked.verdict.clone(),
            after: &after,
            timeline,
            params,
            unsafe_note: args.unsafe_setting.map(|u| u.why().to_string()),
            history_path: history_path.display().to_string(),
            end_ns,
        };
        let page = ::report::render(&html::build(history, facts));
        let path = crate::report_cmd::reports_dir().join(format!("{stem}.html"));
        std::fs::create_dir_all(crate::report_cmd::reports_dir())
            .and_then(|()| std::fs::write(&path, page))
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
        println!("report: {}", path.display());
    }
    println!("exit {code}");
    Ok(code)
}

/// The command that strikes the same schedule again.
fn replay_command(args: &JepsenArgs, seed: u64, schedule: &str) -> String {
    let mut cmd = format!(
        "cargo xtask jepsen --nodes {} --clients {} --duration {}ms --seed {seed} --script '{schedule}'",
        args.nodes,
        args.clients,
        args.duration / 1_000_000
    );
    if let Some(u) = args.unsafe_setting {
        cmd += &format!(" --unsafe-setting {}", u.name());
    }
    cmd
}
