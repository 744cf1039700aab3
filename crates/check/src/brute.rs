//! A brute-force linearizability checker for tiny histories, written independently of the
//! search (no per-key split, no interning, no cache) to serve as its oracle in tests.
//!
//! It tries every subset of the unknown-outcome operations (those left out never took
//! effect) and every order of the chosen operations that respects real time, running a
//! plain map model over all keys at once.

use std::collections::BTreeMap;

use crate::history::{Call, Operation, Outcome, Ret};

/// Whether `a` must precede `b`: `a` returned (with a known outcome) strictly before `b`
/// was called. Equal times overlap.
fn precedes(a: &Operation, b: &Operation) -> bool {
    match (&a.outcome, a.complete_ns) {
        (Outcome::Ok(_), Some(done)) => done < b.invoke_ns,
        _ => false,
    }
}

/// Apply `op` to `state`; false if its recorded result is impossible there.
fn apply(state: &mut BTreeMap<String, String>, op: &Operation) -> bool {
    let ret = match &op.outcome {
        Outcome::Ok(r) => Some(r),
        Outcome::Unknown => None,
        Outcome::Fail => unreachable!("failed operations are filtered out"),
    };
    match &op.call {
        Call::Get { key } => match ret {
            Some(Ret::Value(v)) => state.get(key) == v.as_ref(),
            Some(_) => false,
            None => true,
        },
        Call::Put { key, value } => {
            state.insert(key.clone(), value.clone());
            matches!(ret, None | Some(Ret::Done))
        }
        Call::Delete { key } => {
            state.remove(key);
            matches!(ret, None | Some(Ret::Done))
        }
        Call::Append { key, value } => {
            state.entry(key.clone()).or_default().push_str(value);
            matches!(ret, None | Some(Ret::Done))
        }
        Call::Cas { key, expected, new } => {
            let matched = state.get(key) == expected.as_ref();
            if matched {
                state.insert(key.clone(), new.clone());
            }
            match ret {
                None => true,
                Some(Ret::Cas(swapped)) => *swapped == matched,
                Some(_) => false,
            }
        }
        // The whole batch, atomically (this oracle sees every key at once).
        Call::Batch { ops } => {
            let failed_cas = ops.iter().position(|w| match w {
                Call::Cas { key, expected, .. } => state.get(key) != expected.as_ref(),
                _ => false,
            });
            let fits = match ret {
                None => true,
                Some(Ret::Batch(at)) => *at == failed_cas.map(|i| i as u32),
                Some(_) => false,
            };
            if fits && failed_cas.is_none() {
                for w in ops {
                    let write = Operation {
                        call: w.clone(),
                        outcome: Outcome::Unknown,
                        ..op.clone()
                    };
                    apply(state, &write);
                }
            }
            fits
        }
    }
}

fn orders(ops: &[&Operation], used: &mut Vec<bool>, state: &BTreeMap<String, String>) -> bool {
    if used.iter().all(|&u| u) {
        return true;
    }
    for i in 0..ops.len() {
        if used[i] {
            continue;
        }
        // `i` may go next only if no unused operation must precede it.
        if (0..ops.len()).any(|j| !used[j] && j != i && precedes(ops[j], ops[i])) {
            continue;
        }
        let mut next = state.clone();
        if !apply(&mut next, ops[i]) {
            continue;
        }
        used[i] = true;
        let found = orders(ops, used, &next);
        used[i] = false;
        if found {
            return true;
        }
    }
    false
}

/// Whether `ops` is linearizable. Exponential: only for a handful of operations.
pub(crate) fn linearizable(ops: &[Operation]) -> bool {
    let live: Vec<&Operation> = ops.iter().filter(|o| o.outcome != Outcome::Fail).collect();
    let unknown: Vec<usize> = (0..live.len())
        .filter(|&i| live[i].outcome == Outcome::Unknown)
        .collect();
    assert!(live.len() <= 10, "brute force is for tiny histories");
    (0u32..1 << unknown.len()).any(|mask| {
        let chosen: Vec<&Operation> = live
            .iter()
            .enumerate()
            .filter(|(i, o)| {
                o.outcome != Outcome::Unknown
                    || mask & (1 << unknown.iter().position(|u| u == i).unwrap()) != 0
            })
            .map(|(_, o)| *o)
            .collect();
        orders(&chosen, &mut vec![false; chosen.len()], &BTreeMap::new())
    })
}
