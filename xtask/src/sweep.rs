//! `cargo xtask sweep`: many seeds, in parallel processes' worth of threads
//! (each simulation is single-threaded and independent), one summary.

use crate::cli::SweepArgs;
use crate::{run_one, workspace_root, write_history};
use check::Budget;
use serde::Serialize;
use sim::{Summary, TraceFilter};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a sweep reports.
#[derive(Debug, Default, Serialize)]
pub struct SweepSummary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds where everything held.
    pub passed: u64,
    /// Seeds with a violation (invariant or linearizability).
    pub failed_seeds: Vec<u64>,
    /// Seeds the checker could not decide.
    pub undecided_seeds: Vec<u64>,
    /// Seeds that could not run at all, with the reason.
    pub errors: Vec<String>,
    /// The fewest operations any seed completed with a result.
    pub min_ops_ok: u64,
    /// Operations completed with a result, in total.
    pub ops_ok: u64,
    /// Operations with unknown outcome, in total.
    pub ops_unknown: u64,
    /// Terms with a leader, in total.
    pub elections: u64,
    /// Seeds that saw more than one leader (a leader change).
    pub seeds_with_leader_changes: u64,
    /// Crashes, in total.
    pub crashes: u64,
    /// Partitions, in total.
    pub partitions: u64,
    /// Wall-clock seconds.
    pub wall_time_s: f64,
    /// Seeds per wall-clock second.
    pub seeds_per_second: f64,
}

/// Runs the sweep; exit status 0 when every seed passed, 1 on any violation,
/// 2 when some seed was undecided and none failed.
pub fn sweep(args: &SweepArgs) -> Result<u8, String> {
    let range = args.seeds;
    // Validate the shape once, up front, so a usage error is not N errors.
    args.shape.config(range.first)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicU64::new(range.first);
    let results: Mutex<Vec<Result<Summary, (u64, String)>>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let failures_dir = workspace_root().join("histories/failures");
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > range.last {
                        break;
                    }
                    let result = args.shape.config(seed).and_then(|config| {
                        let outcome =
                            run_one(&config, TraceFilter::Off, false, &Budget::default())?;
                        if !outcome.summary.ok {
                            let stem = failures_dir.join(format!("seed-{seed}"));
                            write_history(&outcome.history, &stem.with_extension("jsonl"))?;
                            let json = serde_json::to_string_pretty(&outcome.summary)
                                .map_err(|e| e.to_string())?;
                            std::fs::write(stem.with_extension("json"), json)
                                .map_err(|e| e.to_string())?;
                            if !args.json {
                                eprintln!(
                                    "seed {seed}: {}",
                                    outcome
                                        .summary
                                        .violations
                                        .first()
                                        .map_or("undecided", |v| v.as_str())
                                );
                            }
                        }
                        Ok(outcome.summary)
                    });
                    results
                        .lock()
                        .expect("no worker panics holding the lock")
                        .push(result.map_err(|e| (seed, e)));
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let mut results = results.into_inner().expect("workers finished");
    results.sort_by_key(|r| match r {
        Ok(s) => s.seed,
        Err((seed, _)) => *seed,
    });
    let mut total = SweepSummary {
        min_ops_ok: u64::MAX,
        ..SweepSummary::default()
    };
    for result in results {
        total.seeds += 1;
        match result {
            Ok(s) => {
                match s.exit_code() {
                    0 => total.passed += 1,
                    2 => total.undecided_seeds.push(s.seed),
                    _ => total.failed_seeds.push(s.seed),
                }
                total.min_ops_ok = total.min_ops_ok.min(s.ops_ok);
                total.ops_ok += s.ops_ok;
                total.ops_unknown += s.ops_unknown;
                total.elections += s.elections;
                total.seeds_with_leader_changes += u64::from(s.elections > 1);
                total.crashes += s.crashes;
                total.partitions += s.partitions;
            }
            Err((seed, e)) => total.errors.push(format!("seed {seed}: {e}")),
        }
    }
    if total.min_ops_ok == u64::MAX {
        total.min_ops_ok = 0;
    }
    total.wall_time_s = wall;
    total.seeds_per_second = total.seeds as f64 / wall.max(1e-9);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&total).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "sweep of {} seeds ({} jobs): {} passed, {} failed {:?}, {} undecided {:?}, {} errors",
            total.seeds,
            jobs,
            total.passed,
            total.failed_seeds.len(),
            total.failed_seeds,
            total.undecided_seeds.len(),
            total.undecided_seeds,
            total.errors.len()
        );
        for e in &total.errors {
            println!("  {e}");
        }
        println!(
            "  ops: {} ok (at least {} per seed), {} unknown; {} elections ({} seeds changed leader), {} crashes, {} partitions",
            total.ops_ok,
            total.min_ops_ok,
            total.ops_unknown,
            total.elections,
            total.seeds_with_leader_changes,
            total.crashes,
            total.partitions
        );
        println!(
            "  {:.1}s wall, {:.2} seeds/s",
            total.wall_time_s, total.seeds_per_second
        );
        if !total.failed_seeds.is_empty() {
            println!(
                "  failing histories and summaries: {}",
                failures_dir.display()
            );
        }
    }
    Ok(
        if !total.failed_seeds.is_empty() || !total.errors.is_empty() {
            1
        } else if !total.undecided_seeds.is_empty() {
            2
        } else {
            0
        },
    )
}
