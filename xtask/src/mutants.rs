//! `cargo xtask mutants`: the mutation score (issue 20), as the Rust
//! ecosystem measures one: cargo-mutants (<https://mutants.rs>) mutates the
//! raft crate and runs, for each mutant, raft's tests and a short sweep of
//! the default swarm (`crates/sim/tests/mutants_sweep.rs`). The settings,
//! and the equivalent mutants it skips with a reason each, live in
//! `.cargo/mutants.toml`.

use crate::error::Error;
use crate::workspace_root;
use clap::Args;
use std::process::Command;

/// Arguments of `cargo xtask mutants`.
#[derive(Args, Debug)]
pub struct MutantsArgs {
    /// Mutate only this file (repeatable), e.g.
    /// crates/raft/src/election.rs [default: election.rs, replication.rs,
    /// read_index.rs and log.rs of crates/raft].
    #[arg(long)]
    pub file: Vec<String>,
    /// Seeds of the default swarm each mutant must pass.
    #[arg(long, default_value_t = 20)]
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
}

/// The files the issue asks to be scored.
const DEFAULT_FILES: [&str; 4] = [
    "crates/raft/src/election.rs",
    "crates/raft/src/replication.rs",
    "crates/raft/src/read_index.rs",
    "crates/raft/src/log.rs",
];

/// Runs cargo mutants; its exit status is ours (0 every mutant caught or
/// unviable; 2 some missed; 3 some timed out; see cargo-mutants).
pub fn mutants(args: &MutantsArgs) -> Result<u8, Error> {
    let files: Vec<String> = if args.file.is_empty() {
        DEFAULT_FILES.iter().map(|f| f.to_string()).collect()
    } else {
        args.file.clone()
    };
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root())
        .arg("mutants")
        .args(["--test-package", "raft", "--test-package", "sim"])
        .args(["--jobs", &args.jobs.to_string()])
        .env("RAFTLAB_MUTANTS_SEEDS", args.seeds.to_string());
    for file in &files {
        cmd.args(["--file", file]);
    }
    if args.list {
        cmd.arg("--list");
    }
    if let Some(shard) = &args.shard {
        cmd.args(["--shard", shard]);
    }
    eprintln!("running: {cmd:?}");
    let status = cmd.status().map_err(|e| {
        Error::Usage(format!(
            "cannot run cargo mutants ({e}): install it with `cargo install cargo-mutants`"
        ))
    })?;
    Ok(status.code().map_or(70, |c| c.clamp(0, 255) as u8))
}
