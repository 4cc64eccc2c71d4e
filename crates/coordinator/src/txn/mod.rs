//! Weir's transaction coordinator (KIP-98 transactions, with KIP-360's epoch rules) as a
//! pure state machine, in the same events-in, outputs-out shape as the group coordinator.
//!
//! The broker translates InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! DescribeTransactions and ListTransactions into calls on [`TxnCoordinator`], passing the
//! current time, and carries out the returned [`TxnOutput`]s in order:
//!
//! - [`TxnOutput::PersistState`]: append the [`TxnRecord`] to the transaction log and make it
//!   durable **before** doing anything that follows it and before answering the request.
//!   The coordinator has already applied it in memory; if the append fails, the in-memory
//!   state is ahead of the log, and the broker must drop this coordinator and rebuild it
//!   from the log (see below) rather than carry on.
//!
//!   Answers without outputs read that in-memory state too (an EndTxn retry after the
//!   commit completed, an AddPartitionsToTxn for partitions already added), so a broker
//!   that appends under its lock and fsyncs afterwards must answer *every* call only once
//!   the log is durable up to its end as of that call, not just up to the call's own
//!   records. (Kafka gets the same guarantee from its "pending transition" state.)
//! - [`TxnOutput::WriteMarkers`]: write a COMMIT or ABORT control batch for the producer to
//!   every listed partition, and commit or discard the producer's pending TxnOffsetCommits
//!   in every listed group. This runs in the background (the request that caused it is
//!   answered without waiting); once every marker is durable the broker calls
//!   [`TxnCoordinator::markers_written`], exactly once per `WriteMarkers`.
//!
//! Durability and recovery: the transaction log is the only state. At startup the broker
//! replays it through [`TxnCoordinator::load`] (the latest record per transactional id
//! wins; a [`TxnState::Dead`] record is a tombstone), then calls
//! [`TxnCoordinator::recover`], which re-issues the markers of every transaction whose
//! decision was logged but whose completion was not. Until `recover` is called every
//! request is answered COORDINATOR_LOAD_IN_PROGRESS. A transaction that was still open when
//! the broker died stays open and is aborted by its timeout, as in Kafka.
//!
//! Timers: transaction timeouts and transactional-id expiry are deadlines in the state.
//! [`TxnCoordinator::next_deadline`] says when the earliest falls due; the broker calls
//! [`TxnCoordinator::tick`] then.
//!
//! Producer ids are allocated by the broker (they must be unique across the cluster and
//! across restarts), through the callback handed to [`TxnCoordinator::init_producer_id`].
//!
//! This is transaction protocol v1: the epoch is bumped by InitProducerId and when the
//! coordinator fences a producer (timeout, or a new producer with the same transactional
//! id), not at the end of every transaction (KIP-890 is not implemented).

mod coordinator;
mod error;
mod record;
mod types;

#[cfg(test)]
mod tests;

pub use coordinator::{TxnCoordinator, TxnStep};
pub use error::TxnError;
pub use record::TxnRecord;
pub use types::{
    InitRequest, InitResult, TxnConfig, TxnDescription, TxnListing, TxnMember, TxnOutput, TxnState,
    UnknownTxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
