//! `cargo xtask cluster`: a local cluster of real `raftlab-node` processes.
//!
//! Builds the node, starts N of them on 127.0.0.1 (node i: HTTP on
//! 8080+i, peers on 9080+i), waits for a leader, prints the endpoints and a
//! curl line to try, and stops every node on Ctrl-C (or when one of them
//! exits). A node whose data dir already holds a log restarts; the others
//! bootstrap. Without `--keep`, the nodes' data is removed on exit.

use crate::error::Error;
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

/// Lowest port a base may give: ports below 1024 need privileges a user
/// rarely means to use for a test cluster, and 0 is not a port.
const MIN_PORT: u32 = 1024;

/// Checks the flags before anything is built or started, so that a bad
/// value is a usage error (exit 64) with what to change, not a panic or a
/// cluster that never elects a leader: `--dir` must be creatable, every
/// port must exist and be unprivileged, HTTP and peer ports must not
/// collide, and each must be free on 127.0.0.1 now.
pub fn validate(args: &ClusterArgs) -> Result<(), Error> {
    if let Some(dir) = &args.dir
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return Err(Error::Usage(format!(
            "--dir {}: cannot create it: {e}",
            dir.display()
        )));
    }
    let nodes = u32::from(args.nodes);
    let range = |flag: &str, base: u16| -> Result<(u32, u32), Error> {
        let (first, last) = (u32::from(base) + 1, u32::from(base) + nodes);
        if first < MIN_PORT || last > u32::from(u16::MAX) {
            return Err(Error::Usage(format!(
                "{flag} {base}: with {nodes} node(s) the ports would be {first}..={last}; \
                 they must lie in {MIN_PORT}..=65535"
            )));
        }
        Ok((first, last))
    };
    let http = range("--http-base", args.http_base)?;
    let peer = range("--peer-base", args.peer_base)?;
    if http.0 <= peer.1 && peer.0 <= http.1 {
        return Err(Error::Usage(format!(
            "--http-base {} and --peer-base {} give overlapping ports ({}..={} and {}..={}) \
             for {nodes} node(s); choose bases at least {nodes} apart",
            args.http_base, args.peer_base, http.0, http.1, peer.0, peer.1
        )));
    }
    for port in (http.0..=http.1).chain(peer.0..=peer.1) {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            let flag = if port <= http.1 && port >= http.0 {
                "--http-base"
            } else {
                "--peer-base"
            };
            return Err(Error::Usage(format!(
                "port {port} on 127.0.0.1 is not free ({e}); choose another {flag}"
            )));
        }
    }
    Ok(())
}

/// Runs the cluster until Ctrl-C.
pub fn cluster(args: &ClusterArgs) -> Result<u8, Error> {
    validate(args)?;
    let root = crate::workspace_root();
    eprintln!("building raftlab-node ...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", "node", "--bin", "raftlab-node"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(Error::Internal("building raftlab-node failed".into()));
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
    let mut result: Result<u8, String> = Ok(0);
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
    Ok(result?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: u16, http_base: u16, peer_base: u16) -> ClusterArgs {
        ClusterArgs {
            nodes,
            dir: None,
            keep: false,
            http_base,
            peer_base,
        }
    }

    /// Ports that do not exist, privileged ports and colliding ranges are
    /// usage errors, named by the flag to change, and so is a port in use.
    #[test]
    fn bad_ports_are_usage_errors_naming_the_flag() {
        for (a, flag) in [
            (args(3, 65535, 9080), "--http-base"),
            (args(9, 8080, 65530), "--peer-base"),
            (args(3, 0, 9080), "--http-base"),
            (args(3, 9000, 9001), "overlapping"),
        ] {
            let e = validate(&a).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::EXIT_USAGE, "{e}");
            assert!(e.message().contains(flag), "{e}");
        }
        // A port in use is refused before anything starts.
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        if port > 1025 {
            let e = validate(&args(1, port - 1, 1100)).unwrap_err();
            assert!(e.message().contains(&format!("port {port}")), "{e}");
        }
    }

    #[test]
    fn a_dir_that_cannot_be_created_is_a_usage_error() {
        let a = ClusterArgs {
            dir: Some(PathBuf::from("/proc/raftlab-no-such-dir")),
            ..args(1, 20000, 21000)
        };
        let e = validate(&a).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert!(e.message().contains("--dir"), "{e}");
    }
}
