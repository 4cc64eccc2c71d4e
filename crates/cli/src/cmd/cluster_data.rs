//! `weir serve`'s data plane in cluster mode (design §4.4, §5.2, §5.3): the broker's
//! [`DataPlane`] joined to the quorum node. Replica fetches arrive on the node's internal
//! listener (the [`FetchHook`]), the fetchers reach each leader's internal listener on the
//! node's `ReplicaFetch` connection to it (one per leader, apart from raft and controller
//! traffic), and the leaders' ISR proposals go to the active controller as AlterPartition
//! through `Node::submit`, which forwards them as it forwards heartbeats. Transaction
//! markers for partitions led elsewhere go as WriteTxnMarkers on the node's `TxnMarkers`
//! connection to their leader, whose hook serves them. Transaction verifications (KIP-890)
//! for a coordinator elsewhere go as AddPartitionsToTxn v4 on the `TxnVerify` connection.
//! The SQL engine's partition access to partitions led elsewhere goes on the
//! `PartitionAccess` connection, its long polls on `PartitionWait`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use weir_broker::cluster::{
    codec_links, AlterPartitionError, AlterPartitionFuture, AlterPartitionSender, DataPlane,
    RawFetch, REPLICA_FETCH_VERSION, REPLICA_FETCH_VERSIONS,
};
use weir_broker::partition_access::{self, AccessChannel, AccessLink};
use weir_broker::state::State;
use weir_broker::txn_markers::{
    serve_write_txn_markers, MarkerLink, WRITE_TXN_MARKERS_VERSION, WRITE_TXN_MARKERS_VERSIONS,
};
use weir_broker::txn_verify::{serve_verify, VerifyLink, VERIFY_VERSION};
use weir_controller::{DataPlaneFuture, Node, Purpose};
use weir_metadata::{AlterPartitionItem, BrokerId, ControllerReply, ControllerRequest};

/// Kafka's `replica.socket.timeout.ms` default: a fetch not answered within this much more
/// than its own wait drops the connection (a stopped leader), and the fetcher backs off.
const REPLICA_SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// Kafka's `request.timeout.ms` default: a WriteTxnMarkers not answered by then (a leader
/// stopped mid-call) is sent again.
const MARKERS_TIMEOUT: Duration = Duration::from_secs(30);

/// A transaction verification (KIP-890) answers from the coordinator's memory: one not
/// answered by then (a coordinator stopped mid-call) fails, and the request it guards gets a
/// retriable error.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// A partition access call not answered by then fails (the engine retries it): an append
/// waits up to 30 s for its replication, an EndTxn a few seconds for its markers.
const ACCESS_TIMEOUT: Duration = Duration::from_secs(40);

/// Starts the data plane, installs its replica Fetch and WriteTxnMarkers on `node`'s
/// internal listener, and gives `state` its link for markers to other brokers.
pub fn start(state: &Arc<State>, node: &Arc<Node>) -> Arc<DataPlane> {
    let config = &state.config;
    // Weak: the node holds the hook, which holds the data plane and its links.
    let weak = Arc::downgrade(node);
    let ttl = Duration::from_millis(u64::try_from(config.replica.fetch_wait_max_ms).unwrap_or(0))
        + REPLICA_SOCKET_TIMEOUT;
    let raw: RawFetch = Arc::new(move |leader: BrokerId, body: Bytes| {
        let node = weak.clone();
        Box::pin(async move {
            let call = (
                Purpose::ReplicaFetch,
                weir_controller::wire::keys::FETCH,
                REPLICA_FETCH_VERSION,
            );
            call_broker(node, leader, call, body, ttl).await
        })
    });
    let sender = Arc::new(NodeAlterPartition {
        node: Arc::downgrade(node),
        local: config.node_id,
    });
    let data_plane = Arc::new(DataPlane::start(config, codec_links(raw), sender));
    let weak = Arc::downgrade(node);
    let markers: MarkerLink = Arc::new(move |leader: BrokerId, body: Bytes| {
        let node = weak.clone();
        Box::pin(async move {
            let call = (
                Purpose::TxnMarkers,
                weir_controller::wire::keys::WRITE_TXN_MARKERS,
                WRITE_TXN_MARKERS_VERSION,
            );
            call_broker(node, leader, call, body, MARKERS_TIMEOUT).await
        })
    });
    state.set_marker_link(markers);
    let weak = Arc::downgrade(node);
    let verify: VerifyLink = Arc::new(move |coordinator: BrokerId, body: Bytes| {
        let node = weak.clone();
        Box::pin(async move {
            let call = (
                Purpose::TxnVerify,
                weir_controller::wire::keys::ADD_PARTITIONS_TO_TXN,
                VERIFY_VERSION,
            );
            call_broker(node, coordinator, call, body, VERIFY_TIMEOUT).await
        })
    });
    state.set_verify_link(verify);
    let weak = Arc::downgrade(node);
    let access: AccessLink = Arc::new(move |leader: BrokerId, channel, body: Bytes| {
        let node = weak.clone();
        Box::pin(async move {
            let purpose = match channel {
                AccessChannel::Calls => Purpose::PartitionAccess,
                AccessChannel::Waits => Purpose::PartitionWait,
            };
            let call = (
                purpose,
                weir_controller::wire::keys::PARTITION_ACCESS,
                partition_access::VERSION,
            );
            call_broker(node, leader, call, body, ACCESS_TIMEOUT).await
        })
    });
    state.set_access_link(access);
    node.set_data_plane(Arc::new(FetchHook {
        data_plane: data_plane.clone(),
        // Weak: the state holds the quorum node (admin, controller), which holds the hook.
        state: Arc::downgrade(state),
    }));
    data_plane
}

/// One call to `leader`'s internal listener over the quorum node's data plane: replica
/// fetches and transaction markers each on their own connection (`purpose`).
async fn call_broker(
    node: Weak<Node>,
    leader: BrokerId,
    (purpose, key, version): (Purpose, i16, i16),
    body: Bytes,
    ttl: Duration,
) -> Result<Bytes, weir_broker::cluster::BoxError> {
    let node = node.upgrade().ok_or("the quorum node stopped")?;
    let target = u64::try_from(leader)?;
    Ok(node
        .data_call(target, purpose, key, version, &body, ttl)
        .await?)
}

/// Serves replica Fetch (key 1, v15-17), WriteTxnMarkers (key 27, v0-1), transaction
/// verification (AddPartitionsToTxn, key 24, v4 `verify_only`) and partition access (key
/// 32020, v0) on the internal listener.
pub struct FetchHook {
    pub data_plane: Arc<DataPlane>,
    pub state: Weak<State>,
}

impl weir_controller::DataPlane for FetchHook {
    fn serves(&self, key: i16, version: i16) -> bool {
        use weir_controller::wire::keys;
        (key == keys::FETCH && REPLICA_FETCH_VERSIONS.contains(&version))
            || (key == keys::WRITE_TXN_MARKERS && WRITE_TXN_MARKERS_VERSIONS.contains(&version))
            || (key == keys::ADD_PARTITIONS_TO_TXN && version == VERIFY_VERSION)
            || (key == keys::PARTITION_ACCESS && version == partition_access::VERSION)
    }

    fn handle(
        &self,
        client_id: String,
        key: i16,
        version: i16,
        body: Bytes,
    ) -> DataPlaneFuture<'_> {
        Box::pin(async move {
            if key == weir_controller::wire::keys::PARTITION_ACCESS {
                let state = self
                    .state
                    .upgrade()
                    .ok_or_else(|| std::io::Error::other("the broker stopped"))?;
                return partition_access::serve_access(&state, body)
                    .await
                    .map_err(|e| {
                        tracing::warn!(peer = %client_id, error = %e, "closing a partition access connection");
                        std::io::Error::other(e)
                    });
            }
            if key == weir_controller::wire::keys::ADD_PARTITIONS_TO_TXN {
                let state = self
                    .state
                    .upgrade()
                    .ok_or_else(|| std::io::Error::other("the broker stopped"))?;
                return serve_verify(&state, version, body).map_err(|e| {
                    tracing::warn!(peer = %client_id, error = %e, "closing a verification connection");
                    std::io::Error::other(e)
                });
            }
            if key == weir_controller::wire::keys::WRITE_TXN_MARKERS {
                let state = self
                    .state
                    .upgrade()
                    .ok_or_else(|| std::io::Error::other("the broker stopped"))?;
                return serve_write_txn_markers(&state, version, body)
                    .await
                    .map_err(|e| {
                        tracing::warn!(peer = %client_id, error = %e, "closing a markers connection");
                        std::io::Error::other(e)
                    });
            }
            self.data_plane.serve_fetch(version, body).await.map_err(|e| {
                tracing::warn!(peer = %client_id, error = %e, "closing a replica fetch connection");
                std::io::Error::other(e)
            })
        })
    }
}

/// AlterPartition through the quorum node: forwarded to the active controller, answered
/// once the entry is applied on this node.
struct NodeAlterPartition {
    node: Weak<Node>,
    local: BrokerId,
}

impl AlterPartitionSender for NodeAlterPartition {
    fn alter_partition(&self, items: Vec<AlterPartitionItem>) -> AlterPartitionFuture<'_> {
        Box::pin(async move {
            let unreachable =
                |e: Box<dyn std::error::Error + Send + Sync>| AlterPartitionError::Unreachable(e);
            let node = self
                .node
                .upgrade()
                .ok_or_else(|| unreachable("the quorum node stopped".into()))?;
            let broker_epoch = node
                .broker_state()
                .borrow()
                .epoch
                .ok_or_else(|| unreachable("this broker is not registered yet".into()))?;
            let request = ControllerRequest::AlterPartition {
                broker_id: self.local,
                broker_epoch,
                partitions: items,
            };
            match node.submit(request).await {
                Ok(ControllerReply::AlterPartition(Ok(answers))) => Ok(answers),
                Ok(ControllerReply::AlterPartition(Err(e))) => Err(AlterPartitionError::Refused(e)),
                Ok(other) => Err(unreachable(
                    format!("unexpected controller reply {other:?}").into(),
                )),
                Err(e) => Err(unreachable(Box::new(e))),
            }
        })
    }
}

#[cfg(test)]
#[path = "cluster_data_tests.rs"]
mod tests;
