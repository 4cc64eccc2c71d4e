//! Unit tests of `batch`: header parsing, validation, rewrites, iteration, varints.

use super::*;
use crate::testkit::BatchBuilder;

#[test]
fn parse_reads_every_field() {
    let bytes = BatchBuilder::new(1_000)
        .producer(77, 3, 9)
        .transactional()
        .record(1_000, Some(b"k"), Some(b"v"))
        .record(1_005, None, Some(b"w"))
        .build();
    let h = validate(&bytes).expect("valid");
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.total_size(), Ok(bytes.len()));
    assert_eq!(h.magic, 2);
    assert_eq!(h.last_offset_delta, 1);
    assert_eq!(h.records_count, 2);
    assert_eq!(h.base_timestamp, 1_000);
    assert_eq!(h.max_timestamp, 1_005);
    assert_eq!(h.producer_id(), 77);
    assert_eq!(h.producer_epoch(), 3);
    assert_eq!(h.base_sequence(), 9);
    assert!(h.is_transactional());
    assert!(!h.is_control());
    assert_eq!(h.compression(), Compression::None);
}

#[test]
fn crc_mismatch_is_a_checksum_failure() {
    let mut bytes = BatchBuilder::new(0).record(0, None, Some(b"abc")).build();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let err = validate(&bytes).expect_err("corrupt");
    assert!(matches!(err, BatchDefect::CrcMismatch { .. }), "{err:?}");
    assert!(err.is_checksum_failure());
}

#[test]
fn bad_magic_and_short_length_are_invalid() {
    let mut bytes = BatchBuilder::new(0).record(0, None, Some(b"abc")).build();
    bytes[16] = 1;
    assert_eq!(validate(&bytes), Err(BatchDefect::BadMagic(1)));
    let mut bytes = BatchBuilder::new(0).record(0, None, Some(b"abc")).build();
    bytes[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert_eq!(validate(&bytes), Err(BatchDefect::BadLength(48)));
    let bytes = BatchBuilder::new(0).record(0, None, Some(b"abc")).build();
    assert_eq!(
        validate(&bytes[..bytes.len() - 1]),
        Err(BatchDefect::Truncated {
            needed: bytes.len(),
            available: bytes.len() - 1
        })
    );
    assert_eq!(
        validate(&bytes[..10]),
        Err(BatchDefect::Truncated {
            needed: HEADER_LEN,
            available: 10
        })
    );
}

#[test]
fn base_offset_rewrite_keeps_crc_valid() {
    let mut bytes = BatchBuilder::new(0).record(0, None, Some(b"abc")).build();
    set_base_offset(&mut bytes, 123_456).expect("rewrite");
    let h = validate(&bytes).expect("still valid");
    assert_eq!(h.base_offset, 123_456);
}

#[test]
fn log_append_time_sets_bit_max_timestamp_and_crc() {
    let mut bytes = BatchBuilder::new(10).record(10, None, Some(b"abc")).build();
    set_log_append_time(&mut bytes, 99_999).expect("rewrite");
    let h = validate(&bytes).expect("valid after CRC recompute");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 99_999);
    assert_eq!(h.base_timestamp, 10);
}

#[test]
fn iterator_stops_at_torn_batch() {
    let a = BatchBuilder::new(0).record(0, None, Some(b"a")).build();
    let b = BatchBuilder::new(0).record(0, None, Some(b"bb")).build();
    let mut buf = a.clone();
    buf.extend_from_slice(&b);
    buf.extend_from_slice(&b[..20]);
    let mut it = Batches::new(&buf, Check::Full);
    assert_eq!(it.next().map(|r| r.map(|b| b.position)), Some(Ok(0)));
    assert_eq!(it.next().map(|r| r.map(|b| b.position)), Some(Ok(a.len())));
    let fault = it.next().expect("fault").expect_err("torn");
    assert_eq!(fault.position, a.len() + b.len());
    assert!(it.next().is_none());
    assert_eq!(it.valid_len(), a.len() + b.len());
    assert_eq!(whole_batches_len(&buf), a.len() + b.len());
}

#[test]
fn find_by_timestamp_is_exact_for_uncompressed() {
    let mut bytes = BatchBuilder::new(1_000)
        .record(1_000, None, Some(b"a"))
        .record(1_500, None, Some(b"b"))
        .record(1_200, None, Some(b"c"))
        .record(2_000, None, Some(b"d"))
        .build();
    set_base_offset(&mut bytes, 40).expect("rewrite");
    assert_eq!(
        find_record_by_timestamp(&bytes, 0, 0),
        Ok(Some((40, 1_000)))
    );
    assert_eq!(
        find_record_by_timestamp(&bytes, 1_001, 0),
        Ok(Some((41, 1_500)))
    );
    assert_eq!(
        find_record_by_timestamp(&bytes, 1_600, 0),
        Ok(Some((43, 2_000)))
    );
    assert_eq!(find_record_by_timestamp(&bytes, 2_001, 0), Ok(None));
    // Records below the log start do not count.
    assert_eq!(
        find_record_by_timestamp(&bytes, 0, 42),
        Ok(Some((42, 1_200)))
    );
}

#[test]
fn find_by_timestamp_uses_batch_for_compressed() {
    let mut bytes = BatchBuilder::new(1_000)
        .compression(4)
        .record(1_000, None, Some(b"a"))
        .record(1_500, None, Some(b"b"))
        .build();
    set_base_offset(&mut bytes, 7).expect("rewrite");
    assert_eq!(
        find_record_by_timestamp(&bytes, 1_200, 0),
        Ok(Some((7, 1_500)))
    );
    assert_eq!(find_record_by_timestamp(&bytes, 1_501, 0), Ok(None));
}

#[test]
fn zigzag_decodes_negative_and_multibyte() {
    let mut pos = 0;
    assert_eq!(read_zigzag(&[0x01], &mut pos, 5), Some(-1));
    let mut pos = 0;
    assert_eq!(read_zigzag(&[0xac, 0x02], &mut pos, 5), Some(150));
    assert_eq!(pos, 2);
    let mut pos = 0;
    assert_eq!(read_zigzag(&[0x80, 0x80], &mut pos, 5), None);
}
