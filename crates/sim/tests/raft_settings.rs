//! Runs under drawn Raft settings (issue 20's swarm over the protocol's own
//! configuration): regressions found by sweeps once the settings varied.

use check::Budget;
use sim::{SimConfig, Tracer};

fn run(config: &SimConfig) -> sim::Summary {
    sim::run(config, Tracer::silent(), &Budget::default())
        .expect("valid configuration")
        .summary
}

/// Seeds 18, 81 and 196: a short drawn election timeout under a disk still
/// slow after the heal livelocked elections; the heal now ends slow disks
/// and heavy-tailed delays.
#[test]
fn the_heal_ends_slow_disks_so_short_election_timeouts_still_elect() {
    for seed in [18, 81, 196] {
        let s = run(&SimConfig::new(seed));
        assert!(
            !s.storage.slow_disks.is_empty(),
            "seed {seed} has slow disks"
        );
        assert!(s.ok, "seed {seed}: {:?} {:?}", s.violations, s.liveness);
    }
}

/// With Raft's settings fixed, the same seed runs the defaults.
#[test]
fn fixed_settings_run_the_defaults() {
    let s = run(&SimConfig {
        vary_raft: false,
        duration: 5_000 * sim::queue::MS,
        ..SimConfig::new(827)
    });
    assert!(s.params.raft.pre_vote && s.params.raft.check_quorum);
    assert!(s.ok, "{:?}", s.violations);
}

/// Lease reads answered at once can be confirmed at a higher index than an
/// earlier read still waiting for its round: the replica used to assert
/// that confirmations come in index order, and stopped (a 30-client
/// lease-read scenario, seed 45). The run must get to the checker (which
/// catches its stale reads: the scenario is beyond the drift bound).
#[test]
fn lease_reads_confirmed_out_of_index_order_do_not_stop_a_replica() {
    let text = include_str!("lease-reads-out-of-order.toml");
    let scenario = sim::Scenario::parse(text).expect("a valid scenario");
    let s = run(&scenario.config("lease-reads-out-of-order", 45).unwrap());
    assert!(
        !s.violations.iter().any(|v| v.contains("replica halted")),
        "{:?}",
        s.violations
    );
    assert_eq!(s.stats.halts, 0);
}
