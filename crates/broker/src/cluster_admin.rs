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
