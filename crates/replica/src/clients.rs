//! Clients: proposing their writes, reading by ReadIndex, and answering
//! them once their entry is applied (or their read confirmed and reached).

use crate::effects::{Effect, EntryDigest, ReplicaEvent};
use crate::envelope::{ClientReply, ClientRequest, ReplyError};
use crate::replica::{
    InheritedWrites, MAX_PENDING_READS, MAX_PENDING_WRITES, PendingRead, PendingWrite, Replica,
};
use kv::{Command, Op, Output};
use raft::{Entry, EntryPayload, LogIndex, ProposeError, RawNode, ReadIndexError, Role};

impl Replica {
    pub(crate) fn request(&mut self, request: ClientRequest, effects: &mut Vec<Effect>) {
        let reply = |result| {
            Effect::Reply(ClientReply {
                req_id: request.req_id,
                result,
            })
        };
        // Refuse what the state machine would refuse, before it takes a slot
        // in the log.
        if let Err(why) = request.op.validate() {
            effects.push(reply(Err(ReplyError::Invalid(format!("{why:?}")))));
            return;
        }
        if let Op::Get { key } = &request.op {
            self.start_read(request.req_id, key.clone(), effects);
            return;
        }
        // A retry of the write this client already waits on here (same
        // session and sequence number, §6.3): its entry is in this leader's
        // log, which a leader never truncates (Leader Append-Only, Figure
        // 3), and it commits under this leader or the wait ends with
        // `LeadershipLost`. The retry waits on that entry instead of
        // proposing another copy. Proposing again was safe (the session
        // table applies a (client, seq) once) but cost a log slot per
        // retry: with clients whose timeout is shorter than the queue
        // ahead of them, retries outgrew what replication could commit and
        // the backlog never drained (sweep at 50 clients, seeds 13 and 46:
        // 2,996 entries committed for 920 writes, ops pending 10 s after
        // the heal).
        //
        // The attempt it replaces is answered `Superseded` at once: its
        // waiter (an HTTP request in the real node) must not wait for an
        // answer that now goes to the retry, nor stay in a table for good.
        if let Some(pending) = self.pending_writes.get_mut(&request.client)
            && pending.seq == request.seq
        {
            let superseded = std::mem::replace(&mut pending.req_id, request.req_id);
            effects.push(Effect::Reply(ClientReply {
                req_id: superseded,
                result: Err(ReplyError::Superseded),
            }));
            return;
        }
        let replaces = self.pending_writes.contains_key(&request.client);
        if !replaces && self.pending_writes.len() >= MAX_PENDING_WRITES {
            effects.push(reply(Err(ReplyError::Busy)));
            return;
        }
        let answer_is_done = matches!(
            request.op,
            Op::Put { .. } | Op::Delete { .. } | Op::Append { .. }
        );
        let (req_id, seq) = (request.req_id, request.seq);
        let waiting_on = move |index| PendingWrite {
            req_id,
            seq,
            index,
            answer_is_done,
        };
        // A retry that reaches a new leader: the former leader's entry for
        // the same session and sequence number is often in this leader's
        // log, uncommitted. A leader never overwrites or deletes entries in
        // its own log (Leader Append-Only, Figure 3), so that entry commits
        // under this leader (with its no-op, §5.4.2) or the wait ends with
        // `LeadershipLost` when it steps down; `apply` answers it by
        // (client, seq) like any other. The retry waits on it instead of
        // proposing a copy (at 50 clients, sim seed 46: 1,584 entries
        // committed for 1,325 writes with the copies, 1,614 for 1,443
        // without). It needs no storage work, so the bound on bytes
        // outstanding does not apply.
        if let Some(index) = self.inherited_entry(request.client, request.seq) {
            self.wait_on(request.client, waiting_on(index), effects);
            return;
        }
        // Nothing queues without limit: past the bound on storage work
        // outstanding, the client is told to come back later.
        if self.writes.over_byte_limit() {
            effects.push(reply(Err(ReplyError::Busy)));
            return;
        }
        let command = Command {
            client: request.client,
            seq: request.seq,
            op: request.op,
        };
        match self.raft.propose(command.encode()) {
            Ok(index) => self.wait_on(command.client, waiting_on(index), effects),
            Err(ProposeError::NotLeader { leader }) => {
                effects.push(reply(Err(ReplyError::NotLeader { leader })))
            }
            Err(ProposeError::TooLarge { .. }) => {
                effects.push(reply(Err(ReplyError::Invalid("command too large".into()))))
            }
            Err(ProposeError::TooManyUncommitted { .. }) => {
                effects.push(reply(Err(ReplyError::Busy)))
            }
            // §3.10: leadership is moving; the client goes to the new leader.
            Err(ProposeError::TransferInProgress { to }) => {
                effects.push(reply(Err(ReplyError::NotLeader { leader: Some(to) })))
            }
        }
    }

    /// Registers `pending` as the write `client` waits on. If the client
    /// moved on to a newer sequence number while an older write still
    /// waited here, that write may yet apply, but its answer now has
    /// nowhere to go: it is answered `Superseded`.
    fn wait_on(&mut self, client: kv::ClientId, pending: PendingWrite, effects: &mut Vec<Effect>) {
        let replaced = self.pending_writes.insert(client, pending);
        if let Some(older) = replaced {
            effects.push(Effect::Reply(ClientReply {
                req_id: older.req_id,
                result: Err(ReplyError::Superseded),
            }));
        }
    }

    /// The index of an entry for `(client, seq)` that this leader found in
    /// its log from an earlier term and that is still uncommitted, if any;
    /// `None` when not leading, or while handing leadership over (new
    /// writes go to the transferee, §3.10).
    ///
    /// The table is built on first use in a term, by one scan of the
    /// uncommitted entries of earlier terms (at most raft's bound on
    /// uncommitted entries); this leader's own proposals need no entry in
    /// it: a retry of one finds it in `pending_writes` until it applies.
    fn inherited_entry(&mut self, client: kv::ClientId, seq: u64) -> Option<LogIndex> {
        if self.raft.role() != Role::Leader || self.raft.transfer_target().is_some() {
            return None;
        }
        let term = self.raft.term();
        let commit = self.raft.commit_index();
        let inherited = match &mut self.inherited_writes {
            Some(inherited) if inherited.term == term => inherited,
            stale => stale.insert(InheritedWrites::scan(&self.raft)),
        };
        if commit >= inherited.through {
            // All of them committed, together: a retry of one now
            // proposes a copy, which the session table answers with the
            // first result (§6.3).
            inherited.by_session.clear();
            return None;
        }
        inherited
            .by_session
            .get(&(client, seq))
            .copied()
            .filter(|&index| index > commit)
    }

    /// Linearizable read by ReadIndex (dissertation §6.4): the leader confirms
    /// it still leads with a quorum round, then the read is served once the
    /// local state machine has applied the confirmed commit index.
    fn start_read(&mut self, req_id: u64, key: String, effects: &mut Vec<Effect>) {
        let reply = |result| Effect::Reply(ClientReply { req_id, result });
        if self.pending_reads.len() + self.confirmed_reads.len() >= MAX_PENDING_READS {
            effects.push(reply(Err(ReplyError::Busy)));
            return;
        }
        let ctx = self.next_read_ctx;
        match self.raft.read_index(ctx) {
            Ok(()) => {
                self.next_read_ctx += 1;
                self.pending_reads.insert(ctx, PendingRead { req_id, key });
            }
            Err(ReadIndexError::NotLeader { leader }) => {
                effects.push(reply(Err(ReplyError::NotLeader { leader })))
            }
            Err(ReadIndexError::TooManyPending { .. }) => {
                effects.push(reply(Err(ReplyError::Busy)))
            }
        }
    }

    /// Applies one committed entry; answers the client waiting on it, if it
    /// waits here. A client hears of its write only now: committed and
    /// applied.
    pub(crate) fn apply(&mut self, entry: &Entry, effects: &mut Vec<Effect>) {
        debug_assert_eq!(
            entry.index.0,
            self.kv.applied_index() + 1,
            "entries apply in order, each once"
        );
        match &entry.payload {
            EntryPayload::Noop => self.kv.apply_noop(entry.index.0),
            EntryPayload::Membership(membership) => {
                // Raft acts on a configuration when it enters the log
                // (§4.1); applying it only tells the observers.
                self.kv.apply_noop(entry.index.0);
                effects.push(Effect::Event(ReplicaEvent::MembershipApplied {
                    index: entry.index,
                    membership: membership.clone(),
                }));
            }
            EntryPayload::Command(bytes) => {
                let applied = self.kv.apply(entry.index.0, bytes);
                if let Some(client) = applied.client {
                    let answers_pending = self
                        .pending_writes
                        .get(&client)
                        .is_some_and(|pending| pending.seq == applied.seq);
                    if answers_pending {
                        let pending = self.pending_writes.remove(&client).expect("checked above");
                        let result = applied.response.map_err(ReplyError::Kv);
                        effects.push(Effect::Reply(ClientReply {
                            req_id: pending.req_id,
                            result,
                        }));
                    }
                }
            }
        }
        effects.push(Effect::Event(ReplicaEvent::Applied(EntryDigest::of(entry))));
    }

    /// Writes waiting on entries a snapshot from the leader covers are
    /// answered from its session table (their first result, §6.3).
    pub(crate) fn answer_from_sessions(&mut self, effects: &mut Vec<Effect>) {
        let answered: Vec<kv::ClientId> = self
            .pending_writes
            .iter()
            .filter(|(client, pending)| {
                self.kv
                    .session(**client)
                    .is_some_and(|s| s.last_seq == pending.seq)
            })
            .map(|(client, _)| *client)
            .collect();
        for client in answered {
            let pending = self.pending_writes.remove(&client).expect("listed above");
            let session = self.kv.session(client).expect("listed above");
            effects.push(Effect::Reply(ClientReply {
                req_id: pending.req_id,
                result: session.last_response.clone().map_err(ReplyError::Kv),
            }));
        }
    }

    /// Reads not yet confirmed by a quorum cannot be, once leadership is
    /// gone: answer them now rather than let the client wait for a timeout.
    pub(crate) fn abort_unconfirmed_reads(&mut self, effects: &mut Vec<Effect>) {
        for (_, pending) in std::mem::take(&mut self.pending_reads) {
            effects.push(Effect::Reply(ClientReply {
                req_id: pending.req_id,
                result: Err(ReplyError::ReadAborted),
            }));
        }
    }

    /// Writes proposed while this replica led cannot be answered by it once
    /// it no longer does: their entries may still commit under the next
    /// leader, or be overwritten (§5.3). Answer them now with an indefinite
    /// error rather than let the client wait for a timeout: the client
    /// retries with the same sequence number (§6.3), which the session
    /// table applies at most once. Without this, a session-less executor's
    /// waiting writes would hold their slots forever.
    pub(crate) fn abandon_pending_writes(&mut self, effects: &mut Vec<Effect>) {
        for (_, pending) in std::mem::take(&mut self.pending_writes) {
            effects.push(Effect::Reply(ClientReply {
                req_id: pending.req_id,
                result: Err(ReplyError::LeadershipLost),
            }));
        }
    }

    pub(crate) fn serve_confirmed_reads(&mut self, effects: &mut Vec<Effect>) {
        let applied = LogIndex(self.kv.applied_index());
        let ready = self.confirmed_reads.partition_point(|r| r.index <= applied);
        for read in self.confirmed_reads.drain(..ready) {
            let value = self.kv.get(&read.key).map(str::to_owned);
            effects.push(Effect::Reply(ClientReply {
                req_id: read.req_id,
                result: Ok(Output::Value(value)),
            }));
        }
    }
}

impl InheritedWrites {
    /// Scans the uncommitted entries of earlier terms in the log of `raft`,
    /// a leader: they end before its no-op.
    fn scan(raft: &RawNode) -> InheritedWrites {
        let term = raft.term();
        let mut by_session = std::collections::BTreeMap::new();
        let mut through = LogIndex(0);
        let mut index = raft.commit_index().next();
        while let Some(entry) = raft.entry(index) {
            if entry.term >= term {
                break;
            }
            if let EntryPayload::Command(bytes) = &entry.payload
                && let Ok(command) = Command::decode(bytes)
            {
                by_session
                    .entry((command.client, command.seq))
                    .or_insert(index);
            }
            through = index;
            index = index.next();
        }
        InheritedWrites {
            term,
            through,
            by_session,
        }
    }
}
