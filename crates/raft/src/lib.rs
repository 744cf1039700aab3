//! The Raft consensus core, sans-IO: no clock, no threads, no IO, no global
//! randomness. Inputs are ticks, messages, proposals and acknowledgements;
//! outputs come out of [`RawNode::ready`].

mod types;

pub use types::*;
