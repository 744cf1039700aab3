//! The linearizability search for one key: Wing & Gong's depth-first search, with
//! Lowe's cache of visited configurations, in the shape Porcupine gives it.
//!
//! Every operation with a known outcome contributes two events, its call and its return,
//! to a time-ordered doubly linked list. The search walks the list from its head: it may
//! linearize any operation whose call it meets before the first return event still in
//! the list (that operation overlaps everything still pending, so it may go next); when
//! it reaches a return event whose operation is not linearized yet, nothing it could put
//! next is consistent with real time, and it backtracks. Linearizing an operation lifts
//! its events out of the list; backtracking puts them back (dancing links: removal keeps
//! the node's own pointers, so restoring in reverse order is exact).
//!
//! A configuration is (set of linearized operations, model state): what is left to do
//! depends on nothing else, so a configuration met twice is not explored twice.
//!
//! Operations with unknown outcome have no return event: they may take effect at any
//! time after their call, or never. They sit in a second list, ordered by call time, and
//! are candidates wherever their call precedes the first return event. The search
//! succeeds when every operation with a known outcome is linearized, whatever became of
//! the unknown ones: leaving one out is its "never took effect". Known operations are
//! tried before unknown ones at each configuration, since an unknown write that is tried
//! first tends to be wrong first (a heuristic: every candidate is still tried).

use std::collections::HashSet;

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
        key.push(self.low as u64);
        if self.low < self.words.len() {
            key.extend_from_slice(&self.words[self.low..=self.high.max(self.low)]);
        }
        key.push(u64::from(state));
    }
}

/// Where the search is in trying the candidates of the current configuration.
#[derive(Clone, Copy)]
enum Cursor {
    /// First pass, over the event list: looking for a read that succeeds (see
    /// [`search`]: such a read is linearized without branching).
    Reads(u32),
    /// Second pass, over the event list: trying the known operations that change state.
    Known(u32),
    /// Third pass, over the unknown-operation list.
    Unknown(u32),
    /// Every candidate has been tried: backtrack.
    Exhausted,
}

/// A linearized operation on the stack, and what to restore when it is taken back.
struct Frame {
    op: usize,
    state_before: ValueId,
    /// The time of the first pending return in the configuration it was chosen in.
    bound: u64,
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
pub(crate) fn search(ops: &[SearchOp], model: &mut Model, max_steps: u64) -> Outcome {
    let (outcome, steps) = search_counting(ops, model, max_steps);
    STEPS.with(|s| s.set(s.get() + steps));
    outcome
}

thread_local! {
    /// Steps taken by searches on this thread (for tests and tuning).
    pub(crate) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn search_counting(ops: &[SearchOp], model: &mut Model, max_steps: u64) -> (Outcome, u64) {
    let n = ops.len();
    // Event list: events sorted by (time, calls before returns, op). Ties put calls first:
    // an operation that returns at the instant another is called overlaps it, which can
    // only admit more orders, never report a false violation.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    let mut unknown: Vec<(u64, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op.ret {
            Some(ret) => {
                debug_assert!(ret >= op.call);
                events.push((op.call, false, i));
                events.push((ret.max(op.call), true, i));
            }
            None => unknown.push((op.call, i)),
        }
    }
    events.sort_unstable();
    unknown.sort_unstable();
    let known_count = events.len() / 2;
    let read_only: Vec<bool> = ops
        .iter()
        .map(|op| op.ret.is_some() && op.step.is_read_only())
        .collect();

    // Node k (1-based) of each list is events[k - 1] / unknown[k - 1].
    let mut links = Links::chain(events.len());
    let mut ulinks = Links::chain(unknown.len());
    let event = |node: u32| events[node as usize - 1];
    // Per op: its call node and return node (known), or its node in the unknown list.
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

    // The linearized set. Invariant: bit `rank[i]` is set iff ops[i] is on `stack`,
    // where `rank` numbers operations in call order.
    let mut by_call: Vec<usize> = (0..n).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let mut rank = vec![0usize; n];
    for (r, &i) in by_call.iter().enumerate() {
        rank[i] = r;
    }
    let mut linearized = Linearized::new(n);
    let mut key: Vec<u64> = Vec::new();
    // Configurations met so far. Invariant: every one not on the stack has no
    // linearization extending it.
    let mut cache: HashSet<Box<[u64]>, FixedState> = HashSet::default();

    let mut state: ValueId = ABSENT;
    let mut stack: Vec<Frame> = Vec::new();
    // Invariant: the number of known operations not on `stack`.
    let mut remaining = known_count;
    let mut cursor = Cursor::Reads(links.next[NIL as usize]);
    // Time of the first pending return: the bound on unknown candidates. Valid while
    // the cursor is in the unknown list.
    let mut bound = 0u64;
    let mut steps = 0u64;

    // The deepest configuration met, and the candidates it had (all failed there).
    let mut best_depth = 0usize;
    let mut best_recorded = false;
    let mut best_prefix: Vec<usize> = Vec::new();
    let mut best_stuck: Vec<usize> = Vec::new();

    loop {
        if remaining == 0 {
            let order = stack.iter().map(|f| f.op).collect();
            return (Outcome::Linearizable(order), steps);
        }
        steps += 1;
        if steps > max_steps {
            return (Outcome::Undecided, steps);
        }
        // `remaining > 0`, so a return event is listed after the head, and a walk over
        // calls meets it before the end of the list.
        let (candidate, forced) = match cursor {
            Cursor::Reads(node) => {
                debug_assert!(node != NIL);
                let (_, is_return, op) = event(node);
                if is_return {
                    cursor = Cursor::Known(links.next[NIL as usize]);
                    continue;
                }
                if !read_only[op] {
                    cursor = Cursor::Reads(links.next[node as usize]);
                    continue;
                }
                (op, true)
            }
            Cursor::Known(node) => {
                debug_assert!(node != NIL);
                let (time, is_return, op) = event(node);
                if is_return {
                    bound = time;
                    cursor = Cursor::Unknown(ulinks.next[NIL as usize]);
                    continue;
                }
                if read_only[op] {
                    // Tried in the first pass: it fails here.
                    cursor = Cursor::Known(links.next[node as usize]);
                    continue;
                }
                (op, false)
            }
            Cursor::Unknown(node) => {
                if node != NIL && unknown[node as usize - 1].0 <= bound {
                    (unknown[node as usize - 1].1, false)
                } else {
                    cursor = Cursor::Exhausted;
                    continue;
                }
            }
            Cursor::Exhausted => {
                // Every candidate of this configuration has been tried: backtrack.
                if !best_recorded && stack.len() == best_depth {
                    best_recorded = true;
                    best_prefix = stack.iter().map(|f| f.op).collect();
                    best_stuck = candidates(&links, &ulinks, &events, &unknown);
                }
                let Some(frame) = stack.pop() else {
                    let outcome = Outcome::NotLinearizable {
                        prefix: best_prefix,
                        stuck: best_stuck,
                    };
                    return (outcome, steps);
                };
                let op = frame.op;
                state = frame.state_before;
                bound = frame.bound;
                linearized.remove(rank[op]);
                cursor = if ops[op].ret.is_some() {
                    links.restore(return_node[op]);
                    links.restore(call_node[op]);
                    remaining += 1;
                    Cursor::Known(links.next[call_node[op] as usize])
                } else {
                    ulinks.restore(unknown_node[op]);
                    Cursor::Unknown(ulinks.next[unknown_node[op] as usize])
                };
                if frame.forced {
                    cursor = Cursor::Exhausted;
                }
                continue;
            }
        };

        if let Some(next_state) = model.step(state, &ops[candidate].step) {
            linearized.insert(rank[candidate]);
            linearized.key(next_state, &mut key);
            if !cache.contains(&key[..]) {
                cache.insert(key.as_slice().into());
                stack.push(Frame {
                    op: candidate,
                    state_before: state,
                    bound,
                    forced,
                });
                state = next_state;
                if ops[candidate].ret.is_some() {
                    links.remove(call_node[candidate]);
                    links.remove(return_node[candidate]);
                    remaining -= 1;
                } else {
                    ulinks.remove(unknown_node[candidate]);
                }
                if stack.len() > best_depth {
                    best_depth = stack.len();
                    best_recorded = false;
                }
                cursor = Cursor::Reads(links.next[NIL as usize]);
                continue;
            }
            linearized.remove(rank[candidate]);
            if forced {
                // The configuration after this read failed, so this one does too.
                cursor = Cursor::Exhausted;
                continue;
            }
        }
        cursor = match cursor {
            Cursor::Reads(node) => Cursor::Reads(links.next[node as usize]),
            Cursor::Known(node) => Cursor::Known(links.next[node as usize]),
            Cursor::Unknown(node) => Cursor::Unknown(ulinks.next[node as usize]),
            Cursor::Exhausted => Cursor::Exhausted,
        };
    }
}

/// The operations that may go next in the current configuration: known calls before
/// the first pending return, then unknown calls no later than that return.
fn candidates(
    links: &Links,
    ulinks: &Links,
    events: &[(u64, bool, usize)],
    unknown: &[(u64, usize)],
) -> Vec<usize> {
    let mut out = Vec::new();
    let mut node = links.next[NIL as usize];
    let mut bound = u64::MAX;
    while node != NIL {
        let (time, is_return, op) = events[node as usize - 1];
        if is_return {
            bound = time;
            break;
        }
        out.push(op);
        node = links.next[node as usize];
    }
    let mut node = ulinks.next[NIL as usize];
    while node != NIL && unknown[node as usize - 1].0 <= bound {
        out.push(unknown[node as usize - 1].1);
        node = ulinks.next[node as usize];
    }
    out
}
