//! Why a pipeline failed. Every variant keeps its cause; the pipeline's status shows the
//! message (`failed: <error>`).

use arrow_schema::ArrowError;
use datafusion_common::DataFusionError;
use weir_broker::partition::PartitionError;
use weir_broker::partition_access::AccessError;
use weir_broker::state::AdminError;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("graph: {0}")]
    Graph(String),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic:?}: {source}")]
    Admin {
        topic: String,
        #[source]
        source: AdminError,
    },
    #[error("{topic}-{partition}: {source}")]
    Partition {
        topic: String,
        partition: i32,
        #[source]
        source: AccessError,
    },
    /// An append's durability (fsync, replication) failed on the partition's leader.
    #[error("{topic}-{partition}: {source}")]
    Durability {
        topic: String,
        partition: i32,
        #[source]
        source: PartitionError,
    },
    #[error("transaction {transactional_id:?}: {source}")]
    Txn {
        transactional_id: String,
        #[source]
        source: AccessError,
    },
    #[error("expression: {0}")]
    Expr(#[from] DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("encoding a sink record: {0}")]
    Encode(String),
    #[error("a batch read from {topic}-{partition} at offset {offset} is damaged: {reason}")]
    Corrupt {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("state topic {topic:?}: {reason}")]
    State { topic: String, reason: String },
    #[error(
        "memory budget exceeded: {used} bytes held, the pipeline's limit is {limit} \
         (raise weir.sql.pipeline.memory.max.bytes)"
    )]
    MemoryBudget { used: usize, limit: usize },
    #[error("state: {0}")]
    Codec(#[source] crate::state::codec::CodecError),
    #[error("aggregate: {0}")]
    Aggregate(String),
    #[error("join: {0}")]
    Join(String),
    #[error("top-N: {0}")]
    TopN(String),
    #[error("the pipeline task panicked: {0}")]
    Panicked(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error("the engine's runtime could not start: {0}")]
    Runtime(#[source] std::io::Error),
}
