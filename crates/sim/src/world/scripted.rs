//! Carrying out scripted faults (see [`crate::script`]).

use super::{Event, World};
use crate::network::Partition;
use crate::queue::MS;
use crate::queue::Nanos;
use crate::script::Action;
use crate::timeline::TimelineEvent;
use crate::trace::{Actor, TraceEvent};
use replica::Input;

/// The longest a scripted wipe waits for the node's data to be committed.
const WIPE_WAIT: Nanos = 2_000 * MS;

impl World {
    /// Carries out one scripted fault. Faults on nodes that are already in
    /// the state asked for (crashing a node that is down) do nothing.
    pub(super) fn scripted(&mut self, action: Action) {
        self.mark(TimelineEvent::Scripted {
            action: format!("{action:?}"),
        });
        let n = self.nodes.len();
        let founders: Vec<usize> = (0..self.config.nodes).collect();
        match action {
            Action::Crash { node } => self.scripted_crash(node as usize - 1),
            Action::CrashForGood { node } => {
                let i = node as usize - 1;
                self.scripted_crash(i);
                self.nodes[i].gone_for_good = true;
            }
            Action::Restart { node } => self.restart(node as usize - 1),
            Action::CrashAll => (0..n).for_each(|i| self.scripted_crash(i)),
            Action::RestartAll => (0..n).for_each(|i| self.restart(i)),
            Action::Isolate { node } => {
                let i = node as usize - 1;
                self.apply_partition(Partition::split(n, &[i], format!("isolate n{node}")));
            }
            Action::IsolateLeader => {
                if let Some(leader) = self.leader_index() {
                    let desc = format!("isolate leader n{}", leader + 1);
                    self.apply_partition(Partition::split(n, &[leader], desc));
                }
            }
            Action::Split { side } => {
                let side: Vec<usize> = side.iter().map(|&id| id as usize - 1).collect();
                let desc = format!("split {}", crate::network::names(&side));
                self.apply_partition(Partition::split(n, &side, desc));
            }
            Action::Bridge => self.apply_partition(Partition::bridge(n, &founders)),
            Action::Ring => self.apply_partition(Partition::ring(n, &founders)),
            Action::OneWayLeader => {
                if let Some(leader) = self.leader_index() {
                    self.apply_partition(Partition::one_way_out(n, leader));
                }
            }
            Action::Heal => self.heal(),
            Action::LeaderClockDrift { drift_ppm } => {
                if let Some(leader) = self.leader_index() {
                    self.trace(
                        Actor::Nemesis,
                        TraceEvent::Fault(format!(
                            "clock drift of leader n{} set to {drift_ppm} ppm",
                            leader + 1
                        )),
                    );
                    self.params.clock_drift_ppm[leader] = drift_ppm;
                    self.mark(TimelineEvent::ClockDrift {
                        node: leader as u64 + 1,
                        ppm: drift_ppm,
                    });
                }
            }
            Action::ClockJump { node, ms } => self.jump_clock(node as usize - 1, ms),
            Action::Pause { node, ms } => {
                let i = node as usize - 1;
                if self.nodes[i].replica.is_some() && self.nodes[i].paused_until.is_none() {
                    self.pause_node(i, ms * MS);
                }
            }
            Action::PauseLeader { ms } => {
                if let Some(leader) = self.leader_index()
                    && self.nodes[leader].paused_until.is_none()
                {
                    self.pause_node(leader, ms * MS);
                }
            }
            Action::RemoveLeader => {
                if let Some(leader) = self.leader_index() {
                    self.remove_leader(leader);
                }
            }
            Action::SlowLeaderDisk { factor } => {
                if let Some(leader) = self.leader_index() {
                    let id = self.nodes[leader].id.0;
                    self.trace(
                        Actor::Nemesis,
                        TraceEvent::Fault(format!("slow disk on leader n{id} ({factor}x)")),
                    );
                    if !self.params.slow_disks.contains(&id) {
                        self.params.slow_disks.push(id);
                    }
                    self.params.slow_disk_factor = factor;
                }
            }
            Action::Wipe { node } => {
                let i = node as usize - 1;
                self.scripted_crash(i);
                self.wipe_when_safe(i, self.now);
            }
        }
    }

    /// Replaces the crashed `node`'s disk by an empty one once everything
    /// it held durably is committed (checked every 10 ms, for at most
    /// [`WIPE_WAIT`]): as an operator replaces a failed disk once the data
    /// on it is safe elsewhere. Wiping earlier destroys a copy the leader
    /// may still count toward a commit (the node acknowledged it durably),
    /// which the commit-safety invariant rightly reports: a lost disk, not
    /// a Raft bug (found when a timing change moved a wipe into that
    /// window: `a_wiped_node_catches_up_by_snapshot`, seed 6).
    pub(super) fn wipe_when_safe(&mut self, node: usize, since: Nanos) {
        let id = node as u64 + 1;
        if self.nodes[node].replica.is_some() {
            // Restarted meanwhile (the heal restarts every node): down again.
            self.scripted_crash(node);
        }
        let held = self.invariants.durable_last_index(id);
        let safe = self.committed_index() >= held;
        if !safe && self.now < since + WIPE_WAIT {
            self.queue
                .push(self.now + 10 * MS, Event::WipeWhenSafe { node, since });
            return;
        }
        self.trace(Actor::Nemesis, TraceEvent::Fault(format!("wipe n{id}")));
        self.nodes[node].disk.wipe();
        self.invariants.wiped(id);
        self.queue.push(self.now, Event::Restart { node });
    }

    /// Jumps `node`'s clock by `ms`: forwards, it fires the ticks it
    /// skipped at once (its timers expire early); backwards, it ticks no
    /// more until its clock reads the same time again.
    pub(super) fn jump_clock(&mut self, node: usize, ms: i64) {
        if self.nodes[node].replica.is_none() {
            return;
        }
        self.clock_jumped = true;
        let sign = if ms >= 0 { "+" } else { "" };
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault(format!("clock jump n{} {sign}{ms}ms", node + 1)),
        );
        self.mark(TimelineEvent::ClockJumped {
            node: node as u64 + 1,
            ms,
        });
        if ms >= 0 {
            let ticks = (ms.unsigned_abs() / self.params.tick_ms).min(1_000);
            for _ in 0..ticks {
                if self.nodes[node].replica.is_none() {
                    break;
                }
                self.step(node, Input::Tick);
            }
        } else {
            self.nodes[node].clock_paused_until = self.now + ms.unsigned_abs() * MS;
        }
    }

    fn scripted_crash(&mut self, node: usize) {
        if self.nodes[node].replica.is_none() {
            return;
        }
        let id = node as u64 + 1;
        self.stats.crashes += 1;
        self.trace(Actor::Nemesis, TraceEvent::Fault(format!("crash n{id}")));
        self.take_down(node);
        self.mark(TimelineEvent::Crashed { node: id });
    }

    /// Whether the clocks are within the bound lease reads assume (see
    /// `raft::Config::lease_read_ticks`): the leader's lease, on the slowest
    /// clock, ends before the shortest election timeout on the fastest
    /// one, and no clock ever jumped.
    pub(super) fn lease_within_drift_bound(&self) -> bool {
        let lease = u128::from(self.params.lease_read_ticks());
        let election = u128::from(self.params.election_ticks);
        let rates = self
            .params
            .clock_drift_ppm
            .iter()
            .map(|&ppm| (1_000_000 + ppm).max(1) as u128);
        let (fastest, slowest) = rates.fold((0, u128::MAX), |(f, s), r| (f.max(r), s.min(r)));
        !self.clock_jumped && (fastest == 0 || lease * fastest <= election * slowest)
    }
}
