//! What clients ask for: a random mix of get / put / delete / compare-and-swap
//! / append / batch over a small key space, and the translation between the
//! replica's wire types and the checker's history types.

use crate::rng::SimRng;
use kv::{Op, Output};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What clients ask for: the operation mix and how keys are chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadSpec {
    /// How many keys (drawn from the seed if not set).
    pub keys: Option<usize>,
    /// Percent of gets.
    pub gets: u32,
    /// Percent of puts.
    pub puts: u32,
    /// Percent of appends.
    pub appends: u32,
    /// Percent of compare-and-swaps.
    pub cas: u32,
    /// Percent of deletes.
    pub deletes: u32,
    /// Percent of batches: 2 or 3 writes on distinct keys, applied
    /// atomically (fewer when there are fewer keys). Unset: whatever the
    /// other kinds leave of 100% (so a file that names the other five,
    /// adding up to 100, has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<u32>,
    /// Percent of operations on key `k0` (a hot key); the rest are spread
    /// evenly. 0: every key equally likely.
    pub hot_key_percent: u32,
}

impl Default for WorkloadSpec {
    fn default() -> WorkloadSpec {
        WorkloadSpec {
            keys: None,
            gets: 38,
            puts: 18,
            appends: 14,
            cas: 16,
            deletes: 8,
            batches: None,
            hot_key_percent: 0,
        }
    }
}

impl WorkloadSpec {
    /// Percent of gets, puts, appends, compare-and-swaps and deletes.
    fn single_key_percent(&self) -> u32 {
        self.gets + self.puts + self.appends + self.cas + self.deletes
    }

    /// Percent of batches: as set, or what the others leave of 100.
    pub fn batch_percent(&self) -> u32 {
        self.batches
            .unwrap_or_else(|| 100u32.saturating_sub(self.single_key_percent()))
    }

    /// Refuses a mix that does not add up to 100, or out-of-range keys.
    pub fn validate(&self) -> Result<(), String> {
        let total = self.single_key_percent() + self.batch_percent();
        if total != 100 {
            return Err(format!("the operation mix adds up to {total}%, not 100%"));
        }
        if self.keys.is_some_and(|k| k == 0 || k > 10_000) {
            return Err("workload keys must be 1 to 10000".into());
        }
        if self.hot_key_percent > 100 {
            return Err("hot_key_percent must be at most 100".into());
        }
        Ok(())
    }
}

/// How many recently written values per key are remembered as candidates
/// for a compare-and-swap's expected value.
const RECENT_VALUES: usize = 4;

/// Draws operations.
pub struct Workload {
    rng: SimRng,
    keys: usize,
    spec: WorkloadSpec,
    /// Per process, how many values it has written (keeps values unique).
    written: BTreeMap<u64, u64>,
    /// Per key, values recently put or swapped in (not ground truth: just
    /// likely-current values, so that many compare-and-swaps succeed).
    recent: BTreeMap<usize, Vec<String>>,
}

impl Workload {
    /// A workload over `keys` keys drawing from `rng`, with the default mix.
    pub fn new(rng: SimRng, keys: usize) -> Workload {
        Workload::with_spec(rng, keys, WorkloadSpec::default())
    }

    /// A workload over `keys` keys with `spec`'s mix and key choice.
    pub fn with_spec(rng: SimRng, keys: usize, spec: WorkloadSpec) -> Workload {
        Workload {
            rng,
            keys: keys.max(1),
            spec,
            written: BTreeMap::new(),
            recent: BTreeMap::new(),
        }
    }

    /// The next operation for `process`.
    pub fn next_op(&mut self, process: u64) -> Op {
        let hot = self.rng.range(0, 100) < u64::from(self.spec.hot_key_percent);
        let k = if hot { 0 } else { self.rng.index(self.keys) };
        let key = format!("k{k}");
        let roll = self.rng.range(0, 100) as u32;
        let s = &self.spec;
        let (puts, appends, cas, deletes) = (
            s.gets + s.puts,
            s.gets + s.puts + s.appends,
            s.gets + s.puts + s.appends + s.cas,
            s.gets + s.puts + s.appends + s.cas + s.deletes,
        );
        match roll {
            r if r < s.gets => Op::Get { key },
            r if r >= deletes => self.batch(process, k),
            r if r < puts => {
                let value = self.fresh_value(process, k);
                Op::Put { key, value }
            }
            r if r < appends => {
                let n = self.bump(process);
                Op::Append {
                    key,
                    value: append_token(process, n),
                }
            }
            r if r < cas => {
                let expected = match self.recent.get(&k) {
                    Some(values) if !values.is_empty() && !self.rng.chance(0.15) => {
                        Some(values[self.rng.index(values.len())].clone())
                    }
                    _ => None,
                };
                let new = self.fresh_value(process, k);
                Op::Cas { key, expected, new }
            }
            _ => Op::Delete { key },
        }
    }

    /// A batch: the first key drawn, then 1 or 2 others (distinct), each
    /// with a put, append, compare-and-swap or delete.
    fn batch(&mut self, process: u64, first: usize) -> Op {
        let want = 2 + self.rng.index(2);
        let mut keys = vec![first];
        while keys.len() < want.min(self.keys) {
            let k = self.rng.index(self.keys);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let ops = keys
            .into_iter()
            .map(|k| {
                let key = format!("k{k}");
                match self.rng.index(4) {
                    0 => Op::Put {
                        key,
                        value: self.fresh_value(process, k),
                    },
                    1 => {
                        let n = self.bump(process);
                        Op::Append {
                            key,
                            value: append_token(process, n),
                        }
                    }
                    2 => {
                        let expected = self.recent.get(&k).and_then(|values| {
                            (!values.is_empty())
                                .then(|| values[self.rng.index(values.len())].clone())
                        });
                        Op::Cas {
                            key,
                            expected,
                            new: self.fresh_value(process, k),
                        }
                    }
                    _ => Op::Delete { key },
                }
            })
            .collect();
        Op::Batch { ops }
    }

    fn bump(&mut self, process: u64) -> u64 {
        let n = self.written.entry(process).or_insert(0);
        *n += 1;
        *n
    }

    fn fresh_value(&mut self, process: u64, key: usize) -> String {
        let n = self.bump(process);
        let value = format!("p{process}v{n}");
        let recent = self.recent.entry(key).or_default();
        if recent.len() == RECENT_VALUES {
            recent.remove(0);
        }
        recent.push(value.clone());
        value
    }
}

/// The token `process` appends as its `n`th value: short, so values stay small after
/// many appends, and bracketed, so that no token is a suffix of another (`1.158 ` is
/// one of `41.158 `) and no written value ends like a token. Then every value a get
/// returns splits one way only into the write it started from and the appends after
/// it, which is what lets the checker read the order of versions off it
/// (`check`'s version-order witness); with bare `{process}.{n} ` tokens, a value like
/// `p39v1641.158 ` was read as `p39v16` + `41.158 ` instead of `p39v164` + `1.158 `,
/// and the witness gave up on the key (seed 1 at 50 clients).
fn append_token(process: u64, n: u64) -> String {
    format!("[{process}.{n}]")
}

/// The checker's view of a client call.
pub fn to_call(op: &Op) -> check::Call {
    match op.clone() {
        Op::Get { key } => check::Call::Get { key },
        Op::Put { key, value } => check::Call::Put { key, value },
        Op::Delete { key } => check::Call::Delete { key },
        Op::Cas { key, expected, new } => check::Call::Cas { key, expected, new },
        Op::Append { key, value } => check::Call::Append { key, value },
        Op::Batch { ops } => check::Call::Batch {
            ops: ops.iter().map(to_call).collect(),
        },
    }
}

/// The checker's view of a successful result.
pub fn to_ret(output: Output) -> check::Ret {
    match output {
        Output::Value(v) => check::Ret::Value(v),
        Output::Done => check::Ret::Done,
        Output::Cas(swapped) => check::Ret::Cas(swapped),
        Output::Batch { aborted_at } => check::Ret::Batch(aborted_at),
    }
}

/// A short human description of an operation, for the trace.
pub fn describe(op: &Op) -> String {
    match op {
        Op::Get { key } => format!("get {key}"),
        Op::Put { key, value } => format!("put {key}={value}"),
        Op::Delete { key } => format!("delete {key}"),
        Op::Cas { key, expected, new } => match expected {
            Some(e) => format!("cas {key} {e}->{new}"),
            None => format!("cas {key} <absent>->{new}"),
        },
        Op::Append { key, value } => format!("append {key} {value:?}"),
        Op::Batch { ops } => {
            let parts: Vec<String> = ops.iter().map(describe).collect();
            format!("batch [{}]", parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Concern;

    #[test]
    fn the_mix_contains_every_kind_of_operation() {
        let mut w = Workload::new(SimRng::for_concern(1, Concern::Workload), 3);
        let mut kinds = [0usize; 6];
        for _ in 0..1_000 {
            let i = match w.next_op(0) {
                Op::Get { .. } => 0,
                Op::Put { .. } => 1,
                Op::Append { .. } => 2,
                Op::Cas { .. } => 3,
                Op::Delete { .. } => 4,
                Op::Batch { ops } => {
                    assert!(Op::Batch { ops }.validate().is_ok(), "a valid batch");
                    5
                }
            };
            kinds[i] += 1;
        }
        assert!(kinds.iter().all(|&k| k > 20), "{kinds:?}");
    }

    /// No token is a suffix of another (as `1.158 ` was of `41.158 `), and no put or
    /// cas value ends like a token: every value splits one way only into its first
    /// write and its appends.
    #[test]
    fn append_tokens_are_suffix_free_and_values_do_not_end_like_them() {
        let mut w = Workload::new(SimRng::for_concern(3, Concern::Workload), 1);
        let (mut tokens, mut values) = (Vec::new(), Vec::new());
        for p in 0..60 {
            for _ in 0..200 {
                let writes = match w.next_op(p) {
                    Op::Batch { ops } => ops,
                    single => vec![single],
                };
                for write in writes {
                    match write {
                        Op::Append { value, .. } => tokens.push(value),
                        Op::Put { value, .. } | Op::Cas { new: value, .. } => values.push(value),
                        _ => {}
                    }
                }
            }
        }
        assert!(tokens.len() > 1_000, "{} tokens", tokens.len());
        for t in &tokens {
            assert!(t.starts_with('[') && t.ends_with(']') && t.matches('[').count() == 1);
        }
        for v in &values {
            assert!(!v.contains('[') && !v.contains(']'), "{v}");
        }
        let a = append_token(1, 158);
        let b = append_token(41, 158);
        assert!(!b.ends_with(&a), "{a} is a suffix of {b}");
    }

    #[test]
    fn written_values_are_unique() {
        let mut w = Workload::new(SimRng::for_concern(2, Concern::Workload), 2);
        let mut seen = std::collections::BTreeSet::new();
        for p in 0..3 {
            for _ in 0..300 {
                let op = w.next_op(p);
                let writes = match op {
                    Op::Batch { ops } => ops,
                    single => vec![single],
                };
                for write in writes {
                    if let Op::Put { value, .. } | Op::Cas { new: value, .. } = write {
                        assert!(seen.insert(value.clone()), "duplicate value {value}");
                    }
                }
            }
        }
    }
}
