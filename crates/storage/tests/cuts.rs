//! Damage to the side files of a log (indexes, producer snapshot, log start checkpoint,
//! aborted-transaction index), cut at every byte boundary or overwritten with garbage: a
//! reopen must never panic or lose a record, and must answer lookups correctly, rebuilding
//! what it cannot trust from the log.

use std::fs;
use std::path::{Path, PathBuf};

use weir_storage::batch::{Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::verify::{verify_log_dir, Mode};
use weir_storage::{
    AbortedTxn, Log, LogConfig, Marker, Recovery, LOG_START_CHECKPOINT, PRODUCER_SNAPSHOT_SUFFIX,
    TXN_INDEX_SUFFIX,
};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

/// Reads the whole log, one read per batch group; returns (base offset, bytes) per batch.
fn read_all(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let got = log.read(offset, 1 << 20).expect("read");
        let mut any = false;
        for b in Batches::new(&got.records, Check::Full) {
            let b = b.expect("stored batches are valid");
            offset = b.header.last_offset() + 1;
            out.push((b.header.base_offset, b.bytes.to_vec()));
            any = true;
        }
        assert!(any, "read at {offset} returned nothing");
    }
    out
}

/// A closed log of several segments whose batches carry increasing timestamps except one
/// late, out-of-order maximum in the middle of each segment.
fn fixture(root: &Path) -> (PathBuf, Vec<(i64, Vec<u8>)>) {
    let dir = root.join("t-0");
    let log = Log::create(dir.clone(), config()).expect("create");
    for i in 0..24i64 {
        let ts = if i % 6 == 2 {
            50_000 + i
        } else {
            1_000 + i * 10
        };
        log.append(&mut BatchBuilder::new(ts).records(2, 30).build(), 1)
            .expect("append");
    }
    let all = read_all(&log);
    log.close().expect("close");
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    (dir, all)
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Every record readable and every lookup right, in a log opened after damage.
fn check_log(log: &Log, all: &[(i64, Vec<u8>)], what: &str) {
    assert_eq!(read_all(log), all, "{what}: records");
    for (base, bytes) in all {
        for offset in [*base, *base + 1] {
            let got = log.read(offset, 1).expect("read");
            let first = Batches::new(&got.records, Check::Full)
                .next()
                .expect("a batch")
                .expect("valid");
            assert_eq!(first.bytes, &bytes[..], "{what}: read at {offset}");
        }
    }
    // Timestamp lookups: the first record at or after each timestamp.
    for ts in [
        0, 1_005, 1_100, 1_235, 50_002, 50_010, 50_020, 50_021, 60_000,
    ] {
        let expected = all
            .iter()
            .find(|(_, b)| {
                let h = weir_storage::BatchHeader::parse(b).expect("header");
                h.max_timestamp >= ts
            })
            .map(|(base, b)| {
                let h = weir_storage::BatchHeader::parse(b).expect("header");
                (*base, h.max_timestamp)
            });
        assert_eq!(
            log.offset_for_timestamp(ts).expect("lookup"),
            expected,
            "{what}: offset for timestamp {ts}"
        );
    }
}

fn damage_each(path: &Path, mut check: impl FnMut(&str)) {
    let original = fs::read(path).expect("read");
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    for cut in 0..original.len() {
        fs::write(path, &original[..cut]).expect("cut");
        check(&format!("{name} cut to {cut} of {} bytes", original.len()));
    }
    let garbage: Vec<u8> = (0..original.len() + 5)
        .map(|i| (i as u8).wrapping_mul(151) ^ 0x5A)
        .collect();
    for (kind, bytes) in [
        ("garbage", garbage),
        ("zeros", vec![0u8; original.len()]),
        ("ones", vec![0xFFu8; original.len()]),
    ] {
        fs::write(path, &bytes).expect("garble");
        check(&format!("{name} filled with {kind}"));
    }
    fs::write(path, &original).expect("restore");
}

#[test]
fn cut_or_garbage_indexes_keep_every_record_and_lookup() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, all) = fixture(root.path());
    let mut index_files = files(&dir, ".index");
    index_files.extend(files(&dir, ".timeindex"));
    for path in index_files {
        for recovery in [Recovery::Clean, Recovery::Scan] {
            damage_each(&path, |what| {
                let what = format!("{what} ({recovery:?})");
                let (log, report) =
                    Log::open(dir.clone(), config(), recovery).expect("open after damage");
                assert_eq!(report.truncated_bytes, 0, "{what}");
                check_log(&log, &all, &what);
                log.close().expect("close");
                drop(log);
                let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
                assert!(v.is_consistent(), "{what}: {:?}", v.problems);
            });
        }
    }
}

fn idempotent(producer: i64, seq: i32) -> Vec<u8> {
    BatchBuilder::new(1_000)
        .records(2, 10)
        .producer(producer, 0, seq)
        .build()
}

#[test]
fn cut_producer_snapshot_recovers_producer_state() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), config()).expect("create");
    for seq in 0..4 {
        for producer in [7, 8, 9] {
            log.append(&mut idempotent(producer, seq * 2), 1)
                .expect("append");
        }
    }
    let end = log.log_end_offset();
    let all = read_all(&log);
    log.close().expect("close");
    drop(log);
    // The snapshot a clean close wrote at the log end (older ones, written at rolls, are the
    // fallback when it is damaged).
    let snapshot = dir.join(format!("{end:020}{PRODUCER_SNAPSHOT_SUFFIX}"));
    let original = fs::read(&snapshot).expect("snapshot written at close");
    let check = |what: &str| {
        let (log, _) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
        assert_eq!(read_all(&log), all, "{what}");
        // Every producer's last batch is still known: its retry is a duplicate, and its next
        // sequence is accepted where it belongs.
        for (i, producer) in [7i64, 8, 9].into_iter().enumerate() {
            let retry = log
                .append(&mut idempotent(producer, 6), 1)
                .unwrap_or_else(|e| panic!("{what}: retry of producer {producer}: {e}"));
            assert!(
                retry.duplicate,
                "{what}: producer {producer}'s retry was appended"
            );
            assert_eq!(retry.base_offset, end - 6 + 2 * i as i64, "{what}");
        }
        let next = log.append(&mut idempotent(8, 8), 1).expect("next");
        assert!(!next.duplicate, "{what}");
        assert_eq!(next.base_offset, end, "{what}");
        // Back to the closed state for the next cut.
        drop(log);
        let f = fs::OpenOptions::new()
            .write(true)
            .open(files(&dir, ".log").last().expect("active"))
            .expect("open");
        let active_len = f.metadata().expect("stat").len();
        f.set_len(active_len - idempotent(8, 8).len() as u64)
            .expect("cut the extra batch");
        let (log, _) = Log::open(dir.clone(), config(), Recovery::Scan).expect("reopen");
        log.close().expect("close");
        drop(log);
    };
    for cut in 0..original.len() {
        fs::write(&snapshot, &original[..cut]).expect("cut");
        check(&format!("snapshot cut to {cut} of {}", original.len()));
    }
    fs::write(&snapshot, b"\xff\xfe garbage 1 2 3\n").expect("garble");
    check("garbage snapshot");
}

#[test]
fn cut_log_start_checkpoint_never_loses_records_above_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, all) = fixture(root.path());
    let (log, _) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
    let start = 21; // inside a segment
    assert_eq!(log.delete_records_before(start).expect("delete"), start);
    let first_base = log.read(start, 1).expect("read");
    assert!(!first_base.records.is_empty());
    log.close().expect("close");
    drop(log);
    let checkpoint = dir.join(LOG_START_CHECKPOINT);
    let first_segment_base: i64 = files(&dir, ".log")
        .first()
        .and_then(|p| p.file_stem()?.to_str()?.parse().ok())
        .expect("a segment");
    damage_each(&checkpoint, |what| {
        let (log, _) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
        let log_start = log.log_start_offset();
        // Either the checkpoint is read whole, or it is ignored and the segments bound the
        // start: never a start beyond the real one, never a made-up one in between.
        assert!(
            log_start == start || log_start == first_segment_base,
            "{what}: log start {log_start}"
        );
        let got = read_all(&log);
        let expected: Vec<_> = all
            .iter()
            .filter(|(base, b)| {
                let h = weir_storage::BatchHeader::parse(b).expect("header");
                *base >= first_segment_base && h.last_offset() >= log_start
            })
            .cloned()
            .collect();
        assert_eq!(got, expected, "{what}");
    });
}

#[test]
fn cut_aborted_index_is_rebuilt_or_kept_whole() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), LogConfig::default()).expect("create");
    let txn = |producer: i64, seq: i32| {
        BatchBuilder::new(1_000)
            .records(1, 10)
            .producer(producer, 0, seq)
            .transactional()
            .build()
    };
    let mut expected = Vec::new();
    for round in 0..4i32 {
        for producer in [11i64, 12] {
            let first = log
                .append(&mut txn(producer, round), 1)
                .expect("txn")
                .base_offset;
            let marker = if producer == 11 {
                Marker::Abort
            } else {
                Marker::Commit
            };
            let m = log
                .append_marker(producer, 0, marker, 0, 1)
                .expect("marker");
            if marker == Marker::Abort {
                expected.push(AbortedTxn {
                    producer_id: producer,
                    first_offset: first,
                    last_offset: m.base_offset,
                });
            }
        }
    }
    let end = log.log_end_offset();
    assert_eq!(log.aborted_transactions(0, end), expected);
    log.close().expect("close");
    drop(log);
    let index = dir.join(format!("{:020}{TXN_INDEX_SUFFIX}", 0));
    for recovery in [Recovery::Scan, Recovery::Clean] {
        damage_each(&index, |what| {
            // Damage is detected (length, CRC), and the replay then starts below the segment.
            let (log, report) =
                Log::open(dir.clone(), LogConfig::default(), recovery).expect("open");
            assert_eq!(report.producer_snapshot, None, "{what}");
            assert_eq!(
                log.aborted_transactions(0, end),
                expected,
                "{what} ({recovery:?})"
            );
            drop(log);
            // ... and the index was rewritten whole.
            let (log, report) =
                Log::open(dir.clone(), LogConfig::default(), recovery).expect("reopen");
            assert_eq!(report.producer_snapshot, Some(end), "{what}");
            assert_eq!(
                log.aborted_transactions(0, end),
                expected,
                "{what} ({recovery:?})"
            );
        });
    }
}
