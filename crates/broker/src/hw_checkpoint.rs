//! `<data-dir>/replication-offset-checkpoint`: the high watermark of every replicated
//! partition on this broker, in Kafka's checkpoint format (design §5.6):
//!
//! ```text
//! 0                 version
//! 2                 number of entries
//! orders 0 1200     topic partition offset
//! orders 1 977
//! ```
//!
//! A restarted replica starts its high watermark here rather than at its log end (records
//! above the high watermark may be truncated by the next leader) or at 0 (consumers would
//! see nothing until the first fetch round). Written with `write_atomically` every
//! `replica.high.watermark.checkpoint.interval.ms` and at clean shutdown, in cluster mode
//! only: on a single node every partition leads alone and its high watermark is its log end,
//! so the file would cost I/O for nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use weir_storage::StorageError;

use crate::config::BrokerConfig;
use crate::state::State;

pub const FILE: &str = "replication-offset-checkpoint";
const VERSION: u32 = 0;

/// High watermarks by (topic, partition).
pub type HighWatermarks = BTreeMap<(String, i32), i64>;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot write the high-watermark checkpoint: {0}")]
    Write(#[from] StorageError),
}

/// Whether the broker runs as a member of a replicated cluster: `controller.quorum.voters`
/// selects it (design §8.1).
pub fn cluster_mode(config: &BrokerConfig) -> bool {
    config.cluster.is_cluster()
}

/// The file's text for `entries`.
pub fn encode(entries: &HighWatermarks) -> String {
    let mut out = format!("{VERSION}\n{}\n", entries.len());
    for ((topic, partition), offset) in entries {
        out.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    out
}

/// Parses the file's text; `path` names it in errors.
pub fn decode(text: &str, path: &Path) -> Result<HighWatermarks, CheckpointError> {
    let bad = |line: usize, reason: String| CheckpointError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (n, version) = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
    if version.trim() != VERSION.to_string() {
        return Err(bad(n, format!("version {version:?}, expected {VERSION}")));
    }
    let (n, count) = lines
        .next()
        .ok_or_else(|| bad(2, "no entry count".into()))?;
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| bad(n, format!("entry count {count:?} is not a number")))?;
    let mut entries = HighWatermarks::new();
    for _ in 0..count {
        let (n, line) = lines.next().ok_or_else(|| {
            bad(
                3 + entries.len(),
                format!("{count} entries announced, {} found", entries.len()),
            )
        })?;
        let fields: Vec<&str> = line.split(' ').collect();
        let [topic, partition, offset] = fields[..] else {
            return Err(bad(
                n,
                format!("{line:?} is not \"topic partition offset\""),
            ));
        };
        let partition: i32 = partition
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| bad(n, format!("partition {partition:?} is not a partition")))?;
        let offset: i64 = offset
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| bad(n, format!("offset {offset:?} is not an offset")))?;
        if topic.is_empty()
            || entries
                .insert((topic.to_string(), partition), offset)
                .is_some()
        {
            return Err(bad(
                n,
                format!("{topic:?} {partition} is empty or repeated"),
            ));
        }
    }
    if let Some((n, extra)) = lines.find(|(_, l)| !l.is_empty()) {
        return Err(bad(
            n,
            format!("{extra:?} after the {count} announced entries"),
        ));
    }
    Ok(entries)
}

/// Reads the checkpoint of `data_dir`; no file is no entries.
pub fn read(data_dir: &Path) -> Result<HighWatermarks, CheckpointError> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HighWatermarks::new()),
        Err(source) => Err(CheckpointError::Read { path, source }),
    }
}

/// Replaces the checkpoint of `data_dir` with `entries` (blocking).
pub fn write(data_dir: &Path, entries: &HighWatermarks) -> Result<(), CheckpointError> {
    Ok(weir_storage::write_atomically(
        data_dir,
        FILE,
        encode(entries).as_bytes(),
    )?)
}

/// The high watermarks of the replicated partitions `state` holds.
pub fn collect(state: &State) -> HighWatermarks {
    let mut out = HighWatermarks::new();
    for topic in state.topics() {
        for p in topic.all_partitions() {
            if let Some(hw) = p.checkpoint_high_watermark() {
                out.insert((topic.name.clone(), p.index()), hw);
            }
        }
    }
    out
}

/// Writes the checkpoint of `state`'s replicated partitions when it changed since `last`
/// (blocking); returns what the file now holds.
pub fn checkpoint(
    state: &State,
    last: Option<&HighWatermarks>,
) -> Result<HighWatermarks, CheckpointError> {
    let now = collect(state);
    if last != Some(&now) {
        write(&state.config.data_dir, &now)?;
    }
    Ok(now)
}

/// The periodic writer (cluster mode only): every `interval` until `stop`. A failed write is
/// logged and retried at the next tick; the previous file stays whole meanwhile.
pub async fn run(state: Arc<State>, mut stop: broadcast::Receiver<()>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last: Option<HighWatermarks> = None;
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        let s = state.clone();
        let previous = last.take();
        match tokio::task::spawn_blocking(move || checkpoint(&s, previous.as_ref())).await {
            Ok(Ok(written)) => last = Some(written),
            Ok(Err(e)) => tracing::error!(error = %e, "high-watermark checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "high-watermark checkpoint task panicked"),
        }
    }
}

#[cfg(test)]
#[path = "hw_checkpoint_tests.rs"]
mod tests;
