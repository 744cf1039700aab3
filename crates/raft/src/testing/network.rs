//! A test cluster of [`RawNode`]s joined by a network the test controls:
//! messages wait in one queue until delivered, dropped or duplicated; links
//! can be cut; nodes can crash (losing what was not durable) and restart from
//! what was. Each node is driven through the ready → persist → send → apply
//! loop exactly as [`Ready`] documents, and the cluster-wide safety
//! properties of Figure 3 are checked after every ready:
//!
//! * Election Safety: at most one leader per term;
//! * State Machine Safety: no two nodes apply different entries at an index;
//! * Leader Completeness: a new leader holds every entry committed in an
//!   earlier term;
//! * commit indexes never decrease (within one incarnation of a node).
//!
//! Log Matching is checked on demand by [`Network::check_log_matching`].

use crate::{
    Config, Entry, EntryPayload, HardState, LogIndex, Message, MessageBody, NodeId, ProposeError,
    RawNode, ReadState, Ready, Role, Snapshot, Term,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a node has made durable.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    pub hard_state: HardState,
    /// The durable snapshot, if any; `entries` follow it.
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

/// The bytes a test state machine snapshots to: a hash of the applied
/// entries, the index, and padding (so that small chunk sizes give several
/// chunks). Two nodes' snapshots at one index are equal exactly when they
/// applied the same entries.
pub fn state_bytes(applied: &[Entry]) -> Vec<u8> {
    use std::hash::Hasher;
    let mut h = stablehash::Fnv64::new();
    for e in applied {
        h.write(&e.index.0.to_le_bytes());
        h.write(&e.term.0.to_le_bytes());
        if let EntryPayload::Command(c) = &e.payload {
            h.write(c);
        }
    }
    let mut out = h.finish().to_le_bytes().to_vec();
    out.extend_from_slice(&(applied.len() as u64).to_le_bytes());
    out.resize(40, 0xAB);
    out
}

/// A write handed out by a ready whose persistence the test is holding back.
#[derive(Clone, Debug)]
struct HeldWrite {
    snapshot: Option<Snapshot>,
    hard_state: Option<HardState>,
    entries: Vec<Entry>,
    persisted_messages: Vec<Message>,
}

/// The test cluster.
pub struct Network {
    pub nodes: BTreeMap<NodeId, RawNode>,
    configs: BTreeMap<NodeId, Config>,
    pub storage: BTreeMap<NodeId, Storage>,
    /// Messages in flight, oldest first.
    pub queue: VecDeque<Message>,
    /// Directed links that lose everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Crashed nodes.
    down: BTreeSet<NodeId>,
    /// Nodes whose writes are held (not yet durable) until released.
    holding: BTreeSet<NodeId>,
    held: BTreeMap<NodeId, VecDeque<HeldWrite>>,
    /// What each node applied, in order (its state machine).
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub read_states: BTreeMap<NodeId, Vec<ReadState>>,
    /// Every leader ever seen, by term (Election Safety).
    pub leaders: BTreeMap<Term, NodeId>,
    /// Entries known committed: index → (term in which a leader committed
    /// it, entry). Leader Completeness and State Machine Safety.
    committed: BTreeMap<LogIndex, (Term, Entry)>,
    /// Commit index last seen per node, reset on restart.
    last_commit: BTreeMap<NodeId, LogIndex>,
    /// Every message any node handed out, with whether it came in
    /// `persisted_messages` (for tests of the persistence rules).
    pub sent_log: Vec<(Message, bool)>,
    /// Keep `sent_log` (off by default to keep big runs cheap).
    pub record_sent: bool,
    /// Errors returned by `step`.
    pub step_errors: Vec<crate::StepError>,
    /// Snapshots installed from a leader, per node (for tests).
    pub installed: BTreeMap<NodeId, Vec<LogIndex>>,
    /// For each read asked of a node: the highest index known committed
    /// anywhere when it was asked. Its ReadState must not be below it
    /// (linearizable reads, dissertation §6.4).
    read_floor: BTreeMap<(NodeId, u64), LogIndex>,
}

/// Ids `1..=n`.
pub fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

impl Network {
    /// `n` nodes with default configuration.
    pub fn new(n: u64) -> Network {
        Network::with_config(n, |_| {})
    }

    /// `n` nodes whose configurations `adjust` may change.
    pub fn with_config(n: u64, adjust: impl Fn(&mut Config)) -> Network {
        let mut net = Network {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            storage: BTreeMap::new(),
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            holding: BTreeSet::new(),
            held: BTreeMap::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_commit: BTreeMap::new(),
            sent_log: Vec::new(),
            record_sent: false,
            step_errors: Vec::new(),
            read_floor: BTreeMap::new(),
            installed: BTreeMap::new(),
        };
        for id in ids(n) {
            let mut cfg = Config::new(id, ids(n), 0xC0FFEE);
            adjust(&mut cfg);
            net.nodes
                .insert(id, RawNode::new(cfg.clone()).expect("valid config"));
            net.configs.insert(id, cfg);
            net.storage.insert(id, Storage::default());
            net.applied.insert(id, Vec::new());
        }
        net
    }

    /// Adds a fresh node `id` that belongs to no cluster yet (no founding
    /// voters): it learns the configuration from a leader's log or snapshot.
    pub fn add_node(&mut self, id: u64) {
        let id = NodeId(id);
        let template = self.configs.values().next().expect("a node").clone();
        let cfg = Config {
            id,
            voters: Vec::new(),
            ..template
        };
        self.nodes
            .insert(id, RawNode::new(cfg.clone()).expect("valid config"));
        self.configs.insert(id, cfg);
        self.storage.insert(id, Storage::default());
        self.applied.insert(id, Vec::new());
    }

    pub fn node(&self, id: u64) -> &RawNode {
        &self.nodes[&NodeId(id)]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut RawNode {
        self.nodes.get_mut(&NodeId(id)).expect("node is up")
    }

    /// Drives `id` through its ready loop until it has nothing left to do.
    pub fn process(&mut self, id: NodeId) {
        for _ in 0..1000 {
            let Some(node) = self.nodes.get_mut(&id) else {
                return;
            };
            if !node.has_ready() {
                return;
            }
            let rd = node.ready();
            let snapshot = node.take_snapshot();
            self.handle_ready(id, rd, snapshot);
        }
        panic!("{id} never runs out of ready work");
    }

    fn handle_ready(&mut self, id: NodeId, rd: Ready, snapshot: Option<Snapshot>) {
        // 1. Messages that need no durability.
        for m in rd.messages {
            assert!(
                !m.body.is_response(),
                "a response in Ready::messages: {m:?}"
            );
            self.record(&m, false);
            self.send(m);
        }
        // 2.–4. Persist, report, then send what waited for persistence.
        if let Some(s) = &snapshot {
            // §7: never installed at or below what this node applied
            // (which is at most its commit index).
            let applied = self.applied[&id].len() as u64;
            assert!(
                s.meta.index.0 > applied,
                "{id} installs {} at or below applied {applied}",
                s.meta.index
            );
            if let Some(e) = rd.entries.first() {
                assert!(e.index > s.meta.index, "entries follow the snapshot");
            }
        }
        let write = HeldWrite {
            snapshot: snapshot.clone(),
            hard_state: rd.hard_state,
            entries: rd.entries,
            persisted_messages: rd.persisted_messages,
        };
        for m in &write.persisted_messages {
            self.record(m, true);
        }
        if self.holding.contains(&id) {
            self.held.entry(id).or_default().push_back(write);
        } else {
            self.complete_write(id, write);
        }
        // 5. Install the snapshot, then apply.
        if let Some(s) = snapshot {
            let index = s.meta.index;
            let prefix: Vec<Entry> = (1..=index.0)
                .map(|i| {
                    self.committed
                        .get(&LogIndex(i))
                        .map(|(_, e)| e.clone())
                        .expect("a snapshot covers only committed entries")
                })
                .collect();
            assert_eq!(
                s.data,
                state_bytes(&prefix),
                "State Machine Safety: {id}'s snapshot at {index} differs"
            );
            self.applied.insert(id, prefix);
            self.installed.entry(id).or_default().push(index);
            self.nodes
                .get_mut(&id)
                .expect("up")
                .snapshot_installed(index);
        }
        let node = &self.nodes[&id];
        let (term, role, commit) = (node.term(), node.role(), node.commit_index());
        for e in &rd.committed_entries {
            assert!(
                e.index <= node.persisted_index(),
                "{id} applies {} before persisting it",
                e.index
            );
            if let Some((_, known)) = self.committed.get(&e.index) {
                assert_eq!(known, e, "State Machine Safety at {} on {id}", e.index);
            } else {
                self.committed.insert(e.index, (term, e.clone()));
            }
            let applied = self.applied.get_mut(&id).expect("applied log");
            assert_eq!(applied.len() as u64 + 1, e.index.0, "{id} applies in order");
            applied.push(e.clone());
        }
        if let Some(last) = rd.committed_entries.last() {
            self.nodes.get_mut(&id).expect("up").applied(last.index);
        }
        // 6. Reads: a read must see every write committed before it was asked.
        for rs in &rd.read_states {
            // (Reads asked directly of a node, not through `read_index`,
            // have no floor recorded.)
            if let Some(floor) = self.read_floor.remove(&(id, rs.ctx)) {
                assert!(
                    rs.index >= floor,
                    "{id} read {} at {} below commit {floor}",
                    rs.ctx,
                    rs.index
                );
            }
        }
        self.read_states
            .entry(id)
            .or_default()
            .extend(rd.read_states);
        // Invariants.
        let last = self.last_commit.entry(id).or_default();
        assert!(commit >= *last, "{id}'s commit index went back");
        *last = commit;
        if role == Role::Leader {
            self.observe_leader(id, term);
            // Entries this leader commits in its term are committed in `term`.
            // The recorded indexes are contiguous from 1 (nodes apply in
            // order), so only the ones past the map's end are new.
            let node = &self.nodes[&id];
            for i in (self.committed.len() as u64 + 1)..=commit.0 {
                let index = LogIndex(i);
                let e = node.entry(index).expect("leader holds committed");
                self.committed
                    .entry(index)
                    .or_insert_with(|| (term, e.clone()));
            }
        }
    }

    fn observe_leader(&mut self, id: NodeId, term: Term) {
        match self.leaders.get(&term) {
            Some(&other) => assert_eq!(other, id, "Election Safety: two leaders in {term}"),
            None => {
                self.leaders.insert(term, id);
                // Leader Completeness: entries committed in earlier terms
                // are in the new leader's log.
                let node = &self.nodes[&id];
                let first = node.first_index();
                for (index, (t, e)) in &self.committed {
                    if *index < first {
                        continue; // In the snapshot, checked when installed.
                    }
                    if *t < term {
                        assert_eq!(
                            node.entry(*index),
                            Some(e),
                            "Leader Completeness: {id} leads {term} without {index}"
                        );
                    }
                }
            }
        }
    }

    fn record(&mut self, m: &Message, persisted: bool) {
        if self.record_sent {
            self.sent_log.push((m.clone(), persisted));
        }
    }

    fn complete_write(&mut self, id: NodeId, write: HeldWrite) {
        let storage = self.storage.get_mut(&id).expect("storage");
        if let Some(s) = write.snapshot {
            // The snapshot replaces the stored entries it covers; the rest
            // stay only if the stored entry at its index has its term.
            let keep = storage
                .entries
                .iter()
                .any(|e| e.index == s.meta.index && e.term == s.meta.term);
            if keep {
                storage.entries.retain(|e| e.index > s.meta.index);
            } else {
                storage.entries.clear();
            }
            storage.snapshot = Some(s);
        }
        if let Some(first) = write.entries.first() {
            // An entry at an existing index replaces it and all after it.
            let base = storage.snapshot.as_ref().map_or(0, |s| s.meta.index.0);
            storage
                .entries
                .truncate((first.index.0 - base - 1) as usize);
            storage.entries.extend(write.entries.iter().cloned());
        }
        if let Some(hs) = write.hard_state {
            storage.hard_state = hs;
        }
        if let (Some(last), Some(node)) = (write.entries.last(), self.nodes.get_mut(&id)) {
            node.persisted(last.term, last.index);
        }
        for m in write.persisted_messages {
            self.send(m);
        }
    }

    /// Holds back `id`'s writes: they are not durable until released.
    pub fn hold_persistence(&mut self, id: u64) {
        self.holding.insert(NodeId(id));
    }

    /// Makes `id`'s held writes durable, in order, and resumes.
    pub fn release_persistence(&mut self, id: u64) {
        let id = NodeId(id);
        self.holding.remove(&id);
        let writes = self.held.remove(&id).unwrap_or_default();
        for w in writes {
            self.complete_write(id, w);
        }
        self.process(id);
    }

    /// Queues a message unless its link is cut or its receiver is down.
    pub fn send(&mut self, m: Message) {
        if self.cut.contains(&(m.from, m.to)) || self.down.contains(&m.to) {
            return;
        }
        self.queue.push_back(m);
    }

    /// Delivers one message to its receiver and runs the receiver's loop.
    pub fn deliver(&mut self, m: Message) {
        let to = m.to;
        if self.down.contains(&to) || self.cut.contains(&(m.from, m.to)) {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&to) {
            if let Err(e) = node.step(m) {
                self.step_errors.push(e);
            }
            self.process(to);
        }
    }

    /// Delivers the oldest message; false when none is left.
    pub fn deliver_one(&mut self) -> bool {
        match self.queue.pop_front() {
            Some(m) => {
                self.deliver(m);
                true
            }
            None => false,
        }
    }

    /// Delivers until the network is quiet.
    pub fn deliver_all(&mut self) {
        self.deliver_all_dropping(|_| false);
    }

    /// Delivers until quiet, dropping the messages `drop` picks.
    pub fn deliver_all_dropping(&mut self, drop: impl Fn(&Message) -> bool) {
        for _ in 0..200_000 {
            let Some(m) = self.queue.pop_front() else {
                return;
            };
            if !drop(&m) {
                self.deliver(m);
            }
        }
        panic!("the network never goes quiet");
    }

    /// Removes queued messages matching `pred`; returns them.
    pub fn take_where(&mut self, pred: impl Fn(&Message) -> bool) -> Vec<Message> {
        let (taken, kept): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|m| pred(m));
        self.queue = kept.into();
        taken
    }

    /// One tick on `id`, then its ready loop (messages stay queued).
    pub fn tick(&mut self, id: u64) {
        let id = NodeId(id);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.tick();
            self.process(id);
        }
    }

    /// `rounds` times: tick every live node once, then deliver everything.
    pub fn tick_all(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let live: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in live {
                self.tick(id.0);
            }
            self.deliver_all();
        }
    }

    /// `id` campaigns and the network settles; returns whether it leads.
    pub fn elect(&mut self, id: u64) -> bool {
        self.node_mut(id).campaign();
        self.process(NodeId(id));
        self.deliver_all();
        self.node(id).role() == Role::Leader
    }

    /// Proposes on `id` and runs its loop (nothing is delivered).
    pub fn propose(&mut self, id: u64, data: &[u8]) -> Result<LogIndex, ProposeError> {
        let r = self.node_mut(id).propose(data.to_vec());
        self.process(NodeId(id));
        r
    }

    /// Asks `id` for a read and runs its loop.
    pub fn read_index(&mut self, id: u64, ctx: u64) -> Result<(), crate::ReadIndexError> {
        // `committed` holds the indexes 1..=len known committed.
        let floor = LogIndex(self.committed.len() as u64);
        self.read_floor.insert((NodeId(id), ctx), floor);
        let r = self.node_mut(id).read_index(ctx);
        self.process(NodeId(id));
        r
    }

    /// The live node that leads in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| n.role() == Role::Leader)
            .max_by_key(|n| n.term())
            .map(|n| n.id().0)
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((NodeId(a), NodeId(b)));
        self.cut.insert((NodeId(b), NodeId(a)));
    }

    /// Cuts `id` from everyone.
    pub fn isolate(&mut self, id: u64) {
        let all: Vec<u64> = self.configs.keys().map(|n| n.0).collect();
        for other in all {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    /// Splits the cluster into groups that cannot talk to each other.
    pub fn partition(&mut self, groups: &[&[u64]]) {
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                for &x in a.iter() {
                    for &y in b.iter() {
                        self.cut(x, y);
                    }
                }
            }
        }
    }

    /// A minimum election timeout passes on every live follower and
    /// candidate with no word from a leader: their leases (§4.2.3) end, so
    /// they answer vote requests again, but no election timer fires. What
    /// an election after a leader's crash needs in real time.
    pub fn expire_leases(&mut self) {
        for node in self.nodes.values_mut() {
            node.expire_lease();
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes `id`: its volatile state and its held writes are lost, as are
    /// messages queued for it.
    pub fn crash(&mut self, id: u64) {
        let id = NodeId(id);
        self.nodes.remove(&id);
        self.held.remove(&id);
        self.down.insert(id);
        self.queue.retain(|m| m.to != id);
    }

    /// Restarts a crashed `id` from its storage, optionally with a different
    /// hard state term (to model a node whose term ran ahead).
    pub fn restart(&mut self, id: u64) {
        let id = NodeId(id);
        let s = self.storage[&id].clone();
        // The state machine is rebuilt from the snapshot, then the log.
        let prefix: Vec<Entry> = match &s.snapshot {
            Some(snap) => {
                let prefix: Vec<Entry> = (1..=snap.meta.index.0)
                    .map(|i| self.committed[&LogIndex(i)].1.clone())
                    .collect();
                assert_eq!(snap.data, state_bytes(&prefix), "{id}'s stored snapshot");
                prefix
            }
            None => Vec::new(),
        };
        let node = RawNode::restore_with_snapshot(
            self.configs[&id].clone(),
            s.hard_state,
            s.snapshot,
            s.entries,
        )
        .expect("durable state restores");
        self.nodes.insert(id, node);
        self.down.remove(&id);
        self.applied.insert(id, prefix);
        self.last_commit.remove(&id);
        self.process(id);
    }

    /// Log Matching (§5.3): if two logs hold an entry with the same index and
    /// term, they are identical up to it.
    pub fn check_log_matching(&self) {
        let nodes: Vec<&RawNode> = self.nodes.values().collect();
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                let last = a.last_index().min(b.last_index());
                let first = a.first_index().max(b.first_index());
                // The highest index where the terms agree.
                let agree = (first.0..=last.0)
                    .rev()
                    .map(LogIndex)
                    .find(|&ix| a.term_at(ix).is_some() && a.term_at(ix) == b.term_at(ix));
                if let Some(top) = agree {
                    for ix in first.0..=top.0 {
                        assert_eq!(
                            a.entry(LogIndex(ix)),
                            b.entry(LogIndex(ix)),
                            "Log Matching: {} and {} agree at {top} but differ at {ix}",
                            a.id(),
                            b.id()
                        );
                    }
                }
            }
        }
    }

    /// `id` snapshots its state machine at its applied index, keeping the
    /// last `keep` applied entries in its log; its storage drops what the
    /// snapshot covers. Returns the snapshot's index, if it compacted.
    pub fn compact(&mut self, id: u64, keep: u64) -> Option<LogIndex> {
        let id = NodeId(id);
        let node = self.nodes.get_mut(&id)?;
        let index = LogIndex(node.applied_index().0.checked_sub(keep)?);
        let data = state_bytes(&self.applied[&id][..index.0 as usize]);
        node.compact(index, data).ok()?;
        let snapshot = node.snapshot().clone();
        // The snapshot is durable before the entries it covers go.
        let storage = self.storage.get_mut(&id).expect("storage");
        storage.entries.retain(|e| e.index > index);
        storage.snapshot = Some(snapshot);
        Some(index)
    }

    /// The payloads `id` applied, commands only.
    pub fn applied_commands(&self, id: u64) -> Vec<Vec<u8>> {
        self.applied[&NodeId(id)]
            .iter()
            .filter_map(|e| match &e.payload {
                EntryPayload::Command(c) => Some(c.clone()),
                EntryPayload::Noop | EntryPayload::Membership(_) => None,
            })
            .collect()
    }
}

/// Whether `m` is an AppendEntries carrying the entry at `index`.
pub fn carries(m: &Message, index: u64) -> bool {
    match &m.body {
        MessageBody::AppendEntries { entries, .. } => {
            entries.iter().any(|e| e.index == LogIndex(index))
        }
        _ => false,
    }
}
