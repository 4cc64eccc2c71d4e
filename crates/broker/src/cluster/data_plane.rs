//! The replicated broker's data plane (design §5.2, §5.3): the table of local replicas a
//! replica fetch reads, the follower's fetchers the publisher points at leaders, the ISR
//! timer, and the AlterPartition sender that carries the leader's ISR proposals to the
//! active controller and their answers back to the partitions.
//!
//! The transport is not the broker's: the binary serves [`DataPlane::serve_fetch`] on the
//! internal listener, gives the fetchers a `LinkFactory` to the leaders' internal listeners,
//! and sends AlterPartition through an [`AlterPartitionSender`] (the quorum node forwards it
//! to the active controller, as heartbeats go).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;
use weir_metadata::{
    AlterPartitionItem, AlterPartitionResult, BrokerId, MetadataError, PartitionRegistration,
};
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse};
use weir_protocol::kafka_protocol::protocol::{Decodable, Encodable};

use crate::config::BrokerConfig;
use crate::partition::{Partition, Role};
use crate::replica_fetch::{self, IsrProposal, LeaderReplicas};
use crate::replica_fetcher::{
    FetcherConfig, FollowedPartition, LeaderLink, LinkError, LinkFactory, ReplicaFetcherManager,
};
use crate::replica_session::LeaderSessions;

/// The Fetch versions a replica fetch is served at (v15 carries `ReplicaState`, KIP-903).
pub const REPLICA_FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 15..=17;

/// The version Weir's fetchers send.
pub const REPLICA_FETCH_VERSION: i16 = 16;

/// A transport error, kept as the cause of the fetcher's `LinkError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request body to a leader's internal listener (Fetch at [`REPLICA_FETCH_VERSION`]) and
/// its answer body: the binary's transport.
pub type RawFetch = Arc<
    dyn Fn(BrokerId, Bytes) -> Pin<Box<dyn Future<Output = Result<Bytes, BoxError>> + Send>>
        + Send
        + Sync,
>;

/// The fetchers' links over a raw transport: each Fetch is encoded, sent with `raw` and its
/// answer decoded here, so the binary moves bytes only.
pub fn codec_links(raw: RawFetch) -> LinkFactory {
    Arc::new(move |leader| -> Arc<dyn LeaderLink> {
        Arc::new(CodecLink {
            leader,
            raw: raw.clone(),
        })
    })
}

struct CodecLink {
    leader: BrokerId,
    raw: RawFetch,
}

impl LeaderLink for CodecLink {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> Pin<Box<dyn Future<Output = Result<FetchResponse, LinkError>> + Send + '_>> {
        Box::pin(async move {
            let failed = |source: BoxError| LinkError::Failed {
                leader: self.leader,
                source,
            };
            let mut body = BytesMut::new();
            request
                .encode(&mut body, REPLICA_FETCH_VERSION)
                .map_err(|e| failed(e.into()))?;
            let mut answer = (self.raw)(self.leader, body.freeze())
                .await
                .map_err(failed)?;
            FetchResponse::decode(&mut answer, REPLICA_FETCH_VERSION).map_err(|e| failed(e.into()))
        })
    }
}

/// Why AlterPartition got no per-partition answers.
#[derive(Debug, thiserror::Error)]
pub enum AlterPartitionError {
    /// The controller refused the whole request (a stale broker epoch): every item gets it.
    #[error("the controller refused AlterPartition: {0}")]
    Refused(#[source] MetadataError),
    /// No controller answered: the same proposals are sent again.
    #[error("no controller answered AlterPartition")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Each item's answer, in request order.
pub type AlterPartitionAnswers = Vec<(Uuid, i32, Result<AlterPartitionResult, MetadataError>)>;

/// An AlterPartition round trip under way.
pub type AlterPartitionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AlterPartitionAnswers, AlterPartitionError>> + Send + 'a>>;

/// Carries one AlterPartition (this broker's proposals) to the active controller.
pub trait AlterPartitionSender: Send + Sync + 'static {
    fn alter_partition(&self, items: Vec<AlterPartitionItem>) -> AlterPartitionFuture<'_>;
}

/// A replica fetch whose body did not decode or whose answer did not encode.
#[derive(Debug, thiserror::Error)]
#[error("replica fetch v{version}: {message}")]
pub struct FetchCodecError {
    pub version: i16,
    pub message: String,
}

/// Each replica by (topic id, partition): its topic's name and the replica.
type Entries = BTreeMap<(Uuid, i32), (String, Arc<Partition>)>;

/// The local replicas by topic id and partition, as the publisher opened them.
#[derive(Default)]
pub struct ReplicaTable(RwLock<Entries>);

impl ReplicaTable {
    pub(crate) fn insert(&self, topic_id: Uuid, topic: &str, partition: Arc<Partition>) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(
            (topic_id, partition.index()),
            (topic.to_string(), partition),
        );
    }

    pub(crate) fn remove(&self, topic_id: Uuid, index: i32) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(topic_id, index));
    }
}

impl LeaderReplicas for ReplicaTable {
    fn by_id(&self, topic_id: Uuid, index: i32) -> Option<Arc<Partition>> {
        let table = self.0.read().unwrap_or_else(|e| e.into_inner());
        table.get(&(topic_id, index)).map(|(_, p)| p.clone())
    }

    fn by_name(&self, topic: &str, index: i32) -> Option<(Uuid, Arc<Partition>)> {
        // Weir's followers name topics by id; a name is looked up the slow way.
        let table = self.0.read().unwrap_or_else(|e| e.into_inner());
        table
            .iter()
            .find(|((_, i), (name, _))| *i == index && name == topic)
            .map(|((id, _), (_, p))| (*id, p.clone()))
    }

    fn all(&self) -> Vec<(Uuid, Arc<Partition>)> {
        let table = self.0.read().unwrap_or_else(|e| e.into_inner());
        table
            .iter()
            .map(|((id, _), (_, p))| (*id, p.clone()))
            .collect()
    }
}

/// The data plane of one replicated broker.
pub struct DataPlane {
    local: BrokerId,
    table: Arc<ReplicaTable>,
    fetchers: ReplicaFetcherManager,
    /// The followers' incremental fetch sessions with this leader (KIP-227).
    sessions: LeaderSessions,
    proposals: mpsc::UnboundedSender<IsrProposal>,
    tasks: Vec<JoinHandle<()>>,
}

impl DataPlane {
    /// Starts the ISR timer (every half `replica.lag.time.max.ms`) and the AlterPartition
    /// sender; fetchers start as the publisher assigns partitions. Inside a tokio runtime.
    pub fn start(
        config: &BrokerConfig,
        links: LinkFactory,
        sender: Arc<dyn AlterPartitionSender>,
    ) -> DataPlane {
        let table = Arc::new(ReplicaTable::default());
        let (proposals, queue) = mpsc::unbounded_channel();
        let backoff = Duration::from_millis(config.replica.fetch_backoff_ms.max(10));
        let half_lag = Duration::from_millis((config.replica.lag_time_max_ms / 2).max(10));
        let tasks = vec![
            tokio::spawn(send_proposals(queue, sender, table.clone(), backoff)),
            tokio::spawn(tick(table.clone(), proposals.clone(), half_lag)),
        ];
        DataPlane {
            local: config.node_id,
            table,
            fetchers: ReplicaFetcherManager::new(FetcherConfig::from_broker(config), -1, links),
            sessions: LeaderSessions::default(),
            proposals,
            tasks,
        }
    }

    /// The local replicas a replica fetch reads.
    pub fn replicas(&self) -> &Arc<ReplicaTable> {
        &self.table
    }

    pub fn fetchers(&self) -> &ReplicaFetcherManager {
        &self.fetchers
    }

    /// Serves one replica Fetch (`body` after the request header, at `version`) in the
    /// follower's fetch session: the response body. The ISR changes it caused go to the
    /// AlterPartition sender.
    pub async fn serve_fetch(&self, version: i16, body: Bytes) -> Result<Bytes, FetchCodecError> {
        let codec = |e: &dyn std::fmt::Display| FetchCodecError {
            version,
            message: e.to_string(),
        };
        let mut body = body;
        let mut request = FetchRequest::decode(&mut body, version).map_err(|e| codec(&e))?;
        let follower = replica_fetch::follower_of(&request);
        let response = match self.sessions.begin(follower, &mut request) {
            Err(code) => {
                let mut response = FetchResponse::default();
                response.error_code = code.code();
                response
            }
            Ok(ticket) => {
                let mut outcome = replica_fetch::replica_fetch_from(&*self.table, request).await;
                for change in outcome.isr_changes {
                    // The sender stops only at shutdown.
                    let _ = self.proposals.send(change);
                }
                self.sessions.finish(ticket, &mut outcome.response);
                outcome.response
            }
        };
        let mut out = BytesMut::new();
        response.encode(&mut out, version).map_err(|e| codec(&e))?;
        Ok(out.freeze())
    }

    /// The publisher opened `partition` of `topic` (`topic_id`).
    pub(crate) fn replica_opened(&self, topic_id: Uuid, topic: &str, partition: Arc<Partition>) {
        self.table.insert(topic_id, topic, partition);
    }

    /// The publisher removed a replica (topic deleted, reassigned away).
    pub(crate) fn replica_removed(&self, topic_id: Uuid, topic: &str, index: i32) {
        self.fetchers.remove(&followed(topic_id, topic, index));
        self.table.remove(topic_id, index);
    }

    /// Before the publisher gives a role: a replica that will not follow leaves its fetcher
    /// first, so no follower append lands once it leads.
    pub(crate) fn before_role(
        &self,
        topic_id: Uuid,
        topic: &str,
        index: i32,
        reg: &PartitionRegistration,
    ) {
        if reg.leader == self.local || reg.leader < 0 {
            self.fetchers.remove(&followed(topic_id, topic, index));
        }
    }

    /// After the publisher gave a role: a follower is handed to its leader's fetcher (again:
    /// that resumes one waiting for metadata after a refused fetch).
    pub(crate) fn after_role(&self, topic_id: Uuid, topic: &str, partition: &Arc<Partition>) {
        if partition.role() != Role::Follower {
            return;
        }
        let Some(leader) = partition.leader_id() else {
            return;
        };
        self.fetchers.assign(
            followed(topic_id, topic, partition.index()),
            partition.clone(),
            leader,
            partition.leader_epoch(),
        );
    }

    /// This broker's registration epoch (sent in every Fetch's `ReplicaState`).
    pub(crate) fn set_broker_epoch(&self, epoch: i64) {
        self.fetchers.set_broker_epoch(epoch);
    }

    /// Stops the fetchers and the tasks.
    pub fn shutdown(&self) {
        self.fetchers.shutdown();
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn followed(topic_id: Uuid, topic: &str, partition: i32) -> FollowedPartition {
    FollowedPartition {
        topic_id,
        topic: topic.to_string(),
        partition,
    }
}

/// The ISR timer: shrinks of members that lag, expansions refused earlier.
async fn tick(
    table: Arc<ReplicaTable>,
    proposals: mpsc::UnboundedSender<IsrProposal>,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = replica_fetch::replication_now_ms();
        for change in replica_fetch::replication_tick(&*table, now) {
            if proposals.send(change).is_err() {
                return;
            }
        }
    }
}

/// Sends the proposals, every one queued since the last round trip in one AlterPartition
/// (one item per partition: a newer proposal replaces an older one still queued), and hands
/// each answer to its partition. When no controller answers, the same proposals go again
/// after `backoff`: the leader keeps counting a pending expansion for its high watermark,
/// so it must learn the outcome rather than forget it.
async fn send_proposals(
    mut queue: mpsc::UnboundedReceiver<IsrProposal>,
    sender: Arc<dyn AlterPartitionSender>,
    table: Arc<ReplicaTable>,
    backoff: Duration,
) {
    let mut batch: BTreeMap<(Uuid, i32), IsrProposal> = BTreeMap::new();
    loop {
        if batch.is_empty() {
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.insert((first.topic_id, first.partition), first);
        }
        while let Ok(next) = queue.try_recv() {
            batch.insert((next.topic_id, next.partition), next);
        }
        let items: Vec<AlterPartitionItem> = batch
            .values()
            .map(|p| p.change.to_item(p.topic_id, p.partition))
            .collect();
        let answers = match sender.alter_partition(items).await {
            Ok(answers) => answers,
            Err(AlterPartitionError::Refused(e)) => batch
                .keys()
                .map(|(id, p)| (*id, *p, Err(e.clone())))
                .collect(),
            Err(e @ AlterPartitionError::Unreachable(_)) => {
                tracing::warn!(error = %e, proposals = batch.len(), "ISR changes not sent; retrying");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        for (topic_id, index, result) in answers {
            let Some(sent) = batch.remove(&(topic_id, index)) else {
                continue;
            };
            let Some(partition) = table.by_id(topic_id, index) else {
                continue;
            };
            match partition.on_alter_partition_result(&sent.change, result) {
                Ok(outcome) => {
                    tracing::debug!(%topic_id, partition = index, ?outcome, "AlterPartition answered")
                }
                // No longer this broker's to lead: the metadata saying so arrives.
                Err(e) => {
                    tracing::debug!(%topic_id, partition = index, error = %e, "AlterPartition answer for a replica that no longer leads")
                }
            }
        }
        // Items the controller did not answer are dropped with the round: the timer
        // proposes again what is still wanted.
        batch.clear();
    }
}
