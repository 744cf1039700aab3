//! The checks after the heal, on the healed cluster:
//!
//! 1. it serves again within the bound: a write through the cluster
//!    succeeds, and every member applies the same index;
//! 2. the members' state digests (`/admin/status` `digest`) agree at that
//!    index;
//! 3. every key ever used is read from every member's own copy
//!    (`?consistency=stale`, once all applied the same index), and these
//!    reads join the history, so the checker proves that no acknowledged
//!    write is missing from any node; every acknowledged append is also
//!    looked for by name, so that a lost one is reported as such.

use super::history::{Outcome, Shared, record};
use super::procs::Cluster;
use check::{Call, Ret};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Processes of the after-heal operations: the probe write, and node i's
/// read-back as `READ_BACK_PROCESS + i`.
pub const PROBE_PROCESS: u64 = 10_000;
/// See [`PROBE_PROCESS`].
pub const READ_BACK_PROCESS: u64 = 20_000;

/// What the checks found.
#[derive(Debug, Default)]
pub struct AfterHeal {
    /// How long after the heal every member served and agreed.
    pub recovered_in: Option<Duration>,
    /// Safety problems: digests that differ, acknowledged writes lost.
    pub violations: Vec<String>,
    /// Liveness problems: no write, no convergence within the bound.
    pub liveness: Vec<String>,
    /// Each member's (id, applied index, digest) at the end.
    pub digests: Vec<(u64, u64, String)>,
    /// Acknowledged appends looked for on every node.
    pub appends_checked: usize,
}

/// Runs the checks; `bound` limits the wait for service and convergence.
pub fn check(cluster: &Cluster, shared: &Shared, bound: Duration) -> AfterHeal {
    let mut out = AfterHeal::default();
    let started = Instant::now();
    let deadline = started + bound;
    let members: Vec<usize> = (0..cluster.nodes.len())
        .filter(|&i| !cluster.nodes[i].removed && cluster.nodes[i].running())
        .collect();

    // 1. A write goes through.
    let mut n = 0;
    let wrote = loop {
        n += 1;
        let call = Call::Put {
            key: "after-heal-probe".into(),
            value: format!("probe-{n}"),
        };
        if let Outcome::Ok(_) = record(shared, PROBE_PROCESS, n, call) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
    };
    if !wrote {
        out.liveness
            .push(format!("no write succeeded within {bound:?} of the heal"));
        return out;
    }

    // 2. Every member applies the same index, and their digests agree.
    let converged = super::faults::wait(deadline, || {
        let s: Vec<Option<serde_json::Value>> = members
            .iter()
            .map(|&i| cluster.status(i, Duration::from_millis(500)))
            .collect();
        let applied: Vec<Option<u64>> = s
            .iter()
            .map(|s| s.as_ref().and_then(|s| s["applied"].as_u64()))
            .collect();
        let commit: Vec<Option<u64>> = s
            .iter()
            .map(|s| s.as_ref().and_then(|s| s["commit"].as_u64()))
            .collect();
        let same = applied.iter().all(|a| a.is_some() && *a == applied[0])
            && commit.iter().all(|c| *c == applied[0]);
        if same {
            out.digests = members
                .iter()
                .zip(&s)
                .map(|(&i, s)| {
                    let s = s.as_ref().expect("checked above");
                    (
                        cluster.nodes[i].id,
                        s["applied"].as_u64().unwrap_or(0),
                        s["digest"].as_str().unwrap_or("missing").to_string(),
                    )
                })
                .collect();
        }
        same
    });
    if !converged {
        let states: Vec<String> = members
            .iter()
            .map(|&i| {
                let s = cluster.status(i, Duration::from_millis(500));
                format!(
                    "node {}: {}",
                    cluster.nodes[i].id,
                    s.map_or("no answer".into(), |s| format!(
                        "applied {} of commit {}",
                        s["applied"], s["commit"]
                    ))
                )
            })
            .collect();
        out.liveness.push(format!(
            "the members did not apply the same index within {bound:?} of the heal ({})",
            states.join(", ")
        ));
        return out;
    }
    out.recovered_in = Some(started.elapsed());
    let digests: BTreeMap<&str, Vec<u64>> =
        out.digests
            .iter()
            .fold(BTreeMap::new(), |mut m, (id, _, d)| {
                m.entry(d.as_str()).or_default().push(*id);
                m
            });
    if digests.len() > 1 {
        out.violations.push(format!(
            "state digests differ at applied index {}: {}",
            out.digests[0].1,
            digests
                .iter()
                .map(|(d, ids)| format!("{d} on nodes {ids:?}"))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }

    // 3. Every key from every member's own copy.
    let keys: Vec<String> = shared
        .keys
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut finals: BTreeMap<(String, u64), Option<String>> = BTreeMap::new();
    // Bounded too: a node that stops answering must not hold the run.
    let read_deadline = Instant::now() + bound;
    for &i in &members {
        let node = &cluster.nodes[i];
        for key in &keys {
            if Instant::now() >= read_deadline {
                out.liveness.push(format!(
                    "the read-back of every key from every node did not finish within {bound:?}"
                ));
                return out;
            }
            let process = READ_BACK_PROCESS + node.id;
            let id = shared
                .recorder
                .invoke(process, Call::Get { key: key.clone() });
            let got = local_read(&node.http, key);
            shared.recorder.complete(|time_ns| match &got {
                Ok(v) => check::Record::Ok {
                    id,
                    process,
                    time_ns,
                    ret: Ret::Value(v.clone()),
                },
                Err(e) => check::Record::Fail {
                    id,
                    process,
                    time_ns,
                    error: e.clone(),
                },
            });
            match got {
                Ok(v) => {
                    finals.insert((key.clone(), node.id), v);
                }
                Err(e) => out.liveness.push(format!(
                    "node {} did not answer a read of {key:?} after the heal: {e}",
                    node.id
                )),
            }
        }
    }

    // Acknowledged appends, by name, on every node.
    let history = shared.recorder.history();
    let mut lost = Vec::new();
    if let Ok(ops) = history.operations() {
        for op in &ops {
            let (Call::Append { key, value }, check::Outcome::Ok(_)) = (&op.call, &op.outcome)
            else {
                continue;
            };
            out.appends_checked += 1;
            for ((k, node), v) in finals.range((key.clone(), 0)..=(key.clone(), u64::MAX)) {
                debug_assert_eq!(k, key);
                if !v
                    .as_deref()
                    .unwrap_or("")
                    .split(';')
                    .any(|t| !t.is_empty() && value.strip_suffix(';') == Some(t))
                {
                    lost.push(format!(
                        "append {value:?} to {key} (op #{}) is missing on node {node}",
                        op.id
                    ));
                }
            }
        }
    }
    if !lost.is_empty() {
        out.violations.push(format!(
            "{} acknowledged write(s) lost: {}{}",
            lost.len(),
            lost[..lost.len().min(5)].join("; "),
            if lost.len() > 5 { "; ..." } else { "" }
        ));
    }
    out
}

/// Node `http`'s own copy of `key` (`?consistency=stale`).
fn local_read(http: &str, key: &str) -> Result<Option<String>, String> {
    let path = format!("/kv/{}?consistency=stale", client::encode_key(key));
    let r = client::http::request(http, "GET", &path, &[], b"", Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    match r.status {
        200 => Ok(body["value"].as_str().map(str::to_owned)),
        404 => Ok(None),
        s => Err(format!("{s}: {}", body["error"].as_str().unwrap_or(""))),
    }
}
