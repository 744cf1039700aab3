//! The liveness check: after the chaos the cluster is healed and must elect
//! a leader and finish every pending operation within [`LIVENESS_BOUND`];
//! what it does not do is reported apart from safety violations.

use super::{LIVENESS_BOUND, World};
use crate::queue::MS;
use crate::workload::describe;

impl World {
    /// Whether the run may stop once every client is done: without the
    /// liveness check at once; with it, once a node leads (or the bound has
    /// passed, to report that none did).
    pub(super) fn settled(&self) -> bool {
        let Some(healed) = self.healed_at else {
            return true;
        };
        !self.config.liveness
            || self.leader_index().is_some()
            || self.now >= healed + LIVENESS_BOUND
    }

    /// Liveness after the heal (when asked): a leader emerged, and every
    /// client finished within [`LIVENESS_BOUND`] of the heal. What failed is
    /// reported apart from safety violations.
    pub(super) fn check_liveness(&mut self) {
        let Some(healed) = self.healed_at else {
            if self.config.liveness {
                self.liveness
                    .push("the run stopped before the chaos ended".to_string());
            }
            return;
        };
        if !self.config.liveness {
            return;
        }
        let deadline = healed + LIVENESS_BOUND;
        if self.leader_index().is_none() {
            self.liveness.push(format!(
                "no leader {}ms after the heal (bound {}ms)",
                (self.now - healed) / MS,
                LIVENESS_BOUND / MS
            ));
        } else if let Some(at) = self.leader_after_heal
            && at > deadline
        {
            self.liveness.push(format!(
                "the first leader after the heal emerged {}ms after it, beyond the bound of {}ms",
                (at - healed) / MS,
                LIVENESS_BOUND / MS
            ));
        }
        let pending: Vec<String> = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(c, slot)| {
                slot.current
                    .as_ref()
                    .map(|op| format!("client {c} op {} ({})", op.op_id, describe(&op.op)))
            })
            .collect();
        if !pending.is_empty() && self.now >= deadline {
            self.liveness.push(format!(
                "{} operations still pending {}ms after the heal: {}",
                pending.len(),
                (self.now - healed) / MS,
                pending.join(", ")
            ));
        }
    }
}
