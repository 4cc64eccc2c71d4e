//! Weir's metadata quorum (docs/design/cluster.md §4): openraft on a `weir_storage::Log`
//! (`log_store`), the `MetadataImage` as its state machine (`state_machine`), the internal
//! listener and its client side (`server`, `wire`, `network`), formation, submission and
//! the quorum's view (`node`), the active controller (`active`), early elections when the
//! leader's process is gone (`elect`), brokers beyond the voters as openraft learners
//! (`learners`) and this broker's registration and heartbeats
//! (`lifecycle`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod active;
mod elect;
#[doc(hidden)]
pub mod fuzzing;
mod learners;
mod lifecycle;
mod log_store;
mod network;
mod node;
mod server;
mod state_machine;
mod types;
pub mod wire;

pub use log_store::{LogStore, RaftState};
pub use node::{
    BrokerState, ControlledShutdown, HeartbeatAnswer, Node, NodeConfig, QuorumInfo,
    SnapshotPolicyConfig, VoterInfo,
};
pub use server::{DataPlane, DataPlaneFuture};
pub use state_machine::{Applied, Change, StateMachine, SNAPSHOT_DIR};
pub use types::{ControllerError, NodeId, NodeInfo, TypeConfig};
pub use wire::{CallError, Purpose};

#[cfg(test)]
mod tests;
