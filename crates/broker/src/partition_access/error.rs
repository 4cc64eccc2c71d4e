//! Why a partition access call failed: locally (the partition's or the coordinator's own
//! error, kept as the source), in routing (no leader or coordinator known), on the link, or
//! as the remote broker's answer ([`Failure`], which says whether to re-route and retry).

use weir_coordinator::{ErrorCode, TopicPartition};
use weir_metadata::BrokerId;

use super::codec::CodecError;
use crate::cluster::BoxError;
use crate::partition::{PartitionError, Role};
use crate::txn_api::TxnApiError;

/// What kind of refusal a remote broker answered (one byte on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The partition is not led there (any more): re-route from the image.
    NotLeader = 0,
    /// No such topic or partition there.
    UnknownPartition = 1,
    /// The same call may succeed later (CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, loading).
    Retriable = 2,
    /// The producer was fenced by a newer one with the same transactional id.
    Fenced = 3,
    /// Refused for good (a bad batch, an invalid transaction state, a storage failure).
    Refused = 4,
}

impl FailureKind {
    pub(crate) fn from_u8(b: u8) -> Option<FailureKind> {
        Some(match b {
            0 => FailureKind::NotLeader,
            1 => FailureKind::UnknownPartition,
            2 => FailureKind::Retriable,
            3 => FailureKind::Fenced,
            4 => FailureKind::Refused,
            _ => return None,
        })
    }
}

/// A remote broker's refusal: its kind, the Kafka error code where one applies (0 if none)
/// and the remote error's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({kind:?}, code {code})")]
pub struct Failure {
    pub kind: FailureKind,
    pub code: i16,
    pub message: String,
}

impl Failure {
    /// The answer for a local partition error.
    pub(crate) fn of_partition(e: &PartitionError) -> Failure {
        let kind = match e {
            PartitionError::WrongRole { .. }
            | PartitionError::ShuttingDown
            | PartitionError::UnknownLeaderEpoch { .. }
            | PartitionError::FencedLeaderEpoch { .. } => FailureKind::NotLeader,
            PartitionError::Deleted => FailureKind::UnknownPartition,
            PartitionError::NotEnoughReplicas { .. } => FailureKind::Retriable,
            _ => FailureKind::Refused,
        };
        Failure {
            kind,
            code: 0,
            message: e.to_string(),
        }
    }

    /// The answer for a local transaction call's error.
    pub(crate) fn of_txn(e: &TxnApiError) -> Failure {
        let kind = if e.is_fenced() {
            FailureKind::Fenced
        } else if e.is_retriable() {
            FailureKind::Retriable
        } else if matches!(e, TxnApiError::UnknownPartition(_)) {
            FailureKind::UnknownPartition
        } else {
            FailureKind::Refused
        };
        Failure {
            kind,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Why a partition or transaction call was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The local partition's error (led here).
    #[error("{source}")]
    Partition {
        tp: TopicPartition,
        #[source]
        source: PartitionError,
    },
    /// The local transaction coordinator's error (the id is coordinated here).
    #[error(transparent)]
    Txn(#[from] TxnApiError),
    #[error("unknown topic or partition {}-{}", .0.topic, .0.partition)]
    UnknownPartition(TopicPartition),
    /// The image names no leader for the partition (an election under way).
    #[error("no leader is known for {}-{}", .0.topic, .0.partition)]
    NoLeader(TopicPartition),
    /// The image names no coordinator for the transactional id.
    #[error("no transaction coordinator is known for {0:?}")]
    NoCoordinator(String),
    /// Cluster mode without the internal link installed (a bug of the binary's wiring).
    #[error("the partition is led by broker {0}, and no internal link is installed")]
    NoLink(BrokerId),
    /// The call to another broker failed on the way (connection, timeout).
    #[error("broker {broker} did not answer: {source}")]
    Link {
        broker: BrokerId,
        #[source]
        source: BoxError,
    },
    /// The other broker's answer did not decode (or was of the wrong kind).
    #[error("broker {broker} answered undecodably: {source}")]
    Codec {
        broker: BrokerId,
        #[source]
        source: CodecError,
    },
    /// A read or flush run on the blocking pool did not complete (a panic, a runtime
    /// shutting down).
    #[error("a blocking task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The other broker refused the call.
    #[error("broker {broker}: {failure}")]
    Remote {
        broker: BrokerId,
        #[source]
        failure: Failure,
    },
}

impl AccessError {
    /// Whether the same call may succeed if made again (after a re-route).
    pub fn is_retriable(&self) -> bool {
        match self {
            AccessError::Partition { source, .. } => matches!(
                Failure::of_partition(source).kind,
                FailureKind::NotLeader | FailureKind::Retriable
            ),
            AccessError::Txn(e) => e.is_retriable(),
            AccessError::NoLeader(_) | AccessError::NoCoordinator(_) => true,
            AccessError::Link { .. } => true,
            AccessError::Remote { failure, .. } => matches!(
                failure.kind,
                FailureKind::NotLeader | FailureKind::Retriable
            ),
            AccessError::UnknownPartition(_)
            | AccessError::NoLink(_)
            | AccessError::Codec { .. }
            | AccessError::Task(_) => false,
        }
    }

    /// Whether the call should be re-routed: the partition or coordinator moved, or none is
    /// known yet. Nothing was written when this holds.
    pub fn is_misrouted(&self) -> bool {
        match self {
            AccessError::Partition {
                source: PartitionError::WrongRole { role },
                ..
            } => *role != Role::Leader,
            AccessError::Txn(TxnApiError::NotHere(_)) => true,
            AccessError::NoLeader(_) | AccessError::NoCoordinator(_) => true,
            AccessError::Remote { failure, .. } => {
                failure.kind == FailureKind::NotLeader
                    || (failure.kind == FailureKind::Retriable
                        && matches!(
                            ErrorCode(failure.code),
                            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                        ))
            }
            _ => false,
        }
    }

    /// The producer was fenced by a newer one with the same transactional id.
    pub fn is_fenced(&self) -> bool {
        match self {
            AccessError::Txn(e) => e.is_fenced(),
            AccessError::Remote { failure, .. } => failure.kind == FailureKind::Fenced,
            _ => false,
        }
    }
}
