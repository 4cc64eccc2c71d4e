//! [`Log`]: one partition's log, a sequence of segments in one directory.

use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;

use crate::batch::Marker;
use crate::batch::{self, BatchDefect, Batches, Check};
use crate::config::{LogConfig, Recovery, TimestampType};
use crate::error::StorageError;
use crate::index::{IndexBuilder, IndexMark, SegmentIndex, NO_TIMESTAMP};
use crate::producer::{self, AbortedTxn, BatchSeq, Producers, Verdict};
use crate::segment::{
    parse_file_name, sync_dir, write_atomically, IndexSync, Sealed, Segment, INDEX_SUFFIX,
    LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// Name of the checkpoint file holding the log start offset moved by DeleteRecords.
/// File name of the aborted-transaction index: `producer_id first_offset last_offset` lines.
pub const ABORTED_INDEX: &str = "aborted-txns";

/// Reads the aborted-transaction index; missing means empty, unparsable lines are skipped.
fn load_aborted(dir: &Path) -> Result<Vec<AbortedTxn>, StorageError> {
    let path = dir.join(ABORTED_INDEX);
    let text = match fs::read(&path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    Ok(parse_aborted(&text))
}

/// Parses the aborted-transaction index's text, skipping lines that do not parse.
pub(crate) fn parse_aborted(text: &str) -> Vec<AbortedTxn> {
    let mut out = Vec::new();
    // Only whole lines: a cut one could otherwise read as a different, shorter offset.
    for line in text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
    {
        let f: Vec<i64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [producer_id, first_offset, last_offset] = f.as_slice() {
            if first_offset > last_offset || *producer_id < 0 {
                continue;
            }
            out.push(AbortedTxn {
                producer_id: *producer_id,
                first_offset: *first_offset,
                last_offset: *last_offset,
            });
        }
    }
    out
}

pub const LOG_START_CHECKPOINT: &str = "log-start-offset";
const CHECKPOINT_VERSION: &str = "0";
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
    #[cfg(test)]
    fail_syncs: AtomicBool,
    /// Test hook: make every append's write fail half way (a full disk).
    #[cfg(test)]
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
    /// Aborted transactions, by marker offset; persisted in `aborted-txns`.
    aborted: Vec<AbortedTxn>,
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
            #[cfg(test)]
            fail_syncs: AtomicBool::new(false),
            #[cfg(test)]
            fail_writes: AtomicBool::new(false),
        }
    }

    /// Creates an empty log in a new directory: the directory, a first segment at offset 0,
    /// then fsyncs the directory and its parent so the partition survives a crash.
    pub fn create(dir: PathBuf, config: LogConfig) -> Result<Log, StorageError> {
        fs::create_dir_all(&dir).map_err(|e| StorageError::io("create directory", &dir, e))?;
        let existing = fs::read_dir(&dir)
            .map_err(|e| StorageError::io("list directory", &dir, e))?
            .filter_map(Result::ok)
            .any(|e| parse_file_name(&e.file_name().to_string_lossy(), LOG_SUFFIX).is_some());
        if existing {
            return Err(StorageError::io(
                "create log",
                &dir,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "directory already holds segments",
                ),
            ));
        }
        let segment = Segment::create(&dir, 0)?;
        sync_dir(&dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        let state = State {
            segments: vec![Arc::new(segment)],
            active: Active {
                index: IndexBuilder::new(0),
                persisted: None,
                rolling_base_ms: None,
            },
            log_start: 0,
            log_end: 0,
            producers: Producers::default(),
            aborted: Vec::new(),
        };
        Ok(Log::from_parts(dir, config, state))
    }

    /// Opens an existing log, recovering as `recovery` says (see [`Recovery`]). Both modes
    /// rebuild any missing or invalid index, remove stray `*.tmp` / `*.deleted` files and
    /// orphan index files, and finish deletions interrupted by a crash.
    pub fn open(
        dir: PathBuf,
        config: LogConfig,
        recovery: Recovery,
    ) -> Result<(Log, RecoveryReport), StorageError> {
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| StorageError::io("create directory", &dir, e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        // Before listing segments: a cleaner swap interrupted by a crash is finished first.
        crate::cleaner::swap::recover(&dir)?;
        let mut report = RecoveryReport::default();
        // Files removed here need no directory fsync: if a crash brings one back, the next
        // open removes it again.
        let mut log_bases = Vec::new();
        let mut index_files = Vec::new();
        let entries =
            fs::read_dir(&dir).map_err(|e| StorageError::io("list directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list directory", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
                tracing::info!(path = %path.display(), "removing stray file");
                fs::remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
            } else if let Some(base) = parse_file_name(&name, LOG_SUFFIX) {
                log_bases.push(base);
            } else if let Some(base) = parse_file_name(&name, INDEX_SUFFIX)
                .or_else(|| parse_file_name(&name, TIME_INDEX_SUFFIX))
            {
                index_files.push((base, path));
            }
        }
        log_bases.sort_unstable();
        for (base, path) in index_files {
            if log_bases.binary_search(&base).is_err() {
                tracing::info!(path = %path.display(), "removing index without a log file");
                fs::remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
            }
        }
        let checkpoint = read_checkpoint(&dir)?;

        let Some((&active_base, sealed_bases)) = log_bases.split_last() else {
            let base = checkpoint.unwrap_or(0).max(0);
            tracing::info!(dir = %dir.display(), base, "empty log directory; creating first segment");
            let segment = Segment::create(&dir, base)?;
            sync_dir(&dir)?;
            let state = State {
                segments: vec![Arc::new(segment)],
                active: Active {
                    index: IndexBuilder::new(base),
                    persisted: None,
                    rolling_base_ms: None,
                },
                log_start: base,
                log_end: base,
                producers: Producers::default(),
                aborted: Vec::new(),
            };
            report.segments = 1;
            report.log_end_offset = base;
            return Ok((Log::from_parts(dir, config, state), report));
        };

        let mut segments = Vec::with_capacity(log_bases.len());
        for &base in sealed_bases {
            let segment = Segment::open(&dir, base)?;
            recover_sealed(&dir, &segment, &config, &mut report)?;
            segments.push(Arc::new(segment));
        }
        let active_segment = Segment::open(&dir, active_base)?;
        let (active, log_end, durable) =
            recover_active(&active_segment, &config, recovery, &mut report)?;
        segments.push(Arc::new(active_segment));

        let first_base = segments.first().map_or(active_base, |s| s.base_offset());
        let mut log_start = checkpoint.unwrap_or(first_base).max(first_base);
        let clamped = log_start > log_end;
        if clamped {
            tracing::warn!(dir = %dir.display(), log_start, log_end, "log start checkpoint is beyond the log end; clamping");
            log_start = log_end;
        }
        let mut state = State {
            segments,
            active,
            log_start,
            log_end,
            producers: Producers::default(),
            aborted: Vec::new(),
        };
        // A crash between writing the checkpoint and deleting the segments it covers.
        let doomed = take_segments_below_start(&mut state);
        delete_segment_files(&dir, &doomed)?;

        let log = Log::from_parts(dir, config, state);
        // After a crash the active segment's bytes may be only in the page cache (the process
        // died, not the machine). They need no fsync here: every acknowledged acks=all write
        // was fsynced before its ack. But they are not known durable either, so the first
        // `flush_to` that covers them (a retried idempotent batch answered with its original
        // offsets, say) fsyncs the segment. Sealed segments were fsynced when rolled.
        log.durable.store(durable.min(log_end), Ordering::Release);
        if clamped {
            // Persist the clamp: left beyond the end, the checkpoint would hide the offsets
            // appended from here on at the next open.
            log.write_checkpoint(log_start)?;
        }
        log.restore_producers(recovery)?;
        report.segments = log.segment_count();
        report.log_end_offset = log_end;
        tracing::debug!(
            dir = %log.dir.display(),
            segments = report.segments,
            log_start,
            log_end,
            truncated_bytes = report.truncated_bytes,
            rebuilt_indexes = report.rebuilt_indexes,
            "opened log"
        );
        Ok((log, report))
    }

    /// Validates every batch, assigns consecutive offsets, applies LogAppendTime if
    /// configured, rolls first if needed, then writes all the bytes with one positional
    /// write and updates the indexes. Nothing is written if any batch is invalid.
    ///
    /// The bytes are not durable until [`Log::flush_to`] returns for `last_offset + 1`.
    pub fn append(&self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo, StorageError> {
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
                    let marker = batch::marker_of(b.bytes).ok_or(StorageError::InvalidBatch {
                        reason: BatchDefect::BadRecord,
                        position: b.position,
                    })?;
                    Some((b.header.producer_id(), b.header.producer_epoch(), marker))
                } else {
                    None
                },
            });
        }
        let log_append_time =
            (config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
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
        if let Some(dup) = self.check_sequences(st, &metas)? {
            return Ok(dup);
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
            next += m.offset_count;
        }
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
        // A marker rewrites the aborted index; if that fails, the producer state goes back.
        let producers_before = metas
            .iter()
            .any(|m| m.marker.is_some())
            .then(|| (st.producers.clone(), st.aborted.len()));
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
            if let Some((id, epoch, marker)) = m.marker {
                let commit = marker == Marker::Commit;
                if let Some(aborted) = st.producers.end_txn(id, epoch, commit, next, now_ms) {
                    st.aborted.push(aborted);
                    if let Err(e) = self.save_aborted(&st.aborted) {
                        if let Some((producers, aborted)) = producers_before {
                            st.producers = producers;
                            st.aborted.truncate(aborted);
                        }
                        st.log_end = base_offset;
                        segment.set_len(position);
                        return Err(self.undo_append(st, &segment, undo, e));
                    }
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

    /// The append's one positional write. Under test, [`Self::inject_write_failures`] makes
    /// it write half the bytes and then fail as a full disk does.
    fn write_batches(
        &self,
        segment: &Segment,
        batches: &[u8],
        position: u64,
    ) -> Result<(), StorageError> {
        #[cfg(test)]
        if self.fail_writes.load(Ordering::Acquire) {
            let half = batches.get(..batches.len() / 2).unwrap_or_default();
            segment.write_at(half, position)?;
            return Err(StorageError::io(
                "write",
                segment.log_path(),
                io::Error::from_raw_os_error(28), // ENOSPC
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
            Ok(()) if !self.is_poisoned() && !is_fsync_error(&err) => {
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
            if let Some((id, epoch, _)) = m.marker {
                st.producers.check_marker(id, epoch)?;
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
        match st.producers.check(id, epoch, first_seq, last)? {
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

    /// Loads the producer snapshot after a clean stop, or (after a crash) rebuilds producer
    /// state from the batch headers of the two newest segments.
    fn restore_producers(&self, recovery: Recovery) -> Result<(), StorageError> {
        {
            let mut st = self.lock_state()?;
            let log_end = st.log_end;
            // Entries past a truncated tail describe markers that are gone.
            st.aborted = load_aborted(&self.dir)?
                .into_iter()
                .filter(|a| a.last_offset < log_end)
                .collect();
        }
        let path = self.dir.join(producer::SNAPSHOT);
        let existed = path.exists();
        let snapshot = (recovery == Recovery::Clean && existed)
            .then(|| Producers::load(&self.dir))
            .flatten();
        // The snapshot describes the log as it was closed; once writes resume it is stale.
        if existed {
            fs::remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
        }
        if let Some(p) = snapshot {
            self.lock_state()?.producers = p;
            return Ok(());
        }
        if recovery == Recovery::Clean && !existed {
            // `close` writes a snapshot whenever any producer is known: after a clean stop,
            // no snapshot means no idempotent producer, and nothing needs reading.
            return Ok(());
        }
        if existed && recovery == Recovery::Clean {
            tracing::warn!(path = %path.display(), "unreadable producer snapshot; rebuilding from the log");
        }
        let (start, end) = {
            let st = self.lock_state()?;
            let n = st.segments.len();
            let from = st
                .segments
                .get(n.saturating_sub(2))
                .map_or(st.log_start, |s| s.base_offset())
                .max(st.log_start);
            (from, st.log_end)
        };
        let mut producers = Producers::default();
        let mut found_aborts = Vec::new();
        let mut offset = start;
        while offset < end {
            let out = self.read(offset, 4 << 20)?;
            if out.records.is_empty() {
                break;
            }
            let before = offset;
            for b in Batches::new(&out.records, Check::Structure) {
                let Ok(b) = b else { break };
                let h = &b.header;
                let last_offset = h.base_offset.saturating_add(h.offset_count() - 1);
                if h.producer_id() >= 0 && !h.is_control() {
                    let seq = BatchSeq {
                        first_seq: h.base_sequence(),
                        last_seq: producer::last_seq(h.base_sequence(), h.offset_count()),
                        first_offset: h.base_offset,
                        last_offset,
                    };
                    // The batch's own clock stands in for the lost append time.
                    if h.is_transactional() {
                        producers.record_txn(
                            h.producer_id(),
                            h.producer_epoch(),
                            seq,
                            h.max_timestamp,
                        );
                    } else {
                        producers.record(h.producer_id(), h.producer_epoch(), seq, h.max_timestamp);
                    }
                } else if h.producer_id() >= 0 {
                    if let Some(marker) = batch::marker_of(b.bytes) {
                        let commit = marker == Marker::Commit;
                        let ended = producers.end_txn(
                            h.producer_id(),
                            h.producer_epoch(),
                            commit,
                            h.base_offset,
                            h.max_timestamp,
                        );
                        found_aborts.extend(ended);
                    }
                }
                offset = offset.max(last_offset.saturating_add(1));
            }
            if offset == before {
                break; // nothing past `offset` (a damaged header): stop rather than spin
            }
        }
        let mut st = self.lock_state()?;
        st.producers = producers;
        // Markers whose index entry did not reach the file before a crash.
        let before = st.aborted.len();
        for a in found_aborts {
            if !st.aborted.contains(&a) {
                st.aborted.push(a);
            }
        }
        if st.aborted.len() != before {
            st.aborted.sort_by_key(|a| a.last_offset);
            self.save_aborted(&st.aborted)?;
        }
        Ok(())
    }

    /// Rewrites the aborted-transaction index atomically.
    fn save_aborted(&self, aborted: &[AbortedTxn]) -> Result<(), StorageError> {
        let mut text = String::new();
        for a in aborted {
            text.push_str(&format!(
                "{} {} {}\n",
                a.producer_id, a.first_offset, a.last_offset
            ));
        }
        let path = self.dir.join(ABORTED_INDEX);
        let tmp = self.dir.join(format!("{ABORTED_INDEX}.tmp"));
        fs::write(&tmp, text.as_bytes()).map_err(|e| StorageError::io("write", &tmp, e))?;
        let f = fs::File::open(&tmp).map_err(|e| StorageError::io("open", &tmp, e))?;
        self.fsync(&f, &tmp)?;
        fs::rename(&tmp, &path).map_err(|e| StorageError::io("rename", &path, e))?;
        sync_dir(&self.dir)
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
    pub fn active_producers(&self) -> Vec<crate::producer::ActiveProducer> {
        self.state_view().producers.active()
    }

    /// Aborted transactions that overlap `[from, to)`, for a read_committed fetch.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let st = self.state_view();
        st.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    fn should_roll(
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
    fn roll(&self, st: &mut State, now_ms: i64) -> Result<(), StorageError> {
        let old = Arc::clone(st.active_segment());
        st.active.index.seal();
        self.fsync(old.log_file(), old.log_path())?;
        // A failed index write (a full disk) leaves the old segment active and its entries in
        // memory: a retried roll writes the files again.
        if let Err(e) =
            old.write_index_files(&self.dir, &st.active.index.index, IndexSync::FilesOnly)
        {
            if is_fsync_error(&e) {
                self.poison(&e);
            }
            return Err(e);
        }
        let new_base = st.log_end;
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
        tracing::debug!(dir = %self.dir.display(), old_base = old.base_offset(), new_base, bytes = old.len(), now_ms, "rolled segment");
        Ok(())
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

    /// Whole batches starting with the one holding `offset`, up to `max_bytes`, but always at
    /// least one whole batch if any exists at or after `offset` (KIP-74). Data from one
    /// segment per call.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadOutcome, StorageError> {
        let interval = self.config().index_interval_bytes;
        let (mut segment, mut end, mut hint, log_start, log_end) = {
            let st = self.state_view();
            if offset < st.log_start || offset > st.log_end {
                return Err(StorageError::OffsetOutOfRange {
                    requested: offset,
                    log_start: st.log_start,
                    log_end: st.log_end,
                });
            }
            let i = st.segment_index_for(offset);
            let segment = st.segments.get(i).unwrap_or_else(|| st.active_segment());
            let hint = st.is_active(i).then(|| {
                u64::from(
                    st.active
                        .index
                        .index
                        .position_for(relative(offset, segment.base_offset())),
                )
            });
            (
                Arc::clone(segment),
                segment.len(),
                hint,
                st.log_start,
                st.log_end,
            )
        };
        let empty = ReadOutcome {
            records: Bytes::new(),
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        if offset == log_end {
            return Ok(empty);
        }
        loop {
            let mut pos = match hint {
                Some(p) => p,
                None => u64::from(
                    segment
                        .index(interval)?
                        .position_for(relative(offset, segment.base_offset())),
                ),
            };
            while let Some(header) = segment.read_header(pos, end)? {
                let size = header.total_size().map_err(|d| segment.damaged(pos, d))?;
                if header.last_offset() < offset {
                    pos += size as u64;
                    continue;
                }
                let want = max_bytes.max(size) as u64;
                let len = usize::try_from(want.min(end - pos)).unwrap_or(size);
                let mut buf = vec![0u8; len];
                segment.read_exact_at(&mut buf, pos)?;
                buf.truncate(batch::whole_batches_len(&buf));
                return Ok(ReadOutcome {
                    records: Bytes::from(buf),
                    ..empty
                });
            }
            // Past this segment's last batch: the offset's batch starts the next segment.
            let st = self.state_view();
            let next = st
                .segments
                .iter()
                .position(|s| s.base_offset() > segment.base_offset());
            let Some(i) = next else {
                return Ok(empty);
            };
            let Some(next_segment) = st.segments.get(i) else {
                return Ok(empty);
            };
            segment = Arc::clone(next_segment);
            end = segment.len();
            hint = Some(0);
        }
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

    /// First offset at or after the log start whose record timestamp is ≥ `ts`, with that
    /// timestamp (ListOffsets by timestamp). Exact inside uncompressed batches; a compressed
    /// batch answers with its base offset and max timestamp. None if no such record.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let interval = self.config().index_interval_bytes;
        // (segment, committed end, start position if already known)
        let (candidates, log_start) = {
            let st = self.state_view();
            let mut candidates = Vec::new();
            for (i, segment) in st.segments.iter().enumerate() {
                if st.is_active(i) {
                    if st
                        .active
                        .index
                        .max_timestamp()
                        .is_some_and(|(max, _)| max >= ts)
                    {
                        let from = st
                            .active
                            .index
                            .index
                            .relative_offset_for_time(ts)
                            .max(relative(st.log_start, segment.base_offset()));
                        let pos = st.active.index.index.position_for(from);
                        candidates.push((Arc::clone(segment), segment.len(), Some(u64::from(pos))));
                    }
                } else if segment
                    .sealed()
                    .and_then(|s| s.max_timestamp)
                    .is_some_and(|(max, _)| max >= ts)
                {
                    candidates.push((Arc::clone(segment), segment.len(), None));
                }
            }
            (candidates, st.log_start)
        };
        for (segment, end, hint) in candidates {
            let start = match hint {
                Some(p) => p,
                None => {
                    let index = segment.index(interval)?;
                    let from = index
                        .relative_offset_for_time(ts)
                        .max(relative(log_start, segment.base_offset()));
                    u64::from(index.position_for(from))
                }
            };
            let mut found = None;
            let mut damaged = None;
            segment.scan(start, end, Check::Structure, |pos, h, bytes| {
                if h.max_timestamp < ts || h.last_offset() < log_start {
                    return Ok(ControlFlow::Continue(()));
                }
                match batch::find_record_by_timestamp(bytes, ts, log_start) {
                    Ok(Some(hit)) => {
                        found = Some(hit);
                        Ok(ControlFlow::Break(()))
                    }
                    Ok(None) => Ok(ControlFlow::Continue(())),
                    Err(d) => {
                        damaged = Some((pos, d));
                        Ok(ControlFlow::Break(()))
                    }
                }
            })?;
            if let Some((pos, d)) = damaged {
                return Err(segment.damaged(pos, d));
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// (max timestamp, base offset of the batch holding it) over the whole log, for
    /// ListOffsets `MAX_TIMESTAMP`. The earliest batch wins a tie. None if the log is empty
    /// or no batch has a timestamp (all -1).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.state_view();
        let mut best: Option<(i64, i64)> = None;
        for (i, segment) in st.segments.iter().enumerate() {
            let max = if st.is_active(i) {
                st.active.index.max_timestamp()
            } else {
                segment.sealed().and_then(|s| s.max_timestamp)
            };
            if let Some(m) = max {
                if best.is_none_or(|b| m.0 > b.0) {
                    best = Some(m);
                }
            }
        }
        best
    }

    /// DeleteRecords: moves the log start to `offset`, persists it in the checkpoint, then
    /// deletes segments wholly below it. Returns the new log start (unchanged if `offset` is
    /// not above it). `offset` beyond the log end is `OffsetOutOfRange`.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        self.check_writable()?;
        let _maintenance = self.maintenance.lock().map_err(|_| self.poisoned_error())?;
        {
            let st = self.lock_state()?;
            if offset < 0 || offset > st.log_end {
                return Err(StorageError::OffsetOutOfRange {
                    requested: offset,
                    log_start: st.log_start,
                    log_end: st.log_end,
                });
            }
            if offset <= st.log_start {
                return Ok(st.log_start);
            }
        }
        // Persist first: once a client is told records are deleted, they stay deleted.
        self.write_checkpoint(offset)?;
        let doomed = {
            let mut st = self.lock_state()?;
            st.log_start = st.log_start.max(offset);
            take_segments_below_start(&mut st)
        };
        delete_segment_files(&self.dir, &doomed)?;
        tracing::info!(dir = %self.dir.display(), log_start = offset, segments_deleted = doomed.len(), "moved log start");
        Ok(offset)
    }

    /// Time and size retention over sealed segments, oldest first; never the active one,
    /// but the active one is first rolled if it is non-empty and older than `segment.ms`.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        self.check_writable()?;
        let config = self.config();
        let _maintenance = self.maintenance.lock().map_err(|_| self.poisoned_error())?;
        let (sealed, mut total) = {
            let mut guard = self.lock_state()?;
            let st = &mut *guard;
            let expired = st
                .producers
                .expire(now_ms, config.producer_id_expiration_ms);
            if expired > 0 {
                tracing::debug!(dir = %self.dir.display(), expired, "forgot idle producers");
            }
            // Aborted transactions wholly below the log start no longer matter to any reader.
            let log_start = st.log_start;
            let before = st.aborted.len();
            st.aborted.retain(|a| a.last_offset >= log_start);
            if st.aborted.len() != before {
                self.save_aborted(&st.aborted)?;
            }
            let too_old = st
                .active
                .rolling_base_ms
                .is_some_and(|base| now_ms.saturating_sub(base) > config.roll_ms());
            if st.active_segment().len() > 0 && too_old {
                self.roll(st, now_ms)?;
            }
            let n = st.segments.len().saturating_sub(1);
            let sealed: Vec<Arc<Segment>> = st.segments.iter().take(n).cloned().collect();
            let total: u64 = st.segments.iter().map(|s| s.len()).sum();
            (sealed, total)
        };
        let mut count = 0;
        let mut bytes_deleted = 0u64;
        for segment in &sealed {
            let expired = config.retention_ms >= 0 && {
                let newest = match segment.sealed().and_then(|s| s.max_timestamp) {
                    Some((ts, _)) => ts,
                    None => segment.modified_ms()?,
                };
                newest < now_ms.saturating_sub(config.retention_ms)
            };
            let oversize = u64::try_from(config.retention_bytes)
                .is_ok_and(|limit| total.saturating_sub(segment.len()) >= limit);
            // `cleanup.policy=compact` alone: only the cleaner removes records.
            if !config.compaction.delete || !(expired || oversize) {
                break;
            }
            count += 1;
            total -= segment.len();
            bytes_deleted += segment.len();
        }
        if count == 0 {
            return Ok(RetentionOutcome {
                segments_deleted: 0,
                bytes_deleted: 0,
                log_start_offset: self.log_start_offset(),
            });
        }
        let new_start = {
            let st = self.lock_state()?;
            let next_base = st
                .segments
                .get(count)
                .map_or(st.log_end, |s| s.base_offset());
            next_base.max(st.log_start)
        };
        // Whole segments go, so the first remaining segment's base is the new log start even
        // without a checkpoint (open takes the larger of the two): delete first, then record
        // the start. On a full disk the deletion frees space and the checkpoint may then fail
        // harmlessly.
        let doomed = {
            let mut st = self.lock_state()?;
            st.log_start = new_start;
            let doomed: Vec<Arc<Segment>> = st.segments.drain(..count).collect();
            doomed
        };
        delete_segment_files(&self.dir, &doomed)?;
        if let Err(e) = self.write_checkpoint(new_start) {
            if self.is_poisoned() {
                return Err(e);
            }
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not record the log start after retention; the segments still bound it");
        }
        tracing::debug!(dir = %self.dir.display(), segments_deleted = count, bytes_deleted, log_start = new_start, "retention deleted segments");
        Ok(RetentionOutcome {
            segments_deleted: count,
            bytes_deleted,
            log_start_offset: new_start,
        })
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
        let producers = self.lock_state()?;
        if producers.producers.len() > 0 {
            producers.producers.save(&self.dir)?;
            renamed = true;
        }
        if renamed {
            sync_dir(&self.dir)?;
        }
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
        #[cfg(test)]
        let injected = self.fail_syncs.load(Ordering::Acquire);
        #[cfg(not(test))]
        let injected = false;
        let result = if injected {
            Err(io::Error::other("injected fsync failure"))
        } else {
            file.sync_data()
        };
        result.map_err(|e| {
            let err = StorageError::io("fsync", path, e);
            self.poison(&err);
            err
        })
    }

    fn write_checkpoint(&self, log_start: i64) -> Result<(), StorageError> {
        let contents = format!("{CHECKPOINT_VERSION}\n{log_start}\n");
        write_atomically(&self.dir, LOG_START_CHECKPOINT, contents.as_bytes()).inspect_err(|e| {
            if matches!(e, StorageError::Io { op, .. } if op.starts_with("fsync")) {
                self.poison(e);
            }
        })
    }

    /// Test hook: every later fsync fails, as if the disk reported EIO.
    #[cfg(test)]
    pub(crate) fn inject_fsync_failures(&self) {
        self.fail_syncs.store(true, Ordering::Release);
    }

    /// Test hook: while `on`, every append writes half its bytes and fails with ENOSPC.
    #[cfg(test)]
    pub(crate) fn inject_write_failures(&self, on: bool) {
        self.fail_writes.store(on, Ordering::Release);
    }
}

/// The log as the cleaner sees it when it plans a pass (see [`Log::cleaner_view`]).
pub(crate) struct CleanerView {
    /// Every segment, oldest first; the last one is active (never cleaned).
    pub segments: Vec<Arc<Segment>>,
    pub log_start: i64,
    pub last_stable: i64,
    /// Last offset of each known producer's newest data batch.
    pub producer_last_offsets: std::collections::HashMap<i64, i64>,
}

// Hooks for the log cleaner (`crate::cleaner`), kept together.
impl Log {
    /// A consistent snapshot of what a cleaning pass needs. Fails if the log is closed or
    /// poisoned: it must not be cleaned then.
    pub(crate) fn cleaner_view(&self) -> Result<CleanerView, StorageError> {
        self.check_writable()?;
        let st = self.lock_state()?;
        Ok(CleanerView {
            segments: st.segments.clone(),
            log_start: st.log_start,
            last_stable: st
                .producers
                .first_unstable_offset()
                .unwrap_or(st.log_end)
                .min(st.log_end),
            producer_last_offsets: st.producers.last_batch_offsets(),
        })
    }

    /// Replaces the consecutive sealed segments `old` by the one segment `install` puts in
    /// place of their files. Holds the maintenance lock throughout (so retention and
    /// DeleteRecords cannot remove `old` meanwhile) and the append lock only for the
    /// in-memory switch. Returns false, having run nothing, if `old` are no longer all in
    /// the log. An `install` failure poisons the log: its files may be half-way between the
    /// two states, which only [`Log::open`] finishes.
    pub(crate) fn replace_segments(
        &self,
        old: &[Arc<Segment>],
        install: impl FnOnce() -> Result<Segment, StorageError>,
    ) -> Result<bool, StorageError> {
        self.check_writable()?;
        let _maintenance = self.maintenance.lock().map_err(|_| self.poisoned_error())?;
        let find = |st: &State| {
            let first = old.first()?;
            let i = st.segments.iter().position(|s| Arc::ptr_eq(s, first))?;
            let run = st.segments.get(i..i + old.len())?;
            let same = run.iter().zip(old).all(|(a, b)| Arc::ptr_eq(a, b));
            // Never the active segment.
            (same && i + old.len() < st.segments.len()).then_some(i)
        };
        if find(&*self.lock_state()?).is_none() {
            return Ok(false);
        }
        let segment = install().inspect_err(|e| self.poison(e))?;
        let mut st = self.lock_state()?;
        // Retention and DeleteRecords wait on the maintenance lock and a roll only appends,
        // so `old` is still where it was.
        let Some(i) = find(&st) else {
            let e = self.poisoned_error();
            self.poison(&e);
            return Err(e);
        };
        st.segments.splice(i..i + old.len(), [Arc::new(segment)]);
        Ok(true)
    }
}

/// What an append changed before it was published, to undo it if a write fails.
#[derive(Clone, Copy)]
struct Undo {
    /// The active segment's committed length before the append.
    position: u64,
    index: IndexMark,
}

/// Whether `e` is a failed fsync, after which the kernel may have dropped dirty pages.
fn is_fsync_error(e: &StorageError) -> bool {
    matches!(e, StorageError::Io { op, .. } if op.starts_with("fsync"))
}

struct BatchMeta {
    position: usize,
    size: usize,
    offset_count: i64,
    max_timestamp: i64,
    /// Producer id, epoch and first sequence of an idempotent producer's data batch.
    producer: Option<(i64, i16, i32)>,
    /// The data batch belongs to a transaction.
    transactional: bool,
    /// A transaction marker: producer id, epoch, commit or abort.
    marker: Option<(i64, i16, Marker)>,
}

/// Removes from `state` the sealed segments wholly below the log start (those whose
/// successor starts at or below it). The active segment always stays.
fn take_segments_below_start(state: &mut State) -> Vec<Arc<Segment>> {
    let n = state
        .segments
        .windows(2)
        .take_while(|pair| {
            pair.get(1)
                .is_some_and(|next| next.base_offset() <= state.log_start)
        })
        .count();
    state.segments.drain(..n).collect()
}

/// Deletes segment files oldest first: rename each to `*.deleted` (fsync the directory, so
/// a crash leaves a prefix of the log deleted, never a hole), then remove them.
fn delete_segment_files(dir: &Path, segments: &[Arc<Segment>]) -> Result<(), StorageError> {
    let mut renamed = Vec::new();
    for segment in segments {
        for path in segment.file_paths() {
            let mut deleted = path.as_os_str().to_owned();
            deleted.push(DELETED_SUFFIX);
            let deleted = PathBuf::from(deleted);
            match fs::rename(path, &deleted) {
                Ok(()) => renamed.push(deleted),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("rename for deletion", path, e)),
            }
        }
        sync_dir(dir)?;
    }
    for path in renamed {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("remove", &path, e)),
        }
    }
    if !segments.is_empty() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn read_checkpoint(dir: &Path) -> Result<Option<i64>, StorageError> {
    let path = dir.join(LOG_START_CHECKPOINT);
    // Bytes, not a string: damage that is not UTF-8 must not stop the log from opening.
    let text = match fs::read(&path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    let parsed = parse_checkpoint(&text);
    if parsed.is_none() {
        // Written atomically, so this is outside damage; the segments still bound the start.
        tracing::warn!(path = %path.display(), "unreadable log start checkpoint; ignoring it");
    }
    Ok(parsed)
}

/// Parses the log start checkpoint's text: the format version, then the offset.
pub(crate) fn parse_checkpoint(text: &str) -> Option<i64> {
    // Both lines whole: "0\n4" is a cut "0\n42\n", not log start 4.
    if text.matches('\n').count() < 2 {
        return None;
    }
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(CHECKPOINT_VERSION), Some(offset)) => offset.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Checks a sealed segment's index files, rebuilding them from the log if missing or invalid,
/// and records the segment's max timestamp.
fn recover_sealed(
    dir: &Path,
    segment: &Segment,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    let len = segment.len();
    let loaded = match segment.load_index_files(len)? {
        Ok(index) => match sealed_max_matches(segment, &index, len)? {
            Ok(max) => Ok((index, max)),
            Err(defect) => Err(defect),
        },
        Err(defect) => Err(format!("{defect:?}")),
    };
    match loaded {
        Ok((_index, max)) => {
            // Keep the loaded index only lazily: most sealed segments are never read.
            segment.seal(Sealed { max_timestamp: max }, None);
        }
        Err(defect) => {
            tracing::warn!(path = %segment.log_path().display(), ?defect, "rebuilding missing or invalid index");
            let (builder, scan_end) = segment.rebuild_index(len, config.index_interval_bytes)?;
            if let Some((position, defect)) = scan_end.fault {
                let cut = len - scan_end.valid_end;
                tracing::warn!(path = %segment.log_path().display(), position, %defect, truncated_bytes = cut, "truncating damaged sealed segment");
                segment.truncate(scan_end.valid_end)?;
                report.truncated_bytes += cut;
            }
            segment.write_index_files(dir, &builder.index, IndexSync::All)?;
            report.rebuilt_indexes += 1;
            segment.seal(
                Sealed {
                    max_timestamp: builder.max_timestamp(),
                },
                Some(builder.index),
            );
        }
    }
    Ok(())
}

/// Checks that a sealed segment's last time entry is its max timestamp, as sealing left it,
/// by walking the batch headers after it. A time index cut short (or an offset index pointing
/// off the batch grid) would otherwise hide the segment from timestamp lookups and make
/// time retention delete it early. Cheap when timestamps increase: the max is then in the
/// last batches. Returns the max (timestamp, offset), or why the indexes must be rebuilt.
#[allow(clippy::type_complexity)]
fn sealed_max_matches(
    segment: &Segment,
    index: &SegmentIndex,
    len: u64,
) -> Result<Result<Option<(i64, i64)>, String>, StorageError> {
    let base = segment.base_offset();
    let last = index.last_time();
    let from = last.map_or(0, |t| t.relative_offset);
    let start = u64::from(index.position_for(from));
    let mut max = last.map(|t| {
        (
            t.timestamp,
            base.saturating_add(i64::from(t.relative_offset)),
        )
    });
    let mut expected = None;
    if start > 0 {
        // The entry we start from must point at a batch of the offset it names.
        let entry = index
            .offsets
            .iter()
            .find(|e| u64::from(e.position) == start)
            .map(|e| base.saturating_add(i64::from(e.relative_offset)));
        match (segment.read_header(start, len), entry) {
            (Ok(Some(h)), Some(offset)) if h.base_offset == offset => {}
            _ => {
                return Ok(Err(format!(
                    "offset index entry at byte {start} is off the batches"
                )))
            }
        }
        expected = entry;
    }
    let mut grew = false;
    let mut named = last.is_none();
    let end = segment.scan(start, len, Check::Structure, |_, h, _| {
        if let Some(t) = last {
            if h.base_offset == base.saturating_add(i64::from(t.relative_offset)) {
                // The last entry must name a batch holding its timestamp.
                if h.max_timestamp != t.timestamp {
                    return Err(BatchDefect::BadRecord);
                }
                named = true;
            }
        }
        if expected.is_some_and(|e| h.base_offset < e) {
            return Err(BatchDefect::OffsetWentBackwards {
                expected_at_least: expected.unwrap_or_default(),
                found: h.base_offset,
            });
        }
        expected = Some(h.last_offset().saturating_add(1));
        if h.max_timestamp > NO_TIMESTAMP && max.is_none_or(|m| h.max_timestamp > m.0) {
            grew = true;
            max = Some((h.max_timestamp, h.base_offset));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some((position, defect)) = end.fault {
        return Ok(Err(format!("damaged batch at byte {position}: {defect}")));
    }
    if grew || !named {
        return Ok(Err("time index lacks the segment's max timestamp".into()));
    }
    Ok(Ok(max))
}

/// Recovers the active segment: returns its mutable state, the log end offset and the offset
/// below which its bytes are known durable. Writes no index file (they are written when the
/// segment is sealed or closed) and fsyncs only a truncated tail.
fn recover_active(
    segment: &Segment,
    config: &LogConfig,
    recovery: Recovery,
    report: &mut RecoveryReport,
) -> Result<(Active, i64, i64), StorageError> {
    let len = segment.len();
    let base = segment.base_offset();
    let mut resumed = None;
    if len == 0 {
        // Nothing to index; any files left at this base would be stale.
        segment.remove_index_files()?;
        resumed = Some((IndexBuilder::new(base), None, base));
    } else if recovery == Recovery::Clean {
        match segment.load_index_files(len)? {
            Ok(index) => match walk_tail(segment, &index, len)? {
                Ok((log_end, tail_max)) => {
                    let index_max = index.last_time().map(|t| {
                        (
                            t.timestamp,
                            base.saturating_add(i64::from(t.relative_offset)),
                        )
                    });
                    let max = match (index_max, tail_max) {
                        (Some(a), Some(b)) if b.0 > a.0 => Some(b),
                        (Some(a), _) => Some(a),
                        (None, b) => b,
                    };
                    let persisted = Some((index.offsets.len(), index.times.len()));
                    let builder = IndexBuilder::resume(base, index, len, max);
                    resumed = Some((builder, persisted, log_end));
                }
                Err((position, defect)) => {
                    tracing::warn!(path = %segment.log_path().display(), position, %defect, "damaged tail despite clean shutdown; scanning");
                }
            },
            Err(defect) => {
                tracing::warn!(path = %segment.log_path().display(), ?defect, "active segment index missing or invalid; scanning");
            }
        }
    }
    let (index, persisted, log_end, durable) = match resumed {
        // A clean stop fsynced the data before writing its marker.
        Some((builder, persisted, log_end)) => (builder, persisted, log_end, log_end),
        None => {
            let truncated_before = report.truncated_bytes;
            let (builder, log_end) = scan_active(segment, config, report)?;
            report.rebuilt_indexes += 1;
            // A truncation was fsynced (it must be durable before new appends are
            // acknowledged), and that fsync covered the bytes before it too.
            let synced = recovery == Recovery::Clean || report.truncated_bytes > truncated_before;
            (builder, None, log_end, if synced { log_end } else { base })
        }
    };
    let rolling_base_ms = match segment.read_header(0, segment.len())? {
        Some(first) if first.max_timestamp > NO_TIMESTAMP => Some(first.max_timestamp),
        Some(_) => Some(segment.modified_ms()?),
        None => None,
    };
    Ok((
        Active {
            index,
            persisted,
            rolling_base_ms,
        },
        log_end,
        durable,
    ))
}

/// Clean-mode check of the active segment: walks the batch headers after the last offset
/// index entry. Returns the log end and the max timestamp seen, or the first fault.
#[allow(clippy::type_complexity)]
fn walk_tail(
    segment: &Segment,
    index: &SegmentIndex,
    len: u64,
) -> Result<Result<(i64, Option<(i64, i64)>), (u64, BatchDefect)>, StorageError> {
    let base = segment.base_offset();
    // From the batch of the last time entry, not just the last offset entry: if the time
    // index was cut short, the max timestamp may be in any batch after its last entry.
    let from = index.last_time().map_or(0, |t| t.relative_offset);
    let i = index.offsets.partition_point(|e| e.relative_offset <= from);
    let (start, mut expected) =
        i.checked_sub(1)
            .and_then(|i| index.offsets.get(i))
            .map_or((0, base), |e| {
                (
                    u64::from(e.position),
                    base.saturating_add(i64::from(e.relative_offset)),
                )
            });
    let mut max: Option<(i64, i64)> = None;
    let last_time = index.last_time();
    let mut named = last_time.is_none();
    let end = segment.scan(start, len, Check::Structure, |_, h, _| {
        // The last time entry must name a batch holding its timestamp (else: rebuild).
        if let Some(t) = last_time {
            if h.base_offset == base.saturating_add(i64::from(t.relative_offset)) {
                if h.max_timestamp != t.timestamp {
                    return Err(BatchDefect::BadRecord);
                }
                named = true;
            }
        }
        if h.base_offset < expected {
            return Err(BatchDefect::OffsetWentBackwards {
                expected_at_least: expected,
                found: h.base_offset,
            });
        }
        if h.max_timestamp > NO_TIMESTAMP && max.is_none_or(|m| h.max_timestamp > m.0) {
            max = Some((h.max_timestamp, h.base_offset));
        }
        expected = h.last_offset().saturating_add(1);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(match end.fault {
        Some(fault) => Err(fault),
        None if !named => Err((start, BatchDefect::BadRecord)),
        None => Ok((expected, max)),
    })
}

/// Scan-mode recovery of the active segment: validates every batch (CRC included, offsets
/// increasing, relative offsets and positions within 32 bits), truncates at the first bad
/// one, and rebuilds the indexes.
fn scan_active(
    segment: &Segment,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<(IndexBuilder, i64), StorageError> {
    let len = segment.len();
    let base = segment.base_offset();
    let mut builder = IndexBuilder::new(base);
    let mut expected = base;
    let interval = config.index_interval_bytes;
    let end = segment.scan(0, len, Check::Full, |pos, h, bytes| {
        if h.base_offset < expected {
            return Err(BatchDefect::OffsetWentBackwards {
                expected_at_least: expected,
                found: h.base_offset,
            });
        }
        let pos = u32::try_from(pos).map_err(|_| BatchDefect::OffsetOverflow)?;
        if h.base_offset - base > i64::from(u32::MAX) {
            return Err(BatchDefect::OffsetOverflow);
        }
        builder.on_batch(
            pos,
            h.base_offset,
            h.max_timestamp,
            bytes.len() as u64,
            interval,
        );
        expected = h.last_offset().saturating_add(1);
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some((position, defect)) = end.fault {
        let cut = len - end.valid_end;
        tracing::warn!(path = %segment.log_path().display(), position, %defect, truncated_bytes = cut, "truncating torn or corrupt tail");
        segment.truncate(end.valid_end)?;
        report.truncated_bytes += cut;
    }
    Ok((builder, expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::BatchBuilder;
    use std::sync::atomic::AtomicUsize;

    fn one(value: &[u8]) -> Vec<u8> {
        BatchBuilder::new(1_000)
            .record(1_000, None, Some(value))
            .build()
    }

    #[test]
    fn failed_fsync_poisons_appends_and_flushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create");
        log.append(&mut one(b"a"), 1).expect("append");
        log.inject_fsync_failures();
        let err = log.flush_to(1).expect_err("fsync fails");
        assert!(
            matches!(err, StorageError::Io { op: "fsync", .. }),
            "{err:?}"
        );
        assert!(log.is_poisoned());
        assert_eq!(log.durable_offset(), 0);
        // Never retried: later calls fail fast even though the disk "recovered".
        log.fail_syncs.store(false, Ordering::Release);
        assert!(matches!(
            log.flush_to(1),
            Err(StorageError::Poisoned { .. })
        ));
        assert!(matches!(
            log.append(&mut one(b"b"), 2),
            Err(StorageError::Poisoned { .. })
        ));
        assert!(matches!(
            log.delete_records_before(1),
            Err(StorageError::Poisoned { .. })
        ));
        assert_eq!(log.log_end_offset(), 1);
        // Reads still work.
        assert_eq!(
            log.read(0, 1024).expect("read").records.len(),
            one(b"a").len()
        );
    }

    #[test]
    fn failed_write_is_undone_and_the_log_stays_writable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 200,
            index_interval_bytes: 1,
            ..LogConfig::default()
        };
        let path = dir.path().join("p-0");
        let log = Log::create(path.clone(), config.clone()).expect("create");
        log.append(&mut one(b"a"), 1).expect("append");
        log.append(&mut one(b"b"), 1).expect("append");
        let before = read_bytes(&log);
        let files_before = dir_sizes(&path);

        log.inject_write_failures(true);
        for i in 0..3u8 {
            // The third one would roll: a roll followed by a failed write is undone too.
            let err = log.append(&mut one(&[i; 70]), 2).expect_err("disk full");
            assert!(
                matches!(&err, StorageError::Io { op: "write", source, .. } if source.raw_os_error() == Some(28)),
                "{err:?}"
            );
            assert!(!log.is_poisoned(), "a failed write must not poison");
            assert_eq!(log.log_end_offset(), 2);
            assert_eq!(read_bytes(&log), before);
        }
        let after = dir_sizes(&path);
        for (name, len) in &after {
            // The roll before the third write stays: its new segment is empty, and it wrote
            // the sealed segment's index files (of the first two appends only: checked by
            // the verification below).
            if !name.ends_with(".log") && !files_before.iter().any(|f| &f.0 == name) {
                continue;
            }
            let expected = files_before
                .iter()
                .find(|f| &f.0 == name)
                .map_or(0, |f| f.1);
            assert_eq!(
                *len, expected,
                "{name}: nothing of the failed writes is left"
            );
        }
        assert_eq!(log.segment_count(), 2);

        log.inject_write_failures(false);
        let info = log
            .append(&mut one(b"c"), 3)
            .expect("append after space is back");
        assert_eq!(info.base_offset, 2);
        log.flush_to(3).expect("flush");
        log.close().expect("close");
        drop(log);
        let (log, report) = Log::open(path.clone(), config, Recovery::Scan).expect("reopen");
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(report.log_end_offset, 3);
        let all = read_bytes(&log);
        assert_eq!(crate::batch::Batches::new(&all, Check::Full).count(), 3);
        let v = crate::verify::verify_log_dir(&path, crate::verify::Mode::Clean).expect("verify");
        assert!(v.is_consistent(), "{:?}", v.problems);
    }

    fn read_bytes(log: &Log) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let r = log.read(offset, 1 << 20).expect("read");
            let last = crate::batch::Batches::new(&r.records, Check::Full)
                .map(|b| b.expect("valid").header.last_offset())
                .last()
                .expect("a batch");
            out.extend_from_slice(&r.records);
            offset = last + 1;
        }
        out
    }

    fn dir_sizes(dir: &Path) -> Vec<(String, u64)> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .expect("ls")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().expect("stat").len(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn failed_fsync_during_roll_poisons() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 100,
            ..LogConfig::default()
        };
        let log = Log::create(dir.path().join("p-0"), config).expect("create");
        log.append(&mut one(&[7u8; 60]), 1).expect("append");
        log.inject_fsync_failures();
        let err = log
            .append(&mut one(&[8u8; 60]), 2)
            .expect_err("roll fsync fails");
        assert!(
            matches!(err, StorageError::Io { op: "fsync", .. }),
            "{err:?}"
        );
        assert!(log.is_poisoned());
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_end_offset(), 1);
    }

    #[test]
    fn group_commit_shares_fsyncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log =
            Arc::new(Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create"));
        let appended = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = Arc::clone(&log);
                let appended = Arc::clone(&appended);
                s.spawn(move || {
                    for i in 0..50 {
                        let info = log.append(&mut one(&[t, i]), 1).expect("append");
                        appended.fetch_add(1, Ordering::Relaxed);
                        log.flush_to(info.last_offset + 1).expect("flush");
                        assert!(log.durable_offset() > info.last_offset);
                    }
                });
            }
        });
        assert_eq!(appended.load(Ordering::Relaxed), 200);
        assert_eq!(log.durable_offset(), 200);
        assert_eq!(log.log_end_offset(), 200);
    }

    #[test]
    fn close_refuses_appends_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create");
        log.append(&mut one(b"a"), 1).expect("append");
        log.close().expect("close");
        log.close().expect("close again");
        assert_eq!(log.durable_offset(), 1);
        assert!(matches!(
            log.append(&mut one(b"b"), 2),
            Err(StorageError::Closed)
        ));
        assert_eq!(
            log.read(0, 100).expect("read").records.len(),
            one(b"a").len()
        );
    }

    #[test]
    fn checkpoint_parsing_ignores_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_checkpoint(dir.path()).expect("read"), None);
        fs::write(dir.path().join(LOG_START_CHECKPOINT), "0\n42\n").expect("write");
        assert_eq!(read_checkpoint(dir.path()).expect("read"), Some(42));
        fs::write(dir.path().join(LOG_START_CHECKPOINT), "9\n42\n").expect("write");
        assert_eq!(read_checkpoint(dir.path()).expect("read"), None);
    }
}
