use super::retention::read_checkpoint;
use super::*;
use crate::batch::Check;
use crate::config::Recovery;
use crate::testkit::BatchBuilder;
use std::sync::atomic::AtomicUsize;

fn one(value: &[u8]) -> Vec<u8> {
    BatchBuilder::new(1_000)
        .record(1_000, None, Some(value))
        .build()
}

fn assert_poisoned_by_fsync(log: &Log, err: &StorageError) {
    assert!(err.is_fsync_failure(), "{err:?}");
    assert!(
        matches!(
            err,
            StorageError::Io {
                op: IoOp::Fsync,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(log.is_poisoned());
}

#[test]
fn failed_fsync_poisons_appends_and_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create");
    log.append(&mut one(b"a"), 1).expect("append");
    log.inject_fsync_failures();
    let err = log.flush_to(1).expect_err("fsync fails");
    assert_poisoned_by_fsync(&log, &err);
    assert_eq!(log.durable_offset(), 0);
    // Never retried: later calls fail fast even though the disk "recovered".
    log.fail_syncs.store(false, Ordering::Release);
    assert!(matches!(
        log.flush_to(1),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(
        log.append(&mut one(b"b"), 2),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(
        log.delete_records_before(1),
        Err(StorageError::Poisoned { .. })
    ));
    assert_eq!(log.log_end_offset(), 1);
    // Reads still work.
    assert_eq!(
        log.read(0, 1024).expect("read").records.len(),
        one(b"a").len()
    );
}

#[test]
fn failed_write_is_undone_and_the_log_stays_writable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 200,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config.clone()).expect("create");
    log.append(&mut one(b"a"), 1).expect("append");
    log.append(&mut one(b"b"), 1).expect("append");
    let before = read_bytes(&log);
    let files_before = dir_sizes(&path);

    log.inject_write_failures(true);
    for i in 0..3u8 {
        // The third one would roll: a roll followed by a failed write is undone too.
        let err = log.append(&mut one(&[i; 70]), 2).expect_err("disk full");
        assert!(
            matches!(&err, StorageError::Io { op: IoOp::Write, source, .. } if source.raw_os_error() == Some(28)),
            "{err:?}"
        );
        assert!(!log.is_poisoned(), "a failed write must not poison");
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(read_bytes(&log), before);
    }
    let after = dir_sizes(&path);
    for (name, len) in &after {
        // The roll before the third write stays: its new segment is empty, and it wrote
        // the sealed segment's index files (of the first two appends only: checked by
        // the verification below).
        if !name.ends_with(".log") && !files_before.iter().any(|f| &f.0 == name) {
            continue;
        }
        let expected = files_before
            .iter()
            .find(|f| &f.0 == name)
            .map_or(0, |f| f.1);
        assert_eq!(
            *len, expected,
            "{name}: nothing of the failed writes is left"
        );
    }
    assert_eq!(log.segment_count(), 2);

    log.inject_write_failures(false);
    let info = log
        .append(&mut one(b"c"), 3)
        .expect("append after space is back");
    assert_eq!(info.base_offset, 2);
    log.flush_to(3).expect("flush");
    log.close().expect("close");
    drop(log);
    let (log, report) = Log::open(path.clone(), config, Recovery::Scan).expect("reopen");
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.log_end_offset, 3);
    let all = read_bytes(&log);
    assert_eq!(crate::batch::Batches::new(&all, Check::Full).count(), 3);
    let v = crate::verify::verify_log_dir(&path, crate::verify::Mode::Clean).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
}

fn read_bytes(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20).expect("read");
        let last = crate::batch::Batches::new(&r.records, Check::Full)
            .map(|b| b.expect("valid").header.last_offset())
            .last()
            .expect("a batch");
        out.extend_from_slice(&r.records);
        offset = last + 1;
    }
    out
}

fn dir_sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("stat").len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn failed_fsync_during_roll_poisons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let log = Log::create(dir.path().join("p-0"), config).expect("create");
    log.append(&mut one(&[7u8; 60]), 1).expect("append");
    log.inject_fsync_failures();
    let err = log
        .append(&mut one(&[8u8; 60]), 2)
        .expect_err("roll fsync fails");
    assert_poisoned_by_fsync(&log, &err);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create"));
    let appended = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..4 {
            let log = Arc::clone(&log);
            let appended = Arc::clone(&appended);
            s.spawn(move || {
                for i in 0..50 {
                    let info = log.append(&mut one(&[t, i]), 1).expect("append");
                    appended.fetch_add(1, Ordering::Relaxed);
                    log.flush_to(info.last_offset + 1).expect("flush");
                    assert!(log.durable_offset() > info.last_offset);
                }
            });
        }
    });
    assert_eq!(appended.load(Ordering::Relaxed), 200);
    assert_eq!(log.durable_offset(), 200);
    assert_eq!(log.log_end_offset(), 200);
}

#[test]
fn close_refuses_appends_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create");
    log.append(&mut one(b"a"), 1).expect("append");
    log.close().expect("close");
    log.close().expect("close again");
    assert_eq!(log.durable_offset(), 1);
    assert!(matches!(
        log.append(&mut one(b"b"), 2),
        Err(StorageError::Closed)
    ));
    assert_eq!(
        log.read(0, 100).expect("read").records.len(),
        one(b"a").len()
    );
}

#[test]
fn checkpoint_parsing_ignores_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(read_checkpoint(dir.path()).expect("read"), None);
    fs::write(dir.path().join(LOG_START_CHECKPOINT), "0\n42\n").expect("write");
    assert_eq!(read_checkpoint(dir.path()).expect("read"), Some(42));
    fs::write(dir.path().join(LOG_START_CHECKPOINT), "9\n42\n").expect("write");
    assert_eq!(read_checkpoint(dir.path()).expect("read"), None);
}

#[test]
fn reset_to_empties_the_log_and_restarts_it_at_the_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let config = LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    };
    let log = Log::create(path.clone(), config.clone()).expect("create");
    for i in 0..6u8 {
        log.append(&mut one(&[i; 100]), 1).expect("append");
    }
    assert!(log.segment_count() > 1);
    // Beyond the end (a snapshot past everything this replica has).
    log.reset_to(40).expect("reset");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 40));
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(40, 1024).expect("read").records.is_empty());
    let info = log.append(&mut one(b"x"), 2).expect("append after reset");
    assert_eq!(info.base_offset, 40);
    log.flush_to(41).expect("flush");
    log.close().expect("close");
    // The restart survives a crash-style reopen too.
    let (log, _) = Log::open(path.clone(), config.clone(), Recovery::Scan).expect("reopen");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 41));
    assert_eq!(read_checkpoint(&path).expect("checkpoint"), Some(40));
    // Below the end: everything goes as well.
    log.reset_to(3).expect("reset below");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    drop(log);
    let (log, _) = Log::open(path, config, Recovery::Scan).expect("reopen");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    assert!(log.reset_to(-1).is_err());
}
