//! The broker side of consumer groups: runs the `weir-coordinator` state machine, parks
//! JoinGroup/SyncGroup requests until it answers them, drives its timers, and keeps
//! committed offsets durable in an offsets log.
//!
//! The offsets log is a `weir_storage::Log` under `<data-dir>/meta/group-offsets`: committed
//! offsets, pending transactional commits and group membership (classic and KIP-848), as
//! described in `group_log.rs`. It is replayed at start. When it holds far more records than live
//! offsets, start-up rewrites the live ones and drops the older segments: a log-structured
//! store with compaction by rewrite.
//!
//! Ordering: outputs are applied while the coordinator lock is held, so records reach the log
//! in the order the coordinator decided them; the fsync that makes a commit durable runs after
//! the lock is released, and the OffsetCommit (or a changing ConsumerGroupHeartbeat)
//! response waits for it.
//!
//! In cluster mode one `Groups` is one shard: the coordinator of the groups hashed to one
//! `__consumer_offsets` partition led here (`group_router.rs`), over that partition
//! (`CoordinatorLog::Shard`): "durable" there means committed (fsynced and below the high
//! watermark). Losing the leadership unloads the shard: it answers NOT_COORDINATOR from then on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, Notify};
use weir_coordinator::{
    CommitRequest, CommittedOffset, Coordinator, CoordinatorConfig, ErrorCode, JoinRequest,
    JoinResponse, Output, RequestId, Response, SyncRequest, SyncResponse, TopicPartition,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_storage::{Recovery, StorageError};

use crate::coordinator_log::CoordinatorLog;
use crate::group_router::{
    consumer_describe_failed, consumer_heartbeat_failed, describe_failed, join_failed, sync_failed,
};

#[path = "groups_verify.rs"]
mod verify;
#[path = "groups_writes.rs"]
mod writes;

/// Why the offsets log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    #[error("offsets log: {0}")]
    Storage(#[from] StorageError),
    #[error("offsets log record at offset {offset} does not decode: {message}")]
    Corrupt { offset: i64, message: String },
    /// A write to the offsets log failed and the coordinator's memory was dropped; it
    /// answers nothing until it has been rebuilt from the log (never, if the log was
    /// poisoned by a failed fsync: then only a restart rebuilds it).
    #[error("group coordinator unavailable until it is rebuilt from its log")]
    Unavailable,
    /// The shard's partition is no longer led here (under the epoch it was loaded for).
    #[error("this broker no longer coordinates the shard")]
    NotCoordinator,
    /// The shard's records were not committed (the ISR fell below min.insync.replicas,
    /// or the wait for the high watermark timed out); the shard stays loaded.
    #[error("the shard's records were not committed: {0}")]
    Uncommitted(#[source] Box<crate::partition::PartitionError>),
}

impl GroupsError {
    /// The error code answered for a request this failure stopped.
    pub fn code(&self) -> ErrorCode {
        match self {
            GroupsError::NotCoordinator => ErrorCode::NOT_COORDINATOR,
            _ => UNAVAILABLE,
        }
    }
}

pub struct Groups {
    /// The state machine; every call and the application of its outputs happen under it.
    coordinator: Mutex<Coordinator>,
    config: CoordinatorConfig,
    /// Set when a failed write dropped the coordinator's memory and the rebuild from the log
    /// has not succeeded yet; every request is answered COORDINATOR_NOT_AVAILABLE meanwhile.
    broken: AtomicBool,
    /// JoinGroup/SyncGroup requests waiting for the coordinator's answer.
    parked: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    next_request: AtomicU64,
    log: CoordinatorLog,
    /// Set when the shard was unloaded (its partition is no longer led here): every request
    /// is answered NOT_COORDINATOR and the timer stops.
    unloaded: AtomicBool,
    /// Wakes the timer task when a call may have moved the next deadline.
    timer: Notify,
    /// TxnOffsetCommits being verified with their transaction coordinator (KIP-890): a
    /// settlement of the producer clears its guard, so offsets verified before a marker are
    /// not left pending after it. Used only under `coordinator`'s lock.
    guards: Mutex<crate::txn_guard::Guards>,
}

/// What a load replayed: records read, live offsets kept.
struct Replayed {
    records: i64,
    live: usize,
}

/// Live records beyond which the offsets log is rewritten at start-up.
const REWRITE_SLACK: i64 = 10_000;

const UNAVAILABLE: ErrorCode = ErrorCode::COORDINATOR_NOT_AVAILABLE;

fn now_ms() -> u64 {
    u64::try_from(crate::server::now_ms()).unwrap_or(0)
}

/// A coordinator config for a new coordinator instance. Member ids carry this seed; a new
/// one per instance keeps them distinct from ids that clients still hold from before a
/// restart or a rebuild.
fn seeded(config: &CoordinatorConfig) -> CoordinatorConfig {
    let mut config = config.clone();
    config.member_id_seed = now_ms();
    config
}

impl Groups {
    /// Opens the offsets log and replays it into a new coordinator.
    pub fn open(
        data_dir: &Path,
        recovery: Recovery,
        config: CoordinatorConfig,
    ) -> Result<Groups, GroupsError> {
        let log = crate::internal_log::open(data_dir, "group-offsets", recovery)?;
        let (groups, loaded) = Groups::load(CoordinatorLog::Local(log), config)?;
        tracing::info!(
            records = loaded.records,
            live = loaded.live,
            "replayed group offsets"
        );
        let live = i64::try_from(loaded.live).unwrap_or(i64::MAX);
        if loaded.records > live.saturating_mul(2).saturating_add(REWRITE_SLACK) {
            groups.rewrite()?;
        }
        Ok(groups)
    }

    /// Replays `log` into a new coordinator (blocking: a load reads the whole log).
    fn load(
        log: CoordinatorLog,
        config: CoordinatorConfig,
    ) -> Result<(Groups, Replayed), GroupsError> {
        let loaded = crate::group_log::load(log.log(), seeded(&config), now_ms())?;
        let replayed = Replayed {
            records: loaded.records,
            live: loaded.live,
        };
        let groups = Groups {
            coordinator: Mutex::new(loaded.coordinator),
            config,
            broken: AtomicBool::new(false),
            parked: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            log,
            unloaded: AtomicBool::new(false),
            timer: Notify::new(),
            guards: Mutex::default(),
        };
        Ok((groups, replayed))
    }

    /// Loads a shard (cluster mode) from its partition, led here under `leader_epoch`
    /// (blocking: run it off the async runtime).
    pub fn load_shard(
        partition: Arc<crate::partition::Partition>,
        leader_epoch: i32,
        config: CoordinatorConfig,
    ) -> Result<Groups, GroupsError> {
        let log = CoordinatorLog::Shard {
            partition,
            leader_epoch,
        };
        let (groups, loaded) = Groups::load(log, config)?;
        tracing::info!(
            records = loaded.records,
            live = loaded.live,
            leader_epoch,
            "loaded a group coordinator shard"
        );
        Ok(groups)
    }

    /// Stops serving: the partition is no longer led here. Parked JoinGroup/SyncGroup
    /// requests are answered NOT_COORDINATOR, as is every later request; the timer stops.
    pub fn unload(&self) {
        let _c = self.lock();
        self.mark_unloaded();
    }

    /// [`Groups::unload`] with the coordinator lock held.
    fn mark_unloaded(&self) {
        self.unloaded.store(true, Ordering::Release);
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.timer.notify_one();
    }

    fn is_unloaded(&self) -> bool {
        self.unloaded.load(Ordering::Acquire)
    }

    /// The code of an answer this shard cannot give.
    fn unavailable(&self) -> ErrorCode {
        if self.is_unloaded() {
            ErrorCode::NOT_COORDINATOR
        } else {
            UNAVAILABLE
        }
    }

    fn lock(&self) -> MutexGuard<'_, Coordinator> {
        self.coordinator.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the shard answers nothing: broken (being rebuilt) or unloaded.
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire) || self.is_unloaded()
    }

    /// Whether the offsets log was poisoned (a failed fsync): the coordinator then stays
    /// unavailable until the broker restarts.
    pub fn is_poisoned(&self) -> bool {
        self.log.is_poisoned()
    }

    fn park(&self) -> (RequestId, oneshot::Receiver<Response>) {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        (RequestId(id), rx)
    }

    fn unpark(&self, id: RequestId) {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id.0);
    }

    /// Runs a call whose answer comes through a parked request (JoinGroup, SyncGroup).
    /// None if the coordinator is unavailable or dropped the request in a rebuild.
    async fn parked_call(
        &self,
        call: impl FnOnce(&mut Coordinator, u64, RequestId) -> Vec<Output>,
    ) -> Option<Response> {
        self.rearm();
        let (id, rx) = self.park();
        {
            let mut c = self.lock();
            if self.is_broken() {
                drop(c);
                self.unpark(id);
                return None;
            }
            let outputs = call(&mut c, now_ms(), id);
            if let Err(e) = self.apply(&mut c, outputs) {
                tracing::error!(error = %e, "group offsets log write failed");
            }
        }
        let answer = rx.await.ok();
        if answer.is_none() {
            self.unpark(id);
        }
        answer
    }

    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        match self
            .parked_call(|c, now, id| c.join_group(now, id, req))
            .await
        {
            Some(Response::Join(r)) => r,
            other => {
                if other.is_some() {
                    tracing::error!(?other, "coordinator answered JoinGroup with something else");
                }
                join_failed(self.unavailable())
            }
        }
    }

    pub async fn sync(&self, req: SyncRequest) -> SyncResponse {
        match self
            .parked_call(|c, now, id| c.sync_group(now, id, req))
            .await
        {
            Some(Response::Sync(r)) => r,
            other => {
                if other.is_some() {
                    tracing::error!(?other, "coordinator answered SyncGroup with something else");
                }
                sync_failed(self.unavailable())
            }
        }
    }

    pub fn heartbeat(
        &self,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> ErrorCode {
        let code = {
            let mut c = self.lock();
            if self.is_broken() {
                return self.unavailable();
            }
            c.heartbeat(now_ms(), group, generation, member, instance)
        };
        self.timer.notify_one();
        code
    }

    pub fn leave(
        &self,
        group: &str,
        members: Vec<weir_coordinator::LeaveMember>,
    ) -> weir_coordinator::LeaveResponse {
        self.rearm();
        let mut c = self.lock();
        if self.is_broken() {
            return weir_coordinator::LeaveResponse {
                error: self.unavailable(),
                members: Vec::new(),
            };
        }
        let (resp, outputs) = c.leave_group(now_ms(), group, members);
        if let Err(e) = self.apply(&mut c, outputs) {
            tracing::error!(error = %e, "group offsets log write failed");
        }
        resp
    }

    /// Commits offsets; returns per-partition codes once the commit is durable.
    pub async fn commit(&self, req: CommitRequest) -> Vec<(TopicPartition, ErrorCode)> {
        let partitions = req.offsets.iter().map(|(tp, _)| tp.clone()).collect();
        self.commit_durably(partitions, |c, now| c.commit_offsets(now, req))
            .await
    }

    /// TxnOffsetCommit without its verification (the handlers use
    /// [`Groups::txn_commit_verified`]); returns per-partition codes once the pending commits
    /// are durable.
    #[cfg(test)]
    pub(crate) async fn txn_commit(
        &self,
        req: weir_coordinator::TxnCommitRequest,
    ) -> Vec<(TopicPartition, ErrorCode)> {
        let partitions = req.offsets.iter().map(|(tp, _)| tp.clone()).collect();
        self.commit_durably(partitions, |c, now| c.txn_commit_offsets(now, req))
            .await
    }

    /// Runs a commit on the coordinator, persists its outputs and waits for the fsync. If
    /// that fails, every accepted partition is answered COORDINATOR_NOT_AVAILABLE: the
    /// client retries, and nothing it was told committed can be lost.
    async fn commit_durably(
        &self,
        partitions: Vec<TopicPartition>,
        call: impl FnOnce(&mut Coordinator, u64) -> (Vec<(TopicPartition, ErrorCode)>, Vec<Output>),
    ) -> Vec<(TopicPartition, ErrorCode)> {
        self.rearm();
        let (codes, applied) = {
            let mut c = self.lock();
            if self.is_broken() {
                return partitions
                    .into_iter()
                    .map(|tp| (tp, self.unavailable()))
                    .collect();
            }
            let (codes, outputs) = call(&mut c, now_ms());
            let applied = self.apply(&mut c, outputs);
            (codes, applied)
        };
        match self.committed(applied).await {
            Ok(()) => codes,
            Err(e) => {
                tracing::error!(error = %e, "committed offsets could not be made durable");
                codes
                    .into_iter()
                    .map(|(tp, code)| match code {
                        ErrorCode::NONE => (tp, e.code()),
                        code => (tp, code),
                    })
                    .collect()
            }
        }
    }

    /// Settles a decided transaction's pending commits in `group` and makes that durable.
    pub async fn settle_txn(
        &self,
        group: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), GroupsError> {
        let applied = {
            let mut c = self.lock();
            if self.is_broken() {
                return Err(GroupsError::Unavailable);
            }
            self.void_guard(producer_id);
            let outputs = c.settle_txn_offsets(now_ms(), group, producer_id, commit);
            self.apply(&mut c, outputs)
        };
        self.make_durable(applied?).await
    }

    /// Settles producer `producer_id`'s pending transactional commits in every group of
    /// this coordinator: what a transaction marker for the shard's partition means when the
    /// transaction coordinator runs on another broker (design §7.3).
    pub async fn settle_producer(&self, producer_id: i64, commit: bool) -> Result<(), GroupsError> {
        let applied = {
            let mut c = self.lock();
            if self.is_broken() {
                return Err(GroupsError::Unavailable);
            }
            self.void_guard(producer_id);
            let now = now_ms();
            let mut outputs = Vec::new();
            for listing in c.list_groups(&[]) {
                outputs.extend(c.settle_txn_offsets(now, &listing.group_id, producer_id, commit));
            }
            self.apply(&mut c, outputs)
        };
        self.make_durable(applied?).await
    }

    /// Partitions of `group` whose transactional commits are still undecided.
    pub fn unstable_partitions(&self, group: &str) -> std::collections::BTreeSet<TopicPartition> {
        self.lock().unstable_partitions(group)
    }

    /// Committed offsets, once the log is durable up to its end as of the read: a commit
    /// still waiting for its fsync (which may fail) is never shown.
    pub async fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, ErrorCode> {
        let (fetched, end) = {
            let c = self.lock();
            if self.is_broken() {
                return Err(self.unavailable());
            }
            (
                c.fetch_offsets(group, partitions),
                self.log.log_end_offset(),
            )
        };
        self.make_durable(Some(end)).await.map_err(|e| {
            tracing::error!(error = %e, "offsets not committed");
            e.code()
        })?;
        Ok(fetched)
    }

    /// KIP-848 ConsumerGroupHeartbeat. `topics` gives partition counts. A heartbeat that
    /// changed the group is answered once the group's record is durable (committed, in a
    /// cluster): a member told epoch N finds epoch N at the next coordinator. If it cannot
    /// be made durable the answer is an error and the member retries.
    pub async fn consumer_heartbeat(
        &self,
        req: weir_coordinator::ConsumerHeartbeat,
        topics: &(dyn Fn(&str) -> Option<i32> + Sync),
    ) -> weir_coordinator::ConsumerHeartbeatResponse {
        let (resp, applied) = {
            let mut c = self.lock();
            if self.is_broken() {
                return consumer_heartbeat_failed(self.unavailable());
            }
            let (resp, outputs) = c.consumer_heartbeat(now_ms(), req, topics);
            let applied = self.apply(&mut c, outputs);
            (resp, applied)
        };
        self.rearm();
        match self.committed(applied).await {
            Ok(()) => resp,
            Err(e) => {
                tracing::warn!(error = %e, "consumer group change could not be made durable");
                consumer_heartbeat_failed(e.code())
            }
        }
    }

    pub fn consumer_describe(
        &self,
        groups: &[String],
    ) -> Vec<weir_coordinator::ConsumerGroupDescription> {
        let c = self.lock();
        if self.is_broken() {
            return groups
                .iter()
                .map(|g| consumer_describe_failed(g, self.unavailable()))
                .collect();
        }
        c.consumer_group_describe(groups)
    }

    /// Every group's members, rebalances and committed offsets (for metrics); empty while
    /// the coordinator is being rebuilt.
    pub fn stats(&self) -> Vec<weir_coordinator::GroupStats> {
        let c = self.lock();
        if self.is_broken() {
            return Vec::new();
        }
        c.group_stats()
    }

    pub fn group_type(&self, group: &str) -> Option<weir_coordinator::GroupType> {
        self.lock().group_type(group)
    }

    pub fn describe(&self, group: &str) -> weir_coordinator::GroupDescription {
        let c = self.lock();
        if self.is_broken() {
            return describe_failed(group, self.unavailable());
        }
        c.describe_group(group)
    }

    pub fn list(
        &self,
        states: &[weir_coordinator::GroupState],
    ) -> Result<Vec<weir_coordinator::GroupListing>, ErrorCode> {
        let c = self.lock();
        if self.is_broken() {
            return Err(self.unavailable());
        }
        Ok(c.list_groups(states))
    }

    pub async fn delete_groups(&self, groups: Vec<String>) -> Vec<(String, ErrorCode)> {
        self.rearm();
        let (codes, applied) = {
            let mut c = self.lock();
            if self.is_broken() {
                return groups
                    .into_iter()
                    .map(|g| (g, self.unavailable()))
                    .collect();
            }
            let (codes, outputs) = c.delete_groups(groups);
            let applied = self.apply(&mut c, outputs);
            (codes, applied)
        };
        match self.committed(applied).await {
            Ok(()) => codes,
            Err(e) => {
                tracing::error!(error = %e, "group deletion could not be made durable");
                codes
                    .into_iter()
                    .map(|(g, code)| match code {
                        ErrorCode::NONE => (g, e.code()),
                        code => (g, code),
                    })
                    .collect()
            }
        }
    }

    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> weir_coordinator::DeleteOffsetsResponse {
        self.rearm();
        let unavailable = weir_coordinator::DeleteOffsetsResponse {
            error: self.unavailable(),
            partitions: Vec::new(),
        };
        let (resp, applied) = {
            let mut c = self.lock();
            if self.is_broken() {
                return unavailable;
            }
            let (resp, outputs) = c.delete_offsets(group, partitions);
            let applied = self.apply(&mut c, outputs);
            (resp, applied)
        };
        match self.committed(applied).await {
            Ok(()) => resp,
            Err(e) => {
                tracing::error!(error = %e, "offset deletion could not be made durable");
                unavailable
            }
        }
    }

    /// A topic was deleted: its committed offsets go too.
    pub fn topic_deleted(&self, topic: &str) {
        self.rearm();
        let mut c = self.lock();
        if self.is_broken() {
            tracing::warn!(
                topic,
                "group coordinator unavailable; the deleted topic's offsets stay in its log"
            );
            return;
        }
        let outputs = c.topic_deleted(topic);
        if let Err(e) = self.apply(&mut c, outputs) {
            tracing::error!(error = %e, "group offsets log write failed");
        }
    }

    /// Calls `tick` whenever the coordinator's next deadline passes, until stopped.
    pub async fn run_timer(self: Arc<Self>, mut stop: broadcast::Receiver<()>) {
        loop {
            if self.is_unloaded() {
                return;
            }
            let wait = {
                let c = self.lock();
                c.next_deadline()
                    .map(|d| Duration::from_millis(d.saturating_sub(now_ms())))
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(1))
            };
            tokio::select! {
                _ = stop.recv() => return,
                _ = self.timer.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            let applied = {
                let mut c = self.lock();
                if self.is_unloaded() {
                    return;
                }
                if self.is_broken() && !self.log.is_poisoned() {
                    self.rebuild(&mut c, &"an earlier rebuild failed");
                }
                if self.is_broken() {
                    continue;
                }
                let outputs = c.tick(now_ms());
                self.apply(&mut c, outputs)
            };
            if let Err(e) = self.committed(applied).await {
                tracing::error!(error = %e, "group timer could not persist");
            }
        }
    }

    /// Closes a node-local log; a shard's partition is closed with its topic.
    pub fn close(&self) -> Result<(), StorageError> {
        match &self.log {
            CoordinatorLog::Local(log) => log.close(),
            CoordinatorLog::Shard { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "groups_snapshot.rs"]
mod snapshot;

/// StrBytes from an optional string.
pub fn opt_str(s: Option<String>) -> Option<StrBytes> {
    s.map(StrBytes::from_string)
}
