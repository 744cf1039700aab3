//! The on-disk record format of the log file.
//!
//! ```text
//! frame      = len: u32 LE | crc: u32 LE | header_crc: u32 LE | payload: [u8; len]
//! crc        = crc32c(payload)
//! header_crc = crc32c(offset: u64 LE | len: u32 LE | crc: u32 LE)
//! payload    = postcard(Record), 1 <= len <= MAX_RECORD_BYTES
//! ```
//!
//! `offset` is where the frame starts: its segment and its offset in the
//! segment file, as one number. It is not stored: it is bound into the
//! header checksum, so a frame found anywhere but where it
//! was written for (a misdirected write, a stale frame) fails its header
//! check. The header has its own checksum so that a damaged length is
//! recognised as damage at once, and never mistaken for a record that
//! merely runs past the end of the file (a torn write).
//!
//! Postcard numbers enum variants by position: the variants of `Record`
//! must never be reordered, or old files would replay differently.

use raft::{Entry, HardState, LogIndex, SnapshotMeta};
use serde::{Deserialize, Serialize};

/// Bytes of the frame header: length, payload checksum, header checksum.
pub const FRAME_HEADER_BYTES: usize = 12;

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
    /// The log starts over after a snapshot (§7): everything up to
    /// `base.index` is in the snapshot file named by `base`, the hard state
    /// is `hard_state`, and the entries after the base follow as `Entries`
    /// records. Invariant: only ever the first record of a segment, which
    /// was written whole under a temporary name and renamed into place.
    Checkpoint {
        /// The hard state at the time of the checkpoint.
        hard_state: HardState,
        /// The snapshot the log continues from.
        base: SnapshotMeta,
    },
}

/// A record to write, borrowing what it holds (the log's entries are not
/// copied to be written). Encoded exactly as the [`Record`] it mirrors:
/// same variants in the same order, same fields (postcard writes a slice
/// and a `Vec` alike).
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) enum RecordRef<'a> {
    /// [`Record::Entries`].
    Entries(&'a [Entry]),
    /// [`Record::HardState`].
    HardState(HardState),
    /// [`Record::TruncateFrom`].
    TruncateFrom(LogIndex),
    /// [`Record::Checkpoint`].
    Checkpoint {
        /// The hard state at the time of the checkpoint.
        hard_state: HardState,
        /// The snapshot the log continues from.
        base: &'a SnapshotMeta,
    },
}

#[cfg(test)]
impl Record {
    /// The record, borrowed for encoding.
    pub(crate) fn borrowed(&self) -> RecordRef<'_> {
        match self {
            Record::Entries(entries) => RecordRef::Entries(entries),
            Record::HardState(hs) => RecordRef::HardState(*hs),
            Record::TruncateFrom(index) => RecordRef::TruncateFrom(*index),
            Record::Checkpoint { hard_state, base } => RecordRef::Checkpoint {
                hard_state: *hard_state,
                base,
            },
        }
    }
}

/// Appends `record`, framed for the position `at`, to `out`. A position is
/// where the frame goes: its offset in its file, plus the file's own base
/// position (the log gives each segment its own), bound into the header
/// checksum.
#[cfg(test)]
pub(crate) fn encode_into(record: &Record, at: u64, out: &mut Vec<u8>) {
    encode_ref_into(&record.borrowed(), at, out);
}

/// Frames a borrowed record: the payload is serialized in
/// place after a header that is filled in once its length and checksum
/// are known.
pub(crate) fn encode_ref_into(record: &RecordRef<'_>, at: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    // Serializing into a growable Vec has no failure path in postcard.
    *out = postcard::to_extend(record, std::mem::take(out))
        .expect("postcard encoding into a Vec cannot fail");
    let payload = &out[start + FRAME_HEADER_BYTES..];
    // The writer's half of the size check; `decode_at` is the reader's half.
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_RECORD_BYTES);
    let len = payload.len() as u32;
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&header_crc(at, len, crc).to_le_bytes());
}

fn header_crc(at: u64, len: u32, crc: u32) -> u32 {
    let mut bytes = [0u8; 16];
    bytes[0..8].copy_from_slice(&at.to_le_bytes());
    bytes[8..12].copy_from_slice(&len.to_le_bytes());
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    crc32c::crc32c(&bytes)
}

/// Why there is no valid frame at an offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// The file ends inside the frame: its header is incomplete, or its
    /// (checked) length runs past the end. This is what a write cut short by
    /// a crash leaves, when sectors persist in order.
    Short(String),
    /// The frame is all there but does not check out: damage.
    Damaged(String),
}

impl BadFrame {
    /// What is wrong, in words.
    #[cfg(test)]
    pub(crate) fn reason(&self) -> &str {
        match self {
            BadFrame::Short(r) | BadFrame::Damaged(r) => r,
        }
    }
}

/// Decodes the frame starting at `offset` of `buf`, which holds the file
/// from its start; `base` is the position of the file's first byte (see
/// [`encode_ref_into`]). Returns the record and the frame's total length, or why
/// there is no valid frame there.
pub(crate) fn decode_at(buf: &[u8], offset: usize, base: u64) -> Result<(Record, usize), BadFrame> {
    let rest = buf.get(offset..).unwrap_or_default();
    if rest.len() < FRAME_HEADER_BYTES {
        return Err(BadFrame::Short(format!(
            "incomplete frame header ({} of {FRAME_HEADER_BYTES} bytes)",
            rest.len()
        )));
    }
    let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
    let (len, crc, stored_header_crc) = (word(0), word(4), word(8));
    let actual_header_crc = header_crc(base + offset as u64, len, crc);
    if actual_header_crc != stored_header_crc {
        return Err(BadFrame::Damaged(format!(
            "header checksum mismatch (stored {stored_header_crc:#010x}, computed {actual_header_crc:#010x} for this offset)"
        )));
    }
    let len = len as usize;
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(BadFrame::Damaged(format!(
            "record length {len} outside 1..={MAX_RECORD_BYTES}"
        )));
    }
    let Some(payload) = rest.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Err(BadFrame::Short(format!(
            "record of {len} bytes runs past the end of the file ({} bytes left)",
            rest.len() - FRAME_HEADER_BYTES
        )));
    };
    let actual = crc32c::crc32c(payload);
    if actual != crc {
        return Err(BadFrame::Damaged(format!(
            "checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
        )));
    }
    let (record, trailing) = postcard::take_from_bytes::<Record>(payload)
        .map_err(|e| BadFrame::Damaged(format!("undecodable record payload: {e}")))?;
    if !trailing.is_empty() {
        return Err(BadFrame::Damaged(format!(
            "{} trailing bytes in record payload",
            trailing.len()
        )));
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
            Record::Checkpoint {
                hard_state: HardState {
                    term: Term(4),
                    vote: None,
                    commit: LogIndex(9),
                },
                base: raft::SnapshotMeta {
                    index: LogIndex(9),
                    term: Term(4),
                    membership: raft::Membership::of_voters([NodeId(1), NodeId(2), NodeId(3)]),
                },
            },
        ]
    }

    #[test]
    fn a_borrowed_record_encodes_as_the_record_it_mirrors() {
        // The old writer's encoding: the owned record, serialized whole.
        for r in sample() {
            let mut framed = Vec::new();
            encode_into(&r, 77, &mut framed);
            let owned = postcard::to_allocvec(&r).unwrap();
            assert_eq!(&framed[FRAME_HEADER_BYTES..], &owned[..], "{r:?}");
            assert_eq!(decode_at(&framed, 0, 77).unwrap().0, r);
        }
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut buf = Vec::new();
        for r in sample() {
            encode_into(&r, buf.len() as u64, &mut buf);
        }
        let mut offset = 0;
        let mut decoded = Vec::new();
        while offset < buf.len() {
            let (r, len) = decode_at(&buf, offset, 0).unwrap();
            decoded.push(r);
            offset += len;
        }
        assert_eq!(decoded, sample());
    }

    #[test]
    fn zeros_are_never_a_record() {
        // crc32c of the empty payload is 0, so an all-zero header would
        // checksum correctly; the header checksum must refuse it.
        let err = decode_at(&[0u8; 64], 0, 0).unwrap_err();
        assert!(matches!(err, BadFrame::Damaged(_)), "{err:?}");
    }

    #[test]
    fn huge_length_is_refused_before_reading() {
        let mut buf = Vec::new();
        let len = u32::MAX;
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&header_crc(0, len, 0).to_le_bytes());
        buf.extend_from_slice(&[1, 2, 3]);
        let err = decode_at(&buf, 0, 0).unwrap_err();
        assert!(err.reason().contains("outside"), "{err:?}");
    }

    #[test]
    fn damaged_length_is_damage_not_a_short_frame() {
        let mut buf = Vec::new();
        encode_into(&sample()[0], 0, &mut buf);
        buf[1] ^= 0x10; // the length now points far past the end
        assert!(matches!(decode_at(&buf, 0, 0), Err(BadFrame::Damaged(_))));
    }

    #[test]
    fn frame_moved_to_another_offset_fails_its_header_check() {
        let mut buf = Vec::new();
        encode_into(&sample()[1], 512, &mut buf);
        assert!(matches!(decode_at(&buf, 0, 0), Err(BadFrame::Damaged(_))));
        let mut at_512 = vec![0u8; 512];
        at_512.extend_from_slice(&buf);
        assert_eq!(decode_at(&at_512, 512, 0).unwrap().0, sample()[1]);
    }

    #[test]
    fn frame_cut_short_is_short() {
        let mut buf = Vec::new();
        encode_into(&sample()[0], 0, &mut buf);
        for cut in [3, FRAME_HEADER_BYTES, buf.len() - 1] {
            assert!(
                matches!(decode_at(&buf[..cut], 0, 0), Err(BadFrame::Short(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn flipped_payload_bit_fails_the_checksum() {
        let mut buf = Vec::new();
        encode_into(&sample()[1], 0, &mut buf);
        buf[FRAME_HEADER_BYTES] ^= 1;
        let err = decode_at(&buf, 0, 0).unwrap_err();
        assert!(matches!(err, BadFrame::Damaged(_)), "{err:?}");
        assert!(err.reason().contains("checksum"), "{err:?}");
    }

    #[test]
    fn largest_entry_payload_fits_in_one_record() {
        let record = Record::Entries(vec![Entry {
            term: Term(u64::MAX),
            index: LogIndex(u64::MAX),
            payload: EntryPayload::Command(vec![0xab; MAX_ENTRY_PAYLOAD_BYTES]),
        }]);
        let mut buf = Vec::new();
        encode_into(&record, 0, &mut buf);
        assert!(buf.len() - FRAME_HEADER_BYTES <= MAX_RECORD_BYTES);
        assert_eq!(decode_at(&buf, 0, 0).unwrap().0, record);
    }
}
