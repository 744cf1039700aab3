//! Faults at fixed times, on top of (or instead of) the ones the seed draws:
//! the timed events of a scenario ("isolate the leader at 5 s, heal at
//! 8 s"). A scripted fault is part of the run's configuration, so the same
//! seed and script replay the same run.

use serde::{Deserialize, Serialize};

/// One fault at a fixed virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    /// When, in milliseconds of virtual time from the start.
    pub at_ms: u64,
    /// What.
    pub action: Action,
}

/// What a scripted fault does. Nodes are named by id (1-based).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Power loss on one node: the process and its unsynced writes are gone.
    Crash {
        /// The node.
        node: u64,
    },
    /// Power loss on a node that then stays down, even through the heal at
    /// the end of the chaos (a machine that never comes back).
    CrashForGood {
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
    /// Cut these nodes off from the rest (both sides keep talking inside).
    Split {
        /// One side.
        side: Vec<u64>,
    },
    /// Two halves that talk only through one bridge node.
    Bridge,
    /// Each node talks only to its two neighbours, in id order.
    Ring,
    /// The leader can hear but not send (one-way).
    OneWayLeader,
    /// Heal every partition.
    Heal,
    /// A node's clock jumps by `ms` (forwards if positive: its timers fire
    /// early; backwards: it stops ticking for that long).
    ClockJump {
        /// The node.
        node: u64,
        /// How far, in milliseconds.
        ms: i64,
    },
    /// Sets the clock drift of whichever node leads now, in parts per
    /// million (negative: its clock runs slow): the setting in which a
    /// leader's lease outlives its followers' patience.
    LeaderClockDrift {
        /// The drift.
        drift_ppm: i64,
    },
    /// Power loss on one node, and its disk replaced by an empty one: the
    /// node comes back with nothing (no log, no term, no vote) and must
    /// catch up from the leader, by snapshot if the log was compacted.
    /// Safe only while a stable leader holds the cluster (a node that
    /// forgot its vote could vote twice in a term); scenarios use it so.
    Wipe {
        /// The node.
        node: u64,
    },
    /// Pause one node's process (SIGSTOP) for `ms`: it handles nothing, then
    /// gets the missed ticks and queued messages at once.
    Pause {
        /// The node.
        node: u64,
        /// How long.
        ms: u64,
    },
    /// Pause whichever node leads now, for `ms`.
    PauseLeader {
        /// How long.
        ms: u64,
    },
    /// Make whichever node leads now have a slow disk: every write there
    /// takes `factor` times longer, for the rest of the run.
    SlowLeaderDisk {
        /// How many times slower.
        factor: u64,
    },
    /// The operator asks whichever node leads now to remove itself from the
    /// cluster (§4.2.2: it steps down once C_new commits), as churn's
    /// removal plan does, carried on by the churn events that follow.
    RemoveLeader,
}

impl ScriptedFault {
    /// `action` at `at_ms`.
    pub fn at(at_ms: u64, action: Action) -> ScriptedFault {
        ScriptedFault { at_ms, action }
    }

    /// Refuses faults that name a node outside `1..=nodes`.
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        let named: Vec<u64> = match &self.action {
            Action::Crash { node }
            | Action::CrashForGood { node }
            | Action::Restart { node }
            | Action::Isolate { node }
            | Action::ClockJump { node, .. }
            | Action::Wipe { node }
            | Action::Pause { node, .. } => vec![*node],
            Action::Split { side } => side.clone(),
            Action::CrashAll
            | Action::RestartAll
            | Action::IsolateLeader
            | Action::Bridge
            | Action::Ring
            | Action::OneWayLeader
            | Action::LeaderClockDrift { .. }
            | Action::PauseLeader { .. }
            | Action::SlowLeaderDisk { .. }
            | Action::RemoveLeader
            | Action::Heal => Vec::new(),
        };
        if let Some(node) = named.iter().find(|&&n| n == 0 || n > nodes as u64) {
            return Err(format!(
                "a scripted fault at {}ms names n{node}, but the cluster has n1..=n{nodes}",
                self.at_ms
            ));
        }
        if let Action::LeaderClockDrift { drift_ppm } = self.action
            && drift_ppm.abs() >= crate::config::MAX_DRIFT_PPM
        {
            return Err(format!("a clock drift of {drift_ppm} ppm is out of range"));
        }
        if let Action::ClockJump { ms, .. } = self.action
            && ms.unsigned_abs() > 60_000
        {
            return Err(format!(
                "a clock jump of {ms}ms at {}ms is beyond a minute",
                self.at_ms
            ));
        }
        if let Action::Pause { ms, .. } | Action::PauseLeader { ms } = self.action
            && ms > 60_000
        {
            return Err(format!(
                "a pause of {ms}ms at {}ms is beyond a minute",
                self.at_ms
            ));
        }
        if let Action::SlowLeaderDisk { factor } = self.action
            && !(1..=10_000).contains(&factor)
        {
            return Err(format!(
                "a slow-disk factor of {factor} is outside 1..=10000"
            ));
        }
        Ok(())
    }
}
