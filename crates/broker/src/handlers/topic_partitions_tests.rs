use std::collections::BTreeMap;

use uuid::Uuid;
use weir_metadata::{BrokerRegistration, MetadataImage, MetadataRecord, PartitionRegistration};
use weir_protocol::kafka_protocol::messages::describe_topic_partitions_request::{
    Cursor as RequestCursor, TopicRequest,
};
use weir_protocol::kafka_protocol::messages::{
    ApiKey, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;

use super::super::testkit::{round_trip, state};
use super::*;

fn described(n: i32) -> Result<Described, ResponseError> {
    Ok(Described {
        id: Uuid::from_u128(u128::try_from(n).expect("small")),
        internal: false,
        partitions: (0..n)
            .map(|i| {
                let mut p = DescribeTopicPartitionsResponsePartition::default();
                p.partition_index = i;
                p
            })
            .collect(),
    })
}

/// (topic, partition indexes) of a page, and its cursor.
type Shape = (Vec<(String, Vec<i32>)>, Option<(String, i32)>);

fn shape(r: &DescribeTopicPartitionsResponse) -> Shape {
    (
        r.topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect(),
        r.next_cursor
            .as_ref()
            .map(|c| (c.topic_name.0.to_string(), c.partition_index)),
    )
}

fn entries() -> BTreeMap<String, Result<Described, ResponseError>> {
    [
        ("c".to_string(), described(2)),
        ("a".to_string(), described(3)),
        (
            "b".to_string(),
            Err(ResponseError::TopicAuthorizationFailed),
        ),
    ]
    .into_iter()
    .collect()
}

fn owned(v: &[(&str, &[i32])]) -> Vec<(String, Vec<i32>)> {
    v.iter().map(|(n, p)| (n.to_string(), p.to_vec())).collect()
}

#[test]
fn a_page_cut_inside_a_topic_points_at_its_first_partition_left_out() {
    let r = page(entries(), None, 2);
    assert_eq!(shape(&r), (owned(&[("a", &[0, 1])]), Some(("a".into(), 2))));
    let r = page(entries(), Some(("a".into(), 2)), 2);
    // Errors take no room; "c" starts the next page at its second partition.
    assert_eq!(
        shape(&r),
        (
            owned(&[("a", &[2]), ("b", &[]), ("c", &[0])]),
            Some(("c".into(), 1))
        )
    );
    let r = page(entries(), Some(("c".into(), 1)), 2);
    assert_eq!(shape(&r), (owned(&[("c", &[1])]), None));
}

#[test]
fn a_page_ending_with_a_topic_points_at_the_next_topic() {
    let mut e = entries();
    e.remove("b");
    let r = page(e, None, 3);
    assert_eq!(
        shape(&r),
        (owned(&[("a", &[0, 1, 2])]), Some(("c".into(), 0)))
    );
    let r = page(entries(), None, 5);
    assert_eq!(
        shape(&r),
        (
            owned(&[("a", &[0, 1, 2]), ("b", &[]), ("c", &[0, 1])]),
            None
        )
    );
    assert_eq!(r.topics[1].error_code, 29); // TOPIC_AUTHORIZATION_FAILED
}

#[test]
fn the_cursor_must_name_a_topic_asked_for_and_a_real_index() {
    let names = vec!["a".to_string()];
    assert!(check_cursor(&names, false, None).is_ok());
    assert!(check_cursor(&names, false, Some(&("a".into(), 0))).is_ok());
    assert!(check_cursor(&names, false, Some(&("b".into(), 0))).is_err());
    assert!(check_cursor(&names, true, Some(&("b".into(), 0))).is_ok());
    assert!(check_cursor(&names, false, Some(&("a".into(), -1))).is_err());
}

fn broker(id: i32, fenced: bool) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        id,
        incarnation: Uuid::from_u128(u128::try_from(id).expect("id")),
        epoch: i64::from(id),
        endpoints: Vec::new(),
        rack: None,
        fenced,
        in_controlled_shutdown: false,
    })
}

#[test]
fn the_image_gives_leaders_epochs_isr_elr_and_offline_replicas() {
    let id = Uuid::from_u128(9);
    let mut led = PartitionRegistration::new(vec![1, 2, 3]);
    led.leader = 1;
    led.leader_epoch = 4;
    led.isr = vec![1, 3];
    led.elr = vec![2];
    let mut offline = PartitionRegistration::new(vec![2, 3, 1]);
    offline.leader = NO_LEADER;
    offline.leader_epoch = 7;
    offline.isr = vec![];
    offline.last_known_elr = vec![2];
    let mut image = MetadataImage::new();
    image
        .apply_all(&[
            broker(1, false),
            broker(2, true),
            broker(3, false),
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                registration: led,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 1,
                registration: offline,
            },
        ])
        .expect("image");
    let d = from_image(&image, image.topic_by_name("t").expect("topic"));
    assert_eq!(d.id, id);
    let ints = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    let p0 = &d.partitions[0];
    assert_eq!((p0.error_code, p0.leader_id.0, p0.leader_epoch), (0, 1, 4));
    assert_eq!(ints(&p0.replica_nodes), vec![1, 2, 3]);
    assert_eq!(ints(&p0.isr_nodes), vec![1, 3]);
    assert_eq!(
        p0.eligible_leader_replicas.as_deref().map(ints),
        Some(vec![2])
    );
    assert_eq!(ints(&p0.offline_replicas), vec![2]);
    let p1 = &d.partitions[1];
    assert_eq!((p1.error_code, p1.leader_id.0, p1.leader_epoch), (5, -1, 7));
    assert_eq!(p1.last_known_elr.as_deref().map(ints), Some(vec![2]));
}

fn request(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    let mut req = DescribeTopicPartitionsRequest::default();
    req.topics = topics
        .iter()
        .map(|t| {
            let mut x = TopicRequest::default();
            x.name = TopicName(StrBytes::from_string(t.to_string()));
            x
        })
        .collect();
    req.response_partition_limit = limit;
    req.cursor = cursor.map(|(t, p)| {
        let mut c = RequestCursor::default();
        c.topic_name = TopicName(StrBytes::from_string(t.to_string()));
        c.partition_index = p;
        c
    });
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_pages_its_topics_through_the_wire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    for (name, n) in [("b", 2), ("a", 3)] {
        state
            .create_topic(name, n, 1, Default::default())
            .await
            .expect("create");
    }
    let ask = |req: DescribeTopicPartitionsRequest| {
        let state = state.clone();
        async move {
            let r: DescribeTopicPartitionsResponse =
                round_trip(&state, ApiKey::DescribeTopicPartitions, 0, &req).await;
            r
        }
    };
    let first = ask(request(&[], 4, None)).await;
    assert_eq!(
        shape(&first),
        (
            owned(&[("a", &[0, 1, 2]), ("b", &[0])]),
            Some(("b".into(), 1))
        )
    );
    let p = &first.topics[0].partitions[0];
    assert_eq!(
        (p.leader_id.0, p.replica_nodes.len(), p.isr_nodes.len()),
        (0, 1, 1)
    );
    assert_eq!(p.eligible_leader_replicas, Some(Vec::new()));
    assert_eq!(first.topics[0].topic_id, state.topic("a").expect("a").id);
    let second = ask(request(&[], 4, Some(("b", 1)))).await;
    assert_eq!(shape(&second), (owned(&[("b", &[1])]), None));

    let named = ask(request(&["nope", "b"], 2000, None)).await;
    assert_eq!(
        shape(&named),
        (owned(&[("b", &[0, 1]), ("nope", &[])]), None)
    );
    assert_eq!(named.topics[1].error_code, 3); // UNKNOWN_TOPIC_OR_PARTITION
    let bad = ask(request(&["b"], 10, Some(("a", 0)))).await;
    assert_eq!(bad.topics.len(), 1);
    assert_eq!(bad.topics[0].error_code, 42); // INVALID_REQUEST
}
