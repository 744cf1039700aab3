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
//! - unknown operations nobody could observe are left out ([`unobservable_unknowns`](unobservable::unobservable_unknowns));
//!   those that could matter only to a refused cas are interchangeable and merged into
//!   one opaque value ([`excuses`](excuses::excuses)); on keys without appends an unknown operation is
//!   tried only right before an operation it unblocks ([`unblocks`]); one that would
//!   change nothing is not tried; and right after an unknown operation, no blind write
//!   (put, delete) is tried, since it would erase it unseen;
//! - a configuration that differs from a failed one only by having linearized more
//!   unknown operations fails too ([`Dominance`]).
//!
//! Every rule is checked against a brute-force oracle on small random histories (the
//! tests), and none may turn a linearizable history into a violation: they only prune
//! orders that a kept order covers.

mod cache;
mod counterexample;
mod dead_reads;
mod dominance;
mod excuses;
mod links;
mod tables;
mod unblocks;
mod unobservable;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::{ABSENT, Model, Step, ValueId};

use cache::{ConfigSet, Inserted, Linearized};
use counterexample::{Record, candidates};
use dead_reads::unreachable_reads;
use dominance::Dominance;
use links::{Links, NIL};
use tables::{Tables, prepare};
use unblocks::unblocks;

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
    /// The search stopped first.
    Undecided(Stop),
}

/// Why a search stopped before deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    /// It took its budget of steps.
    Steps,
    /// Its cache of configurations reached its byte limit.
    Memory,
    /// The caller's cancellation flag was set.
    Cancelled,
}

/// How far a search got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Steps taken.
    pub steps: u64,
    /// Configurations cached.
    pub configurations: u64,
    /// Bytes the cache held at the end.
    pub cache_bytes: u64,
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
///
/// The cache of configurations holds at most `max_cache_bytes`; when it is full the
/// search stops ([`Stop::Memory`]) rather than allocate more.
pub(crate) fn search(
    ops: &[SearchOp],
    model: &mut Model,
    (max_steps, max_cache_bytes): (u64, usize),
    cancel: Option<&AtomicBool>,
) -> (Outcome, Stats) {
    let (outcome, stats) = search_counting(ops, model, (max_steps, max_cache_bytes), cancel);
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + stats.steps));
    (outcome, stats)
}

#[cfg(test)]
thread_local! {
    /// Steps taken by searches on this thread (for tests and tuning).
    pub(crate) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How often (in steps) the search polls its cancellation flag: rarely enough to cost
/// nothing, often enough to stop within a millisecond or so.
pub(crate) const CANCEL_POLL_STEPS: u64 = 1 << 14;

/// A candidate chosen to linearize next: the operation, the state after it, where to
/// resume in its configuration's list, and whether it is a forced read.
type Chosen = (usize, ValueId, usize, bool);

fn search_counting(
    ops: &[SearchOp],
    model: &mut Model,
    (max_steps, max_cache_bytes): (u64, usize),
    cancel: Option<&AtomicBool>,
) -> (Outcome, Stats) {
    let mut next_poll = CANCEL_POLL_STEPS;
    let t = prepare(ops, model);
    let mut s = Search::new(&t, model, max_cache_bytes);
    let (outcome, steps) = drive(&mut s, max_steps, &mut next_poll, cancel);
    let stats = Stats {
        steps,
        configurations: s.cache.len() as u64,
        cache_bytes: s.cache.bytes() as u64,
    };
    (outcome, stats)
}

/// The search loop proper: linearize, list, backtrack, until an answer or a stop.
fn drive(
    s: &mut Search<'_, '_>,
    max_steps: u64,
    next_poll: &mut u64,
    cancel: Option<&AtomicBool>,
) -> (Outcome, u64) {
    // Where to resume in `lists[stack.len()]`; `None`: a new configuration, whose list is
    // to be built.
    let mut resume: Option<usize> = None;
    loop {
        if s.remaining == 0 {
            let order = s.stack.iter().map(|f| f.op).collect();
            return (Outcome::Linearizable(order), s.steps);
        }
        let mut chosen: Option<Chosen> = None;
        if resume.is_none() {
            chosen = s.list();
            resume = Some(0);
        }
        if s.steps > max_steps {
            return (Outcome::Undecided(Stop::Steps), s.steps);
        }
        if s.steps >= *next_poll {
            *next_poll = s.steps + CANCEL_POLL_STEPS;
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return (Outcome::Undecided(Stop::Cancelled), s.steps);
            }
        }
        let chosen = match chosen {
            None => s.next_listed(resume.unwrap_or(0)),
            Some(forced) => s.unless_explored(forced),
        };
        if let Some(chosen) = chosen {
            if !s.push(chosen) {
                return (Outcome::Undecided(Stop::Memory), s.steps);
            }
            resume = None;
            continue;
        }
        s.note_failure();
        match s.backtrack() {
            Some(next) => resume = Some(next),
            None => {
                return (s.failure(), s.steps);
            }
        }
    }
}

/// The search's mutable state: the configuration (linearized set, model state, stack),
/// the event lists it walks, the caches, and the counterexamples kept so far.
struct Search<'t, 'm> {
    t: &'t Tables,
    model: &'m mut Model,
    links: Links,
    ulinks: Links,
    /// The linearized set. Invariant: bit `rank[i]` is set iff ops[i] is on `stack`.
    linearized: Linearized,
    /// The cache key of the configuration being considered.
    key: Vec<u64>,
    dominance: Dominance,
    /// Configurations met so far. Invariant: every one not on the stack has no
    /// linearization extending it.
    cache: ConfigSet,
    state: ValueId,
    stack: Vec<Frame>,
    /// Invariant: `lists[d]` holds the candidates still to be tried, in order, of the
    /// configuration at depth d <= stack.len() (reads excluded: they failed there).
    lists: Vec<Vec<usize>>,
    /// Invariant: the number of known operations not on `stack`.
    remaining: usize,
    steps: u64,
    /// The counterexample so far, of two kinds (see [`Search::note_failure`]).
    deepest: Record,
    latest_dead: Record,
    /// Scratch: the reads that fail in the configuration being listed, and its unknown
    /// candidates.
    failed_reads: Vec<usize>,
    window_unknown: Vec<usize>,
    /// The reads that the configuration just listed can never linearize (see
    /// [`unreachable_reads`]); empty for every other configuration.
    dead: Vec<usize>,
}

impl<'t, 'm> Search<'t, 'm> {
    fn new(t: &'t Tables, model: &'m mut Model, max_cache_bytes: usize) -> Self {
        Search {
            links: Links::chain(t.events.len()),
            ulinks: Links::chain(t.unknown.len()),
            linearized: Linearized::new(t.ops.len()),
            key: Vec::new(),
            dominance: Dominance::new(!t.unknown.is_empty(), t.known_count, max_cache_bytes / 4),
            cache: ConfigSet::new(max_cache_bytes),
            state: ABSENT,
            stack: Vec::new(),
            lists: Vec::new(),
            remaining: t.known_count,
            steps: 0,
            deepest: Record::new(),
            latest_dead: Record::new(),
            failed_reads: Vec::new(),
            window_unknown: Vec::new(),
            dead: Vec::new(),
            t,
            model,
        }
    }

    /// A new configuration: list its candidates into `lists[depth]`, and return a read
    /// that succeeds, if one can go next (taken at once, without branching).
    /// `remaining > 0`, so a return event is listed after the head, and the walk over
    /// calls meets it before the end of the list.
    fn list(&mut self) -> Option<Chosen> {
        let t = self.t;
        let ops = &t.ops[..];
        let state = self.state;
        let depth = self.stack.len();
        let mut chosen = None;
        if self.lists.len() <= depth {
            self.lists.push(Vec::new());
        }
        let mut list = std::mem::take(&mut self.lists[depth]);
        list.clear();
        let mut node = self.links.next[NIL as usize];
        let mut bound = u64::MAX;
        while node != NIL {
            let (time, is_return, op) = t.events[node as usize - 1];
            self.steps += 1;
            if is_return {
                bound = time;
                break;
            }
            if !t.read_only[op] {
                list.push(op);
            } else if let Some(next) = self.model.step(state, &ops[op].step) {
                chosen = Some((op, next, 0, true));
                break;
            } else {
                self.failed_reads.push(op);
            }
            node = self.links.next[node as usize];
        }
        debug_assert!(node != NIL);
        // Right after an unknown operation, a blind write (put or delete) would erase its
        // effect before anything saw it; the same order without the unknown operation is
        // tried from the configuration before it.
        let after_unknown = self.stack.last().is_some_and(|f| ops[f.op].ret.is_none());
        if chosen.is_none() && after_unknown {
            list.retain(|&op| !ops[op].step.is_blind_write());
        }
        if chosen.is_none() {
            list.sort_unstable_by_key(|&op| t.priority[op]);
            let mut node = self.ulinks.next[NIL as usize];
            while node != NIL && t.unknown[node as usize - 1].0 <= bound {
                self.window_unknown.push(t.unknown[node as usize - 1].1);
                node = self.ulinks.next[node as usize];
            }
            let known = list.len();
            let mut excuse_listed = false;
            for &op in &self.window_unknown {
                self.steps += 1;
                if after_unknown && ops[op].step.is_blind_write() {
                    continue;
                }
                // An unknown operation that changes nothing now is as good as never
                // taking effect, which the configuration without it covers.
                if self
                    .model
                    .step(state, &ops[op].step)
                    .is_none_or(|after| after == state)
                {
                    continue;
                }
                if t.excuse[op] {
                    // Only the first available: the others are interchangeable.
                    if excuse_listed {
                        continue;
                    }
                    excuse_listed = true;
                }
                if t.has_appends
                    || unblocks(
                        op,
                        state,
                        self.model,
                        ops,
                        [
                            &self.failed_reads[..],
                            &list[..known],
                            &self.window_unknown[..],
                        ],
                    )
                {
                    list.push(op);
                }
            }
            self.window_unknown.clear();
            unreachable_reads(
                state,
                self.model,
                ops,
                (&self.links, &t.events),
                (&self.ulinks, &t.unknown),
                &mut self.steps,
                &mut self.dead,
            );
            if !self.dead.is_empty() {
                list.clear();
            }
        }
        self.failed_reads.clear();
        self.lists[depth] = list;
        chosen
    }

    /// The cache key (into `key`) of the configuration after linearizing `op`, leaving
    /// `next`; whether that configuration is new (neither cached nor dominated).
    fn unexplored(&mut self, op: usize, next: ValueId) -> bool {
        let rank = self.t.rank[op];
        self.linearized.insert(rank);
        self.linearized.key(next, &mut self.key);
        self.linearized.remove(rank);
        !self.cache.contains(&self.key)
            && !self.dominance.dominated(op, self.t.known_rank[op], next)
    }

    /// Try the listed candidates of the current configuration from `pos` on; the first
    /// the model accepts and that leads somewhere new.
    fn next_listed(&mut self, mut pos: usize) -> Option<Chosen> {
        let depth = self.stack.len();
        while pos < self.lists[depth].len() {
            let op = self.lists[depth][pos];
            pos += 1;
            self.steps += 1;
            if let Some(next) = self.model.step(self.state, &self.t.ops[op].step)
                && self.unexplored(op, next)
            {
                return Some((op, next, pos, false));
            }
        }
        None
    }

    /// A forced read: if the configuration after it is known to fail, so does this one.
    fn unless_explored(&mut self, chosen: Chosen) -> Option<Chosen> {
        let (op, next, _, _) = chosen;
        self.unexplored(op, next).then_some(chosen)
    }

    /// Linearize the chosen operation (`key` holds the new configuration). False if the
    /// cache is full: the search must stop.
    fn push(&mut self, (op, next, pos, forced): Chosen) -> bool {
        let t = self.t;
        self.dead.clear();
        if self.cache.insert(&self.key) == Inserted::Full {
            return false;
        }
        self.linearized.insert(t.rank[op]);
        self.dominance.push(op, t.known_rank[op]);
        self.stack.push(Frame {
            op,
            state_before: self.state,
            next: pos,
            forced,
        });
        self.state = next;
        if t.ops[op].ret.is_some() {
            self.links.remove(t.call_node[op]);
            self.links.remove(t.return_node[op]);
            self.remaining -= 1;
        } else {
            self.ulinks.remove(t.unknown_node[op]);
        }
        true
    }

    /// Every candidate of this configuration has been tried: keep it as a
    /// counterexample if it is the best of its kind. One whose candidates were all tried
    /// is kept if it is the deepest abandoned: then its candidates failed in the model (a
    /// success would have gone deeper), but for those skipped as dominated. One cut short
    /// by a dead read is kept if that read returns the latest (then the deepest). The
    /// search must explore the right path too, and a stale read is found dead there; dead
    /// reads on wrong paths come earlier.
    fn note_failure(&mut self) {
        let t = self.t;
        let depth = self.stack.len();
        match self.dead.first() {
            None => {
                if self.deepest.key.is_none_or(|(d, _)| depth as u64 > d) {
                    let mut stuck = candidates(&self.links, &t.events);
                    // Those the model rejects: all of them, unless some were skipped as
                    // dominated (then keep them all, which still explains: each leads
                    // only to dead ends).
                    let rejected: Vec<usize> = stuck
                        .iter()
                        .copied()
                        .filter(|&op| self.model.step(self.state, &t.ops[op].step).is_none())
                        .collect();
                    if !rejected.is_empty() {
                        stuck = rejected;
                    }
                    let bound = stuck
                        .iter()
                        .filter_map(|&op| t.ops[op].ret)
                        .min()
                        .unwrap_or(u64::MAX);
                    self.deepest.take((depth as u64, bound), &self.stack, stuck);
                }
            }
            Some(&read) => {
                let key = (t.ops[read].ret.unwrap_or(u64::MAX), depth as u64);
                if self.latest_dead.key.is_none_or(|k| key > k) {
                    self.latest_dead.take(key, &self.stack, self.dead.clone());
                }
            }
        }
        self.dead.clear();
    }

    /// Backtrack past every forced read: the current configuration failed (this one, or
    /// the one a forced read was taken in). Where to resume in the list of the
    /// configuration returned to, or `None` when the stack is empty: no linearization.
    fn backtrack(&mut self) -> Option<usize> {
        let t = self.t;
        loop {
            self.dominance.failed(self.state);
            let frame = self.stack.pop()?;
            self.deepest.popped(self.stack.len());
            self.latest_dead.popped(self.stack.len());
            let op = frame.op;
            self.state = frame.state_before;
            self.linearized.remove(t.rank[op]);
            self.dominance.pop(op, t.known_rank[op]);
            if t.ops[op].ret.is_some() {
                self.links.restore(t.return_node[op]);
                self.links.restore(t.call_node[op]);
                self.remaining += 1;
            } else {
                self.ulinks.restore(t.unknown_node[op]);
            }
            if !frame.forced {
                return Some(frame.next);
            }
        }
    }

    /// The explanation that reaches later in real time: a dead read by its return, a
    /// stuck configuration by its first pending return (which one of its stuck
    /// operations has).
    fn failure(&mut self) -> Outcome {
        let best = match (self.latest_dead.key, self.deepest.key) {
            (Some((dead_time, _)), Some((_, bound))) if dead_time >= bound => &mut self.latest_dead,
            (Some(_), None) => &mut self.latest_dead,
            _ => &mut self.deepest,
        };
        Outcome::NotLinearizable {
            prefix: std::mem::take(&mut best.prefix),
            stuck: std::mem::take(&mut best.stuck),
        }
    }
}
