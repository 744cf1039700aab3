//! Readers for histories recorded by other tools, so the checker can be run on
//! histories nobody here wrote.
//!
//! - [`jepsen_edn`]: Jepsen's and Knossos's EDN histories (and Porcupine's key-value
//!   maps), streamed.
//! - [`jepsen_log`]: Jepsen's text logs (tabs or spaces; other lines skipped), streamed.
//! - [`jepsen_etcd`]: Jepsen's logs of its etcd compare-and-set register test, strictly
//!   (every line must be an event).
//! - [`porcupine_kv`]: Porcupine's key-value histories (Jepsen EDN maps, one a line).
//!
//! Neither format carries timestamps or operation ids: events are in real-time order,
//! one per line, so an event's time is its 1-based line number and operations are
//! numbered in invocation order, from 0. Invocations are paired with completions by
//! process. Malformed input gives an [`ImportError`] naming the line, never a panic.

use std::collections::BTreeMap;
use std::fmt;

use crate::history::{Call, History, OpId, ProcessId, Record, Ret};

mod stream;

pub use stream::{REGISTER_KEY, jepsen_edn, jepsen_log};

/// Most characters of the input an error message quotes.
pub const PREVIEW_CHARS: usize = 80;

/// At most [`PREVIEW_CHARS`] characters of `s`, with `…` if cut.
pub(crate) fn preview(s: &str) -> String {
    match s.char_indices().nth(PREVIEW_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// What a `:fail` of a cas means (an alias of [`EtcdCasFail`], for every importer).
pub type CasFail = EtcdCasFail;

/// A history imported by a streaming importer, with what the import noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The history.
    pub history: History,
    /// Things a user should know: operations left of unknown outcome because they
    /// never completed, an input that ends mid-way, and the like. One sentence each.
    pub notes: Vec<String>,
    /// Lines of another shape, skipped (a log's own logging).
    pub skipped_lines: usize,
    /// Nemesis events (operations of a keyword process such as `:nemesis`) skipped.
    pub nemesis_events: usize,
    /// How a cas's `:fail` was read.
    pub fail_means: CasFail,
}

impl CasFail {
    /// The reading in words, for output.
    pub fn describe(self) -> &'static str {
        match self {
            CasFail::CompareFailed => {
                "a cas :fail means the compare failed (it took effect as a read of another value)"
            }
            CasFail::NoEffect => "a cas :fail means it did not happen (Jepsen's meaning)",
        }
    }
}

/// Most lines an importer reads: bounds memory on hostile input.
pub const MAX_IMPORT_LINES: usize = 10_000_000;

/// The key the Jepsen etcd register is stored under.
pub const ETCD_REGISTER_KEY: &str = "r";

/// An input that could not be imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line number (0 if the input as a whole is at fault).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ImportError {}

fn err(line: usize, message: impl Into<String>) -> ImportError {
    ImportError {
        line,
        message: message.into(),
    }
}

/// What a `:fail` on a cas means in a Jepsen etcd log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EtcdCasFail {
    /// The comparison failed: the cas took effect as a read that saw another value
    /// (`Ret::Cas(false)`). This is what Jepsen's etcd client means: etcd answered the
    /// compare-and-swap with "compare failed", a definite outcome, and the client
    /// reports it as `:fail`. Every verdict in Porcupine's fixtures holds under it (see
    /// the tests), and it is the stronger check.
    #[default]
    CompareFailed,
    /// The cas did not take effect and tells nothing about the value (`Record::Fail`).
    /// Weaker: it throws away the observation that the value differed. Under it, some
    /// histories that are not linearizable pass (Porcupine's fixtures happen to give the
    /// same verdicts under both readings).
    NoEffect,
}

/// Import a Jepsen etcd register log (Porcupine's `test_data/jepsen/etcd_NNN.log`), with
/// a cas `:fail` read as [`EtcdCasFail::CompareFailed`].
///
/// Each line is `INFO  jepsen.util - <process>\t:<type>\t:<f>\t<value>` with type
/// invoke, ok, fail or info, f read, write or cas, and value `nil`, an integer, `[from
/// to]` or a keyword such as `:timed-out`. The register becomes key
/// [`ETCD_REGISTER_KEY`]; integers become decimal strings; `nil` is "absent". A read is a
/// get, a write a put, `cas [a b]` a cas expecting `a` and writing `b`. An ok read returns
/// its value, an ok cas `Cas(true)`. A failed read or write (e.g. `:fail :read
/// :timed-out`) had no effect. `:info` is an unknown outcome, as is an invocation never
/// completed.
pub fn jepsen_etcd(text: &str) -> Result<History, ImportError> {
    jepsen_etcd_with(text, EtcdCasFail::default())
}

/// [`jepsen_etcd`], choosing what a cas `:fail` means.
pub fn jepsen_etcd_with(text: &str, cas_fail: EtcdCasFail) -> Result<History, ImportError> {
    let mut pairing = Pairing::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if line > MAX_IMPORT_LINES {
            return Err(err(line, format!("more than {MAX_IMPORT_LINES} lines")));
        }
        if raw.trim().is_empty() {
            continue;
        }
        let (_, event) = raw
            .split_once("jepsen.util - ")
            .ok_or_else(|| err(line, "expected `INFO  jepsen.util - <process>\\t...`"))?;
        let fields: Vec<&str> = event.split('\t').map(str::trim).collect();
        let [process, kind, f, value] = fields[..] else {
            return Err(err(
                line,
                format!("expected 4 tab-separated fields, found {}", fields.len()),
            ));
        };
        let process: ProcessId = process.parse().map_err(|_| {
            err(
                line,
                format!("process `{}` is not an integer", preview(process)),
            )
        })?;
        let f = match f {
            ":read" | ":write" | ":cas" => &f[1..],
            other => return Err(err(line, format!("unknown operation `{}`", preview(other)))),
        };
        etcd_event(
            &mut pairing,
            line,
            (process, kind, f, value),
            cas_fail,
            line as u64,
        )?;
    }
    Ok(pairing.history)
}

/// One event of a Jepsen etcd log: `f` without its colon.
fn etcd_event(
    pairing: &mut Pairing,
    line: usize,
    (process, kind, f, value): (ProcessId, &str, &str, &str),
    cas_fail: EtcdCasFail,
    time_ns: u64,
) -> Result<(), ImportError> {
    match kind {
        ":invoke" => {
            let key = ETCD_REGISTER_KEY.to_owned();
            let call = match f {
                "read" => Call::Get { key },
                "write" => Call::Put {
                    key,
                    value: etcd_int(line, value)?,
                },
                _ => {
                    let (from, to) = etcd_pair(line, value)?;
                    Call::Cas {
                        key,
                        expected: Some(from),
                        new: to,
                    }
                }
            };
            pairing.invoke(line, process, time_ns, f, call)?;
        }
        ":ok" => {
            let ret = match f {
                "read" => Ret::Value(match value {
                    "nil" => None,
                    v => Some(etcd_int(line, v)?),
                }),
                "write" => Ret::Done,
                _ => Ret::Cas(true),
            };
            pairing.complete(line, process, f, |id| Record::Ok {
                id,
                process,
                time_ns,
                ret,
            })?;
        }
        ":fail" => {
            let as_refused_cas = f == "cas" && cas_fail == EtcdCasFail::CompareFailed;
            pairing.complete(line, process, f, |id| {
                if as_refused_cas {
                    Record::Ok {
                        id,
                        process,
                        time_ns,
                        ret: Ret::Cas(false),
                    }
                } else {
                    Record::Fail {
                        id,
                        process,
                        time_ns,
                        error: preview(value),
                    }
                }
            })?;
        }
        ":info" => {
            pairing.complete(line, process, f, |id| Record::Info {
                id,
                process,
                time_ns,
                reason: preview(value),
            })?;
        }
        other => {
            return Err(err(
                line,
                format!("unknown event type `{}`", preview(other)),
            ));
        }
    }
    Ok(())
}

fn etcd_int(line: usize, v: &str) -> Result<String, ImportError> {
    let n: i64 = v
        .parse()
        .map_err(|_| err(line, format!("expected an integer, found `{}`", preview(v))))?;
    Ok(n.to_string())
}

fn etcd_pair(line: usize, v: &str) -> Result<(String, String), ImportError> {
    let inner = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| {
            err(
                line,
                format!("expected `[from to]`, found `{}`", preview(v)),
            )
        })?;
    let mut parts = inner.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) => Ok((etcd_int(line, a)?, etcd_int(line, b)?)),
        _ => Err(err(
            line,
            format!("expected `[from to]`, found `{}`", preview(v)),
        )),
    }
}

/// Import a Porcupine key-value history (`test_data/kv/*.txt`): one EDN map per line,
/// e.g. `{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}`, with type
/// invoke, ok, fail or info and f get, put or append.
///
/// Porcupine's model has no "absent": a missing key reads as `""`, so `""` and absent
/// are one state there. The import maps that onto this crate's model exactly: a get that
/// returned `""` returns `None`, a put of `""` becomes a delete, and an append of `""`
/// (no effect, nothing returned) is dropped with its completion.
pub fn porcupine_kv(text: &str) -> Result<History, ImportError> {
    let mut pairing = Pairing::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if line > MAX_IMPORT_LINES {
            return Err(err(line, format!("more than {MAX_IMPORT_LINES} lines")));
        }
        if raw.trim().is_empty() {
            continue;
        }
        let map = edn::parse_map(raw).map_err(|m| err(line, m))?;
        let process = match map.get("process") {
            Some(edn::Value::Int(p)) => ProcessId::try_from(*p)
                .map_err(|_| err(line, format!(":process {p} is negative")))?,
            Some(other) => {
                return Err(err(
                    line,
                    format!(":process must be an integer, not {other}"),
                ));
            }
            None => return Err(err(line, "missing :process")),
        };
        porcupine_event(&mut pairing, line, &map, process, line as u64)?;
    }
    Ok(pairing.history)
}

/// One event of Porcupine's key-value dialect (`:f` get, put or append).
fn porcupine_event(
    pairing: &mut Pairing,
    line: usize,
    map: &BTreeMap<String, edn::Value>,
    process: ProcessId,
    time_ns: u64,
) -> Result<(), ImportError> {
    let get = |name: &str| {
        map.get(name)
            .ok_or_else(|| err(line, format!("missing :{name}")))
    };
    let kind = get("type")?.keyword(line, "type")?;
    let f = get("f")?.keyword(line, "f")?;
    if !matches!(f, "get" | "put" | "append") {
        return Err(err(line, format!("unknown :f :{}", preview(f))));
    }
    match kind {
        "invoke" => {
            let key = get("key")?.string(line, "key")?.to_owned();
            let call = match f {
                "get" => Call::Get { key },
                "put" => match get("value")?.string(line, "value")? {
                    "" => Call::Delete { key },
                    v => Call::Put {
                        key,
                        value: v.to_owned(),
                    },
                },
                _ => {
                    let value = get("value")?.string(line, "value")?;
                    if value.is_empty() {
                        return pairing.skip(line, process, f);
                    }
                    Call::Append {
                        key,
                        value: value.to_owned(),
                    }
                }
            };
            pairing.invoke(line, process, time_ns, f, call)
        }
        "ok" => {
            if pairing.is_skipped(process) {
                return pairing.complete_skipped(line, process, f);
            }
            let ret = match f {
                "get" => match get("value")?.string(line, "value")? {
                    "" => Ret::Value(None),
                    v => Ret::Value(Some(v.to_owned())),
                },
                _ => Ret::Done,
            };
            pairing.complete(line, process, f, |id| Record::Ok {
                id,
                process,
                time_ns,
                ret,
            })
        }
        "fail" | "info" => {
            if pairing.is_skipped(process) {
                return pairing.complete_skipped(line, process, f);
            }
            let why = map
                .get("error")
                .map_or_else(|| format!(":{kind}"), |v| preview(&v.to_string()));
            pairing.complete(line, process, f, |id| {
                if kind == "fail" {
                    Record::Fail {
                        id,
                        process,
                        time_ns,
                        error: why,
                    }
                } else {
                    Record::Info {
                        id,
                        process,
                        time_ns,
                        reason: why,
                    }
                }
            })
        }
        other => Err(err(line, format!("unknown :type :{}", preview(other)))),
    }
}

/// What a process has in flight, while importing.
enum Pending {
    /// An operation recorded in the history, with its id and `f`.
    Op(OpId, &'static str),
    /// An operation dropped on import (it has no effect and returns nothing), with its
    /// `f`: its completion is dropped too.
    Skipped(&'static str),
}

/// Pairs completions with invocations by process, and numbers operations.
#[derive(Default)]
struct Pairing {
    history: History,
    next_id: OpId,
    /// Invariant: holds each process's operation in flight, and no process twice.
    pending: BTreeMap<ProcessId, Pending>,
    /// The line each operation in flight was invoked on.
    lines: BTreeMap<ProcessId, usize>,
}

fn static_f(f: &str) -> &'static str {
    match f {
        "read" => "read",
        "write" => "write",
        "cas" => "cas",
        "get" => "get",
        "put" => "put",
        _ => "append",
    }
}

impl Pairing {
    fn start(&mut self, line: usize, process: ProcessId, p: Pending) -> Result<(), ImportError> {
        if self.pending.contains_key(&process) {
            return Err(err(
                line,
                format!("process {process} invokes while its previous operation is in flight"),
            ));
        }
        self.pending.insert(process, p);
        self.lines.insert(process, line);
        Ok(())
    }

    /// The operations still in flight: (process, line invoked on), skipped ones left
    /// out.
    fn open_lines(&self) -> Vec<(ProcessId, usize)> {
        self.pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Op(..)))
            .map(|(&process, _)| (process, self.lines.get(&process).copied().unwrap_or(0)))
            .collect()
    }

    fn invoke(
        &mut self,
        line: usize,
        process: ProcessId,
        time_ns: u64,
        f: &str,
        call: Call,
    ) -> Result<(), ImportError> {
        let id = self.next_id;
        self.start(line, process, Pending::Op(id, static_f(f)))?;
        self.next_id += 1;
        self.history.push(Record::Invoke {
            id,
            process,
            time_ns,
            call,
        });
        Ok(())
    }

    fn skip(&mut self, line: usize, process: ProcessId, f: &str) -> Result<(), ImportError> {
        self.start(line, process, Pending::Skipped(static_f(f)))
    }

    fn is_skipped(&self, process: ProcessId) -> bool {
        matches!(self.pending.get(&process), Some(Pending::Skipped(_)))
    }

    fn take(&mut self, line: usize, process: ProcessId, f: &str) -> Result<Pending, ImportError> {
        self.lines.remove(&process);
        let p = self.pending.remove(&process).ok_or_else(|| {
            err(
                line,
                format!("process {process} completes an operation it never invoked"),
            )
        })?;
        let (Pending::Op(_, invoked) | Pending::Skipped(invoked)) = p;
        if invoked != f {
            return Err(err(
                line,
                format!("process {process} invoked :{invoked} but completes :{f}"),
            ));
        }
        Ok(p)
    }

    fn complete_skipped(
        &mut self,
        line: usize,
        process: ProcessId,
        f: &str,
    ) -> Result<(), ImportError> {
        self.take(line, process, f).map(|_| ())
    }

    fn complete(
        &mut self,
        line: usize,
        process: ProcessId,
        f: &str,
        record: impl FnOnce(OpId) -> Record,
    ) -> Result<(), ImportError> {
        match self.take(line, process, f)? {
            Pending::Op(id, _) => {
                self.history.push(record(id));
                Ok(())
            }
            Pending::Skipped(_) => Err(err(line, "internal: completing a skipped operation")),
        }
    }
}

/// Just enough EDN for one flat map per line: keyword keys; integer, string, keyword,
/// `nil` and boolean values.
mod edn {
    use std::collections::BTreeMap;

    use super::{ImportError, err};

    /// Longest map accepted, in entries.
    const MAX_ENTRIES: usize = 64;

    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum Value {
        Nil,
        Bool(bool),
        Int(i64),
        Str(String),
        Keyword(String),
        /// Any other symbol or number (a float, a ratio, a symbol): kept as its text.
        Symbol(String),
        Vector(Vec<Value>),
        /// A nested map, e.g. an `:error` (entries in order).
        Map(Vec<(Value, Value)>),
    }

    /// EDN text, as a user would write it, cut to [`super::PREVIEW_CHARS`] characters
    /// per string and 8 items per collection (so a huge value is never echoed whole).
    impl std::fmt::Display for Value {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Value::Nil => write!(f, "nil"),
                Value::Bool(b) => write!(f, "{b}"),
                Value::Int(i) => write!(f, "{i}"),
                Value::Str(s) => write!(f, "{:?}", super::preview(s)),
                Value::Keyword(k) => write!(f, ":{}", super::preview(k)),
                Value::Symbol(s) => write!(f, "{}", super::preview(s)),
                Value::Vector(items) => {
                    write!(f, "[")?;
                    for (i, v) in items.iter().enumerate() {
                        if i == 8 {
                            write!(f, " …")?;
                            break;
                        }
                        write!(f, "{}{v}", if i == 0 { "" } else { " " })?;
                    }
                    write!(f, "]")
                }
                Value::Map(entries) => {
                    write!(f, "{{")?;
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if i == 8 {
                            write!(f, " …")?;
                            break;
                        }
                        write!(f, "{}{k} {v}", if i == 0 { "" } else { ", " })?;
                    }
                    write!(f, "}}")
                }
            }
        }
    }

    impl Value {
        pub(super) fn keyword(&self, line: usize, field: &str) -> Result<&str, ImportError> {
            match self {
                Value::Keyword(k) => Ok(k),
                other => Err(err(
                    line,
                    format!(":{field} must be a keyword, not {other}"),
                )),
            }
        }

        pub(super) fn string(&self, line: usize, field: &str) -> Result<&str, ImportError> {
            match self {
                Value::Str(s) => Ok(s),
                other => Err(err(line, format!(":{field} must be a string, not {other}"))),
            }
        }
    }

    struct Cursor<'a> {
        rest: &'a str,
        depth: usize,
    }

    /// Deepest nesting of vectors and maps accepted.
    const MAX_DEPTH: usize = 16;

    /// Whether `s` is an integer literal (an optional sign, then digits).
    fn is_integer(s: &str) -> bool {
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    }

    impl<'a> Cursor<'a> {
        fn skip_space(&mut self) {
            // Commas are whitespace in EDN; `;` starts a comment to the end of the line.
            loop {
                self.rest = self
                    .rest
                    .trim_start_matches(|c: char| c.is_whitespace() || c == ',');
                match self.rest.strip_prefix(';') {
                    Some(rest) => self.rest = rest.split_once('\n').map_or("", |(_, r)| r),
                    None => break,
                }
            }
        }

        fn eat(&mut self, c: char) -> bool {
            self.skip_space();
            match self.rest.strip_prefix(c) {
                Some(rest) => {
                    self.rest = rest;
                    true
                }
                None => false,
            }
        }

        fn symbol(&mut self) -> &'a str {
            let end = self
                .rest
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | '{' | '"' | '[' | ']'))
                .unwrap_or(self.rest.len());
            let (sym, rest) = self.rest.split_at(end);
            self.rest = rest;
            sym
        }

        fn value(&mut self) -> Result<Value, String> {
            self.skip_space();
            if let Some(rest) = self.rest.strip_prefix('"') {
                self.rest = rest;
                return self.string().map(Value::Str);
            }
            if let Some(rest) = self.rest.strip_prefix(':') {
                self.rest = rest;
                let k = self.symbol();
                if k.is_empty() {
                    return Err("empty keyword".into());
                }
                return Ok(Value::Keyword(k.to_owned()));
            }
            if let Some(rest) = self.rest.strip_prefix('[') {
                self.rest = rest;
                let mut items = Vec::new();
                while !self.eat(']') {
                    if items.len() >= MAX_ENTRIES {
                        return Err(format!("a vector of more than {MAX_ENTRIES} items"));
                    }
                    items.push(self.nested()?);
                }
                return Ok(Value::Vector(items));
            }
            if let Some(rest) = self.rest.strip_prefix('{') {
                self.rest = rest;
                let mut entries = Vec::new();
                while !self.eat('}') {
                    if entries.len() >= MAX_ENTRIES {
                        return Err(format!("a map of more than {MAX_ENTRIES} entries"));
                    }
                    let k = self.nested()?;
                    let v = self.nested()?;
                    entries.push((k, v));
                }
                return Ok(Value::Map(entries));
            }
            match self.symbol() {
                "" => Err(format!("expected a value at `{}`", preview(self.rest))),
                "nil" => Ok(Value::Nil),
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                s if is_integer(s) => s
                    .parse()
                    .map(Value::Int)
                    .map_err(|_| format!("integer `{}` out of range", preview(s))),
                s => Ok(Value::Symbol(s.to_owned())),
            }
        }

        /// A value inside a vector or map: nesting bounded.
        fn nested(&mut self) -> Result<Value, String> {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!("values nested more than {MAX_DEPTH} deep"));
            }
            self.skip_space();
            if self.rest.is_empty() {
                return Err("unterminated vector or map".into());
            }
            let v = self.value();
            self.depth -= 1;
            v
        }

        /// The rest of a string literal whose opening quote was consumed.
        fn string(&mut self) -> Result<String, String> {
            let mut out = String::new();
            let mut chars = self.rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = &self.rest[i + 1..];
                        return Ok(out);
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        Some((_, 'r')) => out.push('\r'),
                        Some((_, c @ ('"' | '\\'))) => out.push(c),
                        Some((_, c)) => return Err(format!("unsupported escape `\\{c}`")),
                        None => break,
                    },
                    c => out.push(c),
                }
            }
            Err("unterminated string".into())
        }
    }

    fn preview(s: &str) -> String {
        super::preview(s)
    }

    /// Parse `{:k v, :k v ...}` (the whole line).
    pub(super) fn parse_map(line: &str) -> Result<BTreeMap<String, Value>, String> {
        let mut c = Cursor {
            rest: line,
            depth: 0,
        };
        if !c.eat('{') {
            return Err("expected `{`".into());
        }
        let mut map = BTreeMap::new();
        loop {
            if c.eat('}') {
                break;
            }
            if map.len() >= MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
            let key = match c.value()? {
                Value::Keyword(k) => k,
                other => return Err(format!("map keys must be keywords, not {other}")),
            };
            let value = c.value()?;
            if map.insert(key.clone(), value).is_some() {
                return Err(format!("duplicate key :{key}"));
            }
        }
        c.skip_space();
        if !c.rest.is_empty() {
            return Err(format!("trailing text `{}`", preview(c.rest)));
        }
        Ok(map)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_a_porcupine_line() {
            let m = parse_map(r#"{:process 3, :type :ok, :f :get, :key "0", :value "x \"1\" y"}"#)
                .unwrap();
            assert_eq!(m["process"], Value::Int(3));
            assert_eq!(m["type"], Value::Keyword("ok".into()));
            assert_eq!(m["value"], Value::Str("x \"1\" y".into()));
        }

        #[test]
        fn rejects_malformed_maps() {
            for bad in [
                "",
                "{",
                "{:a}",
                "{:a 1",
                r#"{:a "x}"#,
                "{:a 1} x",
                "{1 2}",
                "{:a 1 :a 2}",
                "{:a [1}",
                "{:a 99999999999999999999}",
                r#"{:a "\q"}"#,
            ] {
                assert!(parse_map(bad).is_err(), "{bad:?} should not parse");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn etcd_lines_map_to_the_documented_calls_and_results() {
        let log = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 1\t:invoke\t:write\t4\n\
                   INFO  jepsen.util - 2\t:invoke\t:cas\t[4 0]\n\
                   INFO  jepsen.util - 0\t:ok\t:read\tnil\n\
                   INFO  jepsen.util - 1\t:info\t:write\t:timed-out\n\
                   INFO  jepsen.util - 2\t:fail\t:cas\t[4 0]\n\
                   INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n\
                   INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]\n";
        let ops = jepsen_etcd(log).unwrap().operations().unwrap();
        let r = || ETCD_REGISTER_KEY.to_owned();
        let got: Vec<_> = ops
            .iter()
            .map(|o| (o.id, o.process, o.call.clone(), o.outcome.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, Call::Get { key: r() }, Outcome::Ok(Ret::Value(None))),
                (
                    1,
                    1,
                    Call::Put {
                        key: r(),
                        value: "4".into()
                    },
                    Outcome::Unknown
                ),
                (
                    2,
                    2,
                    Call::Cas {
                        key: r(),
                        expected: Some("4".into()),
                        new: "0".into()
                    },
                    Outcome::Ok(Ret::Cas(false))
                ),
                (3, 0, Call::Get { key: r() }, Outcome::Fail),
                (
                    4,
                    3,
                    Call::Cas {
                        key: r(),
                        expected: Some("1".into()),
                        new: "2".into()
                    },
                    Outcome::Unknown
                ),
            ]
        );
        assert_eq!(ops[0].invoke_ns, 1);
        assert_eq!(ops[0].complete_ns, Some(4));
        assert_eq!(ops[4].complete_ns, None);
        let no_effect = jepsen_etcd_with(log, EtcdCasFail::NoEffect)
            .unwrap()
            .operations()
            .unwrap();
        assert_eq!(no_effect[2].outcome, Outcome::Fail);
    }

    #[test]
    fn etcd_malformed_lines_are_errors_with_line_numbers() {
        let ok = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
        for (bad, line) in [
            ("garbage", 1),
            ("INFO  jepsen.util - x\t:invoke\t:read\tnil", 1),
            ("INFO  jepsen.util - 0\t:invoke\t:read", 1),
            ("INFO  jepsen.util - 0\t:invoke\t:frob\tnil", 1),
            ("INFO  jepsen.util - 0\t:start\t:read\tnil", 1),
            ("INFO  jepsen.util - 0\t:invoke\t:write\tabc", 1),
            ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1]", 1),
            ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2 3]", 1),
            ("INFO  jepsen.util - 0\t:ok\t:read\t1", 1),
        ] {
            assert_eq!(jepsen_etcd(bad).unwrap_err().line, line, "{bad}");
        }
        let e = jepsen_etcd(&format!("{ok}{ok}")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("in flight"), "{e}");
        let e = jepsen_etcd(&format!("{ok}\nINFO  jepsen.util - 0\t:ok\t:write\tnil")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("invoked :read but completes :write"),
            "{e}"
        );
    }

    #[test]
    fn kv_lines_map_empty_strings_onto_absent() {
        let text = r#"{:process 0, :type :invoke, :f :get, :key "a", :value nil}
{:process 1, :type :invoke, :f :put, :key "a", :value ""}
{:process 2, :type :invoke, :f :append, :key "a", :value ""}
{:process 0, :type :ok, :f :get, :key "a", :value ""}
{:process 1, :type :ok, :f :put, :key "a", :value ""}
{:process 2, :type :ok, :f :append, :key "a", :value ""}
{:process 2, :type :invoke, :f :append, :key "a", :value "x"}
{:process 2, :type :info, :f :append, :key "a", :value "x"}
{:process 0, :type :invoke, :f :put, :key "b", :value "y"}
{:process 0, :type :fail, :f :put, :key "b", :value "y"}
"#;
        let ops = porcupine_kv(text).unwrap().operations().unwrap();
        let a = || "a".to_owned();
        let got: Vec<_> = ops
            .iter()
            .map(|o| (o.call.clone(), o.outcome.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Call::Get { key: a() }, Outcome::Ok(Ret::Value(None))),
                (Call::Delete { key: a() }, Outcome::Ok(Ret::Done)),
                (
                    Call::Append {
                        key: a(),
                        value: "x".into()
                    },
                    Outcome::Unknown
                ),
                (
                    Call::Put {
                        key: "b".into(),
                        value: "y".into()
                    },
                    Outcome::Fail
                ),
            ]
        );
    }

    #[test]
    fn kv_malformed_lines_are_errors_with_line_numbers() {
        let ok = r#"{:process 0, :type :invoke, :f :get, :key "a", :value nil}"#;
        for (bad, line) in [
            (format!("{ok}\n{{:process 0, :type :ok, :f :get}}"), 2),
            (
                format!("{ok}\n{{:process 0, :type :ok, :f :put, :value \"\"}}"),
                2,
            ),
            (
                "{:process -1, :type :invoke, :f :get, :key \"a\"}".to_owned(),
                1,
            ),
            (
                "{:process 0, :type :invoke, :f :cas, :key \"a\"}".to_owned(),
                1,
            ),
            (
                "{:process 0, :type :start, :f :get, :key \"a\"}".to_owned(),
                1,
            ),
            (
                "{:process \"0\", :type :invoke, :f :get, :key \"a\"}".to_owned(),
                1,
            ),
            ("{:process 0, :type :invoke, :f :get, :key 7}".to_owned(), 1),
            (format!("\n\n{ok}\n{ok}"), 4),
            (
                "{:process 0, :type :ok, :f :get, :key \"a\", :value \"\"}".to_owned(),
                1,
            ),
            ("not edn".to_owned(), 1),
        ] {
            let e = porcupine_kv(&bad).unwrap_err();
            assert_eq!(e.line, line, "{bad}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_the_importers(text in "[ -~\t\n{}:\"\\[\\]]{0,200}") {
            let _ = jepsen_etcd(&text);
            let _ = porcupine_kv(&text);
        }
    }
}
