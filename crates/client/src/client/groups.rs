//! Consumer-group administration: finding a group's coordinator, listing and describing
//! groups, reading and writing committed offsets, deleting groups.
//!
//! Group requests go to the group's coordinator, found with FindCoordinator and asked again
//! when it answers that it is not (or not yet) the coordinator. Nothing here joins a group:
//! offsets are committed the way Kafka's admin tools do it, with generation -1 and an empty
//! member id, which a coordinator accepts only while the group has no members.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, Message};

use super::retry::{coordinator_retriable, Retry};
use super::{missing, name, text, BrokerInfo, Client};
use crate::connection::{protocol_error, Connection};
use crate::error::{codes, ClientError};

/// `key_type` of a consumer group in FindCoordinator.
const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transactional id in FindCoordinator.
pub(super) const KEY_TYPE_TXN: i8 = 1;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// "consumer" for Kafka consumers, "" for a group that only stores offsets.
    pub protocol_type: String,
    /// The group's state, from brokers that report it (ListGroups v4+).
    pub state: Option<String>,
}

/// One member of a group, as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's subscription, opaque to the coordinator.
    pub metadata: Bytes,
    /// The member's assignment from the group leader, opaque to the coordinator.
    pub assignment: Bytes,
}

impl GroupMember {
    /// The partitions assigned to this member, by topic, decoded as Kafka's consumer
    /// protocol (`ConsumerProtocolAssignment`); meaningful when the group's protocol type
    /// is "consumer". An empty assignment (a rebalance in progress) is no partitions.
    pub fn consumer_assignment(&self) -> Result<BTreeMap<String, Vec<i32>>, ClientError> {
        decode_consumer_assignment(self.assignment.clone())
    }
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state name: Empty, PreparingRebalance, CompletingRebalance, Stable or Dead
    /// (the state of a group that does not exist).
    pub state: String,
    pub protocol_type: String,
    /// The protocol the members agreed on (the assignor, for consumers); "" while
    /// rebalancing.
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// An offset committed for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    /// `None` when the group has committed nothing for the partition.
    pub offset: Option<i64>,
    pub leader_epoch: Option<i32>,
    pub metadata: Option<String>,
}

/// An offset to commit for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Decodes a `ConsumerProtocolAssignment` (a version prefix, then the body) into partitions
/// by topic. Versions newer than this client knows are read as the newest it knows, as
/// Kafka's consumer does: later versions only add fields at the end.
pub fn decode_consumer_assignment(
    mut bytes: Bytes,
) -> Result<BTreeMap<String, Vec<i32>>, ClientError> {
    let api = ApiKey::DescribeGroups;
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if bytes.is_empty() {
        return Ok(out);
    }
    if bytes.len() < 2 {
        return Err(ClientError::Protocol {
            api,
            message: format!(
                "member assignment of {} byte(s) has no version",
                bytes.len()
            ),
        });
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(ClientError::Protocol {
            api,
            message: format!("member assignment has negative version {version}"),
        });
    }
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    let assignment = ConsumerProtocolAssignment::decode(&mut bytes, version).map_err(
        protocol_error(api, format_args!("decode v{version} consumer assignment")),
    )?;
    for tp in assignment.assigned_partitions {
        out.entry(tp.topic.0.to_string())
            .or_default()
            .extend(tp.partitions);
    }
    for partitions in out.values_mut() {
        partitions.sort_unstable();
        partitions.dedup();
    }
    Ok(out)
}

/// `(topic, partition)` pairs grouped by topic, in topic order.
fn by_topic(partitions: &[(String, i32)]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    topics
}

/// The OffsetFetch request for `group` at `version`: the single-group form up to v7, the
/// multi-group form (with one group) from v8. `None` asks for every committed partition.
fn offset_fetch_request(
    group: &str,
    partitions: Option<&[(String, i32)]>,
    version: i16,
) -> Result<OffsetFetchRequest, ClientError> {
    let topics = partitions.map(by_topic);
    if version >= 8 {
        let topics = topics.map(|ts| {
            ts.into_iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopics::default()
                        .with_name(name(t))
                        .with_partition_indexes(ps)
                })
                .collect()
        });
        // The top-level topic list stays at its default (empty) in this form.
        return Ok(OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(text(group)))
                .with_topics(topics),
        ]));
    }
    if topics.is_none() && version < 2 {
        // "All partitions" (a null topic list) exists from v2.
        return Err(ClientError::Unsupported {
            api: ApiKey::OffsetFetch,
        });
    }
    let topics = topics.map(|ts| {
        ts.into_iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopic::default()
                    .with_name(name(t))
                    .with_partition_indexes(ps)
            })
            .collect()
    });
    Ok(OffsetFetchRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_topics(topics))
}

fn committed(
    topic: &str,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&str>,
) -> CommittedOffset {
    CommittedOffset {
        topic: topic.to_owned(),
        partition,
        offset: (offset >= 0).then_some(offset),
        leader_epoch: (leader_epoch >= 0).then_some(leader_epoch),
        metadata: metadata.filter(|m| !m.is_empty()).map(str::to_owned),
    }
}

fn partition_error(api: ApiKey, code: i16, topic: &str, partition: i32) -> ClientError {
    ClientError::check(api, code, Some(&format!("partition {topic}/{partition}")))
        .err()
        .unwrap_or(ClientError::Protocol {
            api,
            message: "partition error without a code".into(),
        })
}

impl Client {
    /// The coordinator of consumer group `group`.
    pub async fn find_coordinator(&mut self, group: &str) -> Result<BrokerInfo, ClientError> {
        self.find_coordinator_of(KEY_TYPE_GROUP, group).await
    }

    /// The coordinator of `key` (a group for [`KEY_TYPE_GROUP`], a transactional id for
    /// [`KEY_TYPE_TXN`]).
    pub(super) async fn find_coordinator_of(
        &mut self,
        key_type: i8,
        key: &str,
    ) -> Result<BrokerInfo, ClientError> {
        self.retrying(Retry::Coordinator, async |c| {
            c.find_coordinator_once(key_type, key).await
        })
        .await
    }

    async fn find_coordinator_once(
        &mut self,
        key_type: i8,
        group: &str,
    ) -> Result<BrokerInfo, ClientError> {
        let api = ApiKey::FindCoordinator;
        let conn = self.admin().await?;
        let version = conn.version(api)?;
        if version >= 4 {
            let req = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![text(group)]);
            let resp = conn.send_version(req, version).await?;
            let c = resp
                .coordinators
                .into_iter()
                .find(|c| c.key.as_str() == group)
                .ok_or_else(|| missing(api, group))?;
            ClientError::check(api, c.error_code, c.error_message.as_deref())?;
            return Ok(BrokerInfo {
                id: c.node_id.0,
                host: c.host.to_string(),
                port: c.port,
                rack: None,
            });
        }
        let mut req = FindCoordinatorRequest::default().with_key(text(group));
        if version >= 1 {
            req.key_type = key_type;
        } else if key_type != KEY_TYPE_GROUP {
            // v0 knows groups only.
            return Err(ClientError::Unsupported { api });
        }
        let resp = conn.send_version(req, version).await?;
        ClientError::check(api, resp.error_code, resp.error_message.as_deref())?;
        Ok(BrokerInfo {
            id: resp.node_id.0,
            host: resp.host.to_string(),
            port: resp.port,
            rack: None,
        })
    }

    /// The connection to `group`'s coordinator.
    pub(super) async fn coordinator(
        &mut self,
        group: &str,
    ) -> Result<&mut Connection, ClientError> {
        self.coordinator_of(KEY_TYPE_GROUP, group).await
    }

    /// The connection to the coordinator of `key` (see [`Client::find_coordinator_of`]).
    pub(super) async fn coordinator_of(
        &mut self,
        key_type: i8,
        key: &str,
    ) -> Result<&mut Connection, ClientError> {
        let info = self.find_coordinator_of(key_type, key).await?;
        let id = info.id;
        // The coordinator may be a broker this client has not seen in Metadata yet, or one
        // whose address changed.
        if self.brokers.get(&id) != Some(&info) {
            self.connections.remove(&id);
            self.brokers.insert(id, info);
        }
        self.broker(id).await
    }

    /// Every group on every broker, sorted by id. Brokers report the groups they coordinate,
    /// so all of them are asked.
    pub async fn list_groups(&mut self) -> Result<Vec<GroupListing>, ClientError> {
        let api = ApiKey::ListGroups;
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        if ids.is_empty() {
            self.metadata(Some(Vec::new())).await?;
            ids = self.brokers.keys().copied().collect();
        }
        ids.sort_unstable();
        let mut groups: BTreeMap<String, GroupListing> = BTreeMap::new();
        for id in ids {
            let resp = self
                .broker(id)
                .await?
                .send(ListGroupsRequest::default())
                .await?;
            ClientError::check(api, resp.error_code, None)?;
            for g in resp.groups {
                let group_id = g.group_id.0.to_string();
                let state = (!g.group_state.is_empty()).then(|| g.group_state.to_string());
                groups.insert(
                    group_id.clone(),
                    GroupListing {
                        group_id,
                        protocol_type: g.protocol_type.to_string(),
                        state,
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes `groups`, in the order given. A group that does not exist is described in
    /// state "Dead" with no members, as Kafka does.
    pub async fn describe_groups(
        &mut self,
        groups: &[String],
    ) -> Result<Vec<GroupDescription>, ClientError> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            out.push(self.describe_group(group).await?);
        }
        Ok(out)
    }

    /// Describes one group; see [`Client::describe_groups`].
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        self.retrying(Retry::Coordinator, async |c| {
            c.describe_group_once(group).await
        })
        .await
    }

    async fn describe_group_once(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        let api = ApiKey::DescribeGroups;
        let conn = self.coordinator(group).await?;
        let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
        let resp = conn.send(req).await?;
        let g = resp
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| missing(api, group))?;
        ClientError::check(api, g.error_code, g.error_message.as_deref())?;
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    metadata: m.member_metadata,
                    assignment: m.member_assignment,
                })
                .collect(),
        })
    }

    /// The offsets `group` committed for `partitions` (`(topic, partition)` pairs; a
    /// partition with no commit comes back with `offset: None`), or for every partition it
    /// committed when `None`. Sorted by topic and partition.
    pub async fn offset_fetch(
        &mut self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        self.retrying(Retry::Coordinator, async |c| {
            c.offset_fetch_once(group, partitions).await
        })
        .await
    }

    async fn offset_fetch_once(
        &mut self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        let api = ApiKey::OffsetFetch;
        let conn = self.coordinator(group).await?;
        let version = conn.version(api)?;
        let req = offset_fetch_request(group, partitions, version)?;
        let resp = conn.send_version(req, version).await?;
        let mut out = Vec::new();
        if version >= 8 {
            let g = resp
                .groups
                .into_iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| missing(api, group))?;
            ClientError::check(api, g.error_code, None)?;
            for t in &g.topics {
                for p in &t.partitions {
                    let topic = t.name.0.as_str();
                    if p.error_code != codes::NONE {
                        return Err(partition_error(api, p.error_code, topic, p.partition_index));
                    }
                    out.push(committed(
                        topic,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_deref(),
                    ));
                }
            }
        } else {
            ClientError::check(api, resp.error_code, None)?;
            for t in &resp.topics {
                for p in &t.partitions {
                    let topic = t.name.0.as_str();
                    if p.error_code != codes::NONE {
                        return Err(partition_error(api, p.error_code, topic, p.partition_index));
                    }
                    out.push(committed(
                        topic,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_deref(),
                    ));
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// Commits `offsets` for `group` as an administrator: generation -1 and no member id,
    /// which the coordinator accepts only while the group has no members. Fails with the
    /// first partition the coordinator refused (the others may have been committed).
    pub async fn offset_commit(
        &mut self,
        group: &str,
        offsets: &[PartitionOffset],
    ) -> Result<(), ClientError> {
        self.retrying(Retry::Coordinator, async |c| {
            c.offset_commit_once(group, offsets).await
        })
        .await
    }

    async fn offset_commit_once(
        &mut self,
        group: &str,
        offsets: &[PartitionOffset],
    ) -> Result<(), ClientError> {
        let api = ApiKey::OffsetCommit;
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for o in offsets {
            topics.entry(o.topic.as_str()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(o.partition)
                    .with_committed_offset(o.offset),
            );
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(text(""))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let conn = self.coordinator(group).await?;
        let resp = conn.send(req).await?;
        let mut answered = 0;
        for t in &resp.topics {
            for p in &t.partitions {
                answered += 1;
                if p.error_code != codes::NONE {
                    return Err(partition_error(
                        api,
                        p.error_code,
                        t.name.0.as_str(),
                        p.partition_index,
                    ));
                }
            }
        }
        if answered != offsets.len() {
            return Err(ClientError::Protocol {
                api,
                message: format!(
                    "{} partition(s) committed, {answered} answered",
                    offsets.len()
                ),
            });
        }
        Ok(())
    }

    /// Deletes `groups` and their committed offsets. Each group has its own outcome: a group
    /// with members fails with NON_EMPTY_GROUP, an unknown one with GROUP_ID_NOT_FOUND.
    pub async fn delete_groups(
        &mut self,
        groups: &[String],
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let result = self
                .retrying_inner(Retry::Coordinator, async |c| {
                    c.delete_group_once(group).await
                })
                .await?;
            out.push((group.clone(), result));
        }
        Ok(out)
    }

    /// The outer `Err` is a failed request; the inner one the group's own error code.
    async fn delete_group_once(
        &mut self,
        group: &str,
    ) -> Result<Result<(), ClientError>, ClientError> {
        let api = ApiKey::DeleteGroups;
        let conn = match self.coordinator(group).await {
            Ok(c) => c,
            Err(e) if coordinator_retriable(&e) => return Ok(Err(e)),
            Err(e) => return Err(e),
        };
        let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(group))]);
        let resp = conn.send(req).await?;
        let r = resp
            .results
            .iter()
            .find(|r| r.group_id.0.as_str() == group)
            .ok_or_else(|| missing(api, group))?;
        Ok(ClientError::check(api, r.error_code, None))
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    fn assignment_bytes(version: i16, topics: &[(&str, &[i32])]) -> Bytes {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
            topics
                .iter()
                .map(|(t, ps)| {
                    TopicPartition::default()
                        .with_topic(name(t))
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        );
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version.min(3)).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_a_consumer_assignment() {
        let bytes = assignment_bytes(1, &[("b", &[3, 1]), ("a", &[0]), ("b", &[2])]);
        let got = decode_consumer_assignment(bytes).unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![("a".to_owned(), vec![0]), ("b".to_owned(), vec![1, 2, 3])]
        );
    }

    #[test]
    fn a_newer_assignment_version_is_read_as_the_newest_known() {
        let mut bytes = assignment_bytes(3, &[("t", &[5])]).to_vec();
        bytes[..2].copy_from_slice(&7i16.to_be_bytes());
        let got = decode_consumer_assignment(Bytes::from(bytes)).unwrap();
        assert_eq!(got.get("t"), Some(&vec![5]));
    }

    #[test]
    fn an_empty_assignment_is_no_partitions() {
        assert!(decode_consumer_assignment(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn a_truncated_assignment_is_a_protocol_error() {
        let bytes = assignment_bytes(0, &[("topic", &[0, 1])]);
        let cut = bytes.slice(..bytes.len() - 3);
        assert!(matches!(
            decode_consumer_assignment(cut),
            Err(ClientError::Protocol { .. })
        ));
        assert!(matches!(
            decode_consumer_assignment(Bytes::from_static(&[0])),
            Err(ClientError::Protocol { .. })
        ));
    }

    #[test]
    fn offset_fetch_uses_the_group_array_from_v8() {
        let parts = vec![
            ("t".to_owned(), 1),
            ("t".to_owned(), 0),
            ("u".to_owned(), 2),
        ];
        let req = offset_fetch_request("g", Some(&parts), 8).unwrap();
        assert_eq!(req.topics, Some(Vec::new()));
        assert_eq!(req.groups.len(), 1);
        let g = &req.groups[0];
        assert_eq!(g.group_id.0.as_str(), "g");
        let topics = g.topics.as_ref().unwrap();
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].name.0.as_str(), "t");
        assert_eq!(topics[0].partition_indexes, vec![1, 0]);
        // Encodable at every version of the group form.
        for v in 8..=9 {
            req.encode(&mut bytes::BytesMut::new(), v).unwrap();
        }

        let all = offset_fetch_request("g", None, 9).unwrap();
        assert_eq!(all.groups[0].topics, None);
        all.encode(&mut bytes::BytesMut::new(), 9).unwrap();
    }

    #[test]
    fn offset_fetch_uses_the_single_group_form_before_v8() {
        let parts = vec![("t".to_owned(), 0)];
        for v in 1..=7 {
            let req = offset_fetch_request("g", Some(&parts), v).unwrap();
            assert_eq!(req.group_id.0.as_str(), "g");
            assert!(req.groups.is_empty());
            req.encode(&mut bytes::BytesMut::new(), v).unwrap();
        }
        let all = offset_fetch_request("g", None, 2).unwrap();
        assert_eq!(all.topics, None);
        assert!(matches!(
            offset_fetch_request("g", None, 1),
            Err(ClientError::Unsupported { .. })
        ));
    }

    #[test]
    fn no_commit_is_none() {
        let c = committed("t", 0, -1, -1, Some(""));
        assert_eq!(c.offset, None);
        assert_eq!(c.leader_epoch, None);
        assert_eq!(c.metadata, None);
        let c = committed("t", 0, 0, 3, Some("m"));
        assert_eq!(c.offset, Some(0));
        assert_eq!(c.leader_epoch, Some(3));
        assert_eq!(c.metadata.as_deref(), Some("m"));
    }
}
