//! Writing raftlab histories in Jepsen's EDN, so that Jepsen's own tools (Knossos,
//! Elle) and anything else that reads Jepsen histories can read what raftlab records.
//!
//! One operation map per line, in recording order, in the register dialect that
//! [`crate::import::jepsen_edn`] reads back:
//!
//! | raftlab | EDN |
//! |---|---|
//! | get | `:f :read`, the value read in the `:ok` (`nil`: absent) |
//! | put | `:f :write`, `:value "v"` |
//! | delete | `:f :write`, `:value nil` (the register made absent) |
//! | cas | `:f :cas`, `:value [expected new]` (`nil` expected: absent); a refused cas completes with `:type :fail, :error :compare-failed` |
//! | append | `:f :append`, `:value "v"` (Porcupine's key-value dialect) |
//!
//! Every map has `:key "k"`, `:process`, `:time` (raftlab's virtual nanoseconds) and
//! `:index` (the record's position). `:fail` keeps raftlab's error in `:error`, `:info`
//! its reason. A refused cas becomes a `:fail` because that is how Jepsen clients
//! report one; read it back with `--fail-means compare-failed` to keep raftlab's
//! meaning (the cas took effect as a read that saw another value).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::history::{Call, History, OpId, Record, Ret};

/// An EDN string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "nil".to_owned(), string)
}

/// `:f` and `:value` of a call, as the invocation carries them.
fn call_fields(call: &Call) -> (&'static str, String) {
    match call {
        Call::Get { .. } => ("read", "nil".to_owned()),
        Call::Put { value, .. } => ("write", string(value)),
        Call::Delete { .. } => ("write", "nil".to_owned()),
        Call::Cas { expected, new, .. } => (
            "cas",
            format!("[{} {}]", opt(expected.as_deref()), string(new)),
        ),
        Call::Append { value, .. } => ("append", string(value)),
        // Jepsen's transaction form: a vector of [f key value] micro-operations.
        Call::Batch { ops } => {
            let micro: Vec<String> = ops
                .iter()
                .map(|op| {
                    let (f, value) = call_fields(op);
                    let f = if f == "write" { "w" } else { f };
                    format!("[:{f} {} {value}]", string(op.key()))
                })
                .collect();
            ("txn", format!("[{}]", micro.join(" ")))
        }
    }
}

/// The history as Jepsen EDN, one operation map a line (see the module docs).
pub fn jepsen_edn(history: &History) -> String {
    let mut out = String::new();
    // Invocations in flight: id -> (f, value, key).
    let mut open: BTreeMap<OpId, (&'static str, String, String)> = BTreeMap::new();
    for (index, record) in history.records.iter().enumerate() {
        let (kind, id, process, time_ns) = match record {
            Record::Invoke {
                id,
                process,
                time_ns,
                ..
            } => ("invoke", *id, *process, *time_ns),
            Record::Ok {
                id,
                process,
                time_ns,
                ..
            } => ("ok", *id, *process, *time_ns),
            Record::Fail {
                id,
                process,
                time_ns,
                ..
            } => ("fail", *id, *process, *time_ns),
            Record::Info {
                id,
                process,
                time_ns,
                ..
            } => ("info", *id, *process, *time_ns),
        };
        let (f, value, key, extra) = match record {
            Record::Invoke { call, .. } => {
                let (f, value) = call_fields(call);
                let key = string(call.key());
                open.insert(id, (f, value.clone(), key.clone()));
                (f, value, key, String::new())
            }
            _ => {
                let Some((f, value, key)) = open.remove(&id) else {
                    continue; // a completion without invocation: nothing to write
                };
                match record {
                    Record::Ok {
                        ret: Ret::Value(v), ..
                    } => (f, opt(v.as_deref()), key, String::new()),
                    Record::Ok {
                        ret: Ret::Cas(false),
                        ..
                    } => {
                        let line = format!(
                            "{{:type :fail, :f :cas, :value {value}, :key {key}, :process \
                             {process}, :time {time_ns}, :index {index}, :error :compare-failed}}\n"
                        );
                        out.push_str(&line);
                        continue;
                    }
                    Record::Fail { error, .. } => {
                        (f, value, key, format!(", :error {}", string(error)))
                    }
                    Record::Info { reason, .. } => {
                        (f, value, key, format!(", :error {}", string(reason)))
                    }
                    _ => (f, value, key, String::new()),
                }
            }
        };
        let _ = writeln!(
            out,
            "{{:type :{kind}, :f :{f}, :value {value}, :key {key}, :process {process}, \
             :time {time_ns}, :index {index}{extra}}}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{CasFail, jepsen_edn as import};
    use crate::{Budget, Verdict, check_history};

    fn record_history() -> History {
        let text = r#"{"type":"invoke","id":1,"process":1,"time_ns":10,"f":"put","key":"k","value":"a \"q\""}
{"type":"ok","id":1,"process":1,"time_ns":20,"ret":"done"}
{"type":"invoke","id":2,"process":2,"time_ns":30,"f":"cas","key":"k","expected":"zz","new":"b"}
{"type":"ok","id":2,"process":2,"time_ns":40,"ret":{"cas":false}}
{"type":"invoke","id":3,"process":2,"time_ns":50,"f":"append","key":"j","value":"x"}
{"type":"info","id":3,"process":2,"time_ns":60,"reason":"timed out"}
{"type":"invoke","id":4,"process":1,"time_ns":70,"f":"delete","key":"k"}
{"type":"fail","id":4,"process":1,"time_ns":80,"error":"not leader"}
{"type":"invoke","id":5,"process":1,"time_ns":90,"f":"get","key":"k"}
{"type":"ok","id":5,"process":1,"time_ns":100,"ret":{"value":"a \"q\""}}
"#;
        History::read_jsonl(text.as_bytes()).unwrap()
    }

    #[test]
    fn every_operation_kind_is_written_as_one_map_a_line() {
        let edn = jepsen_edn(&record_history());
        let lines: Vec<&str> = edn.lines().collect();
        assert_eq!(lines.len(), 10);
        assert!(lines[0].starts_with("{:type :invoke, :f :write, :value \"a \\\"q\\\"\""));
        assert!(lines[3].contains(":type :fail, :f :cas, :value [\"zz\" \"b\"]"));
        assert!(lines[3].contains(":error :compare-failed"));
        assert!(lines[5].contains(":type :info, :f :append") && lines[5].contains("timed out"));
        assert!(lines[6].contains(":f :write, :value nil"));
        assert!(lines[9].contains(":type :ok, :f :read, :value \"a \\\"q\\\"\""));
    }

    /// Written and read back (with a refused cas read as raftlab means it), a history
    /// keeps its operations and its verdict, both ways.
    #[test]
    fn a_history_round_trips_through_edn_with_its_verdict() {
        let history = record_history();
        let back = import(jepsen_edn(&history).as_bytes(), CasFail::CompareFailed).unwrap();
        assert_eq!(back.history.records.len(), history.records.len());
        let verdict = |h: &History| check_history(h, &Budget::default()).unwrap();
        assert_eq!(verdict(&back.history), Verdict::Linearizable);
        assert_eq!(verdict(&history), Verdict::Linearizable);
        // A stale read stays stale.
        let text = jepsen_edn(&history).replace(
            ":type :ok, :f :read, :value \"a \\\"q\\\"\"",
            ":type :ok, :f :read, :value \"b\"",
        );
        let back = import(text.as_bytes(), CasFail::CompareFailed).unwrap();
        assert!(matches!(
            verdict(&back.history),
            Verdict::NotLinearizable(_)
        ));
    }
}
