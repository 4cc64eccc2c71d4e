//! Transaction verification (KIP-890 part 1, design §7.4): before a partition leader accepts
//! the first transactional batch of a producer it has no open transaction for, and before a
//! group coordinator accepts a TxnOffsetCommit, the producer's transaction coordinator is
//! asked whether the transaction is Ongoing under that producer id and epoch and holds the
//! partition (a group stands for its `__consumer_offsets` partition, as its markers do).
//! A request that arrives after its transaction was decided is refused instead of reopening
//! the transaction behind its markers, which would leave the partition's last stable offset,
//! or the group's offsets, unsettled forever.
//!
//! Data flow: [`verify`] routes by the metadata image. The coordinator served here (always,
//! on a single node) answers from its state machine (`TxnCoordinator::verify`); one on
//! another broker gets Kafka's AddPartitionsToTxn v4 with `verify_only` over the internal
//! listener ([`VerifyLink`], its own connection per peer), which that broker's data-plane
//! hook serves with [`serve_verify`]. Verification changes nothing at the coordinator; the
//! caller's verification guard (`Partition::begin_verification`,
//! `Groups::begin_verification`) makes sure a marker that passes between the answer and the
//! append turns the verified request away.

use bytes::{Bytes, BytesMut};
use weir_coordinator::txn::TxnMember;
use weir_coordinator::{ErrorCode, TopicPartition};
use weir_metadata::BrokerId;
use weir_protocol::kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use weir_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use weir_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName, TransactionalId,
};
use weir_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::group_router::{partition_for, OFFSETS_TOPIC};
use crate::state::State;
use crate::txn_router::TXN_STATE_TOPIC;

/// The AddPartitionsToTxn version brokers verify with (v4: batched, `verify_only`).
pub const VERIFY_VERSION: i16 = 4;

/// One AddPartitionsToTxn request body to a broker's internal listener; resolves to the
/// answer's body (the binary installs it: the quorum node's connection to that broker).
pub type VerifyLink = crate::cluster::RawFetch;

/// Why a verification request could not be served (the connection closes): a body that does
/// not decode, or an answer that does not encode.
#[derive(Debug, thiserror::Error)]
#[error("AddPartitionsToTxn v{version}: {message}")]
pub struct VerifyCodecError {
    pub version: i16,
    pub message: String,
}

/// Whether a verification's refusal may pass once the coordinator is reachable (the caller
/// answers a retriable code) rather than being the transaction's answer.
pub fn is_retriable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::CONCURRENT_TRANSACTIONS
    )
}

/// Where the transaction coordinator of an id runs.
enum Coordinator {
    Here,
    Broker(BrokerId),
    Unknown,
}

fn coordinator_of(state: &State, transactional_id: &str) -> Coordinator {
    if !state.cluster {
        return Coordinator::Here;
    }
    let Some(index) = state.txns.partition_of(transactional_id) else {
        return Coordinator::Unknown;
    };
    let leader = state
        .image
        .image()
        .topic_by_name(TXN_STATE_TOPIC)
        .and_then(|t| t.partitions.get(&index).map(|p| p.leader));
    match leader {
        Some(l) if l == state.config.node_id => Coordinator::Here,
        Some(l) if l >= 0 => Coordinator::Broker(l),
        _ => Coordinator::Unknown,
    }
}

/// Asks the coordinator of `transactional_id` whether the producer's transaction is Ongoing
/// under `producer_id`/`producer_epoch` and holds `member`. The error is the coordinator's
/// code ([`is_retriable`] ones when it could not be asked).
pub async fn verify(
    state: &State,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    member: &TxnMember,
) -> Result<(), ErrorCode> {
    match coordinator_of(state, transactional_id) {
        Coordinator::Here => state
            .txns
            .shard(transactional_id)?
            .verify(transactional_id, producer_id, producer_epoch, |m| {
                m == member
            })
            .map_err(|e| e.code()),
        Coordinator::Broker(broker) => {
            let Some(tp) = wire_member(state, member) else {
                return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
            };
            let result = verify_remote(
                state,
                broker,
                transactional_id,
                producer_id,
                producer_epoch,
                &tp,
            )
            .await;
            if let Err(code) = result {
                tracing::debug!(transactional_id, producer_id, producer_epoch, broker, topic = %tp.topic, partition = tp.partition, code = code.0, "transaction not verified");
            }
            result
        }
        Coordinator::Unknown => Err(ErrorCode::COORDINATOR_NOT_AVAILABLE),
    }
}

/// The partition that names `member` on the wire: a group is its `__consumer_offsets`
/// partition (None while the image has no such topic).
fn wire_member(state: &State, member: &TxnMember) -> Option<TopicPartition> {
    match member {
        TxnMember::Partition(tp) => Some(tp.clone()),
        TxnMember::Group(group) => {
            let count = offsets_partitions(state)?;
            Some(TopicPartition::new(
                OFFSETS_TOPIC,
                partition_for(group, count),
            ))
        }
    }
}

fn offsets_partitions(state: &State) -> Option<usize> {
    let count = state
        .image
        .image()
        .topic_by_name(OFFSETS_TOPIC)?
        .partitions
        .len();
    (count > 0).then_some(count)
}

async fn verify_remote(
    state: &State,
    broker: BrokerId,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    tp: &TopicPartition,
) -> Result<(), ErrorCode> {
    let unreachable = ErrorCode::COORDINATOR_NOT_AVAILABLE;
    let Some(link) = state.verify_link.get().cloned() else {
        tracing::error!("no internal link for transaction verification");
        return Err(unreachable);
    };
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = TopicName(StrBytes::from_string(tp.topic.clone()));
    topic.partitions = vec![tp.partition];
    let mut txn = AddPartitionsToTxnTransaction::default();
    txn.transactional_id = TransactionalId(StrBytes::from_string(transactional_id.to_owned()));
    txn.producer_id = ProducerId(producer_id);
    txn.producer_epoch = producer_epoch;
    txn.verify_only = true;
    txn.topics = vec![topic];
    let mut request = AddPartitionsToTxnRequest::default();
    request.transactions = vec![txn];
    let mut body = BytesMut::new();
    if let Err(e) = request.encode(&mut body, VERIFY_VERSION) {
        tracing::error!(error = %e, "encoding AddPartitionsToTxn failed");
        return Err(unreachable);
    }
    let mut answer = link(broker, body.freeze()).await.map_err(|e| {
        tracing::debug!(broker, error = %e, "AddPartitionsToTxn not answered");
        unreachable
    })?;
    let answer = AddPartitionsToTxnResponse::decode(&mut answer, VERIFY_VERSION).map_err(|e| {
        tracing::warn!(broker, error = %e, "undecodable AddPartitionsToTxn answer");
        unreachable
    })?;
    if answer.error_code != 0 {
        return Err(ErrorCode(answer.error_code));
    }
    let code = answer
        .results_by_transaction
        .iter()
        .filter(|r| *r.transactional_id.0 == *transactional_id)
        .flat_map(|r| &r.topic_results)
        .filter(|t| *t.name.0 == *tp.topic.as_str())
        .flat_map(|t| &t.results_by_partition)
        .find(|p| p.partition_index == tp.partition)
        .map_or(unreachable, |p| ErrorCode(p.partition_error_code));
    match code {
        ErrorCode::NONE => Ok(()),
        code => Err(code),
    }
}

/// Serves an AddPartitionsToTxn from another broker's partition leader or group coordinator:
/// every transaction is verified against the shard here (nothing is added: a request without
/// `verify_only` is answered INVALID_REQUEST, since clients add partitions on the client
/// listener); an id not served here answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.
pub fn serve_verify(
    state: &State,
    version: i16,
    mut body: Bytes,
) -> Result<Bytes, VerifyCodecError> {
    let codec = |e: &dyn std::fmt::Display| VerifyCodecError {
        version,
        message: e.to_string(),
    };
    let request = AddPartitionsToTxnRequest::decode(&mut body, version).map_err(|e| codec(&e))?;
    let offsets = offsets_partitions(state);
    let mut response = AddPartitionsToTxnResponse::default();
    for txn in request.transactions {
        let id = txn.transactional_id.0.to_string();
        let shard = state.txns.shard(&id);
        let mut result = AddPartitionsToTxnResult::default();
        for topic in txn.topics {
            let mut out = AddPartitionsToTxnTopicResult::default();
            for index in topic.partitions {
                let verdict = match &shard {
                    _ if !txn.verify_only => Err(ErrorCode::INVALID_REQUEST),
                    Err(code) => Err(*code),
                    Ok(txns) => txns
                        .verify(&id, txn.producer_id.0, txn.producer_epoch, |m| {
                            names(m, &topic.name.0, index, offsets)
                        })
                        .map_err(|e| e.code()),
                };
                let mut pr = AddPartitionsToTxnPartitionResult::default();
                pr.partition_index = index;
                pr.partition_error_code = verdict.err().unwrap_or(ErrorCode::NONE).0;
                out.results_by_partition.push(pr);
            }
            out.name = topic.name;
            result.topic_results.push(out);
        }
        result.transactional_id = txn.transactional_id;
        response.results_by_transaction.push(result);
    }
    let mut out = BytesMut::new();
    response.encode(&mut out, version).map_err(|e| codec(&e))?;
    Ok(out.freeze())
}

/// Whether transaction member `m` is `topic`-`index` on the wire: a group is its
/// `__consumer_offsets` partition (`offsets` partitions in this broker's image).
fn names(m: &TxnMember, topic: &str, index: i32, offsets: Option<usize>) -> bool {
    match m {
        TxnMember::Partition(tp) => tp.topic == topic && tp.partition == index,
        TxnMember::Group(group) => {
            topic == OFFSETS_TOPIC && offsets.is_some_and(|n| partition_for(group, n) == index)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_named_by_its_offsets_partition() {
        let g = TxnMember::Group("orders-app".to_owned());
        let p = partition_for("orders-app", 50);
        assert!(names(&g, OFFSETS_TOPIC, p, Some(50)));
        assert!(!names(&g, OFFSETS_TOPIC, (p + 1) % 50, Some(50)));
        assert!(!names(&g, "orders", p, Some(50)));
        assert!(!names(&g, OFFSETS_TOPIC, p, None), "no offsets topic known");
        let tp = TxnMember::Partition(TopicPartition::new("orders", 3));
        assert!(names(&tp, "orders", 3, None));
        assert!(!names(&tp, "orders", 4, None));
        assert!(!names(&tp, OFFSETS_TOPIC, 3, Some(50)));
    }
}
