//! Client histories: what clients asked for and what they were told, in Jepsen's
//! vocabulary (invoke, ok, fail, info), and their JSON-lines encoding.
//!
//! A [`History`] is a flat list of [`Record`]s as a recorder sees them. The checker works
//! on [`Operation`]s instead: an invocation paired with its completion, built by
//! [`History::operations`], which also rejects histories that cannot have happened
//! (a completion without an invocation, an id used twice, a process with two operations
//! in flight).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, Write};

use serde::{Deserialize, Deserializer, Serialize};

/// Identifies one operation within a history. Unique per operation: its invocation and
/// its completion carry the same id.
pub type OpId = u64;

/// A client, in Jepsen's sense of a "process": it issues one operation at a time, and
/// waits for its completion (ok, fail or info) before it invokes the next one.
pub type ProcessId = u64;

/// Longest line [`History::read_jsonl`] accepts, in bytes. A recorded line is a few
/// hundred bytes; anything near this limit is not a history.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Most records [`History::read_jsonl`] accepts: bounds the memory a hostile or
/// truncated-and-concatenated input can make it use.
pub const MAX_RECORDS: usize = 10_000_000;

/// What a client asked for. Keys and values are strings; every call but a batch touches
/// exactly one key, which is what lets the checker split a history per key. A batch is
/// split into one operation per key before the split (see [`project_batches`]).
///
/// Serialised (on its own, e.g. inside an [`Operation`]) as the `f`, `key` and argument
/// fields of an invoke line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Call {
    /// Read the key's current value.
    Get {
        /// The key read.
        key: String,
    },
    /// Set the key to `value`.
    Put {
        /// The key written.
        key: String,
        /// The value written.
        value: String,
    },
    /// Remove the key: later reads see it absent.
    Delete {
        /// The key removed.
        key: String,
    },
    /// Compare-and-swap: if the key's value equals `expected` (`None`: the key is
    /// absent), set it to `new`; otherwise change nothing.
    Cas {
        /// The key compared and perhaps written.
        key: String,
        /// The value the key must hold for the swap to happen; `None` means "absent".
        expected: Option<String>,
        /// The value written if the comparison holds.
        new: String,
    },
    /// Append `value` to the key's current value (`""` if the key is absent).
    Append {
        /// The key appended to.
        key: String,
        /// The suffix appended.
        value: String,
    },
    /// Several writes (puts, deletes, cas, appends) on distinct keys, applied
    /// atomically: all of them, or none when a cas's comparison fails (then the batch
    /// returns that cas's position, [`Ret::Batch`]).
    Batch {
        /// The writes, each on a key no other write of the batch touches.
        ops: Vec<Call>,
    },
}

impl Call {
    /// The one key this call reads or writes; for a batch, its first write's.
    pub fn key(&self) -> &str {
        match self {
            Call::Get { key }
            | Call::Put { key, .. }
            | Call::Delete { key }
            | Call::Cas { key, .. }
            | Call::Append { key, .. } => key,
            Call::Batch { ops } => ops.first().map_or("", Call::key),
        }
    }

    /// Why this call cannot have been made, if it cannot: a batch that is empty, holds
    /// a get or a batch, or touches a key twice.
    pub fn malformed(&self) -> Option<String> {
        let Call::Batch { ops } = self else {
            return None;
        };
        if ops.is_empty() {
            return Some("an empty batch".into());
        }
        let mut keys = BTreeSet::new();
        for op in ops {
            if matches!(op, Call::Get { .. } | Call::Batch { .. }) {
                return Some(format!("a batch holds a {} (only writes)", op.name()));
            }
            if !keys.insert(op.key()) {
                return Some(format!("a batch touches key {:?} twice", op.key()));
            }
        }
        None
    }

    /// Whether `ret` is the kind of result this call can return (a value for a get, a
    /// flag for a cas, "done" for the others).
    pub fn accepts(&self, ret: &Ret) -> bool {
        matches!(
            (self, ret),
            (Call::Get { .. }, Ret::Value(_))
                | (Call::Cas { .. }, Ret::Cas(_))
                | (
                    Call::Put { .. } | Call::Delete { .. } | Call::Append { .. },
                    Ret::Done
                )
                | (Call::Batch { .. }, Ret::Batch(None))
        ) || matches!(
            (self, ret),
            (Call::Batch { ops }, Ret::Batch(Some(at)))
                if ops.get(*at as usize).is_some_and(|op| matches!(op, Call::Cas { .. }))
        )
    }

    /// The operation's name in the JSON-lines format (`"get"`, `"put"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Get { .. } => "get",
            Call::Put { .. } => "put",
            Call::Delete { .. } => "delete",
            Call::Cas { .. } => "cas",
            Call::Append { .. } => "append",
            Call::Batch { .. } => "batch",
        }
    }
}

/// What an operation returned when it completed with `:ok`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ret {
    /// The result of a get: the value read, `None` if the key was absent.
    Value(Option<String>),
    /// A put, delete or append took effect.
    Done,
    /// The result of a cas: whether it swapped. A `false` cas took effect as a read that
    /// saw a value other than the expected one.
    Cas(bool),
    /// The result of a batch: `None` if every write took effect; else the position of
    /// the cas whose comparison failed, and then none did (every cas before it saw its
    /// expected value).
    Batch(Option<u32>),
}

/// One line of a history, in Jepsen's vocabulary.
///
/// Serialised as one flat JSON object per record; see the crate documentation for the
/// exact schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireRecord", into = "WireRecord")]
pub enum Record {
    /// A client invoked an operation.
    Invoke {
        /// The operation's id.
        id: OpId,
        /// The client that invoked it.
        process: ProcessId,
        /// When it was invoked (virtual nanoseconds).
        time_ns: u64,
        /// What was asked for.
        call: Call,
    },
    /// The operation completed and took effect, returning `ret`.
    Ok {
        /// The operation's id.
        id: OpId,
        /// The client that invoked it.
        process: ProcessId,
        /// When the client learned the result.
        time_ns: u64,
        /// What it returned.
        ret: Ret,
    },
    /// The operation definitely did not take effect.
    Fail {
        /// The operation's id.
        id: OpId,
        /// The client that invoked it.
        process: ProcessId,
        /// When the client learned it failed.
        time_ns: u64,
        /// Why, for humans.
        error: String,
    },
    /// The outcome is unknown: the operation may take effect at any time after its
    /// invocation (even after this record), or never.
    Info {
        /// The operation's id.
        id: OpId,
        /// The client that invoked it.
        process: ProcessId,
        /// When the client gave up waiting.
        time_ns: u64,
        /// Why the outcome is unknown, for humans.
        reason: String,
    },
}

impl Record {
    /// The id of the operation this record belongs to.
    pub fn id(&self) -> OpId {
        match self {
            Record::Invoke { id, .. }
            | Record::Ok { id, .. }
            | Record::Fail { id, .. }
            | Record::Info { id, .. } => *id,
        }
    }

    /// The client this record belongs to.
    pub fn process(&self) -> ProcessId {
        match self {
            Record::Invoke { process, .. }
            | Record::Ok { process, .. }
            | Record::Fail { process, .. }
            | Record::Info { process, .. } => *process,
        }
    }

    /// When this event happened (virtual nanoseconds).
    pub fn time_ns(&self) -> u64 {
        match self {
            Record::Invoke { time_ns, .. }
            | Record::Ok { time_ns, .. }
            | Record::Fail { time_ns, .. }
            | Record::Info { time_ns, .. } => *time_ns,
        }
    }
}

/// How an operation ended, as far as its client knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect, between its invocation and its completion, and returned this.
    Ok(Ret),
    /// It definitely did not take effect.
    Fail,
    /// It may have taken effect at any time after its invocation, or never (an `info`
    /// record, or no completion at all by the end of the history).
    Unknown,
}

/// An invocation paired with its completion: the unit the checker orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The operation's id, unique in its history.
    pub id: OpId,
    /// The client that invoked it.
    pub process: ProcessId,
    /// What was asked for.
    pub call: Call,
    /// When it was invoked.
    pub invoke_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// When it completed (ok, fail or info); `None` if the history ends first.
    /// Invariant (for histories built by [`History::operations`]): `Some(t)` implies
    /// `t >= invoke_ns`, and `Outcome::Ok` implies `Some`.
    pub complete_ns: Option<u64>,
}

/// A history that cannot be read or cannot have happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// A JSON line could not be read or does not follow the schema.
    Parse {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        message: String,
    },
    /// The input could not be read at all.
    Io {
        /// 1-based number of the line being read.
        line: usize,
        /// The underlying error, as text (io::Error is not `Clone`/`Eq`).
        message: String,
    },
    /// The records do not describe a possible history.
    Malformed {
        /// The operation concerned.
        id: OpId,
        /// What is impossible about it.
        message: String,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Parse { line, message } => write!(f, "line {line}: {message}"),
            HistoryError::Io { line, message } => {
                write!(f, "reading line {line}: {message}")
            }
            HistoryError::Malformed { id, message } => write!(f, "operation {id}: {message}"),
        }
    }
}

impl std::error::Error for HistoryError {}

/// A client history: records in the order the recorder wrote them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The records, in recording order (normally non-decreasing time).
    pub records: Vec<Record>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Append one record.
    pub fn push(&mut self, r: Record) {
        self.records.push(r);
    }

    /// Write the history as JSON lines: one record per line, in order.
    pub fn write_jsonl<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        for r in &self.records {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Read a history written by [`History::write_jsonl`]. Blank lines are skipped. An
    /// error names the 1-based line number at fault.
    pub fn read_jsonl<R: BufRead>(mut r: R) -> Result<History, HistoryError> {
        let mut history = History::new();
        let mut buf = Vec::new();
        let mut line = 0usize;
        loop {
            buf.clear();
            line += 1;
            // Read at most one byte past the limit so an endless line cannot exhaust
            // memory.
            let n = std::io::Read::take(&mut r, MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| HistoryError::Io {
                    line,
                    message: e.to_string(),
                })?;
            if n == 0 {
                return Ok(history);
            }
            if buf.len() > MAX_LINE_BYTES {
                return Err(HistoryError::Parse {
                    line,
                    message: format!("line longer than {MAX_LINE_BYTES} bytes"),
                });
            }
            let text = std::str::from_utf8(&buf).map_err(|e| HistoryError::Parse {
                line,
                message: format!("not UTF-8: {e}"),
            })?;
            if text.trim().is_empty() {
                continue;
            }
            if history.records.len() >= MAX_RECORDS {
                return Err(HistoryError::Parse {
                    line,
                    message: format!("more than {MAX_RECORDS} records"),
                });
            }
            let record: Record = serde_json::from_str(text).map_err(|e| HistoryError::Parse {
                line,
                message: e.to_string(),
            })?;
            history.push(record);
        }
    }

    /// Pair every invocation with its completion, in invocation order.
    ///
    /// An invocation without a completion has an unknown outcome, like one completed by
    /// an `info` record. Errors: a completion without an invocation, an id invoked or
    /// completed twice, a completion from another process than the invocation, a
    /// completion earlier than its invocation, an `ok` whose result does not fit the
    /// call (e.g. a value for a put), and a process invoking while its previous
    /// operation has no completion yet.
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryError> {
        let mut ops: Vec<Operation> = Vec::new();
        // id -> index into `ops`.
        let mut by_id: BTreeMap<OpId, usize> = BTreeMap::new();
        // Invariant: maps a process to the operation it has in flight, if any.
        let mut in_flight: BTreeMap<ProcessId, OpId> = BTreeMap::new();
        let malformed = |id: OpId, message: String| HistoryError::Malformed { id, message };
        for record in &self.records {
            match record {
                Record::Invoke {
                    id,
                    process,
                    time_ns,
                    call,
                } => {
                    if by_id.contains_key(id) {
                        return Err(malformed(*id, "invoked twice".into()));
                    }
                    if let Some(pending) = in_flight.insert(*process, *id) {
                        return Err(malformed(
                            *id,
                            format!(
                                "process {process} invoked it while its operation {pending} \
                                 had no completion (a process has one operation in flight)"
                            ),
                        ));
                    }
                    if let Some(why) = call.malformed() {
                        return Err(malformed(*id, why));
                    }
                    by_id.insert(*id, ops.len());
                    ops.push(Operation {
                        id: *id,
                        process: *process,
                        call: call.clone(),
                        invoke_ns: *time_ns,
                        outcome: Outcome::Unknown,
                        complete_ns: None,
                    });
                }
                Record::Ok { id, .. } | Record::Fail { id, .. } | Record::Info { id, .. } => {
                    let Some(&index) = by_id.get(id) else {
                        return Err(malformed(*id, "completed but never invoked".into()));
                    };
                    let op = &mut ops[index];
                    if op.complete_ns.is_some() {
                        return Err(malformed(*id, "completed twice".into()));
                    }
                    if record.process() != op.process {
                        return Err(malformed(
                            *id,
                            format!(
                                "invoked by process {} but completed by process {}",
                                op.process,
                                record.process()
                            ),
                        ));
                    }
                    if record.time_ns() < op.invoke_ns {
                        return Err(malformed(
                            *id,
                            format!(
                                "completed at {} ns, before its invocation at {} ns",
                                record.time_ns(),
                                op.invoke_ns
                            ),
                        ));
                    }
                    op.outcome = match record {
                        Record::Ok { ret, .. } => {
                            if !op.call.accepts(ret) {
                                return Err(malformed(
                                    *id,
                                    format!("a {} cannot return {ret:?}", op.call.name()),
                                ));
                            }
                            Outcome::Ok(ret.clone())
                        }
                        Record::Fail { .. } => Outcome::Fail,
                        _ => Outcome::Unknown,
                    };
                    op.complete_ns = Some(record.time_ns());
                    in_flight.remove(&op.process);
                }
            }
        }
        Ok(ops)
    }
}

/// Splits every batch into one operation per key it writes, with the batch's id,
/// process and times, so that the per-key check (P-compositionality) applies:
///
/// - a batch that took effect: each write as done (a cas as swapped);
/// - a batch aborted by the cas at position `k`: that cas as not swapped, each cas
///   before it as a read of its expected value (the batch compared it), and every
///   other write as failed (it took no effect);
/// - a batch that failed: every write failed; of unknown outcome: every write unknown.
///
/// Each key's projection must be linearizable for the history to be, so a violation
/// found in the projection is a real one; atomicity across keys is not checked here
/// (the state machine's own tests check it).
pub fn project_batches(ops: &[Operation]) -> Cow<'_, [Operation]> {
    if !ops.iter().any(|op| matches!(op.call, Call::Batch { .. })) {
        return Cow::Borrowed(ops);
    }
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let Call::Batch { ops: writes } = &op.call else {
            out.push(op.clone());
            continue;
        };
        let aborted_at = match &op.outcome {
            Outcome::Ok(Ret::Batch(at)) => *at,
            _ => None,
        };
        for (i, write) in writes.iter().enumerate() {
            let (call, outcome) = match (&op.outcome, aborted_at) {
                (Outcome::Ok(_), None) => {
                    let ret = match write {
                        Call::Cas { .. } => Ret::Cas(true),
                        _ => Ret::Done,
                    };
                    (write.clone(), Outcome::Ok(ret))
                }
                (Outcome::Ok(_), Some(at)) => match write {
                    Call::Cas { .. } if i == at as usize => {
                        (write.clone(), Outcome::Ok(Ret::Cas(false)))
                    }
                    Call::Cas { key, expected, .. } if i < at as usize => (
                        Call::Get { key: key.clone() },
                        Outcome::Ok(Ret::Value(expected.clone())),
                    ),
                    _ => (write.clone(), Outcome::Fail),
                },
                (other, _) => (write.clone(), other.clone()),
            };
            out.push(Operation {
                call,
                outcome,
                ..op.clone()
            });
        }
    }
    Cow::Owned(out)
}

/// The flat JSON object a [`Record`] is written as. Every field but `type`, `id`,
/// `process` and `time_ns` is optional here, and [`Record::try_from`] checks that exactly
/// the fields the record's type and operation need are present.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord {
    #[serde(rename = "type")]
    kind: WireType,
    id: OpId,
    process: ProcessId,
    time_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    f: Option<WireF>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// Outer `None`: the field is missing; `Some(None)`: it is `null` ("key absent").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    expected: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ops: Option<Vec<Call>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ret: Option<Ret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Deserialise a field that is present (possibly `null`) as `Some(..)`, so that a
/// missing `expected` can be told from `"expected": null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireF {
    Get,
    Put,
    Delete,
    Cas,
    Append,
    Batch,
}

impl From<Record> for WireRecord {
    fn from(r: Record) -> Self {
        let mut w = WireRecord {
            kind: WireType::Invoke,
            id: r.id(),
            process: r.process(),
            time_ns: r.time_ns(),
            f: None,
            key: None,
            value: None,
            expected: None,
            new: None,
            ops: None,
            ret: None,
            error: None,
            reason: None,
        };
        match r {
            Record::Invoke { call, .. } => match call {
                Call::Get { key } => {
                    w.f = Some(WireF::Get);
                    w.key = Some(key);
                }
                Call::Put { key, value } => {
                    w.f = Some(WireF::Put);
                    w.key = Some(key);
                    w.value = Some(value);
                }
                Call::Delete { key } => {
                    w.f = Some(WireF::Delete);
                    w.key = Some(key);
                }
                Call::Cas { key, expected, new } => {
                    w.f = Some(WireF::Cas);
                    w.key = Some(key);
                    w.expected = Some(expected);
                    w.new = Some(new);
                }
                Call::Append { key, value } => {
                    w.f = Some(WireF::Append);
                    w.key = Some(key);
                    w.value = Some(value);
                }
                Call::Batch { ops } => {
                    w.f = Some(WireF::Batch);
                    w.ops = Some(ops);
                }
            },
            Record::Ok { ret, .. } => {
                w.kind = WireType::Ok;
                w.ret = Some(ret);
            }
            Record::Fail { error, .. } => {
                w.kind = WireType::Fail;
                w.error = Some(error);
            }
            Record::Info { reason, .. } => {
                w.kind = WireType::Info;
                w.reason = Some(reason);
            }
        }
        w
    }
}

impl TryFrom<WireRecord> for Record {
    type Error = String;

    fn try_from(w: WireRecord) -> Result<Self, String> {
        let WireRecord {
            kind,
            id,
            process,
            time_ns,
            f,
            key,
            value,
            expected,
            new,
            ops,
            ret,
            error,
            reason,
        } = w;
        // Names of the fields present, to reject the ones a record type does not use.
        let present: [(&str, bool); 9] = [
            ("f", f.is_some()),
            ("key", key.is_some()),
            ("value", value.is_some()),
            ("expected", expected.is_some()),
            ("new", new.is_some()),
            ("ops", ops.is_some()),
            ("ret", ret.is_some()),
            ("error", error.is_some()),
            ("reason", reason.is_some()),
        ];
        let only = |allowed: &[&str]| -> Result<(), String> {
            match present
                .iter()
                .find(|(name, is)| *is && !allowed.contains(name))
            {
                Some((name, _)) => Err(format!("unexpected field `{name}` for this record")),
                None => Ok(()),
            }
        };
        let need =
            |name: &str, v: Option<String>| v.ok_or_else(|| format!("missing field `{name}`"));
        match kind {
            WireType::Invoke => {
                let f = f.ok_or("missing field `f`")?;
                if let WireF::Batch = f {
                    only(&["f", "ops"])?;
                    let call = Call::Batch {
                        ops: ops.ok_or("missing field `ops`")?,
                    };
                    if let Some(why) = call.malformed() {
                        return Err(why);
                    }
                    return Ok(Record::Invoke {
                        id,
                        process,
                        time_ns,
                        call,
                    });
                }
                let key = need("key", key)?;
                let call = match f {
                    WireF::Batch => unreachable!("handled above"),
                    WireF::Get => {
                        only(&["f", "key"])?;
                        Call::Get { key }
                    }
                    WireF::Delete => {
                        only(&["f", "key"])?;
                        Call::Delete { key }
                    }
                    WireF::Put => {
                        only(&["f", "key", "value"])?;
                        Call::Put {
                            key,
                            value: need("value", value)?,
                        }
                    }
                    WireF::Append => {
                        only(&["f", "key", "value"])?;
                        Call::Append {
                            key,
                            value: need("value", value)?,
                        }
                    }
                    WireF::Cas => {
                        only(&["f", "key", "expected", "new"])?;
                        Call::Cas {
                            key,
                            expected: expected.ok_or("missing field `expected`")?,
                            new: need("new", new)?,
                        }
                    }
                };
                Ok(Record::Invoke {
                    id,
                    process,
                    time_ns,
                    call,
                })
            }
            WireType::Ok => {
                only(&["ret"])?;
                Ok(Record::Ok {
                    id,
                    process,
                    time_ns,
                    ret: ret.ok_or("missing field `ret`")?,
                })
            }
            WireType::Fail => {
                only(&["error"])?;
                Ok(Record::Fail {
                    id,
                    process,
                    time_ns,
                    error: need("error", error)?,
                })
            }
            WireType::Info => {
                only(&["reason"])?;
                Ok(Record::Info {
                    id,
                    process,
                    time_ns,
                    reason: need("reason", reason)?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<History, HistoryError> {
        History::read_jsonl(text.as_bytes())
    }

    #[test]
    fn documented_examples_parse_to_the_expected_records() {
        let text = r#"{"type":"invoke","id":17,"process":3,"time_ns":1200000,"f":"cas","key":"k2","expected":"a","new":"b"}
{"type":"ok","id":17,"process":3,"time_ns":1500000,"ret":{"cas":true}}
{"type":"invoke","id":18,"process":3,"time_ns":1600000,"f":"get","key":"k2"}
{"type":"ok","id":18,"process":3,"time_ns":1700000,"ret":{"value":null}}
{"type":"invoke","id":19,"process":3,"time_ns":1800000,"f":"cas","key":"k2","expected":null,"new":"c"}
{"type":"ok","id":19,"process":3,"time_ns":1900000,"ret":"done"}
{"type":"fail","id":20,"process":4,"time_ns":1,"error":"not leader"}
{"type":"info","id":21,"process":5,"time_ns":2,"reason":"timed out after 3 tries"}
"#;
        let h = parse(text).unwrap();
        assert_eq!(h.records.len(), 8);
        assert_eq!(
            h.records[0],
            Record::Invoke {
                id: 17,
                process: 3,
                time_ns: 1_200_000,
                call: Call::Cas {
                    key: "k2".into(),
                    expected: Some("a".into()),
                    new: "b".into()
                }
            }
        );
        assert_eq!(
            h.records[1],
            Record::Ok {
                id: 17,
                process: 3,
                time_ns: 1_500_000,
                ret: Ret::Cas(true)
            }
        );
        assert!(matches!(
            &h.records[3],
            Record::Ok {
                ret: Ret::Value(None),
                ..
            }
        ));
        assert!(matches!(
            &h.records[4],
            Record::Invoke {
                call: Call::Cas { expected: None, .. },
                ..
            }
        ));
        assert!(matches!(&h.records[5], Record::Ok { ret: Ret::Done, .. }));
        assert!(matches!(&h.records[6], Record::Fail { error, .. } if error == "not leader"));
        assert!(
            matches!(&h.records[7], Record::Info { reason, .. } if reason.starts_with("timed"))
        );
    }

    #[test]
    fn written_lines_have_the_documented_shape() {
        let mut h = History::new();
        h.push(Record::Invoke {
            id: 17,
            process: 3,
            time_ns: 1_200_000,
            call: Call::Cas {
                key: "k2".into(),
                expected: Some("a".into()),
                new: "b".into(),
            },
        });
        h.push(Record::Ok {
            id: 17,
            process: 3,
            time_ns: 1_500_000,
            ret: Ret::Cas(true),
        });
        let mut out = Vec::new();
        h.write_jsonl(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"type":"invoke","id":17,"process":3,"time_ns":1200000,"f":"cas","key":"k2","expected":"a","new":"b"}"#,
                "\n",
                r#"{"type":"ok","id":17,"process":3,"time_ns":1500000,"ret":{"cas":true}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn parse_errors_name_the_line() {
        let good = r#"{"type":"invoke","id":1,"process":1,"time_ns":1,"f":"get","key":"k"}"#;
        let cases = [
            (format!("{good}\n\n{{not json"), 3),
            (format!("{good}\n{{\"type\":\"ok\",\"id\":1,\"process\":1,\"time_ns\":2}}"), 2),
            (
                r#"{"type":"invoke","id":1,"process":1,"time_ns":1,"f":"put","key":"k"}"#.into(),
                1,
            ),
            (
                r#"{"type":"invoke","id":1,"process":1,"time_ns":1,"f":"cas","key":"k","new":"b"}"#
                    .into(),
                1,
            ),
            (
                r#"{"type":"invoke","id":1,"process":1,"time_ns":1,"f":"get","key":"k","value":"v"}"#
                    .into(),
                1,
            ),
            (format!("{good}\n{good}\n{{\"type\":\"launch\"}}"), 3),
            (format!("{good}\n{{\"type\":\"ok\",\"id\":-1}}"), 2),
            (
                r#"{"type":"fail","id":1,"process":1,"time_ns":1,"error":"x","extra":1}"#.into(),
                1,
            ),
        ];
        for (text, line) in cases {
            match parse(&text) {
                Err(HistoryError::Parse { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: expected a parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn invalid_utf8_and_overlong_lines_are_errors_not_panics() {
        let mut bytes = b"\xff\xfe\n".to_vec();
        assert!(matches!(
            History::read_jsonl(&bytes[..]),
            Err(HistoryError::Parse { line: 1, .. })
        ));
        bytes = vec![b' '; MAX_LINE_BYTES + 10];
        assert!(matches!(
            History::read_jsonl(&bytes[..]),
            Err(HistoryError::Parse { line: 1, .. })
        ));
    }

    fn invoke(id: OpId, process: ProcessId, t: u64, call: Call) -> Record {
        Record::Invoke {
            id,
            process,
            time_ns: t,
            call,
        }
    }
    fn ok(id: OpId, process: ProcessId, t: u64, ret: Ret) -> Record {
        Record::Ok {
            id,
            process,
            time_ns: t,
            ret,
        }
    }
    fn get(k: &str) -> Call {
        Call::Get { key: k.into() }
    }

    #[test]
    fn operations_pair_invocations_with_completions() {
        let h = History {
            records: vec![
                invoke(1, 1, 10, get("a")),
                invoke(
                    2,
                    2,
                    11,
                    Call::Put {
                        key: "a".into(),
                        value: "x".into(),
                    },
                ),
                ok(1, 1, 20, Ret::Value(None)),
                Record::Info {
                    id: 2,
                    process: 2,
                    time_ns: 30,
                    reason: "timeout".into(),
                },
                invoke(3, 1, 40, Call::Delete { key: "a".into() }),
                Record::Fail {
                    id: 3,
                    process: 1,
                    time_ns: 50,
                    error: "no".into(),
                },
                invoke(4, 1, 60, get("a")),
            ],
        };
        let ops = h.operations().unwrap();
        let summary: Vec<_> = ops
            .iter()
            .map(|o| (o.id, o.invoke_ns, o.outcome.clone(), o.complete_ns))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, 10, Outcome::Ok(Ret::Value(None)), Some(20)),
                (2, 11, Outcome::Unknown, Some(30)),
                (3, 40, Outcome::Fail, Some(50)),
                (4, 60, Outcome::Unknown, None),
            ]
        );
    }

    #[test]
    fn operations_reject_impossible_histories() {
        let put = Call::Put {
            key: "a".into(),
            value: "x".into(),
        };
        let cases: Vec<(Vec<Record>, &str)> = vec![
            (vec![ok(1, 1, 1, Ret::Done)], "never invoked"),
            (
                vec![invoke(1, 1, 1, put.clone()), invoke(1, 2, 2, put.clone())],
                "invoked twice",
            ),
            (
                vec![
                    invoke(1, 1, 1, put.clone()),
                    ok(1, 1, 2, Ret::Done),
                    ok(1, 1, 3, Ret::Done),
                ],
                "completed twice",
            ),
            (
                vec![invoke(1, 1, 1, put.clone()), ok(1, 2, 2, Ret::Done)],
                "completed by process",
            ),
            (
                vec![invoke(1, 1, 5, put.clone()), ok(1, 1, 4, Ret::Done)],
                "before its invocation",
            ),
            (
                vec![invoke(1, 1, 1, put.clone()), ok(1, 1, 2, Ret::Cas(true))],
                "cannot return",
            ),
            (
                vec![invoke(1, 1, 1, put.clone()), invoke(2, 1, 2, put)],
                "in flight",
            ),
        ];
        for (records, needle) in cases {
            let err = History { records }.operations().unwrap_err();
            assert!(
                err.to_string().contains(needle),
                "{err} should mention {needle}"
            );
        }
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z0-9]{1,4}", any::<String>()]
    }

    fn arb_call() -> impl Strategy<Value = Call> {
        prop_oneof![
            arb_string().prop_map(|key| Call::Get { key }),
            (arb_string(), arb_string()).prop_map(|(key, value)| Call::Put { key, value }),
            arb_string().prop_map(|key| Call::Delete { key }),
            (
                arb_string(),
                proptest::option::of(arb_string()),
                arb_string()
            )
                .prop_map(|(key, expected, new)| Call::Cas { key, expected, new }),
            (arb_string(), arb_string()).prop_map(|(key, value)| Call::Append { key, value }),
        ]
    }

    fn arb_ret() -> impl Strategy<Value = Ret> {
        prop_oneof![
            proptest::option::of(arb_string()).prop_map(Ret::Value),
            Just(Ret::Done),
            any::<bool>().prop_map(Ret::Cas),
        ]
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        let head = (any::<u64>(), any::<u64>(), any::<u64>());
        prop_oneof![
            (head, arb_call()).prop_map(|((id, process, time_ns), call)| {
                Record::Invoke {
                    id,
                    process,
                    time_ns,
                    call,
                }
            }),
            (head, arb_ret()).prop_map(|((id, process, time_ns), ret)| Record::Ok {
                id,
                process,
                time_ns,
                ret
            }),
            (head, arb_string()).prop_map(|((id, process, time_ns), error)| {
                Record::Fail {
                    id,
                    process,
                    time_ns,
                    error,
                }
            }),
            (head, arb_string()).prop_map(|((id, process, time_ns), reason)| {
                Record::Info {
                    id,
                    process,
                    time_ns,
                    reason,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn jsonl_round_trips(records in proptest::collection::vec(arb_record(), 0..20)) {
            let h = History { records };
            let mut out = Vec::new();
            h.write_jsonl(&mut out).unwrap();
            // One line per record: strings with newlines are escaped by JSON.
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), h.records.len());
            let back = History::read_jsonl(&out[..]).unwrap();
            prop_assert_eq!(back, h);
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = History::read_jsonl(&bytes[..]);
        }
    }

    /// A history of batches and gets, one JSON line each, times in nanoseconds.
    fn batch_history(lines: &[&str]) -> History {
        parse(&lines.join("\n")).unwrap()
    }

    #[test]
    fn a_batch_round_trips_and_a_malformed_one_is_refused() {
        let text = r#"{"type":"invoke","id":1,"process":0,"time_ns":0,"f":"batch","ops":[{"f":"put","key":"a","value":"1"},{"f":"cas","key":"b","expected":null,"new":"2"}]}
{"type":"ok","id":1,"process":0,"time_ns":5,"ret":{"batch":1}}"#;
        let history = parse(text).unwrap();
        let mut out = Vec::new();
        history.write_jsonl(&mut out).unwrap();
        assert_eq!(parse(std::str::from_utf8(&out).unwrap()).unwrap(), history);
        let ops = history.operations().unwrap();
        assert_eq!(ops[0].outcome, Outcome::Ok(Ret::Batch(Some(1))));

        let twice = r#"{"type":"invoke","id":1,"process":0,"time_ns":0,"f":"batch","ops":[{"f":"put","key":"a","value":"1"},{"f":"delete","key":"a"}]}"#;
        assert!(parse(twice).is_err(), "a key twice in one batch");
        let aborted_by_a_put = r#"{"type":"invoke","id":1,"process":0,"time_ns":0,"f":"batch","ops":[{"f":"put","key":"a","value":"1"}]}
{"type":"ok","id":1,"process":0,"time_ns":5,"ret":{"batch":0}}"#;
        assert!(
            parse(aborted_by_a_put).unwrap().operations().is_err(),
            "only a cas can abort a batch"
        );
    }

    #[test]
    fn each_key_of_a_batch_is_checked_and_an_aborted_batch_wrote_nothing() {
        use crate::{Budget, Verdict, check_history};
        let batch = r#"{"type":"invoke","id":1,"process":0,"time_ns":0,"f":"batch","ops":[{"f":"put","key":"a","value":"1"},{"f":"put","key":"b","value":"1"}]}
{"type":"ok","id":1,"process":0,"time_ns":10,"ret":{"batch":null}}"#;
        let read = |key: &str, value: &str| {
            format!(
                r#"{{"type":"invoke","id":2,"process":1,"time_ns":20,"f":"get","key":"{key}"}}
{{"type":"ok","id":2,"process":1,"time_ns":30,"ret":{{"value":{value}}}}}"#
            )
        };
        let verdict =
            |lines: &[&str]| check_history(&batch_history(lines), &Budget::default()).unwrap();
        assert_eq!(
            verdict(&[batch, &read("b", "\"1\"")]),
            Verdict::Linearizable
        );
        assert!(
            matches!(
                verdict(&[batch, &read("b", "null")]),
                Verdict::NotLinearizable(_)
            ),
            "the batch's write to b was lost"
        );

        let aborted = r#"{"type":"invoke","id":1,"process":0,"time_ns":0,"f":"batch","ops":[{"f":"cas","key":"a","expected":"x","new":"y"},{"f":"put","key":"b","value":"2"}]}
{"type":"ok","id":1,"process":0,"time_ns":10,"ret":{"batch":0}}"#;
        assert_eq!(
            verdict(&[aborted, &read("b", "null")]),
            Verdict::Linearizable
        );
        assert!(
            matches!(
                verdict(&[aborted, &read("b", "\"2\"")]),
                Verdict::NotLinearizable(_)
            ),
            "an aborted batch wrote b"
        );
        let passed_then_aborted = r#"{"type":"invoke","id":1,"process":0,"time_ns":0,"f":"batch","ops":[{"f":"cas","key":"a","expected":"x","new":"y"},{"f":"cas","key":"b","expected":null,"new":"2"}]}
{"type":"ok","id":1,"process":0,"time_ns":10,"ret":{"batch":1}}"#;
        assert!(
            matches!(verdict(&[passed_then_aborted]), Verdict::NotLinearizable(_)),
            "the first cas saw a = x, which nobody wrote"
        );
    }
}
