//! Two real brokers' states (real partitions over temporary directories) in one process: the
//! follower's fetcher talks to the leader's `replica_fetch` through an in-process link that
//! still encodes and decodes every Fetch at the wire version, so both sides are the real
//! broker code and only the socket is missing.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use weir_metadata::{AlterPartitionResult, LeaderRecovery, PartitionRegistration};
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse};
use weir_protocol::kafka_protocol::protocol::{Decodable, Encodable};
use weir_replication::{LeaderConfig, ReplicaLog};
use weir_storage::testkit::BatchBuilder;

use super::*;
use crate::config::Durability;
use crate::handlers::testkit;
use crate::partition::{Acks, Partition};
use crate::replica_fetch::{replica_fetch, replication_now_ms, IsrProposal};
use crate::replica_session::LeaderSessions;
use crate::state::State;

/// The Fetch version the fetcher speaks (ReplicaState is v15+).
const VERSION: i16 = 16;
const WAIT: Duration = Duration::from_secs(20);

/// The leader broker 1 behind an in-process link, serving each Fetch in the follower's
/// fetch session as the cluster's data plane does.
struct InProcess {
    leader: Arc<State>,
    stopped: AtomicBool,
    proposals: Mutex<Vec<IsrProposal>>,
    /// Replaced to forget every session (a leader restart).
    sessions: Mutex<Arc<LeaderSessions>>,
    /// Per round trip: the partitions the request listed and those the answer carried.
    rounds: Mutex<Vec<(usize, usize)>>,
}

impl LeaderLink for InProcess {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> Pin<Box<dyn Future<Output = Result<FetchResponse, LinkError>> + Send + '_>> {
        Box::pin(async move {
            if self.stopped.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Err(LinkError::Failed {
                    leader: 1,
                    source: "stopped".into(),
                });
            }
            let mut buf = BytesMut::new();
            request.encode(&mut buf, VERSION).expect("encode request");
            let mut request = FetchRequest::decode(&mut buf.freeze(), VERSION).expect("decode");
            let asked = request.topics.iter().map(|t| t.partitions.len()).sum();
            let sessions = Arc::clone(&self.sessions.lock().expect("lock"));
            let response = match sessions.begin(2, &mut request) {
                Err(code) => {
                    let mut response = FetchResponse::default();
                    response.error_code = code.code();
                    response
                }
                Ok(ticket) => {
                    let mut out = replica_fetch(&self.leader, request).await;
                    self.proposals.lock().expect("lock").extend(out.isr_changes);
                    sessions.finish(ticket, &mut out.response);
                    out.response
                }
            };
            let answered = response.responses.iter().map(|t| t.partitions.len()).sum();
            self.rounds.lock().expect("lock").push((asked, answered));
            let mut buf = BytesMut::new();
            response.encode(&mut buf, VERSION).expect("encode response");
            Ok(FetchResponse::decode(&mut buf.freeze(), VERSION).expect("decode response"))
        })
    }
}

struct Cluster {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    leader: Arc<Partition>,
    follower: Arc<Partition>,
    /// Partition 1: (leader's replica, follower's replica).
    second: (Arc<Partition>, Arc<Partition>),
    link: Arc<InProcess>,
    key: FollowedPartition,
    manager: ReplicaFetcherManager,
}

fn reg(isr: &[i32], leader_epoch: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: vec![1, 2],
        isr: isr.to_vec(),
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
        leader: 1,
        leader_epoch,
        partition_epoch: 0,
        leader_recovery: LeaderRecovery::Recovered,
    }
}

fn leader_config(min_isr: usize, lag_ms: u64) -> LeaderConfig {
    LeaderConfig {
        local: 1,
        local_broker_epoch: 10,
        min_insync_replicas: min_isr,
        replica_lag_time_max_ms: lag_ms,
    }
}

/// Topic "t" on both brokers, each partition leading alone (epoch 0) until `start` makes
/// broker 1 the replicated leader of `reg` and broker 2 its follower.
async fn cluster() -> Cluster {
    cluster_parking(200).await
}

/// [`cluster`] with the follower's Fetch parking up to `max_wait_ms` on the leader; topic "t"
/// has a second partition, which nothing follows until a test assigns it.
async fn cluster_parking(max_wait_ms: i32) -> Cluster {
    let dirs = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (a, b) = (testkit::state(dirs.0.path()), testkit::state(dirs.1.path()));
    let ta = a
        .create_topic("t", 2, 1, BTreeMap::new())
        .await
        .expect("topic");
    let tb = b
        .create_topic("t", 2, 1, BTreeMap::new())
        .await
        .expect("topic");
    let link = Arc::new(InProcess {
        leader: a,
        stopped: AtomicBool::new(false),
        proposals: Mutex::new(Vec::new()),
        sessions: Mutex::new(Arc::new(LeaderSessions::default())),
        rounds: Mutex::new(Vec::new()),
    });
    let factory_link: Arc<dyn LeaderLink> = link.clone();
    let mut config = FetcherConfig::new(2, true);
    config.max_wait_ms = max_wait_ms;
    config.backoff_ms = 50;
    Cluster {
        leader: ta.partition(0).expect("p"),
        follower: tb.partition(0).expect("p"),
        second: (ta.partition(1).expect("p"), tb.partition(1).expect("p")),
        key: FollowedPartition {
            topic_id: ta.id,
            topic: "t".to_string(),
            partition: 0,
        },
        link,
        manager: ReplicaFetcherManager::new(
            config,
            20,
            Arc::new(move |_| Arc::clone(&factory_link)),
        ),
        _dirs: dirs,
    }
}

impl Cluster {
    fn start(&self, registration: &PartitionRegistration, config: LeaderConfig) {
        let epoch = registration.leader_epoch;
        self.leader
            .become_replicated_leader(registration, config, replication_now_ms())
            .expect("lead");
        self.follower.become_follower(epoch, 1).expect("follow");
        self.manager
            .assign(self.key.clone(), self.follower.clone(), 1, epoch);
    }
}

/// `n` batches of one record each.
fn produce(p: &Arc<Partition>, n: usize, acks: Acks) -> Vec<crate::partition::Appended> {
    (0..n)
        .map(|_| {
            let mut b = BatchBuilder::new(0).records(1, 16).build();
            p.append(&mut b, acks, Durability::AcksAll, 0)
                .expect("append")
        })
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every batch of `p` from its log start, as stored (the tests write one-record batches, so
/// a read at each offset returns the batch holding it first).
fn batches(p: &Partition) -> Vec<bytes::Bytes> {
    (p.log_start_offset()..p.log_end_offset())
        .map(|offset| p.log_for_tests().read(offset, 1).expect("read").records)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_fsyncs_and_learns_the_high_watermark() {
    let c = cluster().await;
    produce(&c.leader, 3, Acks::Leader);
    c.start(&reg(&[1, 2], 1), leader_config(2, 30_000));
    produce(&c.leader, 4, Acks::Leader);
    eventually("the follower copies 7 records", || {
        c.follower.log_end_offset() == 7
    })
    .await;
    eventually("the leader's high watermark passes them", || {
        c.leader.high_watermark() == 7
    })
    .await;
    eventually("the follower learns it", || {
        c.follower.high_watermark() == 7
    })
    .await;
    assert_eq!(ReplicaLog::durable_offset(&*c.follower), 7);
    assert_eq!(batches(&c.follower), batches(&c.leader));
    // The leader's epoch reached the follower's epoch cache with the batches.
    assert_eq!(c.follower.latest_epoch(), 1);
    assert_eq!(c.manager.status(&c.key), Some((1, FollowStatus::Fetching)));
}

/// Metadata reaches the follower before the leader: the leader answers
/// NOT_LEADER_OR_FOLLOWER (or UNKNOWN_LEADER_EPOCH) until it applies the same entry, and the
/// follower retries after its backoff instead of waiting for metadata that already came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_ahead_of_its_leader_retries_until_the_leader_leads() {
    let c = cluster().await;
    // Epoch 0 on both sides: the leader answers NOT_LEADER_OR_FOLLOWER, not an epoch error.
    c.leader.become_not_replica();
    c.follower.become_follower(0, 1).expect("follow");
    c.manager.assign(c.key.clone(), c.follower.clone(), 1, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.follower.log_end_offset(), 0);
    assert_eq!(c.manager.status(&c.key), Some((1, FollowStatus::Fetching)));

    c.leader
        .become_replicated_leader(
            &reg(&[1, 2], 0),
            leader_config(2, 30_000),
            replication_now_ms(),
        )
        .expect("lead");
    let appended = produce(&c.leader, 1, Acks::All).pop().expect("appended");
    appended.wait.wait(WAIT).await.expect("acks=all answered");
    assert_eq!(c.follower.log_end_offset(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_on_the_leader_answers_once_the_follower_fsynced() {
    let c = cluster().await;
    c.start(&reg(&[1, 2], 1), leader_config(2, 30_000));
    c.link.stopped.store(true, Ordering::Release);
    let appended = produce(&c.leader, 1, Acks::All).pop().expect("appended");
    let end = appended.info.last_offset + 1;
    let wait = tokio::spawn(appended.wait.wait(WAIT));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !wait.is_finished(),
        "acks=all answered before the follower had the record"
    );
    assert_eq!(c.leader.high_watermark(), 0);

    c.link.stopped.store(false, Ordering::Release);
    wait.await.expect("join").expect("acks=all answered");
    // The high watermark passed the record only with the follower's fsynced end.
    assert!(ReplicaLog::durable_offset(&*c.follower) >= end);
    assert_eq!(c.leader.high_watermark(), end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_a_divergent_tail_truncates_and_converges() {
    let c = cluster().await;
    // Both wrote under epoch 0 alone: three records the same size, then the follower two
    // more the leader never had.
    produce(&c.leader, 3, Acks::Leader);
    produce(&c.follower, 5, Acks::Leader);
    c.start(&reg(&[1, 2], 1), leader_config(2, 30_000));
    produce(&c.leader, 4, Acks::Leader);
    eventually("the follower converges on the leader's 7 records", || {
        c.follower.log_end_offset() == 7 && c.leader.high_watermark() == 7
    })
    .await;
    assert_eq!(batches(&c.follower), batches(&c.leader));
    assert_eq!(
        ReplicaLog::end_offset_for_epoch(&*c.follower, 0),
        Some((0, 3))
    );
    assert_eq!(c.follower.latest_epoch(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_follower_leaves_the_isr_after_the_lag_time_and_the_high_watermark_moves_on() {
    let c = cluster().await;
    // Idle fetches park 200 ms, so the follower was last caught up at most that long before
    // it stopped: a lag well above it keeps the first tick below the limit.
    let lag_ms = 1000;
    c.start(&reg(&[1, 2], 1), leader_config(1, lag_ms));
    produce(&c.leader, 3, Acks::Leader);
    eventually("caught up", || c.leader.high_watermark() == 3).await;
    c.manager.remove(&c.key);
    assert_eq!(c.manager.status(&c.key), None);
    // A round in flight may still land; after it the follower stays where it is.
    tokio::time::sleep(Duration::from_millis(300)).await;
    produce(&c.leader, 2, Acks::Leader);
    assert_eq!(
        c.leader
            .replication_tick(replication_now_ms())
            .expect("tick"),
        None,
        "the follower is still within replica.lag.time.max.ms"
    );
    assert_eq!(
        c.leader.high_watermark(),
        3,
        "the ISR member 2 holds it back"
    );

    tokio::time::sleep(Duration::from_millis(lag_ms + 100)).await;
    let change = c
        .leader
        .replication_tick(replication_now_ms())
        .expect("tick")
        .expect("a shrink after replica.lag.time.max.ms");
    assert_eq!(change.isr(), vec![1]);
    // Until the controller commits it, the old ISR governs.
    assert_eq!(c.leader.high_watermark(), 3);
    let committed = AlterPartitionResult {
        leader: 1,
        leader_epoch: change.leader_epoch,
        partition_epoch: change.partition_epoch + 1,
        isr: change.isr(),
        leader_recovery: LeaderRecovery::Recovered,
    };
    c.leader
        .on_alter_partition_result(&change, Ok(committed))
        .expect("committed");
    assert_eq!(c.leader.isr(), Some(vec![1]));
    assert_eq!(
        c.leader.high_watermark(),
        5,
        "min ISR 1: the leader alone commits"
    );
    assert_eq!(c.follower.log_end_offset(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_on_the_leader_reaches_the_follower_and_one_left_behind_starts_over() {
    let c = cluster().await;
    c.start(&reg(&[1, 2], 1), leader_config(1, 30_000));
    produce(&c.leader, 5, Acks::Leader);
    eventually("caught up", || c.follower.high_watermark() == 5).await;
    c.leader.delete_records_before(3).expect("delete records");
    produce(&c.leader, 1, Acks::Leader);
    eventually("the follower's log start follows", || {
        c.follower.log_start_offset() == 3
    })
    .await;

    // The follower misses records the leader then deletes: its fetch offset is below the
    // leader's log start, OFFSET_OUT_OF_RANGE, and it starts over at the leader's start.
    c.link.stopped.store(true, Ordering::Release);
    // Let a fetch parked on the leader (200 ms at most) come back first.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.follower.log_end_offset(), 6);
    produce(&c.leader, 4, Acks::Leader);
    c.leader.delete_records_before(9).expect("delete records");
    c.link.stopped.store(false, Ordering::Release);
    eventually("the follower starts over at 9 and catches up to 10", || {
        c.follower.log_start_offset() == 9 && c.follower.log_end_offset() == 10
    })
    .await;
    assert_eq!(batches(&c.follower), batches(&c.leader));
    assert_eq!(c.manager.status(&c.key), Some((1, FollowStatus::Fetching)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_rounds_in_a_fetch_session_carry_no_partitions() {
    let c = cluster().await;
    c.start(&reg(&[1, 2], 1), leader_config(2, 30_000));
    produce(&c.leader, 3, Acks::Leader);
    eventually("the follower learns the high watermark", || {
        c.follower.high_watermark() == 3
    })
    .await;
    // Two more (parked) rounds after the follower knew everything.
    let seen = c.link.rounds.lock().expect("lock").len();
    eventually("two idle rounds", || {
        c.link.rounds.lock().expect("lock").len() >= seen + 2
    })
    .await;
    let rounds = c.link.rounds.lock().expect("lock").clone();
    assert_eq!(
        rounds.first(),
        Some(&(1, 1)),
        "the first request is full: {rounds:?}"
    );
    assert_eq!(
        rounds.last(),
        Some(&(0, 0)),
        "an idle round lists and answers nothing: {rounds:?}"
    );
    // Records still flow through the session, and the high watermark follows.
    produce(&c.leader, 2, Acks::Leader);
    eventually("the follower copies and learns 2 more", || {
        c.follower.high_watermark() == 5
    })
    .await;
    assert_eq!(batches(&c.follower), batches(&c.leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_lost_the_session_gets_a_full_request_and_replication_goes_on() {
    let c = cluster().await;
    c.start(&reg(&[1, 2], 1), leader_config(2, 30_000));
    produce(&c.leader, 2, Acks::Leader);
    eventually("the follower learns the high watermark", || {
        c.follower.high_watermark() == 2
    })
    .await;
    // The leader forgets every session (as a restarted leader would).
    *c.link.sessions.lock().expect("lock") = Arc::new(LeaderSessions::default());
    let seen = c.link.rounds.lock().expect("lock").len();
    let waits: Vec<_> = produce(&c.leader, 3, Acks::All)
        .into_iter()
        .filter_map(|a| a.wait.replicated)
        .collect();
    for w in waits {
        w.wait(WAIT).await.expect("acks=all answered");
    }
    eventually("the follower learns the high watermark", || {
        c.follower.high_watermark() == 5
    })
    .await;
    let rounds = c.link.rounds.lock().expect("lock")[seen..].to_vec();
    assert!(
        rounds.contains(&(1, 1)),
        "a full request after the refused one: {rounds:?}"
    );
    assert_eq!(batches(&c.follower), batches(&c.leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_joining_a_parked_fetch_does_not_wait_out_the_park() {
    // The Fetch parks for 30 s: only abandoning it lets partition 1 replicate within 10 s.
    let c = cluster_parking(30_000).await;
    c.start(&reg(&[1, 2], 1), leader_config(2, 30_000));
    produce(&c.leader, 1, Acks::Leader);
    // The Fetch that reports the follower's fsynced record parks: a moved high watermark
    // does not end a park, so the leader's is the one to watch.
    eventually("the leader's high watermark passes the record", || {
        c.leader.high_watermark() == 1
    })
    .await;
    let rounds = c.link.rounds.lock().expect("lock").len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.link.rounds.lock().expect("lock").len(),
        rounds,
        "the Fetch is parked"
    );

    // This broker now also follows partition 1 (as after a failover to broker 1).
    let (leader, follower) = &c.second;
    leader
        .become_replicated_leader(
            &reg(&[1, 2], 1),
            leader_config(2, 30_000),
            replication_now_ms(),
        )
        .expect("lead");
    follower.become_follower(1, 1).expect("follow");
    let key = FollowedPartition {
        partition: 1,
        ..c.key.clone()
    };
    c.manager.assign(key, follower.clone(), 1, 1);
    let waits: Vec<_> = produce(leader, 2, Acks::All)
        .into_iter()
        .filter_map(|a| a.wait.replicated)
        .collect();
    for w in waits {
        w.wait(Duration::from_secs(10))
            .await
            .expect("acks=all answered before the park would have ended");
    }
    assert_eq!(batches(follower), batches(leader));
}
