//! What a run is asked to do ([`SimConfig`]) and what it drew from its seed
//! ([`Params`]).

use crate::disk::DiskFaultMode;
use crate::queue::{MS, Nanos};
use crate::rng::{Concern, SimRng};
use crate::script::ScriptedFault;
use serde::Serialize;

/// The smallest cluster the simulator runs.
pub const MIN_NODES: usize = 3;
/// The largest cluster the simulator runs.
pub const MAX_NODES: usize = 7;
/// The most client processes a run may have.
pub const MAX_CLIENTS: usize = 256;
/// The longest workload a run may have (a bound on memory and time).
pub const MAX_DURATION: Nanos = 3_600_000 * MS;

/// What the user asks for. Everything not here is drawn from the seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimConfig {
    /// The root seed: the whole run is a function of it and of this config.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Concurrent client processes.
    pub clients: usize,
    /// How long clients issue new operations (virtual time).
    pub duration: Nanos,
    /// Whether the nemesis injects faults (network faults, partitions, crashes).
    pub faults: bool,
    /// How hostile the disks are, when `faults` is on.
    pub disk_faults: DiskFaultMode,
    /// When replicas snapshot and compact their logs.
    pub snapshots: Snapshots,
    /// Faults at fixed times, besides those drawn from the seed.
    pub script: Vec<ScriptedFault>,
    /// Whether the nemesis changes the cluster's membership (adds, removes
    /// and replaces nodes, the leader too, and transfers leadership), when
    /// `faults` is on.
    pub churn: bool,
}

/// Spare node slots a run with churn keeps for nodes it adds (ids after the
/// founding members').
pub const SPARE_NODES: usize = 4;

/// When replicas snapshot their state machines and compact their logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshots {
    /// Thresholds drawn from the seed, often small, so that most runs both
    /// take snapshots and send them to lagging followers.
    #[default]
    Drawn,
    /// Never: logs only grow.
    Off,
    /// A snapshot every `every` applied entries, `keep` entries kept after it.
    Fixed {
        /// Applied entries between snapshots.
        every: u64,
        /// Entries kept in the log after a snapshot.
        keep: u64,
    },
}

impl std::str::FromStr for Snapshots {
    type Err = String;

    /// `drawn`, `off`, or `EVERY:KEEP` (e.g. `100:20`).
    fn from_str(s: &str) -> Result<Snapshots, String> {
        match s {
            "drawn" => Ok(Snapshots::Drawn),
            "off" => Ok(Snapshots::Off),
            _ => {
                let bad = || format!("expected drawn, off or EVERY:KEEP (like 100:20), got {s:?}");
                let (every, keep) = s.split_once(':').ok_or_else(bad)?;
                let every: u64 = every.parse().map_err(|_| bad())?;
                let keep: u64 = keep.parse().map_err(|_| bad())?;
                if every == 0 {
                    return Err("EVERY must be positive (use off for no snapshots)".into());
                }
                Ok(Snapshots::Fixed { every, keep })
            }
        }
    }
}

impl SimConfig {
    /// The defaults of `cargo xtask simulate` for `seed`.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 5,
            clients: 10,
            duration: 30_000 * MS,
            faults: true,
            disk_faults: DiskFaultMode::default(),
            snapshots: Snapshots::default(),
            script: Vec::new(),
            churn: true,
        }
    }

    /// Whether membership churn is on: `churn`, when `faults` is.
    pub fn effective_churn(&self) -> bool {
        self.churn && self.faults
    }

    /// Node slots: the founding members, and spares for nodes churn adds.
    pub fn slots(&self) -> usize {
        self.nodes
            + if self.effective_churn() {
                SPARE_NODES
            } else {
                0
            }
    }

    /// The disk fault mode in force: `disk_faults`, or none at all when
    /// `faults` is off (a disk fault can crash a node, and a run without
    /// faults is a clean world).
    pub fn effective_disk_faults(&self) -> DiskFaultMode {
        if self.faults {
            self.disk_faults
        } else {
            DiskFaultMode::Off
        }
    }

    /// Refuses configurations the simulator cannot run.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_NODES..=MAX_NODES).contains(&self.nodes) {
            return Err(format!(
                "--nodes must be {MIN_NODES} to {MAX_NODES}, got {}",
                self.nodes
            ));
        }
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(format!(
                "--clients must be 1 to {MAX_CLIENTS}, got {}",
                self.clients
            ));
        }
        for fault in &self.script {
            fault.validate(self.nodes)?;
        }
        if self.duration == 0 || self.duration > MAX_DURATION {
            return Err(format!(
                "--duration must be positive and at most {}s",
                MAX_DURATION / (1000 * MS)
            ));
        }
        Ok(())
    }
}

/// Parameters drawn from the seed: how hostile this run's world is. Printed
/// before the run and included in the JSON summary, so a reader of a failure
/// knows what the world was like.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    /// Virtual time between two ticks of a node's raft clock.
    pub tick_ms: u64,
    /// Raft's minimum election timeout, in ticks.
    pub election_ticks: u32,
    /// Raft's heartbeat interval, in ticks.
    pub heartbeat_ticks: u32,
    /// Shortest one-way message latency.
    pub latency_min_us: u64,
    /// Longest one-way message latency (wide ranges reorder messages).
    pub latency_max_us: u64,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Probability that a message is delivered twice.
    pub duplicate_rate: f64,
    /// Mean virtual time between two partitions (0: no partitions).
    pub partition_every_ms: u64,
    /// How long a partition lasts, at most.
    pub partition_max_ms: u64,
    /// Mean virtual time between two crashes (0: no crashes).
    pub crash_every_ms: u64,
    /// How long a crashed node stays down, at most.
    pub downtime_max_ms: u64,
    /// How many keys clients use.
    pub keys: usize,
    /// How long a client waits for a reply before trying another node.
    pub request_timeout_ms: u64,
    /// How long a client keeps retrying one operation before it gives up.
    pub op_deadline_ms: u64,
    /// The longest pause between a client's operations.
    pub think_max_ms: u64,
    /// Replicas take a snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Entries a replica keeps in its log after a snapshot.
    pub snapshot_keep: u64,
    /// Mean virtual time between two membership steps (0: no churn).
    pub churn_every_ms: u64,
}

impl Params {
    /// The replicas' snapshot policy.
    pub fn snapshot_policy(&self) -> replica::SnapshotPolicy {
        replica::SnapshotPolicy {
            every: self.snapshot_every,
            keep: self.snapshot_keep,
        }
    }
}

/// Snapshot intervals a seed draws from: mostly small, so that runs of a
/// few thousand operations compact many times and lagging followers need
/// InstallSnapshot, sometimes the size a real node would use.
const SNAPSHOT_EVERY_CHOICES: [u64; 8] = [3, 5, 8, 16, 32, 64, 128, 1024];
/// Entries kept after a snapshot, drawn the same way (0: a follower one
/// entry behind already needs the snapshot).
const SNAPSHOT_KEEP_CHOICES: [u64; 5] = [0, 1, 4, 16, 64];

impl Params {
    /// Draws the parameters for `config`'s seed.
    pub fn draw(config: &SimConfig) -> Params {
        let mut rng = SimRng::for_concern(config.seed, Concern::Params);
        let latency_min_us = rng.range(100, 2_000);
        let latency_max_us = latency_min_us + rng.range(500, 15_000);
        let faults = config.faults;
        let mut params = Params {
            tick_ms: 10,
            election_ticks: 15,
            heartbeat_ticks: 3,
            latency_min_us,
            latency_max_us,
            drop_rate: if faults {
                rng.range(0, 50) as f64 / 1000.0
            } else {
                0.0
            },
            duplicate_rate: if faults {
                rng.range(0, 30) as f64 / 1000.0
            } else {
                0.0
            },
            partition_every_ms: if faults { rng.range(1_000, 6_000) } else { 0 },
            partition_max_ms: rng.range(500, 4_000),
            crash_every_ms: if faults { rng.range(1_000, 8_000) } else { 0 },
            downtime_max_ms: rng.range(100, 3_000),
            keys: rng.range(3, 8) as usize,
            // Timeouts shorter than an election make clients hop between
            // nodes mid-election; short deadlines leave outcomes unknown.
            // Both stress exactly-once sessions and the checker.
            request_timeout_ms: rng.range(50, 600),
            op_deadline_ms: rng.range(1_000, 5_000),
            think_max_ms: rng.range(0, 40),
            // Drawn last, so that adding them left the other draws as
            // they were.
            snapshot_every: SNAPSHOT_EVERY_CHOICES
                [rng.range(0, SNAPSHOT_EVERY_CHOICES.len() as u64) as usize],
            snapshot_keep: SNAPSHOT_KEEP_CHOICES
                [rng.range(0, SNAPSHOT_KEEP_CHOICES.len() as u64) as usize],
            churn_every_ms: rng.range(800, 4_000),
        };
        if !config.effective_churn() {
            params.churn_every_ms = 0;
        }
        match config.snapshots {
            Snapshots::Drawn => {}
            Snapshots::Off => (params.snapshot_every, params.snapshot_keep) = (0, 0),
            Snapshots::Fixed { every, keep } => {
                (params.snapshot_every, params.snapshot_keep) = (every, keep)
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_a_function_of_the_seed() {
        let a = Params::draw(&SimConfig::new(11));
        let b = Params::draw(&SimConfig::new(11));
        let c = Params::draw(&SimConfig::new(12));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn no_faults_means_a_clean_network() {
        let config = SimConfig {
            faults: false,
            ..SimConfig::new(3)
        };
        let p = Params::draw(&config);
        assert_eq!((p.drop_rate, p.duplicate_rate), (0.0, 0.0));
        assert_eq!((p.partition_every_ms, p.crash_every_ms), (0, 0));
    }

    #[test]
    fn snapshot_settings_parse_and_override_the_draw() {
        assert_eq!("drawn".parse(), Ok(Snapshots::Drawn));
        assert_eq!("off".parse(), Ok(Snapshots::Off));
        assert_eq!("10:2".parse(), Ok(Snapshots::Fixed { every: 10, keep: 2 }));
        for bad in ["", "10", "0:1", "a:b", "10:-1"] {
            assert!(bad.parse::<Snapshots>().is_err(), "{bad}");
        }
        let off = Params::draw(&SimConfig {
            snapshots: Snapshots::Off,
            ..SimConfig::new(5)
        });
        assert_eq!(off.snapshot_every, 0);
        let drawn: Vec<u64> = (0..64)
            .map(|seed| Params::draw(&SimConfig::new(seed)).snapshot_every)
            .collect();
        assert!(drawn.iter().all(|&e| e > 0));
        assert!(
            drawn.iter().filter(|&&e| e <= 64).count() > 32,
            "mostly small: {drawn:?}"
        );
    }

    #[test]
    fn validate_refuses_out_of_range_sizes() {
        assert!(
            SimConfig {
                nodes: 2,
                ..SimConfig::new(1)
            }
            .validate()
            .is_err()
        );
        assert!(
            SimConfig {
                nodes: 8,
                ..SimConfig::new(1)
            }
            .validate()
            .is_err()
        );
        assert!(
            SimConfig {
                clients: 0,
                ..SimConfig::new(1)
            }
            .validate()
            .is_err()
        );
        assert!(SimConfig::new(1).validate().is_ok());
    }
}
