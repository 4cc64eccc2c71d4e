//! Transactions: InitProducerId with a transactional id, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, and the operator APIs DescribeTransactions, ListTransactions and
//! DescribeProducers.
//! The coordinator decides (through `crate::txn_api`, shared with in-process producers);
//! `crate::txns` persists and writes the markers.

use std::sync::Arc;

use weir_coordinator::txn::{TxnMember, TxnState};
use weir_coordinator::{CommittedOffset, ErrorCode, TopicPartition, TxnCommitRequest};
use weir_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use weir_protocol::kafka_protocol::messages::{
    describe_producers_response, describe_transactions_response, list_transactions_response,
    txn_offset_commit_response, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, DescribeProducersRequest,
    DescribeProducersResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;

use crate::security::{Operation, Resource};
use crate::state::State;
use crate::txn_api;
use crate::txn_verify;

/// KIP-588: clients before these versions know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
fn fenced_for(code: i16, version: i16, first_with_fenced: i16) -> i16 {
    const PRODUCER_FENCED: i16 = 90;
    if code == PRODUCER_FENCED && version < first_with_fenced {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

fn storage_failure() -> i16 {
    ResponseError::CoordinatorNotAvailable.code()
}

pub async fn init_transactional(
    state: &Arc<State>,
    req: &InitProducerIdRequest,
    transactional_id: String,
    version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    match txn_api::reinit_transactional(
        state,
        &transactional_id,
        req.transaction_timeout_ms,
        req.producer_id.0,
        req.producer_epoch,
    )
    .await
    {
        Ok((pid, epoch)) => {
            r.producer_id = ProducerId(pid);
            r.producer_epoch = epoch;
        }
        Err(e) => r.error_code = fenced_for(e.code(), version, 4),
    }
    r
}

pub async fn add_partitions(
    state: &Arc<State>,
    req: AddPartitionsToTxnRequest,
    version: i16,
    conn: &super::Conn,
) -> AddPartitionsToTxnResponse {
    let mut r = AddPartitionsToTxnResponse::default();
    let id = req.v3_and_below_transactional_id.0.to_string();
    let (pid, epoch) = (
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
    );
    let topics = req.v3_and_below_topics;
    // Partitions that do not exist are answered here and never reach the coordinator.
    let known = |t: &str, p: i32| state.partition_exists(t, p);
    let wanted: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(t.name.0.to_string(), *p))
        })
        .collect();
    // Kafka: WRITE on the transactional id, then on every topic; with a topic refused, no
    // partition is added (the others answer OPERATION_NOT_ATTEMPTED).
    let txn_ok = conn.may(state, Operation::Write, Resource::TransactionalId(&id));
    let denied: std::collections::HashSet<String> = topics
        .iter()
        .filter(|t| txn_ok && !conn.may(state, Operation::Write, Resource::Topic(&t.name)))
        .map(|t| t.name.0.to_string())
        .collect();
    let all_known = wanted.iter().all(|tp| known(&tp.topic, tp.partition));
    let code = if !txn_ok {
        Some(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else if !all_known || !denied.is_empty() {
        // Kafka: unknown partitions fail, the others get OPERATION_NOT_ATTEMPTED.
        None
    } else {
        Some(
            match txn_api::add_partitions(state, &id, pid, epoch, wanted).await {
                Ok(()) => 0,
                Err(e) => fenced_for(e.code(), version, 2),
            },
        )
    };
    r.results_by_topic_v3_and_below = topics
        .into_iter()
        .map(|t| {
            let mut out = AddPartitionsToTxnTopicResult::default();
            out.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = AddPartitionsToTxnPartitionResult::default();
                    pr.partition_index = *p;
                    pr.partition_error_code = match code {
                        Some(c) => c,
                        None if denied.contains(t.name.0.as_str()) => {
                            ResponseError::TopicAuthorizationFailed.code()
                        }
                        None if known(&t.name.0, *p) => ResponseError::OperationNotAttempted.code(),
                        None => ResponseError::UnknownTopicOrPartition.code(),
                    };
                    pr
                })
                .collect();
            out.name = t.name;
            out
        })
        .collect();
    r
}

pub async fn end_txn(state: &Arc<State>, req: &EndTxnRequest, version: i16) -> EndTxnResponse {
    let mut r = EndTxnResponse::default();
    let id = req.transactional_id.0.to_string();
    r.error_code = match txn_api::end_txn(
        state,
        &id,
        req.producer_id.0,
        req.producer_epoch,
        req.committed,
    )
    .await
    {
        Ok(()) => 0,
        Err(e) => fenced_for(e.code(), version, 2),
    };
    r
}

pub async fn add_offsets(
    state: &Arc<State>,
    req: &AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let mut r = AddOffsetsToTxnResponse::default();
    let id = req.transactional_id.0.to_string();
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        r.error_code = ResponseError::InvalidGroupId.code();
        return r;
    }
    let txns = match state.txns.shard(&id) {
        Ok(txns) => txns,
        Err(code) => {
            r.error_code = code.0;
            return r;
        }
    };
    let result = txns
        .call(state, |c, now| {
            c.add_offsets(now, &id, req.producer_id.0, req.producer_epoch, &group)
        })
        .await;
    r.error_code = match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => fenced_for(e.code().0, version, 2),
        Err(crate::txns::TxnsError::NotCoordinator) => ResponseError::NotCoordinator.code(),
        Err(e) => {
            tracing::error!(error = %e, "transaction log write failed");
            storage_failure()
        }
    };
    r
}

/// TxnOffsetCommit: offsets committed inside a transaction, pending in the group until the
/// transaction's markers settle them.
pub async fn txn_offset_commit(
    state: &Arc<State>,
    req: TxnOffsetCommitRequest,
    conn: &super::Conn,
) -> TxnOffsetCommitResponse {
    let mut r = TxnOffsetCommitResponse::default();
    let id = req.transactional_id.0.to_string();
    let group = req.group_id.0.to_string();
    // Kafka: WRITE on the transactional id, READ on the group, for all partitions; then READ
    // on each topic, the others committed.
    let refusal = if !conn.may(state, Operation::Write, Resource::TransactionalId(&id)) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !conn.may(state, Operation::Read, Resource::Group(&group)) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let denied: std::collections::HashSet<&str> = req
        .topics
        .iter()
        .filter(|t| {
            refusal.is_some() || !conn.may(state, Operation::Read, Resource::Topic(&t.name))
        })
        .map(|t| t.name.0.as_str())
        .collect();
    let refused_code = |t: &str| {
        denied.contains(t).then(|| {
            refusal
                .unwrap_or(ResponseError::TopicAuthorizationFailed)
                .code()
        })
    };
    let offsets: Vec<(TopicPartition, CommittedOffset)> = req
        .topics
        .iter()
        .filter(|t| !denied.contains(t.name.0.as_str()))
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: (p.committed_leader_epoch >= 0)
                            .then_some(p.committed_leader_epoch),
                        metadata: super::groups::opt_string(&p.committed_metadata),
                        commit_timestamp_ms: 0,
                    },
                )
            })
        })
        .collect();
    let producer_id = req.producer_id.0;
    let codes: Vec<(TopicPartition, ErrorCode)> = match state.groups.shard(&group) {
        _ if offsets.is_empty() => Vec::new(),
        Err(code) => offsets.into_iter().map(|(tp, _)| (tp, code)).collect(),
        Ok(shard) => {
            // KIP-890: the transaction coordinator, here or on another broker, must say the
            // transaction is Ongoing and holds the group (its `__consumer_offsets`
            // partition); the guard refuses the offsets if the transaction's marker reaches
            // this shard meanwhile. Else offsets of a decided transaction would stay
            // pending forever (every OffsetFetch with require_stable UNSTABLE_OFFSET_COMMIT).
            let guard = shard.begin_verification(producer_id);
            let member = TxnMember::Group(group.clone());
            match txn_verify::verify(state, &id, producer_id, req.producer_epoch, &member).await {
                Err(code) => {
                    shard.abandon_verification(producer_id, guard);
                    tracing::debug!(transactional_id = %id, group = %group, code = code.0, "TxnOffsetCommit not verified");
                    let code = offsets_refusal(code);
                    offsets.into_iter().map(|(tp, _)| (tp, code)).collect()
                }
                Ok(()) => {
                    let commit = TxnCommitRequest {
                        group_id: group,
                        producer_id,
                        producer_epoch: req.producer_epoch,
                        generation_id: req.generation_id,
                        member_id: req.member_id.to_string(),
                        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
                        offsets,
                    };
                    shard.txn_commit_verified(commit, guard).await
                }
            }
        }
    };
    r.topics = req
        .topics
        .iter()
        .map(|t| {
            let mut out = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
            out.name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut o =
                        txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
                    o.partition_index = p.partition_index;
                    o.error_code = refused_code(&t.name.0).unwrap_or_else(|| {
                        super::group_offsets::code_for(&codes, &t.name.0, p.partition_index)
                    });
                    o
                })
                .collect();
            out
        })
        .collect();
    r
}

/// TxnOffsetCommit's answer for a verification that did not pass. The group coordinator
/// sees a stale epoch as INVALID_PRODUCER_EPOCH, as in Kafka (every client treats it as
/// fatal for the producer); a transaction coordinator that could not be asked is
/// COORDINATOR_NOT_AVAILABLE, which clients retry.
fn offsets_refusal(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::PRODUCER_FENCED => ErrorCode::INVALID_PRODUCER_EPOCH,
        code if crate::txn_verify::is_retriable(code) => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        code => code,
    }
}

pub fn describe_transactions(
    state: &State,
    req: &DescribeTransactionsRequest,
    conn: &super::Conn,
) -> DescribeTransactionsResponse {
    let (ids, denied): (Vec<String>, Vec<String>) = req
        .transactional_ids
        .iter()
        .map(|i| i.0.to_string())
        .partition(|i| conn.may(state, Operation::Describe, Resource::TransactionalId(i)));
    let mut r = DescribeTransactionsResponse::default();
    r.transaction_states = state
        .txns
        .describe(&ids)
        .into_iter()
        .map(|d| {
            let mut s = describe_transactions_response::TransactionState::default();
            s.error_code = d.error.0;
            s.transactional_id = TransactionalId(StrBytes::from_string(d.transactional_id));
            s.transaction_state = StrBytes::from_static_str(d.state.as_str());
            s.transaction_timeout_ms = d.timeout_ms;
            s.transaction_start_time_ms = d
                .txn_start_ms
                .map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX));
            s.producer_id = ProducerId(d.producer_id);
            s.producer_epoch = d.producer_epoch;
            let mut topics: Vec<describe_transactions_response::TopicData> = Vec::new();
            for tp in d.partitions {
                match topics.iter_mut().find(|t| *t.topic.0 == *tp.topic.as_str()) {
                    Some(t) => t.partitions.push(tp.partition),
                    None => {
                        let mut t = describe_transactions_response::TopicData::default();
                        t.topic = TopicName(StrBytes::from_string(tp.topic));
                        t.partitions = vec![tp.partition];
                        topics.push(t);
                    }
                }
            }
            // Kafka lists a group as its __consumer_offsets partition; Weir has no such
            // topic, so groups appear under that name with partition 0.
            if !d.groups.is_empty() {
                let mut t = describe_transactions_response::TopicData::default();
                t.topic = TopicName(StrBytes::from_static_str("__consumer_offsets"));
                t.partitions = vec![0];
                topics.push(t);
            }
            s.topics = topics;
            s
        })
        .collect();
    r.transaction_states.extend(denied.into_iter().map(|id| {
        let mut s = describe_transactions_response::TransactionState::default();
        s.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        s.transactional_id = TransactionalId(StrBytes::from_string(id));
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        s.transaction_start_time_ms = -1;
        s
    }));
    r
}

pub fn list_transactions(
    state: &State,
    req: &ListTransactionsRequest,
    version: i16,
    conn: &super::Conn,
) -> ListTransactionsResponse {
    let mut r = ListTransactionsResponse::default();
    if let Some(code) = super::placement::listing_refused(state) {
        r.error_code = code;
        return r;
    }
    let mut states = Vec::new();
    for name in &req.state_filters {
        match name.parse::<TxnState>() {
            Ok(s) => states.push(s),
            Err(_) => r.unknown_state_filters.push(name.clone()),
        }
    }
    if !r.unknown_state_filters.is_empty() && states.is_empty() {
        // Only unknown states were asked for: nothing matches.
        return r;
    }
    let producer_ids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration = (version >= 1 && req.duration_filter >= 0)
        .then(|| u64::try_from(req.duration_filter).unwrap_or(0));
    match state.txns.list(&states, &producer_ids, min_duration) {
        Ok(listed) => {
            // Kafka lists the transactional ids the principal may DESCRIBE.
            r.transaction_states = listed
                .into_iter()
                .filter(|l| {
                    conn.sees(
                        state,
                        Operation::Describe,
                        Resource::TransactionalId(&l.transactional_id),
                    )
                })
                .map(|l| {
                    let mut s = list_transactions_response::TransactionState::default();
                    s.transactional_id = TransactionalId(StrBytes::from_string(l.transactional_id));
                    s.producer_id = ProducerId(l.producer_id);
                    s.transaction_state = StrBytes::from_static_str(l.state.as_str());
                    s
                })
                .collect();
        }
        Err(e) => r.error_code = e.code().0,
    }
    r
}

/// DescribeProducers: the idempotent and transactional producers each partition remembers.
pub fn describe_producers(
    state: &State,
    req: &DescribeProducersRequest,
    conn: &super::Conn,
) -> DescribeProducersResponse {
    let mut r = DescribeProducersResponse::default();
    // Through the lease (§4.9), decided once for the request as Fetch does: a broker that
    // may have been fenced meanwhile answers NOT_LEADER_OR_FOLLOWER rather than the
    // producer state of its memory.
    let lease = state.lease_now();
    r.topics = req
        .topics
        .iter()
        .map(|t| {
            let mut out = describe_producers_response::TopicResponse::default();
            out.name = t.name.clone();
            let allowed = conn.may(state, Operation::Read, Resource::Topic(&t.name));
            let topic = state.topic(&t.name.0).filter(|_| allowed);
            out.partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let mut p = describe_producers_response::PartitionResponse::default();
                    p.partition_index = index;
                    let found = topic.as_ref().map(|topic| lease.lookup(topic, index));
                    match found {
                        None if !allowed => {
                            p.error_code = ResponseError::TopicAuthorizationFailed.code()
                        }
                        None => p.error_code = ResponseError::UnknownTopicOrPartition.code(),
                        Some(Err(e)) => p.error_code = e.code(),
                        Some(Ok(partition)) => {
                            p.active_producers = partition
                                .active_producers()
                                .into_iter()
                                .map(|a| {
                                    let mut s =
                                        describe_producers_response::ProducerState::default();
                                    s.producer_id = ProducerId(a.producer_id);
                                    s.producer_epoch = i32::from(a.producer_epoch);
                                    s.last_sequence = a.last_sequence;
                                    s.last_timestamp = a.last_timestamp_ms;
                                    s.coordinator_epoch = -1;
                                    s.current_txn_start_offset =
                                        a.current_txn_start_offset.unwrap_or(-1);
                                    s
                                })
                                .collect();
                        }
                    }
                    p
                })
                .collect();
            out
        })
        .collect();
    r
}
