//! Shrinking a failing run: turn fault families off, use fewer clients, a
//! shorter run, fewer nodes, fewer scripted faults and clock settings,
//! re-running each candidate and keeping it when it still fails the same
//! way, until nothing more can go (greedy, like QuickCheck's shrinking but
//! over the run's configuration). Deterministic: the same failing run
//! always shrinks to the same result.

use crate::config::{MIN_NODES, SimConfig};
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
    loop {
        let mut progressed = false;
        for candidate in candidates(&best) {
            if candidate.validate().is_err() {
                continue;
            }
            runs += 1;
            let outcome = run_quiet(&candidate, budget)?;
            if failure_kind(&outcome.summary) == Some(kind) {
                best = candidate;
                best_outcome = outcome;
                progressed = true;
                break;
            }
        }
        if !progressed {
            return Ok(Ok(Shrunk {
                config: best,
                outcome: best_outcome,
                kind,
                runs,
            }));
        }
    }
}

/// Smaller variants of `c`, most promising first.
fn candidates(c: &SimConfig) -> Vec<SimConfig> {
    let mut out = Vec::new();
    for (name, on) in c.allowed.list() {
        if on && c.faults {
            let mut smaller = c.clone();
            smaller.allowed = c.allowed.with(name, false).expect("a family name");
            out.push(smaller);
        }
    }
    for i in 0..c.script.len() {
        let mut smaller = c.clone();
        smaller.script.remove(i);
        out.push(smaller);
    }
    if c.clients > 1 {
        out.push(SimConfig {
            clients: c.clients / 2,
            ..c.clone()
        });
        out.push(SimConfig {
            clients: c.clients - 1,
            ..c.clone()
        });
    }
    if c.duration > 1_000 * MS {
        // A shorter run, without the scripted faults that would now fall
        // after its end (a scenario file refuses those).
        for duration in [c.duration / 2, c.duration * 3 / 4] {
            let mut smaller = SimConfig {
                duration,
                ..c.clone()
            };
            smaller.script.retain(|f| f.at_ms * MS < duration);
            out.push(smaller);
        }
    }
    if c.nodes > MIN_NODES {
        // One node fewer, and whatever named the node that went.
        let nodes = c.nodes - 1;
        let mut smaller = SimConfig { nodes, ..c.clone() };
        smaller
            .clock_drift_ppm
            .retain(|&(node, _)| node <= nodes as u64);
        smaller.script.retain(|f| f.validate(nodes).is_ok());
        out.push(smaller);
    }
    for i in 0..c.clock_drift_ppm.len() {
        let mut smaller = c.clone();
        smaller.clock_drift_ppm.remove(i);
        out.push(smaller);
    }
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
        let refused = shrink_or_refuse(&short(1), &budget).unwrap();
        assert_eq!(refused.err(), Some(Refusal::Undecided));
        assert!(Refusal::Undecided.to_string().contains("not a failure"));
    }
}
