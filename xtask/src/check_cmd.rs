//! `cargo xtask check`: checks a recorded history for linearizability.
//!
//! The checker itself is deterministic (a step budget, never a clock). What
//! this command adds sits outside that boundary: keys are checked in parallel
//! threads, and a wall-clock `--timeout` stops them through their
//! cancellation flags.

use crate::cli::{CheckArgs, FailMeans, HistoryFormat};
use crate::error::Error;
use check::{Budget, Counterexample, History, KeyProgress, KeyVerdict, Operation, Verdict};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Exit status: linearizable.
pub const EXIT_LINEARIZABLE: u8 = 0;
/// Exit status: not linearizable.
pub const EXIT_NOT_LINEARIZABLE: u8 = 1;
/// Exit status: undecided (budget or timeout).
pub const EXIT_UNDECIDED: u8 = 2;

/// The format of a file: `format` if given, else from the extension (`.log`
/// jepsen, `.edn` edn, `.jsonl`/`.json` jsonl), else from the first line that
/// is neither blank nor a `;` comment (`{"` jsonl; `{:` or `[` edn; anything
/// else jepsen). `text` is the start of the file.
pub fn infer_format(path: &Path, text: &str, format: Option<HistoryFormat>) -> HistoryFormat {
    if let Some(f) = format {
        return f;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("log") => HistoryFormat::Jepsen,
        Some("edn") => HistoryFormat::Edn,
        Some("jsonl" | "json") => HistoryFormat::Jsonl,
        _ => {
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with(';'));
            match first {
                Some(l) if l.starts_with("{\"") => HistoryFormat::Jsonl,
                Some(l) if l.starts_with("{:") || l.starts_with('[') => HistoryFormat::Edn,
                Some(_) => HistoryFormat::Jepsen,
                None if text.trim_start().starts_with(';') => HistoryFormat::Edn,
                None => HistoryFormat::Jsonl,
            }
        }
    }
}

/// A history read from a file, with what the import noticed.
pub struct Loaded {
    /// The history.
    pub history: History,
    /// The format it was read in.
    pub format: HistoryFormat,
    /// Notes from the import (unknown outcomes from a truncated file, skipped lines).
    pub notes: Vec<String>,
    /// How a cas's `:fail` was read (Jepsen formats only).
    pub fail_means: Option<check::import::CasFail>,
}

/// Reads a history (in `format`, or the inferred one); the error names the
/// file and the line.
pub fn load(
    path: &Path,
    format: Option<HistoryFormat>,
) -> Result<(History, HistoryFormat), String> {
    load_with(path, format, None).map(|l| (l.history, l.format))
}

/// [`load`], streaming, with the reading of a cas `:fail` (default: Jepsen's
/// "did not happen" for EDN, "compare failed" for Jepsen etcd logs, whose client
/// reports a failed comparison that way).
pub fn load_with(
    path: &Path,
    format: Option<HistoryFormat>,
    fail_means: Option<FailMeans>,
) -> Result<Loaded, String> {
    use std::io::BufRead;
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let start = reader.fill_buf().map_err(|e| at(&e))?;
    let format = infer_format(path, &String::from_utf8_lossy(start), format);
    let cas_fail = |default: check::import::CasFail| match fail_means {
        Some(FailMeans::DidNotHappen) => check::import::CasFail::NoEffect,
        Some(FailMeans::CompareFailed) => check::import::CasFail::CompareFailed,
        None => default,
    };
    let imported = match format {
        HistoryFormat::Jepsen => {
            check::import::jepsen_log(reader, cas_fail(check::import::CasFail::CompareFailed))
        }
        HistoryFormat::Edn => {
            check::import::jepsen_edn(reader, cas_fail(check::import::CasFail::NoEffect))
        }
        HistoryFormat::Jsonl => {
            let history = History::read_jsonl(reader).map_err(|e| at(&e))?;
            if history.records.is_empty() {
                return Err(at(&"empty input: no operations to check"));
            }
            return Ok(Loaded {
                history,
                format,
                notes: Vec::new(),
                fail_means: None,
            });
        }
    }
    .map_err(|e| at(&e))?;
    let mut notes = imported.notes;
    if imported.skipped_lines > 0 {
        notes.push(format!(
            "{} lines of another shape skipped",
            imported.skipped_lines
        ));
    }
    if imported.nemesis_events > 0 {
        notes.push(format!(
            "{} nemesis events skipped",
            imported.nemesis_events
        ));
    }
    Ok(Loaded {
        history: imported.history,
        format,
        notes,
        fail_means: Some(imported.fail_means),
    })
}

/// The result of checking operations key by key in parallel.
pub struct Checked {
    /// The combined verdict (see [`check_parallel`] for which key decides).
    pub verdict: Verdict,
    /// How many keys (partitions) were checked.
    pub partitions: usize,
    /// Whether the wall-clock timeout stopped the search.
    pub timed_out: bool,
    /// For an undecided verdict, how far the undecided key got.
    pub progress: Option<KeyProgress>,
    /// The step limit of the last round run.
    pub max_steps: u64,
}

/// The most steps a key may take when the budget grows (`adaptive`): far beyond
/// what any timeout allows, so the timeout or the memory limit stops it first.
pub const ADAPTIVE_MAX_STEPS: u64 = 1 << 40;

/// The step limits of the rounds: [`check::rounds`] of `budget`, then, if
/// `adaptive`, four times more each round up to [`ADAPTIVE_MAX_STEPS`].
fn round_budgets(budget: &Budget, adaptive: bool) -> Vec<Budget> {
    let mut rounds = check::rounds(budget);
    let mut steps = budget.max_steps;
    while adaptive && steps < ADAPTIVE_MAX_STEPS {
        steps = steps.saturating_mul(4).min(ADAPTIVE_MAX_STEPS);
        rounds.push(Budget {
            max_steps: steps,
            ..*budget
        });
    }
    rounds
}

/// Checks `ops` key by key on up to `threads` threads, in rounds of growing
/// step budgets ([`check::rounds`]; with `adaptive`, the rounds go on growing
/// until every key is decided, or the memory limit or `timeout` stops them).
///
/// Deterministic verdict: in a round, when key i fails, only keys after it (in
/// key order) are cancelled, so the first failing key of the earliest round in
/// which any key fails is reported, whichever thread finishes first: the same
/// verdict as [`check::check_operations`] (without `adaptive`). Only the timeout
/// can turn a verdict into "undecided" that the budgets alone would have decided.
pub fn check_parallel(
    ops: &[Operation],
    budget: &Budget,
    threads: usize,
    timeout: Option<Duration>,
    adaptive: bool,
) -> Checked {
    let groups: Vec<(&str, Vec<&Operation>)> = check::partition(ops).into_iter().collect();
    let cancel: Vec<AtomicBool> = groups.iter().map(|_| AtomicBool::new(false)).collect();
    let mut results: Vec<Option<(KeyVerdict, KeyProgress)>> = vec![None; groups.len()];
    let mut timed_out = false;
    let deadline = timeout.map(|t| Instant::now() + t);
    // Keys still to decide, in key order.
    let mut pending: Vec<usize> = (0..groups.len()).collect();
    let mut max_steps = budget.max_steps;
    for round in round_budgets(budget, adaptive) {
        if pending.is_empty() || timed_out {
            break;
        }
        max_steps = round.max_steps;
        let got = check_round(&groups, &pending, &round, threads, &cancel, deadline);
        timed_out = got.1;
        let mut next = Vec::new();
        let mut failed = false;
        for (i, verdict) in got.0 {
            let stop = verdict.1.stopped_by;
            match verdict.0 {
                KeyVerdict::NotLinearizable(_) => failed = true,
                KeyVerdict::Undecided if stop == Some(check::StopReason::Steps) => next.push(i),
                _ => {}
            }
            results[i] = Some(verdict);
        }
        if failed {
            break;
        }
        next.sort_unstable();
        pending = next;
    }
    let verdict = check::combine(groups.iter().zip(&results).map(|((key, _), v)| {
        let v = v.as_ref().map_or(KeyVerdict::Undecided, |(v, _)| v.clone());
        ((*key).to_owned(), v)
    }));
    let progress = match &verdict {
        Verdict::Undecided { key } => groups
            .iter()
            .position(|(k, _)| k == key)
            .and_then(|i| results[i].as_ref().map(|(_, p)| *p)),
        _ => None,
    };
    Checked {
        verdict,
        partitions: groups.len(),
        timed_out,
        progress,
        max_steps,
    }
}

/// One key's result in a round: its index, verdict and progress.
type KeyResult = (usize, (KeyVerdict, KeyProgress));

/// One round: the `pending` keys checked with `budget` on `threads` threads.
/// Each key's verdict, and whether the deadline passed.
fn check_round(
    groups: &[(&str, Vec<&Operation>)],
    pending: &[usize],
    budget: &Budget,
    threads: usize,
    cancel: &[AtomicBool],
    deadline: Option<Instant>,
) -> (Vec<KeyResult>, bool) {
    let next = AtomicUsize::new(0);
    let mut out = Vec::new();
    let mut timed_out = false;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<KeyResult>();
        for _ in 0..threads.clamp(1, pending.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = pending.get(n) else {
                        break;
                    };
                    let (key, ops) = &groups[i];
                    let verdict = if cancel[i].load(Ordering::Relaxed) {
                        (KeyVerdict::Undecided, KeyProgress::default())
                    } else {
                        check::check_key_progress(key, ops, budget, Some(&cancel[i]))
                    };
                    if matches!(verdict.0, KeyVerdict::NotLinearizable(_)) {
                        for flag in &cancel[i + 1..] {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                    if tx.send((i, verdict)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        while out.len() < pending.len() {
            let got = match deadline {
                Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(result) => out.push(result),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    for flag in cancel {
                        flag.store(true, Ordering::Relaxed);
                    }
                    // Keep collecting: cancelled searches answer within a moment.
                    out.extend(rx.iter());
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    (out, timed_out)
}

/// Reads the history at `args.path`, checks it and prints the verdict; the
/// exit status is 0 linearizable, 1 not, 2 undecided, 64 usage, 65 bad input.
pub fn check(args: &CheckArgs) -> Result<u8, Error> {
    let timeout = match args.timeout {
        None => None,
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => {
            return Err(Error::Usage(format!(
                "--timeout {secs}: expected a positive number of seconds"
            )));
        }
    };
    let started = Instant::now();
    let Loaded {
        history,
        format,
        notes,
        fail_means,
    } = load_with(&args.path, args.format, args.fail_means).map_err(Error::Input)?;
    if !args.json {
        for note in &notes {
            eprintln!("note: {}: {note}", args.path.display());
        }
        if let Some(f) = fail_means {
            eprintln!("note: {}", f.describe());
        }
    }
    if let Some(out) = &args.export_edn {
        fs::write(out, check::export::jepsen_edn(&history))
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", out.display())))?;
        eprintln!("wrote {} as Jepsen EDN", out.display());
    }
    // Batches split per key, as the checker's own entry points do: `partition` and
    // `explain` take operations on one key each.
    let ops = match history.operations() {
        Ok(ops) => check::project_batches(&ops).into_owned(),
        Err(e) => return Err(Error::Input(format!("{}: {e}", args.path.display()))),
    };
    let mut budget = Budget::default();
    if let Some(steps) = args.max_steps {
        budget.max_steps = steps;
    }
    if let Some(mb) = args.max_cache_mb {
        budget.max_cache_bytes = mb.saturating_mul(1 << 20);
    }
    // With a timeout and no fixed step budget, the budget grows until the time or
    // the memory limit runs out.
    let adaptive = timeout.is_some() && args.max_steps.is_none();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The timeout counts from the start, reading the file included.
    let remaining = timeout.map(|t| t.saturating_sub(started.elapsed()));
    let checked = check_parallel(&ops, &budget, threads, remaining, adaptive);
    let explanation = match &checked.verdict {
        Verdict::NotLinearizable(c) => Some(check::explain(&ops, c, &budget)),
        _ => None,
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let code = match checked.verdict {
        Verdict::Linearizable => EXIT_LINEARIZABLE,
        Verdict::NotLinearizable(_) => EXIT_NOT_LINEARIZABLE,
        Verdict::Undecided { .. } => EXIT_UNDECIDED,
    };
    if args.json {
        let mut out = serde_json::json!({
            "file": args.path.display().to_string(),
            "format": format!("{format:?}").to_lowercase(),
            "verdict": match checked.verdict {
                Verdict::Linearizable => "linearizable",
                Verdict::NotLinearizable(_) => "not_linearizable",
                Verdict::Undecided { .. } => "undecided",
            },
            "ops": ops.len(),
            "partitions": checked.partitions,
            "elapsed_ms": elapsed_ms,
            "timed_out": checked.timed_out,
            "max_steps": checked.max_steps,
            "adaptive": adaptive,
            "notes": notes,
            "fail_means": fail_means.map(|f| f.describe()),
        });
        if let Some(p) = &checked.progress {
            out["progress"] = serde_json::to_value(p).map_err(|e| e.to_string())?;
            out["advice"] = advice(&checked, &budget, adaptive).into();
        }
        match &checked.verdict {
            Verdict::NotLinearizable(c) => {
                out["key"] = c.key.clone().into();
                out["stuck"] = serde_json::json!(c.stuck);
                out["longest_prefix"] = serde_json::json!(c.longest_prefix);
                out["explanation"] =
                    serde_json::to_value(&explanation).map_err(|e| e.to_string())?;
            }
            Verdict::Undecided { key } => out["key"] = key.clone().into(),
            Verdict::Linearizable => {}
        }
        println!("{out}");
    } else {
        let summary = format!(
            "{} operations, {} keys, {:.3}s",
            ops.len(),
            checked.partitions,
            elapsed_ms as f64 / 1000.0
        );
        match &checked.verdict {
            Verdict::Linearizable => println!("linearizable ({summary})"),
            Verdict::NotLinearizable(c) => print_failure(c, explanation.as_ref(), &summary),
            Verdict::Undecided { key } => {
                let why = match checked.progress.and_then(|p| p.stopped_by) {
                    Some(check::StopReason::Memory) => "the search's cache reached its limit",
                    _ if checked.timed_out => "timed out",
                    _ => "the search budget ran out",
                };
                println!("undecided: {why} on key {key:?} ({summary})");
                if let Some(p) = &checked.progress {
                    println!(
                        "  the search got to {} steps (budget {}) and {} configurations cached ({:.0} MB)",
                        p.steps,
                        checked.max_steps,
                        p.configurations,
                        p.cache_bytes as f64 / (1 << 20) as f64
                    );
                }
                println!("  try: {}", advice(&checked, &budget, adaptive));
            }
        }
    }
    Ok(code)
}

/// What to try after an undecided verdict.
fn advice(checked: &Checked, budget: &Budget, adaptive: bool) -> String {
    let memory = checked
        .progress
        .is_some_and(|p| p.stopped_by == Some(check::StopReason::Memory));
    if memory {
        format!(
            "--max-cache-mb {} (more memory for the cache, if the machine has it); \
             a history with fewer concurrent clients per key, or shorter",
            (budget.max_cache_bytes >> 20).saturating_mul(4)
        )
    } else if checked.timed_out {
        "a longer --timeout (the budget keeps growing until it or the memory limit runs out)"
            .to_owned()
    } else if adaptive {
        format!("--max-steps {}", checked.max_steps.saturating_mul(10))
    } else {
        format!(
            "--timeout SECS (the budget then grows until the time or the memory limit runs out), \
             or --max-steps {}",
            checked.max_steps.saturating_mul(10)
        )
    }
}

fn print_failure(c: &Counterexample, e: Option<&check::Explanation>, summary: &str) {
    println!("NOT linearizable on key {:?} ({summary})", c.key);
    println!(
        "  longest linearizable prefix: {} operations",
        c.longest_prefix.len()
    );
    println!("  operations that cannot come next: {:?}", c.stuck);
    if let Some(e) = e {
        println!("  why: {}", e.reason);
        let states: Vec<String> = e
            .states
            .iter()
            .map(|s| s.as_ref().map_or("absent".into(), |v| format!("{v:?}")))
            .collect();
        println!("  possible states there: {}", states.join(", "));
        println!(
            "  minimal failing sub-history ({} operations{}): {:?}",
            e.minimal.len(),
            if e.minimal_is_minimal {
                ""
            } else {
                ", not fully reduced"
            },
            e.minimal
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{CASES, generate};
    use crate::error::{EXIT_INPUT, EXIT_USAGE};

    /// The exit status a result maps to, as `main` would exit.
    fn code(result: Result<u8, Error>) -> u8 {
        result.unwrap_or_else(|e| e.exit_code())
    }

    #[test]
    fn formats_are_inferred_from_the_extension_then_the_first_line() {
        let f = |name: &str, text: &str| infer_format(Path::new(name), text, None);
        assert_eq!(f("a.log", ""), HistoryFormat::Jepsen);
        assert_eq!(f("a.edn", ""), HistoryFormat::Edn);
        assert_eq!(f("a.jsonl", "{:x 1}"), HistoryFormat::Jsonl);
        assert_eq!(
            f("a.txt", "\n{:process 1, :type :invoke}"),
            HistoryFormat::Edn
        );
        assert_eq!(f("a.txt", "{\"type\":\"invoke\"}"), HistoryFormat::Jsonl);
        assert_eq!(
            f("a.txt", "INFO jepsen.util - 1 :invoke"),
            HistoryFormat::Jepsen
        );
        assert_eq!(f("a.txt", "[{:type :invoke}"), HistoryFormat::Edn);
        assert_eq!(f("a.txt", "; comment\n{:type :invoke}"), HistoryFormat::Edn);
        assert_eq!(f("a.txt", "; only a comment"), HistoryFormat::Edn);
        assert_eq!(f("a.txt", ""), HistoryFormat::Jsonl);
        let given = Some(HistoryFormat::Edn);
        assert_eq!(
            infer_format(Path::new("a.log"), "", given),
            HistoryFormat::Edn
        );
    }

    fn args(path: std::path::PathBuf) -> CheckArgs {
        CheckArgs {
            path,
            max_steps: None,
            report: false,
            format: None,
            json: true,
            timeout: None,
            max_cache_mb: None,
            fail_means: None,
            export_edn: None,
        }
    }

    #[test]
    fn exit_codes_follow_the_verdict_and_bad_input_is_65() {
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/check/tests/fixtures/porcupine");
        let ok = args(fixtures.join("kv/c10-ok.txt"));
        assert_eq!(check(&ok), Ok(EXIT_LINEARIZABLE));
        let bad = args(fixtures.join("kv/c10-bad.txt"));
        assert_eq!(check(&bad), Ok(EXIT_NOT_LINEARIZABLE));
        let tight = CheckArgs {
            max_steps: Some(1),
            ..args(fixtures.join("jepsen/etcd_002.log"))
        };
        assert_eq!(check(&tight), Ok(EXIT_UNDECIDED));
        let dir = std::env::temp_dir().join(format!("xtask-check-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let malformed = dir.join("bad.jsonl");
        fs::write(&malformed, "{\"type\":\"invoke\"}\n").expect("write");
        assert_eq!(code(check(&args(malformed))), EXIT_INPUT);
        assert_eq!(code(check(&args(dir.join("missing.jsonl")))), EXIT_INPUT);
        let negative = CheckArgs {
            timeout: Some(-1.0),
            ..args(fixtures.join("kv/c10-ok.txt"))
        };
        assert_eq!(code(check(&negative)), EXIT_USAGE);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Empty and truncated files, binary files and the reading of a cas `:fail`,
    /// end to end.
    #[test]
    fn bad_inputs_get_exit_65_and_the_fail_reading_is_chosen() {
        let dir = std::env::temp_dir().join(format!("xtask-check-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            fs::write(&path, bytes).expect("write");
            path
        };
        for (name, bytes) in [
            ("empty.jsonl", &b""[..]),
            ("empty.edn", &b"; nothing\n"[..]),
            ("empty.log", &b"INFO jepsen.core - starting\n"[..]),
            ("binary.edn", &b"{:process 0 \xff\xfe}"[..]),
        ] {
            assert_eq!(code(check(&args(write(name, bytes)))), EXIT_INPUT, "{name}");
        }
        let cas = write(
            "cas.edn",
            b"[{:process 0 :type :invoke :f :write :value 2}\n\
              {:process 0 :type :ok :f :write :value 2}\n\
              {:process 1 :type :invoke :f :cas :value [2 3]}\n\
              {:process 1 :type :fail :f :cas :value [2 3]}]\n",
        );
        assert_eq!(check(&args(cas.clone())), Ok(EXIT_LINEARIZABLE));
        let compare = CheckArgs {
            fail_means: Some(FailMeans::CompareFailed),
            ..args(cas)
        };
        assert_eq!(check(&compare), Ok(EXIT_NOT_LINEARIZABLE));
        let truncated = write(
            "cut.edn",
            b"{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :wri",
        );
        let loaded = load_with(&truncated, None, None).expect("loads");
        assert!(
            loaded.notes.iter().any(|n| n.contains("truncated")),
            "{:?}",
            loaded.notes
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// Several keys fail; whatever thread finishes first, the parallel check
    /// reports the first failing key in key order, as the sequential one does.
    #[test]
    fn the_parallel_check_reports_what_the_sequential_one_does() {
        let case = CASES
            .iter()
            .find(|c| c.keys > 1)
            .copied()
            .expect("a multi-key case");
        let mut ops = generate(&crate::bench::Case { ops: 4_000, ..case }, 3);
        // Break several keys: each read of a value written only after it returned.
        let mut broken = std::collections::BTreeSet::new();
        for r in 0..ops.len() {
            let (check::Call::Get { key }, Some(done)) = (&ops[r].call, ops[r].complete_ns) else {
                continue;
            };
            if broken.contains(key) {
                continue;
            }
            let later = ops.iter().find_map(|o| match &o.call {
                check::Call::Put { key: k, value } if k == key && o.invoke_ns > done => {
                    Some(value.clone())
                }
                _ => None,
            });
            if let Some(v) = later {
                broken.insert(key.clone());
                ops[r].outcome = check::Outcome::Ok(check::Ret::Value(Some(v)));
            }
        }
        assert!(broken.len() >= 3, "{broken:?}");
        let budget = Budget::default();
        let sequential = check::check_operations(&ops, &budget);
        assert!(matches!(sequential, Verdict::NotLinearizable(_)));
        for threads in [1, 2, 4, 8] {
            let parallel = check_parallel(&ops, &budget, threads, None, false);
            assert_eq!(parallel.verdict, sequential, "{threads} threads");
            assert!(!parallel.timed_out);
        }
    }
}
