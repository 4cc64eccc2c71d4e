//! The broker side of consumer groups: runs the `weir-coordinator` state machine, parks
//! JoinGroup/SyncGroup requests until it answers them, drives its timers, and keeps
//! committed offsets durable in an offsets log.
//!
//! The offsets log is a `weir_storage::Log` under `<data-dir>/meta/group-offsets`, one record
//! per committed partition: key `{group, topic, partition}`, value the commit as JSON, or no
//! value for a tombstone. It is replayed at start. When it holds far more records than live
//! offsets, start-up rewrites the live ones and drops the older segments: a log-structured
//! store with compaction by rewrite.
//!
//! Ordering: outputs are applied while the coordinator lock is held, so records reach the log
//! in the order the coordinator decided them; the fsync that makes a commit durable runs after
//! the lock is released, and the OffsetCommit response waits for it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot, Notify};
use weir_coordinator::{
    CommitRequest, CommittedOffset, Coordinator, CoordinatorConfig, ErrorCode, JoinRequest,
    JoinResponse, Output, RequestId, Response, SyncRequest, SyncResponse, TopicPartition,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::kafka_protocol::records::Record;
use weir_storage::{Log, Recovery, StorageError};

/// Record key in the offsets log.
#[derive(Debug, Serialize, Deserialize)]
struct OffsetKey {
    group: String,
    topic: String,
    partition: i32,
}

/// Record key of a producer's pending transactional commits in a group. The value is a
/// [`TxnOffsetsValue`] (more pending commits; records accumulate) or none: the producer's
/// transaction was decided and its commits settled.
#[derive(Debug, Serialize, Deserialize)]
struct TxnOffsetsKey {
    group: String,
    txn_producer_id: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct TxnOffsetsValue {
    producer_epoch: i16,
    offsets: Vec<TxnOffsetEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TxnOffsetEntry {
    topic: String,
    partition: i32,
    #[serde(flatten)]
    value: OffsetValue,
}

/// The two kinds of offsets log record, told apart by their key's fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum LogKey {
    Offset(OffsetKey),
    Txn(TxnOffsetsKey),
}

/// A decoded offsets log record.
enum LogRecord {
    Offset(OffsetKey, Option<OffsetValue>),
    TxnPending(TxnOffsetsKey, TxnOffsetsValue),
    TxnSettled(TxnOffsetsKey),
}

impl OffsetValue {
    fn new(c: &CommittedOffset) -> Self {
        OffsetValue {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone(),
            commit_timestamp_ms: c.commit_timestamp_ms,
        }
    }

    fn committed(self) -> CommittedOffset {
        CommittedOffset {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata,
            commit_timestamp_ms: self.commit_timestamp_ms,
        }
    }
}

/// Record value in the offsets log.
#[derive(Debug, Serialize, Deserialize)]
struct OffsetValue {
    offset: i64,
    leader_epoch: Option<i32>,
    metadata: Option<String>,
    commit_timestamp_ms: u64,
}

/// Why the offsets log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    #[error("offsets log: {0}")]
    Storage(#[from] StorageError),
    #[error("offsets log record at offset {offset} does not decode: {message}")]
    Corrupt { offset: i64, message: String },
}

pub struct Groups {
    /// The state machine; every call and the application of its outputs happen under it.
    coordinator: Mutex<Coordinator>,
    /// JoinGroup/SyncGroup requests waiting for the coordinator's answer.
    parked: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    next_request: AtomicU64,
    log: Log,
    /// Wakes the timer task when a call may have moved the next deadline.
    timer: Notify,
}

/// Live records beyond which the offsets log is rewritten at start-up.
const REWRITE_SLACK: i64 = 10_000;

fn now_ms() -> u64 {
    u64::try_from(crate::server::now_ms()).unwrap_or(0)
}

impl Groups {
    /// Opens the offsets log and replays it into a new coordinator.
    pub fn open(
        data_dir: &Path,
        recovery: Recovery,
        mut config: CoordinatorConfig,
    ) -> Result<Groups, GroupsError> {
        let log = crate::internal_log::open(data_dir, "group-offsets", recovery)?;
        // Member ids carry this seed; a new one per start keeps them distinct from ids that
        // clients still hold from before a restart.
        config.member_id_seed = now_ms();
        let mut coordinator = Coordinator::new(config);
        let now = now_ms();
        let mut live = HashMap::new();
        let mut records = 0i64;
        crate::internal_log::replay(&log, |r| {
            records += 1;
            let record = decode_record(&r).map_err(|message| GroupsError::Corrupt {
                offset: r.offset,
                message,
            })?;
            match record {
                LogRecord::Offset(key, value) => {
                    let tp = TopicPartition::new(key.topic.clone(), key.partition);
                    let committed = value.map(OffsetValue::committed);
                    live.insert((key.group.clone(), tp.clone()), committed.is_some());
                    coordinator.load_offsets(now, &key.group, tp, committed);
                }
                LogRecord::TxnPending(key, value) => {
                    let offsets = value
                        .offsets
                        .into_iter()
                        .map(|e| {
                            (
                                TopicPartition::new(e.topic, e.partition),
                                e.value.committed(),
                            )
                        })
                        .collect();
                    coordinator.load_txn_offsets(now, &key.group, key.txn_producer_id, offsets);
                }
                LogRecord::TxnSettled(key) => {
                    coordinator.load_txn_settled(&key.group, key.txn_producer_id);
                }
            }
            Ok(())
        })?;
        let live_count = live.values().filter(|l| **l).count();
        let groups = Groups {
            coordinator: Mutex::new(coordinator),
            parked: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            log,
            timer: Notify::new(),
        };
        tracing::info!(records, live = live_count, "replayed group offsets");
        if records > 2 * i64::try_from(live_count).unwrap_or(i64::MAX) + REWRITE_SLACK {
            groups.rewrite()?;
        }
        Ok(groups)
    }

    /// Appends every live offset again and drops the segments before them.
    fn rewrite(&self) -> Result<(), GroupsError> {
        let start = self.log.log_end_offset();
        {
            let coordinator = self.lock();
            let mut entries = Vec::new();
            for listing in coordinator.list_groups(&[]) {
                for (tp, committed) in coordinator.fetch_offsets(&listing.group_id, None) {
                    if let Some(c) = committed {
                        entries.push((listing.group_id.clone(), tp, Some(c)));
                    }
                }
            }
            for chunk in entries.chunks(500) {
                self.append(chunk)?;
            }
            for (group, producer_id, offsets) in coordinator.pending_txn_offsets() {
                self.append_txn(&group, producer_id, -1, Some(&offsets))?;
            }
        }
        self.log.flush_to(self.log.log_end_offset())?;
        let new_start = self.log.delete_records_before(start)?;
        tracing::info!(new_start, "rewrote the group offsets log");
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Coordinator> {
        self.coordinator.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes and appends offset records; returns the offset that must be durable.
    fn append(
        &self,
        entries: &[(String, TopicPartition, Option<CommittedOffset>)],
    ) -> Result<i64, GroupsError> {
        if entries.is_empty() {
            return Ok(self.log.log_end_offset());
        }
        let records = entries.iter().map(|(group, tp, committed)| {
            let key = OffsetKey {
                group: group.clone(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            };
            let value = committed.as_ref().map(OffsetValue::new);
            (
                Bytes::from(serde_json::to_vec(&key).unwrap_or_default()),
                value.map(|v| Bytes::from(serde_json::to_vec(&v).unwrap_or_default())),
            )
        });
        let info = crate::internal_log::append(&self.log, records)?;
        Ok(info.last_offset + 1)
    }

    /// Appends a pending-transactional-commits record (`Some`) or its settlement (`None`);
    /// returns the offset that must be durable.
    fn append_txn(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: Option<&[(TopicPartition, CommittedOffset)]>,
    ) -> Result<i64, GroupsError> {
        let key = TxnOffsetsKey {
            group: group.to_owned(),
            txn_producer_id: producer_id,
        };
        let value = offsets.map(|offsets| TxnOffsetsValue {
            producer_epoch,
            offsets: offsets
                .iter()
                .map(|(tp, c)| TxnOffsetEntry {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    value: OffsetValue::new(c),
                })
                .collect(),
        });
        let record = (
            Bytes::from(serde_json::to_vec(&key).unwrap_or_default()),
            value.map(|v| Bytes::from(serde_json::to_vec(&v).unwrap_or_default())),
        );
        let info = crate::internal_log::append(&self.log, [record])?;
        Ok(info.last_offset + 1)
    }

    /// Wakes the timer: a call may have moved the next deadline. Never called from the timer
    /// itself, which would then spin.
    fn rearm(&self) {
        self.timer.notify_one();
    }

    /// Applies outputs under the coordinator lock: parked requests are answered, offset
    /// changes are appended. Returns the offset that must be fsynced before any commit
    /// response covered by these outputs goes out.
    fn apply(&self, outputs: Vec<Output>) -> Result<Option<i64>, GroupsError> {
        let mut durable = None;
        let mut failure = None;
        for out in outputs {
            match out {
                Output::Respond { request, response } => {
                    let tx = self
                        .parked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&request.0);
                    if let Some(tx) = tx {
                        let _ = tx.send(response);
                    }
                }
                Output::PersistOffsets { group, offsets } => {
                    let entries: Vec<_> = offsets
                        .into_iter()
                        .map(|(tp, c)| (group.clone(), tp, Some(c)))
                        .collect();
                    match self.append(&entries) {
                        Ok(end) => durable = Some(end),
                        Err(e) => failure = Some(e),
                    }
                }
                Output::PersistTxnOffsets {
                    group,
                    producer_id,
                    producer_epoch,
                    offsets,
                } => match self.append_txn(&group, producer_id, producer_epoch, Some(&offsets)) {
                    Ok(end) => durable = Some(end),
                    Err(e) => failure = Some(e),
                },
                Output::TxnOffsetsSettled { group, producer_id } => {
                    match self.append_txn(&group, producer_id, -1, None) {
                        Ok(end) => durable = Some(end),
                        Err(e) => failure = Some(e),
                    }
                }
                Output::DeleteOffsets { group, partitions } => {
                    let entries: Vec<_> = partitions
                        .into_iter()
                        .map(|tp| (group.clone(), tp, None))
                        .collect();
                    match self.append(&entries) {
                        Ok(end) => durable = Some(end),
                        Err(e) => failure = Some(e),
                    }
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(durable),
        }
    }

    async fn make_durable(&self, end: Option<i64>) -> Result<(), GroupsError> {
        let Some(end) = end else { return Ok(()) };
        let log = &self.log;
        tokio::task::block_in_place(|| log.flush_to(end)).map_err(GroupsError::from)
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

    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        self.rearm();
        let (id, rx) = self.park();
        let applied = {
            let mut c = self.lock();
            let outputs = c.join_group(now_ms(), id, req);
            self.apply(outputs)
        };
        if let Err(e) = applied {
            tracing::error!(error = %e, "group offsets log write failed");
        }
        match rx.await {
            Ok(Response::Join(r)) => r,
            other => {
                tracing::error!(?other, "coordinator answered JoinGroup with something else");
                self.unpark(id);
                JoinResponse {
                    error: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    generation_id: -1,
                    protocol_type: None,
                    protocol_name: None,
                    leader: String::new(),
                    skip_assignment: false,
                    member_id: String::new(),
                    members: Vec::new(),
                }
            }
        }
    }

    pub async fn sync(&self, req: SyncRequest) -> SyncResponse {
        self.rearm();
        let (id, rx) = self.park();
        let applied = {
            let mut c = self.lock();
            let outputs = c.sync_group(now_ms(), id, req);
            self.apply(outputs)
        };
        if let Err(e) = applied {
            tracing::error!(error = %e, "group offsets log write failed");
        }
        match rx.await {
            Ok(Response::Sync(r)) => r,
            other => {
                tracing::error!(?other, "coordinator answered SyncGroup with something else");
                self.unpark(id);
                SyncResponse {
                    error: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    protocol_type: None,
                    protocol_name: None,
                    assignment: Bytes::new(),
                }
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
        let code = self
            .lock()
            .heartbeat(now_ms(), group, generation, member, instance);
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
        let (resp, outputs) = c.leave_group(now_ms(), group, members);
        if let Err(e) = self.apply(outputs) {
            tracing::error!(error = %e, "group offsets log write failed");
        }
        resp
    }

    /// Commits offsets; returns per-partition codes once the commit is durable.
    pub async fn commit(&self, req: CommitRequest) -> Vec<(TopicPartition, ErrorCode)> {
        self.commit_durably(|c, now| c.commit_offsets(now, req))
            .await
    }

    /// TxnOffsetCommit; returns per-partition codes once the pending commits are durable.
    pub async fn txn_commit(
        &self,
        req: weir_coordinator::TxnCommitRequest,
    ) -> Vec<(TopicPartition, ErrorCode)> {
        self.commit_durably(|c, now| c.txn_commit_offsets(now, req))
            .await
    }

    /// Runs a commit on the coordinator, persists its outputs and waits for the fsync. If
    /// that fails, every accepted partition is answered COORDINATOR_NOT_AVAILABLE: the
    /// client retries, and nothing it was told committed can be lost.
    async fn commit_durably(
        &self,
        call: impl FnOnce(&mut Coordinator, u64) -> (Vec<(TopicPartition, ErrorCode)>, Vec<Output>),
    ) -> Vec<(TopicPartition, ErrorCode)> {
        self.rearm();
        let (codes, applied) = {
            let mut c = self.lock();
            let (codes, outputs) = call(&mut c, now_ms());
            (codes, self.apply(outputs))
        };
        let result = match applied {
            Ok(end) => self.make_durable(end).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => codes,
            Err(e) => {
                tracing::error!(error = %e, "committed offsets could not be made durable");
                codes
                    .into_iter()
                    .map(|(tp, code)| match code {
                        ErrorCode::NONE => (tp, ErrorCode::COORDINATOR_NOT_AVAILABLE),
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
            let outputs = c.settle_txn_offsets(now_ms(), group, producer_id, commit);
            self.apply(outputs)
        };
        self.make_durable(applied?).await
    }

    /// Partitions of `group` whose transactional commits are still undecided.
    pub fn unstable_partitions(&self, group: &str) -> std::collections::BTreeSet<TopicPartition> {
        self.lock().unstable_partitions(group)
    }

    pub fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        self.lock().fetch_offsets(group, partitions)
    }

    /// KIP-848 ConsumerGroupHeartbeat; answered at once. `topics` gives partition counts.
    pub fn consumer_heartbeat(
        &self,
        req: weir_coordinator::ConsumerHeartbeat,
        topics: &dyn Fn(&str) -> Option<i32>,
    ) -> weir_coordinator::ConsumerHeartbeatResponse {
        let resp = self.lock().consumer_heartbeat(now_ms(), req, topics);
        self.rearm();
        resp
    }

    pub fn consumer_describe(
        &self,
        groups: &[String],
    ) -> Vec<weir_coordinator::ConsumerGroupDescription> {
        self.lock().consumer_group_describe(groups)
    }

    pub fn group_type(&self, group: &str) -> Option<weir_coordinator::GroupType> {
        self.lock().group_type(group)
    }

    pub fn describe(&self, group: &str) -> weir_coordinator::GroupDescription {
        self.lock().describe_group(group)
    }

    pub fn list(
        &self,
        states: &[weir_coordinator::GroupState],
    ) -> Vec<weir_coordinator::GroupListing> {
        self.lock().list_groups(states)
    }

    pub async fn delete_groups(&self, groups: Vec<String>) -> Vec<(String, ErrorCode)> {
        self.rearm();
        let (codes, applied) = {
            let mut c = self.lock();
            let (codes, outputs) = c.delete_groups(groups);
            (codes, self.apply(outputs))
        };
        self.settle(applied, codes).await
    }

    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> weir_coordinator::DeleteOffsetsResponse {
        self.rearm();
        let (resp, applied) = {
            let mut c = self.lock();
            let (resp, outputs) = c.delete_offsets(group, partitions);
            (resp, self.apply(outputs))
        };
        if let Err(e) = self.make_durable(applied.unwrap_or(None)).await {
            tracing::error!(error = %e, "offset deletion could not be made durable");
        }
        resp
    }

    /// A topic was deleted: its committed offsets go too.
    pub fn topic_deleted(&self, topic: &str) {
        self.rearm();
        let mut c = self.lock();
        let outputs = c.topic_deleted(topic);
        if let Err(e) = self.apply(outputs) {
            tracing::error!(error = %e, "group offsets log write failed");
        }
    }

    async fn settle<T>(&self, applied: Result<Option<i64>, GroupsError>, value: T) -> T {
        let result = match applied {
            Ok(end) => self.make_durable(end).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "group offsets log write failed");
        }
        value
    }

    /// Calls `tick` whenever the coordinator's next deadline passes, until stopped.
    pub async fn run_timer(self: Arc<Self>, mut stop: broadcast::Receiver<()>) {
        loop {
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
                let outputs = c.tick(now_ms());
                self.apply(outputs)
            };
            self.settle(applied, ()).await;
        }
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.log.close()
    }
}

fn decode_record(r: &Record) -> Result<LogRecord, String> {
    let key = r.key.as_ref().ok_or("record without a key")?;
    let key: LogKey = serde_json::from_slice(key).map_err(|e| e.to_string())?;
    fn json<T: serde::de::DeserializeOwned>(v: &Bytes) -> Result<T, String> {
        serde_json::from_slice(v).map_err(|e| e.to_string())
    }
    Ok(match (key, &r.value) {
        (LogKey::Offset(key), None) => LogRecord::Offset(key, None),
        (LogKey::Offset(key), Some(v)) => LogRecord::Offset(key, Some(json(v)?)),
        (LogKey::Txn(key), None) => LogRecord::TxnSettled(key),
        (LogKey::Txn(key), Some(v)) => LogRecord::TxnPending(key, json(v)?),
    })
}

/// Decodes an offsets log record and discards it (the fuzz targets' entry point).
pub(crate) fn check_record(r: &Record) -> Result<(), String> {
    decode_record(r).map(drop)
}

/// StrBytes from an optional string.
pub fn opt_str(s: Option<String>) -> Option<StrBytes> {
    s.map(StrBytes::from_string)
}
