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

use crate::queue::{MS, Nanos};
use raft::{HardState, LogIndex, Membership, NodeId, Role, SoftState, Term};
use replica::{EntryDigest, SnapshotDigest};
use serde::Serialize;
use stablehash::Fnv64;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// One broken invariant: which, when, where, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
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
            commit: vec![LogIndex(0); nodes],
            last_applied: vec![LogIndex(0); nodes],
            digests: BTreeMap::new(),
            hard_states: vec![HardState::default(); nodes],
            payloads: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn violate(&mut self, invariant: &'static str, time_ns: Nanos, node: u64, detail: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation {
                invariant,
                time_ns,
                node,
                detail,
            });
        }
    }

    /// Records a violation found outside these checks (a replica that
    /// cannot recover, or that stopped on an internal error).
    pub fn external(&mut self, invariant: &'static str, time_ns: Nanos, node: u64, detail: String) {
        self.violate(invariant, time_ns, node, detail);
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
        self.chains[n] = vec![0];
        self.terms[n] = vec![Term(0)];
    }

    /// A node's hard state was synced.
    pub fn persisted_hard_state(&mut self, node: u64, hard_state: HardState) {
        self.hard_states[slot(node)] = hard_state;
    }

    /// A node reopened its log and found `hard_state`, the snapshot its log
    /// starts from (if any) and `entries` after it.
    ///
    /// * Term and vote never go backwards across a crash (§5.2: a node that
    ///   forgets its vote can vote twice in a term).
    /// * A snapshot stands for committed entries (§7), with the state every
    ///   other replica had at its index.
    /// * An acknowledged write is never lost: every entry the node reported
    ///   synced, up to the highest index applied anywhere, is still in its
    ///   log (or in its snapshot), unchanged. (Entries past it may be gone:
    ///   a conflicting suffix is truncated, and a torn write may persist
    ///   that truncation alone.)
    ///
    /// The recovered log then replaces the checker's mirror of the node's
    /// durable log (it may hold more than was reported: a torn write can
    /// persist complete records of an unsynced batch).
    pub fn recovered(
        &mut self,
        at: Nanos,
        node: u64,
        hard_state: HardState,
        snapshot: Option<SnapshotDigest>,
        entries: &[EntryDigest],
    ) {
        let n = slot(node);
        let before = self.hard_states[n];
        let vote_lost = hard_state.term == before.term
            && before.vote.is_some()
            && hard_state.vote != before.vote;
        if hard_state.term < before.term || vote_lost {
            self.violate(
                "hard state durable",
                at,
                node,
                format!(
                    "recovered {} vote {:?} after syncing {} vote {:?}",
                    hard_state.term,
                    hard_state.vote.map(|NodeId(v)| v),
                    before.term,
                    before.vote.map(|NodeId(v)| v)
                ),
            );
        }
        self.hard_states[n] = hard_state;

        // The recovered log as chained hashes: the snapshot's committed
        // prefix, then the entries.
        let (mut chain, mut terms) = (vec![0], vec![Term(0)]);
        if let Some(snap) = snapshot {
            if !self.snapshot_is_committed(at, node, snap) {
                return;
            }
            let upto = snap.index.0 as usize;
            chain = self.committed_chain[..=upto].to_vec();
            terms = self.committed_terms[..=upto].to_vec();
            self.last_applied[n] = snap.index;
            self.state_digest(at, node, snap.index.0, snap.state);
        }
        if let Some(first) = entries.first()
            && first.index.0 as usize != chain.len()
        {
            self.violate(
                "log matching",
                at,
                node,
                format!(
                    "recovered entries from {} after a snapshot at i{}",
                    first.index,
                    chain.len() - 1
                ),
            );
            return;
        }
        let base = chain.len() - 1;
        for entry in entries {
            let prev = *chain.last().expect("holds index 0");
            chain.push(chain_hash(prev, entry));
            terms.push(entry.term);
        }

        // What the node synced and what was committed must survive: the
        // longest prefix of its synced log that is the committed log. (An
        // entry it synced that was never committed may since have been
        // replaced by a conflicting write, §5.3, that a crash cut short
        // after its truncation reached the disk: found by seed 139 of a
        // 3-node sweep.)
        let synced = self.chains[n].len() - 1;
        let upto = synced.min(self.committed.0.0 as usize);
        let must_keep = (0..=upto)
            .rev()
            .find(|&i| self.chains[n][i] == self.committed_chain[i])
            .unwrap_or(0);
        if let Some(i) = (1..=must_keep).find(|&i| chain.get(i) != Some(&self.chains[n][i])) {
            let detail = if i >= chain.len() {
                format!(
                    "synced i{i}..=i{must_keep} (committed) but recovered a log ending at i{}",
                    chain.len() - 1
                )
            } else {
                format!("recovered a different entry at i{i} than it synced")
            };
            self.violate("acknowledged write lost", at, node, detail);
        }
        // Entries the node had synced stay as they are; what follows them
        // (complete records of a torn, unsynced batch) joins its log.
        let common = (1..chain.len())
            .take_while(|&i| self.chains[n].get(i) == Some(&chain[i]))
            .last()
            .unwrap_or(0)
            .max(base);
        self.chains[n] = chain[..=common].to_vec();
        self.terms[n] = terms[..=common].to_vec();
        let rest: Vec<EntryDigest> = entries
            .iter()
            .filter(|e| e.index.0 as usize > common)
            .copied()
            .collect();
        self.extend(at, node, &rest);
    }

    /// Whether `snap` stands for committed entries: its index was applied
    /// somewhere, with its term. A violation if not.
    fn snapshot_is_committed(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) -> bool {
        let i = snap.index.0 as usize;
        match self.committed_terms.get(i) {
            Some(&term) if term == snap.term => true,
            Some(&term) => {
                self.violate(
                    "snapshot of committed state",
                    at,
                    node,
                    format!(
                        "a snapshot at {} of {} where the committed entry is of {term}",
                        snap.index, snap.term
                    ),
                );
                false
            }
            None => {
                self.violate(
                    "snapshot of committed state",
                    at,
                    node,
                    format!(
                        "a snapshot at {} beyond the highest applied index {}",
                        snap.index, self.committed.0
                    ),
                );
                false
            }
        }
    }

    /// A node compacted its log to a snapshot of its own state machine
    /// (§7): the snapshot stands for committed entries, and its state is
    /// every replica's state at that index.
    pub fn snapshot_taken(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) {
        if self.snapshot_is_committed(at, node, snap) {
            self.state_digest(at, node, snap.index.0, snap.state);
        }
    }

    /// A node's install of a snapshot from the leader became durable (§7,
    /// Figure 13): it must stand for committed entries, and the node's log
    /// becomes the committed prefix up to it, followed by its own entries
    /// after it only if it held the snapshot's last entry.
    pub fn snapshot_installed(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) {
        if !self.snapshot_is_committed(at, node, snap) {
            return;
        }
        let n = slot(node);
        let upto = snap.index.0 as usize;
        if self.terms[n].get(upto) != Some(&snap.term) {
            self.chains[n] = self.committed_chain[..=upto].to_vec();
            self.terms[n] = self.committed_terms[..=upto].to_vec();
        }
    }

    /// A node replaced its state machine with a snapshot from the leader
    /// (its log follows when the install is durable: see
    /// [`Invariants::snapshot_installed`]). The snapshot stands for
    /// committed state, with every replica's digest at its index, and the
    /// node's applied index jumps to it.
    pub fn state_machine_replaced(&mut self, at: Nanos, node: u64, snap: SnapshotDigest) {
        if !self.snapshot_is_committed(at, node, snap) {
            return;
        }
        self.state_digest(at, node, snap.index.0, snap.state);
        let n = slot(node);
        if snap.index > self.last_applied[n] {
            self.last_applied[n] = snap.index;
        }
    }

    /// A node never replicates data it could not verify: every entry it
    /// sends has the payload that entry (index, term) was persisted with.
    pub fn sent_entries(&mut self, at: Nanos, node: u64, entries: &[EntryDigest]) {
        for entry in entries {
            if let Some(&payload) = self.payloads.get(&(entry.index, entry.term))
                && payload != entry.payload
            {
                self.violate(
                    "replicates verified data",
                    at,
                    node,
                    format!(
                        "sent {} of {} with a payload no node persisted for it",
                        entry.index, entry.term
                    ),
                );
            }
        }
    }

    /// Election safety (Figure 3): at most one leader per term. Leader
    /// completeness (§5.4): a new leader's log holds every committed entry.
    pub fn soft_state(&mut self, at: Nanos, node: u64, soft: SoftState) {
        if soft.role != Role::Leader {
            return;
        }
        match self.leaders.get(&soft.term) {
            Some(&other) if other != node => self.violate(
                "election safety",
                at,
                node,
                format!("n{node} and n{other} both lead {}", soft.term),
            ),
            Some(_) => {}
            None => {
                self.leaders.insert(soft.term, node);
            }
        }
        let (index, hash) = self.committed;
        let chain = &self.chains[slot(node)];
        if chain.get(index.0 as usize) != Some(&hash) {
            self.violate(
                "leader completeness",
                at,
                node,
                format!(
                    "leader of {} lacks committed entries up to {index} (its log ends at i{})",
                    soft.term,
                    chain.len() - 1
                ),
            );
        }
    }

    /// Log matching (§5.3): entries with the same index and term are
    /// preceded by identical logs. Checked on every persisted batch.
    pub fn persisted(&mut self, at: Nanos, node: u64, entries: &[EntryDigest]) {
        let n = slot(node);
        let Some(first) = entries.first() else { return };
        let keep = first.index.0 as usize;
        if keep == 0 || keep > self.chains[n].len() {
            let len = self.chains[n].len() - 1;
            self.violate(
                "log matching",
                at,
                node,
                format!(
                    "persisted entries from {} after a log ending at i{len}",
                    first.index
                ),
            );
            return;
        }
        // §5.4: a committed entry is never replaced, so a node that holds
        // the entry applied at an index never persists another one there.
        // (A node that never held it, such as a deposed leader appending its
        // own proposals, may: those entries will never commit.)
        for entry in entries {
            let i = entry.index.0 as usize;
            if let (Some(committed), Some(&held)) =
                (self.applied.get(&entry.index), self.terms[n].get(i))
                && held == committed.term
                && committed != entry
            {
                self.violate(
                    "committed entry overwritten",
                    at,
                    node,
                    format!(
                        "persisted {} of {} over the committed {} of {}",
                        entry.index, entry.term, committed.index, committed.term
                    ),
                );
            }
        }
        self.chains[n].truncate(keep);
        self.terms[n].truncate(keep);
        self.extend(at, node, entries);
    }

    /// Appends `entries` to the mirror of `node`'s durable log, checking log
    /// matching. Precondition: they follow the mirror's last entry.
    fn extend(&mut self, at: Nanos, node: u64, entries: &[EntryDigest]) {
        let n = slot(node);
        debug_assert!(
            entries
                .first()
                .is_none_or(|e| e.index.0 as usize == self.chains[n].len())
        );
        for entry in entries {
            self.payloads
                .entry((entry.index, entry.term))
                .or_insert(entry.payload);
            let prev = *self.chains[n].last().expect("chain holds index 0");
            let hash = chain_hash(prev, entry);
            self.chains[n].push(hash);
            self.terms[n].push(entry.term);
            match self.chain_at.get(&(entry.index, entry.term)) {
                Some(&seen) if seen != hash => {
                    self.violate(
                        "log matching",
                        at,
                        node,
                        format!(
                            "entry {} of {} has a different history than on another node",
                            entry.index, entry.term
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    self.chain_at.insert((entry.index, entry.term), hash);
                }
            }
        }
    }

    /// State machine safety (Figure 3): no two nodes apply different entries
    /// at the same index; entries apply in order, once.
    pub fn applied(&mut self, at: Nanos, node: u64, entry: EntryDigest) {
        let n = slot(node);
        if entry.index != self.last_applied[n].next() {
            self.violate(
                "apply order",
                at,
                node,
                format!("applied {} after {}", entry.index, self.last_applied[n]),
            );
        }
        self.last_applied[n] = entry.index;
        match self.applied.get(&entry.index) {
            Some(seen) if *seen != entry => self.violate(
                "state machine safety",
                at,
                node,
                format!(
                    "applied {} of {} where another node applied one of {}",
                    entry.index, entry.term, seen.term
                ),
            ),
            Some(_) => {}
            None => {
                self.applied.insert(entry.index, entry);
            }
        }
        if entry.index > self.committed.0 {
            let (from, to) = (self.committed.0.0 as usize + 1, entry.index.0 as usize);
            match self.chains[n].get(to) {
                Some(&hash) => {
                    self.committed = (entry.index, hash);
                    self.committed_chain
                        .extend_from_slice(&self.chains[n][from..=to]);
                    self.committed_terms
                        .extend_from_slice(&self.terms[n][from..=to]);
                }
                None => self.violate(
                    "durability",
                    at,
                    node,
                    format!("applied {} which it never persisted", entry.index),
                ),
            }
        }
    }

    /// Commit safety under membership changes (dissertation §4.3): when a
    /// leader's commit index moves to `commit` (whose entry has `term`), a
    /// quorum of the configuration in force at that leader holds the entry
    /// durably: a majority of its voters, and while joint, a majority of the
    /// outgoing voters too. Learners never count.
    pub fn leader_committed(
        &mut self,
        at: Nanos,
        node: u64,
        commit: LogIndex,
        term: Term,
        membership: &Membership,
    ) {
        let i = commit.0 as usize;
        let holds = |id: &NodeId| {
            let n = (id.0 as usize).wrapping_sub(1);
            self.terms.get(n).and_then(|t| t.get(i)) == Some(&term)
        };
        let majority = |set: &std::collections::BTreeSet<NodeId>| {
            set.is_empty() || set.iter().filter(|id| holds(id)).count() > set.len() / 2
        };
        if !majority(&membership.voters) || !majority(&membership.outgoing) {
            let holders: Vec<u64> = membership
                .members()
                .iter()
                .filter(|id| holds(id))
                .map(|id| id.0)
                .collect();
            self.violate(
                "commit safety",
                at,
                node,
                format!(
                    "committed {commit} of {term} held durably only by {holders:?}, no quorum of {membership}"
                ),
            );
        }
    }

    /// Commit index monotonicity: a live node's commit index never goes back,
    /// and never passes its log.
    pub fn commit_index(&mut self, at: Nanos, node: u64, commit: LogIndex, last: LogIndex) {
        let n = slot(node);
        if commit < self.commit[n] {
            self.violate(
                "commit index monotonic",
                at,
                node,
                format!("commit index went from {} back to {commit}", self.commit[n]),
            );
        }
        if commit > last {
            self.violate(
                "commit within log",
                at,
                node,
                format!("commit index {commit} beyond last index {last}"),
            );
        }
        self.commit[n] = commit;
    }

    /// Replicated state machines agree: equal digests at equal applied
    /// indices (checked every [`DIGEST_EVERY`] entries).
    pub fn state_digest(&mut self, at: Nanos, node: u64, applied: u64, digest: u64) {
        match self.digests.get(&applied) {
            Some(&seen) if seen != digest => self.violate(
                "state machine agreement",
                at,
                node,
                format!("state digest at i{applied} differs from another node's"),
            ),
            Some(_) => {}
            None => {
                self.digests.insert(applied, digest);
            }
        }
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
mod tests {
    use super::*;

    fn digest(index: u64, term: u64, payload: u64) -> EntryDigest {
        EntryDigest {
            index: LogIndex(index),
            term: Term(term),
            payload,
        }
    }

    fn leader(term: u64) -> SoftState {
        SoftState {
            role: Role::Leader,
            term: Term(term),
            leader: None,
        }
    }

    #[test]
    fn two_leaders_in_one_term_break_election_safety() {
        let mut inv = Invariants::new(3);
        inv.soft_state(0, 1, leader(2));
        inv.soft_state(0, 2, leader(3));
        assert!(inv.violations().is_empty());
        inv.soft_state(5, 3, leader(2));
        assert_eq!(inv.violations()[0].invariant, "election safety");
    }

    #[test]
    fn same_index_and_term_with_different_history_breaks_log_matching() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 2, 20)]);
        inv.persisted(0, 2, &[digest(1, 1, 11), digest(2, 2, 20)]);
        assert_eq!(inv.violations()[0].invariant, "log matching");
    }

    #[test]
    fn different_entries_applied_at_one_index_break_state_machine_safety() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10)]);
        inv.persisted(0, 2, &[digest(1, 2, 11)]);
        inv.applied(0, 1, digest(1, 1, 10));
        assert!(inv.violations().is_empty());
        inv.applied(0, 2, digest(1, 2, 11));
        assert_eq!(inv.violations()[0].invariant, "state machine safety");
    }

    #[test]
    fn a_leader_missing_a_committed_entry_breaks_leader_completeness() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10)]);
        inv.applied(0, 1, digest(1, 1, 10));
        inv.soft_state(0, 2, leader(2));
        assert_eq!(inv.violations()[0].invariant, "leader completeness");
    }

    #[test]
    fn a_conflicting_suffix_may_be_replaced_when_uncommitted() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
        inv.persisted(0, 1, &[digest(2, 2, 30)]);
        inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 2, 30)]);
        inv.applied(0, 2, digest(1, 1, 10));
        inv.applied(0, 2, digest(2, 2, 30));
        inv.soft_state(0, 1, leader(3));
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    }

    #[test]
    fn replacing_a_committed_entry_is_caught_but_replacing_a_divergent_one_is_not() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
        inv.applied(0, 1, digest(1, 1, 10));
        inv.applied(0, 1, digest(2, 1, 20));
        // Node 2 held a divergent entry at index 2; the committed one replaces it.
        inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 3, 99)]);
        inv.violations.clear();
        inv.persisted(0, 2, &[digest(2, 1, 20)]);
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
        inv.persisted(0, 1, &[digest(2, 4, 40)]);
        assert_eq!(inv.violations()[0].invariant, "committed entry overwritten");
    }

    #[test]
    fn a_deposed_leader_may_append_where_it_never_held_the_committed_entry() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10)]);
        inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 2, 20)]);
        inv.applied(0, 2, digest(1, 1, 10));
        inv.applied(0, 2, digest(2, 2, 20));
        // Node 1, cut off, appends its own proposal of its old term at i2.
        inv.persisted(0, 1, &[digest(2, 1, 99)]);
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    }

    fn hs(term: u64, vote: Option<u64>) -> HardState {
        HardState {
            term: Term(term),
            vote: vote.map(NodeId),
            commit: LogIndex(0),
        }
    }

    #[test]
    fn a_forgotten_term_or_vote_breaks_hard_state_durability() {
        let mut inv = Invariants::new(1);
        inv.persisted_hard_state(1, hs(3, Some(2)));
        inv.recovered(0, 1, hs(4, None), None, &[]);
        assert!(
            inv.violations().is_empty(),
            "a newer hard state may survive"
        );
        inv.persisted_hard_state(1, hs(4, Some(1)));
        inv.recovered(0, 1, hs(4, None), None, &[]);
        assert_eq!(inv.violations()[0].invariant, "hard state durable");
        inv.recovered(0, 1, hs(2, None), None, &[]);
        assert_eq!(inv.violations().len(), 2);
    }

    #[test]
    fn a_synced_committed_entry_missing_after_recovery_is_a_lost_write() {
        let mut inv = Invariants::new(2);
        let log = [digest(1, 1, 10), digest(2, 1, 20), digest(3, 1, 30)];
        inv.persisted(0, 1, &log);
        inv.applied(0, 1, log[0]);
        inv.applied(0, 1, log[1]);
        // Losing the uncommitted third entry is fine; so is gaining one.
        inv.recovered(0, 1, HardState::default(), None, &log[..2]);
        inv.recovered(0, 1, HardState::default(), None, &log);
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
        inv.recovered(0, 1, HardState::default(), None, &log[..1]);
        assert_eq!(inv.violations()[0].invariant, "acknowledged write lost");
        // A node that never synced index 2 loses nothing by lacking it.
        inv.persisted(0, 2, &log[..1]);
        inv.recovered(0, 2, HardState::default(), None, &log[..1]);
        assert_eq!(inv.violations().len(), 1);
    }

    #[test]
    fn sending_an_entry_with_a_payload_nobody_persisted_is_caught() {
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10)]);
        inv.sent_entries(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
        assert!(inv.violations().is_empty());
        inv.sent_entries(0, 2, &[digest(1, 1, 11)]);
        assert_eq!(inv.violations()[0].invariant, "replicates verified data");
    }

    #[test]
    fn commit_index_going_back_is_caught_but_restart_resets_it() {
        let mut inv = Invariants::new(1);
        inv.commit_index(0, 1, LogIndex(5), LogIndex(5));
        inv.restarted(1);
        inv.commit_index(0, 1, LogIndex(2), LogIndex(5));
        assert!(inv.violations().is_empty());
        inv.commit_index(0, 1, LogIndex(1), LogIndex(5));
        assert_eq!(inv.violations()[0].invariant, "commit index monotonic");
    }

    fn snap(index: u64, term: u64, state: u64) -> SnapshotDigest {
        SnapshotDigest {
            index: LogIndex(index),
            term: Term(term),
            state,
        }
    }

    /// Node 1 persists and applies `log`; returns the checker.
    fn committed(log: &[EntryDigest], nodes: usize) -> Invariants {
        let mut inv = Invariants::new(nodes);
        inv.persisted(0, 1, log);
        for e in log {
            inv.applied(0, 1, *e);
        }
        inv
    }

    #[test]
    fn a_snapshot_of_uncommitted_or_other_entries_is_caught() {
        let log = [digest(1, 1, 10), digest(2, 1, 20)];
        let mut inv = committed(&log, 2);
        inv.snapshot_taken(0, 1, snap(2, 1, 7));
        assert!(inv.violations().is_empty());
        inv.snapshot_taken(0, 2, snap(3, 1, 7));
        inv.snapshot_installed(0, 2, snap(2, 2, 7));
        let names: Vec<_> = inv.violations().iter().map(|v| v.invariant).collect();
        assert_eq!(names, ["snapshot of committed state"; 2]);
    }

    #[test]
    fn snapshots_with_different_states_at_one_index_are_caught() {
        let log = [digest(1, 1, 10), digest(2, 1, 20)];
        let mut inv = committed(&log, 2);
        inv.snapshot_taken(0, 1, snap(2, 1, 7));
        inv.state_machine_replaced(0, 2, snap(2, 1, 8));
        assert_eq!(inv.violations()[0].invariant, "state machine agreement");
    }

    #[test]
    fn an_installed_snapshot_replaces_a_conflicting_log_and_applying_resumes_after_it() {
        let log = [digest(1, 1, 10), digest(2, 1, 20), digest(3, 1, 30)];
        let mut inv = committed(&log, 2);
        // Node 2 holds a conflicting, uncommitted entry at 2.
        inv.persisted(0, 2, &[digest(1, 1, 10), digest(2, 2, 99)]);
        inv.state_machine_replaced(0, 2, snap(2, 1, 5));
        inv.snapshot_installed(0, 2, snap(2, 1, 5));
        // Its log is now the committed prefix: entry 3 follows it, and
        // applying resumes at 3.
        inv.persisted(0, 2, &[digest(3, 1, 30)]);
        inv.applied(0, 2, digest(3, 1, 30));
        inv.soft_state(0, 2, leader(3));
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    }

    #[test]
    fn recovery_from_a_snapshot_that_lost_a_synced_committed_entry_is_caught() {
        let log = [digest(1, 1, 10), digest(2, 1, 20), digest(3, 1, 30)];
        let mut inv = committed(&log, 1);
        inv.restarted(1);
        // The snapshot covers 1..=2 but entry 3, synced and committed, is gone.
        inv.recovered(0, 1, HardState::default(), Some(snap(2, 1, 5)), &[]);
        assert_eq!(inv.violations()[0].invariant, "acknowledged write lost");
        let mut inv = committed(&log, 1);
        inv.restarted(1);
        inv.recovered(0, 1, HardState::default(), Some(snap(2, 1, 5)), &log[2..]);
        inv.applied(0, 1, digest(3, 1, 30));
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    }

    #[test]
    fn a_commit_without_a_quorum_of_the_configuration_in_force_is_caught() {
        let log = [digest(1, 1, 10)];
        let mut inv = Invariants::new(5);
        inv.persisted(0, 1, &log);
        inv.persisted(0, 2, &log);
        let three = Membership::of_voters([1, 2, 3].map(NodeId));
        inv.leader_committed(0, 1, LogIndex(1), Term(1), &three);
        assert!(inv.violations().is_empty(), "two of three");
        // Joint {1,2,3} -> {3,4,5}: the new majority does not hold it.
        let joint = Membership {
            voters: [3, 4, 5].map(NodeId).into(),
            outgoing: [1, 2, 3].map(NodeId).into(),
            learners: Default::default(),
        };
        inv.leader_committed(0, 1, LogIndex(1), Term(1), &joint);
        assert_eq!(inv.violations()[0].invariant, "commit safety");
    }

    #[test]
    fn a_wiped_node_may_come_back_empty() {
        let log = [digest(1, 1, 10)];
        let mut inv = committed(&log, 1);
        inv.persisted_hard_state(1, hs(3, Some(1)));
        inv.wiped(1);
        inv.restarted(1);
        inv.recovered(0, 1, HardState::default(), None, &[]);
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
    }

    #[test]
    fn an_uncommitted_synced_entry_replaced_before_a_crash_is_not_a_lost_write() {
        // Node 1 synced i2 of t1, never committed; the cluster committed a
        // different i2 (t2), and node 1's conflicting write of it was cut by
        // a crash after its truncation reached the disk.
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &[digest(1, 1, 10), digest(2, 1, 20)]);
        let committed = [digest(1, 1, 10), digest(2, 2, 99), digest(3, 2, 30)];
        inv.persisted(0, 2, &committed);
        for e in committed {
            inv.applied(0, 2, e);
        }
        inv.restarted(1);
        inv.recovered(0, 1, HardState::default(), None, &committed[..2]);
        assert!(inv.violations().is_empty(), "{:?}", inv.violations());
        // Losing the committed i1 is still caught.
        let mut inv = Invariants::new(2);
        inv.persisted(0, 1, &committed[..2]);
        inv.persisted(0, 2, &committed);
        for e in committed {
            inv.applied(0, 2, e);
        }
        inv.restarted(1);
        inv.recovered(0, 1, HardState::default(), None, &[]);
        assert_eq!(inv.violations()[0].invariant, "acknowledged write lost");
    }
}
