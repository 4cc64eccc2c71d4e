//! Partition access for in-process clients (the SQL engine): one typed API for every read,
//! offset lookup, append, park and transaction call, wherever the partition is led or the
//! transactional id coordinated (design stream-sql §14 item 3).
//!
//! Data flow: [`PartitionAccess`] (cheap to clone) resolves a topic's partitions into
//! [`PartitionHandle`]s. Each call routes by the partition's role here and the metadata
//! image: a partition led by this broker is served in-process by exactly the calls the
//! engine made before (`Partition::read`, `append`, `version` + `any_changed`; no copy), one
//! led elsewhere goes over the internal link ([`AccessLink`], the binary's transport on its
//! own connection per peer) to the leader, whose data-plane hook serves it with
//! [`serve_access`] by the same `Partition` and `txn_api` calls. Transaction calls route to
//! the transactional id's coordinator the same way. A NOT_LEADER or NOT_COORDINATOR answer,
//! no leader known, or a leader that stopped answering (killed: its successor is in the
//! image soon) re-routes from the image and retries for a bounded time ([`RETRY_FOR`]);
//! an append is retried after a lost answer only when it is idempotent (a producer id and
//! sequences: the new leader recognises a batch it already has). On a single node
//! everything is local and no link exists.

mod codec;
mod error;
mod remote;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use weir_coordinator::TopicPartition;
use weir_metadata::BrokerId;

pub use codec::{Answer, CodecError, Request, VERSION};
pub use error::{AccessError, Failure, FailureKind};
pub use serve::serve_access;

use crate::partition::{AckWait, Acks, Partition, ReadResult, ReadSpec, Role, Watermarks};
use crate::state::State;
use crate::txn_router::TXN_STATE_TOPIC;

/// One partition access request body to a broker's internal listener on one of two
/// connections ([`AccessChannel`]); resolves to the answer's body (the binary installs it:
/// the quorum node's connections to that broker).
pub type AccessLink = Arc<
    dyn Fn(
            BrokerId,
            AccessChannel,
            bytes::Bytes,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<bytes::Bytes, crate::cluster::BoxError>>
                    + Send,
            >,
        > + Send
        + Sync,
>;

/// Which connection to the peer a call takes: a connection carries one call at a time, so
/// long polls ([`Request::Wait`]) never hold up reads, appends and transaction calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChannel {
    Calls,
    Waits,
}

/// How long a call that may succeed elsewhere or later (the leader or coordinator moved,
/// none is known yet, or it stopped answering) is re-routed from the image and retried
/// before its error is returned: longer than a dead broker takes to be fenced and its
/// partitions' leaderships moved.
pub const RETRY_FOR: Duration = Duration::from_secs(30);

/// How long an append led elsewhere waits for its replication (the produce's timeout).
const REMOTE_APPEND_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The engine's handle on the broker's partitions and transactions.
#[derive(Clone)]
pub struct PartitionAccess {
    state: Arc<State>,
}

impl std::fmt::Debug for PartitionAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionAccess")
            .field("node", &self.state.config.node_id)
            .finish_non_exhaustive()
    }
}

/// Where a call goes.
enum Route {
    Local(Arc<Partition>),
    Broker(BrokerId),
}

/// Where the coordinator of a transactional id runs.
enum Coordinator {
    Here,
    Broker(BrokerId),
}

impl PartitionAccess {
    pub fn new(state: Arc<State>) -> PartitionAccess {
        PartitionAccess { state }
    }

    /// The broker's state, for what is not partition access (topic admin, config).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Whether calls may leave this broker (cluster mode).
    pub fn is_cluster(&self) -> bool {
        self.state.cluster
    }

    /// The number of partitions of `topic`, None if it does not exist.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        if let Some(t) = self.state.topic(topic) {
            return Some(t.partition_count());
        }
        if self.state.cluster {
            let image = self.state.image.image();
            let t = image.topic_by_name(topic)?;
            return i32::try_from(t.partitions.len()).ok();
        }
        None
    }

    /// A handle on partition `index` of `topic`.
    pub fn partition(&self, topic: &str, index: i32) -> Result<PartitionHandle, AccessError> {
        let tp = TopicPartition::new(topic, index);
        let count = self
            .partition_count(topic)
            .ok_or_else(|| AccessError::UnknownPartition(tp.clone()))?;
        if !(0..count).contains(&index) {
            return Err(AccessError::UnknownPartition(tp));
        }
        let local = self.state.topic(topic).and_then(|t| t.partition(index));
        Ok(PartitionHandle {
            access: self.clone(),
            tp,
            local,
        })
    }

    /// Handles on every partition of `topic`, in index order.
    pub fn partitions(&self, topic: &str) -> Result<Vec<PartitionHandle>, AccessError> {
        let count = self
            .partition_count(topic)
            .ok_or_else(|| AccessError::UnknownPartition(TopicPartition::new(topic, 0)))?;
        (0..count).map(|i| self.partition(topic, i)).collect()
    }

    fn link(&self, broker: BrokerId) -> Result<AccessLink, AccessError> {
        self.state
            .access_link
            .get()
            .cloned()
            .ok_or(AccessError::NoLink(broker))
    }

    fn coordinator(&self, transactional_id: &str) -> Result<Coordinator, AccessError> {
        if !self.state.cluster {
            return Ok(Coordinator::Here);
        }
        let unknown = || AccessError::NoCoordinator(transactional_id.to_string());
        let image = self.state.image.image();
        let Some(topic) = image.topic_by_name(TXN_STATE_TOPIC) else {
            // In a cluster the transaction log is created on first use (a client's
            // FindCoordinator does it); the engine sends none, so it asks here. The
            // creation runs in the background; the caller re-routes and retries.
            self.state.ensure_txn_state_topic();
            return Err(unknown());
        };
        let index = self
            .state
            .txns
            .partition_of(transactional_id)
            .ok_or_else(unknown)?;
        let leader = topic.partitions.get(&index).map(|p| p.leader);
        match leader {
            Some(l) if l == self.state.config.node_id => Ok(Coordinator::Here),
            Some(l) if l >= 0 => Ok(Coordinator::Broker(l)),
            _ => Err(unknown()),
        }
    }

    /// Runs `request` at the coordinator of `transactional_id`, re-routing it from the image
    /// while it does not reach one, for [`RETRY_FOR`] at most.
    async fn txn_call(
        &self,
        transactional_id: &str,
        request: Request,
    ) -> Result<Answer, AccessError> {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let mut attempt = 0;
        loop {
            let result = match self.coordinator(transactional_id) {
                Ok(Coordinator::Here) => self.txn_local(&request).await,
                Ok(Coordinator::Broker(b)) => self.call(b, &request).await,
                Err(e) => Err(e),
            };
            // Only a call that did not reach a coordinator is retried here (a moved one, or
            // one that stopped answering: the coordinator's calls are safe to repeat); the
            // coordinator's own retriable answers (CONCURRENT_TRANSACTIONS) are the caller's.
            match result {
                Err(e)
                    if (e.is_misrouted() || matches!(e, AccessError::Link { .. }))
                        && tokio::time::Instant::now() < deadline =>
                {
                    attempt += 1;
                    tracing::debug!(transactional_id, attempt, error = %e, "re-routing a transaction call");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn txn_local(&self, request: &Request) -> Result<Answer, AccessError> {
        Ok(serve::run_txn(&self.state, request).await?)
    }

    /// InitProducerId for `transactional_id` at its coordinator: a producer id and a new
    /// epoch; the previous producer is fenced and its open transaction aborted.
    pub async fn init_transactional(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
    ) -> Result<(i64, i16), AccessError> {
        let request = Request::InitTransactional {
            transactional_id: transactional_id.to_string(),
            timeout_ms,
        };
        match self.txn_call(transactional_id, request).await? {
            Answer::Producer {
                producer_id,
                producer_epoch,
            } => Ok((producer_id, producer_epoch)),
            other => Err(unexpected(self.coordinator_id(transactional_id), &other)),
        }
    }

    /// AddPartitionsToTxn at the coordinator of `transactional_id`.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), AccessError> {
        let request = Request::AddPartitions {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            partitions,
        };
        match self.txn_call(transactional_id, request).await? {
            Answer::Done => Ok(()),
            other => Err(unexpected(self.coordinator_id(transactional_id), &other)),
        }
    }

    /// EndTxn at the coordinator of `transactional_id`: durable when this returns, and
    /// (a few seconds at most) every marker written.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), AccessError> {
        let request = Request::EndTxn {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            commit,
        };
        match self.txn_call(transactional_id, request).await? {
            Answer::Done => Ok(()),
            other => Err(unexpected(self.coordinator_id(transactional_id), &other)),
        }
    }

    fn coordinator_id(&self, transactional_id: &str) -> BrokerId {
        match self.coordinator(transactional_id) {
            Ok(Coordinator::Broker(b)) => b,
            _ => self.state.config.node_id,
        }
    }

    /// Parks until any of `wakes` may have new data (an append, a marker, a high watermark
    /// that moved), or `deadline`. Local partitions park on their versions; partitions led
    /// elsewhere long-poll their leaders, one request per leader.
    pub async fn wait_any(&self, wakes: &[Wake], deadline: tokio::time::Instant) {
        remote::wait_any(self, wakes, deadline).await;
    }
}

/// 50 ms, doubling to 400 ms.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25u64 << attempt.clamp(1, 4))
}

/// Whether `batches` start with an idempotent producer's batch (a producer id): a retry of it
/// is recognised by the leader (same producer, epoch and sequence) instead of written twice.
fn is_idempotent(batches: &[u8]) -> bool {
    batches
        .get(43..51)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .is_some_and(|b| i64::from_be_bytes(b) >= 0)
}

fn unexpected(broker: BrokerId, answer: &Answer) -> AccessError {
    tracing::warn!(broker, ?answer, "an answer of the wrong kind");
    AccessError::Codec {
        broker,
        source: CodecError {
            at: 0,
            reason: "an answer of the wrong kind",
        },
    }
}

/// What a read returned, and how to park on the partition afterwards.
#[derive(Debug)]
pub struct Read {
    pub result: ReadResult,
    pub wake: Wake,
}

/// How to learn that a partition may have new data after a read.
#[derive(Debug, Clone)]
pub enum Wake {
    /// Led here: its version as of before the read.
    Local(Arc<Partition>, u64),
    /// Led elsewhere: the leader is asked when its last stable offset passes `offset`.
    Remote {
        tp: TopicPartition,
        leader: BrokerId,
        offset: i64,
    },
}

/// What an append still owes before its records may be counted on.
#[derive(Debug)]
pub enum AppendAck {
    /// Led here: the fsync and replication acks=all waits for (a later append's wait covers
    /// the earlier ones of the partition).
    Local(AckWait),
    /// Led elsewhere: the leader answered after both.
    Done,
}

impl AppendAck {
    pub fn is_empty(&self) -> bool {
        match self {
            AppendAck::Local(w) => w.is_empty(),
            AppendAck::Done => true,
        }
    }

    /// Completes when the records are durable and replicated (`timeout` bounds replication).
    pub async fn wait(self, timeout: Duration) -> Result<(), crate::partition::PartitionError> {
        match self {
            AppendAck::Local(w) => w.wait(timeout).await,
            AppendAck::Done => Ok(()),
        }
    }
}

/// What an append did.
#[derive(Debug)]
pub struct Appended {
    /// The offset of the last record appended.
    pub last_offset: i64,
    pub ack: AppendAck,
}

/// One partition, wherever it is led.
#[derive(Debug, Clone)]
pub struct PartitionHandle {
    access: PartitionAccess,
    tp: TopicPartition,
    /// This broker's replica as of the handle's creation (every partition on one node).
    local: Option<Arc<Partition>>,
}

impl PartitionHandle {
    pub fn topic(&self) -> &str {
        &self.tp.topic
    }

    pub fn index(&self) -> i32 {
        self.tp.partition
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Where a call goes now: here if this broker leads the partition (always on a single
    /// node), else its leader in the image.
    fn route(&self) -> Result<Route, AccessError> {
        if let Some(p) = &self.local {
            if !self.access.state.cluster || p.role() == Role::Leader {
                return Ok(Route::Local(p.clone()));
            }
        }
        let state = &self.access.state;
        if !state.cluster {
            return Err(AccessError::UnknownPartition(self.tp.clone()));
        }
        // The replica may have been created here since the handle was.
        if let Some(p) = state
            .topic(&self.tp.topic)
            .and_then(|t| t.partition(self.tp.partition))
        {
            if p.role() == Role::Leader {
                return Ok(Route::Local(p));
            }
        }
        let image = state.image.image();
        let topic = image
            .topic_by_name(&self.tp.topic)
            .ok_or_else(|| AccessError::UnknownPartition(self.tp.clone()))?;
        let leader = topic
            .partitions
            .get(&self.tp.partition)
            .ok_or_else(|| AccessError::UnknownPartition(self.tp.clone()))?
            .leader;
        if leader < 0 || leader == state.config.node_id {
            // No leader, or the image says here and the replica has not taken the role yet.
            return Err(AccessError::NoLeader(self.tp.clone()));
        }
        Ok(Route::Broker(leader))
    }

    fn local_error(&self, source: crate::partition::PartitionError) -> AccessError {
        AccessError::Partition {
            tp: self.tp.clone(),
            source,
        }
    }

    /// Runs a call that changes nothing (a read, an offset lookup) with a fresh route each
    /// time while its error is retriable, for [`RETRY_FOR`] at most.
    async fn routed<T, F, Fut>(&self, mut attempt: F) -> Result<T, AccessError>
    where
        F: FnMut(Route) -> Fut,
        Fut: std::future::Future<Output = Result<T, AccessError>>,
    {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let mut n = 0;
        loop {
            let result = match self.route() {
                Ok(route) => attempt(route).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    n += 1;
                    tracing::debug!(topic = %self.tp.topic, partition = self.tp.partition, attempt = n, error = %e, "re-routing a partition call");
                    tokio::time::sleep(backoff(n)).await;
                }
                other => return other,
            }
        }
    }

    /// Reads whole batches as `Partition::read` does. Led here, the read runs inline (a
    /// positional read, usually from the page cache), as the engine's reads always did.
    pub async fn read(&self, spec: &ReadSpec) -> Result<Read, AccessError> {
        self.read_with(spec, false).await
    }

    /// [`read`](Self::read), a local read running on the blocking pool (callers on a
    /// runtime shared with other work: ad-hoc queries).
    pub async fn read_offloaded(&self, spec: &ReadSpec) -> Result<Read, AccessError> {
        self.read_with(spec, true).await
    }

    async fn read_with(&self, spec: &ReadSpec, offload: bool) -> Result<Read, AccessError> {
        let spec = *spec;
        self.routed(|route| async move {
            match route {
                Route::Local(p) => {
                    let version = p.version();
                    let result = if offload {
                        let q = p.clone();
                        tokio::task::spawn_blocking(move || q.read(&spec))
                            .await
                            .map_err(AccessError::Task)?
                    } else {
                        p.read(&spec)
                    }
                    .map_err(|e| self.local_error(e))?;
                    Ok(Read {
                        result,
                        wake: Wake::Local(p, version),
                    })
                }
                Route::Broker(b) => {
                    let request = Request::Read {
                        tp: self.tp.clone(),
                        spec,
                    };
                    match self.access.call(b, &request).await? {
                        // Parked on, the leader answers when its last stable offset passes
                        // the one this read saw (as a local version moves past the one
                        // taken before the read).
                        Answer::Read(result) => Ok(Read {
                            wake: Wake::Remote {
                                tp: self.tp.clone(),
                                leader: b,
                                offset: result.watermarks.last_stable_offset,
                            },
                            result,
                        }),
                        other => Err(unexpected(b, &other)),
                    }
                }
            }
        })
        .await
    }

    /// The log start offset, high watermark and last stable offset.
    pub async fn watermarks(&self) -> Result<Watermarks, AccessError> {
        self.routed(|route| async move {
            match route {
                Route::Local(p) => Ok(p.watermarks()),
                Route::Broker(b) => {
                    let request = Request::Watermarks {
                        tp: self.tp.clone(),
                    };
                    match self.access.call(b, &request).await? {
                        Answer::Watermarks(w) => Ok(w),
                        other => Err(unexpected(b, &other)),
                    }
                }
            }
        })
        .await
    }

    /// The first offset whose timestamp is at least `timestamp`, with that timestamp.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, AccessError> {
        self.routed(|route| async move {
            match route {
                Route::Local(p) => p
                    .offset_for_timestamp(timestamp)
                    .map_err(|e| self.local_error(e)),
                Route::Broker(b) => {
                    let request = Request::OffsetForTimestamp {
                        tp: self.tp.clone(),
                        timestamp,
                    };
                    match self.access.call(b, &request).await? {
                        Answer::Offset(found) => Ok(found),
                        other => Err(unexpected(b, &other)),
                    }
                }
            }
        })
        .await
    }

    /// Appends `batches` (v2 record batches: producer id, epoch and sequences as the caller
    /// set them) with acks=all. Led here, the append is `Partition::append` on the buffer
    /// itself and the durability it owes is returned to be awaited later; led elsewhere,
    /// the leader answers once the records are durable and replicated. A misrouted append
    /// (nothing written) is re-routed; one whose answer was lost only if idempotent.
    pub async fn append(&self, batches: &mut BytesMut) -> Result<Appended, AccessError> {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let idempotent = is_idempotent(batches);
        let mut n = 0;
        loop {
            let result = match self.route() {
                Ok(Route::Local(p)) => {
                    let state = &self.access.state;
                    p.append(batches, Acks::All, state.config.durability, now_ms())
                        .map(|a| Appended {
                            last_offset: a.info.last_offset,
                            ack: AppendAck::Local(a.wait),
                        })
                        .map_err(|e| self.local_error(e))
                }
                Ok(Route::Broker(b)) => {
                    let request = Request::Append {
                        tp: self.tp.clone(),
                        timeout_ms: u32::try_from(REMOTE_APPEND_TIMEOUT.as_millis())
                            .unwrap_or(u32::MAX),
                        records: batches.clone().freeze(),
                    };
                    match self.access.call(b, &request).await {
                        Ok(Answer::Appended { last_offset }) => Ok(Appended {
                            last_offset,
                            ack: AppendAck::Done,
                        }),
                        Ok(other) => Err(unexpected(b, &other)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match result {
                Err(e)
                    if (e.is_misrouted() || (idempotent && e.is_retriable()))
                        && tokio::time::Instant::now() < deadline =>
                {
                    n += 1;
                    tracing::debug!(topic = %self.tp.topic, partition = self.tp.partition, attempt = n, error = %e, "retrying an append");
                    tokio::time::sleep(backoff(n)).await;
                }
                other => return other,
            }
        }
    }

    /// Makes every offset below `offset` durable on this broker's replica when it leads the
    /// partition (an append whose policy owed no fsync); a remote leader already did.
    pub async fn flush_to(&self, offset: i64) -> Result<(), AccessError> {
        match self.route()? {
            Route::Local(p) => tokio::task::spawn_blocking(move || p.flush_to(offset))
                .await
                .map_err(AccessError::Task)?
                .map_err(|e| self.local_error(e)),
            Route::Broker(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
