//! Why the controller refuses a request, in Kafka's error vocabulary, and why the image
//! refuses a record.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::BrokerId;

/// A refused controller request (or one of its items). [`MetadataError::code`] is the
/// Kafka error code the broker puts into the response; the message goes into the
/// response's error message where the API has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    #[error("unknown topic id {0}")]
    UnknownTopicId(Uuid),
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("broker {0} is not the leader")]
    NotLeaderOrFollower(BrokerId),
    #[error("leader epoch {request} is older than the current {current}")]
    FencedLeaderEpoch { request: i32, current: i32 },
    #[error("broker {id}: epoch {request} is not the registered {current}")]
    StaleBrokerEpoch {
        id: BrokerId,
        request: i64,
        current: i64,
    },
    #[error("broker {0} is not registered")]
    BrokerIdNotRegistered(BrokerId),
    #[error("broker {0} is already registered by a live process")]
    DuplicateBrokerRegistration(BrokerId),
    #[error("partition epoch {request} is not the current {current}")]
    InvalidUpdateVersion { request: i32, current: i32 },
    #[error("replica {0} may not join the ISR (fenced, shutting down or stale epoch)")]
    IneligibleReplica(BrokerId),
    #[error("the preferred leader is not available")]
    PreferredLeaderNotAvailable,
    #[error("no eligible leader is available")]
    EligibleLeadersNotAvailable,
    #[error("the partition already has the requested leader")]
    ElectionNotNeeded,
    #[error("no reassignment of {0} is in progress")]
    NoReassignmentInProgress(String),
    /// The controller produced a record its own image refused: a bug, answered with
    /// UNKNOWN_SERVER_ERROR and no records.
    #[error("internal: {0}")]
    Internal(#[from] ImageError),
}

impl MetadataError {
    /// Kafka's error code for this error.
    pub fn code(&self) -> i16 {
        match self {
            Self::UnknownTopicOrPartition(_) => 3,
            Self::NotLeaderOrFollower(_) => 6,
            Self::InvalidTopic(_) => 17,
            Self::TopicAlreadyExists(_) => 36,
            Self::InvalidPartitions(_) => 37,
            Self::InvalidReplicationFactor(_) => 38,
            Self::InvalidReplicaAssignment(_) => 39,
            Self::InvalidConfig(_) => 40,
            Self::InvalidRequest(_) => 42,
            Self::FencedLeaderEpoch { .. } => 74,
            Self::StaleBrokerEpoch { .. } => 77,
            Self::PreferredLeaderNotAvailable => 80,
            Self::EligibleLeadersNotAvailable => 83,
            Self::ElectionNotNeeded => 84,
            Self::NoReassignmentInProgress(_) => 85,
            Self::InvalidUpdateVersion { .. } => 95,
            Self::UnknownTopicId(_) => 100,
            Self::DuplicateBrokerRegistration(_) => 101,
            Self::BrokerIdNotRegistered(_) => 102,
            Self::IneligibleReplica(_) => 107,
            Self::Internal(_) => -1,
        }
    }
}

/// A record the image cannot apply: the log and the image disagree, which is a bug in
/// whoever wrote the record, never a client's mistake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ImageError {
    #[error("record names unknown topic id {0}")]
    UnknownTopic(Uuid),
    #[error("topic name {name} is already used by topic id {existing}")]
    DuplicateTopicName { name: String, existing: Uuid },
    #[error("record names unknown partition {partition} of topic id {topic_id}")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error("record names unknown broker {0}")]
    UnknownBroker(BrokerId),
    #[error("record carries broker {id} epoch {record}, the registration has {current}")]
    BrokerEpochMismatch {
        id: BrokerId,
        record: i64,
        current: i64,
    },
    #[error("producer ids would go backwards: {next} after {current}")]
    ProducerIdsBackwards { next: i64, current: i64 },
}
