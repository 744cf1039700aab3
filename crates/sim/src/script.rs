//! Faults at fixed times, on top of (or instead of) the ones the seed draws:
//! the timed events of a scenario ("crash every node at 5 s, restart them at
//! 6 s"). A scripted fault is part of the run's configuration, so the same
//! seed and script replay the same run.

use serde::Serialize;

/// One fault at a fixed virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScriptedFault {
    /// When, in milliseconds of virtual time from the start.
    pub at_ms: u64,
    /// What.
    pub action: Action,
}

/// What a scripted fault does. Nodes are named by id (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Power loss on one node: the process and its unsynced writes are gone.
    Crash {
        /// The node.
        node: u64,
    },
    /// Restart a node that is down.
    Restart {
        /// The node.
        node: u64,
    },
    /// Power loss on every node at once.
    CrashAll,
    /// Restart every node that is down.
    RestartAll,
    /// Cut one node off from every other.
    Isolate {
        /// The node.
        node: u64,
    },
    /// Cut the current leader off from every other node.
    IsolateLeader,
    /// Heal every partition.
    Heal,
    /// Power loss on one node, and its disk replaced by an empty one: the
    /// node comes back with nothing (no log, no term, no vote) and must
    /// catch up from the leader, by snapshot if the log was compacted.
    /// Safe only while a stable leader holds the cluster (a node that
    /// forgot its vote could vote twice in a term); scenarios use it so.
    Wipe {
        /// The node.
        node: u64,
    },
}

impl ScriptedFault {
    /// `action` at `at_ms`.
    pub fn at(at_ms: u64, action: Action) -> ScriptedFault {
        ScriptedFault { at_ms, action }
    }

    /// Refuses faults that name a node outside `1..=nodes`.
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        let node = match self.action {
            Action::Crash { node }
            | Action::Restart { node }
            | Action::Isolate { node }
            | Action::Wipe { node } => node,
            Action::CrashAll | Action::RestartAll | Action::IsolateLeader | Action::Heal => {
                return Ok(());
            }
        };
        if node == 0 || node > nodes as u64 {
            return Err(format!(
                "a scripted fault at {}ms names n{node}, but the cluster has n1..=n{nodes}",
                self.at_ms
            ));
        }
        Ok(())
    }
}
