//! One partition replica: the only way the broker reaches a partition's log.
//!
//! Produce, Fetch, ListOffsets, DeleteRecords, transaction markers and the background tasks all
//! go through [`Partition`], whose API speaks typed Rust (no Kafka message types) so that
//! in-process users (a stream engine, replication) get the same semantics as the wire:
//!
//! - **Append** ([`Partition::append`]): the log append, then the durability decision of the
//!   broker's policy for the producer's acks; the fsync wait is [`Durable::wait`].
//! - **Read** ([`Partition::read`]): whole batches below the high watermark, or below the last
//!   stable offset for read_committed with the aborted transactions they overlap, sized by
//!   KIP-74's rule ([`ReadSpec::min_one_batch`]).
//! - **Watch** ([`Partition::version`], [`any_changed`]): every change a fetch could see (an
//!   append, a marker moving the last stable offset, deletion, shutdown) bumps the partition's
//!   version and wakes only the fetches parked on this partition.
//!
//! - **Role** ([`Role`], `partition/role.rs`): leader alone (every partition of a single node:
//!   the high watermark is the log end), leader of a replicated partition (the high watermark
//!   comes from `weir_replication::LeaderState`, and acks=all waits for it, [`AckWait`]),
//!   follower, or not a replica. Roles only move forward in leader epochs.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::Bytes;
use tokio::sync::futures::Notified;
use tokio::sync::{watch, Notify};
use weir_replication::LeaderState;
use weir_storage::batch::{Batches, Check};
use weir_storage::{
    AbortedTxn, ActiveProducer, AppendInfo, Log, LogConfig, Marker, RetentionOutcome, StorageError,
};

use crate::config::Durability;

mod role;
mod verify;

pub use role::{AckWait, HwWait};

/// What this broker is for the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes appends from producers and serves reads.
    Leader,
    /// Copies the leader's batches, offsets included ([`Partition::append_as_follower`]),
    /// and learns the high watermark from it; serves no reads.
    Follower,
    /// Not among the partition's replicas (yet, or any more): serves nothing.
    NotReplica,
}

/// Which records a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Everything below the last stable offset, with the aborted transactions in range.
    ReadCommitted,
}

/// The acknowledgement a producer asked for (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no answer at all.
    None,
    /// `acks=1`: the leader has the records.
    Leader,
    /// `acks=all` (-1): every in-sync replica has them.
    All,
}

impl Acks {
    /// Kafka's wire value; `None` for anything but -1, 0 and 1.
    pub fn from_wire(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// Why a partition operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The topic was deleted after the caller looked the partition up.
    #[error("the partition was deleted")]
    Deleted,
    /// The broker is shutting down.
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// The operation needs the other role (a producer append on a follower, say).
    #[error("this replica is the {role:?}, not the one this operation needs")]
    WrongRole { role: Role },
    /// The caller knows a newer leader epoch than this replica.
    #[error("leader epoch {requested} is newer than this replica's {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    /// The caller's leader epoch is older than this replica's.
    #[error("leader epoch {requested} is older than this replica's {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("the fsync task failed: {0}")]
    FlushTask(#[source] tokio::task::JoinError),
    /// acks=all on a leader whose ISR is below `min.insync.replicas`: nothing was appended.
    #[error("the ISR has {isr} replicas, below min.insync.replicas {min}")]
    NotEnoughReplicas { isr: usize, min: usize },
    /// The records were appended, but the ISR fell below `min.insync.replicas` before they
    /// were committed.
    #[error("appended, but the ISR fell below min.insync.replicas {min} before the high watermark passed offset {offset}")]
    NotEnoughReplicasAfterAppend { offset: i64, min: usize },
    /// The high watermark did not pass the records within the produce's timeout.
    #[error("the high watermark did not pass offset {offset} within {timeout_ms} ms")]
    ReplicationTimeout { offset: i64, timeout_ms: u64 },
    /// The replicated leader's state refused the input (metadata naming another leader).
    #[error(transparent)]
    Replication(#[from] weir_replication::LeaderError),
    /// A transactional batch of a producer with no open transaction here whose
    /// verification (KIP-890) did not hold: its transaction was decided before the append.
    #[error("producer {producer_id} has no verified transaction on this partition")]
    TxnNotVerified { producer_id: i64 },
}

impl PartitionError {
    /// The request was at fault (a bad batch, a fenced producer), not the broker.
    pub fn is_client_fault(&self) -> bool {
        match self {
            PartitionError::Storage(e) => e.is_client_fault(),
            PartitionError::UnknownLeaderEpoch { .. }
            | PartitionError::FencedLeaderEpoch { .. } => true,
            // Not the request's fault, but an answer Kafka gives as a matter of course, not
            // a broker failure.
            PartitionError::NotEnoughReplicas { .. } => true,
            PartitionError::TxnNotVerified { .. } => true,
            _ => false,
        }
    }
}

/// What a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSpec {
    pub offset: i64,
    /// Bytes of record batches at most, unless `min_one_batch` lets the first batch exceed it.
    pub max_bytes: usize,
    /// KIP-74: return the first batch whole even when it alone is larger than `max_bytes`.
    /// Kafka grants this to the first partition of a Fetch that returns data, so that a
    /// batch larger than every limit still makes progress; every other partition gets a
    /// hard limit.
    pub min_one_batch: bool,
    pub isolation: Isolation,
    /// The leader epoch the reader knows, checked against this replica's when given.
    pub leader_epoch: Option<i32>,
}

/// The offsets a reader is told beside its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

/// What [`Partition::read`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole record batches as stored, starting with the one holding the offset; empty at the
    /// end of what the isolation level may see.
    pub records: Bytes,
    pub watermarks: Watermarks,
    /// Read committed: the aborted transactions overlapping the records, oldest first.
    pub aborted: Option<Vec<AbortedTxn>>,
}

/// A successful append, and the durability still owed before the producer may be answered.
#[derive(Debug)]
pub struct Appended {
    pub info: AppendInfo,
    /// The fsync and the replication the producer's acks still wait for.
    pub wait: AckWait,
}

/// An offset that must be fsynced before an answer. Appends of other producers share the
/// fsync (the log's group commit).
#[derive(Debug)]
pub struct Durable {
    partition: Arc<Partition>,
    offset: i64,
}

impl Durable {
    /// Starts the fsync on the blocking pool at once (so several partitions' fsyncs run in
    /// parallel) and returns its completion: every offset below the append's end is on disk.
    /// A failed fsync poisons the partition: this and every later append fail.
    pub fn wait(self) -> impl Future<Output = Result<(), PartitionError>> {
        let Durable { partition, offset } = self;
        let flush = tokio::task::spawn_blocking(move || partition.flush_to(offset));
        async move { flush.await.map_err(PartitionError::FlushTask)? }
    }
}

const OPEN: u8 = 0;
const DELETED: u8 = 1;
const SHUTTING_DOWN: u8 = 2;

/// `Partition::role`: one atomic load tells the hot paths what to do.
const LEADER_ALONE: u8 = 0;
const LEADER_REPLICATED: u8 = 1;
const FOLLOWER: u8 = 2;
const NOT_REPLICA: u8 = 3;

/// One partition replica of a topic.
pub struct Partition {
    index: i32,
    log: Log,
    /// `LEADER_ALONE`, `LEADER_REPLICATED`, `FOLLOWER` or `NOT_REPLICA`; changed only under
    /// `replication`'s lock.
    role: AtomicU8,
    leader_epoch: AtomicI32,
    /// The leader this follower copies (-1 when unknown or not a follower).
    leader_id: AtomicI32,
    /// The high watermark unless the replica leads alone (then it is the log end): a
    /// follower's as its leader last reported it, a replicated leader's as its
    /// `LeaderState` computed it; read at start from the checkpoint.
    high_watermark: AtomicI64,
    /// The replicated leader's state; None in every other role.
    replication: Mutex<Option<LeaderState>>,
    /// Bumped when a replicated leader's high watermark, ISR or role changes: acks=all
    /// produces waiting for the high watermark ([`HwWait`]) wait here.
    hw_events: watch::Sender<u64>,
    /// `OPEN`, `DELETED` or `SHUTTING_DOWN`.
    status: AtomicU8,
    /// Bumped after every change a reader could see; read before a read, compared after.
    version: AtomicU64,
    /// The fetches parked on this partition (and only those) wait here.
    changed: Notify,
    /// Transactional batches being verified with their coordinator (KIP-890, `verify.rs`):
    /// a marker clears its producer's guard. Held across the append of a transactional batch
    /// and of a marker, so the check and the write are one step.
    txn_guards: Mutex<crate::txn_guard::Guards>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("index", &self.index)
            .field("dir", &self.log.dir())
            .field("role", &self.role())
            .finish_non_exhaustive()
    }
}

impl Partition {
    /// The leader replica of partition `index` over `log` (on one node, every replica).
    /// Its epoch is the newest the log knows (0 for a new log), so that epochs survive a
    /// restart.
    pub fn leader(index: i32, log: Log) -> Partition {
        let epoch = log.leader_epoch();
        Partition::new(index, log, LEADER_ALONE, epoch)
    }

    /// A follower replica of partition `index` under the leader of `leader_epoch`.
    pub fn follower(index: i32, log: Log, leader_epoch: i32) -> Partition {
        Partition::new(index, log, FOLLOWER, leader_epoch)
    }

    /// A replica whose role metadata has not given yet (cluster mode at start): serves
    /// nothing until [`Partition::become_replicated_leader`] or
    /// [`Partition::become_follower`]. Its high watermark starts at `checkpointed` (the
    /// replication-offset-checkpoint's, 0 when it has none).
    pub fn unassigned(index: i32, log: Log, checkpointed: i64) -> Partition {
        let epoch = log.leader_epoch();
        let p = Partition::new(index, log, NOT_REPLICA, epoch);
        p.high_watermark.store(checkpointed, Ordering::Release);
        p
    }

    fn new(index: i32, log: Log, role: u8, leader_epoch: i32) -> Partition {
        Partition {
            index,
            log,
            role: AtomicU8::new(role),
            leader_epoch: AtomicI32::new(leader_epoch),
            leader_id: AtomicI32::new(-1),
            high_watermark: AtomicI64::new(0),
            replication: Mutex::new(None),
            hw_events: watch::Sender::new(0),
            status: AtomicU8::new(OPEN),
            version: AtomicU64::new(0),
            changed: Notify::new(),
            txn_guards: Mutex::default(),
        }
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn role(&self) -> Role {
        role_of(self.role.load(Ordering::Acquire))
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The partition's directory.
    pub fn dir(&self) -> &std::path::Path {
        self.log.dir()
    }

    /// Appends a producer's record batches (control batches are refused: only the broker
    /// writes markers) and says whether `acks` under `policy` must wait for an fsync.
    pub fn append(
        self: &Arc<Self>,
        batches: &mut [u8],
        acks: Acks,
        policy: Durability,
        now_ms: i64,
    ) -> Result<Appended, PartitionError> {
        self.check_open()?;
        let (info, replicated) = match self.role.load(Ordering::Acquire) {
            LEADER_ALONE => (self.log.append_from_client(batches, now_ms)?, None),
            LEADER_REPLICATED => self.append_replicated(batches, acks, now_ms)?,
            role => {
                return Err(PartitionError::WrongRole {
                    role: role_of(role),
                })
            }
        };
        self.changed();
        let wait = match policy {
            Durability::AcksAll => acks == Acks::All,
            Durability::Always => acks != Acks::None,
            Durability::None => false,
        };
        let fsync = wait.then(|| Durable {
            partition: self.clone(),
            offset: info.last_offset + 1,
        });
        Ok(Appended {
            info,
            wait: AckWait { fsync, replicated },
        })
    }

    /// Appends and fsyncs a transaction marker for `producer_id` (blocking: run it off the
    /// async runtime). A marker moves the last stable offset, so read_committed fetches parked
    /// here wake up.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        self.check_open()?;
        self.check_leader()?;
        let info = {
            let mut guards = self.guards();
            guards.clear(producer_id);
            self.log.append_marker(
                producer_id,
                producer_epoch,
                marker,
                coordinator_epoch,
                now_ms,
            )?
        };
        self.leader_appended(info.last_offset + 1);
        self.changed();
        self.flush_to(info.last_offset + 1)?;
        Ok(info)
    }

    /// A follower's append of batches its leader wrote, offsets, timestamps and producer
    /// state included (blocking). The first batch must start at this log's end.
    pub fn append_as_follower(
        &self,
        batches: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        self.check_open()?;
        let info = self.as_follower(|| Ok(self.log.append_replicated(batches, now_ms)?))?;
        self.changed();
        Ok(info)
    }

    /// This replica leads alone from `epoch` on (one replica: the high watermark is the log
    /// end): the epoch is recorded in the log's epoch cache at the log end (persisted) before
    /// later appends are stamped with it. An epoch older than the current one is
    /// FENCED_LEADER_EPOCH. Replicated partitions use
    /// [`Partition::become_replicated_leader`].
    pub fn become_leader(&self, epoch: i32) -> Result<(), PartitionError> {
        self.check_open()?;
        let mut replication = self.lock_replication();
        self.check_newer_epoch(epoch)?;
        self.log.set_leader_epoch(epoch)?;
        self.leader_epoch.fetch_max(epoch, Ordering::AcqRel);
        *replication = None;
        self.leader_id.store(-1, Ordering::Release);
        self.role.store(LEADER_ALONE, Ordering::Release);
        drop(replication);
        // Readers holding the old epoch must see the change.
        self.changed();
        self.hw_event();
        Ok(())
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` this leader's log knows
    /// and the offset where the next one starts (the log end for the current epoch); None is
    /// UNDEFINED. `current_leader_epoch` is checked as a read's is.
    pub fn end_offset_for_epoch(
        &self,
        current_leader_epoch: Option<i32>,
        epoch: i32,
    ) -> Result<Option<(i32, i64)>, PartitionError> {
        self.check_open()?;
        // Kafka's order: the epoch first, then the role.
        self.check_epoch(current_leader_epoch)?;
        self.check_leader()?;
        Ok(self.log.end_offset_for_epoch(epoch))
    }

    /// The epoch of the leader that wrote `offset` (-1 when none is known), for ListOffsets.
    pub fn epoch_for_offset(&self, offset: i64) -> i32 {
        self.log.epoch_for_offset(offset).unwrap_or(-1)
    }

    /// Checks a request's `current_leader_epoch` (None or negative: not given): newer than
    /// this replica's is UNKNOWN_LEADER_EPOCH, older is FENCED_LEADER_EPOCH; then that this
    /// replica leads (NOT_LEADER_OR_FOLLOWER), as ListOffsets needs.
    pub fn check_leader_epoch(&self, requested: Option<i32>) -> Result<(), PartitionError> {
        self.check_epoch(requested)?;
        self.check_leader()
    }

    /// A follower cuts its log back to where it agrees with its leader (blocking): removes
    /// everything at and above `offset`; returns the new log end.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, PartitionError> {
        self.check_open()?;
        let end = self.as_follower(|| Ok(self.log.truncate_to(offset)?))?;
        self.changed();
        Ok(end)
    }

    /// A follower learns its leader's high watermark (never past its own log end). Ignored in
    /// any other role: a leader's high watermark is its own to compute, and a late answer of
    /// the old leader must not move it.
    pub fn set_follower_high_watermark(&self, high_watermark: i64) {
        if self.role.load(Ordering::Acquire) != FOLLOWER {
            return;
        }
        self.high_watermark
            .fetch_max(high_watermark, Ordering::AcqRel);
        self.changed();
    }

    /// Blocks until every offset below `offset` is fsynced.
    pub fn flush_to(&self, offset: i64) -> Result<(), PartitionError> {
        Ok(self.log.flush_to(offset)?)
    }

    /// Reads whole batches from `spec.offset` (blocking I/O: a positional read, usually from
    /// the page cache).
    pub fn read(&self, spec: &ReadSpec) -> Result<ReadResult, PartitionError> {
        self.check_open()?;
        self.check_epoch(spec.leader_epoch)?;
        self.check_leader()?;
        let out = if spec.min_one_batch {
            self.log.read(spec.offset, spec.max_bytes)?
        } else {
            self.log.read_at_most(spec.offset, spec.max_bytes)?
        };
        // Sampled with the read: the log end the read saw bounds what it returned.
        let high_watermark = self.high_watermark().min(out.log_end_offset);
        let stable = self.log.last_stable_offset().min(high_watermark);
        let watermarks = Watermarks {
            log_start_offset: out.log_start_offset,
            high_watermark,
            last_stable_offset: stable,
        };
        let (upper, committed) = match spec.isolation {
            Isolation::ReadUncommitted => (high_watermark, false),
            Isolation::ReadCommitted => (stable, true),
        };
        // Read uncommitted below the log end needs no walk of the batch headers; read
        // committed needs the end of the kept batches for its aborted list.
        let (records, end) = if !committed && upper >= out.log_end_offset {
            (out.records, None)
        } else {
            below(out.records, upper)
        };
        let aborted = committed.then(|| {
            end.map_or_else(Vec::new, |end| {
                self.log.aborted_transactions(spec.offset, end)
            })
        });
        Ok(ReadResult {
            records,
            watermarks,
            aborted,
        })
    }

    /// The offsets a reader would be told now.
    pub fn watermarks(&self) -> Watermarks {
        let high_watermark = self.high_watermark();
        Watermarks {
            log_start_offset: self.log.log_start_offset(),
            high_watermark,
            last_stable_offset: self.log.last_stable_offset().min(high_watermark),
        }
    }

    /// Below it every record is on every in-sync replica: on a leader alone (every partition
    /// on one node), the log end.
    pub fn high_watermark(&self) -> i64 {
        let end = self.log.log_end_offset();
        match self.role.load(Ordering::Acquire) {
            LEADER_ALONE => end,
            _ => self.high_watermark.load(Ordering::Acquire).min(end),
        }
    }

    /// Below it every transaction is decided (never above the high watermark).
    pub fn last_stable_offset(&self) -> i64 {
        self.log.last_stable_offset().min(self.high_watermark())
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// Bytes the partition's segments hold on disk (DescribeLogDirs, `weir topic describe`).
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// The log itself, for tests that inject storage faults under the partition.
    #[cfg(test)]
    pub(crate) fn log_for_tests(&self) -> &Log {
        &self.log
    }

    /// The log itself, for a coordinator shard's load: a new leader replays its whole log, up
    /// to its end and not only to the high watermark, since that log is the truth its
    /// followers truncate to (design §7.2).
    pub(crate) fn local_log(&self) -> &Log {
        &self.log
    }

    /// First offset whose timestamp is at least `ts`, with that timestamp (blocking I/O).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, PartitionError> {
        self.check_open()?;
        self.check_leader()?;
        Ok(self.log.offset_for_timestamp(ts)?)
    }

    /// The largest timestamp in the log and its offset.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.log.max_timestamp()
    }

    /// DeleteRecords: moves the log start to `offset` (blocking I/O); returns the new start.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, PartitionError> {
        self.check_open()?;
        self.check_leader()?;
        Ok(self.log.delete_records_before(offset)?)
    }

    /// The producers this partition remembers, for DescribeProducers.
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.log.active_producers()
    }

    /// Deletes whole segments past the retention limits (blocking I/O).
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome, PartitionError> {
        self.check_open()?;
        Ok(self.log.enforce_retention(now_ms)?)
    }

    /// How much the log needs compaction; `None` when it is not compacted or has nothing
    /// cleanable (blocking I/O: reads a batch header).
    pub fn cleanability(
        &self,
        now_ms: i64,
    ) -> Result<Option<weir_storage::cleaner::Cleanability>, PartitionError> {
        self.check_open()?;
        Ok(weir_storage::cleaner::cleanability(&self.log, now_ms)?)
    }

    /// One log cleaner pass over this partition (blocking I/O; see `weir_storage::cleaner`).
    pub fn clean(
        &self,
        cleaner: &mut weir_storage::cleaner::Cleaner,
        now_ms: i64,
    ) -> Result<Option<weir_storage::cleaner::CleanStats>, PartitionError> {
        self.check_open()?;
        Ok(cleaner.clean(&self.log, now_ms)?)
    }

    /// Fsyncs everything appended so far (blocking).
    pub fn flush_all(&self) -> Result<(), PartitionError> {
        Ok(self.log.flush_all()?)
    }

    pub fn set_config(&self, config: LogConfig) {
        self.log.set_config(config);
    }

    /// Flushes and closes the log at a clean stop (blocking).
    pub fn close(&self) -> Result<(), PartitionError> {
        Ok(self.log.close()?)
    }

    /// The topic was deleted: reads and appends fail from now on, and parked fetches wake to
    /// say so.
    pub fn mark_deleted(&self) {
        self.status.store(DELETED, Ordering::Release);
        self.changed();
        self.hw_event();
    }

    /// The broker is stopping: parked fetches wake and answer with what they have.
    pub fn begin_shutdown(&self) {
        let _ =
            self.status
                .compare_exchange(OPEN, SHUTTING_DOWN, Ordering::AcqRel, Ordering::Acquire);
        self.changed();
        self.hw_event();
    }

    /// A failed fsync poisoned the log: it refuses writes until a restart recovers it.
    pub fn is_poisoned(&self) -> bool {
        self.log.is_poisoned()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.status.load(Ordering::Acquire) == SHUTTING_DOWN
    }

    /// A number that changes after every change a reader could see. Take it before a read;
    /// [`any_changed`] then waits until it moves.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    fn check_open(&self) -> Result<(), PartitionError> {
        match self.status.load(Ordering::Acquire) {
            DELETED => Err(PartitionError::Deleted),
            _ => Ok(()),
        }
    }

    fn check_leader(&self) -> Result<(), PartitionError> {
        match self.role.load(Ordering::Acquire) {
            LEADER_ALONE | LEADER_REPLICATED => Ok(()),
            role => Err(PartitionError::WrongRole {
                role: role_of(role),
            }),
        }
    }

    fn check_follower(&self) -> Result<(), PartitionError> {
        match self.role.load(Ordering::Acquire) {
            FOLLOWER => Ok(()),
            role => Err(PartitionError::WrongRole {
                role: role_of(role),
            }),
        }
    }

    fn check_epoch(&self, requested: Option<i32>) -> Result<(), PartitionError> {
        let current = self.leader_epoch();
        match requested {
            Some(requested) if requested > current => {
                Err(PartitionError::UnknownLeaderEpoch { requested, current })
            }
            Some(requested) if requested >= 0 && requested < current => {
                Err(PartitionError::FencedLeaderEpoch { requested, current })
            }
            _ => Ok(()),
        }
    }
}

fn role_of(role: u8) -> Role {
    match role {
        LEADER_ALONE | LEADER_REPLICATED => Role::Leader,
        FOLLOWER => Role::Follower,
        _ => Role::NotReplica,
    }
}

/// Waits until the version of any of `watched` differs from the one given with it (taken
/// before the caller's last read). One future per partition inside this one task: a fetch
/// parked on many partitions costs no task per partition, and an append wakes only the
/// fetches parked on its partition.
pub async fn any_changed(watched: &[(&Partition, u64)]) {
    let mut waits: Vec<Pin<Box<Notified<'_>>>> = watched
        .iter()
        .map(|(p, _)| Box::pin(p.changed.notified()))
        .collect();
    // Registered before the versions are compared, so a change between the caller's read and
    // this point is seen by the comparison and one after it by the registration.
    for w in &mut waits {
        w.as_mut().enable();
    }
    if watched.iter().any(|(p, seen)| p.version() != *seen) {
        return;
    }
    poll_fn(|cx| {
        for w in &mut waits {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}

/// Cuts `records` before the first batch at or past `upper`; returns the kept bytes and the
/// offset after the last kept batch (None when nothing is kept).
fn below(records: Bytes, upper: i64) -> (Bytes, Option<i64>) {
    let mut cut = 0;
    let mut next = None;
    for b in Batches::new(&records, Check::Structure).flatten() {
        if b.header.base_offset >= upper {
            break;
        }
        cut = b.position + b.bytes.len();
        next = Some(b.header.base_offset + b.header.offset_count());
    }
    (records.slice(..cut), next)
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
