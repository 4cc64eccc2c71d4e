//! Entry points for the cargo-fuzz targets in `fuzz/` and their seed generator: decoders and
//! encoders of the broker's internal logs that are private to this crate. (The `meta/*.json`
//! codecs are public in [`crate::meta`].) Not a stable API.

use bytes::Bytes;
use weir_coordinator::{CommittedOffset, TopicPartition};
use weir_protocol::kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

/// Decodes the record batches of an internal log read, as replay does.
pub fn decode_internal_log(mut bytes: Bytes) -> Result<Vec<Record>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| format!("{e:#}"))?;
    Ok(sets.into_iter().flat_map(|s| s.records).collect())
}

/// Decodes one record of the group offsets log (`meta/group-offsets`).
pub fn decode_offsets_log_record(r: &Record) -> Result<(), String> {
    crate::group_log::check_record(r)
}

/// Encodes key/value records as one internal log batch, as the broker appends them (always
/// uncompressed; other codecs reach the decoder's decompression paths).
pub fn encode_internal_log(
    entries: Vec<(Bytes, Option<Bytes>)>,
    now_ms: i64,
    compression: Compression,
) -> Result<Bytes, String> {
    crate::internal_log::encode(entries, now_ms, compression).map(|b| b.freeze())
}

/// The key and value of a group offsets log record: a commit, or its tombstone (`None`).
pub fn offsets_log_record(
    group: &str,
    tp: &TopicPartition,
    committed: Option<&CommittedOffset>,
) -> (Bytes, Option<Bytes>) {
    crate::group_log::offset_record(group, tp, committed)
}

/// The key and value of a producer's pending transactional commits in a group (`Some`), or
/// of their settlement (`None`).
pub fn txn_offsets_log_record(
    group: &str,
    producer_id: i64,
    producer_epoch: i16,
    offsets: Option<&[(TopicPartition, CommittedOffset)]>,
) -> (Bytes, Option<Bytes>) {
    crate::group_log::txn_offsets_record(group, producer_id, producer_epoch, offsets)
}

/// The keyless-record check of a produce to a compacted topic: batches as a producer sends
/// them, decompressed with `limit` bytes at most. Returns the keyless records' indexes.
pub fn keyless_records(data: &[u8], limit: usize) -> Result<Vec<i32>, String> {
    crate::records::keyless_records(data, limit).map_err(|e| e.to_string())
}
