//! The ACL APIs, and the authorization of every API, through the handlers as a client sends
//! them, as principals other than the harness's anonymous one.

use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::ApiKey;

use super::testkit::{round_trip_as, state_with};
use super::tests::range;

const ADMIN: &str = "User:admin";

/// A broker as with an authenticating listener: no ACL, no access; `User:admin` is super.
fn locked(dir: &std::path::Path) -> std::sync::Arc<crate::state::State> {
    state_with(
        dir,
        &[
            ("super.users", ADMIN),
            ("allow.everyone.if.no.acl.found", "false"),
        ],
    )
}

pub(super) fn creation(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> create_acls_request::AclCreation {
    let mut c = create_acls_request::AclCreation::default();
    c.resource_type = resource_type;
    c.resource_name = super::str(name);
    c.resource_pattern_type = pattern;
    c.principal = super::str(principal);
    c.host = super::str("*");
    c.operation = operation;
    c.permission_type = permission;
    c
}

/// Creates ACLs as the super user, checking each was accepted.
pub(super) async fn grant(
    state: &std::sync::Arc<crate::state::State>,
    creations: Vec<create_acls_request::AclCreation>,
) {
    let mut req = CreateAclsRequest::default();
    req.creations = creations;
    let r: CreateAclsResponse = round_trip_as(state, ADMIN, ApiKey::CreateAcls, 3, &req).await;
    for res in r.results {
        assert_eq!(res.error_code, 0, "{:?}", res.error_message);
    }
}

fn describe_all() -> DescribeAclsRequest {
    let mut req = DescribeAclsRequest::default();
    // The codec's defaults are empty strings, which match only empty names.
    req.resource_name_filter = None;
    req.principal_filter = None;
    req.host_filter = None;
    req.resource_type_filter = 1;
    req.pattern_type_filter = 1;
    req.operation = 1;
    req.permission_type = 1;
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_created_described_deleted_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = locked(dir.path());
    for v in range(ApiKey::CreateAcls) {
        let mut req = CreateAclsRequest::default();
        req.creations = vec![
            creation(2, "orders", 3, "User:alice", 3, 3),
            creation(2, "logs-", 4, "User:alice", 4, 3),
            creation(1, "x", 3, "User:alice", 3, 3), // ANY resource: invalid
        ];
        let r: CreateAclsResponse = round_trip_as(&state, ADMIN, ApiKey::CreateAcls, v, &req).await;
        let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![0, 0, 42], "v{v}: INVALID_REQUEST for the third");
        // Not a super user, and no ACL allows ALTER on the cluster.
        let r: CreateAclsResponse =
            round_trip_as(&state, "User:alice", ApiKey::CreateAcls, v, &req).await;
        assert!(r.results.iter().all(|r| r.error_code == 31), "v{v}");
    }
    assert_eq!(state.security.acls.len(), 2, "stored");
    for v in range(ApiKey::DescribeAcls) {
        let r: DescribeAclsResponse =
            round_trip_as(&state, ADMIN, ApiKey::DescribeAcls, v, &describe_all()).await;
        assert_eq!(r.error_code, 0);
        let names: Vec<(String, i8, usize)> = r
            .resources
            .iter()
            .map(|r| (r.resource_name.to_string(), r.pattern_type, r.acls.len()))
            .collect();
        assert_eq!(
            names,
            vec![("logs-".into(), 4, 1), ("orders".into(), 3, 1)],
            "v{v}"
        );
        // MATCH: what applies to topic logs-app.
        let mut req = describe_all();
        req.pattern_type_filter = 2;
        req.resource_name_filter = Some(super::str("logs-app"));
        let r: DescribeAclsResponse =
            round_trip_as(&state, ADMIN, ApiKey::DescribeAcls, v, &req).await;
        assert_eq!(r.resources.len(), 1);
        assert_eq!(r.resources[0].resource_name.as_str(), "logs-");
        let r: DescribeAclsResponse =
            round_trip_as(&state, "User:bob", ApiKey::DescribeAcls, v, &describe_all()).await;
        assert_eq!(r.error_code, 31, "v{v}: CLUSTER_AUTHORIZATION_FAILED");
    }
    // Kept across a restart.
    drop(state);
    let state = locked(dir.path());
    let mut req = DeleteAclsRequest::default();
    let mut f = delete_acls_request::DeleteAclsFilter::default();
    f.resource_name_filter = None;
    f.principal_filter = None;
    f.host_filter = None;
    f.resource_type_filter = 2;
    f.pattern_type_filter = 4;
    f.operation = 1;
    f.permission_type = 1;
    let mut bad = f.clone();
    bad.pattern_type_filter = 0;
    req.filters = vec![f, bad];
    let r: DeleteAclsResponse = round_trip_as(&state, ADMIN, ApiKey::DeleteAcls, 3, &req).await;
    assert_eq!(r.filter_results.len(), 2);
    assert_eq!(r.filter_results[0].error_code, 0);
    let gone: Vec<&str> = r.filter_results[0]
        .matching_acls
        .iter()
        .map(|m| m.resource_name.as_str())
        .collect();
    assert_eq!(gone, vec!["logs-"]);
    assert_eq!(r.filter_results[1].error_code, 42);
    let r: DescribeAclsResponse =
        round_trip_as(&state, ADMIN, ApiKey::DescribeAcls, 3, &describe_all()).await;
    assert_eq!(r.resources.len(), 1);
    assert_eq!(r.resources[0].resource_name.as_str(), "orders");
}

fn produce(topic: &str) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = 0;
    p.records = Some(
        weir_storage::testkit::BatchBuilder::new(0)
            .records(1, 3)
            .build()
            .into(),
    );
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(super::str(topic));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 1000;
    req.topic_data = vec![t];
    req
}

fn fetch(topic: &str) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(super::str(topic));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.max_bytes = 1 << 20;
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    req
}

fn metadata(topics: Option<&[&str]>) -> MetadataRequest {
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                let mut m = metadata_request::MetadataRequestTopic::default();
                m.name = Some(TopicName(super::str(t)));
                m
            })
            .collect()
    });
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_asks_the_acls() {
    use weir_protocol::ResponseError as E;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = locked(dir.path());
    for t in ["orders", "logs-app", "logs-secret", "secret"] {
        state
            .create_topic(t, 1, 1, Default::default())
            .await
            .expect("create");
    }
    grant(
        &state,
        vec![
            creation(2, "orders", 3, "User:alice", 4, 3), // WRITE orders
            creation(2, "logs-", 4, "User:alice", 3, 3),  // READ logs-*
            creation(2, "logs-secret", 3, "User:alice", 2, 2), // DENY ALL logs-secret
            creation(3, "g", 3, "User:alice", 3, 3),      // READ group g
        ],
    )
    .await;
    let code = |c: i16| E::try_from_code(c);

    // Produce: WRITE on the topic.
    let produce_code = |r: ProduceResponse| r.responses[0].partition_responses[0].error_code;
    let r: ProduceResponse =
        round_trip_as(&state, "User:alice", ApiKey::Produce, 9, &produce("orders")).await;
    assert_eq!(produce_code(r), 0);
    for (who, topic) in [("User:alice", "logs-app"), ("User:bob", "orders")] {
        let r: ProduceResponse =
            round_trip_as(&state, who, ApiKey::Produce, 9, &produce(topic)).await;
        assert_eq!(
            code(produce_code(r)),
            Some(E::TopicAuthorizationFailed),
            "{who} {topic}"
        );
    }
    // A missing topic is not auto-created without CREATE.
    let r: ProduceResponse = round_trip_as(
        &state,
        "User:alice",
        ApiKey::Produce,
        9,
        &produce("orders2"),
    )
    .await;
    assert_eq!(code(produce_code(r)), Some(E::TopicAuthorizationFailed));
    assert!(state.topic("orders2").is_none());

    // Fetch: READ (WRITE does not imply it); the DENY wins over the prefixed ALLOW.
    for (topic, want) in [
        ("logs-app", None),
        ("orders", Some(E::TopicAuthorizationFailed)),
        ("logs-secret", Some(E::TopicAuthorizationFailed)),
    ] {
        let r: FetchResponse =
            round_trip_as(&state, "User:alice", ApiKey::Fetch, 12, &fetch(topic)).await;
        assert_eq!(
            code(r.responses[0].partitions[0].error_code),
            want,
            "{topic}"
        );
    }

    // Metadata hides what alice may not DESCRIBE; a named one answers the denial.
    let r: MetadataResponse =
        round_trip_as(&state, "User:alice", ApiKey::Metadata, 12, &metadata(None)).await;
    let mut seen: Vec<String> = r
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    seen.sort();
    assert_eq!(seen, vec!["logs-app", "orders"]);
    let r: MetadataResponse = round_trip_as(
        &state,
        "User:alice",
        ApiKey::Metadata,
        12,
        &metadata(Some(&["secret", "orders"])),
    )
    .await;
    let codes: Vec<Option<E>> = r.topics.iter().map(|t| code(t.error_code)).collect();
    assert_eq!(codes, vec![Some(E::TopicAuthorizationFailed), None]);

    // InitProducerId without a transactional id: WRITE on any topic will do (KIP-679).
    let r: InitProducerIdResponse = round_trip_as(
        &state,
        "User:alice",
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default(),
    )
    .await;
    assert_eq!(r.error_code, 0);
    let r: InitProducerIdResponse = round_trip_as(
        &state,
        "User:bob",
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default(),
    )
    .await;
    assert_eq!(code(r.error_code), Some(E::ClusterAuthorizationFailed));
    let mut txn = InitProducerIdRequest::default();
    txn.transactional_id = Some(TransactionalId(super::str("tx")));
    txn.transaction_timeout_ms = 60_000;
    let r: InitProducerIdResponse =
        round_trip_as(&state, "User:alice", ApiKey::InitProducerId, 4, &txn).await;
    assert_eq!(
        code(r.error_code),
        Some(E::TransactionalIdAuthorizationFailed)
    );

    // Groups: READ on the group.
    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(super::str("other"));
    let r: HeartbeatResponse = round_trip_as(&state, "User:alice", ApiKey::Heartbeat, 4, &hb).await;
    assert_eq!(code(r.error_code), Some(E::GroupAuthorizationFailed));
    let mut fc = FindCoordinatorRequest::default();
    fc.key = super::str("g");
    let r: FindCoordinatorResponse =
        round_trip_as(&state, "User:alice", ApiKey::FindCoordinator, 3, &fc).await;
    assert_eq!(r.error_code, 0, "READ on the group implies DESCRIBE");
    let r: FindCoordinatorResponse =
        round_trip_as(&state, "User:bob", ApiKey::FindCoordinator, 3, &fc).await;
    assert_eq!(code(r.error_code), Some(E::GroupAuthorizationFailed));

    // CreateTopics: CREATE on the cluster or the topic.
    let mut ct = CreateTopicsRequest::default();
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(super::str("new-one"));
    t.num_partitions = 1;
    t.replication_factor = 1;
    ct.topics = vec![t];
    let r: CreateTopicsResponse =
        round_trip_as(&state, "User:alice", ApiKey::CreateTopics, 7, &ct).await;
    assert_eq!(
        code(r.topics[0].error_code),
        Some(E::TopicAuthorizationFailed)
    );
    grant(
        &state,
        vec![creation(4, "kafka-cluster", 3, "User:alice", 5, 3)],
    )
    .await;
    let r: CreateTopicsResponse =
        round_trip_as(&state, "User:alice", ApiKey::CreateTopics, 7, &ct).await;
    assert_eq!(r.topics[0].error_code, 0);

    // DescribeConfigs of a topic: DESCRIBE_CONFIGS.
    let mut dc = DescribeConfigsRequest::default();
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = super::str("orders");
    dc.resources = vec![res];
    let r: DescribeConfigsResponse =
        round_trip_as(&state, "User:alice", ApiKey::DescribeConfigs, 4, &dc).await;
    assert_eq!(
        code(r.results[0].error_code),
        Some(E::TopicAuthorizationFailed)
    );
    let r: DescribeConfigsResponse =
        round_trip_as(&state, ADMIN, ApiKey::DescribeConfigs, 4, &dc).await;
    assert_eq!(r.results[0].error_code, 0);

    // Every denial is counted per API and resource type.
    let text = state.metrics.registry.render();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                "weir_authorization_denied_total{api=\"Produce\",resource_type=\"TOPIC\"}",
            )
        })
        .expect("the Produce denials");
    assert!(line.ends_with(" 3"), "{line}");
}
