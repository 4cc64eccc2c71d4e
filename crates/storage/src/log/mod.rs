//! [`Log`]: one partition's log, a sequence of segments in one directory. This module holds
//! the shared state, the locks and durability helpers (fsync, poisoning, group commit, close);
//! the operations live in submodules by concern:
//!
//! - `open`: opening and recovery (sealed segments, the active segment's tail);
//! - `append`: the append path and rolls;
//! - `read`: reads by offset and timestamp lookups;
//! - `producers`: producer snapshots, aborted-transaction indexes and their rebuild at open;
//! - `retention`: DeleteRecords, retention and the log start checkpoint;
//! - `cleaning`: the hooks of the log cleaner (its view of the log, the segment swap).

mod append;
mod cleaning;
#[cfg(test)]
mod epoch_tests;
mod epochs;
mod open;
mod producers;
mod read;
mod retention;
#[cfg(test)]
mod tests;
mod truncate;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;

use self::epochs::EpochCache;
use self::producers::{remove_snapshots, take_snapshots};
use crate::config::LogConfig;
use crate::error::{IoOp, StorageError};
use crate::index::IndexBuilder;
use crate::producer::{AbortedTxn, Producers};
use crate::segment::{sync_dir, IndexSync, Segment};

pub(crate) use cleaning::CleanerView;
pub(crate) use epochs::parse_epoch_checkpoint;
pub use epochs::{EpochEntry, LEADER_EPOCH_CHECKPOINT};
pub(crate) use retention::parse_checkpoint;
pub use retention::LOG_START_CHECKPOINT;

const TMP_SUFFIX: &str = ".tmp";
const DELETED_SUFFIX: &str = ".deleted";

/// Result of a successful [`Log::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record of the first batch.
    pub base_offset: i64,
    /// Last offset occupied by the append (the new log end is `last_offset + 1`).
    pub last_offset: i64,
    /// The broker's timestamp, when the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
    pub batches: usize,
    pub bytes: usize,
    /// The batch was a retry of one already in the log (same producer, epoch and
    /// sequences): nothing was written and the offsets are the original ones.
    pub duplicate: bool,
}

/// Result of [`Log::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Whole batches, as stored (empty at the log end).
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// What [`Log::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    /// Bytes cut from torn or corrupt tails.
    pub truncated_bytes: u64,
    /// Segments whose index files were rebuilt (in Scan mode this includes the active one).
    pub rebuilt_indexes: usize,
    pub log_end_offset: i64,
    /// Offset of the producer snapshot the producer state was loaded from (None: rebuilt
    /// from the first segment).
    pub producer_snapshot: Option<i64>,
    /// Batches replayed after that snapshot to bring the producer state to the log end.
    pub replayed_batches: u64,
}

/// What [`Log::enforce_retention`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: i64,
}

/// One partition's append-only log. `Send + Sync`; share it behind an `Arc`.
///
/// Lock order: `maintenance` → `sync_lock` → `state`. No lock is held across a read's I/O,
/// and `state` is held across an fsync only when rolling (the old segment must be durable
/// before the new one becomes active, so that `flush_to` can sync only the active one).
pub struct Log {
    dir: PathBuf,
    /// Append state: the segment list, the active segment's in-memory indexes, log start and
    /// end. Held for in-memory work and the append's single positional write.
    state: Mutex<State>,
    /// Group commit: one `flush_to` caller at a time fsyncs everything appended so far; the
    /// callers queued behind it then usually find their offset already durable.
    sync_lock: Mutex<()>,
    /// Serializes DeleteRecords and retention (checkpoint writes, file deletion) with each
    /// other without blocking appends or reads.
    maintenance: Mutex<()>,
    /// Every offset below this is fsynced.
    durable: AtomicI64,
    /// Set by the first failed fsync or write; the log then refuses writes until reopened.
    poisoned: AtomicBool,
    /// Set by `close`; appends then fail with `Closed`.
    closed: AtomicBool,
    config: RwLock<LogConfig>,
    /// Test hook: make every fsync fail.
    #[cfg(any(test, feature = "fault-injection"))]
    fail_syncs: AtomicBool,
    /// Test hook: make every append's write fail half way (a full disk).
    #[cfg(any(test, feature = "fault-injection"))]
    fail_writes: AtomicBool,
}

struct State {
    /// Sorted by base offset; the last one is active. Never empty.
    segments: Vec<Arc<Segment>>,
    active: Active,
    log_start: i64,
    log_end: i64,
    /// Idempotent producers' recent sequences, checked and updated with each append.
    producers: Producers,
    /// Aborted transactions, in marker order. Those of sealed segments are in their
    /// `.txnindex` files; the active segment's are written when it is sealed or closed.
    aborted: Vec<AbortedTxn>,
    /// Offsets of the producer snapshot files (`<offset>.snapshot`) on disk.
    snapshots: BTreeSet<i64>,
    /// Known leader epochs and their start offsets (`leader-epoch-checkpoint`).
    epochs: EpochCache,
    /// The epoch this log's leader appends are stamped with.
    leader_epoch: i32,
}

/// The active segment's mutable side.
struct Active {
    /// Its indexes, kept only in memory while it is active: written to files when it is
    /// sealed or the log is closed (see `segment.rs`).
    index: IndexBuilder,
    /// Entry counts (offsets, times) of the segment's index files when they are known to
    /// hold exactly the first entries of `index` (loaded at a clean open, or written by
    /// `close`); None when they are missing, stale or unknown. Lets `close` skip rewriting
    /// unchanged files.
    persisted: Option<(usize, usize)>,
    /// Start of the segment's age for `segment.ms`: the wall time of its first append, or
    /// after a reopen its first batch's max timestamp. None while empty.
    rolling_base_ms: Option<i64>,
    /// The segment's aborted transactions differ from its `.txnindex` file (an abort was
    /// appended since it was written or loaded): the file is rewritten at seal or close.
    txn_index_dirty: bool,
}

impl State {
    fn active_segment(&self) -> &Arc<Segment> {
        // `segments` is never empty: every constructor pushes the active segment first.
        match self.segments.last() {
            Some(s) => s,
            None => unreachable!("a log always has an active segment"),
        }
    }

    /// Index of the segment that holds `offset` (the last one whose base is ≤ offset).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    fn is_active(&self, i: usize) -> bool {
        i + 1 == self.segments.len()
    }
}

fn relative(offset: i64, base: i64) -> u32 {
    u32::try_from(offset.saturating_sub(base).max(0)).unwrap_or(u32::MAX)
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start", &self.log_start_offset())
            .field("log_end", &self.log_end_offset())
            .field("durable", &self.durable_offset())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl Log {
    fn from_parts(dir: PathBuf, config: LogConfig, state: State) -> Log {
        let durable = state.log_end;
        Log {
            dir,
            state: Mutex::new(state),
            sync_lock: Mutex::new(()),
            maintenance: Mutex::new(()),
            durable: AtomicI64::new(durable),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            config: RwLock::new(config),
            #[cfg(any(test, feature = "fault-injection"))]
            fail_syncs: AtomicBool::new(false),
            #[cfg(any(test, feature = "fault-injection"))]
            fail_writes: AtomicBool::new(false),
        }
    }

    /// Blocks until every offset below `offset` is fsynced (offsets past the log end are
    /// clamped to it). Concurrent callers share fsyncs. A failed fsync poisons the log and is
    /// never retried.
    pub fn flush_to(&self, offset: i64) -> Result<(), StorageError> {
        self.check_not_poisoned()?;
        if self.durable.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _sync = self.sync_lock.lock().map_err(|_| self.poisoned_error())?;
        self.check_not_poisoned()?;
        if self.durable.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let (segment, log_end) = {
            let st = self.lock_state()?;
            (Arc::clone(st.active_segment()), st.log_end)
        };
        self.fsync(segment.log_file(), segment.log_path())?;
        self.durable.fetch_max(log_end, Ordering::AcqRel);
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn flush_all(&self) -> Result<(), StorageError> {
        self.flush_to(self.log_end_offset())
    }

    /// Every offset below this is durable.
    pub fn durable_offset(&self) -> i64 {
        self.durable.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state_view().log_start
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.state_view().log_end
    }

    /// Sum of the segments' log file sizes.
    pub fn size_bytes(&self) -> u64 {
        self.state_view().segments.iter().map(|s| s.len()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.state_view().segments.len()
    }

    pub fn config(&self) -> LogConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies to later appends, reads and retention runs.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Clean shutdown: refuses further appends, fsyncs the active segment's data if anything
    /// is not yet durable, writes its index files (unless they already hold its indexes) and
    /// the producer snapshot. After it, the index files of every non-empty segment are
    /// complete, so the next [`Recovery::Clean`] open trusts them. Reads keep working.
    /// Idempotent.
    pub fn close(&self) -> Result<(), StorageError> {
        self.check_not_poisoned()?;
        let _sync = self.sync_lock.lock().map_err(|_| self.poisoned_error())?;
        let (segment, index, log_end) = {
            let mut guard = self.lock_state()?;
            let st = &mut *guard;
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            let segment = Arc::clone(st.active_segment());
            st.active.index.seal();
            let entries = (
                st.active.index.index.offsets.len(),
                st.active.index.index.times.len(),
            );
            // An empty segment needs no index files (create and open removed any).
            let stale = segment.len() > 0 && st.active.persisted != Some(entries);
            // A copy, so the writes below run without the lock.
            let index = stale.then(|| (st.active.index.index.clone(), entries));
            (segment, index, st.log_end)
        };
        if self.durable.load(Ordering::Acquire) < log_end {
            self.fsync(segment.log_file(), segment.log_path())?;
            self.durable.fetch_max(log_end, Ordering::AcqRel);
        }
        let mut renamed = false;
        if let Some((index, entries)) = index {
            // After the data fsync, so the entries only point at durable bytes.
            segment
                .write_index_files(&self.dir, &index, IndexSync::FilesOnly)
                .inspect_err(|e| self.poison(e))?;
            self.lock_state()?.active.persisted = Some(entries);
            renamed = true;
        }
        let superseded = {
            let mut st = self.lock_state()?;
            // The producer state at the log end, so that the next open replays nothing; an
            // empty log has nothing to replay (and holds only its segment file).
            let empty = st.segments.first().map(|s| s.base_offset()) == Some(log_end);
            if !empty {
                renamed |= !st.snapshots.contains(&log_end);
                self.write_txn_files(&st, &segment, log_end)?;
                st.snapshots.insert(log_end);
                st.active.txn_index_dirty = false;
            }
            take_snapshots(&mut st.snapshots, |o| {
                o > segment.base_offset() && o < log_end
            })
        };
        if renamed {
            sync_dir(&self.dir).inspect_err(|e| self.poison(e))?;
        }
        remove_snapshots(&self.dir, superseded)
            .inspect_err(|e| tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove superseded producer snapshots"))
            .ok();
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock_state(&self) -> Result<MutexGuard<'_, State>, StorageError> {
        self.state.lock().map_err(|_| {
            // A panic mid-append may have left the state half-updated.
            self.poisoned.store(true, Ordering::Release);
            self.poisoned_error()
        })
    }

    /// The state for read-only accessors that cannot fail. A panic elsewhere leaves the
    /// state readable (and the log poisoned for writes via `lock_state`).
    fn state_view(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn poisoned_error(&self) -> StorageError {
        StorageError::Poisoned {
            path: self.dir.clone(),
        }
    }

    fn check_not_poisoned(&self) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Err(self.poisoned_error());
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        self.check_not_poisoned()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    fn poison(&self, cause: &StorageError) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(dir = %self.dir.display(), error = %cause, source = ?std::error::Error::source(cause), "log poisoned; refusing further writes");
        }
    }

    /// fdatasync `file`; a failure poisons the log (the kernel may have dropped the dirty
    /// pages, so retrying could report success for lost data).
    fn fsync(&self, file: &fs::File, path: &Path) -> Result<(), StorageError> {
        #[cfg(any(test, feature = "fault-injection"))]
        let injected = self.fail_syncs.load(Ordering::Acquire);
        #[cfg(not(any(test, feature = "fault-injection")))]
        let injected = false;
        let result = if injected {
            Err(io::Error::other("injected fsync failure"))
        } else {
            let started = std::time::Instant::now();
            let synced = file.sync_data();
            crate::FSYNC_SECONDS.observe(started.elapsed());
            synced
        };
        result.map_err(|e| {
            let err = StorageError::io(IoOp::Fsync, path, e);
            self.poison(&err);
            err
        })
    }

    /// Test hook: every later fsync fails, as if the disk reported EIO.
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) fn inject_fsync_failures(&self) {
        self.fail_syncs.store(true, Ordering::Release);
    }

    /// Test hook: while `on`, every append writes half its bytes and fails with ENOSPC.
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) fn inject_write_failures(&self, on: bool) {
        self.fail_writes.store(on, Ordering::Release);
    }
}
