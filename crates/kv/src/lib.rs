//! The replicated state machine of raftlab: a key-value map with client
//! sessions, changed only by committed log entries.
//!
//! * [`command`]: what clients send ([`Command`], [`Op`]), what they get back
//!   ([`Output`], [`KvError`]), the size limits, and the byte encoding that
//!   goes through the Raft log.
//! * [`store`]: [`KvStore`], deterministic `apply(index, bytes)`, sessions
//!   for exactly-once writes (dissertation §6.3), and a stable state digest.
//! * `snapshot`: [`KvStore::snapshot`] and [`KvStore::restore`], a versioned,
//!   checksummed (CRC32C), deterministic encoding of the whole state.
//!
//! This crate knows nothing of Raft: it sees log indices as plain `u64` and
//! commands as bytes, so a client library can use its wire types alone.

pub mod command;
mod digest;
mod snapshot;
pub mod store;

pub use command::{
    ClientId, Command, KvError, MAX_BATCH_OPS, MAX_COMMAND_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES,
    Op, Output, Response,
};
pub use snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use store::{Applied, KvStore, MAX_KEYS, MAX_SESSIONS, Session};
