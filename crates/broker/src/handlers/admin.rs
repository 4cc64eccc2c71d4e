//! CreateTopics, DeleteTopics, CreatePartitions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use weir_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
use weir_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use weir_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use weir_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use weir_protocol::ResponseError;

use super::{msg, str};
use crate::errors::admin_code;
use crate::security::{Operation, Resource};
use crate::state::{AdminError, State};
use crate::topic_config::{self, TOPIC_KEYS};

pub async fn create_topics(
    state: &Arc<State>,
    req: CreateTopicsRequest,
    version: i16,
    conn: &super::Conn,
) -> CreateTopicsResponse {
    let mut r = CreateTopicsResponse::default();
    let denied = (
        ResponseError::TopicAuthorizationFailed,
        "Authorization failed.".to_string(),
    );
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    // Kafka fails every topic of a request that would create too many partitions in all.
    let requested: i64 = req
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => i64::from(state.config.num_partitions),
            (0, n) => i64::from(n.max(0)),
            (assigned, _) => i64::try_from(assigned).unwrap_or(i64::MAX),
        })
        .sum();
    let too_many = crate::state::check_partitions_per_request(requested).err();
    for t in req.topics {
        let mut res = CreatableTopicResult::default();
        res.name = t.name.clone();
        res.num_partitions = -1;
        res.replication_factor = -1;
        let name = t.name.0.to_string();
        let outcome = if !super::cluster::may_create_topic(state, conn, &name) {
            Err(denied.clone())
        } else if let Some(e) = &too_many {
            Err((admin_code(e), e.to_string()))
        } else if duplicates.contains(&name) {
            Err((
                ResponseError::InvalidRequest,
                format!("topic '{name}' appears more than once in the request"),
            ))
        } else {
            create_one(state, &name, &t, req.validate_only).await
        };
        match outcome {
            Ok((partitions, replication, configs, id)) => {
                res.num_partitions = partitions;
                res.replication_factor = replication;
                if version >= 5 {
                    res.configs = Some(describe_for_create(state, &configs));
                }
                if version >= 7 {
                    res.topic_id = id;
                }
            }
            Err((code, message)) => {
                tracing::info!(topic = %name, error = %message, "create topic refused");
                res.error_code = code.code();
                res.error_message = msg(message);
            }
        }
        r.topics.push(res);
    }
    r
}

type Created = (i32, i16, BTreeMap<String, String>, uuid::Uuid);

async fn create_one(
    state: &Arc<State>,
    name: &str,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<Created, (ResponseError, String)> {
    let fail = |e: AdminError| (admin_code(&e), e.to_string());
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        if let Some(v) = &c.value {
            configs.insert(c.name.to_string(), v.to_string());
        }
    }
    if state.is_cluster() {
        // The controller checks the request (replication factor against the live brokers,
        // the assignment, its config keys) and places the replicas.
        let assignment = (!t.assignments.is_empty()).then(|| {
            t.assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        topic_config::warn_deprecated(name, configs.keys());
        let created = state
            .cluster_create_topic(
                name,
                t.num_partitions,
                t.replication_factor,
                assignment,
                configs.clone(),
                validate_only,
            )
            .await
            .map_err(fail)?;
        let id = if validate_only {
            uuid::Uuid::nil()
        } else {
            created.topic_id
        };
        return Ok((
            created.num_partitions,
            created.replication_factor,
            configs,
            id,
        ));
    }
    let (mut partitions, mut replication) = (t.num_partitions, t.replication_factor);
    if !t.assignments.is_empty() {
        if partitions != -1 || replication != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "give either a replica assignment or partitions and replication factor, not both"
                    .into(),
            ));
        }
        let replicas: Vec<Vec<i32>> = t
            .assignments
            .iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect();
        check_replica_assignment(state.config.node_id, &replicas)
            .map_err(|m| (ResponseError::InvalidReplicaAssignment, m))?;
        partitions = i32::try_from(t.assignments.len()).unwrap_or(i32::MAX);
        replication = 1;
    }
    topic_config::warn_deprecated(name, configs.keys());
    if validate_only {
        let (p, r) = state
            .check_create(name, partitions, replication, &configs)
            .map_err(fail)?;
        return Ok((p, r, configs, uuid::Uuid::nil()));
    }
    let topic = state
        .create_topic(name, partitions, replication, configs)
        .await
        .map_err(fail)?;
    Ok((topic.partition_count(), 1, topic.configs(), topic.id))
}

fn describe_for_create(
    state: &State,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    TOPIC_KEYS
        .iter()
        .map(|k| {
            let (value, source, _) = super::configs::topic_effective(state, k, overrides);
            let mut c = CreatableTopicConfigs::default();
            c.name = str(k.name);
            c.value = Some(str(&value));
            c.config_source = source as i8;
            c.read_only = false;
            c
        })
        .collect()
}

pub async fn delete_topics(
    state: &Arc<State>,
    req: DeleteTopicsRequest,
    version: i16,
    conn: &super::Conn,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut r = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let mut res = DeletableTopicResult::default();
        res.topic_id = id;
        let resolved = match &name {
            Some(n) => Some(n.clone()),
            None => state.topic_by_id(id).map(|t| t.name.clone()),
        };
        match resolved {
            None => {
                res.error_code = ResponseError::UnknownTopicId.code();
                res.error_message = msg(format!("no topic has id {id}"));
            }
            Some(n) if !conn.may(state, Operation::Delete, Resource::Topic(&n)) => {
                res.name = Some(TopicName(str(&n)));
                res.error_code = ResponseError::TopicAuthorizationFailed.code();
                res.error_message = msg("Authorization failed.");
            }
            Some(n) => {
                res.name = Some(TopicName(str(&n)));
                match state.delete_topic(&n).await {
                    Ok(deleted_id) => {
                        if version >= 6 {
                            res.topic_id = deleted_id;
                        }
                    }
                    Err(e) => {
                        res.error_code = admin_code(&e).code();
                        res.error_message = msg(&e);
                    }
                }
            }
        }
        r.responses.push(res);
    }
    r
}

pub async fn create_partitions(
    state: &Arc<State>,
    req: CreatePartitionsRequest,
    conn: &super::Conn,
) -> CreatePartitionsResponse {
    let mut r = CreatePartitionsResponse::default();
    for t in req.topics {
        let mut res = CreatePartitionsTopicResult::default();
        res.name = t.name.clone();
        if !conn.may(state, Operation::Alter, Resource::Topic(&t.name)) {
            res.error_code = ResponseError::TopicAuthorizationFailed.code();
            res.error_message = msg("Authorization failed.");
            r.results.push(res);
            continue;
        }
        // An empty list is taken as no assignment: a client that has none may send [] for null.
        let replicas: Option<Vec<Vec<i32>>> =
            t.assignments.as_ref().filter(|a| !a.is_empty()).map(|a| {
                a.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
        if state.is_cluster() {
            let outcome = state
                .cluster_create_partitions(&t.name.0, t.count, replicas, req.validate_only)
                .await;
            if let Err(e) = outcome {
                tracing::info!(topic = %t.name.0, error = %e, "create partitions refused");
                res.error_code = admin_code(&e).code();
                res.error_message = msg(&e);
            }
            r.results.push(res);
            continue;
        }
        let checked = match &replicas {
            Some(r) => check_replica_assignment(state.config.node_id, r),
            None => Ok(()),
        };
        let outcome = match checked {
            Err(m) => Err((ResponseError::InvalidReplicaAssignment, m)),
            Ok(()) => state
                .create_partitions(
                    &t.name.0,
                    t.count,
                    replicas.as_ref().map(Vec::len),
                    req.validate_only,
                )
                .await
                .map_err(|e| (admin_code(&e), e.to_string())),
        };
        if let Err((code, message)) = outcome {
            tracing::info!(topic = %t.name.0, error = %message, "create partitions refused");
            res.error_code = code.code();
            res.error_message = msg(message);
        }
        r.results.push(res);
    }
    r
}

/// Checks a manual replica assignment (one broker list per partition) the way Kafka does,
/// for a cluster whose only broker is `node` and whose partitions have one replica each.
fn check_replica_assignment(node: i32, partitions: &[Vec<i32>]) -> Result<(), String> {
    for (i, replicas) in partitions.iter().enumerate() {
        if replicas.is_empty() {
            return Err(format!(
                "the replica assignment of partition {i} is an empty broker list"
            ));
        }
        if let Some(b) = replicas.iter().find(|b| **b != node) {
            return Err(format!(
                "the replica assignment of partition {i} names broker {b}, but the only broker is {node}"
            ));
        }
        if replicas.len() != 1 {
            return Err(format!(
                "the replica assignment of partition {i} lists broker {node} {} times; \
                 each partition has one replica on a single node",
                replicas.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    use weir_protocol::kafka_protocol::messages::BrokerId;

    fn grow(topic: &str, count: i32, assignment: Option<Vec<Vec<i32>>>) -> CreatePartitionsRequest {
        let mut t = CreatePartitionsTopic::default();
        t.name = TopicName(str(topic));
        t.count = count;
        t.assignments = assignment.map(|a| {
            a.into_iter()
                .map(|ids| {
                    let mut a = CreatePartitionsAssignment::default();
                    a.broker_ids = ids.into_iter().map(BrokerId).collect();
                    a
                })
                .collect()
        });
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_partitions_assignment_must_list_exactly_the_new_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = super::super::testutil::state(dir.path(), &[("node.id", "4")]);
        state
            .create_topic("t", 2, 1, BTreeMap::new())
            .await
            .expect("create");
        let conn = super::super::Conn::plaintext(&state, "127.0.0.1:1".parse().expect("addr"));
        let code = |r: CreatePartitionsResponse| {
            let res = r.results.into_iter().next().expect("one result");
            (res.error_code, res.error_message.map(|m| m.to_string()))
        };
        // 2 → 5 adds three partitions: one, two or four assignments are refused.
        for listed in [1, 2, 4] {
            let (err, m) = code(
                create_partitions(&state, grow("t", 5, Some(vec![vec![4]; listed])), &conn).await,
            );
            assert_eq!(
                err,
                ResponseError::InvalidReplicaAssignment.code(),
                "{listed}"
            );
            let m = m.expect("message");
            assert!(
                m.contains("adds 3") && m.contains(&format!("lists {listed}")),
                "{m}"
            );
            assert_eq!(state.topic("t").expect("t").partition_count(), 2);
        }
        let (err, m) =
            code(create_partitions(&state, grow("t", 3, Some(vec![vec![1]])), &conn).await);
        assert_eq!(err, ResponseError::InvalidReplicaAssignment.code());
        assert!(m.expect("message").contains("broker 1"));
        // A shrink is INVALID_PARTITIONS whatever the assignment says.
        let (err, _) =
            code(create_partitions(&state, grow("t", 1, Some(vec![vec![4]])), &conn).await);
        assert_eq!(err, ResponseError::InvalidPartitions.code());
        let (err, m) =
            code(create_partitions(&state, grow("t", 5, Some(vec![vec![4]; 3])), &conn).await);
        assert_eq!(err, 0, "{m:?}");
        assert_eq!(state.topic("t").expect("t").partition_count(), 5);
        let (err, m) = code(create_partitions(&state, grow("t", 6, None), &conn).await);
        assert_eq!(err, 0, "{m:?}");
        let (err, m) = code(create_partitions(&state, grow("t", 7, Some(vec![])), &conn).await);
        assert_eq!(err, 0, "an empty assignment is none: {m:?}");
    }

    #[test]
    fn replica_assignments_name_only_this_broker_once() {
        assert_eq!(check_replica_assignment(3, &[vec![3], vec![3]]), Ok(()));
        assert_eq!(check_replica_assignment(3, &[]), Ok(()));
        let e = check_replica_assignment(3, &[vec![3], vec![7]]).expect_err("unknown broker");
        assert!(e.contains("partition 1") && e.contains("broker 7"), "{e}");
        let e = check_replica_assignment(3, &[vec![]]).expect_err("empty");
        assert!(e.contains("empty"), "{e}");
        let e = check_replica_assignment(3, &[vec![3, 3]]).expect_err("twice");
        assert!(e.contains("2 times"), "{e}");
    }
}
