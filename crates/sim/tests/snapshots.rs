//! Snapshots, log compaction and InstallSnapshot in whole simulated runs, in
//! the spirit of the MIT 6.5840 lab 3D tests: basic snapshots, installs
//! under an unreliable network and with crashes, every node crashing after
//! snapshots, restarts from a snapshot alone, a lagging follower and a wiped
//! node catching up. Every run also holds every online invariant (snapshots
//! stand for committed state with every replica's digest, nothing read below
//! a snapshot, the log bounded by the policy) and is linearizable.

use check::Budget;
use replica::SnapshotPolicy;
use sim::queue::MS;
use sim::{Action, DiskFaultMode, Params, ScriptedFault, SimConfig, Snapshots, Summary, Tracer};

fn clean(seed: u64, every: u64, keep: u64, duration_ms: u64) -> SimConfig {
    SimConfig {
        duration: duration_ms * MS,
        faults: false,
        swarm: false,
        disk_faults: DiskFaultMode::Off,
        snapshots: Snapshots::Fixed { every, keep },
        ..SimConfig::new(seed)
    }
}

fn run(config: &SimConfig) -> Summary {
    sim::run(config, Tracer::silent(), &Budget::default())
        .expect("valid configuration")
        .summary
}

fn run_with(config: &SimConfig, params: Params) -> Summary {
    sim::run_with_params(config, params, Tracer::silent(), &Budget::default())
        .expect("valid configuration")
        .summary
}

/// Asserts the run held every invariant and its history is linearizable.
fn assert_ok(s: &Summary) {
    assert!(s.ok, "seed {}: {:#?}", s.seed, s.violations);
}

/// Asserts the log never held more applied entries than the policy allows.
fn assert_bounded(s: &Summary) {
    let policy = SnapshotPolicy {
        every: s.params.snapshot_every,
        keep: s.params.snapshot_keep,
    };
    assert!(
        s.stats.max_applied_entries_held <= policy.max_applied_entries(),
        "seed {}: {} applied entries held, policy {policy:?}",
        s.seed,
        s.stats.max_applied_entries_held
    );
}

#[test]
fn basic_snapshots_compact_every_log_and_keep_it_bounded() {
    let s = run(&clean(1, 10, 3, 5_000));
    assert_ok(&s);
    assert_bounded(&s);
    assert!(s.commits > 200, "{} entries committed", s.commits);
    // Every one of the five replicas compacts about every ten entries.
    assert!(
        s.stats.snapshots_taken >= 5 * (s.commits / 10) / 2,
        "{} snapshots for {} entries",
        s.stats.snapshots_taken,
        s.commits
    );
    assert!(
        s.stats.max_log_entries < s.commits / 4,
        "{}",
        s.stats.max_log_entries
    );
}

#[test]
fn a_long_run_keeps_every_log_bounded_by_the_policy() {
    // 3 minutes of virtual time with faults on: thousands of entries, and
    // no log ever holds more than the policy's bound of applied entries.
    let config = SimConfig {
        duration: 180_000 * MS,
        swarm: false,
        snapshots: Snapshots::Fixed {
            every: 64,
            keep: 16,
        },
        ..SimConfig::new(4)
    };
    let s = run(&config);
    assert_ok(&s);
    assert_bounded(&s);
    assert!(s.stats.max_applied_entries_held <= 64 + 16);
    assert!(s.commits > 10_000, "{} entries committed", s.commits);
    assert!(
        s.stats.max_log_entries < s.commits / 20,
        "at most {} entries in a log of {} committed",
        s.stats.max_log_entries,
        s.commits
    );
}

#[test]
fn snapshots_are_installed_under_an_unreliable_network() {
    let mut installed = 0;
    for seed in 1..=4 {
        let config = SimConfig {
            faults: true,
            disk_faults: DiskFaultMode::Off,
            ..clean(seed, 8, 0, 8_000)
        };
        // Loss, duplication and reordering, but no partitions or crashes.
        let params = Params {
            drop_rate: 0.1,
            duplicate_rate: 0.05,
            partition_every_ms: 0,
            crash_every_ms: 0,
            churn_every_ms: 0,
            clock_jump_every_ms: 0,
            ..Params::draw(&config)
        };
        let s = run_with(&config, params);
        assert_ok(&s);
        assert_bounded(&s);
        installed += s.stats.snapshots_installed;
    }
    assert!(installed > 0, "lost appends were repaired by snapshots");
}

#[test]
fn snapshots_are_installed_with_crashes_and_partitions() {
    for seed in 1..=4 {
        let config = SimConfig {
            faults: true,
            ..clean(seed, 16, 4, 15_000)
        };
        let s = run(&config);
        assert_ok(&s);
        assert_bounded(&s);
        assert!(s.stats.crashes > 0, "seed {seed}");
        assert!(s.stats.snapshots_installed > 0, "seed {seed}: no install");
        assert!(
            s.stats.recoveries_from_snapshot > 0,
            "seed {seed}: no recovery"
        );
    }
}

#[test]
fn every_node_crashes_after_snapshots_and_the_cluster_recovers() {
    let config = SimConfig {
        script: vec![
            ScriptedFault::at(2_000, Action::CrashAll),
            ScriptedFault::at(2_300, Action::RestartAll),
            ScriptedFault::at(4_000, Action::CrashAll),
            ScriptedFault::at(4_100, Action::RestartAll),
        ],
        ..clean(2, 10, 2, 6_000)
    };
    let s = run(&config);
    assert_ok(&s);
    assert_eq!(s.stats.crashes, 10, "every node crashed twice");
    assert!(
        s.stats.recoveries_from_snapshot >= 10,
        "every restart recovered from a snapshot ({})",
        s.stats.recoveries_from_snapshot
    );
    assert!(
        s.stats.ops_ok > 500,
        "the cluster served after the restarts"
    );
}

#[test]
fn a_node_restarts_from_a_snapshot_alone() {
    // A snapshot after every applied entry and none kept: an idle node's
    // log is empty after its snapshot, so its restarts recover from the
    // snapshot alone. (Clients think long, so nodes are often idle.)
    let config = SimConfig {
        clients: 2,
        script: (1..=12)
            .flat_map(|k| {
                let node = k % 5 + 1;
                [
                    ScriptedFault::at(k * 500, Action::Crash { node }),
                    ScriptedFault::at(k * 500 + 200, Action::Restart { node }),
                ]
            })
            .collect(),
        ..clean(3, 1, 0, 7_000)
    };
    let params = Params {
        think_max_ms: 200,
        ..Params::draw(&config)
    };
    let s = run_with(&config, params);
    assert_ok(&s);
    assert!(
        s.stats.recoveries_from_snapshot_only > 0,
        "{} recoveries from a snapshot, none from it alone",
        s.stats.recoveries_from_snapshot
    );
}

#[test]
fn a_follower_behind_the_leaders_first_index_catches_up_by_snapshot() {
    let config = SimConfig {
        script: vec![
            ScriptedFault::at(1_000, Action::Isolate { node: 3 }),
            ScriptedFault::at(4_000, Action::Heal),
        ],
        ..clean(5, 10, 2, 6_000)
    };
    let s = run(&config);
    assert_ok(&s);
    assert!(
        s.stats.snapshots_installed >= 1,
        "the isolated node got a snapshot"
    );
}

#[test]
fn a_wiped_node_catches_up_by_snapshot() {
    let config = SimConfig {
        script: vec![ScriptedFault::at(3_000, Action::Wipe { node: 2 })],
        ..clean(6, 10, 2, 6_000)
    };
    let s = run(&config);
    assert_ok(&s);
    assert!(
        s.stats.snapshots_installed >= 1,
        "the wiped node got a snapshot"
    );
}

#[test]
fn snapshots_off_means_none_taken() {
    let config = SimConfig {
        snapshots: Snapshots::Off,
        ..clean(7, 10, 2, 2_000)
    };
    let s = run(&config);
    assert_ok(&s);
    assert_eq!(
        (s.stats.snapshots_taken, s.stats.snapshots_installed),
        (0, 0)
    );
    assert_eq!(s.stats.max_log_entries, s.commits);
}

#[test]
fn runs_with_snapshots_are_deterministic() {
    let config = SimConfig {
        duration: 5_000 * MS,
        snapshots: Snapshots::Fixed { every: 5, keep: 0 },
        ..SimConfig::new(8)
    };
    let (a, b) = (run(&config), run(&config));
    assert!(a.stats.snapshots_installed > 0 || a.stats.snapshots_taken > 0);
    assert_eq!(a.trace_hash, b.trace_hash);
}
