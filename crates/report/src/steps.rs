//! The step-through of a failing key's longest linearizable prefix, as
//! Porcupine's visualizer gives it: the operations in linearization order,
//! each with the key's value after it, ending at the operation that cannot
//! be placed.
//!
//! A table, so it reads without script (the page has none). Stepping is by
//! fragment links: each step is a row with an id (`step-N`, N its place in
//! the linearization) and links to the previous and next row; the row a
//! link lands on is highlighted by the CSS `:target` rule, so "next, next,
//! next" walks the prefix in any browser, and the address bar names the
//! step.

use crate::facts::{self, Explanation, State};
use crate::svg;
use check::{OpId, Operation};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// Most prefix steps the table lists: the last ones before the failure,
/// which are the ones that explain it. The rest are summarised in one row
/// (with the value they leave); the history file has them all. 200 rows are
/// about 60 kB.
pub const MAX_LISTED_STEPS: usize = 200;

/// Longest value a cell shows in full; longer ones (appends grow) show
/// their end, where the latest writes are, and their length.
const MAX_STATE_CHARS: usize = 48;

/// One placed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Its place in the linearization (1-based), the second label.
    pub position: usize,
    /// The operation's id, the numbering the rest of the report uses.
    pub op: OpId,
    /// Its client.
    pub process: u64,
    /// The call, briefly.
    pub call: String,
    /// What the client saw.
    pub result: String,
    /// The key's value after it.
    pub state: State,
}

/// An operation that cannot be placed after the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// The operation's id.
    pub op: OpId,
    /// Its client.
    pub process: u64,
    /// The call, briefly.
    pub call: String,
    /// What the client saw.
    pub result: String,
    /// Why the model rejects it there.
    pub reason: String,
}

/// What the step-through shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepThrough {
    /// The failing key.
    pub key: String,
    /// Steps of the prefix not listed (the first ones), 0 if all are.
    pub omitted: usize,
    /// The value before the first listed step (after the omitted ones).
    pub start: State,
    /// The listed steps, in linearization order.
    pub steps: Vec<Step>,
    /// The operations that cannot come next, in the explanation's order.
    pub stuck: Vec<Stuck>,
}

/// The step-through of `e` over the failing key's operations (`ops` by id):
/// the prefix replayed on the report's model of a key, step by step.
pub fn step_through(e: &Explanation, ops: &BTreeMap<OpId, &Operation>) -> StepThrough {
    let omitted = e.prefix.len().saturating_sub(MAX_LISTED_STEPS);
    let mut state: State = None;
    let mut start = None;
    let mut steps = Vec::new();
    for (i, id) in e.prefix.iter().enumerate() {
        if i == omitted {
            start = Some(state.clone());
        }
        let Some(op) = ops.get(id) else { continue };
        facts::apply(&mut state, op);
        if i >= omitted {
            steps.push(Step {
                position: i + 1,
                op: *id,
                process: op.process,
                call: svg::call_text(&op.call),
                result: svg::outcome_text(&op.outcome),
                state: state.clone(),
            });
        }
    }
    let stuck = e
        .stuck
        .iter()
        .filter_map(|id| ops.get(id).map(|op| (*id, op)))
        .map(|(id, op)| Stuck {
            op: id,
            process: op.process,
            call: svg::call_text(&op.call),
            result: svg::outcome_text(&op.outcome),
            reason: e
                .reasons
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "rejected by the model".into()),
        })
        .collect();
    StepThrough {
        key: e.key.clone(),
        omitted,
        start: start.unwrap_or(state),
        steps,
        stuck,
    }
}

/// A value for a table cell: whole if short, else its end and its length.
pub fn state_cell(state: &State) -> String {
    match state {
        Some(v) if v.chars().count() > MAX_STATE_CHARS => {
            let n = v.chars().count();
            let tail: String = v.chars().skip(n - (MAX_STATE_CHARS - 8)).collect();
            format!("\"…{tail}\" ({n} chars)")
        }
        _ => facts::show_state(state),
    }
}

/// The row id of step `position` (`step-stuck` for the failure).
pub fn row_id(position: usize) -> String {
    format!("step-{position}")
}

/// The id of the row of the operations that cannot be placed.
pub const STUCK_ROW: &str = "step-stuck";

/// The step-through as a table with previous/next links.
pub fn render(st: &StepThrough) -> Markup {
    let first = st.steps.first().map(|s| row_id(s.position));
    let total = st.omitted + st.steps.len();
    html! {
        details.steps open {
            summary {
                "Step through the longest linearizable prefix of key "
                code { (format!("{:?}", st.key)) } " (" (total) " steps), to the operation that cannot be placed"
            }
            p.muted {
                "Each row places one operation, in linearization order (#id: the operation, as the text numbers it; "
                "Ln: its place in the linearization), with the key's value after it, as the checker's model replays it. "
                "Follow ▸ to step forward (the current step is highlighted), or "
                @if let Some(f) = &first { a href=(format!("#{f}")) { "start at the first listed step" } ", or " }
                a href=(format!("#{STUCK_ROW}")) { "jump to the failure" } "."
            }
            table.steps #steps {
                thead {
                    tr { th { "step" } th { "op" } th { "place" } th { "client" } th { "call" } th { "result" } th { "value after" } }
                }
                tbody {
                    tr.start {
                        td {}
                        td colspan="5" {
                            @if st.omitted == 0 {
                                "start: before any operation"
                            } @else {
                                "L1–L" (st.omitted) ": " (st.omitted)
                                " earlier steps not listed (the history file has them all)"
                            }
                        }
                        td.state { (state_cell(&st.start)) }
                    }
                    @for (i, s) in st.steps.iter().enumerate() {
                        @let next = if i + 1 < st.steps.len() { row_id(s.position + 1) } else { STUCK_ROW.to_string() };
                        tr id=(row_id(s.position)) {
                            td.nav {
                                @if i > 0 { a href=(format!("#{}", row_id(s.position - 1))) title="previous step" { "◂" } " " }
                                a href=(format!("#{next}")) title="next step" { "▸" }
                            }
                            td.op { "#" (s.op) }
                            td { "L" (s.position) }
                            td { (s.process) }
                            td { code { (s.call) } }
                            td { code { (s.result) } }
                            td.state { code { (state_cell(&s.state)) } }
                        }
                    }
                    @for (i, s) in st.stuck.iter().enumerate() {
                        tr.stuck id=[(i == 0).then_some(STUCK_ROW)] {
                            td.nav {
                                @if let Some(last) = st.steps.last() {
                                    a href=(format!("#{}", row_id(last.position))) title="previous step" { "◂" }
                                }
                            }
                            td.op { "#" (s.op) }
                            td { "—" }
                            td { (s.process) }
                            td { code { (s.call) } }
                            td { code { (s.result) } }
                            td.state { "cannot be placed: " (s.reason) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use check::{Call, Outcome, Ret};

    fn op(id: OpId, call: Call, outcome: Outcome) -> Operation {
        Operation {
            id,
            process: id,
            call,
            outcome,
            invoke_ns: id * 10,
            complete_ns: Some(id * 10 + 5),
        }
    }

    fn put(id: OpId, v: &str) -> Operation {
        op(
            id,
            Call::Put {
                key: "k".into(),
                value: v.into(),
            },
            Outcome::Ok(Ret::Done),
        )
    }

    fn explanation(prefix: Vec<OpId>, stuck: Vec<OpId>) -> Explanation {
        Explanation {
            key: "k".into(),
            prefix,
            stuck,
            state_after_prefix: None,
            reasons: BTreeMap::from([(9, "get returned \"a\"".to_string())]),
            minimal_set: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn each_step_carries_the_value_after_it_and_the_stuck_op_ends_it() {
        let ops = [
            put(1, "a"),
            op(
                2,
                Call::Append {
                    key: "k".into(),
                    value: "b".into(),
                },
                Outcome::Ok(Ret::Done),
            ),
            op(3, Call::Delete { key: "k".into() }, Outcome::Unknown),
            op(
                9,
                Call::Get { key: "k".into() },
                Outcome::Ok(Ret::Value(Some("a".into()))),
            ),
        ];
        let by_id: BTreeMap<OpId, &Operation> = ops.iter().map(|o| (o.id, o)).collect();
        let st = step_through(&explanation(vec![1, 2, 3], vec![9]), &by_id);
        let states: Vec<(OpId, usize, State)> = st
            .steps
            .iter()
            .map(|s| (s.op, s.position, s.state.clone()))
            .collect();
        assert_eq!(
            states,
            vec![
                (1, 1, Some("a".into())),
                (2, 2, Some("ab".into())),
                (3, 3, None)
            ]
        );
        assert_eq!((st.omitted, st.start.clone()), (0, None));
        assert_eq!(st.stuck.len(), 1);
        assert_eq!(st.stuck[0].reason, "get returned \"a\"");
        let html = render(&st).into_string();
        assert!(html.contains(r##"<tr id="step-3">"##), "{html}");
        assert!(html.contains(r##"href="#step-stuck""##), "{html}");
        assert!(
            html.contains(r#"<tr class="stuck" id="step-stuck">"#),
            "{html}"
        );
    }

    #[test]
    fn a_long_prefix_lists_its_last_steps_and_the_value_before_them() {
        let ops: Vec<Operation> = (1..=(MAX_LISTED_STEPS as u64 + 5))
            .map(|i| put(i, &format!("v{i}")))
            .collect();
        let by_id: BTreeMap<OpId, &Operation> = ops.iter().map(|o| (o.id, o)).collect();
        let prefix: Vec<OpId> = ops.iter().map(|o| o.id).collect();
        let st = step_through(&explanation(prefix, Vec::new()), &by_id);
        assert_eq!(st.omitted, 5);
        assert_eq!(st.start, Some("v5".into()));
        assert_eq!(st.steps.len(), MAX_LISTED_STEPS);
        assert_eq!(st.steps[0].position, 6);
        let html = render(&st).into_string();
        assert!(html.contains("L1–L5: 5 earlier steps not listed"), "{html}");
    }

    #[test]
    fn a_long_value_shows_its_end_and_its_length() {
        let v: String = (0..100)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let cell = state_cell(&Some(v.clone()));
        assert!(cell.ends_with("(100 chars)"), "{cell}");
        assert!(cell.contains(&v[60..]), "{cell}");
        assert_eq!(state_cell(&Some("x".into())), "\"x\"");
        assert_eq!(state_cell(&None), "absent");
    }
}
