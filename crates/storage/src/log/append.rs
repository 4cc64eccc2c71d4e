//! The append path: validation without the lock, then under it the sequence checks, offset
//! assignment, a roll when due, one positional write and the index and producer updates. A
//! failed write is undone; a failed fsync poisons.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::producers::{remove_snapshots, take_snapshots};
use super::{Active, AppendInfo, Log, State};
use crate::batch::{self, BatchDefect, Batches, Check, Marker};
use crate::config::{LogConfig, TimestampType};
use crate::error::StorageError;
use crate::index::{IndexBuilder, IndexMark};
use crate::producer::{self, BatchSeq, Verdict};
use crate::segment::{sync_dir, IndexSync, Sealed, Segment};

impl Log {
    /// Validates every batch, assigns consecutive offsets, applies LogAppendTime if
    /// configured, rolls first if needed, then writes all the bytes with one positional
    /// write and updates the indexes. Nothing is written if any batch is invalid.
    ///
    /// The bytes are not durable until [`Log::flush_to`] returns for `last_offset + 1`.
    pub fn append(&self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo, StorageError> {
        self.append_as(batches, now_ms, Origin::Leader)
    }

    /// Appends a replica's copy of batches a leader already wrote: their base offsets are
    /// kept (the first must be the log end and each follows the last), their timestamps are
    /// the leader's and producer sequences are not checked again (the leader did), but the
    /// producer state and aborted index are kept as on the leader.
    pub fn append_replicated(
        &self,
        batches: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.append_as(batches, now_ms, Origin::Replica)
    }

    fn append_as(
        &self,
        batches: &mut [u8],
        now_ms: i64,
        origin: Origin,
    ) -> Result<AppendInfo, StorageError> {
        self.check_writable()?;
        let config = self.config();
        if batches.is_empty() {
            return Err(StorageError::InvalidBatch {
                reason: BatchDefect::Empty,
                position: 0,
            });
        }
        let mut metas = Vec::new();
        let mut offsets: i64 = 0;
        for found in Batches::new(batches, Check::Full) {
            let b = found.map_err(|f| StorageError::from_defect(f.defect, f.position))?;
            if b.header.records_count <= 0 {
                return Err(StorageError::InvalidBatch {
                    reason: BatchDefect::BadRecordCount(b.header.records_count),
                    position: b.position,
                });
            }
            if b.bytes.len() > config.max_message_bytes as usize {
                return Err(StorageError::BatchTooLarge {
                    size: b.bytes.len(),
                    max: config.max_message_bytes,
                });
            }
            offsets += b.header.offset_count();
            metas.push(BatchMeta {
                base_offset: b.header.base_offset,
                leader_epoch: b.header.partition_leader_epoch,
                position: b.position,
                size: b.bytes.len(),
                offset_count: b.header.offset_count(),
                max_timestamp: b.header.max_timestamp,
                producer: (b.header.producer_id() >= 0 && !b.header.is_control()).then(|| {
                    (
                        b.header.producer_id(),
                        b.header.producer_epoch(),
                        b.header.base_sequence(),
                    )
                }),
                transactional: b.header.is_transactional(),
                marker: if b.header.is_control() && b.header.producer_id() >= 0 {
                    let (marker, coordinator_epoch) =
                        batch::control_record(b.bytes).ok_or(StorageError::InvalidBatch {
                            reason: BatchDefect::BadRecord,
                            position: b.position,
                        })?;
                    Some((
                        b.header.producer_id(),
                        b.header.producer_epoch(),
                        marker,
                        coordinator_epoch,
                    ))
                } else {
                    None
                },
            });
        }
        let log_append_time = (origin == Origin::Leader
            && config.timestamp_type == TimestampType::LogAppendTime)
            .then_some(now_ms);
        if let Some(now) = log_append_time {
            for m in &mut metas {
                let bytes = batches.get_mut(m.position..).unwrap_or_default();
                batch::set_log_append_time(bytes, now)
                    .map_err(|d| StorageError::from_defect(d, m.position))?;
                m.max_timestamp = now;
            }
        }

        let mut guard = self.lock_state()?;
        // Re-check: a flush may have poisoned the log, or close may have run, while we waited.
        self.check_writable()?;
        let st = &mut *guard;
        if origin == Origin::Leader {
            if let Some(dup) = self.check_sequences(st, &metas)? {
                return Ok(dup);
            }
        } else {
            let mut expected = st.log_end;
            for m in &metas {
                if m.base_offset != expected {
                    // Not the next offsets of this log: the copy is out of step with it.
                    return Err(StorageError::OffsetOutOfRange {
                        requested: m.base_offset,
                        log_start: st.log_start,
                        log_end: expected,
                    });
                }
                expected += m.offset_count;
            }
        }
        let base_offset = st.log_end;
        let overflow = || StorageError::InvalidBatch {
            reason: BatchDefect::OffsetOverflow,
            position: 0,
        };
        // The new log end, one past the last offset, must fit too.
        let last_offset = base_offset.checked_add(offsets).ok_or_else(overflow)? - 1;
        if self.should_roll(st, &config, batches.len() as u64, last_offset, now_ms) {
            self.roll(st, now_ms)?;
        }
        let segment = Arc::clone(st.active_segment());
        let last_base = last_offset - metas.last().map_or(1, |m| m.offset_count) + 1;
        if last_base - segment.base_offset() > i64::from(u32::MAX) {
            return Err(overflow());
        }
        let position = segment.len();
        let mut next = base_offset;
        for m in &metas {
            let bytes = batches.get_mut(m.position..).unwrap_or_default();
            batch::set_base_offset(bytes, next)
                .map_err(|d| StorageError::from_defect(d, m.position))?;
            if origin == Origin::Leader {
                batch::set_partition_leader_epoch(bytes, st.leader_epoch)
                    .map_err(|d| StorageError::from_defect(d, m.position))?;
            }
            next += m.offset_count;
        }
        self.record_epochs(st, &metas, base_offset, origin)?;
        // Until the new length is published below (under this lock), no reader or fsync can
        // see this append, so a failed write can be undone: a full disk fails this request
        // and the next one may succeed once space is freed.
        let undo = Undo {
            position,
            index: st.active.index.mark(),
        };
        if let Err(e) = self.write_batches(&segment, batches, position) {
            return Err(self.undo_append(st, &segment, undo, e));
        }
        let mut next = base_offset;
        for m in &metas {
            let at = u32::try_from(position + m.position as u64).unwrap_or(u32::MAX);
            st.active.index.on_batch(
                at,
                next,
                m.max_timestamp,
                m.size as u64,
                config.index_interval_bytes,
            );
            next += m.offset_count;
        }
        segment.set_len(position + batches.len() as u64);
        st.log_end = last_offset + 1;
        let mut next = base_offset;
        for m in &metas {
            if let Some((id, epoch, first_seq)) = m.producer {
                let seq = BatchSeq {
                    first_seq,
                    last_seq: producer::last_seq(first_seq, m.offset_count),
                    first_offset: next,
                    last_offset: next + m.offset_count - 1,
                };
                if m.transactional {
                    st.producers.record_txn(id, epoch, seq, now_ms);
                } else {
                    st.producers.record(id, epoch, seq, now_ms);
                }
            }
            if let Some((id, epoch, marker, coordinator_epoch)) = m.marker {
                let commit = marker == Marker::Commit;
                let aborted = st.producers.end_txn(id, epoch, commit, next, now_ms);
                st.producers.marker_coordinator(id, coordinator_epoch);
                if let Some(aborted) = aborted {
                    // No I/O: written with the segment's other indexes (see txn_index.rs).
                    st.aborted.push(aborted);
                    st.active.txn_index_dirty = true;
                }
            }
            next += m.offset_count;
        }
        if st.active.rolling_base_ms.is_none() {
            st.active.rolling_base_ms = Some(now_ms);
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time,
            log_start_offset: st.log_start,
            batches: metas.len(),
            bytes: batches.len(),
            duplicate: false,
        })
    }

    /// Records the epochs the batches start (before they are written: see
    /// `Log::assign_epoch`). A leader's are all its current epoch; a replica's copy carries
    /// its leader's stamps, and each change of stamp starts an epoch.
    fn record_epochs(
        &self,
        st: &mut State,
        metas: &[BatchMeta],
        base_offset: i64,
        origin: Origin,
    ) -> Result<(), StorageError> {
        if origin == Origin::Leader {
            let epoch = st.leader_epoch;
            return self.assign_epoch(st, epoch, base_offset);
        }
        let mut next = st.epochs.clone();
        let mut changed = false;
        for m in metas.iter().filter(|m| m.leader_epoch >= 0) {
            changed |= next.assign(m.leader_epoch, m.base_offset);
        }
        if let Some(latest) = next.latest() {
            st.leader_epoch = st.leader_epoch.max(latest.epoch);
        }
        if changed {
            self.persist_epochs(st, next)?;
        }
        Ok(())
    }

    /// The append's one positional write. Under test, [`Self::inject_write_failures`] makes
    /// it write half the bytes and then fail as a full disk does.
    fn write_batches(
        &self,
        segment: &Segment,
        batches: &[u8],
        position: u64,
    ) -> Result<(), StorageError> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fail_writes.load(Ordering::Acquire) {
            let half = batches.get(..batches.len() / 2).unwrap_or_default();
            segment.write_at(half, position)?;
            return Err(StorageError::io(
                crate::error::IoOp::Write,
                segment.log_path(),
                std::io::Error::from_raw_os_error(28), // ENOSPC
            ));
        }
        segment.write_at(batches, position)
    }

    /// Undoes a failed append (see [`Undo`]) and returns its error. A write error is not an
    /// fsync error: the kernel reported it before anything was acknowledged, and cutting the
    /// file back needs no space. If the undo itself fails, or the error came from an fsync,
    /// the log is poisoned.
    fn undo_append(
        &self,
        st: &mut State,
        segment: &Segment,
        undo: Undo,
        err: StorageError,
    ) -> StorageError {
        st.active.index.rollback(undo.index);
        let undone = segment.undo_write(undo.position);
        match undone {
            Ok(()) if !self.is_poisoned() && !err.is_fsync_failure() => {
                tracing::warn!(dir = %self.dir.display(), error = %err, source = ?std::error::Error::source(&err), "append failed and was undone; the log stays writable");
            }
            Ok(()) => self.poison(&err),
            Err(undo_err) => {
                tracing::error!(dir = %self.dir.display(), error = %undo_err, "could not undo a failed append");
                self.poison(&err);
            }
        }
        err
    }

    /// Checks idempotent producers' sequences. A request of one batch that is a retry of a
    /// batch already in the log returns its original placement instead of being appended.
    fn check_sequences(
        &self,
        st: &State,
        metas: &[BatchMeta],
    ) -> Result<Option<AppendInfo>, StorageError> {
        for m in metas {
            if let Some((id, epoch, _, coordinator_epoch)) = m.marker {
                st.producers.check_marker(id, epoch, coordinator_epoch)?;
            }
        }
        if metas.iter().all(|m| m.producer.is_none()) {
            return Ok(None);
        }
        if metas.len() > 1 {
            // Kafka's rule: an idempotent producer sends one batch per partition per request,
            // which keeps "the whole request is a duplicate" unambiguous.
            return Err(StorageError::InvalidBatch {
                reason: BatchDefect::MultipleIdempotentBatches,
                position: 0,
            });
        }
        let Some(m) = metas.first() else {
            return Ok(None);
        };
        let Some((id, epoch, first_seq)) = m.producer else {
            return Ok(None);
        };
        let last = producer::last_seq(first_seq, m.offset_count);
        let verdict = st
            .producers
            .check(id, epoch, first_seq, last)
            .map_err(|e| match e {
                StorageError::OutOfOrderSequence {
                    producer_id,
                    expected,
                    got,
                } if self.gap_spans_leader_change(st, producer_id, epoch) => {
                    StorageError::SequenceGapAfterLeaderChange {
                        producer_id,
                        expected,
                        got,
                        leader_epoch: st.leader_epoch,
                    }
                }
                e => e,
            })?;
        match verdict {
            Verdict::Append => Ok(None),
            Verdict::Duplicate {
                first_offset,
                last_offset,
            } => Ok(Some(AppendInfo {
                base_offset: first_offset,
                last_offset,
                log_append_time: None,
                log_start_offset: st.log_start,
                batches: 0,
                bytes: 0,
                duplicate: true,
            })),
        }
    }

    /// Whether `producer_id`'s last batch here (under `epoch`) precedes the current leader
    /// epoch: the producer has appended nothing since this replica started leading. Needs
    /// the current epoch in the cache (a log without epochs never says so).
    fn gap_spans_leader_change(&self, st: &State, producer_id: i64, epoch: i16) -> bool {
        let Some(current) = st.epochs.latest().filter(|e| e.epoch == st.leader_epoch) else {
            return false;
        };
        st.producers
            .last_offset(producer_id, epoch)
            .is_some_and(|last| last < current.start_offset)
    }

    /// [`Log::append`] for producers' data: control batches (transaction markers) are only
    /// written by the broker itself, so a client's are refused, as Kafka does.
    pub fn append_from_client(
        &self,
        batches: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        for b in Batches::new(batches, Check::Structure).flatten() {
            if b.header.is_control() {
                return Err(StorageError::InvalidBatch {
                    reason: BatchDefect::ControlFromClient,
                    position: b.position,
                });
            }
        }
        self.append(batches, now_ms)
    }

    /// Appends a transaction marker (a control batch) for `producer_id`: commit or abort of
    /// its open transaction on this partition.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let mut b = batch::control_batch(
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            now_ms,
        );
        self.append(&mut b, now_ms)
    }

    pub(super) fn should_roll(
        &self,
        st: &State,
        config: &LogConfig,
        incoming: u64,
        last_offset: i64,
        now_ms: i64,
    ) -> bool {
        let segment = st.active_segment();
        let len = segment.len();
        if len == 0 {
            return false;
        }
        let too_big = len.saturating_add(incoming) > config.segment_bytes
            || len.saturating_add(incoming) > u64::from(u32::MAX);
        let too_old = st
            .active
            .rolling_base_ms
            .is_some_and(|base| now_ms.saturating_sub(base) > config.roll_ms());
        let offsets_overflow =
            last_offset.saturating_sub(segment.base_offset()) > i64::from(u32::MAX);
        too_big || too_old || offsets_overflow
    }

    /// Seals the active segment and starts a new one at the log end. The old segment's data
    /// is fsynced, then its indexes are written (so they only point at durable bytes), and
    /// the directory (their renames, the new file's entry) is fsynced before the switch, so
    /// everything below the new base is durable. Any failure to sync poisons the log.
    pub(super) fn roll(&self, st: &mut State, now_ms: i64) -> Result<(), StorageError> {
        let old = Arc::clone(st.active_segment());
        st.active.index.seal();
        self.fsync(old.log_file(), old.log_path())?;
        // A failed index write (a full disk) leaves the old segment active and its entries in
        // memory: a retried roll writes the files again.
        if let Err(e) =
            old.write_index_files(&self.dir, &st.active.index.index, IndexSync::FilesOnly)
        {
            if e.is_fsync_failure() {
                self.poison(&e);
            }
            return Err(e);
        }
        let new_base = st.log_end;
        self.write_txn_files(st, &old, new_base)?;
        st.snapshots.insert(new_base);
        let segment = match Segment::create(&self.dir, new_base) {
            Ok(created) => created,
            Err(e) => {
                // Nothing was switched: the old segment stays active and a later roll retries.
                Segment::remove_created(&self.dir, new_base);
                return Err(e);
            }
        };
        // Durability point of the new segment's directory entry.
        if let Err(e) = sync_dir(&self.dir) {
            self.poison(&e);
            return Err(e);
        }
        let old_active = std::mem::replace(
            &mut st.active,
            Active {
                index: IndexBuilder::new(new_base),
                persisted: None,
                rolling_base_ms: None,
                txn_index_dirty: false,
            },
        );
        old.seal(
            Sealed {
                max_timestamp: old_active.index.max_timestamp(),
            },
            Some(old_active.index.index),
        );
        st.segments.push(Arc::new(segment));
        self.durable.fetch_max(new_base, Ordering::AcqRel);
        // Snapshots a clean close left inside the sealed segment: the one at its base (kept
        // in case its `.txnindex` must be rebuilt) and the new one supersede them.
        let inside = take_snapshots(&mut st.snapshots, |o| o > old.base_offset() && o < new_base);
        if let Err(e) = remove_snapshots(&self.dir, inside) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove superseded producer snapshots");
        }
        tracing::debug!(dir = %self.dir.display(), old_base = old.base_offset(), new_base, bytes = old.len(), now_ms, "rolled segment");
        Ok(())
    }
}

/// What an append changed before it was published, to undo it if a write fails.
#[derive(Clone, Copy)]
struct Undo {
    /// The active segment's committed length before the append.
    position: u64,
    index: IndexMark,
}

/// Who assigned an append's offsets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// This log: offsets are assigned at the log end, sequences checked.
    Leader,
    /// A leader, whose offsets are kept ([`Log::append_replicated`]).
    Replica,
}

struct BatchMeta {
    /// The batch's base offset as received (what a replica's copy must keep).
    base_offset: i64,
    /// Its `partitionLeaderEpoch` as received (a replica's copy keeps the leader's stamp).
    leader_epoch: i32,
    position: usize,
    size: usize,
    offset_count: i64,
    max_timestamp: i64,
    /// Producer id, epoch and first sequence of an idempotent producer's data batch.
    producer: Option<(i64, i16, i32)>,
    /// The data batch belongs to a transaction.
    transactional: bool,
    /// A transaction marker: producer id, epoch, commit or abort, coordinator epoch.
    marker: Option<(i64, i16, Marker, i32)>,
}
