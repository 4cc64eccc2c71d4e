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
use crate::state::{AdminError, State};
use crate::topic_config::{self, TOPIC_KEYS};

pub async fn create_topics(
    state: &Arc<State>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut r = CreateTopicsResponse::default();
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
        let outcome = if let Some(e) = &too_many {
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
    let (mut partitions, mut replication) = (t.num_partitions, t.replication_factor);
    if !t.assignments.is_empty() {
        if partitions != -1 || replication != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "give either a replica assignment or partitions and replication factor, not both"
                    .into(),
            ));
        }
        let node = state.config.node_id;
        if t.assignments
            .iter()
            .any(|a| a.broker_ids.len() != 1 || a.broker_ids.first().map(|b| b.0) != Some(node))
        {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("every partition must be assigned to broker {node} alone"),
            ));
        }
        partitions = i32::try_from(t.assignments.len()).unwrap_or(i32::MAX);
        replication = 1;
    }
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
            let (value, source) = topic_config::effective(k, overrides, &state.config);
            let mut c = CreatableTopicConfigs::default();
            c.name = str(k.name);
            c.value = Some(str(&value));
            c.config_source = source as i8;
            c
        })
        .collect()
}

pub async fn delete_topics(
    state: &Arc<State>,
    req: DeleteTopicsRequest,
    version: i16,
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
) -> CreatePartitionsResponse {
    let mut r = CreatePartitionsResponse::default();
    for t in req.topics {
        let mut res = CreatePartitionsTopicResult::default();
        res.name = t.name.clone();
        let node = state.config.node_id;
        let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
            a.iter()
                .any(|a| a.broker_ids.len() != 1 || a.broker_ids.first().map(|b| b.0) != Some(node))
        });
        if bad_assignment {
            res.error_code = ResponseError::InvalidReplicaAssignment.code();
            res.error_message = msg(format!(
                "every partition must be assigned to broker {node} alone"
            ));
        } else if let Err(e) = state
            .create_partitions(&t.name.0, t.count, req.validate_only)
            .await
        {
            res.error_code = admin_code(&e).code();
            res.error_message = msg(&e);
        }
        r.results.push(res);
    }
    r
}
