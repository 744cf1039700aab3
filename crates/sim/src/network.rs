//! The simulated network between replicas: latency (whose spread reorders
//! messages), loss, duplication, partitions by shape, and partitions that
//! hold messages and replay them seconds later.

use crate::queue::Nanos;
use crate::rng::SimRng;
use std::fmt;

/// What the network decides for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost at random.
    Lost,
    /// Blocked by a partition.
    Partitioned,
    /// Delivered after each of these delays (two of them: duplicated).
    Delivered(Vec<Nanos>),
    /// Cut by a partition that holds it, and delivered after this delay
    /// whatever the network is like then (hold and replay).
    Held(Nanos),
}

/// A partition: which directed links are cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// `cut[from][to]`: messages from `from` to `to` are lost.
    cut: Vec<Vec<bool>>,
    /// What the partition looks like, for the trace and the report.
    pub shape: String,
}

impl Partition {
    /// No link cut among `nodes` nodes.
    pub fn none(nodes: usize) -> Partition {
        Partition {
            cut: vec![vec![false; nodes]; nodes],
            shape: "healed".into(),
        }
    }

    /// Cuts every link between the two sides, both ways.
    pub fn split(nodes: usize, side_a: &[usize], shape: String) -> Partition {
        let mut p = Partition::none(nodes);
        p.shape = shape;
        for from in 0..nodes {
            for to in 0..nodes {
                p.cut[from][to] = side_a.contains(&from) != side_a.contains(&to);
            }
        }
        p
    }

    /// Two halves that can talk only through one bridge node (Jepsen's
    /// "bridge"): the bridge sees everyone, the halves do not see each other.
    pub fn bridge(nodes: usize, order: &[usize]) -> Partition {
        let bridge = order[nodes / 2];
        let left: Vec<usize> = order[..nodes / 2].to_vec();
        let mut p = Partition::split(nodes, &left, String::new());
        for n in 0..nodes {
            p.cut[bridge][n] = false;
            p.cut[n][bridge] = false;
        }
        p.shape = format!(
            "bridge {} <-n{}-> {}",
            names(&left),
            bridge + 1,
            names(&order[nodes / 2 + 1..])
        );
        p
    }

    /// Each node of `order` talks only to its two neighbours in it, in a
    /// circle (Jepsen's "ring"): every node sees a majority of a 5-ring
    /// only through others, so no two nodes agree on who is reachable.
    pub fn ring(nodes: usize, order: &[usize]) -> Partition {
        let mut p = Partition::none(nodes);
        let k = order.len();
        for (i, &a) in order.iter().enumerate() {
            let (prev, next) = (order[(i + k - 1) % k], order[(i + 1) % k]);
            for &b in order {
                p.cut[a][b] = a != b && b != prev && b != next;
            }
        }
        p.shape = format!("ring {}", names(order));
        p
    }

    /// Messages from `from` to everyone else are lost, but it still hears
    /// them (a one-way partition: the classic source of disruptive servers).
    pub fn one_way_out(nodes: usize, from: usize) -> Partition {
        let mut p = Partition::none(nodes);
        for to in 0..nodes {
            p.cut[from][to] = to != from;
        }
        p.shape = format!("one-way: n{} cannot send", from + 1);
        p
    }

    /// Whether the link from `from` to `to` is cut.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cut[from][to]
    }

    /// Every cut directed link, as (from, to) node indices.
    pub fn cut_links(&self) -> Vec<(usize, usize)> {
        let mut links = Vec::new();
        for (from, row) in self.cut.iter().enumerate() {
            for (to, cut) in row.iter().enumerate() {
                if *cut {
                    links.push((from, to));
                }
            }
        }
        links
    }

    /// Whether any link is cut.
    pub fn is_active(&self) -> bool {
        self.cut.iter().any(|row| row.iter().any(|c| *c))
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shape)
    }
}

/// Names of nodes by index, as `{n1,n3}`.
pub fn names(nodes: &[usize]) -> String {
    let inner: Vec<String> = nodes.iter().map(|n| format!("n{}", n + 1)).collect();
    format!("{{{}}}", inner.join(","))
}

/// The shortest heavy-tail delay: longer than any latency the network
/// draws otherwise, and than an election timeout.
pub const LONG_DELAY_MIN: Nanos = 300 * crate::queue::MS;

/// Whether a delivery delay is a heavy-tail one.
pub fn is_long_delay(delay: Nanos) -> bool {
    delay >= LONG_DELAY_MIN
}

/// The network model for one run.
pub struct Network {
    rng: SimRng,
    latency_min: Nanos,
    latency_max: Nanos,
    drop_rate: f64,
    duplicate_rate: f64,
    /// Heavy tail: the share of messages delayed far beyond the latency
    /// range, and the longest such delay.
    long_delay_rate: f64,
    long_delay_max: Nanos,
    partition: Partition,
    /// Hold and replay: what holds a share of the partitioned messages.
    hold: Option<Hold>,
}

/// Hold and replay (see `Families::holds`): a partition that buffers a
/// share of what it cuts and releases each message later. Draws from a
/// stream of its own, and only for cut messages, so that runs without it
/// draw as before.
struct Hold {
    rng: SimRng,
    /// The share of cut messages held, in 0..=1.
    share: f64,
    /// How long a held message is held: within `min..=max`.
    min: Nanos,
    max: Nanos,
}

impl Network {
    /// A network drawing from `rng` with the given behaviour.
    pub fn new(
        rng: SimRng,
        nodes: usize,
        latency: (Nanos, Nanos),
        drop_rate: f64,
        duplicate_rate: f64,
    ) -> Network {
        Network {
            rng,
            latency_min: latency.0,
            latency_max: latency.1,
            drop_rate,
            duplicate_rate,
            long_delay_rate: 0.0,
            long_delay_max: 0,
            partition: Partition::none(nodes),
            hold: None,
        }
    }

    /// Holds a share `share` of the messages a partition cuts, each for
    /// `min..=max`, drawing from `rng` (see `Families::holds`).
    pub fn with_holds(mut self, rng: SimRng, share: f64, min: Nanos, max: Nanos) -> Network {
        if share > 0.0 {
            self.hold = Some(Hold {
                rng,
                share,
                min,
                max: max.max(min),
            });
        }
        self
    }

    /// Delays a share `rate` of messages by up to `max` (at least
    /// [`LONG_DELAY_MIN`]): a heavy tail, so that some messages arrive
    /// after elections, restarts and configuration changes.
    pub fn with_long_delays(mut self, rate: f64, max: Nanos) -> Network {
        self.long_delay_rate = rate;
        self.long_delay_max = max.max(LONG_DELAY_MIN);
        self
    }

    /// What happens to one message between replicas.
    pub fn fate(&mut self, from: usize, to: usize) -> Fate {
        // Draw every random value whatever the outcome, so that a partition
        // does not shift the draws of the messages after it.
        let lost = self.rng.chance(self.drop_rate);
        let duplicated = self.rng.chance(self.duplicate_rate);
        let long = self.rng.chance(self.long_delay_rate);
        let extra = self
            .rng
            .range(LONG_DELAY_MIN, self.long_delay_max.max(LONG_DELAY_MIN) + 1);
        let first = self.latency() + if long { extra } else { 0 };
        let second = self.latency();
        if self.partition.is_cut(from, to) {
            match &mut self.hold {
                Some(hold) => {
                    let held = hold.rng.chance(hold.share);
                    let delay = hold.rng.range(hold.min, hold.max + 1);
                    if held {
                        Fate::Held(delay)
                    } else {
                        Fate::Partitioned
                    }
                }
                None => Fate::Partitioned,
            }
        } else if lost {
            Fate::Lost
        } else if duplicated {
            Fate::Delivered(vec![first, second])
        } else {
            Fate::Delivered(vec![first])
        }
    }

    /// Ends the heavy tail (the heal at the end of the chaos); the draws go
    /// on as before, so nothing else shifts.
    pub fn end_long_delays(&mut self) {
        self.long_delay_rate = 0.0;
    }

    /// One latency draw, for messages between clients and replicas too
    /// (clients are never partitioned from replicas: a client talking to a
    /// deposed leader is the more interesting case, and it arises anyway).
    pub fn latency(&mut self) -> Nanos {
        self.rng.range(self.latency_min, self.latency_max + 1)
    }

    /// Installs a partition (replacing any other).
    pub fn partition(&mut self, partition: Partition) {
        self.partition = partition;
    }

    /// The partition in force.
    pub fn current_partition(&self) -> &Partition {
        &self.partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_links_each_node_to_its_two_neighbours_only() {
        let p = Partition::ring(5, &[0, 1, 2, 3, 4]);
        assert!(!p.is_cut(0, 1) && !p.is_cut(0, 4) && !p.is_cut(2, 1));
        assert!(p.is_cut(0, 2) && p.is_cut(1, 3) && p.is_cut(4, 2));
    }
    use crate::rng::Concern;

    #[test]
    fn a_split_cuts_exactly_the_links_between_sides() {
        let p = Partition::split(5, &[0, 1], "x".into());
        assert!(p.is_cut(0, 2) && p.is_cut(2, 0));
        assert!(!p.is_cut(0, 1) && !p.is_cut(2, 4));
    }

    #[test]
    fn a_bridge_node_sees_both_sides() {
        let p = Partition::bridge(5, &[0, 1, 2, 3, 4]);
        assert!(!p.is_cut(2, 0) && !p.is_cut(2, 4) && !p.is_cut(0, 2));
        assert!(p.is_cut(0, 3) && p.is_cut(4, 1));
    }

    #[test]
    fn one_way_partition_blocks_only_outgoing_links() {
        let p = Partition::one_way_out(3, 1);
        assert!(p.is_cut(1, 0) && p.is_cut(1, 2));
        assert!(!p.is_cut(0, 1) && !p.is_cut(2, 1));
    }

    #[test]
    fn partitioned_messages_never_arrive_and_others_arrive_within_bounds() {
        let rng = SimRng::for_concern(1, Concern::Network);
        let mut net = Network::new(rng, 3, (100, 200), 0.0, 0.0);
        net.partition(Partition::split(3, &[0], "x".into()));
        assert_eq!(net.fate(0, 1), Fate::Partitioned);
        match net.fate(1, 2) {
            Fate::Delivered(d) => assert!(d.len() == 1 && (100..=200).contains(&d[0])),
            other => panic!("expected delivery, got {other:?}"),
        }
    }
}
