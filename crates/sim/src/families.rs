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
    };

    /// No family: a clean world.
    pub const NONE: Families = Families {
        network: false,
        partitions: false,
        crashes: false,
        disk: false,
        churn: false,
        clocks: false,
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
        }
    }

    /// The families as (name, on) pairs, in a fixed order.
    pub fn list(&self) -> [(&'static str, bool); 6] {
        [
            ("network", self.network),
            ("partitions", self.partitions),
            ("crashes", self.crashes),
            ("disk", self.disk),
            ("churn", self.churn),
            ("clocks", self.clocks),
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
