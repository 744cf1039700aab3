//! Streaming importers for Jepsen's own formats: EDN histories as Jepsen and Knossos
//! write them ([`jepsen_edn`]) and Jepsen's text logs ([`jepsen_log`]).
//!
//! Both read from a [`BufRead`] one line at a time, with at most
//! [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES) per line (and per operation map, for an
//! EDN map that spans lines), so memory is bounded by the history they build, not by
//! the input. Errors name the line (and column, for EDN and for bytes that are not
//! UTF-8) and never echo more than [`PREVIEW_CHARS`] characters of the input.

use std::io::BufRead;

use super::{CasFail, ImportError, Imported, Pairing, err, preview};
use crate::MAX_LINE_BYTES;
use crate::history::{Call, ProcessId, Record, Ret};
use crate::import::edn::Value;

/// One line of input, read with a bound: `Ok(None)` at the end.
fn next_line<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    line: usize,
) -> Result<Option<(String, bool)>, ImportError> {
    buf.clear();
    let n = std::io::Read::take(&mut *r, MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| err(line, format!("cannot read: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES {
        return Err(err(line, format!("longer than {MAX_LINE_BYTES} bytes")));
    }
    let complete = buf.last() == Some(&b'\n');
    match std::str::from_utf8(buf) {
        Ok(text) => Ok(Some((
            text.trim_end_matches(['\n', '\r']).to_owned(),
            complete,
        ))),
        Err(e) => Err(err(
            line,
            format!(
                "not text: byte {:#04x} at column {} is not UTF-8 (is this a binary file?)",
                buf[e.valid_up_to()],
                e.valid_up_to() + 1
            ),
        )),
    }
}

/// The register key for operations without `:key`.
pub const REGISTER_KEY: &str = "r";

/// Import a Jepsen or Knossos EDN history: a vector of operation maps, or maps one
/// after another (one per line or not), with `;` comments, commas and any whitespace,
/// maps spanning lines. Each map has `:type` (`:invoke`, `:ok`, `:fail`, `:info`), `:f`
/// and `:process`; `:value`, `:key`, `:time`, `:index`, `:error` and others are
/// optional (others are ignored). `:process :nemesis` operations (and any with a
/// keyword process) are skipped and counted.
///
/// Two dialects, by `:f`:
///
/// - a register (Jepsen's `cas-register`, Knossos's histories): `:read`, `:write`,
///   `:cas` with value `[old new]`; values integers, strings, keywords or vectors
///   (compared as their EDN text); `nil` is "absent" (a `:write` of `nil` deletes). The key is `:key` if given, else
///   [`REGISTER_KEY`]. A `:fail` of a cas is read as `fail_means` says.
/// - Porcupine's key-value maps: `:get`, `:put`, `:append` with string `:key` and
///   `:value`, where `""` and absent are one state (as [`super::porcupine_kv`] reads
///   them).
///
/// Events are in real-time order (as Jepsen writes them): an event's time is its
/// position, so `:time` is not needed (and ties cannot arise). A process's `:info`
/// ends its operation as of unknown outcome; an invocation never completed is
/// unknown too, and the import notes how many there were (a truncated file). An input
/// that ends inside a map notes that the map was skipped.
pub fn jepsen_edn<R: BufRead>(mut r: R, fail_means: CasFail) -> Result<Imported, ImportError> {
    let mut scan = Scanner::default();
    let mut ops = EdnOps {
        pairing: Pairing::default(),
        fail_means,
        events: 0,
        nemesis: 0,
    };
    let mut buf = Vec::new();
    let mut line = 0usize;
    let mut last_complete = true;
    while let Some((text, complete)) = next_line(&mut r, &mut buf, line + 1)? {
        line += 1;
        if line > super::MAX_IMPORT_LINES {
            return Err(err(
                line,
                format!("more than {} lines", super::MAX_IMPORT_LINES),
            ));
        }
        last_complete = complete;
        scan.feed(line, &text, &mut |start, map_text| ops.map(start, map_text))?;
    }
    let mut notes = Vec::new();
    if scan.depth > 0 {
        notes.push(format!(
            "the input ends inside the operation map that starts on line {} (truncated?): \
             that map is skipped{}",
            scan.start_line,
            if last_complete {
                ""
            } else {
                ", and the last line has no line end"
            }
        ));
    } else if scan.in_vector {
        notes.push("the input ends before the `]` that closes its vector (truncated?)".into());
    }
    finish(ops.pairing, notes, 0, ops.nemesis, ops.events, fail_means)
}

/// Common end of an import: unknown-outcome notes, the empty-input error.
fn finish(
    pairing: Pairing,
    mut notes: Vec<String>,
    skipped_lines: usize,
    nemesis: usize,
    events: usize,
    fail_means: CasFail,
) -> Result<Imported, ImportError> {
    if events == 0 {
        return Err(err(
            0,
            if nemesis > 0 || skipped_lines > 0 {
                format!(
                    "no client operations ({nemesis} nemesis events and {skipped_lines} \
                     other lines skipped): nothing to check"
                )
            } else {
                "empty input: no operations to check".to_owned()
            },
        ));
    }
    let open: Vec<(ProcessId, usize)> = pairing.open_lines();
    if let Some(&(process, line)) = open.iter().max_by_key(|(_, l)| *l) {
        notes.push(format!(
            "{} operation{} never completed, so {} of unknown outcome (it may or may not \
             have taken effect); the last was invoked by process {process} on line {line}{}",
            open.len(),
            if open.len() == 1 { "" } else { "s" },
            if open.len() == 1 { "it is" } else { "they are" },
            if open.len() == 1 {
                " (a truncated history?)"
            } else {
                ""
            }
        ));
    }
    Ok(Imported {
        history: pairing.history,
        notes,
        skipped_lines,
        nemesis_events: nemesis,
        fail_means,
    })
}

/// Splits a stream of EDN text into top-level maps, tracking strings, comments and
/// nesting across lines; an optional vector around them all.
#[derive(Default)]
struct Scanner {
    /// Nesting depth inside the current map (0: between maps).
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Whether a `[` opened the history and no `]` closed it yet.
    in_vector: bool,
    /// Whether the history was a vector that is now closed.
    closed: bool,
    /// Whether any map was seen.
    seen_map: bool,
    /// The current map's text and the line it starts on.
    text: String,
    start_line: usize,
}

impl Scanner {
    fn feed(
        &mut self,
        line: usize,
        text: &str,
        on_map: &mut dyn FnMut(usize, &str) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let at = |col: usize, message: String| err(line, format!("column {col}: {message}"));
        for (i, c) in text.char_indices() {
            let col = text[..i].chars().count() + 1;
            if self.depth == 0 {
                match c {
                    c if c.is_whitespace() || c == ',' => {}
                    ';' => break,
                    '[' if !self.in_vector && !self.seen_map && !self.closed => {
                        self.in_vector = true;
                    }
                    ']' if self.in_vector => {
                        self.in_vector = false;
                        self.closed = true;
                    }
                    '{' if !self.closed => {
                        self.depth = 1;
                        self.seen_map = true;
                        self.start_line = line;
                        self.text.clear();
                        self.text.push(c);
                    }
                    _ if self.closed => {
                        return Err(at(
                            col,
                            format!(
                                "text after the history's closing `]`: `{}`",
                                preview(&text[i..])
                            ),
                        ));
                    }
                    _ => {
                        return Err(at(
                            col,
                            format!(
                                "expected an operation map `{{...}}`, found `{}`",
                                preview(&text[i..])
                            ),
                        ));
                    }
                }
                continue;
            }
            if self.text.len() + c.len_utf8() > MAX_LINE_BYTES {
                return Err(err(
                    self.start_line,
                    format!("an operation map longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            if self.in_string {
                self.text.push(c);
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_string = false;
                }
                continue;
            }
            match c {
                ';' => break,
                '"' => self.in_string = true,
                '{' | '[' | '(' => self.depth += 1,
                '}' | ']' | ')' => self.depth -= 1,
                _ => {}
            }
            self.text.push(c);
            if self.depth == 0 {
                let map = std::mem::take(&mut self.text);
                on_map(self.start_line, &map)?;
            }
        }
        if self.depth > 0 {
            self.text.push('\n');
        }
        Ok(())
    }
}

/// Turns EDN operation maps into records.
struct EdnOps {
    pairing: Pairing,
    fail_means: CasFail,
    /// Client events imported.
    events: usize,
    /// Nemesis (keyword process) events skipped.
    nemesis: usize,
}

impl EdnOps {
    fn map(&mut self, line: usize, text: &str) -> Result<(), ImportError> {
        let map = super::edn::parse_map(text).map_err(|m| err(line, m))?;
        let get = |name: &str| {
            map.get(name)
                .ok_or_else(|| err(line, format!("the operation has no :{name}")))
        };
        let kind = get("type")?.keyword(line, "type")?;
        let process = match get("process")? {
            Value::Int(p) => ProcessId::try_from(*p)
                .map_err(|_| err(line, format!(":process {p} is negative")))?,
            Value::Keyword(_) => {
                self.nemesis += 1;
                return Ok(());
            }
            other => {
                return Err(err(
                    line,
                    format!(
                        ":process must be an integer or a keyword such as :nemesis, not {other}"
                    ),
                ));
            }
        };
        let f = get("f")?.keyword(line, "f")?;
        let time_ns = (self.events + 1) as u64;
        self.events += 1;
        if matches!(f, "get" | "put" | "append") {
            return super::porcupine_event(&mut self.pairing, line, &map, process, time_ns);
        }
        if !matches!(f, "read" | "write" | "cas") {
            return Err(err(
                line,
                format!("unknown :f :{f} (expected :read, :write, :cas, :get, :put or :append)"),
            ));
        }
        let value = map.get("value").unwrap_or(&Value::Nil);
        match kind {
            "invoke" => {
                let key = match map.get("key") {
                    None => REGISTER_KEY.to_owned(),
                    Some(k) => scalar(k).unwrap_or_else(|| k.to_string()),
                };
                let call = match f {
                    "read" => Call::Get { key },
                    "write" => match scalar(value) {
                        Some(value) => Call::Put { key, value },
                        // Writing nil makes the register absent: a delete.
                        None => Call::Delete { key },
                    },
                    _ => {
                        let (old, new) = cas_pair(value).ok_or_else(|| {
                            err(line, format!("a :cas of {value}: expected `[old new]`"))
                        })?;
                        Call::Cas {
                            key,
                            expected: old,
                            new,
                        }
                    }
                };
                self.pairing.invoke(line, process, time_ns, f, call)
            }
            "ok" => {
                let ret = match f {
                    "read" => Ret::Value(scalar(value)),
                    "write" => Ret::Done,
                    _ => Ret::Cas(true),
                };
                self.pairing.complete(line, process, f, |id| Record::Ok {
                    id,
                    process,
                    time_ns,
                    ret,
                })
            }
            "fail" => {
                let refused = f == "cas" && self.fail_means == CasFail::CompareFailed;
                let error = map
                    .get("error")
                    .map_or_else(|| ":fail".to_owned(), |e| e.to_string());
                self.pairing.complete(line, process, f, |id| {
                    if refused {
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
                            error: preview(&error).to_owned(),
                        }
                    }
                })
            }
            "info" => {
                let reason = map
                    .get("error")
                    .map_or_else(|| ":info".to_owned(), |e| e.to_string());
                self.pairing.complete(line, process, f, |id| Record::Info {
                    id,
                    process,
                    time_ns,
                    reason: preview(&reason).to_owned(),
                })
            }
            other => Err(err(
                line,
                format!("unknown :type :{other} (expected :invoke, :ok, :fail or :info)"),
            )),
        }
    }
}

/// A register value as this crate's model holds it: `None` for `nil`, strings as they
/// are, anything else as its EDN text (so `2` and `"2"` are the same value; Jepsen's
/// histories never mix them).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Nil => None,
        Value::Str(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `[old new]` of a cas.
fn cas_pair(v: &Value) -> Option<(Option<String>, String)> {
    match v {
        Value::Vector(items) => match &items[..] {
            [old, new] => Some((scalar(old), scalar(new)?)),
            _ => None,
        },
        _ => None,
    }
}

/// Import a Jepsen text log (the etcd register test's, as Porcupine reads them): lines
/// `INFO  jepsen.util - <process> :<type> :<f> <value>`, the fields separated by tabs
/// or spaces. Lines of any other shape (Jepsen's own logging, nemesis lines) are
/// skipped and counted, as Porcupine does. Values and `:fail` as in
/// [`super::jepsen_etcd_with`], with `fail_means` for a cas's `:fail`.
pub fn jepsen_log<R: BufRead>(mut r: R, fail_means: CasFail) -> Result<Imported, ImportError> {
    let mut pairing = Pairing::default();
    let mut buf = Vec::new();
    let (mut line, mut skipped, mut nemesis, mut events) = (0usize, 0usize, 0usize, 0usize);
    let mut notes = Vec::new();
    while let Some((text, complete)) = next_line(&mut r, &mut buf, line + 1)? {
        line += 1;
        if line > super::MAX_IMPORT_LINES {
            return Err(err(
                line,
                format!("more than {} lines", super::MAX_IMPORT_LINES),
            ));
        }
        // A last line without its line end may have been cut: if it cannot be read,
        // say so rather than skip it silently.
        let truncated = |notes: &mut Vec<String>| {
            notes.push(format!(
                "line {line}, the last, has no line end and cannot be read (truncated?): \
                 it is skipped"
            ));
        };
        let Some((_, event)) = text.split_once("jepsen.util - ") else {
            if !complete {
                truncated(&mut notes);
                break;
            }
            if !text.trim().is_empty() {
                skipped += 1;
            }
            continue;
        };
        let mut rest = event.trim();
        let mut field = || {
            let (head, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            rest = tail.trim_start();
            head
        };
        let (process, kind, f) = (field(), field(), field());
        let value = rest.trim();
        let Ok(process) = process.parse::<ProcessId>() else {
            if process.starts_with(':') {
                nemesis += 1;
            } else if !complete {
                truncated(&mut notes);
                break;
            } else {
                skipped += 1;
            }
            continue;
        };
        if !matches!(kind, ":invoke" | ":ok" | ":fail" | ":info")
            || !matches!(f, ":read" | ":write" | ":cas")
        {
            if !complete {
                truncated(&mut notes);
                break;
            }
            skipped += 1;
            continue;
        }
        let event = super::etcd_event(
            &mut pairing,
            line,
            (process, kind, &f[1..], value),
            fail_means,
            events as u64 + 1,
        );
        match event {
            Ok(()) => events += 1,
            Err(_) if !complete => {
                truncated(&mut notes);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    finish(pairing, notes, skipped, nemesis, events, fail_means)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Budget, Verdict, check_history};

    fn edn(text: &str, fail_means: CasFail) -> Result<Imported, ImportError> {
        jepsen_edn(text.as_bytes(), fail_means)
    }

    fn verdict(imported: &Imported) -> Verdict {
        check_history(&imported.history, &Budget::default()).expect("well-formed")
    }

    /// A Knossos-style history: a vector, maps over several lines, comments, commas,
    /// integer values, a cas `[old new]`, `:time` and `:index`, and a nemesis.
    const KNOSSOS: &str = r#"; a cas register, as Jepsen writes it
[{:type :invoke, :f :write, :value 1, :process 0, :time 10, :index 0}
 {:type :ok,     :f :write, :value 1, :process 0, :time 20, :index 1}
 {:type :info, :f :start, :value nil, :process :nemesis, :time 21}
 {:type :invoke,
  :f :cas,      ; compare-and-set
  :value [1 2],
  :process 1, :time 30, :index 2}
 {:type :ok, :f :cas, :value [1 2], :process 1, :time 40, :index 3}
 {:type :invoke, :f :read, :value nil, :process 2, :time 50, :index 4}
 {:type :ok, :f :read, :value 2, :process 2, :time 60, :index 5}]
"#;

    #[test]
    fn a_knossos_vector_with_comments_and_multi_line_maps_is_read() {
        let imported = edn(KNOSSOS, CasFail::NoEffect).unwrap();
        assert_eq!(imported.history.records.len(), 6);
        assert_eq!(imported.nemesis_events, 1);
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        assert_eq!(verdict(&imported), Verdict::Linearizable);
        // The same read of 1 is stale.
        let stale = KNOSSOS.replace(":ok, :f :read, :value 2", ":ok, :f :read, :value 1");
        assert!(matches!(
            verdict(&edn(&stale, CasFail::NoEffect).unwrap()),
            Verdict::NotLinearizable(_)
        ));
    }

    #[test]
    fn one_map_per_line_with_string_and_vector_values_is_read() {
        let text = "{:process 0 :type :invoke :f :write :value \"a\"}\n\
                    {:process 0 :type :ok :f :write :value \"a\"}\n\
                    {:process 1 :type :invoke :f :write :value [1 2]}\n\
                    {:process 1 :type :ok :f :write :value [1 2]}\n\
                    {:process 0 :type :invoke :f :read :value nil}\n\
                    {:process 0 :type :ok :f :read :value [1 2]}\n";
        let imported = edn(text, CasFail::NoEffect).unwrap();
        assert_eq!(verdict(&imported), Verdict::Linearizable);
    }

    /// Jepsen's meaning of a cas `:fail` (it did not happen) against the other reading
    /// (the compare failed): a refused cas of the current value is a violation only
    /// under the second.
    #[test]
    fn fail_means_chooses_how_a_failed_cas_is_read() {
        let text = "{:process 0 :type :invoke :f :write :value 2}\n\
                    {:process 0 :type :ok :f :write :value 2}\n\
                    {:process 1 :type :invoke :f :cas :value [2 3]}\n\
                    {:process 1 :type :fail :f :cas :value [2 3]}\n";
        let jepsen = edn(text, CasFail::NoEffect).unwrap();
        assert_eq!(jepsen.fail_means, CasFail::NoEffect);
        assert_eq!(verdict(&jepsen), Verdict::Linearizable);
        let compare = edn(text, CasFail::CompareFailed).unwrap();
        assert!(matches!(verdict(&compare), Verdict::NotLinearizable(_)));
        assert!(CasFail::NoEffect.describe().contains("did not happen"));
    }

    #[test]
    fn a_jepsen_log_with_spaces_and_other_lines_is_read_and_the_rest_counted() {
        let log = "2017-01-01 INFO  jepsen.core - Running test\n\
                   INFO  jepsen.util - 0 :invoke :write 1\n\
                   INFO  jepsen.util - 0\t:ok\t:write\t1\n\
                   INFO  jepsen.util - :nemesis :info :start nil\n\
                   INFO  jepsen.util - 1   :invoke   :cas   [1 4]\n\
                   INFO  jepsen.util - 1 :ok :cas [1 4]\n\
                   INFO  jepsen.util - 2 :invoke :read nil\n\
                   INFO  jepsen.util - 2 :ok :read 4\n\
                   some other line\n";
        let imported = jepsen_log(log.as_bytes(), CasFail::CompareFailed).unwrap();
        assert_eq!(imported.history.records.len(), 6);
        assert_eq!(imported.skipped_lines, 2);
        assert_eq!(imported.nemesis_events, 1);
        assert_eq!(verdict(&imported), Verdict::Linearizable);
    }

    #[test]
    fn a_huge_value_is_never_echoed_whole() {
        let huge = "x".repeat(100_000);
        let bad = format!(
            "{{:process 0 :type :invoke :f :write :value {huge}}}\n{{:process 0 :type :ok :f :bogus}}\n"
        );
        let e = edn(&bad, CasFail::NoEffect).unwrap_err();
        assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
        let bad = format!("{{:process \"{huge}\" :type :invoke :f :write :value 1}}\n");
        let e = edn(&bad, CasFail::NoEffect).unwrap_err();
        assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
        assert!(e.to_string().contains('…'), "{e}");
        let log = format!("INFO  jepsen.util - 0 :invoke :write {huge}\n");
        let e = jepsen_log(log.as_bytes(), CasFail::CompareFailed).unwrap_err();
        assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
    }

    #[test]
    fn an_empty_input_is_an_error_not_a_linearizable_history() {
        for text in ["", "\n\n", "; only a comment\n", "[]"] {
            let e = edn(text, CasFail::NoEffect).unwrap_err();
            assert!(e.message.contains("no operations"), "{text:?}: {e}");
        }
        let e = jepsen_log(&b"INFO jepsen.core - nothing\n"[..], CasFail::NoEffect).unwrap_err();
        assert!(e.message.contains("nothing to check"), "{e}");
    }

    #[test]
    fn a_truncated_history_says_its_last_operation_became_unknown() {
        let text = "{:process 0 :type :invoke :f :write :value 1}\n\
                    {:process 0 :type :ok :f :write :value 1}\n\
                    {:process 1 :type :invoke :f :write :value 2}\n\
                    {:process 1 :type :ok :f :wri";
        let imported = edn(text, CasFail::NoEffect).unwrap();
        let notes = imported.notes.join(" ");
        assert!(notes.contains("truncated"), "{notes}");
        assert!(notes.contains("1 operation never completed"), "{notes}");
        assert!(notes.contains("line 3"), "{notes}");
        let log = "INFO  jepsen.util - 0 :invoke :write 1\nINFO  jepsen.util - 0 :ok :wr";
        let imported = jepsen_log(log.as_bytes(), CasFail::NoEffect).unwrap();
        let notes = imported.notes.join(" ");
        assert!(notes.contains("no line end"), "{notes}");
        assert!(notes.contains("unknown outcome"), "{notes}");
    }

    #[test]
    fn binary_input_errors_with_a_position() {
        let mut bytes = b"{:process 0 :type :invoke :f :write :value 1}\n{:pro".to_vec();
        bytes.extend([0xff, 0xfe, 0x00]);
        let e = jepsen_edn(&bytes[..], CasFail::NoEffect).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("column 6"), "{e}");
        assert!(e.message.contains("0xff"), "{e}");
        let e = jepsen_log(&bytes[..], CasFail::NoEffect).unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn messages_never_show_rust_debug_forms() {
        for bad in [
            "{:process 0 :type 2 :f :write :value 1}",
            "{:process [1] :type :invoke :f :write :value 1}",
            "{:process 0 :type :invoke :f 7 :value 1}",
            "{:process 0 :type :invoke :f :cas :value 3}",
            "{:process 0, :type :invoke, :f :put, :key 5, :value \"x\"}",
        ] {
            let e = edn(bad, CasFail::NoEffect).unwrap_err().to_string();
            for debug in ["Int(", "Str(", "Keyword(", "Vector(", "Some(", "None"] {
                assert!(!e.contains(debug), "{bad}: {e}");
            }
        }
    }
}
