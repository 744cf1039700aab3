//! Hand-built inline SVG: the fault timeline (a lane per node, and the
//! leader) and the per-key client timelines (a lane per client, a bar per
//! operation, in the manner of Porcupine's visualisation). Built with maud so
//! every label and tooltip is escaped. Hovering shows an element's `<title>`.

use crate::facts::{Cut, Fault, FaultKind, RunFacts, State, show_state};
use check::{Call, Operation, Outcome, Ret};
use maud::{Markup, html};
use std::collections::{BTreeMap, BTreeSet};

/// Width of the label column on the left of every timeline, in px.
pub const LABEL_W: f64 = 70.0;
/// Height of one lane, in px.
const LANE_H: f64 = 20.0;
/// Height of the time axis under a timeline, in px.
const AXIS_H: f64 = 22.0;
/// Widest a scrollable full-length timeline gets, in px: bounds the page.
pub const MAX_FULL_W: f64 = 30_000.0;
/// Horizontal room per operation in a full-length timeline, in px.
pub const PX_PER_OP: f64 = 14.0;
/// Approximate width of one character of the 11px label font, in px.
const CHAR_W: f64 = 6.2;
/// Longest value shown in a bar's label or tooltip, in characters.
const MAX_SHOWN: usize = 40;

/// Colours of nodes 1, 2, ... (cycled).
pub const NODE_COLOURS: [&str; 7] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
];

/// The colour of node `n` (1-based).
pub fn node_colour(n: u64) -> &'static str {
    NODE_COLOURS[(n.saturating_sub(1) as usize) % NODE_COLOURS.len()]
}

/// Maps virtual time onto x pixels.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    /// First instant shown.
    pub t0: u64,
    /// Last instant shown. Invariant: `t1 > t0`.
    pub t1: u64,
    /// Pixel x of `t0`.
    pub left: f64,
    /// Pixels from `t0` to `t1`.
    pub width: f64,
}

impl Axis {
    /// An axis showing `[t0, t1]` over `width` px after the label column.
    pub fn new(t0: u64, t1: u64, width: f64) -> Axis {
        Axis {
            t0,
            t1: t1.max(t0 + 1),
            left: LABEL_W,
            width,
        }
    }

    /// The pixel x of time `t`, clamped to the axis.
    pub fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.t0, self.t1);
        self.left + (t - self.t0) as f64 * self.width / (self.t1 - self.t0) as f64
    }

    /// Total SVG width.
    pub fn total_width(&self) -> f64 {
        self.left + self.width + 10.0
    }

    fn ticks(&self) -> Vec<u64> {
        let span = self.t1 - self.t0;
        let target = (self.width / 110.0).max(2.0);
        let raw = span as f64 / target;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag)
            .max(1.0) as u64;
        let first = self.t0.div_ceil(step) * step;
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t <= self.t1)
            .take(400)
            .collect()
    }
}

/// Formats nanoseconds for tooltips: seconds, milliseconds, or (for
/// imported histories whose "times" are event indices) micro- and
/// nanoseconds.
pub fn fmt_time(ns: u64) -> String {
    if ns >= 10_000_000_000 {
        format!("{:.2}s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 || ns == 0 {
        format!("{:.3}ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.3}µs", ns as f64 / 1e3)
    } else {
        format!("{ns}ns")
    }
}

fn fmt_tick(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 1000.0 {
        format!("{}s", trim(ms / 1000.0))
    } else if ns >= 1_000_000 || ns == 0 {
        format!("{}ms", trim(ms))
    } else if ns >= 1_000 {
        format!("{}µs", trim(ns as f64 / 1e3))
    } else {
        format!("{ns}ns")
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Rounds a pixel coordinate to one decimal (keeps the page small).
fn r(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn axis_markup(axis: &Axis, y: f64, height: f64) -> Markup {
    html! {
        line.ax x1=(r(axis.left)) x2=(r(axis.left + axis.width)) y1=(r(y)) y2=(r(y)) {}
        @for t in axis.ticks() {
            @let x = axis.x(t);
            line.grid x1=(r(x)) x2=(r(x)) y1="0" y2=(r(y + 4.0)) {}
            text.tick x=(r(x)) y=(r(y + 15.0)) { (fmt_tick(t)) }
        }
        @let _ = height;
    }
}

/// Translucent bands over `[0, height]` for every fault overlapping the axis.
pub fn shading(axis: &Axis, faults: &[Fault], height: f64) -> Markup {
    html! {
        @for f in faults.iter().filter(|f| f.end_ns >= axis.t0 && f.start_ns <= axis.t1) {
            @let (x0, x1) = (axis.x(f.start_ns), axis.x(f.end_ns));
            rect class=(shade_class(f.kind)) x=(r(x0)) y="0" width=(r((x1 - x0).max(1.0)))
                height=(r(height)) {
                title { (fault_title(f)) }
            }
        }
    }
}

fn shade_class(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Down => "shd",
        FaultKind::Partition => "shp",
        FaultKind::Paused => "shz",
    }
}

fn fault_title(f: &Fault) -> String {
    let what = match f.node {
        Some(n) => format!("node {n} {}", f.label),
        None => format!("partition: {}", f.label),
    };
    format!(
        "{what}\nfrom {} to {}",
        fmt_time(f.start_ns),
        fmt_time(f.end_ns)
    )
}

fn list(nodes: &BTreeSet<u64>) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn cut_title(c: &Cut) -> String {
    format!(
        "node {}: partition {}\ncannot send to {{{}}}, cannot hear from {{{}}}\nfrom {} to {}",
        c.node,
        c.shape,
        list(&c.cannot_send_to),
        list(&c.cannot_hear_from),
        fmt_time(c.start_ns),
        fmt_time(c.end_ns)
    )
}

/// The fault timeline: a lane per node (a member from when it joined until
/// it was removed, removed drawn grey and apart from down, which is red; cut
/// off from whom), a lane
/// for the leader and its term, fault intervals shaded, the end of the
/// workload marked, and the window around a failure boxed.
pub fn fault_timeline(
    facts: &RunFacts,
    nodes: u64,
    axis: &Axis,
    failure_window: Option<(u64, u64)>,
) -> Markup {
    let lanes = nodes + 1;
    let height = lanes as f64 * LANE_H;
    let total_h = height + AXIS_H;
    html! {
        svg.chart width=(r(axis.total_width())) height=(r(total_h))
            viewBox=(format!("0 0 {} {}", r(axis.total_width()), r(total_h)))
            role="img" aria-label="fault timeline" {
            (shading(axis, &facts.faults, height))
            (axis_markup(axis, height, total_h))
            @for n in 1..=nodes {
                @let y = (n - 1) as f64 * LANE_H;
                text.lane x="4" y=(r(y + 14.0)) { "node " (n) }
                @let (member_from, member_until) = membership_span(facts, n, axis);
                @let (x0, x1) = (axis.x(member_from), axis.x(member_until));
                rect.up x=(r(x0)) y=(r(y + 6.0)) width=(r((x1 - x0).max(1.0))) height="8" {
                    title {
                        "node " (n) " a member"
                        @if let Some(t) = facts.joined.get(&n) { ": joined at " (fmt_time(*t)) }
                    }
                }
                @for m in facts.removals.iter().filter(|m| m.node == n) {
                    @let (x0, x1) = (axis.x(m.time_ns), axis.x(axis.t1));
                    rect.removed x=(r(x0)) y=(r(y + 4.0)) width=(r((x1 - x0).max(2.0))) height="12" {
                        title {
                            "node " (n) " removed from the cluster at " (fmt_time(m.time_ns))
                            " (a membership change, not a failure): " (m.reason)
                        }
                    }
                    @if x1 - x0 > 50.0 {
                        text.inbarrm x=(r(x0 + 3.0)) y=(r(y + 14.0)) { "removed" }
                    }
                }
                // A partition's shape names every node, members or not: a
                // cut is drawn only while the node is a member.
                @for c in facts.cuts.iter().filter(|c| {
                    c.node == n && c.end_ns > member_from && c.start_ns < member_until
                }) {
                    @let (x0, x1) = (
                        axis.x(c.start_ns.max(member_from)),
                        axis.x(c.end_ns.min(member_until)),
                    );
                    rect.cut x=(r(x0)) y=(r(y + 3.0)) width=(r((x1 - x0).max(1.0))) height="14" {
                        title { (cut_title(c)) }
                    }
                    @let peers: BTreeSet<u64> =
                        c.cannot_send_to.union(&c.cannot_hear_from).copied().collect();
                    @let label = format!("cut from {}", list(&peers));
                    @if x1 - x0 > label.len() as f64 * CHAR_W {
                        text.inbar x=(r(x0 + 3.0)) y=(r(y + 14.0)) { (label) }
                    }
                }
                @for f in facts.faults.iter().filter(|f| f.node == Some(n)) {
                    @let (x0, x1) = (axis.x(f.start_ns), axis.x(f.end_ns));
                    @let class = if f.kind == FaultKind::Paused { "paused" } else { "down" };
                    rect class=(class) x=(r(x0)) y=(r(y + 2.0)) width=(r((x1 - x0).max(2.0))) height="16" {
                        title { (fault_title(f)) }
                    }
                    @if x1 - x0 > 50.0 {
                        text.inbarw x=(r(x0 + 3.0)) y=(r(y + 14.0)) {
                            (match f.label.as_str() { "crashed" => "down", "paused" => "paused", _ => "halted" })
                        }
                    }
                }
            }
            @let y = nodes as f64 * LANE_H;
            text.lane x="4" y=(r(y + 14.0)) { "leader" }
            @for reign in &facts.reigns {
                @let (x0, x1) = (axis.x(reign.start_ns), axis.x(reign.end_ns));
                rect x=(r(x0)) y=(r(y + 2.0)) width=(r((x1 - x0).max(1.0))) height="16"
                    fill=(node_colour(reign.node)) {
                    title {
                        "node " (reign.node) " leads term " (reign.term) "\nfrom "
                        (fmt_time(reign.start_ns)) " to " (fmt_time(reign.end_ns))
                    }
                }
                @let label = format!("n{} t{}", reign.node, reign.term);
                @if x1 - x0 > label.len() as f64 * CHAR_W + 4.0 {
                    text.inbarw x=(r(x0 + 3.0)) y=(r(y + 14.0)) { (label) }
                }
            }
            @if let Some((t0, t1)) = failure_window {
                @let (x0, x1) = (axis.x(t0), axis.x(t1));
                rect.win x=(r(x0 - 1.0)) y="0.5" width=(r(x1 - x0 + 2.0)) height=(r(height - 1.0)) {
                    title { "the window around the failure: " (fmt_time(t0)) " to " (fmt_time(t1)) }
                }
            }
            @for m in &facts.markers {
                @let x = axis.x(m.time_ns);
                // On its node's lane, or across the whole cluster's.
                @let (y0, y1) = match m.node {
                    Some(n) if n <= nodes => ((n - 1) as f64 * LANE_H, n as f64 * LANE_H),
                    _ => (0.0, height),
                };
                line.mark x1=(r(x)) x2=(r(x)) y1=(r(y0)) y2=(r(y1)) {
                    title { (m.label) " at " (fmt_time(m.time_ns)) }
                }
                @if m.node.is_some() {
                    text.marklabel x=(r(x + 2.0)) y=(r(y0 + 9.0)) { (m.label) }
                }
            }
            @if let Some(t) = facts.end_of_workload_ns {
                @let x = axis.x(t);
                line.eow x1=(r(x)) x2=(r(x)) y1="0" y2=(r(height)) {
                    title { "end of workload: clients stop, faults heal, at " (fmt_time(t)) }
                }
            }
        }
    }
}

/// The stretch of `axis` node `n` is a member for: from when it joined (the
/// axis's start for a founding member) to its first removal (else the end).
fn membership_span(facts: &RunFacts, n: u64, axis: &Axis) -> (u64, u64) {
    let from = facts.joined.get(&n).copied().unwrap_or(axis.t0);
    let until = facts
        .removals
        .iter()
        .filter(|m| m.node == n && m.time_ns >= from)
        .map(|m| m.time_ns)
        .min()
        .unwrap_or(axis.t1);
    (from, until)
}

/// Whether `op` may still take effect after its client gave up: a write of
/// unknown outcome. (A read of unknown outcome changes nothing: the checker
/// ignores it.)
fn open_ended(op: &Operation) -> bool {
    matches!(op.outcome, Outcome::Unknown) && !matches!(op.call, Call::Get { .. })
}

/// The last instant `op` is drawn at.
fn reach(op: &Operation, end_ns: u64) -> u64 {
    if open_ended(op) {
        end_ns
    } else {
        op.complete_ns.unwrap_or(end_ns)
    }
}

/// What one bar shows about its operation.
pub struct OpView<'a> {
    /// The operation.
    pub op: &'a Operation,
    /// Its 1-based place in its key's linearization, and the value after it.
    pub position: Option<&'a (usize, State)>,
    /// Why the model rejects it, if it is one of the stuck operations.
    pub stuck_reason: Option<&'a str>,
    /// Whether it belongs to the checker's minimal failing set.
    pub in_minimal_set: bool,
    /// The fail/info text recorded for it.
    pub note: Option<&'a str>,
}

fn short(v: &str) -> String {
    if v.chars().count() > MAX_SHOWN {
        let cut: String = v.chars().take(MAX_SHOWN).collect();
        format!("{cut}…")
    } else {
        v.to_string()
    }
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{:?}", short(v)),
        None => "absent".into(),
    }
}

/// The call, briefly: `put "v"`, `get`, `cas absent→"n"`.
pub fn call_text(call: &Call) -> String {
    match call {
        Call::Get { .. } => "get".into(),
        Call::Put { value, .. } => format!("put {:?}", short(value)),
        Call::Delete { .. } => "delete".into(),
        Call::Cas { expected, new, .. } => {
            format!("cas {}→{:?}", show(expected), short(new))
        }
        Call::Append { value, .. } => format!("append {:?}", short(value)),
        Call::Batch { ops } => format!("batch of {}", ops.len()),
    }
}

/// The outcome, briefly.
pub fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(Ret::Value(v)) => show(v),
        Outcome::Ok(Ret::Done) => "done".into(),
        Outcome::Ok(Ret::Cas(b)) => if *b { "swapped" } else { "no swap" }.into(),
        Outcome::Ok(Ret::Batch(None)) => "all written".into(),
        Outcome::Ok(Ret::Batch(Some(at))) => format!("aborted at {at}"),
        Outcome::Fail => "failed".into(),
        Outcome::Unknown => "unknown".into(),
    }
}

fn op_title(v: &OpView) -> String {
    let op = v.op;
    let mut s = format!(
        "op {} · client {} · key {:?}\n{} → {}\ncall {}, ",
        op.id,
        op.process,
        short(op.call.key()),
        call_text(&op.call),
        outcome_text(&op.outcome),
        fmt_time(op.invoke_ns)
    );
    match op.complete_ns {
        Some(t) => s += &format!("return {} ({})", fmt_time(t), fmt_time(t - op.invoke_ns)),
        None => s += "no return",
    }
    if let Some(note) = v.note {
        s += &format!("\n{}", short(note));
    }
    if let Some((n, state)) = v.position {
        s += &format!(
            "\nplace in the linearization: L{n}; value after: {}",
            show(state)
        );
    }
    if let Some(reason) = v.stuck_reason {
        s += &format!("\nCANNOT BE LINEARIZED: {reason}");
    }
    s
}

/// A bar's labels, longest first: the operation's id (`#id`, the numbering
/// the text uses) always leads; its place in the key's linearization
/// (`L n`) is the second label.
fn op_labels(v: &OpView) -> [String; 3] {
    let op = v.op;
    let body = match (&op.call, &op.outcome) {
        (Call::Get { .. }, Outcome::Ok(_)) => format!("get→{}", outcome_text(&op.outcome)),
        (Call::Cas { .. }, Outcome::Ok(_)) => {
            format!("{} {}", call_text(&op.call), outcome_text(&op.outcome))
        }
        (call, _) => call_text(call),
    };
    let id = format!("#{}", op.id);
    match v.position {
        Some((n, _)) => [format!("{id} {body} · L{n}"), format!("{id} · L{n}"), id],
        None => [format!("{id} {body}"), id.clone(), id],
    }
}

/// One key's client timeline over `axis`: a lane per client, a bar per
/// operation from call to return. Unknown outcomes run open-ended to the
/// axis's end; failed ones are hollow; stuck ones are red. Each bar's tooltip
/// carries the arguments, result, place in the linearization and the value
/// after it.
pub fn client_timeline(views: &[OpView], axis: &Axis, faults: &[Fault], end_ns: u64) -> Markup {
    let visible: Vec<&OpView> = views
        .iter()
        .filter(|v| reach(v.op, end_ns) >= axis.t0 && v.op.invoke_ns <= axis.t1)
        .collect();
    let clients: BTreeSet<u64> = visible.iter().map(|v| v.op.process).collect();
    let lane: BTreeMap<u64, usize> = clients.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let height = clients.len().max(1) as f64 * LANE_H;
    let total_h = height + AXIS_H;
    html! {
        svg.chart width=(r(axis.total_width())) height=(r(total_h))
            viewBox=(format!("0 0 {} {}", r(axis.total_width()), r(total_h)))
            role="img" aria-label="client timeline" {
            (shading(axis, faults, height))
            (axis_markup(axis, height, total_h))
            @for (c, i) in &lane {
                text.lane x="4" y=(r(*i as f64 * LANE_H + 14.0)) { "client " (c) }
            }
            @for v in &visible {
                (bar(v, axis, lane[&v.op.process] as f64 * LANE_H, end_ns))
            }
        }
    }
}

fn bar(v: &OpView, axis: &Axis, y: f64, end_ns: u64) -> Markup {
    let op = v.op;
    // The solid bar runs from call to return (or to when the client gave up);
    // a write of unknown outcome goes on as a thin tail to the end, since it
    // may take effect any time later. The tail stays thin so that the
    // client's later operations in the same lane remain visible.
    let solid_end = op.complete_ns.unwrap_or(end_ns);
    let (x0, x1) = (axis.x(op.invoke_ns), axis.x(solid_end));
    let stuck = v.stuck_reason.is_some();
    let w = (x1 - x0).max(if stuck { 6.0 } else { 2.0 });
    let class = match (&op.outcome, stuck, v.in_minimal_set) {
        (_, true, _) => "op st",
        (Outcome::Ok(_), _, true) => "op ok mn",
        (Outcome::Ok(_), _, false) => "op ok",
        (Outcome::Fail, _, _) => "op fl",
        (Outcome::Unknown, _, true) => "op un mn",
        (Outcome::Unknown, _, false) => "op un",
    };
    let title = op_title(v);
    // The longest label that fits, the op id at least. A bar that cannot
    // be linearized is always labelled, past its end if need be.
    let labels = op_labels(v);
    let label = labels
        .iter()
        .find(|l| w > l.chars().count() as f64 * CHAR_W + 4.0)
        .or(stuck.then_some(&labels[2]))
        .cloned();
    let tail = open_ended(op).then(|| (axis.x(solid_end), axis.x(end_ns)));
    html! {
        @if solid_end >= axis.t0 && op.invoke_ns <= axis.t1 {
            @if stuck {
                // A click on the failing bar lands on the step-through's
                // last row: the prefix it could not follow.
                a href=(format!("#{}", crate::steps::STUCK_ROW)) {
                    rect class=(class) x=(r(x0)) y=(r(y + 2.0)) width=(r(w)) height="16" {
                        title { (title) }
                    }
                }
            } @else {
                rect class=(class) x=(r(x0)) y=(r(y + 2.0)) width=(r(w)) height="16" {
                    title { (title) }
                }
            }
            @if let Some(label) = label {
                text.op x=(r(x0 + 3.0)) y=(r(y + 14.0)) { (label) }
            }
        }
        @if let Some((t0, t1)) = tail {
            @if t1 - t0 > 0.5 {
                rect.tail x=(r(t0)) y=(r(y + 15.0)) width=(r(t1 - t0)) height="3" {
                    title { (title) }
                }
            }
        }
    }
}

/// The value a state shows as, for the explanation.
pub fn state_text(state: &State) -> String {
    show_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_maps_its_ends_to_its_edges_and_clamps() {
        let a = Axis::new(1_000, 2_000, 500.0);
        assert_eq!(a.x(1_000), LABEL_W);
        assert_eq!(a.x(2_000), LABEL_W + 500.0);
        assert_eq!(a.x(0), LABEL_W);
        assert_eq!(a.x(9_999), LABEL_W + 500.0);
    }

    #[test]
    fn ticks_are_round_and_within_the_axis() {
        let a = Axis::new(0, 30_000_000_000, 1100.0);
        let ticks = a.ticks();
        assert!(ticks.len() >= 5 && ticks.len() <= 12, "{ticks:?}");
        assert!(ticks.iter().all(|t| t % 1_000_000_000 == 0));
    }

    #[test]
    fn times_are_shown_in_a_unit_that_fits() {
        assert_eq!(fmt_tick(2_500_000_000), "2.5s");
        assert_eq!(fmt_tick(50_000_000), "50ms");
        assert_eq!(fmt_tick(20_000), "20µs");
        assert_eq!(fmt_tick(7), "7ns");
        assert_eq!(fmt_time(7), "7ns");
        assert_eq!(fmt_time(1_500_000), "1.500ms");
    }

    /// Bars number operations by id, as the text does; the place in the
    /// linearization is a second, distinct label.
    #[test]
    fn bars_lead_with_the_op_id_and_add_the_linearization_place() {
        let op = Operation {
            id: 981,
            process: 3,
            call: Call::Get { key: "k".into() },
            invoke_ns: 0,
            outcome: Outcome::Ok(Ret::Value(Some("v".into()))),
            complete_ns: Some(1_000),
        };
        let position = (12, Some("v".to_string()));
        let view = OpView {
            op: &op,
            position: Some(&position),
            stuck_reason: None,
            in_minimal_set: false,
            note: None,
        };
        assert_eq!(
            op_labels(&view),
            [
                "#981 get→\"v\" · L12".to_string(),
                "#981 · L12".into(),
                "#981".into()
            ]
        );
        let stuck = OpView {
            position: None,
            stuck_reason: Some("reads a stale value"),
            ..view
        };
        // A stuck bar is labelled even when its label is wider than it.
        let axis = Axis::new(0, 1_000_000_000, 500.0);
        let html = bar(&stuck, &axis, 0.0, 1_000_000_000).into_string();
        assert!(html.contains(">#981</text>"), "{html}");
    }

    #[test]
    fn long_values_are_shortened_in_labels() {
        let long = "x".repeat(100);
        let text = call_text(&Call::Put {
            key: "k".into(),
            value: long,
        });
        assert!(text.chars().count() < 50, "{text}");
    }
}
