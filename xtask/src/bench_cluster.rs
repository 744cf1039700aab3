//! `cargo xtask bench cluster`: a real cluster (fsync on, data on the real
//! disk) driven over HTTP/1.1 JSON by the project's own load generator, and
//! optionally a 3-node etcd 3.4 driven the same way in the same run.
//!
//! The generator is **closed-loop**: each connection is one keep-alive
//! HTTP/1.1 connection with exactly one request outstanding; it sends the
//! next request when the answer to the last arrives. Throughput is answered
//! requests per second; latency is from the request's first byte written to
//! the answer's last byte read. A closed loop cannot hide latency behind a
//! queue (a slow server lowers the rate instead), so the two systems are
//! compared at the same concurrency, as etcd's own `benchmark` tool does.
//! The generator runs on one tokio thread (current-thread runtime), so that
//! on a small machine it takes at most one core from the servers it drives,
//! the same core for both systems.
//!
//! Every connection goes to the leader, for both systems (raftlab's
//! followers forward over a blocking client, etcd's over gRPC: neither is
//! what is measured). Keys are `k0`..`k{keys-1}`, drawn uniformly; values
//! are `--value-bytes` printable bytes.
//!
//! What differs between the two APIs, and why it does not favour raftlab:
//! - raftlab: `PUT /kv/{key}` with `{"value": "..."}` (the value as a JSON
//!   string); `GET /kv/{key}` (a linearizable read by ReadIndex).
//! - etcd: `POST /v3/kv/put` with `{"key": b64, "value": b64}`; `POST
//!   /v3/kv/range` with `{"key": b64}` (linearizable by default, also by
//!   ReadIndex). Base64 makes etcd's bodies about a third longer (344 bytes
//!   for a 256-byte value), a cost of a few microseconds of parsing per
//!   request, far below the milliseconds an fsync costs; and etcd's gateway
//!   is a translation layer in front of its gRPC server, which is how etcd
//!   serves JSON, so it is what a JSON client of etcd gets.
//! - Both fsync every write before answering it (etcd's WAL; raftlab's WAL
//!   with group commit), both on the same disk, both with 3 voters on
//!   loopback. raftlab's write without `X-Client-Id` still records an
//!   exactly-once session for it (more work, not less); etcd keeps every
//!   revision of every key (MVCC), raftlab the latest value only.

use crate::cli::{BenchClusterArgs, Target};
use crate::error::Error;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One row of results: one system at one connection count.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// `raftlab` or `etcd`.
    pub system: String,
    /// Concurrent connections (one request outstanding each).
    pub connections: usize,
    /// Answered requests (2xx) per second over the measured window.
    pub ops_per_s: f64,
    /// Requests that failed (non-2xx or a broken connection).
    pub errors: u64,
    /// Latency percentiles of the answered requests, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// A cluster under test: its processes, its leader's HTTP address, and how
/// its requests are shaped.
struct Cluster {
    system: Target,
    children: Vec<Child>,
    leader: String,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Free TCP ports on 127.0.0.1, all reserved at once so that none repeats.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// One blocking HTTP request with a short timeout (setup only).
fn probe(addr: &str, method: &str, path: &str, body: &[u8]) -> Option<serde_json::Value> {
    let r =
        client::http::request(addr, method, path, &[], body, Duration::from_millis(500)).ok()?;
    serde_json::from_slice(&r.body).ok()
}

/// Builds the node with the release profile; returns the binary.
fn build_node(root: &Path) -> Result<PathBuf, String> {
    eprintln!("building raftlab-node (release) ...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "-p", "node", "--bin"])
        .arg("raftlab-node")
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building raftlab-node failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("raftlab-node"))
}

/// Starts `nodes` raftlab nodes (release build, or `$RAFTLAB_NODE`, a
/// binary to compare with) and finds the leader.
fn start_raftlab(nodes: usize, root: &Path, data: &Path) -> Result<Cluster, String> {
    let binary = match std::env::var_os("RAFTLAB_NODE") {
        Some(path) => PathBuf::from(path),
        None => build_node(root)?,
    };
    eprintln!("raftlab-node: {}", binary.display());
    let dir = data.join("raftlab");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ports = free_ports(2 * nodes)?;
    let http: Vec<String> = (0..nodes)
        .map(|i| format!("127.0.0.1:{}", ports[i]))
        .collect();
    let peers: Vec<String> = (0..nodes)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[nodes + i]))
        .collect();
    let mut cluster = Cluster {
        system: Target::Raftlab,
        children: Vec::new(),
        leader: String::new(),
        dir: dir.clone(),
    };
    for i in 0..nodes {
        let id = i + 1;
        let log = std::fs::File::create(dir.join(format!("node{id}.log")))
            .map_err(|e| format!("cannot create node {id}'s log: {e}"))?;
        let child = Command::new(&binary)
            .args(["--node-id", &id.to_string(), "--bootstrap"])
            .arg("--data-dir")
            .arg(dir.join(format!("node{id}")))
            .args(["--http-addr", &http[i]])
            .args(["--peer-addr", &format!("127.0.0.1:{}", ports[nodes + i])])
            .args(["--peers", &peers.join(",")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        cluster.children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader = http
            .iter()
            .find_map(|a| probe(a, "GET", "/admin/status", b""));
        if let Some(id) = leader.and_then(|v| v["leader"].as_u64()) {
            cluster.leader = http[id as usize - 1].clone();
            // A leader that answers writes (its first entry committed).
            if probe(&cluster.leader, "GET", "/ready", b"").is_some() {
                return Ok(cluster);
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "raftlab: no leader after 30 s; see the logs in {}",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a 3-node (or `nodes`) etcd and finds the leader.
fn start_etcd(nodes: usize, data: &Path) -> Result<Cluster, String> {
    let binary = std::env::var("ETCD").unwrap_or_else(|_| "etcd".into());
    let version = Command::new(&binary).arg("--version").output();
    let Ok(version) = version else {
        return Err(format!(
            "`--against etcd` needs the etcd binary ({binary} not found). On Debian or \
             Ubuntu: `apt-get install etcd-server` (etcd 3.4); or set ETCD=/path/to/etcd"
        ));
    };
    eprintln!(
        "etcd: {}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("?")
    );
    let dir = data.join("etcd");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ports = free_ports(2 * nodes)?;
    let client = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[nodes + i]);
    let initial: Vec<String> = (0..nodes)
        .map(|i| format!("e{}={}", i + 1, peer(i)))
        .collect();
    let mut cluster = Cluster {
        system: Target::Etcd,
        children: Vec::new(),
        leader: String::new(),
        dir: dir.clone(),
    };
    for i in 0..nodes {
        let log = std::fs::File::create(dir.join(format!("e{}.log", i + 1)))
            .map_err(|e| format!("cannot create etcd {}'s log: {e}", i + 1))?;
        let child = Command::new(&binary)
            .args(["--name", &format!("e{}", i + 1)])
            .arg("--data-dir")
            .arg(dir.join(format!("e{}", i + 1)))
            .args(["--listen-client-urls", &format!("http://{}", client(i))])
            .args(["--advertise-client-urls", &format!("http://{}", client(i))])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "raftlab-bench"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        cluster.children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Each member's status names the leader's member id and its own.
        for i in 0..nodes {
            if let Some(v) = probe(&client(i), "POST", "/v3/maintenance/status", b"{}") {
                let own = v["header"]["member_id"].as_str().unwrap_or("");
                let leader = v["leader"].as_str().unwrap_or("0");
                if !own.is_empty() && own == leader {
                    cluster.leader = client(i);
                    return Ok(cluster);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "etcd: no leader after 30 s; see the logs in {}",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Standard base64 (with padding), for etcd's JSON gateway.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The requests one connection sends, built once: every put and get for
/// each key (so the loop allocates nothing per request).
struct Requests {
    puts: Vec<Vec<u8>>,
    gets: Vec<Vec<u8>>,
}

impl Requests {
    fn new(system: Target, keys: usize, value_bytes: usize) -> Requests {
        // Printable and JSON-safe, so that both systems carry the same bytes.
        let value: String = (0..value_bytes)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let request = |method: &str, path: &str, body: &str| {
            format!(
                "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        let (mut puts, mut gets) = (Vec::new(), Vec::new());
        for k in 0..keys {
            let key = format!("k{k}");
            match system {
                Target::Raftlab => {
                    puts.push(request(
                        "PUT",
                        &format!("/kv/{key}"),
                        &format!("{{\"value\":\"{value}\"}}"),
                    ));
                    let get = format!("GET /kv/{key} HTTP/1.1\r\nHost: bench\r\n\r\n");
                    gets.push(get.into_bytes());
                }
                Target::Etcd => {
                    let (k64, v64) = (base64(key.as_bytes()), base64(value.as_bytes()));
                    puts.push(request(
                        "POST",
                        "/v3/kv/put",
                        &format!("{{\"key\":\"{k64}\",\"value\":\"{v64}\"}}"),
                    ));
                    gets.push(request(
                        "POST",
                        "/v3/kv/range",
                        &format!("{{\"key\":\"{k64}\"}}"),
                    ));
                }
            }
        }
        Requests { puts, gets }
    }
}

/// Reads one HTTP/1.1 response from `stream` into `buf` (reused); returns
/// its status code. Handles `Content-Length` and chunked bodies.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut chunk = [0u8; 8192];
    // Headers.
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("headers not UTF-8"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut length = None;
    let mut chunked = false;
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.trim().eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    if !chunked {
        let want = head_end + length.unwrap_or(0);
        while buf.len() < want {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed in the body"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Ok(status);
    }
    // Chunked: walk the chunks until the terminating zero-length one.
    let mut at = head_end;
    loop {
        let line_end = loop {
            if let Some(p) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                break at + p;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed in a chunk"));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let size_text = std::str::from_utf8(&buf[at..line_end]).map_err(|_| bad("chunk size"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        // The chunk, its CRLF (and for the last chunk, the final CRLF).
        let want = line_end + 2 + size + 2;
        while buf.len() < want {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed in a chunk"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if size == 0 {
            return Ok(status);
        }
        at = want;
    }
}

/// What one connection measured.
#[derive(Default)]
struct ConnResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// One closed-loop connection: sends until `end`, records latencies of
/// answers that complete after `measure_from`.
async fn connection(
    addr: String,
    requests: std::sync::Arc<Requests>,
    read_fraction: f64,
    seed: u64,
    measure_from: Instant,
    end: Instant,
) -> ConnResult {
    let mut result = ConnResult::default();
    let mut rng = stablehash::SplitMix64::new(seed);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut stream = None;
    while Instant::now() < end {
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(&addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream.insert(s)
                }
                Err(_) => {
                    result.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let key = (rng.next_u64() % requests.puts.len() as u64) as usize;
        let read = ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < read_fraction;
        let request = if read {
            &requests.gets[key]
        } else {
            &requests.puts[key]
        };
        let started = Instant::now();
        let answer = match s.write_all(request).await {
            Ok(()) => read_response(s, &mut buf).await,
            Err(e) => Err(e),
        };
        let done = Instant::now();
        let counted = done >= measure_from && done <= end;
        match answer {
            // 404 is a read of a key not written yet: answered, correct.
            Ok(code) if (200..300).contains(&code) || (read && code == 404) => {
                if counted {
                    let us = (done - started).as_micros().min(u128::from(u32::MAX)) as u32;
                    result.latencies_us.push(us);
                }
            }
            Ok(_) => {
                if counted {
                    result.errors += 1;
                }
            }
            Err(_) => {
                if counted {
                    result.errors += 1;
                }
                stream = None;
            }
        }
    }
    result
}

/// Runs `connections` closed-loop connections against `cluster` for
/// `warmup + duration`, measuring the last `duration`.
fn drive(cluster: &Cluster, args: &BenchClusterArgs, connections: usize) -> Result<Row, String> {
    let requests = std::sync::Arc::new(Requests::new(cluster.system, args.keys, args.value_bytes));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let duration = args.duration;
    let warmup = args.warmup;
    let results = runtime.block_on(async {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + duration;
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                tokio::spawn(connection(
                    cluster.leader.clone(),
                    requests.clone(),
                    args.read_fraction,
                    stablehash::splitmix64(c as u64 + 1),
                    measure_from,
                    end,
                ))
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap_or_default());
        }
        results
    });
    let mut all: Vec<u32> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let errors = results.iter().map(|r| r.errors).sum();
    let pct = |p: f64| {
        if all.is_empty() {
            f64::NAN
        } else {
            let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
            f64::from(all[i]) / 1000.0
        }
    };
    Ok(Row {
        system: cluster.system.name().to_owned(),
        connections,
        ops_per_s: all.len() as f64 / duration.as_secs_f64(),
        errors,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: all.last().map_or(f64::NAN, |&m| f64::from(m) / 1000.0),
    })
}

/// What the machine is: CPU model and count, kernel (for the tables).
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut kernel = String::new();
    if let Ok(mut f) = std::fs::File::open("/proc/sys/kernel/osrelease") {
        let _ = f.read_to_string(&mut kernel);
    }
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// Flag values `bench cluster` cannot run with: usage errors (exit 64),
/// found before any node is built or started.
pub fn validate(args: &BenchClusterArgs) -> Result<(), Error> {
    if !(0.0..=1.0).contains(&args.read_fraction) {
        return Err(Error::Usage("--read-fraction must be within 0..=1".into()));
    }
    if args.connections.is_empty() || args.connections.contains(&0) {
        return Err(Error::Usage("--connections needs counts >= 1".into()));
    }
    if args.keys == 0 {
        return Err(Error::Usage("--keys must be at least 1".into()));
    }
    if args.duration.is_zero() {
        return Err(Error::Usage("--duration must be positive".into()));
    }
    Ok(())
}

/// `cargo xtask bench cluster`.
pub fn bench_cluster(args: &BenchClusterArgs) -> Result<u8, Error> {
    validate(args)?;
    Ok(measure(args)?)
}

/// Runs the benchmark of valid `args`.
fn measure(args: &BenchClusterArgs) -> Result<u8, String> {
    let root = crate::workspace_root();
    // On the real disk (the workspace's), not a tmpfs.
    let data = root.join("target/bench/cluster-data");
    let mut systems = vec![Target::Raftlab];
    if args.against == Some(Target::Etcd) {
        systems.push(Target::Etcd);
    }
    let mut rows: Vec<Row> = Vec::new();
    for &system in &systems {
        let cluster = match system {
            Target::Raftlab => start_raftlab(usize::from(args.nodes), &root, &data)?,
            Target::Etcd => start_etcd(usize::from(args.nodes), &data)?,
        };
        eprintln!("{}: leader at {}", system.name(), cluster.leader);
        for &c in &args.connections {
            let row = drive(&cluster, args, c)?;
            eprintln!(
                "  {:>7} {:>4} conns: {:>8.0} ops/s  p50 {:.2} ms  p99 {:.2} ms  ({} errors)",
                row.system, c, row.ops_per_s, row.p50_ms, row.p99_ms, row.errors
            );
            rows.push(row);
        }
        drop(cluster);
    }
    let _ = std::fs::remove_dir(&data);

    let machine = machine();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### bench cluster: {} nodes, fsync on, {}-byte values, {:.0}% reads, {} keys, \
         {:?} measured after {:?} warm-up, closed loop (one request outstanding per \
         connection), every connection to the leader\n\nMachine: {machine}\n",
        args.nodes,
        args.value_bytes,
        args.read_fraction * 100.0,
        args.keys,
        args.duration,
        args.warmup
    );
    let _ = writeln!(
        md,
        "| system | connections | ops/s | p50 ms | p90 ms | p99 ms | max ms | errors |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.system, r.connections, r.ops_per_s, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors
        );
    }
    let mut ratios = Vec::new();
    if systems.len() == 2 {
        let _ = writeln!(
            md,
            "\n| connections | throughput raftlab ÷ etcd | p99 raftlab ÷ etcd |"
        );
        let _ = writeln!(md, "|---:|---:|---:|");
        for &c in &args.connections {
            let find = |s: &str| rows.iter().find(|r| r.system == s && r.connections == c);
            if let (Some(a), Some(b)) = (find("raftlab"), find("etcd")) {
                let (t, l) = (a.ops_per_s / b.ops_per_s, a.p99_ms / b.p99_ms);
                let _ = writeln!(md, "| {c} | {t:.2}× | {l:.2}× |");
                ratios.push(serde_json::json!({
                    "connections": c, "throughput_ratio": t, "p99_ratio": l
                }));
            }
        }
    }
    print!("{md}");
    let json = serde_json::json!({
        "machine": machine,
        "nodes": args.nodes,
        "value_bytes": args.value_bytes,
        "read_fraction": args.read_fraction,
        "keys": args.keys,
        "duration_s": args.duration.as_secs_f64(),
        "warmup_s": args.warmup.as_secs_f64(),
        "load": "closed loop, one request outstanding per keep-alive HTTP/1.1 connection, all to the leader",
        "rows": rows,
        "ratios": ratios,
    });
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("cluster.md"), &md).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("cluster.json"), text + "\n").map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json).map_err(|e| e.to_string())?
        );
    }
    eprintln!("written: target/bench/cluster.md, target/bench/cluster.json");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }
}
