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
