//! UnregisterBroker (API 64, `kafka-cluster.sh unregister`): a thin adapter over the
//! quorum (`cluster/partition_admin.rs`). ALTER on the cluster, as Kafka. The controller
//! refuses a voter and a live broker that still holds replicas (design §5.7); an unknown
//! id is BROKER_ID_NOT_REGISTERED. A single node has no other broker to remove.

use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use weir_protocol::ResponseError;

use super::{msg, Conn};
use crate::errors::admin_code;
use crate::security::{Operation, Resource};
use crate::state::State;

pub async fn unregister_broker(
    state: &Arc<State>,
    req: &UnregisterBrokerRequest,
    conn: &Conn,
) -> UnregisterBrokerResponse {
    let mut r = UnregisterBrokerResponse::default();
    let id = req.broker_id.0;
    let (code, message): (i16, Option<String>) =
        if !conn.may(state, Operation::Alter, Resource::Cluster) {
            (
                ResponseError::ClusterAuthorizationFailed.code(),
                Some("Authorization failed.".into()),
            )
        } else if !state.is_cluster() {
            let why = if id == state.config.node_id {
                (
                    ResponseError::InvalidRequest.code(),
                    format!("broker {id} is this single node; there is no cluster to leave"),
                )
            } else {
                (
                    ResponseError::BrokerIdNotRegistered.code(),
                    format!("broker {id} is not registered"),
                )
            };
            (why.0, Some(why.1))
        } else {
            match state.cluster_unregister_broker(id).await {
                Ok(Ok(())) => {
                    tracing::info!(broker = id, "broker unregistered");
                    (0, None)
                }
                Ok(Err(e)) => {
                    tracing::info!(broker = id, error = %e, "UnregisterBroker refused");
                    (e.code(), Some(e.to_string()))
                }
                Err(e) => (admin_code(&e).code(), Some(e.to_string())),
            }
        };
    r.error_code = code;
    r.error_message = message.and_then(msg);
    r
}
