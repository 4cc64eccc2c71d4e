//! Committed offsets of consumer groups: OffsetCommit, OffsetFetch and OffsetDelete. The
//! wire structs are translated to `weir-coordinator` types and back; the group coordinator
//! decides, `crate::groups` persists (as for the membership APIs in `groups.rs`).

use std::sync::Arc;

use weir_coordinator::{CommitRequest, CommittedOffset, ErrorCode, TopicPartition};
use weir_protocol::kafka_protocol::messages::{
    offset_commit_response, offset_delete_response, offset_fetch_response, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;

use super::groups::opt_string;
use super::Conn;
use crate::security::{Operation, Resource};
use crate::state::State;

pub async fn offset_commit(
    state: &Arc<State>,
    req: OffsetCommitRequest,
    version: i16,
    conn: &Conn,
) -> OffsetCommitResponse {
    let mut offsets = Vec::new();
    // Partitions the topic does not have never reach the coordinator. In cluster mode the
    // group's coordinator commits for partitions other brokers host. Kafka: READ on the
    // group, then READ on each topic.
    let group_ok = conn.may(state, Operation::Read, Resource::Group(&req.group_id));
    let mut refused = Vec::new();
    for t in &req.topics {
        let topic_ok = group_ok && conn.may(state, Operation::Read, Resource::Topic(&t.name));
        let topic = state.topic(&t.name.0);
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
            if !group_ok {
                refused.push((tp, ResponseError::GroupAuthorizationFailed));
                continue;
            }
            if !topic_ok {
                refused.push((tp, ResponseError::TopicAuthorizationFailed));
                continue;
            }
            if !topic
                .as_ref()
                .is_some_and(|t| t.has_partition(p.partition_index))
            {
                refused.push((tp, ResponseError::UnknownTopicOrPartition));
                continue;
            }
            offsets.push((
                tp,
                CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: (version >= 6 && p.committed_leader_epoch >= 0)
                        .then_some(p.committed_leader_epoch),
                    metadata: opt_string(&p.committed_metadata),
                    commit_timestamp_ms: 0,
                },
            ));
        }
    }
    let codes = if offsets.is_empty() {
        Vec::new()
    } else {
        state
            .groups
            .commit(CommitRequest {
                group_id: req.group_id.0.to_string(),
                generation_id: req.generation_id_or_member_epoch,
                member_id: req.member_id.to_string(),
                group_instance_id: opt_string(&req.group_instance_id),
                offsets,
            })
            .await
    };
    let code_of = |topic: &str, partition: i32| {
        if let Some((_, e)) = refused
            .iter()
            .find(|(tp, _)| tp.topic == topic && tp.partition == partition)
        {
            return e.code();
        }
        code_for(&codes, topic, partition)
    };
    let mut r = OffsetCommitResponse::default();
    r.topics = req
        .topics
        .iter()
        .map(|t| {
            let mut out = offset_commit_response::OffsetCommitResponseTopic::default();
            out.name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut o = offset_commit_response::OffsetCommitResponsePartition::default();
                    o.partition_index = p.partition_index;
                    o.error_code = code_of(&t.name.0, p.partition_index);
                    o
                })
                .collect();
            out
        })
        .collect();
    r
}

/// The coordinator's answer for one partition of a commit (it answers every partition it
/// was given, so a missing one is a bug: UNKNOWN_SERVER_ERROR).
pub(super) fn code_for(codes: &[(TopicPartition, ErrorCode)], topic: &str, partition: i32) -> i16 {
    codes
        .iter()
        .find(|(tp, _)| tp.topic == topic && tp.partition == partition)
        .map_or(ResponseError::UnknownServerError.code(), |(_, c)| c.0)
}

type Fetched = Vec<(TopicPartition, Option<CommittedOffset>)>;
/// One topic's committed offsets: partition → commit.
type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);

/// A group's committed offsets as `conn` may see them: DESCRIBE on the group, and when all
/// topics are asked for, only those it may DESCRIBE (a named one it may not see answers
/// TOPIC_AUTHORIZATION_FAILED, see [`topic_hidden`]).
async fn fetch_group(
    state: &State,
    conn: &Conn,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, ErrorCode> {
    if !conn.may(state, Operation::Describe, Resource::Group(group)) {
        return Err(ErrorCode(ResponseError::GroupAuthorizationFailed.code()));
    }
    let all = topics.is_none();
    let mut fetched = fetch_group_unchecked(state, group, topics).await?;
    if all {
        fetched.retain(|(tp, _)| !topic_hidden(state, conn, &tp.topic));
    }
    Ok(fetched)
}

fn topic_hidden(state: &State, conn: &Conn, topic: &str) -> bool {
    !conn.sees(state, Operation::Describe, Resource::Topic(topic))
}

async fn fetch_group_unchecked(
    state: &State,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, ErrorCode> {
    let wanted = topics.map(|ts| {
        ts.into_iter()
            .flat_map(|(t, ps)| {
                ps.into_iter()
                    .map(move |p| TopicPartition::new(t.clone(), p))
            })
            .collect()
    });
    state.groups.fetch_offsets(group, wanted).await
}

/// With `require_stable` (OffsetFetch v7+, sent by read_committed consumers), partitions
/// whose transactional commits are undecided answer UNSTABLE_OFFSET_COMMIT and the client
/// asks again, so it never resumes from an offset that may still be rolled back.
fn unstable(
    state: &State,
    group: &str,
    require_stable: bool,
) -> std::collections::BTreeSet<TopicPartition> {
    if require_stable {
        state.groups.unstable_partitions(group)
    } else {
        Default::default()
    }
}

/// Groups fetched offsets by topic, in first-seen order.
fn by_topic(fetched: Fetched) -> Vec<TopicOffsets> {
    let mut out: Vec<TopicOffsets> = Vec::new();
    for (tp, c) in fetched {
        match out.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, ps)) => ps.push((tp.partition, c)),
            None => out.push((tp.topic, vec![(tp.partition, c)])),
        }
    }
    out
}

pub async fn offset_fetch(
    state: &State,
    req: OffsetFetchRequest,
    version: i16,
    conn: &Conn,
) -> OffsetFetchResponse {
    let mut r = OffsetFetchResponse::default();
    if version >= 8 {
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut out = offset_fetch_response::OffsetFetchResponseGroup::default();
            let fetched = match fetch_group(state, conn, &g.group_id.0, topics).await {
                Ok(fetched) => fetched,
                Err(code) => {
                    out.group_id = g.group_id;
                    out.error_code = code.0;
                    r.groups.push(out);
                    continue;
                }
            };
            let unstable = unstable(state, &g.group_id.0, req.require_stable);
            out.group_id = g.group_id;
            out.topics = by_topic(fetched)
                .into_iter()
                .map(|(t, ps)| {
                    let mut topic = offset_fetch_response::OffsetFetchResponseTopics::default();
                    topic.name = TopicName(StrBytes::from_string(t.clone()));
                    topic.partitions = ps
                        .into_iter()
                        .map(|(p, c)| {
                            let mut o =
                                offset_fetch_response::OffsetFetchResponsePartitions::default();
                            o.partition_index = p;
                            if topic_hidden(state, conn, &t) {
                                o.error_code = ResponseError::TopicAuthorizationFailed.code();
                                o.committed_offset = -1;
                                o.committed_leader_epoch = -1;
                                return o;
                            }
                            if unstable.contains(&TopicPartition::new(t.clone(), p)) {
                                o.error_code = ResponseError::UnstableOffsetCommit.code();
                                o.committed_offset = -1;
                                o.committed_leader_epoch = -1;
                                o.metadata = Some(StrBytes::default());
                                return o;
                            }
                            o.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                            o.committed_leader_epoch =
                                c.as_ref().and_then(|c| c.leader_epoch).unwrap_or(-1);
                            o.metadata = Some(StrBytes::from_string(
                                c.and_then(|c| c.metadata).unwrap_or_default(),
                            ));
                            o
                        })
                        .collect();
                    topic
                })
                .collect();
            r.groups.push(out);
        }
        return r;
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let requested = topics.clone();
    let fetched = match fetch_group(state, conn, &req.group_id.0, topics).await {
        Ok(fetched) => fetched,
        Err(code) => {
            // v0 and v1 have no top-level error: each requested partition carries it.
            r.error_code = code.0;
            r.topics = requested
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| {
                    let mut topic = offset_fetch_response::OffsetFetchResponseTopic::default();
                    topic.name = TopicName(StrBytes::from_string(t));
                    topic.partitions = ps
                        .into_iter()
                        .map(|p| {
                            let mut o =
                                offset_fetch_response::OffsetFetchResponsePartition::default();
                            o.partition_index = p;
                            o.committed_offset = -1;
                            o.error_code = code.0;
                            o
                        })
                        .collect();
                    topic
                })
                .collect();
            return r;
        }
    };
    let unstable = unstable(state, &req.group_id.0, version >= 7 && req.require_stable);
    r.topics = by_topic(fetched)
        .into_iter()
        .map(|(t, ps)| {
            let mut topic = offset_fetch_response::OffsetFetchResponseTopic::default();
            topic.name = TopicName(StrBytes::from_string(t.clone()));
            topic.partitions = ps
                .into_iter()
                .map(|(p, c)| {
                    let mut o = offset_fetch_response::OffsetFetchResponsePartition::default();
                    o.partition_index = p;
                    if topic_hidden(state, conn, &t) {
                        o.error_code = ResponseError::TopicAuthorizationFailed.code();
                        o.committed_offset = -1;
                        return o;
                    }
                    if unstable.contains(&TopicPartition::new(t.clone(), p)) {
                        o.error_code = ResponseError::UnstableOffsetCommit.code();
                        o.committed_offset = -1;
                        o.metadata = Some(StrBytes::default());
                        return o;
                    }
                    o.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                    if version >= 5 {
                        o.committed_leader_epoch =
                            c.as_ref().and_then(|c| c.leader_epoch).unwrap_or(-1);
                    }
                    o.metadata = Some(StrBytes::from_string(
                        c.and_then(|c| c.metadata).unwrap_or_default(),
                    ));
                    o
                })
                .collect();
            topic
        })
        .collect();
    r
}

pub async fn offset_delete(
    state: &Arc<State>,
    req: OffsetDeleteRequest,
    conn: &Conn,
) -> OffsetDeleteResponse {
    let mut r = OffsetDeleteResponse::default();
    if !conn.may(state, Operation::Delete, Resource::Group(&req.group_id)) {
        r.error_code = ResponseError::GroupAuthorizationFailed.code();
        return r;
    }
    // Kafka: READ on each topic; the others answer TOPIC_AUTHORIZATION_FAILED.
    let readable: std::collections::HashSet<&str> = req
        .topics
        .iter()
        .filter(|t| conn.may(state, Operation::Read, Resource::Topic(&t.name)))
        .map(|t| t.name.0.as_str())
        .collect();
    let partitions = req
        .topics
        .iter()
        .filter(|t| readable.contains(t.name.0.as_str()))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let resp = state
        .groups
        .delete_offsets(&req.group_id.0, partitions)
        .await;
    r.error_code = resp.error.0;
    r.topics = req
        .topics
        .iter()
        .map(|t| {
            let mut out = offset_delete_response::OffsetDeleteResponseTopic::default();
            out.name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut o = offset_delete_response::OffsetDeleteResponsePartition::default();
                    o.partition_index = p.partition_index;
                    if !readable.contains(t.name.0.as_str()) {
                        o.error_code = ResponseError::TopicAuthorizationFailed.code();
                        return o;
                    }
                    o.error_code = resp
                        .partitions
                        .iter()
                        .find(|(tp, _)| {
                            tp.topic == t.name.0.as_str() && tp.partition == p.partition_index
                        })
                        .map_or(0, |(_, c)| c.0);
                    o
                })
                .collect();
            out
        })
        .collect();
    r
}
