//! The transaction coordinator's inputs and outputs.

use std::fmt;
use std::str::FromStr;

use crate::{ErrorCode, TopicPartition};

use super::TxnRecord;

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Settings of the transaction coordinator. Names follow the Kafka broker configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the largest transaction timeout a producer may ask for.
    pub transaction_timeout_max_ms: i32,
    /// `transactional.id.expiration.ms`: a transactional id with no transaction in progress
    /// that sees no request for this long is forgotten (tombstoned).
    pub transactional_id_expiration_ms: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: the least time between
    /// two ticks that do work, so a timed-out transaction is aborted up to this late (as in
    /// Kafka) and a coordinator with many transactions does not scan them for every one.
    pub abort_timed_out_check_interval_ms: u64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            transaction_timeout_max_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            abort_timed_out_check_interval_ms: 10_000,
        }
    }
}

/// Transaction states, spelled as Kafka spells them in DescribeTransactions and
/// ListTransactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// The producer is initialized and has no transaction open.
    Empty,
    /// A transaction is open: partitions or groups have been added to it.
    Ongoing,
    /// Commit decided and logged; markers are being written.
    PrepareCommit,
    /// Abort decided and logged; markers are being written.
    PrepareAbort,
    /// The last transaction committed; every marker is written.
    CompleteCommit,
    /// The last transaction aborted; every marker is written.
    CompleteAbort,
    /// Kafka's transient state while fencing a producer. Weir fences and moves to
    /// PrepareAbort in one step, so it is never observed; it exists for name parity.
    PrepareEpochFence,
    /// Forgotten. As a [`TxnRecord`] state it is a tombstone; in a description it means
    /// "no such transactional id".
    Dead,
}

impl TxnState {
    pub const ALL: [Self; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::PrepareEpochFence,
        Self::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::PrepareEpochFence => "PrepareEpochFence",
            Self::Dead => "Dead",
        }
    }

    /// PrepareCommit or PrepareAbort: the decision is logged, the markers are not done.
    pub fn is_preparing(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort)
    }

    /// Empty, CompleteCommit or CompleteAbort: no transaction in progress.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            Self::Empty | Self::CompleteCommit | Self::CompleteAbort
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ListTransactions state filter (or a log record) names a state Kafka does not have.
/// ListTransactions answers such names in `unknown_state_filters`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transaction state {name:?}")]
pub struct UnknownTxnState {
    pub name: String,
}

impl FromStr for TxnState {
    type Err = UnknownTxnState;

    /// Exact names, as Kafka's `TransactionState.fromName`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| UnknownTxnState {
                name: name.to_owned(),
            })
    }
}

/// Something a transaction writes to: a partition (AddPartitionsToTxn) or a group's
/// offsets (AddOffsetsToTxn; Kafka adds the group's `__consumer_offsets` partition).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnMember {
    Partition(TopicPartition),
    Group(String),
}

/// InitProducerId, any version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitRequest {
    /// `None` for an idempotent, non-transactional producer: it gets a fresh producer id
    /// and nothing is remembered. `Some("")` is refused (INVALID_REQUEST), as in Kafka.
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    /// KIP-360 (v3+): the producer id and epoch the producer has, when it re-initializes
    /// to recover from an error; both -1 otherwise.
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// A successful InitProducerId answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitResult {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// What the broker must do after a call, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutput {
    /// Append this record to the transaction log (key: its transactional id) and make it
    /// durable before carrying out the next output and before answering the request. A
    /// record in state [`TxnState::Dead`] is a tombstone.
    PersistState(TxnRecord),
    /// Write a control batch (COMMIT if `commit`, else ABORT) with this producer id and
    /// epoch to every partition, and commit (or discard) the producer's pending
    /// TxnOffsetCommits in every group. Then call [`super::TxnCoordinator::markers_written`].
    /// A partition that no longer exists is skipped; any other failure is retried until it
    /// succeeds, because the transaction stays in Prepare* until then.
    WriteMarkers {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        /// In partition order.
        partitions: Vec<TopicPartition>,
        /// In group id order.
        groups: Vec<String>,
    },
}

/// DescribeTransactions for one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnDescription {
    /// TRANSACTIONAL_ID_NOT_FOUND for an unknown id, COORDINATOR_LOAD_IN_PROGRESS while
    /// loading; the other fields are then -1, Dead and empty.
    pub error: ErrorCode,
    pub transactional_id: String,
    pub state: TxnState,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the current (or last) transaction started; `None` (the wire's -1) if none has
    /// since the last InitProducerId.
    pub txn_start_ms: Option<u64>,
    /// In partition order. Empty once a transaction completes.
    pub partitions: Vec<TopicPartition>,
    /// Groups added with AddOffsetsToTxn, in order. Kafka lists each as the group's
    /// `__consumer_offsets` partition; the broker may do the same.
    pub groups: Vec<String>,
}

/// One transactional id in ListTransactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TxnState,
}
