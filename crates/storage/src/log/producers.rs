//! Producer state across restarts: the snapshots written at rolls and clean closes, the
//! per-segment aborted-transaction indexes, and their rebuild at open (the newest valid
//! snapshot, then a replay of the batch headers after it). Also the answers drawn from this
//! state: the last stable offset, the producers, the aborted transactions of a range.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;

use super::{relative, Log, RecoveryReport, State};
use crate::batch::{self, BatchHeader, Check, Marker};
use crate::config::LogConfig;
use crate::error::{IoOp, StorageError};
use crate::producer::{self, AbortedTxn, ActiveProducer, BatchSeq, Producers, SNAPSHOT_SUFFIX};
use crate::segment::{file_name, sync_dir, write_synced_no_dir, Segment};

impl Log {
    /// The last stable offset: below it every transaction is decided. The log end when no
    /// transaction is open.
    pub fn last_stable_offset(&self) -> i64 {
        let st = self.state_view();
        st.producers
            .first_unstable_offset()
            .unwrap_or(st.log_end)
            .min(st.log_end)
    }

    /// The producers this partition remembers (idempotent and transactional), for
    /// DescribeProducers.
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.state_view().producers.active()
    }

    /// Whether `producer_id` has an open transaction here (KIP-890: a leader verifies a
    /// transactional batch with the coordinator only when it has none).
    pub fn has_open_txn(&self, producer_id: i64) -> bool {
        self.state_view().producers.has_open_txn(producer_id)
    }

    /// Aborted transactions that overlap `[from, to)`, for a read_committed fetch.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let st = self.state_view();
        // In marker order: skip those that ended before `from` without looking at them.
        let ended = st.aborted.partition_point(|a| a.last_offset < from);
        st.aborted
            .get(ended..)
            .unwrap_or_default()
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Writes the producer snapshot at `offset` (the log end) unless it exists, and before it
    /// the active `segment`'s `.txnindex` if it changed: every abort below a durable snapshot
    /// must be durable too, since the replay after a crash starts at the snapshot. The caller
    /// fsyncs the directory for the snapshot's rename. A failed fsync poisons the log.
    pub(super) fn write_txn_files(
        &self,
        st: &State,
        segment: &Segment,
        offset: i64,
    ) -> Result<(), StorageError> {
        let poison_on_fsync = |e: &StorageError| {
            if e.is_fsync_failure() {
                self.poison(e);
            }
        };
        if st.active.txn_index_dirty {
            let from = st
                .aborted
                .partition_point(|a| a.last_offset < segment.base_offset());
            let entries = st.aborted.get(from..).unwrap_or_default();
            if segment
                .write_txn_index(&self.dir, entries)
                .inspect_err(poison_on_fsync)?
            {
                sync_dir(&self.dir).inspect_err(|e| self.poison(e))?;
            }
        }
        if !st.snapshots.contains(&offset) {
            let name = file_name(offset, SNAPSHOT_SUFFIX);
            write_synced_no_dir(&self.dir, &name, &st.producers.encode_snapshot(offset))
                .inspect_err(poison_on_fsync)?;
        }
        Ok(())
    }

    /// Removes the producer snapshots below the first segment (after segments were deleted):
    /// no replay can start there any more.
    pub(super) fn prune_snapshots(&self) -> Result<(), StorageError> {
        let stale = {
            let mut st = self.lock_state()?;
            let first = st.segments.first().map_or(st.log_end, |s| s.base_offset());
            take_snapshots(&mut st.snapshots, |o| o < first)
        };
        remove_snapshots(&self.dir, stale)
    }
}

/// Removes from `snapshots` the offsets `take` selects and returns them.
pub(super) fn take_snapshots(
    snapshots: &mut BTreeSet<i64>,
    take: impl Fn(i64) -> bool,
) -> Vec<i64> {
    let taken: Vec<i64> = snapshots.iter().copied().filter(|&o| take(o)).collect();
    for offset in &taken {
        snapshots.remove(offset);
    }
    taken
}

/// Removes producer snapshot files. No directory fsync: a snapshot that comes back after a
/// crash still describes the state at its offset, or is out of range and removed at open.
pub(super) fn remove_snapshots(
    dir: &Path,
    offsets: impl IntoIterator<Item = i64>,
) -> Result<(), StorageError> {
    for offset in offsets {
        let path = dir.join(file_name(offset, SNAPSHOT_SUFFIX));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(IoOp::Remove, &path, e)),
        }
    }
    Ok(())
}

/// Rebuilds the producer state and the aborted transactions at open, as Kafka does: loads
/// the newest valid producer snapshot at or below both the log end and the first segment
/// whose `.txnindex` cannot be trusted, then replays the batch headers after it. Without a
/// usable snapshot the replay starts at the first segment (never at "no producers"). Aborts
/// below the snapshot come from the segments' `.txnindex` files; damaged ones are rewritten.
pub(super) fn restore_transactions(
    dir: &Path,
    st: &mut State,
    mut snapshots: BTreeSet<i64>,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    let log_end = st.log_end;
    let first_base = st.segments.first().map_or(log_end, |s| s.base_offset());
    // Below the first segment a snapshot's replay would miss deleted batches; beyond the log
    // end it describes batches that are gone (a truncated tail).
    let outside: Vec<i64> = snapshots
        .iter()
        .copied()
        .filter(|&o| o < first_base || o > log_end)
        .collect();
    for &offset in &outside {
        snapshots.remove(&offset);
        if offset > log_end {
            tracing::warn!(dir = %dir.display(), offset, log_end, "removing producer snapshot beyond the log end");
        }
    }
    remove_snapshots(dir, outside)?;

    // Each segment's aborts from its file; None where the file cannot be trusted, and then
    // the replay must start at or below that segment.
    let bounds = segment_bounds(st);
    let mut files = Vec::with_capacity(st.segments.len());
    let mut limit = log_end;
    for (segment, &(base, end)) in st.segments.iter().zip(&bounds) {
        let loaded = segment.load_txn_index()?.filter(|entries| {
            entries
                .iter()
                .all(|a| a.last_offset >= base && a.last_offset < end)
        });
        if loaded.is_none() {
            tracing::warn!(path = %segment.txn_index_path().display(), "damaged aborted-transaction index; rebuilding it from the log");
            limit = limit.min(base);
        }
        files.push(loaded);
    }

    let mut chosen = None;
    let mut damaged = Vec::new();
    for &offset in snapshots.iter().rev().filter(|&&o| o <= limit) {
        let path = dir.join(file_name(offset, SNAPSHOT_SUFFIX));
        let bytes = fs::read(&path).map_err(|e| StorageError::io(IoOp::Read, &path, e))?;
        match producer::decode_snapshot(&bytes) {
            Some((at, producers)) if at == offset => {
                chosen = Some((offset, producers));
                break;
            }
            _ => {
                tracing::warn!(path = %path.display(), "damaged producer snapshot; trying an older one");
                damaged.push(offset);
            }
        }
    }
    for offset in &damaged {
        snapshots.remove(offset);
    }
    remove_snapshots(dir, damaged)?;
    report.producer_snapshot = chosen.as_ref().map(|c| c.0);
    let (from, mut producers) = chosen.unwrap_or_else(|| {
        if log_end > first_base {
            tracing::info!(dir = %dir.display(), from = first_base, log_end, "no usable producer snapshot; rebuilding producer state from the first segment");
        }
        (first_base, Producers::default())
    });
    let mut aborted: Vec<AbortedTxn> = files
        .iter()
        .flatten()
        .flatten()
        .filter(|a| a.last_offset < from)
        .copied()
        .collect();
    report.replayed_batches = replay(
        st,
        from,
        config.index_interval_bytes,
        &mut producers,
        &mut aborted,
    )?;

    let mut rewrote = false;
    let last = st.segments.len().saturating_sub(1);
    for (i, ((segment, &(base, end)), file)) in
        st.segments.iter().zip(&bounds).zip(&files).enumerate()
    {
        let lo = aborted.partition_point(|a| a.last_offset < base);
        let hi = aborted.partition_point(|a| a.last_offset < end);
        let entries = aborted.get(lo..hi).unwrap_or_default();
        match file {
            Some(f) if f.as_slice() == entries => {}
            // The active segment's file is rewritten when it is sealed or closed anyway.
            Some(_) if i == last => st.active.txn_index_dirty = true,
            _ => rewrote |= segment.write_txn_index(dir, entries)?,
        }
    }
    if rewrote {
        sync_dir(dir)?;
    }
    st.producers = producers;
    st.aborted = aborted;
    st.snapshots = snapshots;
    Ok(())
}

/// Each segment's offset range: its base, and the next one's (the log end for the last).
pub(super) fn segment_bounds(st: &State) -> Vec<(i64, i64)> {
    let ends = st
        .segments
        .iter()
        .skip(1)
        .map(|s| s.base_offset())
        .chain([st.log_end]);
    st.segments
        .iter()
        .map(|s| s.base_offset())
        .zip(ends)
        .collect()
}

/// Applies the batches in `[from, log end)` to `producers`, collecting the transactions
/// their markers abort; returns how many batches it applied. A damaged batch ends its
/// segment's part of the replay (reads of it fail too).
pub(super) fn replay(
    st: &State,
    from: i64,
    interval: u32,
    producers: &mut Producers,
    aborted: &mut Vec<AbortedTxn>,
) -> Result<u64, StorageError> {
    let mut applied = 0u64;
    if from >= st.log_end {
        return Ok(0);
    }
    let first = st.segment_index_for(from);
    for (i, segment) in st.segments.iter().enumerate().skip(first) {
        let base = segment.base_offset();
        let start = if from <= base {
            0
        } else if st.is_active(i) {
            st.active.index.index.position_for(relative(from, base))
        } else {
            segment.index(interval)?.position_for(relative(from, base))
        };
        let end = segment.scan(
            u64::from(start),
            segment.len(),
            Check::Structure,
            |_, h, bytes| {
                if h.last_offset() >= from {
                    apply_batch(producers, aborted, h, bytes);
                    applied += 1;
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if let Some((position, defect)) = end.fault {
            tracing::warn!(path = %segment.log_path().display(), position, %defect, "damaged batch while rebuilding producer state; skipping the rest of the segment");
        }
    }
    Ok(applied)
}

/// One stored batch's effect on the producer state, as its append had. The batch's own
/// clock stands in for the lost append time.
pub(super) fn apply_batch(
    producers: &mut Producers,
    aborted: &mut Vec<AbortedTxn>,
    h: &BatchHeader,
    bytes: &[u8],
) {
    if h.producer_id() < 0 {
        return;
    }
    if !h.is_control() {
        let seq = BatchSeq {
            first_seq: h.base_sequence(),
            last_seq: producer::last_seq(h.base_sequence(), h.offset_count()),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
        };
        if h.is_transactional() {
            producers.record_txn(h.producer_id(), h.producer_epoch(), seq, h.max_timestamp);
        } else {
            producers.record(h.producer_id(), h.producer_epoch(), seq, h.max_timestamp);
        }
    } else if let Some((marker, coordinator_epoch)) = batch::control_record(bytes) {
        let commit = marker == Marker::Commit;
        aborted.extend(producers.end_txn(
            h.producer_id(),
            h.producer_epoch(),
            commit,
            h.base_offset,
            h.max_timestamp,
        ));
        producers.marker_coordinator(h.producer_id(), coordinator_epoch);
    }
}
