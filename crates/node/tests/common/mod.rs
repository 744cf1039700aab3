//! Real `raftlab-node` processes on loopback for the tests: free ports
//! found by binding port 0, data under a temp dir, every child killed on
//! drop. Only 127.0.0.1 is ever used.

#![allow(dead_code)]

use client::http::{self, Response};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Free loopback ports, all bound at once (so no two are the same), then
/// released for the nodes to bind.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// One node's addresses and process.
pub struct NodeProc {
    pub id: u64,
    pub http: String,
    pub peer: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
}

/// A local cluster of real processes.
pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    pub extra_args: Vec<String>,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` founding members.
    pub fn start(n: u64, extra_args: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let ports = free_ports(2 * n as usize);
        let nodes = (1..=n)
            .map(|id| NodeProc {
                id,
                http: format!("127.0.0.1:{}", ports[2 * (id as usize - 1)]),
                peer: format!("127.0.0.1:{}", ports[2 * (id as usize - 1) + 1]),
                dir: tmp.path().join(format!("node{id}")),
                child: None,
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            tmp,
        };
        for i in 0..n as usize {
            cluster.spawn(i, true);
        }
        cluster
    }

    /// Starts node `i` (bootstrap or restart) with every founding member
    /// in `--peers`.
    pub fn spawn(&mut self, i: usize, bootstrap: bool) {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.peer))
            .collect();
        let peers = peers.join(",");
        let mut args = vec!["--peers", &peers];
        if bootstrap {
            args.push("--bootstrap");
        }
        self.start_process(i, &args);
    }

    /// Starts a new node that joins the running cluster through `via` (an
    /// HTTP address); returns its index in `nodes`.
    pub fn join(&mut self, via: &str) -> usize {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let ports = free_ports(2);
        self.nodes.push(NodeProc {
            id,
            http: format!("127.0.0.1:{}", ports[0]),
            peer: format!("127.0.0.1:{}", ports[1]),
            dir: self.tmp.path().join(format!("node{id}")),
            child: None,
        });
        let i = self.nodes.len() - 1;
        self.start_process(i, &["--join", via]);
        i
    }

    /// Restarts node `i` from its data dir with no member list on the
    /// command line (what a joined node knows is in its data dir).
    pub fn restart_alone(&mut self, i: usize) {
        self.start_process(i, &[]);
    }

    fn start_process(&mut self, i: usize, args: &[&str]) {
        let node = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.path().join(format!("node{}.log", node.id)))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_raftlab-node"))
            .args(["--node-id", &node.id.to_string()])
            .args(["--data-dir", node.dir.to_str().unwrap()])
            .args(["--http-addr", &node.http])
            .args(["--peer-addr", &node.peer])
            .args(args)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i].child = Some(child);
    }

    /// kill -9 of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The endpoints of the nodes running.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.http.clone())
            .collect()
    }

    /// Polls until some running node is leader and every running node
    /// knows it; returns the leader's index in `nodes`.
    pub fn wait_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let statuses: Vec<Option<serde_json::Value>> = self
                .nodes
                .iter()
                .map(|n| n.child.as_ref().and_then(|_| status(&n.http)))
                .collect();
            let leaders: Vec<usize> = statuses
                .iter()
                .enumerate()
                .filter(|(_, s)| s.as_ref().is_some_and(|s| s["role"] == "leader"))
                .map(|(i, _)| i)
                .collect();
            if let [leader] = leaders[..] {
                let id = self.nodes[leader].id;
                let agreed = statuses.iter().enumerate().all(|(i, s)| {
                    self.nodes[i].child.is_none() || s.as_ref().is_some_and(|s| s["leader"] == id)
                });
                if agreed {
                    return leader;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "no leader within {within:?}; logs in {}",
            self.tmp.path().display()
        );
    }

    /// The text of node `i`'s log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(
            self.tmp
                .path()
                .join(format!("node{}.log", self.nodes[i].id)),
        )
        .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A request with a generous timeout.
pub fn req(addr: &str, method: &str, path: &str, body: &str) -> Response {
    http::request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{method} {addr}{path}: {e}"))
}

/// `/admin/status` as JSON, if the node answers.
pub fn status(addr: &str) -> Option<serde_json::Value> {
    let r = http::request(
        addr,
        "GET",
        "/admin/status",
        &[],
        b"",
        Duration::from_secs(2),
    )
    .ok()?;
    serde_json::from_slice(&r.body).ok()
}

/// The JSON body of `r`.
pub fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.text()))
}

/// The value of metric line `name` (with its labels, exactly) at `addr`.
pub fn metric(addr: &str, name: &str) -> f64 {
    let text = req(addr, "GET", "/metrics", "").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Polls `check` every 25 ms until it holds or `within` passes.
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("not within {within:?}: {what}");
}
