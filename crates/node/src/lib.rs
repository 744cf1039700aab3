//! `raftlab-node`: the real node, the second executor of [`replica::Replica`].
//!
//! The simulator runs the replica in virtual time; this crate runs the same
//! type on tokio:
//!
//! - one task owns the replica ([`server`]) and reacts, in this order of
//!   priority, to ticks of a monotonic clock (missed ticks after a stall are
//!   delivered at once, before anything else, as the simulator's pause
//!   family does), write completions, peer messages and client requests;
//! - one thread owns the WAL on the real disk ([`storage`]) and carries out
//!   the replica's writes in order with group commit;
//! - the peer transport ([`transport`], [`wire`]) moves envelopes over TCP;
//! - the HTTP API ([`http`]) turns requests into client operations, and
//!   serves `/health`, `/admin/status` and `/metrics` ([`metrics`]).

pub mod config;
pub mod directory;
pub mod http;
pub mod join;
pub mod metrics;
pub mod server;
pub mod storage;
pub mod transport;
pub mod wire;

use config::Config;
use directory::Directory;
use metrics::Metrics;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the tasks of one node share.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The replica's state as of its last step, for `/admin/status` and
    /// for routing requests.
    pub status: Mutex<Status>,
    /// The members' addresses (peer and HTTP), kept on disk.
    pub directory: Mutex<Directory>,
    /// Requests for the replica task.
    pub commands: mpsc::Sender<server::Command>,
    /// What this node must have applied to be ready (`GET /ready`): the
    /// leader's commit index when first asked.
    pub ready_bar: Mutex<Option<u64>>,
}

impl Shared {
    /// The HTTP address of node `id`, if known.
    pub fn http_addr_of(&self, id: u64) -> Option<String> {
        if id == self.config.node_id {
            return Some(self.config.http_addr.to_string());
        }
        self.directory
            .lock()
            .expect("not poisoned")
            .get(id)
            .and_then(|m| m.http.clone())
    }

    /// Whether `id` may connect as a peer: a member of the configuration
    /// in force, or one whose address an operator or a handshake gave
    /// (a node being added is both, once its learner entry arrives).
    pub fn is_member(&self, id: u64) -> bool {
        let in_config = {
            let status = self.status.lock().expect("not poisoned");
            status.voters.contains(&id) || status.learners.contains(&id)
        };
        in_config
            || self
                .directory
                .lock()
                .expect("not poisoned")
                .get(id)
                .is_some()
    }
}

/// The replica's state, published after each of its steps.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    /// This node's id.
    pub id: u64,
    /// `follower`, `pre-candidate`, `candidate` or `leader`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The commit index.
    pub commit: u64,
    /// The applied index.
    pub applied: u64,
    /// The voters in force.
    pub voters: Vec<u64>,
    /// The learners in force.
    pub learners: Vec<u64>,
    /// The first index the log holds.
    pub first_index: u64,
    /// The last index the log holds.
    pub last_index: u64,
    /// The index of the snapshot the log starts after (0: none).
    pub snapshot_index: u64,
    /// The state machine's digest (`KvStore::digest`, 16 hex digits) as of
    /// `applied`: equal on replicas at an equal applied index, so a test can
    /// check that the nodes agree without reading every key.
    pub digest: String,
}

/// Runs a node until it fails: resolves nothing, `config` is final.
pub async fn run(config: Config) -> Result<(), String> {
    server::run(config).await
}
