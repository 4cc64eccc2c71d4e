//! Weir's partition log: Kafka's on-disk format (segments of RecordBatch v2 bytes with sparse
//! offset and time indexes), crash recovery, durability and retention.
//!
//! One [`Log`] per partition directory. Data flows through it like this:
//!
//! - **Append** ([`Log::append`]): validate every batch of the request (magic, lengths,
//!   CRC-32C, size limit) without any lock; stamp LogAppendTime if configured; then under the
//!   append lock assign consecutive offsets (rewriting each `baseOffset` in place), roll to a
//!   new segment if needed, write all the bytes with **one** positional write, and extend the
//!   active segment's in-memory indexes (written to files only when the segment is sealed or
//!   the log closed). Nothing is written if any batch is invalid.
//! - **Durability** ([`Log::flush_to`]): appends are not fsynced. A caller that needs an
//!   offset durable calls `flush_to`; concurrent callers share one fdatasync (group commit).
//!   A roll fsyncs the old segment before switching, so only the active segment ever needs
//!   syncing. A failed fsync poisons the log: it refuses all later writes rather than retry
//!   (after a failed fsync the kernel may have dropped the dirty pages).
//! - **Read** ([`Log::read`]): under the lock, find the segment and the committed length;
//!   then, without the lock, use the sparse index to find the batch holding the offset, do a
//!   single `read_at` of the range and trim it to whole batches (at least one, KIP-74).
//! - **Open** ([`Log::open`]): rebuild missing or invalid indexes; after a crash
//!   ([`Recovery::Scan`]) validate the active segment batch by batch, truncate the torn tail
//!   (fsynced) and rebuild its indexes in memory; then load the newest valid producer
//!   snapshot and replay the batch headers after it (producer sequences, open transactions,
//!   aborted transactions). Nothing else is written or fsynced, except rebuilt damaged files.
//! - **Retention** ([`Log::enforce_retention`], [`Log::delete_records_before`]): delete whole
//!   sealed segments oldest first (with their `.txnindex` and producer snapshots) and advance
//!   the log start (checkpointed).
//!
//! - **Compaction** ([`cleaner`]): for `cleanup.policy=compact`, rewrites sealed segments
//!   keeping the latest record of each key, and swaps them in crash-safely.
//!
//! - **Records** ([`records`]): the records of a batch, borrowed from it (keys, values,
//!   headers), for the cleaner and in-process consumers.
//!
//! Batches are stored exactly as produced (compaction drops records from uncompressed batches
//! and recomputes their CRC); storage never decompresses.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod batch;
pub mod cleaner;
pub mod codec;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod log;
mod producer;
pub mod records;
mod segment;
/// Builders of valid batches for tests (feature `testkit`, enabled only by dev-dependencies).
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod txn_index;
pub mod verify;

pub use batch::{BatchDefect, BatchHeader, Marker};
pub use config::{Compaction, LogConfig, Recovery, TimestampType};
pub use error::{IoOp, StorageError};
pub use log::{
    AppendInfo, EpochEntry, Log, ReadOutcome, RecoveryReport, RetentionOutcome,
    LEADER_EPOCH_CHECKPOINT, LOG_START_CHECKPOINT,
};
pub use producer::{AbortedTxn, ActiveProducer, SNAPSHOT_SUFFIX as PRODUCER_SNAPSHOT_SUFFIX};
pub use segment::write_atomically;
pub use txn_index::TXN_INDEX_SUFFIX;

/// Latency of the fsyncs that make appends durable (the group commit's `fdatasync`), for every
/// log of the process. A `static` because logs are opened long before, and far below, anything
/// that owns a metrics registry; the broker exposes it as `weir_fsync_duration_seconds`.
pub static FSYNC_SECONDS: weir_metrics::Histogram = weir_metrics::Histogram::latency();
