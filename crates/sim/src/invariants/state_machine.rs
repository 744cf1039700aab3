//! State machine safety (Figure 3): one entry per index, applied in order,
//! and equal digests at equal applied indices.

use super::{Invariants, ViolationKind, slot};
use crate::queue::Nanos;
use replica::EntryDigest;

impl Invariants {
    /// State machine safety (Figure 3): no two nodes apply different entries
    /// at the same index; entries apply in order, once.
    pub fn applied(&mut self, at: Nanos, node: u64, entry: EntryDigest) {
        let n = slot(node);
        if entry.index != self.last_applied[n].next() {
            self.violate(
                ViolationKind::ApplyOrder,
                at,
                node,
                format!("applied {} after {}", entry.index, self.last_applied[n]),
            );
        }
        self.last_applied[n] = entry.index;
        match self.applied.get(&entry.index) {
            Some(seen) if *seen != entry => self.violate(
                ViolationKind::StateMachineSafety,
                at,
                node,
                format!(
                    "applied {} of {} where another node applied one of {}",
                    entry.index, entry.term, seen.term
                ),
            ),
            Some(_) => {}
            None => {
                self.applied.insert(entry.index, entry);
            }
        }
        if entry.index > self.committed.0 {
            let (from, to) = (self.committed.0.0 as usize + 1, entry.index.0 as usize);
            match self.chains[n].get(to) {
                Some(&hash) => {
                    self.committed = (entry.index, hash);
                    self.committed_chain
                        .extend_from_slice(&self.chains[n][from..=to]);
                    self.committed_terms
                        .extend_from_slice(&self.terms[n][from..=to]);
                }
                None => self.violate(
                    ViolationKind::Durability,
                    at,
                    node,
                    format!("applied {} which it never persisted", entry.index),
                ),
            }
        }
    }

    /// Replicated state machines agree: equal digests at equal applied
    /// indices (checked every [`DIGEST_EVERY`](super::DIGEST_EVERY) entries).
    pub fn state_digest(&mut self, at: Nanos, node: u64, applied: u64, digest: u64) {
        match self.digests.get(&applied) {
            Some(&seen) if seen != digest => self.violate(
                ViolationKind::StateMachineAgreement,
                at,
                node,
                format!("state digest at i{applied} differs from another node's"),
            ),
            Some(_) => {}
            None => {
                self.digests.insert(applied, digest);
            }
        }
    }
}
