//! `cargo xtask mutants`: the mutation score (issue 20), as the Rust
//! ecosystem measures one: cargo-mutants (<https://mutants.rs>) mutates the
//! raft crate, and a mutant counts as caught when raft's tests or a short
//! sweep of the default swarm (`crates/sim/tests/mutants_sweep.rs`) fail on
//! it. The settings, and the equivalent mutants it skips with a reason
//! each, live in `.cargo/mutants.toml`.
//!
//! Two phases, because a sweep per mutant costs a minute and raft's own
//! tests a few seconds:
//! 1. every mutant against raft's unit, scenario and property tests
//!    (`cargo test -p raft --lib`), with cargo-mutants' own baseline, and
//!    a test timeout it sets from it;
//! 2. only the mutants phase 1 missed, against the sweep
//!    (`cargo test -p sim --test mutants_sweep -- --include-ignored`).
//!
//! Both phases run with raft's proptest seed pinned (CI's,
//! `PROPTEST_RNG_SEED`) and its shrinking off, so that a score reproduces:
//! with a fresh seed per run, a mutant only some drawn cases catch was
//! caught in one run and missed in the next.
//!
//! This is sound: a mutant phase 1 caught fails a test whatever phase 2
//! says, and every mutant phase 1 missed faces the sweep. Phase 2's
//! baseline is run here, unmutated, before cargo-mutants (whose own
//! baseline would test only the mutated package, raft, which holds no
//! sweep); its time sets the test timeout.

use crate::error::Error;
use crate::workspace_root;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `cargo xtask mutants`.
#[derive(Args, Debug)]
pub struct MutantsArgs {
    /// Mutate only this file (repeatable), e.g.
    /// crates/raft/src/election.rs [default: election.rs, replication.rs,
    /// read_index.rs and log.rs of crates/raft].
    #[arg(long)]
    pub file: Vec<String>,
    /// Which phases to run.
    #[arg(long, value_enum, default_value_t = Phases::Both)]
    pub phase: Phases,
    /// Seeds of the default swarm (with drawn Raft configurations) each
    /// mutant that survives raft's tests must pass.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// List the mutants, run nothing.
    #[arg(long)]
    pub list: bool,
    /// Run only this shard of the mutants, K/N (as cargo mutants does).
    #[arg(long)]
    pub shard: Option<String>,
    /// Parallel jobs (each builds its own copy of the tree).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Mutate the working tree itself and build in its target/ (no copy, no
    /// first build from scratch; one job, --jobs is ignored). cargo-mutants
    /// restores each file after its mutant: do not edit or build the tree
    /// meanwhile, and discard what a mutant's failing proptest case adds to
    /// crates/raft/proptest-regressions.
    #[arg(long)]
    pub in_place: bool,
    /// Where the results go: `OUT/phase1/mutants.out` and
    /// `OUT/phase2/mutants.out`.
    #[arg(long, default_value = "target/mutants")]
    pub out: PathBuf,
}

/// The phases `cargo xtask mutants` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phases {
    /// Every mutant against raft's own tests.
    One,
    /// The mutants phase 1 missed (read from its results) against the sweep.
    Two,
    /// Phase 1, then phase 2 on its survivors.
    Both,
}

/// The files the issue asks to be scored.
const DEFAULT_FILES: [&str; 4] = [
    "crates/raft/src/election.rs",
    "crates/raft/src/replication.rs",
    "crates/raft/src/read_index.rs",
    "crates/raft/src/log.rs",
];

/// The seed of raft's proptest in every mutants run: CI's (.ci/run).
const PROPTEST_RNG_SEED: &str = "20261123";

/// cargo-mutants' outcome files, in the order the score prints them.
const OUTCOMES: [&str; 4] = ["caught", "missed", "timeout", "unviable"];

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The mutant names of one outcome (`caught`, `missed`, ...) of a run.
fn outcome(dir: &Path, kind: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("mutants.out").join(format!("{kind}.txt")))
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `s` as a regex that matches only itself.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Runs `cmd` and returns cargo-mutants' exit status (0 all caught or
/// unviable, 2 some missed, 3 some timed out, 4 the baseline failed).
fn run(cmd: &mut Command) -> Result<i32, Error> {
    eprintln!("running: {cmd:?}");
    let status = cmd.status().map_err(|e| {
        Error::Usage(format!(
            "cannot run cargo ({e}); cargo-mutants installs with `cargo install cargo-mutants`"
        ))
    })?;
    Ok(status.code().unwrap_or(70))
}

/// Runs the chosen phases and prints the score; the exit status is 0 when
/// every mutant was caught (or is unviable), 2 when some survived both
/// phases, 3 when some timed out and none survived, 4 when a baseline
/// failed.
pub fn mutants(args: &MutantsArgs) -> Result<u8, Error> {
    let root = workspace_root();
    let files: Vec<String> = if args.file.is_empty() {
        DEFAULT_FILES.iter().map(|f| f.to_string()).collect()
    } else {
        args.file.clone()
    };
    let out = root.join(&args.out);
    let (p1, p2) = (out.join("phase1"), out.join("phase2"));
    let base = |cmd: &mut Command| {
        // raft's proptest draws its cases from this seed, as in CI
        // (.ci/run), so that a score reproduces: with a random seed each
        // run, a mutant only some draws catch is caught in one run and
        // missed in the next.
        cmd.current_dir(&root)
            .env("PROPTEST_RNG_SEED", PROPTEST_RNG_SEED)
            // A failing case fails the test whether or not it is shrunk;
            // shrinking one that storms the test network (200,000
            // deliveries per try) outlasted the timeout (381:46).
            .env("PROPTEST_MAX_SHRINK_ITERS", "0")
            .args(["mutants", "--package", "raft"]);
        for file in &files {
            cmd.args(["--file", file]);
        }
        if args.in_place {
            // One tree, one job: cargo-mutants refuses --jobs with it.
            cmd.arg("--in-place");
        } else {
            cmd.arg("--jobs").arg(args.jobs.to_string());
        }
    };
    if args.list {
        let mut cmd = cargo();
        base(&mut cmd);
        cmd.arg("--list");
        return Ok(run(&mut cmd)?.clamp(0, 255) as u8);
    }
    let started = Instant::now();
    if args.phase != Phases::Two {
        std::fs::create_dir_all(&p1).map_err(|e| Error::Internal(format!("{p1:?}: {e}")))?;
        let mut cmd = cargo();
        base(&mut cmd);
        cmd.arg("--output").arg(&p1);
        if let Some(shard) = &args.shard {
            cmd.args(["--shard", shard]);
        }
        // Build and run the lib test target only (the scenarios and the
        // proptest are unit tests of the lib).
        cmd.arg("--cargo-arg=--lib");
        let code = run(&mut cmd)?;
        if code == 4 || code == 1 || code > 4 {
            eprintln!("phase 1 did not run its mutants (cargo mutants exited {code})");
            return Ok(code.clamp(0, 255) as u8);
        }
    }
    let survivors = outcome(&p1, "missed");
    let phase1_time = started.elapsed();
    let mut phase2_ran = false;
    if args.phase != Phases::One && !survivors.is_empty() {
        // The sweep's baseline, unmutated, in the profile the mutants use.
        let sweep = |cmd: &mut Command| {
            cmd.current_dir(&root)
                .env("RAFTLAB_MUTANTS_SEEDS", args.seeds.to_string())
                .args(["test", "--package", "sim", "--test", "mutants_sweep"]);
        };
        let mut build = cargo();
        sweep(&mut build);
        build.arg("--no-run");
        if run(&mut build)? != 0 {
            return Err(Error::Internal("the sweep does not build unmutated".into()));
        }
        let mut test = cargo();
        sweep(&mut test);
        test.args(["--", "--include-ignored"]);
        let t = Instant::now();
        if run(&mut test)? != 0 {
            eprintln!("phase 2's baseline failed: the sweep fails unmutated");
            return Ok(4);
        }
        let baseline = t.elapsed().as_secs_f64();
        // As cargo-mutants sets its own: a margin over the baseline.
        let timeout = (baseline * 5.0).max(60.0).ceil();
        eprintln!(
            "phase 2 baseline: {} seeds in {baseline:.1}s; test timeout {timeout}s",
            args.seeds
        );
        std::fs::create_dir_all(&p2).map_err(|e| Error::Internal(format!("{p2:?}: {e}")))?;
        let mut cmd = cargo();
        base(&mut cmd);
        cmd.arg("--output")
            .arg(&p2)
            .env("RAFTLAB_MUTANTS_SEEDS", args.seeds.to_string())
            .args(["--test-package", "sim", "--baseline", "skip", "--timeout"])
            .arg(timeout.to_string());
        for name in &survivors {
            cmd.arg("--re").arg(format!("^{}$", regex_escape(name)));
        }
        // Build and run only the sweep's test target (not all of sim's).
        cmd.args(["--cargo-arg=--test", "--cargo-arg=mutants_sweep"])
            .args(["--cargo-test-arg=--", "--cargo-test-arg=--include-ignored"]);
        let code = run(&mut cmd)?;
        if code == 4 || code == 1 || code > 4 {
            eprintln!("phase 2 did not run its mutants (cargo mutants exited {code})");
            return Ok(code.clamp(0, 255) as u8);
        }
        phase2_ran = true;
    }
    let [c1, m1, t1, u1] = OUTCOMES.map(|k| outcome(&p1, k).len());
    let [c2, m2, t2, u2] = if phase2_ran {
        OUTCOMES.map(|k| outcome(&p2, k).len())
    } else {
        [0, m1, 0, 0]
    };
    let total = c1 + m1 + t1 + u1;
    println!("mutation score of {}:", files.join(", "));
    println!(
        "  phase 1 (raft's tests): {total} mutants: {c1} caught, {m1} missed, {t1} timeout, {u1} unviable"
    );
    if phase2_ran {
        println!(
            "  phase 2 (sweep of {} seeds) on the {m1} missed: {c2} caught, {m2} missed, {t2} timeout, {u2} unviable",
            args.seeds
        );
    }
    println!(
        "  total: {} caught, {m2} missed, {} timeout, {} unviable; {:.0}s (phase 1 {:.0}s)",
        c1 + c2,
        t1 + t2,
        u1 + u2,
        started.elapsed().as_secs_f64(),
        phase1_time.as_secs_f64()
    );
    for name in outcome(if phase2_ran { &p2 } else { &p1 }, "missed") {
        println!("  missed: {name}");
    }
    Ok(if m2 > 0 {
        2
    } else if t1 + t2 > 0 {
        3
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_mutant_name_has_no_regex_operator_left() {
        let name = "crates/raft/src/log.rs:12:5: replace a.b() -> Option<u64> with Some(1) in X<'_>::f [x|y]*";
        let escaped = regex_escape(name);
        assert!(escaped.starts_with("crates/raft/src/log\\.rs:12:5: replace"));
        for op in ["(", ")", "[", "]", "|", "*", "."] {
            // Every operator is preceded by a backslash.
            let unescaped = escaped
                .match_indices(op)
                .filter(|&(i, _)| !escaped[..i].ends_with('\\'))
                .count();
            assert_eq!(unescaped, 0, "{op:?} in {escaped}");
        }
    }
}
