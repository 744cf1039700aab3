//! One Raft replica as a deterministic unit: a raft node and its kv state
//! machine, glued by the one loop that both the simulator and the real
//! server run: ready → send → hand storage work to the executor → apply →
//! serve reads; and, as writes complete, acknowledge what they made
//! durable.
//!
//! [`Replica::handle`] takes one [`Input`] and pushes the resulting
//! [`Effect`]s. The replica decides what to send and what to write; the
//! executor decides when, and reports each write's completion back as
//! [`Input::WriteDone`]. Nothing in here reads a clock, spawns a thread or
//! touches a disk: [`Storage`] is the executor's half, the one type that
//! writes the log (through the [`wal::Disk`] the executor hands in).

mod admin;
mod clients;
mod effects;
mod envelope;
mod error;
mod planted;
mod replica;
mod snapshot_policy;
mod snapshots;
mod storage;
mod write;

pub use admin::{AdminAccepted, AdminOp, AdminRefused, AdminReply, AdminRequest};
pub use effects::{Effect, EntryDigest, Input, ReplicaEvent, SnapshotDigest, payload_digest};
pub use envelope::{ClientReply, ClientRequest, Envelope, ReplyError, WireError};
pub use error::ReplicaError;
pub use planted::PlantedBug;
pub use replica::{MAX_PENDING_READS, MAX_PENDING_WRITES, Replica, ReplicaOptions};
pub use snapshot_policy::SnapshotPolicy;
pub use storage::Storage;
pub use write::{StorageLimits, Write, WriteId};
