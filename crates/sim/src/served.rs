//! Who answered each client operation, in what state, and by what path: the
//! server side of the history, which only a simulator knows whole. Reports
//! name the node that served a failing operation with this, instead of
//! listing every node that led while it ran.

use serde::Serialize;

/// How a replica answered one operation (the attempt whose answer the
/// client recorded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Served {
    /// The node that answered (1-based id).
    pub node: u64,
    /// Its role when it answered: `leader`, `follower`, ...
    pub role: &'static str,
    /// Its term.
    pub term: u64,
    /// Its commit index.
    pub commit: u64,
    /// Its applied index (what a read saw).
    pub applied: u64,
    /// The path the answer took.
    pub how: ServedHow,
    /// Its clock's drift when it answered, in parts per million (positive:
    /// fast).
    pub clock_drift_ppm: i64,
    /// The fastest drift among the other live nodes then: what a lease
    /// must outlast (§6.4.1).
    pub fastest_other_ppm: i64,
}

impl Served {
    /// How many times faster than this node's clock the fastest other
    /// node's clock ran when it answered.
    pub fn clock_ratio(&self) -> f64 {
        (1e6 + self.fastest_other_ppm as f64) / (1e6 + self.clock_drift_ppm as f64).max(1.0)
    }
}

/// The path an answer took through the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServedHow {
    /// A read answered in the step its request arrived: no quorum round,
    /// so under the leader's lease (§6.4.1), or by a single voter.
    AtOnce,
    /// A read answered after a ReadIndex quorum round (§6.4).
    ReadIndexRound,
    /// A write, answered once its entry was committed and applied.
    Log,
}

impl ServedHow {
    /// The path in words.
    pub fn describe(self) -> &'static str {
        match self {
            ServedHow::AtOnce => "at once, with no quorum round (a lease read, §6.4.1)",
            ServedHow::ReadIndexRound => "after a ReadIndex quorum round (§6.4)",
            ServedHow::Log => "through the log (committed, then applied)",
        }
    }
}
