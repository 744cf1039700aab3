//! The snapshot encoding of a [`KvStore`]: the map, the client sessions and
//! the applied index, as bytes that can be stored, sent in chunks and
//! restored on another replica.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic    8 bytes  "RLKVSNAP"
//! version  u32      SNAPSHOT_VERSION
//! len      u64      length of body
//! crc      u32      crc32c(body)
//! body     len bytes, postcard of SnapshotBody
//! ```
//!
//! The body lists keys and sessions in key (client id) order, so equal
//! stores encode to equal bytes (the encoding is deterministic). Restoring
//! checks the frame (magic, version, length, checksum), then every invariant
//! the store relies on (size limits, strictly increasing keys and clients,
//! session indices distinct and not beyond the applied index): a corrupt or
//! truncated snapshot is an error, never a panic and never a store that
//! breaks its invariants later.

use crate::command::{ClientId, KvError, Response, check_key, check_value};
use crate::store::{KvStore, MAX_KEYS, MAX_SESSIONS, Session};
use serde::{Deserialize, Serialize};

/// The first bytes of every snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"RLKVSNAP";
/// The version of the encoding written by [`KvStore::snapshot`]; restore
/// refuses any other.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Bytes before the body: magic, version, length, checksum.
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// What the body holds, in canonical order.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    applied_index: u64,
    /// Invariant: keys strictly increasing.
    data: Vec<(String, String)>,
    /// Invariant: client ids strictly increasing.
    sessions: Vec<(ClientId, SessionRecord)>,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    last_seq: u64,
    last_index: u64,
    last_response: Response,
}

fn corrupt(reason: &str) -> KvError {
    KvError::Malformed(format!("snapshot: {reason}"))
}

impl KvStore {
    /// Encodes the whole state (map, sessions, applied index) as a versioned,
    /// checksummed byte string. Deterministic: equal stores give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let body = SnapshotBody {
            applied_index: self.applied_index(),
            data: self
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            sessions: self
                .sessions_iter()
                .map(|(client, s)| {
                    (
                        client,
                        SessionRecord {
                            last_seq: s.last_seq,
                            last_index: s.last_index,
                            last_response: s.last_response.clone(),
                        },
                    )
                })
                .collect(),
        };
        let body = postcard::to_allocvec(&body).expect("encoding into memory cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        if cfg!(debug_assertions) {
            // The pair of the checks in `restore`: what we write reads back.
            let back = KvStore::restore(&out).expect("a fresh snapshot restores");
            debug_assert_eq!(back.digest(), self.digest());
            debug_assert_eq!(back.applied_index(), self.applied_index());
        }
        out
    }

    /// Rebuilds a store from [`KvStore::snapshot`] bytes. Corrupt, truncated,
    /// over-long or foreign bytes give [`KvError::Malformed`] naming what is
    /// wrong; nothing panics.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, KvError> {
        if bytes.len() < HEADER_LEN {
            return Err(corrupt("shorter than its header"));
        }
        let (header, body) = bytes.split_at(HEADER_LEN);
        if &header[..8] != SNAPSHOT_MAGIC {
            return Err(corrupt("bad magic"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != SNAPSHOT_VERSION {
            return Err(corrupt(&format!("unknown version {version}")));
        }
        let len = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
        if len != body.len() as u64 {
            return Err(corrupt(&format!(
                "body length {} but header says {len}",
                body.len()
            )));
        }
        let crc = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
        if crc32c::crc32c(body) != crc {
            return Err(corrupt("checksum mismatch"));
        }
        let body: SnapshotBody = match postcard::take_from_bytes(body) {
            Ok((body, [])) => body,
            Ok(_) => return Err(corrupt("trailing bytes after the body")),
            Err(e) => return Err(corrupt(&format!("undecodable body: {e}"))),
        };
        if body.data.len() > MAX_KEYS {
            return Err(corrupt("more keys than MAX_KEYS"));
        }
        if body.sessions.len() > MAX_SESSIONS {
            return Err(corrupt("more sessions than MAX_SESSIONS"));
        }
        for pair in body.data.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return Err(corrupt("keys not strictly increasing"));
            }
        }
        for pair in body.sessions.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return Err(corrupt("sessions not strictly increasing"));
            }
        }
        let mut store = KvStore::new();
        store.restore_applied_index(body.applied_index);
        for (key, value) in body.data {
            check_key(&key).map_err(|e| corrupt(&format!("{e:?}")))?;
            check_value(&value).map_err(|e| corrupt(&format!("{e:?}")))?;
            store.restore_pair(key, value);
        }
        for (client, s) in body.sessions {
            if s.last_index > body.applied_index {
                return Err(corrupt("a session is newer than the applied index"));
            }
            let session = Session {
                last_seq: s.last_seq,
                last_response: s.last_response,
                last_index: s.last_index,
            };
            if !store.restore_session(client, session) {
                return Err(corrupt("two sessions at one log index"));
            }
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Op};
    use proptest::prelude::*;

    fn sample() -> KvStore {
        let mut kv = KvStore::new();
        let put = |k: &str, v: &str| Op::Put {
            key: k.into(),
            value: v.into(),
        };
        let cmd = |client, seq, op| Command { client, seq, op }.encode();
        kv.apply(1, &cmd(1, 1, put("a", "1")));
        kv.apply(2, &cmd(2, 1, put("b", "2")));
        kv.apply(3, &cmd(1, 2, put("a", "3")));
        kv.apply_noop(4);
        kv.apply(5, b"garbage");
        kv
    }

    #[test]
    fn round_trip_keeps_data_sessions_applied_index_and_digest() {
        let kv = sample();
        let back = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(back, kv);
        assert_eq!(back.digest(), kv.digest());
        assert_eq!(back.applied_index(), 5);
        assert_eq!(back.snapshot(), kv.snapshot(), "deterministic bytes");
    }

    #[test]
    fn a_restored_store_keeps_answering_retries_from_its_sessions() {
        let mut kv = KvStore::restore(&sample().snapshot()).unwrap();
        let retry = Command {
            client: 1,
            seq: 2,
            op: Op::Put {
                key: "a".into(),
                value: "3".into(),
            },
        };
        assert!(kv.apply(6, &retry.encode()).duplicate);
    }

    #[test]
    fn every_truncation_and_every_single_bit_flip_is_refused() {
        let bytes = sample().snapshot();
        for len in 0..bytes.len() {
            assert!(
                KvStore::restore(&bytes[..len]).is_err(),
                "truncated at {len}"
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(KvStore::restore(&b).is_err(), "bit {bit} of byte {i}");
            }
        }
    }

    #[test]
    fn a_well_framed_body_that_breaks_an_invariant_is_refused() {
        // Keys out of order, but framed and checksummed correctly.
        let body = SnapshotBody {
            applied_index: 3,
            data: vec![("b".into(), "1".into()), ("a".into(), "2".into())],
            sessions: vec![],
        };
        let body = postcard::to_allocvec(&body).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let err = KvStore::restore(&bytes).unwrap_err();
        assert!(
            format!("{err:?}").contains("strictly increasing"),
            "{err:?}"
        );
    }

    fn arb_store() -> impl Strategy<Value = KvStore> {
        let op = prop_oneof![
            ("[a-d]{1,2}", "[a-z]{0,4}").prop_map(|(key, value)| Op::Put { key, value }),
            ("[a-d]{1,2}", "[a-z]{0,4}").prop_map(|(key, value)| Op::Append { key, value }),
            "[a-d]{1,2}".prop_map(|key| Op::Delete { key }),
            "[a-d]{1,2}".prop_map(|key| Op::Get { key }),
        ];
        proptest::collection::vec((0..5u64, 1..4u64, op), 0..40).prop_map(|steps| {
            let mut kv = KvStore::new();
            for (i, (client, seq, op)) in steps.into_iter().enumerate() {
                kv.apply(i as u64 + 1, &Command { client, seq, op }.encode());
            }
            kv
        })
    }

    proptest! {
        #[test]
        fn snapshot_round_trips_with_an_equal_digest(kv in arb_store()) {
            let bytes = kv.snapshot();
            let back = KvStore::restore(&bytes).unwrap();
            prop_assert_eq!(back.digest(), kv.digest());
            prop_assert_eq!(back.applied_index(), kv.applied_index());
            prop_assert_eq!(back.snapshot(), bytes);
            prop_assert_eq!(back, kv);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = KvStore::restore(&bytes);
        }

        #[test]
        fn arbitrary_bodies_in_a_valid_frame_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(SNAPSHOT_MAGIC);
            bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
            bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
            bytes.extend_from_slice(&body);
            if let Ok(kv) = KvStore::restore(&bytes) {
                // Whatever restores is a store that snapshots back to itself.
                prop_assert_eq!(KvStore::restore(&kv.snapshot()).unwrap(), kv);
            }
        }
    }
}
