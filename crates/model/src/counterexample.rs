//! Counterexamples as files: what the checker found, replayable as a
//! regression test.

use crate::world::{Action, Bounds, RaftModel, State, decode, encode};
use replica::Envelope;
use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model};

/// A path from the initial state to a state violating `property`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The property violated at the end of the path.
    pub property: String,
    /// The scope it was found in (the planted bug, if any, included).
    pub bounds: Bounds,
    /// The steps, as the model replays them (messages as envelopes, not
    /// the network's encoding, so that a file outlives a change of it).
    #[serde(with = "steps")]
    pub actions: Vec<Action>,
    /// The same steps, readable (not read back).
    pub trace: Vec<String>,
}

impl Counterexample {
    /// The counterexample `actions` makes, with a readable trace.
    pub fn new(property: &str, bounds: Bounds, actions: Vec<Action>) -> Counterexample {
        let model = RaftModel::new(bounds.clone());
        let trace = actions.iter().map(|a| model.format_action(a)).collect();
        Counterexample {
            property: property.to_string(),
            bounds,
            actions,
            trace,
        }
    }

    /// As pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a counterexample encodes")
    }

    /// Parses one written by [`Counterexample::to_json`].
    pub fn from_json(text: &str) -> Result<Counterexample, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// Replays `actions` from the initial state, refusing a step the model does
/// not offer there; returns the states visited (the initial one first) and
/// the safety properties each violates.
pub fn replay(
    model: &RaftModel,
    actions: &[Action],
) -> Result<Vec<(State, Vec<&'static str>)>, String> {
    let mut state = model
        .init_states()
        .into_iter()
        .next()
        .expect("one initial state");
    let mut visited = vec![(state.clone(), violated(model, &state))];
    for (n, action) in actions.iter().enumerate() {
        let mut offered = Vec::new();
        model.actions(&state, &mut offered);
        if !offered.contains(action) {
            return Err(format!(
                "step {}: `{}` is not possible here",
                n + 1,
                model.format_action(action)
            ));
        }
        state = model
            .next_state(&state, action.clone())
            .ok_or_else(|| format!("step {}: no next state", n + 1))?;
        visited.push((state.clone(), violated(model, &state)));
    }
    Ok(visited)
}

/// The safety (`always`) properties `state` violates.
pub fn violated(model: &RaftModel, state: &State) -> Vec<&'static str> {
    model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always && !(p.condition)(model, state))
        .map(|p| p.name)
        .collect()
}

/// [`Action`] as a file holds it: messages as envelopes.
#[derive(Serialize, Deserialize)]
enum Step {
    Tick(usize),
    Timeout(usize),
    Deliver(Envelope),
    Duplicate(Envelope),
    Drop(Envelope),
    WriteDone(usize),
    Crash(usize),
    Restart(usize),
    Send { client: usize, node: usize },
}

mod steps {
    use super::{Action, Step, decode, encode};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(actions: &[Action], s: S) -> Result<S::Ok, S::Error> {
        let steps: Vec<Step> = actions
            .iter()
            .map(|a| match a {
                Action::Tick(i) => Step::Tick(*i),
                Action::Timeout(i) => Step::Timeout(*i),
                Action::Deliver(b) => Step::Deliver(decode(b)),
                Action::Duplicate(b) => Step::Duplicate(decode(b)),
                Action::Drop(b) => Step::Drop(decode(b)),
                Action::WriteDone(i) => Step::WriteDone(*i),
                Action::Crash(i) => Step::Crash(*i),
                Action::Restart(i) => Step::Restart(*i),
                Action::Send { client, node } => Step::Send {
                    client: *client,
                    node: *node,
                },
            })
            .collect();
        steps.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Action>, D::Error> {
        let steps = Vec::<Step>::deserialize(d)?;
        Ok(steps
            .into_iter()
            .map(|step| match step {
                Step::Tick(i) => Action::Tick(i),
                Step::Timeout(i) => Action::Timeout(i),
                Step::Deliver(e) => Action::Deliver(encode(&e)),
                Step::Duplicate(e) => Action::Duplicate(encode(&e)),
                Step::Drop(e) => Action::Drop(encode(&e)),
                Step::WriteDone(i) => Action::WriteDone(i),
                Step::Crash(i) => Action::Crash(i),
                Step::Restart(i) => Action::Restart(i),
                Step::Send { client, node } => Action::Send { client, node },
            })
            .collect())
    }
}
