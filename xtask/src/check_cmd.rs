//! `cargo xtask check`: checks a recorded history for linearizability.

use crate::cli::CheckArgs;
use check::{Budget, History, Verdict};
use std::fs;

/// Reads the history at `args.path` (JSON lines, or a Jepsen register `.log`)
/// and prints the verdict; exit status 0 linearizable, 1 not, 2 undecided.
pub fn check(args: &CheckArgs) -> Result<u8, String> {
    let path = &args.path;
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let history = if path.extension().is_some_and(|e| e == "log") {
        check::import::jepsen_etcd(&text).map_err(|e| format!("{}: {e:?}", path.display()))?
    } else {
        History::read_jsonl(text.as_bytes()).map_err(|e| format!("{}: {e:?}", path.display()))?
    };
    let mut budget = Budget::default();
    if let Some(steps) = args.max_steps {
        budget.max_steps = steps;
    }
    let verdict = check::check_history(&history, &budget).map_err(|e| format!("{e:?}"))?;
    match verdict {
        Verdict::Linearizable => {
            println!("linearizable ({} records)", history.records.len());
            Ok(0)
        }
        Verdict::NotLinearizable(c) => {
            println!("NOT linearizable on key {:?}", c.key);
            println!(
                "  longest linearizable prefix: {} operations",
                c.longest_prefix.len()
            );
            println!("  operations that cannot come next: {:?}", c.stuck);
            Ok(1)
        }
        Verdict::Undecided { key } => {
            println!("undecided: the search budget ran out on key {key:?}");
            Ok(2)
        }
    }
}
