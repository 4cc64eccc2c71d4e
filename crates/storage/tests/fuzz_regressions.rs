//! Inputs the cargo-fuzz targets in `fuzz/` found that broke storage, one test each, named
//! after the bug. Each rebuilds the partition directory the fuzzer wrote.

use std::fs;

use weir_storage::testkit::BatchBuilder;
use weir_storage::{BatchDefect, Log, LogConfig, Recovery, StorageError, LOG_START_CHECKPOINT};

/// `segment_recovery`: a log start checkpoint beyond the recovered log end (DeleteRecords
/// up to the end, then a crash that cut the unsynced tail) was clamped in memory only. The
/// next open read the stale checkpoint again and hid the offsets appended in between.
#[test]
fn checkpoint_beyond_the_log_end_is_clamped_durably() {
    let root = tempfile::tempdir().expect("tempdir");
    for recovery in [Recovery::Scan, Recovery::Clean] {
        let dir = root.path().join(format!("{recovery:?}-0"));
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join("00000000000000000000.log"), b"").expect("segment");
        fs::write(dir.join(LOG_START_CHECKPOINT), "0\n1\n").expect("checkpoint");

        let (log, _) = Log::open(dir.clone(), LogConfig::default(), recovery).expect("open");
        let start = log.log_start_offset();
        assert_eq!(start, log.log_end_offset(), "{recovery:?}");
        let info = log
            .append(&mut BatchBuilder::new(5).records(2, 3).build(), 10)
            .expect("append");
        assert_eq!(info.base_offset, start);
        log.close().expect("close");
        drop(log);

        let (log, _) =
            Log::open(dir.clone(), LogConfig::default(), Recovery::Clean).expect("reopen");
        assert_eq!(
            log.log_start_offset(),
            start,
            "{recovery:?}: appended records hidden"
        );
        assert_eq!(log.log_end_offset(), start + 2);
        assert!(!log.read(start, 1).expect("read").records.is_empty());
    }
}

/// `log_append`: appends check batch headers and CRCs, not records, so a producer could store
/// an uncompressed batch whose records do not decode; every later ListOffsets by timestamp
/// over it then failed as if the disk were damaged. It now answers for the batch as a whole,
/// as for a compressed batch.
#[test]
fn undecodable_records_do_not_break_the_timestamp_search() {
    let root = tempfile::tempdir().expect("tempdir");
    let log = Log::create(root.path().join("t-0"), LogConfig::default()).expect("create");
    let mut good = BatchBuilder::new(1_000).records(2, 3).build();
    log.append(&mut good, 1).expect("append");

    // A batch of two records whose first record's length runs past the batch.
    let mut bad = BatchBuilder::new(2_000)
        .record(2_000, None, Some(b"abc"))
        .record(2_500, None, Some(b"def"))
        .build();
    bad[61] = 0x7e; // zigzag 63: longer than what follows
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    let info = log
        .append(&mut bad, 2)
        .expect("the header and CRC are valid");

    assert_eq!(
        log.offset_for_timestamp(0).expect("search"),
        Some((0, 1_000))
    );
    assert_eq!(
        log.offset_for_timestamp(2_100)
            .expect("search over the undecodable batch"),
        Some((info.base_offset, 2_500))
    );
    assert_eq!(log.offset_for_timestamp(2_501).expect("search"), None);
}

/// `segment_recovery`: a log recovered from a segment whose base offset is near `i64::MAX`
/// accepted an append whose last offset was exactly `i64::MAX`, then overflowed computing the
/// new log end. The append is now refused as an offset overflow.
#[test]
fn append_that_would_end_past_i64_max_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("t-0");
    fs::create_dir_all(&dir).expect("dir");
    let base = i64::MAX - 1;
    fs::write(dir.join(format!("{base:020}.log")), b"").expect("segment");
    let (log, _) = Log::open(dir, LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(log.log_end_offset(), base);

    let err = log
        .append(&mut BatchBuilder::new(5).records(2, 3).build(), 10)
        .expect_err("offsets base and base + 1 are fine, but the log end would not be");
    assert!(
        matches!(
            err,
            StorageError::InvalidBatch {
                reason: BatchDefect::OffsetOverflow,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.log_end_offset(), base);
    let info = log
        .append(&mut BatchBuilder::new(5).records(1, 3).build(), 10)
        .expect("one record still fits");
    assert_eq!(info.last_offset, base);
    assert_eq!(log.log_end_offset(), base + 1);
}

/// `segment_recovery`: after a crash the producer state is rebuilt from the newest segments'
/// batch headers; a batch ending at offset `i64::MAX` overflowed computing the next offset to
/// read (a panic in debug builds, a wrap and an endless re-read in release builds).
#[test]
fn producer_state_rebuild_stops_at_the_top_of_the_offset_range() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("t-0");
    fs::create_dir_all(&dir).expect("dir");
    let base = i64::MAX - 1;
    let mut batch = BatchBuilder::new(5).producer(7, 0, 0).records(2, 3).build();
    batch[..8].copy_from_slice(&base.to_be_bytes()); // the base offset is outside the CRC
    fs::write(dir.join(format!("{base:020}.log")), &batch).expect("segment");

    let (log, _) = Log::open(dir, LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(log.log_end_offset(), i64::MAX);
    assert!(!log.read(base, 1 << 20).expect("read").records.is_empty());
}

/// `internal_logs`: producer snapshots moved to format `WPS2` (the coordinator epoch of each
/// producer's last marker), and a `WPS1` snapshot, which still loads, re-encodes as `WPS2`;
/// the target asserted byte-for-byte canonical re-encoding of every snapshot. The input it
/// found is a valid `WPS1` snapshot of two producers: it must load, and its `WPS2` encoding
/// must load back to the same bytes.
#[test]
fn a_wps1_producer_snapshot_loads_and_is_rewritten_as_wps2() {
    let wps1: &[u8] = &[
        87, 80, 83, 49, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0,
        0, 0, 0, 39, 16, 255, 255, 255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0,
        39, 16, 255, 255, 255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
        0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 55, 34, 137, 191,
    ];
    let wps2 = weir_storage::fuzzing::producer_snapshot_reencode(wps1).expect("WPS1 loads");
    assert_eq!(&wps2[..4], b"WPS2");
    assert_eq!(
        weir_storage::fuzzing::producer_snapshot_reencode(&wps2).as_deref(),
        Some(&wps2[..]),
        "the WPS2 encoding of a WPS1 snapshot is canonical"
    );
    let mut damaged = wps1.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(
        weir_storage::fuzzing::producer_snapshot_reencode(&damaged).is_none(),
        "a damaged WPS1 snapshot is refused (its CRC)"
    );
}
