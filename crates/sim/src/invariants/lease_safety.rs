//! Lease safety (dissertation §6.4.1): a leader answers a read from its
//! lease only while no other leader can have been elected, so no lease read
//! is confirmed after a leader of a higher term has committed an entry.
//! That holds only within the clock drift bound (no voter's clock more than
//! `election_tick / lease_read_ticks` faster than the leader's, no clock
//! jumps); beyond it, stale lease reads are expected (scenario
//! clock-skew-lease-violation) and this check stands aside.

use super::{Invariants, ViolationKind};
use crate::queue::Nanos;
use raft::{LogIndex, Term};

impl Invariants {
    /// The leader `node` of `term` confirmed a lease read at `index`.
    /// `within_drift_bound`: the run's clocks are within the bound the lease
    /// assumes, now and since the run began.
    pub fn lease_read(
        &mut self,
        at: Nanos,
        node: u64,
        term: Term,
        index: LogIndex,
        within_drift_bound: bool,
    ) {
        self.lease_reads += 1;
        if within_drift_bound && self.highest_commit_term > term {
            self.violate(
                ViolationKind::LeaseSafety,
                at,
                node,
                format!(
                    "served a lease read at {index} as leader of {term} after a leader of {} had committed",
                    self.highest_commit_term
                ),
            );
        }
    }

    /// Lease reads confirmed so far (checked or not).
    pub fn lease_reads(&self) -> u64 {
        self.lease_reads
    }
}
