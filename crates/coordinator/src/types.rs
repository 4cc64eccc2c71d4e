//! The coordinator's inputs and outputs. The broker translates Kafka wire structs into these
//! and back; nothing here knows about API versions or encodings.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use crate::consumer_persist::ConsumerGroupSnapshot;
use crate::ErrorCode;

/// Names a request the coordinator may answer later (JoinGroup, SyncGroup). Chosen by the
/// broker, opaque to the coordinator. Every `RequestId` handed in is answered exactly once
/// through [`Output::Respond`] — possibly within the same call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// A committed offset as stored in the offsets log and returned by OffsetFetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// Leader epoch of the last consumed record, if the client knows it.
    pub leader_epoch: Option<i32>,
    pub metadata: Option<String>,
    /// When the commit was accepted. On input to [`crate::Coordinator::commit_offsets`]
    /// this is ignored and replaced by `now_ms`, as Kafka does; retention counts from it.
    pub commit_timestamp_ms: u64,
}

/// Group states, spelled as Kafka spells them in DescribeGroups, ConsumerGroupDescribe and
/// ListGroups. Classic groups use Empty, PreparingRebalance, CompletingRebalance, Stable and
/// Dead; consumer-protocol (KIP-848) groups use Empty, Assigning, Reconciling, Stable and
/// Dead. One enum, because ListGroups filters both kinds with one list of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members. May still hold committed offsets.
    Empty,
    /// Classic: waiting for members to (re)join.
    PreparingRebalance,
    /// Classic: every member has its JoinGroup answer; waiting for the leader's assignment.
    CompletingRebalance,
    /// Consumer protocol: the group epoch moved on and the target assignment for it has not
    /// been computed yet.
    Assigning,
    /// Consumer protocol: some member has not converged to the target assignment yet.
    Reconciling,
    /// Classic: the leader's assignment has been handed out. Consumer protocol: every
    /// member has its target assignment at the target epoch.
    Stable,
    /// The group does not exist (Kafka's answer for unknown groups).
    Dead,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ListGroups' state filter names a state Kafka does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown group state {name:?}")]
pub struct UnknownGroupState {
    pub name: String,
}

impl FromStr for GroupState {
    type Err = UnknownGroupState;

    /// Case-insensitive, as ListGroups v4+ state filters are (KIP-518).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [
            Self::Empty,
            Self::PreparingRebalance,
            Self::CompletingRebalance,
            Self::Assigning,
            Self::Reconciling,
            Self::Stable,
            Self::Dead,
        ]
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| UnknownGroupState {
            name: name.to_owned(),
        })
    }
}

/// JoinGroup, any version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// Set for static members (KIP-345).
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// `(name, metadata)` in the member's order of preference. Metadata is opaque.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: i32,
    /// JoinGroup v0 has none: the broker passes the session timeout, as Kafka does.
    pub rebalance_timeout_ms: i32,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+: a member without an id is handed one and must join again with it.
    pub require_known_member_id: bool,
    pub reason: Option<String>,
}

/// One member in the leader's JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol, untouched.
    pub metadata: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: ErrorCode,
    /// -1 on error.
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Empty on error.
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Only filled for the leader.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    pub(crate) fn error(member_id: impl Into<String>, error: ErrorCode) -> Self {
        Self {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// SyncGroup, any version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+; checked against the group's when present.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+; checked against the group's when present.
    pub protocol_name: Option<String>,
    /// `(member_id, assignment)` from the leader; empty for followers.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The member's assignment, untouched. Empty on error.
    pub assignment: Bytes,
}

impl SyncResponse {
    pub(crate) fn error(error: ErrorCode) -> Self {
        Self {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// One member named in a LeaveGroup request (v3+ batches them; older versions send one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveMember {
    /// Empty when an administrator removes a static member by instance id.
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveMemberResult {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: ErrorCode,
}

/// LeaveGroup answer. For v0–v2 (one member, no per-member list) the broker answers with
/// the top-level error if set, else the single member's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveResponse {
    pub error: ErrorCode,
    pub members: Vec<LeaveMemberResult>,
}

/// OffsetCommit, any version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRequest {
    pub group_id: String,
    /// -1 for a simple (standalone) consumer that does not use group management.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub offsets: Vec<(TopicPartition, CommittedOffset)>,
}

/// TxnOffsetCommit, any version: offsets committed inside a producer's transaction. The
/// broker has already checked with the transaction coordinator that the producer's
/// transaction holds this group (AddOffsetsToTxn) under this producer id and epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnCommitRequest {
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// KIP-447 (v3+): the member's generation (or member epoch for a consumer-protocol
    /// group), member id and instance id; -1, "" and `None` from older clients.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub offsets: Vec<(TopicPartition, CommittedOffset)>,
}

/// OffsetDelete answer: a group-level error, else one error per partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteOffsetsResponse {
    pub error: ErrorCode,
    pub partitions: Vec<(TopicPartition, ErrorCode)>,
}

/// One member in DescribeGroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the selected protocol; empty unless the group is Stable (as Kafka).
    pub metadata: Bytes,
    /// Empty unless the group is Stable (as Kafka).
    pub assignment: Bytes,
}

/// DescribeGroups for one group. An unknown group is described as `Dead` with no error,
/// as Kafka's classic coordinator does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub error: ErrorCode,
    pub group_id: String,
    pub state: GroupState,
    /// Empty if the group never had members.
    pub protocol_type: String,
    /// Empty unless the group is Stable (as Kafka).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// Which protocol a group speaks (ListGroups v5+ `GroupType`, KIP-848).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// JoinGroup/SyncGroup/Heartbeat; also groups that only store offsets.
    Classic,
    /// ConsumerGroupHeartbeat with server-side assignment.
    Consumer,
}

impl GroupType {
    /// As ListGroups spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Consumer => "consumer",
        }
    }
}

/// One group in ListGroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// "consumer" for consumer-protocol groups, as Kafka lists them.
    pub protocol_type: String,
    pub state: GroupState,
    pub group_type: GroupType,
}

/// A group as metrics see it ([`crate::Coordinator::group_stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    pub group_id: String,
    pub members: usize,
    /// Completed rebalances: the classic generation, or the consumer group's epoch (each
    /// bumps once per new assignment). Both survive a restart while the group has members
    /// (its membership is persisted).
    pub rebalances: u64,
    /// Committed offsets (the group's, not pending transactional ones).
    pub offsets: Vec<(TopicPartition, i64)>,
}

/// The answer to a deferred request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Join(JoinResponse),
    Sync(SyncResponse),
}

/// What the broker must do after a call, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this response for the request the broker handed in under `request`.
    Respond {
        request: RequestId,
        response: Response,
    },
    /// Append these commits to the offsets log durably **before** sending the OffsetCommit
    /// response they belong to. The coordinator has already applied them in memory.
    PersistOffsets {
        group: String,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    },
    /// Append these transactional commits (pending until the producer's transaction is
    /// decided) durably before sending the TxnOffsetCommit response.
    PersistTxnOffsets {
        group: String,
        producer_id: i64,
        producer_epoch: i16,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    },
    /// The producer's pending commits in this group are settled (committed ones were
    /// persisted by the [`Output::PersistOffsets`] before this): append the record that
    /// says so, so replay does not bring them back as pending.
    TxnOffsetsSettled { group: String, producer_id: i64 },
    /// These offsets are gone (expiry, DeleteGroups, OffsetDelete, topic deletion): append
    /// tombstones so a restart does not resurrect them.
    DeleteOffsets {
        group: String,
        partitions: Vec<TopicPartition>,
    },
    /// A classic group's membership changed (a rebalance completed, a static member was
    /// replaced without one): append its record, or a tombstone (`None`) when the group
    /// became Empty. Replayed by [`crate::Coordinator::load_group`]. No answer waits for
    /// it: a coordinator that lost the record knows an older generation, and its members
    /// rejoin, as they would have without it.
    PersistGroup {
        group: String,
        snapshot: Option<GroupSnapshot>,
    },
    /// A consumer-protocol (KIP-848) group's persisted state changed: append its record,
    /// or a tombstone (`None`) when its last member left. Replayed by
    /// [`crate::Coordinator::load_consumer_group`]. Durable **before** the heartbeat
    /// answers that come with it are sent: a member told epoch N must find epoch N at the
    /// next coordinator.
    PersistConsumerGroup {
        group: String,
        snapshot: Option<ConsumerGroupSnapshot>,
    },
}

/// A classic group's membership as of its last completed rebalance (Kafka's
/// GroupMetadata record); see [`Output::PersistGroup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberSnapshot>,
}

/// One member of a [`GroupSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

// ---- the consumer group protocol (KIP-848) ----

/// Partitions by topic name, topics in name order, partitions ascending. The broker
/// translates topic ids to names and back; the coordinator only knows names.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// ConsumerGroupHeartbeat, any version, with topic ids already translated to names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerHeartbeat {
    pub group_id: String,
    /// Generated by the client since KIP-1082 (v1+); empty asks the coordinator for one (v0).
    pub member_id: String,
    /// 0 joins (or rejoins), -1 leaves, -2 leaves but keeps a static member's place until
    /// its session ends, > 0 is the member's current epoch.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    /// `None`: unchanged since the last heartbeat.
    pub rack_id: Option<String>,
    /// -1: unchanged since the last heartbeat. Required when joining.
    pub rebalance_timeout_ms: i32,
    /// `None`: unchanged since the last heartbeat. Required when joining.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Regex subscriptions are not supported: a request with one is refused
    /// (INVALID_REQUEST).
    pub subscribed_topic_regex: Option<String>,
    /// "uniform" or "range"; `None`: unchanged (the group's choice when never given).
    pub server_assignor: Option<String>,
    /// The partitions the member owns now. `None`: unchanged since the last heartbeat.
    /// Must be empty (or `None`) when joining.
    pub topic_partitions: Option<TopicPartitions>,
    /// From the request header, for ConsumerGroupDescribe.
    pub client_id: String,
    /// The peer address, for ConsumerGroupDescribe.
    pub client_host: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerHeartbeatResponse {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    /// The member's id (generated when the request had none). Empty on error, which the
    /// wire spells as null.
    pub member_id: String,
    /// The member's epoch after this heartbeat; -1 or -2 after leaving; 0 on error.
    pub member_epoch: i32,
    /// 0 on error and after leaving.
    pub heartbeat_interval_ms: i32,
    /// The member's full assignment, present only when it changed or the request was a
    /// full one (joining, or every optional field set), as Kafka sends it.
    pub assignment: Option<TopicPartitions>,
}

impl ConsumerHeartbeatResponse {
    pub(crate) fn error(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            error_message: Some(message.into()),
            member_id: String::new(),
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

/// One member in ConsumerGroupDescribe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    /// What the member has been told it owns.
    pub assignment: TopicPartitions,
    /// What the assignor wants it to own at the group's assignment epoch.
    pub target_assignment: TopicPartitions,
}

/// ConsumerGroupDescribe for one group. Unknown groups and classic groups are answered
/// GROUP_ID_NOT_FOUND with state Dead, as Kafka does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    pub group_id: String,
    /// Empty, Assigning, Reconciling, Stable or Dead.
    pub state: GroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    /// In member id order.
    pub members: Vec<ConsumerMemberDescription>,
}
