//! Reading the records inside client batches, for the checks Kafka makes per record: today,
//! that every record produced to a compacted topic has a key.
//!
//! Storage appends batches as opaque bytes and never decompresses; this module is the one place
//! the broker does. A compressed batch is inflated with a bound (the request size limit), so a
//! small batch that claims to expand to gigabytes is refused instead of exhausting memory.
//! Only compacted topics pay for it.

use std::io::Read;

use weir_storage::batch::{Batches, Check, Compression};

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
    let length = varint(buf).ok_or_else(|| bad("truncated length"))?;
    let length = usize::try_from(length).map_err(|_| bad("negative length"))?;
    let (mut record, rest) = (buf.get(..length), buf.get(length..));
    let (Some(mut r), Some(rest)) = (record.take(), rest) else {
        return Err(bad("length beyond the batch"));
    };
    *buf = rest;
    // attributes (1 byte), timestampDelta (varlong), offsetDelta (varint), keyLength (varint).
    r = r.get(1..).ok_or_else(|| bad("truncated attributes"))?;
    varint(&mut r).ok_or_else(|| bad("truncated timestamp delta"))?;
    varint(&mut r).ok_or_else(|| bad("truncated offset delta"))?;
    let key_len = varint(&mut r).ok_or_else(|| bad("truncated key length"))?;
    Ok(key_len >= 0)
}

/// A zigzag varint (or varlong) of up to 10 bytes.
fn varint(buf: &mut &[u8]) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Some(v);
        }
    }
    None
}

/// Decompresses a batch's records section, refusing output beyond `limit` bytes.
fn inflate(codec: Compression, body: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let (name, reader): (&'static str, Box<dyn Read + '_>) = match codec {
        Compression::Gzip => ("gzip", Box::new(flate2::read::MultiGzDecoder::new(body))),
        Compression::Lz4 => (
            "lz4",
            Box::new(
                lz4::Decoder::new(body).map_err(|source| RecordsError::Decompress {
                    codec: "lz4",
                    source,
                })?,
            ),
        ),
        Compression::Zstd => (
            "zstd",
            Box::new(zstd::stream::read::Decoder::new(body).map_err(|source| {
                RecordsError::Decompress {
                    codec: "zstd",
                    source,
                }
            })?),
        ),
        Compression::Snappy => return snappy(body, limit),
        Compression::None => return Ok(body.to_vec()),
        Compression::Unknown(c) => return Err(RecordsError::UnknownCodec(c)),
    };
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| RecordsError::Decompress {
            codec: name,
            source,
        })?;
    if out.len() > limit {
        return Err(RecordsError::TooLarge { codec: name, limit });
    }
    Ok(out)
}

/// Snappy in Kafka's framing (plain or xerial blocks). The codec refuses blocks claiming more
/// than 32 times their size before allocating, so the output is bounded by the input.
fn snappy(body: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    use kafka_protocol::compression::{Decompressor, Snappy};
    let mut input = bytes::Bytes::copy_from_slice(body);
    let out =
        Snappy::decompress(&mut input, |b: &mut bytes::Bytes| Ok(b.to_vec())).map_err(|e| {
            RecordsError::Decompress {
                codec: "snappy",
                source: std::io::Error::other(e.to_string()),
            }
        })?;
    if out.len() > limit {
        return Err(RecordsError::TooLarge {
            codec: "snappy",
            limit,
        });
    }
    Ok(out)
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
