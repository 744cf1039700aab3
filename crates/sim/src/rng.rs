//! Independent random streams derived from one root seed.
//!
//! Each concern (network, nemesis, workload, each node, ...) draws from its
//! own ChaCha stream, so that changing how much one concern draws (a new
//! workload mix, say) does not shift what another one sees: a seed stays a
//! meaningful bug report across small changes of the harness.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use stablehash::splitmix64;

/// The concerns that own a random stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concern {
    /// Parameters drawn once per run (fault rates, latencies).
    Params,
    /// Message latency, loss, duplication.
    Network,
    /// When and which faults strike.
    Nemesis,
    /// Which operations clients issue, and where.
    Workload,
    /// One node's raft seeds (election jitter), per incarnation.
    Node(u64),
    /// One node's disk faults.
    Disk(u64),
    /// Which membership changes the nemesis makes, and when.
    Churn,
    /// Clock jumps: when, where, how far.
    Clock,
    /// One node's disk latency: how long each write takes.
    DiskLatency(u64),
    /// Process pauses and fast restarts: when, which node, how long.
    Process,
    /// Hold and replay: which partitioned messages are held, how long.
    Hold,
}

impl Concern {
    fn tag(self) -> u64 {
        match self {
            Concern::Params => 1,
            Concern::Network => 2,
            Concern::Nemesis => 3,
            Concern::Workload => 4,
            Concern::Node(n) => 1_000 + n,
            Concern::Disk(n) => 2_000 + n,
            Concern::Churn => 5,
            Concern::Clock => 6,
            Concern::Process => 7,
            Concern::Hold => 8,
            Concern::DiskLatency(n) => 3_000 + n,
        }
    }
}

/// A random stream with the few draws the simulator needs.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The stream for `concern` under `root_seed`.
    pub fn for_concern(root_seed: u64, concern: Concern) -> SimRng {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(splitmix64(root_seed ^ splitmix64(concern.tag()))),
        }
    }

    /// A uniformly random 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniformly random value in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        // Multiply-shift: unbiased enough for simulation, and never loops.
        let span = hi - lo;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// A uniformly random index below `len` (which must be positive).
    pub fn index(&mut self, len: usize) -> usize {
        debug_assert!(len > 0, "index into an empty range");
        self.range(0, len as u64) as usize
    }

    /// A uniformly random value in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_concern_give_the_same_stream() {
        let mut a = SimRng::for_concern(7, Concern::Network);
        let mut b = SimRng::for_concern(7, Concern::Network);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn concerns_draw_independent_streams() {
        let mut a = SimRng::for_concern(7, Concern::Network);
        let mut b = SimRng::for_concern(7, Concern::Workload);
        let mut c = SimRng::for_concern(8, Concern::Network);
        let x = a.next_u64();
        assert_ne!(x, b.next_u64());
        assert_ne!(x, c.next_u64());
    }

    #[test]
    fn range_stays_within_bounds() {
        let mut rng = SimRng::for_concern(1, Concern::Params);
        for _ in 0..10_000 {
            let v = rng.range(5, 9);
            assert!((5..9).contains(&v));
        }
        assert_eq!(rng.range(3, 3), 3);
    }
}
