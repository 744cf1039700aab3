//! A Rust client of `raftlab-node`'s HTTP API.
//!
//! - **Leader discovery.** Start from any member: requests carry
//!   `?redirect`, so a follower answers 307 with the leader's address, which
//!   the client follows and remembers.
//! - **Exactly-once.** Each client has a session id (`X-Client-Id`); each
//!   write a sequence number (`X-Client-Seq`), kept across its retries, so a
//!   write retried after a timeout takes effect once.
//! - **Timeouts.** Each attempt is bounded ([`Client::attempt_timeout`]),
//!   and so is an operation with its retries ([`Client::op_timeout`]).
//! - **Typed errors.** [`Error::Definite`]: the operation did not and will
//!   not take effect. [`Error::Indefinite`]: it may have (a timeout after the
//!   request was sent, a node that answered so).
//!
//! The HTTP is a small blocking HTTP/1.1 client over `std::net` ([`http`]):
//! no runtime, no TLS, no dependency beyond serde_json.

pub mod http;

use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime};

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The operation did not take effect, and never will.
    Definite {
        /// The HTTP status (0 if no node could be reached).
        status: u16,
        /// What went wrong.
        message: String,
    },
    /// The operation may or may not take effect.
    Indefinite {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// Whether the operation is known not to have taken effect.
    pub fn is_definite(&self) -> bool {
        matches!(self, Error::Definite { .. })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Definite { status, message } => write!(f, "failed ({status}): {message}"),
            Error::Indefinite { message } => write!(f, "outcome unknown: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// One write of a [`Client::batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchWrite {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `value` if it holds `expected` (`None`: absent); else
    /// the whole batch is aborted.
    Cas {
        /// The key.
        key: String,
        /// The value it must hold.
        expected: Option<String>,
        /// Its new value.
        value: String,
    },
    /// Append `value` to `key`'s value.
    Append {
        /// The key.
        key: String,
        /// The suffix.
        value: String,
    },
}

/// A session id no other client has: the clock and the process id alone
/// are not enough (two clients made in the same nanosecond, which a busy
/// process with several client threads does, got the same id, and one's
/// first write was answered with the other's cached result, never applied:
/// found by `cargo xtask jepsen`). So a per-process counter and the OS's
/// per-process random hash keys are mixed in too.
fn fresh_client_id() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static MADE: AtomicU64 = AtomicU64::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let random = std::collections::hash_map::RandomState::new().hash_one(n);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // Top bit clear: the node draws its own sessions with it set.
    ((z ^ random ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 1).max(1)
}

/// A client with one session.
#[derive(Clone, Debug)]
pub struct Client {
    endpoints: Vec<String>,
    current: usize,
    client_id: u64,
    seq: u64,
    /// Bound on one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Bound on an operation with all its retries.
    pub op_timeout: Duration,
}

/// What one answer means to the retry loop.
enum Step {
    Done(http::Response),
    Retry { maybe_applied: bool, why: String },
    Fail(Error),
}

impl Client {
    /// A client of the cluster whose members' HTTP addresses
    /// (`host:port`) are `endpoints`, with a fresh session.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Client {
        Client::with_session(endpoints, fresh_client_id())
    }

    /// A client with a given session id (a positive integer below 2^63):
    /// to resume a session, or for a test that needs a known id. Two
    /// clients must never share an id: the second's writes would be taken
    /// for retries of the first's and answered from its cache, unapplied.
    pub fn with_session<S: Into<String>>(
        endpoints: impl IntoIterator<Item = S>,
        client_id: u64,
    ) -> Client {
        Client {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            current: 0,
            client_id,
            seq: 0,
            attempt_timeout: Duration::from_secs(2),
            op_timeout: Duration::from_secs(10),
        }
    }

    /// This client's session id.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The endpoint the client talks to now (the leader, once discovered).
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current]
    }

    /// Reads `key` (linearizable): its value, or `None` if absent.
    pub fn get(&mut self, key: &str) -> Result<Option<String>, Error> {
        let r = self.call("GET", key, "", None)?;
        match r.status {
            404 => Ok(None),
            _ => Ok(json_of(&r)["value"].as_str().map(str::to_owned)),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.call("PUT", key, "", Some(json!({ "value": value })))
            .map(drop)
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &str) -> Result<(), Error> {
        self.call("DELETE", key, "", None).map(drop)
    }

    /// Appends `value` to `key`'s value.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.call("POST", key, "/append", Some(json!({ "value": value })))
            .map(drop)
    }

    /// Sets `key` to `value` if it holds `expected` (`None`: absent).
    /// `Ok(false)` if it did not.
    pub fn cas(&mut self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, Error> {
        let body = json!({ "expected": expected, "value": value });
        let r = self.call("POST", key, "/cas", Some(body))?;
        Ok(r.status != 409)
    }

    /// Applies `writes` (on distinct keys) atomically: `Ok(None)` when all
    /// took effect, `Ok(Some(i))` when the compare-and-swap at position `i`
    /// failed and none did.
    pub fn batch(&mut self, writes: &[BatchWrite]) -> Result<Option<u32>, Error> {
        let ops: Vec<Value> = writes
            .iter()
            .map(|w| match w {
                BatchWrite::Put { key, value } => json!({"op": "put", "key": key, "value": value}),
                BatchWrite::Delete { key } => json!({"op": "delete", "key": key}),
                BatchWrite::Cas {
                    key,
                    expected,
                    value,
                } => json!({"op": "cas", "key": key, "expected": expected, "value": value}),
                BatchWrite::Append { key, value } => {
                    json!({"op": "append", "key": key, "value": value})
                }
            })
            .collect();
        let r = self.call_path(
            "POST",
            "/batch?redirect".into(),
            Some(json!({ "ops": ops })),
        )?;
        Ok(match r.status {
            409 => json_of(&r)["failed_op"].as_u64().map(|i| i as u32),
            _ => None,
        })
    }

    fn call(
        &mut self,
        method: &str,
        key: &str,
        suffix: &str,
        body: Option<Value>,
    ) -> Result<http::Response, Error> {
        let path = format!("/kv/{}{suffix}?redirect", encode_key(key));
        self.call_path(method, path, body)
    }

    fn call_path(
        &mut self,
        method: &str,
        path: String,
        body: Option<Value>,
    ) -> Result<http::Response, Error> {
        let write = method != "GET";
        if write {
            self.seq += 1;
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let client_id = self.client_id.to_string();
        let seq = self.seq.to_string();
        let mut headers = vec![("Content-Type", "application/json")];
        if write {
            headers.push(("X-Client-Id", &client_id));
            headers.push(("X-Client-Seq", &seq));
        }
        let deadline = Instant::now() + self.op_timeout;
        let mut maybe_applied = false;
        let mut last = String::from("no attempt made");
        let mut redirects = 0;
        while Instant::now() < deadline {
            let addr = self.endpoints[self.current].clone();
            let answer = http::request(
                &addr,
                method,
                &path,
                &headers,
                body.as_bytes(),
                self.attempt_timeout,
            );
            match self.judge(answer, write, &mut redirects) {
                Step::Done(r) => return Ok(r),
                Step::Fail(e) => return Err(e),
                Step::Retry {
                    maybe_applied: m,
                    why,
                } => {
                    maybe_applied |= m;
                    last = why;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if maybe_applied {
            Err(Error::Indefinite {
                message: format!("gave up after {:?}: {last}", self.op_timeout),
            })
        } else {
            Err(Error::Definite {
                status: 0,
                message: format!("gave up after {:?}: {last}", self.op_timeout),
            })
        }
    }

    fn rotate(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len();
    }

    fn judge(
        &mut self,
        answer: Result<http::Response, http::HttpError>,
        write: bool,
        redirects: &mut u32,
    ) -> Step {
        let r = match answer {
            Ok(r) => r,
            Err(http::HttpError::Connect(e)) => {
                self.rotate();
                return Step::Retry {
                    maybe_applied: false,
                    why: format!("cannot connect: {e}"),
                };
            }
            Err(e) => {
                self.rotate();
                return Step::Retry {
                    maybe_applied: write,
                    why: e.to_string(),
                };
            }
        };
        match r.status {
            200..=299 | 404 | 409 => Step::Done(r),
            307 => {
                *redirects += 1;
                match r.header("location").and_then(authority) {
                    Some(leader) if *redirects < 8 => {
                        match self.endpoints.iter().position(|e| *e == leader) {
                            Some(i) => self.current = i,
                            None => {
                                self.endpoints.push(leader);
                                self.current = self.endpoints.len() - 1;
                            }
                        }
                        Step::Retry {
                            maybe_applied: false,
                            why: "redirected".into(),
                        }
                    }
                    _ => {
                        self.rotate();
                        Step::Retry {
                            maybe_applied: false,
                            why: "bad or looping redirect".into(),
                        }
                    }
                }
            }
            status => {
                let body = json_of(&r);
                let message = body["error"].as_str().unwrap_or("").to_owned();
                let definite = body["definite"].as_bool().unwrap_or(false);
                if (500..600).contains(&status) || status == 429 {
                    self.rotate();
                    Step::Retry {
                        maybe_applied: write && !definite,
                        why: format!("{status}: {message}"),
                    }
                } else if definite {
                    Step::Fail(Error::Definite { status, message })
                } else {
                    Step::Fail(Error::Indefinite { message })
                }
            }
        }
    }
}

fn json_of(r: &http::Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// `host:port` of an `http://host:port/...` URL.
fn authority(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    Some(rest.split('/').next()?.to_owned()).filter(|a| !a.is_empty())
}

/// Percent-encodes a key for a path segment.
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_made_at_once_on_many_threads_never_share_a_session() {
        let ids: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..5_000)
                            .map(|_| Client::new(["127.0.0.1:1"]).client_id())
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let distinct: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "two clients share a session id");
        assert!(ids.iter().all(|&id| (1..1 << 63).contains(&id)));
    }

    #[test]
    fn keys_are_encoded_and_locations_parsed() {
        assert_eq!(encode_key("a b/c"), "a%20b%2Fc");
        assert_eq!(
            authority("http://127.0.0.1:8082/kv/x?redirect").as_deref(),
            Some("127.0.0.1:8082")
        );
        assert_eq!(authority("ftp://x"), None);
    }

    #[test]
    fn an_unreachable_cluster_is_a_definite_failure() {
        // Port 9 (discard) on loopback: nothing listens in tests.
        let mut c = Client::new(["127.0.0.1:9"]);
        c.op_timeout = Duration::from_millis(200);
        let err = c.put("k", "v").unwrap_err();
        assert!(err.is_definite(), "{err}");
    }
}
