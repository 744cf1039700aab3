//! Scenario files: loading them by name or path, `shrink` (reduce a failing
//! run to a small scenario file) and `replay` (run a scenario file with a
//! pinned seed, and check that it reproduces its trace hash).

use crate::cli::{ReplayArgs, ShrinkArgs};
use crate::error::{EXIT_REPLAY_DIFFERS, Error};
use crate::{print_header, print_verdict, run_one, workspace_root, write_history};
use check::Budget;
use sim::queue::MS;
use sim::{Expect, Scenario, SimConfig, Summary, TraceFilter};
use std::path::{Path, PathBuf};

/// Reads scenario `name`: a path (anything ending in `.toml` or holding a
/// `/`), or the name of a file in scenarios/. Returns the name to show in
/// replay commands and the parsed scenario.
/// Every error is a usage error (the name came from the command line).
pub fn load(name: &str) -> Result<(String, Scenario), Error> {
    let path = if name.ends_with(".toml") || name.contains('/') {
        PathBuf::from(name)
    } else {
        workspace_root()
            .join("scenarios")
            .join(format!("{name}.toml"))
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("cannot read scenario {}: {e}", path.display())))?;
    let scenario =
        Scenario::parse(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    Ok((name.to_string(), scenario))
}

fn run_quiet(config: &SimConfig) -> Result<sim::Outcome, String> {
    run_one(config, TraceFilter::Off, false, &Budget::default())
}

/// `cargo xtask shrink`: reduces a failing run (see `sim::shrink`), writes
/// the result as a scenario file with the seed and trace hash pinned, and
/// prints how to replay it. Exit status 0 when shrunk; a seed that passes
/// or is undecided is refused (64), with the reason.
pub fn shrink(args: &ShrinkArgs) -> Result<u8, Error> {
    let start = args.shape.config(args.seed)?;
    let shrunk = match sim::shrink::shrink_or_refuse(&start, &Budget::default())? {
        Ok(shrunk) => shrunk,
        Err(refusal) => {
            return Err(Error::Usage(format!(
                "seed {} not shrunk: {refusal}",
                args.seed
            )));
        }
    };
    let path = args.out.clone().unwrap_or_else(|| {
        workspace_root()
            .join("histories/shrunk")
            .join(format!("{}.toml", args.shape.file_stem(args.seed)))
    });
    write_shrunk(&shrunk, &path)?;
    let config = &shrunk.config;
    println!(
        "shrunk seed {} ({}) in {} runs to {} nodes, {} clients, {}ms, families: {}, {} scripted faults, {} clock settings",
        args.seed,
        shrunk.kind,
        shrunk.runs,
        config.nodes,
        config.clients,
        config.duration / MS,
        shrunk.outcome.summary.params.families,
        config.script.len(),
        config.clock_drift_ppm.len()
    );
    let summary = &shrunk.outcome.summary;
    println!(
        "size: {} operations, {} fault events",
        sim::shrink::operations(summary),
        sim::shrink::fault_events(summary)
    );
    for line in &shrunk.report {
        println!("  {line}");
    }
    println!("scenario: {}", path.display());
    println!("replay: cargo xtask replay {}", path.display());
    Ok(0)
}

/// Writes a shrunk failure as a scenario file.
pub fn write_shrunk(shrunk: &sim::shrink::Shrunk, path: &Path) -> Result<(), String> {
    let expect = if shrunk.kind == sim::shrink::FailureKind::Liveness {
        Expect::Liveness
    } else {
        Expect::Violation
    };
    write_scenario(
        &shrunk.config,
        &shrunk.outcome.summary,
        expect,
        &shrunk.kind.to_string(),
        path,
    )
}

/// Writes `config` as a scenario file pinned to its seed and trace hash.
pub fn write_scenario(
    config: &SimConfig,
    summary: &Summary,
    expect: Expect,
    why: &str,
    path: &Path,
) -> Result<(), String> {
    let mut scenario = Scenario::from_config(config, format!("seed {}: {why}", config.seed));
    scenario.expect = expect;
    scenario.trace_hash = Some(summary.trace_hash.clone());
    let text = scenario.to_toml()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `cargo xtask replay FILE`: runs a scenario file with its pinned seed
/// and checks that the run reproduces the pinned trace hash. Exit status:
/// the run's (0, 1, 2, 3) when reproduced; 4 when the trace differs or the
/// file pins no hash to check; 5 when the file expects a failure and the
/// run passed; 64 when the file is missing, malformed or pins no seed.
pub fn replay(args: &ReplayArgs) -> Result<u8, Error> {
    let name = args.file.display().to_string();
    let (_, scenario) = load(&name)?;
    let seed = scenario.seed.ok_or_else(|| {
        Error::Usage(format!(
            "{name} pins no seed: use simulate --scenario {name} --seed N"
        ))
    })?;
    let config = scenario.config(&name, seed).map_err(Error::Usage)?;
    print_header(&config);
    let outcome = run_quiet(&config)?;
    let stem = replay_stem(&args.file);
    let history = workspace_root()
        .join("histories/runs")
        .join(format!("{stem}.jsonl"));
    write_history(&outcome.history, &history)?;
    print_verdict(&outcome.summary, &history);
    crate::print_expectation(&outcome.summary, scenario.expect);
    if args.report {
        let path = crate::report_cmd::write_run_report(&outcome, &stem, &history)?;
        println!("report: {}", path.display());
    }
    let hash = &outcome.summary.trace_hash;
    Ok(match &scenario.trace_hash {
        Some(pinned) if pinned != hash => {
            println!("REPLAY DIFFERS: trace hash {hash} where the file pins {pinned}");
            EXIT_REPLAY_DIFFERS
        }
        Some(_) => {
            println!("replayed bit for bit: trace hash {hash}");
            crate::exit_code(&outcome.summary, scenario.expect)
        }
        None => {
            println!(
                "NOT CHECKED: the file pins no trace hash, so this run cannot be checked against the original (trace hash {hash})"
            );
            EXIT_REPLAY_DIFFERS
        }
    })
}

/// The stem of a replay's files: `replay-DIR-STEM` from the scenario
/// file's directory and stem (`histories/shrunk/seed-2.toml`:
/// `replay-shrunk-seed-2`).
fn replay_stem(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let dir = file
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| format!("{}-", d.to_string_lossy()))
        .unwrap_or_default();
    crate::cli::sanitize(&format!("replay-{dir}{stem}"))
}
