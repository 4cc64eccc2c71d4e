//! Leader epochs in the log and a follower's truncation.

use super::epochs::{EpochCache, EpochEntry};
use super::*;
use crate::batch::{Batches, Check, Marker};
use crate::config::Recovery;
use crate::testkit::BatchBuilder;
use crate::verify::{verify_log_dir, Mode};

fn batch(n: usize) -> Vec<u8> {
    BatchBuilder::new(1_000).records(n, 10).build()
}

fn entries(pairs: &[(i32, i64)]) -> Vec<EpochEntry> {
    pairs
        .iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        })
        .collect()
}

fn stamps(log: &Log) -> Vec<(i64, i32)> {
    let bytes = log
        .read(log.log_start_offset(), 1 << 20)
        .expect("read")
        .records;
    Batches::new(&bytes, Check::Full)
        .map(|b| {
            let b = b.expect("valid");
            (b.header.base_offset, b.header.partition_leader_epoch)
        })
        .collect()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 200,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

/// Epoch 1 at 0 (offsets 0-1), epoch 3 at 2 (offsets 2-4), epoch 5 elected at 5, unwritten.
fn three_epochs(dir: &std::path::Path) -> Log {
    let log = Log::create(dir.to_path_buf(), LogConfig::default()).expect("create");
    log.set_leader_epoch(1).expect("epoch 1");
    log.append(&mut batch(2), 1).expect("append");
    log.set_leader_epoch(3).expect("epoch 3");
    log.append(&mut batch(1), 1).expect("append");
    log.append(&mut batch(2), 1).expect("append");
    log.set_leader_epoch(5).expect("epoch 5");
    log
}

#[test]
fn leader_appends_are_stamped_and_epochs_recorded() {
    let root = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(&root.path().join("p-0"));
    assert_eq!(stamps(&log), vec![(0, 1), (2, 3), (3, 3)]);
    assert_eq!(log.leader_epochs(), entries(&[(1, 0), (3, 2), (5, 5)]));
    assert!(matches!(
        log.set_leader_epoch(4),
        Err(StorageError::StaleLeaderEpoch {
            requested: 4,
            current: 5
        })
    ));
    log.append(&mut batch(1), 1).expect("append");
    assert_eq!(stamps(&log).last(), Some(&(5, 5)));
    assert_eq!(log.leader_epochs().len(), 3, "same epoch, no new entry");
}

#[test]
fn end_offset_for_epoch_follows_kafka() {
    let root = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(&root.path().join("p-0"));
    let cases = [
        (-1, None),
        // Below every known epoch: the first start, under the requested epoch.
        (0, Some((0, 0))),
        (1, Some((1, 2))),
        (2, Some((1, 2))),
        (3, Some((3, 5))),
        (4, Some((3, 5))),
        (5, Some((5, 5))),
        (6, None),
    ];
    for (requested, want) in cases {
        assert_eq!(
            log.end_offset_for_epoch(requested),
            want,
            "epoch {requested}"
        );
    }
    log.append(&mut batch(4), 1).expect("append");
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 9)));
    assert_eq!(log.end_offset_for_epoch(4), Some((3, 5)));
    // An empty cache: only the current epoch is known, at the log end.
    let fresh = Log::create(root.path().join("p-1"), LogConfig::default()).expect("create");
    assert_eq!(fresh.end_offset_for_epoch(0), Some((0, 0)));
    assert_eq!(fresh.end_offset_for_epoch(1), None);
}

#[test]
fn cache_assign_drops_conflicting_entries() {
    let mut cache = EpochCache::default();
    assert!(cache.assign(2, 10));
    assert!(cache.assign(4, 20));
    assert!(!cache.assign(4, 25), "same epoch later: no change");
    assert!(!cache.assign(3, 30), "an older epoch is ignored");
    // A new epoch starting inside an older one's range replaces the entries after it.
    assert!(cache.assign(6, 15));
    assert_eq!(cache.entries(), entries(&[(2, 10), (6, 15)]).as_slice());
    assert!(cache.truncate_from_start(17));
    assert_eq!(cache.entries(), entries(&[(6, 17)]).as_slice());
    assert!(!cache.truncate_from_start(5));
    assert!(cache.truncate_from_end(17));
    assert!(cache.entries().is_empty());
}

#[test]
fn checkpoint_survives_a_crash_and_is_rebuilt_when_damaged() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = three_epochs(&dir);
    log.flush_all().expect("flush");
    drop(log); // no close: a crash
    let (log, _) = Log::open(dir.clone(), LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(log.leader_epochs(), entries(&[(1, 0), (3, 2), (5, 5)]));
    assert_eq!(log.leader_epoch(), 5);
    drop(log);
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let whole = fs::read(&path).expect("read");
    // A cut file, garbage, a file out of order: rebuilt from the batches' stamps (the
    // unwritten epoch 5 is not in any batch).
    for damaged in [
        whole[..whole.len() - 3].to_vec(),
        b"\x00\xffgarbage".to_vec(),
        b"0\n2\n3 2\n1 0\n".to_vec(),
        Vec::new(),
    ] {
        fs::write(&path, &damaged).expect("damage");
        let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
        assert!(!v.is_consistent(), "verify flags {damaged:?}");
        let (log, _) = Log::open(dir.clone(), LogConfig::default(), Recovery::Scan).expect("open");
        assert_eq!(log.leader_epochs(), entries(&[(1, 0), (3, 2)]));
        drop(log);
        let rewritten = parse_epoch_checkpoint(&fs::read_to_string(&path).expect("read"));
        assert_eq!(
            rewritten.map(|c| c.entries().to_vec()),
            Some(entries(&[(1, 0), (3, 2)]))
        );
    }
    fs::remove_file(&path).expect("remove");
    let (log, _) = Log::open(dir.clone(), LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(log.leader_epochs(), entries(&[(1, 0), (3, 2)]));
    log.close().expect("close");
    let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
}

#[test]
fn log_start_moves_trim_the_cache() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), small_segments()).expect("create");
    for epoch in 0..4 {
        log.set_leader_epoch(epoch).expect("epoch");
        for _ in 0..3 {
            log.append(&mut batch(2), 1).expect("append");
        }
    }
    assert_eq!(
        log.leader_epochs(),
        entries(&[(0, 0), (1, 6), (2, 12), (3, 18)])
    );
    log.delete_records_before(13).expect("delete");
    assert_eq!(log.leader_epochs(), entries(&[(2, 13), (3, 18)]));
    // Below the first known epoch now: the log start.
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 13)));
    log.close().expect("close");
    drop(log);
    let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
    let (log, _) = Log::open(dir, small_segments(), Recovery::Clean).expect("open");
    assert_eq!(log.leader_epochs(), entries(&[(2, 13), (3, 18)]));
}

#[test]
fn replicated_appends_keep_the_leaders_stamps() {
    let root = tempfile::tempdir().expect("tempdir");
    let leader = three_epochs(&root.path().join("leader"));
    let follower = Log::create(root.path().join("follower"), LogConfig::default()).expect("f");
    let mut copy = leader.read(0, 1 << 20).expect("read").records.to_vec();
    follower.append_replicated(&mut copy, 1).expect("replicate");
    assert_eq!(stamps(&follower), stamps(&leader));
    assert_eq!(follower.leader_epochs(), entries(&[(1, 0), (3, 2)]));
}

struct Snapshot {
    end: i64,
    lso: i64,
    producers: Vec<crate::ActiveProducer>,
    aborted: Vec<crate::AbortedTxn>,
    epochs: Vec<EpochEntry>,
}

fn snapshot(log: &Log) -> Snapshot {
    Snapshot {
        end: log.log_end_offset(),
        lso: log.last_stable_offset(),
        producers: log.active_producers(),
        aborted: log.aborted_transactions(0, i64::MAX),
        epochs: log.leader_epochs(),
    }
}

fn assert_same(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.end, b.end);
    assert_eq!(a.lso, b.lso);
    assert_eq!(a.producers, b.producers);
    assert_eq!(a.aborted, b.aborted);
    assert_eq!(a.epochs, b.epochs);
}

#[test]
fn truncate_to_keeps_producers_transactions_and_epochs_consistent() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), small_segments()).expect("create");
    let txn = |seq: i32| {
        BatchBuilder::new(1_000)
            .records(2, 10)
            .producer(7, 0, seq)
            .transactional()
            .build()
    };
    // Epoch 0: an aborted transaction, [0, 2]. Epoch 1: a committed one, [3, 5].
    log.append(&mut txn(0), 1_000).expect("append");
    log.append_marker(7, 0, Marker::Abort, 0, 1_000)
        .expect("abort");
    log.set_leader_epoch(1).expect("epoch 1");
    log.append(&mut txn(2), 1_000).expect("append");
    log.append_marker(7, 0, Marker::Commit, 0, 1_000)
        .expect("commit");
    let at_six = snapshot(&log);
    // Epoch 2: an open transaction and another aborted one, across several segments.
    log.set_leader_epoch(2).expect("epoch 2");
    log.append(&mut txn(4), 1_000).expect("append");
    log.append(&mut BatchBuilder::new(1_000).records(3, 10).build(), 1)
        .expect("append");
    log.append_marker(7, 0, Marker::Abort, 0, 1_000)
        .expect("abort");
    log.append(&mut txn(6), 1_000).expect("append");
    assert!(log.segment_count() > 2);
    assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 2);
    assert!(log.last_stable_offset() < log.log_end_offset());

    // Cutting inside a batch removes the whole batch: [6, 7] goes with offset 7.
    assert_eq!(log.truncate_to(7).expect("truncate"), 6);
    let after = snapshot(&log);
    assert_same(&after, &at_six);
    assert_eq!(after.lso, 6, "no transaction open any more");
    assert_eq!(log.leader_epochs(), entries(&[(0, 0), (1, 3)]));
    assert_eq!(log.truncate_to(100).expect("beyond the end"), 6);
    assert!(matches!(
        log.delete_records_before(2)
            .and_then(|_| log.truncate_to(1)),
        Err(StorageError::OffsetOutOfRange { .. })
    ));

    // Appends continue at the new end and the state is the same after a crash and a close.
    log.set_leader_epoch(3).expect("epoch 3");
    log.append(&mut txn(4), 1_000).expect("append");
    let reference = snapshot(&log);
    assert_eq!(reference.end, 8);
    let tail = log.read(6, 1 << 20).expect("read").records;
    let first = Batches::new(&tail, Check::Full)
        .next()
        .expect("a batch")
        .expect("valid");
    assert_eq!(first.header.partition_leader_epoch, 3);
    log.flush_all().expect("flush");
    drop(log);
    let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
    let (log, _) = Log::open(dir.clone(), small_segments(), Recovery::Scan).expect("open");
    assert_same(&snapshot(&log), &reference);
    log.close().expect("close");
    drop(log);
    let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
    let (log, _) = Log::open(dir, small_segments(), Recovery::Clean).expect("open");
    assert_same(&snapshot(&log), &reference);
    // The open transaction of epoch 3 still decides the last stable offset.
    assert_eq!(log.last_stable_offset(), 6);
}

#[test]
fn truncating_at_the_log_end_drops_an_epoch_that_never_got_a_record() {
    // Leader at epoch 5 from offset 5 with no record written, then a follower again: the
    // new leader (epoch 6) has epoch 3 ending at 5 and says "truncate to 5". The log keeps
    // every record, but epoch 5 must leave the cache, or the follower's LastFetchedEpoch
    // stays 5 and the leader answers "diverging" forever.
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = three_epochs(&dir);
    assert_eq!(log.leader_epochs(), entries(&[(1, 0), (3, 2), (5, 5)]));
    assert_eq!(log.truncate_to(5).expect("truncate"), 5);
    assert_eq!(log.leader_epochs(), entries(&[(1, 0), (3, 2)]));
    assert_eq!(log.log_end_offset(), 5);
    // Beyond the log end too, and it is persisted.
    log.set_leader_epoch(7).expect("epoch 7");
    assert_eq!(log.truncate_to(9).expect("truncate"), 5);
    drop(log);
    let (reopened, _) = Log::open(dir, LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(reopened.leader_epochs(), entries(&[(1, 0), (3, 2)]));
    assert_eq!(stamps(&reopened), vec![(0, 1), (2, 3), (3, 3)]);
}

#[test]
fn a_follower_behind_the_leaders_log_start_starts_over_there() {
    let root = tempfile::tempdir().expect("tempdir");
    let leader = Log::create(root.path().join("leader"), small_segments()).expect("leader");
    leader.set_leader_epoch(2).expect("epoch");
    for _ in 0..5 {
        leader.append(&mut batch(2), 1).expect("append");
    }
    leader.delete_records_before(8).expect("delete records");
    let dir = root.path().join("follower");
    let follower = Log::create(dir.clone(), small_segments()).expect("follower");
    for _ in 0..3 {
        follower.append(&mut batch(1), 1).expect("append");
    }
    assert_eq!(follower.reset_to(8).expect("reset"), 8);
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (8, 8)
    );
    assert_eq!(follower.durable_offset(), 8);
    assert!(follower.leader_epochs().is_empty());
    let mut copy = leader.read(8, 1 << 20).expect("read").records.to_vec();
    follower.append_replicated(&mut copy, 1).expect("replicate");
    assert_eq!(stamps(&follower), stamps(&leader));
    assert_eq!(follower.leader_epochs(), entries(&[(2, 8)]));
    follower.close().expect("close");
    let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
    let (follower, _) = Log::open(dir, small_segments(), Recovery::Clean).expect("open");
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (8, 10)
    );
}

/// Regression (the fault harness's 200-episode run, seed 20261206): a follower's truncation
/// removed its active segment's `.txnindex`, and the rebuild that follows took the missing
/// file for "no aborts in this segment", replaying only from the newest producer snapshot.
/// Every abort of the segment below that snapshot was forgotten: once that replica led,
/// read_committed consumers were served the records of aborted transactions.
#[test]
fn truncation_keeps_the_aborts_of_its_segment_below_the_newest_snapshot() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("p-0");
    let log = Log::create(dir.clone(), LogConfig::default()).expect("create");
    let plain = || BatchBuilder::new(1_000).records(3, 10).build();
    // An aborted transaction [0, 1], its marker at 2, all in the one (active) segment.
    log.append(
        &mut BatchBuilder::new(1_000)
            .records(2, 10)
            .producer(7, 0, 0)
            .transactional()
            .build(),
        1_000,
    )
    .expect("append");
    log.append_marker(7, 0, Marker::Abort, 0, 1_000)
        .expect("abort");
    // A clean restart (SIGTERM) writes a producer snapshot above the abort, at 6.
    log.append(&mut plain(), 1).expect("append");
    log.close().expect("close");
    drop(log);
    let (log, _) = Log::open(dir.clone(), LogConfig::default(), Recovery::Clean).expect("open");
    log.append(&mut plain(), 1).expect("append");
    assert_eq!(log.segment_count(), 1);
    let aborted = log.aborted_transactions(0, i64::MAX);
    assert_eq!(aborted.len(), 1);

    // A follower cuts the last batch: the abort below the snapshots is still known.
    assert_eq!(log.truncate_to(7).expect("truncate"), 6);
    assert_eq!(log.aborted_transactions(0, i64::MAX), aborted);
    // And after a crash and after a clean close.
    log.flush_all().expect("flush");
    drop(log);
    let (log, _) = Log::open(dir.clone(), LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(log.aborted_transactions(0, i64::MAX), aborted);
    log.close().expect("close");
    drop(log);
    let (log, _) = Log::open(dir, LogConfig::default(), Recovery::Clean).expect("open");
    assert_eq!(log.aborted_transactions(0, i64::MAX), aborted);
}

/// Issue 11: a gap in a producer's sequence at the first batch it sends to a new leader is
/// retriable (the batch before it is in the client's retry queue); once the producer appended
/// under the new epoch, or on a log without epochs, a gap is out of order as ever.
#[test]
fn a_sequence_gap_right_after_a_leader_change_is_told_apart() {
    let root = tempfile::tempdir().expect("tempdir");
    let client = |seq: i32| {
        BatchBuilder::new(1_000)
            .producer(7, 0, seq)
            .records(2, 10)
            .build()
    };
    let log = Log::create(root.path().join("p-0"), LogConfig::default()).expect("create");
    // No epochs: a gap is the producer's.
    log.append(&mut client(0), 0).expect("append");
    assert!(matches!(
        log.append(&mut client(4), 0),
        Err(StorageError::OutOfOrderSequence { expected: 2, .. })
    ));
    log.set_leader_epoch(1).expect("epoch 1");
    log.append(&mut client(2), 0).expect("append");
    assert!(matches!(
        log.append(&mut client(6), 0),
        Err(StorageError::OutOfOrderSequence { expected: 4, .. })
    ));
    // A new leader epoch: nothing of the producer's since it started.
    log.set_leader_epoch(2).expect("epoch 2");
    assert!(matches!(
        log.append(&mut client(6), 0),
        Err(StorageError::SequenceGapAfterLeaderChange {
            expected: 4,
            got: 6,
            leader_epoch: 2,
            ..
        })
    ));
    // Retries of what the log has are still duplicates, and the missing batch goes in.
    assert!(log.append(&mut client(2), 0).expect("dup").duplicate);
    assert_eq!(
        log.append(&mut client(4), 0).expect("append").base_offset,
        4
    );
    assert!(matches!(
        log.append(&mut client(8), 0),
        Err(StorageError::OutOfOrderSequence { expected: 6, .. })
    ));
    // A producer bumping its epoch must start at 0: not a leader change's gap.
    log.set_leader_epoch(3).expect("epoch 3");
    let bumped = BatchBuilder::new(1_000)
        .producer(7, 1, 5)
        .records(1, 10)
        .build();
    assert!(matches!(
        log.append(&mut { bumped }, 0),
        Err(StorageError::OutOfOrderSequence { expected: 0, .. })
    ));
}
