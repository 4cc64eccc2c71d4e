//! Appending plain (non-transactional) records to a partition, acks=all: the catalog's writes
//! and `INSERT`. Returns once the records are on disk.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_broker::partition::{Acks, Partition};
use weir_broker::state::State;

/// How long an INSERT waits for replication (Kafka producers' `request.timeout.ms` default).
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("encoding a record batch: {0}")]
    Encode(String),
    #[error("partition {partition}: {source}")]
    Partition {
        partition: i32,
        #[source]
        source: weir_broker::partition::PartitionError,
    },
    #[error("flushing partition {partition} panicked")]
    Task { partition: i32 },
}

/// A record to append: key, value and headers.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Appends `records` as one batch to `partition` and waits until they are durable, whatever
/// the broker's durability policy: the callers answer "done" to a SQL client after this.
pub async fn append_durably(
    state: &State,
    partition: &Arc<Partition>,
    records: &[NewRecord],
) -> Result<i64, AppendError> {
    if records.is_empty() {
        return Ok(partition.high_watermark());
    }
    let now = now_ms();
    let encoded: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone().into(), v.clone().map(Bytes::from)))
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &encoded,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| AppendError::Encode(e.to_string()))?;
    let index = partition.index();
    let appended = partition
        .append(&mut buf, Acks::All, state.config.durability, now)
        .map_err(|source| AppendError::Partition {
            partition: index,
            source,
        })?;
    let end = appended.info.last_offset + 1;
    let mut wait = appended.wait;
    match wait.fsync.take() {
        // Acks::All under the broker's policy: the fsync it owes, then (on a replicated
        // leader) the high watermark passing the records.
        Some(durable) => durable.wait().await,
        None => {
            let p = partition.clone();
            tokio::task::spawn_blocking(move || p.flush_to(end))
                .await
                .map_err(|_| AppendError::Task { partition: index })?
        }
    }
    .map_err(|source| AppendError::Partition {
        partition: index,
        source,
    })?;
    wait.wait(REPLICATION_TIMEOUT)
        .await
        .map_err(|source| AppendError::Partition {
            partition: index,
            source,
        })?;
    Ok(end)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
