//! Weir's SQL layer: statements over topics, served on the PostgreSQL wire protocol.
//!
//! - [`parser`]: Weir's statements (`CREATE SOURCE`, `SHOW SOURCES`, `DESCRIBE`, `DROP`) over
//!   sqlparser; every other statement is sqlparser's, planned by DataFusion.
//! - [`catalog`]: the durable catalog, the compacted topic `__weir_sql_catalog`.
//! - [`source`] and [`table`]: a source (or a table, whose topic is a changelog by key,
//!   [`changelog`]) is a topic read through a record format
//!   (`weir-format`); as a DataFusion table, each topic partition is a scan partition read
//!   in-process, read_committed, up to the offsets sampled at planning; `INSERT` appends;
//!   [`dml`]: a table's `DELETE` and `UPDATE` append tombstones and new rows by key.
//! - [`pipelines`]: views and sinks run as stream graphs planned by [`plan`]; [`upgrade`]:
//!   what a pipeline whose plan changed since CREATE resumes with (or why it cannot).
//! - [`views`]: views that are not materialized, named queries inlined where they are read.
//! - [`show_create`]: `SHOW CREATE`, the stored statement; [`drop_object`]: `DROP [CASCADE]`;
//!   [`rename`]: `ALTER .. RENAME TO`; [`replace_view`]: `CREATE OR REPLACE VIEW`.
//! - [`pg_catalog`]: what PostgreSQL clients ask besides SQL (settings, the `pg_catalog`
//!   tables psql reads, their functions, a rewrite of client syntax).
//! - [`engine`]: the shared engine (catalog, sources, memory pool) and each connection's
//!   [`engine::Session`].
//! - [`pg`]: pgwire handlers (simple and extended query protocols, text and binary results);
//!   [`service`]: the listener as a broker [`weir_broker::Service`]; [`client`]: `weir sql`.
//! - [`state_ttl`]: the opt-in idle-state TTL of continuous queries (event time).
//! - [`to_char`]: PostgreSQL's `to_char` templates, in place of DataFusion's, in every session.
//! - [`nexmark`]: the Nexmark generator, sources and queries (tests and `weir bench nexmark`).

pub mod append;
pub mod catalog;
pub mod changelog;
pub mod client;
pub mod config;
pub mod dml;
pub mod drop_object;
pub mod engine;
pub mod error;
pub mod nexmark;
pub mod parser;
pub mod pg;
pub mod pg_catalog;
pub mod pipelines;
pub mod plan;
pub mod records;
pub mod rename;
pub mod replace_view;
pub mod service;
pub mod session;
pub mod show_create;
pub mod source;
pub mod state_ttl;
pub mod stream_io;
pub mod table;
pub mod to_char;
pub mod types;
pub mod upgrade;
pub mod views;

pub use config::SqlConfig;
pub use error::SqlError;
pub use service::SqlService;
