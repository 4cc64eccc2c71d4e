//! openraft's type configuration for the metadata quorum, and the controller's errors.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use weir_metadata::{MetadataError, MetadataRecord};

/// What a node carries in the Raft membership. Voters carry nothing: their addresses come
/// from each node's own `controller.quorum.voters`, so every voter initializes with an
/// identical membership whatever the spelling of the addresses (§4.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    #[serde(default)]
    pub internal: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.internal)
    }
}

openraft::declare_raft_types!(
    /// The metadata quorum's types: one entry is one atomic batch of records (KRaft's).
    pub TypeConfig:
        D = Vec<MetadataRecord>,
        R = (),
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type RaftStorageError = openraft::StorageError<NodeId>;

/// Why a controller call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// This node is not the active controller; `leader_hint` is, as far as it knows.
    #[error("not the active controller (leader: {leader_hint:?})")]
    NotController { leader_hint: Option<NodeId> },
    /// No active controller could be reached in time.
    #[error("the metadata quorum is unavailable: {0}")]
    QuorumUnavailable(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error(transparent)]
    Logic(#[from] MetadataError),
    #[error("metadata log storage: {0}")]
    Storage(#[from] weir_storage::StorageError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl ControllerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ControllerError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Milliseconds on a clock private to this process: the controller compares only its own
/// times (session deadlines), so a monotonic clock is what it needs.
pub(crate) fn now_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
