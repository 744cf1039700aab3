//! Storage: what a crash must not take back (term and vote, synced
//! committed entries), and data a node replicates is data it persisted.

use super::{Invariants, ViolationKind, chain_hash, slot};
use crate::queue::Nanos;
use raft::{HardState, Message, MessageBody, NodeId, Term};
use replica::{EntryDigest, SnapshotDigest};

impl Invariants {
    /// A node's hard state was synced.
    pub fn persisted_hard_state(&mut self, node: u64, hard_state: HardState) {
        self.hard_states[slot(node)] = hard_state;
    }

    /// Figure 2, "respond to RPCs only after updating stable storage",
    /// checked on every answer as it leaves: a vote granted is durable
    /// (term and vote, or a later term) and an append acknowledged is
    /// durable up to the index it names. With asynchronous writes these hold only because
    /// the replica holds answers until their write completes; checked
    /// directly, a break shows at once instead of only after the rare crash
    /// that turns it into a double vote or a lost commit.
    ///
    /// Every message leaving a node comes here (requests too): the read
    /// rounds of appends are recorded and those of their answers checked
    /// (`read_rounds`), the commit indexes appends carry recorded
    /// (`commit_from_a_leader`), and grants and acknowledgements recorded
    /// (`stale_answers`).
    pub fn answer_sent(&mut self, at: Nanos, node: u64, msg: &Message) {
        let n = slot(node);
        self.answer_recorded(msg);
        self.read_round_observed(at, node, msg);
        if let MessageBody::AppendEntries { leader_commit, .. } = msg.body {
            self.highest_leader_commit_sent = self.highest_leader_commit_sent.max(leader_commit);
        }
        if let MessageBody::RequestVoteResponse { granted: true } = msg.body {
            self.vote_granted(node, msg.term, msg.to);
        }
        match msg.body {
            MessageBody::RequestVoteResponse { granted: true } => {
                // A disk already past the vote's term cannot vote again in
                // it either (a gathered write keeps only the latest hard
                // state).
                let hs = self.hard_states[n];
                let durable =
                    hs.term > msg.term || (hs.term == msg.term && hs.vote == Some(msg.to));
                if !durable {
                    self.violate(
                        ViolationKind::VoteDurableBeforeAnswered,
                        at,
                        node,
                        format!(
                            "granted its vote in {} to n{} while its disk holds term {} vote {:?}",
                            msg.term,
                            msg.to.0,
                            hs.term,
                            hs.vote.map(|v| v.0)
                        ),
                    );
                }
            }
            MessageBody::AppendEntriesResponse {
                success: true,
                index,
                ..
            } => {
                let durable = self.terms[n].len() as u64 - 1;
                if index.0 > durable {
                    self.violate(
                        ViolationKind::EntriesDurableBeforeAcknowledged,
                        at,
                        node,
                        format!(
                            "acknowledged entries up to {index} while its disk holds up to i{durable}"
                        ),
                    );
                }
            }
            _ => {}
        }
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
        self.vote_recovered(at, node, hard_state);
        let before = self.hard_states[n];
        let vote_lost = hard_state.term == before.term
            && before.vote.is_some()
            && hard_state.vote != before.vote;
        if hard_state.term < before.term || vote_lost {
            self.violate(
                ViolationKind::HardStateDurable,
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
                ViolationKind::LogMatching,
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
            self.violate(ViolationKind::AcknowledgedWriteLost, at, node, detail);
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

    /// A node never replicates data it could not verify: every entry it
    /// sends has the payload that entry (index, term) was persisted with.
    pub fn sent_entries(&mut self, at: Nanos, node: u64, entries: &[EntryDigest]) {
        for entry in entries {
            if let Some(&payload) = self.payloads.get(&(entry.index, entry.term))
                && payload != entry.payload
            {
                self.violate(
                    ViolationKind::ReplicatesVerifiedData,
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
}
