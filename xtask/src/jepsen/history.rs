//! The clients and the history they record.
//!
//! Each client is a Jepsen process: one operation at a time, through
//! crates/client, against a node drawn for each operation (so that every
//! node's read path is exercised, not only the leader's). The history is in
//! the simulator's format (`check::Record`), with times in nanoseconds of
//! real time since the run's start. An outcome the client cannot know (a
//! timeout after the request may have been sent, an indefinite error) is
//! recorded as `info`, never guessed.
//!
//! Keys: `r*` registers of unique puts and gets (decided in polynomial
//! time), `c*` registers with compare-and-swap, `a*` lists of unique
//! appends. Each key name carries a generation that moves every
//! [`KEY_GENERATION`], as Jepsen rotates keys, so that no key's history
//! grows past what the checker decides quickly.

use super::rng::SplitMix;
use check::{Call, History, Record, Ret};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long one key is used before the clients move to the next generation.
pub const KEY_GENERATION: Duration = Duration::from_secs(10);
/// Bound on one HTTP attempt of a client.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on one operation with its retries: past it, unknown (or failed if
/// nothing can have taken effect).
pub const OP_TIMEOUT: Duration = Duration::from_secs(4);

/// The history being recorded, with the run's time origin.
pub struct Recorder {
    origin: Instant,
    inner: Mutex<(History, u64)>,
}

impl Recorder {
    /// An empty history whose time 0 is `origin`.
    pub fn new(origin: Instant) -> Recorder {
        Recorder {
            origin,
            inner: Mutex::new((History::new(), 0)),
        }
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Records an invocation; its operation id. The time is read under the
    /// lock, so records are in time order.
    pub fn invoke(&self, process: u64, call: Call) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += 1;
        let id = g.1;
        let time_ns = self.now_ns();
        g.0.push(Record::Invoke {
            id,
            process,
            time_ns,
            call,
        });
        id
    }

    /// Records a completion built by `make` from the time.
    pub fn complete(&self, make: impl FnOnce(u64) -> Record) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let time_ns = self.now_ns();
        g.0.push(make(time_ns));
    }

    /// The history so far.
    pub fn history(&self) -> History {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

/// What the clients share with the driver.
pub struct Shared {
    /// The history.
    pub recorder: Recorder,
    /// The endpoints clients may use (a removed node leaves it).
    pub endpoints: RwLock<Vec<String>>,
    /// Set when clients must stop invoking.
    pub stop: AtomicBool,
    /// Every key used, for the read-back after the heal.
    pub keys: Mutex<std::collections::BTreeSet<String>>,
}

/// The outcome of one client call, before it is recorded.
pub enum Outcome {
    /// Done, with this result.
    Ok(Ret),
    /// Definitely not done.
    Fail(String),
    /// Perhaps done.
    Unknown(String),
}

/// Runs `call` through a fresh `client::Client` that starts at `start` of
/// `endpoints`, with the run's timeouts.
pub fn perform(endpoints: &[String], start: usize, call: &Call) -> Outcome {
    perform_with(endpoints, start, call, ATTEMPT_TIMEOUT, OP_TIMEOUT)
}

/// [`perform`] with these timeouts (per attempt, per operation).
pub fn perform_with(
    endpoints: &[String],
    start: usize,
    call: &Call,
    attempt: Duration,
    op: Duration,
) -> Outcome {
    let mut ends = endpoints.to_vec();
    if !ends.is_empty() {
        let n = ends.len();
        ends.rotate_left(start % n);
    }
    // A fresh session per operation: the operation's retries share it
    // (exactly once), and the next operation may start at another node.
    let mut c = client::Client::new(ends);
    c.attempt_timeout = attempt;
    c.op_timeout = op;
    let result = match call {
        Call::Get { key } => c.get(key).map(Ret::Value),
        Call::Put { key, value } => c.put(key, value).map(|()| Ret::Done),
        Call::Delete { key } => c.delete(key).map(|()| Ret::Done),
        Call::Cas { key, expected, new } => c.cas(key, expected.as_deref(), new).map(Ret::Cas),
        Call::Append { key, value } => c.append(key, value).map(|()| Ret::Done),
        Call::Batch { ops } => {
            let writes: Vec<client::BatchWrite> = ops
                .iter()
                .filter_map(|op| match op.clone() {
                    Call::Put { key, value } => Some(client::BatchWrite::Put { key, value }),
                    Call::Delete { key } => Some(client::BatchWrite::Delete { key }),
                    Call::Cas { key, expected, new } => Some(client::BatchWrite::Cas {
                        key,
                        expected,
                        value: new,
                    }),
                    Call::Append { key, value } => Some(client::BatchWrite::Append { key, value }),
                    // A batch holds writes only (`Call::malformed`).
                    Call::Get { .. } | Call::Batch { .. } => None,
                })
                .collect();
            c.batch(&writes).map(Ret::Batch)
        }
    };
    match result {
        Ok(ret) => Outcome::Ok(ret),
        Err(e @ client::Error::Definite { .. }) => Outcome::Fail(e.to_string()),
        Err(e) => Outcome::Unknown(e.to_string()),
    }
}

/// Records `call` by `process` performed at endpoint `start`.
pub fn record(shared: &Shared, process: u64, start: usize, call: Call) -> Outcome {
    let endpoints = shared
        .endpoints
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let id = shared.recorder.invoke(process, call.clone());
    let outcome = perform(&endpoints, start, &call);
    shared.recorder.complete(|time_ns| match &outcome {
        Outcome::Ok(ret) => Record::Ok {
            id,
            process,
            time_ns,
            ret: ret.clone(),
        },
        Outcome::Fail(error) => Record::Fail {
            id,
            process,
            time_ns,
            error: error.clone(),
        },
        Outcome::Unknown(reason) => Record::Info {
            id,
            process,
            time_ns,
            reason: reason.clone(),
        },
    });
    outcome
}

/// One client's loop until `shared.stop`: draws an operation, performs it
/// against a drawn node, records it.
pub fn client_loop(shared: Arc<Shared>, process: u64, seed: u64, keys: usize, started: Instant) {
    let mut rng = SplitMix::new(seed ^ process.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut n: u64 = 0;
    // What this client last saw in each cas key: the `expected` of its next
    // cas, so that some succeed.
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    while !shared.stop.load(Ordering::SeqCst) {
        n += 1;
        let generation = started.elapsed().as_secs() / KEY_GENERATION.as_secs().max(1);
        let slot = rng.below(keys.max(1) as u64);
        let value = format!("p{process}-{n}");
        let (key, call) = match slot % 3 {
            0 => {
                let key = format!("r{slot}-g{generation}");
                let call = if rng.below(2) == 0 {
                    Call::Get { key: key.clone() }
                } else {
                    Call::Put {
                        key: key.clone(),
                        value,
                    }
                };
                (key, call)
            }
            1 => {
                let key = format!("c{slot}-g{generation}");
                let call = match rng.below(5) {
                    0 | 1 => Call::Get { key: key.clone() },
                    2 => Call::Put {
                        key: key.clone(),
                        value,
                    },
                    _ => Call::Cas {
                        key: key.clone(),
                        expected: seen.get(&key).cloned().flatten(),
                        new: value,
                    },
                };
                (key, call)
            }
            _ => {
                let key = format!("a{slot}-g{generation}");
                let call = if rng.below(2) == 0 {
                    Call::Get { key: key.clone() }
                } else {
                    Call::Append {
                        key: key.clone(),
                        value: format!("{value};"),
                    }
                };
                (key, call)
            }
        };
        shared
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        let start = rng.below(64) as usize;
        let outcome = record(&shared, process, start, call.clone());
        if let Outcome::Ok(ret) = outcome {
            match (&call, ret) {
                (Call::Get { .. }, Ret::Value(v)) => {
                    seen.insert(key, v);
                }
                (Call::Put { value, .. }, _) => {
                    seen.insert(key, Some(value.clone()));
                }
                (Call::Cas { new, .. }, Ret::Cas(true)) => {
                    seen.insert(key, Some(new.clone()));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts connections and never answers: every request
    /// reaches it, and no outcome comes back.
    fn silent_server() -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().take(64) {
                match conn {
                    Ok(c) => held.push(c),
                    Err(_) => break,
                }
            }
        });
        (addr, handle)
    }

    #[test]
    fn an_unanswered_write_is_unknown_and_an_unanswered_read_failed() {
        let (addr, _server) = silent_server();
        let ends = vec![addr];
        let (attempt, op) = (Duration::from_millis(100), Duration::from_millis(400));
        let put = Call::Put {
            key: "k".into(),
            value: "v".into(),
        };
        assert!(
            matches!(
                perform_with(&ends, 0, &put, attempt, op),
                Outcome::Unknown(_)
            ),
            "a write sent and never answered may have taken effect"
        );
        let get = Call::Get { key: "k".into() };
        assert!(
            matches!(perform_with(&ends, 0, &get, attempt, op), Outcome::Fail(_)),
            "a read has no effect, so an unanswered one simply failed"
        );
        // Nothing listening: nothing was sent, so a write definitely failed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        assert!(matches!(
            perform_with(&[closed], 0, &put, attempt, op),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn records_are_in_time_order_and_pair_up() {
        let r = Recorder::new(Instant::now());
        let a = r.invoke(1, Call::Get { key: "k".into() });
        let b = r.invoke(2, Call::Get { key: "k".into() });
        r.complete(|time_ns| Record::Ok {
            id: b,
            process: 2,
            time_ns,
            ret: Ret::Value(None),
        });
        r.complete(|time_ns| Record::Info {
            id: a,
            process: 1,
            time_ns,
            reason: "timeout".into(),
        });
        let h = r.history();
        assert!(
            h.records
                .windows(2)
                .all(|w| w[0].time_ns() <= w[1].time_ns())
        );
        let ops = h.operations().unwrap();
        assert_eq!(ops.len(), 2);
        assert!(
            ops.iter()
                .any(|o| o.id == a && o.outcome == check::Outcome::Unknown)
        );
    }
}
