//! The controller's requests and replies: typed, so the control plane can carry them as
//! JSON and the broker can map their errors onto Kafka responses.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::MetadataError;
use crate::records::{AclEntry, BrokerId, ConfigResource, Endpoint, LeaderRecovery};

/// One topic of CreateTopics. `num_partitions` / `replication_factor` of -1 take the
/// controller's defaults; an explicit `assignment` (replicas per partition, index =
/// partition) requires both to be -1, as in Kafka.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatableTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub assignment: Option<Vec<Vec<BrokerId>>>,
    pub configs: Vec<(String, String)>,
}

/// One topic of CreatePartitions: the new total `count`, and optionally the replicas of
/// each added partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsTopic {
    pub name: String,
    pub count: i32,
    pub assignment: Option<Vec<Vec<BrokerId>>>,
}

/// One resource of an incremental AlterConfigs: `(key, Some(value))` sets, `(key,
/// None)` deletes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterConfigsResource {
    pub resource: ConfigResource,
    pub ops: Vec<(String, Option<String>)>,
}

/// A broker's registration request (BrokerRegistrationRequest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub id: BrokerId,
    pub incarnation: Uuid,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

/// BrokerHeartbeatRequest. `caught_up` is computed by the controller glue, which knows
/// the log index of the broker's registration: the broker's applied index has reached it
/// (KIP-631's initial catch-up), so it may be unfenced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    pub id: BrokerId,
    pub epoch: i64,
    pub caught_up: bool,
    pub want_fence: bool,
    pub want_shutdown: bool,
}

/// A member of a proposed ISR with the broker epoch the leader saw it fetch with
/// (KIP-903).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrMember {
    pub id: BrokerId,
    pub broker_epoch: i64,
}

/// One partition of AlterPartition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionItem {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
    pub leader_recovery: LeaderRecovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    CreateTopics {
        topics: Vec<CreatableTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<CreatePartitionsTopic>,
        validate_only: bool,
    },
    AlterConfigs {
        resources: Vec<AlterConfigsResource>,
        validate_only: bool,
    },
    RegisterBroker(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeat),
    UnregisterBroker {
        id: BrokerId,
    },
    AlterPartition {
        broker_id: BrokerId,
        broker_epoch: i64,
        partitions: Vec<AlterPartitionItem>,
    },
    AllocateProducerIds {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    /// `partitions: None` elects for every partition.
    ElectLeaders {
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// CreateAcls, validated by the broker: the ACLs not yet in force become records.
    CreateAcls {
        acls: Vec<AclEntry>,
    },
    /// DeleteAcls: the broker resolves its filters to ACLs against its image; those still
    /// in force when the controller decides are removed (and answered).
    DeleteAcls {
        acls: Vec<AclEntry>,
    },
    /// KIP-455: move partitions to new replica sets (or cancel moves in progress).
    AlterPartitionReassignments {
        partitions: Vec<Reassignment>,
    },
}

/// One partition of AlterPartitionReassignments: its target replicas, the preferred
/// leader first; `None` cancels the reassignment in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<BrokerId>>,
    /// KIP-860 (AlterPartitionReassignments v1): false refuses a target whose size differs
    /// from the partition's replication factor (INVALID_REPLICATION_FACTOR). v0: true.
    #[serde(default = "allowed")]
    pub allow_replication_factor_change: bool,
}

fn allowed() -> bool {
    true
}

/// A created topic: its id and the registrations' shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// What AlterPartition committed for one partition (or why not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionResult {
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<BrokerId>,
    pub leader_recovery: LeaderRecovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// The answer to each request, item by item in request order. Whole-request errors (e.g.
/// a stale broker epoch) are `Err` of the outer `Result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    CreateTopics(Vec<(String, Result<CreatedTopic, MetadataError>)>),
    DeleteTopics(Vec<(String, Result<Uuid, MetadataError>)>),
    CreatePartitions(Vec<(String, Result<(), MetadataError>)>),
    AlterConfigs(Vec<(ConfigResource, Result<(), MetadataError>)>),
    RegisterBroker(Result<i64, MetadataError>),
    BrokerHeartbeat(Result<HeartbeatReply, MetadataError>),
    UnregisterBroker(Result<(), MetadataError>),
    #[allow(clippy::type_complexity)]
    AlterPartition(
        Result<Vec<(Uuid, i32, Result<AlterPartitionResult, MetadataError>)>, MetadataError>,
    ),
    /// `(first producer id, count)`.
    AllocateProducerIds(Result<(i64, i32), MetadataError>),
    ElectLeaders(Vec<(String, i32, Result<(), MetadataError>)>),
    AlterPartitionReassignments(Vec<(String, i32, Result<(), MetadataError>)>),
    CreateAcls(Result<(), MetadataError>),
    /// The ACLs removed, each once.
    DeleteAcls(Result<Vec<AclEntry>, MetadataError>),
}
