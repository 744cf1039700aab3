//! The sequential specification of one key: a register that is absent or holds a string,
//! read by get, written by put, delete, cas and append.
//!
//! The search runs this model millions of times, so it works on interned values: every
//! string the key can hold gets a small integer id ([`ValueId`]), and the model state is
//! one such id. Operations are compiled once into [`Step`]s that compare and assign ids.
//! Appends are the only operation that makes new strings; their results are interned as
//! the search meets them, and memoised per (state, operation).

use std::collections::HashMap; // determinism: ok, fixed-seed hasher, never iterated for output
use std::hash::{BuildHasherDefault, Hasher};

use crate::history::{Call, Outcome, Ret};

/// An interned value of one key. [`ABSENT`] is the key without a value.
pub(crate) type ValueId = u32;

/// The id of "the key is absent". Distinct from the id of the empty string.
pub(crate) const ABSENT: ValueId = 0;

/// A fixed, seedless hasher (the Fx multiply-rotate scheme): hash maps keyed with it
/// behave identically in every run, unlike `std`'s randomly seeded `RandomState`.
#[derive(Default, Clone, Copy)]
pub(crate) struct FixedHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FixedHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FixedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds [`FixedHasher`]s.
pub(crate) type FixedState = BuildHasherDefault<FixedHasher>;

/// One operation, compiled against a key's interned values: what it requires of the
/// state it runs in, and what state it leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A get that returned this value: requires the state to be it; changes nothing.
    Read(ValueId),
    /// A put (whatever its outcome: if it takes effect at all, it writes this value).
    Write(ValueId),
    /// A delete: the key becomes absent.
    Delete,
    /// A cas that reported a swap: requires `expected`, leaves `new`.
    CasSwapped {
        /// Required state.
        expected: ValueId,
        /// State after.
        new: ValueId,
    },
    /// A cas that reported no swap: a read that saw anything but `expected`.
    CasRefused {
        /// The state it must not have seen.
        expected: ValueId,
    },
    /// A cas with unknown outcome: swaps if the state is `expected`, else changes
    /// nothing. (Not taking effect at all is the search's business, not the model's.)
    CasMaybe {
        /// Compared state.
        expected: ValueId,
        /// State after, if the comparison holds.
        new: ValueId,
    },
    /// An append of `Model::suffixes[i]`.
    Append(u32),
    /// An operation whose recorded result does not fit its call (e.g. a get that
    /// returned "done"): it can never be linearized.
    Impossible,
}

impl Step {
    /// Whether the operation changes nothing: such an operation with unknown outcome
    /// constrains nothing and can be left out of the search.
    pub(crate) fn is_read_only(&self) -> bool {
        matches!(self, Step::Read(_) | Step::CasRefused { .. })
    }

    /// Whether the operation sets the value without looking at it (put, delete).
    pub(crate) fn is_blind_write(&self) -> bool {
        matches!(self, Step::Write(_) | Step::Delete)
    }

    /// The value the operation leaves if, taking effect, it may leave one that does not
    /// extend the current one: what a put, delete or swapping cas writes. `None` for
    /// appends and reads.
    pub(crate) fn reset_value(&self) -> Option<ValueId> {
        match *self {
            Step::Write(v) => Some(v),
            Step::Delete => Some(ABSENT),
            Step::CasSwapped { new, .. } | Step::CasMaybe { new, .. } => Some(new),
            _ => None,
        }
    }
}

/// How a value is stored: a literal string from the history, or the result of an
/// append, kept as (value appended to, suffix) so that long append chains cost a few
/// words per state instead of a copy of the whole string.
enum Node {
    /// The key is absent (only [`ABSENT`]).
    Absent,
    /// A string that appears in the history.
    Literal(Box<str>),
    /// `parent`'s string (`""` if absent) followed by `suffixes[suffix]`.
    Appended { parent: ValueId, suffix: u32 },
    /// A value no operation compares against, nor any extension of it: it stands for
    /// any of several such values (see [`Model::opaque`]). Equal to nothing but itself;
    /// appending to it leaves it.
    Opaque,
}

/// One interned value: its node, and the length and polynomial hash of its string, so
/// that an append's result can be matched against existing values without building it.
struct ValueInfo {
    node: Node,
    len: u64,
    hash: u64,
}

/// An appended suffix with its hash and `HASH_BASE^len`.
struct Suffix {
    text: Box<str>,
    hash: u64,
    shift: u64,
}

/// Base of the polynomial string hash (odd, so multiplication mod 2^64 is invertible).
const HASH_BASE: u64 = 0x100_0000_01b3;

/// Polynomial hash of `s` (mod 2^64) and `HASH_BASE^len(s)`. hash(a ++ b) =
/// hash(a) * HASH_BASE^len(b) + hash(b), which is how appends extend it.
fn poly_hash(s: &str) -> (u64, u64) {
    s.bytes().fold((0u64, 1u64), |(h, p), b| {
        (
            h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(b) + 1),
            p.wrapping_mul(HASH_BASE),
        )
    })
}

/// The interned values of one key and the model that steps over them.
///
/// Invariant: ids are canonical: two ids other than [`ABSENT`] never stand for the same
/// string, so comparing states is comparing ids. Every new value is looked up by
/// (length, hash) in `by_content` and compared in full on a hash match before it gets
/// an id.
pub(crate) struct Model {
    values: Vec<ValueInfo>,
    by_content: HashMap<(u64, u64), Vec<ValueId>, FixedState>, // determinism: ok, fixed-seed hasher, never iterated for output
    /// The strings appended by [`Step::Append`] operations.
    suffixes: Vec<Suffix>,
    /// Memo: (state, suffix index) -> state after the append.
    appended: HashMap<(ValueId, u32), ValueId, FixedState>, // determinism: ok, fixed-seed hasher, never iterated for output
    /// Per target value of [`Model::may_grow_into`]: its bytes and the hashes of its
    /// prefixes of length 0, `PREFIX_STRIDE`, 2 * `PREFIX_STRIDE`, ...
    prefixes: HashMap<ValueId, PrefixIndex, FixedState>, // determinism: ok, fixed-seed hasher, never iterated for output
    /// The id of the opaque value, once made.
    opaque: Option<ValueId>,
}

/// A value's bytes and the hashes of its prefixes of length 0, `PREFIX_STRIDE`, ...
type PrefixIndex = (Box<[u8]>, Vec<u64>);

/// Spacing of the stored prefix hashes: a prefix hash costs at most this many bytes of
/// hashing, and a target of n bytes keeps n / this many hashes.
const PREFIX_STRIDE: usize = 64;

impl Model {
    /// A model with no values interned yet.
    pub(crate) fn new() -> Self {
        Model {
            values: vec![ValueInfo {
                node: Node::Absent,
                len: 0,
                hash: 0,
            }],
            by_content: HashMap::default(), // determinism: ok, fixed-seed hasher, never iterated for output
            suffixes: Vec::new(),
            appended: HashMap::default(), // determinism: ok, fixed-seed hasher, never iterated for output
            prefixes: HashMap::default(), // determinism: ok, fixed-seed hasher, never iterated for output
            opaque: None,
        }
    }

    /// The opaque value: one id for "some value that nobody reads or compares against,
    /// nor any extension of it", so that writes of different such values lead to the
    /// same state.
    pub(crate) fn opaque(&mut self) -> ValueId {
        if let Some(id) = self.opaque {
            return id;
        }
        let id = ValueId::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        // Not in `by_content`: no string interns to it.
        self.values.push(ValueInfo {
            node: Node::Opaque,
            len: 0,
            hash: 0,
        });
        self.opaque = Some(id);
        id
    }

    /// Whether appends alone could turn `state` into `target`: false only when they
    /// certainly cannot (`target` is absent and `state` is not, or `state`'s string is
    /// not a prefix of `target`'s). Decided by lengths and prefix hashes: unequal hashes
    /// prove unequal strings, and a hash collision can only answer "maybe".
    pub(crate) fn may_grow_into(&mut self, state: ValueId, target: ValueId) -> bool {
        if state == target {
            return true;
        }
        if Some(state) == self.opaque || Some(target) == self.opaque {
            return false;
        }
        if state == ABSENT {
            return target != ABSENT;
        }
        if target == ABSENT {
            return false;
        }
        let (len, hash) = {
            let v = &self.values[state as usize];
            (v.len, v.hash)
        };
        if len > self.values[target as usize].len {
            return false;
        }
        if !self.prefixes.contains_key(&target) {
            let mut bytes = Vec::new();
            self.materialize(target, &mut bytes);
            let mut hashes = Vec::with_capacity(bytes.len() / PREFIX_STRIDE + 1);
            let mut h = 0u64;
            for i in 0..=bytes.len() {
                if i % PREFIX_STRIDE == 0 {
                    hashes.push(h);
                }
                if let Some(&b) = bytes.get(i) {
                    h = h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(b) + 1);
                }
            }
            self.prefixes
                .insert(target, (bytes.into_boxed_slice(), hashes));
        }
        let (bytes, hashes) = &self.prefixes[&target];
        let len = len as usize;
        let start = len / PREFIX_STRIDE * PREFIX_STRIDE;
        let prefix_hash = bytes[start..len]
            .iter()
            .fold(hashes[len / PREFIX_STRIDE], |h, &b| {
                h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(b) + 1)
            });
        prefix_hash == hash
    }

    fn push_value(&mut self, info: ValueInfo) -> ValueId {
        let id = ValueId::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        self.by_content
            .entry((info.len, info.hash))
            .or_default()
            .push(id);
        self.values.push(info);
        id
    }

    /// Write the string of `id` into `out` (cleared first).
    fn materialize(&self, mut id: ValueId, out: &mut Vec<u8>) {
        out.clear();
        let mut chain: Vec<u32> = Vec::new();
        loop {
            match &self.values[id as usize].node {
                Node::Absent | Node::Opaque => break,
                Node::Literal(s) => {
                    out.extend_from_slice(s.as_bytes());
                    break;
                }
                Node::Appended { parent, suffix } => {
                    chain.push(*suffix);
                    id = *parent;
                }
            }
        }
        for &suffix in chain.iter().rev() {
            out.extend_from_slice(self.suffixes[suffix as usize].text.as_bytes());
        }
    }

    fn intern(&mut self, s: &str) -> ValueId {
        let (hash, _) = poly_hash(s);
        let len = s.len() as u64;
        let mut buf = Vec::new();
        if let Some(ids) = self.by_content.get(&(len, hash)) {
            for &id in ids {
                self.materialize(id, &mut buf);
                if buf == s.as_bytes() {
                    return id;
                }
            }
        }
        self.push_value(ValueInfo {
            node: Node::Literal(s.into()),
            len,
            hash,
        })
    }

    fn intern_opt(&mut self, s: Option<&str>) -> ValueId {
        s.map_or(ABSENT, |s| self.intern(s))
    }

    /// Compile an operation on this model's key. `outcome` must not be `Fail` (failed
    /// operations took no effect and never reach the model).
    pub(crate) fn compile(&mut self, call: &Call, outcome: &Outcome) -> Step {
        debug_assert!(*outcome != Outcome::Fail);
        let ret = match outcome {
            Outcome::Ok(ret) => Some(ret),
            _ => None,
        };
        if let Some(ret) = ret
            && !call.accepts(ret)
        {
            return Step::Impossible;
        }
        match call {
            Call::Get { .. } => match ret {
                Some(Ret::Value(v)) => Step::Read(self.intern_opt(v.as_deref())),
                // A get with unknown outcome could have read anything: a read that
                // matches every state.
                _ => Step::CasRefused {
                    expected: ValueId::MAX,
                },
            },
            Call::Put { value, .. } => Step::Write(self.intern(value)),
            Call::Delete { .. } => Step::Delete,
            Call::Cas { expected, new, .. } => {
                let expected = self.intern_opt(expected.as_deref());
                let new = self.intern(new);
                match ret {
                    Some(Ret::Cas(true)) => Step::CasSwapped { expected, new },
                    Some(_) => Step::CasRefused { expected },
                    None => Step::CasMaybe { expected, new },
                }
            }
            // Batches are split per key before any key is checked (`project_batches`);
            // a whole one cannot be one key's step.
            Call::Batch { .. } => Step::Impossible,
            Call::Append { value, .. } => {
                let i = u32::try_from(self.suffixes.len()).expect("fewer than 2^32 appends");
                let (hash, shift) = poly_hash(value);
                self.suffixes.push(Suffix {
                    text: value.as_str().into(),
                    hash,
                    shift,
                });
                Step::Append(i)
            }
        }
    }

    /// Run `step` in `state`: the state after it, or `None` if the operation's recorded
    /// result is impossible in `state`.
    #[inline]
    pub(crate) fn step(&mut self, state: ValueId, step: &Step) -> Option<ValueId> {
        match *step {
            Step::Read(v) => (state == v).then_some(state),
            Step::Write(v) => Some(v),
            Step::Delete => Some(ABSENT),
            Step::CasSwapped { expected, new } => (state == expected).then_some(new),
            Step::CasRefused { expected } => (state != expected).then_some(state),
            Step::CasMaybe { expected, new } => Some(if state == expected { new } else { state }),
            Step::Append(i) => Some(self.append(state, i)),
            Step::Impossible => None,
        }
    }

    fn append(&mut self, state: ValueId, suffix: u32) -> ValueId {
        if let Some(&id) = self.appended.get(&(state, suffix)) {
            return id;
        }
        if Some(state) == self.opaque {
            // An extension of a value nobody compares against, even by prefix, is one
            // too.
            return state;
        }
        let base = &self.values[state as usize];
        let s = &self.suffixes[suffix as usize];
        let len = base.len + s.text.len() as u64;
        let hash = base.hash.wrapping_mul(s.shift).wrapping_add(s.hash);
        // An equal string may exist already (a literal a read returned, or the same
        // text reached by other appends): reuse its id, keeping ids canonical.
        let mut found = None;
        if let Some(ids) = self.by_content.get(&(len, hash)) {
            let mut want = Vec::new();
            self.materialize(state, &mut want);
            want.extend_from_slice(s.text.as_bytes());
            let mut have = Vec::new();
            for &id in ids {
                self.materialize(id, &mut have);
                if have == want {
                    found = Some(id);
                    break;
                }
            }
        }
        let id = found.unwrap_or_else(|| {
            self.push_value(ValueInfo {
                node: Node::Appended {
                    parent: state,
                    suffix,
                },
                len,
                hash,
            })
        });
        self.appended.insert((state, suffix), id);
        id
    }

    /// The bytes of a value (empty for [`ABSENT`]).
    pub(crate) fn bytes(&self, id: ValueId) -> Vec<u8> {
        let mut buf = Vec::new();
        self.materialize(id, &mut buf);
        buf
    }

    /// The text an [`Step::Append`] appends.
    pub(crate) fn suffix(&self, i: u32) -> &str {
        &self.suffixes[i as usize].text
    }

    /// The value an id stands for (`None`: absent).
    #[cfg(test)]
    pub(crate) fn value(&self, id: ValueId) -> Option<String> {
        let mut buf = Vec::new();
        self.materialize(id, &mut buf);
        (id != ABSENT).then(|| String::from_utf8(buf).unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> String {
        "k".into()
    }

    #[test]
    fn absent_and_empty_string_are_different_states() {
        let mut m = Model::new();
        let read_empty = m.compile(
            &Call::Get { key: k() },
            &Outcome::Ok(Ret::Value(Some(String::new()))),
        );
        let read_absent = m.compile(&Call::Get { key: k() }, &Outcome::Ok(Ret::Value(None)));
        assert_eq!(m.step(ABSENT, &read_absent), Some(ABSENT));
        assert_eq!(m.step(ABSENT, &read_empty), None);
    }

    #[test]
    fn cas_swaps_only_on_match_and_a_refused_cas_reads_a_mismatch() {
        let mut m = Model::new();
        let cas = Call::Cas {
            key: k(),
            expected: Some("a".into()),
            new: "b".into(),
        };
        let swapped = m.compile(&cas, &Outcome::Ok(Ret::Cas(true)));
        let refused = m.compile(&cas, &Outcome::Ok(Ret::Cas(false)));
        let maybe = m.compile(&cas, &Outcome::Unknown);
        let put_a = m.compile(
            &Call::Put {
                key: k(),
                value: "a".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let a = m.step(ABSENT, &put_a).unwrap();
        let b = m.step(a, &swapped).unwrap();
        assert_eq!(m.value(b).as_deref(), Some("b"));
        assert_eq!(m.step(ABSENT, &swapped), None);
        assert_eq!(m.step(a, &refused), None);
        assert_eq!(m.step(ABSENT, &refused), Some(ABSENT));
        assert_eq!(m.step(a, &maybe), Some(b));
        assert_eq!(m.step(ABSENT, &maybe), Some(ABSENT));
    }

    #[test]
    fn append_concatenates_and_interns_results_equal_to_literals() {
        let mut m = Model::new();
        let read_xy = m.compile(
            &Call::Get { key: k() },
            &Outcome::Ok(Ret::Value(Some("xy".into()))),
        );
        let ax = m.compile(
            &Call::Append {
                key: k(),
                value: "x".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let ay = m.compile(
            &Call::Append {
                key: k(),
                value: "y".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let s1 = m.step(ABSENT, &ax).unwrap();
        let s2 = m.step(s1, &ay).unwrap();
        assert_eq!(m.value(s2).as_deref(), Some("xy"));
        assert_eq!(m.step(s2, &read_xy), Some(s2));
        // Memoised: the same append from the same state gives the same id.
        assert_eq!(m.step(s1, &ay), Some(s2));
    }

    #[test]
    fn may_grow_into_is_false_only_when_appends_cannot_get_there() {
        let mut m = Model::new();
        // 256: a prefix as long as the target, at a multiple of the hash stride.
        let long: String = (0..256)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let target_op = m.compile(
            &Call::Put {
                key: k(),
                value: long.clone(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let target = m.step(ABSENT, &target_op).unwrap();
        for cut in [0, 1, 63, 64, 65, 128, 255, 256] {
            let op = m.compile(
                &Call::Put {
                    key: k(),
                    value: long[..cut].into(),
                },
                &Outcome::Ok(Ret::Done),
            );
            let prefix = m.step(ABSENT, &op).unwrap();
            assert!(m.may_grow_into(prefix, target), "prefix of length {cut}");
            let mut other = long[..cut].to_owned();
            other.push('!');
            let op = m.compile(
                &Call::Put {
                    key: k(),
                    value: other,
                },
                &Outcome::Ok(Ret::Done),
            );
            let not_prefix = m.step(ABSENT, &op).unwrap();
            assert!(
                !m.may_grow_into(not_prefix, target),
                "non-prefix of length {}",
                cut + 1
            );
            assert!(!m.may_grow_into(prefix, ABSENT));
        }
        assert!(m.may_grow_into(ABSENT, target));
        assert!(m.may_grow_into(ABSENT, ABSENT));
        assert!(!m.may_grow_into(target, ABSENT));
    }

    #[test]
    fn equal_strings_reached_differently_get_one_id() {
        let mut m = Model::new();
        let put_ab = m.compile(
            &Call::Put {
                key: k(),
                value: "ab".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let put_a = m.compile(
            &Call::Put {
                key: k(),
                value: "a".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let ab = m.compile(
            &Call::Append {
                key: k(),
                value: "ab".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let a = m.compile(
            &Call::Append {
                key: k(),
                value: "a".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let b = m.compile(
            &Call::Append {
                key: k(),
                value: "b".into(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let empty = m.compile(
            &Call::Append {
                key: k(),
                value: String::new(),
            },
            &Outcome::Ok(Ret::Done),
        );
        let lit = m.step(ABSENT, &put_ab).unwrap();
        let via_put = m.step(ABSENT, &put_a).and_then(|s| m.step(s, &b)).unwrap();
        let via_appends = m.step(ABSENT, &a).and_then(|s| m.step(s, &b)).unwrap();
        let whole = m.step(ABSENT, &ab).unwrap();
        let padded = m.step(whole, &empty).unwrap();
        assert_eq!([via_put, via_appends, whole, padded], [lit; 4]);
        // An append of "" onto an absent key makes the empty string, not absent.
        let e = m.step(ABSENT, &empty).unwrap();
        assert_ne!(e, ABSENT);
        assert_eq!(m.value(e).as_deref(), Some(""));
    }

    #[test]
    fn results_that_do_not_fit_the_call_are_impossible() {
        let mut m = Model::new();
        let s = m.compile(&Call::Get { key: k() }, &Outcome::Ok(Ret::Done));
        assert_eq!(s, Step::Impossible);
        assert_eq!(m.step(ABSENT, &s), None);
    }

    #[test]
    fn a_get_with_unknown_outcome_is_read_only_and_always_steps() {
        let mut m = Model::new();
        let s = m.compile(&Call::Get { key: k() }, &Outcome::Unknown);
        assert!(s.is_read_only());
        assert_eq!(m.step(ABSENT, &s), Some(ABSENT));
    }
}
