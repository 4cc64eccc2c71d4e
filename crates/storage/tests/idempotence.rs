//! Idempotent producers: retries are answered with their original offsets, gaps and zombie
//! epochs are refused, and the state survives clean and unclean reopen.

use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Recovery, StorageError, PRODUCER_SNAPSHOT_SUFFIX};

fn batch(producer: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    BatchBuilder::new(1_000)
        .records(n, 10)
        .producer(producer, epoch, seq)
        .build()
}

fn append(log: &Log, mut b: Vec<u8>) -> Result<(i64, i64, bool), StorageError> {
    log.append(&mut b, 0)
        .map(|i| (i.base_offset, i.last_offset, i.duplicate))
}

#[test]
fn retries_duplicates_gaps_and_epochs() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create");
    assert_eq!(append(&log, batch(42, 0, 0, 3)).expect("a"), (0, 2, false));
    assert_eq!(append(&log, batch(42, 0, 3, 2)).expect("b"), (3, 4, false));
    // A retry of the first batch: same offsets, nothing written.
    assert_eq!(
        append(&log, batch(42, 0, 0, 3)).expect("retry"),
        (0, 2, true)
    );
    assert_eq!(log.log_end_offset(), 5);
    // A gap.
    let e = append(&log, batch(42, 0, 9, 1)).expect_err("gap");
    assert!(
        matches!(
            e,
            StorageError::OutOfOrderSequence {
                expected: 5,
                got: 9,
                ..
            }
        ),
        "{e}"
    );
    // A bumped epoch starts at 0; then the old epoch is a zombie.
    assert_eq!(
        append(&log, batch(42, 1, 0, 1)).expect("epoch 1"),
        (5, 5, false)
    );
    let e = append(&log, batch(42, 0, 5, 1)).expect_err("zombie");
    assert!(
        matches!(
            e,
            StorageError::InvalidProducerEpoch {
                epoch: 0,
                current: 1,
                ..
            }
        ),
        "{e}"
    );
    // Non-idempotent batches are never checked.
    let mut plain = BatchBuilder::new(1).records(2, 1).build();
    assert_eq!(log.append(&mut plain, 0).expect("plain").base_offset, 6);
    // Two idempotent batches in one request are refused.
    let mut two = batch(7, 0, 0, 1);
    two.extend(batch(7, 0, 1, 1));
    assert!(matches!(
        log.append(&mut two, 0),
        Err(StorageError::InvalidBatch { .. })
    ));
}

#[test]
fn state_survives_clean_and_unclean_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), LogConfig::default()).expect("create");
    append(&log, batch(1, 0, 0, 4)).expect("a");
    append(&log, batch(1, 0, 4, 4)).expect("b");
    log.close().expect("close");
    drop(log);
    let snapshot = path.join(format!("{:020}{PRODUCER_SNAPSHOT_SUFFIX}", 8));
    assert!(
        snapshot.exists(),
        "a clean close snapshots the state at the log end"
    );

    let (log, report) =
        Log::open(path.clone(), LogConfig::default(), Recovery::Clean).expect("clean open");
    assert_eq!(report.producer_snapshot, Some(8));
    assert_eq!(report.replayed_batches, 0, "nothing after the snapshot");
    assert_eq!(
        append(&log, batch(1, 0, 4, 4)).expect("retry after clean"),
        (4, 7, true)
    );
    append(&log, batch(1, 0, 8, 1)).expect("c");
    drop(log); // a crash: no snapshot

    let (log, report) =
        Log::open(path.clone(), LogConfig::default(), Recovery::Scan).expect("scan open");
    // The snapshot still describes offset 8: only the batch after it is replayed.
    assert_eq!(report.producer_snapshot, Some(8));
    assert_eq!(report.replayed_batches, 1);
    assert_eq!(
        append(&log, batch(1, 0, 8, 1)).expect("retry after crash"),
        (8, 8, true)
    );
    assert!(matches!(
        append(&log, batch(1, 0, 10, 1)),
        Err(StorageError::OutOfOrderSequence { expected: 9, .. })
    ));
    assert_eq!(
        append(&log, batch(1, 0, 9, 1)).expect("next"),
        (9, 9, false)
    );
}
