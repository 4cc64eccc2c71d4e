//! Weir's partition replication (issue 11, `docs/design/cluster.md` §3 and §5): the pure
//! decisions of Kafka's replication protocol, kept apart from sockets, disks and clocks so
//! that tests can drive them event by event and assert every output.
//!
//! - [`LeaderState`]: one per replicated partition this broker leads. Follower fetches, the
//!   leader's own appends and the passing of time go in; the high watermark and ISR change
//!   proposals (AlterPartition, KIP-497) come out. The high watermark is the smallest fetch
//!   offset of the *maximal* ISR (committed ISR plus pending additions) and only advances
//!   while the committed ISR has at least `min.insync.replicas` members (KIP-966's strict
//!   rule). One proposal is in flight at a time.
//! - [`decide_truncation`]: where a follower cuts its log, given its leader's answer for an
//!   epoch (a Fetch's `DivergingEpoch` or an OffsetForLeaderEpoch answer, KIP-101/KIP-279)
//!   and its own epoch cache.
//! - [`ReplicaLog`]: what the replica fetcher (a later increment) needs of a partition
//!   replica; the broker's `Partition` implements it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod leader;
mod log;
mod truncation;

#[cfg(test)]
mod tests;

pub use leader::{AlterOutcome, FetchOutcome, IsrChange, LeaderConfig, LeaderError, LeaderState};
pub use log::ReplicaLog;
pub use truncation::{decide_truncation, EpochEndOffset, Truncation};
