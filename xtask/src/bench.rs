//! `cargo xtask bench check`: the checker's speed and memory on generated
//! histories.
//!
//! Each case is a history generated from a seed: clients run operations one
//! at a time on a register; each operation takes effect at a random moment
//! of its interval, so the history is linearizable by construction; written
//! values are unique. A case may then make some writes' outcomes unknown
//! (each of which took effect or not) and turn one late read stale (it
//! returns a value overwritten by a write that completed before the read
//! began), which makes it not linearizable.
//!
//! Every run of a case is a child process (this binary re-executed with
//! `--child`), so its peak memory (`VmHWM` from /proc/self/status, the
//! resident high-water mark) is its own: generation plus check. The parent
//! reports the median wall time of the check alone over `--runs` runs, and
//! the largest peak.

use crate::check_cmd::check_parallel;
use crate::cli::BenchCheckArgs;
use crate::error::Error;
use check::{Budget, Call, Operation, Outcome, Ret, Verdict};
use std::process::Command;
use std::time::Instant;

/// One benchmark case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Its name (`--case`).
    pub name: &'static str,
    /// Operations in the history.
    pub ops: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Keys (1: a single register).
    pub keys: usize,
    /// Share of writes whose outcome is unknown.
    pub unknown_writes: f64,
    /// Whether one late read is made stale.
    pub stale_read: bool,
    /// Whether one read, half way through, returns a value written only after it
    /// returned (a violation the stale-read rule does not see: the search proves it).
    pub future_read: bool,
    /// The target for the check's wall time, in seconds (if any).
    pub target_s: Option<f64>,
    /// The target for the run's peak memory, in MB (if any).
    pub target_mb: Option<u64>,
}

/// A case of issue 15's: one register, `clients` clients, unique values, five
/// seconds and 1 GB at most, linearizable or with one stale read.
const fn concurrent(name: &'static str, ops: usize, clients: usize, stale_read: bool) -> Case {
    Case {
        name,
        ops,
        clients,
        keys: 1,
        unknown_writes: 0.0,
        stale_read,
        future_read: false,
        target_s: Some(5.0),
        target_mb: Some(1024),
    }
}

/// The cases, in the order the table lists them.
pub const CASES: [Case; 16] = [
    Case {
        name: "10k",
        ops: 10_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.0,
        stale_read: false,
        future_read: false,
        target_s: Some(0.2),
        target_mb: None,
    },
    Case {
        name: "100k",
        ops: 100_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.0,
        stale_read: false,
        future_read: false,
        target_s: Some(3.0),
        target_mb: None,
    },
    Case {
        name: "10k-stale",
        ops: 10_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.0,
        stale_read: true,
        future_read: false,
        target_s: Some(0.5),
        target_mb: None,
    },
    Case {
        name: "3k-unknown-stale",
        ops: 3_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.01,
        stale_read: true,
        future_read: false,
        target_s: Some(1.0),
        target_mb: None,
    },
    Case {
        name: "10k-unknown",
        ops: 10_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.01,
        stale_read: false,
        future_read: false,
        target_s: None,
        target_mb: None,
    },
    Case {
        name: "100k-10keys",
        ops: 100_000,
        clients: 10,
        keys: 10,
        unknown_writes: 0.0,
        stale_read: false,
        future_read: false,
        target_s: None,
        target_mb: None,
    },
    Case {
        name: "10k-future-read",
        ops: 10_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.0,
        stale_read: false,
        future_read: true,
        target_s: None,
        target_mb: None,
    },
    Case {
        name: "3k-unknown-future-read",
        ops: 3_000,
        clients: 10,
        keys: 1,
        unknown_writes: 0.01,
        stale_read: false,
        future_read: true,
        target_s: None,
        target_mb: None,
    },
    concurrent("20c-10k", 10_000, 20, false),
    concurrent("20c-10k-stale", 10_000, 20, true),
    concurrent("50c-5k", 5_000, 50, false),
    concurrent("50c-5k-stale", 5_000, 50, true),
    concurrent("100c-2k", 2_000, 100, false),
    concurrent("100c-2k-stale", 2_000, 100, true),
    concurrent("10c-1M", 1_000_000, 10, false),
    concurrent("10c-1M-stale", 1_000_000, 10, true),
];

/// splitmix64: a small, seedable, good-enough generator for test data.
struct Rng(stablehash::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

/// Generates `case`'s history from `seed` (see the module docs).
pub fn generate(case: &Case, seed: u64) -> Vec<Operation> {
    let mut rng = Rng(stablehash::SplitMix64::new(seed));
    // Per client, the time it is free again.
    let mut free = vec![0u64; case.clients];
    // (operation, linearization point or None if it never took effect)
    let mut planned: Vec<(Operation, Option<u64>)> = Vec::with_capacity(case.ops);
    for i in 0..case.ops {
        // The client that is free first runs the next operation.
        let c = (0..case.clients).min_by_key(|&c| (free[c], c)).unwrap_or(0);
        let invoke = free[c] + rng.below(1_000);
        let complete = invoke + 1 + rng.below(10_000);
        let point = invoke + 1 + rng.below(complete - invoke);
        free[c] = complete;
        let key = format!("k{}", rng.below(case.keys as u64));
        let write = rng.chance(0.5);
        let call = if write {
            Call::Put {
                key,
                value: format!("c{c}v{i}"),
            }
        } else {
            Call::Get { key }
        };
        let unknown = write && rng.chance(case.unknown_writes);
        let (outcome, took_effect) = if unknown {
            (Outcome::Unknown, rng.chance(0.5))
        } else {
            (Outcome::Ok(Ret::Done), true)
        };
        let op = Operation {
            id: i as u64 + 1,
            process: c as u64,
            call,
            invoke_ns: invoke,
            outcome,
            complete_ns: Some(complete),
        };
        planned.push((op, took_effect.then_some(point)));
    }
    // Run the operations that took effect in the order of their points.
    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].1.is_some())
        .collect();
    order.sort_by_key(|&i| (planned[i].1, i));
    let mut values: std::collections::BTreeMap<String, String> = Default::default();
    for i in order {
        let op = &mut planned[i].0;
        match &op.call {
            Call::Put { key, value } => {
                values.insert(key.clone(), value.clone());
            }
            Call::Get { key } => op.outcome = Outcome::Ok(Ret::Value(values.get(key).cloned())),
            _ => {}
        }
    }
    let mut ops: Vec<Operation> = planned.into_iter().map(|(op, _)| op).collect();
    if case.stale_read {
        make_stale(&mut ops);
    }
    if case.future_read {
        make_future(&mut ops);
    }
    ops
}

/// Turns a read about 90% of the way through into a stale one: it returns the
/// value of a known write `w0` that completed before another known write `w1`
/// on its key began, which completed before the read began. Unique values make
/// that impossible in any order.
fn make_stale(ops: &mut [Operation]) {
    let known_put =
        |o: &Operation| matches!(o.call, Call::Put { .. }) && matches!(o.outcome, Outcome::Ok(_));
    for r in (ops.len() * 9 / 10..ops.len()).chain(0..ops.len() * 9 / 10) {
        if !matches!(ops[r].call, Call::Get { .. }) {
            continue;
        }
        let key = ops[r].call.key().to_owned();
        let before = |o: &Operation, t: u64| o.complete_ns.is_some_and(|c| c < t);
        let Some(w1) = ops[..r]
            .iter()
            .rev()
            .find(|o| known_put(o) && o.call.key() == key && before(o, ops[r].invoke_ns))
        else {
            continue;
        };
        let Some(w0) = ops[..r]
            .iter()
            .rev()
            .find(|o| known_put(o) && o.call.key() == key && before(o, w1.invoke_ns))
        else {
            continue;
        };
        let Call::Put { value, .. } = &w0.call else {
            continue;
        };
        ops[r].outcome = Outcome::Ok(Ret::Value(Some(value.clone())));
        return;
    }
}

/// Makes a read half way through return the value of a known put on its key
/// that was invoked after the read returned.
fn make_future(ops: &mut [Operation]) {
    for r in ops.len() / 2..ops.len() {
        if !matches!(ops[r].call, Call::Get { .. }) {
            continue;
        }
        let key = ops[r].call.key().to_owned();
        let done = ops[r].complete_ns.unwrap_or(u64::MAX);
        let Some(value) = ops[r..].iter().find_map(|o| match (&o.call, &o.outcome) {
            (Call::Put { key: k, value }, Outcome::Ok(_)) if *k == key && o.invoke_ns > done => {
                Some(value.clone())
            }
            _ => None,
        }) else {
            continue;
        };
        ops[r].outcome = Outcome::Ok(Ret::Value(Some(value)));
        return;
    }
}

/// Reads this process's peak resident memory (VmHWM), in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One run of a case, in this process; prints one JSON line.
fn child(case: &Case, budget: &Budget) -> Result<u8, String> {
    let ops = generate(case, 1);
    let generated_kib = peak_kib();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let checked = check_parallel(&ops, budget, threads, None, false);
    let elapsed = started.elapsed().as_secs_f64();
    let verdict = match checked.verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable(_) => "not linearizable",
        Verdict::Undecided { .. } => "undecided",
    };
    println!(
        "{}",
        serde_json::json!({
            "case": case.name,
            "elapsed_s": elapsed,
            "verdict": verdict,
            "generated_kib": generated_kib,
            "peak_kib": peak_kib(),
        })
    );
    Ok(0)
}

/// `cargo xtask bench check`.
pub fn bench_check(args: &BenchCheckArgs) -> Result<u8, Error> {
    let budget = Budget {
        max_steps: args.max_steps.unwrap_or(Budget::DEFAULT_MAX_STEPS),
        ..Budget::default()
    };
    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|c| args.case.as_deref().is_none_or(|n| n == c.name))
        .collect();
    if selected.is_empty() {
        return Err(Error::Usage(format!(
            "no case {:?}; cases: {}",
            args.case.as_deref().unwrap_or_default(),
            CASES.map(|c| c.name).join(", ")
        )));
    }
    if args.child {
        return Ok(child(selected[0], &budget)?);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "| case | ops | clients | keys | unknown writes | bad read | verdict | median check time | target | peak memory |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut missed = 0;
    for case in selected {
        let mut times = Vec::new();
        let mut peak = 0u64;
        let mut verdict = String::new();
        for _ in 0..args.runs.max(1) {
            let out = Command::new(&exe)
                .args(["bench", "check", "--child", "--case", case.name])
                .args(["--max-steps", &budget.max_steps.to_string()])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
            if !out.status.success() {
                return Err(Error::Internal(format!(
                    "case {} failed: {}",
                    case.name,
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            let line: serde_json::Value =
                serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            times.push(line["elapsed_s"].as_f64().unwrap_or(f64::NAN));
            peak = peak.max(line["peak_kib"].as_u64().unwrap_or(0));
            verdict = line["verdict"].as_str().unwrap_or("?").to_owned();
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let expected = if case.stale_read || case.future_read {
            "not linearizable"
        } else {
            "linearizable"
        };
        let peak_mb = peak as f64 / 1024.0;
        let met = case.target_s.is_none_or(|t| median < t)
            && case.target_mb.is_none_or(|m| peak_mb < m as f64)
            && verdict == expected;
        if !met {
            missed += 1;
        }
        println!(
            "| {} | {} | {} | {} | {:.0}% | {} | {}{} | {:.3} s | {} | {:.0} MB |",
            case.name,
            case.ops,
            case.clients,
            case.keys,
            case.unknown_writes * 100.0,
            match (case.stale_read, case.future_read) {
                (true, _) => "stale",
                (_, true) => "from the future",
                _ => "no",
            },
            verdict,
            if verdict == expected { "" } else { " (WRONG)" },
            median,
            match (case.target_s, case.target_mb) {
                (None, None) => "-".to_owned(),
                (t, m) => format!(
                    "{}{}{}",
                    t.map_or(String::new(), |t| format!("< {t} s")),
                    m.map_or(String::new(), |m| format!(", < {m} MB")),
                    if met { "" } else { " MISSED" }
                ),
            },
            peak_mb,
        );
    }
    Ok(if missed == 0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_histories_have_the_verdict_their_case_promises() {
        for case in CASES {
            let case = Case { ops: 2_000, ..case };
            let ops = generate(&case, 7);
            assert_eq!(ops.len(), 2_000);
            let verdict = check::check_operations(&ops, &Budget::default());
            match verdict {
                Verdict::Linearizable => {
                    assert!(!case.stale_read && !case.future_read, "{}", case.name)
                }
                Verdict::NotLinearizable(_) => {
                    assert!(case.stale_read || case.future_read, "{}", case.name)
                }
                Verdict::Undecided { .. } => panic!("{} undecided", case.name),
            }
        }
    }
}
