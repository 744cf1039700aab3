//! The replicated state machine: a sorted map plus client sessions, changed
//! only by committed log entries, in log order.
//!
//! # Sessions (dissertation §6.3)
//!
//! Each client numbers its requests 1, 2, 3, … and has at most one outstanding
//! at a time. The store keeps, per client, the last sequence number it applied
//! and the response it gave. A command with sequence number `seq` from a client
//! whose session says `last_seq`:
//!
//! * `seq == last_seq`: a retry of the last request. It is *not* applied
//!   again; the cached response is returned with `duplicate: true`. So a write
//!   that a client retries after a timeout takes effect once.
//! * `seq < last_seq`: a delayed copy of a request the client has already moved
//!   past. No effect; [`KvError::StaleSequence`].
//! * `seq > last_seq`: a new request. Applied, and its response cached.
//!
//! # Expiry, and the rule for clients without a session
//!
//! Sessions expire by log position, never by wall time (clocks differ between
//! replicas; the log does not): at most [`MAX_SESSIONS`] are kept, and opening
//! one more evicts the session whose last command sits at the lowest log index.
//! Every replica evicts the same session at the same index.
//!
//! A client without a session is either new or evicted, and the two cannot be
//! told apart. The rule is:
//!
//! * `seq == 1` opens a session and is applied.
//! * `seq > 1` is refused with [`KvError::SessionExpired`], and the refusal
//!   itself opens the session (`last_seq = seq`, the refusal cached as the
//!   response). An evicted client's retry of request `n > 1` might already
//!   have been applied before the eviction; refusing it is the only answer
//!   that cannot apply it twice. Caching the refusal makes it final: every
//!   later copy of the same request gets the same refusal (a duplicate), and a
//!   delayed copy of an earlier request is stale; the client simply continues
//!   with `seq + 1`. To the client, `SessionExpired` means "not applied now,
//!   never applied later, and whether it was applied before is unknown"
//!   (Jepsen's `:info`, not `:fail`).
//!
//! What remains unprotected: a client evicted right after its *first* request
//! was applied, whose retry of that request then arrives, has it applied twice
//! (it looks exactly like a new client). Eviction needs [`MAX_SESSIONS`] other
//! clients to issue commands between the first apply and the retry, so this
//! only happens under session pressure; a client library that never reuses a
//! client id and retries promptly does not meet it.

use crate::command::{
    ClientId, Command, KvError, MAX_VALUE_BYTES, Op, Output, Response, check_value,
};
use crate::digest::Fnv;
use std::collections::BTreeMap;

/// The most client sessions kept at once. Each caches its last response, so
/// the sessions hold at most `MAX_SESSIONS * MAX_VALUE_BYTES` (256 MiB) of
/// cached values in the worst case, and typically a few bytes each.
pub const MAX_SESSIONS: usize = 4096;

/// The most keys the map holds. A command that would add a key beyond it
/// fails with [`KvError::StoreFull`] and has no effect.
pub const MAX_KEYS: usize = 1 << 20;

/// What the store remembers about one client (dissertation §6.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    /// The sequence number of the client's last applied request.
    pub last_seq: u64,
    /// The response given to that request, returned again to its retries.
    pub last_response: Response,
    /// The log index of the client's last command (its last request, or the
    /// latest retry of it): the session's age, for eviction.
    pub last_index: u64,
}

/// The outcome of applying one log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The client the command came from; `None` when the bytes did not decode.
    pub client: Option<ClientId>,
    /// The command's sequence number (0 when the bytes did not decode).
    pub seq: u64,
    /// The answer for the client.
    pub response: Response,
    /// Whether this was a retry answered from the session cache, without
    /// applying the operation again.
    pub duplicate: bool,
}

/// The key-value state machine. Deterministic: replicas that apply the same
/// entries at the same indices hold equal stores and give equal responses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvStore {
    /// The map. Invariant: at most [`MAX_KEYS`] keys, every key and value
    /// within its size limit.
    data: BTreeMap<String, String>,
    /// Client sessions. Invariant: at most [`MAX_SESSIONS`]; every
    /// `last_index <= applied_index`.
    sessions: BTreeMap<ClientId, Session>,
    /// Sessions ordered by age, for eviction. Invariant: holds exactly the
    /// pairs `(s.last_index, client)` of `sessions` (the indices are distinct,
    /// since each log index touches at most one session).
    by_last_index: BTreeMap<u64, ClientId>,
    /// The index of the last entry applied. Invariant: only grows.
    applied_index: u64,
    /// Wrapping sum of the hashes of all `(key, value)` pairs. Invariant:
    /// equals the sum recomputed from `data` (checked in tests).
    data_sum: u64,
    /// Wrapping sum of the hashes of all sessions. Invariant: equals the sum
    /// recomputed from `sessions` (checked in tests).
    session_sum: u64,
}

fn data_item_hash(key: &str, value: &str) -> u64 {
    let mut h = Fnv::new();
    h.u8(b'D');
    h.str(key);
    h.str(value);
    h.finish()
}

fn session_item_hash(client: ClientId, session: &Session) -> u64 {
    let mut h = Fnv::new();
    h.u8(b'S');
    h.u64(client);
    h.u64(session.last_seq);
    h.u64(session.last_index);
    h.response(&session.last_response);
    h.finish()
}

impl KvStore {
    /// An empty store that has applied nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the committed command at `index`, given as the bytes that were
    /// proposed. The same `(index, bytes)` sequence gives the same state and
    /// responses on every replica.
    ///
    /// Never panics on garbage: bytes that do not decode give
    /// `Err(Malformed)` with `client: None`, and change nothing but the
    /// applied index. Indices must increase (entries apply in log order).
    pub fn apply(&mut self, index: u64, bytes: &[u8]) -> Applied {
        self.advance(index);
        let command = match Command::decode_unvalidated(bytes) {
            Ok(command) => command,
            Err(e) => {
                return Applied {
                    client: None,
                    seq: 0,
                    response: Err(e),
                    duplicate: false,
                };
            }
        };
        let Command { client, seq, op } = command;
        let refused = |response: KvError| Applied {
            client: Some(client),
            seq,
            response: Err(response),
            duplicate: false,
        };
        if seq == 0 {
            return refused(KvError::Malformed(
                "sequence number 0 (must be >= 1)".into(),
            ));
        }
        match self.sessions.get(&client) {
            Some(session) if seq == session.last_seq => {
                let response = session.last_response.clone();
                self.touch_session(client, index);
                return Applied {
                    client: Some(client),
                    seq,
                    response,
                    duplicate: true,
                };
            }
            Some(session) if seq < session.last_seq => {
                let last = session.last_seq;
                return refused(KvError::StaleSequence { client, seq, last });
            }
            Some(_) => {}
            None if seq == 1 => {}
            None => {
                // See the module documentation: refuse, and remember the
                // refusal so that it is final.
                let response = Err(KvError::SessionExpired { client });
                self.record_session(
                    client,
                    Session {
                        last_seq: seq,
                        last_response: response.clone(),
                        last_index: index,
                    },
                );
                self.debug_check_bounds();
                return Applied {
                    client: Some(client),
                    seq,
                    response,
                    duplicate: false,
                };
            }
        }
        let response = self.execute(&op);
        self.record_session(
            client,
            Session {
                last_seq: seq,
                last_response: response.clone(),
                last_index: index,
            },
        );
        self.debug_check_bounds();
        Applied {
            client: Some(client),
            seq,
            response,
            duplicate: false,
        }
    }

    /// Applies the no-op entry a new leader appends (§5.4.2, §8): nothing
    /// changes but the applied index.
    pub fn apply_noop(&mut self, index: u64) {
        self.advance(index);
    }

    /// The value of `key`, for linearizable reads served once the applied
    /// index has reached a ReadIndex (dissertation §6.4).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// The index of the last entry applied (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// A 64-bit digest of the map and the sessions (not of the applied index).
    /// Equal states give equal digests; different states give different
    /// digests with overwhelming probability. Stable across runs, builds and
    /// platforms: FNV-1a over a canonical little-endian encoding of each key,
    /// value and session, combined by wrapping sums that are maintained as the
    /// store changes, so the digest costs O(1).
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        h.raw(b"raftlab-kv-digest-v1");
        h.u64(self.data.len() as u64);
        h.u64(self.data_sum);
        h.u64(self.sessions.len() as u64);
        h.u64(self.session_sum);
        h.finish()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the map has no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The session of `client`, if it has one.
    pub fn session(&self, client: ClientId) -> Option<&Session> {
        self.sessions.get(&client)
    }

    /// The number of sessions held.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The map's pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.data.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The sessions in client order (for snapshots).
    pub(crate) fn sessions_iter(&self) -> impl Iterator<Item = (ClientId, &Session)> {
        self.sessions.iter().map(|(&c, s)| (c, s))
    }

    /// Snapshot restore, on an empty store: sets the applied index.
    pub(crate) fn restore_applied_index(&mut self, index: u64) {
        debug_assert!(self.data.is_empty() && self.sessions.is_empty());
        self.applied_index = index;
    }

    /// Snapshot restore: inserts a pair the caller validated, keeping the
    /// digest sum current.
    pub(crate) fn restore_pair(&mut self, key: String, value: String) {
        debug_assert!(self.data.len() < MAX_KEYS);
        self.data_sum = self.data_sum.wrapping_add(data_item_hash(&key, &value));
        if let Some(old) = self.data.insert(key.clone(), value) {
            // The caller gives distinct keys; keep the sum right regardless.
            self.data_sum = self.data_sum.wrapping_sub(data_item_hash(&key, &old));
        }
    }

    /// Snapshot restore: inserts a session of a new client. Returns false
    /// (and changes nothing) when another session already sits at its log
    /// index or the client already has one: the invariant on
    /// `by_last_index` would break.
    pub(crate) fn restore_session(&mut self, client: ClientId, session: Session) -> bool {
        if self.by_last_index.contains_key(&session.last_index)
            || self.sessions.contains_key(&client)
            || self.sessions.len() >= MAX_SESSIONS
        {
            return false;
        }
        self.record_session(client, session);
        true
    }

    fn advance(&mut self, index: u64) {
        // Entries apply once each, in log order (§5.3: the state machine
        // applies committed entries in index order).
        debug_assert!(
            index > self.applied_index,
            "apply at index {index} after {}",
            self.applied_index
        );
        self.applied_index = index;
    }

    /// Runs an operation whose session checks passed. Validates the limits
    /// again (the pair of the check in [`Command::decode`]): a command that
    /// reached the log without passing through `decode` is refused here, and
    /// refused identically on every replica.
    fn execute(&mut self, op: &Op) -> Response {
        op.validate()?;
        match op {
            Op::Get { key } => Ok(Output::Value(self.data.get(key).cloned())),
            Op::Put { key, value } => {
                self.set(key, value.clone())?;
                Ok(Output::Done)
            }
            Op::Delete { key } => {
                if let Some(old) = self.data.remove(key) {
                    self.data_sum = self.data_sum.wrapping_sub(data_item_hash(key, &old));
                }
                Ok(Output::Done)
            }
            Op::Cas { key, expected, new } => {
                if self.data.get(key).map(String::as_str) != expected.as_deref() {
                    return Ok(Output::Cas(false));
                }
                self.set(key, new.clone())?;
                Ok(Output::Cas(true))
            }
            Op::Append { key, value } => {
                let old = self.data.get(key).map_or("", String::as_str);
                let len = old.len() + value.len();
                if len > MAX_VALUE_BYTES {
                    return Err(KvError::ValueTooLarge {
                        len,
                        max: MAX_VALUE_BYTES,
                    });
                }
                let mut joined = String::with_capacity(len);
                joined.push_str(old);
                joined.push_str(value);
                self.set(key, joined)?;
                Ok(Output::Done)
            }
            Op::Batch { ops } => self.execute_batch(ops),
        }
    }

    /// A batch, all or nothing: every operation is checked against the map
    /// as it is (the keys are distinct, so none sees another's effect)
    /// before any is applied.
    fn execute_batch(&mut self, ops: &[Op]) -> Response {
        let mut new_keys = 0;
        for (i, op) in ops.iter().enumerate() {
            let current = self.data.get(op.key());
            new_keys += usize::from(current.is_none() && !matches!(op, Op::Delete { .. }));
            match op {
                Op::Cas { expected, .. } if current.map(String::as_str) != expected.as_deref() => {
                    return Ok(Output::Batch {
                        aborted_at: Some(i as u32),
                    });
                }
                Op::Append { value, .. } => {
                    let len = current.map_or(0, String::len) + value.len();
                    if len > MAX_VALUE_BYTES {
                        return Err(KvError::ValueTooLarge {
                            len,
                            max: MAX_VALUE_BYTES,
                        });
                    }
                }
                _ => {}
            }
        }
        if self.data.len() + new_keys > MAX_KEYS {
            return Err(KvError::StoreFull { max: MAX_KEYS });
        }
        for op in ops {
            let applied = self.execute(op);
            debug_assert!(
                matches!(applied, Ok(Output::Done | Output::Cas(true))),
                "a checked batch operation failed: {applied:?}"
            );
        }
        Ok(Output::Batch { aborted_at: None })
    }

    /// Sets a key, keeping the digest sum current. Fails without effect when
    /// the key is new and the map is full.
    fn set(&mut self, key: &str, value: String) -> Result<(), KvError> {
        debug_assert!(check_value(&value).is_ok());
        match self.data.get_mut(key) {
            Some(slot) => {
                self.data_sum = self.data_sum.wrapping_sub(data_item_hash(key, slot));
                self.data_sum = self.data_sum.wrapping_add(data_item_hash(key, &value));
                *slot = value;
            }
            None => {
                if self.data.len() >= MAX_KEYS {
                    return Err(KvError::StoreFull { max: MAX_KEYS });
                }
                self.data_sum = self.data_sum.wrapping_add(data_item_hash(key, &value));
                self.data.insert(key.to_owned(), value);
            }
        }
        Ok(())
    }

    /// Installs `session` for `client`, replacing its old one or, for a new
    /// client, evicting the oldest session first if the table is full.
    fn record_session(&mut self, client: ClientId, session: Session) {
        if !self.sessions.contains_key(&client) && self.sessions.len() >= MAX_SESSIONS {
            // Expiry by log position: the session idle for the most entries.
            if let Some((_, oldest)) = self.by_last_index.pop_first() {
                let evicted = self
                    .sessions
                    .remove(&oldest)
                    .expect("by_last_index mirrors sessions");
                self.session_sum = self
                    .session_sum
                    .wrapping_sub(session_item_hash(oldest, &evicted));
            }
        }
        self.remove_session(client);
        self.session_sum = self
            .session_sum
            .wrapping_add(session_item_hash(client, &session));
        let displaced = self.by_last_index.insert(session.last_index, client);
        debug_assert!(displaced.is_none(), "two sessions at one log index");
        self.sessions.insert(client, session);
    }

    /// Marks a retry: the session now dates from `index`.
    fn touch_session(&mut self, client: ClientId, index: u64) {
        if let Some(mut session) = self.remove_session(client) {
            session.last_index = index;
            self.record_session(client, session);
        }
    }

    fn remove_session(&mut self, client: ClientId) -> Option<Session> {
        let session = self.sessions.remove(&client)?;
        self.by_last_index.remove(&session.last_index);
        self.session_sum = self
            .session_sum
            .wrapping_sub(session_item_hash(client, &session));
        Some(session)
    }

    fn debug_check_bounds(&self) {
        debug_assert!(self.data.len() <= MAX_KEYS);
        debug_assert!(self.sessions.len() <= MAX_SESSIONS);
        debug_assert_eq!(self.sessions.len(), self.by_last_index.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MAX_KEY_BYTES;
    use proptest::prelude::*;

    impl KvStore {
        /// Recomputes everything that is maintained incrementally and checks
        /// it against the maintained values.
        fn check_invariants(&self) {
            let data_sum = self
                .data
                .iter()
                .fold(0u64, |s, (k, v)| s.wrapping_add(data_item_hash(k, v)));
            assert_eq!(data_sum, self.data_sum, "data digest sum drifted");
            let session_sum = self
                .sessions
                .iter()
                .fold(0u64, |s, (c, x)| s.wrapping_add(session_item_hash(*c, x)));
            assert_eq!(session_sum, self.session_sum, "session digest sum drifted");
            let mirror: BTreeMap<u64, ClientId> = self
                .sessions
                .iter()
                .map(|(c, s)| (s.last_index, *c))
                .collect();
            assert_eq!(mirror, self.by_last_index);
            assert!(self.sessions.len() <= MAX_SESSIONS);
            for s in self.sessions.values() {
                assert!(s.last_index <= self.applied_index);
            }
        }
    }

    fn cmd(client: ClientId, seq: u64, op: Op) -> Vec<u8> {
        Command { client, seq, op }.encode()
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    fn append(key: &str, value: &str) -> Op {
        Op::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> Op {
        Op::Get { key: key.into() }
    }

    #[test]
    fn a_batch_applies_all_or_nothing() {
        let mut kv = KvStore::new();
        let r = |kv: &mut KvStore, i: u64, op: Op| kv.apply(i, &cmd(1, i, op)).response;
        let cas = |key: &str, expected: Option<&str>, new: &str| Op::Cas {
            key: key.into(),
            expected: expected.map(Into::into),
            new: new.into(),
        };
        assert_eq!(r(&mut kv, 1, put("a", "1")), Ok(Output::Done));
        let ok = Op::Batch {
            ops: vec![cas("a", Some("1"), "2"), put("b", "x"), append("c", "y")],
        };
        assert_eq!(r(&mut kv, 2, ok), Ok(Output::Batch { aborted_at: None }));
        assert_eq!(
            (kv.get("a"), kv.get("b"), kv.get("c")),
            (Some("2"), Some("x"), Some("y"))
        );
        let aborted = Op::Batch {
            ops: vec![
                put("d", "new"),
                cas("a", Some("2"), "3"),
                cas("b", Some("wrong"), "z"),
                Op::Delete { key: "c".into() },
            ],
        };
        assert_eq!(
            r(&mut kv, 3, aborted),
            Ok(Output::Batch {
                aborted_at: Some(2)
            })
        );
        assert_eq!(
            (kv.get("a"), kv.get("b"), kv.get("c"), kv.get("d")),
            (Some("2"), Some("x"), Some("y"), None),
            "nothing of an aborted batch took effect"
        );
        kv.check_invariants();
        let overflow = Op::Batch {
            ops: vec![
                put("e", "1"),
                append("big", &"x".repeat(MAX_VALUE_BYTES)),
                append("c", "z"),
            ],
        };
        assert_eq!(r(&mut kv, 4, append("big", "x")), Ok(Output::Done));
        assert!(matches!(
            r(&mut kv, 5, overflow),
            Err(KvError::ValueTooLarge { .. })
        ));
        assert_eq!((kv.get("e"), kv.get("c")), (None, Some("y")));
        kv.check_invariants();
    }

    #[test]
    fn operations_give_the_documented_outputs() {
        let mut kv = KvStore::new();
        let r = |kv: &mut KvStore, i: u64, op: Op| kv.apply(i, &cmd(1, i, op)).response;
        assert_eq!(r(&mut kv, 1, get("a")), Ok(Output::Value(None)));
        assert_eq!(r(&mut kv, 2, put("a", "1")), Ok(Output::Done));
        assert_eq!(r(&mut kv, 3, get("a")), Ok(Output::Value(Some("1".into()))));
        assert_eq!(r(&mut kv, 4, append("a", "2")), Ok(Output::Done));
        assert_eq!(r(&mut kv, 5, append("b", "x")), Ok(Output::Done));
        assert_eq!(kv.get("a"), Some("12"));
        assert_eq!(kv.get("b"), Some("x"));
        let cas = |key: &str, expected: Option<&str>, new: &str| Op::Cas {
            key: key.into(),
            expected: expected.map(Into::into),
            new: new.into(),
        };
        assert_eq!(
            r(&mut kv, 6, cas("a", Some("1"), "z")),
            Ok(Output::Cas(false))
        );
        assert_eq!(kv.get("a"), Some("12"));
        assert_eq!(
            r(&mut kv, 7, cas("a", Some("12"), "z")),
            Ok(Output::Cas(true))
        );
        assert_eq!(kv.get("a"), Some("z"));
        assert_eq!(r(&mut kv, 8, cas("c", None, "new")), Ok(Output::Cas(true)));
        assert_eq!(
            r(&mut kv, 9, cas("c", None, "again")),
            Ok(Output::Cas(false))
        );
        assert_eq!(
            r(&mut kv, 10, Op::Delete { key: "a".into() }),
            Ok(Output::Done)
        );
        assert_eq!(
            r(&mut kv, 11, Op::Delete { key: "a".into() }),
            Ok(Output::Done)
        );
        assert_eq!(kv.get("a"), None);
        assert_eq!(kv.len(), 2);
        assert_eq!(kv.applied_index(), 11);
        kv.check_invariants();
    }

    #[test]
    fn duplicate_returns_the_cached_response_without_applying_again() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(7, 1, append("k", "x")));
        let first = kv.apply(2, &cmd(7, 2, append("k", "y")));
        assert_eq!(kv.get("k"), Some("xy"));
        // Another client changes the key; the retry must not see or redo it.
        kv.apply(3, &cmd(8, 1, put("k", "other")));
        let retry = kv.apply(4, &cmd(7, 2, append("k", "y")));
        assert!(retry.duplicate);
        assert!(!first.duplicate);
        assert_eq!(retry.response, first.response);
        assert_eq!(kv.get("k"), Some("other"));
        kv.check_invariants();
    }

    #[test]
    fn duplicate_get_returns_the_value_read_the_first_time() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("k", "old")));
        let first = kv.apply(2, &cmd(2, 1, get("k")));
        kv.apply(3, &cmd(1, 2, put("k", "new")));
        let retry = kv.apply(4, &cmd(2, 1, get("k")));
        assert!(retry.duplicate);
        assert_eq!(retry.response, Ok(Output::Value(Some("old".into()))));
        assert_eq!(retry.response, first.response);
    }

    #[test]
    fn stale_sequence_is_refused_without_effect() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("k", "1")));
        kv.apply(2, &cmd(1, 2, put("k", "2")));
        let digest = kv.digest();
        let stale = kv.apply(3, &cmd(1, 1, put("k", "1")));
        assert_eq!(
            stale.response,
            Err(KvError::StaleSequence {
                client: 1,
                seq: 1,
                last: 2
            })
        );
        assert_eq!(kv.get("k"), Some("2"));
        assert_eq!(kv.digest(), digest);
        assert_eq!(kv.applied_index(), 3);
    }

    #[test]
    fn client_without_a_session_is_refused_above_sequence_one_and_then_continues() {
        let mut kv = KvStore::new();
        let refused = kv.apply(1, &cmd(5, 3, put("k", "v")));
        assert_eq!(refused.response, Err(KvError::SessionExpired { client: 5 }));
        assert_eq!(refused.client, Some(5));
        assert!(kv.is_empty());
        // The refusal is final: a retry of the same request gets it again.
        let retry = kv.apply(2, &cmd(5, 3, put("k", "v")));
        assert!(retry.duplicate);
        assert_eq!(retry.response, refused.response);
        assert!(kv.is_empty());
        // The next request is applied (sequence numbers may skip ahead).
        let next = kv.apply(3, &cmd(5, 9, put("k", "w")));
        assert_eq!(next.response, Ok(Output::Done));
        assert_eq!(kv.session(5).map(|s| s.last_seq), Some(9));
    }

    #[test]
    fn late_first_request_cannot_revive_a_refused_one() {
        // The client gave up on request 1 (still in flight in the log) and
        // sent request 2, which was refused for want of a session. When the
        // old request 1 then commits, it must not open a session under which
        // another copy of request 2 would apply after its refusal.
        let mut kv = KvStore::new();
        let two = cmd(4, 2, append("k", "2"));
        assert_eq!(
            kv.apply(1, &two).response,
            Err(KvError::SessionExpired { client: 4 })
        );
        let late_one = kv.apply(2, &cmd(4, 1, append("k", "1")));
        assert!(matches!(
            late_one.response,
            Err(KvError::StaleSequence {
                seq: 1,
                last: 2,
                ..
            })
        ));
        let two_again = kv.apply(3, &two);
        assert_eq!(
            two_again.response,
            Err(KvError::SessionExpired { client: 4 })
        );
        assert_eq!(kv.get("k"), None);
    }

    #[test]
    fn new_client_starting_at_one_is_applied_at_once() {
        let mut kv = KvStore::new();
        let applied = kv.apply(1, &cmd(6, 1, put("k", "v")));
        assert_eq!(applied.response, Ok(Output::Done));
        assert_eq!(kv.get("k"), Some("v"));
        assert_eq!(kv.session(6).map(|s| s.last_index), Some(1));
    }

    #[test]
    fn eviction_removes_the_session_with_the_oldest_last_index() {
        let mut kv = KvStore::new();
        let mut index = 0;
        for client in 0..MAX_SESSIONS as u64 {
            index += 1;
            kv.apply(index, &cmd(client, 1, get("k")));
        }
        // Client 0 retries, so client 1 is now the oldest.
        index += 1;
        assert!(kv.apply(index, &cmd(0, 1, get("k"))).duplicate);
        index += 1;
        kv.apply(index, &cmd(u64::MAX, 1, put("k", "v")));
        assert_eq!(kv.session_count(), MAX_SESSIONS);
        assert!(kv.session(1).is_none(), "oldest session evicted");
        assert!(kv.session(0).is_some(), "refreshed session kept");
        kv.check_invariants();
        // The evicted client's next request is refused rather than risk a
        // second application of something it may have retried.
        index += 1;
        let after = kv.apply(index, &cmd(1, 2, put("k", "again")));
        assert_eq!(after.response, Err(KvError::SessionExpired { client: 1 }));
        assert_eq!(kv.get("k"), Some("v"));
        assert_eq!(kv.session_count(), MAX_SESSIONS);
        kv.check_invariants();
    }

    #[test]
    fn malformed_bytes_leave_the_state_unchanged() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("k", "v")));
        let before = kv.clone();
        let applied = kv.apply(2, &[0xff, 0xff, 0xff]);
        assert_eq!(applied.client, None);
        assert_eq!(applied.seq, 0);
        assert!(matches!(applied.response, Err(KvError::Malformed(_))));
        assert_eq!(kv.digest(), before.digest());
        assert_eq!(kv.applied_index(), 2);
    }

    #[test]
    fn oversized_command_from_the_log_is_refused_on_apply_and_cached() {
        // A command that bypassed `Command::decode` (proposed by a buggy or
        // hostile proposer) meets the same limits at apply time.
        let mut kv = KvStore::new();
        let key = "k".repeat(MAX_KEY_BYTES + 1);
        let bytes = cmd(3, 1, put(&key, "v"));
        let applied = kv.apply(1, &bytes);
        let expected = Err(KvError::KeyTooLarge {
            len: MAX_KEY_BYTES + 1,
            max: MAX_KEY_BYTES,
        });
        assert_eq!(applied.client, Some(3));
        assert_eq!(applied.response, expected);
        assert!(kv.is_empty());
        let retry = kv.apply(2, &bytes);
        assert!(retry.duplicate);
        assert_eq!(retry.response, expected);
    }

    #[test]
    fn append_past_the_value_limit_fails_without_effect() {
        let mut kv = KvStore::new();
        let half = "x".repeat(MAX_VALUE_BYTES / 2 + 1);
        kv.apply(1, &cmd(1, 1, append("k", &half)));
        let applied = kv.apply(2, &cmd(1, 2, append("k", &half)));
        assert_eq!(
            applied.response,
            Err(KvError::ValueTooLarge {
                len: 2 * half.len(),
                max: MAX_VALUE_BYTES
            })
        );
        assert_eq!(kv.get("k"), Some(half.as_str()));
    }

    #[test]
    fn noop_only_advances_the_applied_index() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("k", "v")));
        let digest = kv.digest();
        kv.apply_noop(2);
        assert_eq!(kv.applied_index(), 2);
        assert_eq!(kv.digest(), digest);
    }

    #[test]
    fn digest_values_are_pinned() {
        // Stability across runs, builds and platforms: these constants must
        // never change unless the digest's version tag changes with them.
        assert_eq!(KvStore::new().digest(), 0x3da6_dfd9_83fc_39f5);
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("k", "v")));
        assert_eq!(kv.digest(), 0x39af_ed18_1278_efe7);
    }

    #[test]
    fn digest_differs_for_different_data_and_sessions() {
        let mut a = KvStore::new();
        let mut b = KvStore::new();
        a.apply(1, &cmd(1, 1, put("k", "v")));
        b.apply(1, &cmd(1, 1, put("k", "w")));
        assert_ne!(a.digest(), b.digest());
        let mut c = KvStore::new();
        c.apply(1, &cmd(2, 1, put("k", "v")));
        assert_eq!(a.get("k"), c.get("k"));
        assert_ne!(a.digest(), c.digest(), "sessions are part of the digest");
    }

    /// One step of a random workload: a client, a sequence number relative
    /// to its session, an operation; or garbage; or a no-op.
    #[derive(Clone, Debug)]
    enum Step {
        Command { client: u64, seq_delta: i8, op: Op },
        Garbage(Vec<u8>),
        Noop,
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => (0..4u64, -1..3i8, crate::command::tests::arb_op())
                .prop_map(|(client, seq_delta, op)| Step::Command { client, seq_delta, op }),
            1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(Step::Garbage),
            1 => Just(Step::Noop),
        ]
    }

    /// Turns steps into log entries: the sequence number is the client's
    /// last one plus `seq_delta` (so retries, stale copies and skips occur).
    fn to_entries(steps: &[Step]) -> Vec<Option<Vec<u8>>> {
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        steps
            .iter()
            .map(|step| match step {
                Step::Command {
                    client,
                    seq_delta,
                    op,
                } => {
                    let prev = last.get(client).copied().unwrap_or(0);
                    let seq = prev.saturating_add_signed(i64::from(*seq_delta)).max(1);
                    last.insert(*client, prev.max(seq));
                    Some(cmd(*client, seq, op.clone()))
                }
                Step::Garbage(bytes) => Some(bytes.clone()),
                Step::Noop => None,
            })
            .collect()
    }

    fn run(entries: &[Option<Vec<u8>>]) -> (KvStore, Vec<Option<Applied>>) {
        let mut kv = KvStore::new();
        let mut out = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            out.push(match entry {
                Some(bytes) => Some(kv.apply(index, bytes)),
                None => {
                    kv.apply_noop(index);
                    None
                }
            });
        }
        (kv, out)
    }

    proptest! {
        #[test]
        fn a_batch_is_its_operations_one_by_one_or_nothing(
            steps in proptest::collection::vec(arb_step(), 0..30),
            ops in proptest::collection::vec(crate::command::tests::arb_op(), 1..6),
        ) {
            let mut seen = std::collections::BTreeSet::new();
            let ops: Vec<Op> = ops
                .into_iter()
                .filter(|op| {
                    op.is_write() && !matches!(op, Op::Batch { .. }) && seen.insert(op.key().to_owned())
                })
                .collect();
            prop_assume!(!ops.is_empty());
            let (before, _) = run(&to_entries(&steps));
            let next = before.applied_index() + 1;
            let mut batched = before.clone();
            let answer = batched
                .apply(next, &cmd(99, 1, Op::Batch { ops: ops.clone() }))
                .response;
            // The reference: each operation alone, on the state before.
            let mut one_by_one = before.clone();
            let mut first_refusal = None;
            for (i, op) in ops.iter().enumerate() {
                let alone = before.clone().apply(next, &cmd(100, 1, op.clone())).response;
                match alone {
                    Ok(Output::Cas(false)) | Err(_) if first_refusal.is_none() => {
                        first_refusal = Some((i, alone));
                    }
                    _ => {}
                }
                one_by_one.apply(next + i as u64, &cmd(101 + i as u64, 1, op.clone()));
            }
            let data = |kv: &KvStore| kv.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>();
            match first_refusal {
                None => {
                    prop_assert_eq!(answer, Ok(Output::Batch { aborted_at: None }));
                    prop_assert_eq!(data(&batched), data(&one_by_one));
                }
                Some((i, alone)) => {
                    prop_assert_eq!(data(&batched), data(&before), "nothing took effect");
                    if alone == Ok(Output::Cas(false)) {
                        prop_assert_eq!(answer, Ok(Output::Batch { aborted_at: Some(i as u32) }));
                    } else {
                        prop_assert!(answer.is_err());
                    }
                }
            }
            batched.check_invariants();
        }

        #[test]
        fn two_stores_fed_the_same_entries_agree(steps in proptest::collection::vec(arb_step(), 0..60)) {
            let entries = to_entries(&steps);
            let (a, out_a) = run(&entries);
            let (b, out_b) = run(&entries);
            prop_assert_eq!(a.digest(), b.digest());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(out_a, out_b);
            a.check_invariants();
        }

        #[test]
        fn digest_is_equal_exactly_when_states_are_equal(
            x in proptest::collection::vec(arb_step(), 0..30),
            y in proptest::collection::vec(arb_step(), 0..30),
        ) {
            let (a, _) = run(&to_entries(&x));
            let (b, _) = run(&to_entries(&y));
            let same_state = a.data == b.data && a.sessions == b.sessions;
            prop_assert_eq!(same_state, a.digest() == b.digest());
        }

        #[test]
        fn retries_take_effect_exactly_once(
            steps in proptest::collection::vec(arb_step(), 0..40),
            retry_every in 1..4usize,
        ) {
            // Feed each distinct request once to a reference store, and the
            // same requests with retries interleaved (right after the
            // original, as a client that timed out would) to another: the
            // maps must end equal, and every retry must be answered with
            // the original's response.
            let entries: Vec<Vec<u8>> = to_entries(&steps).into_iter().flatten().collect();
            let mut once = KvStore::new();
            let mut with_retries = KvStore::new();
            let mut index = 0;
            for (i, bytes) in entries.iter().enumerate() {
                let reference = once.apply(i as u64 + 1, bytes);
                index += 1;
                let first = with_retries.apply(index, bytes);
                prop_assert_eq!(&first.response, &reference.response);
                if i % retry_every == 0 {
                    index += 1;
                    let retry = with_retries.apply(index, bytes);
                    if first.client.is_some() && first.response.as_ref().is_ok_and(|_| !first.duplicate) {
                        prop_assert!(retry.duplicate);
                        prop_assert_eq!(&retry.response, &first.response);
                    }
                }
            }
            prop_assert_eq!(&once.data, &with_retries.data);
            with_retries.check_invariants();
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_change_nothing_when_malformed(
            bytes in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut kv = KvStore::new();
            kv.apply(1, &cmd(1, 1, put("k", "v")));
            let before = kv.clone();
            let applied = kv.apply(2, &bytes);
            if applied.client.is_none() {
                prop_assert!(matches!(applied.response, Err(KvError::Malformed(_))));
                prop_assert_eq!(&kv.data, &before.data);
                prop_assert_eq!(&kv.sessions, &before.sessions);
            }
            kv.check_invariants();
        }
    }
}
