//! Routes group requests to the coordinator that holds the group (design §7.1).
//!
//! Single node: one coordinator over `meta/group-offsets`, every group's. Cluster mode: one
//! shard per `__consumer_offsets` partition led here, the group's partition being Java's
//! `String.hashCode` of its id, non-negative, modulo the partition count (Kafka's mapping).
//! The shards follow their partitions' leaderships through `crate::shards` (loaded under a
//! new leader epoch, COORDINATOR_LOAD_IN_PROGRESS meanwhile; unloaded, NOT_COORDINATOR,
//! when the leadership goes), as the transaction coordinator's do.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use weir_coordinator::{
    CommitRequest, CommittedOffset, CoordinatorConfig, ErrorCode, JoinRequest, JoinResponse,
    SyncRequest, SyncResponse, TopicPartition,
};
use weir_storage::StorageError;

use crate::cluster::ImageCell;
use crate::groups::{Groups, GroupsError};
use crate::partition::Partition;
use crate::shards::{Shard, Shards};

/// Kafka's name of the group coordinator's internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub struct GroupRouter {
    config: CoordinatorConfig,
    /// The single node's one coordinator; None in cluster mode.
    local: Option<Arc<Groups>>,
    /// Cluster mode: the shards of this broker's `__consumer_offsets` leaderships.
    shards: Arc<Shards<Groups>>,
    image: Arc<ImageCell>,
    /// This broker's node id (cluster mode).
    local_node: i32,
    /// Stops the shards' timers when the broker stops.
    stop: broadcast::Sender<()>,
    /// A creation of `__consumer_offsets` is under way (`State::ensure_offsets_topic`).
    pub(crate) creating: AtomicBool,
}

impl Shard for Groups {
    fn unload(&self) {
        Groups::unload(self);
    }
}

/// The partition of `key` among `count` (Kafka's `Utils.abs(key.hashCode()) % count`).
pub fn partition_for(key: &str, count: usize) -> i32 {
    let hash = crate::cluster::coordinator::java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    i32::try_from(usize::try_from(abs).unwrap_or(0) % count.max(1)).unwrap_or(0)
}

impl GroupRouter {
    /// The single node's router over its one coordinator.
    pub fn local(groups: Arc<Groups>, config: CoordinatorConfig) -> GroupRouter {
        GroupRouter {
            config,
            local: Some(groups),
            shards: Arc::new(Shards::new("group")),
            image: Arc::default(),
            local_node: -1,
            stop: broadcast::channel(1).0,
            creating: AtomicBool::new(false),
        }
    }

    /// Cluster mode: shards come and go with the leaderships in `image`; `local_node` is
    /// this broker's id.
    pub fn cluster(
        config: CoordinatorConfig,
        image: Arc<ImageCell>,
        local_node: i32,
    ) -> GroupRouter {
        GroupRouter {
            config,
            local: None,
            shards: Arc::new(Shards::new("group")),
            image,
            local_node,
            stop: broadcast::channel(1).0,
            creating: AtomicBool::new(false),
        }
    }

    /// The `__consumer_offsets` partition of `group` in the current image.
    pub fn partition_of(&self, group: &str) -> Option<i32> {
        let image = self.image.image();
        let count = image.topic_by_name(OFFSETS_TOPIC)?.partitions.len();
        (count > 0).then(|| partition_for(group, count))
    }

    /// The coordinator of `group` when it is loaded here; else NOT_COORDINATOR, or
    /// COORDINATOR_LOAD_IN_PROGRESS while its shard loads or is about to
    /// ([`ImageCell::shard_pending`]).
    pub fn shard(&self, group: &str) -> Result<Arc<Groups>, ErrorCode> {
        if let Some(local) = &self.local {
            return Ok(local.clone());
        }
        // Without the lease (§4.9) the loaded shard may be a former one, moved while this
        // broker was paused or cut off: nothing is answered from its memory.
        // (A broker still catching up after its start has no lease yet either: it answers
        // COORDINATOR_LOAD_IN_PROGRESS as before, since its shards are about to load.)
        if !self.image.serving() {
            return Err(if self.image.is_caught_up() {
                ErrorCode::NOT_COORDINATOR
            } else {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            });
        }
        let Some(p) = self.partition_of(group) else {
            return Err(if self.image.is_caught_up() {
                ErrorCode::NOT_COORDINATOR
            } else {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            });
        };
        let pending = self.image.shard_pending(OFFSETS_TOPIC, p, self.local_node);
        self.shards.get_or_pending(p, pending)
    }

    fn loaded(&self) -> Vec<Arc<Groups>> {
        if let Some(local) = &self.local {
            return vec![local.clone()];
        }
        self.shards.loaded()
    }

    /// The publisher gave `__consumer_offsets`-`index` a role here: a leadership under a
    /// new epoch loads its shard (replacing one of an older epoch), any other role unloads.
    pub fn partition_role(&self, index: i32, partition: &Arc<Partition>) {
        let config = self.config.clone();
        let stop = self.stop.clone();
        self.shards.partition_role(
            index,
            partition,
            move |p, epoch| Groups::load_shard(p, epoch, config.clone()).map_err(|e| e.to_string()),
            move |groups| {
                tokio::spawn(groups.clone().run_timer(stop.subscribe()));
            },
        );
    }

    /// `__consumer_offsets`-`index` is no longer led here (or no longer exists).
    pub fn unload(&self, index: i32) {
        self.shards.unload(index);
    }

    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        match self.shard(&req.group_id) {
            Ok(g) => g.join(req).await,
            Err(code) => join_failed(code),
        }
    }

    pub async fn sync(&self, req: SyncRequest) -> SyncResponse {
        match self.shard(&req.group_id) {
            Ok(g) => g.sync(req).await,
            Err(code) => sync_failed(code),
        }
    }

    pub fn heartbeat(
        &self,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> ErrorCode {
        match self.shard(group) {
            Ok(g) => g.heartbeat(group, generation, member, instance),
            Err(code) => code,
        }
    }

    pub fn leave(
        &self,
        group: &str,
        members: Vec<weir_coordinator::LeaveMember>,
    ) -> weir_coordinator::LeaveResponse {
        match self.shard(group) {
            Ok(g) => g.leave(group, members),
            Err(error) => weir_coordinator::LeaveResponse {
                error,
                members: Vec::new(),
            },
        }
    }

    pub async fn commit(&self, req: CommitRequest) -> Vec<(TopicPartition, ErrorCode)> {
        match self.shard(&req.group_id) {
            Ok(g) => g.commit(req).await,
            Err(code) => req.offsets.into_iter().map(|(tp, _)| (tp, code)).collect(),
        }
    }

    /// Settles a decided transaction's pending commits in `group`; NotCoordinator when the
    /// group's shard is not here (cluster mode).
    pub async fn settle_txn(
        &self,
        group: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), GroupsError> {
        let g = self.shard(group).map_err(|_| GroupsError::NotCoordinator)?;
        g.settle_txn(group, producer_id, commit).await
    }

    /// A transaction marker for `__consumer_offsets`-`index` from the coordinator of
    /// `producer_id`: settles its pending offsets in every group of that shard.
    /// NOT_COORDINATOR when the shard is not led here, COORDINATOR_LOAD_IN_PROGRESS while it
    /// loads (the sender retries both).
    pub async fn settle_shard(
        &self,
        index: i32,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        let shard = match &self.local {
            Some(local) => local.clone(),
            None => self.shards.get(index)?,
        };
        shard
            .settle_producer(producer_id, commit)
            .await
            .map_err(|e| e.code())
    }

    /// Whether the single node's offsets log was poisoned (a failed fsync).
    pub fn is_poisoned(&self) -> bool {
        self.local.as_ref().is_some_and(|g| g.is_poisoned())
    }

    pub fn unstable_partitions(&self, group: &str) -> BTreeSet<TopicPartition> {
        self.shard(group)
            .map(|g| g.unstable_partitions(group))
            .unwrap_or_default()
    }

    pub async fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, ErrorCode> {
        self.shard(group)?.fetch_offsets(group, partitions).await
    }

    pub async fn consumer_heartbeat(
        &self,
        req: weir_coordinator::ConsumerHeartbeat,
        topics: &(dyn Fn(&str) -> Option<i32> + Sync),
    ) -> weir_coordinator::ConsumerHeartbeatResponse {
        match self.shard(&req.group_id) {
            Ok(g) => g.consumer_heartbeat(req, topics).await,
            Err(code) => consumer_heartbeat_failed(code),
        }
    }

    pub fn consumer_describe(
        &self,
        groups: &[String],
    ) -> Vec<weir_coordinator::ConsumerGroupDescription> {
        if let Some(local) = &self.local {
            return local.consumer_describe(groups);
        }
        groups
            .iter()
            .map(|group| match self.shard(group) {
                Ok(g) => g
                    .consumer_describe(std::slice::from_ref(group))
                    .pop()
                    .unwrap_or_else(|| consumer_describe_failed(group, ErrorCode::NONE)),
                Err(code) => consumer_describe_failed(group, code),
            })
            .collect()
    }

    /// Every group coordinated here, for metrics.
    pub fn stats(&self) -> Vec<weir_coordinator::GroupStats> {
        self.loaded().iter().flat_map(|g| g.stats()).collect()
    }

    pub fn group_type(&self, group: &str) -> Option<weir_coordinator::GroupType> {
        self.shard(group).ok()?.group_type(group)
    }

    pub fn describe(&self, group: &str) -> weir_coordinator::GroupDescription {
        match self.shard(group) {
            Ok(g) => g.describe(group),
            Err(code) => describe_failed(group, code),
        }
    }

    /// The groups coordinated here (Kafka's ListGroups is per broker).
    pub fn list(
        &self,
        states: &[weir_coordinator::GroupState],
    ) -> Result<Vec<weir_coordinator::GroupListing>, ErrorCode> {
        let mut all = Vec::new();
        for g in self.loaded() {
            all.extend(g.list(states)?);
        }
        Ok(all)
    }

    pub async fn delete_groups(&self, groups: Vec<String>) -> Vec<(String, ErrorCode)> {
        if let Some(local) = &self.local {
            return local.delete_groups(groups).await;
        }
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            match self.shard(&group) {
                Ok(g) => out.extend(g.delete_groups(vec![group]).await),
                Err(code) => out.push((group, code)),
            }
        }
        out
    }

    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> weir_coordinator::DeleteOffsetsResponse {
        match self.shard(group) {
            Ok(g) => g.delete_offsets(group, partitions).await,
            Err(error) => weir_coordinator::DeleteOffsetsResponse {
                error,
                partitions: Vec::new(),
            },
        }
    }

    /// A topic was deleted: its committed offsets go too, in every shard here.
    pub fn topic_deleted(&self, topic: &str) {
        for g in self.loaded() {
            g.topic_deleted(topic);
        }
    }

    /// Drives the single node's timer; in cluster mode each shard runs its own, stopped
    /// with this one.
    pub async fn run_timer(self: Arc<Self>, mut stop: broadcast::Receiver<()>) {
        match &self.local {
            Some(local) => local.clone().run_timer(stop).await,
            None => {
                let _ = stop.recv().await;
                let _ = self.stop.send(());
            }
        }
    }

    pub fn close(&self) -> Result<(), StorageError> {
        match &self.local {
            Some(local) => local.close(),
            None => Ok(()),
        }
    }
}

/// A JoinGroup this coordinator cannot answer.
pub fn join_failed(error: ErrorCode) -> JoinResponse {
    JoinResponse {
        error,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        skip_assignment: false,
        member_id: String::new(),
        members: Vec::new(),
    }
}

/// A SyncGroup this coordinator cannot answer.
pub fn sync_failed(error: ErrorCode) -> SyncResponse {
    SyncResponse {
        error,
        protocol_type: None,
        protocol_name: None,
        assignment: Bytes::new(),
    }
}

/// A ConsumerGroupHeartbeat this coordinator cannot answer.
pub fn consumer_heartbeat_failed(error: ErrorCode) -> weir_coordinator::ConsumerHeartbeatResponse {
    weir_coordinator::ConsumerHeartbeatResponse {
        error,
        error_message: Some(GroupsError::Unavailable.to_string()),
        member_id: String::new(),
        member_epoch: 0,
        heartbeat_interval_ms: 0,
        assignment: None,
    }
}

/// A consumer group this coordinator cannot describe.
pub fn consumer_describe_failed(
    group: &str,
    error: ErrorCode,
) -> weir_coordinator::ConsumerGroupDescription {
    weir_coordinator::ConsumerGroupDescription {
        error,
        error_message: Some(GroupsError::Unavailable.to_string()),
        group_id: group.to_owned(),
        state: weir_coordinator::GroupState::Dead,
        group_epoch: 0,
        assignment_epoch: 0,
        assignor_name: String::new(),
        members: Vec::new(),
    }
}

/// A classic group this coordinator cannot describe.
pub fn describe_failed(group: &str, error: ErrorCode) -> weir_coordinator::GroupDescription {
    weir_coordinator::GroupDescription {
        error,
        group_id: group.to_owned(),
        state: weir_coordinator::GroupState::Dead,
        protocol_type: String::new(),
        protocol: String::new(),
        members: Vec::new(),
    }
}
