//! Safety invariants, checked online after every step of every node.
//!
//! Each check has one concern and names the rule it guards (Raft paper,
//! Figure 3). Logs are compared through chained hashes: the hash at index `i`
//! covers every entry up to `i`, so two logs agree on a whole prefix exactly
//! when they agree on the hash at its last index, and a check costs O(1) per
//! entry instead of O(log length).
//!
//! Storage checks: at every restart the recovered hard state and log are
//! compared with what the node last reported synced (term and vote never go
//! back; no synced entry that was committed is lost), and
//! every entry a node sends carries the payload its (index, term) was
//! persisted with. A node whose recovery finds corruption stays down (the
//! world's decision); these checks then see nothing from it, which is safe:
//! a node that does not run cannot vote.
//!
//! One module per property, each adding its checks to [`Invariants`] (the
//! shared memory of the run): `election` safety and leader completeness,
//! `log_matching`, `commit` safety and monotonicity, `state_machine` safety,
//! `snapshots` and `storage` durability, `read_rounds` (§6.4). The world reports what each node
//! did; it checks nothing itself.

use crate::queue::{MS, Nanos};
use raft::{HardState, LogIndex, NodeId, Term};
use replica::EntryDigest;
use serde::Serialize;
use stablehash::Fnv64;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

pub mod catch_up;
mod commit;
mod commit_rule;
mod election;
mod kind;
mod lease_safety;
mod log_matching;
mod read_rounds;
mod snapshots;
mod stale_answers;
mod state_machine;
mod storage;
pub mod term_inflation;
mod vote_durability;

/// One broken invariant: which, when, where, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant's name (`kind.name()`).
    pub invariant: &'static str,
    /// The rule broken.
    pub kind: ViolationKind,
    /// Virtual time of the step that broke it.
    pub time_ns: Nanos,
    /// The node whose step broke it.
    pub node: u64,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} broken at {}.{:03}ms on n{}: {}",
            self.invariant,
            self.time_ns / MS,
            (self.time_ns % MS) / 1_000,
            self.node,
            self.detail
        )
    }
}

/// The invariant checker's memory of the run.
pub struct Invariants {
    /// Election safety: the leader of each term. Invariant: one per term.
    leaders: BTreeMap<Term, u64>,
    /// Each node's durable log as chained hashes: `chains[n][i]` covers
    /// entries 1..=i (`chains[n][0]` is the empty log). Mirrors what the
    /// node reported persisted, so it survives crashes the way the disk does.
    chains: Vec<Vec<u64>>,
    /// Term of each entry in each node's durable log (index 0: term 0).
    terms: Vec<Vec<Term>>,
    /// Log matching: the chained hash of the first log seen with each
    /// (index, term). Invariant: every log with an entry of that index and
    /// term has that same hash there.
    chain_at: BTreeMap<(LogIndex, Term), u64>,
    /// State machine safety: the entry applied at each index, first seen.
    applied: BTreeMap<LogIndex, EntryDigest>,
    /// The highest index applied anywhere, and its chained hash.
    committed: (LogIndex, u64),
    /// The committed log as chained hashes (`[0]` is the empty log), up to
    /// `committed`: what a snapshot at any index stands for. Invariant:
    /// `committed_chain.len() == committed.0 + 1`.
    committed_chain: Vec<u64>,
    /// The term of each committed entry (`[0]` is term 0).
    committed_terms: Vec<Term>,
    /// The commit term of each index: the term of the first leader seen to
    /// commit it (`[0]` is term 0). Invariant: `commit_terms[i]` is defined
    /// for every index some leader committed, and never changes once set.
    /// By Leader Completeness (§5.4.3) every leader of a later term holds
    /// the entry, so every entry at `i` of a term `>= commit_terms[i]` is
    /// the committed one; an entry of an older term may still be written
    /// there by a node that has not heard of that term.
    commit_terms: Vec<Term>,
    /// Each live node's commit index in its current incarnation.
    commit: Vec<LogIndex>,
    /// Each live node's applied index in its current incarnation.
    last_applied: Vec<LogIndex>,
    /// The kv digest at each checkpointed applied index, first seen.
    digests: BTreeMap<u64, u64>,
    /// Each node's last hard state reported persisted (synced): what a
    /// crash must not take back.
    hard_states: Vec<HardState>,
    /// The payload digest of each (index, term) any node persisted.
    /// Invariant: one payload per (index, term) (log matching, §5.3), so an
    /// entry sent with another payload is data the sender never verified.
    payloads: BTreeMap<(LogIndex, Term), u64>,
    /// Vote durability: the last vote each node was seen to grant, as
    /// (term, candidate). Invariant: its term never decreases.
    granted_votes: Vec<Option<(Term, NodeId)>>,
    /// Stale answers: the grants and acknowledgements sent to each node in
    /// the latest term it was sent one.
    answers: Vec<stale_answers::Answers>,
    /// Read rounds (§6.4): per node, the read rounds it sent to each peer
    /// as leader of the latest term it was seen to lead; an answer echoes
    /// only a round its leader sent it in the answer's term.
    read_rounds: BTreeMap<NodeId, read_rounds::SentRounds>,
    /// Commit from a leader: the highest `leader_commit` any AppendEntries
    /// carried. With `commit_terms`, it bounds every commit index a
    /// non-leader may reach: a leader that commits, sends, and halts in one
    /// step (a failed write) is never seen committing, but its messages are.
    highest_leader_commit_sent: LogIndex,
    /// Lease safety: the highest term whose leader committed an entry.
    highest_commit_term: Term,
    /// Lease reads confirmed so far.
    lease_reads: u64,
    violations: Vec<Violation>,
}

/// A kv digest is compared every this many applied entries: often enough to
/// catch divergent state machines, rarely enough to stay cheap.
pub const DIGEST_EVERY: u64 = 64;

/// Violations beyond this many are not recorded (the first ones matter).
const MAX_VIOLATIONS: usize = 100;

impl Invariants {
    /// A checker for a cluster of `nodes` nodes (node ids 1..=nodes).
    pub fn new(nodes: usize) -> Invariants {
        Invariants {
            leaders: BTreeMap::new(),
            chains: vec![vec![0]; nodes],
            terms: vec![vec![Term(0)]; nodes],
            chain_at: BTreeMap::new(),
            applied: BTreeMap::new(),
            committed: (LogIndex(0), 0),
            committed_chain: vec![0],
            committed_terms: vec![Term(0)],
            commit_terms: vec![Term(0)],
            commit: vec![LogIndex(0); nodes],
            last_applied: vec![LogIndex(0); nodes],
            digests: BTreeMap::new(),
            hard_states: vec![HardState::default(); nodes],
            payloads: BTreeMap::new(),
            granted_votes: vec![None; nodes],
            answers: vec![stale_answers::Answers::default(); nodes],
            read_rounds: BTreeMap::new(),
            highest_leader_commit_sent: LogIndex(0),
            highest_commit_term: Term(0),
            lease_reads: 0,
            violations: Vec::new(),
        }
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn violate(&mut self, kind: ViolationKind, time_ns: Nanos, node: u64, detail: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation {
                invariant: kind.name(),
                kind,
                time_ns,
                node,
                detail,
            });
        }
    }

    /// Records a violation found outside these checks (a replica that
    /// cannot recover, or that stopped on an internal error).
    pub fn external(&mut self, kind: ViolationKind, time_ns: Nanos, node: u64, detail: String) {
        self.violate(kind, time_ns, node, detail);
    }

    /// A node restarted: its volatile indices start over.
    pub fn restarted(&mut self, node: u64) {
        let n = slot(node);
        self.commit[n] = LogIndex(0);
        self.last_applied[n] = LogIndex(0);
    }

    /// A node's disk was replaced by an empty one: it durably holds
    /// nothing, and comes back as a new node would.
    pub fn wiped(&mut self, node: u64) {
        let n = slot(node);
        self.hard_states[n] = HardState::default();
        self.granted_votes[n] = None;
        self.chains[n] = vec![0];
        self.terms[n] = vec![Term(0)];
    }

    /// The last index of `node`'s durable log, as far as the checker knows.
    pub fn durable_last_index(&self, node: u64) -> LogIndex {
        LogIndex(self.terms[slot(node)].len() as u64 - 1)
    }

    /// The number of terms that had a leader.
    pub fn elections(&self) -> usize {
        self.leaders.len()
    }

    /// The highest index applied anywhere.
    pub fn committed_index(&self) -> LogIndex {
        self.committed.0
    }
}

fn slot(node: u64) -> usize {
    debug_assert!(node >= 1, "node ids start at 1");
    (node - 1) as usize
}

fn chain_hash(prev: u64, entry: &EntryDigest) -> u64 {
    let mut h = Fnv64::new();
    prev.hash(&mut h);
    entry.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests;

pub use kind::ViolationKind;
