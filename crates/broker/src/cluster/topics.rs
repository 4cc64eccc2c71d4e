//! The broker's topic table in cluster mode, and topic admin through the quorum.
//!
//! The publisher keeps the table on the image ([`State::sync_cluster_topics`]): a topic per
//! image topic, a slot per partition, filled where this broker hosts a replica. Produce,
//! Fetch, ListOffsets and OffsetForLeaderEpoch thus look partitions up exactly as on a
//! single node, and an empty slot answers NOT_LEADER_OR_FOLLOWER.
//!
//! Admin changes are submitted to the active controller; the answer waits until the image
//! this broker publishes includes them, so a Metadata or Produce right after CreateTopics
//! finds the topic here.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use uuid::Uuid;
use weir_metadata::{
    BrokerId, ConfigResource, ControllerReply, ControllerRequest, CreatableTopic,
    CreatePartitionsTopic, CreatedTopic, MetadataImage,
};

use super::ControllerUnavailable;
use crate::partition::Partition;
use crate::state::{AdminError, State, Topic};
use crate::topic_config;

/// How long an admin answer waits for this broker to publish the quorum's result. The
/// entry is applied here already; only the publisher (creating logs) can be behind.
const PUBLISH_WAIT: Duration = Duration::from_secs(30);

impl State {
    /// Whether this broker runs in cluster mode.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The replication factor services in the broker's process (the SQL engine) create
    /// their topics with: -1 in cluster mode, which the controller turns into the cluster's
    /// `default.replication.factor`; 1 on a single node, which has no other.
    pub fn default_replication(&self) -> i16 {
        if self.cluster {
            -1
        } else {
            1
        }
    }

    /// The lease decision for the partitions a request looks up together (Produce and
    /// DeleteRecords per topic; Fetch, ListOffsets, OffsetForLeaderEpoch and
    /// DescribeProducers per request): one clock read and one lease lock instead of one per
    /// partition, and one answer for all of them.
    pub fn lease_now(&self) -> LeaseNow {
        LeaseNow {
            serving: !self.cluster || self.image.serving(),
        }
    }
}

/// [`State::lease_now`]: whether this broker may answer as a leader, decided once.
#[derive(Debug, Clone, Copy)]
pub struct LeaseNow {
    serving: bool,
}

impl LeaseNow {
    /// `topic`'s partition `index` for a request to its leader: [`Topic::lookup`], refused
    /// NOT_LEADER_OR_FOLLOWER while this broker's lease does not hold (§4.9; the controller
    /// may have moved the leadership while this broker was paused or cut off). On a single
    /// node exactly `lookup`.
    pub fn lookup(
        self,
        topic: &Topic,
        index: i32,
    ) -> Result<Arc<Partition>, weir_protocol::ResponseError> {
        if !self.serving {
            return Err(weir_protocol::ResponseError::NotLeaderOrFollower);
        }
        topic.lookup(index)
    }
}

impl State {
    /// Installs the metadata quorum (once; later calls are ignored).
    pub fn set_controller(&self, controller: Arc<dyn super::ControllerClient>) {
        let _ = self.controller.set(controller);
    }

    /// The active controller's id, as this node last saw it.
    pub fn controller_id(&self) -> Option<i32> {
        self.controller.get().and_then(|c| c.controller_id())
    }

    /// The brokers among `ids` whose process this node knows is gone
    /// ([`super::ControllerClient::gone`]); none before the quorum member runs.
    pub async fn gone_brokers(&self, ids: Vec<i32>) -> Vec<i32> {
        match self.controller.get() {
            Some(c) if !ids.is_empty() => c.gone(ids).await,
            _ => Vec::new(),
        }
    }

    /// Submits `request` to the quorum and waits until this broker published its result.
    pub async fn submit(&self, request: ControllerRequest) -> Result<ControllerReply, AdminError> {
        let controller = self.controller.get().cloned().ok_or_else(|| {
            ControllerUnavailable("this node's quorum member is not running yet".into())
        })?;
        let submitted = controller.submit(request).await?;
        tokio::time::timeout(PUBLISH_WAIT, self.image.published(submitted.applied_index))
            .await
            .map_err(|_| {
                ControllerUnavailable(format!(
                    "entry {} applied but not published within {PUBLISH_WAIT:?}",
                    submitted.applied_index
                ))
            })?;
        Ok(submitted.reply)
    }

    /// Creates (or, with `validate_only`, checks) a topic through the quorum. `partitions`
    /// and `replication` of -1 take the defaults; `assignment` lists each partition's
    /// replicas and then needs both at -1.
    pub async fn cluster_create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        assignment: Option<Vec<Vec<BrokerId>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<CreatedTopic, AdminError> {
        crate::state::validate_topic_name(name)?;
        // The controller checks the keys it reads itself; the log's keys are the broker's.
        for (k, v) in &configs {
            topic_config::validate(k, v)?;
        }
        let requested = match &assignment {
            Some(a) => i64::try_from(a.len()).unwrap_or(i64::MAX),
            None if partitions == -1 => i64::from(self.config.num_partitions),
            None => i64::from(partitions),
        };
        crate::state::check_partitions_per_request(requested)?;
        let request = ControllerRequest::CreateTopics {
            topics: vec![CreatableTopic {
                name: name.to_string(),
                num_partitions: partitions,
                replication_factor: replication,
                assignment,
                configs: configs.into_iter().collect(),
            }],
            validate_only,
        };
        match self.submit(request).await? {
            ControllerReply::CreateTopics(mut results) if results.len() == 1 => {
                let (_, result) = results.remove(0);
                result.map_err(|e| match e {
                    weir_metadata::MetadataError::TopicAlreadyExists(_) => {
                        AdminError::TopicExists(name.to_string())
                    }
                    e => AdminError::Controller(e),
                })
            }
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn cluster_delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        let request = ControllerRequest::DeleteTopics {
            names: vec![name.to_string()],
        };
        match self.submit(request).await? {
            ControllerReply::DeleteTopics(mut results) if results.len() == 1 => {
                let (_, result) = results.remove(0);
                result.map_err(|e| match e {
                    weir_metadata::MetadataError::UnknownTopicOrPartition(_) => {
                        AdminError::UnknownTopic(name.to_string())
                    }
                    e => AdminError::Controller(e),
                })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Grows a topic to `count` partitions through the quorum.
    pub async fn cluster_create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<BrokerId>>>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        if let Some(current) = self.image.image().topic_by_name(name) {
            let current = i32::try_from(current.partitions.len()).unwrap_or(i32::MAX);
            crate::state::check_partitions_per_request(i64::from(count) - i64::from(current))?;
        }
        let request = ControllerRequest::CreatePartitions {
            topics: vec![CreatePartitionsTopic {
                name: name.to_string(),
                count,
                assignment,
            }],
            validate_only,
        };
        match self.submit(request).await? {
            ControllerReply::CreatePartitions(mut results) if results.len() == 1 => {
                let (_, result) = results.remove(0);
                Ok(result?)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Replaces a topic's overrides through the quorum: the keys `configs` sets, and
    /// deletions of the overrides it no longer has.
    pub(crate) async fn cluster_set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        for (k, v) in &configs {
            topic_config::validate(k, v)?;
        }
        let resource = ConfigResource::Topic(name.to_string());
        let image = self.image.image();
        if image.topic_by_name(name).is_none() {
            return Err(AdminError::UnknownTopic(name.to_string()));
        }
        let mut ops: Vec<(String, Option<String>)> = image
            .configs(&resource)
            .into_iter()
            .flat_map(|current| current.keys())
            .filter(|k| !configs.contains_key(*k))
            .map(|k| (k.clone(), None))
            .collect();
        ops.extend(configs.into_iter().map(|(k, v)| (k, Some(v))));
        let request = ControllerRequest::AlterConfigs {
            resources: vec![weir_metadata::AlterConfigsResource { resource, ops }],
            validate_only,
        };
        match self.submit(request).await? {
            ControllerReply::AlterConfigs(mut results) if results.len() == 1 => {
                let (_, result) = results.remove(0);
                Ok(result?)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Makes the topic table match `image`: a topic per image topic (the same `Topic` while
    /// its id stays), a slot per partition holding `hosted`'s replica where this broker has
    /// one, the image's config overrides. Topics the image lost leave the table.
    pub fn sync_cluster_topics(
        &self,
        image: &MetadataImage,
        hosted: &dyn Fn(Uuid, i32) -> Option<Arc<Partition>>,
    ) {
        let mut removed = Vec::new();
        {
            let mut table = self.topics.write().unwrap_or_else(|e| e.into_inner());
            table.retain(|name, t| {
                let keep = image.topic_by_name(name).is_some_and(|i| i.id == t.id);
                if !keep {
                    removed.push(name.clone());
                }
                keep
            });
            for t in image.topics() {
                let count = t.partitions.keys().next_back().map_or(0, |last| last + 1);
                let slots: Vec<Option<Arc<Partition>>> =
                    (0..count).map(|p| hosted(t.id, p)).collect();
                let configs = image
                    .configs(&ConfigResource::Topic(t.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                match table.get(&t.name) {
                    Some(topic) => {
                        let same = {
                            let parts = topic.partitions.read().unwrap_or_else(|e| e.into_inner());
                            parts.len() == slots.len()
                                && parts.iter().zip(&slots).all(|(a, b)| match (a, b) {
                                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                                    (None, None) => true,
                                    _ => false,
                                })
                        };
                        if !same {
                            *topic.partitions.write().unwrap_or_else(|e| e.into_inner()) = slots;
                        }
                        let mut current = topic.configs.write().unwrap_or_else(|e| e.into_inner());
                        if *current != configs {
                            // Retention, segment and cleanup keys reach the hosted logs.
                            let log_config = topic_config::log_config(
                                &configs,
                                &self.broker_configs.effective(),
                            );
                            for p in topic.all_partitions() {
                                p.set_config(log_config.clone());
                            }
                            *current = configs;
                        }
                    }
                    None => {
                        table.insert(
                            t.name.clone(),
                            Arc::new(Topic {
                                name: t.name.clone(),
                                id: t.id,
                                partitions: RwLock::new(slots),
                                configs: RwLock::new(configs),
                                metrics: self.metrics.topic(&t.name),
                            }),
                        );
                    }
                }
            }
        }
        for name in removed {
            self.metrics.topic_deleted(&name);
            self.groups.topic_deleted(&name);
        }
    }
}

pub(super) fn unexpected(reply: &ControllerReply) -> AdminError {
    AdminError::QuorumUnavailable(ControllerUnavailable(format!(
        "unexpected controller reply {reply:?}"
    )))
}
