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
use weir_storage::cleaner::{self, Cleaner};

use crate::server::now_ms;
use crate::state::{Partition, State};

/// Logs being cleaned, so two tasks never take the same one.
type InProgress = Arc<Mutex<HashSet<PathBuf>>>;

/// Spawns the cleaner tasks (none when `log.cleaner.enable` is false).
pub fn spawn(state: &Arc<State>, stop: &broadcast::Sender<()>) -> Vec<tokio::task::JoinHandle<()>> {
    let config = &state.config.cleaner;
    if !config.enable {
        return Vec::new();
    }
    let threads = config.threads.max(1);
    let in_progress = InProgress::default();
    (0..threads)
        .map(|i| {
            let cleaner = Cleaner::new(
                config.dedupe_buffer_size / threads,
                config.io_max_bytes_per_second.map(|r| r / threads as f64),
            );
            tokio::spawn(run(
                i,
                state.clone(),
                stop.subscribe(),
                in_progress.clone(),
                cleaner,
            ))
        })
        .collect()
}

/// The dirtiest log that is due: overdue ones (past `max.compaction.lag.ms`) first, then by
/// dirty ratio. Claims it in `in_progress`.
fn pick(state: &State, in_progress: &InProgress) -> Option<(String, Arc<Partition>)> {
    let now = now_ms();
    let mut best: Option<((bool, f64), String, Arc<Partition>)> = None;
    let busy = in_progress.lock().unwrap_or_else(PoisonError::into_inner);
    for topic in state.topics() {
        for p in topic.all_partitions() {
            if busy.contains(p.log.dir()) {
                continue;
            }
            let c = match cleaner::cleanability(&p.log, now) {
                Ok(Some(c)) if c.due => c,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(topic = %topic.name, partition = p.index, error = %e, "cannot assess log for cleaning");
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
        .insert(p.log.dir().to_path_buf());
    Some((topic, p))
}

async fn run(
    thread: usize,
    state: Arc<State>,
    mut stop: broadcast::Receiver<()>,
    in_progress: InProgress,
    cleaner: Cleaner,
) {
    let backoff = Duration::from_millis(state.config.cleaner.backoff_ms);
    let mut cleaner = Some(cleaner);
    loop {
        let picked = {
            let (state, in_progress) = (state.clone(), in_progress.clone());
            tokio::task::spawn_blocking(move || pick(&state, &in_progress)).await
        };
        let Ok(Some((topic, partition))) = picked else {
            tokio::select! {
                _ = stop.recv() => return,
                _ = tokio::time::sleep(backoff) => continue,
            }
        };
        let Some(mut c) = cleaner.take() else { return };
        let abort = c.abort_handle();
        let p = partition.clone();
        let mut pass = tokio::task::spawn_blocking(move || {
            let out = c.clean(&p.log, now_ms());
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
            .remove(partition.log.dir());
        let Ok((c, result)) = outcome else {
            tracing::error!(thread, "cleaner pass panicked; this cleaner thread stops");
            return;
        };
        cleaner = Some(c);
        match result {
            Ok(Some(stats)) => tracing::info!(
                thread, topic = %topic, partition = partition.index,
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
                tracing::warn!(thread, topic = %topic, partition = partition.index, error = %e, source = ?std::error::Error::source(&e), "cleaning failed");
                tokio::select! {
                    _ = stop.recv() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
}
