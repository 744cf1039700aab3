//! The simulator as a storage executor: a replica's writes take virtual
//! time on its disk, complete in order, and a crash catches them in flight.
//!
//! A write is issued at once ([`replica::Storage::write`]: the bytes reach
//! the simulated page cache, unsynced, so a crash loses or tears them) and
//! completes after a latency drawn per write from the node's own stream:
//! the seed's typical latency, a heavy tail, and on a slow disk a factor of
//! 10–100 and stalls of up to a second. Completion is the sync
//! ([`replica::Storage::sync`]); only then does the replica hear
//! `WriteDone`. A disk works through its writes one after another, so they
//! complete in the order issued.

use super::{Event, World};
use crate::queue::{MS, Nanos};
use crate::trace::{Actor, TraceEvent};
use replica::{Input, Write, WriteId};

/// A write handed to a node's disk and not yet complete.
#[derive(Clone, Debug)]
pub(super) struct WriteInFlight {
    pub id: WriteId,
    pub issued: Nanos,
}

/// Latencies and group-commit sizes, for the summary.
#[derive(Clone, Debug, Default)]
pub struct WriteStats {
    /// Writes completed.
    pub writes: u64,
    /// Each completed write's latency from issue to sync, in µs.
    pub latencies_us: Vec<u32>,
    /// Entries per completed write that carried entries (group commit).
    pub entries_per_sync: Vec<u32>,
    /// Writes in flight when their node crashed (lost or torn).
    pub in_flight_at_crashes: u64,
    /// The most writes any node had in flight at once.
    pub max_in_flight: u64,
}

impl WriteStats {
    /// The median, 99th percentile and maximum of `values` (0 when empty).
    pub fn percentiles(values: &[u32]) -> (u32, u32, u32) {
        if values.is_empty() {
            return (0, 0, 0);
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99), *sorted.last().expect("non-empty"))
    }
}

/// What a run's disks and processes did, for the summary: how long writes
/// took, how much each sync carried, and the faults that came with
/// asynchronous storage.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StorageSummary {
    /// Writes completed (one sync each).
    pub writes: u64,
    /// Write latency from issue to completed sync, in µs: median.
    pub fsync_latency_median_us: u32,
    /// ... 99th percentile.
    pub fsync_latency_p99_us: u32,
    /// ... maximum.
    pub fsync_latency_max_us: u32,
    /// Entries per sync (group commit), over writes that carried entries:
    /// median.
    pub entries_per_fsync_median: u32,
    /// ... maximum.
    pub entries_per_fsync_max: u32,
    /// The most writes one node had in flight at once.
    pub max_writes_in_flight: u64,
    /// Writes in flight when their node crashed (lost or torn).
    pub writes_in_flight_at_crashes: u64,
    /// Process pauses.
    pub pauses: u64,
    /// Crashes whose node was back before one network delay.
    pub fast_restarts: u64,
    /// Messages delayed far beyond the latency range.
    pub long_delayed_messages: u64,
    /// The slow disks of this run (node ids; empty without the family).
    pub slow_disks: Vec<u64>,
}

impl StorageSummary {
    /// The summary of a run's counters.
    pub fn of(stats: &super::Stats, slow_disks: &[u64]) -> StorageSummary {
        let w = &stats.writes;
        let (lat_med, lat_p99, lat_max) = WriteStats::percentiles(&w.latencies_us);
        let (ent_med, _, ent_max) = WriteStats::percentiles(&w.entries_per_sync);
        StorageSummary {
            writes: w.writes,
            fsync_latency_median_us: lat_med,
            fsync_latency_p99_us: lat_p99,
            fsync_latency_max_us: lat_max,
            entries_per_fsync_median: ent_med,
            entries_per_fsync_max: ent_max,
            max_writes_in_flight: w.max_in_flight,
            writes_in_flight_at_crashes: w.in_flight_at_crashes,
            pauses: stats.pauses,
            fast_restarts: stats.fast_restarts,
            long_delayed_messages: stats.long_delayed,
            slow_disks: slow_disks.to_vec(),
        }
    }
}

impl World {
    /// Issues `write` on `node`'s disk and schedules its completion.
    pub(super) fn issue_write(&mut self, node: usize, write: Write) {
        let id = self.nodes[node].id.0;
        let Some(storage) = self.nodes[node].storage.as_mut() else {
            return;
        };
        if let Err(e) = storage.write(&write) {
            self.halt(node, replica::ReplicaError::from(e));
            return;
        }
        if let Some(entries) = (!write.entries.is_empty()).then_some(write.entries.len()) {
            self.stats
                .writes
                .entries_per_sync
                .push(u32::try_from(entries).unwrap_or(u32::MAX));
        }
        let latency = self.disk_latency(node);
        let slot = &mut self.nodes[node];
        // One disk, one queue: a write completes after the one before it.
        let done_at = (self.now + latency).max(slot.disk_busy_until);
        slot.disk_busy_until = done_at;
        slot.writes.push_back(WriteInFlight {
            id: write.id,
            issued: self.now,
        });
        let in_flight = slot.writes.len() as u64;
        self.stats.writes.max_in_flight = self.stats.writes.max_in_flight.max(in_flight);
        let incarnation = slot.incarnation;
        self.trace(
            Actor::Node(id),
            TraceEvent::WriteIssued {
                id: write.id.0,
                entries: write.entries.len() as u64,
                done_in_us: (done_at - self.now) / 1_000,
            },
        );
        self.queue.push(
            done_at,
            Event::WriteDone {
                node,
                incarnation,
                id: write.id,
            },
        );
    }

    /// The disk finished write `id`: sync, then tell the replica.
    pub(super) fn write_done(&mut self, node: usize, id: WriteId) {
        let slot = &mut self.nodes[node];
        let Some(done) = slot.writes.pop_front() else {
            return;
        };
        debug_assert_eq!(done.id, id, "a disk completes its writes in order");
        let Some(storage) = slot.storage.as_mut() else {
            return;
        };
        if let Err(e) = storage.sync() {
            self.halt(node, replica::ReplicaError::from(e));
            return;
        }
        let latency_us = (self.now - done.issued) / 1_000;
        self.stats.writes.writes += 1;
        self.stats
            .writes
            .latencies_us
            .push(u32::try_from(latency_us).unwrap_or(u32::MAX));
        self.step(node, Input::WriteDone(id));
    }

    /// How long the next write on `node`'s disk takes.
    fn disk_latency(&mut self, node: usize) -> Nanos {
        let p = &self.params;
        let slot = &mut self.nodes[node];
        let rng = &mut slot.disk_latency_rng;
        // Every value is drawn whatever the outcome, so that switching the
        // slow-disk family off changes nothing else.
        let base = p.disk_latency_us * 1_000;
        let jitter = rng.range(base / 2, base + base / 2 + 1);
        let tail = rng.chance(p.disk_tail_rate);
        let tail_factor = rng.range(2, p.disk_tail_factor.max(2) + 1);
        let stall = rng.chance(p.disk_stall_rate);
        let stall_for = rng.range(10 * MS, p.disk_stall_max_ms.max(10) * MS + 1);
        let mut latency = if tail { jitter * tail_factor } else { jitter };
        if p.slow_disks.contains(&slot.id.0) && !self.disks_healed {
            latency *= p.slow_disk_factor;
            if stall {
                latency += stall_for;
            }
        }
        latency.max(1)
    }

    /// A crash loses (or tears) every write in flight on `node`.
    pub(super) fn drop_writes_in_flight(&mut self, node: usize) {
        let slot = &mut self.nodes[node];
        self.stats.writes.in_flight_at_crashes += slot.writes.len() as u64;
        slot.writes.clear();
        // The disk's queue dies with the process; a restarted node's first
        // write waits for no one.
        slot.disk_busy_until = self.now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_few_values() {
        assert_eq!(WriteStats::percentiles(&[]), (0, 0, 0));
        assert_eq!(WriteStats::percentiles(&[5]), (5, 5, 5));
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(WriteStats::percentiles(&values), (51, 99, 100));
    }
}
