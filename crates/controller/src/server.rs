//! The internal listener (§4.4): accepts peers, checks their WeirHello, and dispatches the
//! control-plane keys to openraft and the active controller. Any other key closes the
//! connection (the data-plane keys, Fetch and WriteTxnMarkers, come with replication).

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::node::NodeInner;
use crate::wire::{self, keys, Forwarded, Hello};

pub(crate) async fn serve(listener: TcpListener, node: Arc<NodeInner>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "internal listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &node).await {
                tracing::debug!(%peer, error = %e, "internal connection closed");
            }
        });
    }
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
        let body = match req.key {
            keys::HELLO => {
                let theirs: Hello = decode(&req.body)?;
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
            keys::RAFT_APPEND => {
                let rpc = decode(&req.body)?;
                json(&node.raft.append_entries(rpc).await)
            }
            keys::RAFT_VOTE => {
                let rpc = decode(&req.body)?;
                json(&node.raft.vote(rpc).await)
            }
            keys::RAFT_SNAPSHOT => {
                let rpc = decode(&req.body)?;
                json(&node.raft.install_snapshot(rpc).await)
            }
            keys::CONTROLLER => {
                let fwd: Forwarded = decode(&req.body)?;
                json(&node.decide(fwd.request).await)
            }
            keys::DESCRIBE_QUORUM => json(&node.local_quorum()),
            other => {
                return Err(std::io::Error::other(format!(
                    "{} sent unknown key {other}",
                    req.client_id
                )))
            }
        };
        stream
            .write_all(&wire::encode_response(req.correlation_id, &body))
            .await?;
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(body: &Bytes) -> std::io::Result<T> {
    serde_json::from_slice(body).map_err(std::io::Error::other)
}
