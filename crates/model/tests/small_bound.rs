//! The check CI runs: the default scope (three replicas, two clients, one
//! crash, one duplicate, pre-vote on, terms up to 2), breadth-first to a
//! depth the debug profile covers in seconds. Deeper searches are `cargo
//! xtask modelcheck`'s (optimised).

use model::{Bounds, RaftModel};
use stateright::{Checker, HasDiscoveries, Model};

/// Steps searched: enough for a pre-vote election (7 steps: timeout,
/// pre-vote, its answer, the candidate's write, the vote request, the
/// voter's write, the vote). Each step more multiplies the states by ~3.5.
const STEPS: usize = 7;

#[test]
fn the_default_scope_holds_every_property_to_a_small_depth() {
    let checker = RaftModel::new(Bounds::default())
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        .target_max_depth(STEPS + 2)
        .threads(2)
        .spawn_bfs()
        .join();
    let discoveries = checker.discoveries();
    let violated: Vec<&str> = discoveries
        .keys()
        .copied()
        .filter(|name| model::properties::SAFETY.contains(name))
        .collect();
    println!(
        "{} states, {} unique; discoveries: {:?}",
        checker.state_count(),
        checker.unique_state_count(),
        discoveries.keys().collect::<Vec<_>>()
    );
    assert!(violated.is_empty(), "violated: {violated:?}");
    // Not vacuous: the search reached an elected leader.
    assert!(
        discoveries.contains_key("a leader is elected"),
        "no leader within {STEPS} steps"
    );
}
