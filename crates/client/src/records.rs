//! Records as the CLI sees them, and their conversion to and from v2 record batches.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

use crate::connection::protocol_error;
use crate::error::ClientError;

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Header keys and values in order. Record batches keep one value per key, so a repeated
    /// key keeps its last value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the Unix epoch; negative means "now".
    pub timestamp: i64,
}

/// A record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Records decoded from one partition of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedRecords {
    pub records: Vec<ConsumerRecord>,
    /// One past the last offset of the last complete batch, if there was one. Control batches
    /// and records below the fetch offset are skipped but still advance this.
    pub next_offset: Option<i64>,
}

/// The fixed part of a v2 batch: base offset (8), length (4), leader epoch (4), magic (1),
/// crc (4), attributes (2), last offset delta (4), timestamps (16), producer id (8),
/// producer epoch (2), base sequence (4), record count (4).
const BATCH_HEADER_BYTES: usize = 61;
const LENGTH_END: usize = 12;
const MAGIC_AT: usize = 16;
const LAST_OFFSET_DELTA_AT: usize = 23;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Encodes `records` as one v2 record batch with offsets counting from 0, as a producer sends
/// them (the broker assigns the real offsets).
pub fn encode_batch(
    records: &[ProducerRecord],
    compression: Compression,
) -> Result<Bytes, ClientError> {
    let now = now_ms();
    let records: Vec<Record> = records
        .iter()
        .zip(0i64..)
        .map(|(r, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder starts a new batch whenever `offset - sequence` changes, and a
            // non-idempotent producer's batch carries base sequence -1: count from -1.
            sequence: NO_SEQUENCE.wrapping_add(offset as i32),
            timestamp: if r.timestamp < 0 { now } else { r.timestamp },
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(protocol_error(
        ApiKey::Produce,
        format_args!("encode record batch"),
    ))?;
    Ok(buf.freeze())
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn read_i64(buf: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

/// One past the last offset of the last complete batch in `data` (fetched batches, possibly
/// cut short at the end), read from the batch headers alone. A consumer that pipelines its
/// fetches uses it to ask for the next range before decoding this one.
pub fn next_offset(data: &[u8]) -> Option<i64> {
    let mut at = 0usize;
    let mut next = None;
    loop {
        let (Some(base_offset), Some(length)) = (read_i64(data, at), read_i32(data, at + 8)) else {
            return next;
        };
        let total = usize::try_from(length)
            .ok()
            .map(|l| l + LENGTH_END)
            .filter(|&t| t >= BATCH_HEADER_BYTES)?;
        if data.len() < at + total {
            return next;
        }
        let last_delta = read_i32(data, at + LAST_OFFSET_DELTA_AT)?;
        // Saturating: the fields come from the broker, which must not be able to crash us.
        next = Some(
            base_offset
                .saturating_add(i64::from(last_delta))
                .saturating_add(1),
        );
        at += total;
    }
}

/// Decodes the record batches of one fetched partition, keeping records at or above
/// `fetch_offset`.
///
/// A broker may cut the last batch short when it reaches the fetch size limit; that partial
/// batch is dropped (the next fetch returns it whole). Compressed batches are inflated.
pub fn decode_batches(
    mut data: Bytes,
    partition: i32,
    fetch_offset: i64,
) -> Result<DecodedRecords, ClientError> {
    let bad = |message: String| ClientError::Protocol {
        api: ApiKey::Fetch,
        message,
    };
    let mut out = DecodedRecords::default();
    while data.len() >= LENGTH_END {
        let (Some(base_offset), Some(length)) = (read_i64(&data, 0), read_i32(&data, 8)) else {
            break;
        };
        let total = usize::try_from(length)
            .ok()
            .map(|l| l + LENGTH_END)
            .filter(|&t| t >= BATCH_HEADER_BYTES)
            .ok_or_else(|| {
                bad(format!(
                    "record batch at offset {base_offset} has length {length}"
                ))
            })?;
        if data.len() < total {
            break;
        }
        let mut batch = data.split_to(total);
        let magic = batch.get(MAGIC_AT).copied().unwrap_or_default();
        if magic != 2 {
            return Err(bad(format!(
                "record batch at offset {base_offset} has message format v{magic}; only v2 is supported"
            )));
        }
        let last_delta = read_i32(&batch, LAST_OFFSET_DELTA_AT).unwrap_or_default();
        out.next_offset = Some(
            base_offset
                .saturating_add(i64::from(last_delta))
                .saturating_add(1),
        );
        let set = RecordBatchDecoder::decode(&mut batch).map_err(protocol_error(
            ApiKey::Fetch,
            format_args!("decode record batch at offset {base_offset}"),
        ))?;
        out.records.extend(
            set.records
                .into_iter()
                .filter(|r| !r.control && r.offset >= fetch_offset)
                .map(|r| ConsumerRecord {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type: r.timestamp_type,
                    key: r.key,
                    value: r.value,
                    headers: r
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                }),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str) -> ProducerRecord {
        ProducerRecord {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
            timestamp: 1_700_000_000_000,
        }
    }

    /// Rewrites the base offset of an encoded batch, as a broker does when it appends it.
    fn at_offset(batch: &Bytes, base: i64) -> Bytes {
        let mut b = BytesMut::from(&batch[..]);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn one_batch_round_trips_for_every_codec() {
        let input: Vec<_> = (0..50)
            .map(|i| record(&format!("k{i}"), &format!("v{i}")))
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encode_batch(&input, codec).unwrap();
            let decoded = decode_batches(at_offset(&batch, 100), 3, 0).unwrap();
            assert_eq!(decoded.records.len(), 50, "{codec:?}");
            assert_eq!(decoded.next_offset, Some(150));
            let first = &decoded.records[0];
            assert_eq!(
                (first.partition, first.offset, first.timestamp),
                (3, 100, 1_700_000_000_000)
            );
            assert_eq!(first.key.as_deref(), Some(&b"k0"[..]));
            assert_eq!(
                first.headers,
                vec![("h".to_string(), Some(Bytes::from_static(b"1")))]
            );
            assert_eq!(decoded.records[49].offset, 149);
        }
    }

    #[test]
    fn producer_batch_has_no_sequence() {
        let batch = encode_batch(&[record("a", "b"), record("c", "d")], Compression::None).unwrap();
        // Base sequence sits after producer id and epoch.
        assert_eq!(read_i32(&batch, 53), Some(-1));
        assert_eq!(
            read_i32(&batch, 57),
            Some(2),
            "record count: one batch, not one per record"
        );
    }

    #[test]
    fn records_below_the_fetch_offset_are_skipped() {
        let batch = encode_batch(
            &[record("a", "1"), record("b", "2"), record("c", "3")],
            Compression::Lz4,
        )
        .unwrap();
        let decoded = decode_batches(at_offset(&batch, 10), 0, 11).unwrap();
        let offsets: Vec<_> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![11, 12]);
        assert_eq!(decoded.next_offset, Some(13));
    }

    #[test]
    fn a_truncated_last_batch_is_ignored() {
        let a = at_offset(
            &encode_batch(&[record("a", "1")], Compression::None).unwrap(),
            0,
        );
        let b = at_offset(
            &encode_batch(&[record("b", "2")], Compression::None).unwrap(),
            1,
        );
        let mut data = BytesMut::from(&a[..]);
        data.extend_from_slice(&b[..b.len() - 5]);
        let decoded = decode_batches(data.freeze(), 0, 0).unwrap();
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.next_offset, Some(1));
    }

    #[test]
    fn a_corrupt_batch_is_a_protocol_error() {
        let batch = encode_batch(&[record("a", "1")], Compression::None).unwrap();
        let mut bytes = BytesMut::from(&batch[..]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let err = decode_batches(bytes.freeze(), 0, 0).unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Protocol {
                    api: ApiKey::Fetch,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn next_offset_reads_only_complete_batches() {
        let a = at_offset(
            &encode_batch(&[record("a", "1"), record("b", "2")], Compression::None).unwrap(),
            5,
        );
        let b = at_offset(
            &encode_batch(&[record("c", "3")], Compression::None).unwrap(),
            7,
        );
        let mut data = BytesMut::from(&a[..]);
        data.extend_from_slice(&b);
        assert_eq!(next_offset(&data), Some(8));
        assert_eq!(next_offset(&data[..data.len() - 1]), Some(7));
        assert_eq!(next_offset(&[]), None);
    }

    #[test]
    fn empty_data_decodes_to_nothing() {
        assert_eq!(
            decode_batches(Bytes::new(), 0, 0).unwrap(),
            DecodedRecords::default()
        );
    }
}
