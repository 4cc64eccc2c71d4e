//! The follower's replica fetcher (design §5.2): one [`Fetcher`] task per leader broker,
//! carrying every partition this broker follows from that leader in one Fetch at a time.
//!
//! A round: build one Fetch (per partition the fetch offset, the last epoch in the local log,
//! the leader epoch of the assignment), send it through the [`LeaderLink`] (the transport is
//! the caller's: the internal listener's connection in a cluster, an in-process call in
//! tests), then on the blocking pool apply each partition's answer (truncate on
//! `DivergingEpoch`, `append_as_follower`, learn the high watermark and log start), fsync
//! every touched partition in parallel, and only then send the next Fetch. The fetch offset
//! is the durable end under `weir.durability` acks-all and always (a follower counts for
//! acks=all only with what it fsynced, §5.4), the log end under none.
//!
//! The Fetch travels in an incremental fetch session (KIP-227, `replica_session.rs`): after
//! the first full request of a connection, a round lists only the partitions whose fetch
//! state changed and the leader answers only those with something new, so an idle round trip
//! carries no partitions. A failed round trip or a session error starts a new session.
//!
//! Lives in the broker rather than `weir-replication` because it drives `Partition` (role
//! checks, the follower's append and truncation) and the Fetch codec directly; the pure
//! decisions (`decide_truncation`) stay in `weir-replication`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;
use weir_metadata::BrokerId;
use weir_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ReplicaState,
};
use weir_protocol::kafka_protocol::messages::fetch_response::PartitionData;
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;
use weir_replication::{decide_truncation, EpochEndOffset, ReplicaLog};

use crate::partition::{Partition, PartitionError};
use crate::replica_session::FollowerSession;

/// Why a leader could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the link to broker {leader} failed")]
    Failed {
        leader: BrokerId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The transport to one leader broker. The fetcher keeps one Fetch in flight per link. It
/// drops a call still parked on the leader when a partition joins the fetcher; the transport
/// must then discard that call's connection, so that a late answer is never read as the next
/// call's (the internal transport does: a dropped call drops its stream).
pub trait LeaderLink: Send + Sync + 'static {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> Pin<Box<dyn Future<Output = Result<FetchResponse, LinkError>> + Send + '_>>;
}

/// Opens (or reuses) the link to a leader broker.
pub type LinkFactory = Arc<dyn Fn(BrokerId) -> Arc<dyn LeaderLink> + Send + Sync>;

/// The fetcher's settings (Kafka's `replica.fetch.*` keys and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetcherConfig {
    /// This broker.
    pub local: BrokerId,
    /// Report the durable end as the fetch offset (`weir.durability` acks-all, always) and
    /// fsync every touched partition before the next Fetch; false under none.
    pub durable_fetch_offset: bool,
    /// `replica.fetch.wait.max.ms` (2000).
    pub max_wait_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub min_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB).
    pub response_max_bytes: i32,
    /// `replica.fetch.max.bytes` (1 MiB).
    pub partition_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): the pause after a failed round.
    pub backoff_ms: u64,
}

impl FetcherConfig {
    pub fn new(local: BrokerId, durable_fetch_offset: bool) -> FetcherConfig {
        FetcherConfig {
            local,
            durable_fetch_offset,
            max_wait_ms: 2000,
            min_bytes: 1,
            response_max_bytes: 10 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            backoff_ms: 1000,
        }
    }
}

impl FetcherConfig {
    /// The broker's settings: `replica.fetch.*`, and durable fetch offsets unless
    /// `weir.durability=none`.
    pub fn from_broker(config: &crate::BrokerConfig) -> FetcherConfig {
        let r = &config.replica;
        FetcherConfig {
            local: config.node_id,
            durable_fetch_offset: config.durability != crate::Durability::None,
            max_wait_ms: r.fetch_wait_max_ms,
            min_bytes: r.fetch_min_bytes,
            response_max_bytes: r.fetch_response_max_bytes,
            partition_max_bytes: r.fetch_max_bytes,
            backoff_ms: r.fetch_backoff_ms,
        }
    }
}

/// A followed partition as the leader's Fetch names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FollowedPartition {
    pub topic_id: Uuid,
    pub topic: String,
    pub partition: i32,
}

/// Where a followed partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowStatus {
    Fetching,
    /// The leader's epoch is newer (FENCED_LEADER_EPOCH): waits for a new assignment from
    /// metadata.
    AwaitingMetadata,
    /// A local storage error: the replica is offline until assigned again.
    Failed,
}

struct Assigned {
    replica: Arc<Partition>,
    leader_epoch: i32,
    status: FollowStatus,
    /// After a retriable error: left out of the rounds until then.
    retry_at: Option<Instant>,
    /// The next retriable error's delay: [`FIRST_RETRY`], doubling up to
    /// `replica.fetch.backoff.ms`; back to the first after progress.
    retry_delay: Duration,
}

/// The first delay of a partition after a retriable error. Short because the usual cause is
/// a new leader that has not applied the metadata naming it yet (a failover, a new topic),
/// which takes milliseconds; doubling from there keeps a lasting error cheap.
const FIRST_RETRY: Duration = Duration::from_millis(25);

/// One leader's fetcher: its partitions and its task.
struct Fetcher {
    shared: Arc<FetcherShared>,
    task: JoinHandle<()>,
}

struct FetcherShared {
    leader: BrokerId,
    partitions: Mutex<BTreeMap<FollowedPartition, Assigned>>,
    /// Bumped (under the partitions' lock) when a partition is added or its assignment
    /// changes: a Fetch parked on the leader without it is abandoned.
    generation: AtomicU64,
    /// Wakes the task when `generation` moves.
    wake: Notify,
}

impl FetcherShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<FollowedPartition, Assigned>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every fetcher of this broker. The metadata publisher calls [`ReplicaFetcherManager::assign`]
/// after `Partition::become_follower` and [`ReplicaFetcherManager::remove`] before any other
/// role change.
pub struct ReplicaFetcherManager {
    config: FetcherConfig,
    broker_epoch: Arc<AtomicI64>,
    links: LinkFactory,
    fetchers: Mutex<HashMap<BrokerId, Fetcher>>,
}

impl ReplicaFetcherManager {
    /// Must be created inside a tokio runtime (fetchers are spawned on it).
    pub fn new(config: FetcherConfig, broker_epoch: i64, links: LinkFactory) -> Self {
        ReplicaFetcherManager {
            config,
            broker_epoch: Arc::new(AtomicI64::new(broker_epoch)),
            links,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// This broker's registration epoch changed (sent in every Fetch's `ReplicaState`): a
    /// Fetch parked with the old one is abandoned, so that leaders learn the new one (which
    /// their ISR proposals for this broker carry) without waiting out the park.
    pub fn set_broker_epoch(&self, epoch: i64) {
        if self.broker_epoch.swap(epoch, Ordering::AcqRel) == epoch {
            return;
        }
        for f in self.lock().values() {
            let parts = f.shared.lock();
            f.shared.generation.fetch_add(1, Ordering::AcqRel);
            drop(parts);
            f.shared.wake.notify_one();
        }
    }

    /// Follows `partition` (whose local replica is `replica`, already a follower) from
    /// `leader` under `leader_epoch`. Moves it from any other leader's fetcher; assigning again
    /// resumes a partition waiting for metadata or failed.
    pub fn assign(
        &self,
        partition: FollowedPartition,
        replica: Arc<Partition>,
        leader: BrokerId,
        leader_epoch: i32,
    ) {
        let mut fetchers = self.lock();
        for (id, f) in fetchers.iter() {
            if *id != leader {
                f.shared.lock().remove(&partition);
            }
        }
        let fetcher = fetchers.entry(leader).or_insert_with(|| {
            let shared = Arc::new(FetcherShared {
                leader,
                partitions: Mutex::new(BTreeMap::new()),
                generation: AtomicU64::new(0),
                wake: Notify::new(),
            });
            let link = (self.links)(leader);
            let task = tokio::spawn(run(
                Arc::clone(&shared),
                link,
                self.config,
                Arc::clone(&self.broker_epoch),
            ));
            Fetcher { shared, task }
        });
        let mut parts = fetcher.shared.lock();
        let same = parts.get(&partition).is_some_and(|a| {
            Arc::ptr_eq(&a.replica, &replica)
                && a.leader_epoch == leader_epoch
                && a.status == FollowStatus::Fetching
        });
        // The publisher assigns again after every decision about the partition; only a
        // change is news to the fetcher (a retry delay in progress stays).
        if !same {
            tracing::info!(?partition, leader, leader_epoch, "following");
            parts.insert(
                partition,
                Assigned {
                    replica,
                    leader_epoch,
                    status: FollowStatus::Fetching,
                    retry_at: None,
                    retry_delay: FIRST_RETRY,
                },
            );
            fetcher.shared.generation.fetch_add(1, Ordering::AcqRel);
            drop(parts);
            fetcher.shared.wake.notify_one();
        } else {
            drop(parts);
        }
        drop(fetchers);
        self.stop_idle();
    }

    /// Stops following `partition` (it became leader, was deleted or reassigned away). A round
    /// already under way may still apply its answer; the role change the publisher makes next
    /// refuses follower appends from then on.
    pub fn remove(&self, partition: &FollowedPartition) {
        for f in self.lock().values() {
            f.shared.lock().remove(partition);
        }
        self.stop_idle();
    }

    /// The status of a followed partition and its leader; None when not followed.
    pub fn status(&self, partition: &FollowedPartition) -> Option<(BrokerId, FollowStatus)> {
        self.lock()
            .iter()
            .find_map(|(leader, f)| f.shared.lock().get(partition).map(|a| (*leader, a.status)))
    }

    /// Stops every fetcher (shutdown).
    pub fn shutdown(&self) {
        for (_, f) in self.lock().drain() {
            f.task.abort();
        }
    }

    fn stop_idle(&self) {
        self.lock().retain(|_, f| {
            let idle = f.shared.lock().is_empty();
            if idle {
                f.task.abort();
            }
            !idle
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerId, Fetcher>> {
        self.fetchers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ReplicaFetcherManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One partition of a round: what was asked and of which replica.
struct Asked {
    key: FollowedPartition,
    replica: Arc<Partition>,
    leader_epoch: i32,
    fetch_offset: i64,
}

/// The fetcher task of one leader.
async fn run(
    shared: Arc<FetcherShared>,
    link: Arc<dyn LeaderLink>,
    config: FetcherConfig,
    broker_epoch: Arc<AtomicI64>,
) {
    let backoff = Duration::from_millis(config.backoff_ms);
    let mut session = FollowerSession::default();
    loop {
        let round = Arc::clone(&shared);
        let snap = match tokio::task::spawn_blocking(move || snapshot(&round, config)).await {
            Ok(snap) => snap,
            Err(e) => {
                tracing::error!(leader = shared.leader, error = %e, "replica fetch task failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Snapshot {
            asked,
            generation,
            next_retry,
        } = snap;
        if asked.is_empty() {
            match next_retry {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), shared.wake.notified()).await;
                }
                None => shared.wake.notified().await,
            }
            continue;
        }
        let mut request = build_request(&asked, config, broker_epoch.load(Ordering::Acquire));
        if let Some(at) = next_retry {
            // Park no longer than the first delayed partition waits.
            let until = at.saturating_duration_since(Instant::now()).as_millis();
            request.max_wait_ms = request.max_wait_ms.min(i32::try_from(until).unwrap_or(0));
        }
        let topics = std::mem::take(&mut request.topics);
        let full = session.id() == 0;
        session.request_topics(&mut request, topics);
        let sent_at = Instant::now();
        let mut fetch = link.fetch(request);
        let answer = loop {
            tokio::select! {
                answer = &mut fetch => break Some(answer),
                () = shared.wake.notified() => {
                    if shared.generation.load(Ordering::Acquire) != generation {
                        break None;
                    }
                }
            }
        };
        let Some(answer) = answer else {
            // A partition joined (a failover made this leader its leader, a new topic) while
            // the Fetch was parked without it: waiting out the park would delay its high
            // watermark, and so acks=all produces, by up to `replica.fetch.wait.max.ms`.
            // Dropping the call drops its connection (the transport opens a new one), so
            // the next request opens a new session.
            tracing::debug!(
                leader = shared.leader,
                "partitions changed; abandoning the parked fetch"
            );
            drop(fetch);
            session.reset();
            continue;
        };
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(leader = shared.leader, error = %e, "replica fetch failed");
                session.reset();
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if !session.answered(&response) {
            // A session the leader lost (it restarted, or replaced it): the next request
            // opens a new one at once. A full request is never refused so; if it is, the
            // leader is in trouble and gets the backoff.
            if full {
                tokio::time::sleep(backoff).await;
            }
            continue;
        }
        let answered_in = sent_at.elapsed();
        let durable = config.durable_fetch_offset;
        let applied =
            tokio::task::spawn_blocking(move || apply_response(asked, response, durable)).await;
        let outcomes = match applied {
            Ok((o, times)) => {
                // Where a round's time goes (a produce with acks=all waits for about one
                // and a half of them): `WEIR_LOG=weir_broker::replica_fetcher=trace`.
                tracing::trace!(
                    leader = shared.leader,
                    answered_us = answered_in.as_micros() as u64,
                    append_us = times.append.as_micros() as u64,
                    fsync_us = times.fsync.as_micros() as u64,
                    round_us = sent_at.elapsed().as_micros() as u64,
                    "replica fetch round"
                );
                o
            }
            Err(e) => {
                tracing::error!(leader = shared.leader, error = %e, "replica fetch task failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let now = Instant::now();
        let mut parts = shared.lock();
        for (key, epoch, outcome) in outcomes {
            let Some(a) = parts.get_mut(&key).filter(|a| a.leader_epoch == epoch) else {
                continue;
            };
            match outcome {
                Outcome::Progress => a.retry_delay = FIRST_RETRY,
                // Kafka's fetcher delays the partition, not the others.
                Outcome::Retry => {
                    a.retry_at = Some(now + a.retry_delay);
                    a.retry_delay = (a.retry_delay * 2).min(backoff.max(FIRST_RETRY));
                }
                Outcome::AwaitMetadata => a.status = FollowStatus::AwaitingMetadata,
                Outcome::Failed => a.status = FollowStatus::Failed,
            }
        }
    }
}

/// The partitions to fetch and their fetch offsets (blocking), leaving out those waiting
/// out a retry delay. Under durable fetch offsets a
/// replica whose log end is not fsynced yet (it led with acks=1 writes, or restarted) is
/// fsynced first, so that it reports, and appends after, its whole log.
fn snapshot(shared: &FetcherShared, config: FetcherConfig) -> Snapshot {
    let now = Instant::now();
    let mut next_retry: Option<Instant> = None;
    let (generation, fetching) = {
        let mut parts = shared.lock();
        let generation = shared.generation.load(Ordering::Acquire);
        let mut fetching: Vec<(FollowedPartition, Arc<Partition>, i32)> = Vec::new();
        for (key, a) in parts.iter_mut() {
            if a.status != FollowStatus::Fetching {
                continue;
            }
            match a.retry_at {
                Some(at) if at > now => {
                    next_retry = Some(next_retry.map_or(at, |n| n.min(at)));
                    continue;
                }
                _ => a.retry_at = None,
            }
            fetching.push((key.clone(), Arc::clone(&a.replica), a.leader_epoch));
        }
        (generation, fetching)
    };
    let mut asked = Vec::with_capacity(fetching.len());
    for (key, replica, leader_epoch) in fetching {
        let end = replica.log_end_offset();
        let fetch_offset = if config.durable_fetch_offset {
            if ReplicaLog::durable_offset(&*replica) < end {
                if let Err(e) = replica.flush_to(end) {
                    tracing::error!(partition = ?key, error = %e, "follower fsync failed; offline");
                    if let Some(a) = shared.lock().get_mut(&key) {
                        a.status = FollowStatus::Failed;
                    }
                    continue;
                }
            }
            ReplicaLog::durable_offset(&*replica)
        } else {
            end
        };
        asked.push(Asked {
            key,
            replica,
            leader_epoch,
            fetch_offset,
        });
    }
    Snapshot {
        asked,
        generation,
        next_retry,
    }
}

/// One round's partitions, the assignment generation they come from, and when the first
/// partition left out for a retry delay is due.
struct Snapshot {
    asked: Vec<Asked>,
    generation: u64,
    next_retry: Option<Instant>,
}

fn build_request(asked: &[Asked], config: FetcherConfig, broker_epoch: i64) -> FetchRequest {
    let mut req = FetchRequest::default();
    // v15+ names the follower in ReplicaState only (`replica_id` stays -1 there).
    req.replica_state = ReplicaState::default();
    req.replica_state.replica_id = config.local.into();
    req.replica_state.replica_epoch = broker_epoch;
    req.max_wait_ms = config.max_wait_ms;
    req.min_bytes = config.min_bytes;
    req.max_bytes = config.response_max_bytes;
    let mut topics: BTreeMap<(Uuid, &str), FetchTopic> = BTreeMap::new();
    for a in asked {
        let topic = topics
            .entry((a.key.topic_id, a.key.topic.as_str()))
            .or_insert_with(|| {
                let mut t = FetchTopic::default();
                t.topic_id = a.key.topic_id;
                t.topic = TopicName(StrBytes::from_string(a.key.topic.clone()));
                t
            });
        let mut p = FetchPartition::default();
        p.partition = a.key.partition;
        p.current_leader_epoch = a.leader_epoch;
        p.fetch_offset = a.fetch_offset;
        p.last_fetched_epoch = a.replica.latest_epoch();
        p.log_start_offset = a.replica.log_start_offset();
        p.partition_max_bytes = config.partition_max_bytes;
        topic.partitions.push(p);
    }
    req.topics = topics.into_values().collect();
    req
}

/// What one partition's answer left it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Progress,
    /// A transient error: fetch again after the backoff.
    Retry,
    AwaitMetadata,
    Failed,
}

/// Time a round spent applying its answer.
#[derive(Debug, Default, Clone, Copy)]
struct RoundTimes {
    /// Truncations, appends, watermarks.
    append: Duration,
    /// The fsyncs of the touched partitions (in parallel).
    fsync: Duration,
}

/// Applies a response to the replicas asked for (blocking): truncations, appends, high
/// watermarks and log starts, then fsyncs every touched partition in parallel.
fn apply_response(
    asked: Vec<Asked>,
    response: FetchResponse,
    durable: bool,
) -> (Vec<(FollowedPartition, i32, Outcome)>, RoundTimes) {
    let started = std::time::Instant::now();
    let mut times = RoundTimes::default();
    let mut by_id: HashMap<(Uuid, i32), &Asked> = HashMap::with_capacity(asked.len());
    for a in &asked {
        by_id.insert((a.key.topic_id, a.key.partition), a);
    }
    let mut outcomes = Vec::new();
    let mut touched: Vec<(&Asked, i64)> = Vec::new();
    for topic in response.responses {
        for data in topic.partitions {
            // Followers fetch by id (v13+); a leader answering without one is searched by
            // name, which never happens on the common path.
            let found = if topic.topic_id.is_nil() {
                asked.iter().find(|a| {
                    a.key.topic == topic.topic.0.as_str() && a.key.partition == data.partition_index
                })
            } else {
                by_id.get(&(topic.topic_id, data.partition_index)).copied()
            };
            let Some(a) = found else {
                tracing::warn!(
                    partition = data.partition_index,
                    "replica fetch answered a partition not asked for"
                );
                continue;
            };
            let outcome = match apply_partition(a, data) {
                Ok(Some(end)) => {
                    touched.push((a, end));
                    Outcome::Progress
                }
                Ok(None) => Outcome::Progress,
                Err(Applied::Code(code)) => code_outcome(a, code),
                Err(Applied::Local(e)) => {
                    tracing::error!(partition = ?a.key, error = %e, "follower replica failed; offline");
                    Outcome::Failed
                }
            };
            outcomes.push((a.key.clone(), a.leader_epoch, outcome));
        }
    }
    times.append = started.elapsed();
    if durable {
        // One partition (the common case under load): fsynced here, no thread to start.
        let flushed: Vec<_> = if let [(a, end)] = touched.as_slice() {
            vec![(a, a.replica.flush_to(*end))]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = touched
                    .iter()
                    .map(|(a, end)| scope.spawn(move || (a, a.replica.flush_to(*end))))
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        };
        for (a, result) in flushed {
            if let Err(e) = result {
                tracing::error!(partition = ?a.key, error = %e, "follower fsync failed; offline");
                outcomes.push((a.key.clone(), a.leader_epoch, Outcome::Failed));
            }
        }
    }
    times.fsync = started.elapsed().saturating_sub(times.append);
    (outcomes, times)
}

enum Applied {
    /// The leader answered this error code.
    Code(i16),
    Local(PartitionError),
}

/// Applies one partition's answer; Some(new log end) when records were appended.
fn apply_partition(a: &Asked, data: PartitionData) -> Result<Option<i64>, Applied> {
    if data.error_code != 0 {
        if data.error_code == ResponseError::OffsetOutOfRange.code() {
            out_of_range(a, &data).map_err(Applied::Local)?;
            return Ok(None);
        }
        return Err(Applied::Code(data.error_code));
    }
    let replica = &*a.replica;
    let diverging = data.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        let cut = decide_truncation(
            EpochEndOffset {
                epoch: diverging.epoch,
                end_offset: diverging.end_offset,
            },
            |e| ReplicaLog::end_offset_for_epoch(replica, e),
            replica.log_end_offset(),
            replica.high_watermark(),
        );
        let end = replica.truncate_to(cut.offset).map_err(Applied::Local)?;
        tracing::info!(partition = ?a.key, leader_epoch = diverging.epoch, leader_end = diverging.end_offset, truncated_to = end, "diverged from the leader; truncated");
        return Ok(None);
    }
    let mut appended = None;
    if let Some(records) = data.records.filter(|r| !r.is_empty()) {
        appended = Some(append(replica, records).map_err(Applied::Local)?);
    }
    if data.log_start_offset > replica.log_start_offset()
        && data.log_start_offset <= replica.log_end_offset()
    {
        replica
            .advance_log_start(data.log_start_offset)
            .map_err(Applied::Local)?;
    }
    replica.set_follower_high_watermark(data.high_watermark);
    Ok(appended)
}

fn append(replica: &Partition, records: Bytes) -> Result<i64, PartitionError> {
    let mut batches = records.to_vec();
    let now = i64::try_from(crate::replica_fetch::replication_now_ms()).unwrap_or(i64::MAX);
    ReplicaLog::append_as_follower(replica, &mut batches, now)
}

/// OFFSET_OUT_OF_RANGE: below the leader's log start, start over empty there (what the
/// follower had is gone on the leader); past the leader's end, cut back to its high watermark
/// (a prefix every ISR member shares).
fn out_of_range(a: &Asked, data: &PartitionData) -> Result<(), PartitionError> {
    let replica = &*a.replica;
    if data.log_start_offset >= 0 && a.fetch_offset < data.log_start_offset {
        let start = replica.reset_to(data.log_start_offset)?;
        tracing::info!(partition = ?a.key, log_start = start, "behind the leader's log start; started over there");
    } else if data.high_watermark >= 0 {
        let end = replica.truncate_to(data.high_watermark)?;
        tracing::info!(partition = ?a.key, truncated_to = end, "ahead of the leader's log end; truncated");
    }
    Ok(())
}

/// Kafka's fetcher rule: only FENCED_LEADER_EPOCH (this follower's epoch is older than the
/// leader's) waits for metadata. NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH and an unknown
/// topic are retried after the backoff: the leader named by metadata often has not applied
/// the same entry yet (a new topic, a new leader epoch), and waiting for metadata would wait
/// for a change that already happened.
fn code_outcome(a: &Asked, code: i16) -> Outcome {
    if code == ResponseError::FencedLeaderEpoch.code() {
        tracing::info!(partition = ?a.key, code, leader_epoch = a.leader_epoch, "leader refused the fetch; waiting for metadata");
        Outcome::AwaitMetadata
    } else {
        tracing::debug!(partition = ?a.key, code, "replica fetch error; retrying");
        Outcome::Retry
    }
}

#[cfg(test)]
#[path = "replica_fetcher_tests.rs"]
mod tests;
