//! One pipeline's transactional producer: the epoch's appends to sinks and to the state
//! topic, and its commit (§7.2). Batches are transactional v2 batches (producer id, epoch,
//! per-partition sequences from 0, the transactional bit) encoded by `RecordBatchEncoder` and
//! appended with `Acks::All`; each partition joins the transaction before its first append.
//! The commit waits until every written partition is fsynced (after the decision a recovery
//! commits whatever the log holds) and then ends the transaction, which returns once every
//! marker is written.
//!
//! Every call goes through [`PartitionAccess`]: appends to partitions led here owe their
//! fsync and replication until the commit (as always), those led elsewhere are answered by
//! their leader once durable; the transaction calls reach the id's coordinator wherever it
//! runs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::BytesMut;
use weir_broker::partition_access::{AccessError, AppendAck, PartitionAccess, PartitionHandle};
use weir_coordinator::TopicPartition;
use weir_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::error::StreamError;
use crate::format::SinkRecord;

/// How long a commit waits for its records to replicate before the epoch fails.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Encoded bytes per appended batch, well below the default `message.max.bytes`.
const BATCH_BYTES: usize = 512 << 10;
/// How long a retriable coordinator answer (CONCURRENT_TRANSACTIONS) is retried.
const RETRY_FOR: Duration = Duration::from_secs(30);

pub struct EpochTxn {
    access: PartitionAccess,
    pub transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    /// Partitions in the open transaction.
    added: HashSet<(String, i32)>,
    /// Per written partition, the fsync its last append owes.
    durables: HashMap<(String, i32), AppendAck>,
    /// Next sequence per partition, for this producer epoch.
    sequences: HashMap<(String, i32), i32>,
}

/// Retries `call` while its error is retriable, for [`RETRY_FOR`] at most.
pub(crate) async fn retrying<T, F, Fut>(mut call: F) -> Result<T, AccessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AccessError>>,
{
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(5);
    loop {
        match call().await {
            Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "retrying transaction call");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

impl EpochTxn {
    /// Initializes the pipeline's transactional id: a previous run's producer is fenced and
    /// its open transaction aborted (retried while the coordinator completes the abort).
    pub async fn init(
        access: PartitionAccess,
        transactional_id: String,
        timeout_ms: i32,
    ) -> Result<EpochTxn, StreamError> {
        let (producer_id, producer_epoch) =
            retrying(|| access.init_transactional(&transactional_id, timeout_ms))
                .await
                .map_err(|source| StreamError::Txn {
                    transactional_id: transactional_id.clone(),
                    source,
                })?;
        tracing::info!(%transactional_id, producer_id, producer_epoch, "pipeline producer initialized");
        Ok(EpochTxn {
            access,
            transactional_id,
            producer_id,
            producer_epoch,
            added: HashSet::new(),
            durables: HashMap::new(),
            sequences: HashMap::new(),
        })
    }

    fn txn_error(&self, source: AccessError) -> StreamError {
        StreamError::Txn {
            transactional_id: self.transactional_id.clone(),
            source,
        }
    }

    /// Whether the epoch has written anything (a transaction is open).
    pub fn is_open(&self) -> bool {
        !self.added.is_empty()
    }

    /// Appends `records` to `topic`'s `partition` inside the epoch's transaction.
    pub async fn append(
        &mut self,
        topic: &str,
        partition: &PartitionHandle,
        records: &[SinkRecord],
    ) -> Result<(), StreamError> {
        if records.is_empty() {
            return Ok(());
        }
        let key = (topic.to_string(), partition.index());
        if !self.added.contains(&key) {
            let tp = vec![TopicPartition::new(topic.to_string(), partition.index())];
            let (access, id) = (&self.access, &self.transactional_id);
            let (pid, epoch) = (self.producer_id, self.producer_epoch);
            retrying(|| access.add_partitions(id, pid, epoch, tp.clone()))
                .await
                .map_err(|e| self.txn_error(e))?;
            self.added.insert(key.clone());
        }
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < records.len() && (end == start || bytes < BATCH_BYTES) {
                bytes += records.get(end).map_or(0, SinkRecord::size);
                end += 1;
            }
            let chunk = records.get(start..end).unwrap_or_default();
            self.append_batch(&key, partition, chunk).await?;
            start = end;
        }
        Ok(())
    }

    async fn append_batch(
        &mut self,
        key: &(String, i32),
        partition: &PartitionHandle,
        chunk: &[SinkRecord],
    ) -> Result<(), StreamError> {
        let sequence = self.sequences.get(key).copied().unwrap_or(0);
        let records: Vec<Record> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let i = i32::try_from(i).unwrap_or(i32::MAX);
                Record {
                    transactional: true,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: self.producer_id,
                    producer_epoch: self.producer_epoch,
                    timestamp_type: TimestampType::Creation,
                    offset: i64::from(i),
                    sequence: sequence.wrapping_add(i),
                    timestamp: r.timestamp,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone().into(), v.clone()))
                        .collect(),
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options)
            .map_err(|e| StreamError::Encode(format!("{e:#}")))?;
        let appended =
            partition
                .append(&mut buf)
                .await
                .map_err(|source| StreamError::Partition {
                    topic: key.0.clone(),
                    partition: key.1,
                    source,
                })?;
        let count = i32::try_from(chunk.len()).unwrap_or(i32::MAX);
        self.sequences
            .insert(key.clone(), sequence.wrapping_add(count));
        // A later append's wait covers the earlier ones of the epoch (fsync and HW both
        // advance in offset order).
        if !appended.ack.is_empty() {
            self.durables.insert(key.clone(), appended.ack);
        }
        Ok(())
    }

    /// Commits the epoch: every written partition fsynced, then the transaction ended.
    pub async fn commit(&mut self) -> Result<(), StreamError> {
        if !self.is_open() {
            return Ok(());
        }
        // `wait` starts each fsync at once, so the partitions sync in parallel.
        let waits: Vec<_> = self
            .durables
            .drain()
            .map(|((topic, partition), w)| (topic, partition, w.wait(REPLICATION_TIMEOUT)))
            .collect();
        for (topic, partition, wait) in waits {
            wait.await.map_err(|source| StreamError::Durability {
                topic,
                partition,
                source,
            })?;
        }
        self.end(true).await
    }

    /// Aborts the epoch's transaction, if one is open.
    pub async fn abort(&mut self) -> Result<(), StreamError> {
        self.durables.clear();
        if !self.is_open() {
            return Ok(());
        }
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> Result<(), StreamError> {
        let (access, id) = (&self.access, &self.transactional_id);
        let (pid, epoch) = (self.producer_id, self.producer_epoch);
        retrying(|| access.end_txn(id, pid, epoch, commit))
            .await
            .map_err(|e| self.txn_error(e))?;
        self.added.clear();
        Ok(())
    }
}
