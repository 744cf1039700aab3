//! `cargo xtask check`: checks a recorded history for linearizability.
//!
//! The checker itself is deterministic (a step budget, never a clock). What
//! this command adds sits outside that boundary: keys are checked in parallel
//! threads, and a wall-clock `--timeout` stops them through their
//! cancellation flags.

use crate::cli::{CheckArgs, HistoryFormat};
use check::{Budget, Counterexample, History, KeyVerdict, Operation, Verdict};
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
/// Exit status: usage error (sysexits' EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit status: the input could not be read or is malformed (EX_DATAERR).
pub const EXIT_INPUT: u8 = 65;

/// The format of a file: `format` if given, else from the extension (`.log`
/// jepsen, `.edn` edn, `.jsonl`/`.json` jsonl), else from its first
/// non-blank line (`{"` jsonl, `{:` edn, anything else jepsen).
pub fn infer_format(path: &Path, text: &str, format: Option<HistoryFormat>) -> HistoryFormat {
    if let Some(f) = format {
        return f;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("log") => HistoryFormat::Jepsen,
        Some("edn") => HistoryFormat::Edn,
        Some("jsonl" | "json") => HistoryFormat::Jsonl,
        _ => {
            let first = text.lines().map(str::trim).find(|l| !l.is_empty());
            match first {
                Some(l) if l.starts_with("{\"") => HistoryFormat::Jsonl,
                Some(l) if l.starts_with("{:") => HistoryFormat::Edn,
                Some(_) => HistoryFormat::Jepsen,
                None => HistoryFormat::Jsonl,
            }
        }
    }
}

/// Reads a history (in `format`, or the inferred one); the error names the
/// file and the line.
pub fn load(
    path: &Path,
    format: Option<HistoryFormat>,
) -> Result<(History, HistoryFormat), String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let format = infer_format(path, &text, format);
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let history = match format {
        HistoryFormat::Jepsen => check::import::jepsen_etcd(&text).map_err(|e| at(&e)),
        HistoryFormat::Edn => check::import::porcupine_kv(&text).map_err(|e| at(&e)),
        HistoryFormat::Jsonl => History::read_jsonl(text.as_bytes()).map_err(|e| at(&e)),
    }?;
    Ok((history, format))
}

/// The result of checking operations key by key in parallel.
pub struct Checked {
    /// The combined verdict (the first failing key in key order decides).
    pub verdict: Verdict,
    /// How many keys (partitions) were checked.
    pub partitions: usize,
    /// Whether the wall-clock timeout stopped the search.
    pub timed_out: bool,
}

/// Checks `ops` key by key on up to `threads` threads, giving up after
/// `timeout` of wall time.
///
/// Deterministic verdict: when key i fails, only keys after it (in key order)
/// are cancelled, so the first failing key in key order is always found and
/// reported, whichever thread finishes first. Only the timeout can turn a
/// verdict into "undecided" that the step budget alone would have decided.
pub fn check_parallel(
    ops: &[Operation],
    budget: &Budget,
    threads: usize,
    timeout: Option<Duration>,
) -> Checked {
    let groups: Vec<(&str, Vec<&Operation>)> = check::partition(ops).into_iter().collect();
    let cancel: Vec<AtomicBool> = groups.iter().map(|_| AtomicBool::new(false)).collect();
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<KeyVerdict>> = vec![None; groups.len()];
    let mut timed_out = false;
    let deadline = timeout.map(|t| Instant::now() + t);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, KeyVerdict)>();
        for _ in 0..threads.clamp(1, groups.len().max(1)) {
            let tx = tx.clone();
            let (groups, cancel, next) = (&groups, &cancel, &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((key, ops)) = groups.get(i) else {
                        break;
                    };
                    let verdict = if cancel[i].load(Ordering::Relaxed) {
                        KeyVerdict::Undecided
                    } else {
                        check::check_key(key, ops, budget, Some(&cancel[i]))
                    };
                    if matches!(verdict, KeyVerdict::NotLinearizable(_)) {
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
        let mut received = 0;
        while received < groups.len() {
            let got = match deadline {
                Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match got {
                Ok((i, verdict)) => {
                    results[i] = Some(verdict);
                    received += 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    for flag in &cancel {
                        flag.store(true, Ordering::Relaxed);
                    }
                    // Keep collecting: cancelled searches answer within a moment.
                    for (i, verdict) in rx.iter() {
                        results[i] = Some(verdict);
                    }
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    let partitions = groups.len();
    let verdict = check::combine(
        groups
            .iter()
            .zip(results)
            .map(|((key, _), v)| ((*key).to_owned(), v.unwrap_or(KeyVerdict::Undecided))),
    );
    Checked {
        verdict,
        partitions,
        timed_out,
    }
}

/// Reads the history at `args.path`, checks it and prints the verdict; the
/// exit status is 0 linearizable, 1 not, 2 undecided, 64 usage, 65 bad input.
pub fn check(args: &CheckArgs) -> Result<u8, String> {
    let timeout = match args.timeout {
        None => None,
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => {
            eprintln!("error: --timeout {secs}: expected a positive number of seconds");
            return Ok(EXIT_USAGE);
        }
    };
    let started = Instant::now();
    let (history, format) = match load(&args.path, args.format) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INPUT);
        }
    };
    let ops = match history.operations() {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("error: {}: {e}", args.path.display());
            return Ok(EXIT_INPUT);
        }
    };
    let mut budget = Budget::default();
    if let Some(steps) = args.max_steps {
        budget.max_steps = steps;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The timeout counts from the start, reading the file included.
    let remaining = timeout.map(|t| t.saturating_sub(started.elapsed()));
    let checked = check_parallel(&ops, &budget, threads, remaining);
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
            "max_steps": budget.max_steps,
        });
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
            Verdict::Undecided { key } if checked.timed_out => {
                println!("undecided: timed out (first undecided key {key:?}; {summary})")
            }
            Verdict::Undecided { key } => {
                println!("undecided: the search budget ran out on key {key:?} ({summary})")
            }
        }
    }
    Ok(code)
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
        assert_eq!(check(&args(malformed)), Ok(EXIT_INPUT));
        assert_eq!(check(&args(dir.join("missing.jsonl"))), Ok(EXIT_INPUT));
        let negative = CheckArgs {
            timeout: Some(-1.0),
            ..args(fixtures.join("kv/c10-ok.txt"))
        };
        assert_eq!(check(&negative), Ok(EXIT_USAGE));
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
            let parallel = check_parallel(&ops, &budget, threads, None);
            assert_eq!(parallel.verdict, sequential, "{threads} threads");
            assert!(!parallel.timed_out);
        }
    }
}
