//! Every named scenario in scenarios/ as a test: a few seeds each, asserting
//! what the scenario's `expect` says. The clock-skew lease-read scenario must
//! be caught (a stale read), shrunk, and replayed identically from the
//! scenario file the shrinker writes; the quorum that never heals must be
//! reported as a liveness failure, distinct from a safety violation.
//!
//! Determinism: ok — these tests read the scenario files (test inputs); the
//! runs themselves touch no file.

// determinism: ok, the test reads its scenario files from the repository.
#![allow(clippy::disallowed_methods)]

use check::Budget;
use sim::{Expect, Scenario, SimConfig, Summary, Tracer};
use std::path::PathBuf;

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn load(name: &str) -> Scenario {
    let path = scenarios_dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    Scenario::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run(config: &SimConfig) -> Summary {
    sim::run(config, Tracer::silent(), &Budget::default())
        .expect("valid configuration")
        .summary
}

/// The named scenarios, each with the seeds its test runs.
const NAMED: &[&str] = &[
    "leader-isolation",
    "majority-minority-flapping",
    "bridge",
    "ring",
    "one-way-partitions",
    "crash-storm",
    "rolling-restart",
    "disk-chaos",
    "clock-skew",
    "clock-skew-lease-violation",
    "membership-churn",
    "snapshot-heavy",
    "figure-8-unreliable",
    "quorum-never-heals",
    "slow-leader-disk",
    "leader-pause",
    "stale-messages",
];

#[test]
fn every_scenario_file_is_a_named_test() {
    let mut files: Vec<String> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut named: Vec<String> = NAMED.iter().map(|s| s.to_string()).collect();
    named.sort();
    assert_eq!(files, named);
}

/// Runs `name` on three seeds: each must pass, and `happened` must hold of
/// each run, so that a scenario whose faults silently did nothing fails.
fn expect_ok(name: &str, happened: impl Fn(&Summary) -> bool, what: &str) {
    let scenario = load(name);
    assert_eq!(scenario.expect, Expect::Ok, "{name}");
    for seed in 1..=3 {
        let s = run(&scenario.config(name, seed).unwrap());
        assert!(
            s.ok,
            "{name} seed {seed}: {:#?} {:#?}",
            s.violations, s.liveness
        );
        assert!(happened(&s), "{name} seed {seed}: expected {what}");
        assert!(
            s.stats.ops_ok > 100,
            "{name} seed {seed}: only {} ops",
            s.stats.ops_ok
        );
    }
}

#[test]
fn leader_isolation() {
    expect_ok(
        "leader-isolation",
        |s| s.stats.partitions >= 3 && s.elections >= 3,
        "three leader isolations, each followed by an election",
    );
}

#[test]
fn majority_minority_flapping() {
    expect_ok(
        "majority-minority-flapping",
        |s| s.stats.partitions >= 3,
        "several partitions",
    );
}

#[test]
fn bridge() {
    expect_ok("bridge", |s| s.stats.partitions >= 1, "a bridge partition");
}

#[test]
fn ring() {
    expect_ok("ring", |s| s.stats.partitions >= 1, "a ring partition");
}

#[test]
fn one_way_partitions() {
    expect_ok(
        "one-way-partitions",
        |s| s.stats.partitions >= 1,
        "one-way partitions",
    );
}

#[test]
fn crash_storm() {
    expect_ok(
        "crash-storm",
        |s| s.stats.crashes >= 10,
        "at least ten crashes",
    );
}

#[test]
fn rolling_restart() {
    expect_ok(
        "rolling-restart",
        |s| s.stats.crashes >= 3,
        "every node restarted in turn",
    );
}

#[test]
fn disk_chaos() {
    expect_ok(
        "disk-chaos",
        |s| s.disk_faults.values().sum::<u64>() > 0,
        "disk faults injected",
    );
}

#[test]
fn clock_skew_within_the_lease_bound() {
    expect_ok(
        "clock-skew",
        |s| s.params.clock_drift_ppm.iter().any(|&d| d != 0),
        "clocks that drift",
    );
}

#[test]
fn membership_churn() {
    expect_ok(
        "membership-churn",
        |s| s.stats.membership.completed >= 2,
        "membership changes completed",
    );
}

#[test]
fn snapshot_heavy() {
    expect_ok(
        "snapshot-heavy",
        |s| s.stats.snapshots_taken > 0 && s.stats.snapshots_installed > 0,
        "snapshots taken and installed",
    );
}

#[test]
fn figure_8_unreliable() {
    expect_ok(
        "figure-8-unreliable",
        |s| s.elections >= 2 && s.stats.messages_dropped > 0,
        "lost messages and several elections",
    );
}

#[test]
fn a_quorum_that_never_heals_is_a_liveness_failure_not_a_violation() {
    let name = "quorum-never-heals";
    let scenario = load(name);
    assert_eq!(scenario.expect, Expect::Liveness);
    for seed in 1..=2 {
        let s = run(&scenario.config(name, seed).unwrap());
        assert!(s.violations.is_empty(), "safe: {:#?}", s.violations);
        assert!(
            !s.liveness.is_empty(),
            "seed {seed}: liveness failure reported"
        );
        assert_eq!(s.exit_code(), 3, "its own exit status");
        assert!(!s.ok);
    }
    // The same run without the liveness check passes.
    let mut config = scenario.config(name, 1).unwrap();
    config.liveness = false;
    assert!(run(&config).ok);
}

#[test]
fn lease_reads_beyond_the_drift_bound_are_caught_shrunk_and_replayed_from_the_file() {
    let name = "clock-skew-lease-violation";
    let scenario = load(name);
    assert_eq!(scenario.expect, Expect::Violation);
    // Caught: a stale read, on most seeds.
    let caught: Vec<u64> = (1..=6)
        .filter(|&seed| {
            let s = run(&scenario.config(name, seed).unwrap());
            s.linearizable == Some(false)
        })
        .collect();
    assert!(caught.len() >= 3, "caught on {caught:?}");
    // The same skew with ReadIndex reads is safe.
    let mut read_index = scenario.config(name, caught[0]).unwrap();
    read_index.lease_reads = false;
    assert!(run(&read_index).ok, "ReadIndex is clock-free");
    // Shrunk: a smaller run still shows the stale read.
    let start = scenario.config(name, caught[0]).unwrap();
    let shrunk = sim::shrink::shrink(&start, &Budget::default())
        .unwrap()
        .expect("it fails");
    assert_eq!(
        shrunk.kind,
        sim::shrink::FailureKind::Violation(sim::invariants::ViolationKind::NotLinearizable)
    );
    assert!(
        shrunk.config.clients <= start.clients && shrunk.config.duration <= start.duration,
        "no bigger than the start"
    );
    assert!(
        shrunk.config.clients < start.clients
            || shrunk.config.duration < start.duration
            || shrunk.config.script.len() < start.script.len(),
        "something went"
    );
    // Replayed: the scenario file the shrinker writes runs the same run.
    let mut file = Scenario::from_config(&shrunk.config, "shrunk".into());
    file.expect = Expect::Violation;
    file.trace_hash = Some(shrunk.outcome.summary.trace_hash.clone());
    let text = file.to_toml().unwrap();
    let replayed = Scenario::parse(&text).unwrap();
    let seed = replayed.seed.expect("the seed is pinned");
    let again = run(&replayed.config("shrunk", seed).unwrap());
    assert_eq!(Some(again.trace_hash.clone()), replayed.trace_hash);
    assert_eq!(again.linearizable, Some(false));
}

#[test]
fn a_slow_leader_disk_still_commits_through_the_followers() {
    expect_ok(
        "slow-leader-disk",
        |s| !s.storage.slow_disks.is_empty() && s.storage.fsync_latency_max_us >= 50_000,
        "a slow leader disk (writes of 50 ms and more)",
    );
}

#[test]
fn stale_messages_across_elections_and_restarts_break_nothing() {
    expect_ok(
        "stale-messages",
        |s| {
            s.storage.long_delayed_messages > 100
                && s.storage.fast_restarts > 0
                && s.storage.pauses > 0
        },
        "long-delayed messages, fast restarts and pauses",
    );
}

/// A paused and cut-off leader with lease reads: on resume its missed
/// ticks come first, so its lease, counted in its own ticks, has run out
/// before any queued read reaches it, and no stale read is served.
///
/// The other order (`resume_ticks_first = false`) is kept as a switch, but
/// not asserted to fail: with it the resumed leader does answer its queued
/// reads from its lease, yet on seeds 1..=6 every such read had been invoked
/// before the new leader's first write completed, so the answer is still
/// linearizable. These clients follow leader hints, so none sends a read to
/// the paused leader after a newer write completed; showing the stale read
/// needs a client that keeps talking to a stale leader (issue 20's direct
/// lease-safety invariant would catch it without one).
#[test]
fn a_paused_leader_serves_no_stale_lease_read_when_its_missed_ticks_come_first() {
    expect_ok(
        "leader-pause",
        |s| s.storage.pauses >= 3 && s.stats.partitions >= 3 && s.elections >= 3,
        "three pauses of an isolated leader, each followed by an election",
    );
}
