//! Weir's Kafka-compatible broker: the tokio server that ties protocol and storage together.
//!
//! Data flow: [`Broker::open`] opens [`state::State`] (the topic table and one
//! [`partition::Partition`] over a `weir_storage::Log` per partition, recovered after an
//! unclean stop) and binds the listener; [`Broker::serve`] accepts connections. Each accepted
//! socket gets a `connection` task: frames are decoded by `weir-protocol`, dispatched to a
//! handler in `handlers/` (one module per family of APIs, thin adapters over `Partition`), and
//! answered in request order. Produce appends opaque record batches and, per the durability
//! policy, waits for the log's group commit before answering; Fetch reads whole batches back
//! without decoding them, and long polls wake only for their own partitions. Background
//! tasks enforce retention, compact `cleanup.policy=compact` topics (`cleaner.rs`) and run
//! optional periodic flushes. Errors become Kafka error codes in
//! one place (`errors.rs`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod broker_keys;
mod cleaner;
pub mod cluster;
pub mod cluster_admin;
pub mod cluster_config;
pub mod config;
pub mod config_ops;
mod connection;
pub mod connection_limits;
#[cfg(test)]
mod coordinator_faults;
pub mod coordinator_log;
pub mod dir_lock;
pub mod dynamic_config;
mod errors;
#[doc(hidden)]
pub mod fuzzing;
mod group_log;
pub mod group_router;
pub mod groups;
#[cfg(test)]
mod groups_consumer_tests;
mod handlers;
pub mod hw_checkpoint;
mod internal_log;
mod lag;
pub mod lag_history;
pub mod meta;
pub mod metadata_store;
pub mod metrics;
mod metrics_state;
pub mod partition;
pub mod partition_access;
mod produce_gaps;
mod records;
pub mod replica_fetch;
pub mod replica_fetcher;
pub mod replica_session;
pub mod security;
mod server;
pub mod shards;
pub mod state;
/// A real broker state on a temporary directory, for tests of crates built on the broker
/// (feature `testkit`, enabled only by dev-dependencies).
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod topic_config;
pub mod txn_api;
pub mod txn_guard;
pub mod txn_markers;
pub mod txn_router;
pub mod txn_verify;
pub mod txns;

pub use config::{BrokerConfig, ConfigError, Durability, MetricsConfig};
pub use server::{run, Broker, BrokerError, Service};
pub use weir_metrics;
