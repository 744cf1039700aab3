//! The liveness check: after the chaos the cluster is healed and must elect
//! a leader and finish every pending operation within [`LIVENESS_BOUND`],
//! bring every live member up to the leader's commit index
//! (`invariants::catch_up`), and settle its terms
//! (`invariants::term_inflation`); what it does not do is reported apart
//! from safety violations.

use super::{DRAIN_LIMIT, LIVENESS_BOUND, SETTLE_WINDOW, World};
use crate::invariants::{catch_up, term_inflation};
use crate::queue::{MS, Nanos};
use crate::workload::describe;
use raft::LogIndex;

/// The most [`World::catch_up_allowance`] adds to [`LIVENESS_BOUND`]: the
/// run stops [`DRAIN_LIMIT`] after the heal, and the settle window must fit
/// before that.
const MAX_CATCH_UP_ALLOWANCE: Nanos = DRAIN_LIMIT - LIVENESS_BOUND - SETTLE_WINDOW;

/// How long copying `lag` entries takes at `per_round_trip` entries per
/// round trip of `round_trip`, at most [`MAX_CATCH_UP_ALLOWANCE`].
fn catch_up_time(lag: u64, per_round_trip: u64, round_trip: Nanos) -> Nanos {
    lag.div_ceil(per_round_trip.max(1))
        .saturating_mul(round_trip)
        .min(MAX_CATCH_UP_ALLOWANCE)
}

impl World {
    /// Time, beyond [`LIVENESS_BOUND`], that the healed cluster needs to
    /// copy the log a live node lags by at the heal, at the pace the drawn
    /// Raft settings allow: `entries per append × appends in flight` entries
    /// per round trip (two network hops at the drawn maximum latency and a
    /// disk write, doubled for the disk's tail). Without it, one entry per
    /// append with one in flight (stop-and-wait, a setting raftlab
    /// supports) failed the bound with a member 730 entries behind that the
    /// quorum needed: each entry one round trip, 15 s of copying, no fault
    /// (seed 11, `--clients 30 --swarm off`). Capped so that the run still
    /// lasts long enough to check it.
    pub(super) fn catch_up_allowance(&self) -> Nanos {
        let lasts = self
            .nodes
            .iter()
            .filter_map(|n| Some(n.replica.as_ref()?.raft().last_index().0));
        let (lo, hi) = lasts.fold((u64::MAX, 0), |(lo, hi), i| (lo.min(i), hi.max(i)));
        if lo > hi {
            return 0;
        }
        let knobs = &self.params.raft;
        let per_round_trip = (knobs.max_entries_per_append * knobs.max_inflight_appends) as u64;
        let round_trip =
            2 * self.params.latency_max_us * 1_000 + 2 * self.params.disk_latency_us * 1_000;
        catch_up_time(hi - lo, per_round_trip, round_trip)
    }

    /// Whether the run may stop once every client is done: without the
    /// liveness check at once; with it, once a node leads (or the bound has
    /// passed, to report that none did).
    pub(super) fn settled(&self) -> bool {
        let Some(healed) = self.healed_at else {
            return true;
        };
        if !self.config.liveness || self.now >= healed + self.liveness_bound {
            return true;
        }
        let Some(leader_at) = self.leader_after_heal else {
            return false;
        };
        self.now >= leader_at + SETTLE_WINDOW
            && self
                .lagging_members()
                .is_some_and(|(_, lagging)| lagging.is_empty())
    }

    /// The current leader's commit index and the live members of its
    /// configuration below it; `None` without a leader.
    fn lagging_members(&self) -> Option<(LogIndex, Vec<(u64, LogIndex)>)> {
        let leader = self.leader_index()?;
        let raft = self.nodes[leader].replica.as_ref()?.raft();
        let members: Vec<(u64, LogIndex)> = raft
            .membership()
            .members()
            .iter()
            .filter_map(|&id| {
                let node = self.node_index(id)?;
                let replica = self.nodes[node].replica.as_ref()?;
                Some((id.0, replica.raft().commit_index()))
            })
            .collect();
        let commit = raft.commit_index();
        Some((commit, catch_up::lagging(commit, &members)))
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
        let bound = self.liveness_bound;
        let deadline = healed + bound;
        if self.leader_index().is_none() {
            self.liveness.push(format!(
                "no leader {}ms after the heal (bound {}ms)",
                (self.now - healed) / MS,
                bound / MS
            ));
        } else if let Some(at) = self.leader_after_heal
            && at > deadline
        {
            self.liveness.push(format!(
                "the first leader after the heal emerged {}ms after it, beyond the bound of {}ms",
                (at - healed) / MS,
                bound / MS
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
        if self.now >= deadline
            && let Some((commit, lagging)) = self.lagging_members()
        {
            let behind: Vec<String> = lagging
                .iter()
                .filter(|&&(node, _)| {
                    let moved_at = self.nodes[node as usize - 1].commit_moved_at;
                    catch_up::stalled(moved_at, self.now)
                })
                .map(|(node, at)| format!("n{node} at {at}"))
                .collect();
            if !behind.is_empty() {
                self.liveness.push(format!(
                    "members stalled behind the leader's commit index {commit} {}ms after the heal (no progress for {}ms): {}",
                    (self.now - healed) / MS,
                    catch_up::STALL / MS,
                    behind.join(", ")
                ));
            }
        }
        // Raft defends against a disruptive server in every configuration:
        // pre-vote (§9.6) when on, and always the leader's lease (§4.2.3,
        // which raft applies with check-quorum off too; before it did, a
        // removed server raised every member's term with both off:
        // drawn-config seeds 94 and 190). Only the members of
        // the leader's configuration count: a removed server that never
        // learnt of it may raise its own term forever without disrupting
        // anyone.
        // Nor while messages held during the chaos are still being replayed
        // after the heal: a held vote request of a high term legitimately
        // raises terms then (seed 11, swarm off, 8 s, disk faults).
        let replaying = self.held_until > healed;
        if let Some(settled) = self.term_after_heal.filter(|_| !replaying) {
            let members = self.leader_index().and_then(|l| {
                Some(
                    self.nodes[l]
                        .replica
                        .as_ref()?
                        .raft()
                        .membership()
                        .members(),
                )
            });
            let terms: Vec<(u64, raft::Term)> = self
                .nodes
                .iter()
                .filter(|n| members.as_ref().is_none_or(|m| m.contains(&n.id)))
                .filter_map(|n| Some((n.id.0, n.replica.as_ref()?.raft().term())))
                .collect();
            let leader_term = self
                .leader_index()
                .and_then(|l| Some(self.nodes[l].replica.as_ref()?.raft().term()));
            let pre_vote = self.params.raft.pre_vote;
            if let Some(report) = term_inflation::inflation(settled, leader_term, pre_vote, &terms)
            {
                self.liveness.push(report);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_time_is_a_round_trip_per_batch_of_entries_capped() {
        // Seed 11's settings: stop-and-wait, 10.9 ms latency at most, 2 ms
        // writes: a round trip of 25.8 ms per entry.
        let round_trip = 2 * 10_900_000 + 2 * 2_000_000;
        assert_eq!(catch_up_time(730, 1, round_trip), 730 * round_trip);
        assert!(catch_up_time(730, 1, round_trip) > 18_000 * MS);
        // 64 entries per append, 8 in flight: two round trips.
        assert_eq!(catch_up_time(730, 64 * 8, round_trip), 2 * round_trip);
        assert_eq!(catch_up_time(0, 1, round_trip), 0);
        // Never more than the run has room to check.
        assert_eq!(
            catch_up_time(1_000_000, 1, round_trip),
            MAX_CATCH_UP_ALLOWANCE
        );
        assert_eq!(MAX_CATCH_UP_ALLOWANCE, 19_000 * MS);
    }
}
