//! The properties checked in every state, each named after the Raft rule
//! that defines it (paper section or figure).

use crate::world::{Broken, RaftModel, State};
use raft::{Entry, LogIndex, Role};
use replica::EntryDigest;
use stateright::Property;

/// Every property, in the order a report lists them.
pub fn all() -> Vec<Property<RaftModel>> {
    vec![
        Property::always("election safety", election_safety),
        Property::always("log matching", log_matching),
        Property::always("leader completeness", leader_completeness),
        Property::always("state machine safety", state_machine_safety),
        Property::always("commit index never goes back", commit_never_goes_back),
        Property::always("acknowledged writes never lost", acknowledged_writes_kept),
        Property::always("linearizable", linearizable),
        Property::always("no replica error", no_replica_error),
        Property::sometimes("a leader is elected", a_leader_is_elected),
        Property::sometimes("a write is acknowledged", a_write_is_acknowledged),
    ]
}

/// The names of the `always` properties: a discovery of one of them is a
/// counterexample (the `sometimes` ones are examples, not failures).
pub const SAFETY: [&str; 8] = [
    "election safety",
    "log matching",
    "leader completeness",
    "state machine safety",
    "commit index never goes back",
    "acknowledged writes never lost",
    "linearizable",
    "no replica error",
];

/// Figure 3, Election Safety: at most one leader can be elected in a term.
fn election_safety(_: &RaftModel, state: &State) -> bool {
    let leaders = &state.ghost.leaders;
    leaders
        .iter()
        .zip(leaders.iter().skip(1))
        .all(|((t1, _), (t2, _))| t1 != t2)
}

/// Every log in the state, from index 1: the running replicas' logs in
/// memory and every disk's log.
fn logs(state: &State) -> Vec<Vec<&Entry>> {
    let mut logs = Vec::new();
    for node in &state.nodes {
        if let Some(r) = &node.replica {
            let raft = r.0.raft();
            let log = (raft.first_index().0..=raft.last_index().0)
                .filter_map(|i| raft.entry(LogIndex(i)))
                .collect();
            logs.push(log);
        }
        logs.push(node.durable.entries.iter().collect());
    }
    logs
}

/// Figure 3, Log Matching (§5.3): if two logs contain an entry with the
/// same index and term, the logs are identical in all entries up through
/// that index. (Snapshots are off in the model, so every log starts at 1.)
fn log_matching(_: &RaftModel, state: &State) -> bool {
    let logs = logs(state);
    for (a, la) in logs.iter().enumerate() {
        for lb in &logs[a + 1..] {
            // The last index where both hold the same term: all before it
            // must agree, payloads included.
            let common = la.len().min(lb.len());
            if let Some(last) = (0..common).rev().find(|&k| la[k].term == lb[k].term)
                && la[..=last] != lb[..=last]
            {
                return false;
            }
        }
    }
    true
}

/// Figure 3, Leader Completeness (§5.4): an entry committed in a term is
/// in the log of every leader of a higher term. An entry applied by a
/// replica in term t was committed in t or before, so a leader of a term
/// above t must hold it.
fn leader_completeness(_: &RaftModel, state: &State) -> bool {
    state
        .nodes
        .iter()
        .filter_map(|n| n.replica.as_ref())
        .all(|r| {
            let raft = r.0.raft();
            raft.role() != Role::Leader
                || state.ghost.applied.iter().all(|(&index, (digest, term))| {
                    *term >= raft.term() || raft.entry(index).map(EntryDigest::of) == Some(*digest)
                })
        })
}

/// Figure 3, State Machine Safety: no two servers apply different entries
/// at one index (tracked as each entry applies).
fn state_machine_safety(_: &RaftModel, state: &State) -> bool {
    !state.ghost.broken.contains(&Broken::StateMachineSafety)
}

/// Figure 2: commitIndex increases monotonically while a server runs (a
/// restart may recover a lower one: it is recomputed from the leader).
fn commit_never_goes_back(_: &RaftModel, state: &State) -> bool {
    !state.ghost.broken.contains(&Broken::CommitWentBack)
}

/// Figure 2 and §5.4: a write acknowledged to a client was committed, so
/// it is on the disks of a majority, and committed entries are never
/// removed: it stays there whatever crashes follow.
fn acknowledged_writes_kept(model: &RaftModel, state: &State) -> bool {
    let majority = model.bounds.nodes / 2 + 1;
    state.ghost.acked.iter().all(|&payload| {
        state
            .nodes
            .iter()
            .filter(|n| {
                n.durable
                    .entries
                    .iter()
                    .any(|e| EntryDigest::of(e).payload == payload)
            })
            .count()
            >= majority
    })
}

/// The clients' operations are linearizable (checked by stateright's
/// LinearizabilityTester; operations still pending may or may not have
/// taken effect).
fn linearizable(_: &RaftModel, state: &State) -> bool {
    // Checked as each operation returns (only a return can break it),
    // rather than in every state.
    !state.ghost.broken.contains(&Broken::NotLinearizable)
}

/// No replica stopped on an error: the executor kept every contract
/// (writes completed in order) and the replica never refused to go on.
fn no_replica_error(_: &RaftModel, state: &State) -> bool {
    !state.ghost.broken.contains(&Broken::ReplicaError)
}

/// "Eventually a leader", within the bounds: some run elects one.
fn a_leader_is_elected(_: &RaftModel, state: &State) -> bool {
    !state.ghost.leaders.is_empty()
}

/// Some run gets a write acknowledged (the clients are not vacuous).
fn a_write_is_acknowledged(_: &RaftModel, state: &State) -> bool {
    !state.ghost.acked.is_empty()
}
