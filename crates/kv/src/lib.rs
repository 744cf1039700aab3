//! The replicated state machine of raftlab: a key-value map with client
//! sessions, changed only by committed log entries.
//!
//! * [`command`]: what clients send ([`Command`], [`Op`]), what they get back
//!   ([`Output`], [`KvError`]), the size limits, and the byte encoding that
//!   goes through the Raft log.
//! * [`store`]: [`KvStore`], deterministic `apply(index, bytes)`, sessions
//!   for exactly-once writes (dissertation §6.3), and a stable state digest.
//!
//! This crate knows nothing of Raft: it sees log indices as plain `u64` and
//! commands as bytes, so a client library can use its wire types alone.

pub mod command;
mod digest;
pub mod store;

pub use command::{
    ClientId, Command, KvError, MAX_COMMAND_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES, Op, Output,
    Response,
};
pub use store::{Applied, KvStore, MAX_KEYS, MAX_SESSIONS, Session};
