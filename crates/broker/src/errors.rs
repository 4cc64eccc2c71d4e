//! The one place where Weir's errors become Kafka error codes.

use weir_protocol::ResponseError;
use weir_replication::LeaderError;
use weir_storage::StorageError;

use crate::partition::PartitionError;
use crate::state::AdminError;
use crate::topic_config::TopicConfigError;

/// The Kafka error for a storage failure on a partition.
pub fn storage_code(e: &StorageError) -> ResponseError {
    match e {
        StorageError::CorruptBatch { .. } => ResponseError::CorruptMessage,
        StorageError::InvalidBatch { .. } => ResponseError::InvalidRecord,
        StorageError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        // Retriable: the client re-sends the batch before the gap first (and refreshes its
        // metadata, which names this broker).
        StorageError::SequenceGapAfterLeaderChange { .. } => ResponseError::NotLeaderOrFollower,
        StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::StaleLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        StorageError::TransactionCoordinatorFenced { .. } => {
            ResponseError::TransactionCoordinatorFenced
        }
        StorageError::Poisoned { .. } | StorageError::Io { .. } | StorageError::Closed => {
            ResponseError::KafkaStorageError
        }
    }
}

/// The Kafka error for a failed partition operation.
pub fn partition_code(e: &PartitionError) -> ResponseError {
    match e {
        PartitionError::Storage(s) => storage_code(s),
        PartitionError::Deleted => ResponseError::UnknownTopicOrPartition,
        PartitionError::ShuttingDown | PartitionError::WrongRole { .. } => {
            ResponseError::NotLeaderOrFollower
        }
        PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        PartitionError::FlushTask(_) => ResponseError::KafkaStorageError,
        PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        PartitionError::NotEnoughReplicasAfterAppend { .. } => {
            ResponseError::NotEnoughReplicasAfterAppend
        }
        PartitionError::ReplicationTimeout { .. } => ResponseError::RequestTimedOut,
        // A follower asking past the leader's end: Kafka answers a fetch offset beyond the
        // log with OFFSET_OUT_OF_RANGE (the follower then resets).
        PartitionError::Replication(LeaderError::FetchOffsetPastLogEnd { .. }) => {
            ResponseError::OffsetOutOfRange
        }
        PartitionError::Replication(_) => ResponseError::NotLeaderOrFollower,
        PartitionError::TxnNotVerified { .. } => ResponseError::InvalidTxnState,
    }
}

/// The Kafka error for a failed admin change.
pub fn admin_code(e: &AdminError) -> ResponseError {
    match e {
        AdminError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        AdminError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        AdminError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        AdminError::InvalidPartitions(_) | AdminError::CannotShrink { .. } => {
            ResponseError::InvalidPartitions
        }
        AdminError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        AdminError::TooManyPartitions { .. } => ResponseError::PolicyViolation,
        AdminError::Task(_) => ResponseError::KafkaStorageError,
        AdminError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        AdminError::Config(TopicConfigError::Unknown(_) | TopicConfigError::Invalid { .. }) => {
            ResponseError::InvalidConfig
        }
        AdminError::Storage(s) => storage_code(s),
        AdminError::Partition(p) => partition_code(p),
        AdminError::Meta(_)
        | AdminError::Groups(_)
        | AdminError::HwCheckpoint(_)
        | AdminError::Credentials(_)
        | AdminError::Acls(_) => ResponseError::KafkaStorageError,
        AdminError::Controller(e) => {
            ResponseError::try_from_code(e.code()).unwrap_or(ResponseError::UnknownServerError)
        }
        AdminError::QuorumUnavailable(_) => ResponseError::RequestTimedOut,
    }
}
