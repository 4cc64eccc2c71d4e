//! Opening a log: the directory listing, recovery of sealed segments (indexes checked or
//! rebuilt) and of the active one (a clean resume, or a scan that truncates a torn tail),
//! then the producer state (see `producers.rs`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::epochs::{restore_epochs, EpochCache};
use super::producers::{remove_snapshots, restore_transactions};
use super::retention::{delete_segment_files, read_checkpoint, take_segments_below_start};
use super::{Active, Log, RecoveryReport, State, DELETED_SUFFIX, TMP_SUFFIX};
use crate::batch::{BatchDefect, Check};
use crate::config::{LogConfig, Recovery};
use crate::error::{IoOp, StorageError};
use crate::index::{IndexBuilder, SegmentIndex, NO_TIMESTAMP};
use crate::producer::{Producers, SNAPSHOT_SUFFIX};
use crate::segment::{
    parse_file_name, sync_dir, IndexSync, Sealed, Segment, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};
use crate::txn_index::TXN_INDEX_SUFFIX;

/// Side files of an older format (one producer snapshot and one aborted-transaction index
/// per partition), superseded by per-offset snapshots and per-segment `.txnindex` files.
/// Removed at open: with no snapshot, the producer state and aborted transactions are
/// rebuilt from the whole log.
const LEGACY_FILES: [&str; 2] = ["producer-state", "aborted-txns"];

impl Log {
    /// Creates an empty log in a new directory: the directory, a first segment at offset 0,
    /// then fsyncs the directory and its parent so the partition survives a crash.
    pub fn create(dir: PathBuf, config: LogConfig) -> Result<Log, StorageError> {
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(IoOp::CreateDirectory, &dir, e))?;
        let existing = fs::read_dir(&dir)
            .map_err(|e| StorageError::io(IoOp::ListDirectory, &dir, e))?
            .filter_map(Result::ok)
            .any(|e| parse_file_name(&e.file_name().to_string_lossy(), LOG_SUFFIX).is_some());
        if existing {
            return Err(StorageError::io(
                IoOp::CreateLog,
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
                txn_index_dirty: false,
            },
            log_start: 0,
            log_end: 0,
            producers: Producers::default(),
            aborted: Vec::new(),
            snapshots: BTreeSet::new(),
            epochs: EpochCache::default(),
            leader_epoch: 0,
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
            fs::create_dir_all(&dir)
                .map_err(|e| StorageError::io(IoOp::CreateDirectory, &dir, e))?;
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
        let mut snapshots = BTreeSet::new();
        let entries =
            fs::read_dir(&dir).map_err(|e| StorageError::io(IoOp::ListDirectory, &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(IoOp::ListDirectory, &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(TMP_SUFFIX)
                || name.ends_with(DELETED_SUFFIX)
                || LEGACY_FILES.contains(&name.as_str())
            {
                tracing::info!(path = %path.display(), "removing stray file");
                fs::remove_file(&path).map_err(|e| StorageError::io(IoOp::Remove, &path, e))?;
            } else if let Some(base) = parse_file_name(&name, LOG_SUFFIX) {
                log_bases.push(base);
            } else if let Some(offset) = parse_file_name(&name, SNAPSHOT_SUFFIX) {
                snapshots.insert(offset);
            } else if let Some(base) = parse_file_name(&name, INDEX_SUFFIX)
                .or_else(|| parse_file_name(&name, TIME_INDEX_SUFFIX))
                .or_else(|| parse_file_name(&name, TXN_INDEX_SUFFIX))
            {
                index_files.push((base, path));
            }
        }
        log_bases.sort_unstable();
        for (base, path) in index_files {
            if log_bases.binary_search(&base).is_err() {
                tracing::info!(path = %path.display(), "removing index without a log file");
                fs::remove_file(&path).map_err(|e| StorageError::io(IoOp::Remove, &path, e))?;
            }
        }
        let checkpoint = read_checkpoint(&dir)?;

        let Some((&active_base, sealed_bases)) = log_bases.split_last() else {
            let base = checkpoint.unwrap_or(0).max(0);
            tracing::info!(dir = %dir.display(), base, "empty log directory; creating first segment");
            let segment = Segment::create(&dir, base)?;
            // Without segments no snapshot can be replayed onto.
            remove_snapshots(&dir, snapshots)?;
            sync_dir(&dir)?;
            let mut state = State {
                segments: vec![Arc::new(segment)],
                active: Active {
                    index: IndexBuilder::new(base),
                    persisted: None,
                    rolling_base_ms: None,
                    txn_index_dirty: false,
                },
                log_start: base,
                log_end: base,
                producers: Producers::default(),
                aborted: Vec::new(),
                snapshots: BTreeSet::new(),
                epochs: EpochCache::default(),
                leader_epoch: 0,
            };
            restore_epochs(&dir, &mut state)?;
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
            snapshots: BTreeSet::new(),
            epochs: EpochCache::default(),
            leader_epoch: 0,
        };
        // A crash between writing the checkpoint and deleting the segments it covers.
        let doomed = take_segments_below_start(&mut state);
        delete_segment_files(&dir, &doomed)?;
        restore_transactions(&dir, &mut state, snapshots, &config, &mut report)?;
        restore_epochs(&dir, &mut state)?;

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
}

/// Checks a sealed segment's index files, rebuilding them from the log if missing or invalid,
/// and records the segment's max timestamp.
pub(super) fn recover_sealed(
    dir: &Path,
    segment: &Segment,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    let len = segment.len();
    let loaded = match segment.load_index_files(len)? {
        Ok(index) => match walk_after_index(segment, &index, len)? {
            // Sealing wrote a final time entry: a larger timestamp after it means the time
            // index was cut short, which would hide the segment from timestamp lookups and
            // make time retention delete it early.
            Ok(walk) if walk.grew => Err("time index lacks the segment's max timestamp".into()),
            Ok(walk) => Ok((index, walk.max)),
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

/// Recovers the active segment: returns its mutable state, the log end offset and the offset
/// below which its bytes are known durable. Writes no index file (they are written when the
/// segment is sealed or closed) and fsyncs only a truncated tail.
pub(super) fn recover_active(
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
            Ok(index) => match walk_after_index(segment, &index, len)? {
                Ok(walk) => {
                    let persisted = Some((index.offsets.len(), index.times.len()));
                    let builder = IndexBuilder::resume(base, index, len, walk.max);
                    resumed = Some((builder, persisted, walk.end_offset));
                }
                Err(defect) => {
                    tracing::warn!(path = %segment.log_path().display(), %defect, "damaged tail despite clean shutdown; scanning");
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
            txn_index_dirty: false,
        },
        log_end,
        durable,
    ))
}

/// What the batch headers after a segment's last index entries say.
pub(super) struct TailWalk {
    /// One past the last offset walked: the segment's end offset.
    end_offset: i64,
    /// (max timestamp, base offset of its batch) over the last time entry and the batches
    /// walked; the earliest batch wins a tie.
    max: Option<(i64, i64)>,
    /// A walked batch has a larger timestamp than the last time entry.
    grew: bool,
}

/// Checks a segment's loaded index against its log by walking the batch headers after the
/// last entries, from the batch of the last time entry (if the time index was cut short, the
/// max timestamp may be in any batch after it): the offset entry it starts from points at a
/// batch of the offset it names, the last time entry names a batch holding its timestamp,
/// and offsets never go backwards. Cheap when timestamps increase. `Ok(Err(why))` when the
/// index does not match and must be rebuilt (or, for the active segment, the tail scanned).
pub(super) fn walk_after_index(
    segment: &Segment,
    index: &SegmentIndex,
    len: u64,
) -> Result<Result<TailWalk, String>, StorageError> {
    let base = segment.base_offset();
    let last = index.last_time();
    let at = |relative: u32| base.saturating_add(i64::from(relative));
    let start = u64::from(index.position_for(last.map_or(0, |t| t.relative_offset)));
    let mut expected = base;
    if start > 0 {
        let entry = index
            .offsets
            .iter()
            .find(|e| u64::from(e.position) == start)
            .map(|e| at(e.relative_offset));
        match (segment.read_header(start, len), entry) {
            (Ok(Some(h)), Some(offset)) if h.base_offset == offset => expected = offset,
            _ => {
                return Ok(Err(format!(
                    "offset index entry at byte {start} is off the batches"
                )))
            }
        }
    }
    let mut max = last.map(|t| (t.timestamp, at(t.relative_offset)));
    let mut grew = false;
    let mut named = last.is_none();
    let end = segment.scan(start, len, Check::Structure, |_, h, _| {
        if let Some(t) = last {
            if h.base_offset == at(t.relative_offset) {
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
        expected = h.last_offset().saturating_add(1);
        if h.max_timestamp > NO_TIMESTAMP && max.is_none_or(|m| h.max_timestamp > m.0) {
            grew = true;
            max = Some((h.max_timestamp, h.base_offset));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(match end.fault {
        Some((position, defect)) => Err(format!("damaged batch at byte {position}: {defect}")),
        None if !named => Err("the last time entry names no batch".into()),
        None => Ok(TailWalk {
            end_offset: expected,
            max,
            grew,
        }),
    })
}

/// Scan-mode recovery of the active segment: validates every batch (CRC included, offsets
/// increasing, relative offsets and positions within 32 bits), truncates at the first bad
/// one, and rebuilds the indexes.
pub(super) fn scan_active(
    segment: &Segment,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<(IndexBuilder, i64), StorageError> {
    let len = segment.len();
    let (builder, end, end_offset) =
        segment.build_index(len, config.index_interval_bytes, Check::Full)?;
    if let Some((position, defect)) = end.fault {
        let cut = len - end.valid_end;
        tracing::warn!(path = %segment.log_path().display(), position, %defect, truncated_bytes = cut, "truncating torn or corrupt tail");
        segment.truncate(end.valid_end)?;
        report.truncated_bytes += cut;
    }
    Ok((builder, end_offset))
}
