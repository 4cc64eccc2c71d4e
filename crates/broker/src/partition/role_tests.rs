//! Role transitions and the replicated leader's acks=all wait, over real logs.

use std::sync::Arc;
use std::time::Duration;

use weir_metadata::{LeaderRecovery, PartitionRegistration};
use weir_replication::{LeaderConfig, ReplicaLog};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig};

use crate::config::Durability;
use crate::errors::partition_code;
use crate::partition::{Acks, Isolation, Partition, PartitionError, ReadSpec, Role};
use weir_protocol::ResponseError;

fn log(root: &std::path::Path, name: &str) -> Log {
    Log::create(root.join(name), LogConfig::default()).expect("log")
}

fn batch(n: usize) -> Vec<u8> {
    BatchBuilder::new(0).records(n, 16).build()
}

fn reg(isr: &[i32], leader_epoch: i32, partition_epoch: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
        leader: 1,
        leader_epoch,
        partition_epoch,
        leader_recovery: LeaderRecovery::Recovered,
    }
}

fn config(min_isr: usize) -> LeaderConfig {
    LeaderConfig {
        local: 1,
        local_broker_epoch: 7,
        min_insync_replicas: min_isr,
        replica_lag_time_max_ms: 30_000,
    }
}

/// Leader 1 of replicas 1, 2, 3 (all in the ISR) at epoch 1, min ISR 2.
fn replicated(root: &std::path::Path) -> Arc<Partition> {
    let p = Arc::new(Partition::unassigned(0, log(root, "t-0"), 0));
    p.become_replicated_leader(&reg(&[1, 2, 3], 1, 0), config(2), 0)
        .expect("lead");
    p
}

fn spec(offset: i64) -> ReadSpec {
    ReadSpec {
        offset,
        max_bytes: 1 << 20,
        min_one_batch: true,
        isolation: Isolation::ReadUncommitted,
        leader_epoch: None,
    }
}

fn code(r: Result<(), PartitionError>) -> ResponseError {
    partition_code(&r.expect_err("an error"))
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_leader_alone_has_its_log_end_as_high_watermark_and_no_replicated_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Partition::leader(0, log(dir.path(), "t-0")));
    let appended = p
        .append(&mut batch(3), Acks::All, Durability::AcksAll, 0)
        .expect("append");
    assert!(appended.wait.replicated.is_none());
    assert!(appended.wait.fsync.is_some());
    assert_eq!(p.high_watermark(), 3);
    assert!(!p.is_replicated());
    assert_eq!(p.checkpoint_high_watermark(), None);
}

#[test]
fn followers_and_non_replicas_serve_nothing_and_epochs_only_move_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Partition::leader(0, log(dir.path(), "t-0")));
    p.append(&mut batch(2), Acks::Leader, Durability::None, 0)
        .expect("append");
    p.become_follower(3, 2).expect("follow");
    assert_eq!(
        (p.role(), p.leader_id(), p.leader_epoch()),
        (Role::Follower, Some(2), 3)
    );
    assert_eq!(p.high_watermark(), 2, "what it led alone was committed");
    assert_eq!(
        partition_code(
            &p.append(&mut batch(1), Acks::All, Durability::AcksAll, 0)
                .unwrap_err()
        ),
        ResponseError::NotLeaderOrFollower
    );
    assert_eq!(
        code(p.read(&spec(0)).map(|_| ())),
        ResponseError::NotLeaderOrFollower
    );
    assert_eq!(
        code(p.delete_records_before(1).map(|_| ())),
        ResponseError::NotLeaderOrFollower
    );
    // ListOffsets' check: the epoch first (Kafka's order), then the role.
    assert_eq!(
        code(p.check_leader_epoch(Some(3))),
        ResponseError::NotLeaderOrFollower
    );
    assert_eq!(
        code(p.check_leader_epoch(Some(2))),
        ResponseError::FencedLeaderEpoch
    );
    assert_eq!(
        code(p.check_leader_epoch(Some(4))),
        ResponseError::UnknownLeaderEpoch
    );
    assert_eq!(
        code(p.become_follower(2, 3)),
        ResponseError::FencedLeaderEpoch
    );
    assert_eq!(
        code(p.become_replicated_leader(&reg(&[1, 2, 3], 2, 0), config(1), 0)),
        ResponseError::FencedLeaderEpoch
    );
    p.become_not_replica();
    assert_eq!((p.role(), p.leader_id()), (Role::NotReplica, None));
    assert_eq!(
        code(p.read(&spec(0)).map(|_| ())),
        ResponseError::NotLeaderOrFollower
    );
    assert_eq!(
        code(p.end_offset_for_epoch(None, 0).map(|_| ())),
        ResponseError::NotLeaderOrFollower
    );
    // Metadata naming it leader again, at a newer epoch.
    p.become_replicated_leader(&reg(&[1, 2, 3], 4, 0), config(1), 0)
        .expect("lead");
    assert_eq!((p.role(), p.leader_epoch()), (Role::Leader, 4));
    assert_eq!(p.log_end_offset(), 2);
}

#[test]
fn a_new_leader_starts_from_the_high_watermark_it_knew_not_its_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Partition::unassigned(0, log(dir.path(), "t-0"), 1));
    p.become_follower(1, 2).expect("follow");
    let mut first = batch(3);
    weir_storage::batch::set_partition_leader_epoch(&mut first, 1).expect("epoch");
    let first_len = first.len();
    p.append_as_follower(&mut first, 0).expect("copy");
    let mut second = batch(1);
    weir_storage::batch::set_base_offset(&mut second, 3).expect("offset");
    weir_storage::batch::set_partition_leader_epoch(&mut second, 1).expect("epoch");
    p.append_as_follower(&mut second, 0).expect("copy");
    p.set_follower_high_watermark(3);
    p.become_replicated_leader(&reg(&[1, 2, 3], 2, 1), config(2), 0)
        .expect("lead");
    assert_eq!((p.log_end_offset(), p.high_watermark()), (4, 3));
    assert_eq!(p.checkpoint_high_watermark(), Some(3));
    // Reads stop at the high watermark.
    let read = p.read(&spec(0)).expect("read");
    assert_eq!(read.watermarks.high_watermark, 3);
    assert_eq!(
        read.records.len(),
        first_len,
        "the batch at the high watermark is not read"
    );
    // The new epoch is in the epoch cache at the log end.
    assert_eq!(
        p.end_offset_for_epoch(None, 1).expect("epoch 1"),
        Some((1, 4))
    );
    assert_eq!(ReplicaLog::latest_epoch(&*p), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = replicated(dir.path());
    let appended = p
        .append(&mut batch(3), Acks::All, Durability::AcksAll, 0)
        .expect("append");
    assert!(appended.wait.fsync.is_some() && appended.wait.replicated.is_some());
    let wait = tokio::spawn(appended.wait.wait(WAIT));
    assert_eq!(p.high_watermark(), 0);
    assert_eq!(p.on_follower_fetch(2, 11, 3, 1).expect("fetch"), None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!wait.is_finished(), "3 has not fetched");
    let v = p.version();
    p.on_follower_fetch(3, 12, 2, 2).expect("fetch");
    assert_eq!(p.high_watermark(), 2);
    assert_ne!(
        p.version(),
        v,
        "a moved high watermark wakes parked fetches"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !wait.is_finished(),
        "the high watermark is below the append's end"
    );
    p.on_follower_fetch(3, 12, 3, 3).expect("fetch");
    wait.await.expect("join").expect("replicated");
    assert_eq!(p.high_watermark(), 3);
    assert_eq!(p.read(&spec(0)).expect("read").watermarks.high_watermark, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_one_does_not_wait_for_followers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = replicated(dir.path());
    let appended = p
        .append(&mut batch(1), Acks::Leader, Durability::AcksAll, 0)
        .expect("append");
    assert!(appended.wait.is_empty());
    assert_eq!(p.high_watermark(), 0, "visible only once replicated");
    p.set_follower_high_watermark(1);
    assert_eq!(p.high_watermark(), 0, "a leader computes its own");
}

#[test]
fn acks_all_below_min_isr_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Partition::unassigned(0, log(dir.path(), "t-0"), 0));
    p.become_replicated_leader(&reg(&[1], 1, 0), config(2), 0)
        .expect("lead");
    let err = p
        .append(&mut batch(1), Acks::All, Durability::AcksAll, 0)
        .unwrap_err();
    assert!(
        matches!(err, PartitionError::NotEnoughReplicas { isr: 1, min: 2 }),
        "{err}"
    );
    assert_eq!(partition_code(&err), ResponseError::NotEnoughReplicas);
    assert_eq!(p.log_end_offset(), 0);
    // acks=1 is not bound by min ISR (Kafka's rule).
    p.append(&mut batch(1), Acks::Leader, Durability::AcksAll, 0)
        .expect("acks=1");
    // Metadata with a larger ISR (same leader epoch) lifts the refusal.
    p.become_replicated_leader(&reg(&[1, 2], 1, 1), config(2), 0)
        .expect("apply");
    assert_eq!(p.isr(), Some(vec![1, 2]));
    p.append(&mut batch(1), Acks::All, Durability::AcksAll, 0)
        .expect("acks=all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_produce_fails_when_leadership_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = replicated(dir.path());
    let appended = p
        .append(&mut batch(2), Acks::All, Durability::None, 0)
        .expect("append");
    let wait = tokio::spawn(appended.wait.wait(WAIT));
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.become_follower(2, 2).expect("follow");
    let err = wait.await.expect("join").unwrap_err();
    assert_eq!(
        partition_code(&err),
        ResponseError::NotLeaderOrFollower,
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_produce_fails_when_the_isr_falls_below_min() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = replicated(dir.path());
    let appended = p
        .append(&mut batch(2), Acks::All, Durability::None, 0)
        .expect("append");
    let wait = tokio::spawn(appended.wait.wait(WAIT));
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The controller fenced 2 and 3.
    p.become_replicated_leader(&reg(&[1], 1, 1), config(2), 0)
        .expect("apply");
    let err = wait.await.expect("join").unwrap_err();
    assert_eq!(
        partition_code(&err),
        ResponseError::NotEnoughReplicasAfterAppend,
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_produce_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = replicated(dir.path());
    let appended = p
        .append(&mut batch(2), Acks::All, Durability::None, 0)
        .expect("append");
    let err = appended
        .wait
        .wait(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(
        partition_code(&err),
        ResponseError::RequestTimedOut,
        "{err}"
    );
}

#[test]
fn isr_changes_go_through_the_leader_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Partition::unassigned(0, log(dir.path(), "t-0"), 0));
    p.become_replicated_leader(&reg(&[1, 2], 1, 0), config(1), 0)
        .expect("lead");
    let change = p
        .on_follower_fetch(3, 13, 0, 1)
        .expect("fetch")
        .expect("expansion");
    assert_eq!(change.isr(), vec![1, 2, 3]);
    assert_eq!(change.new_isr[0].broker_epoch, 7);
    let outcome = p
        .on_alter_partition_result(
            &change,
            Ok(weir_metadata::AlterPartitionResult {
                leader: 1,
                leader_epoch: 1,
                partition_epoch: 1,
                isr: vec![1, 2, 3],
                leader_recovery: LeaderRecovery::Recovered,
            }),
        )
        .expect("answer");
    assert_eq!(
        outcome,
        weir_replication::AlterOutcome::Committed { hw_moved: false }
    );
    assert_eq!(p.isr(), Some(vec![1, 2, 3]));
    assert_eq!(p.replication_tick(2).expect("tick"), None);
    assert_eq!(
        partition_code(&p.on_follower_fetch(2, 12, 5, 2).unwrap_err()),
        ResponseError::OffsetOutOfRange,
        "past the leader's log end"
    );
    assert_eq!(
        partition_code(&p.on_follower_fetch(4, 14, 0, 2).unwrap_err()),
        ResponseError::NotLeaderOrFollower,
        "not a replica"
    );
    // A follower has no leader state.
    p.become_follower(2, 2).expect("follow");
    assert_eq!(
        partition_code(&p.replication_tick(3).unwrap_err()),
        ResponseError::NotLeaderOrFollower
    );
}

#[test]
fn replica_log_follows_the_leaders_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Partition::unassigned(0, log(dir.path(), "t-0"), 0));
    p.become_follower(0, 2).expect("follow");
    let mut copied = batch(1);
    let end = ReplicaLog::append_as_follower(&*p, &mut copied, 0).expect("copy");
    let mut more = batch(1);
    weir_storage::batch::set_base_offset(&mut more, 1).expect("offset");
    ReplicaLog::append_as_follower(&*p, &mut more, 0).expect("copy");
    assert_eq!(end, 1);
    assert_eq!(ReplicaLog::durable_offset(&*p), 0);
    ReplicaLog::flush_to(&*p, 2).expect("flush");
    assert_eq!(ReplicaLog::durable_offset(&*p), 2);
    assert_eq!(ReplicaLog::advance_log_start(&*p, 1).expect("start"), 1);
    assert_eq!(ReplicaLog::advance_log_start(&*p, 0).expect("older"), 1);
    assert_eq!(p.log_start_offset(), 1);
}
