//! The Kafka handlers of a cluster-mode broker against a published image (no quorum: the
//! image and the hosted replicas are set as the publisher sets them).

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;
use weir_metadata::{
    BrokerRegistration, Endpoint, MetadataImage, MetadataRecord, PartitionRegistration,
};
use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::{ApiKey, ResponseError};
use weir_storage::{Log, LogConfig};

use crate::handlers::testkit::round_trip;
use crate::partition::Partition;
use crate::state::State;

const LOCAL: i32 = 1;

fn cluster_state(dir: &std::path::Path) -> Arc<State> {
    let pairs = [
        ("node.id".to_string(), LOCAL.to_string()),
        (
            "controller.quorum.voters".to_string(),
            "1@127.0.0.1:1,2@127.0.0.1:2".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let (config, _) = crate::BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        pairs,
    )
    .expect("config");
    Arc::new(State::open(config).expect("open"))
}

fn broker(id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        id,
        incarnation: Uuid::from_u128(id as u128),
        epoch: i64::from(id),
        endpoints: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: format!("b{id}"),
            port: 9000 + id as u16,
        }],
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
    })
}

/// Topic "t": partition 0 on this broker, partition 1 led by broker 2 at epoch 4.
fn image(id: Uuid) -> MetadataImage {
    let mut other = PartitionRegistration::new(vec![2]);
    other.leader_epoch = 4;
    let mut image = MetadataImage::new();
    image
        .apply_all(&[
            broker(1),
            broker(2),
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                registration: PartitionRegistration::new(vec![LOCAL]),
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 1,
                registration: other,
            },
        ])
        .expect("records");
    image
}

fn publish(state: &Arc<State>, image: MetadataImage, p0: &Arc<Partition>) {
    let image = Arc::new(image);
    let hosted = |_: Uuid, index: i32| (index == 0).then(|| p0.clone());
    state.sync_cluster_topics(&image, &hosted);
    state.image.set(1, image);
    state.image.mark_caught_up();
}

fn produce(partition: i32) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(Bytes::from_static(b"not a batch"));
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 1000;
    req.topic_data = vec![t];
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_hosted_elsewhere_answer_not_leader_with_kip_951_hints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = cluster_state(dir.path());
    let id = Uuid::from_u128(42);
    let log = Log::create(dir.path().join("t-0"), LogConfig::default()).expect("log");
    let p0 = Arc::new(Partition::leader(0, log));
    publish(&state, image(id), &p0);

    let topic = state.topic("t").expect("t in the table");
    assert_eq!(topic.partition_count(), 2);
    assert!(topic.lookup(0).is_ok());
    assert_eq!(
        topic.lookup(1).err(),
        Some(ResponseError::NotLeaderOrFollower)
    );
    assert_eq!(
        topic.lookup(2).err(),
        Some(ResponseError::UnknownTopicOrPartition)
    );

    // Produce v10+: CurrentLeader and the leader's endpoint.
    let r: ProduceResponse = round_trip(&state, ApiKey::Produce, 11, &produce(1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (2, 4)
    );
    let nodes: Vec<_> = r
        .node_endpoints
        .iter()
        .map(|n| (n.node_id.0, n.host.to_string(), n.port))
        .collect();
    assert_eq!(nodes, vec![(2, "b2".to_string(), 9002)]);
    // Before v10 the same error, without hints.
    let r: ProduceResponse = round_trip(&state, ApiKey::Produce, 9, &produce(1)).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );

    // Fetch v16: the same hints.
    let mut fp = fetch_request::FetchPartition::default();
    fp.partition = 1;
    fp.partition_max_bytes = 1024;
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic_id = id;
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.max_bytes = 1 << 20;
    req.topics = vec![ft];
    let r: FetchResponse = round_trip(&state, ApiKey::Fetch, 16, &req).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (2, 4)
    );
    assert_eq!(r.node_endpoints.len(), 1);
    assert_eq!(r.node_endpoints[0].node_id.0, 2);

    // Metadata from the image: both brokers, both leaders.
    let mut req = MetadataRequest::default();
    req.topics = None;
    let r: MetadataResponse = round_trip(&state, ApiKey::Metadata, 12, &req).await;
    let brokers: Vec<i32> = r.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(brokers, vec![1, 2]);
    let leaders: Vec<i32> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id.0)
        .collect();
    assert_eq!(leaders, vec![1, 2]);
    assert_eq!(r.topics[0].topic_id, id);

    // A topic the image lost leaves the table.
    publish(&state, MetadataImage::new(), &p0);
    assert!(state.topic("t").is_none());
}

#[tokio::test]
async fn the_image_cell_never_goes_back_and_wakes_waiters_at_their_index() {
    let cell = Arc::new(crate::cluster::ImageCell::default());
    let id = Uuid::from_u128(9);
    let newer = Arc::new(image(id));
    cell.set(5, newer.clone());
    // An entry seen again after a baseline that includes it changes nothing.
    cell.set(3, Arc::new(MetadataImage::new()));
    assert_eq!(cell.index(), 5);
    assert!(cell.image().topic(id).is_some());
    // Published already: no wait.
    cell.published(4).await;
    let waiter = tokio::spawn({
        let cell = cell.clone();
        async move { cell.published(7).await }
    });
    cell.set(6, newer.clone());
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "woke before its index");
    cell.set(7, newer);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("woken at its index")
        .expect("task");
}

/// `__consumer_offsets` and `__transaction_state`, two partitions each: 0 led here, 1 by
/// broker 2.
fn coordinator_image() -> MetadataImage {
    let mut records = vec![broker(1), broker(2)];
    for (n, name) in [
        crate::group_router::OFFSETS_TOPIC,
        crate::txn_router::TXN_STATE_TOPIC,
    ]
    .into_iter()
    .enumerate()
    {
        let topic_id = Uuid::from_u128(100 + n as u128);
        records.push(MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        });
        for (partition, leader) in [(0, LOCAL), (1, 2)] {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition,
                registration: PartitionRegistration::new(vec![leader]),
            });
        }
    }
    let mut image = MetadataImage::new();
    image.apply_all(&records).expect("records");
    image
}

/// Regression (a whole cluster restarted under the client suites, WEIR_CLUSTER=3): a broker
/// that replays its metadata at start-up, or has caught up but not yet given a shard
/// partition its role, answered NOT_COORDINATOR for a group FindCoordinator had just sent
/// to it, and librdkafka's committed() gave up. It waits with COORDINATOR_LOAD_IN_PROGRESS
/// (retried) while the shard is about to load here; a shard led elsewhere stays
/// NOT_COORDINATOR.
#[test]
fn a_shard_about_to_load_here_answers_load_in_progress() {
    use crate::group_router::{partition_for, GroupRouter};
    use crate::txn_router::TxnRouter;
    use weir_coordinator::ErrorCode;

    let cell = Arc::new(crate::cluster::ImageCell::default());
    let groups = GroupRouter::cluster(Default::default(), cell.clone(), LOCAL);
    let txns = TxnRouter::cluster(Default::default(), cell.clone(), LOCAL);
    let key = |p: i32| {
        (0..)
            .map(|i| format!("key-{i}"))
            .find(|k| partition_for(k, 2) == p)
            .expect("a key of the partition")
    };
    let (here, elsewhere) = (key(0), key(1));
    let codes = |k: &str| (groups.shard(k).err(), txns.shard(k).err());
    let loading = Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    let not_coordinator = Some(ErrorCode::NOT_COORDINATOR);

    // Nothing replayed yet, then replayed but not caught up: every key waits.
    assert_eq!(codes(&here), (loading, loading));
    cell.set(1, Arc::new(coordinator_image()));
    assert_eq!(codes(&elsewhere), (loading, loading));
    // Caught up: the shard led here has no role yet and waits; the other is elsewhere.
    cell.mark_caught_up();
    assert_eq!(codes(&here), (loading, loading));
    assert_eq!(codes(&elsewhere), (not_coordinator, not_coordinator));
}

/// Regression (a whole cluster SIGKILLed and restarted under the client suites,
/// WEIR_CLUSTER=3): before a broker caught up with the quorum it answered a watermark query
/// NOT_LEADER_OR_FOLLOWER from the image it had replayed, and librdkafka gave up. Requests
/// about partitions (and groups, transactions) now wait until it caught up, and so does
/// Metadata: from the replayed image it named this broker the leader of what it led before
/// it stopped (a restarted transaction coordinator sent a read_committed consumer to itself
/// for a partition that had moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_requests_wait_until_the_broker_caught_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = cluster_state(dir.path());
    let id = Uuid::from_u128(43);
    let log = Log::create(dir.path().join("t-0"), LogConfig::default()).expect("log");
    let p0 = Arc::new(Partition::leader(0, log));
    // Replayed, not caught up: what `publish` does but the last step.
    let image = Arc::new(image(id));
    state.sync_cluster_topics(&image, &|_: Uuid, index: i32| {
        (index == 0).then(|| p0.clone())
    });
    state.image.set(1, image);

    let held = tokio::spawn({
        let state = state.clone();
        async move {
            let r: ProduceResponse = round_trip(&state, ApiKey::Produce, 11, &produce(1)).await;
            r
        }
    });
    let metadata = tokio::spawn({
        let state = state.clone();
        async move {
            let mut req = MetadataRequest::default();
            req.topics = None;
            let md: MetadataResponse = round_trip(&state, ApiKey::Metadata, 12, &req).await;
            md
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !held.is_finished(),
        "Produce answered before the broker caught up"
    );
    assert!(
        !metadata.is_finished(),
        "Metadata answered before the broker caught up"
    );

    state.image.mark_caught_up();
    let md = tokio::time::timeout(std::time::Duration::from_secs(5), metadata)
        .await
        .expect("Metadata answered once caught up")
        .expect("task");
    assert_eq!(md.brokers.len(), 2);
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), held)
        .await
        .expect("answered once caught up")
        .expect("task");
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
}

fn describe_producers(partition: i32) -> DescribeProducersRequest {
    let mut t = describe_producers_request::TopicRequest::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partition_indexes = vec![partition];
    let mut req = DescribeProducersRequest::default();
    req.topics = vec![t];
    req
}

/// The lease (§4.9) covers the listing APIs too: without it, ListGroups and
/// ListTransactions list nothing from the shards in memory, and DescribeProducers answers
/// NOT_LEADER_OR_FOLLOWER instead of the partition's producer state; once a heartbeat is
/// answered they are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_refuse_while_the_lease_does_not_hold() {
    use crate::cluster::HeartbeatAck;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let state = cluster_state(dir.path());
    let id = Uuid::from_u128(44);
    let log = Log::create(dir.path().join("t-0"), LogConfig::default()).expect("log");
    let p0 = Arc::new(Partition::leader(0, log));
    publish(&state, image(id), &p0);
    let session = Duration::from_millis(2500);
    state.image.install_lease(session);
    // The last answered heartbeat went long ago: the lease lapsed.
    let long_ago = Instant::now()
        .checked_sub(Duration::from_secs(10))
        .expect("a monotonic clock 10 s after its start");
    state.image.renew_lease(HeartbeatAck {
        sent_at: long_ago,
        fenced: false,
        applied_index: 1,
    });
    assert!(!state.image.serving());

    let (list_groups, list_txns, producers_of_0) = (
        ListGroupsRequest::default(),
        ListTransactionsRequest::default(),
        describe_producers(0),
    );
    let (groups, txns, producers) = tokio::join!(
        round_trip::<_, ListGroupsResponse>(&state, ApiKey::ListGroups, 4, &list_groups),
        round_trip::<_, ListTransactionsResponse>(&state, ApiKey::ListTransactions, 0, &list_txns),
        round_trip::<_, DescribeProducersResponse>(
            &state,
            ApiKey::DescribeProducers,
            0,
            &producers_of_0
        ),
    );
    let not_available = ResponseError::CoordinatorNotAvailable.code();
    assert_eq!(groups.error_code, not_available);
    assert!(groups.groups.is_empty());
    assert_eq!(txns.error_code, not_available);
    assert!(txns.transaction_states.is_empty());
    assert_eq!(
        producers.topics[0].partitions[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );

    // A heartbeat answered now: served again.
    state.image.renew_lease(HeartbeatAck {
        sent_at: Instant::now(),
        fenced: false,
        applied_index: 1,
    });
    let groups: ListGroupsResponse =
        round_trip(&state, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
    assert_eq!(groups.error_code, 0);
    let txns: ListTransactionsResponse = round_trip(
        &state,
        ApiKey::ListTransactions,
        0,
        &ListTransactionsRequest::default(),
    )
    .await;
    assert_eq!(txns.error_code, 0);
    let producers: DescribeProducersResponse =
        round_trip(&state, ApiKey::DescribeProducers, 0, &describe_producers(0)).await;
    assert_eq!(producers.topics[0].partitions[0].error_code, 0);
    // A partition hosted elsewhere: NOT_LEADER_OR_FOLLOWER, as Kafka's replica manager.
    let producers: DescribeProducersResponse =
        round_trip(&state, ApiKey::DescribeProducers, 0, &describe_producers(1)).await;
    assert_eq!(
        producers.topics[0].partitions[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
}

/// A quorum member that knows broker 2's process is gone (its listener refuses).
struct Broker2Gone;

impl crate::cluster::ControllerClient for Broker2Gone {
    fn submit(&self, _: weir_metadata::ControllerRequest) -> crate::cluster::SubmitFuture {
        Box::pin(async { Err(crate::cluster::ControllerUnavailable("test".into())) })
    }

    fn controller_id(&self) -> Option<i32> {
        Some(LOCAL)
    }

    fn gone(&self, ids: Vec<i32>) -> crate::cluster::GoneFuture {
        Box::pin(async move { ids.into_iter().filter(|i| *i == 2).collect() })
    }
}

fn partition_leaders(r: &MetadataResponse) -> Vec<i32> {
    r.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id.0)
        .collect()
}

/// Failover (issue 11): librdkafka refreshes metadata once when a broker connection drops,
/// before the controller fenced the dead leader; a Metadata answer naming a leader this
/// node knows is gone waits for the image that moves its partitions (2 s at most).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_naming_a_gone_leader_waits_for_the_next_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = cluster_state(dir.path());
    let id = Uuid::from_u128(45);
    let log = Log::create(dir.path().join("t-0"), LogConfig::default()).expect("log");
    let p0 = Arc::new(Partition::leader(0, log));
    publish(&state, image(id), &p0);
    state.set_controller(Arc::new(Broker2Gone));

    let mut req = MetadataRequest::default();
    req.topics = None;
    let held = tokio::spawn({
        let state = state.clone();
        let req = req.clone();
        async move {
            let r: MetadataResponse = round_trip(&state, ApiKey::Metadata, 12, &req).await;
            r
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !held.is_finished(),
        "answered while naming a leader known gone"
    );
    // The controller fenced broker 2 and moved partition 1 to this broker.
    let mut p1 = PartitionRegistration::new(vec![LOCAL, 2]);
    p1.leader_epoch = 5;
    let mut moved = MetadataImage::new();
    moved
        .apply_all(&[
            broker(1),
            broker(2),
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                registration: PartitionRegistration::new(vec![LOCAL]),
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 1,
                registration: p1,
            },
        ])
        .expect("records");
    let moved = Arc::new(moved);
    state.sync_cluster_topics(&moved, &|_: Uuid, index: i32| {
        (index == 0).then(|| p0.clone())
    });
    state.image.set(2, moved);
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), held)
        .await
        .expect("answered once the image moved the partition")
        .expect("task");
    assert_eq!(partition_leaders(&r), vec![LOCAL, LOCAL]);

    // Broker 2 leads again and stays "gone": the answer comes after the bound, as it is.
    publish(&state, image(id), &p0);
    state.image.set(3, Arc::new(image(id)));
    let started = std::time::Instant::now();
    let r: MetadataResponse = round_trip(&state, ApiKey::Metadata, 12, &req).await;
    assert_eq!(partition_leaders(&r), vec![LOCAL, 2]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
}

/// Produce v9 of one idempotent batch (producer 1001, epoch 0) from `seq` to "t"/0.
fn idempotent_produce(seq: i32, n: usize) -> ProduceRequest {
    let mut req = produce(0);
    let batch = weir_storage::testkit::BatchBuilder::new(0)
        .producer(1001, 0, seq)
        .records(n, 8)
        .build();
    req.topic_data[0].partition_data[0].records = Some(Bytes::from(batch));
    req
}

fn answered(r: &ProduceResponse) -> (i16, i64) {
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Issue 11: the replica refuses R1 while it follows, leads before the pipelined R2 of the
/// same connection arrives; R2's gap is this broker's doing, so it is refused as R1 was
/// (retriable) instead of OUT_OF_ORDER_SEQUENCE_NUMBER, which makes librdkafka bump its epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_left_by_a_not_leader_refusal_is_not_out_of_order() {
    use crate::handlers::testkit::round_trip_on;
    use crate::handlers::Conn;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = cluster_state(dir.path());
    let log = Log::create(dir.path().join("t-0"), LogConfig::default()).expect("log");
    let p0 = Arc::new(Partition::leader(0, log));
    publish(&state, image(Uuid::from_u128(44)), &p0);
    let conn = Conn::plaintext(&state, "127.0.0.1:1".parse().expect("addr"));
    let send = |seq: i32, n: usize| {
        let (state, conn) = (state.clone(), conn.clone());
        async move {
            let r: ProduceResponse = round_trip_on(
                &state,
                &conn,
                ApiKey::Produce,
                9,
                &idempotent_produce(seq, n),
            )
            .await;
            answered(&r)
        }
    };
    let ok = 0;
    let not_leader = ResponseError::NotLeaderOrFollower.code();
    let out_of_order = ResponseError::OutOfOrderSequenceNumber.code();
    assert_eq!(send(0, 3).await, (ok, 0));

    // The image moved leadership away and back; the replica follows for a moment.
    p0.become_follower(1, 2).expect("follow");
    assert_eq!(send(3, 2).await, (not_leader, -1), "R1");
    p0.become_leader(2).expect("lead again");
    assert_eq!(
        send(5, 2).await,
        (not_leader, -1),
        "R2, pipelined behind R1"
    );
    assert_eq!(
        send(7, 1).await,
        (not_leader, -1),
        "R3, pipelined behind R2"
    );
    // The client re-sends in order.
    assert_eq!(send(3, 2).await, (ok, 3));
    assert_eq!(send(5, 2).await, (ok, 5));
    // With nothing refused, a gap is the producer's and answered as one.
    assert_eq!(send(9, 1).await.0, out_of_order);
    // Another connection never saw the refusal, but the producer appended nothing since
    // this replica leads again: the gap is retriable too (the log tells it), once.
    p0.become_follower(3, 2).expect("follow");
    assert_eq!(send(7, 1).await, (not_leader, -1));
    p0.become_leader(4).expect("lead again");
    let other = Conn::plaintext(&state, "127.0.0.1:2".parse().expect("addr"));
    let r: ProduceResponse = round_trip_on(
        &state,
        &other,
        ApiKey::Produce,
        9,
        &idempotent_produce(8, 1),
    )
    .await;
    assert_eq!(answered(&r), (not_leader, -1));
    assert_eq!(send(7, 1).await, (ok, 7));
    assert_eq!(send(9, 1).await.0, out_of_order);
}
