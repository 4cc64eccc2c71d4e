//! `cluster::Publisher` (design §4.8, §5.1): consumes the metadata quorum's applied entries in
//! order and makes this broker's replicas match the image: it creates or opens the logs of
//! the partitions this broker replicates (on the blocking pool), gives each its role only for
//! a newer leader epoch (or a first role after start), removes the replicas of deleted topics
//! by topic id, and swaps the image the handlers read.
//!
//! Until the broker has caught up with the quorum (§4.7 step 2) it only records images: a
//! restarting broker must not lead with a stale epoch, nor delete a directory because an old
//! image lacks its topic. Every step is idempotent, since a restart re-applies the entries
//! after the snapshot, and a `Reset` (snapshot install) reconciles everything.
//!
//! Kafka's stray-replica rule decides deletions: a partition directory carries
//! `partition.metadata` (its topic id); it is removed only when the caught-up image no longer
//! has that topic id, or no longer names this broker among its replicas. A directory of the
//! same name and another topic id is an older topic's, so a deleted-then-recreated name never
//! reuses its data. A directory without the file is left alone and not served.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;
use weir_metadata::{
    BrokerId, ConfigResource, MetadataDelta, MetadataImage, PartitionRegistration,
};
use weir_replication::LeaderConfig;
use weir_storage::{Log, Recovery};

use super::DataPlane;
use crate::config::BrokerConfig;
use crate::partition::{Partition, PartitionError, Role};
use crate::state::State;

/// The file in each partition directory naming its topic id (Kafka's name).
pub const PARTITION_METADATA: &str = "partition.metadata";

/// What one applied entry changed (the broker's view of the controller's `Change`).
#[derive(Clone, Debug)]
pub enum Change {
    Delta(Box<MetadataDelta>),
    /// A snapshot replaced the image: reconcile everything against it.
    Reset,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("a blocking task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("partition {topic}-{partition}: {source}")]
    Role {
        topic: String,
        partition: i32,
        #[source]
        source: PartitionError,
    },
}

/// The image handlers read; the publisher swaps it after applying each entry (and after
/// this broker's replicas and topic table follow it, so an index seen here is served).
pub struct ImageCell {
    current: RwLock<(u64, Arc<MetadataImage>)>,
    published: tokio::sync::watch::Sender<u64>,
    /// Set once the broker caught up with the quorum: before, a topic missing from the
    /// image may only not be replayed yet (what the transaction markers of a recovery wait
    /// for before they conclude a topic was deleted).
    caught_up: tokio::sync::watch::Sender<bool>,
    /// The broker's lease (§4.9; `cluster/lease.rs`), installed by the binary in cluster
    /// mode. Without one the broker always serves (single node, tests of handlers alone).
    pub(super) lease: std::sync::OnceLock<std::sync::Mutex<super::lease::Lease>>,
    /// Bumped at every answered heartbeat: requests held for the lease wake on it (and on
    /// `published`, since a grant may wait for an image).
    pub(super) lease_renewed: tokio::sync::watch::Sender<u64>,
    /// Set when this broker begins to stop (controlled shutdown): requests no longer wait
    /// for a lease that will not come back (`cluster/lease.rs`).
    pub(super) stopping: std::sync::atomic::AtomicBool,
}

impl Default for ImageCell {
    fn default() -> Self {
        ImageCell {
            current: RwLock::default(),
            published: tokio::sync::watch::Sender::new(0),
            caught_up: tokio::sync::watch::Sender::new(false),
            lease: std::sync::OnceLock::new(),
            lease_renewed: tokio::sync::watch::Sender::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl ImageCell {
    /// The latest published image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// The index of the entry the latest image includes (0: none yet).
    pub fn index(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// A receiver of the published index (what lease waits wake on).
    pub(super) fn published_rx(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Resolves once an image including entry `index` is published.
    pub async fn published(&self, index: u64) {
        let mut rx = self.published.subscribe();
        // The sender lives as long as `self`, so the wait ends only with the index.
        let _ = rx.wait_for(|i| *i >= index).await;
    }

    /// Whether the broker has caught up with the quorum (see [`ImageCell::caught_up`]).
    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// Marks the broker caught up with the quorum, waking [`ImageCell::caught_up`].
    pub(crate) fn mark_caught_up(&self) {
        self.caught_up.send_replace(true);
    }

    /// Whether node `local` is about to serve the coordinator shard of `topic`'s
    /// `partition` though it serves none yet: before the broker caught up it gives no roles
    /// at all (what it will lead is not known), and afterwards the image can name it the
    /// partition's leader before the publisher has given it the role (it gives roles one
    /// partition at a time, replaying each shard's log). A request meanwhile should get
    /// COORDINATOR_LOAD_IN_PROGRESS (retried here), not NOT_COORDINATOR (which sends the
    /// client back to FindCoordinator, whose answer names this broker again).
    pub fn shard_pending(&self, topic: &str, partition: i32, local: i32) -> bool {
        !self.is_caught_up()
            || self
                .image()
                .topic_by_name(topic)
                .and_then(|t| t.partitions.get(&partition))
                .is_some_and(|reg| reg.leader == local)
    }

    /// Resolves once the broker has caught up with the quorum (its image is current).
    pub async fn caught_up(&self) {
        let mut rx = self.caught_up.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Publishes `image` as of entry `index`. An older index is ignored: the publisher may
    /// see an entry again after a baseline that already includes it, and the cell must not
    /// go back to an image older than an index it announced.
    pub(crate) fn set(&self, index: u64, image: Arc<MetadataImage>) {
        {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            if index < current.0 {
                return;
            }
            *current = (index, image);
        }
        self.published.send_if_modified(|i| {
            let moved = index > *i;
            *i = (*i).max(index);
            moved
        });
    }
}

/// One local replica: its topic (by id and the name its directory uses) and partition.
struct Replica {
    topic: String,
    partition: Arc<Partition>,
}

pub struct Publisher {
    local: BrokerId,
    data_dir: PathBuf,
    /// The broker config as started: log defaults under each topic's overrides.
    broker: Arc<BrokerConfig>,
    /// `min.insync.replicas` of topics without an override.
    default_min_insync_replicas: usize,
    /// High watermarks read from the replication-offset-checkpoint at start.
    checkpointed: crate::hw_checkpoint::HighWatermarks,
    caught_up: bool,
    image: Arc<ImageCell>,
    replicas: BTreeMap<(Uuid, i32), Replica>,
    /// The broker whose topic table follows the image (None in tests of replicas alone).
    state: Option<Arc<State>>,
    /// Replication's side (fetchers, the replica table); None: roles only (tests).
    data_plane: Option<Arc<DataPlane>>,
    /// The image ACLs last handed to the broker's index (compared by pointer: the image
    /// copies them only when an ACL record changes them).
    acls_synced: Option<Arc<std::collections::BTreeSet<weir_metadata::AclEntry>>>,
}

impl Publisher {
    pub fn new(
        local: BrokerId,
        broker: Arc<BrokerConfig>,
        default_min_insync_replicas: usize,
        checkpointed: crate::hw_checkpoint::HighWatermarks,
    ) -> Publisher {
        Publisher {
            local,
            data_dir: broker.data_dir.clone(),
            broker,
            default_min_insync_replicas: default_min_insync_replicas.max(1),
            checkpointed,
            caught_up: false,
            image: Arc::new(ImageCell::default()),
            replicas: BTreeMap::new(),
            state: None,
            data_plane: None,
            acls_synced: None,
        }
    }

    /// Drives `data_plane` from now on: replica fetches find the replicas opened here,
    /// followers are handed to their leader's fetcher, others taken from it.
    pub fn set_data_plane(&mut self, data_plane: Arc<DataPlane>) {
        self.data_plane = Some(data_plane);
    }

    /// The publisher of `state`'s broker (cluster mode): it publishes into the broker's
    /// image cell and keeps its topic table on the image.
    pub fn for_state(state: &Arc<State>) -> Publisher {
        let mut publisher = Publisher::new(
            state.config.node_id,
            state.broker_configs.effective(),
            usize::try_from(state.config.cluster.min_insync_replicas).unwrap_or(1),
            state.checkpointed_high_watermarks.clone(),
        );
        publisher.image = state.image.clone();
        publisher.state = Some(state.clone());
        publisher
    }

    /// Makes the broker's topic table match `image` and the replicas opened here.
    fn sync_state(&mut self, image: &MetadataImage) {
        if let Some(state) = &self.state {
            state.sync_cluster_topics(image, &|id, p| self.replica(id, p));
            // ACLs are enforced from the first image on, before the broker caught up: the
            // baseline applied at start is the local metadata log's.
            if self
                .acls_synced
                .as_ref()
                .is_none_or(|seen| !Arc::ptr_eq(seen, image.acls()))
            {
                state.sync_cluster_acls(image);
                self.acls_synced = Some(image.acls().clone());
            }
        }
    }

    /// What handlers read.
    pub fn image_cell(&self) -> Arc<ImageCell> {
        self.image.clone()
    }

    /// This broker's replica of `topic_id`'s `partition`, once the publisher opened it.
    pub fn replica(&self, topic_id: Uuid, partition: i32) -> Option<Arc<Partition>> {
        self.replicas
            .get(&(topic_id, partition))
            .map(|r| r.partition.clone())
    }

    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// Applies one entry, in the quorum's order. Before [`Publisher::caught_up`] only the
    /// image is recorded.
    pub async fn apply(
        &mut self,
        index: u64,
        image: Arc<MetadataImage>,
        change: &Change,
    ) -> Result<(), PublishError> {
        if let (Some(dp), Some(b)) = (&self.data_plane, image.broker(self.local)) {
            dp.set_broker_epoch(b.epoch);
        }
        if self.caught_up {
            match change {
                Change::Delta(delta) => {
                    if let Some(state) = &self.state {
                        crate::metrics_state::count_isr_changes(
                            &state.metrics,
                            &self.image.image(),
                            &image,
                            delta.partitions.keys().copied(),
                            self.local,
                        );
                    }
                    self.apply_delta(&image, delta).await?
                }
                Change::Reset => self.reconcile(&image).await?,
            }
        }
        self.sync_state(&image);
        self.image.set(index, image);
        Ok(())
    }

    /// The broker caught up with the quorum (its registration is applied): from now on
    /// entries change replicas, starting with a full reconcile against the latest image.
    pub async fn caught_up(&mut self) -> Result<(), PublishError> {
        self.caught_up = true;
        let image = self.image.image();
        self.reconcile(&image).await?;
        self.sync_state(&image);
        self.image.mark_caught_up();
        self.remove_strays(image).await
    }

    async fn apply_delta(
        &mut self,
        image: &MetadataImage,
        delta: &MetadataDelta,
    ) -> Result<(), PublishError> {
        for (_, id) in &delta.topics_deleted {
            self.remove_topic(*id).await;
        }
        let mut touched: Vec<(Uuid, i32)> = delta.partitions.keys().copied().collect();
        // A config change (min.insync.replicas) reaches the leaders of the topic.
        for resource in &delta.configs_changed {
            if let ConfigResource::Topic(name) = resource {
                if let Some(t) = image.topic_by_name(name) {
                    touched.extend(t.partitions.keys().map(|p| (t.id, *p)));
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for (id, p) in touched {
            self.reconcile_partition(image, id, p).await?;
        }
        Ok(())
    }

    async fn reconcile(&mut self, image: &MetadataImage) -> Result<(), PublishError> {
        let gone: Vec<Uuid> = self
            .replicas
            .keys()
            .map(|(id, _)| *id)
            .filter(|id| image.topic(*id).is_none())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for id in gone {
            self.remove_topic(id).await;
        }
        let all: Vec<(Uuid, i32)> = image.partitions().map(|(id, p, _)| (id, p)).collect();
        for (id, p) in all {
            self.reconcile_partition(image, id, p).await?;
        }
        Ok(())
    }

    async fn reconcile_partition(
        &mut self,
        image: &MetadataImage,
        topic_id: Uuid,
        index: i32,
    ) -> Result<(), PublishError> {
        let (Some(topic), Some(reg)) = (image.topic(topic_id), image.partition(topic_id, index))
        else {
            return Ok(());
        };
        let name = topic.name.clone();
        if !reg.replicas.contains(&self.local) {
            if let Some(replica) = self.replicas.remove(&(topic_id, index)) {
                tracing::info!(topic = %name, partition = index, "no longer a replica; removing it");
                if let Some(dp) = &self.data_plane {
                    dp.replica_removed(topic_id, &name, index);
                }
                replica.partition.become_not_replica();
                self.coordinator_role(&name, index, None);
                replica.partition.mark_deleted();
                remove_dirs(vec![replica.partition.dir().to_path_buf()]).await;
            }
            return Ok(());
        }
        let partition = match self.replicas.get(&(topic_id, index)) {
            Some(r) => r.partition.clone(),
            None => {
                let Some(p) = self.open_replica(image, &name, topic_id, index).await? else {
                    return Ok(());
                };
                self.replicas.insert(
                    (topic_id, index),
                    Replica {
                        topic: name.clone(),
                        partition: p.clone(),
                    },
                );
                if let Some(dp) = &self.data_plane {
                    dp.replica_opened(topic_id, &name, p.clone());
                }
                p
            }
        };
        let config = LeaderConfig {
            local: self.local,
            local_broker_epoch: image.broker(self.local).map_or(-1, |b| b.epoch),
            min_insync_replicas: self.min_insync_replicas(image, &name),
            replica_lag_time_max_ms: self.broker.replica.lag_time_max_ms,
        };
        if let Some(dp) = &self.data_plane {
            dp.before_role(topic_id, &name, index, reg);
        }
        give_role(&partition, reg, config, self.local).map_err(|source| PublishError::Role {
            topic: name.clone(),
            partition: index,
            source,
        })?;
        if let Some(dp) = &self.data_plane {
            dp.after_role(topic_id, &name, &partition);
        }
        self.coordinator_role(&name, index, Some(&partition));
        Ok(())
    }

    /// A coordinator shard follows its partition's role (design §7.2): led here loads it,
    /// anything else (`None`: the replica is gone) unloads it.
    fn coordinator_role(&self, topic: &str, index: i32, partition: Option<&Arc<Partition>>) {
        let Some(state) = &self.state else { return };
        match (topic, partition) {
            (crate::group_router::OFFSETS_TOPIC, Some(p)) => state.groups.partition_role(index, p),
            (crate::group_router::OFFSETS_TOPIC, None) => state.groups.unload(index),
            (crate::txn_router::TXN_STATE_TOPIC, Some(p)) => {
                state.txns.partition_role(state, index, p)
            }
            (crate::txn_router::TXN_STATE_TOPIC, None) => state.txns.unload(index),
            _ => {}
        }
    }

    fn min_insync_replicas(&self, image: &MetadataImage, topic: &str) -> usize {
        image
            .config(
                &ConfigResource::Topic(topic.to_string()),
                "min.insync.replicas",
            )
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.default_min_insync_replicas)
            .max(1)
    }

    /// Opens (or creates) this broker's replica of `name`-`index` on the blocking pool. None
    /// when its directory belongs to no known topic (no `partition.metadata`): left alone.
    async fn open_replica(
        &self,
        image: &MetadataImage,
        name: &str,
        topic_id: Uuid,
        index: i32,
    ) -> Result<Option<Arc<Partition>>, PublishError> {
        let dir = self.data_dir.join(format!("{name}-{index}"));
        let overrides = image
            .configs(&ConfigResource::Topic(name.to_string()))
            .cloned()
            .unwrap_or_default();
        // The broker's live defaults (dynamic broker configs), as `sync_cluster_topics`
        // applies them to replicas already open; the snapshot only without a state (tests).
        let broker = self
            .state
            .as_ref()
            .map_or_else(|| self.broker.clone(), |s| s.broker_configs.effective());
        let log_config = crate::topic_config::log_config(&overrides, &broker);
        let checkpointed = self
            .checkpointed
            .get(&(name.to_string(), index))
            .copied()
            .unwrap_or(0);
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            if dir.exists() {
                match read_partition_metadata(&dir) {
                    Some(id) if id == topic_id => {
                        // Scan: the broker cannot tell whether this directory was closed
                        // cleanly, and a torn tail must not be served.
                        let (log, report) = Log::open(dir, log_config, Recovery::Scan)?;
                        if report.truncated_bytes > 0 {
                            tracing::warn!(topic = %name, partition = index, truncated_bytes = report.truncated_bytes, "recovery truncated a torn tail");
                        }
                        return Ok(Some(Arc::new(Partition::unassigned(index, log, checkpointed))));
                    }
                    Some(other) => {
                        tracing::info!(topic = %name, partition = index, old_topic_id = %other, "removing the replica of a deleted topic of the same name");
                        std::fs::remove_dir_all(&dir).map_err(|source| PublishError::Io {
                            context: format!("removing {}", dir.display()),
                            source,
                        })?;
                    }
                    None => {
                        tracing::error!(dir = %dir.display(), "partition directory without {PARTITION_METADATA}: not serving it, not removing it");
                        return Ok(None);
                    }
                }
            }
            let log = Log::create(dir.clone(), log_config)?;
            write_partition_metadata(&dir, topic_id)?;
            Ok(Some(Arc::new(Partition::unassigned(index, log, 0))))
        })
        .await
        .map_err(PublishError::Task)?
    }

    async fn remove_topic(&mut self, topic_id: Uuid) {
        let keys: Vec<(Uuid, i32)> = self
            .replicas
            .range((topic_id, i32::MIN)..=(topic_id, i32::MAX))
            .map(|(k, _)| *k)
            .collect();
        let mut dirs = Vec::new();
        for key in keys {
            if let Some(r) = self.replicas.remove(&key) {
                tracing::info!(topic = %r.topic, partition = key.1, "topic deleted; removing its replica");
                if let Some(dp) = &self.data_plane {
                    dp.replica_removed(key.0, &r.topic, key.1);
                }
                self.coordinator_role(&r.topic, key.1, None);
                r.partition.mark_deleted();
                dirs.push(r.partition.dir().to_path_buf());
            }
        }
        remove_dirs(dirs).await;
    }

    /// Removes partition directories whose `partition.metadata` names a topic the caught-up
    /// image no longer has, or a partition that no longer names this broker (a crash between
    /// a delete and the removal of its files).
    async fn remove_strays(&self, image: Arc<MetadataImage>) -> Result<(), PublishError> {
        let data_dir = self.data_dir.clone();
        let local = self.local;
        // A directory listing and a small read per partition: the blocking pool's work.
        let strays = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&data_dir) else {
                return Vec::new();
            };
            let mut strays = Vec::new();
            for entry in entries.flatten() {
                let dir = entry.path();
                let Some(id) = read_partition_metadata(&dir) else {
                    continue;
                };
                let index = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('-'))
                    .and_then(|(_, p)| p.parse::<i32>().ok());
                let wanted = index.is_some_and(|p| {
                    image
                        .partition(id, p)
                        .is_some_and(|reg| reg.replicas.contains(&local))
                });
                if !wanted {
                    tracing::info!(dir = %dir.display(), topic_id = %id, "removing a stray replica");
                    strays.push(dir);
                }
            }
            strays
        })
        .await
        .map_err(PublishError::Task)?;
        remove_dirs(strays).await;
        Ok(())
    }
}

/// Gives `partition` the role `reg` names, only for a newer leader epoch, or the same epoch
/// when the role differs (a restarted replica keeps its epoch) or a replicated leader's ISR
/// or replicas changed.
fn give_role(
    partition: &Partition,
    reg: &PartitionRegistration,
    config: LeaderConfig,
    local: BrokerId,
) -> Result<(), PartitionError> {
    let epoch = reg.leader_epoch;
    let current = partition.leader_epoch();
    if epoch < current {
        return Ok(());
    }
    let leads = reg.leader == local;
    let alone = leads && reg.replicas == [local];
    let role = partition.role();
    let same_role = match role {
        Role::Leader => leads && (alone != partition.is_replicated()),
        Role::Follower => !leads && partition.leader_id() == Some(reg.leader),
        Role::NotReplica => false,
    };
    // A replicated leader takes the same epoch again: the registration's ISR and replicas
    // may have changed.
    let replicated_leader = leads && !alone;
    if epoch == current && same_role && !replicated_leader {
        return Ok(());
    }
    if alone {
        partition.become_leader(epoch)
    } else if leads {
        partition.become_replicated_leader(reg, config, now_ms())
    } else if reg.leader < 0 {
        // No leader (its last ISR member is offline): serve nothing until one is elected.
        partition.become_not_replica();
        Ok(())
    } else {
        partition.become_follower(epoch, reg.leader)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn remove_dirs(dirs: Vec<PathBuf>) {
    if dirs.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a partition directory; the stray check removes it at the next start");
            }
        }
    })
    .await;
}

/// The topic id `dir`'s `partition.metadata` names, if it has a readable one.
pub fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> Result<(), PublishError> {
    let body = format!("version: 0\ntopic_id: {topic_id}\n");
    weir_storage::write_atomically(dir, PARTITION_METADATA, body.as_bytes())?;
    Ok(())
}

#[cfg(test)]
#[path = "publisher_tests.rs"]
mod tests;
