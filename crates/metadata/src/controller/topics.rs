//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs and
//! ElectLeaders, with Kafka's validation and error codes.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::partitions::{elect_leader, MIN_ISR_KEY, UNCLEAN_KEY};
use super::placement::place;
use super::requests::{
    AlterConfigsResource, CreatableTopic, CreatePartitionsTopic, CreatedTopic, ElectionType,
};
use super::{ControllerConfig, Pending};
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::{
    BrokerId, ConfigResource, MetadataRecord, PartitionChange, PartitionRegistration,
};

const MAX_TOPIC_NAME: usize = 249;

/// Kafka's topic name rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let invalid = |why: &str| Err(MetadataError::InvalidTopic(format!("{name:?}: {why}")));
    if name.is_empty() || name == "." || name == ".." {
        return invalid("not a legal name");
    }
    if name.len() > MAX_TOPIC_NAME {
        return invalid("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("may contain only ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// Metric names fold '.' into '_', so two topics differing only there would collide.
fn collides(image: &MetadataImage, name: &str) -> Option<String> {
    let folded = name.replace('.', "_");
    image
        .topics()
        .find(|t| t.name != name && t.name.replace('.', "_") == folded)
        .map(|t| t.name.clone())
}

/// Values of the keys the controller itself reads; other keys are the broker's to check.
fn validate_config(key: &str, value: Option<&str>) -> Result<(), MetadataError> {
    let Some(value) = value else {
        return Ok(());
    };
    let bad = || Err(MetadataError::InvalidConfig(format!("{key}={value}")));
    match key {
        MIN_ISR_KEY => match value.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(()),
            _ => bad(),
        },
        UNCLEAN_KEY => match value.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad(),
        },
        _ => Ok(()),
    }
}

fn validate_assignment(
    image: &MetadataImage,
    assignment: &[Vec<BrokerId>],
    rf: Option<usize>,
) -> Result<(), MetadataError> {
    let bad = |m: String| Err(MetadataError::InvalidReplicaAssignment(m));
    let rf = rf.or_else(|| assignment.first().map(Vec::len));
    for (p, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() || Some(replicas.len()) != rf {
            return bad(format!("partition {p} has {} replicas", replicas.len()));
        }
        if replicas.iter().collect::<BTreeSet<_>>().len() != replicas.len() {
            return bad(format!("partition {p} lists a broker twice"));
        }
        if let Some(b) = replicas.iter().find(|b| !image.broker_usable(**b)) {
            return bad(format!("broker {b} is not registered, or fenced"));
        }
    }
    Ok(())
}

pub(crate) fn create_topics(
    pending: &mut Pending,
    config: &ControllerConfig,
    topics: &[CreatableTopic],
    validate_only: bool,
) -> Vec<(String, Result<CreatedTopic, MetadataError>)> {
    topics
        .iter()
        .map(|t| {
            let duplicate = topics.iter().filter(|o| o.name == t.name).count() > 1;
            let result = if duplicate {
                Err(MetadataError::InvalidRequest(format!(
                    "topic {} appears more than once",
                    t.name
                )))
            } else {
                create_topic(pending, config, t, validate_only)
            };
            (t.name.clone(), result)
        })
        .collect()
}

fn create_topic(
    pending: &mut Pending,
    config: &ControllerConfig,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<CreatedTopic, MetadataError> {
    validate_topic_name(&t.name)?;
    let image = &pending.image;
    if image.topic_by_name(&t.name).is_some() {
        return Err(MetadataError::TopicAlreadyExists(t.name.clone()));
    }
    if let Some(other) = collides(image, &t.name) {
        return Err(MetadataError::InvalidTopic(format!(
            "{} collides with existing topic {other}",
            t.name
        )));
    }
    for (k, v) in &t.configs {
        validate_config(k, Some(v))?;
    }
    let assignment = match &t.assignment {
        Some(assignment) => {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                return Err(MetadataError::InvalidRequest(
                    "an explicit assignment needs partitions and replication factor -1".into(),
                ));
            }
            if assignment.is_empty() {
                return Err(MetadataError::InvalidReplicaAssignment(
                    "no partitions".into(),
                ));
            }
            validate_assignment(image, assignment, None)?;
            assignment.clone()
        }
        None => {
            let partitions = match t.num_partitions {
                -1 => config.default_num_partitions,
                n if n > 0 => n,
                n => return Err(MetadataError::InvalidPartitions(format!("{n} partitions"))),
            };
            let rf = match t.replication_factor {
                -1 => config.default_replication_factor,
                n if n > 0 => n,
                n => {
                    return Err(MetadataError::InvalidReplicationFactor(format!(
                        "replication factor {n}"
                    )))
                }
            };
            // Rotating the first leader by the number of existing partitions spreads the
            // leaders of many small topics over the brokers.
            let start = image.partitions().count();
            place(image, 0, partitions, rf, start)?
        }
    };
    let topic_id = Uuid::new_v4();
    let created = CreatedTopic {
        topic_id,
        num_partitions: i32::try_from(assignment.len()).unwrap_or(i32::MAX),
        replication_factor: assignment
            .first()
            .map_or(0, |r| i16::try_from(r.len()).unwrap_or(i16::MAX)),
    };
    if validate_only {
        return Ok(created);
    }
    pending.push(MetadataRecord::Topic {
        name: t.name.clone(),
        topic_id,
    });
    for (p, replicas) in assignment.into_iter().enumerate() {
        pending.push(MetadataRecord::Partition {
            topic_id,
            partition: i32::try_from(p).unwrap_or(i32::MAX),
            registration: PartitionRegistration::new(replicas),
        });
    }
    for (k, v) in &t.configs {
        pending.push(MetadataRecord::Config {
            resource: ConfigResource::Topic(t.name.clone()),
            name: k.clone(),
            value: Some(v.clone()),
        });
    }
    Ok(created)
}

pub(crate) fn delete_topics(
    pending: &mut Pending,
    names: &[String],
) -> Vec<(String, Result<Uuid, MetadataError>)> {
    names
        .iter()
        .map(|name| {
            let result = match pending.image.topic_by_name(name) {
                Some(t) => {
                    let topic_id = t.id;
                    pending.push(MetadataRecord::RemoveTopic { topic_id });
                    Ok(topic_id)
                }
                None => Err(MetadataError::UnknownTopicOrPartition(name.clone())),
            };
            (name.clone(), result)
        })
        .collect()
}

pub(crate) fn create_partitions(
    pending: &mut Pending,
    topics: &[CreatePartitionsTopic],
    validate_only: bool,
) -> Vec<(String, Result<(), MetadataError>)> {
    topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                create_partitions_one(pending, t, validate_only),
            )
        })
        .collect()
}

fn create_partitions_one(
    pending: &mut Pending,
    t: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), MetadataError> {
    let image = &pending.image;
    let topic = image
        .topic_by_name(&t.name)
        .ok_or_else(|| MetadataError::UnknownTopicOrPartition(t.name.clone()))?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if t.count <= current {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic {} has {current} partitions, cannot go to {}",
            t.name, t.count
        )));
    }
    let added = t.count - current;
    let rf = topic
        .partitions
        .values()
        .next()
        .map_or(1, |r| r.replicas.len());
    let assignment = match &t.assignment {
        Some(a) => {
            if i32::try_from(a.len()).ok() != Some(added) {
                return Err(MetadataError::InvalidReplicaAssignment(format!(
                    "{} assignments for {added} new partitions",
                    a.len()
                )));
            }
            validate_assignment(image, a, Some(rf))?;
            a.clone()
        }
        None => {
            let rf = i16::try_from(rf).unwrap_or(i16::MAX);
            place(image, current, added, rf, image.partitions().count())?
        }
    };
    if validate_only {
        return Ok(());
    }
    let topic_id = topic.id;
    for (i, replicas) in (current..).zip(assignment) {
        pending.push(MetadataRecord::Partition {
            topic_id,
            partition: i,
            registration: PartitionRegistration::new(replicas),
        });
    }
    Ok(())
}

pub(crate) fn alter_configs(
    pending: &mut Pending,
    resources: &[AlterConfigsResource],
    validate_only: bool,
) -> Vec<(ConfigResource, Result<(), MetadataError>)> {
    resources
        .iter()
        .map(|r| {
            let result = alter_config(pending, r, validate_only);
            (r.resource.clone(), result)
        })
        .collect()
}

fn alter_config(
    pending: &mut Pending,
    r: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), MetadataError> {
    if let ConfigResource::Topic(name) = &r.resource {
        if pending.image.topic_by_name(name).is_none() {
            return Err(MetadataError::UnknownTopicOrPartition(name.clone()));
        }
    }
    for (k, v) in &r.ops {
        validate_config(k, v.as_deref())?;
    }
    if validate_only {
        return Ok(());
    }
    for (k, v) in &r.ops {
        pending.push(MetadataRecord::Config {
            resource: r.resource.clone(),
            name: k.clone(),
            value: v.clone(),
        });
    }
    if let ConfigResource::Topic(name) = &r.resource {
        if r.ops.iter().any(|(k, _)| k == MIN_ISR_KEY) {
            clear_elrs(pending, name);
        }
    }
    Ok(())
}

/// KIP-966: a topic's `min.insync.replicas` changed, so replicas that left its ISR under the
/// old value no longer provably hold every committed record (a lower value let the high
/// watermark move without them). Their ELRs are cleared; the last known ELR stays.
fn clear_elrs(pending: &mut Pending, name: &str) {
    let Some(topic) = pending.image.topic_by_name(name).cloned() else {
        return;
    };
    for (p, reg) in &topic.partitions {
        if !reg.elr.is_empty() {
            pending.push(MetadataRecord::PartitionChange(PartitionChange {
                topic_id: topic.id,
                partition: *p,
                elr: Some(Vec::new()),
                ..PartitionChange::default()
            }));
        }
    }
}

pub(crate) fn elect_leaders(
    pending: &mut Pending,
    election: ElectionType,
    partitions: Option<Vec<(String, i32)>>,
) -> Vec<(String, i32, Result<(), MetadataError>)> {
    let partitions = partitions.unwrap_or_else(|| {
        pending
            .image
            .topics()
            .flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p)))
            .collect()
    });
    partitions
        .into_iter()
        .map(|(name, p)| {
            let result = match pending.image.topic_by_name(&name).map(|t| t.id) {
                Some(id) => elect_leader(pending, id, p, election),
                None => Err(MetadataError::UnknownTopicOrPartition(format!(
                    "{name}-{p}"
                ))),
            };
            (name, p, result)
        })
        .collect()
}
