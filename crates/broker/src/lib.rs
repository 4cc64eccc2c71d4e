//! Weir's Kafka-compatible broker: the tokio server that ties protocol and storage together.
//!
//! Data flow: [`server::run`] binds the listener and opens [`state::State`] (the topic table and
//! one `weir_storage::Log` per partition, recovered after an unclean stop). Each accepted socket
//! gets a `connection` task: frames are decoded by `weir-protocol`, dispatched to a handler in
//! `handlers/` (one module per family of APIs), and answered in request order. Produce appends
//! opaque record batches to the log and, per the durability policy, waits for the log's group
//! commit before answering; Fetch reads whole batches back without decoding them. Background
//! tasks enforce retention, compact `cleanup.policy=compact` topics (`cleaner.rs`) and run
//! optional periodic flushes. Errors become Kafka error codes in
//! one place (`errors.rs`).

mod cleaner;
pub mod config;
mod connection;
mod errors;
#[doc(hidden)]
pub mod fuzzing;
pub mod groups;
mod handlers;
mod internal_log;
pub mod meta;
mod server;
pub mod state;
pub mod topic_config;
mod txns;

pub use config::{BrokerConfig, ConfigError, Durability};
pub use server::{run, BrokerError};
