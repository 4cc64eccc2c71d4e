//! DescribeTopicPartitions (API 75, KIP-966): what Kafka 3.8+ admin clients describe topics
//! with (the Java client's `describeTopics`, `kafka-topics.sh --describe`). Per partition it
//! carries Metadata's leader, leader epoch, replicas, ISR and offline replicas, plus the
//! eligible leader replicas and the last known ELR (design §5.5), and the answer is paged:
//! topics in name order, at most `response_partition_limit` partitions (capped at Kafka's
//! 2,000), and a `next_cursor` (topic, partition) where the next page starts.
//!
//! Data flow: the topics asked for (all topics the principal may DESCRIBE when the list is
//! empty; named ones it may not get TOPIC_AUTHORIZATION_FAILED) are described from the
//! published image in cluster mode, from the topic table on a single node (one replica,
//! this broker, in every list), then [`page`] cuts the page. Pure functions but the
//! lookups, so paging is tested without a broker.

use std::collections::BTreeMap;

use uuid::Uuid;
use weir_metadata::{MetadataImage, TopicImage, NO_LEADER};
use weir_protocol::kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use weir_protocol::kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;

use super::cluster::is_internal_topic;
use crate::security::{Operation, Resource};
use crate::state::{State, Topic};

/// The most partitions one answer carries (Kafka's `max.request.partition.size.limit`).
pub const MAX_PARTITIONS: usize = 2000;

/// One topic as the answer describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Described {
    pub id: Uuid,
    pub internal: bool,
    /// In partition-index order.
    pub partitions: Vec<DescribeTopicPartitionsResponsePartition>,
}

pub fn describe_topic_partitions(
    state: &State,
    req: &DescribeTopicPartitionsRequest,
    conn: &super::Conn,
) -> DescribeTopicPartitionsResponse {
    let image = state.is_cluster().then(|| state.image.image());
    let describe = |name: &str| -> Result<Described, ResponseError> {
        match &image {
            Some(image) => image
                .topic_by_name(name)
                .map(|t| from_image(image, t))
                .ok_or(ResponseError::UnknownTopicOrPartition),
            None => state
                .topic(name)
                .map(|t| from_table(state.config.node_id, &t))
                .ok_or(ResponseError::UnknownTopicOrPartition),
        }
    };
    let names: Vec<String> = if req.topics.is_empty() {
        // All topics: the ones the principal may not DESCRIBE are left out, as Kafka does.
        let mut all: Vec<String> = match &image {
            Some(image) => image.topics().map(|t| t.name.clone()).collect(),
            None => state.topics().iter().map(|t| t.name.clone()).collect(),
        };
        all.retain(|n| conn.sees(state, Operation::Describe, Resource::Topic(n)));
        all
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    let listed = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    if let Err(reason) = check_cursor(&names, listed, cursor.as_ref()) {
        tracing::debug!(reason, "DescribeTopicPartitions refused");
        return refuse_all(&names, ResponseError::InvalidRequest);
    }
    let limit = usize::try_from(req.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, MAX_PARTITIONS);
    let entries: BTreeMap<String, Result<Described, ResponseError>> = names
        .into_iter()
        .filter(|n| cursor.as_ref().is_none_or(|(c, _)| n >= c))
        .map(|n| {
            let described = if conn.may(state, Operation::Describe, Resource::Topic(&n)) {
                describe(&n)
            } else {
                Err(ResponseError::TopicAuthorizationFailed)
            };
            (n, described)
        })
        .collect();
    let mut r = page(entries, cursor, limit);
    for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
        if let Some(name) = &t.name {
            t.topic_authorized_operations =
                conn.authorized_operations(state, Resource::Topic(name));
        }
    }
    r
}

/// Kafka's checks of the cursor: a partition index ≥ 0, and, when topics are named, the
/// cursor's topic among them.
fn check_cursor(
    names: &[String],
    listed: bool,
    cursor: Option<&(String, i32)>,
) -> Result<(), &'static str> {
    let Some((topic, partition)) = cursor else {
        return Ok(());
    };
    if *partition < 0 {
        return Err("the cursor's partition index is negative");
    }
    if !listed && !names.iter().any(|n| n == topic) {
        return Err("the cursor's topic is not among the topics asked for");
    }
    Ok(())
}

/// Every topic asked for, with `code`.
fn refuse_all(names: &[String], code: ResponseError) -> DescribeTopicPartitionsResponse {
    let mut r = DescribeTopicPartitionsResponse::default();
    r.topics = names
        .iter()
        .map(|n| {
            let mut t = DescribeTopicPartitionsResponseTopic::default();
            t.name = Some(TopicName(StrBytes::from_string(n.clone())));
            t.error_code = code.code();
            t
        })
        .collect();
    r
}

/// One page of `entries` (by name) from `cursor` (topics before its topic are skipped,
/// its topic starts at its partition), at most `limit` partitions: a topic that
/// does not fit whole ends the page with a cursor at its first partition left out; a page
/// that ends exactly at a topic's end with more topics after it points at the next one
/// (Kafka's rule: the next page may start with a topic that no longer exists). Topics with
/// an error count no partitions.
pub fn page(
    entries: BTreeMap<String, Result<Described, ResponseError>>,
    cursor: Option<(String, i32)>,
    limit: usize,
) -> DescribeTopicPartitionsResponse {
    let mut r = DescribeTopicPartitionsResponse::default();
    let mut remaining = limit;
    let first = cursor.as_ref().map(|(c, _)| c.clone());
    for (name, described) in entries {
        if first.as_ref().is_some_and(|c| name < *c) {
            continue;
        }
        if remaining == 0 {
            let mut next = Cursor::default();
            next.topic_name = TopicName(StrBytes::from_string(name));
            next.partition_index = 0;
            r.next_cursor = Some(next);
            break;
        }
        let mut t = DescribeTopicPartitionsResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        match described {
            Err(code) => t.error_code = code.code(),
            Ok(d) => {
                t.topic_id = d.id;
                t.is_internal = d.internal;
                let start = match &cursor {
                    Some((c, p)) if *c == name => *p,
                    _ => 0,
                };
                let mut rest = d
                    .partitions
                    .into_iter()
                    .filter(|p| p.partition_index >= start)
                    .peekable();
                while remaining > 0 {
                    let Some(p) = rest.next() else { break };
                    t.partitions.push(p);
                    remaining -= 1;
                }
                if let Some(left) = rest.peek() {
                    let mut next = Cursor::default();
                    next.topic_name = TopicName(StrBytes::from_string(name));
                    next.partition_index = left.partition_index;
                    r.next_cursor = Some(next);
                    r.topics.push(t);
                    return r;
                }
            }
        }
        r.topics.push(t);
    }
    r
}

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().copied().map(BrokerId).collect()
}

/// A topic of the cluster's image: leaders (-1 with LEADER_NOT_AVAILABLE without one),
/// epochs, replicas, ISR, ELR, last known ELR, and the replicas on fenced or unregistered
/// brokers as offline.
pub fn from_image(image: &MetadataImage, topic: &TopicImage) -> Described {
    let offline = |id: &i32| image.broker(*id).is_none_or(|b| b.fenced);
    Described {
        id: topic.id,
        internal: is_internal_topic(&topic.name),
        partitions: topic
            .partitions
            .iter()
            .map(|(index, reg)| {
                let mut p = DescribeTopicPartitionsResponsePartition::default();
                p.partition_index = *index;
                p.leader_id = BrokerId(reg.leader);
                p.leader_epoch = reg.leader_epoch;
                if reg.leader == NO_LEADER {
                    p.error_code = ResponseError::LeaderNotAvailable.code();
                }
                p.replica_nodes = ids(&reg.replicas);
                p.isr_nodes = ids(&reg.isr);
                p.eligible_leader_replicas = Some(ids(&reg.elr));
                p.last_known_elr = Some(ids(&reg.last_known_elr));
                p.offline_replicas = reg
                    .replicas
                    .iter()
                    .filter(|r| offline(r))
                    .copied()
                    .map(BrokerId)
                    .collect();
                p
            })
            .collect(),
    }
}

/// A topic of a single node: every partition led by this broker, its only replica.
fn from_table(node: i32, topic: &Topic) -> Described {
    let me = vec![BrokerId(node)];
    Described {
        id: topic.id,
        internal: is_internal_topic(&topic.name),
        partitions: (0..topic.partition_count())
            .map(|i| {
                let mut p = DescribeTopicPartitionsResponsePartition::default();
                p.partition_index = i;
                p.leader_id = BrokerId(node);
                p.leader_epoch = topic.partition(i).map_or(0, |part| part.leader_epoch());
                p.replica_nodes = me.clone();
                p.isr_nodes = me.clone();
                p.eligible_leader_replicas = Some(Vec::new());
                p.last_known_elr = Some(Vec::new());
                p
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "topic_partitions_tests.rs"]
mod tests;
