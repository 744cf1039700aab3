//! Fault families and swarm testing.
//!
//! A family is one kind of trouble the nemesis can make. Swarm testing
//! (Groce et al., "Swarm Testing", ISSTA 2012) turns each family off for
//! about half the seeds: a run with every fault at once rarely exercises
//! what one fault alone would (crashes mask partitions, churn masks slow
//! followers), so the sweep covers many combinations instead of one. Which
//! families a seed drew is printed first and is in the JSON summary.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A set of fault families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Families {
    /// Message loss, duplication and (through latency spread) reordering.
    pub network: bool,
    /// Network partitions of several shapes.
    pub partitions: bool,
    /// Process crashes and restarts (losing unsynced writes).
    pub crashes: bool,
    /// Disk faults (torn writes, power loss in a sync, bit flips, read
    /// errors, a full disk; bit rot and misdirected writes on a minority).
    pub disk: bool,
    /// Membership churn: nodes added, removed, replaced; leadership moved.
    pub churn: bool,
    /// Clock faults: per-node drift and jumps.
    pub clocks: bool,
    /// Process pauses (SIGSTOP, a long GC pause): a node handles nothing
    /// for up to several election timeouts, then gets the missed ticks and
    /// the queued messages at once.
    pub pauses: bool,
    /// One or two disks 10–100× slower than the others, with stalls of up
    /// to a second.
    pub slow_disks: bool,
    /// Heavy-tailed network delay: a small share of messages arrives
    /// seconds late, after elections, restarts and configuration changes.
    pub delays: bool,
    /// Fast restarts: a crashed node is back before one network delay, so
    /// messages sent to its previous incarnation reach the new one.
    pub fast_restarts: bool,
    /// Hold and replay: a partition buffers a share of the messages it
    /// cuts instead of dropping them, and releases each one to 8 seconds
    /// later, after elections, restarts and membership changes (votes and
    /// acknowledgements reach nodes in later terms). Acts only with
    /// partitions.
    pub holds: bool,
}

impl Default for Families {
    fn default() -> Families {
        Families::ALL
    }
}

impl Families {
    /// Every family.
    pub const ALL: Families = Families {
        network: true,
        partitions: true,
        crashes: true,
        disk: true,
        churn: true,
        clocks: true,
        pauses: true,
        slow_disks: true,
        delays: true,
        fast_restarts: true,
        holds: true,
    };

    /// No family: a clean world.
    pub const NONE: Families = Families {
        network: false,
        partitions: false,
        crashes: false,
        disk: false,
        churn: false,
        clocks: false,
        pauses: false,
        slow_disks: false,
        delays: false,
        fast_restarts: false,
        holds: false,
    };

    /// The families in both sets.
    pub fn and(self, other: Families) -> Families {
        Families {
            network: self.network && other.network,
            partitions: self.partitions && other.partitions,
            crashes: self.crashes && other.crashes,
            disk: self.disk && other.disk,
            churn: self.churn && other.churn,
            clocks: self.clocks && other.clocks,
            pauses: self.pauses && other.pauses,
            slow_disks: self.slow_disks && other.slow_disks,
            delays: self.delays && other.delays,
            fast_restarts: self.fast_restarts && other.fast_restarts,
            holds: self.holds && other.holds,
        }
    }

    /// The families as (name, on) pairs, in a fixed order.
    pub fn list(&self) -> [(&'static str, bool); 11] {
        [
            ("network", self.network),
            ("partitions", self.partitions),
            ("crashes", self.crashes),
            ("disk", self.disk),
            ("churn", self.churn),
            ("clocks", self.clocks),
            ("pauses", self.pauses),
            ("slow-disks", self.slow_disks),
            ("delays", self.delays),
            ("fast-restarts", self.fast_restarts),
            ("holds", self.holds),
        ]
    }

    /// The same set with family `name` switched to `on` (false if no such
    /// family).
    pub fn with(mut self, name: &str, on: bool) -> Option<Families> {
        let slot = match name {
            "network" => &mut self.network,
            "partitions" => &mut self.partitions,
            "crashes" => &mut self.crashes,
            "disk" => &mut self.disk,
            "churn" => &mut self.churn,
            "clocks" => &mut self.clocks,
            "pauses" => &mut self.pauses,
            "slow-disks" | "slow_disks" => &mut self.slow_disks,
            "delays" => &mut self.delays,
            "fast-restarts" | "fast_restarts" => &mut self.fast_restarts,
            "holds" => &mut self.holds,
            _ => return None,
        };
        *slot = on;
        Some(self)
    }
}

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<&str> = self
            .list()
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        if on.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", on.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_combine_and_switch_by_name() {
        let some = Families::ALL.with("churn", false).unwrap();
        assert!(!some.churn && some.network);
        assert_eq!(Families::ALL.and(some), some);
        assert_eq!(Families::NONE.to_string(), "none");
        assert_eq!(
            Families::NONE.with("disk", true).unwrap().to_string(),
            "disk"
        );
        assert!(Families::ALL.with("weather", true).is_none());
    }
}
