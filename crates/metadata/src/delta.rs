//! What applying records changed: the broker's publisher acts on this instead of diffing
//! two images.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::records::{BrokerId, ConfigResource, PartitionRegistration};

/// A partition's registration before and after the applied records (`None`: absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDelta {
    pub old: Option<PartitionRegistration>,
    pub new: Option<PartitionRegistration>,
}

/// The changes made by one or more applied records. Merging keeps each partition's
/// first `old` and last `new`, so a delta over many records reads like one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataDelta {
    pub cluster_id_set: bool,
    pub features_changed: BTreeSet<String>,
    /// `(name, topic id)` of topics created, in record order.
    pub topics_created: Vec<(String, Uuid)>,
    pub topics_deleted: Vec<(String, Uuid)>,
    pub partitions: BTreeMap<(Uuid, i32), PartitionDelta>,
    pub brokers_registered: BTreeSet<BrokerId>,
    pub brokers_unregistered: BTreeSet<BrokerId>,
    pub brokers_fenced: BTreeSet<BrokerId>,
    pub brokers_unfenced: BTreeSet<BrokerId>,
    pub configs_changed: BTreeSet<ConfigResource>,
    pub producer_ids_changed: bool,
    /// An ACL was created or removed.
    pub acls_changed: bool,
}

impl MetadataDelta {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn partition_changed(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        old: Option<PartitionRegistration>,
        new: Option<PartitionRegistration>,
    ) {
        self.partitions
            .entry((topic_id, partition))
            .and_modify(|d| d.new = new.clone())
            .or_insert(PartitionDelta { old, new });
    }

    pub(crate) fn fenced(&mut self, id: BrokerId, fenced: bool) {
        // A fence then an unfence within one delta cancel out for the publisher.
        if fenced {
            if !self.brokers_unfenced.remove(&id) {
                self.brokers_fenced.insert(id);
            }
        } else if !self.brokers_fenced.remove(&id) {
            self.brokers_unfenced.insert(id);
        }
    }

    /// Appends `later`, which was applied after `self`.
    pub fn merge(&mut self, later: MetadataDelta) {
        self.cluster_id_set |= later.cluster_id_set;
        self.features_changed.extend(later.features_changed);
        self.topics_created.extend(later.topics_created);
        self.topics_deleted.extend(later.topics_deleted);
        for ((topic_id, partition), d) in later.partitions {
            self.partition_changed(topic_id, partition, d.old, d.new);
        }
        self.brokers_registered.extend(later.brokers_registered);
        self.brokers_unregistered.extend(later.brokers_unregistered);
        for id in later.brokers_fenced {
            self.fenced(id, true);
        }
        for id in later.brokers_unfenced {
            self.fenced(id, false);
        }
        self.configs_changed.extend(later.configs_changed);
        self.producer_ids_changed |= later.producer_ids_changed;
        self.acls_changed |= later.acls_changed;
    }
}
