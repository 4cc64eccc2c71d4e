//! Metadata and DescribeCluster answered from the cluster's image (design §6), and the
//! leader hints of KIP-951: pure functions of a [`MetadataImage`], so the answers are tested
//! without a quorum.

use weir_metadata::{BrokerRegistration, MetadataImage, TopicImage, NO_LEADER};
use weir_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use weir_protocol::kafka_protocol::messages::{BrokerId, TopicName};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;

/// The listener clients use, as brokers register it.
pub const CLIENT_LISTENER: &str = "PLAINTEXT";

/// A broker's client endpoint: `(host, port)`.
pub fn client_endpoint(broker: &BrokerRegistration) -> Option<(&str, u16)> {
    broker
        .endpoints
        .iter()
        .find(|e| e.name == CLIENT_LISTENER)
        .or_else(|| broker.endpoints.first())
        .map(|e| (e.host.as_str(), e.port))
}

/// The brokers clients may use: registered and unfenced, with their client endpoint and
/// rack, by id. A broker in controlled shutdown is still listed (it still serves), as in
/// Kafka.
pub fn live_brokers(image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let (host, port) = client_endpoint(b)?;
            let mut out = MetadataResponseBroker::default();
            out.node_id = BrokerId(b.id);
            out.host = StrBytes::from_string(host.to_string());
            out.port = i32::from(port);
            out.rack = b.rack.clone().map(StrBytes::from_string);
            Some(out)
        })
        .collect()
}

/// A broker that cannot serve its replicas: fenced or not registered.
fn offline(image: &MetadataImage, id: i32) -> bool {
    image.broker(id).is_none_or(|b| b.fenced)
}

/// One topic's Metadata entry: per partition its leader (-1 and LEADER_NOT_AVAILABLE
/// without one), leader epoch, replicas, ISR and the replicas on offline brokers.
pub fn topic_metadata(
    image: &MetadataImage,
    topic: &TopicImage,
    version: i16,
    is_internal: bool,
) -> MetadataResponseTopic {
    let mut m = MetadataResponseTopic::default();
    m.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
    m.is_internal = is_internal;
    if version >= 10 {
        m.topic_id = topic.id;
    }
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    m.partitions = topic
        .partitions
        .iter()
        .map(|(index, reg)| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = *index;
            p.leader_id = BrokerId(reg.leader);
            p.leader_epoch = reg.leader_epoch;
            if reg.leader == NO_LEADER {
                p.error_code = ResponseError::LeaderNotAvailable.code();
            }
            p.replica_nodes = ids(&reg.replicas);
            p.isr_nodes = ids(&reg.isr);
            p.offline_replicas = reg
                .replicas
                .iter()
                .copied()
                .filter(|r| offline(image, *r))
                .map(BrokerId)
                .collect();
            p
        })
        .collect();
    m
}

/// The leader and leader epoch the image names for `topic`'s `partition` (KIP-951's
/// CurrentLeader), with the leader's client endpoint and rack when it is live.
pub fn leader_hint(
    image: &MetadataImage,
    topic: &TopicImage,
    partition: i32,
) -> Option<(i32, i32, Option<LeaderEndpoint>)> {
    let reg = topic.partitions.get(&partition)?;
    let endpoint = image
        .broker(reg.leader)
        .filter(|b| !b.fenced)
        .and_then(|b| {
            let (host, port) = client_endpoint(b)?;
            Some(LeaderEndpoint {
                id: b.id,
                host: host.to_string(),
                port: i32::from(port),
                rack: b.rack.clone(),
            })
        });
    Some((reg.leader, reg.leader_epoch, endpoint))
}

/// KIP-951's hints for the partitions of one answer that failed NOT_LEADER_OR_FOLLOWER:
/// [`LeaderHints::hint`] gives each such partition its CurrentLeader and remembers the live
/// leaders' endpoints, which [`LeaderHints::endpoints`] returns for NodeEndpoints, by id.
pub struct LeaderHints<'a> {
    image: &'a MetadataImage,
    endpoints: Vec<LeaderEndpoint>,
}

impl<'a> LeaderHints<'a> {
    pub fn new(image: &'a MetadataImage) -> LeaderHints<'a> {
        LeaderHints {
            image,
            endpoints: Vec::new(),
        }
    }

    /// The (leader, leader epoch) the image names for `topic`'s `partition`, if it knows it.
    pub fn hint(&mut self, topic: Option<&TopicImage>, partition: i32) -> Option<(i32, i32)> {
        let (leader, epoch, endpoint) = leader_hint(self.image, topic?, partition)?;
        if let Some(e) = endpoint {
            if !self.endpoints.iter().any(|x| x.id == e.id) {
                self.endpoints.push(e);
            }
        }
        Some((leader, epoch))
    }

    /// The distinct live leaders named so far, by id.
    pub fn endpoints(mut self) -> Vec<LeaderEndpoint> {
        self.endpoints.sort_by_key(|e| e.id);
        self.endpoints
    }
}

/// A new leader's endpoint for KIP-951's NodeEndpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderEndpoint {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
