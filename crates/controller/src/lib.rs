//! Weir's metadata quorum (docs/design/cluster.md §4).

mod log_store;
mod state_machine;
mod types;

pub use log_store::{LogStore, RaftState};
pub use state_machine::{Applied, Change, StateMachine};
pub use types::{ControllerError, NodeId, NodeInfo, TypeConfig};

#[cfg(test)]
mod tests;
