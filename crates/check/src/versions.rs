//! A witness built from the version order that unique writes reveal, for keys the
//! polynomial decision ([`crate::unique`]) does not cover: cas, appends, deletes and
//! "absent" reads mixed on one key, as the simulator's workload writes them.
//!
//! When every put and swapping cas writes a value nobody else writes and every append
//! adds a token nobody else adds, each value a get returns names the write that
//! produced it, and more: a value built by appends names, token by token, every append
//! that made it and the write it started from (Elle's insight for list-append
//! histories: Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from
//! Experimental Observations", VLDB 2020), and a swapping cas names the write whose
//! value it expected. So most writes have a known immediate predecessor in the order of
//! versions, and the writes fall into *chains* that any linearization must keep
//! contiguous, each write followed by the gets of its value. Chains are then ordered as
//! Gibbons & Korach order the blocks of a read-mapped register ("Testing shared
//! memories", SIAM J. Comput. 1997; see [`crate::unique`]): chain A must precede chain
//! B when some operation of A returned before some operation of B was called. What
//! stays ambiguous — which delete an "absent" read or an append to an absent key
//! follows, and where a cas that did not swap saw something other than its expected
//! value — is settled greedily: each such operation goes into the earliest place in
//! its interval where the state allows it.
//!
//! # Why it is sound
//!
//! This module only ever answers "linearizable, here is the order", and only after
//! replaying that order against the sequential model and real time ([`replays`]):
//! every completed operation exactly once, each of unknown outcome at most once, no
//! operation after one that returned before it was called, and every result the one
//! the model gives. A replayed order *is* a linearization, whatever guesses built it,
//! so a wrong guess (a token read the wrong way, a greedy choice that paints itself
//! into a corner, an actual violation) costs only the fallback: it answers `None` and
//! the search decides. It never says "not linearizable"; violations are the search's
//! and the unique-value decision's to prove.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Call, Operation, Outcome, Ret};

/// Return time as the search sees it: `u64::MAX` for an unknown outcome or an ok
/// without completion, never before the call.
pub(crate) fn ret_of(op: &Operation) -> u64 {
    match op.outcome {
        Outcome::Ok(_) => op.complete_ns.unwrap_or(u64::MAX).max(op.invoke_ns),
        _ => u64::MAX,
    }
}

/// What must come immediately before a write in the order of versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pred {
    /// Anything (a put, a delete, an append nobody saw the result of).
    Free,
    /// The key absent: the initial state or a delete.
    Absent,
    /// This write (an index into the key's operations).
    Write(usize),
}

/// The writes of one key, indexed by what they write.
struct Writers<'a> {
    /// Put values and swapping cas's new values -> the write.
    atoms: BTreeMap<&'a str, usize>,
    /// Append tokens -> the append.
    tokens: BTreeMap<&'a str, usize>,
    /// Observed states resolved so far -> their writer.
    resolved: BTreeMap<&'a str, usize>,
    /// Appends whose result was observed -> the state they appended to ("" = absent).
    appended_to: BTreeMap<usize, &'a str>,
}

impl<'a> Writers<'a> {
    /// `None` when two writes write the same thing (no read-mapping).
    fn new(ops: &[&'a Operation]) -> Option<Writers<'a>> {
        let mut atoms = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for (i, o) in ops.iter().enumerate() {
            let taken = match (&o.call, &o.outcome) {
                (Call::Put { value, .. }, _) => atoms.insert(value.as_str(), i).is_some(),
                (Call::Cas { new, .. }, Outcome::Ok(Ret::Cas(true)) | Outcome::Unknown) => {
                    atoms.insert(new.as_str(), i).is_some()
                }
                (Call::Append { value, .. }, _) if !value.is_empty() => {
                    tokens.insert(value.as_str(), i).is_some()
                }
                (Call::Append { .. }, _) => true,
                _ => false,
            };
            if taken {
                return None;
            }
        }
        Some(Writers {
            atoms,
            tokens,
            resolved: BTreeMap::new(),
            appended_to: BTreeMap::new(),
        })
    }

    /// Whether `prefix` looks like a state: absent, a written value, or ending in a
    /// token. Used to choose between tokens that are suffixes of one another.
    fn plausible(&self, prefix: &str) -> bool {
        prefix.is_empty()
            || self.atoms.contains_key(prefix)
            || (0..prefix.len())
                .any(|k| prefix.is_char_boundary(k) && self.tokens.contains_key(&prefix[k..]))
    }

    /// The write that produced the observed state `s`, and every state it was built
    /// from, recorded; `None` if no write could have produced it.
    fn resolve(&mut self, s: &'a str) -> Option<usize> {
        let mut first = None;
        let mut next = Some(s);
        while let Some(s) = next.take() {
            if let Some(&w) = self.resolved.get(s) {
                first.get_or_insert(w);
                break;
            }
            let w = if let Some(&w) = self.atoms.get(s) {
                w
            } else {
                // The longest token that is a suffix and leaves a plausible state.
                let (k, w) = (0..s.len())
                    .filter(|&k| s.is_char_boundary(k))
                    .filter_map(|k| self.tokens.get(&s[k..]).map(|&w| (k, w)))
                    .find(|&(k, _)| self.plausible(&s[..k]))?;
                self.appended_to.insert(w, &s[..k]);
                if k > 0 {
                    next = Some(&s[..k]);
                }
                w
            };
            self.resolved.insert(s, w);
            first.get_or_insert(w);
        }
        first
    }
}

#[cfg(test)]
thread_local! {
    /// Set by tests that pin the search's own step counts: the witness stays out.
    pub(crate) static OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A linearization of one key's operations (indices into `ops`) built from the version
/// order, replayed before it is returned; `None` if none was found this way (the
/// search decides then). See the module documentation.
pub(crate) fn witness(ops: &[&Operation]) -> Option<Vec<usize>> {
    #[cfg(test)]
    if OFF.with(std::cell::Cell::get) {
        return None;
    }
    let mut writers = Writers::new(ops)?;
    // The state each get saw, and each swapping cas expected, names its writer.
    let mut read_of: Vec<Option<usize>> = vec![None; ops.len()];
    let mut pred: Vec<Option<Pred>> = vec![None; ops.len()];
    for (i, o) in ops.iter().enumerate() {
        match (&o.call, &o.outcome) {
            (Call::Get { .. }, Outcome::Ok(Ret::Value(Some(v)))) => {
                read_of[i] = Some(writers.resolve(v)?);
            }
            (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(true))) => {
                pred[i] = Some(match expected {
                    Some(e) => Pred::Write(writers.resolve(e)?),
                    None => Pred::Absent,
                });
            }
            _ => {}
        }
    }
    // A cas of unknown outcome whose value somebody saw swapped: what it expected was
    // seen too. Until nothing new is seen.
    loop {
        let seen: BTreeSet<usize> = writers.resolved.values().copied().collect();
        let mut more = false;
        for &i in &seen {
            if let (
                Call::Cas {
                    expected: Some(e), ..
                },
                Outcome::Unknown,
            ) = (&ops[i].call, &ops[i].outcome)
                && !writers.resolved.contains_key(e.as_str())
            {
                writers.resolve(e)?;
                more = true;
            }
        }
        if !more {
            break;
        }
    }
    // The writes that took effect: every completed one, and those of unknown outcome
    // whose result somebody saw (the others are left out: they never took effect).
    let observed: BTreeSet<usize> = writers.resolved.values().copied().collect();
    for (i, o) in ops.iter().enumerate() {
        let known = matches!(o.outcome, Outcome::Ok(_));
        pred[i] = match (&o.call, &o.outcome) {
            (Call::Get { .. }, _) | (Call::Cas { .. }, Outcome::Ok(Ret::Cas(false))) => None,
            // A delete of unknown outcome is kept: it may be what an "absent" read saw.
            (Call::Delete { .. }, _) => Some(Pred::Free),
            _ if !known && !observed.contains(&i) => None,
            (Call::Put { .. }, _) => Some(Pred::Free),
            (Call::Append { .. }, _) => Some(match writers.appended_to.get(&i) {
                None => Pred::Free,
                Some(&"") => Pred::Absent,
                Some(&s) => Pred::Write(*writers.resolved.get(s)?),
            }),
            (Call::Cas { expected, .. }, Outcome::Unknown) => Some(match expected {
                Some(e) => Pred::Write(writers.resolve(e)?),
                None => Pred::Absent,
            }),
            (Call::Cas { .. }, Outcome::Ok(Ret::Cas(true))) => pred[i],
            _ => return None,
        };
    }
    // A get that returned "absent" is taken to follow the delete called latest before
    // it returned (those before it in the history are as good as gone).
    let mut deletes: Vec<(u64, usize)> = (0..ops.len())
        .filter(|&d| matches!(ops[d].call, Call::Delete { .. }) && pred[d].is_some())
        .map(|d| (ops[d].invoke_ns, d))
        .collect();
    deletes.sort_unstable();
    let mut by_return: Vec<(u64, usize)> =
        deletes.iter().map(|&(_, d)| (ret_of(ops[d]), d)).collect();
    by_return.sort_unstable();
    // Gets of "absent" called before anything else returned saw the initial state:
    // they go first.
    let absent_read = |o: &Operation| {
        matches!(
            (&o.call, &o.outcome),
            (Call::Get { .. }, Outcome::Ok(Ret::Value(None)))
        )
    };
    let first_return = ops
        .iter()
        .filter(|o| !absent_read(o))
        .map(|o| ret_of(o))
        .min()
        .unwrap_or(u64::MAX);
    let mut initial: Vec<usize> = (0..ops.len())
        .filter(|&r| absent_read(ops[r]) && ops[r].invoke_ns <= first_return)
        .collect();
    initial.sort_by_key(|&r| (ops[r].invoke_ns, r));
    let mut placed = vec![false; ops.len()];
    for &r in &initial {
        placed[r] = true;
    }
    for (r, o) in ops.iter().enumerate() {
        if let (Call::Get { .. }, Outcome::Ok(Ret::Value(None))) = (&o.call, &o.outcome) {
            if placed[r] {
                continue;
            }
            // The delete that returned last before the get did, else the one called
            // last before it returned.
            let done = by_return.partition_point(|&(d, _)| d <= ret_of(o));
            let called = deletes.partition_point(|&(c, _)| c <= ret_of(o));
            if done > 0 {
                read_of[r] = Some(by_return[done - 1].1);
            } else if called > 0 {
                read_of[r] = Some(deletes[called - 1].1);
            }
        }
    }
    let chains = chains(&pred)?;
    let (order, deferred) = order_chains(ops, &chains, &pred, &read_of)?;
    for r in deferred {
        read_of[r] = None;
    }
    let order = initial.into_iter().chain(order).collect();
    let order = insert_observers(ops, order, &read_of, &placed, &mut writers)?;
    replays(ops, &order).then_some(order)
}

/// The writes that took effect (those with a `pred`), grouped into chains: each write
/// after the one it must immediately follow. `None` if two writes must follow the same
/// one, or the links go round in a circle.
fn chains(pred: &[Option<Pred>]) -> Option<Vec<Vec<usize>>> {
    let mut succ: Vec<Option<usize>> = vec![None; pred.len()];
    for (i, p) in pred.iter().enumerate() {
        if let Some(Pred::Write(w)) = p
            && (pred[*w].is_none() || succ[*w].replace(i).is_some())
        {
            return None;
        }
    }
    let mut out = Vec::new();
    let mut placed = 0;
    for (i, p) in pred.iter().enumerate() {
        if matches!(p, Some(Pred::Free | Pred::Absent)) {
            let mut chain = vec![i];
            let mut at = i;
            while let Some(n) = succ[at] {
                chain.push(n);
                at = n;
            }
            placed += chain.len();
            out.push(chain);
        }
    }
    // A write left out is on a cycle.
    (placed == pred.iter().filter(|p| p.is_some()).count()).then_some(out)
}

/// How far back [`order_chains`] looks for a chain ending in a delete to move up.
const MOVE_BACK: usize = 64;

/// The chains in an order real time allows (Gibbons & Korach's, on chains instead of
/// single blocks), each write followed by the gets of its value in call order. A chain
/// that starts from an absent key goes first or right after a chain that ends in a
/// delete. `None` if the greedy choice gets stuck.
fn order_chains(
    ops: &[&Operation],
    chains: &[Vec<usize>],
    pred: &[Option<Pred>],
    read_of: &[Option<usize>],
) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut reads: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (r, w) in read_of.iter().enumerate() {
        if let Some(w) = w {
            // A read of a write that never took effect: no order.
            pred[*w]?;
            reads.entry(*w).or_default().push(r);
        }
    }
    for rs in reads.values_mut() {
        rs.sort_by_key(|&r| (ops[r].invoke_ns, r));
    }
    let mut blocks: Vec<Vec<usize>> = chains.iter().map(|c| members(c, &reads)).collect();
    let mut deferred = Vec::new();
    let mut lo: Vec<u64> = blocks
        .iter()
        .map(|b| b.iter().map(|&i| ret_of(ops[i])).min().unwrap_or(u64::MAX))
        .collect();
    let mut hi: Vec<u64> = blocks
        .iter()
        .map(|b| b.iter().map(|&i| ops[i].invoke_ns).max().unwrap_or(0))
        .collect();
    let needs_absent = |b: usize| pred[chains[b][0]] == Some(Pred::Absent);
    let ends_absent = |b: usize| {
        let last = chains[b].last().expect("a chain");
        matches!(ops[*last].call, Call::Delete { .. })
    };
    let mut by_lo: BTreeSet<(u64, usize)> = (0..blocks.len()).map(|b| (lo[b], b)).collect();
    let mut by_hi: BTreeSet<(u64, usize)> = (0..blocks.len()).map(|b| (hi[b], b)).collect();
    // The key starts absent.
    let mut absent = true;
    // The chains in order.
    let mut placed: Vec<usize> = Vec::new();
    while let Some(&(m1, first)) = by_lo.first() {
        let m2 = by_lo.iter().nth(1).map_or(u64::MAX, |&(l, _)| l);
        // A chain may go next when no other remaining chain has an operation that
        // returned before one of its operations was called. Of those, one that needs
        // the key absent when it is; otherwise the one called latest earliest.
        let mut pick = None;
        for &(h, b) in &by_hi {
            if h > m2 {
                break;
            }
            if h > if b == first { m2 } else { m1 } {
                continue;
            }
            if needs_absent(b) {
                if absent {
                    pick = Some(b);
                    break;
                }
            } else if pick.is_none() {
                pick = Some(b);
                if !absent {
                    break;
                }
            }
        }
        let Some(b) = pick else {
            // Stuck because the chain with the earliest return needs the key absent:
            // a chain that ends in a delete and may go now goes first.
            if needs_absent(first) && !absent {
                let delete = by_hi
                    .iter()
                    .take_while(|&&(h, _)| h <= m1)
                    .map(|&(_, b)| b)
                    .find(|&b| b != first && ends_absent(b) && !needs_absent(b));
                if let Some(d) = delete {
                    by_lo.remove(&(lo[d], d));
                    by_hi.remove(&(hi[d], d));
                    placed.push(d);
                    absent = true;
                    continue;
                }
                // Else it goes back, right after the last chain placed that ends in a
                // delete, if every chain placed since may follow it and the one right
                // after does not need the delete itself.
                let mut earliest_after = u64::MAX;
                let mut at = None;
                for p in (0..placed.len()).rev() {
                    let b = placed[p];
                    if ends_absent(b) && placed.get(p + 1).is_none_or(|&n| !needs_absent(n)) {
                        at = Some(p + 1);
                        break;
                    }
                    earliest_after = earliest_after.min(lo[b]);
                    if earliest_after < hi[first] {
                        break;
                    }
                }
                if let Some(p) = at
                    && earliest_after >= hi[first]
                {
                    by_lo.remove(&(lo[first], first));
                    by_hi.remove(&(hi[first], first));
                    placed.insert(p, first);
                    continue;
                }
                // Else a chain placed lately that ends in a delete moves up, to just
                // before it, if every chain placed after it may precede it.
                let mut latest_call_after = 0;
                let mut found = None;
                for p in (placed.len().saturating_sub(MOVE_BACK)..placed.len()).rev() {
                    let d = placed[p];
                    if ends_absent(d)
                        && !needs_absent(d)
                        && placed.get(p + 1).is_none_or(|&n| !needs_absent(n))
                        && latest_call_after <= lo[d]
                    {
                        found = Some(p);
                        break;
                    }
                    latest_call_after = latest_call_after.max(hi[d]);
                }
                if let Some(p) = found {
                    let d = placed.remove(p);
                    placed.push(d);
                    absent = true;
                    continue;
                }
            }
            // Stuck: the chain with the earliest return was called too late for
            // something that must come before it. If "absent" reads make it so, they
            // saw a later delete: take them out, to be put in where the state is absent.
            let late: Vec<usize> = blocks[first]
                .iter()
                .copied()
                .filter(|&i| {
                    ops[i].invoke_ns > m2
                        && matches!(
                            (&ops[i].call, &ops[i].outcome),
                            (Call::Get { .. }, Outcome::Ok(Ret::Value(None)))
                        )
                })
                .collect();
            if late.is_empty() {
                return None;
            }
            by_lo.remove(&(lo[first], first));
            by_hi.remove(&(hi[first], first));
            blocks[first].retain(|i| !late.contains(i));
            lo[first] = blocks[first]
                .iter()
                .map(|&i| ret_of(ops[i]))
                .min()
                .unwrap_or(u64::MAX);
            hi[first] = blocks[first]
                .iter()
                .map(|&i| ops[i].invoke_ns)
                .max()
                .unwrap_or(0);
            by_lo.insert((lo[first], first));
            by_hi.insert((hi[first], first));
            deferred.extend(late);
            continue;
        };
        by_lo.remove(&(lo[b], b));
        by_hi.remove(&(hi[b], b));
        placed.push(b);
        absent = ends_absent(b);
    }
    let order = placed
        .iter()
        .flat_map(|&b| blocks[b].iter().copied())
        .collect();
    Some((order, deferred))
}

/// A chain's writes, each followed by the gets of its value.
fn members(chain: &[usize], reads: &BTreeMap<usize, Vec<usize>>) -> Vec<usize> {
    let mut m = Vec::with_capacity(chain.len());
    for &w in chain {
        m.push(w);
        m.extend(reads.get(&w).into_iter().flatten());
    }
    m
}

/// `order` with the operations that see a state without naming its writer put in:
/// gets that returned "absent" and cas that did not swap. Each goes into the earliest
/// gap that real time allows (after every operation that returned before it was
/// called, and after such operations of its own kind) where the state fits it: absent
/// for the get, anything but the expected value for the cas. `None` if one fits
/// nowhere.
fn insert_observers<'a>(
    ops: &[&'a Operation],
    order: Vec<usize>,
    read_of: &[Option<usize>],
    placed: &[bool],
    writers: &mut Writers<'a>,
) -> Option<Vec<usize>> {
    // What an observer needs of the state, as the write that made it (`None`: absent).
    enum Needs {
        Absent,
        Not(Option<usize>),
    }
    let mut observers: Vec<(usize, Needs)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        match (&o.call, &o.outcome) {
            (Call::Get { .. }, Outcome::Ok(Ret::Value(None)))
                if read_of[i].is_none() && !placed[i] =>
            {
                observers.push((i, Needs::Absent));
            }
            (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(false))) => {
                let not = match expected {
                    None => None,
                    // A value nobody could have written: any state will do (and the
                    // replay checks that guess).
                    Some(e) => match writers.resolve(e) {
                        Some(w) => Some(w),
                        None => Some(usize::MAX),
                    },
                };
                observers.push((i, Needs::Not(not)));
            }
            _ => {}
        }
    }
    if observers.is_empty() {
        return Some(order);
    }
    // state[g]: the write whose value the key holds after the first g operations of
    // `order` (`None`: absent).
    let mut state = Vec::with_capacity(order.len() + 1);
    state.push(None);
    for &i in &order {
        let now = match ops[i].call {
            Call::Delete { .. } => None,
            Call::Get { .. } => *state.last().expect("initial state"),
            _ => Some(i),
        };
        state.push(now);
    }
    // Real time against `order`: an observer goes after every operation that returned
    // before its call, and before every operation called after its return.
    let mut by_ret: Vec<(u64, usize)> = order
        .iter()
        .enumerate()
        .map(|(g, &i)| (ret_of(ops[i]), g))
        .collect();
    by_ret.sort_unstable();
    let mut prefix_max = Vec::with_capacity(by_ret.len());
    let mut m = 0;
    for &(_, g) in &by_ret {
        m = m.max(g + 1);
        prefix_max.push(m);
    }
    let mut by_call: Vec<(u64, usize)> = order
        .iter()
        .enumerate()
        .map(|(g, &i)| (ops[i].invoke_ns, g))
        .collect();
    by_call.sort_unstable();
    let mut suffix_min = vec![order.len(); by_call.len() + 1];
    for k in (0..by_call.len()).rev() {
        suffix_min[k] = suffix_min[k + 1].min(by_call[k].1);
    }
    observers.sort_by_key(|&(i, _)| (ops[i].invoke_ns, i));
    // Observers placed so far, by return time, for real time among observers.
    let mut placed: Vec<(u64, usize)> = Vec::new();
    let mut gap_of: Vec<(usize, usize)> = Vec::with_capacity(observers.len());
    for (i, needs) in &observers {
        let (call, ret) = (ops[*i].invoke_ns, ret_of(ops[*i]));
        let after = by_ret.partition_point(|&(r, _)| r < call);
        let mut lo = if after == 0 { 0 } else { prefix_max[after - 1] };
        lo = lo.max(
            placed
                .iter()
                .filter(|&&(r, _)| r < call)
                .map(|&(_, g)| g)
                .max()
                .unwrap_or(0),
        );
        let before = by_call.partition_point(|&(c, _)| c <= ret);
        let hi = suffix_min[before];
        let fits = |g: usize| match needs {
            Needs::Absent => state[g].is_none(),
            Needs::Not(w) => state[g] != *w,
        };
        let g = (lo..=hi).find(|&g| fits(g))?;
        placed.push((ret, g));
        gap_of.push((g, *i));
    }
    // Stable: observers in one gap stay in call order.
    gap_of.sort_by_key(|&(g, _)| g);
    let mut out = Vec::with_capacity(order.len() + gap_of.len());
    let mut next = gap_of.into_iter().peekable();
    for (g, &i) in order.iter().enumerate() {
        while let Some((_, o)) = next.next_if(|&(at, _)| at == g) {
            out.push(o);
        }
        out.push(i);
    }
    out.extend(next.map(|(_, o)| o));
    Some(out)
}

/// Whether `order` is a linearization of `ops`: every completed operation in it once,
/// each of unknown outcome at most once, real time respected, and every result the
/// one the model (see the crate documentation) gives.
pub(crate) fn replays(ops: &[&Operation], order: &[usize]) -> bool {
    let mut seen = vec![false; ops.len()];
    for &i in order {
        if i >= ops.len() || std::mem::replace(&mut seen[i], true) {
            return false;
        }
    }
    if (0..ops.len()).any(|i| matches!(ops[i].outcome, Outcome::Ok(_)) && !seen[i]) {
        return false;
    }
    let mut min_ret_after = u64::MAX;
    for &i in order.iter().rev() {
        if min_ret_after < ops[i].invoke_ns {
            return false;
        }
        min_ret_after = min_ret_after.min(ret_of(ops[i]));
    }
    let mut state: Option<String> = None;
    for &i in order {
        let ret = match &ops[i].outcome {
            Outcome::Ok(r) => Some(r),
            Outcome::Unknown => None,
            Outcome::Fail => return false,
        };
        let fits = match &ops[i].call {
            Call::Get { .. } => match ret {
                Some(Ret::Value(v)) => *v == state,
                _ => false,
            },
            Call::Put { value, .. } => {
                state = Some(value.clone());
                matches!(ret, None | Some(Ret::Done))
            }
            Call::Delete { .. } => {
                state = None;
                matches!(ret, None | Some(Ret::Done))
            }
            Call::Append { value, .. } => {
                state.get_or_insert_with(String::new).push_str(value);
                matches!(ret, None | Some(Ret::Done))
            }
            Call::Cas { expected, new, .. } => {
                let swaps = *expected == state;
                if swaps {
                    state = Some(new.clone());
                }
                match ret {
                    None => true,
                    Some(Ret::Cas(s)) => *s == swaps,
                    Some(_) => false,
                }
            }
            Call::Batch { .. } => false,
        };
        if !fits {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(id: u64, call: Call, invoke: u64, complete: u64, ret: Ret) -> Operation {
        Operation {
            id,
            process: id,
            call,
            invoke_ns: invoke,
            outcome: Outcome::Ok(ret),
            complete_ns: Some(complete),
        }
    }
    fn get(id: u64, v: Option<&str>, a: u64, b: u64) -> Operation {
        let ret = Ret::Value(v.map(str::to_owned));
        op(id, Call::Get { key: "k".into() }, a, b, ret)
    }
    fn append(id: u64, v: &str, a: u64, b: u64) -> Operation {
        let call = Call::Append {
            key: "k".into(),
            value: v.into(),
        };
        op(id, call, a, b, Ret::Done)
    }
    fn put(id: u64, v: &str, a: u64, b: u64) -> Operation {
        let call = Call::Put {
            key: "k".into(),
            value: v.into(),
        };
        op(id, call, a, b, Ret::Done)
    }
    fn cas(id: u64, e: Option<&str>, n: &str, swapped: bool, a: u64, b: u64) -> Operation {
        let call = Call::Cas {
            key: "k".into(),
            expected: e.map(str::to_owned),
            new: n.into(),
        };
        op(id, call, a, b, Ret::Cas(swapped))
    }
    fn delete(id: u64, a: u64, b: u64) -> Operation {
        op(id, Call::Delete { key: "k".into() }, a, b, Ret::Done)
    }
    fn refs(ops: &[Operation]) -> Vec<&Operation> {
        ops.iter().collect()
    }

    #[test]
    fn concurrent_appends_are_ordered_by_the_value_a_read_saw() {
        // Three overlapping appends; the read names their order: b, c, then a.
        let ops = [
            put(0, "x", 0, 1),
            append(1, "a ", 2, 10),
            append(2, "b ", 2, 10),
            append(3, "c ", 2, 10),
            get(4, Some("xb c a "), 11, 12),
            cas(5, Some("xb c a "), "y", true, 13, 14),
            cas(6, Some("x"), "z", false, 15, 16),
            delete(7, 17, 18),
            get(8, None, 19, 20),
            append(9, "d ", 21, 22),
            get(10, Some("d "), 23, 24),
        ];
        let order = witness(&refs(&ops)).expect("decided");
        assert_eq!(order, vec![0, 2, 3, 1, 4, 5, 6, 7, 8, 9, 10]);
        assert!(replays(&refs(&ops), &order));
    }

    #[test]
    fn a_witness_is_never_claimed_for_planted_violations() {
        // A stale read: "a" overwritten by "b" before the get began.
        let stale = [
            put(0, "a", 0, 1),
            put(1, "b", 2, 3),
            get(2, Some("a"), 4, 5),
        ];
        // A lost write: an acknowledged append missing from a later read.
        let lost = [
            put(0, "x", 0, 1),
            append(1, "a ", 2, 3),
            append(2, "b ", 4, 5),
            get(3, Some("xb "), 6, 7),
        ];
        // Reordered appends: "a" returned before "b" was called, read as b then a.
        let reordered = [
            put(0, "x", 0, 1),
            append(1, "a ", 2, 3),
            append(2, "b ", 4, 5),
            get(3, Some("xb a "), 6, 7),
        ];
        for ops in [&stale[..], &lost[..], &reordered[..]] {
            assert!(!crate::brute::linearizable(ops), "{ops:?}");
            assert_eq!(witness(&refs(ops)), None, "{ops:?}");
        }
    }

    #[test]
    fn an_unknown_cas_that_was_seen_brings_in_the_unknown_write_it_expected() {
        let unknown = |o: Operation| Operation {
            outcome: Outcome::Unknown,
            complete_ns: None,
            ..o
        };
        let ops = [
            unknown(put(0, "a", 0, 1)),
            unknown(cas(1, Some("a"), "b", true, 2, 3)),
            get(2, Some("b"), 10, 11),
        ];
        assert_eq!(witness(&refs(&ops)), Some(vec![0, 1, 2]));
    }

    #[test]
    fn the_replay_rejects_wrong_orders() {
        let ops = [
            put(0, "x", 0, 1),
            append(1, "a ", 2, 3),
            get(2, Some("xa "), 4, 5),
        ];
        let r = refs(&ops);
        assert!(replays(&r, &[0, 1, 2]));
        assert!(!replays(&r, &[0, 2, 1]), "a read before its write");
        assert!(!replays(&r, &[0, 2]), "a completed write left out");
        assert!(!replays(&r, &[1, 0, 2]), "against real time");
        assert!(!replays(&r, &[0, 1, 1, 2]), "an operation twice");
    }

    /// A random small history on one key with the simulator's kinds of values (unique
    /// puts and cas values, unique append tokens), run sequentially at random
    /// linearization points inside random intervals (so it is linearizable), with one
    /// result perhaps replaced by an earlier state (so it perhaps is not).
    fn arb_history() -> impl Strategy<Value = Vec<Operation>> {
        let one = (0u8..12, 0u64..6, 0u64..6, 0usize..8);
        (prop::collection::vec(one, 1..8), 0usize..16, 0usize..8).prop_map(
            |(raw, victim, earlier)| {
                let mut state: Option<String> = None;
                let mut seen: Vec<Option<String>> = vec![None];
                let mut ops = Vec::new();
                for (i, &(kind, before, after, pick)) in raw.iter().enumerate() {
                    let point = 30 * i as u64 + 30;
                    let key = "k".to_owned();
                    let (call, ret) = match kind {
                        0..2 => {
                            let value = format!("v{i}");
                            state = Some(value.clone());
                            (Call::Put { key, value }, Ret::Done)
                        }
                        2..4 => {
                            let value = format!("{i}.t ");
                            state.get_or_insert_with(String::new).push_str(&value);
                            (Call::Append { key, value }, Ret::Done)
                        }
                        4 => {
                            state = None;
                            (Call::Delete { key }, Ret::Done)
                        }
                        5..7 => {
                            let expected = seen[pick % seen.len()].clone();
                            let new = format!("c{i}");
                            let swaps = expected == state;
                            if swaps {
                                state = Some(new.clone());
                            }
                            (Call::Cas { key, expected, new }, Ret::Cas(swaps))
                        }
                        _ => (Call::Get { key }, Ret::Value(state.clone())),
                    };
                    seen.push(state.clone());
                    ops.push(Operation {
                        id: i as u64,
                        process: i as u64,
                        call,
                        invoke_ns: point - before * 4,
                        outcome: Outcome::Ok(ret),
                        complete_ns: Some(point + after * 4),
                    });
                }
                // Every other history: one get returns an earlier state instead.
                let gets: Vec<usize> = (0..ops.len())
                    .filter(|&i| matches!(ops[i].call, Call::Get { .. }))
                    .collect();
                if victim % 2 == 0
                    && !gets.is_empty()
                    && let Outcome::Ok(Ret::Value(v)) =
                        &mut ops[gets[victim / 2 % gets.len()]].outcome
                {
                    *v = seen[earlier % seen.len()].clone();
                }
                ops
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Whenever a witness is returned, the brute-force oracle agrees the history is
        /// linearizable, and the order replays.
        #[test]
        fn a_witness_agrees_with_brute_force(ops in arb_history()) {
            let r = refs(&ops);
            if let Some(order) = witness(&r) {
                prop_assert!(crate::brute::linearizable(&ops), "{:?} {:?}", ops, order);
                prop_assert!(replays(&r, &order));
            }
        }
    }

    /// The generator is not vacuous: it makes violations, and the witness decides most
    /// of the linearizable histories it makes.
    #[test]
    fn the_generator_makes_both_and_the_witness_decides_most() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut linearizable, mut decided, mut violations) = (0, 0, 0);
        for _ in 0..1000 {
            let ops = arb_history()
                .new_tree(&mut runner)
                .expect("history")
                .current();
            if crate::brute::linearizable(&ops) {
                linearizable += 1;
                decided += usize::from(witness(&refs(&ops)).is_some());
            } else {
                violations += 1;
            }
        }
        assert!(violations > 50, "{violations}");
        assert!(
            decided * 10 > linearizable * 7,
            "{decided} of {linearizable}"
        );
    }
}
