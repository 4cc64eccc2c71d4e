//! Producer ids in cluster mode come from the metadata quorum a block at a time (KIP-730's
//! AllocateProducerIds): every broker answers InitProducerId, and a node-local counter would
//! hand one id to two producers through two brokers.

use weir_metadata::{ControllerReply, ControllerRequest};

use crate::meta::MetaError;
use crate::state::State;

impl State {
    /// Cluster mode: when this broker's block of producer ids is used up, asks the quorum for
    /// the next one. A no-op on one node (its store reserves ids itself) and while ids are
    /// left. Call before `allocate_producer_id`; an error is retriable (no controller yet, this
    /// broker not registered or fenced).
    pub async fn ensure_producer_ids(&self) -> Result<(), MetaError> {
        if !self.cluster || !self.producer_ids.needs_quorum_block() {
            return Ok(());
        }
        let broker_id = self.config.node_id;
        let broker_epoch = self.image.image().broker(broker_id).map_or(-1, |b| b.epoch);
        let request = ControllerRequest::AllocateProducerIds {
            broker_id,
            broker_epoch,
        };
        match self.submit(request).await {
            Ok(ControllerReply::AllocateProducerIds(Ok((start, len)))) => {
                tracing::debug!(start, len, "producer-id block from the quorum");
                self.producer_ids.install_block(start, len);
                Ok(())
            }
            Ok(ControllerReply::AllocateProducerIds(Err(e))) => {
                Err(MetaError::NoProducerIds(e.to_string()))
            }
            Ok(other) => Err(MetaError::NoProducerIds(format!(
                "the quorum answered {other:?}"
            ))),
            Err(e) => Err(MetaError::NoProducerIds(e.to_string())),
        }
    }
}
