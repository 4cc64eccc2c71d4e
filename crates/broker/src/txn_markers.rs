//! Transaction markers (design §7.3): the coordinator's half, which writes a decided
//! transaction's commit or abort marker to every partition it touched and settles the offsets
//! it sent to groups, and the partition leader's half, which serves WriteTxnMarkers from a
//! coordinator on another broker.
//!
//! Data flow of one decision: the partitions and groups are routed by the metadata image to
//! their current leader; this broker's own are written directly (`Partition::append_marker`,
//! then the high-watermark wait; a group's pending offsets through its shard here), the
//! others go as one WriteTxnMarkers per destination broker over the internal listener
//! ([`MarkerLink`]), answered by that leader once its markers are committed. Whatever fails
//! retriably (NOT_LEADER_OR_FOLLOWER, no leader, a broker down, the ISR too small) is routed
//! again with the next image after a short pause, until every marker is acknowledged; only
//! then does the coordinator log CompleteCommit / CompleteAbort. A group's marker is the
//! `__consumer_offsets` partition of the group: its leader settles the producer's pending
//! offsets in every group of that shard. Single node: everything is local, as before.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir_coordinator::txn::TxnOutput;
use weir_coordinator::TopicPartition;
use weir_metadata::BrokerId;
use weir_protocol::kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use weir_protocol::kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use weir_protocol::kafka_protocol::messages::{
    ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use weir_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use weir_protocol::ResponseError;
use weir_storage::{Marker, StorageError};

use crate::coordinator_log::COMMIT_TIMEOUT;
use crate::group_router::{partition_for, OFFSETS_TOPIC};
use crate::partition::{Partition, PartitionError};
use crate::state::State;

/// The WriteTxnMarkers version brokers speak to each other (v1: flexible, as Kafka 3.x).
pub const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// The versions a leader serves.
pub const WRITE_TXN_MARKERS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

/// How long a round of markers waits before routing what failed again.
const RETRY_BACKOFF: Duration = Duration::from_millis(250);

/// One WriteTxnMarkers request body to a broker's internal listener; resolves to the
/// answer's body (the binary installs it: the quorum node's connection to that broker).
pub type MarkerLink = crate::cluster::RawFetch;

/// Why a WriteTxnMarkers request could not be served (the connection closes): a body that
/// does not decode, or an answer that does not encode.
#[derive(Debug, thiserror::Error)]
#[error("WriteTxnMarkers v{version}: {message}")]
pub struct MarkersCodecError {
    pub version: i16,
    pub message: String,
}

/// One decision as markers carry it.
#[derive(Clone, Copy, Debug)]
struct Decision {
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    /// The coordinator's epoch: its `__transaction_state` partition's leader epoch (0 on a
    /// single node). A partition refuses a marker older than the last it took for the
    /// producer (TRANSACTION_COORDINATOR_FENCED).
    coordinator_epoch: i32,
}

impl Decision {
    fn marker(&self) -> Marker {
        if self.commit {
            Marker::Commit
        } else {
            Marker::Abort
        }
    }
}

/// What a marker goes to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Partition(TopicPartition),
    /// A group with offsets sent to the transaction.
    Group(String),
}

/// Where a target's marker is written this round.
enum Route {
    Local,
    Remote(BrokerId, TopicPartition),
    /// No leader right now: retried after the next pause.
    Wait,
    /// Its topic is gone: nothing left to mark.
    Gone,
}

/// How one marker ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Retry,
}

fn route(state: &State, target: &Target) -> Route {
    if !state.cluster {
        return Route::Local;
    }
    let image = state.image.image();
    let (topic, index) = match target {
        Target::Partition(tp) => (tp.topic.as_str(), tp.partition),
        Target::Group(group) => {
            let Some(offsets) = image.topic_by_name(OFFSETS_TOPIC) else {
                return Route::Wait;
            };
            (
                OFFSETS_TOPIC,
                partition_for(group, offsets.partitions.len()),
            )
        }
    };
    let Some(reg) = image
        .topic_by_name(topic)
        .and_then(|t| t.partitions.get(&index))
    else {
        return Route::Gone;
    };
    match reg.leader {
        l if l == state.config.node_id => Route::Local,
        l if l < 0 => Route::Wait,
        l => Route::Remote(l, TopicPartition::new(topic.to_owned(), index)),
    }
}

/// Writes one decision's markers everywhere and settles its groups, retrying until every
/// one is acknowledged; false if it gave up (a group coordinator that only a restart brings
/// back: the transaction is left to the recovery of the next start; or `live` turned false:
/// the coordinator shard was unloaded and its next coordinator's load re-sends them).
pub(crate) async fn write_all(
    state: &Arc<State>,
    out: &TxnOutput,
    coordinator_epoch: i32,
    live: &(dyn Fn() -> bool + Sync),
) -> bool {
    let TxnOutput::WriteMarkers {
        transactional_id,
        producer_id,
        producer_epoch,
        commit,
        partitions,
        groups,
    } = out
    else {
        return true;
    };
    let decision = Decision {
        producer_id: *producer_id,
        producer_epoch: *producer_epoch,
        commit: *commit,
        coordinator_epoch,
    };
    let mut pending: Vec<Target> = partitions
        .iter()
        .cloned()
        .map(Target::Partition)
        .chain(groups.iter().cloned().map(Target::Group))
        .collect();
    if state.cluster {
        // A recovery at start-up runs before the broker caught up with the quorum: routed on
        // a partial image, a topic not replayed yet would look deleted.
        state.image.caught_up().await;
    }
    let mut round = 0u32;
    loop {
        if !live() {
            tracing::info!(
                transactional_id,
                "transaction coordinator unloaded; its successor re-sends the markers"
            );
            return false;
        }
        let mut jobs = tokio::task::JoinSet::new();
        let mut remote: BTreeMap<BrokerId, Vec<(Target, TopicPartition)>> = BTreeMap::new();
        let mut retry = Vec::new();
        for target in pending {
            match route(state, &target) {
                Route::Gone => {}
                Route::Wait => retry.push(target),
                Route::Local => {
                    let state = state.clone();
                    jobs.spawn(async move {
                        let outcome = write_local(&state, &target, decision).await;
                        vec![(target, outcome)]
                    });
                }
                Route::Remote(broker, tp) => remote.entry(broker).or_default().push((target, tp)),
            }
        }
        for (broker, targets) in remote {
            let state = state.clone();
            jobs.spawn(async move { send_remote(&state, broker, targets, decision).await });
        }
        while let Some(done) = jobs.join_next().await {
            match done {
                Ok(outcomes) => retry.extend(
                    outcomes
                        .into_iter()
                        .filter(|(_, o)| *o == Outcome::Retry)
                        .map(|(t, _)| t),
                ),
                Err(e) => {
                    tracing::error!(transactional_id, error = %e, "marker writer died; transaction left to recovery");
                    return false;
                }
            }
        }
        if retry.is_empty() {
            return true;
        }
        if !state.cluster && state.groups.is_poisoned() {
            // Only a restart brings the group coordinator back; its recovery re-sends this
            // transaction's markers and settles the group then.
            tracing::error!(
                transactional_id,
                "the group coordinator's log is poisoned; transaction left to recovery"
            );
            return false;
        }
        round += 1;
        if round % 20 == 1 {
            tracing::warn!(transactional_id, waiting = ?retry, "transaction markers not acknowledged yet; retrying");
        }
        pending = retry;
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// Writes the marker of a target this broker leads.
async fn write_local(state: &Arc<State>, target: &Target, d: Decision) -> Outcome {
    match target {
        Target::Group(group) => match state
            .groups
            .settle_txn(group, d.producer_id, d.commit)
            .await
        {
            Ok(()) => Outcome::Done,
            Err(e) => {
                tracing::debug!(group, error = %e, "settling transactional offsets failed; retrying");
                Outcome::Retry
            }
        },
        Target::Partition(tp) => {
            let Some(partition) = state
                .topic(&tp.topic)
                .and_then(|t| t.partition(tp.partition))
            else {
                // Single node: deleted meanwhile. Cluster: the replica is not open yet.
                return if state.cluster {
                    Outcome::Retry
                } else {
                    Outcome::Done
                };
            };
            match append_committed(state, partition, d).await {
                Ok(()) => Outcome::Done,
                Err(code) if is_final(code) => Outcome::Done,
                Err(code) => {
                    tracing::debug!(topic = %tp.topic, partition = tp.partition, code, "writing a transaction marker failed; retrying");
                    Outcome::Retry
                }
            }
        }
    }
}

/// Error codes after which a marker is not sent again: the producer's newer epoch already
/// ended the transaction there, the partition is gone, or a newer coordinator owns it.
fn is_final(code: i16) -> bool {
    code == ResponseError::InvalidProducerEpoch.code()
        || code == ResponseError::ProducerFenced.code()
        || code == ResponseError::UnknownTopicOrPartition.code()
        || code == ResponseError::TransactionCoordinatorFenced.code()
}

/// Appends the marker on a partition led here and waits until it is committed (the leader's
/// fsync, and in cluster mode the high watermark past it); the Kafka error code otherwise.
async fn append_committed(
    state: &State,
    partition: Arc<Partition>,
    d: Decision,
) -> Result<(), i16> {
    let p = partition.clone();
    let appended = tokio::task::spawn_blocking(move || {
        let epoch = p.leader_epoch();
        p.append_marker(
            d.producer_id,
            d.producer_epoch,
            d.marker(),
            d.coordinator_epoch,
            crate::server::now_ms(),
        )
        .map(|info| (epoch, info.last_offset + 1))
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "marker append task failed");
        ResponseError::KafkaStorageError.code()
    })?;
    let (epoch, end) = match appended {
        Ok(appended) => appended,
        Err(PartitionError::Storage(StorageError::InvalidProducerEpoch { .. })) => {
            return Err(ResponseError::InvalidProducerEpoch.code())
        }
        Err(e) => return Err(crate::errors::partition_code(&e).code()),
    };
    if state.cluster {
        partition
            .wait_committed(epoch, end, COMMIT_TIMEOUT)
            .await
            .map_err(|e| crate::errors::partition_code(&e).code())?;
    }
    Ok(())
}

/// One WriteTxnMarkers to `broker` for `targets` (each with the partition its marker goes
/// to); every target's outcome.
async fn send_remote(
    state: &State,
    broker: BrokerId,
    targets: Vec<(Target, TopicPartition)>,
    d: Decision,
) -> Vec<(Target, Outcome)> {
    let retry_all = |targets: Vec<(Target, TopicPartition)>| {
        targets
            .into_iter()
            .map(|(t, _)| (t, Outcome::Retry))
            .collect::<Vec<_>>()
    };
    let Some(link) = state.marker_link.get().cloned() else {
        tracing::error!("no internal link for transaction markers");
        return retry_all(targets);
    };
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (_, tp) in &targets {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(d.producer_id);
    marker.producer_epoch = d.producer_epoch;
    marker.transaction_result = d.commit;
    marker.coordinator_epoch = d.coordinator_epoch;
    marker.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_owned()));
            t.partition_indexes = partitions;
            t
        })
        .collect();
    let mut request = WriteTxnMarkersRequest::default();
    request.markers = vec![marker];
    let mut body = BytesMut::new();
    if let Err(e) = request.encode(&mut body, WRITE_TXN_MARKERS_VERSION) {
        tracing::error!(error = %e, "encoding WriteTxnMarkers failed");
        return retry_all(targets);
    }
    let answer = match link(broker, body.freeze()).await {
        Ok(mut answer) => {
            match WriteTxnMarkersResponse::decode(&mut answer, WRITE_TXN_MARKERS_VERSION) {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(broker, error = %e, "undecodable WriteTxnMarkers answer");
                    return retry_all(targets);
                }
            }
        }
        Err(e) => {
            tracing::debug!(broker, error = %e, "WriteTxnMarkers not answered; retrying");
            return retry_all(targets);
        }
    };
    let code_of = |tp: &TopicPartition| -> Option<i16> {
        answer
            .markers
            .iter()
            .filter(|m| m.producer_id.0 == d.producer_id)
            .flat_map(|m| &m.topics)
            .filter(|t| *t.name.0 == *tp.topic.as_str())
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == tp.partition)
            .map(|p| p.error_code)
    };
    targets
        .into_iter()
        .map(|(target, tp)| {
            let outcome = match code_of(&tp) {
                Some(0) => Outcome::Done,
                // UNKNOWN_TOPIC_OR_PARTITION from a leader whose replica is not open yet is
                // retried; a deleted topic is dropped by the next routing.
                Some(code) if code == ResponseError::UnknownTopicOrPartition.code() => {
                    Outcome::Retry
                }
                Some(code) if is_final(code) => Outcome::Done,
                Some(code) => {
                    tracing::debug!(broker, topic = %tp.topic, partition = tp.partition, code, "marker refused; retrying");
                    Outcome::Retry
                }
                None => Outcome::Retry,
            };
            (target, outcome)
        })
        .collect()
}

/// Serves a WriteTxnMarkers from a transaction coordinator on another broker: every marker
/// of every partition led here is appended and committed (a `__consumer_offsets` partition's
/// settles the producer's pending offsets in its shard) before the answer; a partition not
/// led here answers NOT_LEADER_OR_FOLLOWER.
pub async fn serve_write_txn_markers(
    state: &Arc<State>,
    version: i16,
    mut body: Bytes,
) -> Result<Bytes, MarkersCodecError> {
    let codec = |e: &dyn std::fmt::Display| MarkersCodecError {
        version,
        message: e.to_string(),
    };
    let request = WriteTxnMarkersRequest::decode(&mut body, version).map_err(|e| codec(&e))?;
    let mut jobs = tokio::task::JoinSet::new();
    let mut answers: Vec<WritableTxnMarkerResult> = Vec::with_capacity(request.markers.len());
    for (m, marker) in request.markers.iter().enumerate() {
        let d = Decision {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        for (t, topic) in marker.topics.iter().enumerate() {
            let mut out = WritableTxnMarkerTopicResult::default();
            out.name = topic.name.clone();
            for (p, &index) in topic.partition_indexes.iter().enumerate() {
                let mut pr = WritableTxnMarkerPartitionResult::default();
                pr.partition_index = index;
                out.partitions.push(pr);
                let state = state.clone();
                let name = topic.name.0.to_string();
                jobs.spawn(async move { ((m, t, p), serve_one(&state, &name, index, d).await) });
            }
            result.topics.push(out);
        }
        answers.push(result);
    }
    while let Some(done) = jobs.join_next().await {
        let ((m, t, p), code) = done.map_err(|e| codec(&e))?;
        if let Some(slot) = answers
            .get_mut(m)
            .and_then(|r| r.topics.get_mut(t))
            .and_then(|t| t.partitions.get_mut(p))
        {
            slot.error_code = code;
        }
    }
    let mut response = WriteTxnMarkersResponse::default();
    response.markers = answers;
    let mut out = BytesMut::new();
    response.encode(&mut out, version).map_err(|e| codec(&e))?;
    Ok(out.freeze())
}

/// One partition's marker on its leader; the Kafka error code (0 once committed).
async fn serve_one(state: &Arc<State>, topic: &str, index: i32, d: Decision) -> i16 {
    let not_leader = ResponseError::NotLeaderOrFollower.code();
    if topic == OFFSETS_TOPIC {
        return match state
            .groups
            .settle_shard(index, d.producer_id, d.commit)
            .await
        {
            Ok(()) => 0,
            Err(code) => code.0,
        };
    }
    let Some(t) = state.topic(topic) else {
        return ResponseError::UnknownTopicOrPartition.code();
    };
    let Some(partition) = t.partition(index) else {
        return not_leader;
    };
    match append_committed(state, partition, d).await {
        Ok(()) => 0,
        Err(code) => code,
    }
}
