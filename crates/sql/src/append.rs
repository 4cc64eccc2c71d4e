//! Appending plain (non-transactional) records to a partition, acks=all: the catalog's writes
//! and `INSERT`. Returns once the records are on disk (on the leader, wherever it is).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_broker::partition_access::{AccessError, AppendAck, PartitionHandle};

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
        source: AccessError,
    },
    /// The fsync or the replication the append owed failed.
    #[error("partition {partition}: {source}")]
    Durability {
        partition: i32,
        #[source]
        source: weir_broker::partition::PartitionError,
    },
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
    partition: &PartitionHandle,
    records: &[NewRecord],
) -> Result<i64, AppendError> {
    let index = partition.index();
    let failed = |source| AppendError::Partition {
        partition: index,
        source,
    };
    if records.is_empty() {
        return Ok(partition.watermarks().await.map_err(failed)?.high_watermark);
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
    let appended = partition.append(&mut buf).await.map_err(failed)?;
    let end = appended.last_offset + 1;
    let durability = |source| AppendError::Durability {
        partition: index,
        source,
    };
    match appended.ack {
        // Led here: acks=all under the broker's policy owes the fsync, then (on a
        // replicated leader) the high watermark passing the records; without an owed fsync
        // the records are flushed here.
        AppendAck::Local(mut wait) => {
            match wait.fsync.take() {
                Some(durable) => durable.wait().await.map_err(durability)?,
                None => partition.flush_to(end).await.map_err(failed)?,
            }
            wait.wait(REPLICATION_TIMEOUT).await.map_err(durability)?;
        }
        // Led elsewhere: its leader answered acks=all (fsynced under its policy).
        AppendAck::Done => {}
    }
    Ok(end)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
