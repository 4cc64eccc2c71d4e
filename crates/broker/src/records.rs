//! Reading the records inside client batches, for the checks Kafka makes per record: today,
//! that every record produced to a compacted topic has a key.
//!
//! Storage appends batches as opaque bytes; only this check inflates records on the produce
//! path, through storage's codecs (`weir_storage::codec`), with a bound (the request size
//! limit), so a small batch that claims to expand to gigabytes is refused.
//! Only compacted topics pay for it.

use weir_storage::batch::{read_zigzag, Batches, Check, Compression};
use weir_storage::codec::{decompress_checked, DecompressError};

/// Why a batch's records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("cannot decompress a {codec} batch: {source}")]
    Decompress {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("a {codec} batch expands to more than {limit} bytes")]
    TooLarge { codec: &'static str, limit: usize },
    #[error("batch uses unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("malformed record {index} in a batch: {reason}")]
    Malformed { index: usize, reason: &'static str },
}

/// The records without a key in `data` (a partition's record set from a produce request).
/// Batches that fail their structural or CRC checks are left to the append, which reports
/// them; control batches carry no user records.
pub fn keyless_records(data: &[u8], max_inflated: usize) -> Result<Vec<i32>, RecordsError> {
    let mut missing = Vec::new();
    let mut index: usize = 0;
    for batch in Batches::new(data, Check::Full) {
        let Ok(batch) = batch else { break };
        let count = usize::try_from(batch.header.records_count).unwrap_or(0);
        if batch.header.is_control() {
            index = index.saturating_add(count);
            continue;
        }
        let body = batch
            .bytes
            .get(weir_storage::batch::HEADER_LEN..)
            .unwrap_or_default();
        let inflated;
        let records: &[u8] = match batch.header.compression() {
            Compression::None => body,
            codec => {
                inflated = inflate(codec, body, max_inflated)?;
                &inflated
            }
        };
        let mut at = records;
        for _ in 0..count {
            let has_key = read_record(&mut at, index)?;
            if !has_key {
                missing.push(i32::try_from(index).unwrap_or(i32::MAX));
            }
            index = index.saturating_add(1);
        }
    }
    Ok(missing)
}

/// Reads one record from the front of `buf`, returning whether it has a key.
fn read_record(buf: &mut &[u8], index: usize) -> Result<bool, RecordsError> {
    let bad = |reason| RecordsError::Malformed { index, reason };
    let mut pos = 0;
    let length = read_zigzag(buf, &mut pos, 5).ok_or_else(|| bad("truncated length"))?;
    let length = usize::try_from(length).map_err(|_| bad("negative length"))?;
    let end = pos
        .checked_add(length)
        .ok_or_else(|| bad("length beyond the batch"))?;
    let (Some(r), Some(rest)) = (buf.get(pos..end), buf.get(end..)) else {
        return Err(bad("length beyond the batch"));
    };
    *buf = rest;
    // attributes (1 byte), timestampDelta (varlong), offsetDelta (varint), keyLength (varint).
    let mut at = 1;
    if r.is_empty() {
        return Err(bad("truncated attributes"));
    }
    read_zigzag(r, &mut at, 10).ok_or_else(|| bad("truncated timestamp delta"))?;
    read_zigzag(r, &mut at, 5).ok_or_else(|| bad("truncated offset delta"))?;
    let key_len = read_zigzag(r, &mut at, 5).ok_or_else(|| bad("truncated key length"))?;
    Ok(key_len >= 0)
}

/// Decompresses a batch's records section through storage's codecs, refusing output beyond
/// `limit` bytes.
fn inflate(codec: Compression, body: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    decompress_checked(codec, body, limit).map_err(|e| match e {
        DecompressError::TooLarge { limit, .. } => RecordsError::TooLarge {
            codec: codec_name(codec),
            limit,
        },
        DecompressError::UnknownCodec(c) => RecordsError::UnknownCodec(c),
        DecompressError::Failed { source, .. } => RecordsError::Decompress {
            codec: codec_name(codec),
            source,
        },
    })
}

fn codec_name(codec: Compression) -> &'static str {
    match codec {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
        Compression::Unknown(_) => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn record(key: Option<&'static str>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 0,
            key: key.map(|k| bytes::Bytes::from_static(k.as_bytes())),
            value: Some(bytes::Bytes::from_static(b"value")),
            headers: [(StrBytes::from_static_str("h"), None)]
                .into_iter()
                .collect(),
        }
    }

    /// A batch of records with these keys (value "value", one header) in `codec`; also used
    /// by the produce handler's tests.
    pub(crate) fn batch(keys: &[Option<&'static str>], codec: Codec) -> Vec<u8> {
        let records: Vec<Record> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Record {
                offset: i as i64,
                ..record(*k)
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .expect("encode");
        buf.to_vec()
    }

    #[test]
    fn keyless_records_are_found_in_every_codec() {
        let keys = [Some("a"), None, Some(""), None];
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let data = batch(&keys, codec);
            assert_eq!(
                keyless_records(&data, 1 << 20).expect("read"),
                vec![1, 3],
                "{codec:?}"
            );
        }
        // Indexes run on across the batches of one partition's record set.
        let mut two = batch(&[Some("a")], Codec::Gzip);
        two.extend(batch(&[None, Some("b")], Codec::None));
        assert_eq!(keyless_records(&two, 1 << 20).expect("read"), vec![1]);
    }

    #[test]
    fn inflation_is_bounded() {
        let big: &'static str = Box::leak("x".repeat(100_000).into_boxed_str());
        let mut records = vec![record(None)];
        records[0].value = Some(bytes::Bytes::from_static(big.as_bytes()));
        for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd] {
            let mut buf = bytes::BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                &records,
                &RecordEncodeOptions {
                    version: 2,
                    compression: codec,
                },
            )
            .expect("encode");
            assert!(buf.len() < 10_000, "{codec:?} compresses well");
            match keyless_records(&buf, 50_000) {
                Err(RecordsError::TooLarge { limit: 50_000, .. }) => {}
                other => panic!("{codec:?}: expected TooLarge, got {other:?}"),
            }
            assert_eq!(keyless_records(&buf, 200_000).expect("read"), vec![0]);
        }
    }

    #[test]
    fn corrupt_batches_are_left_to_the_append() {
        let mut data = batch(&[None], Codec::None);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert_eq!(
            keyless_records(&data, 1 << 20).expect("read"),
            Vec::<i32>::new()
        );
    }
}
