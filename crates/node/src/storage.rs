//! The storage thread: the one owner of the WAL on the real disk.
//!
//! It takes [`Write`]s in the order the replica issued them, carries out
//! everything queued (`Storage::write`), makes it durable with one sync
//! (group commit), and only then reports each write done, in order. A failed
//! write or sync is fail-stop: the process exits, and a restart recovers
//! from the disk (the replica's memory may be ahead of its disk).

use crate::metrics::Metrics;
use replica::{Storage, Write, WriteId};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use wal::FsDisk;

/// The exit code of a node stopped by a storage failure.
pub const STORAGE_FAILURE_EXIT: i32 = 3;

/// Starts the storage thread; returns where to send writes. Completions
/// come back on `done`, a batch of ids (in issue order) per sync.
pub fn spawn(
    mut storage: Storage<FsDisk>,
    done: UnboundedSender<Vec<WriteId>>,
    metrics: Arc<Metrics>,
) -> mpsc::Sender<Write> {
    let (tx, rx) = mpsc::channel::<Write>();
    std::thread::Builder::new()
        .name("storage".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                for write in &batch {
                    if let Err(e) = storage.write(write) {
                        fail_stop(&format!("WAL write failed: {e:?}"));
                    }
                }
                let started = Instant::now();
                if let Err(e) = storage.sync() {
                    fail_stop(&format!("WAL sync failed: {e:?}"));
                }
                metrics
                    .fsync_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.writes_per_sync.observe(batch.len() as f64);
                if done.send(batch.iter().map(|w| w.id).collect()).is_err() {
                    return; // the replica task is gone: the node is stopping
                }
            }
        })
        .expect("spawning the storage thread");
    tx
}

/// How long `--unsafe-no-fsync` holds acknowledged writes in memory before
/// it writes them (never synced): the window in which a kill -9 loses them,
/// as a power failure loses a volatile write cache.
const UNSAFE_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The storage thread of `--unsafe-no-fsync` (UNSAFE, for testing the
/// tests): each write is reported done as soon as it arrives, and written
/// to the WAL (without a sync) only about once a second, so the replica
/// acknowledges what no disk holds. The deferral is what makes a kill -9
/// stand for a power failure: a write handed to the kernel survives the
/// process, so skipping only the sync would lose nothing a test can see.
pub fn spawn_unsafe_no_fsync(
    mut storage: Storage<FsDisk>,
    done: UnboundedSender<Vec<WriteId>>,
) -> mpsc::Sender<Write> {
    let (tx, rx) = mpsc::channel::<Write>();
    std::thread::Builder::new()
        .name("storage-unsafe".into())
        .spawn(move || {
            let mut held: Vec<Write> = Vec::new();
            let mut last_flush = Instant::now();
            loop {
                match rx.recv_timeout(UNSAFE_FLUSH_EVERY) {
                    Ok(write) => {
                        let id = write.id;
                        held.push(write);
                        if done.send(vec![id]).is_err() {
                            return;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                if last_flush.elapsed() >= UNSAFE_FLUSH_EVERY {
                    for write in held.drain(..) {
                        if let Err(e) = storage.write(&write) {
                            fail_stop(&format!("WAL write failed: {e:?}"));
                        }
                    }
                    last_flush = Instant::now();
                }
            }
        })
        .expect("spawning the storage thread");
    tx
}

/// Stops the process after a storage failure.
pub fn fail_stop(why: &str) -> ! {
    tracing::error!("{why}; stopping (restart the node to recover from its disk)");
    std::process::exit(STORAGE_FAILURE_EXIT)
}
