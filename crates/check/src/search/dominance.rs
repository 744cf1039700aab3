//! Pruning rule: a configuration that differs from a failed one only by having
//! linearized more operations of unknown outcome fails too.

use crate::model::{FixedState, ValueId};

use super::cache::Linearized;

/// Most failed configurations [`Dominance`] remembers: bounds its memory (it is the
/// heavier of the two caches). Past it, it stops learning, which only prunes less.
const MAX_DOMINANCE_ENTRIES: usize = 1 << 20;

/// Most failed sets of unknown operations [`Dominance`] keeps per (known set, state).
const MAX_DOMINANCE_PER_KEY: usize = 16;

/// (known set, state) cache key -> the unknown sets of configurations that failed.
type FailedSets = std::collections::HashMap<Box<[u64]>, Vec<Box<[u32]>>, FixedState>; // determinism: ok, fixed-seed hasher, never iterated for output

/// Pruning by dominance among configurations that differ only in which operations of
/// unknown outcome they have linearized.
///
/// If (known set K, state s, unknown set U) has no successful extension, neither has
/// (K, s, U') for any U' that contains U: every extension of the latter is one of the
/// former (it can simply never linearize the extra unknown operations, which are
/// optional). The exact cache cannot see this, and without it a search that has hit a
/// dead end tries every subset of the pending unknown operations before backing off.
/// Only configurations whose search has finished are recorded (never one still on the
/// stack), so every recorded one truly failed.
pub(super) struct Dominance {
    /// Whether the key has operations of unknown outcome at all.
    enabled: bool,
    /// Known operations linearized, by rank among known operations in call order.
    known: Linearized,
    /// Unknown operations linearized, sorted. Invariant: the unknown ops on the stack.
    unknown: Vec<u32>,
    /// (known set, state) key -> unknown sets of failed configurations.
    failed: FailedSets,
    entries: usize,
    /// Bytes its entries hold (estimated: keys, sets and the map's per-entry overhead),
    /// and the most they may: past it, it stops learning.
    bytes: usize,
    max_bytes: usize,
    key: Vec<u64>,
    scratch: Vec<u32>,
}

impl Dominance {
    pub(super) fn new(enabled: bool, known_ops: usize, max_bytes: usize) -> Self {
        Dominance {
            enabled,
            known: Linearized::new(known_ops),
            unknown: Vec::new(),
            failed: std::collections::HashMap::default(), // determinism: ok, fixed-seed hasher, never iterated for output
            entries: 0,
            bytes: 0,
            max_bytes,
            key: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// `op` was linearized: `known_rank` if it is a known operation.
    pub(super) fn push(&mut self, op: usize, known_rank: Option<usize>) {
        match known_rank {
            Some(r) => self.known.insert(r),
            None => {
                let op = op as u32;
                let at = self.unknown.partition_point(|&u| u < op);
                self.unknown.insert(at, op);
            }
        }
    }

    pub(super) fn pop(&mut self, op: usize, known_rank: Option<usize>) {
        match known_rank {
            Some(r) => self.known.remove(r),
            None => {
                let op = op as u32;
                if let Ok(at) = self.unknown.binary_search(&op) {
                    self.unknown.remove(at);
                }
            }
        }
    }

    /// Whether linearizing `op` next, leaving `state`, reaches a configuration that a
    /// failed one dominates.
    pub(super) fn dominated(
        &mut self,
        op: usize,
        known_rank: Option<usize>,
        state: ValueId,
    ) -> bool {
        if !self.enabled || self.failed.is_empty() {
            return false;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.unknown);
        match known_rank {
            Some(r) => {
                self.known.insert(r);
                self.known.key(state, &mut self.key);
                self.known.remove(r);
            }
            None => {
                self.known.key(state, &mut self.key);
                let op = op as u32;
                let at = self.scratch.partition_point(|&u| u < op);
                self.scratch.insert(at, op);
            }
        }
        let Some(sets) = self.failed.get(&self.key[..]) else {
            return false;
        };
        sets.iter().any(|set| is_subset(set, &self.scratch))
    }

    /// The current configuration (leaving `state`) failed.
    pub(super) fn failed(&mut self, state: ValueId) {
        if !self.enabled || self.entries >= MAX_DOMINANCE_ENTRIES || self.bytes >= self.max_bytes {
            return;
        }
        self.known.key(state, &mut self.key);
        let sets = match self.failed.get_mut(&self.key[..]) {
            Some(sets) => sets,
            None => {
                self.bytes += self.key.len() * 8 + 64;
                self.failed.entry(self.key.as_slice().into()).or_default()
            }
        };
        if sets.len() < MAX_DOMINANCE_PER_KEY {
            sets.push(self.unknown.as_slice().into());
            self.entries += 1;
            self.bytes += self.unknown.len() * 4 + 32;
        }
    }
}

/// Whether sorted `a` is a subset of sorted `b`.
fn is_subset(a: &[u32], b: &[u32]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y == x))
}
