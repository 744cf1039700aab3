//! Scratch exploration (ignored): DEPTH, PLANT, SCOPE=quick.
use model::{Bounds, RaftModel};
use stateright::{Checker, HasDiscoveries, Model};
use std::time::Instant;

#[test]
#[ignore]
fn explore() {
    let depth: usize = std::env::var("DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(12);
    let mut bounds = Bounds::default();
    bounds.planted = std::env::var("PLANT").ok();
    if std::env::var("QUICK").is_ok() {
        bounds.clients = vec![vec![model::put("x", "1")]];
        bounds.duplicates = 0;
        bounds.ticks = std::env::var("TICKS")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        bounds.pre_vote = false;
        bounds.max_term = 2;
    }
    if std::env::var("NOCLIENT").is_ok() {
        bounds.clients = vec![];
    }
    let start = Instant::now();
    let b = RaftModel::new(bounds)
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        .target_max_depth(depth + 2)
        .threads(2);
    if std::env::var("DFS").is_ok() {
        report(b.spawn_dfs().join(), start);
    } else {
        report(b.spawn_bfs().join(), start);
    }
}

fn report(checker: impl Checker<RaftModel>, start: Instant) {
    println!(
        "states {} unique {} depth {} in {:?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        start.elapsed()
    );
    for (name, path) in checker.discoveries() {
        println!("{name}: {} steps", path.into_actions().len());
    }
}
