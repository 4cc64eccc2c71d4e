//! The log a group coordinator shard keeps its state in (design §7.1): on a single node the
//! node-local `meta/group-offsets` log, exactly as before shards existed; in cluster mode the
//! shard's `__consumer_offsets` partition, written as its leader, an answer waiting until the
//! high watermark passes what it depends on.
//!
//! An enum rather than a trait: two kinds, and the single-node path stays the direct calls
//! on `Log` it always made.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_storage::Log;

use crate::config::Durability;
use crate::groups::GroupsError;
use crate::partition::{Acks, Partition, PartitionError};

/// How long a shard's answer waits for its records to be committed before it answers
/// COORDINATOR_NOT_AVAILABLE (the ISR is below `min.insync.replicas`, or followers lag);
/// Kafka's `offsets.commit.timeout.ms` default.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

// One per coordinator, built once and never moved: boxing the log would only add a pointer
// chase to the single node's every append.
#[allow(clippy::large_enum_variant)]
pub enum CoordinatorLog {
    /// `<data-dir>/meta/NAME`: committed once fsynced.
    Local(Log),
    /// A partition of an internal topic led here under `leader_epoch`: committed once
    /// fsynced and replicated to the ISR.
    Shard {
        partition: Arc<Partition>,
        leader_epoch: i32,
    },
}

impl CoordinatorLog {
    /// The records a load replays: the whole log, to its end.
    pub fn log(&self) -> &Log {
        match self {
            CoordinatorLog::Local(log) => log,
            CoordinatorLog::Shard { partition, .. } => partition.local_log(),
        }
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log().log_end_offset()
    }

    /// Whether a shard is replicated: its records are compacted by key, so a record must
    /// carry everything its key stands for.
    pub fn is_shard(&self) -> bool {
        matches!(self, CoordinatorLog::Shard { .. })
    }

    pub fn is_poisoned(&self) -> bool {
        self.log().is_poisoned()
    }

    /// Appends key/value records (a `None` value is a tombstone) as one batch; returns the
    /// offset that must be committed before an answer depending on them.
    pub fn append(
        &self,
        entries: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    ) -> Result<i64, GroupsError> {
        match self {
            CoordinatorLog::Local(log) => {
                Ok(crate::internal_log::append(log, entries)?.last_offset + 1)
            }
            CoordinatorLog::Shard {
                partition,
                leader_epoch,
            } => {
                if partition.leader_epoch() != *leader_epoch {
                    return Err(GroupsError::NotCoordinator);
                }
                let now = crate::server::now_ms();
                let mut batch = crate::internal_log::encode(
                    entries,
                    now,
                    weir_protocol::kafka_protocol::records::Compression::None,
                )
                .map_err(|message| GroupsError::Corrupt {
                    offset: -1,
                    message,
                })?;
                // Acks::All: refused at once (nothing appended) while the ISR is below
                // min.insync.replicas; the wait for the high watermark is `wait_committed`.
                let appended = partition.append(&mut batch, Acks::All, Durability::AcksAll, now)?;
                Ok(appended.info.last_offset + 1)
            }
        }
    }

    /// Waits until every offset below `end` is committed.
    pub async fn wait_committed(&self, end: i64) -> Result<(), GroupsError> {
        match self {
            CoordinatorLog::Local(log) => {
                if end <= log.durable_offset() {
                    return Ok(());
                }
                tokio::task::block_in_place(|| log.flush_to(end))?;
                Ok(())
            }
            CoordinatorLog::Shard {
                partition,
                leader_epoch,
            } => partition
                .wait_committed(*leader_epoch, end, COMMIT_TIMEOUT)
                .await
                .map_err(GroupsError::from),
        }
    }
}

impl From<PartitionError> for GroupsError {
    fn from(e: PartitionError) -> Self {
        match e {
            PartitionError::WrongRole { .. }
            | PartitionError::FencedLeaderEpoch { .. }
            | PartitionError::Deleted => GroupsError::NotCoordinator,
            PartitionError::Storage(e) => GroupsError::Storage(e),
            e => GroupsError::Uncommitted(Box::new(e)),
        }
    }
}
