//! The chains, the gets that returned "absent" and the cas that did not swap, in an
//! order real time and the state allow: a depth-first search over blocks, not
//! operations.
//!
//! Each chain becomes a *block*: its writes, each followed by the gets of its value.
//! Any linearization keeps a block contiguous but for cas that did not swap (values
//! are unique, so a get of a value sits between its write and the next write, and a
//! chain's links are immediate), so what is left to choose is the blocks' order, the
//! place of each "absent" get, and the place of each refused cas. As Gibbons & Korach
//! observed for read-mapped registers, real time then says only this: a block (or
//! get) may go next when none of the others left returned before one of its
//! operations was called. Of the state, little matters: whether the key is absent (a
//! block that starts from an absent key, an append to it or a cas that expected it,
//! and an "absent" get need it absent; a delete makes it so), and which write's value
//! it holds, for the refused cas (each saw anything but what it expected).
//!
//! So the search moves among configurations (the items placed, the state), and these
//! rules keep it small:
//!
//! - an "absent" get or a refused cas that may go next and that the state fits goes
//!   at once: it changes no state, and placing it early only lifts constraints (the
//!   search's "reads taken greedily" rule);
//! - a refused cas does not hold blocks back: it goes before, or inside, the first
//!   block placed that has an operation called after the cas returned (between two
//!   of the block's operations where real time and the state allow), and a block it
//!   fits nowhere in or before is not placed;
//! - a write that may never have taken effect (a delete or a put or append nobody
//!   saw, of unknown outcome) is tried only where it brings what the most urgent item
//!   needs (a refused cas something other than the value it expected, an "absent"
//!   get a delete), or at the end: anywhere else it is a choice that changes nothing
//!   anyone saw;
//! - of the blocks of one kind that may go next (a delete; a block that needs the key
//!   absent; any other), only the one with the earliest return is tried: swapping it
//!   into the place of another of its kind keeps every real-time constraint (those
//!   that came between may precede both, as they preceded the later one) and the
//!   absent-or-not state; only a refused cas can tell them apart, rarely.
//!
//! Dead configurations are remembered (a hash of the set placed, and the state), and
//! the search is bounded by a number of steps proportional to the history's size.
//! Failing to find an order says nothing (the caller falls back to the full search),
//! and an order found is replayed before it is trusted, so neither the hash, nor the
//! bound, nor the rules' rare incompleteness can make a verdict wrong.

use std::collections::{BTreeMap, BTreeSet};

use super::{Pred, Unlike, ret_of};
use crate::history::{Call, Operation, Outcome};

/// Steps the search may take per item, beyond a fixed allowance: enough for
/// backtracking around a few hundred misplaced deletes, small beside the full search.
const STEPS_PER_ITEM: usize = 16;
/// How many of the earliest refused cas left may call for a write nobody saw.
const REFUSED_LOOKAHEAD: usize = 8;
/// Steps any search may take, however small the history.
const MIN_STEPS: usize = 100_000;

/// What an item needs of the state, and what it leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A get that returned "absent": needs it, leaves it.
    AbsentRead,
    /// A delete: needs nothing, leaves the key absent.
    Delete,
    /// A chain that starts from an absent key: needs it, leaves a value.
    FromAbsent,
    /// Any other chain: needs nothing, leaves a value.
    Value,
    /// A cas that did not swap: needs anything but what it expected, leaves it.
    Refused,
    /// A put or append of unknown outcome nobody saw: needs nothing, leaves a value
    /// nobody reads; it may also never take effect (then it goes last, harmlessly).
    Unseen,
}

/// The kinds, as indices.
const KINDS: usize = 6;

/// One entry of the order being built.
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// An item, whole.
    Item(usize),
    /// A refused cas put inside a block placed just before it, before the block's
    /// operation at this position.
    Inside { cas: usize, host: usize, at: usize },
}

/// The items and the search's moving parts.
struct Search {
    /// Operations of each item, in order.
    members: Vec<Vec<usize>>,
    kind: Vec<Kind>,
    /// The earliest return of each item's operations.
    lo: Vec<u64>,
    /// The latest call of each item's operations.
    hi: Vec<u64>,
    /// What each refused cas needs (`Unlike::Anything` for other items).
    unlike: Vec<Unlike>,
    /// The write whose value the key holds after each of an item's operations
    /// (`None`: absent; gets and refused cas leave the state as it was).
    after: Vec<Vec<Option<usize>>>,
    /// Each item's operations' calls and returns, in the item's order.
    calls: Vec<Vec<u64>>,
    rets: Vec<Vec<u64>>,
    /// A well-mixed 64-bit key per item (fixed, not random), for the set's hash.
    zobrist: Vec<u64>,
    /// Items left but refused cas, by earliest return.
    by_lo: BTreeSet<(u64, usize)>,
    /// Items left of each kind, by latest call.
    by_hi: [BTreeSet<(u64, usize)>; KINDS],
    /// Refused cas left, by return.
    refused_by_ret: BTreeSet<(u64, usize)>,
    /// Items left that need the key absent ("absent" gets, blocks that start from an
    /// absent key), by kind and earliest return: their deadlines, for
    /// [`Search::doomed`].
    needs_by_lo: [BTreeSet<(u64, usize)>; KINDS],
    /// The order so far.
    placed: Vec<Entry>,
    /// The write whose value the key holds after it (`None`: absent).
    state: Option<usize>,
    /// The hash of the set placed.
    hash: u64,
    /// Configurations (the hash of the set placed, the state) from which no order
    /// exists.
    dead: BTreeSet<(u64, Option<usize>)>,
}

/// One configuration on the search's path.
struct Frame {
    /// Entries placed on arriving here (gets and refused cas), at the end of `placed`.
    forced: usize,
    /// The key's state here.
    state: Option<usize>,
    /// The blocks to try from here, best first.
    moves: Vec<usize>,
    /// The next of them to try.
    next: usize,
    /// Entries the move being tried placed.
    tried: usize,
}

/// What the search orders: operation indices into `ops`.
pub(super) struct Pieces<'a, 'o> {
    pub ops: &'a [&'o Operation],
    /// The writes that took effect, in chains (see [`super::chains`]).
    pub chains: &'a [Vec<usize>],
    /// What each write must follow.
    pub pred: &'a [Option<Pred>],
    /// The write each get of a value read.
    pub read_of: &'a [Option<usize>],
    /// The gets that returned "absent".
    pub absent_reads: &'a [usize],
    /// The cas that did not swap, with what each did not see.
    pub refused: &'a [(usize, Unlike)],
}

/// An order of the chains' blocks, the "absent" gets and the refused cas (operation
/// indices); `None` if the search found none within its bound (a number of steps
/// proportional to the items, and at most `max_steps`).
pub(super) fn order(pieces: &Pieces<'_, '_>, max_steps: u64) -> Option<Vec<usize>> {
    let mut search = Search::new(pieces)?;
    let items = search.members.len();
    let bound = MIN_STEPS.max(items.saturating_mul(STEPS_PER_ITEM));
    let bound = bound.min(usize::try_from(max_steps).unwrap_or(usize::MAX));
    let entries = search.run(bound)?;
    Some(search.flatten(&entries))
}

/// SplitMix64's finalizer: a fixed, well-mixed key per item.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Search {
    /// The search over the chains (as blocks), "absent" gets and refused cas; `None`
    /// if a get reads a write that never took effect.
    fn new(pieces: &Pieces<'_, '_>) -> Option<Search> {
        let Pieces {
            ops,
            chains,
            pred,
            read_of,
            absent_reads,
            refused,
        } = *pieces;
        let mut reads: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (r, w) in read_of.iter().enumerate() {
            if let Some(w) = w {
                pred[*w]?;
                reads.entry(*w).or_default().push(r);
            }
        }
        for rs in reads.values_mut() {
            rs.sort_by_key(|&r| (ops[r].invoke_ns, r));
        }
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut kind = Vec::new();
        let mut unlike = Vec::new();
        for chain in chains {
            let head = chain[0];
            let alone = chain.len() == 1 && !reads.contains_key(&head);
            kind.push(if pred[head] == Some(Pred::Absent) {
                Kind::FromAbsent
            } else if chain.len() == 1 && matches!(ops[head].call, Call::Delete { .. }) {
                Kind::Delete
            } else if alone && ops[head].outcome == Outcome::Unknown {
                Kind::Unseen
            } else {
                Kind::Value
            });
            unlike.push(Unlike::Anything);
            members.push(super::members(chain, &reads));
        }
        for &r in absent_reads {
            kind.push(Kind::AbsentRead);
            unlike.push(Unlike::Anything);
            members.push(vec![r]);
        }
        for &(c, not) in refused {
            kind.push(Kind::Refused);
            unlike.push(not);
            members.push(vec![c]);
        }
        let calls: Vec<Vec<u64>> = members
            .iter()
            .map(|m| m.iter().map(|&i| ops[i].invoke_ns).collect())
            .collect();
        let rets: Vec<Vec<u64>> = members
            .iter()
            .map(|m| m.iter().map(|&i| ret_of(ops[i])).collect())
            .collect();
        let lo: Vec<u64> = rets
            .iter()
            .map(|r| r.iter().copied().min().unwrap_or(u64::MAX))
            .collect();
        let hi: Vec<u64> = calls
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        // The state after each operation of a block, relative to the state before it
        // (`Some(None)`: absent, `Some(Some(w))`: w's value, `None`: as before).
        let after: Vec<Vec<Option<usize>>> = members
            .iter()
            .map(|m| {
                let mut now = None;
                m.iter()
                    .map(|&i| {
                        match ops[i].call {
                            Call::Delete { .. } => now = None,
                            Call::Get { .. } => {}
                            _ => now = Some(i),
                        }
                        now
                    })
                    .collect()
            })
            .collect();
        let mut by_hi: [BTreeSet<(u64, usize)>; KINDS] = Default::default();
        let mut by_lo = BTreeSet::new();
        let mut refused_by_ret = BTreeSet::new();
        let mut needs_by_lo: [BTreeSet<(u64, usize)>; KINDS] = Default::default();
        for (i, k) in kind.iter().enumerate() {
            if Self::needs(*k) {
                needs_by_lo[*k as usize].insert((lo[i], i));
            }
            by_hi[*k as usize].insert((hi[i], i));
            if *k == Kind::Refused {
                refused_by_ret.insert((lo[i], i));
            } else {
                by_lo.insert((lo[i], i));
            }
        }
        Some(Search {
            zobrist: (0..members.len() as u64).map(mix).collect(),
            members,
            kind,
            lo,
            hi,
            unlike,
            after,
            calls,
            rets,
            by_lo,
            by_hi,
            refused_by_ret,
            needs_by_lo,
            placed: Vec::new(),
            state: None,
            hash: 0,
            dead: BTreeSet::new(),
        })
    }

    /// Whether an item of this kind needs the key absent (see `needs_by_lo`).
    fn needs(kind: Kind) -> bool {
        matches!(kind, Kind::AbsentRead | Kind::FromAbsent)
    }

    /// Whether every item is placed.
    fn done(&self) -> bool {
        self.by_lo.is_empty() && self.refused_by_ret.is_empty()
    }

    /// Removes item `i` from what is left and records `entry`.
    fn take(&mut self, i: usize, entry: Entry) {
        if self.kind[i] == Kind::Refused {
            self.refused_by_ret.remove(&(self.lo[i], i));
        } else {
            self.by_lo.remove(&(self.lo[i], i));
        }
        self.by_hi[self.kind[i] as usize].remove(&(self.hi[i], i));
        if Self::needs(self.kind[i]) {
            self.needs_by_lo[self.kind[i] as usize].remove(&(self.lo[i], i));
        }
        self.placed.push(entry);
        self.hash ^= self.zobrist[i];
    }

    /// Takes back the last entry (the caller restores the state).
    fn untake(&mut self) {
        let i = match self.placed.pop().expect("an entry to take back") {
            Entry::Item(i) => i,
            Entry::Inside { cas, .. } => cas,
        };
        if self.kind[i] == Kind::Refused {
            self.refused_by_ret.insert((self.lo[i], i));
        } else {
            self.by_lo.insert((self.lo[i], i));
        }
        self.by_hi[self.kind[i] as usize].insert((self.hi[i], i));
        if Self::needs(self.kind[i]) {
            self.needs_by_lo[self.kind[i] as usize].insert((self.lo[i], i));
        }
        self.hash ^= self.zobrist[i];
    }

    /// The earliest return among the items left that are not refused cas, its item,
    /// and the second earliest (`u64::MAX` when there are none).
    fn earliest(&self) -> (u64, Option<usize>, u64) {
        let mut it = self.by_lo.iter();
        let (m1, first) = it.next().map_or((u64::MAX, None), |&(l, i)| (l, Some(i)));
        let m2 = it.next().map_or(u64::MAX, |&(l, _)| l);
        (m1, first, m2)
    }

    /// Of the items of `kind` that may go next (none of the others left, refused cas
    /// aside, returned before one of its operations was called) and that `fits`, the
    /// one with the earliest return.
    fn next_of(&self, kind: Kind, fits: impl Fn(usize) -> bool) -> Option<usize> {
        let (m1, first, m2) = self.earliest();
        let mut best: Option<usize> = None;
        let mut consider = |i: usize| {
            if fits(i) && best.is_none_or(|b| (self.lo[i], i) < (self.lo[b], b)) {
                best = Some(i);
            }
        };
        for &(_, i) in self.by_hi[kind as usize].range(..=(m1, usize::MAX)) {
            if Some(i) != first {
                consider(i);
            }
        }
        if let Some(f) = first
            && self.kind[f] == kind
            && self.hi[f] <= m2
        {
            consider(f);
        }
        best
    }

    /// Places item `i` with the refused cas that must precede some operation of it
    /// (they returned before it was called), each before or inside it; the number of
    /// entries placed, or `None` (nothing placed) if one fits nowhere.
    fn place(&mut self, i: usize) -> Option<usize> {
        let due: Vec<usize> = self
            .refused_by_ret
            .range(..(self.hi[i], 0))
            .map(|&(_, c)| c)
            .collect();
        // Where each goes: before operation `at` of the item (0: before it all).
        let mut spots: Vec<(usize, usize)> = Vec::with_capacity(due.len());
        let (m_other, _) = {
            // The earliest return among the other items left (refused cas aside).
            let mut it = self.by_lo.iter().filter(|&&(_, j)| j != i);
            (it.next().map_or(u64::MAX, |&(l, _)| l), ())
        };
        let mut earliest_spot = 0;
        for &c in &due {
            let (call, ret) = (self.hi[c], self.lo[c]);
            if m_other < call {
                return None;
            }
            let n = self.members[i].len();
            // Before operation `at`: every operation before it was called by the cas's
            // return, every one from it on returned after the cas was called.
            let first_after = (0..n).find(|&k| self.calls[i][k] > ret).unwrap_or(n);
            let last_before = (0..n).rev().find(|&k| self.rets[i][k] < call);
            let from = last_before.map_or(0, |k| k + 1).max(earliest_spot);
            let unlike = self.unlike[c];
            let state_at = |at: usize| {
                if at == 0 {
                    self.state
                } else {
                    self.after[i][at - 1].or(match self.kind[i] {
                        Kind::AbsentRead | Kind::Refused => self.state,
                        // A block's first operation is its first write.
                        _ => None,
                    })
                }
            };
            let at = (from..=first_after).find(|&at| unlike.fits(state_at(at)))?;
            spots.push((c, at));
            // Refused cas keep their order of return among themselves.
            earliest_spot = at;
        }
        let mut n = 0;
        for &(c, at) in &spots {
            if at == 0 {
                self.take(c, Entry::Item(c));
                n += 1;
            }
        }
        self.take(i, Entry::Item(i));
        n += 1;
        for &(c, at) in &spots {
            if at > 0 {
                self.take(
                    c,
                    Entry::Inside {
                        cas: c,
                        host: i,
                        at,
                    },
                );
                n += 1;
            }
        }
        match self.kind[i] {
            Kind::Delete | Kind::FromAbsent | Kind::Value | Kind::Unseen => {
                self.state = *self.after[i].last().expect("a block has a write");
            }
            Kind::AbsentRead | Kind::Refused => {}
        }
        Some(n)
    }

    /// Places every "absent" get and refused cas that may go next and that the state
    /// fits, until none does; the number of entries placed.
    fn place_reads(&mut self) -> usize {
        let mut n = 0;
        loop {
            let (m1, _, _) = self.earliest();
            let state = self.state;
            // A refused cas may go when nothing left returned before it was called.
            // The earliest return among refused cas left, and the second.
            let mut by_ret = self.refused_by_ret.iter();
            let r1 = by_ret.next().map_or((u64::MAX, usize::MAX), |&x| x);
            let r2 = by_ret.next().map_or(u64::MAX, |&(r, _)| r);
            let cas = self.by_hi[Kind::Refused as usize]
                .range(..=(m1, usize::MAX))
                .map(|&(_, c)| c)
                .find(|&c| {
                    let others = if c == r1.1 { r2 } else { r1.0 };
                    self.hi[c] <= others && self.unlike[c].fits(state)
                });
            let next = match cas {
                Some(c) => Some(c),
                None if state.is_none() && !self.by_lo.is_empty() => {
                    self.next_of(Kind::AbsentRead, |_| true)
                }
                None => None,
            };
            let Some(r) = next else { break };
            match self.place(r) {
                Some(k) => n += k,
                None => break,
            }
        }
        n
    }

    /// Whether the configuration is hopeless for a reason seen at once: the key holds
    /// a value, and an item that needs it absent (an "absent" get, a block that starts
    /// from an absent key) returned before every delete left was called, so no delete
    /// can come between. Without this, the search would find out only when that item
    /// became the most urgent, often hundreds of blocks later, and backtrack through
    /// all of them (a one-hour run ran out of steps so).
    fn doomed(&self) -> bool {
        if self.state.is_none() {
            return false;
        }
        let deadline = [Kind::AbsentRead, Kind::FromAbsent]
            .iter()
            .filter_map(|&k| self.needs_by_lo[k as usize].first().map(|&(l, _)| l))
            .min();
        let first_delete = self.by_hi[Kind::Delete as usize]
            .first()
            .map_or(u64::MAX, |&(call, _)| call);
        deadline.is_some_and(|d| first_delete > d)
    }

    /// The blocks worth trying next, best first: one per kind (see the module
    /// documentation). When the most urgent item left (the earliest return) needs a
    /// state the key does not hold, the blocks that may bring it first.
    fn moves(&self) -> Vec<usize> {
        let (_, first, _) = self.earliest();
        let urgent = first
            .into_iter()
            .chain(self.refused_by_ret.first().map(|&(_, c)| c));
        let urgent = urgent.min_by_key(|&i| (self.lo[i], i));
        // What the urgent item needs: the key absent (true) or not (false).
        let wants_absent = urgent.and_then(|u| match (self.kind[u], self.unlike[u]) {
            (Kind::AbsentRead | Kind::FromAbsent, _) => Some(true),
            (Kind::Refused, Unlike::Absent) => Some(false),
            (Kind::Refused, Unlike::Write(w)) if self.state == Some(w) => Some(false),
            _ => None,
        });
        let rank = |leaves_absent: bool| u8::from(wants_absent.is_some_and(|w| w != leaves_absent));
        let mut moves: Vec<(u8, u64, usize)> = Vec::with_capacity(4);
        let mut add = |i: Option<usize>, rank: u8| {
            if let Some(i) = i {
                moves.push((rank, self.lo[i], i));
            }
        };
        // A write that may never have taken effect (a delete or a write nobody saw, of
        // unknown outcome) is tried only where it may bring what an item left needs (a
        // delete while the key holds a value and something left needs it absent; a
        // write nobody saw while one of the next refused cas cannot see the state), or
        // when nothing else is left: anywhere else it would only multiply the search's
        // choices, and leaving it out (or last) loses nothing. It comes after the
        // others unless the urgent item needs what it brings.
        let only_these_left = self.by_lo.iter().all(|&(lo, _)| lo == u64::MAX);
        let absent_needed = self.state.is_some()
            && [Kind::AbsentRead, Kind::FromAbsent]
                .iter()
                .any(|&k| !self.needs_by_lo[k as usize].is_empty());
        let change_needed = self
            .refused_by_ret
            .iter()
            .take(REFUSED_LOOKAHEAD)
            .any(|&(_, c)| !self.unlike[c].fits(self.state));
        let maybe = |i: usize, needed: bool| self.lo[i] < u64::MAX || only_these_left || needed;
        let late = |i: usize, leaves_absent: bool| {
            if self.lo[i] == u64::MAX && wants_absent != Some(leaves_absent) {
                2
            } else {
                rank(leaves_absent)
            }
        };
        if self.state.is_none() {
            add(self.next_of(Kind::FromAbsent, |_| true), rank(false));
        }
        let delete = self.next_of(Kind::Delete, |i| maybe(i, absent_needed));
        add(delete, delete.map_or(0, |d| late(d, true)));
        add(self.next_of(Kind::Value, |_| true), rank(false));
        let unseen = self.next_of(Kind::Unseen, |i| maybe(i, change_needed));
        add(unseen, unseen.map_or(0, |u| late(u, false)));
        moves.sort_unstable();
        moves.into_iter().map(|(_, _, i)| i).collect()
    }

    /// The entries in an order, or `None` if none was found within `max_steps`.
    fn run(&mut self, max_steps: usize) -> Option<Vec<Entry>> {
        let mut frames: Vec<Frame> = Vec::new();
        let mut steps = 0usize;
        loop {
            // Arrived at a configuration.
            let forced = self.place_reads();
            if self.done() {
                return Some(std::mem::take(&mut self.placed));
            }
            steps += 1;
            if steps > max_steps {
                return None;
            }
            let moves = if self.by_lo.is_empty()
                || self.doomed()
                || self.dead.contains(&(self.hash, self.state))
            {
                // Only refused cas are left, and the state fits none of them.
                Vec::new()
            } else {
                self.moves()
            };
            frames.push(Frame {
                forced,
                state: self.state,
                moves,
                next: 0,
                tried: 0,
            });
            // Try the next move from the deepest configuration that has one left.
            loop {
                let frame = frames.last_mut()?;
                if let Some(&m) = frame.moves.get(frame.next) {
                    frame.next += 1;
                    if let Some(n) = self.place(m) {
                        frame.tried = n;
                        break;
                    }
                    continue;
                }
                // Every move from here failed.
                self.dead.insert((self.hash, frame.state));
                for _ in 0..frame.forced {
                    self.untake();
                }
                frames.pop();
                let parent = frames.last()?;
                for _ in 0..parent.tried {
                    self.untake();
                }
                self.state = parent.state;
            }
        }
    }

    /// The operations of `entries`, in order, refused cas put inside their blocks.
    fn flatten(&self, entries: &[Entry]) -> Vec<usize> {
        let mut inside: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
        for e in entries {
            if let Entry::Inside { cas, host, at } = *e {
                inside.entry(host).or_default().push((at, cas));
            }
        }
        let mut out = Vec::new();
        for e in entries {
            let Entry::Item(i) = *e else { continue };
            let mut extra = inside.remove(&i).unwrap_or_default().into_iter().peekable();
            for (k, &op) in self.members[i].iter().enumerate() {
                while let Some((_, c)) = extra.next_if(|&(at, _)| at == k) {
                    out.extend(&self.members[c]);
                }
                out.push(op);
            }
            for (_, c) in extra {
                out.extend(&self.members[c]);
            }
        }
        out
    }
}
