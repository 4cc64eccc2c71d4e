//! One segment: a `.log` file of batches plus its `.index`, `.timeindex` and (if it holds
//! abort markers) `.txnindex`.
//!
//! Only the `.log` file stays open. The indexes are derived data: the active segment's live
//! in memory and are written (whole, atomically) when the segment is sealed by a roll and at
//! a clean close; a sealed segment's are read from their files on first use. So an idle
//! partition holds one file descriptor, and a crash can lose an active index but never a
//! batch: recovery rebuilds it from the log.
//!
//! The log file is shared (`Arc<Segment>`) between the appender and any number of readers.
//! All I/O is positional (`read_at` / `write_all_at`), so readers need no lock: they learn the
//! committed length under the log's lock and then read without it. Bytes past the committed
//! length may be a write in progress and are never read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use crate::batch::{self, BatchDefect, BatchHeader, Check, HEADER_LEN};
use crate::error::{IoOp, StorageError};
use crate::index::{IndexBuilder, IndexDefect, SegmentIndex};
use crate::producer::AbortedTxn;
use crate::txn_index::{self, TXN_INDEX_SUFFIX};

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Read size for sequential scans (recovery, index rebuilds, timestamp search).
const SCAN_CHUNK: usize = 256 * 1024;

/// Kafka's file name for a segment file: the base offset as 20 digits.
pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Parses `00000000000000000042.log` (with the given suffix) into 42.
pub(crate) fn parse_file_name(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// fsyncs a directory so that creates, renames and deletes inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(IoOp::FsyncDirectory, dir, e))
}

/// Writes `contents` to `dir/name` atomically: tmp file, fsync, rename, fsync dir. A crash
/// leaves either the old file or the new one, plus perhaps a stray `.tmp` that open removes.
/// Every small file Weir replaces whole (indexes, checkpoints, snapshots, the broker's
/// metadata) is written through here.
pub fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), StorageError> {
    write_synced_no_dir(dir, name, contents)?;
    // Durability point of the rename.
    sync_dir(dir)
}

/// [`write_atomically`] without the directory fsync, for callers that rename several files
/// and then fsync the directory once.
pub(crate) fn write_synced_no_dir(
    dir: &Path,
    name: &str,
    contents: &[u8],
) -> Result<(), StorageError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp).map_err(|e| StorageError::io(IoOp::Create, &tmp, e))?;
    if let Err(e) = file.write_all(contents) {
        // Do not leave a partial temp file taking the little space there is.
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::io(IoOp::Write, &tmp, e));
    }
    file.sync_all()
        .map_err(|e| StorageError::io(IoOp::Fsync, &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| StorageError::io(IoOp::Rename, &path, e))
}

/// What a sealed (no longer appended) segment knows about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// (largest batch max timestamp, base offset of that batch), if any batch had one.
    pub max_timestamp: Option<(i64, i64)>,
}

/// Where a sequential scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// File position after the last whole, valid batch visited.
    pub valid_end: u64,
    /// The defect that stopped the scan early, and its position.
    pub fault: Option<(u64, BatchDefect)>,
}

pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    txn_index_path: PathBuf,
    log: File,
    /// Committed length of the log file. Written only by the appender, under the log's lock
    /// and after the bytes are in the file; readers bound their reads by it.
    len: AtomicU64,
    /// Set once when the segment stops being active.
    sealed: OnceLock<Sealed>,
    /// A sealed segment's indexes, loaded on first lookup (most old segments are never read).
    index: OnceLock<SegmentIndex>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("base_offset", &self.base_offset)
            .field("len", &self.len())
            .field("sealed", &self.sealed.get())
            .finish()
    }
}

/// Whether [`Segment::write_index_files`] makes the files durable itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexSync {
    /// fsync the files and the directory (recovery rewriting a sealed segment's indexes).
    All,
    /// fsync the files; the caller fsyncs the directory once for several renames (a roll,
    /// which also creates the next segment; a clean close).
    FilesOnly,
}

impl Segment {
    fn at(dir: &Path, base_offset: i64, log: File, len: u64) -> Segment {
        Segment {
            base_offset,
            log_path: dir.join(file_name(base_offset, LOG_SUFFIX)),
            index_path: dir.join(file_name(base_offset, INDEX_SUFFIX)),
            time_index_path: dir.join(file_name(base_offset, TIME_INDEX_SUFFIX)),
            txn_index_path: dir.join(file_name(base_offset, TXN_INDEX_SUFFIX)),
            log,
            len: AtomicU64::new(len),
            sealed: OnceLock::new(),
            index: OnceLock::new(),
        }
    }

    /// Creates (or empties) the log file of a new segment and removes any index files left
    /// at its base (its indexes are written when it is sealed or closed). The caller fsyncs
    /// the directory.
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = open_rw(&log_path, true)?;
        let segment = Segment::at(dir, base_offset, log, 0);
        segment.remove_index_files()?;
        Ok(segment)
    }

    /// Removes the index files (offset, time, aborted transactions) if present. No fsync: an
    /// index file that comes back after a crash is checked against the log like any other,
    /// and rebuilt if it does not match.
    pub fn remove_index_files(&self) -> Result<(), StorageError> {
        for path in [
            &self.index_path,
            &self.time_index_path,
            &self.txn_index_path,
        ] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(IoOp::Remove, path, e)),
            }
        }
        Ok(())
    }

    /// Opens an existing segment's log file read-only (the offline verifier: it must not
    /// need write access and must not change anything).
    pub fn open_read_only(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = File::open(&log_path).map_err(|e| StorageError::io(IoOp::Open, &log_path, e))?;
        let len = log
            .metadata()
            .map_err(|e| StorageError::io(IoOp::Stat, &log_path, e))?
            .len();
        Ok(Segment::at(dir, base_offset, log, len))
    }

    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    pub fn time_index_path(&self) -> &Path {
        &self.time_index_path
    }

    /// Opens an existing segment's log file.
    pub fn open(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = open_rw(&log_path, false)?;
        let len = log
            .metadata()
            .map_err(|e| StorageError::io(IoOp::Stat, &log_path, e))?
            .len();
        Ok(Segment::at(dir, base_offset, log, len))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    pub fn set_len(&self, len: u64) {
        self.len.store(len, Ordering::Release);
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn log_file(&self) -> &File {
        &self.log
    }

    pub fn txn_index_path(&self) -> &Path {
        &self.txn_index_path
    }

    pub fn file_paths(&self) -> [&Path; 4] {
        [
            &self.log_path,
            &self.index_path,
            &self.time_index_path,
            &self.txn_index_path,
        ]
    }

    pub fn sealed(&self) -> Option<Sealed> {
        self.sealed.get().copied()
    }

    /// Marks the segment sealed, handing over the final in-memory index so the first lookup
    /// does not reload it.
    pub fn seal(&self, sealed: Sealed, index: Option<SegmentIndex>) {
        let _ = self.sealed.set(sealed);
        if let Some(index) = index {
            let _ = self.index.set(index);
        }
    }

    /// Writes `bytes` at `position` (the appender's committed length).
    pub fn write_at(&self, bytes: &[u8], position: u64) -> Result<(), StorageError> {
        self.log
            .write_all_at(bytes, position)
            .map_err(|e| StorageError::io(IoOp::Write, &self.log_path, e))
    }

    pub fn read_exact_at(&self, buf: &mut [u8], position: u64) -> Result<(), StorageError> {
        self.log
            .read_exact_at(buf, position)
            .map_err(|e| StorageError::io(IoOp::Read, &self.log_path, e))
    }

    /// Undoes a failed append: cuts the file back to the committed length. Needs no free
    /// space, so it works on a full disk; no fsync, since a crash before the next one leaves
    /// at worst a torn tail past the committed length, which recovery cuts anyway.
    pub fn undo_write(&self, len: u64) -> Result<(), StorageError> {
        self.log
            .set_len(len)
            .map_err(|e| StorageError::io(IoOp::Truncate, &self.log_path, e))
    }

    /// Removes the files of a segment whose creation failed half way (nothing was written
    /// to it), so a retry starts clean. Best effort: open removes leftovers too.
    pub fn remove_created(dir: &Path, base_offset: i64) {
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            let _ = fs::remove_file(dir.join(file_name(base_offset, suffix)));
        }
    }

    /// Cuts the log file back to `len` bytes and fsyncs it (recovery only).
    pub fn truncate(&self, len: u64) -> Result<(), StorageError> {
        self.log
            .set_len(len)
            .and_then(|()| self.log.sync_all())
            .map_err(|e| StorageError::io(IoOp::Truncate, &self.log_path, e))?;
        self.set_len(len);
        Ok(())
    }

    /// Last modification time of the log file in ms since the epoch (retention fallback for
    /// segments without timestamps).
    pub fn modified_ms(&self) -> Result<i64, StorageError> {
        let modified = self
            .log
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| StorageError::io(IoOp::Stat, &self.log_path, e))?;
        Ok(modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Reads the header of the batch at `position`, if the committed bytes up to `end` hold
    /// one. A header that does not parse means the file is damaged: reported as `Io` with
    /// `InvalidData`, since it is not the client's fault.
    pub fn read_header(
        &self,
        position: u64,
        end: u64,
    ) -> Result<Option<BatchHeader>, StorageError> {
        let available = end.saturating_sub(position);
        if available == 0 {
            return Ok(None);
        }
        let n = usize::try_from(available.min(HEADER_LEN as u64)).unwrap_or(HEADER_LEN);
        let mut buf = [0u8; HEADER_LEN];
        let head = buf.get_mut(..n).unwrap_or_default();
        self.read_exact_at(head, position)?;
        let header = BatchHeader::parse(head).map_err(|d| self.damaged(position, d))?;
        let size = header.total_size().map_err(|d| self.damaged(position, d))?;
        if size as u64 > available {
            return Err(self.damaged(
                position,
                BatchDefect::Truncated {
                    needed: size,
                    available: usize::try_from(available).unwrap_or(usize::MAX),
                },
            ));
        }
        Ok(Some(header))
    }

    pub fn damaged(&self, position: u64, defect: BatchDefect) -> StorageError {
        StorageError::io(
            IoOp::ReadBatch,
            &self.log_path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("damaged batch at byte {position}: {defect}"),
            ),
        )
    }

    /// Visits the batches in `[start, end)` in order, reading in large chunks. Stops at the
    /// first torn or invalid batch, or when `visit` breaks or reports a defect (which then
    /// counts as a fault at that batch).
    pub fn scan(
        &self,
        start: u64,
        end: u64,
        check: Check,
        mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> Result<ControlFlow<()>, BatchDefect>,
    ) -> Result<ScanEnd, StorageError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = start;
        let mut pos = start;
        let fault = |pos: u64, defect| ScanEnd {
            valid_end: pos,
            fault: Some((pos, defect)),
        };
        loop {
            let remaining = end.saturating_sub(pos);
            if remaining == 0 {
                return Ok(ScanEnd {
                    valid_end: pos,
                    fault: None,
                });
            }
            let remaining_usize = usize::try_from(remaining).unwrap_or(usize::MAX);
            let header_want = remaining_usize.min(HEADER_LEN);
            let mut off = usize::try_from(pos - buf_start).unwrap_or(usize::MAX);
            if buf.len().saturating_sub(off) < header_want {
                self.fill(&mut buf, pos, SCAN_CHUNK.min(remaining_usize))?;
                buf_start = pos;
                off = 0;
            }
            let view = buf.get(off..).unwrap_or_default();
            let size = match batch::total_size_from_prefix(view) {
                None => {
                    let defect = BatchDefect::Truncated {
                        needed: batch::LOG_OVERHEAD,
                        available: view.len(),
                    };
                    return Ok(fault(pos, defect));
                }
                Some(Err(defect)) => return Ok(fault(pos, defect)),
                Some(Ok(size)) => size,
            };
            if size > remaining_usize {
                let defect = BatchDefect::Truncated {
                    needed: size,
                    available: remaining_usize,
                };
                return Ok(fault(pos, defect));
            }
            if buf.len().saturating_sub(off) < size {
                self.fill(&mut buf, pos, SCAN_CHUNK.max(size).min(remaining_usize))?;
                buf_start = pos;
                off = 0;
            }
            let Some(bytes) = off.checked_add(size).and_then(|e| buf.get(off..e)) else {
                let defect = BatchDefect::Truncated {
                    needed: size,
                    available: buf.len().saturating_sub(off),
                };
                return Ok(fault(pos, defect));
            };
            let checked = match check {
                Check::Full => batch::validate(bytes),
                Check::Structure => batch::validate_structure(bytes),
            };
            let header = match checked {
                Ok(h) => h,
                Err(defect) => return Ok(fault(pos, defect)),
            };
            match visit(pos, &header, bytes) {
                Err(defect) => return Ok(fault(pos, defect)),
                Ok(ControlFlow::Break(())) => {
                    return Ok(ScanEnd {
                        valid_end: pos + size as u64,
                        fault: None,
                    })
                }
                Ok(ControlFlow::Continue(())) => pos += size as u64,
            }
        }
    }

    fn fill(&self, buf: &mut Vec<u8>, position: u64, len: usize) -> Result<(), StorageError> {
        buf.clear();
        buf.resize(len, 0);
        self.read_exact_at(buf, position)
    }

    /// Rebuilds both indexes of a sealed segment by walking the log from the start
    /// (structure checks only), up to `end`, with the final time entry sealing writes.
    /// Returns the builder and where the walk stopped.
    pub fn rebuild_index(
        &self,
        end: u64,
        interval: u32,
    ) -> Result<(IndexBuilder, ScanEnd), StorageError> {
        let (mut builder, scan_end, _) = self.build_index(end, interval, Check::Structure)?;
        builder.seal();
        Ok((builder, scan_end))
    }

    /// Builds both indexes by walking the batches from the start up to `end`, checked as
    /// `check` says, stopping at the first bad one: a torn or invalid batch, offsets going
    /// backwards, or an offset or position beyond the indexes' 32 bits. Returns the builder,
    /// where the walk stopped and one past the last offset walked.
    pub fn build_index(
        &self,
        end: u64,
        interval: u32,
        check: Check,
    ) -> Result<(IndexBuilder, ScanEnd, i64), StorageError> {
        let base = self.base_offset;
        let mut builder = IndexBuilder::new(base);
        let mut expected = base;
        let scan_end = self.scan(0, end, check, |pos, h, bytes| {
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
        Ok((builder, scan_end, expected))
    }

    /// Reads and checks both index files against a log of `log_len` bytes. `Ok(Err(_))` means
    /// the files are missing or invalid and must be rebuilt.
    pub fn load_index_files(
        &self,
        log_len: u64,
    ) -> Result<Result<SegmentIndex, IndexDefect>, StorageError> {
        let Some(offset_bytes) = read_optional(&self.index_path)? else {
            return Ok(Err(IndexDefect::Missing));
        };
        let Some(time_bytes) = read_optional(&self.time_index_path)? else {
            return Ok(Err(IndexDefect::Missing));
        };
        let offsets = match SegmentIndex::decode_offsets(&offset_bytes, log_len) {
            Ok(o) => o,
            Err(d) => return Ok(Err(d)),
        };
        let times = match SegmentIndex::decode_times(&time_bytes) {
            Ok(t) => t,
            Err(d) => return Ok(Err(d)),
        };
        Ok(Ok(SegmentIndex { offsets, times }))
    }

    /// Replaces both index files with `index`, each atomically (tmp file, fsync, rename), so
    /// a reader or a crash sees either the old file or the whole new one. With
    /// [`IndexSync::FilesOnly`] the renames are durable only once the caller fsyncs `dir`.
    pub fn write_index_files(
        &self,
        dir: &Path,
        index: &SegmentIndex,
        sync: IndexSync,
    ) -> Result<(), StorageError> {
        let files = [
            (
                file_name(self.base_offset, INDEX_SUFFIX),
                SegmentIndex::encode_offsets(&index.offsets),
            ),
            (
                file_name(self.base_offset, TIME_INDEX_SUFFIX),
                SegmentIndex::encode_times(&index.times),
            ),
        ];
        for (name, contents) in files {
            match sync {
                IndexSync::All => write_atomically(dir, &name, &contents)?,
                IndexSync::FilesOnly => write_synced_no_dir(dir, &name, &contents)?,
            }
        }
        Ok(())
    }

    /// The segment's aborted transactions from its `.txnindex`: empty if there is none,
    /// `None` if it is damaged.
    pub fn load_txn_index(&self) -> Result<Option<Vec<AbortedTxn>>, StorageError> {
        Ok(match read_optional(&self.txn_index_path)? {
            None => Some(Vec::new()),
            Some(bytes) => txn_index::decode(&bytes),
        })
    }

    /// Replaces the `.txnindex` with `entries` (tmp, fsync, rename), or removes it when there
    /// are none. Returns whether the directory changed; the caller fsyncs it.
    pub fn write_txn_index(
        &self,
        dir: &Path,
        entries: &[AbortedTxn],
    ) -> Result<bool, StorageError> {
        if entries.is_empty() {
            return match fs::remove_file(&self.txn_index_path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StorageError::io(IoOp::Remove, &self.txn_index_path, e)),
            };
        }
        let name = file_name(self.base_offset, TXN_INDEX_SUFFIX);
        write_synced_no_dir(dir, &name, &txn_index::encode(entries))?;
        Ok(true)
    }

    /// A sealed segment's indexes, loading them on first use. If the files went bad since
    /// open, rebuilds in memory from the log instead.
    pub fn index(&self, interval: u32) -> Result<&SegmentIndex, StorageError> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let len = self.len();
        let index = match self.load_index_files(len)? {
            Ok(index) => index,
            Err(defect) => {
                tracing::warn!(path = %self.log_path.display(), ?defect, "index invalid on load; rebuilding in memory");
                self.rebuild_index(len, interval)?.0.index
            }
        };
        // Another reader may have won the race; both loaded the same files.
        let _ = self.index.set(index);
        self.index.get().ok_or_else(|| {
            StorageError::io(
                IoOp::LoadIndex,
                &self.index_path,
                io::Error::other("index not set"),
            )
        })
    }
}

fn open_rw(path: &Path, create: bool) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
        .map_err(|e| StorageError::io(if create { IoOp::Create } else { IoOp::Open }, path, e))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(IoOp::Read, path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(
            parse_file_name("00000000000000000042.log", LOG_SUFFIX),
            Some(42)
        );
        assert_eq!(
            parse_file_name("00000000000000000042.index", LOG_SUFFIX),
            None
        );
        assert_eq!(parse_file_name("42.log", LOG_SUFFIX), None);
        assert_eq!(
            parse_file_name("0000000000000000004x.log", LOG_SUFFIX),
            None
        );
    }
}
