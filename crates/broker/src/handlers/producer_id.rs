//! InitProducerId. Idempotent producers get an id here; a transactional id goes to the
//! transaction coordinator (`txn.rs`).

use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use weir_protocol::ResponseError;

use crate::state::State;

pub async fn init(
    state: &Arc<State>,
    req: &InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    if let Some(id) = req.transactional_id.as_ref().filter(|t| !t.0.is_empty()) {
        return super::txn::init_transactional(state, req, id.0.to_string(), version).await;
    }
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    // KIP-360: a producer that knows its id asks for the next epoch after a fatal sequence error.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX {
        r.producer_id = req.producer_id;
        r.producer_epoch = req.producer_epoch + 1;
        return r;
    }
    if let Err(e) = state.ensure_producer_ids().await {
        // Kafka's answer while its producer-id manager waits for a block: clients retry.
        tracing::warn!(error = %e, "no producer id to hand out yet");
        r.error_code = ResponseError::CoordinatorLoadInProgress.code();
        return r;
    }
    let s = state.clone();
    match tokio::task::spawn_blocking(move || s.allocate_producer_id()).await {
        Ok(Ok(id)) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = 0;
        }
        Ok(Err(e @ crate::meta::MetaError::NoProducerIds(_))) => {
            // The block ran out between ensure and allocate (concurrent InitProducerIds).
            tracing::warn!(error = %e, "no producer id to hand out yet");
            r.error_code = ResponseError::CoordinatorLoadInProgress.code();
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot reserve producer ids");
            r.error_code = ResponseError::KafkaStorageError.code();
        }
        Err(_) => r.error_code = ResponseError::KafkaStorageError.code(),
    }
    r
}
