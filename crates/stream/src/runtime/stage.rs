//! The source stage (§7.1): reads and decodes a pipeline's source partitions ahead of its
//! operators, as a task of its own. On an engine runtime of two or more threads
//! (`weir.sql.threads`) the parsing of the next reads (JSON's is the largest single cost of a
//! simple query) runs while the operators process the last one; on one thread the two tasks
//! take turns, at about the cost of the single task they replaced. (Decoding on the blocking
//! pool instead gave one thread the overlap too, but cost 10-20 % more CPU per event in
//! `weir bench nexmark`: the batches then cross threads both ways.)
//!
//! Each read goes to the operator side as one [`Fetched`] over a bounded channel, in read
//! order, carrying the partition's position after it. The operator side commits the
//! positions of the reads it has applied, not the stage's, so a checkpoint never covers a
//! read still in the channel and no barrier has to pass through the stage: what was read
//! ahead and not applied at a crash is read again by the next run.
//!
//! Caught up everywhere, the stage parks on its partitions (one wait for all of them) until
//! an append or the park bound; the operator side keeps its own timers (checkpoints, idle
//! partitions' watermarks).

use std::time::Duration;

use arrow_array::RecordBatch;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_broker::partition_access::{PartitionAccess, Wake};

use crate::error::StreamError;
use crate::format::SourceDecoder;
use crate::source::reader::{decode, Decoded, PartitionReader};

/// Reads in the channel per pipeline: enough to decode one ahead while the operators work,
/// few enough that what was read ahead stays small (each read is at most
/// `weir.sql.read.max.bytes` of records).
const DEPTH: usize = 2;

/// One source's partitions as the stage reads them, and its decoder.
pub(super) struct StageSource {
    pub(super) readers: Vec<PartitionReader>,
    pub(super) decoder: Box<dyn SourceDecoder>,
}

/// One read of one partition, decoded.
pub(super) struct Fetched {
    /// Index of the source and of the partition's reader in it.
    pub(super) source: usize,
    pub(super) reader: usize,
    /// The decoded rows; `None` when the read returned no records.
    pub(super) batch: Option<RecordBatch>,
    pub(super) decoded: Decoded,
    /// The position moved (records, or only control or aborted batches, were passed).
    pub(super) moved: bool,
}

pub(super) type Item = Result<Fetched, StreamError>;

pub(super) struct SourceStage {
    pub(super) sources: Vec<StageSource>,
    pub(super) access: PartitionAccess,
    /// Longest park without a wake (a re-read then finds any append a wake missed).
    pub(super) park: Duration,
}

/// Aborts the stage's task when the operator side ends, however it ends.
pub(super) struct StageTask(JoinHandle<()>);

impl StageTask {
    /// Why the stage ended without sending an error (a panic's message).
    pub(super) async fn ended(&mut self) -> String {
        match (&mut self.0).await {
            Err(e) => format!("the source stage failed: {e}"),
            Ok(()) => "the source stage ended".to_string(),
        }
    }
}

impl Drop for StageTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SourceStage {
    /// Starts the stage on the current runtime.
    pub(super) fn spawn(self) -> (StageTask, mpsc::Receiver<Item>) {
        let (tx, rx) = mpsc::channel(DEPTH);
        (StageTask(tokio::spawn(self.run(tx))), rx)
    }

    async fn run(mut self, tx: mpsc::Sender<Item>) {
        // What the operator side was last told of each partition being caught up: a read
        // that finds nothing new is sent only when that changes.
        let mut told: Vec<Vec<bool>> = self
            .sources
            .iter()
            .map(|s| vec![false; s.readers.len()])
            .collect();
        loop {
            let mut progressed = false;
            let mut watched = Vec::new();
            for s in 0..self.sources.len() {
                let readers = self.sources.get(s).map_or(0, |s| s.readers.len());
                for r in 0..readers {
                    let (fetched, wake) = match self.read(s, r).await {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    watched.push(wake);
                    progressed |= fetched.moved;
                    let caught_up = fetched.decoded.step.caught_up;
                    let Some(told) = told.get_mut(s).and_then(|t| t.get_mut(r)) else {
                        continue;
                    };
                    let news = fetched.moved
                        || fetched.batch.is_some()
                        || !fetched.decoded.dead.is_empty()
                        || *told != caught_up;
                    if news {
                        *told = caught_up;
                        if tx.send(Ok(fetched)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if !progressed {
                tokio::select! {
                    _ = self.access.wait_any(&watched, Instant::now() + self.park) => {}
                    _ = tx.closed() => return,
                }
            }
        }
    }

    /// Reads partition `r` of source `s` once and decodes the read.
    async fn read(&mut self, s: usize, r: usize) -> Result<(Fetched, Wake), StreamError> {
        let src = self
            .sources
            .get_mut(s)
            .ok_or_else(|| StreamError::Graph(format!("no source {s}")))?;
        let reader = src
            .readers
            .get_mut(r)
            .ok_or_else(|| StreamError::Graph(format!("no partition {r} of source {s}")))?;
        let (read, wake) = reader.fetch().await?;
        let from = reader.next_offset;
        let decoded = decode(
            &reader.topic,
            reader.index(),
            &read,
            from,
            src.decoder.as_mut(),
        )?;
        let batch = src.decoder.flush()?;
        reader.next_offset = decoded.next_offset;
        let fetched = Fetched {
            source: s,
            reader: r,
            batch: (batch.num_rows() > 0).then_some(batch),
            moved: decoded.next_offset != from,
            decoded,
        };
        Ok((fetched, wake))
    }
}
