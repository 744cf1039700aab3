//! The Raft consensus core, sans-IO: no clock, no threads, no IO, no global
//! randomness. Inputs are ticks, messages, proposals and acknowledgements;
//! outputs come out of [`RawNode::ready`].
//!
//! Modules, one idea each (after etcd-raft):
//! * `types`: the vocabulary crossing the boundary;
//! * `log`: the in-memory log and its marks (persisted, committed, applied);
//! * [`quorum`]: majority and joint-majority arithmetic;
//! * `tracker`: what the leader knows of each follower (Probe/Replicate);
//! * `raft`: term handling and dispatch; `election`, `replication` and
//!   `read_index` hold the rules of each sub-protocol;
//! * `raw_node`: the [`RawNode`] face and [`Ready`] assembly.
//!
//! Where the rules live:
//!
//! | rule | module |
//! | --- | --- |
//! | §5.1 terms, stale-term answers | `raft` (`step`, `answer_stale`) |
//! | §5.2 elections, randomized timeouts, one vote per term | `election`, `raft` |
//! | §5.4.1 election restriction | `log::is_up_to_date`, `election` |
//! | §9.6 pre-vote, §4.2.3 leases, §6.2 check-quorum | `election`, `raft` |
//! | §5.3 consistency check, conflict truncation, fast backtracking | `replication`, `log` |
//! | §5.4.2 commit only current-term entries by counting | `replication::maybe_commit` |
//! | §6.4 ReadIndex | `read_index` |
//! | §7 log compaction, InstallSnapshot in chunks | `log::compact`, `snapshot` |
//! | Figure 2 persistence before answers | `raft::send_with_term` |
//!
//! The driver's duties, and their order, are documented on [`Ready`].

mod config;
mod election;
mod errors;
mod log;
mod membership;
pub mod quorum;
mod raft;
mod raw_node;
mod read_index;
mod replication;
mod snapshot;
mod tracker;
mod types;

#[cfg(test)]
mod testing;

pub use config::*;
pub use errors::*;
pub use log::CompactError;
pub use membership::ConfChange;
pub use raft::{MAX_ENTRIES_PER_MESSAGE, MAX_OUTBOX_MESSAGES};
pub use raw_node::RawNode;
pub use types::*;
