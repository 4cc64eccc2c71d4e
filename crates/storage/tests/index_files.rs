//! When index files are written: the active segment's indexes live in memory and reach disk
//! when the segment is sealed or the log closed, so an idle partition holds one open file.
//! Recovery after a crash rebuilds them, fsyncs nothing it did not change, and leaves the
//! active segment's bytes to be fsynced by the first flush that needs them.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use weir_storage::testkit::BatchBuilder;
use weir_storage::verify::{verify_log_dir, Mode};
use weir_storage::{Log, LogConfig, Recovery};

fn batch(value: &[u8], ts: i64) -> Vec<u8> {
    BatchBuilder::new(ts).record(ts, None, Some(value)).build()
}

fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_consistent(dir: &Path, mode: Mode) {
    let v = verify_log_dir(dir, mode).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
}

#[test]
fn an_empty_log_has_no_index_files_and_opens_without_rebuilding() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), config()).expect("create");
    assert_eq!(names(&dir), vec![format!("{:020}.log", 0)]);
    log.close().expect("close");
    drop(log);
    assert_eq!(names(&dir), vec![format!("{:020}.log", 0)]);
    assert_consistent(&dir, Mode::Clean);
    for recovery in [Recovery::Clean, Recovery::Scan] {
        let (log, report) = Log::open(dir.clone(), config(), recovery).expect("open");
        assert_eq!(report.rebuilt_indexes, 0, "{recovery:?}");
        assert_eq!(log.durable_offset(), 0);
    }
}

#[test]
fn close_writes_complete_index_files_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), config()).expect("create");
    for i in 0..5 {
        log.append(&mut batch(b"v", 1_000 + i), 1).expect("append");
    }
    // Appends write no index file: they live in memory until close. The first one records
    // epoch 0 in the leader-epoch checkpoint.
    assert_eq!(
        names(&dir),
        vec![format!("{:020}.log", 0), "leader-epoch-checkpoint".into()]
    );
    assert_consistent(&dir, Mode::AfterCrash);
    log.close().expect("close");
    drop(log);
    assert_consistent(&dir, Mode::Clean);
    let index = dir.join(format!("{:020}.index", 0));
    let inode = fs::metadata(&index).expect("stat").ino();

    let (log, report) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
    assert_eq!(
        report.rebuilt_indexes, 0,
        "a clean close leaves trusted files"
    );
    assert_eq!(log.durable_offset(), 5);
    log.close().expect("close");
    drop(log);
    assert_eq!(
        fs::metadata(&index).expect("stat").ino(),
        inode,
        "unchanged indexes are not rewritten"
    );

    let (log, _) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
    log.append(&mut batch(b"w", 2_000), 1).expect("append");
    log.close().expect("close");
    drop(log);
    assert_ne!(fs::metadata(&index).expect("stat").ino(), inode);
    assert_consistent(&dir, Mode::Clean);
    let (log, report) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
    assert_eq!(report.rebuilt_indexes, 0);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(
        log.offset_for_timestamp(2_000).expect("lookup"),
        Some((5, 2_000))
    );
}

#[test]
fn after_a_crash_the_active_segment_is_fsynced_by_the_first_flush_that_needs_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let config = LogConfig {
        segment_bytes: 3 * batch(b"v", 0).len() as u64,
        ..config()
    };
    let log = Log::create(dir.clone(), config.clone()).expect("create");
    for i in 0..5 {
        log.append(&mut batch(b"v", 1_000 + i), 1).expect("append");
    }
    assert_eq!(log.segment_count(), 2);
    // A crash: no close, so the active segment's index files were never written.
    drop(log);
    assert!(!dir.join(format!("{:020}.index", 3)).exists());
    assert_consistent(&dir, Mode::AfterCrash);

    let (log, report) = Log::open(dir.clone(), config.clone(), Recovery::Scan).expect("open");
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.log_end_offset, 5);
    // Rolled segments were fsynced; the active one's bytes may be in the page cache only.
    assert_eq!(log.durable_offset(), 3);
    log.flush_to(4).expect("flush");
    assert_eq!(log.durable_offset(), 5);
    for offset in 0..5 {
        let r = log.read(offset, 1).expect("read");
        assert!(!r.records.is_empty());
    }
    log.close().expect("close");
    drop(log);
    assert_consistent(&dir, Mode::Clean);

    // A torn tail: truncation is fsynced, so everything left is durable.
    let active = dir.join(format!("{:020}.log", 3));
    let bytes = fs::read(&active).expect("read");
    fs::write(&active, &bytes[..bytes.len() - 3]).expect("tear");
    let (log, report) = Log::open(dir.clone(), config, Recovery::Scan).expect("open");
    let one = batch(b"v", 0).len() as u64;
    assert_eq!(report.truncated_bytes, one - 3);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.durable_offset(), 4);
}
