//! The broker side of transactions: one transaction coordinator shard. Runs
//! `weir_coordinator::txn::TxnCoordinator`, keeps its state durable in a transaction log,
//! writes commit/abort markers to every partition of a decided transaction and drives its
//! timers.
//!
//! The log is a `CoordinatorLog`: on a single node the node-local `meta/transactions`, every
//! id's; in cluster mode one `__transaction_state` partition led here (`txn_router.rs` routes
//! ids to shards and loads/unloads them with the leadership). Every answer waits until the
//! log is committed up to its end as of the call (fsynced; in cluster mode also past the high
//! watermark), so nothing a client is told can be lost by a crash or a failover. Markers are
//! written by a background task after the PrepareCommit/PrepareAbort record is committed,
//! carrying the coordinator epoch (the shard's leader epoch, 0 on a single node); a load
//! (`recover`) re-sends the markers of every transaction that was being decided, so a
//! coordinator killed mid-transaction is completed or aborted by its successor.

use std::collections::HashSet;
#[cfg(test)]
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};
use weir_coordinator::txn::{TxnConfig, TxnCoordinator, TxnOutput, TxnRecord};
use weir_coordinator::ErrorCode;
use weir_storage::{Log, Recovery, StorageError};

use crate::coordinator_log::CoordinatorLog;
use crate::groups::GroupsError;
use crate::state::State;

fn now_ms() -> u64 {
    u64::try_from(crate::server::now_ms()).unwrap_or(0)
}

/// Why a transaction coordinator call was not carried out. Every variant is retriable for
/// the client (the handlers answer COORDINATOR_NOT_AVAILABLE).
#[derive(Debug, thiserror::Error)]
pub enum TxnsError {
    #[error("transaction log: {0}")]
    Storage(#[from] StorageError),
    /// A write to the transaction log failed and the coordinator's memory was dropped;
    /// it answers nothing until it has been rebuilt from the log (never, if the log was
    /// poisoned by a failed fsync: then only a restart rebuilds it).
    #[error("transaction coordinator unavailable until it is rebuilt from its log")]
    Unavailable,
    /// The shard was unloaded (its `__transaction_state` partition is no longer led here):
    /// the client asks FindCoordinator again. Kafka's NOT_COORDINATOR.
    #[error("this broker no longer coordinates the transactional id")]
    NotCoordinator,
    /// The shard's log was not committed in time (the ISR is below min.insync.replicas, or
    /// followers lag): the answer is not given; the shard is kept and the next answer waits
    /// past it.
    #[error("transaction log not committed: {0}")]
    Uncommitted(#[source] GroupsError),
}

impl TxnsError {
    /// The Kafka error code a client is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            TxnsError::NotCoordinator => ErrorCode::NOT_COORDINATOR,
            _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        }
    }

    fn from_log(e: GroupsError) -> TxnsError {
        match e {
            GroupsError::NotCoordinator => TxnsError::NotCoordinator,
            GroupsError::Storage(e) => TxnsError::Storage(e),
            e => TxnsError::Uncommitted(e),
        }
    }
}

pub struct Txns {
    /// The state machine; its calls and the appends of their records happen under it.
    coordinator: Mutex<TxnCoordinator>,
    config: TxnConfig,
    log: CoordinatorLog,
    /// The epoch markers carry: the shard partition's leader epoch (0 on a single node).
    /// A partition refuses markers from an older one (TRANSACTION_COORDINATOR_FENCED).
    coordinator_epoch: i32,
    /// Set once the shard is unloaded: every call answers NOT_COORDINATOR, the timer and
    /// the marker tasks stop (the next coordinator's load re-sends the markers).
    unloaded: AtomicBool,
    /// Set when a failed write dropped the coordinator's memory and the rebuild from the log
    /// has not succeeded yet; every call is refused meanwhile.
    broken: AtomicBool,
    /// Transactional ids whose marker task is running, so that a rebuild, which re-issues
    /// the markers of every decided transaction, does not start a second task for them.
    /// Changed only under the coordinator lock.
    marking: Mutex<HashSet<String>>,
    /// Wakes the timer task when a call may have moved the next deadline.
    timer: Notify,
    /// Woken whenever a transaction completes (every marker written).
    completed: Notify,
}

/// Replays the transaction log into a new, not yet recovered, coordinator.
fn replay(log: &Log, config: &TxnConfig) -> Result<TxnCoordinator, GroupsError> {
    let mut coordinator = TxnCoordinator::new(config.clone());
    crate::internal_log::replay(log, |r| {
        let value = r.value.unwrap_or_default();
        let record = TxnRecord::decode(&value).map_err(|e| GroupsError::Corrupt {
            offset: r.offset,
            message: e.to_string(),
        })?;
        coordinator.load(record);
        Ok(())
    })?;
    Ok(coordinator)
}

impl Txns {
    /// Opens the single node's transaction log and replays it. `recover` must be called once
    /// the broker's state exists, to finish transactions that were being decided.
    pub fn open(
        data_dir: &std::path::Path,
        recovery: Recovery,
        config: TxnConfig,
    ) -> Result<Txns, GroupsError> {
        let log = crate::internal_log::open(data_dir, "transactions", recovery)?;
        Txns::load(CoordinatorLog::Local(log), 0, config)
    }

    /// Cluster mode: replays `__transaction_state` partition `partition`, led here under
    /// `leader_epoch` (on the blocking pool). `recover` serves it.
    pub fn load_shard(
        partition: Arc<crate::partition::Partition>,
        leader_epoch: i32,
        config: TxnConfig,
    ) -> Result<Txns, GroupsError> {
        let log = CoordinatorLog::Shard {
            partition,
            leader_epoch,
        };
        Txns::load(log, leader_epoch, config)
    }

    fn load(
        log: CoordinatorLog,
        coordinator_epoch: i32,
        config: TxnConfig,
    ) -> Result<Txns, GroupsError> {
        let coordinator = replay(log.log(), &config)?;
        Ok(Txns {
            coordinator: Mutex::new(coordinator),
            config,
            log,
            coordinator_epoch,
            unloaded: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            marking: Mutex::new(HashSet::new()),
            timer: Notify::new(),
            completed: Notify::new(),
        })
    }

    /// Stops serving (the shard partition is no longer led here under its epoch).
    pub fn unload(&self) {
        let _c = self.lock();
        self.unloaded.store(true, Ordering::Release);
        self.timer.notify_one();
        self.completed.notify_waiters();
    }

    /// Whether this shard still serves (always, on a single node).
    pub fn is_live(&self) -> bool {
        !self.unloaded.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, TxnCoordinator> {
        self.coordinator.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn marking(&self) -> MutexGuard<'_, HashSet<String>> {
        self.marking.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` on the coordinator, persists and schedules its outputs, and returns once
    /// the transaction log is durable up to its end as of the call.
    pub async fn call<T>(
        self: &Arc<Self>,
        state: &Arc<State>,
        call: impl FnOnce(&mut TxnCoordinator, u64) -> (Vec<TxnOutput>, T),
    ) -> Result<T, TxnsError> {
        let (value, end) = {
            let mut c = self.lock();
            if !self.is_live() {
                return Err(TxnsError::NotCoordinator);
            }
            if self.broken.load(Ordering::Acquire) {
                return Err(TxnsError::Unavailable);
            }
            let (outputs, value) = call(&mut c, now_ms());
            self.apply(state, &mut c, outputs)?;
            (value, self.log.log_end_offset())
        };
        self.timer.notify_one();
        self.make_durable(state, end).await?;
        Ok(value)
    }

    /// Waits until the transaction log is committed up to `end`.
    ///
    /// Single node: fsyncs it. A failure poisons the log (a failed fsync is never retried),
    /// so the coordinator, whose memory may hold records that are now lost, is dropped.
    /// Cluster: waits for the high watermark and the leader's fsync; a timeout keeps the
    /// shard (its memory equals its local log, and the next answer waits past it), a lost
    /// leadership unloads it.
    async fn make_durable(self: &Arc<Self>, state: &Arc<State>, end: i64) -> Result<(), TxnsError> {
        match &self.log {
            CoordinatorLog::Local(log) => {
                if let Err(e) = tokio::task::block_in_place(|| log.flush_to(end)) {
                    self.rebuild(state, &mut self.lock(), &e);
                    return Err(e.into());
                }
                Ok(())
            }
            CoordinatorLog::Shard { .. } => match self.log.wait_committed(end).await {
                Ok(()) => Ok(()),
                Err(GroupsError::NotCoordinator) => {
                    self.unload();
                    Err(TxnsError::NotCoordinator)
                }
                Err(e) => Err(TxnsError::from_log(e)),
            },
        }
    }

    /// Carries out outputs under the coordinator lock. If a record cannot be appended, the
    /// coordinator has already applied it in memory: it is rebuilt from the log before
    /// the lock is released, so no later call is answered from state the log lacks.
    fn apply(
        self: &Arc<Self>,
        state: &Arc<State>,
        c: &mut TxnCoordinator,
        outputs: Vec<TxnOutput>,
    ) -> Result<(), TxnsError> {
        self.persist(state, outputs, Duration::ZERO).map_err(|e| {
            if matches!(e, TxnsError::NotCoordinator) {
                // The shard moved: no rebuild, it is unloaded.
                self.unloaded.store(true, Ordering::Release);
            } else {
                self.rebuild(state, c, &e);
            }
            e
        })
    }

    /// Appends records and starts marker writers (after the records are durable and
    /// `delay` has passed).
    fn persist(
        self: &Arc<Self>,
        state: &Arc<State>,
        outputs: Vec<TxnOutput>,
        delay: Duration,
    ) -> Result<(), TxnsError> {
        let mut markers = Vec::new();
        for out in outputs {
            match out {
                TxnOutput::PersistState(record) => self.append(&record)?,
                w @ TxnOutput::WriteMarkers { .. } => markers.push(w),
            }
        }
        if markers.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = markers.iter().filter_map(marker_id).collect();
        self.marking().extend(ids.iter().cloned());
        let end = self.log.log_end_offset();
        let state = state.clone();
        let txns = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if !txns.committed_for_markers(&state, end, &ids).await {
                return;
            }
            for m in markers {
                write_markers(&state, &txns, m).await;
            }
        });
        Ok(())
    }

    /// Waits, before markers are written, until the decision is committed in the log up to
    /// `end`; false (the markers of `ids` left to a rebuild or the next coordinator) when it
    /// cannot be.
    async fn committed_for_markers(
        self: &Arc<Self>,
        state: &Arc<State>,
        end: i64,
        ids: &[String],
    ) -> bool {
        let failure = match &self.log {
            CoordinatorLog::Local(log) => match tokio::task::block_in_place(|| log.flush_to(end)) {
                Ok(()) => return true,
                Err(e) => e.to_string(),
            },
            CoordinatorLog::Shard { .. } => loop {
                match self.log.wait_committed(end).await {
                    Ok(()) => return true,
                    Err(GroupsError::NotCoordinator) => {
                        self.unload();
                        break "the shard moved".to_owned();
                    }
                    // Under min ISR: the decision waits for its replicas while the shard
                    // lasts.
                    Err(e) if self.is_live() => {
                        tracing::warn!(error = %e, "transaction decision not committed yet; waiting");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => break e.to_string(),
                }
            },
        };
        tracing::error!(error = %failure, "transaction log not committed; markers not written");
        let mut c = self.lock();
        self.marking().retain(|id| !ids.contains(id));
        if self.is_live() {
            self.rebuild(state, &mut c, &failure);
        }
        false
    }

    fn append(&self, record: &TxnRecord) -> Result<(), TxnsError> {
        let key = Bytes::copy_from_slice(record.key().as_bytes());
        self.log
            .append([(key, Some(Bytes::from(record.encode())))])
            .map_err(TxnsError::from_log)?;
        Ok(())
    }

    /// Replaces the coordinator, whose memory may be ahead of the log after a failed write,
    /// with a replay of the log, as at start-up. Called with the coordinator lock held.
    ///
    /// If the log is poisoned (a failed fsync: records the kernel reported lost may still
    /// read back from the page cache, so replaying them would treat them as safe), or the
    /// replay fails, the coordinator stays unavailable: the timer retries a failed replay,
    /// a poisoned log waits for a restart.
    fn rebuild(
        self: &Arc<Self>,
        state: &Arc<State>,
        c: &mut TxnCoordinator,
        cause: &dyn std::fmt::Display,
    ) {
        *c = TxnCoordinator::new(self.config.clone());
        self.broken.store(true, Ordering::Release);
        if self.log.is_poisoned() {
            tracing::error!(error = %cause, "transaction log poisoned; the transaction coordinator is unavailable until the broker restarts");
            return;
        }
        tracing::warn!(error = %cause, "transaction log write failed; rebuilding the transaction coordinator from its log");
        let mut fresh = match replay(self.log.log(), &self.config) {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::error!(error = %e, "rebuilding the transaction coordinator failed; retrying");
                return;
            }
        };
        let mut outputs = fresh.recover(now_ms());
        {
            // Their running tasks will complete them on the rebuilt coordinator.
            let running = self.marking();
            outputs.retain(|o| marker_id(o).is_none_or(|id| !running.contains(&id)));
        }
        *c = fresh;
        // Re-issued markers wait a little: if it was their completion that failed to append,
        // they do not spin while the disk is still failing.
        match self.persist(state, outputs, Duration::from_millis(200)) {
            Ok(()) => {
                self.broken.store(false, Ordering::Release);
                tracing::info!("transaction coordinator rebuilt from its log");
            }
            Err(e) => {
                *c = TxnCoordinator::new(self.config.clone());
                tracing::error!(error = %e, "rebuilding the transaction coordinator failed; retrying");
            }
        }
    }

    /// The transaction log (fault-injection tests reach it through this).
    #[cfg(test)]
    pub(crate) fn log(&self) -> &Log {
        self.log.log()
    }

    /// Every transaction as the coordinator holds it, or None while it is unavailable.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Option<Vec<weir_coordinator::txn::TxnDescription>> {
        let c = self.lock();
        if self.broken.load(Ordering::Acquire) {
            return None;
        }
        let ids: Vec<String> = c
            .list(&[], &[])
            .ok()?
            .into_iter()
            .map(|l| l.transactional_id)
            .collect();
        Some(c.describe(&ids))
    }

    /// What a broker started on this log would hold: a replay of it, recovered (without
    /// carrying out the recovery's marker writes).
    #[cfg(test)]
    pub(crate) fn replayed_snapshot(&self) -> Vec<weir_coordinator::txn::TxnDescription> {
        let data_dir = self.log.log().dir().parent().and_then(Path::parent);
        let fresh = Txns::open(
            data_dir.expect("data dir"),
            Recovery::Scan,
            self.config.clone(),
        )
        .expect("open");
        let _ = fresh.lock().recover(0);
        fresh.snapshot().expect("loaded")
    }

    /// Waits until `transactional_id` is no longer writing markers, or `limit` passes.
    ///
    /// EndTxn waits for this before answering, although the decision is already durable:
    /// a client that commits and then reads (or begins its next transaction) finds every
    /// marker written, instead of meeting CONCURRENT_TRANSACTIONS and backing off for a
    /// whole retry interval (librdkafka waits 100 ms before retrying AddOffsetsToTxn).
    pub async fn wait_completed(&self, transactional_id: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let ids = [transactional_id.to_owned()];
        loop {
            let notified = self.completed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let preparing = self
                .lock()
                .describe(&ids)
                .first()
                .is_some_and(|d| d.state.is_preparing());
            if !preparing || !self.is_live() {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    transactional_id,
                    "markers still being written; answering EndTxn anyway"
                );
                return;
            }
        }
    }

    /// DescribeTransactions.
    pub fn describe(
        &self,
        transactional_ids: &[String],
    ) -> Vec<weir_coordinator::txn::TxnDescription> {
        self.lock().describe(transactional_ids)
    }

    /// ListTransactions; with `min_duration_ms`, only transactions open for longer.
    pub fn list(
        &self,
        states: &[weir_coordinator::txn::TxnState],
        producer_ids: &[i64],
        min_duration_ms: Option<u64>,
    ) -> Result<Vec<weir_coordinator::txn::TxnListing>, weir_coordinator::txn::TxnError> {
        let c = self.lock();
        let listed = c.list(states, producer_ids)?;
        let Some(min) = min_duration_ms else {
            return Ok(listed);
        };
        let now = now_ms();
        let ids: Vec<String> = listed.iter().map(|l| l.transactional_id.clone()).collect();
        let long_running: std::collections::HashSet<String> = c
            .describe(&ids)
            .into_iter()
            .filter(|d| {
                d.txn_start_ms
                    .is_some_and(|start| now.saturating_sub(start) > min)
            })
            .map(|d| d.transactional_id)
            .collect();
        Ok(listed
            .into_iter()
            .filter(|l| long_running.contains(&l.transactional_id))
            .collect())
    }

    /// KIP-890 verification: whether the producer's transaction is Ongoing under this
    /// producer id and epoch and holds a member `holds` accepts (see
    /// `TxnCoordinator::verify`).
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        holds: impl Fn(&weir_coordinator::txn::TxnMember) -> bool,
    ) -> Result<(), weir_coordinator::txn::TxnError> {
        self.lock()
            .verify(transactional_id, producer_id, producer_epoch, holds)
    }

    /// Finishes transactions that were being decided when the broker stopped (single node)
    /// or the shard's previous coordinator lost it (cluster mode); from now on requests are
    /// served.
    pub fn recover(self: &Arc<Self>, state: &Arc<State>) -> Result<(), TxnsError> {
        let mut c = self.lock();
        let outputs = c.recover(now_ms());
        self.apply(state, &mut c, outputs)
    }

    /// Calls `tick` at the coordinator's deadlines until stopped or unloaded.
    pub async fn run_timer(self: Arc<Self>, state: Arc<State>, mut stop: broadcast::Receiver<()>) {
        let txns = self;
        loop {
            if !txns.is_live() {
                return;
            }
            let wait = txns
                .lock()
                .next_deadline()
                .map(|d| Duration::from_millis(d.saturating_sub(now_ms())))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            tokio::select! {
                _ = stop.recv() => return,
                _ = txns.timer.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            let applied = {
                let mut c = txns.lock();
                if txns.broken.load(Ordering::Acquire) && !txns.log.is_poisoned() {
                    txns.rebuild(&state, &mut c, &"an earlier rebuild failed");
                }
                let outputs = c.tick(now_ms());
                txns.apply(&state, &mut c, outputs)
            };
            if let Err(e) = applied {
                tracing::error!(error = %e, "transaction timer could not persist");
            }
        }
    }

    /// Closes the single node's log (a shard's partition is closed with its topic).
    pub fn close(&self) -> Result<(), StorageError> {
        match &self.log {
            CoordinatorLog::Local(log) => log.close(),
            CoordinatorLog::Shard { .. } => Ok(()),
        }
    }
}

impl crate::shards::Shard for Txns {
    fn unload(&self) {
        Txns::unload(self);
    }
}

/// Writes one decision's markers to every partition (`crate::txn_markers`, wherever each is
/// led), then tells the coordinator.
async fn write_markers(state: &Arc<State>, txns: &Arc<Txns>, out: TxnOutput) {
    let Some(transactional_id) = marker_id(&out) else {
        return;
    };
    let commit = matches!(out, TxnOutput::WriteMarkers { commit: true, .. });
    let live = || txns.is_live();
    if !crate::txn_markers::write_all(state, &out, txns.coordinator_epoch, &live).await {
        let _c = txns.lock();
        txns.marking().remove(&transactional_id);
        txns.completed.notify_waiters();
        return;
    }
    let result = {
        let mut c = txns.lock();
        // Under the lock: a rebuild after a failed append of the completion must find this
        // transaction no longer being marked, and re-issue its markers.
        txns.marking().remove(&transactional_id);
        c.markers_written(now_ms(), &transactional_id)
            .map_err(|e| e.to_string())
            .and_then(|outputs| {
                txns.apply(state, &mut c, outputs)
                    .map_err(|e| e.to_string())
            })
    };
    match result {
        Ok(()) => state.metrics.transaction_completed(commit),
        Err(e) => {
            tracing::error!(transactional_id, error = %e, "completing a transaction failed")
        }
    }
    txns.completed.notify_waiters();
}

/// The transactional id of a `WriteMarkers` output.
fn marker_id(out: &TxnOutput) -> Option<String> {
    match out {
        TxnOutput::WriteMarkers {
            transactional_id, ..
        } => Some(transactional_id.clone()),
        TxnOutput::PersistState(_) => None,
    }
}
