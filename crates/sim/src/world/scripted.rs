//! Carrying out scripted faults (see [`crate::script`]).

use super::{Event, World};
use crate::network::Partition;
use crate::script::Action;
use crate::timeline::TimelineEvent;
use crate::trace::{Actor, TraceEvent};

impl World {
    /// Carries out one scripted fault. Faults on nodes that are already in
    /// the state asked for (crashing a node that is down) do nothing.
    pub(super) fn scripted(&mut self, action: Action) {
        let n = self.nodes.len();
        match action {
            Action::Crash { node } => self.scripted_crash(node as usize - 1),
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
            Action::Heal => self.heal(),
            Action::Wipe { node } => {
                let i = node as usize - 1;
                self.scripted_crash(i);
                self.trace(Actor::Nemesis, TraceEvent::Fault(format!("wipe n{node}")));
                self.nodes[i].disk.wipe();
                self.invariants.wiped(node);
                self.queue.push(self.now, Event::Restart { node: i });
            }
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
}
