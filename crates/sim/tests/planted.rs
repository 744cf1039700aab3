//! Teeth: each bug that asynchronous storage makes possible, planted in
//! every replica through the test-only `planted-bugs` feature, is caught by
//! the default run (swarm testing, every check on) within a few seeds.
//!
//! The bound each test asserts is the measured number of seeds it took
//! (the first failing seed of 1, 2, 3, ...) with some room; the comment on
//! each says what was measured. A bound that starts failing means a check
//! lost its teeth, or the default sweep no longer reaches the bug.

use check::Budget;
use replica::PlantedBug;
use sim::{SimConfig, Tracer};

/// The first seed from 1 whose default run fails with `bug` planted, with
/// the first problem it reported; `None` if none within `limit` seeds.
fn seeds_to_detection(bug: PlantedBug, limit: u64) -> Option<(u64, String)> {
    (1..=limit).find_map(|seed| {
        let config = SimConfig {
            planted: Some(bug),
            ..SimConfig::new(seed)
        };
        let outcome =
            sim::run(&config, Tracer::silent(), &Budget::default()).expect("a valid configuration");
        let s = outcome.summary;
        let problem = s
            .violations
            .first()
            .cloned()
            .or_else(|| (s.linearizable == Some(false)).then(|| "not linearizable".into()));
        problem.map(|p| (seed, p))
    })
}

fn assert_caught(bug: PlantedBug, within: u64) {
    match seeds_to_detection(bug, within) {
        Some((seed, problem)) => {
            println!("{}: caught at seed {seed}: {problem}", bug.name());
        }
        None => panic!("{} survived {within} seeds of the default run", bug.name()),
    }
}

#[test]
fn a_leader_counting_itself_before_its_write_completes_is_caught() {
    // measured: seed 1 ("durability": a leader applied an entry it never persisted).
    assert_caught(PlantedBug::LeaderCountsBeforeDurable, 10);
}

#[test]
fn a_follower_acknowledging_before_its_write_completes_is_caught() {
    // measured: seed 1 ("entries durable before acknowledged").
    assert_caught(PlantedBug::AckBeforeDurable, 10);
}

#[test]
fn a_vote_answered_before_it_is_durable_is_caught() {
    // measured: seed 1 ("vote durable before answered"; before that check existed it survived 10 seeds).
    assert_caught(PlantedBug::VoteBeforeDurable, 10);
}

#[test]
fn a_client_answered_before_its_write_is_applied_is_caught() {
    // measured: seed 1 (not linearizable: the checker sees the early answer).
    assert_caught(PlantedBug::ReplyBeforeApplied, 10);
}

#[test]
fn without_a_planted_bug_the_same_seeds_pass() {
    for seed in 1..=3 {
        let s = sim::run(&SimConfig::new(seed), Tracer::silent(), &Budget::default())
            .expect("valid")
            .summary;
        assert!(s.ok, "seed {seed}: {:?}", s.violations);
    }
}

/// The shrinker reduces each planted bug's first failure to at most 30
/// operations and 5 fault events, keeping no family that never fired
/// (issue 20). Sizes measured are printed (`--nocapture`).
#[test]
fn planted_bug_failures_shrink_small_and_keep_only_families_that_fired() {
    for bug in PlantedBug::ALL {
        let (seed, _) = seeds_to_detection(bug, 10).expect("caught");
        let config = SimConfig {
            planted: Some(bug),
            ..SimConfig::new(seed)
        };
        let shrunk = sim::shrink::shrink(&config, &Budget::default())
            .expect("runs")
            .expect("a failure to shrink");
        let s = &shrunk.outcome.summary;
        let (ops, faults) = (sim::shrink::operations(s), sim::shrink::fault_events(s));
        println!(
            "{} (seed {seed}): {} in {} runs -> {ops} operations, {faults} fault events, {} clients, {}ms, families: {}; {:?}",
            bug.name(),
            shrunk.kind,
            shrunk.runs,
            shrunk.config.clients,
            shrunk.config.duration / sim::queue::MS,
            s.params.families,
            shrunk.report
        );
        assert!(ops <= 30, "{}: {ops} operations", bug.name());
        assert!(faults <= 5, "{}: {faults} fault events", bug.name());
        let fired = sim::shrink::fired(s);
        for ((name, on), (_, fired)) in s.params.families.list().iter().zip(fired.list()) {
            assert!(
                !on || fired,
                "{}: kept family {name}, which never fired",
                bug.name()
            );
        }
    }
}
