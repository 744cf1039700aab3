//! The sequential specification the clients' history is checked against:
//! the key-value map of `crates/kv`, with the same operations and answers,
//! for stateright's [`stateright::semantics::LinearizabilityTester`].

use kv::{Op, Output};
use std::collections::BTreeMap;

/// A key-value map as one atomic object: each operation takes effect at
/// once, in some order consistent with real time (linearizability).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec(BTreeMap<String, String>);

impl stateright::semantics::SequentialSpec for KvSpec {
    type Op = Op;
    type Ret = Output;

    fn invoke(&mut self, op: &Op) -> Output {
        match op {
            Op::Get { key } => Output::Value(self.0.get(key).cloned()),
            Op::Put { key, value } => {
                self.0.insert(key.clone(), value.clone());
                Output::Done
            }
            Op::Delete { key } => {
                self.0.remove(key);
                Output::Done
            }
            Op::Cas { key, expected, new } => {
                if self.0.get(key) == expected.as_ref() {
                    self.0.insert(key.clone(), new.clone());
                    Output::Cas(true)
                } else {
                    Output::Cas(false)
                }
            }
            Op::Append { key, value } => {
                self.0.entry(key.clone()).or_default().push_str(value);
                Output::Done
            }
            // All or nothing, as kv applies it: a compare that fails
            // aborts the batch at its position (the keys are distinct, so
            // each write sees the map as it was before the batch).
            Op::Batch { ops } => {
                let aborted_at = ops.iter().position(|w| match w {
                    Op::Cas { key, expected, .. } => self.0.get(key) != expected.as_ref(),
                    _ => false,
                });
                if aborted_at.is_none() {
                    for w in ops {
                        self.invoke(w);
                    }
                }
                Output::Batch {
                    aborted_at: aborted_at.map(|i| i as u32),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::semantics::SequentialSpec;

    #[test]
    fn the_spec_answers_like_the_store() {
        // The spec must agree with kv::KvStore, or the linearizability
        // property would blame the replica for the spec's mistakes.
        let ops = [
            Op::Get { key: "x".into() },
            Op::Cas {
                key: "x".into(),
                expected: None,
                new: "1".into(),
            },
            Op::Cas {
                key: "x".into(),
                expected: None,
                new: "2".into(),
            },
            Op::Put {
                key: "x".into(),
                value: "3".into(),
            },
            Op::Append {
                key: "x".into(),
                value: "4".into(),
            },
            Op::Get { key: "x".into() },
            Op::Delete { key: "x".into() },
            Op::Get { key: "x".into() },
        ];
        let mut spec = KvSpec::default();
        let mut store = kv::KvStore::new();
        for (i, op) in ops.iter().enumerate() {
            let command = kv::Command {
                client: 1,
                seq: i as u64 + 1,
                op: op.clone(),
            };
            let applied = store.apply(i as u64 + 1, &command.encode());
            let expected = applied.response.clone().expect("every op is valid");
            assert_eq!(spec.invoke(op), expected, "op {i}: {op:?}");
        }
    }
}
