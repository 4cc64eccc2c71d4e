//! The internal listener (§4.4): accepts peers, checks their WeirHello, and dispatches the
//! control-plane keys to openraft and the active controller, and the data-plane keys
//! (replica Fetch) to the [`DataPlane`] hook the binary installs. Any other key closes the
//! connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::node::NodeInner;
use crate::types::{NodeId, TypeConfig};
use crate::wire::{self, keys, Forwarded, Hello};

/// Accepts peers until the task is aborted; the connections are tasks of a `JoinSet` owned
/// here, so aborting the listener (`Node::shutdown`) ends them too.
pub(crate) async fn serve(listener: TcpListener, node: Arc<NodeInner>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "internal listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let node = node.clone();
        connections.spawn(async move {
            if let Err(e) = connection(stream, &node).await {
                tracing::debug!(%peer, error = %e, "internal connection closed");
            }
        });
    }
}

/// A data-plane answer: the response body, or why the connection closes.
pub type DataPlaneFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<Bytes>> + Send + 'a>>;

/// The broker's side of the internal listener: the Kafka keys it serves to peers (replica
/// Fetch). The controller crate knows only frames, not the broker, so the binary installs
/// this with [`crate::Node::set_data_plane`]; until then those keys close the connection.
pub trait DataPlane: Send + Sync + 'static {
    /// Whether `key` at `version` is served here.
    fn serves(&self, key: i16, version: i16) -> bool;
    /// Answers one request `body` (after its header) from the peer `client_id`. An error
    /// closes the connection (a body that does not decode).
    fn handle(&self, client_id: String, key: i16, version: i16, body: Bytes)
        -> DataPlaneFuture<'_>;
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

async fn connection(mut stream: TcpStream, node: &NodeInner) -> std::io::Result<()> {
    let mut greeted = false;
    while let Some(frame) = wire::read_frame(&mut stream).await? {
        let Some(req) = wire::decode_request(frame) else {
            return Err(std::io::Error::other("malformed request frame"));
        };
        if !greeted && req.key != keys::HELLO {
            return Err(std::io::Error::other(format!(
                "{} sent key {} before WeirHello",
                req.client_id, req.key
            )));
        }
        if let Some(hook) = node.data_plane().filter(|h| h.serves(req.key, req.version)) {
            if !greeted {
                return Err(std::io::Error::other("data-plane request before WeirHello"));
            }
            let body = hook
                .handle(req.client_id, req.key, req.version, req.body)
                .await?;
            stream
                .write_all(&wire::encode_response(req.correlation_id, &body))
                .await?;
            continue;
        }
        let body = match InternalRequest::decode(req.key, &req.body) {
            Err(e) => {
                return Err(std::io::Error::other(format!(
                    "{} sent key {}: {e}",
                    req.client_id, req.key
                )))
            }
            Ok(InternalRequest::Hello(theirs)) => {
                let mine = node.hello();
                if mine.conflicts_with(&theirs) {
                    tracing::warn!(
                        node = theirs.node_id,
                        theirs = ?theirs.cluster_id,
                        ours = ?mine.cluster_id,
                        "refusing a node of another cluster"
                    );
                    return Ok(());
                }
                greeted = true;
                json(&mine)
            }
            Ok(InternalRequest::Append(rpc)) => json(&node.raft.append_entries(rpc).await),
            Ok(InternalRequest::Vote(rpc)) => json(&node.raft.vote(rpc).await),
            Ok(InternalRequest::Snapshot(rpc)) => json(&node.raft.install_snapshot(rpc).await),
            Ok(InternalRequest::Controller(fwd)) => json(&node.decide(fwd.request).await),
            Ok(InternalRequest::DescribeQuorum) => json(&node.local_quorum()),
        };
        stream
            .write_all(&wire::encode_response(req.correlation_id, &body))
            .await?;
    }
    Ok(())
}

/// A decoded control-plane request of the internal listener.
pub(crate) enum InternalRequest {
    Hello(Hello),
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Controller(Forwarded),
    DescribeQuorum,
}

impl InternalRequest {
    /// Decodes `body` as `key` says; an unknown key or a body that is not its JSON is an
    /// error (the connection is closed).
    pub(crate) fn decode(key: i16, body: &[u8]) -> std::io::Result<InternalRequest> {
        fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> std::io::Result<T> {
            serde_json::from_slice(body).map_err(std::io::Error::other)
        }
        Ok(match key {
            keys::HELLO => InternalRequest::Hello(json(body)?),
            keys::RAFT_APPEND => InternalRequest::Append(json(body)?),
            keys::RAFT_VOTE => InternalRequest::Vote(json(body)?),
            keys::RAFT_SNAPSHOT => InternalRequest::Snapshot(json(body)?),
            keys::CONTROLLER => InternalRequest::Controller(json(body)?),
            keys::DESCRIBE_QUORUM => InternalRequest::DescribeQuorum,
            other => return Err(std::io::Error::other(format!("unknown key {other}"))),
        })
    }
}
