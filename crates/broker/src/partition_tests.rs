//! `Partition` over a real log in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use weir_storage::batch::{Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Marker};

use super::*;

fn partition(root: &std::path::Path, index: i32) -> Arc<Partition> {
    let log = Log::create(root.join(format!("t-{index}")), LogConfig::default()).expect("log");
    Arc::new(Partition::leader(index, log))
}

fn batch(n: usize) -> Vec<u8> {
    BatchBuilder::new(0).records(n, 16).build()
}

fn txn_batch(producer_id: i64, n: usize) -> Vec<u8> {
    BatchBuilder::new(0)
        .records(n, 16)
        .producer(producer_id, 0, 0)
        .transactional()
        .build()
}

fn append(p: &Arc<Partition>, mut bytes: Vec<u8>) -> AppendInfo {
    p.append(&mut bytes, Acks::Leader, Durability::None, 0)
        .expect("append")
        .info
}

fn spec(offset: i64, isolation: Isolation) -> ReadSpec {
    ReadSpec {
        offset,
        max_bytes: 1 << 20,
        min_one_batch: true,
        isolation,
        leader_epoch: None,
    }
}

fn ends(records: &[u8]) -> Vec<i64> {
    Batches::new(records, Check::Full)
        .map(|b| {
            let b = b.expect("whole batches");
            b.header.base_offset + b.header.offset_count()
        })
        .collect()
}

#[test]
fn durability_follows_the_policy_and_the_acks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    for (policy, acks, waits) in [
        (Durability::AcksAll, Acks::All, true),
        (Durability::AcksAll, Acks::Leader, false),
        (Durability::Always, Acks::Leader, true),
        (Durability::Always, Acks::None, false),
        (Durability::None, Acks::All, false),
    ] {
        let appended = p.append(&mut batch(1), acks, policy, 0).expect("append");
        assert_eq!(appended.wait.fsync.is_some(), waits, "{policy:?} {acks:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_wait_fsyncs_the_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    let appended = p
        .append(&mut batch(3), Acks::All, Durability::AcksAll, 0)
        .expect("append");
    assert_eq!(p.log.durable_offset(), 0);
    appended
        .wait
        .fsync
        .expect("waits")
        .wait()
        .await
        .expect("fsync");
    assert_eq!(p.log.durable_offset(), 3);
}

#[test]
fn reads_stop_at_the_isolation_levels_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    append(&p, txn_batch(5, 2)); // 0-1, aborted below
    p.append_marker(5, 0, Marker::Abort, 0, 0)
        .expect("abort: 2");
    append(&p, batch(1)); // 3
    append(&p, txn_batch(6, 1)); // 4, open
    append(&p, batch(1)); // 5
    assert_eq!((p.high_watermark(), p.last_stable_offset()), (6, 4));

    let all = p.read(&spec(0, Isolation::ReadUncommitted)).expect("read");
    assert_eq!(ends(&all.records), vec![2, 3, 4, 5, 6]);
    assert_eq!(all.aborted, None);
    assert_eq!(
        all.watermarks,
        Watermarks {
            log_start_offset: 0,
            high_watermark: 6,
            last_stable_offset: 4,
        }
    );
    let committed = p.read(&spec(0, Isolation::ReadCommitted)).expect("read");
    assert_eq!(ends(&committed.records), vec![2, 3, 4]);
    let aborted: Vec<_> = committed
        .aborted
        .expect("read committed lists aborts")
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    assert_eq!(aborted, vec![(5, 0)]);
    // Past the aborted transaction, none is listed.
    let later = p.read(&spec(3, Isolation::ReadCommitted)).expect("read");
    assert_eq!(ends(&later.records), vec![4]);
    assert_eq!(later.aborted, Some(vec![]));
}

#[test]
fn a_hard_limit_returns_nothing_rather_than_too_much() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    let big = BatchBuilder::new(0).records(1, 4096).build();
    let len = big.len();
    append(&p, big);
    let mut s = spec(0, Isolation::ReadUncommitted);
    s.max_bytes = 100;
    assert_eq!(p.read(&s).expect("soft").records.len(), len);
    s.min_one_batch = false;
    let out = p.read(&s).expect("hard");
    assert!(out.records.is_empty());
    assert_eq!(out.watermarks.high_watermark, 1);
}

#[test]
fn leader_epochs_are_checked_when_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    let mut s = spec(0, Isolation::ReadUncommitted);
    for (epoch, ok) in [
        (None, true),
        (Some(-1), true),
        (Some(0), true),
        (Some(1), false),
    ] {
        s.leader_epoch = epoch;
        assert_eq!(p.read(&s).is_ok(), ok, "{epoch:?}");
    }
    s.leader_epoch = Some(1);
    assert!(matches!(
        p.read(&s),
        Err(PartitionError::UnknownLeaderEpoch {
            requested: 1,
            current: 0
        })
    ));
}

#[test]
fn a_deleted_partition_refuses_reads_and_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    let before = p.version();
    p.mark_deleted();
    assert_ne!(p.version(), before);
    assert!(matches!(
        p.read(&spec(0, Isolation::ReadUncommitted)),
        Err(PartitionError::Deleted)
    ));
    assert!(matches!(
        p.append(&mut batch(1), Acks::Leader, Durability::None, 0),
        Err(PartitionError::Deleted)
    ));
    assert_eq!(p.log_end_offset(), 0);
}

/// Whether `any_changed` over `watched` is still waiting after a short while.
async fn still_waiting(watched: &[(&Partition, u64)]) -> bool {
    tokio::time::timeout(Duration::from_millis(100), any_changed(watched))
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_changed_wakes_for_the_watched_partitions_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<_> = (0..3).map(|i| partition(dir.path(), i)).collect();
    let watched: Vec<(&Partition, u64)> = parts[..2].iter().map(|p| (&**p, p.version())).collect();
    // An append to an unwatched partition, a marker-free change elsewhere: no wake.
    append(&parts[2], batch(1));
    assert!(still_waiting(&watched).await);

    // An append to any watched partition while waiting wakes the waiter.
    let waiter = {
        let parts = parts.clone();
        tokio::spawn(async move {
            let watched: Vec<(&Partition, u64)> =
                parts[..2].iter().map(|p| (&**p, p.version())).collect();
            any_changed(&watched).await;
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    append(&parts[1], batch(1));
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task");

    // A change between the read (the versions taken) and the wait is not missed.
    let stale: Vec<(&Partition, u64)> = parts[..2].iter().map(|p| (&**p, p.version())).collect();
    append(&parts[0], batch(1));
    assert!(!still_waiting(&stale).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_deletion_and_shutdown_wake_waiters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path(), 0);
    append(&p, txn_batch(9, 1));
    let v = p.version();
    p.append_marker(9, 0, Marker::Commit, 0, 0).expect("commit");
    assert!(!still_waiting(&[(&p, v)]).await, "a marker moves the LSO");
    assert_eq!(p.last_stable_offset(), 2);
    assert_eq!(p.log.durable_offset(), 2, "markers are fsynced");

    let v = p.version();
    assert!(still_waiting(&[(&p, v)]).await);
    p.begin_shutdown();
    assert!(p.is_shutting_down());
    assert!(!still_waiting(&[(&p, v)]).await);

    let q = partition(dir.path(), 1);
    let v = q.version();
    q.mark_deleted();
    assert!(!still_waiting(&[(&q, v)]).await);
}

#[test]
fn a_follower_copies_the_leaders_offsets_and_serves_no_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = partition(dir.path(), 0);
    let follower = Arc::new(Partition::follower(
        0,
        Log::create(dir.path().join("copy-0"), LogConfig::default()).expect("log"),
        0,
    ));
    append(&leader, batch(2));
    append(&leader, batch(3));
    let copied = leader
        .read(&spec(0, Isolation::ReadUncommitted))
        .expect("read")
        .records;
    let v = follower.version();
    let info = follower
        .append_as_follower(&mut copied.to_vec(), 0)
        .expect("copy");
    assert_eq!((info.base_offset, info.last_offset), (0, 4));
    assert_ne!(
        follower.version(),
        v,
        "a copy wakes what waits on the follower"
    );
    // The high watermark is the leader's word, not the follower's log end.
    assert_eq!(
        (follower.log_end_offset(), follower.high_watermark()),
        (5, 0)
    );
    follower.set_follower_high_watermark(2);
    assert_eq!(follower.high_watermark(), 2);
    follower.set_follower_high_watermark(9);
    assert_eq!(follower.high_watermark(), 5, "never past its own log end");

    assert!(matches!(
        follower.append(&mut batch(1), Acks::Leader, Durability::None, 0),
        Err(PartitionError::WrongRole {
            role: Role::Follower
        })
    ));
    assert!(matches!(
        follower.read(&spec(0, Isolation::ReadUncommitted)),
        Err(PartitionError::WrongRole { .. })
    ));
    assert!(matches!(
        leader.append_as_follower(&mut copied.to_vec(), 0),
        Err(PartitionError::WrongRole { role: Role::Leader })
    ));
}

/// KIP-101 on one process: a follower that copied batches a deposed leader wrote in epoch 1
/// asks the new leader (epoch 2) where epoch 1 ends, truncates there and copies the rest.
#[test]
fn a_follower_truncates_to_the_leaders_epoch_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = partition(dir.path(), 0);
    let follower = Arc::new(Partition::follower(
        0,
        Log::create(dir.path().join("copy-0"), LogConfig::default()).expect("log"),
        1,
    ));
    leader.become_leader(1).expect("epoch 1");
    append(&leader, batch(2));
    let copy = |from: i64| {
        leader
            .read(&spec(from, Isolation::ReadUncommitted))
            .expect("read")
            .records
            .to_vec()
    };
    follower.append_as_follower(&mut copy(0), 0).expect("copy");
    // Batches of epoch 1 only the follower has (the old leader's, never replicated on).
    let mut diverged = BatchBuilder::new(0).records(3, 16).build();
    weir_storage::batch::set_base_offset(&mut diverged, 2).expect("offset");
    weir_storage::batch::set_partition_leader_epoch(&mut diverged, 1).expect("epoch");
    follower
        .append_as_follower(&mut diverged, 0)
        .expect("diverged copy");
    assert_eq!(follower.log_end_offset(), 5);

    leader.become_leader(2).expect("epoch 2");
    append(&leader, batch(4));
    assert_eq!(
        leader.end_offset_for_epoch(Some(2), 1).expect("ask"),
        Some((1, 2))
    );
    assert!(matches!(
        leader.end_offset_for_epoch(Some(1), 1),
        Err(PartitionError::FencedLeaderEpoch { .. })
    ));
    assert!(matches!(
        leader.truncate_to(0),
        Err(PartitionError::WrongRole { role: Role::Leader })
    ));
    let v = follower.version();
    assert_eq!(follower.truncate_to(2).expect("truncate"), 2);
    assert_ne!(follower.version(), v);
    follower.append_as_follower(&mut copy(2), 0).expect("copy");
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(
        follower.log_for_tests().leader_epochs(),
        leader.log_for_tests().leader_epochs()
    );
}
