//! Test support and the cluster-level tests: a controllable network of nodes
//! (`network`), scenarios named after the rules of the Raft paper and
//! dissertation (`paper`), and randomized properties (`prop`).

pub mod network;

mod lease;
mod membership;
mod paper;
mod prop;
mod snapshot;
