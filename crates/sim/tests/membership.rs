//! Membership churn in whole simulated runs: nodes are added, removed and
//! replaced (the leader too) and leadership is transferred while the other
//! faults run, and every invariant (commit safety against the configuration
//! in force, a leader is a voter, ...) holds, and the history is
//! linearizable.

use check::Budget;
use sim::queue::MS;
use sim::{Action, Families, ScriptedFault, SimConfig, Summary, Tracer};

fn run(config: &SimConfig) -> Summary {
    sim::run(config, Tracer::silent(), &Budget::default())
        .expect("valid configuration")
        .summary
}

#[test]
fn churn_changes_the_membership_under_faults_and_every_invariant_holds() {
    let mut completed = 0;
    let mut leader_removals = 0;
    let mut added = 0;
    // At least six seeds, and on until churn has removed a leader (rare: a
    // removal's victim is the leader about once in a few seeds; which seed
    // moves whenever a schedule changes).
    for seed in 1..=20 {
        if seed > 6 && leader_removals > 0 {
            break;
        }
        let config = SimConfig {
            duration: 20_000 * MS,
            swarm: false,
            ..SimConfig::new(seed)
        };
        let s = run(&config);
        assert!(s.ok, "seed {seed}: {:#?}", s.violations);
        completed += s.stats.membership.completed;
        leader_removals += s.stats.membership.leader_removals;
        added += s.stats.membership.nodes_added;
    }
    assert!(completed >= 12, "{completed} changes completed");
    assert!(added > 0, "no node was added");
    assert!(leader_removals > 0, "the leader was never removed");
}

#[test]
fn churn_off_leaves_the_founding_members() {
    let config = SimConfig {
        duration: 10_000 * MS,
        allowed: Families::ALL.with("churn", false).unwrap(),
        swarm: false,
        ..SimConfig::new(3)
    };
    let s = run(&config);
    assert!(s.ok, "{:#?}", s.violations);
    assert_eq!(s.stats.membership.completed, 0);
    assert_eq!(s.stats.membership.transfers, 0);
    assert_eq!(s.params.churn_every_ms, 0);
}

#[test]
fn runs_with_churn_are_deterministic() {
    let config = SimConfig {
        duration: 8_000 * MS,
        swarm: false,
        ..SimConfig::new(9)
    };
    let (a, b) = (run(&config), run(&config));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.stats.membership.completed, b.stats.membership.completed);
}

/// Regression (seed 1970 of the first 2,000-seed swarm sweep): the leader
/// removed itself just before the end of the chaos and stepped down when
/// C_new committed; every client was done, so the run stopped before the
/// remaining voters elected a leader, and the liveness check reported "no
/// leader". A run with the liveness check now goes on until a node leads
/// (or the bound passes). The seeds that drew this moved with every change
/// of schedule (1970, then 1989, then 1916), so the removal is now
/// scripted: the operator removes the leader 100 ms before the end of the
/// 30 s workload.
#[test]
fn a_leader_that_removes_itself_at_the_end_is_followed_by_a_new_one_before_the_run_stops() {
    // The request is refused when the chaos has left no leader at that
    // moment, or another change is under way; three seeds where it is
    // accepted suffice.
    let mut removed = 0;
    for seed in 1..=12 {
        let config = SimConfig {
            script: vec![ScriptedFault::at(29_900, Action::RemoveLeader)],
            ..SimConfig::new(seed)
        };
        let s = run(&config);
        assert!(s.liveness.is_empty(), "seed {seed}: {:#?}", s.liveness);
        assert!(s.ok, "seed {seed}: {:#?}", s.violations);
        removed += u64::from(s.stats.membership.leader_removals > 0);
        if removed == 3 {
            return;
        }
    }
    panic!("the leader accepted its removal in only {removed} of 12 seeds");
}
