//! Scenario files: loading them by name or path, `shrink` (reduce a failing
//! run to a small scenario file) and `replay` (run a scenario file with a
//! pinned seed, and check that it reproduces its trace hash).

use crate::cli::{ReplayArgs, ShrinkArgs};
use crate::{print_header, print_verdict, run_one, workspace_root, write_history};
use check::Budget;
use sim::queue::MS;
use sim::{Expect, Scenario, SimConfig, Summary, TraceFilter};
use std::path::{Path, PathBuf};

/// Reads scenario `name`: a path (anything ending in `.toml` or holding a
/// `/`), or the name of a file in scenarios/. Returns the name to show in
/// replay commands and the parsed scenario.
pub fn load(name: &str) -> Result<(String, Scenario), String> {
    let path = if name.ends_with(".toml") || name.contains('/') {
        PathBuf::from(name)
    } else {
        workspace_root()
            .join("scenarios")
            .join(format!("{name}.toml"))
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
    let scenario = Scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((name.to_string(), scenario))
}

fn run_quiet(config: &SimConfig) -> Result<sim::Outcome, String> {
    run_one(config, TraceFilter::Off, false, &Budget::default())
}

/// `cargo xtask shrink`: reduces a failing run (see `sim::shrink`), writes
/// the result as a scenario file with the seed and trace hash pinned, and
/// prints how to replay it.
pub fn shrink(args: &ShrinkArgs) -> Result<u8, String> {
    let start = args.shape.config(args.seed)?;
    let Some(shrunk) = sim::shrink::shrink(&start, &Budget::default())? else {
        println!("seed {} passes: nothing to shrink", args.seed);
        return Ok(0);
    };
    let path = args.out.clone().unwrap_or_else(|| {
        workspace_root()
            .join("histories/shrunk")
            .join(format!("seed-{}.toml", args.seed))
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
    println!("scenario: {}", path.display());
    println!("replay: cargo xtask replay {}", path.display());
    Ok(shrunk.outcome.summary.exit_code() as u8)
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
/// the run's (0, 1, 2, 3), or 1 if the trace differs.
pub fn replay(args: &ReplayArgs) -> Result<u8, String> {
    let name = args.file.display().to_string();
    let (_, scenario) = load(&name)?;
    let seed = scenario
        .seed
        .ok_or_else(|| format!("{name} pins no seed: use simulate --scenario {name} --seed N"))?;
    let config = scenario.config(&name, seed)?;
    print_header(&config);
    let outcome = run_quiet(&config)?;
    let history = workspace_root()
        .join("histories/runs")
        .join(format!("replay-seed-{seed}.jsonl"));
    write_history(&outcome.history, &history)?;
    print_verdict(&outcome.summary, &history);
    if args.report {
        let path = crate::report_cmd::write_run_report(&outcome)?;
        println!("report: {}", path.display());
    }
    match &scenario.trace_hash {
        Some(pinned) if *pinned != outcome.summary.trace_hash => {
            println!(
                "REPLAY DIFFERS: trace hash {} where the file pins {pinned}",
                outcome.summary.trace_hash
            );
            Ok(1)
        }
        Some(_) => {
            println!(
                "replayed bit for bit: trace hash {}",
                outcome.summary.trace_hash
            );
            Ok(outcome.summary.exit_code() as u8)
        }
        None => Ok(outcome.summary.exit_code() as u8),
    }
}
