//! Retention and DeleteRecords: which segments go, which stay, and a log start offset that
//! survives a reopen.

use super::*;

/// One batch per segment (segment.bytes = 1), with timestamps 1000, 2000, ...
fn one_batch_per_segment(root: &Path, n: i64) -> (PathBuf, Log, u64) {
    let (dir, log) = new_log(root, small_segments(1));
    for i in 1..=n {
        log.append(&mut batch(1, i * 1_000), i * 1_000)
            .expect("append");
    }
    assert_eq!(log.segment_count(), n as usize);
    (dir, log, batch(1, 0).len() as u64)
}

#[test]
fn time_retention_deletes_old_sealed_segments_only() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, log, size) = one_batch_per_segment(root.path(), 4);
    log.set_config(LogConfig {
        retention_ms: 1_500,
        ..log.config()
    });
    let out = log.enforce_retention(4_000).expect("retention");
    assert_eq!(
        (
            out.segments_deleted,
            out.bytes_deleted,
            out.log_start_offset
        ),
        (2, 2 * size, 2)
    );
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(
        files_with_suffix(&dir, ".log"),
        vec![format!("{:020}.log", 2), format!("{:020}.log", 3)]
    );
    assert!(files_with_suffix(&dir, ".deleted").is_empty());
    assert!(matches!(
        log.read(1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(bases(&log.read(2, 1 << 20).expect("read").records), vec![2]);

    // Everything expired, but the active segment stays (it is younger than segment.ms).
    let out = log.enforce_retention(1_000_000).expect("retention");
    assert_eq!(out.segments_deleted, 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(bases(&log.read(3, 1 << 20).expect("read").records), vec![3]);
    let out = log.enforce_retention(1_000_000).expect("retention");
    assert_eq!(out.segments_deleted, 0);
}

#[test]
fn retention_rolls_an_old_active_segment_then_deletes_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, log, size) = one_batch_per_segment(root.path(), 2);
    log.set_config(LogConfig {
        retention_ms: 1_000,
        segment_ms: 10_000,
        ..log.config()
    });
    let out = log.enforce_retention(20_000).expect("retention");
    assert_eq!(
        (
            out.segments_deleted,
            out.bytes_deleted,
            out.log_start_offset
        ),
        (2, 2 * size, 2)
    );
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(
        files_with_suffix(&dir, ".log"),
        vec![format!("{:020}.log", 2)]
    );
    assert_eq!(
        log.append(&mut batch(1, 1), 20_001)
            .expect("append")
            .base_offset,
        2
    );
    drop(log);
    let (log, _) = Log::open(dir, small_segments(1), Recovery::Scan).expect("open");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 3));
}

#[test]
fn size_retention_keeps_at_least_retention_bytes() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, log, size) = one_batch_per_segment(root.path(), 5);
    log.set_config(LogConfig {
        retention_ms: -1,
        retention_bytes: (2 * size + 1) as i64,
        ..log.config()
    });
    // Well within segment.ms, so the active segment is not rolled.
    let out = log.enforce_retention(6_000).expect("retention");
    assert_eq!(
        (
            out.segments_deleted,
            out.bytes_deleted,
            out.log_start_offset
        ),
        (2, 2 * size, 2)
    );
    assert_eq!(log.size_bytes(), 3 * size);
    assert_eq!(log.segment_count(), 3);
    // Deleting one more would leave 2S < 2S + 1: keep it.
    assert_eq!(
        log.enforce_retention(6_000)
            .expect("retention")
            .segments_deleted,
        0
    );
    drop(log);
    let (log, _) = Log::open(dir, small_segments(1), Recovery::Clean).expect("open");
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.segment_count(), 3);
}

#[test]
fn delete_records_persists_across_reopen() {
    let root = tempfile::tempdir().expect("tempdir");
    let size = batch(2, 1).len() as u64;
    let config = small_segments(size * 2);
    let (dir, log) = new_log(root.path(), config.clone());
    for _ in 0..6 {
        log.append(&mut batch(2, 1), 1).expect("append");
    }
    // Segments [0..4), [4..8), [8..12).
    assert_eq!(log.segment_count(), 3);
    match log.delete_records_before(13) {
        Err(StorageError::OffsetOutOfRange {
            requested: 13,
            log_start: 0,
            log_end: 12,
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert_eq!(log.delete_records_before(5).expect("delete"), 5);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(
        files_with_suffix(&dir, ".log"),
        vec![format!("{:020}.log", 4), format!("{:020}.log", 8)]
    );
    assert!(matches!(
        log.read(4, 100),
        Err(StorageError::OffsetOutOfRange { log_start: 5, .. })
    ));
    // Offset 5 is inside the batch at 4, which is returned whole (the consumer skips).
    assert_eq!(bases(&log.read(5, 1).expect("read").records), vec![4]);
    // Moving backwards is a no-op.
    assert_eq!(log.delete_records_before(3).expect("delete"), 5);
    drop(log);

    let (log, _) = Log::open(dir.clone(), config.clone(), Recovery::Scan).expect("open");
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.log_end_offset(), 12);
    // Up to the log end: the active segment stays, empty of readable offsets.
    assert_eq!(log.delete_records_before(12).expect("delete"), 12);
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(12, 100).expect("read").records.is_empty());
    assert_eq!(
        log.append(&mut batch(1, 1), 1).expect("append").base_offset,
        12
    );
    drop(log);
    let (log, _) = Log::open(dir, config, Recovery::Clean).expect("open");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (12, 13));
}
