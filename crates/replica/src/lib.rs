//! One Raft replica as a deterministic unit: a raft node, its kv state machine
//! and its write-ahead log, glued by the one loop that both the simulator and
//! the real server run: ready → send → persist → acknowledge → apply → serve
//! reads → advance.
//!
//! [`Replica::handle`] takes one [`Input`] and pushes the resulting
//! [`Effect`]s; the executor decides how messages travel and when ticks
//! happen. Nothing in here reads a clock, spawns a thread or touches the
//! file system: durability goes through the [`wal::Disk`] the caller hands in.

mod envelope;
mod replica;
mod snapshot_policy;

pub use envelope::{ClientReply, ClientRequest, Envelope, ReplyError, WireError};
pub use replica::{
    Effect, EntryDigest, Input, MAX_PENDING_READS, MAX_PENDING_WRITES, Replica, ReplicaError,
    ReplicaEvent, SnapshotDigest, payload_digest,
};
pub use snapshot_policy::SnapshotPolicy;
