//! The broker's shared state: the topic table and each partition's log.
//!
//! Reads of the table take a `std::sync::RwLock` briefly and clone `Arc`s out; nothing holds it
//! across an `.await` or disk I/O. Admin changes (create, delete, grow, reconfigure) are
//! serialized by `admin` and persisted to the metadata store ([`MetadataStore`]) before they
//! become visible. Partitions are [`Partition`]s; producer ids come from [`ProducerIds`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use uuid::Uuid;
use weir_storage::{Log, Recovery};

use crate::config::BrokerConfig;
use crate::meta::{MetaError, MetaStore, TopicRecord};
use crate::metadata_store::{MetadataStore, ProducerIds};
pub use crate::partition::Partition;
use crate::topic_config;

mod topic_admin;

/// A topic: name, id, partitions and config overrides.
///
/// `partitions` has one slot per partition of the topic. On a single node every slot holds
/// its partition; in cluster mode a slot is empty where this broker hosts no replica (the
/// publisher fills the table from the metadata image, design §4.8), so a request for it
/// answers NOT_LEADER_OR_FOLLOWER rather than UNKNOWN_TOPIC_OR_PARTITION.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: RwLock<Vec<Option<Arc<Partition>>>>,
    pub configs: RwLock<BTreeMap<String, String>>,
    /// Produce and fetch counters, resolved once here so requests never look a label up.
    pub metrics: Arc<crate::metrics::TopicMetrics>,
}

impl Topic {
    /// This broker's replica of partition `index`, if it hosts one.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i).cloned().flatten())
    }

    /// This broker's replica of partition `index`, or Kafka's error for a request naming
    /// it: NOT_LEADER_OR_FOLLOWER for a partition of the topic hosted elsewhere,
    /// UNKNOWN_TOPIC_OR_PARTITION for an index the topic does not have.
    pub fn lookup(&self, index: i32) -> Result<Arc<Partition>, weir_protocol::ResponseError> {
        let parts = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        match usize::try_from(index).ok().and_then(|i| parts.get(i)) {
            Some(Some(p)) => Ok(p.clone()),
            Some(None) => Err(weir_protocol::ResponseError::NotLeaderOrFollower),
            None => Err(weir_protocol::ResponseError::UnknownTopicOrPartition),
        }
    }

    /// Whether the topic has partition `index`, hosted here or not (cluster mode).
    pub fn has_partition(&self, index: i32) -> bool {
        (0..self.partition_count()).contains(&index)
    }

    pub fn partition_count(&self) -> i32 {
        let n = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    /// The partitions this broker hosts (all of them on a single node).
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    pub fn configs(&self) -> BTreeMap<String, String> {
        self.configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self) -> TopicRecord {
        TopicRecord {
            name: self.name.clone(),
            id: self.id,
            partitions: self.partition_count(),
            configs: self.configs(),
        }
    }
}

/// Why an admin change failed. Each maps to a Kafka error code in `errors.rs`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: &'static str },
    #[error("invalid partition count {0}: must be at least 1")]
    InvalidPartitions(i32),
    #[error("topic '{topic}' has {current} partitions; it can only grow (asked for {requested})")]
    CannotShrink {
        topic: String,
        current: i32,
        requested: i32,
    },
    #[error(
        "{requested} partitions in one request; at most {max} may be created at once \
         (create them over several requests)"
    )]
    TooManyPartitions { requested: i64, max: i32 },
    #[error("a blocking task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Credentials(#[from] crate::security::CredentialsError),
    #[error(transparent)]
    Acls(#[from] crate::security::AclsError),
    #[error("replication factor {0} is not possible on a single node")]
    InvalidReplicationFactor(i16),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    Config(#[from] topic_config::TopicConfigError),
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    #[error(transparent)]
    Partition(#[from] crate::partition::PartitionError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Groups(#[from] crate::groups::GroupsError),
    #[error(transparent)]
    HwCheckpoint(#[from] crate::hw_checkpoint::CheckpointError),
    /// The active controller refused the change (cluster mode), with Kafka's code.
    #[error(transparent)]
    Controller(#[from] weir_metadata::MetadataError),
    #[error(transparent)]
    QuorumUnavailable(#[from] crate::cluster::ControllerUnavailable),
}

/// The most partitions one request may create, over all its topics (Kafka's controller
/// limit): each is a directory and an open file, created before the answer.
pub const MAX_PARTITIONS_PER_REQUEST: i32 = 10_000;

/// Refuses a request that would create more than [`MAX_PARTITIONS_PER_REQUEST`] partitions.
pub fn check_partitions_per_request(requested: i64) -> Result<(), AdminError> {
    if requested > i64::from(MAX_PARTITIONS_PER_REQUEST) {
        return Err(AdminError::TooManyPartitions {
            requested,
            max: MAX_PARTITIONS_PER_REQUEST,
        });
    }
    Ok(())
}

/// Kafka's rule for topic names: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let bad = |reason| AdminError::InvalidTopicName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are not allowed"));
    }
    if name.len() > 249 {
        return Err(bad("it is longer than 249 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(bad(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// The broker state shared by every connection.
pub struct State {
    pub config: BrokerConfig,
    /// Consumer groups and their committed offsets.
    pub groups: Arc<crate::group_router::GroupRouter>,
    /// Transactions: the coordinator (single node) or the shards led here (cluster mode).
    pub txns: Arc<crate::txn_router::TxnRouter>,
    pub cluster_id: String,
    /// Broker configs as altered at run time; `config` is the static config as started.
    pub broker_configs: crate::dynamic_config::BrokerConfigs,
    /// The broker's metrics (served by the HTTP listener).
    pub metrics: Arc<crate::metrics::BrokerMetrics>,
    /// Each group's lag over the last 24 h, one point a minute (the console's chart).
    lag_history: crate::lag_history::LagHistory,
    /// Node-local files: the clean-shutdown marker and the reserved space.
    store: MetaStore,
    /// The cluster metadata (topic table, producer-id blocks).
    metadata: Arc<dyn MetadataStore>,
    pub(crate) topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serializes admin changes so the persisted table never interleaves two of them.
    admin: tokio::sync::Mutex<()>,
    pub(crate) producer_ids: ProducerIds,
    /// The replication-offset-checkpoint as read at start (cluster mode; empty otherwise):
    /// where a replica's high watermark starts when metadata gives it a role.
    pub checkpointed_high_watermarks: crate::hw_checkpoint::HighWatermarks,
    /// Answers `WeirDescribeCluster` in cluster mode (installed by the binary).
    cluster_admin: std::sync::OnceLock<Arc<dyn crate::cluster_admin::ClusterAdmin>>,
    /// Cluster mode (`controller.quorum.voters` set): topics come from the metadata image,
    /// admin goes to the quorum.
    pub(crate) cluster: bool,
    /// The metadata image the publisher last published (cluster mode; empty otherwise).
    pub image: Arc<crate::cluster::ImageCell>,
    /// The metadata quorum (cluster mode; installed by the binary).
    pub(crate) controller: std::sync::OnceLock<Arc<dyn crate::cluster::ControllerClient>>,
    /// Sends WriteTxnMarkers to another broker's internal listener (cluster mode; installed
    /// by the binary): the transaction coordinator's markers for partitions led elsewhere.
    pub(crate) marker_link: std::sync::OnceLock<crate::txn_markers::MarkerLink>,
    /// Sends AddPartitionsToTxn (`verify_only`) to another broker's internal listener
    /// (cluster mode; installed by the binary): KIP-890 verification with a transaction
    /// coordinator elsewhere.
    pub(crate) verify_link: std::sync::OnceLock<crate::txn_verify::VerifyLink>,
    /// Sends partition access calls to another broker's internal listener (cluster mode;
    /// installed by the binary): the SQL engine's reads, appends and transaction calls for
    /// partitions led, and transactional ids coordinated, elsewhere.
    pub(crate) access_link: std::sync::OnceLock<crate::partition_access::AccessLink>,
    /// SCRAM credentials and the authentication counters.
    pub security: Arc<crate::security::Security>,
}

impl State {
    /// Each group's lag history (sampled by the lag task every `weir.metrics.lag.interval.ms`).
    pub fn lag(&self) -> &crate::lag_history::LagHistory {
        &self.lag_history
    }

    /// Loads metadata from the data directory's JSON files and opens every partition log,
    /// recovering them after an unclean stop.
    pub fn open(config: BrokerConfig) -> Result<State, AdminError> {
        State::open_with(config, None)
    }

    /// [`State::open`] with the cluster metadata in `metadata` rather than the data
    /// directory's JSON files.
    pub fn open_with(
        config: BrokerConfig,
        metadata: Option<Arc<dyn MetadataStore>>,
    ) -> Result<State, AdminError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| MetaError::Io {
            op: "create data dir",
            path: config.data_dir.clone(),
            source,
        })?;
        let store = MetaStore::open(&config.data_dir)?;
        store.ensure_reserve();
        let metadata = metadata.unwrap_or_else(|| Arc::new(store.clone()));
        let cluster_id = metadata.cluster_id()?;
        let clean = store.take_clean_shutdown()?;
        let recovery = if clean {
            Recovery::Clean
        } else {
            Recovery::Scan
        };
        tracing::info!(clean, data_dir = %config.data_dir.display(), "opening logs");
        // Every partition is opened on a few threads: after a crash each one is a directory
        // listing, a scan of its active segment and perhaps an fsync, and thousands of them
        // one after another would dominate the start.
        let cluster = crate::hw_checkpoint::cluster_mode(&config);
        let mut records = metadata.load_topics()?;
        if cluster && !records.is_empty() {
            // Importing a single node's topics into a cluster is its own step (design
            // §8.3); until then its node-local table is not served.
            tracing::warn!(
                topics = records.len(),
                "cluster mode: the node-local topic table is not served; topics come from the cluster metadata"
            );
            records.clear();
        }
        let broker_configs =
            crate::dynamic_config::BrokerConfigs::open(config.clone(), store.clone())?;
        let effective = broker_configs.effective();
        let mut jobs = Vec::new();
        let mut expected_dirs = std::collections::HashSet::new();
        for (t, rec) in records.iter().enumerate() {
            let log_config = topic_config::log_config(&rec.configs, &effective);
            for p in 0..rec.partitions {
                let dir = partition_dir(&config, &rec.name, p);
                expected_dirs.insert(dir.clone());
                jobs.push((t, p, dir, log_config.clone()));
            }
        }
        let opened = on_workers(jobs, |(t, p, dir, log_config)| {
            let name = records.get(t).map_or("", |r| r.name.as_str());
            let (log, report) = if dir.exists() {
                Log::open(dir, log_config, recovery)?
            } else {
                tracing::warn!(topic = %name, partition = p, "partition directory missing; starting it empty");
                (Log::create(dir, log_config)?, Default::default())
            };
            if report.truncated_bytes > 0 {
                tracing::warn!(topic = %name, partition = p, truncated_bytes = report.truncated_bytes, "recovery truncated a torn tail");
            }
            Ok::<_, AdminError>((t, Arc::new(Partition::leader(p, log))))
        });
        let mut parts: Vec<Vec<Option<Arc<Partition>>>> =
            records.iter().map(|_| Vec::new()).collect();
        for result in opened {
            let (t, partition) = result?;
            if let Some(v) = parts.get_mut(t) {
                v.push(Some(partition));
            }
        }
        let metrics = Arc::new(crate::metrics::BrokerMetrics::new(&config.metrics));
        let mut topics = HashMap::new();
        for (rec, parts) in records.into_iter().zip(parts) {
            let topic = Topic {
                metrics: metrics.topic(&rec.name),
                name: rec.name.clone(),
                id: rec.id,
                partitions: RwLock::new(parts),
                configs: RwLock::new(rec.configs),
            };
            topics.insert(rec.name, Arc::new(topic));
        }
        // In cluster mode a directory is removed only by the publisher, against the caught-up
        // image (Kafka's stray rule, design §5.1): here it would delete every replica the
        // node-local table does not list before metadata arrives.
        if !crate::hw_checkpoint::cluster_mode(&config) {
            remove_orphans(&config, &expected_dirs);
        }
        let producer_ids = if cluster {
            ProducerIds::from_quorum()
        } else {
            ProducerIds::open(&*metadata)?
        };
        let image: Arc<crate::cluster::ImageCell> = Arc::default();
        // Cluster mode: transactions live in `__transaction_state` shards the publisher loads.
        let txns = Arc::new(if cluster {
            crate::txn_router::TxnRouter::cluster(
                config.txns.clone(),
                image.clone(),
                config.node_id,
            )
        } else {
            crate::txn_router::TxnRouter::local(
                Arc::new(crate::txns::Txns::open(
                    &config.data_dir,
                    recovery,
                    config.txns.clone(),
                )?),
                config.txns.clone(),
            )
        });
        // Cluster mode: groups live in `__consumer_offsets` shards the publisher loads.
        let groups = Arc::new(if cluster {
            crate::group_router::GroupRouter::cluster(
                config.groups.clone(),
                image.clone(),
                config.node_id,
            )
        } else {
            crate::group_router::GroupRouter::local(
                Arc::new(crate::groups::Groups::open(
                    &config.data_dir,
                    recovery,
                    config.groups.clone(),
                )?),
                config.groups.clone(),
            )
        });
        let checkpointed_high_watermarks = if crate::hw_checkpoint::cluster_mode(&config) {
            crate::hw_checkpoint::read(&config.data_dir)?
        } else {
            Default::default()
        };
        let security = Arc::new(crate::security::Security::new(
            config.security.clone(),
            crate::security::CredentialStore::open(&config.data_dir)?,
            crate::security::AclStore::open(&config.data_dir)?,
        ));
        security.register_metrics(&metrics.registry);
        Ok(State {
            lag_history: crate::lag_history::LagHistory::new(config.metrics.max_groups),
            metrics,
            security,
            checkpointed_high_watermarks,
            broker_configs,
            groups,
            txns,
            config,
            cluster_id,
            store,
            metadata,
            topics: RwLock::new(topics),
            admin: tokio::sync::Mutex::new(()),
            producer_ids,
            cluster_admin: std::sync::OnceLock::new(),
            cluster,
            image,
            controller: std::sync::OnceLock::new(),
            marker_link: std::sync::OnceLock::new(),
            verify_link: std::sync::OnceLock::new(),
            access_link: std::sync::OnceLock::new(),
        })
    }

    /// Installs the link transaction verification takes to other brokers (cluster mode;
    /// once).
    pub fn set_verify_link(&self, link: crate::txn_verify::VerifyLink) {
        let _ = self.verify_link.set(link);
    }

    /// Installs the internal link for partition access (`crate::partition_access`).
    pub fn set_access_link(&self, link: crate::partition_access::AccessLink) {
        let _ = self.access_link.set(link);
    }

    /// Installs the link transaction markers take to other brokers (cluster mode; once).
    pub fn set_marker_link(&self, link: crate::txn_markers::MarkerLink) {
        let _ = self.marker_link.set(link);
    }

    /// Installs what answers `WeirDescribeCluster` (once; later calls are ignored).
    pub fn set_cluster_admin(&self, admin: Arc<dyn crate::cluster_admin::ClusterAdmin>) {
        let _ = self.cluster_admin.set(admin);
    }

    pub(crate) fn cluster_admin(&self) -> Option<Arc<dyn crate::cluster_admin::ClusterAdmin>> {
        self.cluster_admin.get().cloned()
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether partition `index` of `topic` exists: in cluster mode in the metadata image,
    /// wherever it is hosted (a transaction may span partitions led by other brokers);
    /// otherwise among this broker's logs.
    pub fn partition_exists(&self, topic: &str, index: i32) -> bool {
        if self.cluster {
            return self
                .image
                .image()
                .topic_by_name(topic)
                .is_some_and(|t| t.partitions.contains_key(&index));
        }
        self.topic(topic).and_then(|t| t.partition(index)).is_some()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Wakes every parked fetch so it answers now: the broker is stopping.
    pub fn begin_shutdown(&self) {
        for topic in self.topics() {
            for p in topic.all_partitions() {
                p.begin_shutdown();
            }
        }
    }

    /// A new producer id for an idempotent producer. In cluster mode it comes from the block
    /// `ensure_producer_ids` installed (call that first).
    pub fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        self.producer_ids.allocate(&*self.metadata)
    }

    /// Flushes every log and writes the clean-shutdown marker.
    pub fn close(&self) -> Result<(), AdminError> {
        let partitions: Vec<_> = self
            .topics()
            .iter()
            .flat_map(|t| t.all_partitions())
            .collect();
        for result in on_workers(partitions, |p| p.close()) {
            result?;
        }
        self.groups.close()?;
        self.txns.close()?;
        self.store.mark_clean_shutdown()?;
        Ok(())
    }
}

/// Runs `f` on every item on a few threads and returns the results in the items' order. For
/// opening and closing thousands of logs, each mostly waiting on file-system calls and
/// fsyncs, so a few more threads than cores.
fn on_workers<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let workers = std::thread::available_parallelism()
        .map_or(2, |c| c.get() * 2)
        .clamp(1, 8)
        .min(n);
    if workers <= 1 {
        return items.into_iter().map(f).collect();
    }
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let done = std::sync::Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((i, item)) = next else { break };
                let result = f(item);
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, result));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

pub fn partition_dir(config: &BrokerConfig, topic: &str, partition: i32) -> PathBuf {
    config.data_dir.join(format!("{topic}-{partition}"))
}

/// Removes partition directories no topic owns (a crash after a delete was persisted).
fn remove_orphans(config: &BrokerConfig, expected: &std::collections::HashSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(&config.data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_partition = path.is_dir()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit_once('-'))
                .is_some_and(|(_, p)| p.parse::<u32>().is_ok());
        if is_partition && !expected.contains(&path) {
            tracing::info!(dir = %path.display(), "removing partition directory of a deleted topic");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove orphaned partition directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        for bad in ["", ".", "..", "bad name!", "a/b", &"x".repeat(250)] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(AdminError::InvalidTopicName { .. })
                ),
                "{bad}"
            );
        }
    }
}
