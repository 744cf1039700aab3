//! The on-disk record format of the log file.
//!
//! ```text
//! frame   = len: u32 LE | crc: u32 LE | payload: [u8; len]
//! crc     = crc32c(payload)
//! payload = postcard(Record), 1 <= len <= MAX_RECORD_BYTES
//! ```
//!
//! Postcard numbers enum variants by position: the variants of `Record`
//! must never be reordered, or old files would replay differently.

use raft::{Entry, HardState, LogIndex};
use serde::{Deserialize, Serialize};

/// Bytes of the frame header: length and checksum.
pub const FRAME_HEADER_BYTES: usize = 8;

/// The largest record payload. Checked before anything is allocated for a
/// record, so a garbage length cannot make recovery allocate gigabytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The largest entry payload (command bytes) the log accepts: what fits in
/// one record with room for the entry's framing (term, index, tags, lengths).
pub const MAX_ENTRY_PAYLOAD_BYTES: usize = MAX_RECORD_BYTES - ENTRY_OVERHEAD_BYTES - 16;

/// An upper bound on the postcard size of an entry beyond its payload bytes:
/// two u64 varints (10 bytes each), the payload variant tag and the payload's
/// length varint.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 10 + 10 + 1 + 5;

/// One change to the durable state, in the order it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// Entries to add at the end of the log. Invariant: non-empty,
    /// contiguous, and the first follows the log's last index at the time.
    Entries(Vec<Entry>),
    /// The new hard state.
    HardState(HardState),
    /// Remove the entries from this index on (a Raft conflict, §5.3).
    /// Invariant: 1 <= index <= the log's last index at the time.
    TruncateFrom(LogIndex),
}

/// Appends `record`, framed, to `out`.
pub(crate) fn encode_into(record: &Record, out: &mut Vec<u8>) {
    // Serializing into a growable Vec has no failure path in postcard.
    let payload = postcard::to_allocvec(record).expect("postcard encoding into a Vec cannot fail");
    // The writer's half of the size check; `decode_at` is the reader's half.
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_RECORD_BYTES);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes the frame starting at `offset` of `buf`. Returns the record and
/// the frame's total length, or why there is no valid frame there.
pub(crate) fn decode_at(buf: &[u8], offset: usize) -> Result<(Record, usize), String> {
    let rest = buf.get(offset..).unwrap_or_default();
    if rest.len() < FRAME_HEADER_BYTES {
        return Err(format!(
            "incomplete frame header ({} of {FRAME_HEADER_BYTES} bytes)",
            rest.len()
        ));
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(format!(
            "record length {len} outside 1..={MAX_RECORD_BYTES}"
        ));
    }
    let Some(payload) = rest.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Err(format!(
            "record of {len} bytes runs past the end of the file ({} bytes left)",
            rest.len() - FRAME_HEADER_BYTES
        ));
    };
    let actual = crc32c::crc32c(payload);
    if actual != crc {
        return Err(format!(
            "checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
        ));
    }
    let (record, trailing) = postcard::take_from_bytes::<Record>(payload)
        .map_err(|e| format!("undecodable record payload: {e}"))?;
    if !trailing.is_empty() {
        return Err(format!(
            "{} trailing bytes in record payload",
            trailing.len()
        ));
    }
    Ok((record, FRAME_HEADER_BYTES + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{EntryPayload, NodeId, Term};

    fn sample() -> Vec<Record> {
        vec![
            Record::Entries(vec![Entry {
                term: Term(3),
                index: LogIndex(1),
                payload: EntryPayload::Command(b"hello".to_vec()),
            }]),
            Record::HardState(HardState {
                term: Term(3),
                vote: Some(NodeId(2)),
                commit: LogIndex(1),
            }),
            Record::TruncateFrom(LogIndex(1)),
        ]
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut buf = Vec::new();
        for r in sample() {
            encode_into(&r, &mut buf);
        }
        let mut offset = 0;
        let mut decoded = Vec::new();
        while offset < buf.len() {
            let (r, len) = decode_at(&buf, offset).unwrap();
            decoded.push(r);
            offset += len;
        }
        assert_eq!(decoded, sample());
    }

    #[test]
    fn zeros_are_never_a_record() {
        // crc32c of the empty payload is 0, so an all-zero header would
        // checksum correctly; the length check must refuse it.
        assert!(decode_at(&[0u8; 64], 0).unwrap_err().contains("length 0"));
    }

    #[test]
    fn huge_length_is_refused_before_reading() {
        let mut buf = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        buf.extend_from_slice(&[1, 2, 3]);
        assert!(decode_at(&buf, 0).unwrap_err().contains("outside"));
    }

    #[test]
    fn flipped_payload_bit_fails_the_checksum() {
        let mut buf = Vec::new();
        encode_into(&sample()[1], &mut buf);
        buf[FRAME_HEADER_BYTES] ^= 1;
        assert!(decode_at(&buf, 0).unwrap_err().contains("checksum"));
    }

    #[test]
    fn largest_entry_payload_fits_in_one_record() {
        let record = Record::Entries(vec![Entry {
            term: Term(u64::MAX),
            index: LogIndex(u64::MAX),
            payload: EntryPayload::Command(vec![0xab; MAX_ENTRY_PAYLOAD_BYTES]),
        }]);
        let mut buf = Vec::new();
        encode_into(&record, &mut buf);
        assert!(buf.len() - FRAME_HEADER_BYTES <= MAX_RECORD_BYTES);
        assert_eq!(decode_at(&buf, 0).unwrap().0, record);
    }
}
