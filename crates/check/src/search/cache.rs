//! The cache of visited configurations (Lowe's rule): the linearized set as a compact
//! bitset key, and an exact arena-backed set of such keys.

use std::hash::{BuildHasher, Hasher};

use crate::model::{FixedState, ValueId};

/// The set of linearized operations, as a bitset over operations numbered in call
/// order. A search's linearized set is nearly always "everything called before some
/// point, and a few operations after it", so the cache key keeps only the words from the
/// first one that is not full to the last one that is not empty: a few words, however
/// long the history.
pub(super) struct Linearized {
    words: Vec<u64>,
    /// Invariant: `words[..low]` are all ones, and `words[low]` (if any) is not.
    low: usize,
    /// Invariant: `words[high + 1..]` are all zero (`high` is 0 when all are).
    high: usize,
}

impl Linearized {
    pub(super) fn new(n: usize) -> Self {
        Linearized {
            words: vec![0; n.div_ceil(64)],
            low: 0,
            high: 0,
        }
    }

    pub(super) fn insert(&mut self, bit: usize) {
        let w = bit / 64;
        self.words[w] |= 1 << (bit % 64);
        self.high = self.high.max(w);
        while self.low < self.words.len() && self.words[self.low] == u64::MAX {
            self.low += 1;
        }
    }

    pub(super) fn remove(&mut self, bit: usize) {
        let w = bit / 64;
        self.words[w] &= !(1 << (bit % 64));
        self.low = self.low.min(w);
        while self.high > 0 && self.words[self.high] == 0 {
            self.high -= 1;
        }
    }

    /// Write the cache key of (this set, `state`) into `key`.
    pub(super) fn key(&self, state: ValueId, key: &mut Vec<u64>) {
        key.clear();
        key.push(((self.low as u64) << 32) | u64::from(state));
        if self.low < self.words.len() {
            key.extend_from_slice(&self.words[self.low..=self.high.max(self.low)]);
        }
    }
}

/// The cache of visited configurations: an exact set of keys (short `u64` slices)
/// stored back to back in one arena, indexed by an open-addressing table of arena
/// offsets. A few dozen bytes per configuration and no allocation per insert: the cache
/// is most of the search's memory.
pub(super) struct ConfigSet {
    /// Entries, each `[header, words...]` with header = (hash tag << 32) | length.
    /// Word 0 is unused, so that offset 0 can mean "empty slot".
    arena: Vec<u64>,
    /// Invariant: a power of two in length, at most half full; 0 = empty.
    slots: Vec<u32>,
    len: usize,
    /// Most bytes the arena and the table may hold, growth included.
    limit: usize,
}

/// What [`ConfigSet::insert`] did.
#[derive(PartialEq, Eq)]
pub(super) enum Inserted {
    New,
    Present,
    /// The set reached its byte limit (or the arena outgrew 32-bit offsets): the
    /// search must stop.
    Full,
}

impl ConfigSet {
    /// An empty set that will hold at most `limit` bytes.
    pub(super) fn new(limit: usize) -> Self {
        ConfigSet {
            arena: vec![0],
            slots: vec![0; 1024],
            len: 0,
            limit,
        }
    }

    /// Bytes held now (the arena's and the table's allocations).
    pub(super) fn bytes(&self) -> usize {
        self.arena.capacity() * 8 + self.slots.len() * 4
    }

    /// How many configurations it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether inserting `words` more arena words (and growing the table if due) stays
    /// within the limit, counting a reallocation's old and new buffers together.
    fn fits(&self, words: usize) -> bool {
        let arena = if self.arena.len() + words > self.arena.capacity() {
            // Vec doubles: old and new buffers live at once while it copies.
            3 * (self.arena.len() + words).max(self.arena.capacity()) * 8
        } else {
            self.arena.capacity() * 8
        };
        let slots = if (self.len + 1) * 2 > self.slots.len() {
            3 * self.slots.len() * 4
        } else {
            self.slots.len() * 4
        };
        arena + slots <= self.limit
    }

    fn hash(key: &[u64]) -> u64 {
        let mut h = FixedState::default().build_hasher();
        for &w in key {
            h.write_u64(w);
        }
        // Fx mixes poorly into the low bits that index the table: finish with a
        // multiply-xorshift.
        let x = h.finish();
        (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }

    fn header(hash: u64, len: usize) -> u64 {
        (hash >> 32 << 32) | len as u64
    }

    fn matches(&self, offset: u32, header: u64, key: &[u64]) -> bool {
        let o = offset as usize;
        self.arena[o] == header && self.arena[o + 1..o + 1 + key.len()] == *key
    }

    /// The slot `key` is in, or the empty slot where it would go.
    fn find(&self, hash: u64, header: u64, key: &[u64]) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let offset = self.slots[i];
            if offset == 0 || self.matches(offset, header, key) {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    pub(super) fn contains(&self, key: &[u64]) -> bool {
        let hash = Self::hash(key);
        let header = Self::header(hash, key.len());
        self.slots[self.find(hash, header, key)] != 0
    }

    pub(super) fn insert(&mut self, key: &[u64]) -> Inserted {
        let hash = Self::hash(key);
        let header = Self::header(hash, key.len());
        let i = self.find(hash, header, key);
        if self.slots[i] != 0 {
            return Inserted::Present;
        }
        let Ok(offset) = u32::try_from(self.arena.len()) else {
            return Inserted::Full;
        };
        if !self.fits(key.len() + 1) {
            return Inserted::Full;
        }
        self.arena.push(header);
        self.arena.extend_from_slice(key);
        self.slots[i] = offset;
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            self.grow();
        }
        Inserted::New
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        let mask = self.slots.len() - 1;
        for offset in old.into_iter().filter(|&o| o != 0) {
            let o = offset as usize;
            let len = (self.arena[o] & 0xffff_ffff) as usize;
            let mut i = Self::hash(&self.arena[o + 1..o + 1 + len]) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = offset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn config_set_agrees_with_a_btree_set(
            keys in prop::collection::vec(prop::collection::vec(0u64..4, 1..4), 0..3000)
        ) {
            let mut set = ConfigSet::new(usize::MAX);
            let mut oracle = BTreeSet::new();
            for key in &keys {
                prop_assert_eq!(set.contains(key), oracle.contains(key));
                let new = set.insert(key) == Inserted::New;
                prop_assert_eq!(new, oracle.insert(key.clone()));
                prop_assert!(set.contains(key));
            }
            prop_assert_eq!(set.len, oracle.len());
        }
    }

    #[test]
    fn the_config_set_refuses_to_grow_past_its_limit() {
        let limit = 64 * 1024;
        let mut set = ConfigSet::new(limit);
        let mut inserted = 0u64;
        while set.insert(&[inserted, 1, 2]) == Inserted::New {
            inserted += 1;
            assert!(set.bytes() <= limit, "{} bytes", set.bytes());
        }
        assert!(inserted > 100, "{inserted}");
        // Full means full: nothing more goes in, what is in stays.
        assert!(set.insert(&[inserted + 1, 1, 2]) == Inserted::Full);
        assert!(set.contains(&[0, 1, 2]));
    }

    #[test]
    fn linearized_keys_are_canonical() {
        let mut a = Linearized::new(200);
        let mut b = Linearized::new(200);
        // The same set reached in different orders, with detours.
        for bit in [0, 1, 2, 63, 64, 130, 199] {
            a.insert(bit);
        }
        for bit in [199, 5, 130, 64, 63, 2, 1, 0] {
            b.insert(bit);
        }
        b.remove(5);
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        a.key(7, &mut ka);
        b.key(7, &mut kb);
        assert_eq!(ka, kb);
        b.key(8, &mut kb);
        assert_ne!(ka, kb);
        // Filling the first word moves `low` past it.
        for bit in 0..64 {
            a.insert(bit);
        }
        assert_eq!(a.low, 1);
        a.remove(10);
        assert_eq!(a.low, 0);
    }
}
