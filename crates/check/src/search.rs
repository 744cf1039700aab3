//! The linearizability search for one key: Wing & Gong's depth-first search, with
//! Lowe's cache of visited configurations, in the shape Porcupine gives it, plus pruning
//! rules that keep it fast on the histories a simulator records.
//!
//! Every operation with a known outcome contributes two events, its call and its return,
//! to a time-ordered doubly linked list. The candidates to linearize next are the
//! operations whose calls come before the first return event still in the list: each
//! overlaps everything still pending, so it may go next; nothing called after that return
//! may, since that operation must precede it. Linearizing an operation lifts its events
//! out of the list; backtracking puts them back (dancing links: removal keeps the node's
//! own pointers, so restoring in reverse order is exact). When the list has no return
//! event left, every known operation is linearized: success.
//!
//! A configuration is (set of linearized operations, model state): what is left to do
//! depends on nothing else, so a configuration met twice is not explored twice (the
//! cache, [`ConfigSet`]). Operations are numbered in call order, so a linearized set is
//! "everything up to some point, and a few beyond", and its key is a few words.
//!
//! Operations with unknown outcome have no return event: they may take effect at any
//! time after their call, or never. They sit in a second list, ordered by call time, and
//! are candidates wherever their call precedes the first pending return. Leaving one
//! out to the end is its "never took effect".
//!
//! What keeps the search small (each rule is argued where it is implemented):
//!
//! - reads that succeed are taken at once, without branching ([`search`]);
//! - the other candidates are tried in the order of their intervals' midpoints, known
//!   before unknown;
//! - a configuration fails at once if a pending read can no longer see its value, given
//!   what can still precede it ([`unreachable_reads`]);
//! - unknown operations nobody could observe are left out ([`unobservable_unknowns`]);
//!   those that could matter only to a refused cas are interchangeable and merged into
//!   one opaque value ([`excuses`]); on keys without appends an unknown operation is
//!   tried only right before an operation it unblocks ([`unblocks`]); one that would
//!   change nothing is not tried; and right after an unknown operation, no blind write
//!   (put, delete) is tried, since it would erase it unseen;
//! - a configuration that differs from a failed one only by having linearized more
//!   unknown operations fails too ([`Dominance`]).
//!
//! Every rule is checked against a brute-force oracle on small random histories (the
//! tests), and none may turn a linearizable history into a violation: they only prune
//! orders that a kept order covers.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::{ABSENT, FixedState, Model, Step, ValueId};

/// One operation as the search sees it.
#[derive(Clone, Debug)]
pub(crate) struct SearchOp {
    /// What it does to the model.
    pub step: Step,
    /// Call time.
    pub call: u64,
    /// Return time if the outcome is known (it must then be linearized, before this
    /// time); `None` if unknown (it may be linearized at any time after its call, or
    /// never). Invariant: `ret >= Some(call)`.
    pub ret: Option<u64>,
}

/// How the search for one key ended. Operations are named by their index in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A linearization: every known operation, and the unknown ones that took effect,
    /// in order.
    Linearizable(Vec<usize>),
    /// No linearization exists.
    NotLinearizable {
        /// The longest linearizable prefix found, in order.
        prefix: Vec<usize>,
        /// The operations that could go next after `prefix` (their calls precede the
        /// first pending return); none of them can.
        stuck: Vec<usize>,
    },
    /// The step budget ran out first.
    Undecided,
}

/// Sentinel of both circular lists: `next[NIL]` is the head, `prev[NIL]` the tail.
const NIL: u32 = 0;

/// A doubly linked list over nodes `1..=n` with sentinel [`NIL`].
struct Links {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Links {
    /// The list `1, 2, ..., n` in that order.
    fn chain(n: usize) -> Self {
        let n = u32::try_from(n).expect("fewer than 2^32 events per key");
        let next = (0..=n).map(|i| if i == n { NIL } else { i + 1 }).collect();
        let prev = (0..=n).map(|i| if i == 0 { n } else { i - 1 }).collect();
        Links { next, prev }
    }

    #[inline]
    fn remove(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    /// Undo `remove(x)`; valid only while removals are undone in reverse order.
    #[inline]
    fn restore(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[n as usize] = x;
    }
}

/// The set of linearized operations, as a bitset over operations numbered in call
/// order. A search's linearized set is nearly always "everything called before some
/// point, and a few operations after it", so the cache key keeps only the words from the
/// first one that is not full to the last one that is not empty: a few words, however
/// long the history.
struct Linearized {
    words: Vec<u64>,
    /// Invariant: `words[..low]` are all ones, and `words[low]` (if any) is not.
    low: usize,
    /// Invariant: `words[high + 1..]` are all zero (`high` is 0 when all are).
    high: usize,
}

impl Linearized {
    fn new(n: usize) -> Self {
        Linearized {
            words: vec![0; n.div_ceil(64)],
            low: 0,
            high: 0,
        }
    }

    fn insert(&mut self, bit: usize) {
        let w = bit / 64;
        self.words[w] |= 1 << (bit % 64);
        self.high = self.high.max(w);
        while self.low < self.words.len() && self.words[self.low] == u64::MAX {
            self.low += 1;
        }
    }

    fn remove(&mut self, bit: usize) {
        let w = bit / 64;
        self.words[w] &= !(1 << (bit % 64));
        self.low = self.low.min(w);
        while self.high > 0 && self.words[self.high] == 0 {
            self.high -= 1;
        }
    }

    /// Write the cache key of (this set, `state`) into `key`.
    fn key(&self, state: ValueId, key: &mut Vec<u64>) {
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
struct ConfigSet {
    /// Entries, each `[header, words...]` with header = (hash tag << 32) | length.
    /// Word 0 is unused, so that offset 0 can mean "empty slot".
    arena: Vec<u64>,
    /// Invariant: a power of two in length, at most half full; 0 = empty.
    slots: Vec<u32>,
    len: usize,
}

/// What [`ConfigSet::insert`] did.
#[derive(PartialEq, Eq)]
enum Inserted {
    New,
    Present,
    /// The arena outgrew 32-bit offsets (tens of gigabytes): the search must stop.
    Full,
}

impl ConfigSet {
    fn new() -> Self {
        ConfigSet {
            arena: vec![0],
            slots: vec![0; 1024],
            len: 0,
        }
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

    fn contains(&self, key: &[u64]) -> bool {
        let hash = Self::hash(key);
        let header = Self::header(hash, key.len());
        self.slots[self.find(hash, header, key)] != 0
    }

    fn insert(&mut self, key: &[u64]) -> Inserted {
        let hash = Self::hash(key);
        let header = Self::header(hash, key.len());
        let i = self.find(hash, header, key);
        if self.slots[i] != 0 {
            return Inserted::Present;
        }
        let Ok(offset) = u32::try_from(self.arena.len()) else {
            return Inserted::Full;
        };
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

/// Most failed configurations [`Dominance`] remembers: bounds its memory (it is the
/// heavier of the two caches). Past it, it stops learning, which only prunes less.
const MAX_DOMINANCE_ENTRIES: usize = 1 << 20;

/// Most failed sets of unknown operations [`Dominance`] keeps per (known set, state).
const MAX_DOMINANCE_PER_KEY: usize = 16;

/// (known set, state) cache key -> the unknown sets of configurations that failed.
type FailedSets = std::collections::HashMap<Box<[u64]>, Vec<Box<[u32]>>, FixedState>; // determinism: ok, fixed-seed hasher, never iterated for output

/// Pruning by dominance among configurations that differ only in which operations of
/// unknown outcome they have linearized.
///
/// If (known set K, state s, unknown set U) has no successful extension, neither has
/// (K, s, U') for any U' that contains U: every extension of the latter is one of the
/// former (it can simply never linearize the extra unknown operations, which are
/// optional). The exact cache cannot see this, and without it a search that has hit a
/// dead end tries every subset of the pending unknown operations before backing off.
/// Only configurations whose search has finished are recorded (never one still on the
/// stack), so every recorded one truly failed.
struct Dominance {
    /// Whether the key has operations of unknown outcome at all.
    enabled: bool,
    /// Known operations linearized, by rank among known operations in call order.
    known: Linearized,
    /// Unknown operations linearized, sorted. Invariant: the unknown ops on the stack.
    unknown: Vec<u32>,
    /// (known set, state) key -> unknown sets of failed configurations.
    failed: FailedSets,
    entries: usize,
    key: Vec<u64>,
    scratch: Vec<u32>,
}

impl Dominance {
    fn new(enabled: bool, known_ops: usize) -> Self {
        Dominance {
            enabled,
            known: Linearized::new(known_ops),
            unknown: Vec::new(),
            failed: std::collections::HashMap::default(), // determinism: ok, fixed-seed hasher, never iterated for output
            entries: 0,
            key: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// `op` was linearized: `known_rank` if it is a known operation.
    fn push(&mut self, op: usize, known_rank: Option<usize>) {
        match known_rank {
            Some(r) => self.known.insert(r),
            None => {
                let op = op as u32;
                let at = self.unknown.partition_point(|&u| u < op);
                self.unknown.insert(at, op);
            }
        }
    }

    fn pop(&mut self, op: usize, known_rank: Option<usize>) {
        match known_rank {
            Some(r) => self.known.remove(r),
            None => {
                let op = op as u32;
                if let Ok(at) = self.unknown.binary_search(&op) {
                    self.unknown.remove(at);
                }
            }
        }
    }

    /// Whether linearizing `op` next, leaving `state`, reaches a configuration that a
    /// failed one dominates.
    fn dominated(&mut self, op: usize, known_rank: Option<usize>, state: ValueId) -> bool {
        if !self.enabled || self.failed.is_empty() {
            return false;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.unknown);
        match known_rank {
            Some(r) => {
                self.known.insert(r);
                self.known.key(state, &mut self.key);
                self.known.remove(r);
            }
            None => {
                self.known.key(state, &mut self.key);
                let op = op as u32;
                let at = self.scratch.partition_point(|&u| u < op);
                self.scratch.insert(at, op);
            }
        }
        let Some(sets) = self.failed.get(&self.key[..]) else {
            return false;
        };
        sets.iter().any(|set| is_subset(set, &self.scratch))
    }

    /// The current configuration (leaving `state`) failed.
    fn failed(&mut self, state: ValueId) {
        if !self.enabled || self.entries >= MAX_DOMINANCE_ENTRIES {
            return;
        }
        self.known.key(state, &mut self.key);
        let sets = self.failed.entry(self.key.as_slice().into()).or_default();
        if sets.len() < MAX_DOMINANCE_PER_KEY {
            sets.push(self.unknown.as_slice().into());
            self.entries += 1;
        }
    }
}

/// Whether sorted `a` is a subset of sorted `b`.
fn is_subset(a: &[u32], b: &[u32]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y == x))
}

/// A candidate counterexample: a prefix (a snapshot of the stack), the operations stuck
/// after it, and the key it is ranked by. The snapshot is kept in step with the stack
/// cheaply: taking a new one copies only what was popped and pushed since the last.
struct Record {
    key: Option<(u64, u64)>,
    prefix: Vec<usize>,
    stuck: Vec<usize>,
    /// Invariant: `prefix[..valid]` equals the bottom `valid` operations of the stack.
    valid: usize,
}

impl Record {
    fn new() -> Self {
        Record {
            key: None,
            prefix: Vec::new(),
            stuck: Vec::new(),
            valid: 0,
        }
    }

    /// The stack was popped down to `len`.
    fn popped(&mut self, len: usize) {
        self.valid = self.valid.min(len);
    }

    fn take(&mut self, key: (u64, u64), stack: &[Frame], stuck: Vec<usize>) {
        self.key = Some(key);
        self.prefix.truncate(self.valid);
        self.prefix.extend(stack[self.valid..].iter().map(|f| f.op));
        self.valid = stack.len();
        self.stuck = stuck;
        debug_assert!(self.prefix.iter().eq(stack.iter().map(|f| &f.op)));
    }
}

/// A linearized operation on the stack, and what to restore when it is taken back.
struct Frame {
    op: usize,
    state_before: ValueId,
    /// Where to resume in the candidate list of the configuration it was chosen in.
    next: usize,
    /// Chosen without branching (a read that succeeded): if the search fails after it,
    /// the configuration it was chosen in fails too, so its other candidates are skipped.
    forced: bool,
}

/// Search for a linearization of `ops` (all on one key, starting absent), taking at most
/// `max_steps` steps.
///
/// Reads are linearized greedily: if a pure read (a get, or a cas that reported no
/// swap) can go next and its result holds in the current state, some linearization
/// extends the current prefix with it next, if any linearization extends the prefix at
/// all. (Take one; the read appears later, where the state equals the current one since
/// it succeeds there; move it to the front: it changes no state, and no operation still
/// pending had to precede it, or it would not be a candidate.) So a read that succeeds
/// is taken without trying alternatives, and if the configuration after it was already
/// explored, the current one fails too. This removes most of the branching on histories
/// with many reads.
///
/// The other candidates are tried in the order of their intervals' midpoints, the best
/// guess at the order in which they took effect, then the unknown operations in call
/// order. (Any order is complete; a good one finds a linearization with less
/// backtracking.)
///
/// One step is one event or candidate looked at; the search gives up after `max_steps`.
///
/// `cancel`, if given, is polled every [`CANCEL_POLL_STEPS`] steps; once it is set the
/// search stops and says [`Outcome::Undecided`]. Only a caller outside the determinism
/// boundary (the command line's wall-clock timeout) sets it; the search never reads a
/// clock itself, so without it the outcome is a function of the input and the budget.
pub(crate) fn search(
    ops: &[SearchOp],
    model: &mut Model,
    max_steps: u64,
    cancel: Option<&AtomicBool>,
) -> Outcome {
    let (outcome, _steps) = search_counting(ops, model, max_steps, cancel);
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + _steps));
    outcome
}

#[cfg(test)]
thread_local! {
    /// Steps taken by searches on this thread (for tests and tuning).
    pub(crate) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// What the search precomputes about its operations.
struct Tables {
    /// The operations, with interchangeable unknown ones (see [`excuses`]) rewritten to
    /// write the opaque value.
    ops: Vec<SearchOp>,
    /// Events of known operations, sorted by (time, calls before returns, op). Ties put
    /// calls first: an operation that returns at the instant another is called overlaps
    /// it, which can only admit more orders, never report a false violation.
    events: Vec<(u64, bool, usize)>,
    /// Unknown operations left in (see [`unobservable_unknowns`]), by (call, op).
    unknown: Vec<(u64, usize)>,
    /// Per op: its call node and return node in the event list (known), or its node in
    /// the unknown list. Node k (1-based) is events[k - 1] / unknown[k - 1].
    call_node: Vec<u32>,
    return_node: Vec<u32>,
    unknown_node: Vec<u32>,
    /// Per op: a known pure read (taken greedily when it succeeds).
    read_only: Vec<bool>,
    /// Per op: try order among known candidates (interval midpoint, then index).
    priority: Vec<(u64, usize)>,
    /// Per op: an interchangeable excuse (see [`excuses`]).
    excuse: Vec<bool>,
    /// Whether any operation appends (see [`unblocks`] for why it matters).
    has_appends: bool,
    /// Per op: its rank among all operations in call order (its bit in the linearized
    /// set), and among known operations (its bit in [`Dominance`]'s known set).
    rank: Vec<usize>,
    known_rank: Vec<Option<usize>>,
    known_count: usize,
}

fn prepare(ops: &[SearchOp], model: &mut Model) -> Tables {
    let n = ops.len();
    let unobservable = unobservable_unknowns(ops, model);
    let excuse = excuses(ops, &unobservable, model);
    let opaque = excuse.iter().any(|&e| e).then(|| model.opaque());
    let ops: Vec<SearchOp> = ops
        .iter()
        .zip(&excuse)
        .map(|(op, &e)| match opaque {
            Some(opaque) if e => SearchOp {
                step: Step::Write(opaque),
                ..op.clone()
            },
            _ => op.clone(),
        })
        .collect();
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    let mut unknown: Vec<(u64, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op.ret {
            Some(ret) => {
                debug_assert!(ret >= op.call);
                events.push((op.call, false, i));
                events.push((ret.max(op.call), true, i));
            }
            None if unobservable[i] => {}
            None => unknown.push((op.call, i)),
        }
    }
    events.sort_unstable();
    unknown.sort_unstable();
    let mut call_node = vec![NIL; n];
    let mut return_node = vec![NIL; n];
    let mut unknown_node = vec![NIL; n];
    for (k, &(_, ret, op)) in events.iter().enumerate() {
        let node = k as u32 + 1;
        if ret {
            return_node[op] = node;
        } else {
            call_node[op] = node;
        }
    }
    for (k, &(_, op)) in unknown.iter().enumerate() {
        unknown_node[op] = k as u32 + 1;
    }
    let mut by_call: Vec<usize> = (0..n).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let mut rank = vec![0usize; n];
    for (r, &i) in by_call.iter().enumerate() {
        rank[i] = r;
    }
    let mut known_rank: Vec<Option<usize>> = vec![None; n];
    for (r, &i) in by_call
        .iter()
        .filter(|&&i| ops[i].ret.is_some())
        .enumerate()
    {
        known_rank[i] = Some(r);
    }
    Tables {
        read_only: ops
            .iter()
            .map(|op| op.ret.is_some() && op.step.is_read_only())
            .collect(),
        priority: ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.call / 2 + op.ret.unwrap_or(u64::MAX) / 2, i))
            .collect(),
        has_appends: ops.iter().any(|op| matches!(op.step, Step::Append(_))),
        known_count: events.len() / 2,
        ops,
        events,
        unknown,
        call_node,
        return_node,
        unknown_node,
        excuse,
        rank,
        known_rank,
    }
}

/// How often (in steps) the search polls its cancellation flag: rarely enough to cost
/// nothing, often enough to stop within a millisecond or so.
pub(crate) const CANCEL_POLL_STEPS: u64 = 1 << 14;

fn search_counting(
    ops: &[SearchOp],
    model: &mut Model,
    max_steps: u64,
    cancel: Option<&AtomicBool>,
) -> (Outcome, u64) {
    let mut next_poll = CANCEL_POLL_STEPS;
    let t = prepare(ops, model);
    let Tables {
        ops,
        events,
        unknown,
        call_node,
        return_node,
        unknown_node,
        read_only,
        priority,
        excuse,
        has_appends,
        rank,
        known_rank,
        known_count,
    } = &t;
    let (ops, has_appends, known_count) = (&ops[..], *has_appends, *known_count);
    let n = ops.len();
    let mut links = Links::chain(events.len());
    let mut ulinks = Links::chain(unknown.len());
    // The linearized set. Invariant: bit `rank[i]` is set iff ops[i] is on `stack`.
    let mut linearized = Linearized::new(n);
    let mut key: Vec<u64> = Vec::new();
    let mut dominance = Dominance::new(!unknown.is_empty(), known_count);
    // Configurations met so far. Invariant: every one not on the stack has no
    // linearization extending it.
    let mut cache = ConfigSet::new();

    let mut state: ValueId = ABSENT;
    let mut stack: Vec<Frame> = Vec::new();
    // Invariant: `lists[d]` holds the candidates still to be tried, in order, of the
    // configuration at depth d <= stack.len() (reads excluded: they failed there).
    let mut lists: Vec<Vec<usize>> = Vec::new();
    // Invariant: the number of known operations not on `stack`.
    let mut remaining = known_count;
    let mut steps = 0u64;

    // The counterexample so far, of two kinds (see where they are recorded).
    let mut deepest = Record::new();
    let mut latest_dead = Record::new();

    // Scratch: the reads that fail in the configuration being listed, and its unknown
    // candidates.
    let mut failed_reads: Vec<usize> = Vec::new();
    let mut window_unknown: Vec<usize> = Vec::new();
    // The reads that the configuration just listed can never linearize (see
    // `unreachable_reads`); empty for every other configuration.
    let mut dead: Vec<usize> = Vec::new();

    // Where to resume in `lists[stack.len()]`; `None`: a new configuration, whose list is
    // to be built.
    let mut resume: Option<usize> = None;

    loop {
        if remaining == 0 {
            let order = stack.iter().map(|f| f.op).collect();
            return (Outcome::Linearizable(order), steps);
        }
        let depth = stack.len();
        // The candidate to push next, if any, and whether it is a forced read.
        let mut chosen: Option<(usize, ValueId, usize, bool)> = None;
        if resume.is_none() {
            // A new configuration: list its candidates, taking a read that succeeds
            // at once. `remaining > 0`, so a return event is listed after the head,
            // and the walk over calls meets it before the end of the list.
            if lists.len() <= depth {
                lists.push(Vec::new());
            }
            let mut list = std::mem::take(&mut lists[depth]);
            list.clear();
            let mut node = links.next[NIL as usize];
            let mut bound = u64::MAX;
            while node != NIL {
                let (time, is_return, op) = events[node as usize - 1];
                steps += 1;
                if is_return {
                    bound = time;
                    break;
                }
                if !read_only[op] {
                    list.push(op);
                } else if let Some(next) = model.step(state, &ops[op].step) {
                    chosen = Some((op, next, 0, true));
                    break;
                } else {
                    failed_reads.push(op);
                }
                node = links.next[node as usize];
            }
            debug_assert!(node != NIL);
            // Right after an unknown operation, a blind write (put or delete) would
            // erase its effect before anything saw it; the same order without the
            // unknown operation is tried from the configuration before it.
            let after_unknown = stack.last().is_some_and(|f| ops[f.op].ret.is_none());
            if chosen.is_none() && after_unknown {
                list.retain(|&op| !ops[op].step.is_blind_write());
            }
            if chosen.is_none() {
                list.sort_unstable_by_key(|&op| priority[op]);
                let mut node = ulinks.next[NIL as usize];
                while node != NIL && unknown[node as usize - 1].0 <= bound {
                    window_unknown.push(unknown[node as usize - 1].1);
                    node = ulinks.next[node as usize];
                }
                let known = list.len();
                let mut excuse_listed = false;
                for &op in &window_unknown {
                    steps += 1;
                    if after_unknown && ops[op].step.is_blind_write() {
                        continue;
                    }
                    // An unknown operation that changes nothing now is as good as never
                    // taking effect, which the configuration without it covers.
                    if model
                        .step(state, &ops[op].step)
                        .is_none_or(|after| after == state)
                    {
                        continue;
                    }
                    if excuse[op] {
                        // Only the first available: the others are interchangeable.
                        if excuse_listed {
                            continue;
                        }
                        excuse_listed = true;
                    }
                    if has_appends
                        || unblocks(
                            op,
                            state,
                            model,
                            ops,
                            [&failed_reads[..], &list[..known], &window_unknown[..]],
                        )
                    {
                        list.push(op);
                    }
                }
                window_unknown.clear();
                unreachable_reads(
                    state,
                    model,
                    ops,
                    (&links, events),
                    (&ulinks, unknown),
                    &mut steps,
                    &mut dead,
                );
                if !dead.is_empty() {
                    list.clear();
                }
            }
            failed_reads.clear();
            lists[depth] = list;
            resume = Some(0);
        }
        if steps > max_steps {
            return (Outcome::Undecided, steps);
        }
        if steps >= next_poll {
            next_poll = steps + CANCEL_POLL_STEPS;
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return (Outcome::Undecided, steps);
            }
        }

        if chosen.is_none() {
            // Try the listed candidates from where this configuration left off.
            let list = &lists[depth];
            let mut pos = resume.unwrap_or(0);
            while pos < list.len() {
                let op = list[pos];
                pos += 1;
                steps += 1;
                if let Some(next) = model.step(state, &ops[op].step) {
                    linearized.insert(rank[op]);
                    linearized.key(next, &mut key);
                    linearized.remove(rank[op]);
                    if !cache.contains(&key) && !dominance.dominated(op, known_rank[op], next) {
                        chosen = Some((op, next, pos, false));
                        break;
                    }
                }
            }
        } else {
            // A forced read: if the configuration after it is known to fail, so does
            // this one.
            let (op, next, _, _) = chosen.expect("chosen");
            linearized.insert(rank[op]);
            linearized.key(next, &mut key);
            linearized.remove(rank[op]);
            if cache.contains(&key) || dominance.dominated(op, known_rank[op], next) {
                chosen = None;
            }
        }

        if let Some((op, next, pos, forced)) = chosen {
            // Linearize `op`: `key` holds the new configuration.
            dead.clear();
            if cache.insert(&key) == Inserted::Full {
                return (Outcome::Undecided, steps);
            }
            linearized.insert(rank[op]);
            dominance.push(op, known_rank[op]);
            stack.push(Frame {
                op,
                state_before: state,
                next: pos,
                forced,
            });
            state = next;
            if ops[op].ret.is_some() {
                links.remove(call_node[op]);
                links.remove(return_node[op]);
                remaining -= 1;
            } else {
                ulinks.remove(unknown_node[op]);
            }
            resume = None;
            continue;
        }

        // Every candidate of this configuration has been tried: backtrack, past every
        // forced read. First, keep it as a counterexample if it is the best of its kind.
        // One whose candidates were all tried is kept if it is the deepest abandoned:
        // then its candidates failed in the model (a success would have gone deeper),
        // but for those skipped as dominated. One cut short by a dead read is kept if that read returns the
        // latest (then the deepest). The search must explore the right path too, and a
        // stale read is found dead there; dead reads on wrong paths come earlier.
        match dead.first() {
            None => {
                if deepest.key.is_none_or(|(d, _)| depth as u64 > d) {
                    let mut stuck = candidates(&links, events);
                    // Those the model rejects: all of them, unless some were skipped as
                    // dominated (then keep them all, which still explains: each leads
                    // only to dead ends).
                    let rejected: Vec<usize> = stuck
                        .iter()
                        .copied()
                        .filter(|&op| model.step(state, &ops[op].step).is_none())
                        .collect();
                    if !rejected.is_empty() {
                        stuck = rejected;
                    }
                    let bound = stuck
                        .iter()
                        .filter_map(|&op| ops[op].ret)
                        .min()
                        .unwrap_or(u64::MAX);
                    deepest.take((depth as u64, bound), &stack, stuck);
                }
            }
            Some(&read) => {
                let key = (ops[read].ret.unwrap_or(u64::MAX), depth as u64);
                if latest_dead.key.is_none_or(|k| key > k) {
                    latest_dead.take(key, &stack, dead.clone());
                }
            }
        }
        dead.clear();
        loop {
            // The current configuration failed (this one, or the one a forced read was
            // taken in).
            dominance.failed(state);
            let Some(frame) = stack.pop() else {
                // The explanation that reaches later in real time: a dead read by its
                // return, a stuck configuration by its first pending return (which one
                // of its stuck operations has).
                let best = match (latest_dead.key, deepest.key) {
                    (Some((dead_time, _)), Some((_, bound))) if dead_time >= bound => latest_dead,
                    (Some(_), None) => latest_dead,
                    _ => deepest,
                };
                let outcome = Outcome::NotLinearizable {
                    prefix: best.prefix,
                    stuck: best.stuck,
                };
                return (outcome, steps);
            };
            deepest.popped(stack.len());
            latest_dead.popped(stack.len());
            let op = frame.op;
            state = frame.state_before;
            linearized.remove(rank[op]);
            dominance.pop(op, known_rank[op]);
            if ops[op].ret.is_some() {
                links.restore(return_node[op]);
                links.restore(call_node[op]);
                remaining += 1;
            } else {
                ulinks.restore(unknown_node[op]);
            }
            if !frame.forced {
                resume = Some(frame.next);
                break;
            }
        }
    }
}

/// Which unknown operations are interchangeable "excuses": puts of unknown outcome (and
/// kept by [`unobservable_unknowns`]) whose value no read returns and no cas expects,
/// nor (with appends) any extension of it; and appends of unknown outcome whose text no
/// such value contains. Such an operation can matter only to a refused cas,
/// which needs the value to differ from what it expected, and any of them does that
/// equally: their values, and what appends make of them, are never compared equal to
/// anything. So the search treats them all as writing one opaque value (which appends
/// leave opaque), and, of those available at a configuration (called before the first
/// pending return), tries only the first. Using another available one instead leaves an
/// equivalent set behind: all of them stay available from then on.
///
/// This is what keeps a history with many timed-out writes and refused cases tractable:
/// without it, every choice of which timed-out write explains which refused cas is a
/// different configuration.
fn excuses(ops: &[SearchOp], unobservable: &[bool], model: &mut Model) -> Vec<bool> {
    let has_appends = ops.iter().any(|op| matches!(op.step, Step::Append(_)));
    let mut compared: Vec<ValueId> = ops
        .iter()
        .filter_map(|op| match op.step {
            Step::Read(v) => Some(v),
            Step::CasSwapped { expected, .. }
            | Step::CasRefused { expected }
            | Step::CasMaybe { expected, .. } => Some(expected),
            _ => None,
        })
        .collect();
    compared.sort_unstable();
    compared.dedup();
    let puts = ops
        .iter()
        .zip(unobservable)
        .filter(|(op, gone)| !**gone && op.ret.is_none() && matches!(op.step, Step::Write(_)))
        .count();
    if has_appends && puts.saturating_mul(compared.len()) > UNOBSERVABLE_PREFIX_WORK {
        return vec![false; ops.len()];
    }
    // The bytes of the compared values, to look for appended text in (if affordable).
    let appends = ops
        .iter()
        .zip(unobservable)
        .filter(|(op, gone)| !**gone && op.ret.is_none() && matches!(op.step, Step::Append(_)))
        .count();
    let total: usize = if appends > 0 {
        compared.iter().map(|&v| model.bytes(v).len()).sum()
    } else {
        0
    };
    let compared_bytes: Option<Vec<Vec<u8>>> = (appends > 0
        && total.saturating_mul(appends) <= UNOBSERVABLE_APPEND_WORK)
        .then(|| compared.iter().map(|&v| model.bytes(v)).collect());
    ops.iter()
        .zip(unobservable)
        .map(|(op, &gone)| match op.step {
            _ if gone || op.ret.is_some() => false,
            Step::Write(v) => {
                if has_appends {
                    !compared.iter().any(|&c| model.may_grow_into(v, c))
                } else {
                    compared.binary_search(&v).is_err()
                }
            }
            // An append whose text no compared value contains: every value from it to
            // the next reset contains that text, so nothing compares equal to any of
            // them, exactly like the opaque value.
            Step::Append(suffix) => {
                let text = model.suffix(suffix).as_bytes();
                !text.is_empty()
                    && compared_bytes.as_ref().is_some_and(|values| {
                        !values
                            .iter()
                            .any(|v| v.windows(text.len()).any(|w| w == text))
                    })
            }
            _ => false,
        })
        .collect()
}

/// Most byte comparisons [`unobservable_unknowns`] spends looking for appended text in
/// the values operations compare against; past it, unknown appends are all kept.
const UNOBSERVABLE_APPEND_WORK: usize = 1 << 26;

/// Most (unknown operation, compared value) pairs [`unobservable_unknowns`] checks by
/// prefix on a key with appends; past it, unknown operations there are all kept.
const UNOBSERVABLE_PREFIX_WORK: usize = 1 << 22;

/// Which operations of unknown outcome can be left out of the search: those whose
/// effect no operation could observe. Each left in may be linearized at any point after
/// its call, which multiplies the configurations to explore, and a history from a
/// faulty run can have hundreds.
///
/// Leaving out an unknown operation `w` that a linearization `L` includes gives `L`
/// without `w`, which is still a linearization if nothing in `L` told `w`'s effect from
/// its absence. Its effect lasts from `w` to the next put, delete or swapping cas (a
/// "reset"); in between, the value is "what `w` made it, plus appends". An operation
/// there can tell only by comparing: a read must return that value, a cas expect it (or
/// a refused cas not expect it), and a later unknown cas either swaps, which needs its
/// expected value to be that value, or does nothing, in which case it can be left out
/// too. So `w` is left out when:
///
/// - no read returns, and no cas expects, a value that could be `w`'s plus appends
///   (for a put or a swapping cas: a value that extends the one it writes; for an
///   append: one that contains the text it appends; a delete is always kept); and
/// - no refused cas that could follow `w` (returning after `w`'s call) expects a value
///   that some operation could write: without `w`, such a cas might see that value.
fn unobservable_unknowns(ops: &[SearchOp], model: &mut Model) -> Vec<bool> {
    let mut out = vec![false; ops.len()];
    let has_appends = ops.iter().any(|op| matches!(op.step, Step::Append(_)));
    let mut compared: Vec<ValueId> = ops
        .iter()
        .filter_map(|op| match op.step {
            Step::Read(v) => Some(v),
            Step::CasSwapped { expected, .. }
            | Step::CasRefused { expected }
            | Step::CasMaybe { expected, .. } => Some(expected),
            _ => None,
        })
        .collect();
    compared.sort_unstable();
    compared.dedup();
    let written: std::collections::BTreeSet<ValueId> =
        ops.iter().filter_map(|op| op.step.reset_value()).collect();
    let writable = |v: ValueId| v == ABSENT || has_appends || written.contains(&v);
    // The latest return of a refused cas whose expected value might be seen.
    let last_refusal = ops
        .iter()
        .filter_map(|op| match (op.ret, &op.step) {
            (Some(ret), Step::CasRefused { expected }) if writable(*expected) => Some(ret),
            _ => None,
        })
        .max();
    let unknown: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].ret.is_none() && last_refusal.is_none_or(|r| r < ops[i].call))
        .collect();
    let prefix_budget_ok = unknown.len().saturating_mul(compared.len()) <= UNOBSERVABLE_PREFIX_WORK;
    let compared_bytes: Vec<Vec<u8>> = if has_appends {
        let total: usize = compared.iter().map(|&v| model.bytes(v).len()).sum();
        let appends = unknown
            .iter()
            .filter(|&&i| matches!(ops[i].step, Step::Append(_)))
            .count();
        if total.saturating_mul(appends) <= UNOBSERVABLE_APPEND_WORK {
            compared.iter().map(|&v| model.bytes(v)).collect()
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    for i in unknown {
        out[i] = match ops[i].step {
            Step::Append(suffix) => {
                let text = model.suffix(suffix).as_bytes();
                !compared_bytes.is_empty()
                    && !text.is_empty()
                    && !compared_bytes
                        .iter()
                        .any(|v| v.windows(text.len()).any(|w| w == text))
            }
            _ => match ops[i].step.reset_value() {
                Some(ABSENT) | None => false,
                Some(v) if has_appends => {
                    prefix_budget_ok && !compared.iter().any(|&c| model.may_grow_into(v, c))
                }
                Some(v) => compared.binary_search(&v).is_err(),
            },
        };
    }
    out
}

/// Whether linearizing the unknown operation `op` next, in `state`, lets some other
/// candidate (in `candidates`: the failing reads, the other known candidates, the
/// unknown candidates) take effect in a way it could not without it. On a key without
/// appends, only such unknown operations need trying.
///
/// Why: take any linearization that includes an unknown operation `w` (a put, delete or
/// cas). After `w` comes a stretch of reads, refused cases and unknown cases that do not
/// swap, up to the next put, delete or swapping cas (no appends). Move `w` later, past
/// each of those that does the same without it: nothing changes for them, and `w` has
/// no return to be bound by. It stops at the first operation that needs it, which,
/// since `w` changes no candidate set, was a candidate where `w` was; if none needs it,
/// drop `w`: nothing told it apart. So some linearization puts every unknown operation
/// it includes right before an operation it unblocks. With appends in between, moving
/// `w` would change what they build, so keys with appends try every unknown operation.
fn unblocks(
    op: usize,
    state: ValueId,
    model: &mut Model,
    ops: &[SearchOp],
    candidates: [&[usize]; 3],
) -> bool {
    let Some(after) = model.step(state, &ops[op].step) else {
        return false;
    };
    if after == state {
        return false;
    }
    candidates.iter().flat_map(|c| c.iter()).any(|&x| {
        x != op
            && match ops[x].step {
                // An unknown cas does something else after `op` if it swaps there.
                Step::CasMaybe { expected, .. } => expected == after,
                Step::Write(_) | Step::Delete | Step::Append(_) => false,
                ref step => model.step(after, step).is_some() && model.step(state, step).is_none(),
            }
    })
}

/// How far [`unreachable_reads`] looks ahead in the event list, in events: bounds the
/// cost of the check per configuration.
const READ_LOOKAHEAD_EVENTS: usize = 512;

/// How many pending reads [`unreachable_reads`] checks per configuration.
const READ_LOOKAHEAD_READS: usize = 4;

/// How many possible starting values [`unreachable_reads`] tracks before it gives up.
const READ_LOOKAHEAD_STARTS: usize = 16;

/// Put into `dead` (cleared first) a pending read that can never be linearized from the
/// current configuration, if it finds one; the configuration then fails, whatever is
/// tried next.
///
/// Before a read takes effect, the value evolves from the current one through the
/// operations that can precede the read (those called no later than its return), and
/// only a put, delete or cas can set it to something that does not extend what it was
/// (a "reset"); appends only extend it. So the value a read returns must extend the
/// current value, or the value some pending reset called before its return would
/// write. If it extends none of them, no order works. The reads looked at are the
/// first few to return and the walk is bounded: this is a pruning rule, so looking at
/// less only prunes less.
///
/// This matters for appends: a wrong order of appends is otherwise found only when a
/// read that sees it becomes a candidate, after every interleaving of the appends
/// before it has been tried.
fn unreachable_reads(
    state: ValueId,
    model: &mut Model,
    ops: &[SearchOp],
    (links, events): (&Links, &[(u64, bool, usize)]),
    (ulinks, unknown): (&Links, &[(u64, usize)]),
    steps: &mut u64,
    dead: &mut Vec<usize>,
) {
    dead.clear();
    // Values the key may hold before the next read, up to appends.
    let mut starts: Vec<ValueId> = vec![state];
    let add = |starts: &mut Vec<ValueId>, op: usize| {
        if let Some(v) = ops[op].step.reset_value()
            && !starts.contains(&v)
        {
            starts.push(v);
        }
    };
    let mut reads = 0;
    let mut node = links.next[NIL as usize];
    let mut unode = ulinks.next[NIL as usize];
    for _ in 0..READ_LOOKAHEAD_EVENTS {
        if node == NIL || starts.len() > READ_LOOKAHEAD_STARTS {
            return;
        }
        let (time, is_return, op) = events[node as usize - 1];
        *steps += 1;
        // Unknown operations called up to this event may precede what follows it.
        while unode != NIL && unknown[unode as usize - 1].0 <= time {
            add(&mut starts, unknown[unode as usize - 1].1);
            unode = ulinks.next[unode as usize];
            *steps += 1;
        }
        if !is_return {
            add(&mut starts, op);
        } else if let Step::Read(target) = ops[op].step {
            if !starts.iter().any(|&s| model.may_grow_into(s, target)) {
                dead.push(op);
                return;
            }
            reads += 1;
            if reads == READ_LOOKAHEAD_READS {
                return;
            }
        }
        node = links.next[node as usize];
    }
}

/// The known operations that may go next in the current configuration: their calls
/// come before the first pending return. (Operations of unknown outcome are never
/// "stuck": they have no result the model could reject.)
fn candidates(links: &Links, events: &[(u64, bool, usize)]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut node = links.next[NIL as usize];
    while node != NIL {
        let (_, is_return, op) = events[node as usize - 1];
        if is_return {
            break;
        }
        out.push(op);
        node = links.next[node as usize];
    }
    out
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
            let mut set = ConfigSet::new();
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
