//! Scenarios: a run described in TOML — the cluster, the workload, which
//! fault families are on and how hard, and faults at fixed times — so that
//! a situation worth testing (a leader isolated, a ring partition, clock
//! skew under lease reads) has a name, a file in `scenarios/`, and a test.
//! The shrinker writes its result in the same format, with the seed and
//! the trace hash pinned, so a reduced failure replays from its file.
//!
//! ```toml
//! description = "The leader is cut off, twice; the rest elect another."
//! nodes = 5                 # 3 to 7 (default 5)
//! clients = 10              # default 10
//! duration_ms = 20000       # default 30000
//! snapshots = "drawn"       # "drawn", "off" or "EVERY:KEEP"
//! lease_reads = false       # opt-in lease-based reads
//! raft = "drawn"            # Raft's settings per seed, or "fixed" (the defaults)
//! liveness = true           # check recovery after the chaos
//! expect = "ok"             # "ok", "violation" or "liveness" (what tests assert)
//! seed = 7                  # pinned by the shrinker (--seed overrides)
//! trace_hash = "..."        # pinned by the shrinker: replay checks it
//!
//! [faults]                  # absent: every family, drawn per seed (swarm)
//! families = ["network", "partitions", "crashes", "disk", "churn", "clocks"]
//! swarm = false             # true: draw each listed family on/off per seed
//! disk = "on"               # "on" or "no-limits" when the disk family is on
//! drop_rate = 0.05          # any of sim::config::ParamOverrides
//!
//! [workload]                # any of sim::workload::WorkloadSpec
//! keys = 3
//! hot_key_percent = 50
//!
//! [[clock]]                 # a node's clock drift, in parts per million
//! node = 1
//! drift_ppm = -400000
//!
//! [[events]]                # faults at fixed times (sim::script::Action)
//! at_ms = 4000
//! action = { kind = "isolate_leader" }
//! ```

use crate::config::{ParamOverrides, SimConfig, Snapshots};
use crate::disk::DiskFaultMode;
use crate::families::Families;
use crate::queue::MS;
use crate::script::ScriptedFault;
use crate::workload::WorkloadSpec;
use serde::{Deserialize, Serialize};

/// What a scenario's test expects of its runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every invariant holds, the history is linearizable, the cluster
    /// recovers.
    #[default]
    Ok,
    /// A safety violation (the checks have teeth).
    Violation,
    /// Safe, but the cluster does not recover (a liveness failure).
    Liveness,
}

impl Expect {
    /// Whether a run's exit code (0 ok, 1 violation, 2 undecided, 3
    /// liveness) shows what is expected.
    pub fn met_by(self, exit_code: i32) -> bool {
        match self {
            Expect::Ok => exit_code == 0,
            Expect::Violation => exit_code == 1,
            Expect::Liveness => exit_code == 3,
        }
    }

    /// Whether the expectation is a failure (a violation or liveness).
    pub fn is_failure(self) -> bool {
        self != Expect::Ok
    }
}

/// A scenario file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario does, in words.
    pub description: String,
    /// Cluster size.
    pub nodes: Option<usize>,
    /// Client processes.
    pub clients: Option<usize>,
    /// Workload duration, in ms of virtual time.
    pub duration_ms: Option<u64>,
    /// `drawn`, `off` or `EVERY:KEEP`.
    pub snapshots: Option<String>,
    /// Lease-based reads.
    pub lease_reads: bool,
    /// Raft's own settings: `drawn` per seed (absent: drawn) or `fixed`
    /// (the raft crate's defaults), for a scenario whose story needs them.
    pub raft: Option<String>,
    /// Check liveness after the chaos (default on).
    pub liveness: Option<bool>,
    /// What the scenario's runs should show. A run of a scenario that
    /// expects a failure and passes is a failed expectation (see
    /// [`Expect::met_by`]).
    pub expect: Expect,
    /// The seed, when the scenario pins one (the shrinker's output).
    pub seed: Option<u64>,
    /// The trace hash a replay must reproduce, when pinned.
    pub trace_hash: Option<String>,
    /// Fault families and rates; absent: swarm over every family.
    pub faults: Option<FaultsSpec>,
    /// What clients ask for.
    pub workload: WorkloadSpec,
    /// Per-node clock drift.
    pub clock: Vec<ClockSpec>,
    /// Faults at fixed times.
    pub events: Vec<ScriptedFault>,
}

/// A scenario's fault families and rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsSpec {
    /// The families on (or, with `swarm`, those that may be drawn).
    pub families: Vec<String>,
    /// Draw each listed family on or off per seed.
    pub swarm: bool,
    /// `on` or `no-limits`, when the disk family is on.
    pub disk: Option<String>,
    /// Rates set rather than drawn.
    #[serde(flatten)]
    pub rates: ParamOverrides,
}

/// One node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// The node.
    pub node: u64,
    /// Its drift, in parts per million (positive: fast).
    pub drift_ppm: i64,
}

impl Scenario {
    /// Parses a scenario file.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| format!("invalid scenario: {e}"))
    }

    /// The scenario as TOML (what the shrinker writes).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("cannot write the scenario: {e}"))
    }

    /// The run this scenario describes for `seed`, named `name` (for the
    /// replay command). Refused if invalid.
    pub fn config(&self, name: &str, seed: u64) -> Result<SimConfig, String> {
        let mut config = SimConfig::new(seed);
        config.scenario = Some(name.to_string());
        if let Some(nodes) = self.nodes {
            config.nodes = nodes;
        }
        if let Some(clients) = self.clients {
            config.clients = clients;
        }
        if let Some(ms) = self.duration_ms {
            config.duration = ms * MS;
        }
        if let Some(s) = &self.snapshots {
            config.snapshots = s.parse::<Snapshots>()?;
        }
        config.lease_reads = self.lease_reads;
        config.vary_raft = match self.raft.as_deref() {
            None | Some("drawn") => true,
            Some("fixed") => false,
            Some(other) => {
                return Err(format!("raft = {other:?}: expected \"drawn\" or \"fixed\""));
            }
        };
        config.liveness = self.liveness.unwrap_or(true);
        if let Some(faults) = &self.faults {
            let mut allowed = Families::NONE;
            for name in &faults.families {
                allowed = allowed
                    .with(name, true)
                    .ok_or_else(|| format!("no fault family {name:?}"))?;
            }
            config.allowed = allowed;
            config.swarm = faults.swarm;
            config.faults = allowed != Families::NONE;
            config.disk_faults = match faults.disk.as_deref() {
                None | Some("on") => DiskFaultMode::On,
                Some("no-limits") => DiskFaultMode::NoLimits,
                Some(other) => return Err(format!("disk must be on or no-limits, not {other:?}")),
            };
            if !allowed.disk {
                config.disk_faults = DiskFaultMode::Off;
            }
            config.overrides = faults.rates.clone();
        }
        config.workload = self.workload.clone();
        config.clock_drift_ppm = self.clock.iter().map(|c| (c.node, c.drift_ppm)).collect();
        config.script = self.events.clone();
        if let Some(late) = config
            .script
            .iter()
            .find(|f| f.at_ms * MS >= config.duration)
        {
            return Err(format!(
                "an event at {}ms is at or after the end of the workload ({}ms): it would never fire during the run (raise duration_ms or move the event)",
                late.at_ms,
                config.duration / MS
            ));
        }
        config.validate()?;
        Ok(config)
    }

    /// The scenario that describes `config` exactly (what the shrinker
    /// writes): every choice explicit, so that it replays the same run.
    pub fn from_config(config: &SimConfig, description: String) -> Scenario {
        let snapshots = match config.snapshots {
            Snapshots::Drawn => "drawn".to_string(),
            Snapshots::Off => "off".to_string(),
            Snapshots::Fixed { every, keep } => format!("{every}:{keep}"),
        };
        let families = if config.faults {
            config
                .allowed
                .list()
                .iter()
                .filter(|(name, on)| {
                    *on && (*name != "disk" || config.disk_faults != DiskFaultMode::Off)
                })
                .map(|(name, _)| name.to_string())
                .collect()
        } else {
            Vec::new()
        };
        Scenario {
            description,
            nodes: Some(config.nodes),
            clients: Some(config.clients),
            duration_ms: Some(config.duration / MS),
            snapshots: Some(snapshots),
            lease_reads: config.lease_reads,
            raft: (!config.vary_raft).then(|| "fixed".to_string()),
            liveness: Some(config.liveness),
            expect: Expect::Ok,
            seed: Some(config.seed),
            trace_hash: None,
            faults: Some(FaultsSpec {
                families,
                swarm: config.swarm,
                disk: match config.disk_faults {
                    DiskFaultMode::NoLimits => Some("no-limits".into()),
                    _ => Some("on".into()),
                },
                rates: config.overrides.clone(),
            }),
            workload: config.workload.clone(),
            clock: config
                .clock_drift_ppm
                .iter()
                .map(|&(node, drift_ppm)| ClockSpec { node, drift_ppm })
                .collect(),
            events: config.script.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Action;

    const EXAMPLE: &str = r#"
        description = "example"
        nodes = 3
        duration_ms = 5000
        snapshots = "10:2"
        [faults]
        families = ["network", "crashes"]
        drop_rate = 0.1
        [workload]
        keys = 2
        [[clock]]
        node = 2
        drift_ppm = 20000
        [[events]]
        at_ms = 1000
        action = { kind = "isolate", node = 2 }
    "#;

    #[test]
    fn a_scenario_file_becomes_a_run_configuration() {
        let s = Scenario::parse(EXAMPLE).unwrap();
        let c = s.config("example", 9).unwrap();
        assert_eq!((c.nodes, c.duration), (3, 5_000 * MS));
        assert_eq!(c.snapshots, Snapshots::Fixed { every: 10, keep: 2 });
        assert!(c.allowed.network && c.allowed.crashes && !c.allowed.partitions);
        assert!(!c.swarm);
        assert_eq!(c.overrides.drop_rate, Some(0.1));
        assert_eq!(c.clock_drift_ppm, vec![(2, 20_000)]);
        assert_eq!(
            c.script,
            vec![ScriptedFault::at(1000, Action::Isolate { node: 2 })]
        );
    }

    #[test]
    fn a_configuration_round_trips_through_a_scenario_file() {
        let c = Scenario::parse(EXAMPLE).unwrap().config("x", 4).unwrap();
        let text = Scenario::from_config(&c, "shrunk".into())
            .to_toml()
            .unwrap();
        let again = Scenario::parse(&text).unwrap().config("x", 4).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn mistakes_in_a_scenario_are_refused_with_a_reason() {
        for bad in [
            "nodes = 2",
            "unknown_key = 1",
            "[faults]\nfamilies = [\"weather\"]",
            "[[events]]\nat_ms = 1\naction = { kind = \"crash\", node = 9 }",
            "[workload]\ngets = 90",
            "snapshots = \"sometimes\"",
            "duration_ms = 1000\n[[events]]\nat_ms = 1000\naction = { kind = \"heal\" }",
        ] {
            let parsed = Scenario::parse(bad).and_then(|s| s.config("bad", 1));
            assert!(parsed.is_err(), "{bad:?} accepted");
        }
    }
}
