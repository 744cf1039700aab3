//! Exhaustive small-scope model checking of the real replica.
//!
//! The real [`replica::Replica`] (raft core, kv state machine, write queue)
//! runs inside a stateright [`stateright::Model`]: three nodes, two or three
//! clients, a network that drops, duplicates and reorders, crashes that
//! lose the writes not yet done, restarts that recover from the disk, and
//! ticks and election timeouts as steps the checker chooses. Every
//! interleaving within [`Bounds`] is explored, and every state is checked
//! against the properties of [`properties`] (election safety, log matching,
//! leader completeness, state machine safety, commit monotonicity,
//! durability of acknowledged writes, linearizability).
//!
//! A counterexample is a list of [`Action`]s: [`Counterexample`] writes it
//! as JSON under `crates/model/tests/counterexamples/`, and the
//! `counterexamples` test replays every file there.

mod counterexample;
mod durable;
pub mod properties;
mod spec;
mod world;

pub use counterexample::{Counterexample, replay, violated};
pub use durable::Durable;
pub use spec::KvSpec;
pub use world::{
    Action, Bounds, Broken, Client, Ghost, Node, RaftModel, ReplicaBox, State, cas, decode, get,
    put,
};
