//! The metadata image: everything the records say, as of one log position.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::delta::MetadataDelta;
use crate::error::ImageError;
use crate::records::{
    AclEntry, BrokerId, BrokerRegistration, ConfigResource, MetadataRecord, PartitionRegistration,
};

/// A topic and its partitions. Shared between images behind an `Arc` and copied only
/// when a record changes it, so cloning an image per applied entry stays cheap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// The cluster's metadata at one log position. Built only by [`MetadataImage::apply`], or
/// read back from a snapshot of one (serde, as [`ImageData`]: JSON wants string keys, so
/// the config map travels as a list).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ImageData", from = "ImageData")]
pub struct MetadataImage {
    cluster_id: Option<String>,
    features: BTreeMap<String, i16>,
    brokers: BTreeMap<BrokerId, BrokerRegistration>,
    topics: BTreeMap<Uuid, Arc<TopicImage>>,
    topic_ids: BTreeMap<String, Uuid>,
    configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// Where the next producer-id block starts (KIP-730).
    next_producer_id: i64,
    /// Behind an `Arc`: copied only when an ACL record changes it, and a subscriber tells
    /// a change by the pointer.
    acls: Arc<BTreeSet<AclEntry>>,
    /// The highest broker epoch ever registered: epochs never repeat, even after an
    /// unregistration, so a stale request of a previous incarnation is always refused.
    last_broker_epoch: i64,
}

impl MetadataImage {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub fn feature_level(&self, name: &str) -> i16 {
        self.features.get(name).copied().unwrap_or(0)
    }

    pub fn brokers(&self) -> &BTreeMap<BrokerId, BrokerRegistration> {
        &self.brokers
    }

    pub fn broker(&self, id: BrokerId) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Whether `id` may get replicas, leaderships and ISR entries (KIP-841): registered,
    /// unfenced, not in controlled shutdown.
    pub fn broker_usable(&self, id: BrokerId) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics.values()
    }

    pub fn topic(&self, id: Uuid) -> Option<&Arc<TopicImage>> {
        self.topics.get(&id)
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionRegistration> {
        self.topics.get(&topic_id)?.partitions.get(&partition)
    }

    /// Every partition, as `(topic id, index, registration)`.
    pub fn partitions(&self) -> impl Iterator<Item = (Uuid, i32, &PartitionRegistration)> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter().map(move |(p, r)| (t.id, *p, r)))
    }

    pub fn configs(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.get(resource)
    }

    pub fn config(&self, resource: &ConfigResource, key: &str) -> Option<&str> {
        self.configs.get(resource)?.get(key).map(String::as_str)
    }

    /// Every ACL in force.
    pub fn acls(&self) -> &Arc<BTreeSet<AclEntry>> {
        &self.acls
    }

    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    pub fn last_broker_epoch(&self) -> i64 {
        self.last_broker_epoch
    }

    /// Applies every record in order; the delta covers them all. On an error the image
    /// keeps the records before the failing one.
    pub fn apply_all<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a MetadataRecord>,
    ) -> Result<MetadataDelta, ImageError> {
        let mut delta = MetadataDelta::default();
        for record in records {
            delta.merge(self.apply(record)?);
        }
        Ok(delta)
    }

    /// Applies one record. A record that contradicts the image changes nothing.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<MetadataDelta, ImageError> {
        let mut delta = MetadataDelta::default();
        match record {
            MetadataRecord::ClusterId { cluster_id } => {
                self.cluster_id = Some(cluster_id.clone());
                delta.cluster_id_set = true;
            }
            MetadataRecord::FeatureLevel { name, level } => {
                self.features.insert(name.clone(), *level);
                delta.features_changed.insert(name.clone());
            }
            MetadataRecord::RegisterBroker(reg) => {
                let was_fenced = self.brokers.get(&reg.id).map(|b| b.fenced);
                self.last_broker_epoch = self.last_broker_epoch.max(reg.epoch);
                self.brokers.insert(reg.id, reg.clone());
                delta.brokers_registered.insert(reg.id);
                if was_fenced != Some(reg.fenced) {
                    delta.fenced(reg.id, reg.fenced);
                }
            }
            MetadataRecord::BrokerRegistrationChange {
                id,
                epoch,
                fenced,
                in_controlled_shutdown,
            } => {
                let broker = self.registered_mut(*id, *epoch)?;
                let was_fenced = broker.fenced;
                if let Some(fenced) = fenced {
                    broker.fenced = *fenced;
                }
                if let Some(shutdown) = in_controlled_shutdown {
                    broker.in_controlled_shutdown = *shutdown;
                }
                if broker.fenced != was_fenced {
                    delta.fenced(*id, broker.fenced);
                }
            }
            MetadataRecord::UnregisterBroker { id, epoch } => {
                self.registered_mut(*id, *epoch)?;
                self.brokers.remove(id);
                delta.brokers_unregistered.insert(*id);
            }
            MetadataRecord::Topic { name, topic_id } => {
                if let Some(existing) = self.topic_ids.get(name) {
                    return Err(ImageError::DuplicateTopicName {
                        name: name.clone(),
                        existing: *existing,
                    });
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    Arc::new(TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: BTreeMap::new(),
                    }),
                );
                delta.topics_created.push((name.clone(), *topic_id));
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or(ImageError::UnknownTopic(*topic_id))?;
                self.topic_ids.remove(&topic.name);
                let resource = ConfigResource::Topic(topic.name.clone());
                if self.configs.remove(&resource).is_some() {
                    delta.configs_changed.insert(resource);
                }
                for (p, reg) in &topic.partitions {
                    delta.partition_changed(*topic_id, *p, Some(reg.clone()), None);
                }
                delta.topics_deleted.push((topic.name.clone(), *topic_id));
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                registration,
            } => {
                let topic = self
                    .topics
                    .get_mut(topic_id)
                    .ok_or(ImageError::UnknownTopic(*topic_id))?;
                let old = Arc::make_mut(topic)
                    .partitions
                    .insert(*partition, registration.clone());
                delta.partition_changed(*topic_id, *partition, old, Some(registration.clone()));
            }
            MetadataRecord::PartitionChange(change) => {
                let topic = self
                    .topics
                    .get_mut(&change.topic_id)
                    .ok_or(ImageError::UnknownTopic(change.topic_id))?;
                let unknown = ImageError::UnknownPartition {
                    topic_id: change.topic_id,
                    partition: change.partition,
                };
                let old = topic.partitions.get(&change.partition).ok_or(unknown)?;
                let new = change.apply_to(old);
                let old = Arc::make_mut(topic)
                    .partitions
                    .insert(change.partition, new.clone());
                delta.partition_changed(change.topic_id, change.partition, old, Some(new));
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => {
                match value {
                    Some(value) => {
                        self.configs
                            .entry(resource.clone())
                            .or_default()
                            .insert(name.clone(), value.clone());
                    }
                    None => {
                        if let Some(keys) = self.configs.get_mut(resource) {
                            keys.remove(name);
                            if keys.is_empty() {
                                self.configs.remove(resource);
                            }
                        }
                    }
                }
                delta.configs_changed.insert(resource.clone());
            }
            MetadataRecord::AccessControlEntry(acl) => {
                if !self.acls.contains(acl) {
                    Arc::make_mut(&mut self.acls).insert(acl.clone());
                    delta.acls_changed = true;
                }
            }
            MetadataRecord::RemoveAccessControlEntry(acl) => {
                if self.acls.contains(acl) {
                    Arc::make_mut(&mut self.acls).remove(acl);
                    delta.acls_changed = true;
                }
            }
            MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            } => {
                self.registered_mut(*broker_id, *broker_epoch)?;
                if *next_producer_id <= self.next_producer_id {
                    return Err(ImageError::ProducerIdsBackwards {
                        next: *next_producer_id,
                        current: self.next_producer_id,
                    });
                }
                self.next_producer_id = *next_producer_id;
                delta.producer_ids_changed = true;
            }
        }
        Ok(delta)
    }

    fn registered_mut(
        &mut self,
        id: BrokerId,
        epoch: i64,
    ) -> Result<&mut BrokerRegistration, ImageError> {
        let broker = self
            .brokers
            .get_mut(&id)
            .ok_or(ImageError::UnknownBroker(id))?;
        if broker.epoch != epoch {
            return Err(ImageError::BrokerEpochMismatch {
                id,
                record: epoch,
                current: broker.epoch,
            });
        }
        Ok(broker)
    }
}

/// The serialized shape of a [`MetadataImage`] (snapshots of the metadata log). The name
/// index of topics is rebuilt on load, not stored.
#[derive(Serialize, Deserialize)]
struct ImageData {
    cluster_id: Option<String>,
    features: BTreeMap<String, i16>,
    brokers: Vec<BrokerRegistration>,
    topics: Vec<TopicImage>,
    configs: Vec<(ConfigResource, BTreeMap<String, String>)>,
    next_producer_id: i64,
    last_broker_epoch: i64,
    /// Absent from snapshots written before ACLs were metadata.
    #[serde(default)]
    acls: Vec<AclEntry>,
}

impl From<MetadataImage> for ImageData {
    fn from(image: MetadataImage) -> Self {
        ImageData {
            cluster_id: image.cluster_id,
            features: image.features,
            brokers: image.brokers.into_values().collect(),
            topics: image
                .topics
                .into_values()
                .map(Arc::unwrap_or_clone)
                .collect(),
            configs: image.configs.into_iter().collect(),
            next_producer_id: image.next_producer_id,
            last_broker_epoch: image.last_broker_epoch,
            acls: Arc::unwrap_or_clone(image.acls).into_iter().collect(),
        }
    }
}

impl From<ImageData> for MetadataImage {
    fn from(data: ImageData) -> Self {
        MetadataImage {
            cluster_id: data.cluster_id,
            features: data.features,
            brokers: data.brokers.into_iter().map(|b| (b.id, b)).collect(),
            topic_ids: data.topics.iter().map(|t| (t.name.clone(), t.id)).collect(),
            topics: data
                .topics
                .into_iter()
                .map(|t| (t.id, Arc::new(t)))
                .collect(),
            configs: data.configs.into_iter().collect(),
            next_producer_id: data.next_producer_id,
            last_broker_epoch: data.last_broker_epoch,
            acls: Arc::new(data.acls.into_iter().collect()),
        }
    }
}
