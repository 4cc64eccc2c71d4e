//! ApiVersions, Metadata, DescribeCluster, SaslHandshake and SaslAuthenticate on a listener
//! without SASL.

use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use weir_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use weir_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use weir_protocol::kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, DescribeClusterRequest, DescribeClusterResponse,
    MetadataRequest, MetadataResponse, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse, TopicName,
};
use weir_protocol::{versions, ResponseError};

use super::str;
use crate::security::{Operation, Resource};
use crate::state::{validate_topic_name, State, Topic};

pub fn api_versions(_req: &ApiVersionsRequest) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = versions::advertised();
    r
}

pub fn sasl_handshake(req: &SaslHandshakeRequest) -> SaslHandshakeResponse {
    tracing::info!(mechanism = %req.mechanism, "client asked for SASL, which is not enabled on this listener");
    let mut r = SaslHandshakeResponse::default();
    r.error_code = ResponseError::UnsupportedSaslMechanism.code();
    r.mechanisms = Vec::new();
    r
}

/// SaslAuthenticate on a listener without SASL: Kafka's ILLEGAL_SASL_STATE.
pub fn sasl_authenticate_unexpected() -> SaslAuthenticateResponse {
    let mut r = SaslAuthenticateResponse::default();
    r.error_code = ResponseError::IllegalSaslState.code();
    r.error_message = super::msg("SASL is not enabled on this listener");
    r
}

/// `advertise` is the host and port of the listener the request came through.
pub fn describe_cluster(
    state: &State,
    req: &DescribeClusterRequest,
    advertise: &(String, u16),
    conn: &super::Conn,
) -> DescribeClusterResponse {
    let mut r = describe_cluster_of(state, advertise);
    if req.include_cluster_authorized_operations {
        r.cluster_authorized_operations = conn.authorized_operations(state, Resource::Cluster);
    }
    r
}

fn describe_cluster_of(state: &State, advertise: &(String, u16)) -> DescribeClusterResponse {
    if state.is_cluster() {
        return describe_cluster_from_image(state);
    }
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(state.config.node_id);
    b.host = str(&advertise.0);
    b.port = i32::from(advertise.1);
    let mut r = DescribeClusterResponse::default();
    r.cluster_id = str(&state.cluster_id);
    r.controller_id = BrokerId(state.config.node_id);
    r.brokers = vec![b];
    r
}

/// DescribeCluster in cluster mode: the unfenced brokers (v0-1 have no fencing field, so a
/// fenced broker listed would look live), the active controller (-1 while none is known).
fn describe_cluster_from_image(state: &State) -> DescribeClusterResponse {
    let image = state.image.image();
    let mut r = DescribeClusterResponse::default();
    r.cluster_id = str(image.cluster_id().unwrap_or(&state.cluster_id));
    r.controller_id = BrokerId(state.controller_id().unwrap_or(-1));
    r.brokers = crate::cluster::metadata::live_brokers(&image)
        .into_iter()
        .map(|b| {
            let mut out = DescribeClusterBroker::default();
            out.broker_id = b.node_id;
            out.host = b.host;
            out.port = b.port;
            out.rack = b.rack;
            out
        })
        .collect();
    r
}

/// Metadata in cluster mode: brokers, controller, topics and partitions from the image.
/// Auto-creation goes through the quorum like CreateTopics.
async fn metadata_from_image(
    state: &Arc<State>,
    req: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    use crate::cluster::metadata::{live_brokers, topic_metadata};
    let mut image = state.image.image();
    let mut r = MetadataResponse::default();
    r.controller_id = BrokerId(state.controller_id().unwrap_or(-1));
    if version >= 2 {
        r.cluster_id = Some(str(image.cluster_id().unwrap_or(&state.cluster_id)));
    }
    let requested = match req.topics.as_deref() {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    match requested {
        None => {
            r.topics = image
                .topics()
                .map(|t| topic_metadata(&image, t, version, is_internal_topic(&t.name)))
                .collect();
        }
        Some(requested) => {
            let may_create =
                state.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
            for t in requested {
                let found = match &t.name {
                    Some(name) => match image.topic_by_name(name) {
                        Some(topic) => Ok(topic.clone()),
                        None => match lookup_or_create(state, name, may_create).await {
                            Ok(_) => {
                                image = state.image.image();
                                image
                                    .topic_by_name(name)
                                    .cloned()
                                    .ok_or(ResponseError::LeaderNotAvailable)
                            }
                            Err(code) => Err(code),
                        },
                    },
                    None => image
                        .topic(t.topic_id)
                        .cloned()
                        .ok_or(ResponseError::UnknownTopicId),
                };
                match found {
                    Ok(topic) => r.topics.push(topic_metadata(
                        &image,
                        &topic,
                        version,
                        is_internal_topic(&topic.name),
                    )),
                    Err(code) => {
                        let mut m = MetadataResponseTopic::default();
                        m.error_code = code.code();
                        m.name = t.name.clone();
                        m.topic_id = t.topic_id;
                        r.topics.push(m);
                    }
                }
            }
        }
    }
    // Brokers last: an auto-created topic's image is the newest.
    r.brokers = live_brokers(&image);
    r
}

/// The longest a Metadata answer waits for the image to move the partitions of a leader
/// known gone: the controller's election (about 1-2 s when it died with the leader) and
/// the fencing tick, well inside every client's request timeout.
const GONE_LEADER_HOLD: std::time::Duration = std::time::Duration::from_secs(2);

/// The leaders an answer names, once each.
fn leaders_in(r: &MetadataResponse) -> Vec<i32> {
    let mut out: Vec<i32> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.leader_id.0))
        .filter(|l| *l >= 0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `advertise` is the host and port of the listener the request came through: a client is
/// never sent to a listener of another security protocol.
pub async fn metadata(
    state: &Arc<State>,
    req: MetadataRequest,
    version: i16,
    conn: &super::Conn,
) -> MetadataResponse {
    // Asked for since v8; the cluster's field went to DescribeCluster in v11.
    let topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let cluster_ops = (8..=10).contains(&version) && req.include_cluster_authorized_operations;
    let mut r = metadata_of(state, req, version, conn).await;
    if topic_ops {
        for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.topic_authorized_operations =
                    conn.authorized_operations(state, Resource::Topic(name));
            }
        }
    }
    if cluster_ops {
        r.cluster_authorized_operations = conn.authorized_operations(state, Resource::Cluster);
    }
    r
}

async fn metadata_of(
    state: &Arc<State>,
    mut req: MetadataRequest,
    version: i16,
    conn: &super::Conn,
) -> MetadataResponse {
    let advertise = &conn.listener.advertise;
    let describes = |name: &str| conn.sees(state, Operation::Describe, Resource::Topic(name));
    if state.is_cluster() {
        // The image's path creates without asking per topic: only a principal that may
        // create topics on the cluster gets auto-creation there.
        if !conn.sees(state, Operation::Create, Resource::Cluster) {
            req.allow_auto_topic_creation = false;
        }
        let mut r = metadata_from_image(state, &req, version).await;
        // A leader this node knows is gone (its listener refuses connections; the
        // controller fences it within a tick or, if it was the controller too, after the
        // election): the answer waits for the image that moves its partitions, so a
        // client's refresh on the disconnect (librdkafka asks once, at once) learns the new
        // leaders instead of its next periodic refresh.
        let gone = state.gone_brokers(leaders_in(&r)).await;
        if !gone.is_empty() {
            let deadline = tokio::time::Instant::now() + GONE_LEADER_HOLD;
            while leaders_in(&r).iter().any(|l| gone.contains(l)) {
                let next = state.image.index() + 1;
                let published =
                    tokio::time::timeout_at(deadline, state.image.published(next)).await;
                if published.is_err() {
                    break;
                }
                r = metadata_from_image(state, &req, version).await;
            }
        }
        for t in &mut r.topics {
            if let Some(name) = t.name.as_ref().filter(|n| !describes(n)) {
                let mut m = MetadataResponseTopic::default();
                m.error_code = ResponseError::TopicAuthorizationFailed.code();
                m.name = Some(name.clone());
                m.topic_id = t.topic_id;
                *t = m;
            }
        }
        return r;
    }
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(state.config.node_id);
    broker.host = str(&advertise.0);
    broker.port = i32::from(advertise.1);

    let mut r = MetadataResponse::default();
    r.brokers = vec![broker];
    r.controller_id = BrokerId(state.config.node_id);
    if version >= 2 {
        r.cluster_id = Some(str(&state.cluster_id));
    }
    // v0: an empty list means all topics. v1+: null means all, empty means none.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(requested) = requested else {
        // Kafka hides the topics the principal may not DESCRIBE from the list of all.
        r.topics = state
            .topics()
            .iter()
            .filter(|t| describes(&t.name))
            .map(|t| topic_metadata(state, t, version))
            .collect();
        return r;
    };
    // Kafka: auto-creation is implied before v4, asked for explicitly since.
    let may_create =
        state.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    for t in requested {
        let denied = ResponseError::TopicAuthorizationFailed;
        let found = match &t.name {
            Some(name) if !conn.may(state, Operation::Describe, Resource::Topic(name)) => {
                Err(denied)
            }
            Some(name) => match state.topic(name) {
                Some(topic) => Ok(topic),
                // Auto-creation needs CREATE on the cluster or the topic, as Kafka.
                None => {
                    let create = may_create && may_create_topic(state, conn, name);
                    match lookup_or_create(state, name, create).await {
                        Err(ResponseError::UnknownTopicOrPartition) if may_create && !create => {
                            Err(denied)
                        }
                        other => other,
                    }
                }
            },
            None => match state.topic_by_id(t.topic_id) {
                Some(topic)
                    if !conn.may(state, Operation::Describe, Resource::Topic(&topic.name)) =>
                {
                    Err(denied)
                }
                Some(topic) => Ok(topic),
                None => Err(ResponseError::UnknownTopicId),
            },
        };
        match found {
            Ok(topic) => r.topics.push(topic_metadata(state, &topic, version)),
            Err(code) => {
                let mut m = MetadataResponseTopic::default();
                m.error_code = code.code();
                m.name = t.name.clone();
                m.topic_id = t.topic_id;
                r.topics.push(m);
            }
        }
    }
    r
}

async fn lookup_or_create(
    state: &Arc<State>,
    name: &str,
    may_create: bool,
) -> Result<Arc<Topic>, ResponseError> {
    if validate_topic_name(name).is_err() {
        return Err(ResponseError::InvalidTopicException);
    }
    if !may_create {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    auto_create(state, name).await
}

/// Whether `conn` may create topic `name`: CREATE on the cluster or on the topic.
pub fn may_create_topic(state: &State, conn: &super::Conn, name: &str) -> bool {
    conn.sees(state, Operation::Create, Resource::Cluster)
        || conn.may(state, Operation::Create, Resource::Topic(name))
}

/// Creates a topic with the broker defaults (auto.create.topics.enable).
pub async fn auto_create(state: &Arc<State>, name: &str) -> Result<Arc<Topic>, ResponseError> {
    match state.create_topic(name, -1, -1, Default::default()).await {
        Ok(t) => Ok(t),
        // Another connection created it first.
        Err(crate::state::AdminError::TopicExists(_)) => state
            .topic(name)
            .ok_or(ResponseError::UnknownTopicOrPartition),
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
            Err(crate::errors::admin_code(&e))
        }
    }
}

/// Kafka marks the topics it keeps for itself (`__consumer_offsets`, `__transaction_state`) as
/// internal so that tools can hide them; Weir's own topics (the SQL catalog and state) are its
/// equivalent.
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__weir_") || name == "__consumer_offsets" || name == "__transaction_state"
}

fn topic_metadata(state: &State, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(state.config.node_id);
    let mut m = MetadataResponseTopic::default();
    m.name = Some(TopicName(str(&topic.name)));
    m.is_internal = is_internal_topic(&topic.name);
    if version >= 10 {
        m.topic_id = topic.id;
    }
    m.partitions = (0..topic.partition_count())
        .map(|i| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = i;
            p.leader_id = node;
            p.leader_epoch = topic.partition(i).map_or(0, |part| part.leader_epoch());
            p.replica_nodes = vec![node];
            p.isr_nodes = vec![node];
            p
        })
        .collect();
    m
}
