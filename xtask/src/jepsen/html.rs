//! The run as an HTML report: crates/report renders it; this adapter fills
//! a `report::Report` from the real run (the checker's verdict, the
//! after-heal findings, the real nemesis on the fault timeline, the run's
//! settings) instead of a simulated one.

use super::after_heal::AfterHeal;
use check::{History, Verdict};
use sim::timeline::Timed;

/// What the report shows besides the history.
pub struct RunFacts<'a> {
    /// The page's title.
    pub title: String,
    /// The command that runs the same schedule again.
    pub replay: String,
    /// Nodes at the start (lanes of the timeline).
    pub nodes: u64,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// The after-heal checks.
    pub after: &'a AfterHeal,
    /// The nemesis's events.
    pub timeline: Vec<Timed>,
    /// Settings and counts, in display order.
    pub params: Vec<(String, String)>,
    /// Why the run must fail, if it ran with an unsafe node setting.
    pub unsafe_note: Option<String>,
    /// Where the history was written.
    pub history_path: String,
    /// The end of the run (ns since the start).
    pub end_ns: u64,
}

/// Builds the report.
pub fn build(history: History, facts: RunFacts<'_>) -> report::Report {
    let mut r = report::Report::for_history(&facts.title, history, facts.verdict, &facts.replay);
    r.nodes = facts.nodes;
    r.timeline = facts.timeline;
    r.end_ns = Some(facts.end_ns);
    r.history_path = Some(facts.history_path);
    for v in &facts.after.violations {
        r.violations.push(v.clone());
        r.violation_kinds.push(if v.contains("lost") {
            "acknowledged write lost".into()
        } else {
            "state machines agree".into()
        });
    }
    for l in &facts.after.liveness {
        r.violations.push(format!("liveness: {l}"));
        r.violation_kinds.push("liveness".into());
    }
    if let Some(note) = facts.unsafe_note
        && !r.violations.is_empty()
    {
        r.violations.push(note);
        r.violation_kinds.push("unsafe node setting".into());
    }
    r.params.splice(0..0, facts.params);
    r
}
