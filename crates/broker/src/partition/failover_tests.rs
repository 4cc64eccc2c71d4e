//! A replica that starts leading knows its idempotent producers from the batches it
//! replicated (issue 11): the next sequence is accepted, a retry is answered as the duplicate
//! it is with its original offsets, a gap is retriable until the producer appended under the
//! new epoch and out of order after; the same after a truncation and after a restart. And a follower's writes hold the role: a replica that leads takes no late
//! batch of its old leader and cuts nothing.

use std::sync::Arc;

use weir_metadata::{LeaderRecovery, PartitionRegistration};
use weir_replication::{LeaderConfig, ReplicaLog};
use weir_storage::batch::{set_base_offset, set_partition_leader_epoch};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Recovery, StorageError};

use crate::config::Durability;
use crate::errors::partition_code;
use crate::partition::{Acks, Partition, PartitionError};
use weir_protocol::ResponseError;

const PID: i64 = 1001;

/// A batch of producer 1001 (epoch 0) from sequence `seq`, as a client sends it.
fn client(seq: i32, n: usize) -> Vec<u8> {
    BatchBuilder::new(0)
        .producer(PID, 0, seq)
        .records(n, 16)
        .build()
}

/// The same batch as its leader stored it at `offset` under leader epoch `epoch`.
fn stored(seq: i32, n: usize, offset: i64, epoch: i32) -> Vec<u8> {
    let mut b = client(seq, n);
    set_base_offset(&mut b, offset).expect("offset");
    set_partition_leader_epoch(&mut b, epoch).expect("epoch");
    b
}

fn reg(leader_epoch: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
        leader: 1,
        leader_epoch,
        partition_epoch: leader_epoch,
        leader_recovery: LeaderRecovery::Recovered,
    }
}

fn lead(p: &Partition, epoch: i32) {
    let config = LeaderConfig {
        local: 1,
        local_broker_epoch: 7,
        min_insync_replicas: 1,
        replica_lag_time_max_ms: 30_000,
    };
    p.become_replicated_leader(&reg(epoch), config, 0)
        .expect("lead");
}

/// Follower of broker 2 at epoch 1 holding sequences 0-2, 3-5 and 6-8 at offsets 0-8.
fn follower_with_three_batches(dir: &std::path::Path) -> Arc<Partition> {
    let log = Log::create(dir.join("t-0"), LogConfig::default()).expect("log");
    let p = Arc::new(Partition::unassigned(0, log, 0));
    p.become_follower(1, 2).expect("follow");
    for (seq, offset) in [(0, 0), (3, 3), (6, 6)] {
        ReplicaLog::append_as_follower(&*p, &mut stored(seq, 3, offset, 1), 0).expect("copy");
    }
    p
}

/// Appends a client batch as the leader: (base offset, duplicate) or the error's code.
fn produce(p: &Arc<Partition>, mut batch: Vec<u8>) -> Result<(i64, bool), ResponseError> {
    p.append(&mut batch, Acks::Leader, Durability::None, 0)
        .map(|a| (a.info.base_offset, a.info.duplicate))
        .map_err(|e| partition_code(&e))
}

fn out_of_order(p: &Arc<Partition>, batch: Vec<u8>) -> (i32, i32) {
    match p.append(&mut { batch }, Acks::Leader, Durability::None, 0) {
        Err(PartitionError::Storage(StorageError::OutOfOrderSequence {
            expected, got, ..
        })) => (expected, got),
        other => panic!("expected out of order, got {other:?}"),
    }
}

#[test]
fn a_new_leader_knows_its_producers_from_the_batches_it_replicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = follower_with_three_batches(dir.path());
    lead(&p, 2);
    // The producer retries the batch the old leader wrote but never acknowledged.
    assert_eq!(produce(&p, client(6, 3)), Ok((6, true)));
    assert_eq!(produce(&p, client(3, 3)), Ok((3, true)));
    // A gap before the producer appended anything here: retriable (its sequence 9 is in
    // its retry queue after the old leader refused it).
    assert_eq!(
        produce(&p, client(10, 1)),
        Err(ResponseError::NotLeaderOrFollower)
    );
    assert_eq!(produce(&p, client(9, 2)), Ok((9, false)));
    assert_eq!(out_of_order(&p, client(12, 1)), (11, 12));
    assert_eq!(p.log_end_offset(), 11);
}

#[test]
fn after_a_truncation_the_new_leader_expects_the_first_sequence_it_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = follower_with_three_batches(dir.path());
    // The old leader's last batch never reached the new leader's epoch: cut.
    assert_eq!(p.truncate_to(6).expect("truncate"), 6);
    lead(&p, 2);
    assert_eq!(
        produce(&p, client(9, 1)),
        Err(ResponseError::NotLeaderOrFollower)
    );
    assert_eq!(produce(&p, client(3, 3)), Ok((3, true)));
    assert_eq!(produce(&p, client(6, 3)), Ok((6, false)));
}

#[test]
fn after_a_restart_the_follower_still_knows_its_producers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = follower_with_three_batches(dir.path());
    p.flush_to(9).expect("flush");
    drop(p);
    // Not closed: a crash (no producer snapshot at the end); the state comes from the log.
    let (log, _) =
        Log::open(dir.path().join("t-0"), LogConfig::default(), Recovery::Scan).expect("reopen");
    let p = Arc::new(Partition::unassigned(0, log, 0));
    p.become_follower(1, 2).expect("follow");
    lead(&p, 2);
    assert_eq!(produce(&p, client(6, 3)), Ok((6, true)));
    assert_eq!(produce(&p, client(9, 1)), Ok((9, false)));
}

#[test]
fn a_replica_that_leads_takes_no_late_batch_of_its_old_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = follower_with_three_batches(dir.path());
    lead(&p, 2);
    let late = ReplicaLog::append_as_follower(&*p, &mut stored(9, 3, 9, 1), 0);
    assert_eq!(
        late.map_err(|e| partition_code(&e)),
        Err(ResponseError::NotLeaderOrFollower)
    );
    assert_eq!(
        p.truncate_to(3).map_err(|e| partition_code(&e)),
        Err(ResponseError::NotLeaderOrFollower)
    );
    assert_eq!(p.log_end_offset(), 9);
    assert_eq!(produce(&p, client(9, 1)), Ok((9, false)));
}
