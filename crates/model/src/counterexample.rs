//! Counterexamples as files: what the checker found, replayable as a
//! regression test.

use crate::world::{Action, Bounds, RaftModel, State};
use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model};

/// A path from the initial state to a state violating `property`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The property violated at the end of the path.
    pub property: String,
    /// The scope it was found in (the planted bug, if any, included).
    pub bounds: Bounds,
    /// The steps, as the model replays them.
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
