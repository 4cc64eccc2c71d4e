//! The writing half of [`Groups`]: outputs of the coordinator applied to the offsets log
//! under its lock (`apply`), the commit waits that answers depend on (`make_durable`,
//! `committed`), the rebuild from the log after a failed write, and the start-up rewrite.

use std::sync::atomic::Ordering;

use weir_coordinator::{CommittedOffset, Coordinator, Output, TopicPartition};

use super::{now_ms, seeded, Groups, GroupsError};
use crate::group_log::{offset_record, txn_offsets_record};

impl Groups {
    /// Appends every live offset again and drops the segments before them.
    pub(super) fn rewrite(&self) -> Result<(), GroupsError> {
        let start = self.log.log_end_offset();
        let log = self.log.log();
        {
            let coordinator = self.lock();
            let mut entries = Vec::new();
            for listing in coordinator.list_groups(&[]) {
                for (tp, committed) in coordinator.fetch_offsets(&listing.group_id, None) {
                    if let Some(c) = committed {
                        entries.push((listing.group_id.clone(), tp, Some(c)));
                    }
                }
            }
            for chunk in entries.chunks(500) {
                self.append(chunk)?;
            }
            for (group, producer_id, offsets) in coordinator.pending_txn_offsets() {
                self.append_txn(&group, producer_id, -1, Some(&offsets))?;
            }
            for chunk in coordinator.group_snapshots().chunks(100) {
                self.log.append(
                    chunk
                        .iter()
                        .map(|(group, s)| crate::group_log::group_record(group, Some(s))),
                )?;
            }
            for chunk in coordinator.consumer_group_snapshots().chunks(100) {
                self.log.append(
                    chunk
                        .iter()
                        .map(|(group, s)| crate::group_log::consumer_group_record(group, Some(s))),
                )?;
            }
        }
        log.flush_to(log.log_end_offset())?;
        let new_start = log.delete_records_before(start)?;
        tracing::info!(new_start, "rewrote the group offsets log");
        Ok(())
    }

    /// Replaces the coordinator, whose memory may be ahead of the log after a failed write,
    /// with a replay of the log, as at start-up. Called with the coordinator lock held.
    /// Parked JoinGroup/SyncGroup requests are answered COORDINATOR_NOT_AVAILABLE (their
    /// groups come back as of their last logged rebalance, as after a restart) and their
    /// members rejoin.
    ///
    /// If the log is poisoned (a failed fsync: records the kernel reported lost may still
    /// read back from the page cache, so replaying them would treat them as safe), or the
    /// replay fails, the coordinator stays unavailable: the timer retries a failed replay,
    /// a poisoned log waits for a restart.
    pub(super) fn rebuild(&self, c: &mut Coordinator, cause: &dyn std::fmt::Display) {
        *c = Coordinator::new(seeded(&self.config));
        self.broken.store(true, Ordering::Release);
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if self.log.is_poisoned() {
            tracing::error!(error = %cause, "offsets log poisoned; the group coordinator is unavailable until the broker restarts");
            return;
        }
        tracing::warn!(error = %cause, "offsets log write failed; rebuilding the group coordinator from its log");
        match crate::group_log::load(self.log.log(), seeded(&self.config), now_ms()) {
            Ok(loaded) => {
                *c = loaded.coordinator;
                self.broken.store(false, Ordering::Release);
                tracing::info!(
                    records = loaded.records,
                    "group coordinator rebuilt from its log"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "rebuilding the group coordinator failed; retrying");
            }
        }
    }

    /// Encodes and appends offset records; returns the offset that must be durable.
    pub(super) fn append(
        &self,
        entries: &[(String, TopicPartition, Option<CommittedOffset>)],
    ) -> Result<i64, GroupsError> {
        if entries.is_empty() {
            return Ok(self.log.log_end_offset());
        }
        let records = entries
            .iter()
            .map(|(group, tp, committed)| offset_record(group, tp, committed.as_ref()));
        self.log.append(records)
    }

    /// Appends a pending-transactional-commits record (`Some`) or its settlement (`None`);
    /// returns the offset that must be durable.
    pub(super) fn append_txn(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: Option<&[(TopicPartition, CommittedOffset)]>,
    ) -> Result<i64, GroupsError> {
        let record = txn_offsets_record(group, producer_id, producer_epoch, offsets);
        self.log.append([record])
    }

    /// Wakes the timer: a call may have moved the next deadline. Never called from the timer
    /// itself, which would then spin.
    pub(super) fn rearm(&self) {
        self.timer.notify_one();
    }

    /// Applies outputs under the coordinator lock: parked requests are answered, offset
    /// changes are appended. Returns the offset that must be fsynced before any answer
    /// covered by these outputs goes out. If an append fails, the coordinator (which has
    /// already applied it in memory) is rebuilt from the log before the lock is released,
    /// so no later request is answered from state the log lacks.
    pub(super) fn apply(
        &self,
        c: &mut Coordinator,
        outputs: Vec<Output>,
    ) -> Result<Option<i64>, GroupsError> {
        let mut durable = None;
        let mut failure = None;
        for out in outputs {
            let appended = match out {
                Output::Respond { request, response } => {
                    let tx = self
                        .parked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&request.0);
                    if let Some(tx) = tx {
                        let _ = tx.send(response);
                    }
                    continue;
                }
                // Nothing more is appended after a failure: the rebuild replays what is there.
                _ if failure.is_some() => continue,
                Output::PersistOffsets { group, offsets } => {
                    let entries: Vec<_> = offsets
                        .into_iter()
                        .map(|(tp, c)| (group.clone(), tp, Some(c)))
                        .collect();
                    self.append(&entries)
                }
                Output::PersistTxnOffsets {
                    group,
                    producer_id,
                    producer_epoch,
                    offsets,
                } => {
                    // A shard's partition is compacted by key: its record carries all of the
                    // producer's pending commits in the group, not only the new ones.
                    let offsets = if self.log.is_shard() {
                        c.pending_txn_offsets()
                            .into_iter()
                            .find(|(g, p, _)| *g == group && *p == producer_id)
                            .map_or(offsets, |(_, _, all)| all)
                    } else {
                        offsets
                    };
                    self.append_txn(&group, producer_id, producer_epoch, Some(&offsets))
                }
                Output::TxnOffsetsSettled { group, producer_id } => {
                    self.append_txn(&group, producer_id, -1, None)
                }
                Output::DeleteOffsets { group, partitions } => {
                    let entries: Vec<_> = partitions
                        .into_iter()
                        .map(|tp| (group.clone(), tp, None))
                        .collect();
                    self.append(&entries)
                }
                Output::PersistGroup { group, snapshot } => self
                    .log
                    .append([crate::group_log::group_record(&group, snapshot.as_ref())]),
                Output::PersistConsumerGroup { group, snapshot } => {
                    self.log.append([crate::group_log::consumer_group_record(
                        &group,
                        snapshot.as_ref(),
                    )])
                }
            };
            match appended {
                Ok(end) => durable = Some(end),
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(GroupsError::NotCoordinator) => {
                self.mark_unloaded();
                Err(GroupsError::NotCoordinator)
            }
            Some(e) => {
                self.rebuild(c, &e);
                Err(e)
            }
            None => Ok(durable),
        }
    }

    /// Waits until the log is committed up to `end` (single node: fsynced). A failed fsync
    /// poisons the log (it is never retried), so the coordinator, whose memory may hold
    /// records that are now lost, is dropped. A shard whose records were not replicated in
    /// time keeps its memory (it equals its local log, and the next answer waits past it);
    /// one that lost its leadership is unloaded by the publisher.
    pub(super) async fn make_durable(&self, end: Option<i64>) -> Result<(), GroupsError> {
        let Some(end) = end else { return Ok(()) };
        match self.log.wait_committed(end).await {
            Err(e @ GroupsError::Storage(_)) => {
                self.rebuild(&mut self.lock(), &e);
                Err(e)
            }
            other => other,
        }
    }

    /// [`Groups::make_durable`] after [`Groups::apply`].
    pub(super) async fn committed(
        &self,
        applied: Result<Option<i64>, GroupsError>,
    ) -> Result<(), GroupsError> {
        self.make_durable(applied?).await
    }
}
