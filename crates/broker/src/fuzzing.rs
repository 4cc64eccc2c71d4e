//! Entry points for the cargo-fuzz targets in `fuzz/`: decoders of the broker's internal logs
//! that are private to this crate. (The `meta/*.json` decoders are public in [`crate::meta`].)
//! Not a stable API.

use bytes::Bytes;
use weir_protocol::kafka_protocol::records::{Record, RecordBatchDecoder};

/// Decodes the record batches of an internal log read, as replay does.
pub fn decode_internal_log(mut bytes: Bytes) -> Result<Vec<Record>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| format!("{e:#}"))?;
    Ok(sets.into_iter().flat_map(|s| s.records).collect())
}

/// Decodes one record of the group offsets log (`meta/group-offsets`).
pub fn decode_offsets_log_record(r: &Record) -> Result<(), String> {
    crate::groups::check_record(r)
}

/// The keyless-record check of a produce to a compacted topic: batches as a producer sends
/// them, decompressed with `limit` bytes at most. Returns the keyless records' indexes.
pub fn keyless_records(data: &[u8], limit: usize) -> Result<Vec<i32>, String> {
    crate::records::keyless_records(data, limit).map_err(|e| e.to_string())
}
