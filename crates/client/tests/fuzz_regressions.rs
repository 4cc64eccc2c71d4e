//! Inputs the `client_response` fuzz target (`fuzz/`) found that crashed the client while it
//! read a broker's answer, one test each, named after the bug.

use bytes::Bytes;
use weir_client::records::{decode_batches, next_offset};

/// CRC-32C (Castagnoli), bit by bit: enough for a test batch.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A v2 batch with the given header fields, `tail` as its records and a correct CRC.
fn batch(base_offset: i64, last_offset_delta: i32, records_count: i32, tail: &[u8]) -> Vec<u8> {
    batch_at(base_offset, 0, last_offset_delta, records_count, tail)
}

fn batch_at(
    base_offset: i64,
    base_timestamp: i64,
    last_offset_delta: i32,
    records_count: i32,
    tail: &[u8],
) -> Vec<u8> {
    batch_with(
        0,
        base_offset,
        base_timestamp,
        last_offset_delta,
        records_count,
        tail,
    )
}

fn batch_with(
    attributes: i16,
    base_offset: i64,
    base_timestamp: i64,
    last_offset_delta: i32,
    records_count: i32,
    tail: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&(49 + tail.len() as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&last_offset_delta.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes()); // max timestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&records_count.to_be_bytes());
    b.extend_from_slice(tail);
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A batch announcing 2^31 - 1 records made the decoder reserve room for all of them up
/// front (about 237 GB) and the process abort. Fixed in the vendored kafka-protocol.
#[test]
fn huge_record_count_is_an_error_not_an_abort() {
    let data = batch(0, 0, i32::MAX, &[0; 40]);
    assert!(decode_batches(Bytes::from(data), 0, 0).is_err());
}

/// A batch whose base offset is near `i64::MAX` overflowed computing the next offset to
/// fetch.
#[test]
fn base_offset_near_the_top_does_not_overflow() {
    let data = batch(i64::MAX - 1, 5, 0, &[]);
    assert_eq!(next_offset(&data), Some(i64::MAX));
    let decoded = decode_batches(Bytes::from(data), 0, 0).expect("an empty batch decodes");
    assert_eq!(decoded.next_offset, Some(i64::MAX));
}

/// A record whose timestamp delta, added to the batch's base timestamp, overflows i64
/// panicked in the decoder (debug builds, and the broker's debug builds replaying its
/// internal logs). It now wraps, as Kafka's Java decoder does. Fixed in the vendored
/// kafka-protocol.
#[test]
fn record_timestamp_overflow_wraps() {
    // One record: length 6, attributes, timestamp delta +1, offset delta 0, null key and
    // value, no headers.
    let data = batch_at(0, i64::MAX, 0, 1, &[0x0c, 0, 0x02, 0, 0x01, 0x01, 0]);
    let decoded = decode_batches(Bytes::from(data), 0, 0).expect("decodes");
    assert_eq!(decoded.records.len(), 1);
    assert_eq!(decoded.records[0].timestamp, i64::MIN);
}

/// A snappy-compressed batch whose block claims 2^32 - 1 uncompressed bytes in a handful of
/// compressed ones made the decoder zero-fill a 4 GiB buffer (libFuzzer: out of memory).
/// Fixed in the vendored kafka-protocol: the claim is checked against the block's size.
#[test]
fn snappy_block_claiming_4_gib_is_an_error_not_an_allocation() {
    const SNAPPY: i16 = 2;
    // Raw snappy: varint 0xffff_ffff, then a literal tag.
    let raw = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41];
    let data = batch_with(SNAPPY, 0, 0, 0, 1, &raw);
    let err = decode_batches(Bytes::from(data), 0, 0).expect_err("a lying block");
    // Refused for its claim, before any allocation (not for failing to decompress after it).
    assert!(format!("{err:#}").contains("claims 4294967295"), "{err:#}");
    // The same inside xerial framing (Kafka's Java producer writes it).
    let mut xerial = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    xerial.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    xerial.extend_from_slice(&raw);
    let data = batch_with(SNAPPY, 0, 0, 0, 1, &xerial);
    let err = decode_batches(Bytes::from(data), 0, 0).expect_err("a lying block");
    assert!(format!("{err:#}").contains("claims 4294967295"), "{err:#}");
}
