//! Whole runs of the simulator: determinism, verdicts, and the checker's
//! teeth on the histories the simulator records.

use check::{Budget, Record, Verdict};
use sim::queue::MS;
use sim::{SimConfig, TraceFilter, Tracer};
use std::cell::RefCell;
use std::rc::Rc;

fn short(seed: u64) -> SimConfig {
    SimConfig {
        duration: 5_000 * MS,
        ..SimConfig::new(seed)
    }
}

fn run(config: &SimConfig) -> sim::Outcome {
    sim::run(config, Tracer::silent(), &Budget::default()).expect("valid configuration")
}

#[test]
fn the_same_seed_gives_the_same_trace_hash() {
    for seed in [1, 2, 3, 42] {
        let a = run(&short(seed)).summary;
        let b = run(&short(seed)).summary;
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.trace_events, b.trace_events, "seed {seed}");
        assert_eq!(
            (a.stats.ops_ok, a.stats.ops_failed, a.stats.ops_unknown),
            (b.stats.ops_ok, b.stats.ops_failed, b.stats.ops_unknown),
            "seed {seed}"
        );
    }
}

#[test]
fn tracing_does_not_change_the_run() {
    for seed in [5, 6] {
        let lines = Rc::new(RefCell::new(0u64));
        let sink = lines.clone();
        let loud = Tracer::new(TraceFilter::All, Box::new(move |_| *sink.borrow_mut() += 1));
        let traced = sim::run(&short(seed), loud, &Budget::default())
            .unwrap()
            .summary;
        let silent = run(&short(seed)).summary;
        assert_eq!(traced.trace_hash, silent.trace_hash, "seed {seed}");
        assert_eq!(
            *lines.borrow(),
            traced.trace_events,
            "every event printed once"
        );
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let a = run(&short(10)).summary;
    let b = run(&short(11)).summary;
    assert_ne!(a.trace_hash, b.trace_hash);
}

#[test]
fn a_faulty_run_holds_every_invariant_and_is_linearizable() {
    let outcome = run(&short(7));
    let s = &outcome.summary;
    assert!(s.ok, "violations: {:?}", s.violations);
    assert_eq!(s.linearizable, Some(true));
    assert!(
        s.stats.ops_ok > 50,
        "only {} operations completed",
        s.stats.ops_ok
    );
    assert!(s.elections >= 1);
    assert_eq!(
        s.stats.ops_ok + s.stats.ops_failed + s.stats.ops_unknown,
        outcome
            .history
            .records
            .iter()
            .filter(|r| matches!(r, Record::Invoke { .. }))
            .count() as u64
    );
}

#[test]
fn without_faults_nothing_is_lost_or_unknown() {
    let config = SimConfig {
        faults: false,
        ..short(3)
    };
    let s = run(&config).summary;
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(
        (
            s.stats.crashes,
            s.stats.partitions,
            s.stats.messages_dropped
        ),
        (0, 0, 0)
    );
    assert_eq!(
        s.stats.ops_unknown, 0,
        "a clean network never leaves an outcome unknown"
    );
    assert_eq!(
        s.elections, 1,
        "a clean cluster elects one leader and keeps it"
    );
}

#[test]
fn the_checker_catches_a_stale_read_planted_in_a_recorded_history() {
    let outcome = run(&SimConfig {
        faults: false,
        ..short(9)
    });
    assert!(outcome.summary.ok);
    let mut history = outcome.history;
    check::mutate::plant_stale_read(&mut history).expect("the run has a read after two writes");
    match check::check_history(&history, &Budget::default()).unwrap() {
        Verdict::NotLinearizable(_) => {}
        other => panic!("a stale read went unnoticed: {other:?}"),
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let config = SimConfig {
        nodes: 9,
        ..SimConfig::new(1)
    };
    assert!(sim::run(&config, Tracer::silent(), &Budget::default()).is_err());
}

#[test]
fn the_replay_command_names_every_non_default_flag() {
    let config = SimConfig {
        nodes: 3,
        duration: 2_000 * MS,
        faults: false,
        ..SimConfig::new(77)
    };
    assert_eq!(
        sim::replay_command(&config),
        "cargo xtask simulate --seed 77 --nodes 3 --duration 2000ms --faults off"
    );
    assert_eq!(
        sim::replay_command(&SimConfig::new(5)),
        "cargo xtask simulate --seed 5"
    );
}
