use uuid::Uuid;
use weir_metadata::{
    BrokerRegistration, Endpoint, MetadataImage, MetadataRecord, PartitionRegistration,
};

use super::*;

fn broker(id: i32, fenced: bool, rack: Option<&str>) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        id,
        incarnation: Uuid::from_u128(id as u128),
        epoch: i64::from(id) * 10,
        endpoints: vec![
            Endpoint {
                name: "INTERNAL".into(),
                host: "10.0.0.1".into(),
                port: 9200 + id as u16,
            },
            Endpoint {
                name: CLIENT_LISTENER.into(),
                host: format!("broker{id}"),
                port: 9090 + id as u16,
            },
        ],
        rack: rack.map(str::to_string),
        fenced,
        in_controlled_shutdown: false,
    })
}

fn partition(
    topic_id: Uuid,
    index: i32,
    leader: i32,
    replicas: &[i32],
    isr: &[i32],
) -> MetadataRecord {
    let mut reg = PartitionRegistration::new(replicas.to_vec());
    reg.leader = leader;
    reg.isr = isr.to_vec();
    reg.leader_epoch = 3 + index;
    MetadataRecord::Partition {
        topic_id,
        partition: index,
        registration: reg,
    }
}

/// Brokers 1 and 3 live (3 on rack "b"), 2 fenced; topic "t" with a partition led by 1, one
/// led by 3 with a replica on the fenced broker, and one without a leader.
fn image() -> (MetadataImage, Uuid) {
    let id = Uuid::from_u128(7);
    let mut image = MetadataImage::new();
    image
        .apply_all(&[
            broker(1, false, None),
            broker(2, true, None),
            broker(3, false, Some("b")),
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            partition(id, 0, 1, &[1, 3], &[1, 3]),
            partition(id, 1, 3, &[3, 2], &[3]),
            partition(id, 2, -1, &[2], &[2]),
        ])
        .expect("records apply");
    (image, id)
}

#[test]
fn metadata_lists_live_brokers_with_client_endpoints_and_racks() {
    let (image, _) = image();
    let brokers = live_brokers(&image);
    let got: Vec<(i32, String, i32, Option<String>)> = brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                b.host.to_string(),
                b.port,
                b.rack.as_ref().map(|r| r.to_string()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "broker1".into(), 9091, None),
            (3, "broker3".into(), 9093, Some("b".into())),
        ]
    );
}

#[test]
fn metadata_partitions_carry_leader_epoch_replicas_isr_and_offline_replicas() {
    let (image, id) = image();
    let topic = image.topic(id).expect("topic").clone();
    let m = topic_metadata(&image, &topic, 12, false);
    assert_eq!(m.topic_id, id);
    assert_eq!(m.name.as_ref().map(|n| n.0.to_string()), Some("t".into()));
    let rows: Vec<_> = m
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.leader_epoch,
                p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
            )
        })
        .collect();
    let leader_not_available = ResponseError::LeaderNotAvailable.code();
    assert_eq!(
        rows,
        vec![
            (0, 0, 1, 3, vec![1, 3], vec![1, 3], vec![]),
            (1, 0, 3, 4, vec![3, 2], vec![3], vec![2]),
            (2, leader_not_available, -1, 5, vec![2], vec![2], vec![2]),
        ]
    );
    // Topic ids only from v10, as Kafka.
    assert!(topic_metadata(&image, &topic, 9, false).topic_id.is_nil());
}

#[test]
fn leader_hints_name_the_leader_and_only_live_endpoints() {
    let (image, id) = image();
    let topic = image.topic(id).expect("topic").clone();
    let (leader, epoch, endpoint) = leader_hint(&image, &topic, 1).expect("partition 1");
    assert_eq!((leader, epoch), (3, 4));
    assert_eq!(
        endpoint,
        Some(LeaderEndpoint {
            id: 3,
            host: "broker3".into(),
            port: 9093,
            rack: Some("b".into()),
        })
    );
    // No leader: the hint says -1 and names no endpoint.
    assert_eq!(leader_hint(&image, &topic, 2), Some((-1, 5, None)));
    assert_eq!(leader_hint(&image, &topic, 9), None);

    let mut hints = LeaderHints::new(&image);
    let seen: Vec<_> = [
        (Some(&*topic), 1),
        (Some(&*topic), 0),
        (Some(&*topic), 1),
        (None, 0),
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(i, (t, p))| hints.hint(t, p).map(|(leader, epoch)| (i, leader, epoch)))
    .collect();
    let endpoints = hints.endpoints();
    assert_eq!(seen, vec![(0, 3, 4), (1, 1, 3), (2, 3, 4)]);
    assert_eq!(
        endpoints.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![1, 3]
    );
}
