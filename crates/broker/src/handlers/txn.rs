//! Transactions: InitProducerId with a transactional id, AddPartitionsToTxn, EndTxn.
//! The coordinator decides; `crate::txns` persists and writes the markers.

use std::sync::Arc;

use weir_coordinator::txn::InitRequest;
use weir_coordinator::TopicPartition;
use weir_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use weir_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use weir_protocol::ResponseError;

use crate::state::State;

/// KIP-588: clients before these versions know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
fn fenced_for(code: i16, version: i16, first_with_fenced: i16) -> i16 {
    const PRODUCER_FENCED: i16 = 90;
    if code == PRODUCER_FENCED && version < first_with_fenced {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

fn storage_failure() -> i16 {
    ResponseError::CoordinatorNotAvailable.code()
}

pub async fn init_transactional(
    state: &Arc<State>,
    req: &InitProducerIdRequest,
    transactional_id: String,
    version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    let request = InitRequest {
        transactional_id: Some(transactional_id),
        transaction_timeout_ms: req.transaction_timeout_ms,
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
    };
    let alloc_state = state.clone();
    let result = state
        .txns
        .call(state, move |c, now| {
            let mut alloc = || alloc_state.allocate_producer_id().unwrap_or(-1);
            c.init_producer_id(now, request, &mut alloc)
        })
        .await;
    match result {
        Ok(Ok(init)) if init.producer_id >= 0 => {
            r.producer_id = ProducerId(init.producer_id);
            r.producer_epoch = init.producer_epoch;
        }
        Ok(Ok(_)) => r.error_code = ResponseError::KafkaStorageError.code(),
        Ok(Err(e)) => r.error_code = fenced_for(e.code().0, version, 4),
        Err(e) => {
            tracing::error!(error = %e, "transaction log write failed");
            r.error_code = storage_failure();
        }
    }
    r
}

pub async fn add_partitions(
    state: &Arc<State>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut r = AddPartitionsToTxnResponse::default();
    let id = req.v3_and_below_transactional_id.0.to_string();
    let (pid, epoch) = (
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
    );
    let topics = req.v3_and_below_topics;
    // Partitions the broker does not host are answered here and never reach the coordinator.
    let known = |t: &str, p: i32| state.topic(t).and_then(|t| t.partition(p)).is_some();
    let wanted: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(t.name.0.to_string(), *p))
        })
        .collect();
    let all_known = wanted.iter().all(|tp| known(&tp.topic, tp.partition));
    let code = if !all_known {
        // Kafka: unknown partitions fail, the others get OPERATION_NOT_ATTEMPTED.
        None
    } else {
        let result = state
            .txns
            .call(state, |c, now| {
                c.add_partitions(now, &id, pid, epoch, wanted)
            })
            .await;
        Some(match result {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => fenced_for(e.code().0, version, 2),
            Err(e) => {
                tracing::error!(error = %e, "transaction log write failed");
                storage_failure()
            }
        })
    };
    r.results_by_topic_v3_and_below = topics
        .into_iter()
        .map(|t| {
            let mut out = AddPartitionsToTxnTopicResult::default();
            out.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = AddPartitionsToTxnPartitionResult::default();
                    pr.partition_index = *p;
                    pr.partition_error_code = match code {
                        Some(c) => c,
                        None if known(&t.name.0, *p) => ResponseError::OperationNotAttempted.code(),
                        None => ResponseError::UnknownTopicOrPartition.code(),
                    };
                    pr
                })
                .collect();
            out.name = t.name;
            out
        })
        .collect();
    r
}

pub async fn end_txn(state: &Arc<State>, req: &EndTxnRequest, version: i16) -> EndTxnResponse {
    let mut r = EndTxnResponse::default();
    let id = req.transactional_id.0.to_string();
    let result = state
        .txns
        .call(state, |c, now| {
            c.end_txn(
                now,
                &id,
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
            )
        })
        .await;
    r.error_code = match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => fenced_for(e.code().0, version, 2),
        Err(e) => {
            tracing::error!(error = %e, "transaction log write failed");
            storage_failure()
        }
    };
    r
}
