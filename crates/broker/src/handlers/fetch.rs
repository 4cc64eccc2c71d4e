//! Fetch: read whole batches from each requested partition; long-poll until `min_bytes` have
//! arrived or `max_wait_ms` has passed. Fetch sessions are not kept: every response carries
//! session id 0, which tells clients to keep sending full requests.
//!
//! A parked fetch waits on its own partitions only ([`partition::any_changed`]): an append
//! elsewhere costs it nothing, and when it wakes with nothing read so far it reads again only
//! the partitions whose version moved.
//!
//! Sizes follow KIP-74: the first partition that returns data returns its first batch whole
//! even when it is larger than `partition_max_bytes` or `max_bytes`, so that a batch larger
//! than every limit still makes progress; after it, every partition is held to
//! `min(partition_max_bytes, what is left of max_bytes)` strictly, so the answer never exceeds
//! `max_bytes` unless its first batch alone does (a client sizes its receive buffer from it).
//!
//! The batches are never decoded and copied once: `Partition::read` reads them into a buffer,
//! and the response is encoded around that buffer ([`Splicer`]) and written with one vectored
//! write, so the bytes go from the read buffer to the socket.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;
use weir_protocol::kafka_protocol::error::ParseResponseErrorCode;
use weir_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use weir_protocol::{ApiKey, ResponseError, Splicer};

use super::{Ctx, Reply};
use crate::errors::partition_code;
use crate::metrics::{count_records, BrokerMetrics, TopicMetrics};
use crate::partition::{self, Isolation, Partition, ReadSpec};
use crate::state::State;

/// One requested partition, resolved once per request.
struct Want {
    partition_index: i32,
    offset: i64,
    max_bytes: usize,
    leader_epoch: Option<i32>,
    target: Result<Arc<Partition>, ResponseError>,
}

struct TopicWant {
    name: TopicName,
    id: Uuid,
    parts: Vec<Want>,
    /// The topic's fetch counters (`None` for an unknown topic).
    metrics: Option<Arc<TopicMetrics>>,
}

/// The last read of one wanted partition.
#[derive(Default)]
struct Slot {
    /// The answer without its records.
    data: PartitionData,
    records: Bytes,
    /// The partition's version taken before that read.
    version: Option<u64>,
}

/// The request-wide limits.
#[derive(Clone, Copy)]
struct Limits {
    max_bytes: usize,
    isolation: Isolation,
}

pub fn handle(state: &Arc<State>, req: FetchRequest, ctx: Ctx, conn: &super::Conn) -> Reply {
    use crate::security::{Operation, Resource};
    let by_id = ctx.version >= 13;
    // A follower's fetch needs CLUSTER_ACTION; a consumer's, READ on each topic.
    let follower = req.replica_id.0 >= 0 || req.replica_state.replica_id.0 >= 0;
    let follower_denied = follower && !conn.may(state, Operation::ClusterAction, Resource::Cluster);
    let lease = state.lease_now();
    let plan: Vec<TopicWant> = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = if by_id {
                state.topic_by_id(t.topic_id)
            } else {
                state.topic(&t.topic.0)
            };
            let name = topic
                .as_ref()
                .map_or(t.topic.0.as_str(), |t| t.name.as_str());
            let denied = follower_denied
                || (!follower && !conn.may(state, Operation::Read, Resource::Topic(name)));
            let topic = if denied { None } else { topic };
            let missing = if denied {
                ResponseError::TopicAuthorizationFailed
            } else if by_id {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            let parts = t
                .partitions
                .into_iter()
                .map(|p| Want {
                    partition_index: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    leader_epoch: (p.current_leader_epoch >= 0).then_some(p.current_leader_epoch),
                    target: match &topic {
                        Some(topic) => lease.lookup(topic, p.partition),
                        None => Err(missing),
                    },
                })
                .collect();
            TopicWant {
                name: t.topic,
                id: t.topic_id,
                parts,
                metrics: topic.map(|t| t.metrics.clone()),
            }
        })
        .collect();
    let limits = Limits {
        max_bytes: usize::try_from(req.max_bytes).unwrap_or(0),
        isolation: if req.isolation_level == 1 {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        },
    };
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));

    // KIP-951: only in cluster mode is there another leader to name.
    let hints = (state.is_cluster() && ctx.version >= 16).then(|| state.clone());
    let metrics = state.metrics.clone();
    Reply::LaterParts(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut slots: Vec<Vec<Slot>> = plan
            .iter()
            .map(|t| t.parts.iter().map(|_| Slot::default()).collect())
            .collect();
        let mut only_changed = false;
        loop {
            let (bytes, errors) = read(&plan, &mut slots, limits, only_changed);
            let expired = tokio::time::Instant::now() >= deadline;
            if bytes >= min_bytes.max(1) || errors || expired || min_bytes == 0 {
                break;
            }
            let watched: Vec<(&Partition, u64)> = plan
                .iter()
                .zip(&slots)
                .flat_map(|(t, s)| t.parts.iter().zip(s))
                .filter_map(|(w, slot)| Some((w.target.as_deref().ok()?, slot.version?)))
                .collect();
            if watched.iter().any(|(p, _)| p.is_shutting_down()) {
                break;
            }
            tokio::select! {
                _ = partition::any_changed(&watched) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
            // Nothing was read, so no budget was spent: a partition whose version did not
            // move would read the same nothing again. With some bytes already read (a
            // min_bytes above them), every partition is read again in order, since the
            // budget of the later ones depends on the earlier ones.
            only_changed = bytes == 0;
        }
        count(&metrics, &plan, &slots);
        encode(ctx, by_id, &plan, slots, hints.as_deref())
    }))
}

/// Reads the wanted partitions into their slots (with `only_changed`, only those whose
/// version moved since their last read). Returns the record bytes in the answer and whether
/// any partition answered with an error (which ends a long poll at once).
fn read(
    plan: &[TopicWant],
    slots: &mut [Vec<Slot>],
    limits: Limits,
    only_changed: bool,
) -> (usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    for (t, topic_slots) in plan.iter().zip(slots.iter_mut()) {
        for (w, slot) in t.parts.iter().zip(topic_slots.iter_mut()) {
            let partition = match &w.target {
                Err(code) => {
                    slot.data = answer(w.partition_index);
                    slot.data.error_code = code.code();
                    errors = true;
                    continue;
                }
                Ok(p) => p,
            };
            let version = partition.version();
            if only_changed && slot.version == Some(version) {
                total += slot.records.len();
                continue;
            }
            slot.version = Some(version);
            slot.data = answer(w.partition_index);
            slot.records = Bytes::new();
            let remaining = limits.max_bytes.saturating_sub(total);
            let spec = ReadSpec {
                offset: w.offset,
                max_bytes: w.max_bytes.min(remaining),
                min_one_batch: total == 0,
                isolation: limits.isolation,
                leader_epoch: w.leader_epoch,
            };
            match partition.read(&spec) {
                Ok(out) => {
                    let p = &mut slot.data;
                    p.high_watermark = out.watermarks.high_watermark;
                    p.last_stable_offset = out.watermarks.last_stable_offset;
                    p.log_start_offset = out.watermarks.log_start_offset;
                    p.aborted_transactions = out.aborted.map(|aborted| {
                        aborted
                            .into_iter()
                            .map(|a| {
                                let mut t = AbortedTransaction::default();
                                t.producer_id = ProducerId(a.producer_id);
                                t.first_offset = a.first_offset;
                                t
                            })
                            .collect()
                    });
                    total += out.records.len();
                    slot.records = out.records;
                }
                Err(e) => {
                    // Unknown watermarks (-1), as Kafka answers an error: librdkafka compares
                    // the high watermark (the LSO, read_committed) with its fetch offset even
                    // in an errored partition, so a real 0 read FENCED_LEADER_EPOCH from a
                    // replica that lost the leadership as "end of partition" at offset 0.
                    slot.data.error_code = partition_code(&e).code();
                    errors = true;
                    tracing::debug!(partition = w.partition_index, error = %e, "fetch error");
                }
            }
        }
    }
    (total, errors)
}

/// Counts what the answer returns per topic, and its partitions' errors.
fn count(metrics: &BrokerMetrics, plan: &[TopicWant], slots: &[Vec<Slot>]) {
    for (t, topic_slots) in plan.iter().zip(slots) {
        let (mut bytes, mut records) = (0u64, 0u64);
        for slot in topic_slots {
            bytes += u64::try_from(slot.records.len()).unwrap_or(0);
            records += count_records(&slot.records);
            if let Some(e) = slot.data.error_code.err() {
                metrics.error(ApiKey::Fetch, e);
            }
        }
        if let Some(m) = &t.metrics {
            if bytes > 0 {
                m.fetched(bytes, records);
            }
        }
    }
}

/// A partition's answer before anything is known.
fn answer(partition_index: i32) -> PartitionData {
    let mut p = PartitionData::default();
    p.partition_index = partition_index;
    p.high_watermark = -1;
    p.last_stable_offset = -1;
    p.log_start_offset = -1;
    p
}

/// The response, its large record sets replaced by the splicer's stand-ins, encoded.
fn encode(
    ctx: Ctx,
    by_id: bool,
    plan: &[TopicWant],
    slots: Vec<Vec<Slot>>,
    hints: Option<&State>,
) -> Option<Vec<Bytes>> {
    let mut splicer = Splicer::new();
    let mut response = FetchResponse::default();
    for (t, topic_slots) in plan.iter().zip(slots) {
        let mut topic = FetchableTopicResponse::default();
        if by_id {
            topic.topic_id = t.id;
        } else {
            topic.topic = t.name.clone();
        }
        for slot in topic_slots {
            let mut p = slot.data;
            p.records = Some(splicer.stand_in(slot.records));
            topic.partitions.push(p);
        }
        response.responses.push(topic);
    }
    if let Some(state) = hints {
        leader_hints(state, plan, &mut response);
    }
    match splicer.encode(ctx.api_key, ctx.version, ctx.correlation_id, &response) {
        Ok(parts) => Some(parts),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed (a handler bug)");
            None
        }
    }
}

/// KIP-951 (Fetch v16+): each NOT_LEADER_OR_FOLLOWER partition names the leader the image
/// knows, and the answer carries that leader's endpoint.
fn leader_hints(state: &State, plan: &[TopicWant], r: &mut FetchResponse) {
    use weir_protocol::kafka_protocol::messages::fetch_response::NodeEndpoint;
    use weir_protocol::kafka_protocol::messages::BrokerId;
    let code = ResponseError::NotLeaderOrFollower.code();
    if !r
        .responses
        .iter()
        .any(|t| t.partitions.iter().any(|p| p.error_code == code))
    {
        return;
    }
    let image = state.image.image();
    let mut hints = crate::cluster::metadata::LeaderHints::new(&image);
    for (t, want) in r.responses.iter_mut().zip(plan) {
        let topic = if want.id.is_nil() {
            image.topic_by_name(&want.name.0)
        } else {
            image.topic(want.id)
        }
        .map(|t| &**t);
        for p in t.partitions.iter_mut() {
            if p.error_code != code {
                continue;
            }
            if let Some((leader, epoch)) = hints.hint(topic, p.partition_index) {
                p.current_leader.leader_id = BrokerId(leader);
                p.current_leader.leader_epoch = epoch;
            }
        }
    }
    r.node_endpoints = hints
        .endpoints()
        .into_iter()
        .map(|e| {
            let mut n = NodeEndpoint::default();
            n.node_id = BrokerId(e.id);
            n.host = super::str(&e.host);
            n.port = e.port;
            n.rack = e.rack.as_deref().map(super::str);
            n
        })
        .collect();
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
