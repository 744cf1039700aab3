//! `--report`: self-contained HTML reports of runs and histories, written
//! under reports/ (git-ignored). The report crate renders; this module only
//! decides paths and writes files.

use crate::cli::CheckArgs;
use crate::workspace_root;
use check::Budget;
use report::{IndexEntry, Report};
use std::fs;
use std::path::{Path, PathBuf};

/// Where reports go.
pub fn reports_dir() -> PathBuf {
    workspace_root().join("reports")
}

/// Writes `html` to `path`, creating the directory.
fn write(path: &Path, html: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, html).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes reports/STEM.html for a simulated run (STEM names the run, like
/// its history's file: see `RunShape::file_stem`) and returns its path.
/// Never touches reports/index.html, which belongs to sweeps.
pub fn write_run_report(
    outcome: &sim::Outcome,
    stem: &str,
    history: &Path,
) -> Result<PathBuf, String> {
    write_run_report_in(&reports_dir(), outcome, stem, history)
}

/// Writes DIR/STEM.html for a simulated run and returns its path.
pub fn write_run_report_in(
    dir: &Path,
    outcome: &sim::Outcome,
    stem: &str,
    history: &Path,
) -> Result<PathBuf, String> {
    let path = dir.join(format!("{stem}.html"));
    let mut report = Report::from_outcome(outcome);
    report.history_path = Some(history.display().to_string());
    write(&path, &report::render(&report))?;
    Ok(path)
}

/// Reads the history `cargo xtask check` read (in its format), checks it,
/// and writes `reports/<file stem>.html`.
pub fn write_check_report(args: &CheckArgs) -> Result<PathBuf, String> {
    let path = &args.path;
    let (history, _) = crate::check_cmd::load(path, args.format)?;
    let mut budget = Budget::default();
    let mut replay = format!("cargo xtask check {}", path.display());
    if let Some(format) = args.format {
        replay += &format!(" --format {}", format!("{format:?}").to_lowercase());
    }
    if let Some(steps) = args.max_steps {
        budget.max_steps = steps;
        replay += &format!(" --max-steps {steps}");
    }
    let verdict = check::check_history(&history, &budget).map_err(|e| format!("{e:?}"))?;
    let stem = path
        .file_stem()
        .map_or("history".into(), |s| s.to_string_lossy().into_owned());
    let title = path
        .file_name()
        .map_or(stem.clone(), |s| s.to_string_lossy().into_owned());
    let out = reports_dir().join(format!("{stem}.html"));
    write(
        &out,
        &report::render(&Report::for_history(&title, history, verdict, &replay)),
    )?;
    Ok(out)
}

/// One line of a sweep's index: a failing seed whose report was written.
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Its report's file name, relative to the index.
    pub href: String,
    /// What went wrong, in a line.
    pub problem: String,
    /// The replay command.
    pub replay: String,
}

/// Writes DIR/index.html linking every failing seed's report (in DIR), and
/// returns its path.
pub fn write_sweep_index(dir: &Path, title: &str, failures: &[Failure]) -> Result<PathBuf, String> {
    let entries: Vec<IndexEntry> = failures
        .iter()
        .map(|f| IndexEntry {
            title: format!("seed {}", f.seed),
            href: f.href.clone(),
            passed: false,
            verdict: f.problem.clone(),
            replay: f.replay.clone(),
        })
        .collect();
    let path = dir.join("index.html");
    write(&path, &report::render_index(title, &entries))?;
    Ok(path)
}
