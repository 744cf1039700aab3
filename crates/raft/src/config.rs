//! How one node is configured: its identity, the initial voters, its timers
//! and the limits that keep every queue bounded.

use crate::types::NodeId;
use std::collections::BTreeSet;
use std::fmt;

/// Default minimum election timeout, in ticks.
pub const DEFAULT_ELECTION_TICK: u32 = 10;
/// Default heartbeat interval, in ticks.
pub const DEFAULT_HEARTBEAT_TICK: u32 = 2;
/// Default bound on the entries of one AppendEntries.
pub const DEFAULT_MAX_ENTRIES_PER_APPEND: usize = 64;
/// Default bound on the payload bytes of one AppendEntries (1 MiB).
pub const DEFAULT_MAX_BYTES_PER_APPEND: usize = 1 << 20;
/// Default bound on the appends in flight to one follower in Replicate state.
pub const DEFAULT_MAX_INFLIGHT_APPENDS: usize = 64;
/// Default bound on the leader's entries that are not yet committed.
pub const DEFAULT_MAX_UNCOMMITTED_ENTRIES: usize = 4096;
/// Default bound on the reads a leader holds at once.
pub const DEFAULT_MAX_PENDING_READS: usize = 4096;

/// Default bound on the data bytes of one InstallSnapshot chunk (64 KiB).
pub const DEFAULT_MAX_SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024;
/// The largest InstallSnapshot chunk accepted from a peer, whatever the
/// sender's configuration; beyond this a message is refused as malformed.
pub const MAX_SNAPSHOT_CHUNK_BYTES: usize = 16 << 20;
/// The largest snapshot a follower assembles (256 MiB); a transfer that
/// would grow beyond it is refused as malformed. The write-ahead log stores
/// snapshots up to the same size, so whatever a follower accepts it can
/// also make durable.
pub const MAX_SNAPSHOT_BYTES: u64 = 256 << 20;

/// The largest voting configuration accepted. Quorum arithmetic sorts the
/// voters on every commit, so the set must stay small.
pub const MAX_VOTERS: usize = 64;
/// The largest election timeout accepted, so that `2 * election_tick` cannot
/// overflow and a misconfigured node still elects within a bounded time.
pub const MAX_ELECTION_TICK: u32 = 1 << 20;

/// The configuration of one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// This node's identity. Never `NodeId(0)`.
    pub id: NodeId,
    /// The founding voters: the configuration until the log says otherwise
    /// (every founding member must be given the same set). Empty for a node
    /// that joins an existing cluster: it learns the configuration from the
    /// leader's log or snapshot. A node that is not a voter never campaigns.
    pub voters: Vec<NodeId>,
    /// Minimum election timeout in ticks (§5.2). The actual timeout is drawn
    /// uniformly from `[election_tick, 2 * election_tick)` after every reset.
    pub election_tick: u32,
    /// Heartbeat interval in ticks. Must be smaller than `election_tick`, or
    /// followers would time out between two heartbeats.
    pub heartbeat_tick: u32,
    /// Run a pre-vote round before a real election (dissertation §9.6).
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority within an
    /// election timeout (dissertation §6.2). Followers honour a leader's
    /// lease (§4.2.3: no vote, no new term within the minimum election
    /// timeout of hearing from it) whether this is on or off.
    pub check_quorum: bool,
    /// Bound on the entries of one AppendEntries.
    pub max_entries_per_append: usize,
    /// Bound on the payload bytes of one AppendEntries; also the largest
    /// proposal accepted.
    pub max_bytes_per_append: usize,
    /// Bound on the appends in flight to one follower in Replicate state.
    pub max_inflight_appends: usize,
    /// Proposals beyond this many uncommitted entries are refused.
    pub max_uncommitted_entries: usize,
    /// Bound on the reads a leader holds at once (waiting or being confirmed).
    pub max_pending_reads: usize,
    /// Bound on the data bytes of one InstallSnapshot chunk (§7 sends a
    /// snapshot in chunks). At most [`MAX_SNAPSHOT_CHUNK_BYTES`].
    pub max_snapshot_chunk_bytes: usize,
    /// Lease-based reads (dissertation §6.4.1; 0: off, reads use ReadIndex
    /// rounds only): a leader answers reads at once for this many of its
    /// own ticks after a quorum confirmed a heartbeat. Requires
    /// `check_quorum` and must be below `election_tick`. Safe only while no
    /// voter's clock runs faster than the leader's by more than a factor
    /// `election_tick / lease_read_ticks` (see the `read_index` module).
    pub lease_read_ticks: u32,
    /// Seeds the ChaCha RNG that draws election timeouts. The node id is mixed
    /// in, so nodes sharing one seed still draw different timeouts.
    pub seed: u64,
    /// The driver, not the tick count, decides when the election timeout
    /// fires: ticks never start an election and no timeout is drawn (the
    /// lease still lasts `election_tick` ticks); the driver calls
    /// [`crate::RawNode::campaign`] when it decides the timeout elapsed. For
    /// a model checker, which then explores every moment an election may
    /// start instead of the ones a seed draws (crates/model). Off by default.
    pub external_election_timer: bool,
}

impl Config {
    /// A configuration with the defaults for everything but identity, voters
    /// and seed.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            voters,
            election_tick: DEFAULT_ELECTION_TICK,
            heartbeat_tick: DEFAULT_HEARTBEAT_TICK,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: DEFAULT_MAX_ENTRIES_PER_APPEND,
            max_bytes_per_append: DEFAULT_MAX_BYTES_PER_APPEND,
            max_inflight_appends: DEFAULT_MAX_INFLIGHT_APPENDS,
            max_uncommitted_entries: DEFAULT_MAX_UNCOMMITTED_ENTRIES,
            max_pending_reads: DEFAULT_MAX_PENDING_READS,
            max_snapshot_chunk_bytes: DEFAULT_MAX_SNAPSHOT_CHUNK_BYTES,
            lease_read_ticks: 0,
            seed,
            external_election_timer: false,
        }
    }

    /// The configuration a fresh log starts with: the founding voters.
    pub fn bootstrap_membership(&self) -> crate::Membership {
        crate::Membership::of_voters(self.voters.iter().copied())
    }

    /// Checks every field; a node is only built from a valid configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NodeId(0) {
            return Err(ConfigError::ZeroId);
        }
        if self.voters.len() > MAX_VOTERS {
            return Err(ConfigError::TooManyVoters {
                count: self.voters.len(),
                max: MAX_VOTERS,
            });
        }
        let mut seen = BTreeSet::new();
        for &voter in &self.voters {
            if voter == NodeId(0) {
                return Err(ConfigError::ZeroVoterId);
            }
            if !seen.insert(voter) {
                return Err(ConfigError::DuplicateVoter(voter));
            }
        }
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeatTick);
        }
        if self.lease_read_ticks > 0
            && (!self.check_quorum || self.lease_read_ticks >= self.election_tick)
        {
            return Err(ConfigError::LeaseOutlivesElection {
                lease_read_ticks: self.lease_read_ticks,
                election_tick: self.election_tick,
            });
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionTickNotAboveHeartbeat {
                election_tick: self.election_tick,
                heartbeat_tick: self.heartbeat_tick,
            });
        }
        if self.election_tick > MAX_ELECTION_TICK {
            return Err(ConfigError::ElectionTickTooLarge {
                election_tick: self.election_tick,
                max: MAX_ELECTION_TICK,
            });
        }
        let limits = [
            ("max_entries_per_append", self.max_entries_per_append),
            ("max_bytes_per_append", self.max_bytes_per_append),
            ("max_inflight_appends", self.max_inflight_appends),
            ("max_uncommitted_entries", self.max_uncommitted_entries),
            ("max_pending_reads", self.max_pending_reads),
            ("max_snapshot_chunk_bytes", self.max_snapshot_chunk_bytes),
        ];
        for (name, value) in limits {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.max_snapshot_chunk_bytes > MAX_SNAPSHOT_CHUNK_BYTES {
            return Err(ConfigError::LimitTooLarge {
                name: "max_snapshot_chunk_bytes",
                max: MAX_SNAPSHOT_CHUNK_BYTES,
            });
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `id` is `NodeId(0)`, which is reserved for "no node".
    ZeroId,
    /// A voter is `NodeId(0)`.
    ZeroVoterId,
    /// Lease reads need check-quorum and a lease shorter than the election
    /// timeout (followers honour a leader for `election_tick` ticks).
    LeaseOutlivesElection {
        /// The lease asked for.
        lease_read_ticks: u32,
        /// The election timeout.
        election_tick: u32,
    },
    /// A voter is listed twice.
    DuplicateVoter(NodeId),
    /// More voters than [`MAX_VOTERS`].
    TooManyVoters {
        /// How many were given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// `heartbeat_tick` is 0.
    ZeroHeartbeatTick,
    /// `election_tick` must exceed `heartbeat_tick`.
    ElectionTickNotAboveHeartbeat {
        /// The election tick given.
        election_tick: u32,
        /// The heartbeat tick given.
        heartbeat_tick: u32,
    },
    /// `election_tick` exceeds [`MAX_ELECTION_TICK`].
    ElectionTickTooLarge {
        /// The election tick given.
        election_tick: u32,
        /// The bound.
        max: u32,
    },
    /// A limit that must be positive is 0 (the field is named).
    ZeroLimit(&'static str),
    /// A limit is above its hard bound.
    LimitTooLarge {
        /// The field.
        name: &'static str,
        /// The bound.
        max: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroId => write!(f, "node id 0 is reserved"),
            ConfigError::LeaseOutlivesElection {
                lease_read_ticks,
                election_tick,
            } => write!(
                f,
                "lease reads of {lease_read_ticks} ticks need check-quorum and a lease below the election timeout ({election_tick})"
            ),
            ConfigError::ZeroVoterId => write!(f, "voter id 0 is reserved"),
            ConfigError::DuplicateVoter(id) => write!(f, "voter {id} is listed twice"),
            ConfigError::TooManyVoters { count, max } => {
                write!(f, "{count} voters given, at most {max} supported")
            }
            ConfigError::ZeroHeartbeatTick => write!(f, "heartbeat_tick must be positive"),
            ConfigError::ElectionTickNotAboveHeartbeat {
                election_tick,
                heartbeat_tick,
            } => write!(
                f,
                "election_tick ({election_tick}) must exceed heartbeat_tick ({heartbeat_tick})"
            ),
            ConfigError::ElectionTickTooLarge { election_tick, max } => {
                write!(f, "election_tick ({election_tick}) exceeds {max}")
            }
            ConfigError::ZeroLimit(name) => write!(f, "{name} must be positive"),
            ConfigError::LimitTooLarge { name, max } => write!(f, "{name} exceeds {max}"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)], 7)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn zero_id_is_refused() {
        let mut c = valid();
        c.id = NodeId(0);
        assert_eq!(c.validate(), Err(ConfigError::ZeroId));
    }

    #[test]
    fn duplicate_or_zero_voters_are_refused_but_a_joining_node_has_none() {
        let mut c = valid();
        c.voters.clear();
        assert_eq!(c.validate(), Ok(()), "a node that will join a cluster");
        c.voters = vec![NodeId(1), NodeId(1)];
        assert_eq!(c.validate(), Err(ConfigError::DuplicateVoter(NodeId(1))));
        c.voters = vec![NodeId(1), NodeId(0)];
        assert_eq!(c.validate(), Err(ConfigError::ZeroVoterId));
        c.voters = (1..=(MAX_VOTERS as u64 + 1)).map(NodeId).collect();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TooManyVoters { .. })
        ));
    }

    #[test]
    fn election_tick_must_exceed_heartbeat_tick() {
        let mut c = valid();
        c.election_tick = 2;
        c.heartbeat_tick = 2;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ElectionTickNotAboveHeartbeat { .. })
        ));
        c.heartbeat_tick = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroHeartbeatTick));
        c.heartbeat_tick = 1;
        c.election_tick = MAX_ELECTION_TICK + 1;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ElectionTickTooLarge { .. })
        ));
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let mut c = valid();
        c.max_inflight_appends = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::ZeroLimit("max_inflight_appends"))
        );
    }
}
