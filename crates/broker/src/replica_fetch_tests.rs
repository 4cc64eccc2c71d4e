//! The leader's side of replica fetches over a real state: the answer a follower gets.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_metadata::{LeaderRecovery, PartitionRegistration};
use weir_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use weir_protocol::kafka_protocol::messages::FetchRequest;
use weir_replication::LeaderConfig;
use weir_storage::testkit::BatchBuilder;

use super::*;
use crate::config::Durability;
use crate::handlers::testkit;
use crate::partition::Acks;

fn request(
    topic_id: Uuid,
    fetch_offset: i64,
    last_fetched_epoch: i32,
    wait_ms: i32,
) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.current_leader_epoch = 1;
    p.fetch_offset = fetch_offset;
    p.last_fetched_epoch = last_fetched_epoch;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic_id = topic_id;
    t.partitions.push(p);
    let mut req = FetchRequest::default();
    req.replica_state.replica_id = 2.into();
    req.replica_state.replica_epoch = 5;
    req.max_wait_ms = wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.topics.push(t);
    req
}

/// Broker 1 leads partition 0 of "t" for replicas 1 and 2 at epoch 1 after `before` records
/// written at epoch 0, then `after` more at epoch 1.
async fn leader(
    dir: &std::path::Path,
    before: usize,
    after: usize,
) -> (Arc<State>, Arc<Partition>, Uuid) {
    let state = testkit::state(dir);
    let topic = state
        .create_topic("t", 1, 1, BTreeMap::new())
        .await
        .expect("topic");
    let p = topic.partition(0).expect("partition");
    let produce = |n: usize| {
        for _ in 0..n {
            let mut b = BatchBuilder::new(0).records(1, 16).build();
            p.append(&mut b, Acks::Leader, Durability::AcksAll, 0)
                .expect("append");
        }
    };
    produce(before);
    let reg = PartitionRegistration {
        replicas: vec![1, 2],
        isr: vec![1, 2],
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
        leader: 1,
        leader_epoch: 1,
        partition_epoch: 0,
        leader_recovery: LeaderRecovery::Recovered,
    };
    let config = LeaderConfig {
        local: 1,
        local_broker_epoch: 3,
        min_insync_replicas: 2,
        replica_lag_time_max_ms: 30_000,
    };
    p.become_replicated_leader(&reg, config, replication_now_ms())
        .expect("lead");
    produce(after);
    (state, p, topic.id)
}

fn only(out: &ReplicaFetchOutcome) -> &PartitionData {
    &out.response.responses[0].partitions[0]
}

#[tokio::test]
async fn a_replica_fetch_reads_past_the_high_watermark_and_moves_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (state, p, id) = leader(dir.path(), 0, 4).await;
    assert_eq!(p.high_watermark(), 0);
    let out = replica_fetch(&state, request(id, 0, -1, 0)).await;
    let data = only(&out);
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 0, "nothing is on the follower yet");
    assert!(
        !data.records.as_ref().expect("records").is_empty(),
        "records above the HW"
    );
    let out = replica_fetch(&state, request(id, 4, 1, 0)).await;
    assert_eq!(only(&out).high_watermark, 4);
    assert_eq!(p.high_watermark(), 4);
}

#[tokio::test]
async fn a_follower_whose_last_epoch_ends_earlier_here_gets_diverging_epoch() {
    let dir = tempfile::tempdir().expect("dir");
    let (state, p, id) = leader(dir.path(), 3, 2).await;
    // The follower wrote offsets 3 and 4 under epoch 0; epoch 0 ends at 3 here.
    let out = replica_fetch(&state, request(id, 5, 0, 0)).await;
    let data = only(&out);
    assert_eq!(data.error_code, 0);
    assert_eq!(
        (data.diverging_epoch.epoch, data.diverging_epoch.end_offset),
        (0, 3)
    );
    assert!(data.records.as_ref().expect("records").is_empty());
    // A diverged fetch reports no fetch offset: the HW stays where leading alone left it.
    assert_eq!(p.high_watermark(), 3);
}

#[tokio::test]
async fn fetches_below_the_log_start_or_from_a_non_replica_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (state, p, id) = leader(dir.path(), 0, 4).await;
    p.delete_records_before(2).expect("delete");
    let out = replica_fetch(&state, request(id, 1, 1, 0)).await;
    assert_eq!(
        only(&out).error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(only(&out).log_start_offset, 2);
    let mut req = request(id, 2, 1, 0);
    req.replica_state.replica_id = 9.into();
    let out = replica_fetch(&state, req).await;
    assert_eq!(
        only(&out).error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
}

#[tokio::test]
async fn a_fetch_with_nothing_new_parks_until_an_append() {
    let dir = tempfile::tempdir().expect("dir");
    let (state, p, id) = leader(dir.path(), 0, 1).await;
    let fetch = tokio::spawn({
        let state = state.clone();
        async move { replica_fetch(&state, request(id, 1, 1, 10_000)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!fetch.is_finished());
    let mut b = BatchBuilder::new(0).records(1, 16).build();
    p.append(&mut b, Acks::Leader, Durability::AcksAll, 0)
        .expect("append");
    let out = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .expect("woken by the append")
        .expect("join");
    assert!(!only(&out).records.as_ref().expect("records").is_empty());
}
