//! The replica's vocabulary with its executor: what goes in ([`Input`]),
//! what comes out ([`Effect`]), and the observable facts ([`ReplicaEvent`])
//! that the simulator checks and the real node turns into metrics.

use crate::admin::{AdminReply, AdminRequest};
use crate::envelope::{ClientReply, ClientRequest, Envelope, WireError};
use crate::write::{Write, WriteId};
use kv::KvStore;
use raft::{Entry, EntryPayload, HardState, LogIndex, Membership, SnapshotMeta, SoftState, Term};

/// What a replica reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One tick of the replica's own clock.
    Tick,
    /// A message from a peer.
    Message(Envelope),
    /// A client operation.
    Request(ClientRequest),
    /// An operator's request: a membership change or a leadership transfer.
    Admin(AdminRequest),
    /// The executor made write `id` durable. Writes complete in the order
    /// they were issued; a completion out of order is an executor bug and
    /// stops the replica.
    WriteDone(WriteId),
}

/// What a replica asks its executor to do, or tells it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Deliver this message to `envelope.msg.to`.
    Send(Envelope),
    /// Deliver this reply to the client that sent the request.
    Reply(ClientReply),
    /// Answer to an [`Input::Admin`] request (always in the same step).
    AdminReply(AdminReply),
    /// Carry out this write and report [`Input::WriteDone`] once it is
    /// durable. Writes must be carried out, and reported, in order.
    Write(Write),
    /// Something observable happened (for tracing, metrics and invariants).
    Event(ReplicaEvent),
}

/// Observable facts about a replica's progress. The simulator checks its
/// invariants against these; the real server turns them into metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaEvent {
    /// Role, term or known leader changed.
    SoftState(SoftState),
    /// A write completed: what it made durable (one sync). Reported when
    /// the executor says the write is done, never before.
    Persisted {
        /// The hard state written in the batch, if it changed.
        hard_state: Option<HardState>,
        /// The entries written, as (index, term, payload digest); the first
        /// replaces any stored entry at its index and everything after it.
        entries: Vec<EntryDigest>,
    },
    /// A committed entry was applied to the state machine.
    Applied(EntryDigest),
    /// A message was refused before it reached raft.
    Refused(WireError),
    /// A configuration entry was applied (it was in force on this replica
    /// since it entered the log, §4.1; applied means committed).
    MembershipApplied {
        /// The entry's index.
        index: LogIndex,
        /// The configuration.
        membership: Membership,
    },
    /// The replica opened its log: what recovery found on disk, before
    /// anything else happened. Always the first effect of [`crate::Replica::open`].
    Recovered {
        /// The hard state found.
        hard_state: HardState,
        /// The snapshot the log starts from, if it was ever compacted.
        snapshot: Option<SnapshotDigest>,
        /// The log found after the snapshot (from index 1 if none).
        entries: Vec<EntryDigest>,
        /// Bytes of a torn last write cut off the log.
        truncated_tail_bytes: u64,
    },
    /// The replica snapshotted its state machine and compacted its log up
    /// to the snapshot, durably (see [`crate::SnapshotPolicy`]).
    SnapshotTaken {
        /// What the snapshot covers.
        snapshot: SnapshotDigest,
        /// The entries the log still holds after it.
        log_entries: u64,
    },
    /// The replica replaced its state machine with a snapshot sent by the
    /// leader (§7): its applied index jumped to the snapshot's. Reported
    /// at once; the log follows when the install's write completes
    /// ([`ReplicaEvent::SnapshotInstalled`]).
    StateMachineReplaced {
        /// What the snapshot covers.
        snapshot: SnapshotDigest,
    },
    /// The replica installed a snapshot sent by the leader (InstallSnapshot,
    /// §7), durably: its state machine jumped to the snapshot's index, and
    /// its log was cut per Figure 13 (kept after the snapshot if it held
    /// the snapshot's last entry, else discarded).
    SnapshotInstalled {
        /// What the snapshot covers.
        snapshot: SnapshotDigest,
        /// The entries the log still holds after it.
        log_entries: u64,
    },
    /// As leader of `term`, raft confirmed a read at `index` from its lease
    /// (§6.4.1): it will be answered once `index` is applied, as of now.
    LeaseReadConfirmed {
        /// The leader's term.
        term: Term,
        /// The commit index the read observes.
        index: LogIndex,
    },
}

/// A compact fingerprint of a snapshot: where it sits in the log and the
/// state it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotDigest {
    /// The last index it covers.
    pub index: LogIndex,
    /// The term of that entry.
    pub term: Term,
    /// The state machine's digest at `index` ([`KvStore::digest`]).
    pub state: u64,
}

/// A compact fingerprint of a log entry, enough to compare logs across
/// replicas without copying payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryDigest {
    /// The entry's index.
    pub index: LogIndex,
    /// The entry's term.
    pub term: Term,
    /// A stable 64-bit hash of the payload (see [`payload_digest`]).
    pub payload: u64,
}

impl EntryDigest {
    /// The fingerprint of `entry`.
    pub fn of(entry: &Entry) -> EntryDigest {
        EntryDigest {
            index: entry.index,
            term: entry.term,
            payload: payload_digest(&entry.payload),
        }
    }
}

/// A stable (FNV-1a, 64-bit) hash of an entry payload: the same on every
/// platform, build and run, unlike `std`'s randomly keyed hasher.
pub fn payload_digest(payload: &EntryPayload) -> u64 {
    match payload {
        EntryPayload::Noop => 0x6e6f_6f70, // "noop": any constant distinct from commands
        EntryPayload::Command(bytes) => stablehash::fnv1a(bytes),
        EntryPayload::Membership(m) => {
            // A tag, then each set's ids, each set closed by a marker that
            // no id encoding contains.
            let mut bytes = b"membership".to_vec();
            for set in [&m.voters, &m.outgoing, &m.learners] {
                for id in set {
                    bytes.extend_from_slice(&id.0.to_le_bytes());
                }
                bytes.extend_from_slice(b"|end|");
            }
            stablehash::fnv1a(&bytes)
        }
    }
}

impl SnapshotDigest {
    /// The fingerprint of a snapshot at `meta` whose state is `kv`.
    pub fn of(meta: &SnapshotMeta, kv: &KvStore) -> SnapshotDigest {
        SnapshotDigest {
            index: meta.index,
            term: meta.term,
            state: kv.digest(),
        }
    }
}
