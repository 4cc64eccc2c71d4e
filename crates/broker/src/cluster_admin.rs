//! The Weir-private admin key of the client listener: `WeirDescribeCluster` (32100) answers
//! the cluster's brokers, active controller and quorum as JSON, for `weir cluster info`.
//! KRaft's DescribeQuorum does not carry broker fencing, and DescribeCluster does not carry
//! the voters' log ends, so neither maps (docs/design/cluster.md §6).
//!
//! The key is recognised only after `decode_request` refused it as unknown, so the
//! single-node hot path does no extra work. The broker does not know the controller crate:
//! the binary installs a [`ClusterAdmin`] once the node runs; without one (the single-node
//! default) the answer says so.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::handlers::Reply;
use crate::state::State;

/// `WeirDescribeCluster`'s API key.
pub const WEIR_DESCRIBE_CLUSTER: i16 = 32100;

/// The JSON body answered by a broker without a cluster.
pub const SINGLE_NODE_ANSWER: &str = r#"{"mode":"single-node"}"#;

pub type DescribeFuture = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

/// Describes the cluster as JSON (the binary owns the shape).
pub trait ClusterAdmin: Send + Sync + 'static {
    fn describe(&self) -> DescribeFuture;
}

/// Answers a `WeirDescribeCluster` request: response header v0, then the JSON body.
pub(crate) fn describe(state: &State, correlation_id: i32) -> Reply {
    let admin: Option<Arc<dyn ClusterAdmin>> = state.cluster_admin();
    Reply::Later(Box::pin(async move {
        let body = match admin {
            Some(a) => a.describe().await,
            None => SINGLE_NODE_ANSWER.as_bytes().to_vec(),
        };
        let mut buf = BytesMut::with_capacity(8 + body.len());
        buf.put_i32(i32::try_from(4 + body.len()).unwrap_or(i32::MAX));
        buf.put_i32(correlation_id);
        buf.put_slice(&body);
        Some(Bytes::from(buf))
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Buf;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::{Broker, BrokerConfig};

    struct Fixed;

    impl ClusterAdmin for Fixed {
        fn describe(&self) -> DescribeFuture {
            Box::pin(async { br#"{"mode":"cluster"}"#.to_vec() })
        }
    }

    async fn ask(stream: &mut tokio::net::TcpStream, correlation_id: i32) -> (i32, Vec<u8>) {
        let client_id = b"t";
        let mut frame = BytesMut::new();
        frame.put_i32(2 + 2 + 4 + 2 + client_id.len() as i32 + 1);
        frame.put_i16(WEIR_DESCRIBE_CLUSTER);
        frame.put_i16(0);
        frame.put_i32(correlation_id);
        frame.put_i16(client_id.len() as i16);
        frame.put_slice(client_id);
        frame.put_u8(0);
        stream.write_all(&frame).await.expect("send");
        let size = stream.read_i32().await.expect("size");
        let mut body = vec![0u8; size as usize];
        stream.read_exact(&mut body).await.expect("body");
        let mut body = Bytes::from(body);
        let correlation = body.get_i32();
        (correlation, body.to_vec())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn weir_describe_cluster_answers_single_node_then_the_installed_admin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, _) = BrokerConfig::from_pairs(
            "127.0.0.1:0".parse().expect("addr"),
            None,
            dir.path().to_path_buf(),
            Default::default(),
        )
        .expect("config");
        let broker = Broker::open(config).await.expect("open");
        let addr = broker.local_addr();
        let state = broker.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(broker.serve(async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert_eq!(
            ask(&mut stream, 5).await,
            (5, SINGLE_NODE_ANSWER.as_bytes().to_vec())
        );
        state.set_cluster_admin(Arc::new(Fixed));
        // The same connection goes on serving, now from the installed admin.
        assert_eq!(
            ask(&mut stream, 6).await,
            (6, br#"{"mode":"cluster"}"#.to_vec())
        );
        stop.send(()).expect("serving");
        tokio::time::timeout(Duration::from_secs(15), served)
            .await
            .expect("shut down in time")
            .expect("task")
            .expect("clean shutdown");
    }
}
