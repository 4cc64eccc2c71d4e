//! Offline consistency check of a partition directory, for `weir debug verify` and the
//! crash tests. Reads only; never repairs (that is [`crate::Log::open`]'s job).
//!
//! What a consistent log looks like:
//!
//! - every batch of every segment parses and its CRC-32C matches;
//! - offsets increase without gaps, within a segment and across segments (each segment starts
//!   where the previous one ended), and the first batch of a segment starts at its base;
//! - every `.index` entry points at the start of a batch whose base offset is the entry's;
//!   every `.timeindex` entry names a batch whose max timestamp is the entry's timestamp, and
//!   both files strictly increase; a sealed segment's last time entry is its max timestamp;
//! - the log start checkpoint lies within the segments;
//! - every `.txnindex` decodes (length, CRC-32C) and names aborts whose markers lie in its
//!   segment; every producer snapshot decodes, names the offset of its file name and lies
//!   within the segments.
//!
//! A compacted log (one with a cleaner checkpoint) may have offset gaps inside and between
//! the batches of its sealed segments and between segments: offsets must only ascend. A
//! committed cleaner swap (`B-E.log.swap`) stands for the segments in `[B, E)`, which are
//! skipped; after a crash the swapped-in segment may lack its index files.
//!
//! After a crash ([`Mode::AfterCrash`]) some damage is legal because recovery repairs it: a
//! torn or garbage tail in the **active** (last) segment, missing active index files (the active
//! segment's indexes live in memory until it is sealed or closed) or ones lacking their last
//! entries, stray `*.tmp` / `*.deleted` files and index files whose log
//! was being deleted. Those are reported, not counted as problems. The same damage anywhere
//! else (a sealed segment, before the tail) is corruption. [`Mode::Clean`] (after a clean
//! shutdown) allows none of it; only an empty active segment may lack index files.

use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::batch::{self, Check, Marker};
use crate::cleaner::checkpoint::CLEANER_CHECKPOINT;
use crate::cleaner::swap::{parse_swap_name, CLEANED_SUFFIX};
use crate::error::{IoOp, StorageError};
use crate::index::{OffsetEntry, SegmentIndex, TimeEntry, NO_TIMESTAMP};
use crate::log::{parse_epoch_checkpoint, LEADER_EPOCH_CHECKPOINT, LOG_START_CHECKPOINT};
use crate::producer::{self, SNAPSHOT_SUFFIX as PRODUCER_SNAPSHOT_SUFFIX};
use crate::segment::{parse_file_name, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::{self, TXN_INDEX_SUFFIX};

/// What state the directory is expected to be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// After a clean shutdown: everything must be exact.
    Clean,
    /// After a crash, before recovery: damage recovery repairs is reported but allowed.
    AfterCrash,
}

/// Damage at the end of the active segment that recovery will truncate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncleanTail {
    pub segment: PathBuf,
    /// Where the valid batches end.
    pub position: u64,
    /// Bytes after it.
    pub bytes: u64,
    pub reason: String,
}

/// One inconsistency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// The verdict on one partition directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogVerification {
    pub dir: PathBuf,
    pub segments: usize,
    pub batches: u64,
    /// Bytes of valid batches.
    pub bytes: u64,
    /// Base offset of the first segment.
    pub first_offset: i64,
    /// The log start: the checkpoint if any, else the first segment's base.
    pub log_start: i64,
    /// One past the last offset of the last valid batch.
    pub log_end: i64,
    /// Allowed in [`Mode::AfterCrash`] only (otherwise it is also in `problems`).
    pub unclean_tail: Option<UncleanTail>,
    /// Damage recovery repairs, allowed after a crash (stray files, index tails).
    pub notes: Vec<String>,
    pub problems: Vec<Problem>,
}

impl LogVerification {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one partition directory (see the module docs). `Err` only when the directory or a
/// file cannot be read at all; inconsistencies are in the returned report.
pub fn verify_log_dir(dir: &Path, mode: Mode) -> Result<LogVerification, StorageError> {
    let mut out = LogVerification {
        dir: dir.to_path_buf(),
        ..LogVerification::default()
    };
    let crash = mode == Mode::AfterCrash;
    let mut bases = Vec::new();
    let mut index_bases = Vec::new();
    let mut snapshots = Vec::new();
    // A compacted log (the cleaner wrote its checkpoint before its first swap) may have
    // offset gaps inside and between the batches of its sealed segments.
    let mut compacted = false;
    // Committed swaps `[base, end)`: open replaces those segments by the swap file.
    let mut swaps = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(IoOp::ListDirectory, dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(IoOp::ListDirectory, dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || name.ends_with(".deleted") || name.ends_with(CLEANED_SUFFIX) {
            out.note_or_problem(crash, &entry.path(), "stray file (removed at open)");
        } else if let Some(range) = parse_swap_name(&name) {
            out.note_or_problem(
                crash,
                &entry.path(),
                "interrupted cleaner swap (finished at open)",
            );
            swaps.push(range);
        } else if name == CLEANER_CHECKPOINT {
            compacted = true;
        } else if let Some(base) = parse_file_name(&name, LOG_SUFFIX) {
            bases.push(base);
        } else if let Some(offset) = parse_file_name(&name, PRODUCER_SNAPSHOT_SUFFIX) {
            snapshots.push((offset, entry.path()));
        } else if let Some(base) = parse_file_name(&name, INDEX_SUFFIX)
            .or_else(|| parse_file_name(&name, TIME_INDEX_SUFFIX))
            .or_else(|| parse_file_name(&name, TXN_INDEX_SUFFIX))
        {
            index_bases.push((base, entry.path()));
        }
    }
    bases.sort_unstable();
    for (base, path) in index_bases {
        if bases.binary_search(&base).is_err() {
            out.note_or_problem(crash, &path, "index without a log file (removed at open)");
        }
    }
    if bases.is_empty() {
        out.problems.push(Problem {
            path: dir.to_path_buf(),
            what: "no segment".into(),
        });
        return Ok(out);
    }
    out.segments = bases.len();
    out.first_offset = bases.first().copied().unwrap_or(0);

    let mut expected: Option<i64> = None;
    // (base offset, last offset, leader epoch) of every stamped batch.
    let mut stamps: Vec<(i64, i64, i32)> = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let active = i + 1 == bases.len();
        if !active && swaps.iter().any(|&(b, e)| (b..e).contains(&base)) {
            // Being replaced; the swap file holds these offsets now.
            expected = None;
            continue;
        }
        // The active segment is never cleaned.
        let gaps = compacted && !active;
        let segment = Segment::open_read_only(dir, base)?;
        let path = segment.log_path().to_path_buf();
        if let Some(exp) = expected {
            if base < exp || (base > exp && !compacted) {
                out.problem(
                    &path,
                    format!("segment base {base} but the previous segment ends at {exp}"),
                );
            }
        }
        let mut next = base;
        let mut batches: Vec<(u64, i64, i64)> = Vec::new(); // (position, base offset, max ts)
        let mut abort_markers = Vec::new();
        let len = segment.len();
        let end = segment.scan(0, len, Check::Full, |pos, h, bytes| {
            if h.base_offset < next || (h.base_offset > next && !gaps) {
                out.problems.push(Problem {
                    path: path.clone(),
                    what: format!(
                        "batch at byte {pos} has base offset {} but {next} was expected",
                        h.base_offset
                    ),
                });
            }
            batches.push((pos, h.base_offset, h.max_timestamp));
            if h.partition_leader_epoch >= 0 {
                stamps.push((h.base_offset, h.last_offset(), h.partition_leader_epoch));
            }
            if h.is_control() && batch::marker_of(bytes) == Some(Marker::Abort) {
                abort_markers.push(h.base_offset);
            }
            out.batches += 1;
            out.bytes += bytes.len() as u64;
            next = h.last_offset().saturating_add(1).max(next);
            Ok(ControlFlow::Continue(()))
        })?;
        if let Some((position, defect)) = end.fault {
            let tail = UncleanTail {
                segment: path.clone(),
                position,
                bytes: len - position,
                reason: defect.to_string(),
            };
            if !(crash && active) {
                let which = if active { "active" } else { "sealed" };
                out.problem(
                    &path,
                    format!(
                        "{which} segment damaged at byte {position} of {len} ({}): {} bytes after it unreadable",
                        tail.reason, tail.bytes
                    ),
                );
            }
            if active {
                out.unclean_tail = Some(tail);
            }
        }
        let crash_tolerant = crash && (active || compacted);
        check_indexes(
            &segment,
            &batches,
            end.valid_end,
            active,
            crash_tolerant,
            &mut out,
        )?;
        // A compacted segment may end in a gap (its last batches cleaned away): it reaches
        // the next segment's base.
        let segment_end = bases.get(i + 1).copied().unwrap_or(next).max(next);
        let aborts = TxnIndexCheck {
            end: segment_end,
            markers: &abort_markers,
            complete: end.fault.is_none(),
        };
        check_txn_index(&segment, &aborts, &mut out)?;
        expected = Some(next);
        out.log_end = next;
    }

    let checkpoint = dir.join(LOG_START_CHECKPOINT);
    out.log_start = out.first_offset;
    match fs::read_to_string(&checkpoint) {
        Ok(text) => {
            let mut lines = text.lines();
            match (lines.next(), lines.next().map(|l| l.trim().parse::<i64>())) {
                (Some("0"), Some(Ok(start))) => {
                    if start > out.log_end {
                        out.problem(
                            &checkpoint,
                            format!("log start {start} is beyond the log end {}", out.log_end),
                        );
                    }
                    // A start below the first segment is legal: retention deleted up to it.
                    out.log_start = start.max(out.first_offset);
                }
                _ => out.problem(&checkpoint, "unparsable log start checkpoint".into()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(IoOp::Read, &checkpoint, e)),
    }
    for (offset, path) in snapshots {
        check_snapshot(&path, offset, crash, &mut out)?;
    }
    check_epochs(dir, &stamps, crash, &mut out)?;
    Ok(out)
}

/// Checks the leader-epoch checkpoint against the batches' stamps: whole and ordered, and
/// the entry in force at each stamped batch (at or above the log start) names its epoch.
/// After a crash an entry past the log end (written before its batches) is allowed; a
/// missing file (rebuilt at open) always is.
fn check_epochs(
    dir: &Path,
    stamps: &[(i64, i64, i32)],
    crash: bool,
    out: &mut LogVerification,
) -> Result<(), StorageError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !stamps.is_empty() {
                // Harmless either way (a log written before epochs were kept, say).
                out.note_or_problem(
                    true,
                    &path,
                    "missing leader-epoch checkpoint (rebuilt at open)",
                );
            }
            return Ok(());
        }
        Err(e) => return Err(StorageError::io(IoOp::Read, &path, e)),
    };
    let Some(cache) = parse_epoch_checkpoint(&text) else {
        out.problem(&path, "unparsable leader-epoch checkpoint".into());
        return Ok(());
    };
    let entries = cache.entries();
    if let Some(e) = entries.iter().find(|e| e.start_offset > out.log_end) {
        let what = format!(
            "epoch {} starts at {}, beyond the log end {}",
            e.epoch, e.start_offset, out.log_end
        );
        out.note_or_problem(crash, &path, &what);
    }
    for &(base, last, epoch) in stamps.iter().filter(|s| s.1 >= out.log_start) {
        let at = base.max(out.log_start);
        let in_force = entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= at)
            .map(|e| e.epoch);
        if in_force != Some(epoch) {
            out.problem(
                &path,
                format!("batch [{base}, {last}] is stamped epoch {epoch} but the checkpoint says {in_force:?}"),
            );
            break;
        }
    }
    Ok(())
}

/// What a segment's scan found for its `.txnindex` check.
struct TxnIndexCheck<'a> {
    /// One past the segment's offsets.
    end: i64,
    /// Base offsets of its abort markers, ascending.
    markers: &'a [i64],
    /// The scan read the whole segment (a damaged tail hides markers).
    complete: bool,
}

/// Checks a segment's aborted-transaction index, if it has one: whole, and every entry
/// names an abort marker of the segment. The cleaner removes an entry with its marker, so
/// this holds for compacted segments too.
fn check_txn_index(
    segment: &Segment,
    found: &TxnIndexCheck<'_>,
    out: &mut LogVerification,
) -> Result<(), StorageError> {
    let end = found.end;
    let path = segment.txn_index_path();
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io(IoOp::Read, path, e)),
    };
    // Written whole (tmp, fsync, rename) before the snapshot that relies on it, so no crash
    // leaves it damaged.
    match txn_index::decode(&bytes) {
        None => out.problem(path, "damaged aborted-transaction index".into()),
        Some(entries) => {
            let base = segment.base_offset();
            if let Some(a) = entries
                .iter()
                .find(|a| a.last_offset < base || a.last_offset >= end)
            {
                out.problem(
                    path,
                    format!(
                        "abort marker at {} is outside the segment [{base}, {end})",
                        a.last_offset
                    ),
                );
            } else if let Some(a) = entries
                .iter()
                .find(|a| found.complete && found.markers.binary_search(&a.last_offset).is_err())
            {
                out.problem(
                    path,
                    format!("no abort marker at {} in the segment", a.last_offset),
                );
            }
        }
    }
    Ok(())
}

/// Checks one producer snapshot: whole, named by its offset, within the log. One below the
/// first segment is left by a crash during segment deletion (removed at open).
fn check_snapshot(
    path: &Path,
    offset: i64,
    crash: bool,
    out: &mut LogVerification,
) -> Result<(), StorageError> {
    let bytes = fs::read(path).map_err(|e| StorageError::io(IoOp::Read, path, e))?;
    match producer::decode_snapshot(&bytes) {
        None => out.problem(path, "damaged producer snapshot".into()),
        Some((at, _)) if at != offset => {
            out.problem(path, format!("producer snapshot of offset {at}"));
        }
        // Only a torn tail cut below a snapshot leaves this; recovery removes it.
        Some(_) if offset > out.log_end => out.note_or_problem(
            crash,
            path,
            &format!("producer snapshot beyond the log end {}", out.log_end),
        ),
        Some(_) if offset < out.first_offset => out.note_or_problem(
            crash,
            path,
            "producer snapshot below the first segment (removed at open)",
        ),
        Some(_) => {}
    }
    Ok(())
}

/// Checks a segment's `.index` and `.timeindex` against its batches.
fn check_indexes(
    segment: &Segment,
    batches: &[(u64, i64, i64)],
    valid_end: u64,
    active: bool,
    crash_tolerant: bool,
    out: &mut LogVerification,
) -> Result<(), StorageError> {
    let base = segment.base_offset();
    // An empty active segment has no index files (they are written when a segment is sealed
    // or closed, and only if it holds batches).
    if active && segment.len() == 0 && !segment.index_path().exists() {
        if segment.time_index_path().exists() {
            out.note_or_problem(
                crash_tolerant,
                segment.index_path(),
                "index file missing (rebuilt at open)",
            );
        }
        return Ok(());
    }
    // After a crash the active segment's index files may be missing (they live in memory
    // until the segment is sealed or closed), lack their last entries, or hold a partial one:
    // they are hints, rebuilt by recovery. So may a compacted log's sealed segment's, if the
    // crash came between a cleaner swap and the writing of its index files.
    let lenient = crash_tolerant;
    let offsets = read_entries(segment.index_path(), 8, lenient, out)?;
    let times = read_entries(segment.time_index_path(), 12, lenient, out)?;
    // Entries for batches of an unclean tail (a write that reached the index file but not
    // wholly the log) are dropped by recovery too.
    let valid_offsets_end = batches.last().map_or(base, |b| b.1);
    if let Some(bytes) = offsets {
        let log_len = if lenient { segment.len() } else { valid_end };
        match SegmentIndex::decode_offsets(&bytes, log_len.max(1)) {
            Ok(mut entries) => {
                if lenient {
                    let before = entries.len();
                    entries.retain(|e| u64::from(e.position) < valid_end);
                    if entries.len() != before {
                        out.notes.push(format!(
                            "{}: {} entries past the valid batches",
                            segment.index_path().display(),
                            before - entries.len()
                        ));
                    }
                }
                check_offset_entries(segment, base, &entries, batches, out)
            }
            Err(d) => out.problem(segment.index_path(), format!("invalid offset index: {d:?}")),
        }
    }
    if let Some(bytes) = times {
        match SegmentIndex::decode_times(&bytes) {
            Ok(mut entries) => {
                if lenient {
                    let before = entries.len();
                    entries.retain(|e| base + i64::from(e.relative_offset) <= valid_offsets_end);
                    if entries.len() != before {
                        out.notes.push(format!(
                            "{}: {} entries past the valid batches",
                            segment.time_index_path().display(),
                            before - entries.len()
                        ));
                    }
                }
                check_time_entries(segment, base, &entries, batches, active, out)
            }
            Err(d) => out.problem(
                segment.time_index_path(),
                format!("invalid time index: {d:?}"),
            ),
        }
    }
    Ok(())
}

/// Reads an index file, cutting (and noting) a partial last entry when `lenient`. `None` if
/// it is missing (a problem unless `lenient`).
fn read_entries(
    path: &Path,
    entry_len: usize,
    lenient: bool,
    out: &mut LogVerification,
) -> Result<Option<Vec<u8>>, StorageError> {
    let mut bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            out.note_or_problem(lenient, path, "index file missing (rebuilt at open)");
            return Ok(None);
        }
        Err(e) => return Err(StorageError::io(IoOp::Read, path, e)),
    };
    let partial = bytes.len() % entry_len;
    if partial != 0 && lenient {
        out.notes.push(format!(
            "{}: partial last index entry ({partial} bytes; rebuilt at open)",
            path.display()
        ));
        bytes.truncate(bytes.len() - partial);
    }
    Ok(Some(bytes))
}

fn check_offset_entries(
    segment: &Segment,
    base: i64,
    entries: &[OffsetEntry],
    batches: &[(u64, i64, i64)],
    out: &mut LogVerification,
) {
    for e in entries {
        let pos = u64::from(e.position);
        let at = batches.binary_search_by_key(&pos, |b| b.0);
        let offset = base + i64::from(e.relative_offset);
        match at.ok().and_then(|i| batches.get(i)) {
            Some(&(_, batch_base, _)) if batch_base == offset => {}
            Some(&(_, batch_base, _)) => out.problem(
                segment.index_path(),
                format!(
                    "entry for offset {offset} points at byte {pos}, which holds offset {batch_base}"
                ),
            ),
            None => out.problem(
                segment.index_path(),
                format!("entry for offset {offset} points at byte {pos}, not a batch boundary"),
            ),
        }
    }
}

fn check_time_entries(
    segment: &Segment,
    base: i64,
    entries: &[TimeEntry],
    batches: &[(u64, i64, i64)],
    active: bool,
    out: &mut LogVerification,
) {
    for e in entries {
        let offset = base + i64::from(e.relative_offset);
        let found = batches
            .binary_search_by_key(&offset, |b| b.1)
            .ok()
            .and_then(|i| batches.get(i));
        match found {
            Some(&(_, _, ts)) if ts == e.timestamp => {}
            Some(&(_, _, ts)) => out.problem(
                segment.time_index_path(),
                format!(
                    "entry ({}, offset {offset}) but that batch's max timestamp is {ts}",
                    e.timestamp
                ),
            ),
            None => out.problem(
                segment.time_index_path(),
                format!(
                    "entry ({}, offset {offset}) names no batch start",
                    e.timestamp
                ),
            ),
        }
    }
    if !active {
        // Sealing appends a final entry, so the last one is the segment's max timestamp.
        let max = batches.iter().map(|b| b.2).max().unwrap_or(NO_TIMESTAMP);
        let last = entries.last().map_or(NO_TIMESTAMP, |e| e.timestamp);
        if max > NO_TIMESTAMP && last != max {
            out.problem(
                segment.time_index_path(),
                format!(
                    "sealed segment's max timestamp is {max} but its last time entry is {last}"
                ),
            );
        }
    }
}

impl LogVerification {
    fn problem(&mut self, path: &Path, what: String) {
        self.problems.push(Problem {
            path: path.to_path_buf(),
            what,
        });
    }

    fn note_or_problem(&mut self, allowed: bool, path: &Path, what: &str) {
        if allowed {
            self.notes.push(format!("{}: {what}", path.display()));
        } else {
            self.problem(path, what.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::BatchBuilder;
    use crate::{Log, LogConfig};

    fn log_with_segments(dir: &Path) -> Log {
        let config = LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 1,
            ..LogConfig::default()
        };
        let log = Log::create(dir.to_path_buf(), config).expect("create");
        for i in 0..12 {
            let mut b = BatchBuilder::new(1_000 + i).records(2, 20).build();
            log.append(&mut b, 1).expect("append");
        }
        log
    }

    #[test]
    fn clean_log_verifies_and_damage_is_classified() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("t-0");
        let log = log_with_segments(&dir);
        log.close().expect("close");
        drop(log);
        let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
        assert!(v.is_consistent(), "{:?}", v.problems);
        assert!(v.segments > 2);
        assert_eq!((v.batches, v.log_start, v.log_end), (12, 0, 24));

        // A torn tail of the active segment: allowed after a crash only.
        let mut names: Vec<_> = fs::read_dir(&dir)
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        names.sort();
        let active = names.last().expect("active").clone();
        let bytes = fs::read(&active).expect("read");
        fs::write(&active, &bytes[..bytes.len() - 5]).expect("tear");
        let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
        assert!(v.is_consistent(), "{:?}", v.problems);
        assert!(v.unclean_tail.is_some());
        assert!(!verify_log_dir(&dir, Mode::Clean)
            .expect("verify")
            .is_consistent());
        fs::write(&active, &bytes).expect("restore");

        // A flipped byte in a sealed segment is corruption in either mode.
        let first = names.first().expect("first").clone();
        let mut sealed = fs::read(&first).expect("read");
        sealed[70] ^= 1;
        fs::write(&first, &sealed).expect("flip");
        let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
        assert!(!v.is_consistent());
        sealed[70] ^= 1;
        fs::write(&first, &sealed).expect("unflip");

        // An index entry that points between batches.
        let index = first.with_extension("index");
        let mut entries = fs::read(&index).expect("read index");
        assert!(!entries.is_empty());
        entries[7] ^= 1;
        fs::write(&index, &entries).expect("write index");
        let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
        assert!(!v.is_consistent(), "a bad sealed index entry is a problem");
    }

    #[test]
    fn damaged_snapshots_and_txn_indexes_are_problems() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("t-0");
        let config = LogConfig {
            segment_bytes: 300,
            ..LogConfig::default()
        };
        let log = Log::create(dir.clone(), config).expect("create");
        for i in 0..6 {
            let mut b = BatchBuilder::new(1_000)
                .records(2, 20)
                .producer(5, 0, i * 2)
                .transactional()
                .build();
            log.append(&mut b, 1).expect("append");
            log.append_marker(5, 0, crate::Marker::Abort, 0, 1)
                .expect("abort");
        }
        log.close().expect("close");
        drop(log);
        let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
        assert!(v.is_consistent(), "{:?}", v.problems);
        let with = |suffix: &str| {
            let mut v: Vec<PathBuf> = fs::read_dir(&dir)
                .expect("ls")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect();
            v.sort();
            v
        };
        for path in [&with(".snapshot")[0], &with(".txnindex")[0]] {
            let original = fs::read(path).expect("read");
            let mut flipped = original.clone();
            flipped[3] ^= 1;
            fs::write(path, &flipped).expect("flip");
            for mode in [Mode::Clean, Mode::AfterCrash] {
                let v = verify_log_dir(&dir, mode).expect("verify");
                assert_eq!(v.problems.len(), 1, "{path:?}: {:?}", v.problems);
            }
            fs::write(path, &original).expect("restore");
        }
        // Whole, in range, but naming a data batch: no abort marker there.
        let path = &with(".txnindex")[0];
        let original = fs::read(path).expect("read");
        let mut entries = txn_index::decode(&original).expect("valid");
        entries[0].last_offset -= 1;
        fs::write(path, txn_index::encode(&entries)).expect("write");
        let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert!(
            v.problems[0].what.contains("no abort marker"),
            "{:?}",
            v.problems
        );
        fs::write(path, &original).expect("restore");
    }
}
