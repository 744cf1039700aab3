//! The short sweep that `cargo xtask mutants` runs, in its phase 2, as the
//! test of each mutant of raft that raft's own tests missed (issue 20's
//! mutation score): the default swarm (every fault family and Raft's own
//! settings drawn per seed) over seeds 1..=`RAFTLAB_MUTANTS_SEEDS` (default
//! 20). Ignored in a plain `cargo test` (the sweeps cover it); the xtask
//! runs it with `--include-ignored` (see xtask/src/mutants.rs).

use check::Budget;
use sim::{SimConfig, Tracer};

#[test]
#[ignore = "the mutation-testing sweep: run by cargo xtask mutants"]
fn the_default_swarm_passes_a_short_sweep() {
    let seeds: u64 = std::env::var("RAFTLAB_MUTANTS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for seed in 1..=seeds {
        let s = sim::run(&SimConfig::new(seed), Tracer::silent(), &Budget::default())
            .expect("a valid configuration")
            .summary;
        assert!(
            s.ok || s.linearizable.is_none() && s.violations.is_empty() && s.liveness.is_empty(),
            "seed {seed}: {:?} {:?}",
            s.violations,
            s.liveness
        );
    }
}
