//! The run's timeline: the few events a reader of a report wants to see on a
//! time axis (faults, their healing, leadership), kept structured so that a
//! report can draw them without parsing the trace.

use crate::queue::Nanos;
use serde::Serialize;

/// One event on the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// A node's process died (power loss: unsynced writes gone).
    Crashed {
        /// The node (1-based id).
        node: u64,
    },
    /// A node's process started again from its disk.
    Restarted {
        /// The node (1-based id).
        node: u64,
    },
    /// A replica stopped itself on an internal error.
    Halted {
        /// The node (1-based id).
        node: u64,
        /// Why.
        reason: String,
    },
    /// A node that was not part of the run started, to join the cluster
    /// (churn adding a member): it exists on the timeline only from here.
    Joined {
        /// The node (1-based id).
        node: u64,
    },
    /// A node was removed from the cluster's configuration and stopped for
    /// good: a membership change, not a failure.
    Removed {
        /// The node (1-based id).
        node: u64,
        /// Why, e.g. "removed from the cluster".
        reason: String,
    },
    /// A partition took effect (replacing any other).
    Partitioned {
        /// What it looks like.
        shape: String,
        /// Every cut directed link, as (from, to) node ids.
        cut: Vec<(u64, u64)>,
    },
    /// The network healed.
    Healed,
    /// A node became leader.
    Leader {
        /// The node (1-based id).
        node: u64,
        /// Its term.
        term: u64,
    },
    /// A leader stopped leading.
    SteppedDown {
        /// The node (1-based id).
        node: u64,
        /// The term it had led.
        term: u64,
    },
    /// A node's process was paused (SIGSTOP, a long GC pause).
    Paused {
        /// The node (1-based id).
        node: u64,
        /// When it runs again (virtual time).
        until_ns: Nanos,
    },
    /// A paused process runs again, and handles what waited.
    Resumed {
        /// The node (1-based id).
        node: u64,
    },
    /// Clients stopped issuing new operations; faults healed.
    EndOfWorkload,
    /// A node's clock drift changed (a scripted fault), in parts per
    /// million (positive: fast).
    ClockDrift {
        /// The node (1-based id).
        node: u64,
        /// Its drift from now on.
        ppm: i64,
    },
    /// A node's clock jumped (forwards if positive).
    ClockJumped {
        /// The node (1-based id).
        node: u64,
        /// The jump in milliseconds.
        ms: i64,
    },
    /// A configuration entry was committed (the first node to apply it).
    Membership {
        /// The configuration, e.g. `voters {1,2,3} learners {4}`.
        config: String,
    },
    /// A scripted fault fired (what the scenario file asked for).
    Scripted {
        /// The action, as the scenario names it.
        action: String,
    },
}

/// A timeline event at a virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timed {
    /// Virtual time.
    pub time_ns: Nanos,
    /// What happened.
    #[serde(flatten)]
    pub event: TimelineEvent,
}
