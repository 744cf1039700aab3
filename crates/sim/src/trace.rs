//! The run's trace: every event, hashed always, printed on request.
//!
//! The hash is the proof of determinism: the same seed and the same build
//! must give the same hash. It is computed over the structured events, never
//! over their text, so that turning printing on or off cannot change it and
//! printing costs nothing when it is off (an event is formatted only if it
//! will be written).

use crate::queue::{MS, Nanos};
use raft::{LogIndex, Message, MessageBody, Role, Term};
use stablehash::WordHasher;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Who an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A replica (by raft node id).
    Node(u64),
    /// A client process.
    Client(u64),
    /// The fault injector.
    Nemesis,
}

/// A one-line summary of a raft message: enough to follow a run, without
/// copying entry payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageSummary {
    /// Sender node id.
    pub from: u64,
    /// Receiver node id.
    pub to: u64,
    /// Sender's term.
    pub term: Term,
    /// Kind and key fields.
    pub body: BodySummary,
}

/// The key fields of each message kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodySummary {
    /// Pre-vote request.
    PreVote {
        /// Index of the sender's last entry.
        last_index: LogIndex,
        /// Term of the sender's last entry.
        last_term: Term,
    },
    /// Pre-vote answer.
    PreVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Vote request.
    RequestVote {
        /// Index of the sender's last entry.
        last_index: LogIndex,
        /// Term of the sender's last entry.
        last_term: Term,
    },
    /// Vote answer.
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Append (or heartbeat when `count` is 0).
    Append {
        /// Index before the entries.
        prev_index: LogIndex,
        /// Term at `prev_index`.
        prev_term: Term,
        /// Number of entries carried.
        count: usize,
        /// The leader's commit index.
        commit: LogIndex,
        /// ReadIndex round carried.
        read_round: u64,
    },
    /// Append answer.
    AppendResponse {
        /// Whether the consistency check passed.
        success: bool,
        /// Index acknowledged (or rejected).
        index: LogIndex,
        /// ReadIndex round carried.
        read_round: u64,
    },
    /// Any other kind (InstallSnapshot and its answer), by name.
    Other {
        /// `MessageBody::kind()`.
        kind: &'static str,
    },
}

impl MessageSummary {
    /// Summarises `msg`.
    pub fn of(msg: &Message) -> MessageSummary {
        let body = match &msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => BodySummary::PreVote {
                last_index: *last_log_index,
                last_term: *last_log_term,
            },
            MessageBody::PreVoteResponse { granted } => {
                BodySummary::PreVoteResponse { granted: *granted }
            }
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => BodySummary::RequestVote {
                last_index: *last_log_index,
                last_term: *last_log_term,
            },
            MessageBody::RequestVoteResponse { granted } => {
                BodySummary::RequestVoteResponse { granted: *granted }
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
            } => BodySummary::Append {
                prev_index: *prev_log_index,
                prev_term: *prev_log_term,
                count: entries.len(),
                commit: *leader_commit,
                read_round: *read_round,
            },
            MessageBody::AppendEntriesResponse {
                success,
                index,
                read_round,
                ..
            } => BodySummary::AppendResponse {
                success: *success,
                index: *index,
                read_round: *read_round,
            },
            other => BodySummary::Other { kind: other.kind() },
        };
        MessageSummary {
            from: msg.from.0,
            to: msg.to.0,
            term: msg.term,
            body,
        }
    }
}

impl fmt::Display for MessageSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}->n{} {} ", self.from, self.to, self.term)?;
        match self.body {
            BodySummary::PreVote {
                last_index,
                last_term,
            } => {
                write!(f, "PreVote last={last_index}/{last_term}")
            }
            BodySummary::PreVoteResponse { granted } => {
                write!(f, "PreVoteResponse granted={granted}")
            }
            BodySummary::RequestVote {
                last_index,
                last_term,
            } => {
                write!(f, "RequestVote last={last_index}/{last_term}")
            }
            BodySummary::RequestVoteResponse { granted } => {
                write!(f, "RequestVoteResponse granted={granted}")
            }
            BodySummary::Append {
                prev_index,
                prev_term,
                count,
                commit,
                read_round,
            } => write!(
                f,
                "Append prev={prev_index}/{prev_term} n={count} commit={commit} read={read_round}"
            ),
            BodySummary::AppendResponse {
                success,
                index,
                read_round,
            } => {
                write!(
                    f,
                    "AppendResponse ok={success} index={index} read={read_round}"
                )
            }
            BodySummary::Other { kind } => write!(f, "{kind}"),
        }
    }
}

/// Everything that can happen in a run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TraceEvent {
    /// A message was handed to the network.
    Sent(MessageSummary),
    /// A message reached its receiver.
    Delivered(MessageSummary),
    /// A message was lost (randomly, by a partition, or because the receiver
    /// was down).
    Dropped(MessageSummary, DropReason),
    /// The network will deliver a message twice.
    Duplicated(MessageSummary),
    /// A node's role, term or known leader changed.
    Role {
        /// The new role.
        role: Role,
        /// The term.
        term: Term,
        /// The leader known, if any.
        leader: Option<u64>,
    },
    /// A node made a batch durable.
    Persisted {
        /// The term.
        term: Option<Term>,
        /// The vote persisted, if it changed.
        vote: Option<u64>,
        /// First entry written, if any.
        first: Option<LogIndex>,
        /// Last entry written, if any.
        last: Option<LogIndex>,
    },
    /// A node handed a write to its disk.
    WriteIssued {
        /// The write's id.
        id: u64,
        /// Entries it carries.
        entries: u64,
        /// When it will complete, from now.
        done_in_us: u64,
    },
    /// A node learnt that entries up to `index` are committed.
    Committed {
        /// The new commit index.
        index: LogIndex,
    },
    /// A node applied the committed entry at `index`.
    Applied {
        /// Index acknowledged (or rejected).
        index: LogIndex,
        /// The term.
        term: Term,
    },
    /// A node compacted its log to a snapshot of its own state machine
    /// (`installed` false), or installed one the leader sent (true).
    Snapshot {
        /// Whether it came from the leader.
        installed: bool,
        /// The last index it covers.
        index: LogIndex,
        /// The term of that entry.
        term: Term,
        /// Entries the log holds after it.
        log_entries: u64,
    },
    /// A node refused a message.
    Refused(String),
    /// A client invoked an operation.
    Invoke {
        /// The operation id.
        op: u64,
        /// What was asked.
        call: String,
    },
    /// A client sent an attempt of its operation to a node.
    Attempt {
        /// The operation id.
        op: u64,
        /// The attempt number (from 1).
        attempt: u32,
        /// The node (1-based id).
        node: u64,
    },
    /// A client got a definite rejection for one attempt.
    Rejected {
        /// The operation id.
        op: u64,
        /// The attempt number (from 1).
        attempt: u32,
        /// Why.
        why: String,
    },
    /// An attempt timed out.
    TimedOut {
        /// The operation id.
        op: u64,
        /// The attempt number (from 1).
        attempt: u32,
    },
    /// An operation completed.
    Complete {
        /// The operation id.
        op: u64,
        /// How it ended.
        outcome: String,
    },
    /// A fault was injected or healed.
    Fault(String),
    /// A replica failed and stopped itself.
    Halted(String),
}

/// Why a message was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Random loss.
    Loss,
    /// A partition separates sender and receiver.
    Partition,
    /// The receiver is down.
    ReceiverDown,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Sent(m) => write!(f, "send {m}"),
            TraceEvent::Delivered(m) => write!(f, "deliver {m}"),
            TraceEvent::Dropped(m, why) => write!(f, "drop ({why:?}) {m}"),
            TraceEvent::Duplicated(m) => write!(f, "duplicate {m}"),
            TraceEvent::Role { role, term, leader } => match leader {
                Some(l) => write!(f, "role {role} {term} leader=n{l}"),
                None => write!(f, "role {role} {term} leader=?"),
            },
            TraceEvent::Persisted {
                term,
                vote,
                first,
                last,
            } => {
                write!(f, "persist")?;
                if let Some(t) = term {
                    write!(f, " term={t}")?;
                }
                if let Some(v) = vote {
                    write!(f, " vote=n{v}")?;
                }
                if let (Some(a), Some(b)) = (first, last) {
                    write!(f, " entries={a}..={b}")?;
                }
                Ok(())
            }
            TraceEvent::WriteIssued {
                id,
                entries,
                done_in_us,
            } => write!(
                f,
                "write #{id} to disk ({entries} entries, done in {done_in_us}us)"
            ),
            TraceEvent::Committed { index } => write!(f, "commit up to {index}"),
            TraceEvent::Applied { index, term } => write!(f, "apply {index} ({term})"),
            TraceEvent::Snapshot {
                installed,
                index,
                term,
                log_entries,
            } => {
                let what = if *installed { "installed" } else { "took" };
                write!(
                    f,
                    "{what} snapshot at {index} ({term}), {log_entries} entries after it"
                )
            }
            TraceEvent::Refused(why) => write!(f, "refused: {why}"),
            TraceEvent::Invoke { op, call } => write!(f, "invoke op{op} {call}"),
            TraceEvent::Attempt { op, attempt, node } => {
                write!(f, "attempt op{op} #{attempt} -> n{node}")
            }
            TraceEvent::Rejected { op, attempt, why } => {
                write!(f, "rejected op{op} #{attempt}: {why}")
            }
            TraceEvent::TimedOut { op, attempt } => write!(f, "timeout op{op} #{attempt}"),
            TraceEvent::Complete { op, outcome } => write!(f, "complete op{op} {outcome}"),
            TraceEvent::Fault(what) => write!(f, "fault {what}"),
            TraceEvent::Halted(why) => write!(f, "halted: {why}"),
        }
    }
}

/// Which events to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceFilter {
    /// Print nothing (the hash is still computed).
    #[default]
    Off,
    /// Print every event.
    All,
    /// Print events about one node (and messages to or from it).
    Node(u64),
}

/// Hashes every event and prints the ones the filter selects.
///
/// The hash covers every field of every event, through the events' derived
/// `Hash`, with [`WordHasher`] (a word per integer; FNV-1a's byte-at-a-time
/// rounds were an eighth of the simulator's time).
pub struct Tracer {
    hasher: WordHasher,
    filter: TraceFilter,
    out: Box<dyn FnMut(&str)>,
    events: u64,
}

impl Tracer {
    /// A tracer that hands printed lines to `out`.
    pub fn new(filter: TraceFilter, out: Box<dyn FnMut(&str)>) -> Tracer {
        Tracer {
            hasher: WordHasher::new(),
            filter,
            out,
            events: 0,
        }
    }

    /// A tracer that prints nothing.
    pub fn silent() -> Tracer {
        Tracer::new(TraceFilter::Off, Box::new(|_| {}))
    }

    /// Records one event at virtual time `at`.
    pub fn record(&mut self, at: Nanos, actor: Actor, event: TraceEvent) {
        self.events += 1;
        at.hash(&mut self.hasher);
        actor.hash(&mut self.hasher);
        event.hash(&mut self.hasher);
        if self.selects(actor, &event) {
            let who = match actor {
                Actor::Node(n) => format!("n{n}"),
                Actor::Client(c) => format!("c{c}"),
                Actor::Nemesis => "nemesis".to_string(),
            };
            let line = format!("{:>7}.{:03}ms {who:<8} {event}", at / MS, (at % MS) / 1_000);
            (self.out)(&line);
        }
    }

    fn selects(&self, actor: Actor, event: &TraceEvent) -> bool {
        match self.filter {
            TraceFilter::Off => false,
            TraceFilter::All => true,
            TraceFilter::Node(n) => {
                actor == Actor::Node(n)
                    || matches!(event, TraceEvent::Attempt { node, .. } if *node == n)
                    || match event {
                        TraceEvent::Sent(m)
                        | TraceEvent::Delivered(m)
                        | TraceEvent::Dropped(m, _)
                        | TraceEvent::Duplicated(m) => m.from == n || m.to == n,
                        _ => false,
                    }
            }
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// The number of events so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn printing_does_not_change_the_hash() {
        let lines = Rc::new(RefCell::new(Vec::new()));
        let sink = lines.clone();
        let mut loud = Tracer::new(
            TraceFilter::All,
            Box::new(move |l| sink.borrow_mut().push(l.to_string())),
        );
        let mut quiet = Tracer::silent();
        for t in [&mut loud, &mut quiet] {
            t.record(5 * MS, Actor::Nemesis, TraceEvent::Fault("crash n1".into()));
            t.record(
                6 * MS,
                Actor::Client(2),
                TraceEvent::TimedOut { op: 3, attempt: 1 },
            );
        }
        assert_eq!(loud.hash(), quiet.hash());
        assert_eq!(lines.borrow().len(), 2);
        assert!(
            lines.borrow()[0].contains("fault crash n1"),
            "{:?}",
            lines.borrow()
        );
    }

    #[test]
    fn the_hash_depends_on_time_and_content() {
        let mut a = Tracer::silent();
        let mut b = Tracer::silent();
        let mut c = Tracer::silent();
        a.record(1, Actor::Nemesis, TraceEvent::Fault("x".into()));
        b.record(2, Actor::Nemesis, TraceEvent::Fault("x".into()));
        c.record(1, Actor::Nemesis, TraceEvent::Fault("y".into()));
        assert_ne!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn node_filter_selects_the_node_and_its_messages() {
        let t = Tracer::new(TraceFilter::Node(2), Box::new(|_| {}));
        let m = MessageSummary {
            from: 1,
            to: 2,
            term: Term(1),
            body: BodySummary::PreVoteResponse { granted: true },
        };
        assert!(t.selects(Actor::Node(2), &TraceEvent::Fault("x".into())));
        assert!(t.selects(Actor::Node(1), &TraceEvent::Sent(m)));
        assert!(!t.selects(Actor::Node(3), &TraceEvent::Fault("x".into())));
    }
}
