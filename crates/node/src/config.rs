//! The node's configuration: a TOML file, overridden by command-line flags.
//!
//! Every setting has a flag (`raftlab-node --help` explains each) and the
//! same name, with `_` for `-`, as a key of the file given by `--config`.

use clap::Parser;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Command-line flags. Each overrides the same key of the `--config` file.
#[derive(Debug, Default, Parser)]
#[command(
    name = "raftlab-node",
    version,
    about = "One raftlab replica: Raft over TCP, the WAL on a real disk, and a JSON HTTP API.",
    long_about = "One raftlab replica: the same Replica the simulator tests, run on tokio, \
with peers over TCP, its write-ahead log on a real disk and a JSON HTTP API.\n\n\
A new cluster: start every founding member with --bootstrap and the same --peers list. \
A restart: the same command without --bootstrap (the data dir says who the node is). \
A new member of a running cluster: --join with any member's HTTP address and an empty data dir; \
it is added as a learner and promoted to voter once it has caught up.\n\n\
Example:\n  raftlab-node --node-id 1 --data-dir /tmp/n1 --http-addr 127.0.0.1:8081 \
--peer-addr 127.0.0.1:9081 --peers 2=127.0.0.1:9082,3=127.0.0.1:9083 --bootstrap"
)]
pub struct Flags {
    /// A TOML file with any of the settings below (flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id: a positive integer, unique in the cluster, never reused.
    #[arg(long, value_name = "ID")]
    pub node_id: Option<u64>,
    /// The cluster's id. A peer of another cluster is refused at the handshake.
    /// [default: 1]
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<u64>,
    /// The directory of this node's write-ahead log and snapshots (created if
    /// absent).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the HTTP API listens. [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Where peers connect to this node (Raft messages over TCP).
    /// [default: 127.0.0.1:9080]
    #[arg(long, value_name = "ADDR")]
    pub peer_addr: Option<SocketAddr>,
    /// The other founding members, as ID=PEER_ADDR pairs separated by commas
    /// (this node's own entry, if listed, is ignored).
    #[arg(long, value_name = "ID=ADDR,...", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Start a new cluster whose voters are this node and --peers. Refused if
    /// the data dir already holds a log (the cluster exists: restart without
    /// --bootstrap).
    #[arg(long)]
    pub bootstrap: bool,
    /// Join a running cluster through any member's HTTP address (HOST:PORT):
    /// this node asks to be added (POST /admin/nodes, with --admin-token if
    /// the cluster has one), starts as a learner and is promoted to voter
    /// once it has caught up. Needs an empty --data-dir; once joined,
    /// restart it without --join.
    #[arg(long, value_name = "ADDR")]
    pub join: Option<String>,
    /// Milliseconds per Raft tick (ticks come from a monotonic clock).
    /// [default: 50]
    #[arg(long, value_name = "MS")]
    pub tick_ms: Option<u64>,
    /// Minimum election timeout, in ticks (the timeout is drawn from
    /// [N, 2N)). [default: 10]
    #[arg(long, value_name = "TICKS")]
    pub election_ticks: Option<u32>,
    /// Heartbeat interval, in ticks; below --election-ticks. [default: 2]
    #[arg(long, value_name = "TICKS")]
    pub heartbeat_ticks: Option<u32>,
    /// Snapshot the state machine every N applied entries (0: never).
    /// [default: 1024]
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Entries kept in the log after a snapshot, for followers a little
    /// behind. [default: 256]
    #[arg(long, value_name = "N")]
    pub snapshot_keep: Option<u64>,
    /// The largest HTTP request body accepted, in bytes (larger: 413).
    /// [default: 262144]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// How long an HTTP request waits for its answer before an indefinite
    /// 503 (the write may still take effect). [default: 5000]
    #[arg(long, value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// Messages queued per peer; when full, new ones are dropped and counted
    /// (Raft retransmits). [default: 1024]
    #[arg(long, value_name = "N")]
    pub peer_queue: Option<usize>,
    /// Lease reads (`?consistency=lease`): a leader answers reads at once
    /// for N of its ticks after a quorum confirmed it (0: off). Safe only
    /// while no clock runs faster than the leader's by more than
    /// election-ticks / N. [default: 0]
    #[arg(long, value_name = "TICKS")]
    pub lease_read_ticks: Option<u32>,
    /// The bearer token the admin endpoints require (POST /admin/nodes,
    /// DELETE /admin/nodes/ID, POST /admin/transfer-leader, POST
    /// /admin/snapshot). Without one, they answer loopback clients only.
    /// A node started with --join presents it to the member it joins.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// UNSAFE, for testing the tests only: acknowledge writes before they
    /// reach the disk (held in memory, written and never synced about once
    /// a second), so a kill -9 loses what a power failure would. Never in
    /// production: acknowledged writes can be lost.
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// UNSAFE, for testing the tests only: answer linearizable reads from
    /// this node's own state machine, without ReadIndex or forwarding, so a
    /// follower or a deposed leader serves stale data. Never in production.
    #[arg(long)]
    pub unsafe_local_reads: bool,
}

/// The same settings, as keys of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<u64>,
    cluster_id: Option<u64>,
    data_dir: Option<PathBuf>,
    http_addr: Option<SocketAddr>,
    peer_addr: Option<SocketAddr>,
    #[serde(default)]
    peers: BTreeMap<String, String>,
    #[serde(default)]
    bootstrap: bool,
    join: Option<String>,
    tick_ms: Option<u64>,
    election_ticks: Option<u32>,
    heartbeat_ticks: Option<u32>,
    snapshot_every: Option<u64>,
    snapshot_keep: Option<u64>,
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    peer_queue: Option<usize>,
    lease_read_ticks: Option<u32>,
    admin_token: Option<String>,
    #[serde(default)]
    unsafe_no_fsync: bool,
    #[serde(default)]
    unsafe_local_reads: bool,
}

/// The resolved configuration a node runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id.
    pub node_id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
    /// The WAL's directory.
    pub data_dir: PathBuf,
    /// The HTTP API's address.
    pub http_addr: SocketAddr,
    /// The peer transport's address.
    pub peer_addr: SocketAddr,
    /// The other members' peer addresses, by id.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Whether to found a new cluster.
    pub bootstrap: bool,
    /// The HTTP address of a member to join through, for a new member.
    pub join: Option<String>,
    /// Milliseconds per tick.
    pub tick_ms: u64,
    /// Minimum election timeout in ticks.
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Entries kept after a snapshot.
    pub snapshot_keep: u64,
    /// The largest HTTP body accepted.
    pub max_body_bytes: usize,
    /// How long an HTTP request waits for its answer.
    pub request_timeout_ms: u64,
    /// Messages queued per peer.
    pub peer_queue: usize,
    /// Lease reads' length in ticks (0: off).
    pub lease_read_ticks: u32,
    /// The admin endpoints' bearer token, if any.
    pub admin_token: Option<String>,
    /// UNSAFE: acknowledge writes before they are durable (`--unsafe-no-fsync`).
    pub unsafe_no_fsync: bool,
    /// UNSAFE: serve linearizable reads locally (`--unsafe-local-reads`).
    pub unsafe_local_reads: bool,
}

impl Config {
    /// Resolves `flags` over the file they name, if any, over the defaults.
    pub fn resolve(flags: Flags) -> Result<Config, String> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let node_id = flags
            .node_id
            .or(file.node_id)
            .ok_or("--node-id is required (a positive integer, unique in the cluster)")?;
        if node_id == 0 {
            return Err("--node-id must be positive".into());
        }
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .ok_or("--data-dir is required (the directory of this node's log)")?;
        let mut peers = BTreeMap::new();
        let listed: Vec<(String, String)> = if flags.peers.is_empty() {
            file.peers.into_iter().collect()
        } else {
            flags
                .peers
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.split_once('=')
                        .map(|(i, a)| (i.trim().to_owned(), a.trim().to_owned()))
                        .ok_or_else(|| format!("peer {p:?} is not ID=ADDR"))
                })
                .collect::<Result<_, _>>()?
        };
        for (id, addr) in listed {
            let id: u64 = id
                .parse()
                .map_err(|_| format!("peer id {id:?} is not a positive integer"))?;
            let addr: SocketAddr = addr
                .parse()
                .map_err(|_| format!("peer {id}'s address {addr:?} is not IP:PORT"))?;
            if id == 0 {
                return Err("peer ids must be positive".into());
            }
            if id != node_id {
                peers.insert(id, addr);
            }
        }
        let config = Config {
            node_id,
            cluster_id: flags.cluster_id.or(file.cluster_id).unwrap_or(1),
            data_dir,
            http_addr: flags
                .http_addr
                .or(file.http_addr)
                .unwrap_or(([127, 0, 0, 1], 8080).into()),
            peer_addr: flags
                .peer_addr
                .or(file.peer_addr)
                .unwrap_or(([127, 0, 0, 1], 9080).into()),
            peers,
            bootstrap: flags.bootstrap || file.bootstrap,
            join: flags.join.or(file.join),
            tick_ms: flags.tick_ms.or(file.tick_ms).unwrap_or(50),
            election_ticks: flags.election_ticks.or(file.election_ticks).unwrap_or(10),
            heartbeat_ticks: flags.heartbeat_ticks.or(file.heartbeat_ticks).unwrap_or(2),
            snapshot_every: flags.snapshot_every.or(file.snapshot_every).unwrap_or(1024),
            snapshot_keep: flags.snapshot_keep.or(file.snapshot_keep).unwrap_or(256),
            max_body_bytes: flags
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(256 * 1024),
            request_timeout_ms: flags
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(5000),
            peer_queue: flags.peer_queue.or(file.peer_queue).unwrap_or(1024),
            lease_read_ticks: flags
                .lease_read_ticks
                .or(file.lease_read_ticks)
                .unwrap_or(0),
            admin_token: flags.admin_token.or(file.admin_token),
            unsafe_no_fsync: flags.unsafe_no_fsync || file.unsafe_no_fsync,
            unsafe_local_reads: flags.unsafe_local_reads || file.unsafe_local_reads,
        };
        if config.bootstrap && config.join.is_some() {
            return Err(
                "--bootstrap founds a new cluster and --join enters a running one: \
                 give one of them"
                    .into(),
            );
        }
        if config.tick_ms == 0 {
            return Err("--tick-ms must be positive".into());
        }
        if config.heartbeat_ticks == 0 || config.heartbeat_ticks >= config.election_ticks {
            return Err("--heartbeat-ticks must be positive and below --election-ticks".into());
        }
        if config.lease_read_ticks >= config.election_ticks {
            return Err("--lease-read-ticks must be below --election-ticks".into());
        }
        if config.peer_queue == 0 {
            return Err("--peer-queue must be positive".into());
        }
        Ok(config)
    }

    /// The founding voters: this node and its peers, in id order.
    pub fn voters(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.peers.keys().copied().collect();
        all.push(self.node_id);
        all.sort_unstable();
        all
    }

    /// Refuses a start that does not match the data dir: `--bootstrap` or
    /// `--join` on a directory that already holds a log, or a restart from
    /// an empty one.
    pub fn check_start(&self, dir_has_log: bool) -> Result<(), String> {
        let dir = self.data_dir.display();
        if self.join.is_some() {
            return match dir_has_log {
                true => Err(format!(
                    "--join, but {dir} already holds a node's log: this node is a member \
                     already. Restart it without --join, or give --data-dir an empty directory \
                     (and a new --node-id) to add a new member."
                )),
                false => Ok(()),
            };
        }
        match (self.bootstrap, dir_has_log) {
            (true, true) => Err(format!(
                "--bootstrap, but {dir} already holds a node's log: this cluster already exists. \
                 Restart the node without --bootstrap, or give --data-dir an empty directory \
                 to found a new cluster."
            )),
            (false, false) => Err(format!(
                "{dir} holds no log and neither --bootstrap nor --join was given. To found a \
                 new cluster, start every founding member with --bootstrap and the same --peers; \
                 to add a member to a running cluster, start it with --join MEMBER_HTTP_ADDR; \
                 to restart a node, point --data-dir at its existing directory."
            )),
            _ => Ok(()),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Whether `dir` holds any file (a log, a snapshot) besides the member
/// list: a node has run there.
pub fn dir_has_log(dir: &Path) -> Result<bool, String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(Result::ok)
            .any(|e| e.file_name() != crate::directory::FILE)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot read data dir {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["raftlab-node"];
        all.extend_from_slice(args);
        Flags::parse_from(all)
    }

    #[test]
    fn flags_resolve_with_defaults_and_peers() {
        let c = Config::resolve(flags(&[
            "--node-id",
            "2",
            "--data-dir",
            "/tmp/x",
            "--peers",
            "1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003",
            "--bootstrap",
        ]))
        .unwrap();
        assert_eq!(c.voters(), vec![1, 2, 3]);
        assert_eq!(c.peers.len(), 2, "its own entry is dropped");
        assert_eq!(c.tick_ms, 50);
        assert!(c.bootstrap);
    }

    #[test]
    fn the_wrong_start_is_refused_with_what_to_do() {
        let mut c = Config::resolve(flags(&[
            "--node-id",
            "1",
            "--data-dir",
            "/tmp/x",
            "--bootstrap",
        ]))
        .unwrap();
        assert!(
            c.check_start(true)
                .unwrap_err()
                .contains("without --bootstrap")
        );
        assert!(c.check_start(false).is_ok());
        c.bootstrap = false;
        assert!(c.check_start(false).unwrap_err().contains("--bootstrap"));
        assert!(c.check_start(true).is_ok());
        let join = Config::resolve(flags(&[
            "--node-id",
            "1",
            "--data-dir",
            "/x",
            "--join",
            "a",
        ]));
        let join = join.unwrap();
        assert!(join.check_start(false).is_ok(), "a join needs an empty dir");
        assert!(
            join.check_start(true)
                .unwrap_err()
                .contains("without --join")
        );
        let both = Config::resolve(flags(&[
            "--node-id",
            "1",
            "--data-dir",
            "/x",
            "--join",
            "a",
            "--bootstrap",
        ]));
        assert!(both.unwrap_err().contains("one of them"));
    }

    #[test]
    fn a_file_is_read_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 3\ndata_dir = \"/d\"\ntick_ms = 20\n[peers]\n1 = \"127.0.0.1:9001\"\n",
        )
        .unwrap();
        let c = Config::resolve(flags(&[
            "--config",
            path.to_str().unwrap(),
            "--tick-ms",
            "30",
        ]))
        .unwrap();
        assert_eq!((c.node_id, c.tick_ms), (3, 30));
        assert_eq!(c.voters(), vec![1, 3]);
        assert!(
            !c.unsafe_no_fsync && !c.unsafe_local_reads,
            "safe by default"
        );
    }

    #[test]
    fn the_unsafe_settings_are_read_from_the_file_and_from_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 1\ndata_dir = \"/d\"\nunsafe_no_fsync = true\n",
        )
        .unwrap();
        let c = Config::resolve(flags(&["--config", path.to_str().unwrap()])).unwrap();
        assert!(c.unsafe_no_fsync && !c.unsafe_local_reads);
        let c = Config::resolve(flags(&[
            "--node-id",
            "1",
            "--data-dir",
            "/d",
            "--unsafe-local-reads",
        ]))
        .unwrap();
        assert!(c.unsafe_local_reads && !c.unsafe_no_fsync);
    }
}
