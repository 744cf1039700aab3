//! `cargo xtask modelcheck`: exhaustive small-scope search of the real
//! replica (crates/model) with stateright, breadth- or depth-first.

use crate::error::Error;
use clap::Args;
use model::{Bounds, Counterexample, RaftModel, put};
use stateright::{Checker, HasDiscoveries, Model};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `modelcheck`.
#[derive(Debug, Args)]
pub struct ModelcheckArgs {
    /// Replicas (voters).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nodes: u8,
    /// Steps from the initial state explored at most. The default reaches
    /// acknowledged client writes (an election with pre-vote takes 7
    /// steps, a first acknowledged write about 16).
    #[arg(long, default_value_t = 22)]
    pub depth: usize,
    /// Crashes, over all nodes.
    #[arg(long, default_value_t = 1)]
    pub crashes: u8,
    /// Search threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Breadth-first: counterexamples are shortest, but the frontier of
    /// whole cluster states is held in memory (gigabytes past a few
    /// million states).
    #[arg(long, conflicts_with = "dfs")]
    pub bfs: bool,
    /// Depth-first (the default): little memory, and deep counterexamples
    /// found sooner; but not exhaustive to the depth (a state first met deep
    /// is not searched again when met nearer the start).
    #[arg(long)]
    pub dfs: bool,
    /// The scope: `default` (two clients: put then get, and a CAS; terms
    /// up to 2; one duplicate; pre-vote on) or `small` (one put, no
    /// duplicates, ticks or pre-vote: the planted-bug tests' scope).
    #[arg(long, default_value = "default", value_parser = ["default", "small"])]
    pub scope: String,
    /// Stop after this many states (0: only when the depth is exhausted).
    /// The default scope does not exhaust 22 steps in minutes; 10M states
    /// is the bar.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_states: usize,
    /// Where a counterexample is written, as a regression test that
    /// crates/model/tests/counterexamples.rs replays.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The bounds the arguments ask for.
pub fn bounds(args: &ModelcheckArgs) -> Bounds {
    let base = Bounds {
        nodes: usize::from(args.nodes),
        crashes: args.crashes,
        ..Bounds::default()
    };
    match args.scope.as_str() {
        "small" => Bounds {
            clients: vec![vec![put("x", "1")]],
            duplicates: 0,
            ticks: 0,
            pre_vote: false,
            ..base
        },
        _ => base,
    }
}

/// Runs the search; exit status 0 when no property is violated, 1 when one
/// is (the counterexample printed and written).
pub fn modelcheck(args: &ModelcheckArgs) -> Result<u8, Error> {
    let bounds = bounds(args);
    println!("modelcheck: {bounds:?}");
    println!(
        "search: {} to {} steps, {} threads{}",
        if args.bfs {
            "breadth-first"
        } else {
            "depth-first"
        },
        args.depth,
        args.threads,
        if args.max_states > 0 {
            format!(", at most {} states", args.max_states)
        } else {
            String::new()
        }
    );
    let mut builder = RaftModel::new(bounds.clone())
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        // stateright counts the initial state as depth 1 and skips a state
        // at the target depth: `depth` steps need `depth + 2`.
        .target_max_depth(args.depth + 2)
        .threads(args.threads.max(1));
    if args.max_states > 0 {
        builder = builder.target_state_count(args.max_states);
    }
    let start = Instant::now();
    let (states, unique, max_depth, discoveries) = if !args.bfs {
        watch(builder.spawn_dfs(), start)
    } else {
        watch(builder.spawn_bfs(), start)
    };
    let secs = start.elapsed().as_secs_f64();
    // stateright's depth counts the initial state as 1 and includes the
    // states it skipped at the bound.
    let steps = max_depth.min(args.depth + 1).saturating_sub(1);
    println!(
        "states explored {states}, unique {unique}, {:.0} states/s, max depth {steps} steps, {secs:.1} s",
        states as f64 / secs.max(1e-9),
    );
    for (name, _) in discoveries.iter().filter(|(n, _)| !is_safety(n)) {
        println!("example found: {name}");
    }
    let Some((name, actions)) = discoveries.into_iter().find(|(n, _)| is_safety(n)) else {
        if args.max_states > 0 && states >= args.max_states {
            println!(
                "no property violated (stopped at the state limit: not exhaustive to {} steps)",
                args.depth
            );
        } else if args.bfs {
            println!("no property violated (exhaustive to {} steps)", args.depth);
        } else {
            // stateright's depth-first search does not search a state again
            // when it meets it closer to the start than the first time.
            println!(
                "no property violated (depth-first to {} steps: a state first met deeper is not searched again from nearer, so not exhaustive; --bfs is)",
                args.depth
            );
        }
        return Ok(0);
    };
    let counterexample = Counterexample::new(name, bounds, actions);
    println!(
        "VIOLATED: {name}, after {} steps:",
        counterexample.actions.len()
    );
    for (n, step) in counterexample.trace.iter().enumerate() {
        println!("  {:>3}. {step}", n + 1);
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("crates/model/tests/counterexamples"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
    let json = counterexample.to_json();
    let file = dir.join(format!(
        "{}-{:016x}.json",
        name.replace(' ', "-"),
        stablehash::fnv1a(json.as_bytes())
    ));
    std::fs::write(&file, json).map_err(|e| Error::Internal(format!("{}: {e}", file.display())))?;
    println!(
        "written: {} (replayed by `cargo test -p model --test counterexamples`)",
        file.display()
    );
    Ok(1)
}

fn is_safety(name: &str) -> bool {
    model::properties::SAFETY.contains(&name)
}

type Found = Vec<(&'static str, Vec<model::Action>)>;

/// Waits for the checker, printing progress every ten seconds.
fn watch(checker: impl Checker<RaftModel>, start: Instant) -> (usize, usize, usize, Found) {
    let mut last = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "  {:.0} s: {} states, {} unique, depth {}",
                secs,
                checker.state_count(),
                checker.unique_state_count(),
                checker.max_depth().saturating_sub(1)
            );
        }
    }
    let checker = checker.join();
    let mut found: Found = checker
        .discoveries()
        .into_iter()
        .map(|(name, path)| (name, path.into_actions()))
        .collect();
    found.sort_by_key(|(name, _)| *name);
    (
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        found,
    )
}
