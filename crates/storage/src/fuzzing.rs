//! Entry points for the cargo-fuzz targets in `fuzz/`: the on-disk decoders that are private
//! to this crate, reached without copying them. Not a stable API.

pub use crate::index::{IndexBuilder, IndexDefect, OffsetEntry, SegmentIndex, TimeEntry};
pub use crate::producer::AbortedTxn;

/// Decodes a `<offset>.snapshot` producer snapshot and encodes it again, or `None` if it
/// does not decode.
pub fn producer_snapshot_reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    crate::producer::decode_snapshot(bytes).map(|(offset, p)| p.encode_snapshot(offset))
}

/// Decodes a segment's `.txnindex`, or `None` if it is damaged.
pub fn decode_txn_index(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
    crate::txn_index::decode(bytes)
}

/// Encodes a segment's `.txnindex`.
pub fn encode_txn_index(entries: &[AbortedTxn]) -> Vec<u8> {
    crate::txn_index::encode(entries)
}

/// Decodes a `log-start-offset` checkpoint.
pub fn parse_log_start_checkpoint(text: &str) -> Option<i64> {
    crate::log::parse_checkpoint(text)
}

/// Test hook (feature `fault-injection`): every later fsync of `log` fails, as if the disk
/// reported EIO, which poisons it.
#[cfg(feature = "fault-injection")]
pub fn inject_fsync_failures(log: &crate::Log) {
    log.inject_fsync_failures();
}

/// Test hook (feature `fault-injection`): while `on`, every append to `log` writes half its
/// bytes and fails with ENOSPC (undone, so the log stays writable).
#[cfg(feature = "fault-injection")]
pub fn inject_write_failures(log: &crate::Log, on: bool) {
    log.inject_write_failures(on);
}
