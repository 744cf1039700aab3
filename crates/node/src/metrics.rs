//! The node's Prometheus metrics (prometheus-client), served at `/metrics`.
//!
//! Counters are registered without their `_total` suffix: the text format
//! adds it (`raft_commits` is exposed as `raft_commits_total`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label set: (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The current term.
    pub term: Gauge,
    /// 0 follower (or pre-candidate), 1 candidate, 2 leader.
    pub state: Gauge,
    /// 1 while this node knows a leader.
    pub has_leader: Gauge,
    /// The commit index.
    pub commit_index: Gauge,
    /// The applied index.
    pub applied_index: Gauge,
    /// Entries made durable in this node's log.
    pub log_entries: Counter,
    /// Entries committed and applied.
    pub commits: Counter,
    /// Times this node became leader.
    pub leader_elections: Counter,
    /// Changes of the leader this node knows of.
    pub leader_changes: Counter,
    /// Snapshots taken (compactions) and installed, by kind.
    pub snapshots: Family<Labels, Counter>,
    /// Client requests answered, by outcome.
    pub proposals: Family<Labels, Counter>,
    /// Entries committed, as this node learnt of them (etcd's
    /// `proposals_committed`).
    pub proposals_committed: Counter,
    /// Entries applied to the state machine.
    pub proposals_applied: Counter,
    /// Client requests waiting for their answer on this node.
    pub proposals_pending: Gauge,
    /// Client requests answered with an error (refused, busy, leadership
    /// lost).
    pub proposals_failed: Counter,
    /// Time of one WAL sync (one per group of writes).
    pub fsync_seconds: Histogram,
    /// Writes carried out per sync (group commit).
    pub writes_per_sync: Histogram,
    /// HTTP requests, by route and status code.
    pub http_requests: Family<Labels, Counter>,
    /// HTTP request durations, by route.
    pub http_seconds: Family<Labels, Histogram>,
    /// Peer connections refused at the handshake or for a bad frame, by reason.
    pub peer_refused: Family<Labels, Counter>,
    /// Messages dropped because a peer's queue was full or its connection down.
    pub peer_dropped: Counter,
    /// Failed connection attempts to peers.
    pub peer_connect_failures: Counter,
    /// Messages refused by the replica (wrong cluster, malformed).
    pub messages_refused: Counter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            term: Gauge::default(),
            state: Gauge::default(),
            has_leader: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            log_entries: Counter::default(),
            commits: Counter::default(),
            leader_elections: Counter::default(),
            leader_changes: Counter::default(),
            snapshots: Family::default(),
            proposals: Family::default(),
            proposals_committed: Counter::default(),
            proposals_applied: Counter::default(),
            proposals_pending: Gauge::default(),
            proposals_failed: Counter::default(),
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            writes_per_sync: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 14))
            }),
            peer_refused: Family::default(),
            peer_dropped: Counter::default(),
            peer_connect_failures: Counter::default(),
            messages_refused: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("raft_term_current", "The current term", m.term.clone());
        r.register(
            "raft_state",
            "0 follower, 1 candidate, 2 leader",
            m.state.clone(),
        );
        r.register(
            "raft_has_leader",
            "1 if a leader is known",
            m.has_leader.clone(),
        );
        r.register(
            "raft_commit_index",
            "The commit index",
            m.commit_index.clone(),
        );
        r.register(
            "raft_applied_index",
            "The applied index",
            m.applied_index.clone(),
        );
        r.register(
            "raft_log_entries",
            "Entries made durable in this node's log",
            m.log_entries.clone(),
        );
        r.register(
            "raft_commits",
            "Entries committed and applied",
            m.commits.clone(),
        );
        r.register(
            "raft_leader_elections",
            "Times this node became leader",
            m.leader_elections.clone(),
        );
        r.register(
            "raft_leader_changes_seen",
            "Changes of the known leader",
            m.leader_changes.clone(),
        );
        r.register("raft_snapshots", "Snapshots by kind", m.snapshots.clone());
        r.register(
            "raft_proposals",
            "Client requests by outcome",
            m.proposals.clone(),
        );
        r.register(
            "raft_proposals_committed",
            "Entries committed, as this node learnt of them",
            m.proposals_committed.clone(),
        );
        r.register(
            "raft_proposals_applied",
            "Entries applied to the state machine",
            m.proposals_applied.clone(),
        );
        r.register(
            "raft_proposals_pending",
            "Client requests waiting for their answer",
            m.proposals_pending.clone(),
        );
        r.register(
            "raft_proposals_failed",
            "Client requests answered with an error",
            m.proposals_failed.clone(),
        );
        r.register(
            "wal_fsync_duration_seconds",
            "Time of one WAL sync",
            m.fsync_seconds.clone(),
        );
        r.register(
            "wal_writes_per_sync",
            "Writes made durable by one sync (group commit)",
            m.writes_per_sync.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests by route and code",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request durations by route",
            m.http_seconds.clone(),
        );
        r.register(
            "peer_connections_refused",
            "Peer connections refused, by reason",
            m.peer_refused.clone(),
        );
        r.register(
            "peer_messages_dropped",
            "Messages to peers dropped (queue full or connection down)",
            m.peer_dropped.clone(),
        );
        r.register(
            "peer_connect_failures",
            "Failed connection attempts to peers",
            m.peer_connect_failures.clone(),
        );
        r.register(
            "raft_messages_refused",
            "Messages refused by the replica",
            m.messages_refused.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A one-pair label set.
pub fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}
