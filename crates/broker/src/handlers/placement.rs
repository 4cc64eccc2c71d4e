//! Coordinator placement in cluster mode: a group request whose `__consumer_offsets` shard
//! is not loaded here answers NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while it loads),
//! so the client asks FindCoordinator again (design §7.1); likewise a transaction request
//! whose `__transaction_state` shard is not loaded here. Before that, a restarting broker holds
//! requests about partitions, groups and transactions until it caught up with the quorum
//! ([`wait_for_catch_up`]), and while its lease does not hold (design §4.9). Single node:
//! never called.

use weir_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use weir_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::Request;

use super::{Ctx, Reply};
use crate::state::State;

/// The longest a request waits for this broker to catch up with the quorum.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest a request waits for this broker's lease (§4.9): a heartbeat round trip
/// and the entries that answer needs, well within a client's request timeout.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Holds Metadata and the requests about partitions, groups or transactions until this
/// broker caught up with the quorum, for [`CATCH_UP_WAIT`] at most. Before then it knows
/// what it led before it stopped (the image replayed from its own log) but serves none of
/// it: every replica is unassigned and no coordinator shard is loaded, so such requests
/// would be answered NOT_LEADER_OR_FOLLOWER or NOT_COORDINATOR, on which some clients give
/// up at once (librdkafka's watermark and committed-offset queries after a whole cluster
/// restarted), and Metadata would name it the leader of what it led before it stopped
/// (clients then fetch from it and are told FENCED_LEADER_EPOCH once it has caught up).
/// Kafka's broker processes no request before it caught up; Weir answers ApiVersions, SASL,
/// DescribeCluster and admin requests at once (`weir cluster info` must work on a broker
/// that cannot reach a quorum), and after the bound answers whatever it can, as before.
pub(super) async fn wait_for_catch_up(state: &State, req: &Request) {
    let held = matches!(
        req,
        Request::Produce(_)
            | Request::Fetch(_)
            | Request::ListOffsets(_)
            | Request::OffsetForLeaderEpoch(_)
            | Request::DeleteRecords(_)
            | Request::FindCoordinator(_)
            | Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::OffsetCommit(_)
            | Request::OffsetFetch(_)
            | Request::OffsetDelete(_)
            | Request::DescribeGroups(_)
            | Request::ListGroups(_)
            | Request::DeleteGroups(_)
            | Request::ConsumerGroupHeartbeat(_)
            | Request::ConsumerGroupDescribe(_)
            | Request::InitProducerId(_)
            | Request::AddPartitionsToTxn(_)
            | Request::AddOffsetsToTxn(_)
            | Request::EndTxn(_)
            | Request::TxnOffsetCommit(_)
            | Request::DescribeProducers(_)
            | Request::DescribeTransactions(_)
            | Request::ListTransactions(_)
    );
    // Metadata waits for the catch-up only: a caught-up broker without its lease answers it
    // from its image at once, as Kafka's broker answers from its cache.
    let metadata = matches!(req, Request::Metadata(_));
    if (held || metadata) && !state.image.is_caught_up() {
        let waited = tokio::time::timeout(CATCH_UP_WAIT, state.image.caught_up()).await;
        if waited.is_err() {
            tracing::debug!(
                "not caught up with the quorum after {CATCH_UP_WAIT:?}; answering anyway"
            );
        }
    }
    // The lease (§4.9): right after a pause or a partition the controller may have fenced
    // this broker and moved what it led. The request waits for a heartbeat answered after
    // it and for the image that answer was decided on; the handler then answers from that
    // image (or refuses, as a broker without the lease does: `LeaseNow::lookup`, the
    // routers' `shard`, FindCoordinator).
    if held && !state.image.serving() && !state.image.serving_within(LEASE_WAIT).await {
        tracing::debug!(
            lease = ?state.image.lease_status(),
            "no lease (stopping, or none within {LEASE_WAIT:?}): refusing as a non-leader"
        );
    }
}

/// The code refusing ListGroups or ListTransactions while this broker's lease does not
/// hold (§4.9): the shards loaded here may be former ones, moved while the broker was
/// paused or cut off, so nothing is listed from their memory. COORDINATOR_LOAD_IN_PROGRESS
/// before the broker caught up with the quorum (its shards are about to load), else
/// COORDINATOR_NOT_AVAILABLE; both are in Kafka's error sets of the two APIs, and admin
/// clients retry them. None on a single node and while the lease holds.
pub(super) fn listing_refused(state: &State) -> Option<i16> {
    if state.image.serving() {
        return None;
    }
    Some(if state.image.is_caught_up() {
        weir_protocol::ResponseError::CoordinatorNotAvailable.code()
    } else {
        weir_protocol::ResponseError::CoordinatorLoadInProgress.code()
    })
}

/// The code refusing a request for `group`, when its shard is not served here.
fn refused(state: &State, group: &str) -> Option<i16> {
    state.groups.shard(group).err().map(|c| c.0)
}

/// The code refusing a request for transactional id `key`, when its shard is not served
/// here.
fn refused_txn(state: &State, key: &str) -> Option<i16> {
    state.txns.shard(key).err().map(|c| c.0)
}

/// NOT_COORDINATOR for a request whose group or transactional id another broker
/// coordinates; None when this broker serves it.
pub(super) fn redirect(state: &State, req: &Request, ctx: Ctx) -> Option<Reply> {
    let group_key = match req {
        Request::JoinGroup(r) => Some(&r.group_id.0),
        Request::SyncGroup(r) => Some(&r.group_id.0),
        Request::Heartbeat(r) => Some(&r.group_id.0),
        Request::LeaveGroup(r) => Some(&r.group_id.0),
        Request::ConsumerGroupHeartbeat(r) => Some(&r.group_id.0),
        Request::OffsetFetch(r) if ctx.version < 8 => Some(&r.group_id.0),
        Request::OffsetCommit(r) => Some(&r.group_id.0),
        Request::TxnOffsetCommit(r) => Some(&r.group_id.0),
        _ => None,
    };
    if let Some(refusal) = group_key.and_then(|g| refused(state, g)) {
        return Some(refuse_group(req, ctx, refusal));
    }
    let txn_key = match req {
        Request::InitProducerId(r) => r.transactional_id.as_ref().map(|id| &id.0),
        Request::EndTxn(r) => Some(&r.transactional_id.0),
        Request::AddOffsetsToTxn(r) => Some(&r.transactional_id.0),
        _ => None,
    };
    let code = txn_key.and_then(|id| refused_txn(state, id))?;
    let reply = match req {
        Request::InitProducerId(_) => {
            let mut x = InitProducerIdResponse::default();
            x.error_code = code;
            x.producer_id = ProducerId(-1);
            x.producer_epoch = -1;
            ctx.reply(&x)
        }
        Request::EndTxn(_) => {
            let mut x = EndTxnResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::AddOffsetsToTxn(_) => {
            let mut x = AddOffsetsToTxnResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        _ => return None,
    };
    Some(reply)
}

/// The answer refusing group request `req` with `code`.
fn refuse_group(req: &Request, ctx: Ctx, code: i16) -> Reply {
    match req {
        Request::JoinGroup(_) => {
            let mut x = JoinGroupResponse::default();
            x.error_code = code;
            x.generation_id = -1;
            ctx.reply(&x)
        }
        Request::SyncGroup(_) => {
            let mut x = SyncGroupResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::Heartbeat(_) => {
            let mut x = HeartbeatResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::LeaveGroup(_) => {
            let mut x = LeaveGroupResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::ConsumerGroupHeartbeat(_) => {
            let mut x = ConsumerGroupHeartbeatResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::OffsetFetch(_) => {
            let mut x = OffsetFetchResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::OffsetCommit(r) => {
            let mut x = OffsetCommitResponse::default();
            x.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = OffsetCommitResponseTopic::default();
                    out.name = t.name.clone();
                    out.topic_id = t.topic_id;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut q = OffsetCommitResponsePartition::default();
                            q.partition_index = p.partition_index;
                            q.error_code = code;
                            q
                        })
                        .collect();
                    out
                })
                .collect();
            ctx.reply(&x)
        }
        Request::TxnOffsetCommit(r) => {
            let mut x = TxnOffsetCommitResponse::default();
            x.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = TxnOffsetCommitResponseTopic::default();
                    out.name = t.name.clone();
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut q = TxnOffsetCommitResponsePartition::default();
                            q.partition_index = p.partition_index;
                            q.error_code = code;
                            q
                        })
                        .collect();
                    out
                })
                .collect();
            ctx.reply(&x)
        }
        // `refused` is asked only for the requests above.
        _ => {
            let mut x = HeartbeatResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
    }
}
