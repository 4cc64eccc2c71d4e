//! Integration tests of `Log` against real files in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_storage::batch::{self, Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{
    BatchDefect, BatchHeader, Log, LogConfig, Recovery, RecoveryReport, StorageError, TimestampType,
};

/// A batch of `n` records with 16-byte values, all at timestamp `ts`.
fn batch(n: usize, ts: i64) -> Vec<u8> {
    BatchBuilder::new(ts).records(n, 16).build()
}

fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    Batches::new(bytes, Check::Full)
        .map(|b| b.expect("stored batches are valid").header)
        .collect()
}

fn bases(bytes: &[u8]) -> Vec<i64> {
    headers(bytes).iter().map(|h| h.base_offset).collect()
}

fn small_segments(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

fn new_log(root: &Path, config: LogConfig) -> (PathBuf, Log) {
    let dir = root.join("topic-0");
    let log = Log::create(dir.clone(), config).expect("create");
    (dir, log)
}

/// Reads the whole log by following offsets, one call per batch group.
fn read_all(log: &Log, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let got = log.read(offset, 1 << 20).expect("read");
        let hs = headers(&got.records);
        assert!(!hs.is_empty(), "read at {offset} returned nothing");
        offset = hs.last().expect("one").last_offset() + 1;
        out.extend_from_slice(&got.records);
    }
    out
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

#[test]
fn append_and_read_round_trip_across_rolls() {
    let root = tempfile::tempdir().expect("tempdir");
    let size = batch(2, 1_000).len() as u64;
    // Three batches fit in a segment; the fourth rolls.
    let (dir, log) = new_log(root.path(), small_segments(size * 3));
    let mut expected = Vec::new();
    for i in 0..20i64 {
        let mut b = batch(2, 1_000 + i);
        let info = log.append(&mut b, 1_000 + i).expect("append");
        assert_eq!(info.base_offset, i * 2);
        assert_eq!(info.last_offset, i * 2 + 1);
        assert_eq!(info.batches, 1);
        assert_eq!(info.bytes, size as usize);
        assert_eq!(info.log_append_time, None);
        expected.extend_from_slice(&b);
    }
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(log.segment_count(), 7); // ceil(20 / 3)
    assert_eq!(log.size_bytes(), size * 20);
    assert_eq!(
        files_with_suffix(&dir, ".log"),
        [0, 6, 12, 18, 24, 30, 36]
            .iter()
            .map(|b| format!("{b:020}.log"))
            .collect::<Vec<_>>()
    );
    let all = read_all(&log, 0);
    assert_eq!(all, expected);
    assert_eq!(bases(&all), (0..20).map(|i| i * 2).collect::<Vec<_>>());
    // A read that reaches a segment's end returns only that segment's batches.
    let got = log.read(0, 1 << 20).expect("read");
    assert_eq!(bases(&got.records), vec![0, 2, 4]);
    assert_eq!(got.log_start_offset, 0);
    assert_eq!(got.log_end_offset, 40);
}

#[test]
fn multi_batch_append_assigns_consecutive_offsets() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, log) = new_log(root.path(), LogConfig::default());
    let mut input = batch(2, 10);
    input.extend_from_slice(&batch(3, 20));
    input.extend_from_slice(&batch(1, 30));
    let info = log.append(&mut input, 5).expect("append");
    assert_eq!(
        (info.base_offset, info.last_offset, info.batches),
        (0, 5, 3)
    );
    assert_eq!(info.bytes, input.len());
    assert_eq!(
        bases(&input),
        vec![0, 2, 5],
        "base offsets rewritten in place"
    );
    let info = log.append(&mut batch(4, 40), 6).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (6, 9));
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(
        bases(&log.read(0, 1 << 20).expect("read").records),
        vec![0, 2, 5, 6]
    );
}

#[test]
fn read_in_the_middle_of_a_batch_returns_that_batch() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, log) = new_log(root.path(), small_segments(1 << 20));
    for _ in 0..10 {
        log.append(&mut batch(5, 1), 1).expect("append");
    }
    for offset in 0..50 {
        let got = log.read(offset, 1).expect("read");
        assert_eq!(bases(&got.records), vec![offset / 5 * 5], "offset {offset}");
    }
}

#[test]
fn max_bytes_trims_to_whole_batches_but_returns_at_least_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, log) = new_log(root.path(), LogConfig::default());
    let size = batch(1, 1).len();
    for _ in 0..5 {
        log.append(&mut batch(1, 1), 1).expect("append");
    }
    assert_eq!(
        bases(&log.read(0, size * 2 + size / 2).expect("read").records),
        vec![0, 1]
    );
    assert_eq!(
        bases(&log.read(1, size * 2).expect("read").records),
        vec![1, 2]
    );
    // KIP-74: a limit smaller than the first batch still returns that whole batch.
    let got = log.read(3, 1).expect("read");
    assert_eq!(got.records.len(), size);
    assert_eq!(bases(&got.records), vec![3]);
    let got = log.read(0, 0).expect("read");
    assert_eq!(bases(&got.records), vec![0]);
    // At the log end: nothing, no error.
    let got = log.read(5, 1_000).expect("read");
    assert!(got.records.is_empty());
    assert_eq!(got.log_end_offset, 5);
    match log.read(6, 1_000) {
        Err(StorageError::OffsetOutOfRange {
            requested: 6,
            log_start: 0,
            log_end: 5,
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(
        log.read(-1, 1_000),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn invalid_input_is_rejected_and_nothing_is_written() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, log) = new_log(
        root.path(),
        LogConfig {
            max_message_bytes: 500,
            ..LogConfig::default()
        },
    );
    let good = batch(1, 1);

    // CRC mismatch in the second of two batches.
    let mut bad = batch(2, 1);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let mut input = good.clone();
    input.extend_from_slice(&bad);
    let err = log.append(&mut input, 1).expect_err("corrupt");
    match err {
        StorageError::CorruptBatch {
            reason: BatchDefect::CrcMismatch { .. },
            position,
        } => assert_eq!(position, good.len()),
        ref other => panic!("expected CorruptBatch, got {other:?}"),
    }
    assert!(err.is_client_fault());

    // Bad magic.
    let mut old = batch(1, 1);
    old[16] = 1;
    match log.append(&mut old, 1) {
        Err(StorageError::InvalidBatch {
            reason: BatchDefect::BadMagic(1),
            position: 0,
        }) => {}
        other => panic!("expected InvalidBatch, got {other:?}"),
    }

    // Truncated trailing batch.
    let mut input = good.clone();
    input.extend_from_slice(&good[..30]);
    assert!(matches!(
        log.append(&mut input, 1),
        Err(StorageError::InvalidBatch {
            reason: BatchDefect::Truncated { .. },
            ..
        })
    ));

    // Empty input and a batch with no records.
    assert!(matches!(
        log.append(&mut [], 1),
        Err(StorageError::InvalidBatch {
            reason: BatchDefect::Empty,
            position: 0
        })
    ));
    let mut empty_batch = BatchBuilder::new(1).build();
    assert!(matches!(
        log.append(&mut empty_batch, 1),
        Err(StorageError::InvalidBatch {
            reason: BatchDefect::BadRecordCount(0),
            ..
        })
    ));

    // Over max.message.bytes.
    let mut big = BatchBuilder::new(1).records(1, 600).build();
    let big_len = big.len();
    match log.append(&mut big, 1) {
        Err(StorageError::BatchTooLarge { size, max: 500 }) => assert_eq!(size, big_len),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }

    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(
        fs::metadata(dir.join(format!("{:020}.log", 0)))
            .expect("stat")
            .len(),
        0
    );
    // The log still works.
    assert_eq!(
        log.append(&mut batch(1, 1), 1).expect("append").base_offset,
        0
    );
}

#[test]
fn log_append_time_stamps_batches() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let (_dir, log) = new_log(root.path(), config);
    let info = log.append(&mut batch(3, 100), 77_777).expect("append");
    assert_eq!(info.log_append_time, Some(77_777));
    let got = log.read(0, 1 << 20).expect("read");
    let h = batch::validate(&got.records).expect("CRC recomputed");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 77_777);
    assert_eq!(log.max_timestamp(), Some((77_777, 0)));
    assert_eq!(
        log.offset_for_timestamp(50_000).expect("lookup"),
        Some((0, 77_777))
    );
}

#[test]
fn clean_reopen_continues_offsets() {
    let root = tempfile::tempdir().expect("tempdir");
    let size = batch(3, 1).len() as u64;
    let config = small_segments(size * 2);
    let (dir, log) = new_log(root.path(), config.clone());
    for i in 0..5 {
        log.append(&mut batch(3, 100 + i), 1).expect("append");
    }
    let before = read_all(&log, 0);
    log.close().expect("close");
    drop(log);

    let (log, report) = Log::open(dir.clone(), config.clone(), Recovery::Clean).expect("open");
    assert_eq!(
        report,
        RecoveryReport {
            segments: 3,
            truncated_bytes: 0,
            rebuilt_indexes: 0,
            log_end_offset: 15,
            producer_snapshot: Some(15),
            replayed_batches: 0,
        }
    );
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(log.durable_offset(), 15);
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(log.max_timestamp(), Some((104, 12)));
    let info = log.append(&mut batch(2, 200), 1).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (15, 16));
    // The smaller batch still fits in the active segment.
    assert_eq!(log.segment_count(), 3);
    drop(log);

    // A drop without close is a crash: Scan keeps everything (it was all written).
    let (log, report) = Log::open(dir, config, Recovery::Scan).expect("open");
    assert_eq!(report.log_end_offset, 17);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.rebuilt_indexes, 1);
    assert_eq!(
        log.append(&mut batch(1, 300), 1)
            .expect("append")
            .base_offset,
        17
    );
}

#[test]
fn offset_for_timestamp_is_exact_within_uncompressed_batches() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, log) = new_log(root.path(), small_segments(150));
    let mut first = BatchBuilder::new(100)
        .record(100, None, Some(b"a"))
        .record(150, None, Some(b"b"))
        .record(120, None, Some(b"c"))
        .record(300, None, Some(b"d"))
        .build();
    let mut second = BatchBuilder::new(400)
        .record(400, None, Some(b"e"))
        .record(500, None, Some(b"f"))
        .build();
    let mut compressed = BatchBuilder::new(600)
        .compression(1)
        .record(600, None, Some(b"g"))
        .record(700, None, Some(b"h"))
        .build();
    log.append(&mut first, 1).expect("append");
    log.append(&mut second, 1).expect("append");
    log.append(&mut compressed, 1).expect("append");
    assert_eq!(log.segment_count(), 3);
    let cases = [
        (0, Some((0, 100))),
        (100, Some((0, 100))),
        (101, Some((1, 150))),
        (151, Some((3, 300))),
        (300, Some((3, 300))),
        (301, Some((4, 400))),
        (450, Some((5, 500))),
        (650, Some((6, 700))),
        (701, None),
    ];
    for (ts, expected) in cases {
        assert_eq!(
            log.offset_for_timestamp(ts).expect("lookup"),
            expected,
            "ts {ts}"
        );
    }
    assert_eq!(log.max_timestamp(), Some((700, 6)));
    log.close().expect("close");
    drop(log);
    // Same answers from indexes loaded from disk.
    let (log, _) = Log::open(dir, small_segments(150), Recovery::Clean).expect("open");
    for (ts, expected) in cases {
        assert_eq!(
            log.offset_for_timestamp(ts).expect("lookup"),
            expected,
            "ts {ts}"
        );
    }
    assert_eq!(log.max_timestamp(), Some((700, 6)));
    // Records below the log start are not answers.
    log.delete_records_before(2).expect("delete");
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), Some((2, 120)));
    assert_eq!(
        log.offset_for_timestamp(121).expect("lookup"),
        Some((3, 300))
    );
}

#[test]
fn empty_log_has_no_timestamps() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, log) = new_log(root.path(), LogConfig::default());
    assert_eq!(log.max_timestamp(), None);
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), None);
}

#[test]
fn concurrent_flush_to_all_return_and_cover_the_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let size = batch(1, 1).len() as u64;
    // Small segments so rolls race with flushes too.
    let (_dir, log) = new_log(root.path(), small_segments(size * 100));
    let log = Arc::new(log);
    std::thread::scope(|s| {
        for _ in 0..8 {
            let log = Arc::clone(&log);
            s.spawn(move || {
                for _ in 0..200 {
                    let info = log.append(&mut batch(1, 1), 1).expect("append");
                    log.flush_to(info.last_offset + 1).expect("flush");
                    assert!(log.durable_offset() > info.last_offset);
                }
            });
        }
    });
    assert_eq!(log.log_end_offset(), 1_600);
    assert_eq!(log.durable_offset(), 1_600);
    assert_eq!(log.segment_count(), 16);
    let all = read_all(&log, 0);
    assert_eq!(bases(&all), (0..1_600).collect::<Vec<_>>());
}

#[test]
fn segment_ms_rolls_on_append() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let (_dir, log) = new_log(root.path(), config);
    log.append(&mut batch(1, 1), 10_000).expect("append");
    log.append(&mut batch(1, 1), 11_000).expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append(&mut batch(1, 1), 11_001).expect("append");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(
        log.durable_offset(),
        2,
        "a roll makes the old segment durable"
    );
}

#[path = "log/recovery.rs"]
mod recovery;
#[path = "log/retention.rs"]
mod retention;
