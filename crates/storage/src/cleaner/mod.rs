//! Log compaction (`cleanup.policy=compact`): the latest record of each key survives.
//!
//! One pass over a log ([`Cleaner::clean`]):
//!
//! 1. **Plan.** The dirty section runs from the first dirty offset (the
//!    [`checkpoint`]) to the first uncleanable segment: the active segment, the segment
//!    holding the last stable offset (an open transaction is never cleaned), or the first
//!    one holding a record newer than `min.compaction.lag.ms`.
//! 2. **Map.** The dirty section's keys go into the [`OffsetMap`] (key hash → latest
//!    offset), skipping aborted transactional data and control batches. The map has a fixed
//!    size (`log.cleaner.dedupe.buffer.size`); when it is full, the pass stops mapping at a
//!    batch boundary and cleans only the prefix that fit.
//! 3. **Copy.** Every sealed segment below the map's end, from the start of the log, is
//!    copied batch by batch into a cleaned segment (small neighbours merged up to
//!    `segment.bytes`), keeping a record unless: its key has a later offset in the map;
//!    it has no key; it is a tombstone first cleaned more than `delete.retention.ms` ago; it
//!    belongs to an aborted transaction. A transaction marker goes once no batch of its
//!    transaction is left and `delete.retention.ms` passed. Each producer's newest batch is
//!    kept (empty if need be), so its sequence survives a rebuild of producer state from the
//!    log. Compressed batches are decompressed and their kept records compressed again with
//!    the same codec ([`crate::codec`]); one that cannot be read is kept whole. Records keep their
//!    offsets; batches keep their base offset and producer fields.
//! 4. **Swap.** Each cleaned segment replaces its originals crash-safely (see [`swap`]),
//!    with a `.txnindex` holding the aborted transactions whose markers it kept (those of
//!    removed markers are forgotten); the producer snapshots below its end go (see
//!    `Log::replace_segments`). The append lock is held only for the in-memory switch.
//! 5. **Checkpoint.** The first dirty offset moves to the map's end, with the time, which
//!    starts the `delete.retention.ms` clock of that stretch's tombstones and markers.

pub mod checkpoint;
mod offset_map;
mod records;
pub(crate) mod swap;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::{self, BatchDefect, BatchHeader, Check};
use crate::error::{IoOp, StorageError};
use crate::index::IndexBuilder;
use crate::log::{CleanerView, Log};
use crate::segment::{sync_dir, IndexSync, Sealed, Segment};
use crate::AbortedTxn;

pub use checkpoint::{Checkpoint, CLEANER_CHECKPOINT};
pub use offset_map::{OffsetMap, SLOT_BYTES};

/// How much a log needs cleaning ([`cleanability`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cleanability {
    /// Dirty bytes over clean plus dirty bytes (of the cleanable part of the log).
    pub dirty_ratio: f64,
    pub dirty_bytes: u64,
    /// The first dirty record is older than `max.compaction.lag.ms`.
    pub overdue: bool,
    /// At or above `min.cleanable.dirty.ratio`, or overdue: a cleaner should take it.
    pub due: bool,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub first_dirty_before: i64,
    pub first_dirty_after: i64,
    /// The map filled up before the end of the dirty section.
    pub map_full: bool,
    pub keys_mapped: usize,
    pub segments_read: usize,
    pub segments_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    pub markers_removed: u64,
}

/// A stopping point of a pass, for crash tests.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `.cleaned` written and fsynced.
    Cleaned,
    /// Renamed to `.swap` (committed).
    Committed,
    /// Old segment files removed.
    OldRemoved,
    /// Swap renamed into place, before its index files.
    Renamed,
    /// Swap complete, before the checkpoint.
    Swapped,
}

/// Limits reads and writes to `log.cleaner.io.max.bytes.per.second`.
struct Throttle {
    bytes_per_second: Option<f64>,
    start: Instant,
    bytes: f64,
}

impl Throttle {
    fn account(&mut self, bytes: u64) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        self.bytes += bytes as f64;
        let due = self.bytes / rate;
        let elapsed = self.start.elapsed().as_secs_f64();
        if due > elapsed {
            std::thread::sleep(Duration::from_secs_f64(due - elapsed));
        }
    }
}

/// One cleaner thread's reusable state: its offset map and I/O budget.
pub struct Cleaner {
    map: OffsetMap,
    throttle: Throttle,
    /// Set (by [`Cleaner::abort_handle`]'s holder) to stop a pass at the next batch, before
    /// its next commit point; the pass then fails with [`StorageError::Closed`].
    abort: Arc<AtomicBool>,
    #[cfg(test)]
    pub(crate) stop_after: Option<Step>,
}

/// The plan of a pass (step 1).
struct Plan {
    view: CleanerView,
    checkpoint: Checkpoint,
    first_dirty: i64,
    /// Base of the first segment that must not be cleaned.
    cleanable_end: i64,
    /// Sealed segments below `cleanable_end`.
    sealed: usize,
    clean_bytes: u64,
    dirty_bytes: u64,
}

fn plan(log: &Log, now_ms: i64) -> Result<Option<Plan>, StorageError> {
    let config = log.config().compaction;
    if !config.compact {
        return Ok(None);
    }
    let view = log.cleaner_view()?;
    let mut checkpoint = Checkpoint::load(log.dir())?.unwrap_or(Checkpoint {
        first_dirty: view.log_start,
        cleaned: Vec::new(),
    });
    checkpoint.forget_below(view.log_start);
    let first_dirty = checkpoint.first_dirty;
    let lag_cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
    let n = view.segments.len().saturating_sub(1);
    let mut sealed = n;
    for (i, s) in view.segments.iter().take(n).enumerate() {
        let next_base = view
            .segments
            .get(i + 1)
            .map_or(i64::MAX, |s| s.base_offset());
        let too_new = config.min_compaction_lag_ms > 0
            && s.sealed()
                .and_then(|m| m.max_timestamp)
                .is_some_and(|(ts, _)| ts > lag_cutoff);
        if next_base > view.last_stable || too_new {
            sealed = i;
            break;
        }
    }
    let cleanable_end = view
        .segments
        .get(sealed)
        .map_or(i64::MAX, |s| s.base_offset());
    let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
    for (i, s) in view.segments.iter().take(sealed).enumerate() {
        let next_base = view
            .segments
            .get(i + 1)
            .map_or(i64::MAX, |s| s.base_offset());
        if next_base <= first_dirty {
            clean_bytes += s.len();
        } else {
            dirty_bytes += s.len();
        }
    }
    Ok(Some(Plan {
        view,
        checkpoint,
        first_dirty,
        cleanable_end,
        sealed,
        clean_bytes,
        dirty_bytes,
    }))
}

/// How dirty `log` is, or `None` if it is not compacted or has nothing cleanable.
pub fn cleanability(log: &Log, now_ms: i64) -> Result<Option<Cleanability>, StorageError> {
    let Some(plan) = plan(log, now_ms)? else {
        return Ok(None);
    };
    if plan.first_dirty >= plan.cleanable_end || plan.dirty_bytes == 0 {
        return Ok(None);
    }
    let config = log.config().compaction;
    let dirty_ratio = plan.dirty_bytes as f64 / (plan.clean_bytes + plan.dirty_bytes) as f64;
    // The first dirty segment's first batch dates the oldest uncleaned record.
    let segments = &plan.view.segments;
    let first_dirty_segment = segments
        .iter()
        .take(plan.sealed)
        .enumerate()
        .find(|(i, _)| {
            segments
                .get(i + 1)
                .is_some_and(|n| n.base_offset() > plan.first_dirty)
        })
        .map(|(_, s)| s);
    let overdue = match first_dirty_segment {
        Some(s) => s
            .read_header(0, s.len())?
            .is_some_and(|h| h.max_timestamp < now_ms.saturating_sub(config.max_compaction_lag_ms)),
        None => false,
    };
    Ok(Some(Cleanability {
        dirty_ratio,
        dirty_bytes: plan.dirty_bytes,
        overdue,
        due: overdue || dirty_ratio >= config.min_cleanable_dirty_ratio,
    }))
}

/// Aborted transactions by producer: `(first offset, marker offset)`.
type Aborted = HashMap<i64, Vec<(i64, i64)>>;

fn is_aborted(aborted: &Aborted, h: &BatchHeader) -> bool {
    h.is_transactional()
        && !h.is_control()
        && aborted.get(&h.producer_id()).is_some_and(|v| {
            v.iter()
                .any(|&(f, l)| f <= h.base_offset && h.base_offset <= l)
        })
}

/// What the copy of step 3 decides batch by batch; it lives for the whole pass because a
/// transaction's data and its marker may be in different groups.
struct Filter<'a> {
    map: &'a OffsetMap,
    map_end: i64,
    horizon: i64,
    aborted: &'a Aborted,
    producer_last: &'a HashMap<i64, i64>,
    /// Producers whose transaction is being read: whether any of its batches was kept.
    txns: HashMap<i64, bool>,
    /// Offsets of the transaction markers removed: their aborted-transaction entries go.
    removed_markers: HashSet<i64>,
    stats: CleanStats,
}

impl Filter<'_> {
    /// The batch to write for `bytes` (whose header is `h`), if any, and whether it differs.
    fn batch<'b>(
        &mut self,
        h: &BatchHeader,
        bytes: &'b [u8],
    ) -> Option<std::borrow::Cow<'b, [u8]>> {
        use std::borrow::Cow;
        let pid = h.producer_id();
        if h.is_control() {
            if pid < 0 || batch::marker_of(bytes).is_none() {
                return Some(Cow::Borrowed(bytes));
            }
            let data_kept = self.txns.remove(&pid).unwrap_or(false);
            if !data_kept && h.base_offset < self.horizon {
                self.stats.markers_removed += 1;
                self.removed_markers.insert(h.base_offset);
                return None;
            }
            return Some(Cow::Borrowed(bytes));
        }
        let newest_of_producer = pid >= 0 && self.producer_last.get(&pid) == Some(&h.last_offset());
        let out = if is_aborted(self.aborted, h) {
            self.stats.records_removed += u64::try_from(h.records_count).unwrap_or(0);
            match newest_of_producer.then(|| records::rewrite(h, bytes, &[])) {
                None => None,
                Some(Some(empty)) => Some(Cow::Owned(empty)),
                Some(None) => Some(Cow::Borrowed(bytes)),
            }
        } else {
            // Records that do not decode (appends check only headers and CRCs) or do not
            // decompress are the producer's business: such a batch is kept whole.
            let body = records::body(h, bytes);
            let all = body.as_deref().map(|b| records::records(h, b));
            match all {
                None | Some(Err(_)) => Some(Cow::Borrowed(bytes)),
                Some(Ok(all)) => {
                    let kept: Vec<_> = all.iter().copied().filter(|r| self.keep(r)).collect();
                    let removed = (all.len() - kept.len()) as u64;
                    if kept.len() == all.len() {
                        Some(Cow::Borrowed(bytes))
                    } else if kept.is_empty() && !newest_of_producer {
                        self.stats.records_removed += removed;
                        None
                    } else if let Some(rewritten) = records::rewrite(h, bytes, &kept) {
                        self.stats.records_removed += removed;
                        Some(Cow::Owned(rewritten))
                    } else {
                        Some(Cow::Borrowed(bytes))
                    }
                }
            }
        };
        if h.is_transactional() && pid >= 0 {
            let kept = self.txns.entry(pid).or_insert(false);
            *kept |= out.is_some();
        }
        out
    }

    fn keep(&mut self, r: &records::Record<'_>) -> bool {
        let Some(key) = r.key else {
            // Kafka's cleaner drops records without a key: a compacted topic cannot hold them.
            return false;
        };
        if r.offset >= self.map_end {
            return true;
        }
        if self.map.get(key).is_some_and(|latest| latest > r.offset) {
            return false;
        }
        if r.is_tombstone() && r.offset < self.horizon {
            self.stats.tombstones_removed += 1;
            return false;
        }
        true
    }
}

impl Cleaner {
    /// A cleaner whose offset map uses `dedupe_buffer_bytes` and whose reads and writes are
    /// limited to `io_max_bytes_per_second` (None: unlimited).
    pub fn new(dedupe_buffer_bytes: usize, io_max_bytes_per_second: Option<f64>) -> Cleaner {
        Cleaner {
            map: OffsetMap::new(dedupe_buffer_bytes),
            throttle: Throttle {
                bytes_per_second: io_max_bytes_per_second.filter(|r| *r > 0.0),
                start: Instant::now(),
                bytes: 0.0,
            },
            abort: Arc::default(),
            #[cfg(test)]
            stop_after: None,
        }
    }

    /// Setting it makes the running (and any later) pass stop before its next swap, leaving
    /// the log as it was; for shutdown.
    pub fn abort_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.abort)
    }

    /// Keys one pass can deduplicate.
    pub fn map_capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Runs one pass over `log` (see the module docs). `Ok(None)` when there was nothing to
    /// clean; stats otherwise.
    pub fn clean(&mut self, log: &Log, now_ms: i64) -> Result<Option<CleanStats>, StorageError> {
        let Some(plan) = plan(log, now_ms)? else {
            return Ok(None);
        };
        if plan.first_dirty >= plan.cleanable_end {
            return Ok(None);
        }
        let dir = log.dir();
        if !dir.join(CLEANER_CHECKPOINT).exists() {
            // Before the first swap: tells `weir debug verify` this log may have gaps.
            plan.checkpoint.save(dir)?;
        }
        self.throttle.start = Instant::now();
        self.throttle.bytes = 0.0;
        let config = log.config();
        let mut aborted: Aborted = HashMap::new();
        for a in log.aborted_transactions(plan.view.log_start, plan.cleanable_end) {
            let AbortedTxn {
                producer_id,
                first_offset,
                last_offset,
            } = a;
            aborted
                .entry(producer_id)
                .or_default()
                .push((first_offset, last_offset));
        }
        let (map_end, map_full) = self.build_map(&plan, &aborted, config.index_interval_bytes)?;
        if map_end <= plan.first_dirty {
            tracing::warn!(dir = %dir.display(), capacity = self.map.capacity(), "log.cleaner.dedupe.buffer.size holds no whole batch; not cleaning");
            return Ok(None);
        }
        let mut copy = Filter {
            map: &self.map,
            map_end,
            horizon: plan
                .checkpoint
                .delete_horizon(now_ms, config.compaction.delete_retention_ms),
            aborted: &aborted,
            producer_last: &plan.view.producer_last_offsets,
            txns: HashMap::new(),
            removed_markers: HashSet::new(),
            stats: CleanStats {
                first_dirty_before: plan.first_dirty,
                first_dirty_after: map_end,
                map_full,
                keys_mapped: self.map.len(),
                ..CleanStats::default()
            },
        };
        let segments = &plan.view.segments;
        let to_clean = segments
            .iter()
            .take(plan.sealed)
            .take_while(|s| s.base_offset() < map_end)
            .count();
        let mut i = 0;
        while i < to_clean {
            // A group: consecutive segments whose sum fits in one segment, and whose offsets
            // fit the index's 32-bit relative offsets.
            let base = segments.get(i).map_or(0, |s| s.base_offset());
            let mut size = 0u64;
            let mut j = i;
            while j < to_clean {
                let s_len = segments.get(j).map_or(0, |s| s.len());
                let next_base = segments.get(j + 1).map_or(i64::MAX, |s| s.base_offset());
                let fits = size + s_len <= config.segment_bytes
                    && next_base.saturating_sub(base) <= i64::from(i32::MAX);
                if j > i && !fits {
                    break;
                }
                size += s_len;
                j += 1;
            }
            let group = segments.get(i..j).unwrap_or_default();
            let end = segments.get(j).map_or(i64::MAX, |s| s.base_offset());
            #[cfg(test)]
            let stop = self.stop_after;
            #[cfg(not(test))]
            let stop = ();
            let (throttle, interval) = (&mut self.throttle, config.index_interval_bytes);
            let io = Io {
                throttle,
                abort: &self.abort,
            };
            if !clean_group(log, group, end, &mut copy, interval, io, stop)? {
                tracing::info!(dir = %dir.display(), "log changed during cleaning; pass abandoned");
                return Ok(None);
            }
            i = j;
        }
        let mut checkpoint = plan.checkpoint;
        checkpoint.advance(map_end, now_ms);
        checkpoint.save(dir)?;
        tracing::debug!(dir = %dir.display(), stats = ?copy.stats, "cleaned log");
        Ok(Some(copy.stats))
    }

    /// Step 2: maps the dirty section's keys. Returns where the map ends (the first offset
    /// not mapped) and whether it filled up.
    fn build_map(
        &mut self,
        plan: &Plan,
        aborted: &Aborted,
        interval: u32,
    ) -> Result<(i64, bool), StorageError> {
        self.map.clear();
        let segments = &plan.view.segments;
        for (i, s) in segments.iter().enumerate().take(plan.sealed) {
            let next_base = segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset());
            if next_base <= plan.first_dirty {
                continue;
            }
            let relative =
                u32::try_from((plan.first_dirty - s.base_offset()).max(0)).unwrap_or(u32::MAX);
            let start = u64::from(s.index(interval)?.position_for(relative));
            let mut full_at = None;
            let map = &mut self.map;
            let abort = &self.abort;
            let end = s.scan(start, s.len(), Check::Full, |_, h, bytes| {
                if abort.load(Ordering::Acquire) {
                    return Err(BatchDefect::Empty);
                }
                if h.last_offset() < plan.first_dirty || h.is_control() || is_aborted(aborted, h) {
                    return Ok(ControlFlow::Continue(()));
                }
                if !map.has_room_for(usize::try_from(h.records_count).unwrap_or(0)) {
                    full_at = Some(h.base_offset);
                    return Ok(ControlFlow::Break(()));
                }
                let body = records::body(h, bytes);
                if let Some(Ok(rs)) = body.as_deref().map(|b| records::records(h, b)) {
                    for r in rs {
                        if let Some(key) = r.key {
                            map.put(key, r.offset);
                        }
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
            self.throttle.account(end.valid_end.saturating_sub(start));
            if self.abort.load(Ordering::Acquire) {
                return Err(StorageError::Closed);
            }
            if let Some((position, defect)) = end.fault {
                return Err(s.damaged(position, defect));
            }
            if let Some(at) = full_at {
                return Ok((at, true));
            }
        }
        Ok((plan.cleanable_end, false))
    }
}

/// What a group's copy may be stopped by.
enum Failure {
    Aborted,
    Io(std::io::Error),
}

/// The pass's I/O budget and abort flag, lent to each group.
struct Io<'a> {
    throttle: &'a mut Throttle,
    abort: &'a AtomicBool,
}

#[cfg(test)]
type Stop = Option<Step>;
#[cfg(not(test))]
type Stop = ();

/// Steps 3 and 4 for one group `[group[0].base, end)`. False if the log changed under it
/// (retention or DeleteRecords removed some of the group): nothing was swapped.
fn clean_group(
    log: &Log,
    group: &[Arc<Segment>],
    end: i64,
    copy: &mut Filter<'_>,
    interval: u32,
    io: Io<'_>,
    stop: Stop,
) -> Result<bool, StorageError> {
    let Io { throttle, abort } = io;
    let dir = log.dir().to_path_buf();
    let Some(base) = group.first().map(|s| s.base_offset()) else {
        return Ok(true);
    };
    let cleaned = swap::cleaned_path(&dir, base);
    let file = File::create(&cleaned).map_err(|e| StorageError::io(IoOp::Create, &cleaned, e))?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut builder = IndexBuilder::new(base);
    let mut position = 0u64;
    let mut changed = group.len() > 1;
    for s in group {
        // Readers holding this segment must never load the cleaned one's index files.
        s.index(interval)?;
        let mut failed = None;
        let scan = s.scan(0, s.len(), Check::Full, |_, h, bytes| {
            if abort.load(Ordering::Acquire) {
                failed = Some(Failure::Aborted);
                return Ok(ControlFlow::Break(()));
            }
            let Some(kept) = copy.batch(h, bytes) else {
                changed = true;
                return Ok(ControlFlow::Continue(()));
            };
            changed |= kept.len() != bytes.len();
            let max_ts = BatchHeader::parse(&kept).map_or(h.max_timestamp, |k| k.max_timestamp);
            let Ok(at) = u32::try_from(position) else {
                failed = Some(Failure::Io(std::io::Error::other(
                    "cleaned segment over 4 GiB",
                )));
                return Ok(ControlFlow::Break(()));
            };
            if let Err(e) = out.write_all(&kept) {
                failed = Some(Failure::Io(e));
                return Ok(ControlFlow::Break(()));
            }
            builder.on_batch(at, h.base_offset, max_ts, kept.len() as u64, interval);
            position += kept.len() as u64;
            Ok(ControlFlow::Continue(()))
        })?;
        if let Some(f) = failed {
            let _ = fs::remove_file(&cleaned);
            return Err(match f {
                Failure::Aborted => StorageError::Closed,
                Failure::Io(e) => StorageError::io(IoOp::Write, &cleaned, e),
            });
        }
        if let Some((at, defect)) = scan.fault {
            let _ = fs::remove_file(&cleaned);
            return Err(s.damaged(at, defect));
        }
        copy.stats.segments_read += 1;
        copy.stats.bytes_read += s.len();
        throttle.account(s.len());
    }
    let file = out
        .into_inner()
        .map_err(|e| StorageError::io(IoOp::Write, &cleaned, e.into_error()))?;
    if !changed {
        // Nothing to gain from a copy of one unchanged segment.
        drop(file);
        let _ = fs::remove_file(&cleaned);
        return Ok(true);
    }
    file.sync_all()
        .map_err(|e| StorageError::io(IoOp::Fsync, &cleaned, e))?;
    drop(file);
    throttle.account(position);
    builder.seal();
    #[cfg(not(test))]
    let () = stop;
    #[cfg(test)]
    if stop == Some(Step::Cleaned) {
        return Err(injected(Step::Cleaned));
    }
    let swap = swap::swap_path(&dir, base, end);
    let install = |aborted: &[AbortedTxn]| -> Result<Segment, StorageError> {
        fs::rename(&cleaned, &swap).map_err(|e| StorageError::io(IoOp::Rename, &cleaned, e))?;
        sync_dir(&dir)?;
        #[cfg(test)]
        if stop == Some(Step::Committed) {
            return Err(injected(Step::Committed));
        }
        swap::remove_replaced(&dir, base, end)?;
        #[cfg(test)]
        if stop == Some(Step::OldRemoved) {
            return Err(injected(Step::OldRemoved));
        }
        swap::write_txn_index(&dir, base, aborted)?;
        swap::rename_swap(&dir, base, end)?;
        #[cfg(test)]
        if stop == Some(Step::Renamed) {
            return Err(injected(Step::Renamed));
        }
        let segment = Segment::open(&dir, base)?;
        segment.write_index_files(&dir, &builder.index, IndexSync::FilesOnly)?;
        sync_dir(&dir)?;
        segment.seal(
            Sealed {
                max_timestamp: builder.max_timestamp(),
            },
            Some(builder.index.clone()),
        );
        Ok(segment)
    };
    if abort.load(Ordering::Acquire) {
        let _ = fs::remove_file(&cleaned);
        return Err(StorageError::Closed);
    }
    // Before the commit point the cleaned file is ours to remove; after it, it is gone.
    let swapped = log
        .replace_segments(group, &copy.removed_markers, install)
        .inspect_err(|_| {
            let _ = fs::remove_file(&cleaned);
        })?;
    if !swapped {
        let _ = fs::remove_file(&cleaned);
        return Ok(false);
    }
    #[cfg(test)]
    if stop == Some(Step::Swapped) {
        return Err(injected(Step::Swapped));
    }
    copy.stats.segments_written += 1;
    copy.stats.bytes_written += position;
    Ok(true)
}

#[cfg(test)]
fn injected(step: Step) -> StorageError {
    StorageError::io(
        IoOp::Write,
        format!("{step:?}"),
        std::io::Error::other("test stops the pass here"),
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
