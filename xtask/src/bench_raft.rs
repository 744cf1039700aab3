//! `cargo xtask bench raft`: three replicas in one process, through the
//! whole replica loop, on in-memory disks.
//!
//! The executor is the smallest one that keeps the replica honest: one FIFO
//! queue of events (messages between the replicas, client requests, write
//! completions). A write is carried out with [`Storage::write`] and
//! [`Storage::sync`] as soon as the replica emits it, and its completion is
//! queued behind what is already waiting, so work that arrives meanwhile is
//! gathered into the next write (group commit), as on a real disk.
//!
//! `N` clients (distinct client ids) each keep one put outstanding against
//! the leader; every reply triggers the client's next put. The figure is the
//! wall time of the whole loop (all three replicas, one thread) per
//! completed put, after a warm-up, median of `--runs` runs.
//!
//! Memory: one replica builds a log of `--memory-entries` puts with
//! snapshots off, on a disk that keeps no data (so the disk's bytes are not
//! counted), and the counting allocator ([`alloc_count`], this binary's global allocator) reports the
//! bytes freed by dropping the WAL (its image of the log) and the replica
//! (raft's log, plus a state machine of a few keys).

use crate::cli::{BenchDisk, BenchRaftArgs};
use kv::Op;
use raft::{Config, NodeId, Role};
use replica::{
    ClientRequest, Effect, Envelope, Input, Replica, ReplicaOptions, SnapshotPolicy, Storage,
    StorageLimits,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::Instant;
use wal::{Disk, DiskError, MemDisk};

const CLUSTER: u64 = 1;

/// The memory figure before the log had one owner (issue 13), when the
/// WAL's image held every entry too: measured by this benchmark at main
/// 23fa181 (bytes per entry, one replica, 1M entries, snapshots off).
const BEFORE_ONE_OWNER: MemoryFigure = MemoryFigure {
    entries: 1_000_017,
    wal_bytes: 121_896_318,
    replica_bytes: 116_673_606,
};

/// Anchors printed beside the table.
const ANCHORS: &str = "Anchors: etcd-raft about 5.9 µs per proposal on 3 nodes; \
openraft 3.37M puts/s with 4096 clients (M1 Max, one process, in memory). \
Target: at most 1 µs per proposal at 1024 in flight.";

/// A disk that keeps only file lengths: writes cost nothing and hold no
/// memory. Enough for a log that is never reopened nor compacted.
#[derive(Debug, Default)]
pub struct NullDisk {
    files: BTreeMap<String, u64>,
}

impl NullDisk {
    fn file(&mut self, name: &str) -> Result<&mut u64, DiskError> {
        self.files
            .get_mut(name)
            .ok_or_else(|| DiskError::NotFound(name.to_owned()))
    }
}

impl Disk for NullDisk {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.files.keys().cloned().collect())
    }
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        if self.files.contains_key(name) {
            return Err(DiskError::AlreadyExists(name.to_owned()));
        }
        self.files.insert(name.to_owned(), 0);
        Ok(())
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let len = self.file(name)?;
        *len = (*len).max(offset + data.len() as u64);
        Ok(())
    }
    fn read_at(&self, name: &str, _offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        if !self.files.contains_key(name) {
            return Err(DiskError::NotFound(name.to_owned()));
        }
        Ok(vec![0; len])
    }
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.files
            .get(name)
            .copied()
            .ok_or_else(|| DiskError::NotFound(name.to_owned()))
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        *self.file(name)? = len;
        Ok(())
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.file(name).map(|_| ())
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let len = self
            .files
            .remove(from)
            .ok_or_else(|| DiskError::NotFound(from.to_owned()))?;
        self.files.insert(to.to_owned(), len);
        Ok(())
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| DiskError::NotFound(name.to_owned()))
    }
}

/// One replica with its storage.
struct Node<D: Disk> {
    replica: Replica,
    storage: Storage<D>,
}

/// What the executor does next.
enum Event {
    Deliver(Envelope),
    Request(NodeId, ClientRequest),
    Done(NodeId, replica::WriteId),
}

/// Three replicas and the executor's queue.
struct Cluster<D: Disk> {
    nodes: Vec<Node<D>>,
    queue: VecDeque<Event>,
    /// Ok replies to puts since the last reset.
    completed: u64,
    /// Replies that were errors (busy, not leader).
    refused: u64,
    /// Each client's next sequence number.
    seqs: Vec<u64>,
    /// Which client each outstanding request id belongs to.
    next_req: u64,
    /// Scratch effects buffer.
    effects: Vec<Effect>,
    /// Whether clients send their next put on a reply.
    clients_on: bool,
    leader: NodeId,
}

fn options(policy: SnapshotPolicy) -> ReplicaOptions {
    ReplicaOptions {
        snapshot_policy: policy,
        storage: StorageLimits::DEFAULT,
    }
}

impl<D: Disk> Cluster<D> {
    fn new(n: u64, policy: SnapshotPolicy, mut disk: impl FnMut() -> D) -> Cluster<D> {
        let voters: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            queue: VecDeque::new(),
            completed: 0,
            refused: 0,
            seqs: Vec::new(),
            next_req: 1,
            effects: Vec::new(),
            clients_on: false,
            leader: NodeId(1),
        };
        let mut opened = Vec::new();
        for id in 1..=n {
            let (storage, recovered) = Storage::open(disk()).expect("the log opens");
            let config = Config::new(NodeId(id), voters.clone(), id);
            let (replica, effects) = Replica::open(CLUSTER, config, options(policy), recovered)
                .expect("the replica opens");
            cluster.nodes.push(Node { replica, storage });
            opened.push((NodeId(id), effects));
        }
        for (id, effects) in opened {
            cluster.carry_out(id, effects);
        }
        cluster.elect();
        cluster
    }

    /// Ticks node 1 until it leads, delivering everything.
    fn elect(&mut self) {
        for _ in 0..1_000 {
            self.step(NodeId(1), Input::Tick);
            self.run_until_idle();
            if self.nodes[0].replica.raft().role() == Role::Leader {
                self.run_until_idle();
                return;
            }
        }
        panic!("node 1 did not become leader");
    }

    fn step(&mut self, id: NodeId, input: Input) {
        let mut effects = std::mem::take(&mut self.effects);
        self.nodes[id.0 as usize - 1]
            .replica
            .handle(input, &mut effects)
            .expect("the replica steps");
        self.carry_out(id, effects);
    }

    /// Carries out `effects` of node `id`: writes at once (their completion
    /// queued), messages queued, replies counted and answered with the
    /// client's next put.
    fn carry_out(&mut self, id: NodeId, mut effects: Vec<Effect>) {
        for effect in effects.drain(..) {
            match effect {
                Effect::Send(envelope) => self.queue.push_back(Event::Deliver(envelope)),
                Effect::Write(write) => {
                    let storage = &mut self.nodes[id.0 as usize - 1].storage;
                    storage.execute(&write).expect("the write succeeds");
                    self.queue.push_back(Event::Done(id, write.id));
                }
                Effect::Reply(reply) => {
                    if reply.result.is_ok() {
                        self.completed += 1;
                    } else {
                        self.refused += 1;
                    }
                    if self.clients_on {
                        // The request id is the client's index, shifted.
                        let client = (reply.req_id & 0xffff_ffff) as usize;
                        self.propose(client);
                    }
                }
                Effect::AdminReply(_) | Effect::Event(_) => {}
            }
        }
        self.effects = effects;
    }

    /// Queues client `client`'s next put.
    fn propose(&mut self, client: usize) {
        if self.seqs.len() <= client {
            self.seqs.resize(client + 1, 0);
        }
        self.seqs[client] += 1;
        let seq = self.seqs[client];
        self.next_req += 1;
        let request = ClientRequest {
            req_id: (self.next_req << 32) | client as u64,
            client: client as u64 + 1,
            seq,
            op: Op::Put {
                key: format!("k{}", client % 64),
                value: format!("v{seq}"),
            },
        };
        self.queue.push_back(Event::Request(self.leader, request));
    }

    /// Handles queued events until `done` holds or the queue is empty.
    fn run(&mut self, mut done: impl FnMut(&Self) -> bool) {
        while !done(self) {
            let Some(event) = self.queue.pop_front() else {
                return;
            };
            match event {
                Event::Deliver(envelope) => {
                    let to = envelope.msg.to;
                    self.step(to, Input::Message(envelope));
                }
                Event::Request(id, request) => self.step(id, Input::Request(request)),
                Event::Done(id, write) => self.step(id, Input::WriteDone(write)),
            }
        }
    }

    fn run_until_idle(&mut self) {
        self.run(|_| false);
    }
}

/// One throughput run: `in_flight` clients; returns (puts completed, seconds).
fn throughput_run<D: Disk>(
    in_flight: usize,
    proposals: u64,
    policy: SnapshotPolicy,
    disk: impl FnMut() -> D,
) -> (u64, f64) {
    let mut cluster = Cluster::new(3, policy, disk);
    cluster.clients_on = true;
    for client in 0..in_flight {
        cluster.propose(client);
    }
    // Warm up: a tenth of the run, at least a few snapshots' worth.
    let warmup = (proposals / 10).max(2_000);
    cluster.run(|c| c.completed >= warmup);
    let start_completed = cluster.completed;
    let started = Instant::now();
    cluster.run(|c| c.completed >= start_completed + proposals);
    let secs = started.elapsed().as_secs_f64();
    let done = cluster.completed - start_completed;
    assert!(
        cluster.refused < cluster.completed / 10 + 10,
        "too many refusals: {} of {}",
        cluster.refused,
        cluster.completed
    );
    (done, secs)
}

/// Bytes held per entry by the log's two images, measured on one replica.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct MemoryFigure {
    /// Entries in the log.
    pub entries: u64,
    /// Bytes freed by dropping the WAL (its in-memory image of the log).
    pub wal_bytes: u64,
    /// Bytes freed by dropping the replica (raft's log, a small state machine).
    pub replica_bytes: u64,
}

fn memory(entries: u64) -> MemoryFigure {
    alloc_count::enable();
    // One voter: the same log structures, a third of the work.
    let mut cluster = Cluster::new(1, SnapshotPolicy::NEVER, NullDisk::default);
    cluster.clients_on = true;
    // Few clients and keys: the state machine stays small.
    for client in 0..16 {
        cluster.propose(client);
    }
    cluster.run(|c| c.completed >= entries);
    cluster.clients_on = false;
    cluster.run_until_idle();
    cluster.queue = VecDeque::new();
    cluster.effects = Vec::new();
    let node = cluster.nodes.pop().expect("one node");
    let log_entries = node.replica.raft().last_index().0;
    let Node { replica, storage } = node;
    let before = alloc_count::allocated();
    drop(storage);
    let after_wal = alloc_count::allocated();
    drop(replica);
    let after_replica = alloc_count::allocated();
    MemoryFigure {
        entries: log_entries,
        wal_bytes: before.wrapping_sub(after_wal),
        replica_bytes: after_wal.wrapping_sub(after_replica),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One row of the table.
#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    in_flight: usize,
    proposals_per_run: u64,
    runs: usize,
    median_proposals_per_s: f64,
    median_us_per_proposal: f64,
    all_us_per_proposal: Vec<f64>,
}

/// Runs the benchmark; prints the table, writes the JSON.
pub fn bench_raft(args: &BenchRaftArgs) -> Result<u8, String> {
    let policy = SnapshotPolicy {
        every: args.snapshot_every,
        keep: args.snapshot_keep,
    };
    let mut rows = Vec::new();
    for &in_flight in &args.in_flight {
        let mut us = Vec::new();
        for _ in 0..args.runs {
            let (done, secs) = match args.disk {
                BenchDisk::Mem => throughput_run(in_flight, args.proposals, policy, MemDisk::new),
                BenchDisk::Null => {
                    throughput_run(in_flight, args.proposals, policy, NullDisk::default)
                }
            };
            us.push(secs * 1e6 / done as f64);
        }
        let med = median(us.clone());
        eprintln!("in flight {in_flight}: {med:.3} µs per proposal (runs: {us:.3?})");
        rows.push(Row {
            in_flight,
            proposals_per_run: args.proposals,
            runs: args.runs,
            median_proposals_per_s: 1e6 / med,
            median_us_per_proposal: med,
            all_us_per_proposal: us,
        });
    }
    let mem = (args.memory_entries > 0).then(|| {
        let figure = memory(args.memory_entries);
        eprintln!("memory: {figure:?}");
        figure
    });

    let mut out = String::new();
    let disk = match args.disk {
        BenchDisk::Mem => "wal::MemDisk",
        BenchDisk::Null => "a disk that keeps nothing",
    };
    let _ = writeln!(
        out,
        "### bench raft: 3 replicas, one thread, {disk}, snapshot every {} keep {}\n",
        policy.every, policy.keep
    );
    let _ = writeln!(
        out,
        "| in flight | proposals/s (median) | µs per proposal (median) | runs × proposals |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|");
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {} × {} |",
            r.in_flight,
            r.median_proposals_per_s,
            r.median_us_per_proposal,
            r.runs,
            r.proposals_per_run
        );
    }
    if let Some(m) = mem {
        let per_million = |b: u64| b as f64 * 1e6 / m.entries as f64;
        let _ = writeln!(
            out,
            "\nMemory held per million entries (one replica, snapshots off, {} entries; \
             allocator-counted bytes freed by dropping each part):\n",
            m.entries
        );
        let _ = writeln!(out, "| part | MB per 1M entries | bytes per entry |");
        let _ = writeln!(out, "|---|---:|---:|");
        for (name, b) in [
            ("WAL image", m.wal_bytes),
            ("replica (raft's log + state machine)", m.replica_bytes),
            ("total", m.wal_bytes + m.replica_bytes),
            (
                "total before #13 (WAL held the entries too; measured at 23fa181)",
                BEFORE_ONE_OWNER.wal_bytes + BEFORE_ONE_OWNER.replica_bytes,
            ),
        ] {
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {:.1} |",
                per_million(b) / 1e6,
                b as f64 / m.entries as f64
            );
        }
    }
    if cfg!(debug_assertions) {
        let _ = writeln!(
            out,
            "\nNote: built with debug assertions (the `sim` profile of `cargo xtask`): \
             the times include raft's invariant checks. For the figures, run \
             `cargo run --release -p xtask -- bench raft`."
        );
    }
    let _ = writeln!(out, "\n{ANCHORS}");
    print!("{out}");

    let json = serde_json::json!({
        "disk": format!("{:?}", args.disk).to_lowercase(),
        "debug_assertions": cfg!(debug_assertions),
        "snapshot_policy": { "every": policy.every, "keep": policy.keep },
        "rows": rows,
        "memory": mem,
        "memory_before_issue_13": BEFORE_ONE_OWNER,
        "anchors": {
            "etcd_raft_us_per_proposal": 5.9,
            "openraft_puts_per_s_4096_clients": 3.37e6,
            "target_us_per_proposal_at_1024": 1.0,
        },
    });
    let path = args
        .json
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("target/bench/raft.json"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("json: {}", path.display());
    Ok(0)
}

/// A global allocator that counts the bytes allocated and not yet freed,
/// so that `bench raft` can measure what a data structure holds. Counting
/// is one relaxed atomic add per allocation while enabled (only during
/// `bench raft`), and one relaxed load otherwise.
pub mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    static ENABLED: AtomicBool = AtomicBool::new(false);
    static LIVE: AtomicU64 = AtomicU64::new(0);

    /// Counts live bytes over [`System`].
    pub struct Counting;

    // SAFETY: every call is forwarded to `System` unchanged; the counter
    // only observes sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if ENABLED.load(Ordering::Relaxed) {
                LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
            }
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if ENABLED.load(Ordering::Relaxed) {
                LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            }
            // SAFETY: forwarded with the caller's pointer and layout.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            if ENABLED.load(Ordering::Relaxed) {
                LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
            }
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if ENABLED.load(Ordering::Relaxed) {
                LIVE.fetch_add(new_size as u64, Ordering::Relaxed);
                LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            }
            // SAFETY: forwarded with the caller's arguments.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Starts counting. Bytes allocated before and freed after count
    /// negative, so only differences between two readings mean anything
    /// (the counter wraps rather than going below zero).
    pub fn enable() {
        ENABLED.store(true, Ordering::Relaxed);
    }

    /// The live-bytes counter (meaningful as a difference).
    pub fn allocated() -> u64 {
        LIVE.load(Ordering::Relaxed)
    }
}
