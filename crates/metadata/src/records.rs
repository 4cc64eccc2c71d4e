//! The metadata records: the only truth of the cluster's metadata. Named and shaped after
//! KRaft's records (KIP-631, KIP-746) so Kafka's documentation explains them; the
//! controller glue stores them as JSON in the metadata log.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker (node) id, Kafka's `int32`.
pub type BrokerId = i32;

/// `leader` of a partition that has none (Kafka's `NO_LEADER`).
pub const NO_LEADER: BrokerId = -1;

/// The feature that turns on eligible leader replicas (KIP-966).
pub const ELR_FEATURE: &str = "eligible.leader.replicas.version";

/// A listener a broker advertises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name, e.g. `PLAINTEXT` for clients or `INTERNAL` for peers.
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A broker as the image knows it (Kafka's `BrokerRegistration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: BrokerId,
    /// Random per process start: tells a restart from a retried registration.
    pub incarnation: Uuid,
    /// Grows with every registration of any broker; AlterPartition and producer-id
    /// requests carry it so a previous incarnation's requests are refused (KIP-903).
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// Whether a leader elected uncleanly has finished recovering its log (KIP-704).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderRecovery {
    #[default]
    Recovered,
    Recovering,
}

/// The fields of Kafka's `PartitionRecord`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    /// All replicas, the preferred leader first.
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    /// Eligible leader replicas (KIP-966 part 1): members that left the ISR while it was
    /// below `min.insync.replicas` (the high watermark cannot move then), so they hold every
    /// committed record and may lead cleanly. Empty while the feature is off, with
    /// `min.insync.replicas` 1, and whenever the ISR is at least `min.insync.replicas`.
    pub elr: Vec<BrokerId>,
    /// The last ISR members when the ISR became empty (KIP-966's last known ELR): elected
    /// after the ELR, as Kafka waits for the last leader. Empty while the ISR is not.
    #[serde(default)]
    pub last_known_elr: Vec<BrokerId>,
    /// Reassignment (KIP-455): replicas being added and removed.
    pub adding: Vec<BrokerId>,
    pub removing: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub leader_recovery: LeaderRecovery,
}

impl PartitionRegistration {
    /// A new partition led by its first replica with every replica in the ISR.
    pub fn new(replicas: Vec<BrokerId>) -> Self {
        let leader = replicas.first().copied().unwrap_or(NO_LEADER);
        Self {
            isr: replicas.clone(),
            replicas,
            elr: Vec::new(),
            last_known_elr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            leader_recovery: LeaderRecovery::Recovered,
        }
    }

    pub fn preferred_leader(&self) -> Option<BrokerId> {
        self.replicas.first().copied()
    }
}

/// What a config record applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic(String),
    Broker(BrokerId),
    /// The cluster-wide default of broker keys (Kafka's broker resource with an empty name).
    ClusterDefault,
}

/// One ACL (KRaft's `AccessControlEntryRecord`): Kafka's wire codes for the resource type,
/// pattern type, operation and permission, so this crate needs no ACL model of its own;
/// the broker validates and interprets them. An ACL is its own identity: creating one that
/// exists changes nothing, as Kafka.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    pub resource_type: i8,
    pub name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// One entry of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// The first entry of the first active controller.
    ClusterId {
        cluster_id: String,
    },
    /// FeatureLevelRecord: e.g. [`ELR_FEATURE`].
    FeatureLevel {
        name: String,
        level: i16,
    },
    /// RegisterBrokerRecord. A registration replaces any earlier one of the same id.
    RegisterBroker(BrokerRegistration),
    /// BrokerRegistrationChangeRecord (and KRaft's Fence/UnfenceBrokerRecord): only the
    /// fields that are `Some` change.
    BrokerRegistrationChange {
        id: BrokerId,
        epoch: i64,
        fenced: Option<bool>,
        in_controlled_shutdown: Option<bool>,
    },
    UnregisterBroker {
        id: BrokerId,
        epoch: i64,
    },
    Topic {
        name: String,
        topic_id: Uuid,
    },
    /// RemoveTopicRecord: the topic, its partitions and its configs go.
    RemoveTopic {
        topic_id: Uuid,
    },
    Partition {
        topic_id: Uuid,
        partition: i32,
        registration: PartitionRegistration,
    },
    /// PartitionChangeRecord: only the fields that are `Some` change. `partition_epoch`
    /// grows by one on every change, `leader_epoch` whenever `leader` is set.
    PartitionChange(PartitionChange),
    /// ConfigRecord: `value: None` removes the key.
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    /// AccessControlEntryRecord: the ACL is in force on every broker.
    AccessControlEntry(AclEntry),
    /// RemoveAccessControlEntryRecord: removing an ACL that is not there changes nothing.
    RemoveAccessControlEntry(AclEntry),
    /// ProducerIdsRecord (KIP-730): the block handed to `broker_id` ends below
    /// `next_producer_id`, where the next block starts.
    ProducerIds {
        broker_id: BrokerId,
        broker_epoch: i64,
        next_producer_id: i64,
    },
}

/// The changed fields of a partition (Kafka's `PartitionChangeRecord`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader: Option<BrokerId>,
    pub isr: Option<Vec<BrokerId>>,
    pub elr: Option<Vec<BrokerId>>,
    #[serde(default)]
    pub last_known_elr: Option<Vec<BrokerId>>,
    pub replicas: Option<Vec<BrokerId>>,
    pub adding: Option<Vec<BrokerId>>,
    pub removing: Option<Vec<BrokerId>>,
    pub leader_recovery: Option<LeaderRecovery>,
}

impl PartitionChange {
    /// Whether the record changes nothing but the partition epoch.
    pub fn is_empty(&self) -> bool {
        self.leader.is_none()
            && self.isr.is_none()
            && self.elr.is_none()
            && self.last_known_elr.is_none()
            && self.replicas.is_none()
            && self.adding.is_none()
            && self.removing.is_none()
            && self.leader_recovery.is_none()
    }

    /// The registration after this change (the epoch rules of KRaft's replay).
    pub fn apply_to(&self, old: &PartitionRegistration) -> PartitionRegistration {
        let mut new = old.clone();
        if let Some(leader) = self.leader {
            new.leader = leader;
            new.leader_epoch = old.leader_epoch.saturating_add(1);
        }
        if let Some(isr) = &self.isr {
            new.isr = isr.clone();
        }
        if let Some(elr) = &self.elr {
            new.elr = elr.clone();
        }
        if let Some(last) = &self.last_known_elr {
            new.last_known_elr = last.clone();
        }
        if let Some(replicas) = &self.replicas {
            new.replicas = replicas.clone();
        }
        if let Some(adding) = &self.adding {
            new.adding = adding.clone();
        }
        if let Some(removing) = &self.removing {
            new.removing = removing.clone();
        }
        if let Some(recovery) = self.leader_recovery {
            new.leader_recovery = recovery;
        }
        new.partition_epoch = old.partition_epoch.saturating_add(1);
        new
    }
}
