//! Admin through the metadata quorum (design §6): in cluster mode topic changes are typed
//! [`ControllerRequest`]s the binary submits to the active controller. The broker does not
//! depend on the controller crate; the binary installs a [`ControllerClient`] once its quorum
//! node runs (as it does the `cluster_admin::ClusterAdmin`).

use std::future::Future;
use std::pin::Pin;

use weir_metadata::{ControllerReply, ControllerRequest};

/// A request committed by the quorum.
#[derive(Debug)]
pub struct Submitted {
    pub reply: ControllerReply,
    /// An index this node had applied when the reply came, at or past the request's
    /// entry: the broker answers once its published image includes it.
    pub applied_index: u64,
}

/// The quorum could not take the request (no active controller in time, this node
/// stopping).
#[derive(Debug, thiserror::Error)]
#[error("the metadata quorum did not take the request: {0}")]
pub struct ControllerUnavailable(pub String);

pub type SubmitFuture =
    Pin<Box<dyn Future<Output = Result<Submitted, ControllerUnavailable>> + Send>>;

pub type GoneFuture = Pin<Box<dyn Future<Output = Vec<i32>> + Send>>;

/// The metadata quorum as the broker's handlers use it.
pub trait ControllerClient: Send + Sync + 'static {
    /// Forwards `request` to the active controller; resolves once its entry is committed
    /// and applied on this node.
    fn submit(&self, request: ControllerRequest) -> SubmitFuture;

    /// The active controller as this node last saw it.
    fn controller_id(&self) -> Option<i32>;

    /// The brokers among `ids` whose process this node knows is gone (a connection to
    /// it failed lately and its internal listener refuses one now), before the controller
    /// fenced them. None by default.
    fn gone(&self, _ids: Vec<i32>) -> GoneFuture {
        Box::pin(std::future::ready(Vec::new()))
    }
}
