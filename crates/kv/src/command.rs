//! The wire vocabulary of the state machine: commands as clients propose them,
//! outputs and errors as the state machine answers, the size limits, and the
//! byte encoding that travels through the Raft log.
//!
//! The encoding is postcard. Postcard numbers enum variants by position, so the
//! variants below must never be reordered or removed: a reordered enum would
//! make a replica built from a newer commit decode an old log differently.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies one client session (dissertation §6.3). In Jepsen's terms, one
/// process: it has at most one request outstanding at a time.
pub type ClientId = u64;

/// The largest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 256;

/// The largest value, in bytes of UTF-8: the value of a put, an append's
/// argument, a compare-and-swap's `expected` and `new`, and also the value an
/// append produces (an append that would grow a value past it fails).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The largest encoded command accepted by [`Command::decode`]: a key, two
/// values (compare-and-swap) and room for the framing integers. Checked before
/// decoding, so garbage can never make the decoder allocate more than this.
pub const MAX_COMMAND_BYTES: usize = MAX_KEY_BYTES + 2 * MAX_VALUE_BYTES + 64;

/// The most operations one [`Op::Batch`] carries.
pub const MAX_BATCH_OPS: usize = 64;

/// One operation on the key-value map.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Read a key. Through the log it is linearizable like any write, and its
    /// answer is cached in the client's session like any other.
    Get {
        /// The key to read.
        key: String,
    },
    /// Set a key to a value, creating it if absent.
    Put {
        /// The key to write.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Remove a key. Removing an absent key succeeds and changes nothing.
    Delete {
        /// The key to remove.
        key: String,
    },
    /// Compare-and-swap: set `key` to `new` if and only if its current value is
    /// `expected` (`None`: the key must be absent).
    Cas {
        /// The key to test and set.
        key: String,
        /// The value the key must hold for the swap to happen; `None` means
        /// the key must be absent.
        expected: Option<String>,
        /// The value written when the comparison holds.
        new: String,
    },
    /// Append to a key's value (an absent key counts as the empty string).
    Append {
        /// The key to extend.
        key: String,
        /// The suffix to append.
        value: String,
    },
    /// Several writes applied atomically, in one log entry: all or nothing.
    /// Each is a put, delete, compare-and-swap or append, on a key no other
    /// operation of the batch touches (so each sees its key as it was
    /// before the batch, and the order inside the batch does not matter).
    /// If a compare-and-swap's comparison fails, nothing is written and the
    /// answer is [`Output::Batch`] with the position of that operation; if
    /// any operation would fail (a value grown past the limit, a full map),
    /// nothing is written and the batch fails with that error.
    Batch {
        /// The operations, 1 to [`MAX_BATCH_OPS`], on distinct keys.
        ops: Vec<Op>,
    },
}

impl Op {
    /// The key the operation touches; for a batch, the first operation's.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Delete { key }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => key,
            Op::Batch { ops } => ops.first().map_or("", Op::key),
        }
    }

    /// Every key the operation touches, in its order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Op::Batch { ops } => ops.iter().map(Op::key).collect(),
            single => vec![single.key()],
        }
    }

    /// Whether the operation can change the map (used to tell reads apart).
    pub fn is_write(&self) -> bool {
        !matches!(self, Op::Get { .. })
    }

    /// Checks the size limits of the operation's arguments. The same check
    /// runs on both sides of the log: in [`Command::decode`] where a proposal
    /// enters, and in [`crate::KvStore::apply`] where it takes effect
    /// (TigerBeetle-style paired assertions), so a command that skipped one
    /// side is still caught on the other.
    pub fn validate(&self) -> Result<(), KvError> {
        if let Op::Batch { ops } = self {
            return validate_batch(ops);
        }
        check_key(self.key())?;
        match self {
            Op::Batch { .. } => unreachable!("checked above"),
            Op::Get { .. } | Op::Delete { .. } => Ok(()),
            Op::Put { value, .. } | Op::Append { value, .. } => check_value(value),
            Op::Cas { expected, new, .. } => {
                if let Some(expected) = expected {
                    check_value(expected)?;
                }
                check_value(new)
            }
        }
    }
}

/// A batch: 1 to [`MAX_BATCH_OPS`] writes (no get, no batch) on distinct
/// keys, each within its limits, whose encoding fits one command.
fn validate_batch(ops: &[Op]) -> Result<(), KvError> {
    let malformed = |why: String| Err(KvError::Malformed(format!("batch: {why}")));
    if ops.is_empty() || ops.len() > MAX_BATCH_OPS {
        return malformed(format!("{} operations (1 to {MAX_BATCH_OPS})", ops.len()));
    }
    let mut keys = std::collections::BTreeSet::new();
    // A bound on the encoding: each string with its length prefix (at most
    // 3 bytes for these lengths), and a variant tag per operation.
    let mut bytes = 16usize;
    for (i, op) in ops.iter().enumerate() {
        if matches!(op, Op::Get { .. } | Op::Batch { .. }) {
            return malformed(format!("operation {i} is a get or a batch; only writes"));
        }
        op.validate()?;
        if !keys.insert(op.key()) {
            return malformed(format!("key {:?} appears twice", op.key()));
        }
        bytes += 2 + match op {
            Op::Put { key, value } | Op::Append { key, value } => key.len() + value.len() + 6,
            Op::Delete { key } => key.len() + 3,
            Op::Cas { key, expected, new } => {
                key.len() + expected.as_ref().map_or(0, |e| e.len()) + new.len() + 10
            }
            Op::Get { .. } | Op::Batch { .. } => unreachable!("refused above"),
        };
    }
    if bytes > MAX_COMMAND_BYTES - 32 {
        return Err(KvError::ValueTooLarge {
            len: bytes,
            max: MAX_COMMAND_BYTES - 32,
        });
    }
    Ok(())
}

pub(crate) fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn check_value(value: &str) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// A client's request as it travels through the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    /// The session the request belongs to.
    pub client: ClientId,
    /// The request's sequence number within its session. Invariant: `seq >= 1`;
    /// a client numbers its requests 1, 2, 3, … and sends the next only after
    /// the previous one was answered or abandoned (one outstanding request).
    pub seq: u64,
    /// What to do.
    pub op: Op,
}

impl Command {
    /// Encodes the command for a proposal. Does not validate: an invalid
    /// command still encodes (so tests can push one through the log), and is
    /// rejected by [`Command::decode`] and by [`crate::KvStore::apply`].
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and integers into a growable Vec has no
        // failure path in postcard; the expect documents that, it cannot fire.
        postcard::to_allocvec(self).expect("postcard encoding into a Vec cannot fail")
    }

    /// Decodes and validates a command: the bytes must be exactly one
    /// postcard-encoded command (no trailing bytes), at most
    /// [`MAX_COMMAND_BYTES`] long, with `seq >= 1` and every key and value
    /// within its limit.
    pub fn decode(bytes: &[u8]) -> Result<Command, KvError> {
        let command = Command::decode_unvalidated(bytes)?;
        if command.seq == 0 {
            return Err(KvError::Malformed(
                "sequence number 0 (must be >= 1)".into(),
            ));
        }
        command.op.validate()?;
        Ok(command)
    }

    /// Decodes the structure only (size of the input, postcard syntax, no
    /// trailing bytes), leaving the limits to the caller. The state machine
    /// uses it so that a structurally sound but invalid command can still be
    /// attributed to its client and answered through its session.
    pub(crate) fn decode_unvalidated(bytes: &[u8]) -> Result<Command, KvError> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(KvError::Malformed(format!(
                "command of {} bytes exceeds the limit of {MAX_COMMAND_BYTES}",
                bytes.len()
            )));
        }
        let (command, rest) = postcard::take_from_bytes::<Command>(bytes)
            .map_err(|e| KvError::Malformed(format!("undecodable command: {e}")))?;
        if !rest.is_empty() {
            return Err(KvError::Malformed(format!(
                "{} trailing bytes after the command",
                rest.len()
            )));
        }
        Ok(command)
    }
}

/// The result of an operation that succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Output {
    /// The answer to a get: the key's value, if present.
    Value(Option<String>),
    /// The answer to put, delete and append.
    Done,
    /// The answer to compare-and-swap: whether it swapped.
    Cas(bool),
    /// The answer to a batch: `None` when every operation took effect; the
    /// position of the first compare-and-swap whose comparison failed when
    /// none did (every compare-and-swap before it held).
    Batch {
        /// The compare-and-swap that aborted the batch, if one did.
        aborted_at: Option<u32>,
    },
}

/// Why a command had no effect. The command did not take effect at its log
/// index, and retries of it get the same answer. Every variant but
/// [`KvError::SessionExpired`] is a definite failure (Jepsen's `:fail`);
/// `SessionExpired` leaves open whether an *earlier* copy took effect before
/// the client's session was evicted (Jepsen's `:info`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvError {
    /// The bytes are not a well-formed command (or carry `seq == 0`).
    Malformed(String),
    /// A key longer than [`MAX_KEY_BYTES`].
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than [`MAX_VALUE_BYTES`], given or (for append) produced.
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The request is older than the last one the session saw: the client has
    /// already moved on, so this is a delayed copy and is ignored
    /// (dissertation §6.3). Says nothing about whether the original applied.
    StaleSequence {
        /// The client.
        client: ClientId,
        /// The request's sequence number.
        seq: u64,
        /// The session's last sequence number.
        last: u64,
    },
    /// The client had no session and the request is not its first
    /// (`seq > 1`): the session was evicted (or never existed), so whether an
    /// earlier copy of this request took effect can no longer be told. It is
    /// not applied now and never will be (the refusal is cached); the client
    /// continues with its next sequence number. An unknown outcome (`:info`).
    SessionExpired {
        /// The client.
        client: ClientId,
    },
    /// The map holds [`crate::MAX_KEYS`] keys and the command would add one.
    StoreFull {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Malformed(why) => write!(f, "malformed command: {why}"),
            KvError::KeyTooLarge { len, max } => {
                write!(f, "key of {len} bytes exceeds the limit of {max}")
            }
            KvError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max}")
            }
            KvError::StaleSequence { client, seq, last } => write!(
                f,
                "client {client}: request {seq} is older than the last one seen ({last})"
            ),
            KvError::SessionExpired { client } => {
                write!(f, "client {client}: no session (expired or never opened)")
            }
            KvError::StoreFull { max } => write!(f, "the store already holds {max} keys"),
        }
    }
}

impl std::error::Error for KvError {}

/// What the state machine answers to one command.
pub type Response = Result<Output, KvError>;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn decode_rejects_trailing_bytes() {
        let mut bytes = Command {
            client: 1,
            seq: 1,
            op: put("k", "v"),
        }
        .encode();
        bytes.push(0);
        assert!(matches!(
            Command::decode(&bytes),
            Err(KvError::Malformed(_))
        ));
    }

    #[test]
    fn decode_rejects_sequence_zero() {
        let bytes = Command {
            client: 1,
            seq: 0,
            op: put("k", "v"),
        }
        .encode();
        assert!(matches!(
            Command::decode(&bytes),
            Err(KvError::Malformed(_))
        ));
    }

    #[test]
    fn decode_rejects_oversized_key_and_value() {
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let bytes = Command {
            client: 1,
            seq: 1,
            op: Op::Get {
                key: long_key.clone(),
            },
        }
        .encode();
        assert_eq!(
            Command::decode(&bytes),
            Err(KvError::KeyTooLarge {
                len: MAX_KEY_BYTES + 1,
                max: MAX_KEY_BYTES
            })
        );
        let long_value = "v".repeat(MAX_VALUE_BYTES + 1);
        let bytes = Command {
            client: 1,
            seq: 1,
            op: Op::Cas {
                key: "k".into(),
                expected: Some(long_value),
                new: "n".into(),
            },
        }
        .encode();
        assert_eq!(
            Command::decode(&bytes),
            Err(KvError::ValueTooLarge {
                len: MAX_VALUE_BYTES + 1,
                max: MAX_VALUE_BYTES
            })
        );
    }

    #[test]
    fn decode_accepts_values_at_the_limit() {
        let command = Command {
            client: u64::MAX,
            seq: u64::MAX,
            op: Op::Cas {
                key: "k".repeat(MAX_KEY_BYTES),
                expected: Some("e".repeat(MAX_VALUE_BYTES)),
                new: "n".repeat(MAX_VALUE_BYTES),
            },
        };
        let bytes = command.encode();
        assert!(bytes.len() <= MAX_COMMAND_BYTES);
        assert_eq!(Command::decode(&bytes), Ok(command));
    }

    #[test]
    fn a_batch_is_writes_on_distinct_keys_within_the_limits() {
        let put = |k: &str| Op::Put {
            key: k.into(),
            value: "v".into(),
        };
        let batch = |ops: Vec<Op>| Op::Batch { ops }.validate();
        assert_eq!(batch(vec![put("a"), put("b")]), Ok(()));
        let refused = |r: Result<(), KvError>, what: &str| {
            assert!(
                matches!(&r, Err(KvError::Malformed(why)) if why.contains(what)),
                "{r:?}"
            )
        };
        refused(batch(vec![]), "0 operations");
        refused(batch(vec![put("a"), put("a")]), "twice");
        refused(batch(vec![Op::Get { key: "a".into() }]), "only writes");
        refused(
            batch(vec![Op::Batch {
                ops: vec![put("a")],
            }]),
            "only writes",
        );
        refused(
            batch((0..=MAX_BATCH_OPS).map(|i| put(&i.to_string())).collect()),
            "operations",
        );
        let big = "x".repeat(MAX_VALUE_BYTES);
        let too_big: Vec<Op> = (0..3)
            .map(|i| Op::Put {
                key: i.to_string(),
                value: big.clone(),
            })
            .collect();
        assert!(matches!(batch(too_big), Err(KvError::ValueTooLarge { .. })));
        let biggest = Op::Batch {
            ops: (0..2)
                .map(|i| Op::Put {
                    key: i.to_string(),
                    value: "x".repeat(MAX_VALUE_BYTES - 100),
                })
                .collect(),
        };
        assert_eq!(biggest.validate(), Ok(()));
        let bytes = Command {
            client: u64::MAX,
            seq: u64::MAX,
            op: biggest,
        }
        .encode();
        assert!(bytes.len() <= MAX_COMMAND_BYTES, "the bound holds");
    }

    #[test]
    fn decode_rejects_input_over_the_command_limit_before_parsing() {
        let bytes = vec![0u8; MAX_COMMAND_BYTES + 1];
        let err = Command::decode(&bytes).unwrap_err();
        assert!(matches!(&err, KvError::Malformed(why) if why.contains("exceeds")));
    }

    /// Any single-key operation, or (one time in six) a batch of writes on
    /// distinct keys.
    pub(crate) fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => arb_single_op(),
            1 => proptest::collection::vec(arb_single_op(), 1..5).prop_map(|ops| {
                let mut seen = std::collections::BTreeSet::new();
                let ops: Vec<Op> = ops
                    .into_iter()
                    .filter(|op| op.is_write() && seen.insert(op.key().to_owned()))
                    .collect();
                if ops.is_empty() {
                    Op::Put { key: "b".into(), value: "x".into() }
                } else {
                    Op::Batch { ops }
                }
            }),
        ]
    }

    fn arb_single_op() -> impl Strategy<Value = Op> {
        let key = "[a-c]{0,2}";
        let value = "[x-z]{0,3}";
        prop_oneof![
            key.prop_map(|key| Op::Get { key }),
            (key, value).prop_map(|(key, value)| Op::Put { key, value }),
            key.prop_map(|key| Op::Delete { key }),
            (key, proptest::option::of(value), value).prop_map(|(key, expected, new)| Op::Cas {
                key,
                expected,
                new
            }),
            (key, value).prop_map(|(key, value)| Op::Append { key, value }),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(client in any::<u64>(), seq in 1..u64::MAX, op in arb_op()) {
            let command = Command { client, seq, op };
            prop_assert_eq!(Command::decode(&command.encode()), Ok(command));
        }

        #[test]
        fn decode_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Either a valid command that re-encodes to the same bytes
            // (the encoding is canonical), or an error value.
            if let Ok(command) = Command::decode(&bytes) {
                prop_assert_eq!(command.encode(), bytes);
            }
        }
    }
}
