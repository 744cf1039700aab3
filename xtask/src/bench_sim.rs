//! `cargo xtask bench sim`: how fast the simulator is.
//!
//! Two figures, both on the default run of `cargo xtask simulate` (5 nodes,
//! 10 clients, 30 s of virtual time, every fault family drawn per seed):
//!
//! - **one seed at a time**: `--runs` consecutive seeds, each timed twice
//!   over: the world alone (`World::run`: replicas, network, disks, faults,
//!   invariants after every step, the trace hash) and the whole run as
//!   `simulate` does it (the world plus the linearizability check). The
//!   medians give events/s (trace events per wall second, the world alone),
//!   simulated ÷ wall time, and seeds/hour on one core.
//! - **a sweep**: `--sweep-seeds` seeds over `--jobs` threads (default: every
//!   core), each a whole run, as `cargo xtask sweep` runs them: seeds/hour
//!   and events/s for the machine.
//!
//! Events are the trace's events (every send, delivery, drop, role change,
//! write, commit, apply, client step and fault), so the figure is
//! comparable across builds only while the trace records the same events.

use crate::cli::BenchSimArgs;
use check::Budget;
use sim::{Params, SimConfig, Tracer};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One seed's timings.
#[derive(Clone, Debug, serde::Serialize)]
struct SeedTiming {
    seed: u64,
    trace_events: u64,
    sim_time_s: f64,
    world_wall_s: f64,
    total_wall_s: f64,
    trace_hash: String,
}

/// Runs one seed: the world alone, then the whole run; returns both times.
fn time_seed(seed: u64) -> Result<SeedTiming, String> {
    let config = SimConfig::new(seed);
    let params = Params::draw(&config);
    let started = Instant::now();
    let output = sim::world::World::new(config.clone(), params, Tracer::silent()).run();
    let world_wall_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let outcome = sim::run(&config, Tracer::silent(), &Budget::default())?;
    let total_wall_s = started.elapsed().as_secs_f64();
    // The two runs of one seed must agree: a cheap determinism check.
    let hash = format!("{:016x}", output.trace_hash);
    if hash != outcome.summary.trace_hash {
        return Err(format!(
            "seed {seed}: nondeterministic ({hash} then {})",
            outcome.summary.trace_hash
        ));
    }
    Ok(SeedTiming {
        seed,
        trace_events: output.trace_events,
        sim_time_s: output.sim_time as f64 / 1e9,
        world_wall_s,
        total_wall_s,
        trace_hash: hash,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// `cargo xtask bench sim`.
pub fn bench_sim(args: &BenchSimArgs) -> Result<u8, String> {
    let machine = crate::bench_cluster::machine();
    let mut seeds = Vec::new();
    for seed in args.seed..args.seed + args.runs.max(1) {
        let t = time_seed(seed)?;
        eprintln!(
            "seed {seed}: {} events, world {:.3} s, whole run {:.3} s",
            t.trace_events, t.world_wall_s, t.total_wall_s
        );
        seeds.push(t);
    }
    let events_per_s = median(
        seeds
            .iter()
            .map(|t| t.trace_events as f64 / t.world_wall_s)
            .collect(),
    );
    let speedup_world = median(
        seeds
            .iter()
            .map(|t| t.sim_time_s / t.world_wall_s)
            .collect(),
    );
    let speedup_total = median(
        seeds
            .iter()
            .map(|t| t.sim_time_s / t.total_wall_s)
            .collect(),
    );
    let seeds_per_hour_one = median(seeds.iter().map(|t| 3600.0 / t.total_wall_s).collect());
    let world_ms = median(seeds.iter().map(|t| t.world_wall_s * 1e3).collect());
    let total_ms = median(seeds.iter().map(|t| t.total_wall_s * 1e3).collect());

    // The sweep: whole runs, `jobs` threads taking the next seed.
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let sweep = if args.sweep_seeds > 0 {
        let first = args.seed + args.runs.max(1);
        let next = AtomicU64::new(first);
        let end = first + args.sweep_seeds;
        let events = AtomicU64::new(0);
        let sim_ns = AtomicU64::new(0);
        let failed = AtomicU64::new(0);
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= end {
                            break;
                        }
                        match sim::run(&SimConfig::new(seed), Tracer::silent(), &Budget::default())
                        {
                            Ok(o) => {
                                events.fetch_add(o.summary.trace_events, Ordering::Relaxed);
                                sim_ns.fetch_add(
                                    o.summary.sim_time_ms * 1_000_000,
                                    Ordering::Relaxed,
                                );
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        let wall = started.elapsed().as_secs_f64();
        Some(serde_json::json!({
            "seeds": args.sweep_seeds,
            "jobs": jobs,
            "wall_s": wall,
            "seeds_per_hour": args.sweep_seeds as f64 * 3600.0 / wall,
            "events_per_s": events.load(Ordering::Relaxed) as f64 / wall,
            "sim_over_wall": sim_ns.load(Ordering::Relaxed) as f64 / 1e9 / wall,
            "errors": failed.load(Ordering::Relaxed),
        }))
    } else {
        None
    };

    let mut md = String::new();
    let _ = writeln!(
        md,
        "### bench sim: the default run (5 nodes, 10 clients, 30 s virtual, faults drawn per seed)\n\n\
         Machine: {machine}; build: {}\n",
        if cfg!(debug_assertions) {
            "the `sim` profile (optimised, raft's invariant checks and debug assertions on)"
        } else {
            "release (debug assertions off)"
        }
    );
    let _ = writeln!(md, "| figure | value |");
    let _ = writeln!(md, "|---|---:|");
    let _ = writeln!(
        md,
        "| seeds, one at a time | {}..={} |",
        args.seed,
        args.seed + args.runs.max(1) - 1
    );
    let _ = writeln!(md, "| events/s, world alone (median) | {events_per_s:.0} |");
    let _ = writeln!(
        md,
        "| wall per seed, world alone (median) | {world_ms:.0} ms |"
    );
    let _ = writeln!(
        md,
        "| wall per seed, world + linearizability check (median) | {total_ms:.0} ms |"
    );
    let _ = writeln!(
        md,
        "| simulated ÷ wall, world alone (median) | {speedup_world:.0}× |"
    );
    let _ = writeln!(
        md,
        "| simulated ÷ wall, whole run (median) | {speedup_total:.0}× |"
    );
    let _ = writeln!(md, "| seeds/hour, one core | {seeds_per_hour_one:.0} |");
    if let Some(s) = &sweep {
        let _ = writeln!(
            md,
            "| sweep: seeds, threads | {}, {} |",
            s["seeds"], s["jobs"]
        );
        let _ = writeln!(
            md,
            "| sweep: seeds/hour | {:.0} |",
            s["seeds_per_hour"].as_f64().unwrap_or(f64::NAN)
        );
        let _ = writeln!(
            md,
            "| sweep: events/s (whole runs) | {:.0} |",
            s["events_per_s"].as_f64().unwrap_or(f64::NAN)
        );
        let _ = writeln!(
            md,
            "| sweep: simulated ÷ wall | {:.0}× |",
            s["sim_over_wall"].as_f64().unwrap_or(f64::NAN)
        );
    }
    print!("{md}");
    let json = serde_json::json!({
        "machine": machine,
        "debug_assertions": cfg!(debug_assertions),
        "events_per_s_world": events_per_s,
        "world_wall_ms_median": world_ms,
        "total_wall_ms_median": total_ms,
        "sim_over_wall_world": speedup_world,
        "sim_over_wall_total": speedup_total,
        "seeds_per_hour_one_core": seeds_per_hour_one,
        "seeds": seeds,
        "sweep": sweep,
    });
    let dir = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("sim.md"), &md).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("sim.json"), text + "\n").map_err(|e| e.to_string())?;
    eprintln!("written: target/bench/sim.md, target/bench/sim.json");
    Ok(0)
}
