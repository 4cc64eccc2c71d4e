//! Weir's streaming engine: continuous queries over topics, with exactly-once results.
//!
//! A [`graph::Graph`] (built by the SQL planner, or by hand) names sources, operators and
//! sinks. [`runtime::Engine::run_pipeline`] runs it as two tasks (a source stage reading
//! and decoding ahead, and the operators) on the engine's own tokio runtime, in the broker's
//! process and through its typed seams, never the Kafka protocol:
//!
//! ```text
//! Partition::read (read_committed)      Map (DataFusion PhysicalExprs)       Partition::append
//!   source::reader ──► SourceDecoder ──► ops ── Union (aligned) ── ... ──► SinkEncoder ──► sink
//!        │ offsets, watermarks                                                    │
//!        └───────────── operator 0's state ──► __weir_sql_state.<id> ◄────────────┘
//!                                 one transaction per epoch (txn)
//! ```
//!
//! - **Sources** ([`source`]) read each partition's whole batches up to the last stable
//!   offset, skip control and aborted batches, and decode records borrowed from the read
//!   buffer ([`weir_storage::records`]) into Arrow builders ([`format::SourceDecoder`]).
//!   Per-partition watermarks with idleness follow §6 of docs/design/stream-sql.md. Caught
//!   up, the source stage parks on its partitions' versions, with no task per partition.
//! - **Operators** ([`ops`], [`align`]) take [`message::Message`]s: batches, watermarks and
//!   barriers. Operators with several inputs align barriers. A value whose expression fails
//!   on its row is NULL and counted ([`ops::eval`]), never a failed pipeline.
//! - **Epochs** ([`txn`], [`checkpoint`]): every checkpoint interval, barrier N leaves every
//!   source; sinks have appended the epoch's records as transactional batches; the sources'
//!   offsets and watermarks are appended as operator 0's state; every written partition is
//!   fsynced; the transaction commits. After a crash, the next run's `init_transactional`
//!   aborts the open epoch and the state read read_committed resumes the sources exactly
//!   where the committed output ends: no loss, no duplicate.
//! - **Layouts** ([`layout`]): what a checkpoint was written for, so a graph planned
//!   differently after an upgrade resumes over state only when it means the same to it.
//! - **Failures**: over the memory budget, a storage or transaction error, or a panic, the
//!   epoch is aborted and the pipeline shows `failed: <error>`; the broker goes on.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod align;
pub mod checkpoint;
pub mod error;
pub mod format;
pub mod graph;
pub mod layout;
pub mod message;
pub mod ops;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod state;
pub mod txn;

pub use error::StreamError;
pub use graph::{Edge, Graph, NodeSpec};
pub use message::Message;
pub use runtime::{Engine, PipelineHandle, PipelineStatus, Progress, StreamConfig};
