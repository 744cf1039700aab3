//! Shrinking a failing run. It knows what fired: first it drops every
//! fault family that never acted in the failing run (no crash, no
//! partition, ...), then it cuts the run in time just after the first
//! violation (the shortest failing prefix: the run is identical up to
//! there), and only then tries, greedily, each family off, fewer scripted
//! faults, a shorter run, fewer clients, fewer nodes and clock settings,
//! re-running each candidate and keeping it when it still fails the same
//! way, until nothing more can go (like QuickCheck's shrinking, over the
//! run's configuration). It reports what it kept and why
//! ([`Shrunk::report`]). Deterministic: the same failing run always
//! shrinks to the same result.

use crate::config::{MIN_NODES, SimConfig};
use crate::families::Families;
use crate::invariants::ViolationKind;
use crate::queue::MS;
use crate::{Outcome, Summary, Tracer, run};
use check::Budget;
use std::fmt;

/// What kind of failure a run shows: the first rule it broke, or liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// A safety rule broke (an invariant, or linearizability).
    Violation(ViolationKind),
    /// Safe, but the healed cluster did not recover in time.
    Liveness,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Violation(kind) => f.write_str(kind.name()),
            FailureKind::Liveness => f.write_str("liveness"),
        }
    }
}

/// What kind of failure a run shows, to keep a shrink on the same bug: the
/// first broken rule's kind, or liveness.
pub fn failure_kind(s: &Summary) -> Option<FailureKind> {
    if let Some(kind) = s.violation_kinds.first() {
        return Some(FailureKind::Violation(*kind));
    }
    (!s.liveness.is_empty()).then_some(FailureKind::Liveness)
}

/// The result of a shrink.
pub struct Shrunk {
    /// The smallest configuration found that still fails the same way.
    pub config: SimConfig,
    /// Its run.
    pub outcome: Outcome,
    /// The failure kind kept.
    pub kind: FailureKind,
    /// Runs it took.
    pub runs: usize,
    /// What the shrink dropped and kept, and why, one line each.
    pub report: Vec<String>,
}

/// The families that acted in a run: a family on whose faults never
/// happened did not fire (clock drift and slow disks act all run long
/// once drawn).
pub fn fired(s: &Summary) -> Families {
    let p = &s.params;
    let st = &s.stats;
    Families {
        network: st.messages_duplicated > 0 || (p.drop_rate > 0.0 && st.messages_dropped > 0),
        partitions: st.partitions > 0,
        crashes: st.crashes > 0,
        disk: s.disk_faults.values().any(|&n| n > 0),
        churn: st.membership.completed > 0 || st.membership.transfers > 0,
        clocks: p.clock_drift_ppm.iter().any(|&d| d != 0) || p.clock_jump_every_ms > 0,
        pauses: s.storage.pauses > 0,
        slow_disks: !s.storage.slow_disks.is_empty(),
        delays: s.storage.long_delayed_messages > 0,
        fast_restarts: s.storage.fast_restarts > 0,
        holds: st.messages_held > 0,
    }
}

/// The fault events of a run: crashes, partitions, pauses, fast restarts,
/// disk faults and membership changes (the sizes a shrink is judged by,
/// with the operations).
pub fn fault_events(s: &Summary) -> u64 {
    let st = &s.stats;
    st.crashes
        + st.partitions
        + s.storage.pauses
        + s.storage.fast_restarts
        + s.disk_faults.values().sum::<u64>()
        + st.membership.completed
}

/// The operations a run's clients completed or gave up.
pub fn operations(s: &Summary) -> u64 {
    s.stats.ops_ok + s.stats.ops_failed + s.stats.ops_unknown
}

fn run_quiet(config: &SimConfig, budget: &Budget) -> Result<Outcome, String> {
    run(config, Tracer::silent(), budget)
}

/// Why a run was not shrunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It passes: nothing to shrink.
    Passes,
    /// The checker could not decide it (out of budget) and no invariant
    /// broke: not a failure, so there is nothing to keep failing.
    Undecided,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Passes => "it passes: nothing to shrink",
            Refusal::Undecided => {
                "it is undecided (the checker ran out of budget, no invariant broke): not a failure, so not shrunk; a larger budget may decide it"
            }
        })
    }
}

/// Shrinks `start`, which must fail; `None` if it does not (passes or is
/// undecided: see [`shrink_or_refuse`] for which).
pub fn shrink(start: &SimConfig, budget: &Budget) -> Result<Option<Shrunk>, String> {
    Ok(shrink_or_refuse(start, budget)?.ok())
}

/// Shrinks `start`, or says why not: it passes, or it is undecided.
pub fn shrink_or_refuse(
    start: &SimConfig,
    budget: &Budget,
) -> Result<Result<Shrunk, Refusal>, String> {
    let first = run_quiet(start, budget)?;
    let Some(kind) = failure_kind(&first.summary) else {
        return Ok(Err(if first.summary.exit_code() == 2 {
            Refusal::Undecided
        } else {
            Refusal::Passes
        }));
    };
    // Pin what the seed drew: the families this run had, no swarm draw.
    let mut best = start.clone();
    best.swarm = false;
    best.allowed = first.summary.params.families;
    best.scenario = None;
    let mut best_outcome = run_quiet(&best, budget)?;
    let mut runs = 2;
    if failure_kind(&best_outcome.summary) != Some(kind) {
        best = start.clone();
        best.scenario = None;
        best_outcome = first;
    }
    let mut report = Vec::new();
    // What never fired goes first, all at once.
    let fired_families = fired(&best_outcome.summary);
    let unfired: Vec<&str> = best
        .allowed
        .list()
        .iter()
        .zip(fired_families.list())
        .filter(|((_, on), (_, fired))| *on && !fired)
        .map(|((name, _), _)| *name)
        .collect();
    if best.faults && !unfired.is_empty() {
        let candidate = SimConfig {
            allowed: best.allowed.and(fired_families),
            ..best.clone()
        };
        runs += 1;
        let outcome = run_quiet(&candidate, budget)?;
        if failure_kind(&outcome.summary) == Some(kind) {
            report.push(format!("dropped, never fired: {}", unfired.join(", ")));
            best = candidate;
            best_outcome = outcome;
        } else {
            report.push(format!(
                "kept families that never fired ({}): without them the run no longer failed the same way (their draws shift others)",
                unfired.join(", ")
            ));
        }
    }
    loop {
        let mut progressed = false;
        for (candidate, why) in candidates(&best, &best_outcome.summary) {
            if candidate.validate().is_err() {
                continue;
            }
            runs += 1;
            let outcome = run_quiet(&candidate, budget)?;
            if failure_kind(&outcome.summary) == Some(kind) {
                if let Some(why) = why {
                    report.push(why);
                }
                best = candidate;
                best_outcome = outcome;
                progressed = true;
                break;
            }
        }
        if !progressed {
            report.extend(kept(&best, &best_outcome.summary));
            return Ok(Ok(Shrunk {
                config: best,
                outcome: best_outcome,
                kind,
                runs,
                report,
            }));
        }
    }
}

/// Why each thing left in the shrunk run `c` stayed: every smaller
/// candidate was tried last round and did not fail the same way.
fn kept(c: &SimConfig, s: &Summary) -> Vec<String> {
    let fired = fired(s);
    let mut out: Vec<String> = c
        .allowed
        .list()
        .iter()
        .zip(fired.list())
        .filter(|((_, on), _)| *on && c.faults)
        .map(|((name, _), (_, fired))| {
            format!(
                "kept family {name} ({}): without it the run no longer fails the same way",
                if fired { "fired" } else { "never fired" }
            )
        })
        .collect();
    out.push(format!(
        "kept {} clients, {} nodes, {}ms of workload ({} operations, {} fault events): each smaller one tried no longer fails the same way",
        c.clients,
        c.nodes,
        c.duration / MS,
        operations(s),
        fault_events(s)
    ));
    out
}

/// Smaller variants of `c` (whose run gave `last`), most promising first,
/// each with what to report if it is taken (`None`: nothing worth a line).
/// The run is cut in time before anything else: just after the first
/// violation, else in halves; then families, scripted faults, clients,
/// nodes and clock settings.
fn candidates(c: &SimConfig, last: &Summary) -> Vec<(SimConfig, Option<String>)> {
    let mut out = Vec::new();
    let time_cut = |duration: u64, out: &mut Vec<(SimConfig, Option<String>)>, why: String| {
        let mut smaller = SimConfig {
            duration,
            ..c.clone()
        };
        // Without the scripted faults that would now fall after its end (a
        // scenario file refuses those).
        smaller.script.retain(|f| f.at_ms * MS < duration);
        out.push((smaller, Some(why)));
    };
    if let Some(at) = last.first_violation_ms
        && (at + 1) * MS < c.duration
    {
        time_cut(
            (at + 1) * MS,
            &mut out,
            format!(
                "cut the run at {}ms, just after the first violation",
                at + 1
            ),
        );
    }
    if c.duration > 100 * MS {
        for duration in [c.duration / 2, c.duration * 3 / 4, c.duration * 7 / 8] {
            time_cut(
                duration,
                &mut out,
                format!("cut the run to {}ms", duration / MS),
            );
        }
    }
    for (name, on) in c.allowed.list() {
        if on && c.faults {
            let mut smaller = c.clone();
            smaller.allowed = c.allowed.with(name, false).expect("a family name");
            out.push((
                smaller,
                Some(format!(
                    "turned family {name} off: the failure does not need it"
                )),
            ));
        }
    }
    let mut rest = Vec::new();
    for i in 0..c.script.len() {
        let mut smaller = c.clone();
        smaller.script.remove(i);
        rest.push(smaller);
    }
    if c.clients > 1 {
        rest.push(SimConfig {
            clients: c.clients / 2,
            ..c.clone()
        });
        rest.push(SimConfig {
            clients: c.clients - 1,
            ..c.clone()
        });
    }
    if c.nodes > MIN_NODES {
        // One node fewer, and whatever named the node that went.
        let nodes = c.nodes - 1;
        let mut smaller = SimConfig { nodes, ..c.clone() };
        smaller
            .clock_drift_ppm
            .retain(|&(node, _)| node <= nodes as u64);
        smaller.script.retain(|f| f.validate(nodes).is_ok());
        rest.push(smaller);
    }
    for i in 0..c.clock_drift_ppm.len() {
        let mut smaller = c.clone();
        smaller.clock_drift_ppm.remove(i);
        rest.push(smaller);
    }
    out.extend(rest.into_iter().map(|c| (c, None)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(seed: u64) -> SimConfig {
        SimConfig {
            duration: 1_000 * MS,
            faults: false,
            ..SimConfig::new(seed)
        }
    }

    #[test]
    fn a_passing_run_is_refused_as_passing() {
        let refused = shrink_or_refuse(&short(1), &Budget::default()).unwrap();
        assert_eq!(refused.err(), Some(Refusal::Passes));
    }

    /// An undecided run is not a failure: refused as undecided, never
    /// shrunk as if it were a violation.
    #[test]
    fn an_undecided_run_is_refused_as_undecided() {
        let budget = Budget {
            max_steps: 1,
            ..Budget::default()
        };
        // Many clients on few keys: orders that neither unique values nor
        // the version order settle, so one search step cannot decide.
        let crowded = SimConfig {
            clients: 50,
            duration: 2_000 * MS,
            ..short(1)
        };
        let refused = shrink_or_refuse(&crowded, &budget).unwrap();
        assert_eq!(refused.err(), Some(Refusal::Undecided));
        assert!(Refusal::Undecided.to_string().contains("not a failure"));
    }
}
