//! Transactions in the log: markers end a producer's open transaction, the last stable offset
//! stops at the oldest open one, aborts are indexed for read_committed readers, and all of it
//! survives clean and unclean reopen.

use weir_storage::testkit::BatchBuilder;
use weir_storage::{
    AbortedTxn, Log, LogConfig, Marker, Recovery, StorageError, PRODUCER_SNAPSHOT_SUFFIX,
    TXN_INDEX_SUFFIX,
};

fn txn_batch(producer: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    BatchBuilder::new(1_000)
        .records(n, 8)
        .producer(producer, epoch, seq)
        .transactional()
        .build()
}

fn append(log: &Log, mut b: Vec<u8>) -> i64 {
    log.append(&mut b, 0).expect("append").base_offset
}

#[test]
fn markers_lso_and_aborted_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), LogConfig::default()).expect("create");
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(append(&log, txn_batch(1, 0, 0, 2)), 0); // 0-1, producer 1 opens
    assert_eq!(append(&log, BatchBuilder::new(0).records(1, 4).build()), 2); // plain
    assert_eq!(append(&log, txn_batch(2, 0, 0, 2)), 3); // 3-4, producer 2 opens
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(
        log.last_stable_offset(),
        0,
        "producer 1's transaction is open"
    );

    let commit = log
        .append_marker(1, 0, Marker::Commit, 0, 0)
        .expect("commit");
    assert_eq!(commit.base_offset, 5);
    assert_eq!(
        log.last_stable_offset(),
        3,
        "now producer 2's is the oldest open"
    );
    let abort = log.append_marker(2, 0, Marker::Abort, 0, 0).expect("abort");
    assert_eq!(abort.base_offset, 6);
    assert_eq!(log.last_stable_offset(), 7);
    let aborted = AbortedTxn {
        producer_id: 2,
        first_offset: 3,
        last_offset: 6,
    };
    assert_eq!(log.aborted_transactions(0, 7), vec![aborted]);
    assert_eq!(log.aborted_transactions(7, 100), vec![]);
    assert_eq!(log.aborted_transactions(0, 3), vec![]);
    // A zombie's marker from an older epoch is refused.
    log.append_marker(2, 1, Marker::Abort, 0, 0)
        .expect("epoch 1 abort (nothing open)");
    assert!(matches!(
        log.append_marker(2, 0, Marker::Commit, 0, 0),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
    // An open transaction at close survives a clean reopen through the snapshot.
    append(&log, txn_batch(3, 0, 0, 1)); // offset 8
    log.close().expect("close");
    drop(log);

    let (log, _) = Log::open(path.clone(), LogConfig::default(), Recovery::Clean).expect("clean");
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.aborted_transactions(0, 100), vec![aborted]);
    drop(log); // crash

    // With the snapshot and the index lost, the whole log is replayed: the scan finds the
    // abort marker again.
    std::fs::remove_file(path.join(format!("{:020}{TXN_INDEX_SUFFIX}", 0))).expect("index");
    std::fs::remove_file(path.join(format!("{:020}{PRODUCER_SNAPSHOT_SUFFIX}", 9)))
        .expect("snapshot");
    let (log, _) = Log::open(path, LogConfig::default(), Recovery::Scan).expect("scan");
    assert_eq!(log.aborted_transactions(0, 100), vec![aborted]);
    assert_eq!(
        log.last_stable_offset(),
        8,
        "producer 3's transaction is still open"
    );
    log.append_marker(3, 0, Marker::Abort, 0, 0)
        .expect("abort 3");
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(log.aborted_transactions(8, 100).len(), 1);
    // Clients may not write markers.
    let mut forged = weir_storage::batch::control_batch(9, 0, Marker::Commit, 0, 0);
    assert!(matches!(
        log.append_from_client(&mut forged, 0),
        Err(StorageError::InvalidBatch { .. })
    ));
}
