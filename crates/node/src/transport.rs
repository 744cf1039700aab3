//! The peer transport: one outgoing TCP connection per peer, used to send,
//! and the incoming ones, used to receive.
//!
//! Every connection opens with a handshake ([`Hello`]): the acceptor refuses
//! a dialler of another cluster, one that means another node, or one that
//! is not a member, logs it and counts it in `peer_connections_refused`.
//! A member it did not know the address of (one that joined) is recorded
//! in the [`Directory`](crate::directory::Directory) and dialled back. A
//! frame that is too large, of another version or undecodable ends the
//! connection, counted the same way; nothing of it reaches the replica.
//!
//! Sending never blocks the replica: each peer has a bounded queue, and a
//! message that finds it full is dropped and counted (Raft retransmits). A
//! dialler reconnects with exponential backoff; what queued while its peer
//! was down is dropped rather than delivered late in a burst.

use crate::Shared;
use crate::metrics::label;
use crate::server::Command;
use crate::wire::{FrameError, Hello, HelloReply, read_frame, write_frame};
use raft::NodeId;
use replica::Envelope;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// How long a handshake may take, either way.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// The first and the longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most this many incoming peer connections at once.
const MAX_INCOMING: usize = 64;

/// Where the replica task sends messages: one bounded queue per peer, and
/// the address its dialler connects to.
pub struct Outbox {
    queues: BTreeMap<u64, (SocketAddr, mpsc::Sender<Envelope>)>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// Queues `envelope` for its receiver; drops and counts it if the queue
    /// is full or the receiver unknown.
    pub fn send(&self, envelope: Envelope) {
        let sent = self
            .queues
            .get(&envelope.msg.to.0)
            .is_some_and(|(_, q)| q.try_send(envelope).is_ok());
        if !sent {
            self.shared.metrics.peer_dropped.inc();
        }
    }

    /// Makes sure a dialler connects to `id` at `addr`: starts one for a
    /// new peer, replaces one whose peer moved (the old one stops when its
    /// queue is dropped), and does nothing otherwise.
    pub fn dial(&mut self, id: u64, addr: SocketAddr) {
        if id == self.shared.config.node_id
            || self.queues.get(&id).is_some_and(|(at, _)| *at == addr)
        {
            return;
        }
        let (tx, rx) = mpsc::channel(self.shared.config.peer_queue);
        self.queues.insert(id, (addr, tx));
        let config = &self.shared.config;
        let hello = Hello {
            cluster_id: config.cluster_id,
            from: config.node_id,
            to: id,
            http_addr: config.http_addr.to_string(),
            peer_addr: config.peer_addr.to_string(),
        };
        tokio::spawn(dial(id, addr, rx, hello, self.shared.clone()));
    }

    /// Stops sending to `id` (it left the configuration).
    pub fn forget(&mut self, id: u64) {
        self.queues.remove(&id);
    }
}

/// Starts a dialler per member in the directory; returns their queues.
pub fn start_diallers(shared: &Arc<Shared>) -> Outbox {
    let mut outbox = Outbox {
        queues: BTreeMap::new(),
        shared: shared.clone(),
    };
    let members: Vec<(u64, SocketAddr)> = shared
        .directory
        .lock()
        .expect("not poisoned")
        .members()
        .iter()
        .map(|(&id, m)| (id, m.peer))
        .collect();
    for (id, addr) in members {
        outbox.dial(id, addr);
    }
    outbox
}

async fn dial(
    peer: u64,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Envelope>,
    hello: Hello,
    shared: Arc<Shared>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match connect(addr, &hello).await {
            Ok(stream) => {
                tracing::info!(peer, %addr, "connected to peer");
                backoff = BACKOFF_MIN;
                let mut w = BufWriter::new(stream);
                loop {
                    let Some(envelope) = rx.recv().await else {
                        return; // the node is stopping
                    };
                    let mut result = write_frame(&mut w, &envelope).await;
                    if result.is_ok() && rx.is_empty() {
                        result = w.flush().await.map_err(FrameError::Io);
                    }
                    if let Err(e) = result {
                        tracing::info!(peer, %addr, "connection to peer lost: {e}");
                        shared.metrics.peer_dropped.inc();
                        break;
                    }
                }
            }
            Err(e) => {
                shared.metrics.peer_connect_failures.inc();
                tracing::debug!(peer, %addr, "cannot connect to peer: {e}");
            }
        }
        if rx.is_closed() {
            return; // replaced (the peer moved) or forgotten
        }
        while rx.try_recv().is_ok() {
            shared.metrics.peer_dropped.inc();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Connects and shakes hands.
async fn connect(addr: SocketAddr, hello: &Hello) -> Result<TcpStream, String> {
    let handshake = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        write_frame(&mut stream, hello)
            .await
            .map_err(|e| e.to_string())?;
        match read_frame::<_, HelloReply>(&mut stream).await {
            Ok(HelloReply::Welcome) => Ok(stream),
            Ok(HelloReply::Refused(why)) => {
                tracing::warn!(%addr, "peer refused this node: {why}");
                Err(format!("refused: {why}"))
            }
            Err(e) => Err(e.to_string()),
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| "handshake timed out".to_owned())?
}

/// Accepts peer connections and feeds their messages to `inbound`.
pub async fn accept(listener: TcpListener, shared: Arc<Shared>, inbound: mpsc::Sender<Envelope>) {
    let slots = Arc::new(Semaphore::new(MAX_INCOMING));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accepting a peer connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refuse(
                &shared,
                remote,
                "too_many_connections",
                "too many connections",
            );
            continue;
        };
        let shared = shared.clone();
        let inbound = inbound.clone();
        tokio::spawn(async move {
            serve(stream, remote, shared, inbound).await;
            drop(permit);
        });
    }
}

/// Records the addresses a member's handshake carries; dials it back if
/// its peer address is new (a member that joined) or moved.
async fn learn_peer(shared: &Shared, hello: &Hello) {
    let Ok(peer) = hello.peer_addr.parse::<SocketAddr>() else {
        tracing::warn!(
            peer = hello.from,
            addr = hello.peer_addr,
            "a member sent a peer address that is not IP:PORT"
        );
        return;
    };
    let learnt = shared.directory.lock().expect("not poisoned").learn(
        hello.from,
        peer,
        Some(hello.http_addr.clone()),
    );
    match learnt {
        Ok(true) => {
            tracing::info!(peer = hello.from, addr = %peer, "learnt a member's address");
            let dial = Command::Dial {
                id: hello.from,
                addr: peer,
            };
            let _ = shared.commands.send(dial).await;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("cannot record a member's address: {e}"),
    }
}

fn refuse(shared: &Shared, remote: SocketAddr, reason: &str, detail: &str) {
    shared
        .metrics
        .peer_refused
        .get_or_create(&label("reason", reason))
        .inc();
    tracing::warn!(%remote, reason, "peer connection refused: {detail}");
}

async fn serve(
    mut stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Envelope>,
) {
    let _ = stream.set_nodelay(true);
    let hello =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame::<_, Hello>(&mut stream)).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(e)) => return refuse(&shared, remote, "bad_handshake", &e.to_string()),
            Err(_) => return refuse(&shared, remote, "bad_handshake", "handshake timed out"),
        };
    let config = &shared.config;
    let refusal = if hello.cluster_id != config.cluster_id {
        Some((
            "wrong_cluster",
            format!(
                "node {} is of cluster {}, this is cluster {}",
                hello.from, hello.cluster_id, config.cluster_id
            ),
        ))
    } else if hello.to != config.node_id {
        Some((
            "wrong_node",
            format!(
                "meant for node {}, this is node {}",
                hello.to, config.node_id
            ),
        ))
    } else if !shared.is_member(hello.from) {
        Some((
            "unknown_node",
            format!("node {} is not a member", hello.from),
        ))
    } else {
        None
    };
    if let Some((reason, detail)) = refusal {
        let _ = write_frame(&mut stream, &HelloReply::Refused(detail.clone())).await;
        return refuse(&shared, remote, reason, &detail);
    }
    if write_frame(&mut stream, &HelloReply::Welcome)
        .await
        .is_err()
    {
        return;
    }
    learn_peer(&shared, &hello).await;
    let mut r = tokio::io::BufReader::new(stream);
    loop {
        match read_frame::<_, Envelope>(&mut r).await {
            Ok(envelope) if envelope.msg.from == NodeId(hello.from) => {
                if inbound.send(envelope).await.is_err() {
                    return; // the node is stopping
                }
            }
            Ok(envelope) => {
                let detail = format!(
                    "node {} sent a message from {}",
                    hello.from, envelope.msg.from.0
                );
                return refuse(&shared, remote, "spoofed_sender", &detail);
            }
            Err(FrameError::Io(e)) => {
                tracing::debug!(peer = hello.from, "peer connection closed: {e}");
                return;
            }
            Err(e) => return refuse(&shared, remote, "bad_frame", &e.to_string()),
        }
    }
}
