//! The log start: DeleteRecords and time and size retention delete whole sealed segments
//! oldest first (with their side files) and move the log start, kept in a checkpoint file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Log, RetentionOutcome, State, DELETED_SUFFIX};
use crate::error::{IoOp, StorageError};
use crate::segment::{sync_dir, write_atomically, Segment};

impl Log {
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
            self.trim_epochs_to_start(&mut st)?;
            take_segments_below_start(&mut st)
        };
        delete_segment_files(&self.dir, &doomed)?;
        self.prune_snapshots()?;
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
            st.aborted.retain(|a| a.last_offset >= log_start);
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
        self.prune_snapshots()?;
        if let Err(e) = self.write_checkpoint(new_start) {
            if self.is_poisoned() {
                return Err(e);
            }
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not record the log start after retention; the segments still bound it");
        }
        // Only now, with the segments gone: a crash before their deletion leaves them readable
        // below the old start, and their epochs must still be in the checkpoint.
        {
            let mut st = self.lock_state()?;
            if let Err(e) = self.trim_epochs_to_start(&mut st) {
                if self.is_poisoned() {
                    return Err(e);
                }
                // Open fits the cache to the log start again.
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not trim the leader-epoch checkpoint after retention");
            }
        }
        tracing::debug!(dir = %self.dir.display(), segments_deleted = count, bytes_deleted, log_start = new_start, "retention deleted segments");
        Ok(RetentionOutcome {
            segments_deleted: count,
            bytes_deleted,
            log_start_offset: new_start,
        })
    }

    pub(super) fn write_checkpoint(&self, log_start: i64) -> Result<(), StorageError> {
        let contents = format!("{CHECKPOINT_VERSION}\n{log_start}\n");
        write_atomically(&self.dir, LOG_START_CHECKPOINT, contents.as_bytes()).inspect_err(|e| {
            if e.is_fsync_failure() {
                self.poison(e);
            }
        })
    }
}

/// Removes from `state` the sealed segments wholly below the log start (those whose
/// successor starts at or below it). The active segment always stays.
pub(super) fn take_segments_below_start(state: &mut State) -> Vec<Arc<Segment>> {
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

/// Deletes segment files in the order given (retention: oldest first; truncation: newest
/// first): rename each to `*.deleted` (fsync the directory, so a crash leaves an end of the
/// log deleted, never a hole), then remove them.
pub(super) fn delete_segment_files(
    dir: &Path,
    segments: &[Arc<Segment>],
) -> Result<(), StorageError> {
    let mut renamed = Vec::new();
    for segment in segments {
        for path in segment.file_paths() {
            let mut deleted = path.as_os_str().to_owned();
            deleted.push(DELETED_SUFFIX);
            let deleted = PathBuf::from(deleted);
            match fs::rename(path, &deleted) {
                Ok(()) => renamed.push(deleted),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(IoOp::RenameForDeletion, path, e)),
            }
        }
        sync_dir(dir)?;
    }
    for path in renamed {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(IoOp::Remove, &path, e)),
        }
    }
    if !segments.is_empty() {
        sync_dir(dir)?;
    }
    Ok(())
}

pub(super) fn read_checkpoint(dir: &Path) -> Result<Option<i64>, StorageError> {
    let path = dir.join(LOG_START_CHECKPOINT);
    // Bytes, not a string: damage that is not UTF-8 must not stop the log from opening.
    let text = match fs::read(&path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(IoOp::Read, &path, e)),
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

/// Name of the checkpoint file holding the log start offset moved by DeleteRecords.
pub const LOG_START_CHECKPOINT: &str = "log-start-offset";

const CHECKPOINT_VERSION: &str = "0";
