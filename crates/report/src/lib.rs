//! Self-contained HTML reports of runs and histories: one file a user opens
//! in a browser, offline, to see what happened and why it is wrong.
//!
//! The page, top to bottom: the verdict and the replay command; on a failure,
//! why (the operations that cannot be linearized, the value the model holds
//! there, a window of the failing key's client timeline around them, and a
//! step-through of the longest linearizable prefix with the value after each
//! step); the run's parameters; the fault timeline (a lane per node: a
//! member from when it joined, down, removed, cut off from whom; a lane for
//! the leader and its term); every key's client timeline, failing keys
//! first, the rest collapsed; the latency distribution and throughput over
//! time. Fault intervals are shaded in every chart that has a time axis.
//!
//! Everything is inline (CSS, SVG, no script): nothing is fetched, so the file
//! can be attached to a bug. Rendering is a pure function of a [`Report`];
//! callers write the file.
//!
//! - [`Report::from_outcome`]: a simulated run.
//! - [`Report::for_history`]: a recorded or imported history and its verdict.
//! - [`render`]: the page. [`render_index`]: a page linking many reports.

pub mod facts;
pub mod plots;
pub mod steps;
pub mod svg;

use check::{Budget, History, OpId, Operation, Outcome, Record, Verdict};
pub use facts::Explanation;
use facts::RunFacts;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sim::timeline::Timed;
use std::collections::{BTreeMap, BTreeSet};
use svg::{Axis, OpView};

/// Width of the time axis of the run-wide charts, in px.
const CHART_W: f64 = 1130.0;
/// Prefix operations shown before the stuck ones in the failure window.
const WINDOW_PREFIX_OPS: usize = 6;
/// Most operation bars the collapsed per-key timelines draw, over all keys:
/// about 270 bytes each, so they keep a page of any length under 5 MB.
const PAGE_MAX_BARS: usize = 12_000;
/// Fewest bars a key's collapsed timeline draws, however many keys there are.
const MIN_BARS_PER_KEY: usize = 60;
/// Most keys whose timelines a page draws (the failing key always among
/// them); the others are listed by name. With `PAGE_MAX_BARS`, this bounds
/// the page whatever the history.
const MAX_KEY_SECTIONS: usize = 200;
/// Operations shown in the opening window of a key that did not fail.
const PASSING_WINDOW_OPS: usize = 60;

/// What a report shows. Built by [`Report::from_outcome`] or
/// [`Report::for_history`]; fields are public so callers can add to them.
#[derive(Clone, Debug)]
pub struct Report {
    /// The page's title, e.g. "seed 7".
    pub title: String,
    /// The command that reproduces what the report shows.
    pub replay: String,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// Everything that went wrong, as text (broken invariants, the checker's
    /// gist); empty when the run passed.
    pub violations: Vec<String>,
    /// The kind of rule each of `violations` broke ("election safety",
    /// "not linearizable", "liveness"), by index; shown as a tag.
    pub violation_kinds: Vec<String>,
    /// Parameters and counters, in display order.
    pub params: Vec<(String, String)>,
    /// Cluster size (0 when the history has no cluster, e.g. imported).
    pub nodes: u64,
    /// The clients' history.
    pub history: History,
    /// Faults and leadership over time (empty for an imported history).
    pub timeline: Vec<Timed>,
    /// The end of the run in virtual time, if known (otherwise the last
    /// event's time).
    pub end_ns: Option<u64>,
    /// Why the history is not linearizable, if the caller has a richer
    /// explanation than the one [`render`] derives from the verdict's
    /// counterexample (the derived one is used when this is `None`).
    pub explanation: Option<Explanation>,
    /// Where the run's history was written, shown under the replay command
    /// (`None`: not shown).
    pub history_path: Option<String>,
    /// Who answered each operation, by op id (a simulated run's; empty
    /// for an imported history).
    pub served: BTreeMap<OpId, sim::served::Served>,
    /// The server side the report names beside who served: each node's
    /// clock drift and the lease in force (a simulated run's).
    pub cluster: ClusterFacts,
}

/// What the report says of the cluster beside each failing operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFacts {
    /// Each node's clock drift in parts per million, by 1-based node id
    /// (positive: its clock runs fast).
    pub clock_drift_ppm: BTreeMap<u64, i64>,
    /// Lease reads' length in ticks (0: lease reads off).
    pub lease_read_ticks: u32,
    /// The minimum election timeout in ticks, which the lease must stay
    /// under on every clock (§6.4.1).
    pub election_ticks: u32,
}

/// A drawn parameter as short text: a set of switches as the names of those
/// on, a list as its items, anything else as JSON.
fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) if map.values().all(|x| x.is_boolean()) => {
            let on: Vec<&str> = map
                .iter()
                .filter(|(_, x)| x.as_bool() == Some(true))
                .map(|(k, _)| k.as_str())
                .collect();
            if on.is_empty() {
                "none".into()
            } else {
                on.join(", ")
            }
        }
        serde_json::Value::Array(items) => items
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Per-node clock drift (ppm, by node slot) labelled by node, as a rate:
/// `n1 +80.0%, n2 -80.0%`; the founding `nodes`, then any spare slot with a
/// drift.
fn drift_text(v: &serde_json::Value, nodes: usize) -> String {
    let Some(items) = v.as_array() else {
        return param_text(v);
    };
    let shown: Vec<String> = items
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let ppm = d.as_i64()?;
            (i < nodes || ppm != 0).then(|| format!("n{} {:+.1}%", i + 1, ppm as f64 / 10_000.0))
        })
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// The node a timeline event concerns, if one.
fn timeline_node(event: &sim::timeline::TimelineEvent) -> Option<u64> {
    use sim::timeline::TimelineEvent as E;
    match event {
        E::Crashed { node }
        | E::Restarted { node }
        | E::Halted { node, .. }
        | E::Joined { node }
        | E::Removed { node, .. }
        | E::Leader { node, .. }
        | E::SteppedDown { node, .. }
        | E::Paused { node, .. }
        | E::Resumed { node }
        | E::ClockDrift { node, .. }
        | E::ClockJumped { node, .. } => Some(*node),
        E::Partitioned { .. }
        | E::Healed
        | E::EndOfWorkload
        | E::Membership { .. }
        | E::Scripted { .. } => None,
    }
}

impl Report {
    /// A report of a simulated run.
    pub fn from_outcome(outcome: &sim::Outcome) -> Report {
        let s = &outcome.summary;
        let mut params = vec![
            ("seed".to_string(), s.seed.to_string()),
            ("nodes".into(), s.nodes.to_string()),
            ("clients".into(), s.clients.to_string()),
            (
                "virtual time".into(),
                format!("{:.3}s", s.sim_time_ms as f64 / 1000.0),
            ),
        ];
        if let Ok(serde_json::Value::Object(drawn)) = serde_json::to_value(&s.params) {
            for (k, v) in drawn {
                let text = if k == "clock_drift_ppm" {
                    drift_text(&v, s.nodes)
                } else {
                    param_text(&v)
                };
                params.push((k, text));
            }
        }
        let counters = [
            ("ops ok", s.stats.ops_ok),
            ("ops failed", s.stats.ops_failed),
            ("ops unknown", s.stats.ops_unknown),
            ("elections", s.elections),
            ("crashes", s.stats.crashes),
            ("partitions", s.stats.partitions),
            ("commits", s.commits),
            ("messages", s.stats.messages),
            ("messages dropped", s.stats.messages_dropped),
            ("messages duplicated", s.stats.messages_duplicated),
            ("trace events", s.trace_events),
            ("snapshots taken", s.stats.snapshots_taken),
            ("snapshots installed", s.stats.snapshots_installed),
            ("membership changes", s.stats.membership.completed),
            ("leadership transfers", s.stats.membership.transfers),
        ];
        params.extend(counters.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        for (kind, n) in &s.disk_faults {
            params.push((format!("disk fault: {kind}"), n.to_string()));
        }
        params.push(("trace hash".into(), s.trace_hash.clone()));
        Report {
            title: format!("seed {}", s.seed),
            replay: s.replay.clone(),
            verdict: outcome.verdict.clone(),
            // Liveness failures are shown with the violations, marked.
            violations: s
                .violations
                .iter()
                .cloned()
                .chain(s.liveness.iter().map(|l| format!("liveness: {l}")))
                .collect(),
            violation_kinds: s
                .violation_kinds
                .iter()
                .map(|k| k.name().to_string())
                .chain(s.liveness.iter().map(|_| "liveness".to_string()))
                .collect(),
            params,
            // A lane for every node that took part, churn's new ones too.
            nodes: outcome
                .timeline
                .iter()
                .filter_map(|t| timeline_node(&t.event))
                .max()
                .unwrap_or(0)
                .max(s.nodes as u64),
            history: outcome.history.clone(),
            timeline: outcome.timeline.clone(),
            end_ns: Some(s.sim_time_ms * 1_000_000),
            explanation: None,
            history_path: None,
            served: outcome.served.clone(),
            cluster: ClusterFacts {
                clock_drift_ppm: s
                    .params
                    .clock_drift_ppm
                    .iter()
                    .enumerate()
                    .filter(|(_, ppm)| **ppm != 0)
                    .map(|(slot, ppm)| (slot as u64 + 1, *ppm))
                    .collect(),
                lease_read_ticks: s
                    .params
                    .raft_config(raft::NodeId(1), Vec::new(), 0)
                    .lease_read_ticks,
                election_ticks: s.params.election_ticks,
            },
        }
    }

    /// A report of a history checked on its own (recorded, or imported).
    pub fn for_history(title: &str, history: History, verdict: Verdict, replay: &str) -> Report {
        let violations = match &verdict {
            Verdict::NotLinearizable(c) => vec![format!(
                "not linearizable on key {:?}: no operation among {:?} can follow the longest \
                 linearizable prefix ({} operations)",
                c.key,
                c.stuck,
                c.longest_prefix.len()
            )],
            _ => Vec::new(),
        };
        let mut params = vec![("records".to_string(), history.records.len().to_string())];
        if let Ok(ops) = history.operations() {
            let keys: BTreeSet<&str> = ops.iter().map(|o| o.call.key()).collect();
            let clients: BTreeSet<u64> = ops.iter().map(|o| o.process).collect();
            let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|o| f(&o.outcome)).count();
            params.extend([
                ("operations".to_string(), ops.len().to_string()),
                ("keys".into(), keys.len().to_string()),
                ("clients".into(), clients.len().to_string()),
                (
                    "ops ok".into(),
                    count(|o| matches!(o, Outcome::Ok(_))).to_string(),
                ),
                (
                    "ops failed".into(),
                    count(|o| matches!(o, Outcome::Fail)).to_string(),
                ),
                (
                    "ops unknown".into(),
                    count(|o| matches!(o, Outcome::Unknown)).to_string(),
                ),
            ]);
        }
        Report {
            title: title.to_string(),
            replay: replay.to_string(),
            verdict,
            violation_kinds: vec!["not linearizable".to_string(); violations.len()],
            violations,
            params,
            nodes: 0,
            history,
            timeline: Vec::new(),
            end_ns: None,
            explanation: None,
            history_path: None,
            served: BTreeMap::new(),
            cluster: ClusterFacts::default(),
        }
    }

    /// Whether the report shows a run where everything held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && matches!(self.verdict, Verdict::Linearizable)
    }

    /// One line: what the verdict is.
    pub fn headline(&self) -> String {
        match &self.verdict {
            Verdict::NotLinearizable(c) => format!("NOT LINEARIZABLE on key {:?}", c.key),
            Verdict::Undecided { key } if self.violations.is_empty() => {
                format!("UNDECIDED: the checker ran out of budget on key {key:?}")
            }
            _ if !self.violations.is_empty() => "VIOLATION: an invariant broke".into(),
            Verdict::Undecided { key } => format!("UNDECIDED on key {key:?}"),
            Verdict::Linearizable => "PASS: linearizable, every invariant held".into(),
        }
    }
}

/// One report linked from an index page.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    /// The link text, e.g. "seed 7".
    pub title: String,
    /// The report's path relative to the index.
    pub href: String,
    /// Whether the run passed.
    pub passed: bool,
    /// The report's headline (its verdict).
    pub verdict: String,
    /// The replay command.
    pub replay: String,
}

impl IndexEntry {
    /// The entry for `report`, written at `href`.
    pub fn new(report: &Report, href: &str) -> IndexEntry {
        IndexEntry {
            title: report.title.clone(),
            href: href.to_string(),
            passed: report.passed(),
            verdict: report.headline(),
            replay: report.replay.clone(),
        }
    }
}

const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 16px 40px;color:#222;background:#fff}
h1{font-size:20px;margin:10px 0 4px}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:10px 0 4px}
.banner{padding:8px 12px;border-radius:6px;margin-top:10px}
.banner.pass{background:#e3f4e1;border:1px solid #59a14f}.banner.fail{background:#fde4e4;border:1px solid #e15759}
.banner.undecided{background:#fff4d6;border:1px solid #edc948}
.replay{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#222;color:#eee;padding:6px 10px;border-radius:4px;display:inline-block;margin:6px 0;user-select:all}
ul.viol{margin:4px 0;padding-left:20px}.why{margin:4px 0}
table.params{border-collapse:collapse;font-size:12px;columns:3}
.pgrid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:0 16px;font-size:12px}
.pgrid div{border-bottom:1px dotted #ddd;display:flex;justify-content:space-between;gap:8px}
.pgrid span{text-align:right;overflow-wrap:anywhere}
.pgrid b{font-weight:500;color:#555}
.scroll{overflow-x:auto;max-width:100%}
svg.chart{display:block;font:11px sans-serif}
svg text.lane{fill:#444}svg text.tick{fill:#666;text-anchor:middle;font-size:10px}
svg text.op{fill:#111;font-size:11px;pointer-events:none}svg text.inbar{fill:#7a3d00;pointer-events:none}
svg text.inbarw{fill:#fff;pointer-events:none}
svg line.ax{stroke:#888}svg line.grid{stroke:#eee}svg line.eow{stroke:#333;stroke-dasharray:4 3}svg line.mark{stroke:#6a3d9a;stroke-width:2}svg text.marklabel{font-size:9px;fill:#6a3d9a}
.viol span.kind{font:600 11px ui-monospace,monospace;background:#fbe3e4;border:1px solid #e15759;border-radius:3px;padding:0 4px}svg rect.up{fill:#d9ecd5}svg rect.removed{fill:#eee;stroke:#999;stroke-dasharray:4 2}svg text.inbarrm{fill:#555;font-style:italic;pointer-events:none}svg rect.down{fill:#e15759}svg rect.paused{fill:#9c755f}svg rect.shz{fill:#9c755f;fill-opacity:.10}svg rect.cut{fill:#f7c08a;stroke:#f28e2b}
svg rect.shd{fill:#e15759;fill-opacity:.10}svg rect.shp{fill:#f28e2b;fill-opacity:.10}
svg rect.op{stroke-width:1}svg rect.ok{fill:#a8c6e5;stroke:#4e79a7}
svg rect.fl{fill:#fff;stroke:#999;stroke-dasharray:3 2}
svg rect.un{fill:#e6d2e6;stroke:#b07aa1;stroke-dasharray:5 3}svg rect.tail{fill:url(#fade)}
svg rect.mn{stroke:#f28e2b;stroke-width:2.5}svg rect.win{fill:none;stroke:#c00;stroke-width:1.5;stroke-dasharray:3 2}
svg rect.st{fill:#ff9d9a;stroke:#c00;stroke-width:2.5}
svg rect:hover{stroke:#000;stroke-width:2}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:22px;height:10px;margin-right:4px;vertical-align:middle;border:1px solid #999}
details{margin:6px 0}summary{cursor:pointer;font-weight:500}
.muted{color:#777;font-size:12px}
code{font:12px ui-monospace,monospace}
table.steps{border-collapse:collapse;font-size:12px;margin:4px 0}table.steps th,table.steps td{border-bottom:1px solid #eee;padding:1px 8px;text-align:left;vertical-align:top}
table.steps tr:target{background:#ffe9a8;outline:2px solid #edc948}table.steps tr.stuck{background:#fde4e4}table.steps tr.start{color:#777}
table.steps td.nav a{text-decoration:none;font-size:14px}table.steps td.state{max-width:40em}
"#;

/// SVG definitions shared by every chart (the fade of an open-ended bar).
const DEFS: &str = r##"<svg width="0" height="0" style="position:absolute"><defs><linearGradient id="fade"><stop offset="0" stop-color="#d7b5d8"/><stop offset="1" stop-color="#d7b5d8" stop-opacity="0"/></linearGradient></defs></svg>"##;

fn legend() -> Markup {
    html! {
        div.legend {
            span { i style="background:#a8c6e5;border-color:#4e79a7" {} "ok (#id: the operation, as the text numbers it; Ln: its place in the key's linearization)" }
            span { i style="background:#ff9d9a;border:2px solid #c00" {} "cannot be linearized" }
            span { i style="background:#e6d2e6;border-style:dashed;border-color:#b07aa1" {} "unknown outcome: until the client gave up, then (writes) a thin tail: it may take effect any time later" }
            span { i style="background:#fff;border-style:dashed" {} "failed (no effect)" }
            span { i style="background:#fbe3e3" {} "node down" }
            span { i style="background:#fde8d3" {} "partition" }
            span.muted { "hover a bar for its arguments, result and the value after it" }
        }
    }
}

/// Everything derived once per render.
struct Derived<'a> {
    ops: Vec<Operation>,
    notes: BTreeMap<OpId, &'a str>,
    facts: RunFacts,
    end_ns: u64,
    positions: BTreeMap<OpId, (usize, facts::State)>,
    explanation: Option<Explanation>,
    ops_error: Option<String>,
}

fn derive(report: &Report) -> Derived<'_> {
    // A batch is drawn as its writes, one per key's lane, as the checker
    // checks it.
    let (ops, ops_error) = match report.history.operations() {
        Ok(ops) => (check::project_batches(&ops).into_owned(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let notes: BTreeMap<OpId, &str> = report
        .history
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Fail { id, error, .. } => Some((*id, error.as_str())),
            Record::Info { id, reason, .. } => Some((*id, reason.as_str())),
            _ => None,
        })
        .collect();
    let last_record = report
        .history
        .records
        .iter()
        .map(Record::time_ns)
        .max()
        .unwrap_or(0);
    let last_event = report.timeline.iter().map(|t| t.time_ns).max().unwrap_or(0);
    let end_ns = report
        .end_ns
        .unwrap_or(0)
        .max(last_record)
        .max(last_event)
        .max(1);
    let facts = facts::run_facts(&report.timeline, end_ns);
    let by_id: BTreeMap<OpId, &Operation> = ops.iter().map(|o| (o.id, o)).collect();
    // The checker's per-key witnesses number the bars. The search is
    // deterministic and budgeted; a key it cannot order is left unnumbered.
    let verdicts = check::check_per_key(&ops, &Budget::default());
    let positions = facts::positions(&verdicts, &by_id);
    let explanation = match (&report.explanation, &report.verdict) {
        (Some(given), _) => Some(given.clone()),
        (None, Verdict::NotLinearizable(c)) => {
            let mut e = facts::explain(c, &by_id);
            facts::enrich(&mut e, &check::explain(&ops, c, &Budget::default()));
            Some(e)
        }
        (None, _) => None,
    };
    Derived {
        notes,
        facts,
        end_ns,
        positions,
        explanation,
        ops_error,
        ops,
    }
}

/// The whole page for `report`, as one self-contained HTML document.
pub fn render(report: &Report) -> String {
    let d = derive(report);
    let banner_class = if report.passed() {
        "banner pass"
    } else if matches!(report.verdict, Verdict::Undecided { .. }) && report.violations.is_empty() {
        "banner undecided"
    } else {
        "banner fail"
    };
    let mut keys: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &d.ops {
        keys.entry(op.call.key()).or_default().push(op);
    }
    let failing_key = d.explanation.as_ref().map(|e| e.key.as_str());
    let cap = (PAGE_MAX_BARS / keys.len().clamp(1, MAX_KEY_SECTIONS)).max(MIN_BARS_PER_KEY);
    let others: Vec<(&&str, &Vec<&Operation>)> = keys
        .iter()
        .filter(|(k, _)| Some(**k) != failing_key)
        .collect();
    let shown = MAX_KEY_SECTIONS - usize::from(failing_key.is_some());
    let not_drawn: Vec<String> = others
        .iter()
        .skip(shown)
        .map(|(k, _)| format!("{k:?}"))
        .collect();
    let window = d
        .explanation
        .as_ref()
        .map(|e| failure_window(e, &keys, d.end_ns));
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "raftlab report: " (report.title) " — " (report.headline()) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (PreEscaped(DEFS))
                div class=(banner_class) id="verdict" {
                    h1 { "raftlab · " (report.title) " · " (report.headline()) }
                    div { "replay: " code.replay id="replay" { (report.replay) } }
                    @if let Some(path) = &report.history_path {
                        div { "history: " code.replay id="history" { (path) } }
                    }
                    @if !report.violations.is_empty() {
                        ul.viol {
                            @for (i, v) in report.violations.iter().enumerate() {
                                li {
                                    @if let Some(kind) = report.violation_kinds.get(i) {
                                        span.kind { (kind) } " "
                                    }
                                    (v)
                                }
                            }
                        }
                    }
                    @if let Some(e) = &d.ops_error {
                        p { "The history is malformed: " (e) }
                    }
                }
                @if let Some(e) = &d.explanation {
                    (why(e, &keys, &d, report))
                }
                h2 { "Parameters" }
                div.pgrid {
                    @for (k, v) in &report.params { div { b { (k) } span { (v) } } }
                }
                @if report.nodes > 0 {
                    h2 { "Faults, and the leader and its term" }
                    div.scroll {
                        (svg::fault_timeline(&d.facts, report.nodes, &Axis::new(0, d.end_ns, CHART_W), window))
                    }
                    p.muted {
                        "Green: a member (from when it joined). Red: a node down. Grey, dashed: removed from the cluster (a membership change, not a failure). "
                        "Orange: cut off by a partition (hover for whom). "
                        "Coloured bars in the last lane: the leader, nN tT = node N in term T. "
                        "Dashed line: end of the workload. Red dashed box: the window around the failure shown above."
                    }
                }
                h2 { "Client timelines per key" }
                (legend())
                @if let Some(key) = failing_key {
                    @if let Some(ops) = keys.get(key) {
                        (key_section(key, ops, &d, true, cap))
                    }
                }
                @for (i, (key, ops)) in others.iter().take(shown).enumerate() {
                    @if i == 0 && failing_key.is_none() {
                        (opening_window(key, ops, &d))
                    }
                    (key_section(key, ops, &d, false, cap))
                }
                @if !not_drawn.is_empty() {
                    p.muted { (not_drawn.len()) " more keys not drawn: " (not_drawn.join(", ")) }
                }
                h2 { "Latency and throughput" }
                (plots_section(&d))
                p.muted { "Generated by raftlab. Self-contained: no scripts, no network resources." }
            }
        }
    };
    page.into_string()
}

fn views<'a>(
    ops: &[&'a Operation],
    d: &'a Derived,
    stuck: &'a BTreeMap<OpId, String>,
) -> Vec<OpView<'a>> {
    ops.iter()
        .map(|op| OpView {
            op,
            position: d.positions.get(&op.id),
            stuck_reason: stuck.get(&op.id).map(String::as_str),
            in_minimal_set: d
                .explanation
                .as_ref()
                .is_some_and(|e| e.key == op.call.key() && e.minimal_set.contains(&op.id)),
            note: d.notes.get(&op.id).copied(),
        })
        .collect()
}

fn no_reasons() -> &'static BTreeMap<OpId, String> {
    static EMPTY: BTreeMap<OpId, String> = BTreeMap::new();
    &EMPTY
}

/// The stretch of time around the failure: the stuck operations and the end
/// of the prefix before them.
fn failure_window(
    e: &Explanation,
    keys: &BTreeMap<&str, Vec<&Operation>>,
    end_ns: u64,
) -> (u64, u64) {
    let ops = keys.get(e.key.as_str()).cloned().unwrap_or_default();
    let by_id: BTreeMap<OpId, &Operation> = ops.iter().map(|o| (o.id, *o)).collect();
    let mut focus: Vec<&Operation> = e
        .stuck
        .iter()
        .filter_map(|id| by_id.get(id).copied())
        .collect();
    focus.extend(
        e.prefix
            .iter()
            .rev()
            .take(WINDOW_PREFIX_OPS)
            .filter_map(|id| by_id.get(id).copied()),
    );
    window(&focus, end_ns)
}

/// The failure, explained, with a window of the failing key's timeline.
/// The leaders (node, term) whose reign overlaps `op`'s call-to-return.
fn leaders_during(op: &Operation, reigns: &[facts::Reign], end_ns: u64) -> Vec<(u64, u64)> {
    let until = op.complete_ns.unwrap_or(end_ns);
    let mut out: Vec<(u64, u64)> = reigns
        .iter()
        .filter(|r| r.start_ns <= until && r.end_ns >= op.invoke_ns)
        .map(|r| (r.node, r.term))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A stuck operation, the leaders (node, term) while it ran, and the
/// commands that trace each.
type TraceHint = (OpId, Vec<(u64, u64)>, Vec<String>);

/// The `--trace-node` commands for the nodes that led while a stuck
/// operation ran: the node that served it is among them (a read is served
/// by whoever believes it leads). Only for a simulated run's replay command.
fn trace_commands(
    e: &Explanation,
    ops: &[&Operation],
    d: &Derived,
    replay: &str,
) -> Vec<TraceHint> {
    if !replay.starts_with("cargo xtask simulate") || d.facts.reigns.is_empty() {
        return Vec::new();
    }
    e.stuck
        .iter()
        .filter_map(|id| ops.iter().find(|o| o.id == *id))
        .map(|op| {
            let leaders = leaders_during(op, &d.facts.reigns, d.end_ns);
            let mut nodes: Vec<u64> = leaders.iter().map(|(n, _)| *n).collect();
            nodes.dedup();
            let commands = nodes
                .iter()
                .map(|n| format!("{replay} --trace-node {n}"))
                .collect();
            (op.id, leaders, commands)
        })
        .collect()
}

/// Who served op `id`, in words, with the server-side facts that matter
/// for it (the node's clock drift, the lease), and the command that traces
/// that node; `None` when the run did not record who served it.
fn served_text(id: OpId, report: &Report) -> Option<(String, Option<String>)> {
    let s = report.served.get(&id)?;
    let mut text = format!(
        "op {id} was answered by n{} ({}, term {}, commit index {}, applied index {}) {}.",
        s.node,
        s.role,
        s.term,
        s.commit,
        s.applied,
        s.how.describe()
    );
    let c = &report.cluster;
    if s.how == sim::served::ServedHow::AtOnce && c.lease_read_ticks > 0 {
        text += &format!(
            " Lease reads were on: a leader answers reads alone for {} ticks after a quorum \
             confirmed it, safe only while no clock runs more than {:.1}% faster than the \
             leader's (election timeout at least {} ticks).",
            c.lease_read_ticks,
            (f64::from(c.election_ticks) / f64::from(c.lease_read_ticks) - 1.0) * 100.0,
            c.election_ticks
        );
    }
    if s.clock_drift_ppm != 0 || s.fastest_other_ppm != 0 {
        text += &format!(
            " When it answered, n{}'s clock drifted {:+.2}% and the fastest other node's {:+.2}%: \
             that clock ran {:.2}× as fast as n{}'s.",
            s.node,
            s.clock_drift_ppm as f64 / 10_000.0,
            s.fastest_other_ppm as f64 / 10_000.0,
            s.clock_ratio(),
            s.node
        );
    }
    let command = report
        .replay
        .starts_with("cargo xtask simulate")
        .then(|| format!("{} --trace-node {}", report.replay, s.node));
    Some((text, command))
}

fn why(
    e: &Explanation,
    keys: &BTreeMap<&str, Vec<&Operation>>,
    d: &Derived,
    report: &Report,
) -> Markup {
    let replay = report.replay.as_str();
    let ops = keys.get(e.key.as_str()).cloned().unwrap_or_default();
    let served: Vec<(String, Option<String>)> = e
        .stuck
        .iter()
        .filter_map(|id| served_text(*id, report))
        .collect();
    // Who served it is known exactly: no need to list every leader.
    let traces = if served.is_empty() {
        trace_commands(e, &ops, d, replay)
    } else {
        Vec::new()
    };
    let stuck: BTreeSet<OpId> = e.stuck.iter().copied().collect();
    let (t0, t1) = failure_window(e, keys, d.end_ns);
    let axis = Axis::new(t0, t1, CHART_W);
    let v = views(&ops, d, &e.reasons);
    html! {
        div #why {
            p.why {
                "On key " code { (format!("{:?}", e.key)) } ", the longest linearizable prefix has "
                (e.prefix.len()) " operations and leaves the value "
                code { (svg::state_text(&e.state_after_prefix)) } ". "
                "No operation among " b { (format!("{:?}", e.stuck)) } " can come next:"
            }
            ul.viol {
                @for id in &e.stuck {
                    li { "op " b { (id) } ": " (e.reasons.get(id).map(String::as_str).unwrap_or("rejected")) }
                }
                @if !e.minimal_set.is_empty() {
                    li { "a minimal failing set (outlined): " (format!("{:?}", e.minimal_set)) }
                }
                @for note in &e.notes { li { (note) } }
            }
            @for (text, command) in &served {
                p.why.served { (text) }
                @if let Some(c) = command {
                    div { code.replay.trace { (c) } }
                }
            }
            @for (id, leaders, commands) in &traces {
                p.why #trace {
                    "While op " b { (id) } " ran, "
                    @if leaders.is_empty() {
                        "no node led."
                    } @else {
                        (leaders.iter().map(|(n, t)| format!("n{n} (term {t})")).collect::<Vec<_>>().join(", "))
                        " led; the node that served it is among them. What each did:"
                    }
                }
                @for c in commands {
                    div { code.replay { (c) } }
                }
            }
            div.scroll { (svg::client_timeline(&v, &axis, &d.facts.faults, d.end_ns)) }
            p.muted {
                "The window around the failure on key " (format!("{:?}", e.key)) ", "
                (svg::fmt_time(t0)) " to " (svg::fmt_time(t1)) "; "
                (stuck.len()) " operation(s) that cannot be linearized in red. The whole key is below."
            }
            (steps::render(&steps::step_through(e, &ops.iter().map(|o| (o.id, *o)).collect())))
        }
    }
}

/// A time window around `focus`, padded, within `[0, end_ns]`.
fn window(focus: &[&Operation], end_ns: u64) -> (u64, u64) {
    let t0 = focus.iter().map(|o| o.invoke_ns).min().unwrap_or(0);
    let t1 = focus
        .iter()
        .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
        .max()
        .unwrap_or(end_ns)
        .max(t0 + 1);
    let pad = ((t1 - t0) / 10).max(1);
    (t0.saturating_sub(pad), (t1 + pad).min(end_ns.max(t1)))
}

/// For a run without a failure: the first operations of the first key, open.
fn opening_window(key: &str, ops: &[&Operation], d: &Derived) -> Markup {
    let first: Vec<&Operation> = ops.iter().take(PASSING_WINDOW_OPS).copied().collect();
    let (t0, t1) = window(&first, d.end_ns);
    let axis = Axis::new(t0, t1, CHART_W);
    let v = views(ops, d, no_reasons());
    html! {
        h3 { "key " code { (format!("{key:?}")) } ": its first " (first.len()) " operations" }
        div.scroll { (svg::client_timeline(&v, &axis, &d.facts.faults, d.end_ns)) }
    }
}

/// One key's whole timeline, collapsed, in a horizontally scrolling box.
/// One key's whole timeline, collapsed, in a horizontally scrolling box. A
/// key with more than `cap` operations draws `cap` of them (around the
/// failure on a failing key, else the first) and says so: the page stays
/// small and a browser stays responsive however long the run.
fn key_section(key: &str, ops: &[&Operation], d: &Derived, failing: bool, cap: usize) -> Markup {
    let reasons = match (&d.explanation, failing) {
        (Some(e), true) => &e.reasons,
        _ => no_reasons(),
    };
    let start = if ops.len() <= cap {
        0
    } else {
        let around = match (&d.explanation, failing) {
            (Some(e), true) => e
                .stuck
                .first()
                .and_then(|id| ops.iter().position(|o| o.id == *id)),
            _ => None,
        };
        around.map_or(0, |i| i.saturating_sub(cap / 2).min(ops.len() - cap))
    };
    let drawn = &ops[start..(start + cap).min(ops.len())];
    let v = views(drawn, d, reasons);
    let t0 = drawn.iter().map(|o| o.invoke_ns).min().unwrap_or(0);
    let t1 = if drawn.len() == ops.len() {
        d.end_ns
    } else {
        drawn
            .iter()
            .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
            .max()
            .unwrap_or(d.end_ns)
    };
    let width = (drawn.len() as f64 * svg::PX_PER_OP).clamp(CHART_W, svg::MAX_FULL_W);
    let axis = Axis::new(t0.saturating_sub(1_000_000), t1, width);
    let ok = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    html! {
        details {
            summary {
                "key " code { (format!("{key:?}")) } ": " (ops.len()) " operations (" (ok) " ok)"
                @if failing { " — NOT LINEARIZABLE" }
            }
            @if drawn.len() < ops.len() {
                p.muted {
                    "Drawn: operations " (start + 1) " to " (start + drawn.len()) " of " (ops.len())
                    " (in invocation order"
                    @if start > 0 { ", around the failure" }
                    "); the history file has them all."
                }
            }
            div.scroll { (svg::client_timeline(&v, &axis, &d.facts.faults, d.end_ns)) }
        }
    }
}

fn plots_section(d: &Derived) -> Markup {
    let latencies = plots::ok_latencies_ms(&d.ops);
    let q = |p| plots::quantile(&latencies, p).map_or("-".to_string(), |v| format!("{v:.2}ms"));
    let hist = plots::latency_histogram(&latencies);
    let thr = plots::throughput(&d.ops, &d.facts.faults, d.end_ns);
    html! {
        p {
            (latencies.len()) " ok operations; latency p50 " (q(0.5)) ", p90 " (q(0.9))
            ", p99 " (q(0.99)) ", max " (q(1.0)) "."
        }
        @match hist {
            Ok(svg) => div.scroll { (PreEscaped(svg)) },
            Err(e) => p { "latency plot failed: " (e) },
        }
        @match thr {
            Ok(svg) => div.scroll { (PreEscaped(svg)) },
            Err(e) => p { "throughput plot failed: " (e) },
        }
    }
}

/// A page linking reports, with each one's verdict and replay command.
pub fn render_index(title: &str, entries: &[IndexEntry]) -> String {
    let failed = entries.iter().filter(|e| !e.passed).count();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(CSS)) "table.idx td,table.idx th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee}" }
            }
            body {
                h1 { (title) }
                p { (entries.len()) " report(s), " (failed) " failing." }
                table.idx {
                    tr { th { "run" } th { "verdict" } th { "replay" } }
                    @for e in entries {
                        tr {
                            td { a href=(e.href) { (e.title) } }
                            td { (e.verdict) }
                            td { code { (e.replay) } }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests;
