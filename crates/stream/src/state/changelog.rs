//! The state topic's records (§7.2): key `(operator id: u16 big-endian, entry key)`, value
//! the entry's encoding or a tombstone for state freed since the last checkpoint. Written in
//! the epoch's transaction; read back read_committed up to the last stable offset and
//! collapsed to the last value per key, so what is restored is exactly the last committed
//! epoch's state.

use std::collections::HashMap;

use bytes::Bytes;
use weir_broker::partition::{Isolation, ReadSpec};
use weir_broker::partition_access::PartitionHandle;

use crate::error::StreamError;
use crate::format::SinkRecord;
use crate::source::reader::committed_records;

use super::keyed::Change;

/// The operator id of the sources' offsets and watermarks.
pub const SOURCES: u16 = 0;

/// The operator id of graph node `node` (node ids shift by one: 0 is the sources').
pub fn operator_id(node: usize) -> Result<u16, StreamError> {
    u16::try_from(node + 1)
        .map_err(|_| StreamError::Graph(format!("node {node}: too many operators")))
}

/// The state topic record of one change of operator `op`.
pub fn record(op: u16, change: Change, timestamp: i64) -> SinkRecord {
    let (key, value) = change;
    let mut k = Vec::with_capacity(2 + key.len());
    k.extend_from_slice(&op.to_be_bytes());
    k.extend_from_slice(&key);
    SinkRecord::new(Some(Bytes::from(k)), value.map(Bytes::from), timestamp)
}

/// Every operator's committed entries, by operator id: (entry key, value), tombstoned keys
/// left out.
pub type Entries = HashMap<u16, Vec<(Vec<u8>, Vec<u8>)>>;

/// Reads the committed state of `topic` (its one partition), last value per key.
pub async fn read(topic: &str, partition: &PartitionHandle) -> Result<Entries, StreamError> {
    let mut latest: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let failed = |source| StreamError::Partition {
        topic: topic.to_string(),
        partition: 0,
        source,
    };
    let marks = partition.watermarks().await.map_err(failed)?;
    let mut offset = marks.log_start_offset;
    let end = marks.last_stable_offset;
    while offset < end {
        let read = partition
            .read(&ReadSpec {
                offset,
                max_bytes: 1 << 20,
                min_one_batch: true,
                isolation: Isolation::ReadCommitted,
                leader_epoch: None,
            })
            .await
            .map_err(failed)?
            .result;
        if read.records.is_empty() {
            break;
        }
        offset = committed_records(topic, 0, &read, offset, |r| {
            if let Some(k) = r.key {
                latest.insert(k.to_vec(), r.value.map(<[u8]>::to_vec));
            }
        })?;
    }
    let mut out: Entries = HashMap::new();
    for (k, v) in latest {
        let Some(v) = v else { continue };
        let Some((op, key)) = k.split_at_checked(2) else {
            return Err(StreamError::State {
                topic: topic.to_string(),
                reason: "a state key shorter than its operator id".into(),
            });
        };
        let op = u16::from_be_bytes([op[0], op[1]]);
        out.entry(op).or_default().push((key.to_vec(), v));
    }
    Ok(out)
}
