//! Records inside a v2 batch (read by [`crate::records`], decompressed if need be), and the
//! rewrite of a batch keeping some of them, compressed again with the batch's codec.
//!
//! A kept record's bytes are copied verbatim: the rewritten batch keeps the base offset and
//! base timestamp, so every record's offset and timestamp deltas stay right. The header
//! keeps `lastOffsetDelta`, the producer id, epoch and base sequence (so a producer's last
//! sequence survives, as in Kafka's cleaner); the record count, length, max timestamp (for
//! CreateTime) and CRC-32C are recomputed.

use std::borrow::Cow;

use crate::batch::{
    BatchHeader, ATTRIBUTES_AT, BATCH_LENGTH_AT, COMPRESSION_MASK, CRC_AT, HEADER_LEN,
    LOG_OVERHEAD, MAX_TIMESTAMP_AT, RECORDS_COUNT_AT,
};
use crate::codec;
pub use crate::records::{records, Record};

/// Largest records area the cleaner decompresses; a bigger batch is kept whole.
const MAX_DECOMPRESSED: usize = 64 << 20;

/// The records area of `batch` (one whole batch), decompressed if need be. `None` when it
/// cannot be read (unknown codec, corrupt or too large data): the batch is then kept whole.
pub fn body<'a>(header: &BatchHeader, batch: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    crate::records::body(header, batch, MAX_DECOMPRESSED).ok()
}

/// `batch` with only `kept` of its records (in order; may be none: an empty batch keeps a
/// producer's sequence, as Kafka retains it), compressed with the batch's codec. `None` if
/// compressing fails (the caller keeps the batch whole).
pub fn rewrite(header: &BatchHeader, batch: &[u8], kept: &[Record<'_>]) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(kept.iter().map(|r| r.bytes.len()).sum());
    for r in kept {
        body.extend_from_slice(r.bytes);
    }
    if header.is_compressed() && !kept.is_empty() {
        body = codec::compress(header.compression(), &body)?;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(batch.get(..HEADER_LEN)?);
    out.extend_from_slice(&body);
    let length = i32::try_from(out.len() - LOG_OVERHEAD).ok()?;
    let count = i32::try_from(kept.len()).ok()?;
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(dst) = out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    };
    put(BATCH_LENGTH_AT, &length.to_be_bytes());
    put(RECORDS_COUNT_AT, &count.to_be_bytes());
    if kept.is_empty() {
        // No records to compress: an empty batch says so (clients skip it either way).
        put(
            ATTRIBUTES_AT,
            &(header.attributes & !COMPRESSION_MASK).to_be_bytes(),
        );
    }
    // With LogAppendTime every record reads the batch's max timestamp: keep it. An empty
    // batch keeps it too, so the time index of the segment still sees the batch's time.
    if !header.is_log_append_time() {
        if let Some(max) = kept.iter().map(|r| r.timestamp).max() {
            put(MAX_TIMESTAMP_AT, &max.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(out.get(ATTRIBUTES_AT..)?);
    out.get_mut(CRC_AT..CRC_AT + 4)?
        .copy_from_slice(&crc.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{set_base_offset, validate};
    use crate::testkit::BatchBuilder;

    #[test]
    fn rewrite_keeps_offsets_and_sequence() {
        let mut b = BatchBuilder::new(1_000)
            .producer(9, 2, 40)
            .record(1_000, Some(b"a"), Some(b"1"))
            .record(1_007, Some(b"b"), None)
            .record(1_003, Some(b"a"), Some(b"2"))
            .build();
        set_base_offset(&mut b, 100).expect("offset");
        let h = validate(&b).expect("valid");
        let area = body(&h, &b).expect("body");
        let rs = records(&h, &area).expect("records");
        assert_eq!(
            rs.iter()
                .map(|r| (r.offset, r.timestamp, r.key, r.is_tombstone()))
                .collect::<Vec<_>>(),
            vec![
                (100, 1_000, Some(&b"a"[..]), false),
                (101, 1_007, Some(&b"b"[..]), true),
                (102, 1_003, Some(&b"a"[..]), false),
            ]
        );
        let kept = [rs[2]];
        let out = rewrite(&h, &b, &kept).expect("rewrite");
        let nh = validate(&out).expect("CRC recomputed");
        assert_eq!(nh.base_offset, 100);
        assert_eq!(nh.last_offset(), 102);
        assert_eq!(nh.records_count, 1);
        assert_eq!(nh.max_timestamp, 1_003);
        assert_eq!(
            (nh.producer_id, nh.producer_epoch, nh.base_sequence),
            (9, 2, 40)
        );
        let again = records(&nh, &out[HEADER_LEN..]).expect("records");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].offset, 102);
        assert_eq!(again[0].bytes, rs[2].bytes);

        let empty = rewrite(&h, &b, &[]).expect("rewrite");
        let eh = validate(&empty).expect("valid empty batch");
        assert_eq!((eh.records_count, eh.last_offset()), (0, 102));
        assert_eq!(eh.max_timestamp, 1_007);
        assert!(records(&eh, &empty[HEADER_LEN..]).expect("none").is_empty());
    }
}
