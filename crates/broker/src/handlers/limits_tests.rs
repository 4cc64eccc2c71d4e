//! Requests that would create too many partitions at once are refused whole.

use weir_protocol::kafka_protocol::messages::{
    create_partitions_request, create_topics_request, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, TopicName,
};
use weir_protocol::{ApiKey, ResponseError};

use super::str;
use super::testkit::{round_trip, state};
use crate::state::MAX_PARTITIONS_PER_REQUEST;

fn creatable(name: &str, partitions: i32) -> create_topics_request::CreatableTopic {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(str(name));
    t.num_partitions = partitions;
    t.replication_factor = 1;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_over_the_partition_limit_fails_every_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let half = MAX_PARTITIONS_PER_REQUEST / 2;
    let mut req = CreateTopicsRequest::default();
    // Each alone is allowed; together they pass the limit by one.
    req.topics = vec![creatable("a", half), creatable("b", half + 1)];
    let r: CreateTopicsResponse = round_trip(&state, ApiKey::CreateTopics, 7, &req).await;
    for t in &r.topics {
        assert_eq!(
            t.error_code,
            ResponseError::PolicyViolation.code(),
            "{:?}",
            t.name
        );
        let message = t.error_message.as_deref().unwrap_or_default().to_string();
        assert!(message.contains("10000"), "{message}");
    }
    assert!(state.topic("a").is_none() && state.topic("b").is_none());
    assert_eq!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| e
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("a-")))
            .count(),
        0,
        "nothing was created"
    );

    req.topics = vec![creatable("a", 3)];
    let r: CreateTopicsResponse = round_trip(&state, ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(state.topic("a").expect("a").partition_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_a_topic_past_the_limit_in_one_request_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    state
        .create_topic("g", 2, 1, Default::default())
        .await
        .expect("create");
    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = TopicName(str("g"));
    t.count = MAX_PARTITIONS_PER_REQUEST + 3;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![t];
    let r: CreatePartitionsResponse = round_trip(&state, ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::PolicyViolation.code()
    );
    assert_eq!(state.topic("g").expect("g").partition_count(), 2);
}
