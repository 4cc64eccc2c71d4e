//! The log cleaner's background tasks: `log.cleaner.threads` tasks, each repeatedly taking
//! the log that most needs compaction and cleaning it on the blocking pool with its own
//! offset map (`log.cleaner.dedupe.buffer.size` split between them). Appends never wait for
//! a pass: storage holds the append lock only to switch cleaned segments in.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;
use weir_storage::cleaner::Cleaner;

use crate::config::CleanerConfig;
use crate::server::now_ms;
use crate::state::{Partition, State};

/// Logs being cleaned, so two tasks never take the same one.
type InProgress = Arc<Mutex<HashSet<PathBuf>>>;

/// Spawns the cleaner's supervisor (nothing when `log.cleaner.enable`, read-only, is
/// false). It keeps `log.cleaner.threads` cleaner tasks running as the dynamic config
/// changes, and ends once they all stopped after the stop signal.
pub fn spawn(state: &Arc<State>, stop: &broadcast::Sender<()>) -> Vec<tokio::task::JoinHandle<()>> {
    if !state.config.cleaner.enable {
        return Vec::new();
    }
    vec![tokio::spawn(supervise(state.clone(), stop.clone()))]
}

async fn supervise(state: Arc<State>, stop_tx: broadcast::Sender<()>) {
    let mut stop = stop_tx.subscribe();
    let mut changes = state.broker_configs.subscribe();
    let in_progress = InProgress::default();
    let mut workers = Vec::new();
    loop {
        // Tasks beyond a lowered thread count idle (see `run`); a raised one starts more.
        let want = state.broker_configs.effective().cleaner.threads.max(1);
        while workers.len() < want {
            let thread = workers.len();
            workers.push(tokio::spawn(run(
                thread,
                state.clone(),
                stop_tx.subscribe(),
                in_progress.clone(),
            )));
        }
        tokio::select! {
            _ = stop.recv() => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    let _ = stop.recv().await;
                    break;
                }
            }
        }
    }
    for worker in workers {
        let _ = worker.await;
    }
}

/// A cleaner sized by the config in force: its share of `log.cleaner.dedupe.buffer.size`
/// and of `log.cleaner.io.max.bytes.per.second`.
fn share(config: &CleanerConfig) -> (usize, Option<f64>) {
    let threads = config.threads.max(1);
    (
        config.dedupe_buffer_size / threads,
        config.io_max_bytes_per_second.map(|r| r / threads as f64),
    )
}

/// The dirtiest log that is due: overdue ones (past `max.compaction.lag.ms`) first, then by
/// dirty ratio. Claims it in `in_progress`.
fn pick(state: &State, in_progress: &InProgress) -> Option<(String, Arc<Partition>)> {
    let now = now_ms();
    let mut best: Option<((bool, f64), String, Arc<Partition>)> = None;
    let busy = in_progress.lock().unwrap_or_else(PoisonError::into_inner);
    for topic in state.topics() {
        for p in topic.all_partitions() {
            if busy.contains(p.dir()) {
                continue;
            }
            let c = match p.cleanability(now) {
                Ok(Some(c)) if c.due => c,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(topic = %topic.name, partition = p.index(), error = %e, "cannot assess log for cleaning");
                    continue;
                }
            };
            let rank = (c.overdue, c.dirty_ratio);
            if best
                .as_ref()
                .is_none_or(|(r, _, _)| (rank.0 && !r.0) || (rank.0 == r.0 && rank.1 > r.1))
            {
                best = Some((rank, topic.name.clone(), p));
            }
        }
    }
    drop(busy);
    let (_, topic, p) = best?;
    in_progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(p.dir().to_path_buf());
    Some((topic, p))
}

async fn run(
    thread: usize,
    state: Arc<State>,
    mut stop: broadcast::Receiver<()>,
    in_progress: InProgress,
) {
    let mut current: Option<((usize, Option<f64>), Cleaner)> = None;
    loop {
        // Read at every pass: the cleaner keys are dynamic broker configs.
        let config = state.broker_configs.effective().cleaner.clone();
        let backoff = Duration::from_millis(config.backoff_ms);
        if thread >= config.threads.max(1) {
            tokio::select! {
                _ = stop.recv() => return,
                _ = tokio::time::sleep(backoff) => continue,
            }
        }
        let sized = share(&config);
        let mut c = match current.take() {
            Some((s, c)) if s == sized => c,
            _ => Cleaner::new(sized.0, sized.1),
        };
        let picked = {
            let (state, in_progress) = (state.clone(), in_progress.clone());
            tokio::task::spawn_blocking(move || pick(&state, &in_progress)).await
        };
        let Ok(Some((topic, partition))) = picked else {
            current = Some((sized, c));
            tokio::select! {
                _ = stop.recv() => return,
                _ = tokio::time::sleep(backoff) => continue,
            }
        };
        let abort = c.abort_handle();
        let p = partition.clone();
        let mut pass = tokio::task::spawn_blocking(move || {
            let out = p.clean(&mut c, now_ms());
            (c, out)
        });
        let outcome = tokio::select! {
            _ = stop.recv() => {
                // The pass stops before its next swap and removes its cleaned file.
                abort.store(true, Ordering::Release);
                let _ = pass.await;
                return;
            }
            done = &mut pass => done,
        };
        in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(partition.dir());
        let Ok((c, result)) = outcome else {
            tracing::error!(thread, "cleaner pass panicked; this cleaner thread stops");
            return;
        };
        current = Some((sized, c));
        match result {
            Ok(Some(stats)) => tracing::info!(
                thread, topic = %topic, partition = partition.index(),
                first_dirty = stats.first_dirty_after, map_full = stats.map_full,
                keys = stats.keys_mapped, bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written, records_removed = stats.records_removed,
                tombstones_removed = stats.tombstones_removed,
                markers_removed = stats.markers_removed, "cleaned log"
            ),
            Ok(None) => {
                // Due by its ratio but nothing to do (the map holds no whole batch, the log
                // changed): not again at once.
                tokio::select! {
                    _ = stop.recv() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
            Err(e) => {
                tracing::warn!(thread, topic = %topic, partition = partition.index(), error = %e, source = ?std::error::Error::source(&e), "cleaning failed");
                tokio::select! {
                    _ = stop.recv() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
}
