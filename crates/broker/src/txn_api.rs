//! Transactions for in-process producers: the calls a transactional producer makes
//! (InitProducerId, AddPartitionsToTxn, EndTxn) as typed functions over the broker's
//! coordinator. The Kafka handlers (`handlers/txn.rs`) and the stream engine both go through
//! here, so an engine's transaction is decided, logged, fenced and recovered exactly like a
//! client's.

use std::sync::Arc;
use std::time::Duration;

use weir_coordinator::txn::{InitRequest, TxnError};
use weir_coordinator::{ErrorCode, TopicPartition};

use weir_protocol::ResponseError;

use crate::meta::MetaError;
use crate::state::State;
use crate::txns::TxnsError;

/// How long [`end_txn`] waits for the markers of a decided transaction (as the EndTxn handler
/// does: the decision is durable either way; a later call sees the transaction complete).
const MARKERS_WAIT: Duration = Duration::from_secs(5);

/// Why a transaction call was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum TxnApiError {
    /// The transactional id is completing its previous transaction (markers being written,
    /// or the previous producer's open transaction being aborted by a re-init): retry
    /// shortly. Kafka's CONCURRENT_TRANSACTIONS.
    #[error("{0}")]
    Concurrent(#[source] TxnError),
    /// The coordinator refused the call (fenced, invalid state, bad timeout...).
    #[error("{0}")]
    Refused(#[source] TxnError),
    /// The transaction log could not be written; retriable once the coordinator is rebuilt.
    #[error("transaction coordinator: {0}")]
    Coordinator(#[source] TxnsError),
    /// No producer id could be reserved in the cluster metadata.
    #[error("no producer id could be allocated: {0}")]
    ProducerId(#[source] crate::meta::MetaError),
    /// The partition is not hosted here (it was never created or was deleted).
    #[error("unknown topic or partition {}-{}", .0.topic, .0.partition)]
    UnknownPartition(TopicPartition),
    /// The transactional id's coordinator shard is not served here (NOT_COORDINATOR), or
    /// is loading (COORDINATOR_LOAD_IN_PROGRESS): the client asks FindCoordinator again.
    #[error("the transactional id is not coordinated here ({0:?})")]
    NotHere(ErrorCode),
}

impl TxnApiError {
    fn from_txn(e: TxnError) -> TxnApiError {
        match e {
            TxnError::Concurrent { .. } => TxnApiError::Concurrent(e),
            e => TxnApiError::Refused(e),
        }
    }

    /// Whether the same call may succeed if made again (Kafka's retriable errors).
    pub fn is_retriable(&self) -> bool {
        match self {
            TxnApiError::Concurrent(_) | TxnApiError::Coordinator(_) => true,
            TxnApiError::NotHere(_) => true,
            TxnApiError::Refused(e) => e.code() == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            TxnApiError::ProducerId(e) => matches!(e, MetaError::NoProducerIds(_)),
            TxnApiError::UnknownPartition(_) => false,
        }
    }

    /// The producer was fenced by a newer one with the same transactional id.
    pub fn is_fenced(&self) -> bool {
        matches!(self, TxnApiError::Refused(e) if e.code() == ErrorCode::PRODUCER_FENCED)
    }

    /// The Kafka error code a client is answered with (before KIP-588's per-version mapping
    /// of PRODUCER_FENCED, which the handlers do).
    pub fn code(&self) -> i16 {
        match self {
            TxnApiError::Concurrent(e) | TxnApiError::Refused(e) => e.code().0,
            TxnApiError::Coordinator(e) => e.code().0,
            TxnApiError::NotHere(code) => code.0,
            TxnApiError::ProducerId(MetaError::NoProducerIds(_)) => {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0
            }
            TxnApiError::ProducerId(_) => ResponseError::KafkaStorageError.code(),
            TxnApiError::UnknownPartition(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
        }
    }
}

impl From<TxnsError> for TxnApiError {
    fn from(e: TxnsError) -> TxnApiError {
        if !matches!(e, TxnsError::NotCoordinator) {
            tracing::error!(error = %e, "transaction log write failed");
        }
        TxnApiError::Coordinator(e)
    }
}

/// InitProducerId for a transactional id: a producer id and a new epoch. A previous producer
/// with this id is fenced and its open transaction aborted; while that abort completes the
/// answer is [`TxnApiError::Concurrent`].
pub async fn init_transactional(
    state: &Arc<State>,
    transactional_id: &str,
    timeout_ms: i32,
) -> Result<(i64, i16), TxnApiError> {
    reinit_transactional(state, transactional_id, timeout_ms, -1, -1).await
}

/// [`init_transactional`] by a producer that already holds `producer_id` and `producer_epoch`
/// (KIP-360's re-initialization after an error); -1 and -1 for a new producer.
pub async fn reinit_transactional(
    state: &Arc<State>,
    transactional_id: &str,
    timeout_ms: i32,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(i64, i16), TxnApiError> {
    let request = InitRequest {
        transactional_id: Some(transactional_id.to_string()),
        transaction_timeout_ms: timeout_ms,
        producer_id,
        producer_epoch,
    };
    let txns = coordinator(state, transactional_id)?;
    state
        .ensure_producer_ids()
        .await
        .map_err(TxnApiError::ProducerId)?;
    let mut alloc_failure = None;
    let result = txns
        .call(state, |c, now| {
            let mut alloc = || match state.allocate_producer_id() {
                Ok(id) => id,
                Err(e) => {
                    alloc_failure = Some(e);
                    -1
                }
            };
            c.init_producer_id(now, request, &mut alloc)
        })
        .await?;
    let init = result.map_err(TxnApiError::from_txn)?;
    match alloc_failure {
        Some(e) if init.producer_id < 0 => Err(TxnApiError::ProducerId(e)),
        _ => Ok((init.producer_id, init.producer_epoch)),
    }
}

/// AddPartitionsToTxn: `partitions` join the producer's transaction (starting one if none is
/// open). Must precede the first transactional append to each partition. Every partition
/// must exist (in cluster mode, led by any broker), else nothing is added.
pub async fn add_partitions(
    state: &Arc<State>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: Vec<TopicPartition>,
) -> Result<(), TxnApiError> {
    if let Some(unknown) = partitions
        .iter()
        .find(|tp| !state.partition_exists(&tp.topic, tp.partition))
    {
        return Err(TxnApiError::UnknownPartition(unknown.clone()));
    }
    coordinator(state, transactional_id)?
        .call(state, |c, now| {
            c.add_partitions(
                now,
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
            )
        })
        .await?
        .map_err(TxnApiError::from_txn)
}

/// EndTxn: commits or aborts the producer's open transaction. The decision is durable when
/// this returns; it also waits (a few seconds at most) until every partition has its marker,
/// so a read_committed reader that starts afterwards sees the outcome.
pub async fn end_txn(
    state: &Arc<State>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<(), TxnApiError> {
    let txns = coordinator(state, transactional_id)?;
    txns.call(state, |c, now| {
        c.end_txn(now, transactional_id, producer_id, producer_epoch, commit)
    })
    .await?
    .map_err(TxnApiError::from_txn)?;
    txns.wait_completed(transactional_id, MARKERS_WAIT).await;
    Ok(())
}

/// The coordinator shard of `transactional_id`, if it is served here.
pub fn coordinator(
    state: &State,
    transactional_id: &str,
) -> Result<Arc<crate::txns::Txns>, TxnApiError> {
    state
        .txns
        .shard(transactional_id)
        .map_err(TxnApiError::NotHere)
}
