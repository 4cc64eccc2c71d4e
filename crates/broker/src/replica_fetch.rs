//! The leader's side of a replica fetch (design §5.2, §5.3): a Fetch (v15+) whose
//! `ReplicaState` names a follower broker. Unlike a consumer's fetch it reads up to the log
//! end (the follower must copy records before the high watermark can pass them), reports the
//! follower's fetch offset to the partition's `LeaderState` (the high watermark moves, an ISR
//! expansion may be proposed), and answers `DivergingEpoch` when the follower's last fetched
//! epoch ends earlier on this leader (KIP-595's Fetch change), so the follower truncates
//! without a separate OffsetForLeaderEpoch round trip.
//!
//! [`replica_fetch`] is transport-free: the internal listener decodes the frame and calls it;
//! the tests call it in process. A fetch with nothing new parks like a consumer's, on its own
//! partitions, for `max_wait_ms`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use uuid::Uuid;
use weir_protocol::kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse};
use weir_protocol::ResponseError;
use weir_replication::IsrChange;

use crate::errors::partition_code;
use crate::partition::{self, Isolation, Partition, PartitionError, ReadSpec};
use crate::state::State;

/// The clock of the replication state machines (fetch times, ISR lag): wall-clock
/// milliseconds, the unit of `replica.lag.time.max.ms`.
pub fn replication_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An ISR change a replica fetch made the leader propose: to be sent to the controller as an
/// AlterPartition item ([`IsrChange::to_item`]), its answer handed back through
/// `Partition::on_alter_partition_result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub topic_id: Uuid,
    pub partition: i32,
    pub change: IsrChange,
}

/// A replica fetch's answer and the ISR changes it caused.
#[derive(Debug, Default)]
pub struct ReplicaFetchOutcome {
    pub response: FetchResponse,
    pub isr_changes: Vec<IsrProposal>,
}

/// Where a replica fetch finds the partitions it names: the broker's `State` on one node
/// and in the tests, the cluster publisher's replica table in cluster mode.
pub trait LeaderReplicas: Send + Sync {
    /// Partition `index` of the topic with id `topic_id`.
    fn by_id(&self, topic_id: Uuid, index: i32) -> Option<Arc<Partition>>;
    /// Partition `index` of the topic named `topic`, with the topic's id.
    fn by_name(&self, topic: &str, index: i32) -> Option<(Uuid, Arc<Partition>)>;
    /// Every local replica, with its topic's id.
    fn all(&self) -> Vec<(Uuid, Arc<Partition>)>;
}

impl LeaderReplicas for State {
    fn by_id(&self, topic_id: Uuid, index: i32) -> Option<Arc<Partition>> {
        self.topic_by_id(topic_id)?.partition(index)
    }

    fn by_name(&self, topic: &str, index: i32) -> Option<(Uuid, Arc<Partition>)> {
        let t = self.topic(topic)?;
        Some((t.id, t.partition(index)?))
    }

    fn all(&self) -> Vec<(Uuid, Arc<Partition>)> {
        self.topics()
            .into_iter()
            .flat_map(|t| {
                let id = t.id;
                t.all_partitions().into_iter().map(move |p| (id, p))
            })
            .collect()
    }
}

/// The ISR timer over every replicated partition this broker leads (Kafka runs it every
/// half `replica.lag.time.max.ms`): members that lagged longer are proposed out, refused
/// expansions proposed again.
pub fn replication_tick(
    replicas: &(impl LeaderReplicas + ?Sized),
    now_ms: u64,
) -> Vec<IsrProposal> {
    let mut out = Vec::new();
    for (topic_id, p) in replicas.all() {
        if !(p.is_replicated() && p.role() == partition::Role::Leader) {
            continue;
        }
        match p.replication_tick(now_ms) {
            Ok(Some(change)) => out.push(IsrProposal {
                topic_id,
                partition: p.index(),
                change,
            }),
            Ok(None) => {}
            // The role changed since the check: nothing to propose.
            Err(e) => tracing::debug!(partition = p.index(), error = %e, "no ISR tick"),
        }
    }
    out
}

/// One requested partition.
struct Want {
    index: i32,
    offset: i64,
    max_bytes: usize,
    leader_epoch: Option<i32>,
    /// The partition to read, or the answer already decided (an error or a divergence).
    target: Result<Arc<Partition>, Box<PartitionData>>,
    data: PartitionData,
    records: Bytes,
    version: Option<u64>,
}

struct TopicWant {
    topic: FetchableTopicResponse,
    parts: Vec<Want>,
}

/// Serves a follower's Fetch on this leader. The follower is `replica_state.replica_id`
/// (`replica_id` before v15) with broker epoch `replica_state.replica_epoch`; topics are
/// resolved by id when the id is set, else by name.
pub async fn replica_fetch(state: &Arc<State>, req: FetchRequest) -> ReplicaFetchOutcome {
    replica_fetch_from(&**state, req).await
}

/// The follower a replica Fetch comes from: `replica_state.replica_id` (v15+), else
/// `replica_id`.
pub fn follower_of(req: &FetchRequest) -> i32 {
    if req.replica_state.replica_id.0 >= 0 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    }
}

/// [`replica_fetch`] over any [`LeaderReplicas`] (the publisher's table in cluster mode).
pub async fn replica_fetch_from(
    replicas: &(impl LeaderReplicas + ?Sized),
    req: FetchRequest,
) -> ReplicaFetchOutcome {
    let follower = follower_of(&req);
    let broker_epoch = req.replica_state.replica_epoch;
    let now = replication_now_ms();
    let mut isr_changes = Vec::new();
    let mut plan: Vec<TopicWant> = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let by_name = t.topic_id.is_nil();
        let mut answer_topic = FetchableTopicResponse::default();
        answer_topic.topic = t.topic.clone();
        answer_topic.topic_id = t.topic_id;
        let parts = t
            .partitions
            .into_iter()
            .map(|p| {
                let leader_epoch = (p.current_leader_epoch >= 0).then_some(p.current_leader_epoch);
                let found = if by_name {
                    replicas.by_name(&t.topic.0, p.partition)
                } else {
                    replicas
                        .by_id(t.topic_id, p.partition)
                        .map(|part| (t.topic_id, part))
                };
                let target = match found {
                    None => Err(Box::new(error_answer(
                        p.partition,
                        if by_name {
                            ResponseError::UnknownTopicOrPartition.code()
                        } else {
                            ResponseError::UnknownTopicId.code()
                        },
                    ))),
                    Some((topic_id, partition)) => {
                        prepare(&partition, follower, broker_epoch, &p, leader_epoch, now).map(
                            |change| {
                                if let Some(change) = change {
                                    isr_changes.push(IsrProposal {
                                        topic_id,
                                        partition: p.partition,
                                        change,
                                    });
                                }
                                partition
                            },
                        )
                    }
                };
                Want {
                    index: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    leader_epoch,
                    target,
                    data: PartitionData::default(),
                    records: Bytes::new(),
                    version: None,
                }
            })
            .collect();
        plan.push(TopicWant {
            topic: answer_topic,
            parts,
        });
    }

    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    loop {
        let (bytes, decided) = read(&mut plan, max_bytes);
        if bytes >= min_bytes.max(1)
            || decided
            || min_bytes == 0
            || tokio::time::Instant::now() >= deadline
        {
            break;
        }
        let watched: Vec<(&Partition, u64)> = plan
            .iter()
            .flat_map(|t| &t.parts)
            .filter_map(|w| Some((w.target.as_deref().ok()?, w.version?)))
            .collect();
        if watched.is_empty() || watched.iter().any(|(p, _)| p.is_shutting_down()) {
            break;
        }
        tokio::select! {
            _ = partition::any_changed(&watched) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }

    let mut response = FetchResponse::default();
    for t in plan {
        let mut topic = t.topic;
        for w in t.parts {
            let mut data = match w.target {
                Err(decided) => *decided,
                Ok(_) => w.data,
            };
            data.records = Some(w.records);
            topic.partitions.push(data);
        }
        response.responses.push(topic);
    }
    ReplicaFetchOutcome {
        response,
        isr_changes,
    }
}

/// Checks one partition before it is read: the leader epoch, then the divergence of the
/// follower's log, then reports the fetch offset to the leader state. An `Err` is the
/// partition's whole answer.
fn prepare(
    partition: &Partition,
    follower: i32,
    broker_epoch: i64,
    p: &weir_protocol::kafka_protocol::messages::fetch_request::FetchPartition,
    leader_epoch: Option<i32>,
    now: u64,
) -> Result<Option<IsrChange>, Box<PartitionData>> {
    let fail = |e: &PartitionError| {
        let mut data = error_answer(p.partition, partition_code(e).code());
        set_watermarks(&mut data, partition);
        tracing::debug!(partition = p.partition, follower, error = %e, "replica fetch error");
        Box::new(data)
    };
    partition
        .check_leader_epoch(leader_epoch)
        .map_err(|e| fail(&e))?;
    if p.last_fetched_epoch >= 0 {
        // Kafka's rule: the follower diverged when its last epoch is unknown here or ends
        // before the offset it asks for.
        let (epoch, end) = partition
            .leader_end_for_epoch(p.last_fetched_epoch)
            .unwrap_or((-1, -1));
        if epoch < p.last_fetched_epoch || end < p.fetch_offset {
            let mut data = error_answer(p.partition, 0);
            set_watermarks(&mut data, partition);
            data.diverging_epoch = EpochEndOffset::default();
            data.diverging_epoch.epoch = epoch;
            data.diverging_epoch.end_offset = end;
            data.records = Some(Bytes::new());
            return Err(Box::new(data));
        }
    }
    if p.fetch_offset < partition.log_start_offset() {
        return Err(fail(&PartitionError::Storage(
            weir_storage::StorageError::OffsetOutOfRange {
                requested: p.fetch_offset,
                log_start: partition.log_start_offset(),
                log_end: partition.log_end_offset(),
            },
        )));
    }
    partition
        .on_follower_fetch(follower, broker_epoch, p.fetch_offset, now)
        .map_err(|e| fail(&e))
}

/// Reads every partition still to be read. Returns the record bytes read and whether any
/// partition's answer is decided without records (an error or a divergence), which ends a
/// long poll at once.
fn read(plan: &mut [TopicWant], max_bytes: usize) -> (usize, bool) {
    let mut total = 0usize;
    let mut decided = false;
    for w in plan.iter_mut().flat_map(|t| t.parts.iter_mut()) {
        let partition = match &w.target {
            Err(_) => {
                decided = true;
                continue;
            }
            Ok(p) => Arc::clone(p),
        };
        w.version = Some(partition.version());
        w.records = Bytes::new();
        let spec = ReadSpec {
            offset: w.offset,
            max_bytes: w.max_bytes.min(max_bytes.saturating_sub(total)),
            min_one_batch: total == 0,
            isolation: Isolation::ReadUncommitted,
            leader_epoch: w.leader_epoch,
        };
        match partition.read_for_follower(&spec) {
            Ok(out) => {
                let mut data = error_answer(w.index, 0);
                data.high_watermark = out.watermarks.high_watermark;
                data.last_stable_offset = out.watermarks.last_stable_offset;
                data.log_start_offset = out.watermarks.log_start_offset;
                total += out.records.len();
                w.records = out.records;
                w.data = data;
            }
            Err(e) => {
                let mut data = error_answer(w.index, partition_code(&e).code());
                set_watermarks(&mut data, &partition);
                w.target = Err(Box::new(data));
                decided = true;
            }
        }
    }
    (total, decided)
}

/// A partition's answer with `error_code` (0: none) and no watermarks yet.
fn error_answer(index: i32, error_code: i16) -> PartitionData {
    let mut p = PartitionData::default();
    p.partition_index = index;
    p.error_code = error_code;
    p.high_watermark = -1;
    p.last_stable_offset = -1;
    p.log_start_offset = -1;
    p
}

fn set_watermarks(data: &mut PartitionData, partition: &Partition) {
    let marks = partition.watermarks();
    data.high_watermark = marks.high_watermark;
    data.last_stable_offset = marks.last_stable_offset;
    data.log_start_offset = marks.log_start_offset;
}

#[cfg(test)]
#[path = "replica_fetch_tests.rs"]
mod tests;
