//! A follower's truncation: cutting the log back to where it agrees with its leader. The
//! segments above the cut go, the one holding it becomes the active segment again, and the
//! producer state, aborted-transaction indexes, snapshots and leader epochs are rebuilt as at
//! open (from the newest snapshot at or below the new end).

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::epochs::EpochCache;
use super::open::recover_active;
use super::producers::{remove_snapshots, restore_transactions, take_snapshots};
use super::retention::delete_segment_files;
use super::{relative, Active, Log, RecoveryReport};
use crate::batch::Check;
use crate::config::Recovery;
use crate::error::StorageError;
use crate::index::IndexBuilder;
use crate::producer::{AbortedTxn, Producers};
use crate::segment::{sync_dir, Segment};

impl Log {
    /// Removes every record at and above `offset` (the whole batch holding it, so the new log
    /// end may be below `offset`) and returns the new log end. At or beyond the log end no
    /// record goes, but epochs recorded as starting at the log end do (see below); below the
    /// log start is `OffsetOutOfRange`. Any failure poisons the log: its files may be half
    /// cut.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, StorageError> {
        self.check_writable()?;
        let _maintenance = self.maintenance.lock().map_err(|_| self.poisoned_error())?;
        let _sync = self.sync_lock.lock().map_err(|_| self.poisoned_error())?;
        let mut guard = self.lock_state()?;
        self.check_writable()?;
        let st = &mut *guard;
        if offset >= st.log_end {
            // A replica elected leader at epoch E that died before appending anything left
            // E in its cache, starting at its log end; the leader elected since never saw E,
            // so it tells this follower to truncate to (at least) its own end. E must go now,
            // or the follower sends LastFetchedEpoch E again, is told to diverge again, and
            // never fetches (Kafka's truncateTo clears the cache's end the same way).
            let mut epochs = st.epochs.clone();
            if epochs.truncate_from_end(st.log_end) {
                self.persist_epochs(st, epochs)?;
                tracing::info!(dir = %self.dir.display(), log_end = st.log_end,
                    "dropped leader epochs that start at the log end");
            }
            return Ok(st.log_end);
        }
        if offset < st.log_start {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: st.log_start,
                log_end: st.log_end,
            });
        }
        let config = self.config();
        let i = st.segment_index_for(offset);
        let Some(segment) = st.segments.get(i).cloned() else {
            return Ok(st.log_end);
        };
        let base = segment.base_offset();
        let start = if st.is_active(i) {
            st.active.index.index.position_for(relative(offset, base))
        } else {
            segment
                .index(config.index_interval_bytes)?
                .position_for(relative(offset, base))
        };
        let mut cut = segment.len();
        segment.scan(
            u64::from(start),
            segment.len(),
            Check::Structure,
            |at, h, _| {
                if h.last_offset() >= offset {
                    cut = at;
                    return Ok(ControlFlow::Break(()));
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        let result = (|| {
            // Newest first: a crash then leaves a shorter log, never a hole in it.
            let doomed: Vec<Arc<Segment>> = st.segments.drain(i + 1..).rev().collect();
            delete_segment_files(&self.dir, &doomed)?;
            segment.truncate(cut)?;
            // Its index files describe the old length; as the active segment it keeps its
            // indexes in memory and writes them at seal or close.
            segment.remove_index_files()?;
            sync_dir(&self.dir)?;
            let reopened = Segment::open(&self.dir, base)?;
            let mut report = RecoveryReport::default();
            let (active, log_end, _) =
                recover_active(&reopened, &config, Recovery::Scan, &mut report)?;
            if let Some(last) = st.segments.last_mut() {
                *last = Arc::new(reopened);
            }
            st.active = active;
            st.log_end = log_end;
            // The segment's aborts below the new end go back into its `.txnindex` before the
            // rebuild: restore_transactions trusts the file (a missing one means "no aborts")
            // and replays only from the newest snapshot, so without it every abort of this
            // segment below that snapshot was forgotten and read_committed fetches served
            // aborted records (found by the fault harness's 200-episode run).
            let kept: Vec<AbortedTxn> = st
                .aborted
                .iter()
                .filter(|a| a.last_offset >= base && a.last_offset < log_end)
                .copied()
                .collect();
            if segment.write_txn_index(&self.dir, &kept)? {
                sync_dir(&self.dir)?;
            }
            let mut snapshots = std::mem::take(&mut st.snapshots);
            let beyond = take_snapshots(&mut snapshots, |o| o > log_end);
            remove_snapshots(&self.dir, beyond)?;
            restore_transactions(&self.dir, st, snapshots, &config, &mut report)?;
            let mut epochs = st.epochs.clone();
            if epochs.truncate_from_end(log_end) {
                self.persist_epochs(st, epochs)?;
            }
            Ok::<_, StorageError>(log_end)
        })();
        match result {
            Ok(log_end) => {
                self.durable.fetch_min(log_end, Ordering::AcqRel);
                tracing::info!(dir = %self.dir.display(), offset, log_end, "truncated log");
                Ok(log_end)
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Empties the log and restarts it at `offset`, which may lie beyond the log end: a
    /// replica that installed a snapshot (or a follower told to start past everything it
    /// has) continues from there. Every segment goes, newest first, then an empty segment
    /// is created at `offset` and the log start checkpointed, so a crash leaves either a
    /// prefix of the old log or the new empty one, never a hole. Producer state, snapshots
    /// and leader epochs go with the records. Returns `offset`. A follower left behind its leader's log start
    /// starts over this way (Kafka's truncate-fully-and-start-at). Any failure poisons the log.
    pub fn reset_to(&self, offset: i64) -> Result<i64, StorageError> {
        self.check_writable()?;
        if offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset(),
                log_end: self.log_end_offset(),
            });
        }
        let _maintenance = self.maintenance.lock().map_err(|_| self.poisoned_error())?;
        let _sync = self.sync_lock.lock().map_err(|_| self.poisoned_error())?;
        let mut guard = self.lock_state()?;
        self.check_writable()?;
        let st = &mut *guard;
        let result = (|| {
            let doomed: Vec<Arc<Segment>> = st.segments.drain(..).rev().collect();
            delete_segment_files(&self.dir, &doomed)?;
            let snapshots = std::mem::take(&mut st.snapshots);
            remove_snapshots(&self.dir, snapshots)?;
            let segment = Segment::create(&self.dir, offset)?;
            sync_dir(&self.dir)?;
            st.segments.push(Arc::new(segment));
            st.active = Active {
                index: IndexBuilder::new(offset),
                persisted: None,
                rolling_base_ms: None,
                txn_index_dirty: false,
            };
            st.log_start = offset;
            st.log_end = offset;
            st.producers = Producers::default();
            st.aborted.clear();
            self.persist_epochs(st, EpochCache::default())?;
            self.write_checkpoint(offset)
        })();
        match result {
            Ok(()) => {
                self.durable.store(offset, Ordering::Release);
                tracing::info!(dir = %self.dir.display(), offset, "reset log");
                Ok(offset)
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }
}
