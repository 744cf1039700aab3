//! The nemesis's process and network faults: partitions and heals, crashes
//! and restarts, clock jumps.

use super::*;

impl World {
    /// A clock jump on a random live node (see `jump_clock`).
    pub(super) fn clock_jump(&mut self) {
        if self.chaos_over {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some())
            .collect();
        if !up.is_empty() {
            let node = up[self.clock_rng.index(up.len())];
            let ms = self.clock_rng.range(1, self.params.clock_jump_max_ms + 1) as i64;
            let ms = if self.clock_rng.chance(0.5) { ms } else { -ms };
            self.jump_clock(node, ms);
        }
        let every = self.params.clock_jump_every_ms * MS;
        let next = self.now + self.clock_rng.range(every / 2, every + every / 2);
        self.queue.push(next, Event::ClockJump);
    }

    pub(super) fn partition(&mut self) {
        if self.chaos_over {
            return;
        }
        let n = self.nodes.len();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.nemesis.index(i + 1);
            order.swap(i, j);
        }
        let shape = self.nemesis.range(0, 5);
        let partition = match shape {
            0 => {
                let target = self.leader_index().unwrap_or(order[0]);
                Partition::split(n, &[target], format!("isolate leader n{}", target + 1))
            }
            1 => Partition::split(n, &[order[0]], format!("isolate n{}", order[0] + 1)),
            2 => {
                let minority = &order[..n.div_ceil(2) - 1];
                let desc = format!(
                    "split {} | {}",
                    names(minority),
                    names(&order[minority.len()..])
                );
                Partition::split(n, minority, desc)
            }
            3 => Partition::bridge(n, &order),
            _ => Partition::one_way_out(n, self.leader_index().unwrap_or(order[0])),
        };
        self.apply_partition(partition);
        let lasts = self
            .nemesis
            .range(200 * MS, self.params.partition_max_ms * MS + 1);
        self.queue.push(self.now + lasts, Event::Heal);
        let every = self.params.partition_every_ms * MS;
        let next = self.now + lasts + self.nemesis.range(every / 2, every + every / 2);
        self.queue.push(next, Event::Partition);
    }

    /// Puts `partition` in force (replacing any other).
    pub(super) fn apply_partition(&mut self, partition: Partition) {
        self.stats.partitions += 1;
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault(format!("partition: {partition}")),
        );
        let cut = partition
            .cut_links()
            .into_iter()
            .map(|(from, to)| (from as u64 + 1, to as u64 + 1))
            .collect();
        self.mark(TimelineEvent::Partitioned {
            shape: partition.shape.clone(),
            cut,
        });
        self.net.partition(partition);
    }

    pub(super) fn heal(&mut self) {
        if self.net.current_partition().is_active() {
            self.trace(Actor::Nemesis, TraceEvent::Fault("heal network".into()));
            self.net.partition(Partition::none(self.nodes.len()));
            self.mark(TimelineEvent::Healed);
        }
    }

    pub(super) fn crash(&mut self) {
        if self.chaos_over {
            return;
        }
        let voters = self.current_voters();
        let n = voters.len();
        let down = voters
            .iter()
            .filter(|&&i| self.nodes[i].replica.is_none())
            .count();
        let every = self.params.crash_every_ms * MS;
        // Keep a majority of the voters up during the chaos, so the run
        // makes progress; safety does not depend on it.
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some())
            .collect();
        if down < n.saturating_sub(1) / 2 && !up.is_empty() {
            let victim = match self.leader_index() {
                Some(leader) if self.nemesis.chance(0.4) => leader,
                _ => up[self.nemesis.index(up.len())],
            };
            self.stats.crashes += 1;
            self.trace(
                Actor::Nemesis,
                TraceEvent::Fault(format!("crash n{}", victim + 1)),
            );
            self.take_down(victim);
            self.mark(TimelineEvent::Crashed {
                node: victim as u64 + 1,
            });
            let downtime = self
                .nemesis
                .range(10 * MS, self.params.downtime_max_ms * MS + 1);
            self.queue
                .push(self.now + downtime, Event::Restart { node: victim });
        }
        let next = self.now + self.nemesis.range(every / 2, every + every / 2);
        self.queue.push(next, Event::Crash);
    }

    /// Power loss: the process and every unsynced write are gone.
    pub(super) fn take_down(&mut self, node: usize) {
        self.stop_leading(node);
        self.drop_writes_in_flight(node);
        let slot = &mut self.nodes[node];
        slot.replica = None;
        slot.storage = None;
        slot.incarnation += 1;
        slot.paused_until = None;
        slot.held.clear();
        slot.missed_ticks = 0;
        slot.disk.crash();
    }

    pub(super) fn restart(&mut self, node: usize) {
        let slot = &self.nodes[node];
        if slot.replica.is_some()
            || slot.failed.is_some()
            || slot.dormant
            || slot.retired
            || slot.gone_for_good
        {
            return;
        }
        let id = self.nodes[node].id.0;
        self.trace(Actor::Nemesis, TraceEvent::Fault(format!("restart n{id}")));
        self.invariants.restarted(id);
        self.mark(TimelineEvent::Restarted { node: id });
        self.start_node(node);
    }
}
