//! The replica loop: ready → send → hand the storage work to the executor →
//! apply → serve reads; and, when a write completes, release what waited
//! for it.

use crate::admin::{AdminAccepted, AdminOp, AdminRefused, AdminReply, AdminRequest};
use crate::effects::{Effect, EntryDigest, Input, ReplicaEvent, SnapshotDigest};
use crate::envelope::{ClientRequest, Envelope, WireError};
use crate::error::ReplicaError;
use crate::snapshot_policy::{PendingSnapshot, SnapshotPolicy};
use crate::write::{StorageLimits, WriteId, WriteQueue};
use kv::{ClientId, KvStore};
use raft::{Config, HardState, LogIndex, Message, RawNode, Ready, Snapshot, Term};
use std::collections::BTreeMap;
use wal::Recovered;

#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;

/// At most this many writes wait for their entry to apply at once (one per
/// client session); beyond it a new client is told the replica is busy.
pub const MAX_PENDING_WRITES: usize = 16 * 1024;

/// At most this many reads wait for confirmation or for the state machine to
/// catch up; beyond it a read is told the replica is busy.
pub const MAX_PENDING_READS: usize = 16 * 1024;

/// A bound on ready cycles per input: each cycle hands out strictly less work
/// than the one before, so a handful suffice; reaching this is a bug.
const MAX_READY_CYCLES: usize = 64;

/// How a replica runs: its snapshot policy and its storage bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReplicaOptions {
    /// When to snapshot and compact.
    pub snapshot_policy: SnapshotPolicy,
    /// How much storage work may be outstanding.
    pub storage: StorageLimits,
}

/// A write waiting for its entry to be applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PendingWrite {
    pub req_id: u64,
    pub seq: u64,
    /// Where the command went in the leader's log.
    #[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
    pub index: LogIndex,
    /// Whether its answer, once applied, is `Done` whatever the state (put,
    /// delete, append): only such writes can be answered early by the
    /// planted bug that answers before applying.
    #[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
    pub answer_is_done: bool,
}

/// The client writes a leader found uncommitted in its log from earlier
/// terms (proposed by former leaders), by session and sequence number:
/// where a retry that reaches this leader waits instead of proposing again
/// (see `Replica::request`). Built on the first write request of a term
/// (`InheritedWrites::scan`), dropped when leadership is lost; emptied once
/// the commit index passes them, which happens all at once (a leader
/// commits only by counting entries of its own term, §5.4.2, and its no-op
/// follows every inherited entry).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct InheritedWrites {
    /// The term this leader leads in; the table is stale in any other.
    pub term: Term,
    /// The last entry of an earlier term in the log (the one before the
    /// no-op); 0 when none is uncommitted.
    pub through: LogIndex,
    /// The first entry for each `(client, seq)` among those inherited.
    pub by_session: BTreeMap<(ClientId, u64), LogIndex>,
}

/// A read waiting for the leader to confirm it still leads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PendingRead {
    pub req_id: u64,
    pub key: String,
}

/// A read confirmed at `index`, waiting for the state machine to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConfirmedRead {
    pub index: LogIndex,
    pub req_id: u64,
    pub key: String,
}

/// One raft node with its state machine. Its log is written by the
/// executor (see [`crate::Storage`]): the replica only says what to write.
///
/// `Clone + Eq + Hash` so that a model checker can search its states
/// (crates/model).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Replica {
    pub(crate) cluster_id: u64,
    pub(crate) raft: RawNode,
    pub(crate) kv: KvStore,
    /// Storage work issued to the executor or waiting to be.
    pub(crate) writes: WriteQueue,
    /// Writes waiting to apply, by client. Invariant: at most one per client
    /// (clients have one operation outstanding). A retry of the same
    /// sequence number waits on the entry already proposed (its `req_id`
    /// replaces the earlier attempt's), or on a copy inherited uncommitted
    /// from an earlier term (`inherited_writes`); a new sequence number
    /// replaces the entry.
    pub(crate) pending_writes: BTreeMap<ClientId, PendingWrite>,
    /// While leading: the writes of earlier terms uncommitted in the log,
    /// where retries of them wait. `None` until first needed in a term,
    /// and once leadership is lost.
    pub(crate) inherited_writes: Option<InheritedWrites>,
    /// Reads waiting for ReadIndex confirmation, by read context.
    pub(crate) pending_reads: BTreeMap<u64, PendingRead>,
    /// Reads confirmed, waiting for the state machine to reach their index.
    /// Invariant: sorted by index (inserted in place: confirmations may come
    /// out of index order, see `process_ready`).
    pub(crate) confirmed_reads: Vec<ConfirmedRead>,
    /// The next ReadIndex context to hand to raft.
    pub(crate) next_read_ctx: u64,
    /// When to snapshot and compact.
    pub(crate) policy: SnapshotPolicy,
    /// A snapshot taken, waiting for `policy.keep` more entries to apply
    /// before the log is compacted to it. Invariant: its index is above
    /// `compacting_to` and at most the applied index.
    pub(crate) pending_snapshot: Option<PendingSnapshot>,
    /// The index of the last snapshot taken or installed (0 if none): the
    /// policy counts applied entries from here.
    pub(crate) last_snapshot: LogIndex,
    /// The start of the log as asked of the disk: the latest compaction or
    /// install handed to the executor (raft forgets entries only once that
    /// write completes). Invariant: at least raft's snapshot index.
    pub(crate) compacting_to: LogIndex,
    /// The bug a test planted, if any.
    #[cfg(feature = "planted-bugs")]
    pub(crate) planted: Option<PlantedBug>,
}

impl Replica {
    /// Rebuilds the node from what recovery found on its disk (see
    /// [`crate::Storage::open`]): term, vote and log from disk, the state
    /// machine from the snapshot if any and by re-applying the committed
    /// entries after it (§7). Returns the effects of that recovery (applied
    /// entries, the initial soft state) for the executor to carry out like
    /// any other step's.
    pub fn open(
        cluster_id: u64,
        config: Config,
        options: ReplicaOptions,
        recovered: Recovered,
    ) -> Result<(Replica, Vec<Effect>), ReplicaError> {
        check_supported(&config)?;
        let kv = match &recovered.snapshot {
            Some(snapshot) => restore_state_machine(snapshot)?,
            None => KvStore::new(),
        };
        let found = Effect::Event(ReplicaEvent::Recovered {
            hard_state: recovered.hard_state,
            snapshot: recovered
                .snapshot
                .as_ref()
                .map(|s| SnapshotDigest::of(&s.meta, &kv)),
            entries: recovered.entries.iter().map(EntryDigest::of).collect(),
            truncated_tail_bytes: recovered.truncated_tail_bytes,
        });
        let fresh = recovered.entries.is_empty()
            && recovered.snapshot.is_none()
            && recovered.hard_state == HardState::default();
        let last_snapshot = LogIndex(kv.applied_index());
        let raft = if fresh {
            RawNode::new(config).map_err(ReplicaError::Config)?
        } else {
            RawNode::restore_with_snapshot(
                config,
                recovered.hard_state,
                recovered.snapshot,
                recovered.entries,
            )
            .map_err(ReplicaError::Restore)?
        };
        let mut replica = Replica {
            cluster_id,
            raft,
            kv,
            writes: WriteQueue::new(options.storage),
            pending_writes: BTreeMap::new(),
            inherited_writes: None,
            pending_reads: BTreeMap::new(),
            confirmed_reads: Vec::new(),
            next_read_ctx: 1,
            policy: options.snapshot_policy,
            pending_snapshot: None,
            last_snapshot,
            compacting_to: last_snapshot,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        };
        let mut effects = vec![found];
        replica.drain_ready(&mut effects)?;
        debug_assert!(
            effects.iter().all(|e| !matches!(e, Effect::Reply(_))),
            "a replica that just opened has no clients to answer"
        );
        Ok((replica, effects))
    }

    /// Plants `bug` (tests only: see [`crate::PlantedBug`]).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: Option<PlantedBug>) {
        self.planted = bug;
    }

    /// Whether the test planted `bug` (never, without the feature).
    #[cfg(feature = "planted-bugs")]
    pub(crate) fn planted(&self, bug: PlantedBug) -> bool {
        self.planted == Some(bug)
    }

    /// The raft node, for inspection.
    pub fn raft(&self) -> &RawNode {
        &self.raft
    }

    /// The state machine, for inspection.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// Writes handed to the executor and not yet reported done.
    pub fn writes_in_flight(&self) -> usize {
        self.writes.in_flight()
    }

    /// The index the log starts after once every write asked for is done:
    /// the latest compaction or install issued (raft's own snapshot index
    /// follows when that write completes).
    pub fn compacting_to(&self) -> LogIndex {
        self.compacting_to
    }

    /// Handles one input, pushing what must be done onto `effects`. On error
    /// the replica must be discarded (see [`ReplicaError`]).
    pub fn handle(&mut self, input: Input, effects: &mut Vec<Effect>) -> Result<(), ReplicaError> {
        match input {
            Input::Tick => self.raft.tick(),
            Input::Message(envelope) => self.receive(envelope, effects),
            Input::Request(request) => self.request(request, effects),
            Input::Admin(request) => self.admin(request, effects),
            Input::WriteDone(id) => self.write_done(id, effects)?,
        }
        self.drain_ready(effects)
    }

    /// Handles client requests that arrived together, then takes what they
    /// produced once: their proposals leave as one batch of entries (one
    /// storage write, one append per follower) and their reads share one
    /// ReadIndex round, where [`Replica::handle`] for each would issue a
    /// write and a broadcast per request. The real node calls it with what
    /// its queue holds; the outcome for each request is what `handle` would
    /// give (raft defers its broadcast to the next ready either way). Only
    /// requests batch: each only proposes or registers a read, and neither
    /// depends on a drain in between.
    pub fn handle_requests(
        &mut self,
        requests: impl IntoIterator<Item = ClientRequest>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), ReplicaError> {
        for request in requests {
            self.request(request, effects);
        }
        self.drain_ready(effects)
    }

    /// Starts an election now, as if the election timeout had elapsed (§5.2;
    /// pre-vote first when configured). For drivers that set
    /// `raft::Config::external_election_timer`: a model checker choosing
    /// when each node's timeout fires. On error the replica must be
    /// discarded, as for [`Replica::handle`].
    pub fn campaign(&mut self, effects: &mut Vec<Effect>) -> Result<(), ReplicaError> {
        self.raft.campaign();
        self.drain_ready(effects)
    }

    fn receive(&mut self, envelope: Envelope, effects: &mut Vec<Effect>) {
        if envelope.cluster_id != self.cluster_id {
            effects.push(Effect::Event(ReplicaEvent::Refused(
                WireError::WrongCluster {
                    expected: self.cluster_id,
                    got: envelope.cluster_id,
                },
            )));
            return;
        }
        if let Err(e) = self.raft.step(envelope.msg) {
            effects.push(Effect::Event(ReplicaEvent::Refused(WireError::Refused(
                format!("{e:?}"),
            ))));
        }
    }

    fn admin(&mut self, request: AdminRequest, effects: &mut Vec<Effect>) {
        let result = match request.op {
            AdminOp::ChangeMembership(change) => self
                .raft
                .propose_membership(change)
                .map(AdminAccepted::MembershipProposed)
                .map_err(AdminRefused::Membership),
            AdminOp::TransferLeadership(to) => self
                .raft
                .transfer_leadership(to)
                .map(|()| AdminAccepted::TransferStarted)
                .map_err(AdminRefused::Transfer),
            AdminOp::Snapshot => self
                .snapshot_now()
                .map(AdminAccepted::SnapshotTaken)
                .map_err(|applied| AdminRefused::NothingToSnapshot { applied }),
        };
        effects.push(Effect::AdminReply(AdminReply {
            req_id: request.req_id,
            result,
        }));
    }

    /// The loop: ready → send → hand over storage work → apply, until raft
    /// has nothing more to say; then issue what the write limit allows and
    /// serve the reads the state machine has reached.
    fn drain_ready(&mut self, effects: &mut Vec<Effect>) -> Result<(), ReplicaError> {
        let mut cycles = 0;
        while self.raft.has_ready() {
            cycles += 1;
            if cycles > MAX_READY_CYCLES {
                return Err(ReplicaError::Livelock);
            }
            let ready = self.raft.ready();
            // Part of the same ready (see `RawNode::take_snapshot`).
            let snapshot = self.raft.take_snapshot();
            self.process_ready(ready, snapshot, effects)?;
        }
        effects.extend(self.writes.issue().into_iter().map(Effect::Write));
        self.serve_confirmed_reads(effects);
        Ok(())
    }

    fn process_ready(
        &mut self,
        ready: Ready,
        snapshot: Option<Snapshot>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), ReplicaError> {
        let Ready {
            soft_state,
            hard_state,
            entries,
            messages,
            persisted_messages,
            committed_entries,
            read_states,
        } = ready;

        if let Some(soft) = soft_state {
            effects.push(Effect::Event(ReplicaEvent::SoftState(soft)));
            if soft.role != raft::Role::Leader {
                self.abort_unconfirmed_reads(effects);
                self.abandon_pending_writes(effects);
                self.inherited_writes = None;
            }
        }

        // §10.2.1: a leader's appends leave before its own write; it counts
        // itself only once that write completes (`write_done`).
        self.send_all(messages, effects);
        #[cfg(feature = "planted-bugs")]
        let persisted_messages = self.planted_early_answers(persisted_messages, effects);

        // A snapshot from the leader comes first: the entries of this ready
        // follow it, and its acknowledgement is among `persisted_messages`.
        let install = match snapshot {
            Some(snapshot) => {
                let (snapshot, digest) = self.install_snapshot(snapshot, effects)?;
                // Raft's log after the install, up to this ready's entries
                // (they follow the install in the same write), is the
                // suffix it kept (Figure 13): what the disk keeps too.
                let last = entries
                    .first()
                    .map_or(self.raft.last_index(), |e| e.index.prev());
                let keep = self.log_after(snapshot.meta.index, last);
                Some((snapshot, digest, keep))
            }
            None => None,
        };

        // Figure 2: "respond to RPCs only after updating stable storage".
        // The answers wait for the write that makes their state durable
        // (or for the last write outstanding, when this ready writes
        // nothing: writes complete in order).
        let writes_something = install.is_some() || hard_state.is_some() || !entries.is_empty();
        #[cfg(feature = "planted-bugs")]
        let early_count = self.planted(PlantedBug::LeaderCountsBeforeDurable)
            && self.raft.role() == raft::Role::Leader;
        #[cfg(feature = "planted-bugs")]
        let last_entry = entries.last().map(|e| (e.term, e.index));
        if writes_something || self.writes.is_busy() {
            self.writes
                .add(install, hard_state, entries, persisted_messages);
        } else {
            self.send_all(persisted_messages, effects);
        }
        #[cfg(feature = "planted-bugs")]
        if early_count && let Some((term, index)) = last_entry {
            self.raft.persisted(term, index);
        }

        for entry in &committed_entries {
            self.apply(entry, effects);
            // Entry by entry, so that snapshots fall exactly every
            // `policy.every` entries and the log never holds more than
            // `every + keep` applied entries (see `SnapshotPolicy`).
            self.raft.applied(entry.index);
            self.maybe_compact();
        }

        for read in read_states {
            if read.lease {
                effects.push(Effect::Event(ReplicaEvent::LeaseReadConfirmed {
                    term: self.raft.term(),
                    index: read.index,
                }));
            }
            if let Some(pending) = self.pending_reads.remove(&read.ctx) {
                // Kept sorted by index. Confirmations need not come in index
                // order: a lease read answered at once (§6.4.1) can carry a
                // higher commit index than an earlier read still waiting
                // for its quorum round (found by a lease-read scenario with
                // 30 clients, seed 45). Each read waits for its own index,
                // so the order of serving is free.
                let at = self
                    .confirmed_reads
                    .partition_point(|r| r.index <= read.index);
                self.confirmed_reads.insert(
                    at,
                    ConfirmedRead {
                        index: read.index,
                        req_id: pending.req_id,
                        key: pending.key,
                    },
                );
                debug_assert!(
                    self.confirmed_reads
                        .get(at + 1)
                        .is_none_or(|next| next.index >= read.index),
                    "confirmed reads stay sorted by index"
                );
            }
        }
        Ok(())
    }

    /// The executor made write `id` durable: tell raft which entries are
    /// durable, finish a compaction, report what the disk now holds, and
    /// release the answers that waited for it.
    fn write_done(&mut self, id: WriteId, effects: &mut Vec<Effect>) -> Result<(), ReplicaError> {
        let Some(done) = self.writes.complete(id) else {
            return Err(ReplicaError::CompletionOutOfOrder {
                got: id,
                expected: self.writes.oldest(),
            });
        };
        if let Some(last) = done.digests.last() {
            // Only up to the first index a later outstanding write may
            // rewrite (see `WriteQueue::durable_bound`).
            let index = self
                .writes
                .durable_bound()
                .map_or(last.index, |bound| bound.min(last.index));
            let term = if index == last.index {
                Some(last.term)
            } else {
                self.raft.term_at(index)
            };
            if let Some(term) = term
                && index.0 > 0
            {
                self.raft.persisted(term, index);
            }
            #[cfg(feature = "planted-bugs")]
            self.planted_early_replies(&done.planted_entries, effects);
        }
        // In the order the write made them durable: the install first (the
        // entries follow it), then the hard state and entries.
        let log_entries = |raft: &RawNode| raft.last_index().0 - raft.snapshot_meta().index.0;
        if let Some(snapshot) = done.installed {
            effects.push(Effect::Event(ReplicaEvent::SnapshotInstalled {
                snapshot,
                log_entries: log_entries(&self.raft),
            }));
        }
        if done.write.hard_state.is_some() || !done.digests.is_empty() {
            effects.push(Effect::Event(ReplicaEvent::Persisted {
                hard_state: done.write.hard_state,
                entries: done.digests,
            }));
        }
        if let (Some(compact), Some(digest)) = (done.write.compact, done.compacted) {
            // §7: the snapshot is durable, so raft may forget the entries it
            // covers, unless a snapshot from the leader overtook it.
            if compact.meta.index > self.raft.snapshot_meta().index {
                self.raft
                    .compact(compact.meta.index, compact.data)
                    .map_err(ReplicaError::Compact)?;
            }
            effects.push(Effect::Event(ReplicaEvent::SnapshotTaken {
                snapshot: digest,
                log_entries: log_entries(&self.raft),
            }));
        }
        self.send_all(done.held_messages, effects);
        Ok(())
    }

    pub(crate) fn send_all(&self, messages: Vec<Message>, effects: &mut Vec<Effect>) {
        effects.extend(messages.into_iter().map(|msg| {
            Effect::Send(Envelope {
                cluster_id: self.cluster_id,
                msg,
            })
        }));
    }
}

/// Refuses raft settings this replica cannot run: an append must be able to
/// carry the largest command the state machine accepts (raft refuses a
/// proposal bigger than one append, so every larger command would be
/// refused for good).
fn check_supported(config: &Config) -> Result<(), ReplicaError> {
    if config.max_bytes_per_append < kv::MAX_COMMAND_BYTES {
        return Err(ReplicaError::UnsupportedConfig(format!(
            "max_bytes_per_append is {} but a command may take {} bytes (kv::MAX_COMMAND_BYTES); use max_entries_per_append = 1 for one entry per message",
            config.max_bytes_per_append,
            kv::MAX_COMMAND_BYTES
        )));
    }
    Ok(())
}

/// Decodes a snapshot's state machine and checks that it stands where the
/// snapshot says.
pub(crate) fn restore_state_machine(snapshot: &Snapshot) -> Result<KvStore, ReplicaError> {
    let kv = KvStore::restore(&snapshot.data)
        .map_err(|e| ReplicaError::InvalidSnapshot(format!("{e:?}")))?;
    if kv.applied_index() != snapshot.meta.index.0 {
        return Err(ReplicaError::InvalidSnapshot(format!(
            "the state is at index {} but the snapshot covers {}",
            kv.applied_index(),
            snapshot.meta.index
        )));
    }
    Ok(kv)
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
