//! ElectLeaders (KIP-460), AlterPartitionReassignments and ListPartitionReassignments
//! (KIP-455): thin adapters over the quorum (`cluster/partition_admin.rs`) in cluster mode.
//! A single node has one replica per partition, so there is never an election to hold nor
//! a replica to move. ALTER (elect, reassign) or DESCRIBE (list) on the cluster, as Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_metadata::{ElectionType, MetadataError, Reassignment};
use weir_protocol::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use weir_protocol::kafka_protocol::messages::elect_leaders_response::{
    PartitionResult, ReplicaElectionResult,
};
use weir_protocol::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use weir_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use weir_protocol::ResponseError;

use super::{msg, str, Conn};
use crate::cluster::PartitionResults;
use crate::errors::admin_code;
use crate::security::{Operation, Resource};
use crate::state::State;

/// One partition's outcome: Kafka's code and message (`None` for success).
type Outcome = (i16, Option<String>);

type Outcomes = Vec<(String, i32, Outcome)>;

fn outcomes(results: PartitionResults) -> Outcomes {
    results
        .into_iter()
        .map(|(t, p, r)| {
            let o = match r {
                Ok(()) => (0, None),
                Err(e) => (e.code(), Some(e.to_string())),
            };
            (t, p, o)
        })
        .collect()
}

/// Every requested partition with the same error (a refusal of the whole request).
fn all_failed(requested: &[(String, i32)], code: ResponseError, message: &str) -> Outcomes {
    requested
        .iter()
        .map(|(t, p)| (t.clone(), *p, (code.code(), Some(message.to_string()))))
        .collect()
}

/// Groups `(topic, partition, outcome)` by topic, in first-seen order.
fn by_topic(
    results: impl IntoIterator<Item = (String, i32, Outcome)>,
) -> Vec<(String, Vec<(i32, Outcome)>)> {
    let mut order: Vec<String> = Vec::new();
    let mut grouped: BTreeMap<String, Vec<(i32, Outcome)>> = BTreeMap::new();
    for (t, p, o) in results {
        if !grouped.contains_key(&t) {
            order.push(t.clone());
        }
        grouped.entry(t).or_default().push((p, o));
    }
    order
        .into_iter()
        .map(|t| {
            let parts = grouped.remove(&t).unwrap_or_default();
            (t, parts)
        })
        .collect()
}

pub async fn elect_leaders(
    state: &Arc<State>,
    req: ElectLeadersRequest,
    version: i16,
    conn: &Conn,
) -> ElectLeadersResponse {
    let mut r = ElectLeadersResponse::default();
    let requested: Option<Vec<(String, i32)>> = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    let denied = !conn.may(state, Operation::Alter, Resource::Cluster);
    // v0 has no election type: preferred.
    let election = match (version, req.election_type) {
        (0, _) | (_, 0) => Ok(ElectionType::Preferred),
        (_, 1) => Ok(ElectionType::Unclean),
        (_, other) => Err(format!("unknown election type {other}")),
    };
    let results: Outcomes = if denied {
        if version >= 1 {
            r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        all_failed(
            requested.as_deref().unwrap_or_default(),
            ResponseError::ClusterAuthorizationFailed,
            "Authorization failed.",
        )
    } else if let Err(m) = &election {
        all_failed(
            requested.as_deref().unwrap_or_default(),
            ResponseError::InvalidRequest,
            m,
        )
    } else if !state.is_cluster() {
        outcomes(single_node_elect(state, requested.as_deref()))
    } else {
        let election = election.unwrap_or(ElectionType::Preferred);
        match state
            .cluster_elect_leaders(election, requested.clone())
            .await
        {
            Ok(results) if requested.is_none() => outcomes(
                results
                    .into_iter()
                    // Kafka lists, for "all partitions", only the ones it tried to move.
                    .filter(|(_, _, r)| !matches!(r, Err(MetadataError::ElectionNotNeeded)))
                    .collect(),
            ),
            Ok(results) => outcomes(results),
            Err(e) => {
                tracing::info!(error = %e, "ElectLeaders refused");
                if version >= 1 {
                    r.error_code = admin_code(&e).code();
                }
                all_failed(
                    requested.as_deref().unwrap_or_default(),
                    admin_code(&e),
                    &e.to_string(),
                )
            }
        }
    };
    r.replica_election_results = by_topic(results)
        .into_iter()
        .map(|(topic, parts)| {
            let mut t = ReplicaElectionResult::default();
            t.topic = TopicName(str(&topic));
            t.partition_result = parts
                .into_iter()
                .map(|(p, (code, message))| {
                    let mut out = PartitionResult::default();
                    out.partition_id = p;
                    out.error_code = code;
                    out.error_message = message.map(|m| str(&m));
                    out
                })
                .collect();
            t
        })
        .collect();
    r
}

/// One replica per partition: its leader is always the preferred one.
fn single_node_elect(state: &State, requested: Option<&[(String, i32)]>) -> PartitionResults {
    let Some(requested) = requested else {
        return Vec::new();
    };
    requested
        .iter()
        .map(|(t, p)| {
            let known = state
                .topic(t)
                .is_some_and(|topic| (0..topic.partition_count()).contains(p));
            let result = if known {
                Err(MetadataError::ElectionNotNeeded)
            } else {
                Err(MetadataError::UnknownTopicOrPartition(format!("{t}-{p}")))
            };
            (t.clone(), *p, result)
        })
        .collect()
}

pub async fn alter_partition_reassignments(
    state: &Arc<State>,
    req: AlterPartitionReassignmentsRequest,
    conn: &Conn,
) -> AlterPartitionReassignmentsResponse {
    let mut r = AlterPartitionReassignmentsResponse::default();
    // v1 (KIP-860) echoes whether a replication factor change was allowed.
    r.allow_replication_factor_change = req.allow_replication_factor_change;
    let moves: Vec<Reassignment> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Reassignment {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                // v0 decodes the field's default, true.
                allow_replication_factor_change: req.allow_replication_factor_change,
            })
        })
        .collect();
    let requested: Vec<(String, i32)> = moves
        .iter()
        .map(|m| (m.topic.clone(), m.partition))
        .collect();
    let results = if !conn.may(state, Operation::Alter, Resource::Cluster) {
        r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        r.error_message = msg("Authorization failed.");
        all_failed(
            &requested,
            ResponseError::ClusterAuthorizationFailed,
            "Authorization failed.",
        )
    } else if !state.is_cluster() {
        outcomes(single_node_reassign(state, &moves))
    } else {
        match state.cluster_reassign(moves).await {
            Ok(results) => outcomes(results),
            Err(e) => {
                tracing::info!(error = %e, "AlterPartitionReassignments refused");
                r.error_code = admin_code(&e).code();
                r.error_message = msg(&e);
                all_failed(&requested, admin_code(&e), &e.to_string())
            }
        }
    };
    r.responses = by_topic(results)
        .into_iter()
        .map(|(topic, parts)| {
            let mut t = ReassignableTopicResponse::default();
            t.name = TopicName(str(&topic));
            t.partitions = parts
                .into_iter()
                .map(|(p, (code, message))| {
                    let mut out = ReassignablePartitionResponse::default();
                    out.partition_index = p;
                    out.error_code = code;
                    out.error_message = message.map(|m| str(&m));
                    out
                })
                .collect();
            t
        })
        .collect();
    r
}

/// A single node can only "move" a partition onto itself.
fn single_node_reassign(state: &State, moves: &[Reassignment]) -> PartitionResults {
    let node = state.config.node_id;
    moves
        .iter()
        .map(|m| {
            let known = state
                .topic(&m.topic)
                .is_some_and(|topic| (0..topic.partition_count()).contains(&m.partition));
            let name = format!("{}-{}", m.topic, m.partition);
            let result = match &m.replicas {
                _ if !known => Err(MetadataError::UnknownTopicOrPartition(name)),
                None => Err(MetadataError::NoReassignmentInProgress(name)),
                Some(r) if r.as_slice() == [node] => Ok(()),
                Some(_) => Err(MetadataError::InvalidReplicaAssignment(format!(
                    "a single node has one replica per partition, on broker {node}"
                ))),
            };
            (m.topic.clone(), m.partition, result)
        })
        .collect()
}

pub fn list_partition_reassignments(
    state: &State,
    req: &ListPartitionReassignmentsRequest,
    conn: &Conn,
) -> ListPartitionReassignmentsResponse {
    let mut r = ListPartitionReassignmentsResponse::default();
    if !conn.may(state, Operation::Describe, Resource::Cluster) {
        r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        r.error_message = msg("Authorization failed.");
        return r;
    }
    if !state.is_cluster() {
        return r;
    }
    let wanted = |topic: &str, p: i32| match &req.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.name.0.as_str() == topic && t.partition_indexes.contains(&p)),
    };
    let image = state.image.image();
    for topic in image.topics() {
        let partitions: Vec<OngoingPartitionReassignment> = topic
            .partitions
            .iter()
            .filter(|(p, reg)| {
                !(reg.adding.is_empty() && reg.removing.is_empty()) && wanted(&topic.name, **p)
            })
            .map(|(p, reg)| {
                let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
                let mut out = OngoingPartitionReassignment::default();
                out.partition_index = *p;
                out.replicas = ids(&reg.replicas);
                out.adding_replicas = ids(&reg.adding);
                out.removing_replicas = ids(&reg.removing);
                out
            })
            .collect();
        if !partitions.is_empty() {
            let mut t = OngoingTopicReassignment::default();
            t.name = TopicName(str(&topic.name));
            t.partitions = partitions;
            r.topics.push(t);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use weir_protocol::kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use weir_protocol::kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use weir_protocol::kafka_protocol::messages::*;
    use weir_protocol::ApiKey;

    use super::super::testkit::{round_trip, state};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_single_node_has_nothing_to_elect_or_move_but_says_so_per_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        state
            .create_topic("t", 2, 1, Default::default())
            .await
            .expect("create");
        for v in 0..=2 {
            let mut tp = TopicPartitions::default();
            tp.topic = TopicName(str("t"));
            tp.partitions = vec![1, 7];
            let mut req = ElectLeadersRequest::default();
            req.topic_partitions = Some(vec![tp]);
            let r: ElectLeadersResponse = round_trip(&state, ApiKey::ElectLeaders, v, &req).await;
            let codes: Vec<i16> = r.replica_election_results[0]
                .partition_result
                .iter()
                .map(|p| p.error_code)
                .collect();
            assert_eq!(codes, vec![84, 3], "v{v}"); // ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION
        }
        let mut req = AlterPartitionReassignmentsRequest::default();
        let mut t = ReassignableTopic::default();
        t.name = TopicName(str("t"));
        t.partitions = [Some(vec![0]), Some(vec![0, 1]), None]
            .into_iter()
            .enumerate()
            .map(|(i, replicas)| {
                let mut p = ReassignablePartition::default();
                p.partition_index = i32::try_from(i % 2).expect("small");
                p.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
                p
            })
            .collect();
        req.topics = vec![t];
        let r: AlterPartitionReassignmentsResponse =
            round_trip(&state, ApiKey::AlterPartitionReassignments, 0, &req).await;
        let codes: Vec<i16> = r.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        // Onto itself: fine; onto another broker: INVALID_REPLICA_ASSIGNMENT; a cancel with
        // nothing moving: NO_REASSIGNMENT_IN_PROGRESS.
        assert_eq!(codes, vec![0, 39, 85]);
        let r: ListPartitionReassignmentsResponse = round_trip(
            &state,
            ApiKey::ListPartitionReassignments,
            0,
            &ListPartitionReassignmentsRequest::default(),
        )
        .await;
        assert_eq!((r.error_code, r.topics.len()), (0, 0));
    }
}
