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
}

impl Txns {
    /// Opens the transaction log and replays it. `recover` must be called once the broker's
    /// state exists, to finish transactions that were being decided.
    pub fn open(data_dir: &Path, recovery: Recovery) -> Result<Txns, GroupsError> {
        let log = crate::internal_log::open(data_dir, "transactions", recovery)?;
        let mut coordinator = TxnCoordinator::new(TxnConfig::default());
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
    for tp in &partitions {
        let Some(partition) = state
            .topic(&tp.topic)
            .and_then(|t| t.partition(tp.partition))
        else {
            continue; // deleted meanwhile
        };
        loop {
            let p = partition.clone();
            let written = tokio::task::spawn_blocking(move || {
                let info = p.log.append_marker(
                    producer_id,
                    producer_epoch,
                    marker,
                    0,
                    crate::server::now_ms(),
                )?;
                p.log.flush_to(info.last_offset + 1)
            })
            .await;
            match written {
                Ok(Ok(())) => break,
                Ok(Err(StorageError::InvalidProducerEpoch { .. })) => break, // a newer epoch already ended it
                Ok(Err(e)) => {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "writing a transaction marker failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "marker task failed");
                    return;
                }
            }
        }
    }
    state.notify_appended();
    if !groups.is_empty() {
        tracing::warn!(
            ?groups,
            "transactional offset commits are not supported yet; none to settle"
        );
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
}
