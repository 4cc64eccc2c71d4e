//! Why a transaction request was refused.

use crate::ErrorCode;

use super::TxnState;

/// A refused request, with what caused it. [`TxnError::code`] is the Kafka error code to
/// answer with.
///
/// Whose fault: [`TxnError::LoadInProgress`] and [`TxnError::Concurrent`] are transient
/// (the client retries); [`TxnError::MalformedRecord`] is the environment's (a damaged
/// transaction log, never sent to a client); every other variant is the client's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("transaction state is still being loaded")]
    LoadInProgress,
    #[error("the transactional id must not be empty")]
    EmptyTransactionalId,
    #[error("producer id {producer_id} and epoch {producer_epoch} must both be -1 or both be set")]
    InconsistentProducerIdAndEpoch {
        producer_id: i64,
        producer_epoch: i16,
    },
    #[error("transaction timeout {timeout_ms} ms is outside 1..={max_ms} ms")]
    InvalidTimeout { timeout_ms: i32, max_ms: i32 },
    #[error("transactional id {transactional_id:?} is not mapped to producer id {producer_id}")]
    ProducerIdMapping {
        transactional_id: String,
        producer_id: i64,
    },
    #[error(
        "producer {producer_id} epoch {producer_epoch} of {transactional_id:?} is fenced \
         (current: producer {current_producer_id} epoch {current_epoch})"
    )]
    Fenced {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        current_producer_id: i64,
        current_epoch: i16,
    },
    #[error("transactional id {transactional_id:?} is completing a transaction ({state}); retry")]
    Concurrent {
        transactional_id: String,
        state: TxnState,
    },
    #[error("{operation} is not allowed for {transactional_id:?} in state {state}")]
    InvalidState {
        transactional_id: String,
        state: TxnState,
        operation: &'static str,
    },
    #[error("unknown transactional id {transactional_id:?}")]
    NotFound { transactional_id: String },
    #[error("malformed transaction log record (line {line}): {reason}")]
    MalformedRecord { line: usize, reason: String },
}

impl TxnError {
    /// The Kafka error code to answer with. Clients of older request versions expect
    /// INVALID_PRODUCER_EPOCH where this says PRODUCER_FENCED (KIP-588); mapping that is
    /// the broker's job, because it knows the version.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::LoadInProgress => ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            Self::EmptyTransactionalId | Self::InconsistentProducerIdAndEpoch { .. } => {
                ErrorCode::INVALID_REQUEST
            }
            Self::InvalidTimeout { .. } => ErrorCode::INVALID_TRANSACTION_TIMEOUT,
            Self::ProducerIdMapping { .. } => ErrorCode::INVALID_PRODUCER_ID_MAPPING,
            Self::Fenced { .. } => ErrorCode::PRODUCER_FENCED,
            Self::Concurrent { .. } => ErrorCode::CONCURRENT_TRANSACTIONS,
            Self::InvalidState { .. } => ErrorCode::INVALID_TXN_STATE,
            Self::NotFound { .. } => ErrorCode::TRANSACTIONAL_ID_NOT_FOUND,
            Self::MalformedRecord { .. } => ErrorCode::UNKNOWN_SERVER_ERROR,
        }
    }
}
