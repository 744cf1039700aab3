//! `cargo xtask cluster`: a local cluster of real `raftlab-node` processes.
//!
//! Builds the node, starts N of them on 127.0.0.1 (node i: HTTP on
//! 8080+i, peers on 9080+i), waits for a leader, prints the endpoints and a
//! curl line to try, and stops every node on Ctrl-C (or when one of them
//! exits). A node whose data dir already holds a log restarts; the others
//! bootstrap. Without `--keep`, the nodes' data is removed on exit.

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// How many nodes (founding voters).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: u16,
    /// Where the nodes keep their data (default: a new directory under the
    /// system's temp dir). Node i uses DIR/nodeI and logs to DIR/nodeI.log.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the data on exit, so that the same command with `--dir`
    /// restarts the cluster.
    #[arg(long)]
    pub keep: bool,
    /// HTTP ports are this plus the node id.
    #[arg(long, default_value_t = 8080)]
    pub http_base: u16,
    /// Peer ports are this plus the node id.
    #[arg(long, default_value_t = 9080)]
    pub peer_base: u16,
}

/// Runs the cluster until Ctrl-C.
pub fn cluster(args: &ClusterArgs) -> Result<u8, String> {
    let root = crate::workspace_root();
    eprintln!("building raftlab-node ...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", "node", "--bin", "raftlab-node"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building raftlab-node failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("debug").join("raftlab-node");

    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("raftlab-cluster-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ids: Vec<u16> = (1..=args.nodes).collect();
    let peer = |id: u16| format!("127.0.0.1:{}", args.peer_base + id);
    let http = |id: u16| format!("127.0.0.1:{}", args.http_base + id);
    let peers: Vec<String> = ids.iter().map(|&id| format!("{id}={}", peer(id))).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;

    let mut children: Vec<(u16, Child)> = Vec::new();
    let mut result = Ok(0);
    for &id in &ids {
        match start_node(&binary, &dir, id, &http(id), &peer(id), &peers) {
            Ok(child) => children.push((id, child)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        result = serve(&mut children, &stop, &ids, &http, &dir);
    }
    for (_, child) in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    eprintln!("stopped {} node(s)", children.len());
    if args.keep {
        eprintln!("data kept in {}", dir.display());
    } else {
        for &id in &ids {
            let _ = std::fs::remove_dir_all(dir.join(format!("node{id}")));
            let _ = std::fs::remove_file(dir.join(format!("node{id}.log")));
        }
        if args.dir.is_none() {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    result
}

fn start_node(
    binary: &Path,
    dir: &Path,
    id: u16,
    http: &str,
    peer: &str,
    peers: &[String],
) -> Result<Child, String> {
    let data = dir.join(format!("node{id}"));
    let has_log = std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_some());
    let log = std::fs::File::create(dir.join(format!("node{id}.log")))
        .map_err(|e| format!("cannot create node {id}'s log: {e}"))?;
    let mut cmd = Command::new(binary);
    cmd.args(["--node-id", &id.to_string()])
        .args(["--data-dir", &data.display().to_string()])
        .args(["--http-addr", http, "--peer-addr", peer])
        .args(["--peers", &peers.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if !has_log {
        cmd.arg("--bootstrap");
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))
}

/// Waits for a leader, prints how to use the cluster, then waits for
/// Ctrl-C or a node's exit.
fn serve(
    children: &mut [(u16, Child)],
    stop: &AtomicBool,
    ids: &[u16],
    http: &dyn Fn(u16) -> String,
    dir: &Path,
) -> Result<u8, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let leader = ids.iter().find_map(|&id| {
            let r = client::http::request(
                &http(id),
                "GET",
                "/admin/status",
                &[],
                b"",
                Duration::from_millis(500),
            )
            .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            v["leader"].as_u64()
        });
        if let Some(l) = leader {
            break l;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no leader after 30 s; see the logs in {}",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "raftlab cluster of {} node(s), leader: node {leader}",
        ids.len()
    );
    for &id in ids {
        println!(
            "  node {id}: http://{}  (log: {})",
            http(id),
            dir.join(format!("node{id}.log")).display()
        );
    }
    let first = http(ids[0]);
    println!("try:");
    println!("  curl -X PUT http://{first}/kv/mykey -d '{{\"value\": \"myvalue\"}}'");
    println!("  curl http://{first}/kv/mykey");
    println!("  curl http://{first}/admin/status");
    println!("  curl http://{first}/metrics");
    println!("Ctrl-C stops every node.");
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(0);
        }
        for (id, child) in children.iter_mut() {
            // A node that exited on its own (a crash, a refused start).
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "node {id} exited ({status}); see {}",
                    dir.join(format!("node{id}.log")).display()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
