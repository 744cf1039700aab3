//! The real `raftlab-node` processes of one run: start, kill -9, restart,
//! SIGSTOP and SIGCONT, and their status over HTTP.
//!
//! Every node is started with `PR_SET_PDEATHSIG`, so that no node outlives
//! the driver even if the driver itself is killed with SIGKILL (the
//! `Drop` of [`Cluster`] covers every other way out).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node: its addresses, directory and process.
pub struct Node {
    /// The node's id (1-based, never reused).
    pub id: u64,
    /// Its HTTP address (`host:port`), where clients connect.
    pub http: String,
    /// Its peer address (`host:port`).
    pub peer: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its log file (stdout and stderr of every incarnation, appended).
    pub log: PathBuf,
    /// The network namespace it runs in, if any.
    pub netns: Option<String>,
    /// The running process, if any.
    child: Option<Child>,
    /// Whether the process is stopped (SIGSTOP).
    pub paused: bool,
    /// Whether the node was removed from the cluster (never restarted).
    pub removed: bool,
    /// Whether the node joined a running cluster (`--join`) rather than
    /// founding it: it restarts from its data dir alone (its member list
    /// is there), without the founders' `--peers`.
    pub joined: bool,
}

impl Node {
    /// Whether a process runs (paused or not).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// The nodes of one run.
pub struct Cluster {
    binary: PathBuf,
    /// The nodes, by index (node id = index + 1).
    pub nodes: Vec<Node>,
    /// Extra flags for every node (timings, unsafe settings).
    extra: Vec<String>,
}

impl Cluster {
    /// A cluster of founding `nodes` (not started yet), each given as its
    /// (HTTP, peer) addresses and its namespace, if any.
    pub fn new(
        binary: &Path,
        dir: &Path,
        nodes: &[(String, String, Option<String>)],
        extra: Vec<String>,
    ) -> Cluster {
        let nodes = nodes
            .iter()
            .enumerate()
            .map(|(i, (http, peer, netns))| {
                let id = i as u64 + 1;
                Node {
                    id,
                    http: http.clone(),
                    peer: peer.clone(),
                    dir: dir.join(format!("node{id}")),
                    log: dir.join(format!("node{id}.log")),
                    netns: netns.clone(),
                    child: None,
                    paused: false,
                    removed: false,
                    joined: false,
                }
            })
            .collect();
        Cluster {
            binary: binary.to_path_buf(),
            nodes,
            extra,
        }
    }

    /// The HTTP addresses of every node not removed.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !n.removed)
            .map(|n| n.http.clone())
            .collect()
    }

    /// Adds a node (not started) at these addresses; its index. Its id is
    /// the next one: ids are never reused.
    pub fn add(&mut self, http: String, peer: String, netns: Option<String>) -> usize {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let dir = self.nodes[0]
            .dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.nodes.push(Node {
            id,
            http,
            peer,
            dir: dir.join(format!("node{id}")),
            log: dir.join(format!("node{id}.log")),
            netns,
            child: None,
            paused: false,
            removed: false,
            joined: true,
        });
        self.nodes.len() - 1
    }

    /// Starts node `i`: founding (`--bootstrap`), joining through the
    /// member at `join` (`--join`), or a restart from its dir.
    pub fn spawn(&mut self, i: usize, bootstrap: bool) -> Result<(), String> {
        self.start(i, bootstrap, None)
    }

    /// Starts node `i` with `--join via`.
    pub fn spawn_join(&mut self, i: usize, via: &str) -> Result<(), String> {
        self.start(i, false, Some(via))
    }

    fn start(&mut self, i: usize, bootstrap: bool, join: Option<&str>) -> Result<(), String> {
        // The founders' list; a joined node learns its members at the join
        // and keeps them in its data dir.
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !n.joined)
            .map(|n| format!("{}={}", n.id, n.peer))
            .collect();
        let node = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
        // In a namespace, `ip netns exec` execs the node in place (no fork),
        // so the child's pid is the node's and signals reach it.
        let mut cmd = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        cmd.args(["--node-id", &node.id.to_string()])
            .arg("--data-dir")
            .arg(&node.dir)
            .args(["--http-addr", &node.http])
            .args(["--peer-addr", &node.peer])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if !node.joined {
            cmd.args(["--peers", &peers.join(",")]);
        }
        if bootstrap {
            cmd.arg("--bootstrap");
        }
        if let Some(via) = join {
            cmd.args(["--join", via]);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of ours;
        // it asks the kernel to SIGKILL the node when the driver dies, so a
        // killed driver leaves no node behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let node = &mut self.nodes[i];
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// kill -9 of node `i` (a paused one too), waiting for it to be gone.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// SIGSTOP (`stop`) or SIGCONT of node `i`'s process; false if it has
    /// none.
    pub fn signal_pause(&mut self, i: usize, stop: bool) -> bool {
        let node = &mut self.nodes[i];
        let Some(child) = &node.child else {
            return false;
        };
        let Ok(pid) = i32::try_from(child.id()) else {
            return false;
        };
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on our own child's pid, which we have not reaped
        // (the Child is held), so the pid cannot have been reused.
        let ok = unsafe { libc::kill(pid, sig) } == 0;
        if ok {
            node.paused = stop;
        }
        ok
    }

    /// Node `i`'s `/admin/status`, if it answers within `timeout`.
    pub fn status(&self, i: usize, timeout: Duration) -> Option<serde_json::Value> {
        status(&self.nodes[i].http, timeout)
    }

    /// The index of the node that leads, as a running, unpaused member
    /// that says it is leader (the one of the highest term if several do).
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.running() && !n.paused && !n.removed)
            .filter_map(|(i, _)| {
                let s = self.status(i, Duration::from_millis(500))?;
                (s["role"] == "leader").then(|| (s["term"].as_u64().unwrap_or(0), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// Waits up to `within` for a leader; its index.
    pub fn wait_leader(&self, within: Duration) -> Option<usize> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.leader() {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Nodes whose process exited on its own (a crash, a refused start):
    /// (id, exit status). Their `Child` is released.
    pub fn exited(&mut self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                out.push((node.id, status.to_string()));
                node.child = None;
                node.paused = false;
            }
        }
        out
    }

    /// Resumes and kills every process.
    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.signal_pause(i, false);
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// `GET /admin/status` of the node at `http`, parsed.
pub fn status(http: &str, timeout: Duration) -> Option<serde_json::Value> {
    let r = client::http::request(http, "GET", "/admin/status", &[], b"", timeout).ok()?;
    if r.status != 200 {
        return None;
    }
    serde_json::from_slice(&r.body).ok()
}

/// Free loopback ports, all bound at once so that no two are the same, then
/// released for the nodes to bind.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}
