//! Process faults besides crashes: pauses (SIGSTOP, a long GC pause) and
//! fast restarts.
//!
//! A paused node handles nothing: its ticks, messages, client requests and
//! write completions wait. On resume it gets them as a real executor would:
//! the missed ticks at once (a monotonic timer that fell behind fires for
//! each period it missed), then everything queued, in arrival order. Its
//! disk keeps working meanwhile (the kernel does the IO); only the
//! completions wait to be read.
//!
//! A fast restart crashes a node and brings it back in less than one
//! network delay, so messages sent to the old process reach the new one.

use super::{Event, World};
use crate::queue::{MS, Nanos};
use crate::timeline::TimelineEvent;
use crate::trace::{Actor, TraceEvent};
use replica::Input;

impl World {
    /// Pauses a random live node (the leader now and then) for a while.
    pub(super) fn pause(&mut self) {
        if self.chaos_over {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some() && self.nodes[i].paused_until.is_none())
            .collect();
        let leader = self.leader_index();
        let pick_leader = self.process_rng.chance(0.4);
        let pick = self.process_rng.index(up.len().max(1));
        let how_long = self
            .process_rng
            .range(10 * MS, self.params.pause_max_ms * MS + 1);
        if !up.is_empty() {
            let node = match leader {
                Some(l) if pick_leader && self.nodes[l].paused_until.is_none() => l,
                _ => up[pick],
            };
            self.pause_node(node, how_long);
        }
        let every = self.params.pause_every_ms * MS;
        let next = self.now + self.process_rng.range(every / 2, every + every / 2);
        self.queue.push(next, Event::Pause);
    }

    /// Stops `node` handling anything for `how_long`.
    pub(super) fn pause_node(&mut self, node: usize, how_long: Nanos) {
        let id = self.nodes[node].id.0;
        let until = self.now + how_long;
        self.nodes[node].paused_until = Some(until);
        self.stats.pauses += 1;
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault(format!("pause n{id} for {}ms", how_long / MS)),
        );
        self.mark(TimelineEvent::Paused {
            node: id,
            until_ns: until,
        });
        let incarnation = self.nodes[node].incarnation;
        self.queue.push(until, Event::Resume { node, incarnation });
    }

    /// Whether `node` is paused; if so, `event` waits for the resume (a
    /// tick is counted as missed instead).
    pub(super) fn hold_if_paused(&mut self, node: usize, event: Event) -> Option<Event> {
        if self.nodes[node].paused_until.is_none() {
            return Some(event);
        }
        match event {
            Event::Tick { node, incarnation } => {
                // The timer keeps running while the process is stopped.
                self.nodes[node].missed_ticks += 1;
                let next = self.now + self.tick_interval(node);
                self.queue.push(next, Event::Tick { node, incarnation });
            }
            other => self.nodes[node].held.push(other),
        }
        None
    }

    /// The pause is over: the missed ticks at once, then what waited, in
    /// arrival order.
    pub(super) fn resume(&mut self, node: usize, incarnation: u64) {
        if self.nodes[node].incarnation != incarnation || self.nodes[node].paused_until.is_none() {
            return;
        }
        let id = self.nodes[node].id.0;
        self.nodes[node].paused_until = None;
        self.trace(Actor::Nemesis, TraceEvent::Fault(format!("resume n{id}")));
        self.mark(TimelineEvent::Resumed { node: id });
        let missed = std::mem::take(&mut self.nodes[node].missed_ticks);
        let held = std::mem::take(&mut self.nodes[node].held);
        if self.config.resume_ticks_first {
            self.missed_ticks(node, missed);
        }
        for event in held {
            if self.nodes[node].incarnation != incarnation {
                break;
            }
            self.dispatch(event);
        }
        if !self.config.resume_ticks_first && self.nodes[node].incarnation == incarnation {
            self.missed_ticks(node, missed);
        }
    }

    /// Hands `node` the ticks it missed, one after another.
    fn missed_ticks(&mut self, node: usize, missed: u32) {
        for _ in 0..missed {
            if self.nodes[node].replica.is_none() {
                break;
            }
            self.step(node, Input::Tick);
        }
    }

    /// Crashes a random live node and restarts it before one network delay
    /// has passed.
    pub(super) fn fast_restart(&mut self) {
        if self.chaos_over {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some())
            .collect();
        let pick = self.process_rng.index(up.len().max(1));
        let back_in = self
            .process_rng
            .range(1_000, (self.params.latency_min_us * 1_000).max(2_000));
        if !up.is_empty() {
            let node = up[pick];
            let id = self.nodes[node].id.0;
            self.stats.fast_restarts += 1;
            self.stats.crashes += 1;
            self.trace(
                Actor::Nemesis,
                TraceEvent::Fault(format!(
                    "fast restart n{id} (back in {}us)",
                    back_in / 1_000
                )),
            );
            self.take_down(node);
            self.mark(TimelineEvent::Crashed { node: id });
            self.queue.push(self.now + back_in, Event::Restart { node });
        }
        let every = self.params.fast_restart_every_ms * MS;
        let next = self.now + self.process_rng.range(every / 2, every + every / 2);
        self.queue.push(next, Event::FastRestart);
    }
}
