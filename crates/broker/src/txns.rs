//! The broker side of transactions: runs `weir_coordinator::txn::TxnCoordinator`, keeps its
//! state durable in a transaction log, writes commit/abort markers to every partition of a
//! decided transaction and drives its timers.
//!
//! Every answer waits until the transaction log is fsynced up to its end as of the call, so
//! nothing a client is told can be lost by a crash. Markers are written by a background task
//! after the PrepareCommit/PrepareAbort record is durable; at start-up `recover` re-sends the
//! markers of every transaction that was being decided, so a broker killed mid-transaction
//! completes or aborts it.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};
use weir_coordinator::txn::{TxnConfig, TxnCoordinator, TxnOutput, TxnRecord};
use weir_storage::{Log, Marker, Recovery, StorageError};

use crate::groups::GroupsError;
use crate::partition::PartitionError;
use crate::state::State;

fn now_ms() -> u64 {
    u64::try_from(crate::server::now_ms()).unwrap_or(0)
}

pub struct Txns {
    /// The state machine; its calls and the appends of their records happen under it.
    coordinator: Mutex<TxnCoordinator>,
    log: Log,
    /// Wakes the timer task when a call may have moved the next deadline.
    timer: Notify,
    /// Woken whenever a transaction completes (every marker written).
    completed: Notify,
}

impl Txns {
    /// Opens the transaction log and replays it. `recover` must be called once the broker's
    /// state exists, to finish transactions that were being decided.
    pub fn open(
        data_dir: &Path,
        recovery: Recovery,
        config: TxnConfig,
    ) -> Result<Txns, GroupsError> {
        let log = crate::internal_log::open(data_dir, "transactions", recovery)?;
        let mut coordinator = TxnCoordinator::new(config);
        crate::internal_log::replay(&log, |r| {
            let value = r.value.unwrap_or_default();
            let record = TxnRecord::decode(&value).map_err(|e| GroupsError::Corrupt {
                offset: r.offset,
                message: e.to_string(),
            })?;
            coordinator.load(record);
            Ok(())
        })?;
        Ok(Txns {
            coordinator: Mutex::new(coordinator),
            log,
            timer: Notify::new(),
            completed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TxnCoordinator> {
        self.coordinator.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` on the coordinator, persists and schedules its outputs, and returns once
    /// the transaction log is durable up to its end as of the call.
    pub async fn call<T>(
        &self,
        state: &Arc<State>,
        call: impl FnOnce(&mut TxnCoordinator, u64) -> (Vec<TxnOutput>, T),
    ) -> Result<T, StorageError> {
        let (value, end) = {
            let mut c = self.lock();
            let (outputs, value) = call(&mut c, now_ms());
            self.apply(state, outputs)?;
            (value, self.log.log_end_offset())
        };
        self.timer.notify_one();
        let log = &self.log;
        tokio::task::block_in_place(|| log.flush_to(end))?;
        Ok(value)
    }

    /// Appends records and starts marker writers (after the records are durable).
    fn apply(&self, state: &Arc<State>, outputs: Vec<TxnOutput>) -> Result<(), StorageError> {
        let mut markers = Vec::new();
        for out in outputs {
            match out {
                TxnOutput::PersistState(record) => self.append(&record)?,
                w @ TxnOutput::WriteMarkers { .. } => markers.push(w),
            }
        }
        if !markers.is_empty() {
            let end = self.log.log_end_offset();
            let state = state.clone();
            tokio::spawn(async move {
                let txns = state.txns.clone();
                let log = &txns.log;
                if let Err(e) = tokio::task::block_in_place(|| log.flush_to(end)) {
                    tracing::error!(error = %e, "transaction log fsync failed; markers not written");
                    return;
                }
                for m in markers {
                    write_markers(&state, m).await;
                }
            });
        }
        Ok(())
    }

    fn append(&self, record: &TxnRecord) -> Result<(), StorageError> {
        let key = Bytes::copy_from_slice(record.key().as_bytes());
        crate::internal_log::append(&self.log, [(key, Some(Bytes::from(record.encode())))])?;
        Ok(())
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
            if !preparing {
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

    /// Whether the producer's open transaction holds `member` (TxnOffsetCommit's check).
    pub fn verify_member(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member: &weir_coordinator::txn::TxnMember,
    ) -> Result<(), weir_coordinator::txn::TxnError> {
        self.lock()
            .verify_member(transactional_id, producer_id, producer_epoch, member)
    }

    /// Finishes transactions that were being decided when the broker stopped.
    pub fn recover(&self, state: &Arc<State>) -> Result<(), StorageError> {
        let outputs = self.lock().recover(now_ms());
        self.apply(state, outputs)
    }

    /// Calls `tick` at the coordinator's deadlines until stopped.
    pub async fn run_timer(state: Arc<State>, mut stop: broadcast::Receiver<()>) {
        let txns = state.txns.clone();
        loop {
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
                let outputs = c.tick(now_ms());
                txns.apply(&state, outputs)
            };
            if let Err(e) = applied {
                tracing::error!(error = %e, "transaction timer could not persist");
            }
        }
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.log.close()
    }
}

/// Writes one decision's markers to every partition, then tells the coordinator.
async fn write_markers(state: &Arc<State>, out: TxnOutput) {
    let TxnOutput::WriteMarkers {
        transactional_id,
        producer_id,
        producer_epoch,
        commit,
        partitions,
        groups,
    } = out
    else {
        return;
    };
    let marker = if commit {
        Marker::Commit
    } else {
        Marker::Abort
    };
    // Every partition's marker is appended and fsynced at once, in parallel: the
    // transaction completes after the slowest one rather than after their sum.
    let mut writes = tokio::task::JoinSet::new();
    for tp in partitions {
        let Some(partition) = state
            .topic(&tp.topic)
            .and_then(|t| t.partition(tp.partition))
        else {
            continue; // deleted meanwhile
        };
        writes.spawn(async move {
            loop {
                let p = partition.clone();
                let written = tokio::task::spawn_blocking(move || {
                    p.append_marker(
                        producer_id,
                        producer_epoch,
                        marker,
                        0,
                        crate::server::now_ms(),
                    )
                })
                .await;
                match written {
                    Ok(Ok(_)) => return,
                    // A newer epoch already ended it.
                    Ok(Err(PartitionError::Storage(StorageError::InvalidProducerEpoch {
                        ..
                    }))) => return,
                    // Deleted meanwhile: nothing left to mark.
                    Ok(Err(PartitionError::Deleted)) => return,
                    Ok(Err(e)) => {
                        tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "writing a transaction marker failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "marker task failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
    while let Some(done) = writes.join_next().await {
        if let Err(e) = done {
            tracing::error!(transactional_id, error = %e, "marker writer died; transaction left to recovery");
            return;
        }
    }
    for group in &groups {
        while let Err(e) = state.groups.settle_txn(group, producer_id, commit).await {
            tracing::error!(group, error = %e, "settling transactional offsets failed; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let txns = state.txns.clone();
    let result = {
        let mut c = txns.lock();
        c.markers_written(now_ms(), &transactional_id)
            .map_err(|e| e.to_string())
            .and_then(|outputs| txns.apply(state, outputs).map_err(|e| e.to_string()))
    };
    if let Err(e) = result {
        tracing::error!(transactional_id, error = %e, "completing a transaction failed");
    }
    txns.completed.notify_waiters();
}
