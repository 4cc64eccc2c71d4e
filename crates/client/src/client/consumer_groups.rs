//! KIP-848 consumer groups (`group.protocol=consumer`) as ConsumerGroupDescribe reports
//! them. DescribeGroups knows only classic groups: it reports a consumer-protocol group as
//! Dead, so tools that describe any group ask this too (as Kafka's `kafka-consumer-groups`
//! does).

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::Assignment;
use kafka_protocol::messages::{ApiKey, ConsumerGroupDescribeRequest, GroupId};

use super::retry::Retry;
use super::{missing, text, Client};
use crate::error::{codes, ClientError};

/// A consumer-protocol group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    /// Kafka's state name of a consumer group: Empty, Assigning, Reconciling or Stable.
    pub state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    /// The server-side assignor, e.g. "uniform" or "range".
    pub assignor: String,
    pub members: Vec<ConsumerGroupMember>,
}

/// One member of a consumer-protocol group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topics: Vec<String>,
    /// The partitions the member owns now, by topic.
    pub assignment: BTreeMap<String, Vec<i32>>,
    /// The partitions the coordinator wants it to own once it reconciled.
    pub target_assignment: BTreeMap<String, Vec<i32>>,
}

fn by_topic(a: Assignment) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for t in a.topic_partitions {
        let partitions = out.entry(t.topic_name.0.to_string()).or_default();
        partitions.extend(t.partitions);
        partitions.sort_unstable();
    }
    out
}

impl Client {
    /// Describes `group` as a consumer-protocol group: `None` when no such group exists
    /// (GROUP_ID_NOT_FOUND: unknown, or a classic group).
    pub async fn describe_consumer_group(
        &mut self,
        group: &str,
    ) -> Result<Option<ConsumerGroupDescription>, ClientError> {
        self.retrying(Retry::Coordinator, async |c| {
            c.describe_consumer_group_once(group).await
        })
        .await
    }

    async fn describe_consumer_group_once(
        &mut self,
        group: &str,
    ) -> Result<Option<ConsumerGroupDescription>, ClientError> {
        let api = ApiKey::ConsumerGroupDescribe;
        let conn = self.coordinator(group).await?;
        let req =
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(text(group))]);
        let resp = conn.send(req).await?;
        let g = resp
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| missing(api, group))?;
        if g.error_code == codes::GROUP_ID_NOT_FOUND {
            return Ok(None);
        }
        ClientError::check(api, g.error_code, g.error_message.as_deref())?;
        Ok(Some(ConsumerGroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor_name.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| ConsumerGroupMember {
                    member_id: m.member_id.to_string(),
                    instance_id: m.instance_id.map(|i| i.to_string()),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    subscribed_topics: m
                        .subscribed_topic_names
                        .into_iter()
                        .map(|t| t.0.to_string())
                        .collect(),
                    assignment: by_topic(m.assignment),
                    target_assignment: by_topic(m.target_assignment),
                })
                .collect(),
        }))
    }
}
