//! Putting a cleaned segment in place of the segments it replaces, crash-safely.
//!
//! A group of consecutive sealed segments `[B, E)` (E is the base of the segment after the
//! group) is replaced by one cleaned segment at base B:
//!
//! 1. the cleaned batches are written to `B.log.cleaned` and fsynced;
//! 2. it is renamed to `B-E.log.swap` and the directory fsynced: **the commit point**. The
//!    name carries the replaced range, so recovery needs nothing else;
//! 3. the old segments' files (`.log`, `.index`, `.timeindex`, `.txnindex` of every base in
//!    `[B, E)`) are removed;
//! 4. the new `B.txnindex` (the aborted transactions whose markers the cleaned segment
//!    still holds) is written whole and the directory fsynced, then the swap file is renamed
//!    to `B.log`, its index files written, the directory fsynced.
//!
//! Before 2, the producer snapshots below E are removed (see `Log::replace_segments`).
//!
//! A crash before 2 leaves a `.cleaned` file, which open deletes: the old segments are whole.
//! A crash after 2 leaves a `.swap` file, and open finishes steps 3 and 4 (each is
//! idempotent), then rebuilds the missing indexes like any sealed segment's. The `.txnindex`
//! of `B` may then be missing or the old one: open also removes every producer snapshot, so
//! the producer state and all `.txnindex` files are rebuilt by a replay of the whole log
//! (the window is a few renames wide, so the cost is rare). Once the swap file is renamed,
//! `B.txnindex` is the new one. Either way every offset is in exactly one segment file:
//! nothing is lost or duplicated.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{IoOp, StorageError};
use crate::producer::{AbortedTxn, SNAPSHOT_SUFFIX};
use crate::segment::{
    file_name, parse_file_name, sync_dir, write_synced_no_dir, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};
use crate::txn_index::{self, TXN_INDEX_SUFFIX};

pub const CLEANED_SUFFIX: &str = ".log.cleaned";
pub const SWAP_SUFFIX: &str = ".log.swap";

pub fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(file_name(base, CLEANED_SUFFIX))
}

pub fn swap_path(dir: &Path, base: i64, end: i64) -> PathBuf {
    dir.join(format!("{base:020}-{end:020}{SWAP_SUFFIX}"))
}

/// Parses `B-E.log.swap` into `(B, E)`.
pub fn parse_swap_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(SWAP_SUFFIX)?;
    let (b, e) = stem.split_once('-')?;
    let base = parse_file_name(&format!("{b}{LOG_SUFFIX}"), LOG_SUFFIX)?;
    let end = parse_file_name(&format!("{e}{LOG_SUFFIX}"), LOG_SUFFIX)?;
    (base < end).then_some((base, end))
}

fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(IoOp::Remove, path, e)),
    }
}

/// Step 3 (see the module docs): removes the files of every segment with a base in
/// `[base, end)`. The caller fsyncs the directory.
pub fn remove_replaced(dir: &Path, base: i64, end: i64) -> Result<(), StorageError> {
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(IoOp::ListDirectory, dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(IoOp::ListDirectory, dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let replaced = [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ]
        .iter()
        .filter_map(|s| parse_file_name(&name, s))
        .any(|b| (base..end).contains(&b));
        if replaced {
            remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}

/// The first part of step 4: writes the cleaned segment's `.txnindex` (none when `entries`
/// is empty; step 3 removed the old one) and fsyncs the directory, so that the file is in
/// place before the swap file's rename ends the recovery's responsibility for it.
pub fn write_txn_index(dir: &Path, base: i64, entries: &[AbortedTxn]) -> Result<(), StorageError> {
    if entries.is_empty() {
        return Ok(());
    }
    let name = file_name(base, TXN_INDEX_SUFFIX);
    write_synced_no_dir(dir, &name, &txn_index::encode(entries))?;
    sync_dir(dir)
}

/// The rename of step 4: the swap file becomes `base`'s log. The caller fsyncs the
/// directory.
pub fn rename_swap(dir: &Path, base: i64, end: i64) -> Result<(), StorageError> {
    let swap = swap_path(dir, base, end);
    let log = dir.join(file_name(base, LOG_SUFFIX));
    fs::rename(&swap, &log).map_err(|e| StorageError::io(IoOp::Rename, &swap, e))
}

/// Run by `Log::open` before it lists segments: deletes cleaned files that never reached
/// the commit point and finishes every committed swap, removing then every producer
/// snapshot (see the module docs). Returns how many swaps it finished.
pub fn recover(dir: &Path) -> Result<usize, StorageError> {
    let mut swaps = Vec::new();
    let mut snapshots = Vec::new();
    let mut changed = false;
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(IoOp::ListDirectory, dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(IoOp::ListDirectory, dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::info!(path = %entry.path().display(), "removing a cleaned segment that was never swapped in");
            remove_if_present(&entry.path())?;
            changed = true;
        } else if let Some(range) = parse_swap_name(&name) {
            swaps.push(range);
        } else if parse_file_name(&name, SNAPSHOT_SUFFIX).is_some() {
            snapshots.push(entry.path());
        }
    }
    swaps.sort_unstable();
    for &(base, end) in &swaps {
        tracing::info!(dir = %dir.display(), base, end, "finishing an interrupted segment swap");
        remove_replaced(dir, base, end)?;
        rename_swap(dir, base, end)?;
    }
    if !swaps.is_empty() {
        // The swapped-in segments' `.txnindex` files are unknown: rebuilt from the whole log.
        for path in &snapshots {
            remove_if_present(path)?;
        }
    }
    if changed || !swaps.is_empty() {
        sync_dir(dir)?;
    }
    Ok(swaps.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_names_round_trip() {
        let dir = Path::new("/d");
        let p = swap_path(dir, 5, 1200);
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, "00000000000000000005-00000000000000001200.log.swap");
        assert_eq!(parse_swap_name(name), Some((5, 1200)));
        assert_eq!(parse_swap_name("5-1200.log.swap"), None);
        assert_eq!(
            parse_swap_name("00000000000000000005-00000000000000000005.log.swap"),
            None
        );
        assert_eq!(
            cleaned_path(dir, 5),
            Path::new("/d/00000000000000000005.log.cleaned")
        );
    }
}
