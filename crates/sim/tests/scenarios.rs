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

fn expect_ok(name: &str) {
    let scenario = load(name);
    assert_eq!(scenario.expect, Expect::Ok, "{name}");
    for seed in 1..=3 {
        let s = run(&scenario.config(name, seed).unwrap());
        assert!(
            s.ok,
            "{name} seed {seed}: {:#?} {:#?}",
            s.violations, s.liveness
        );
    }
}

#[test]
fn leader_isolation() {
    expect_ok("leader-isolation");
}

#[test]
fn majority_minority_flapping() {
    expect_ok("majority-minority-flapping");
}

#[test]
fn bridge() {
    expect_ok("bridge");
}

#[test]
fn ring() {
    expect_ok("ring");
}

#[test]
fn one_way_partitions() {
    expect_ok("one-way-partitions");
}

#[test]
fn crash_storm() {
    expect_ok("crash-storm");
}

#[test]
fn rolling_restart() {
    expect_ok("rolling-restart");
}

#[test]
fn disk_chaos() {
    expect_ok("disk-chaos");
}

#[test]
fn clock_skew_within_the_lease_bound() {
    expect_ok("clock-skew");
}

#[test]
fn membership_churn() {
    expect_ok("membership-churn");
}

#[test]
fn snapshot_heavy() {
    expect_ok("snapshot-heavy");
}

#[test]
fn figure_8_unreliable() {
    expect_ok("figure-8-unreliable");
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
    assert_eq!(shrunk.kind, "not linearizable");
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
