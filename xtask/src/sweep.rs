//! `cargo xtask sweep`: many seeds, in parallel threads (each simulation is
//! single-threaded and independent), one summary; shards of one sweep, run
//! anywhere, merge into the same summary.

use crate::cli::{MergeArgs, Shard, SweepArgs};
use crate::error::{EXIT_EXPECTATION_FAILED, Error};
use crate::{run_one, workspace_root, write_history};
use check::Budget;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sim::TraceFilter;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What one seed of a sweep produced: enough to merge shards and to find the
/// seed's files again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// 0 passed, 1 violation, 2 undecided, 70 could not run.
    pub exit_code: i32,
    /// The first violation, or the error.
    pub problem: Option<String>,
    /// The kind of failure (the first rule broken, or "liveness").
    #[serde(default)]
    pub kind: Option<String>,
    /// The scenario expects a failure and this seed passed.
    #[serde(default)]
    pub expectation_failed: bool,
    /// Operations completed with a result.
    pub ops_ok: u64,
    /// Operations with unknown outcome.
    pub ops_unknown: u64,
    /// Terms with a leader.
    pub elections: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// Disk faults injected, by kind.
    pub disk_faults: BTreeMap<String, u64>,
    /// Snapshots replicas took (log compactions).
    #[serde(default)]
    pub snapshots_taken: u64,
    /// Snapshots replicas installed from a leader.
    #[serde(default)]
    pub snapshots_installed: u64,
    /// Configuration changes completed (committed, non-joint).
    #[serde(default)]
    pub membership_changes: u64,
    /// Removals or replacements of the leader of the moment.
    #[serde(default)]
    pub leader_removals: u64,
    /// Messages held by partitions and replayed later (hold and replay).
    #[serde(default)]
    pub messages_held: u64,
    /// Lease reads confirmed (each checked by lease safety within the
    /// drift bound).
    #[serde(default)]
    pub lease_reads: u64,
    /// Writes, their latencies and group commit, and the process and
    /// network faults of asynchronous storage.
    #[serde(default)]
    pub storage: sim::world::StorageSummary,
    /// The trace hash.
    pub trace_hash: String,
    /// The replay command.
    pub replay: String,
}

/// What a sweep (or a merge of shards) reports. Everything but the timing
/// fields is a function of the per-seed results, so the merge of a sweep's
/// shards equals the unsharded sweep.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// The seed range the sweep (or each merged shard) covered, both ends
    /// included; `None` only in summaries from before it was recorded.
    #[serde(default)]
    pub range: Option<(u64, u64)>,
    /// Which shard of the range this summary holds (1/1: all of it);
    /// `None` for a merge, or a summary from before it was recorded.
    #[serde(default)]
    pub shard: Option<(u64, u64)>,
    /// Shards merged into this summary (empty unless a merge).
    #[serde(default)]
    pub merged_shards: Vec<u64>,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds where everything held.
    pub passed: u64,
    /// Seeds with a violation (invariant or linearizability).
    pub failed_seeds: Vec<u64>,
    /// Seeds the checker could not decide.
    pub undecided_seeds: Vec<u64>,
    /// Seeds that were safe but failed the liveness check after the heal.
    #[serde(default)]
    pub liveness_failed_seeds: Vec<u64>,
    /// Seeds of a scenario that expects a failure (`expect = "violation"`
    /// or `"liveness"`) that passed: failed expectations.
    #[serde(default)]
    pub expectation_failed_seeds: Vec<u64>,
    /// Seeds that could not run at all, with the reason.
    pub errors: Vec<String>,
    /// Seeds whose re-run gave another trace hash (determinism broken).
    pub nondeterministic_seeds: Vec<u64>,
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
    /// Disk faults, in total, by kind.
    pub disk_faults: BTreeMap<String, u64>,
    /// Snapshots taken, in total.
    #[serde(default)]
    pub snapshots_taken: u64,
    /// Snapshots installed from a leader, in total.
    #[serde(default)]
    pub snapshots_installed: u64,
    /// Seeds where replicas both took and installed snapshots.
    #[serde(default)]
    pub seeds_with_snapshots_taken_and_installed: u64,
    /// Configuration changes completed, in total.
    #[serde(default)]
    pub membership_changes: u64,
    /// Seeds with at least two completed configuration changes.
    #[serde(default)]
    pub seeds_with_several_membership_changes: u64,
    /// Removals or replacements of the leader, in total.
    #[serde(default)]
    pub leader_removals: u64,
    /// Failing seeds by the kind of their first failure.
    #[serde(default)]
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Process pauses, over all seeds.
    #[serde(default)]
    pub pauses: u64,
    /// Seeds that had slow disks.
    #[serde(default)]
    pub seeds_with_slow_disks: u64,
    /// Messages delayed far beyond the latency range, over all seeds.
    #[serde(default)]
    pub long_delayed_messages: u64,
    /// Fast restarts, over all seeds.
    #[serde(default)]
    pub fast_restarts: u64,
    /// Messages held by partitions and replayed later, over all seeds.
    #[serde(default)]
    pub messages_held: u64,
    /// Seeds in which partitions held messages.
    #[serde(default)]
    pub seeds_with_held_messages: u64,
    /// Lease reads confirmed, over all seeds.
    #[serde(default)]
    pub lease_reads: u64,
    /// Writes in flight when their node crashed, over all seeds.
    #[serde(default)]
    pub writes_in_flight_at_crashes: u64,
    /// Writes completed, over all seeds.
    #[serde(default)]
    pub writes: u64,
    /// The slowest write of any seed, in µs.
    #[serde(default)]
    pub max_fsync_latency_us: u32,
    /// The largest group commit of any seed (entries in one sync).
    #[serde(default)]
    pub max_entries_per_fsync: u32,
    /// Every seed's result, in seed order.
    pub results: Vec<SeedResult>,
    /// Wall-clock seconds (not merged: the sum over shards).
    pub wall_time_s: f64,
    /// Seeds per wall-clock second (of this run; for a merge, seeds over the
    /// summed wall time).
    pub seeds_per_second: f64,
}

impl SweepSummary {
    /// Aggregates per-seed results (sorted by seed, duplicates refused).
    pub fn from_results(
        mut results: Vec<SeedResult>,
        nondeterministic: Vec<u64>,
    ) -> Result<SweepSummary, String> {
        results.sort_by_key(|r| r.seed);
        if let Some(w) = results.windows(2).find(|w| w[0].seed == w[1].seed) {
            return Err(format!(
                "seed {} appears twice (overlapping shards?)",
                w[0].seed
            ));
        }
        let mut total = SweepSummary {
            nondeterministic_seeds: nondeterministic,
            ..SweepSummary::default()
        };
        total.nondeterministic_seeds.sort_unstable();
        total.min_ops_ok = results
            .iter()
            .filter(|r| r.exit_code != 70)
            .map(|r| r.ops_ok)
            .min()
            .unwrap_or(0);
        for r in &results {
            total.seeds += 1;
            match r.exit_code {
                0 => total.passed += 1,
                1 => total.failed_seeds.push(r.seed),
                2 => total.undecided_seeds.push(r.seed),
                3 => total.liveness_failed_seeds.push(r.seed),
                _ => total.errors.push(format!(
                    "seed {}: {}",
                    r.seed,
                    r.problem.as_deref().unwrap_or("?")
                )),
            }
            if r.expectation_failed {
                total.expectation_failed_seeds.push(r.seed);
            }
            total.ops_ok += r.ops_ok;
            total.ops_unknown += r.ops_unknown;
            total.elections += r.elections;
            total.seeds_with_leader_changes += u64::from(r.elections > 1);
            total.crashes += r.crashes;
            total.partitions += r.partitions;
            for (kind, n) in &r.disk_faults {
                *total.disk_faults.entry(kind.clone()).or_insert(0) += n;
            }
            total.snapshots_taken += r.snapshots_taken;
            total.snapshots_installed += r.snapshots_installed;
            total.seeds_with_snapshots_taken_and_installed +=
                u64::from(r.snapshots_taken > 0 && r.snapshots_installed > 0);
            total.membership_changes += r.membership_changes;
            total.seeds_with_several_membership_changes += u64::from(r.membership_changes >= 2);
            total.leader_removals += r.leader_removals;
            total.messages_held += r.messages_held;
            total.seeds_with_held_messages += u64::from(r.messages_held > 0);
            total.lease_reads += r.lease_reads;
            if let Some(kind) = &r.kind {
                *total.failures_by_kind.entry(kind.clone()).or_insert(0) += 1;
            }
            let st = &r.storage;
            total.pauses += st.pauses;
            total.seeds_with_slow_disks += u64::from(!st.slow_disks.is_empty());
            total.long_delayed_messages += st.long_delayed_messages;
            total.fast_restarts += st.fast_restarts;
            total.writes_in_flight_at_crashes += st.writes_in_flight_at_crashes;
            total.writes += st.writes;
            total.max_fsync_latency_us = total.max_fsync_latency_us.max(st.fsync_latency_max_us);
            total.max_entries_per_fsync = total.max_entries_per_fsync.max(st.entries_per_fsync_max);
        }
        total.results = results;
        Ok(total)
    }

    /// The sweep's exit status: 1 on any error or nondeterminism; else 5 if
    /// a seed of a scenario that expects a failure passed; else 1 on any
    /// violation; else 2 if any seed was undecided; else 3 if any seed
    /// failed liveness; else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() || !self.nondeterministic_seeds.is_empty() {
            1
        } else if !self.expectation_failed_seeds.is_empty() {
            EXIT_EXPECTATION_FAILED
        } else if !self.failed_seeds.is_empty() {
            1
        } else if !self.undecided_seeds.is_empty() {
            2
        } else if !self.liveness_failed_seeds.is_empty() {
            3
        } else {
            0
        }
    }
}

/// The seeds of `shard` within `first..=last`: every Nth seed, so shards get
/// similar mixes of seeds.
pub fn shard_seeds(first: u64, last: u64, shard: Shard) -> Vec<u64> {
    (first..=last)
        .filter(|seed| (seed - first) % shard.count == shard.index - 1)
        .collect()
}

/// Whether `seed` is re-run for the determinism self-check, at `fraction`
/// of seeds: decided by the seed alone, so every shard agrees.
fn rechecked(seed: u64, fraction: f64) -> bool {
    fraction >= 1.0
        || (fraction > 0.0
            && (stablehash::splitmix64(seed) % 10_000) < (fraction * 10_000.0) as u64)
}

/// Runs one seed, catching a panic as that seed's error.
fn run_seed(
    args: &SweepArgs,
    seed: u64,
    out: &SweepDirs,
    expect: sim::Expect,
) -> (SeedResult, bool) {
    std::panic::catch_unwind(|| run_seed_inner(args, seed, out, expect)).unwrap_or_else(|_| {
        (
            error_result(seed, "panicked (see the message above)".to_string()),
            true,
        )
    })
}

/// A seed that could not run.
fn error_result(seed: u64, e: String) -> SeedResult {
    SeedResult {
        seed,
        exit_code: 70,
        problem: Some(e),
        kind: None,
        expectation_failed: false,
        ops_ok: 0,
        ops_unknown: 0,
        elections: 0,
        crashes: 0,
        partitions: 0,
        disk_faults: BTreeMap::new(),
        snapshots_taken: 0,
        snapshots_installed: 0,
        membership_changes: 0,
        leader_removals: 0,
        messages_held: 0,
        lease_reads: 0,
        storage: Default::default(),
        trace_hash: String::new(),
        replay: String::new(),
    }
}

fn run_seed_inner(
    args: &SweepArgs,
    seed: u64,
    out: &SweepDirs,
    expect: sim::Expect,
) -> (SeedResult, bool) {
    let error = |e: String| error_result(seed, e);
    let config = match args.shape.config(seed) {
        Ok(c) => c,
        Err(e) => return (error(e.to_string()), true),
    };
    let outcome = match run_one(&config, TraceFilter::Off, false, &Budget::default()) {
        Ok(o) => o,
        Err(e) => return (error(e), true),
    };
    let s = &outcome.summary;
    let deterministic = !rechecked(seed, args.recheck)
        || run_one(&config, TraceFilter::Off, false, &Budget::default())
            .is_ok_and(|again| again.summary.trace_hash == s.trace_hash);
    if !s.ok {
        let stem = out.failures.join(format!("seed-{seed}"));
        let saved = write_history(&outcome.history, &stem.with_extension("jsonl")).and_then(|()| {
            let json = serde_json::to_string_pretty(s).map_err(|e| e.to_string())?;
            std::fs::write(stem.with_extension("json"), json).map_err(|e| e.to_string())
        });
        // The exact run as a scenario file: `cargo xtask replay` reruns it
        // bit for bit (and `shrink --scenario` reduces it).
        // An undecided seed did not fail: its file expects what a run
        // that passes would, and says it was undecided.
        let (kind, expect) = match (sim::shrink::failure_kind(s), s.exit_code()) {
            (Some(k), 3) => (k.to_string(), sim::Expect::Liveness),
            (Some(k), _) => (k.to_string(), sim::Expect::Violation),
            (None, _) => (
                "undecided (the checker ran out of budget; no invariant broke)".to_string(),
                sim::Expect::Ok,
            ),
        };
        let saved = saved.and_then(|()| {
            crate::scenario_cmd::write_scenario(
                &config,
                s,
                expect,
                &kind,
                &stem.with_extension("toml"),
            )
        });
        // A report per failing seed, linked from the sweep's index.html.
        let saved = saved.and_then(|()| {
            crate::report_cmd::write_run_report_in(
                &out.reports,
                &outcome,
                &format!("seed-{seed}"),
                &stem.with_extension("jsonl"),
            )
            .map(drop)
        });
        if let Err(e) = saved {
            return (
                error(format!("cannot keep the failure's files: {e}")),
                deterministic,
            );
        }
    }
    let result = SeedResult {
        seed,
        exit_code: s.exit_code(),
        problem: s
            .violations
            .first()
            .cloned()
            .or_else(|| s.liveness.first().map(|l| format!("liveness: {l}")))
            .or_else(|| (s.exit_code() == 2).then(|| "undecided".to_string())),
        kind: sim::shrink::failure_kind(s).map(|k| k.to_string()),
        expectation_failed: expect.is_failure() && s.exit_code() == 0,
        ops_ok: s.stats.ops_ok,
        ops_unknown: s.stats.ops_unknown,
        elections: s.elections,
        crashes: s.stats.crashes,
        partitions: s.stats.partitions,
        disk_faults: s.disk_faults.clone(),
        snapshots_taken: s.stats.snapshots_taken,
        snapshots_installed: s.stats.snapshots_installed,
        membership_changes: s.stats.membership.completed,
        leader_removals: s.stats.membership.leader_removals,
        messages_held: s.stats.messages_held,
        lease_reads: s.stats.lease_reads,
        storage: s.storage.clone(),
        trace_hash: s.trace_hash.clone(),
        replay: s.replay.clone(),
    };
    (result, deterministic)
}

/// Where a sweep keeps its files: directories of its own, named by the
/// run's shape and shard, cleared when the sweep starts, so nothing stale
/// survives and other sweeps' files are left alone.
pub struct SweepDirs {
    /// Failing seeds' histories, summaries and scenario files.
    pub failures: PathBuf,
    /// Failing seeds' reports and the sweep's index.html.
    pub reports: PathBuf,
}

impl SweepDirs {
    /// The directories of a sweep of `args`: `histories/failures/NAME/` and
    /// `reports/sweeps/NAME/`, NAME the shape's name and, for a shard,
    /// `-shard-K-of-N`.
    pub fn of(args: &SweepArgs) -> SweepDirs {
        let mut name = args.shape.name();
        if let Some(shard) = args.shard {
            name += &format!("-shard-{}-of-{}", shard.index, shard.count);
        }
        SweepDirs {
            failures: workspace_root().join("histories/failures").join(&name),
            reports: crate::report_cmd::reports_dir().join("sweeps").join(&name),
        }
    }

    /// Empties both directories (creating them).
    pub fn clear(&self) -> Result<(), String> {
        for dir in [&self.failures, &self.reports] {
            if dir.exists() {
                std::fs::remove_dir_all(dir)
                    .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Ok(())
    }
}

/// Runs the sweep; exit status 0 when every seed passed, 1 on any violation
/// or nondeterminism, 2 when some seed was undecided and none failed (see
/// [`SweepSummary::exit_code`]).
pub fn sweep(args: &SweepArgs) -> Result<u8, Error> {
    let range = args
        .seeds
        .ok_or_else(|| Error::Usage("--seeds A..B (or A..=B) is required".to_string()))?;
    // Validate the shape once, up front, so a usage error is not N errors.
    args.shape.config(range.first)?;
    let expect = args.shape.scenario()?.map_or(sim::Expect::Ok, |s| s.expect);
    let shard = args.shard.unwrap_or(Shard { index: 1, count: 1 });
    let seeds = shard_seeds(range.first, range.last, shard);
    if seeds.is_empty() {
        return Err(Error::Usage(format!(
            "shard {}/{} of seeds {}..={} holds no seed",
            shard.index, shard.count, range.first, range.last
        )));
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let dirs = SweepDirs::of(args);
    dirs.clear()?;
    let progress = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(seeds.len() as u64)
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds, {per_sec}, {elapsed} elapsed, eta {eta} {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let results: Mutex<Vec<(SeedResult, bool)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed) as usize) {
                    let (result, deterministic) = run_seed(args, seed, &dirs, expect);
                    if result.exit_code != 0 || !deterministic {
                        let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                        progress.set_message(format!("({n} failing)"));
                        progress.suspend(|| {
                            if !args.json {
                                eprintln!(
                                    "seed {seed}: {}",
                                    result
                                        .problem
                                        .as_deref()
                                        .unwrap_or("trace hash differs on re-run")
                                );
                            }
                        });
                    }
                    progress.inc(1);
                    results
                        .lock()
                        .expect("no worker panics holding the lock")
                        .push((result, deterministic));
                }
            });
        }
    });
    progress.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let results = results.into_inner().expect("workers finished");
    let nondeterministic = results
        .iter()
        .filter(|(_, det)| !det)
        .map(|(r, _)| r.seed)
        .collect();
    let mut total = SweepSummary::from_results(
        results.into_iter().map(|(r, _)| r).collect(),
        nondeterministic,
    )?;
    total.wall_time_s = wall;
    total.seeds_per_second = total.seeds as f64 / wall.max(1e-9);
    total.range = Some((range.first, range.last));
    total.shard = Some((shard.index, shard.count));
    let failing: Vec<crate::report_cmd::Failure> = total
        .results
        .iter()
        .filter(|r| r.exit_code != 0 && r.exit_code != 70)
        .map(|r| crate::report_cmd::Failure {
            seed: r.seed,
            href: format!("seed-{}.html", r.seed),
            problem: r.problem.clone().unwrap_or_default(),
            replay: r.replay.clone(),
        })
        .collect();
    let index = crate::report_cmd::write_sweep_index(
        &dirs.reports,
        &format!(
            "raftlab sweep of seeds {}..={} ({}, shard {}/{})",
            range.first,
            range.last,
            args.shape.name(),
            shard.index,
            shard.count
        ),
        &failing,
    )?;
    if args.shrink {
        for r in total
            .results
            .iter()
            .filter(|r| r.exit_code == 1 || r.exit_code == 3)
        {
            let config = args.shape.config(r.seed)?;
            if let Some(shrunk) = sim::shrink::shrink(&config, &Budget::default())? {
                let path = workspace_root()
                    .join("histories/shrunk")
                    .join(format!("{}.toml", args.shape.file_stem(r.seed)));
                crate::scenario_cmd::write_shrunk(&shrunk, &path)?;
                if !args.json {
                    println!(
                        "seed {} shrunk in {} runs ({}): cargo xtask replay {}",
                        r.seed,
                        shrunk.runs,
                        shrunk.kind,
                        path.display()
                    );
                }
            }
        }
    }
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&total).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&total).map_err(|e| e.to_string())?
        );
    } else {
        print_summary(&total, Some(jobs));
        if !total.failed_seeds.is_empty() || !total.liveness_failed_seeds.is_empty() {
            println!(
                "  failing histories, summaries and scenario files (cargo xtask replay FILE): {}",
                dirs.failures.display()
            );
        }
        if !failing.is_empty() {
            println!("  reports of failing seeds: {}", index.display());
        }
    }
    Ok(total.exit_code())
}

/// `cargo xtask sweep merge`: one summary from the shards' `--out` files.
/// Refuses (64) a missing or empty file, shards of different sweeps, a
/// shard given twice or missing, and seeds that are not their shard's;
/// a file that is not a summary is bad input (65).
pub fn merge(args: &MergeArgs) -> Result<u8, Error> {
    let mut shards = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
        let shard: SweepSummary = serde_json::from_str(&text)
            .map_err(|e| Error::Input(format!("{} is not a sweep summary: {e}", path.display())))?;
        shards.push((path.display().to_string(), shard));
    }
    let (range, merged_shards) = check_shards(&shards).map_err(Error::Usage)?;
    let mut results = Vec::new();
    let mut nondeterministic = Vec::new();
    let mut wall = 0.0;
    for (_, shard) in shards {
        wall += shard.wall_time_s;
        results.extend(shard.results);
        nondeterministic.extend(shard.nondeterministic_seeds);
    }
    let mut total = SweepSummary::from_results(results, nondeterministic).map_err(Error::Usage)?;
    total.wall_time_s = wall;
    total.seeds_per_second = total.seeds as f64 / wall.max(1e-9);
    total.range = Some(range);
    total.shard = Some((1, 1));
    total.merged_shards = merged_shards;
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&total).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&total).map_err(|e| e.to_string())?
        );
    } else {
        print_summary(&total, None);
    }
    Ok(total.exit_code())
}

/// Checks that `shards` (file name, summary) are the N shards of one
/// sweep, each once, each holding exactly its seeds; returns the range and
/// the shard count's indices.
fn check_shards(shards: &[(String, SweepSummary)]) -> Result<((u64, u64), Vec<u64>), String> {
    let mut range = None;
    let mut count = None;
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, s) in shards {
        let (Some(r), Some((k, n))) = (s.range, s.shard) else {
            return Err(format!(
                "{name} records no seed range or shard (written by an older xtask?): re-run it"
            ));
        };
        if s.results.is_empty() || s.seeds == 0 {
            return Err(format!("{name} is an empty shard: it holds no seed"));
        }
        if *range.get_or_insert(r) != r || *count.get_or_insert(n) != n {
            return Err(format!(
                "{name} is shard {k}/{n} of seeds {}..={}, not of the same sweep as the others",
                r.0, r.1
            ));
        }
        if let Some(other) = seen.insert(k, name) {
            return Err(format!("shard {k}/{n} given twice: {other} and {name}"));
        }
        let expected = shard_seeds(r.0, r.1, Shard { index: k, count: n });
        let mut got: Vec<u64> = s.results.iter().map(|x| x.seed).collect();
        got.sort_unstable();
        if got != expected {
            return Err(format!(
                "{name} claims shard {k}/{n} of seeds {}..={} but holds other seeds (overlapping or partial shard)",
                r.0, r.1
            ));
        }
    }
    let (range, n) = (
        range.ok_or("no shard given")?,
        count.ok_or("no shard given")?,
    );
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing shards {} of seeds {}..={}: have {} of {n}",
            missing.join(", "),
            range.0,
            range.1,
            seen.len()
        ));
    }
    Ok((range, seen.into_keys().collect()))
}

fn print_summary(total: &SweepSummary, jobs: Option<usize>) {
    let how = match (jobs, total.shard, total.merged_shards.len()) {
        (Some(j), Some((k, n)), _) if n > 1 => format!("{j} jobs, shard {k}/{n}"),
        (Some(j), _, _) => format!("{j} jobs"),
        (None, _, m) => format!("{m} shards merged"),
    };
    let range = total
        .range
        .map_or(String::new(), |(a, b)| format!(" of {a}..={b}"));
    println!(
        "sweep{range} of {} seeds ({how}): {} passed, {} failed {:?}, {} undecided {:?}, {} liveness failures {:?}, {} errors, {} nondeterministic {:?}",
        total.seeds,
        total.passed,
        total.failed_seeds.len(),
        total.failed_seeds,
        total.undecided_seeds.len(),
        total.undecided_seeds,
        total.liveness_failed_seeds.len(),
        total.liveness_failed_seeds,
        total.errors.len(),
        total.nondeterministic_seeds.len(),
        total.nondeterministic_seeds,
    );
    if !total.expectation_failed_seeds.is_empty() {
        println!(
            "  EXPECTATION FAILED on {} seeds {:?}: the scenario expects a failure, and they passed",
            total.expectation_failed_seeds.len(),
            total.expectation_failed_seeds
        );
    }
    for e in &total.errors {
        println!("  {e}");
    }
    if !total.failures_by_kind.is_empty() {
        println!("  failures by kind: {:?}", total.failures_by_kind);
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
    if !total.disk_faults.is_empty() {
        println!("  disk faults: {:?}", total.disk_faults);
    }
    println!(
        "  snapshots: {} taken, {} installed; {} of {} seeds did both",
        total.snapshots_taken,
        total.snapshots_installed,
        total.seeds_with_snapshots_taken_and_installed,
        total.seeds
    );
    println!(
        "  membership: {} changes completed ({} removing the leader); {} of {} seeds had several",
        total.membership_changes,
        total.leader_removals,
        total.seeds_with_several_membership_changes,
        total.seeds
    );
    println!(
        "  storage: {} writes (slowest {}us, up to {} entries in one sync), {} in flight at crashes; {} pauses, {} seeds with slow disks, {} long-delayed messages, {} fast restarts",
        total.writes,
        total.max_fsync_latency_us,
        total.max_entries_per_fsync,
        total.writes_in_flight_at_crashes,
        total.pauses,
        total.seeds_with_slow_disks,
        total.long_delayed_messages,
        total.fast_restarts
    );
    println!(
        "  hold and replay: {} messages held by partitions and replayed ({} seeds); {} lease reads checked",
        total.messages_held, total.seeds_with_held_messages, total.lease_reads
    );
    println!(
        "  {:.1}s wall, {:.2} seeds/s",
        total.wall_time_s, total.seeds_per_second
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, exit_code: i32) -> SeedResult {
        SeedResult {
            seed,
            exit_code,
            problem: None,
            kind: (exit_code == 1).then(|| "commit safety".to_string()),
            expectation_failed: false,
            ops_ok: 100 + seed,
            ops_unknown: seed % 3,
            elections: 1 + seed % 2,
            crashes: seed % 4,
            partitions: seed % 5,
            disk_faults: BTreeMap::from([("torn".to_string(), seed % 2)]),
            snapshots_taken: seed % 3,
            snapshots_installed: seed % 2,
            membership_changes: seed % 4,
            leader_removals: seed % 2,
            messages_held: seed % 3,
            lease_reads: seed % 2,
            storage: sim::world::StorageSummary {
                writes: seed * 10,
                pauses: seed % 3,
                slow_disks: if seed.is_multiple_of(2) {
                    vec![1]
                } else {
                    vec![]
                },
                fsync_latency_max_us: seed as u32,
                ..Default::default()
            },
            trace_hash: format!("{seed:016x}"),
            replay: format!("cargo xtask simulate --seed {seed}"),
        }
    }

    #[test]
    fn shards_partition_the_seed_range() {
        let mut all: Vec<u64> = (1..=3)
            .flat_map(|k| shard_seeds(10, 30, Shard { index: k, count: 3 }))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (10..=30).collect::<Vec<_>>());
    }

    #[test]
    fn merged_shards_equal_the_unsharded_summary() {
        let results: Vec<SeedResult> = (1..=20)
            .map(|s| result(s, if s == 7 { 1 } else { 0 }))
            .collect();
        let whole = SweepSummary::from_results(results.clone(), vec![]).unwrap();
        let shards: Vec<Vec<SeedResult>> = (1..=3)
            .map(|k| {
                let seeds = shard_seeds(1, 20, Shard { index: k, count: 3 });
                results
                    .iter()
                    .filter(|r| seeds.contains(&r.seed))
                    .cloned()
                    .collect()
            })
            .collect();
        // Merge in an arbitrary order: the summary does not depend on it.
        let merged =
            SweepSummary::from_results(shards.into_iter().rev().flatten().collect(), vec![])
                .unwrap();
        assert_eq!(merged, whole);
        assert_eq!(whole.failed_seeds, vec![7]);
        assert_eq!(whole.exit_code(), 1);
    }

    #[test]
    fn a_seed_in_two_shards_is_refused() {
        let err = SweepSummary::from_results(vec![result(3, 0), result(3, 0)], vec![]).unwrap_err();
        assert!(err.contains("seed 3 appears twice"), "{err}");
    }

    #[test]
    fn nondeterminism_fails_the_sweep() {
        let total = SweepSummary::from_results(vec![result(1, 0)], vec![1]).unwrap();
        assert_eq!(total.exit_code(), 1);
    }

    #[test]
    fn recheck_fraction_is_decided_by_the_seed() {
        assert!((0..100).all(|s| rechecked(s, 1.0)));
        assert!((0..100).all(|s| !rechecked(s, 0.0)));
        let some = (0..10_000).filter(|&s| rechecked(s, 0.1)).count();
        assert!((800..1200).contains(&some), "{some}");
    }

    /// The summary of shard `k`/`n` of seeds 1..=20.
    fn shard(k: u64, n: u64) -> (String, SweepSummary) {
        let seeds = shard_seeds(1, 20, Shard { index: k, count: n });
        let mut s =
            SweepSummary::from_results(seeds.iter().map(|&x| result(x, 0)).collect(), vec![])
                .unwrap();
        s.range = Some((1, 20));
        s.shard = Some((k, n));
        (format!("shard-{k}.json"), s)
    }

    #[test]
    fn all_shards_once_merge() {
        let all: Vec<_> = (1..=4).map(|k| shard(k, 4)).collect();
        assert_eq!(check_shards(&all), Ok(((1, 20), vec![1, 2, 3, 4])));
    }

    #[test]
    fn missing_duplicated_overlapping_and_empty_shards_are_refused() {
        let some: Vec<_> = [1, 3].iter().map(|&k| shard(k, 4)).collect();
        let err = check_shards(&some).unwrap_err();
        assert!(err.contains("missing shards 2/4, 4/4"), "{err}");

        let twice = vec![shard(1, 2), shard(1, 2), shard(2, 2)];
        let err = check_shards(&twice).unwrap_err();
        assert!(err.contains("shard 1/2 given twice"), "{err}");

        let mixed = vec![shard(1, 2), shard(2, 3)];
        let err = check_shards(&mixed).unwrap_err();
        assert!(err.contains("not of the same sweep"), "{err}");

        let (name, mut overlapping) = shard(2, 2);
        overlapping.results.push(result(1, 0));
        let err = check_shards(&[shard(1, 2), (name, overlapping)]).unwrap_err();
        assert!(err.contains("holds other seeds"), "{err}");

        let (name, mut empty) = shard(2, 2);
        empty.results.clear();
        empty.seeds = 0;
        let err = check_shards(&[shard(1, 2), (name, empty)]).unwrap_err();
        assert!(err.contains("empty shard"), "{err}");

        let (name, mut old) = shard(1, 1);
        old.shard = None;
        let err = check_shards(&[(name, old)]).unwrap_err();
        assert!(err.contains("records no seed range or shard"), "{err}");
    }

    #[test]
    fn a_failed_expectation_has_its_own_exit_status_and_list() {
        let mut passed = result(4, 0);
        passed.expectation_failed = true;
        let total = SweepSummary::from_results(vec![result(3, 1), passed], vec![]).unwrap();
        assert_eq!(total.expectation_failed_seeds, vec![4]);
        assert_eq!(total.exit_code(), EXIT_EXPECTATION_FAILED);
    }

    #[test]
    fn a_sweep_clears_its_own_directories_only() {
        let root = std::env::temp_dir().join(format!("xtask-sweep-dirs-{}", std::process::id()));
        let dirs = SweepDirs {
            failures: root.join("failures/mine"),
            reports: root.join("reports/mine"),
        };
        let other = root.join("failures/other/seed-1.json");
        for f in [dirs.failures.join("seed-9.json"), other.clone()] {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, "{}").unwrap();
        }
        dirs.clear().unwrap();
        assert_eq!(std::fs::read_dir(&dirs.failures).unwrap().count(), 0);
        assert!(dirs.reports.is_dir());
        assert!(other.exists(), "another sweep's files stay");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_shard_sweep_has_a_directory_of_its_own() {
        let args = |shard| SweepArgs {
            action: None,
            seeds: None,
            shard,
            jobs: None,
            recheck: 0.0,
            out: None,
            shrink: false,
            shape: crate::cli::RunShape::default(),
            json: false,
        };
        let whole = SweepDirs::of(&args(None));
        let part = SweepDirs::of(&args(Some(Shard { index: 2, count: 4 })));
        assert!(whole.failures.ends_with("histories/failures/default"));
        assert!(
            part.failures
                .ends_with("histories/failures/default-shard-2-of-4")
        );
        assert!(
            part.reports
                .ends_with("reports/sweeps/default-shard-2-of-4")
        );
    }
}
