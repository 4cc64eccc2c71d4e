//! Interim coordinator placement in cluster mode (`cluster::coordinator`): a group or
//! transaction request for a key another broker coordinates answers NOT_COORDINATOR, so the
//! client asks FindCoordinator again and every member of a group meets on one broker.
//! Single node: never called.

use weir_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use weir_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::{Request, ResponseError};

use super::{Ctx, Reply};
use crate::state::State;

/// Whether another broker coordinates `key`.
fn elsewhere(state: &State, key: &str) -> bool {
    let image = state.image.image();
    crate::cluster::coordinator::coordinator_for(&image, key)
        .is_some_and(|b| b.id != state.config.node_id)
}

/// NOT_COORDINATOR for a request whose group or transactional id another broker
/// coordinates; None when this broker serves it.
pub(super) fn redirect(state: &State, req: &Request, ctx: Ctx) -> Option<Reply> {
    let code = ResponseError::NotCoordinator.code();
    let reply = match req {
        Request::JoinGroup(r) if elsewhere(state, &r.group_id.0) => {
            let mut x = JoinGroupResponse::default();
            x.error_code = code;
            x.generation_id = -1;
            ctx.reply(&x)
        }
        Request::SyncGroup(r) if elsewhere(state, &r.group_id.0) => {
            let mut x = SyncGroupResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::Heartbeat(r) if elsewhere(state, &r.group_id.0) => {
            let mut x = HeartbeatResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::LeaveGroup(r) if elsewhere(state, &r.group_id.0) => {
            let mut x = LeaveGroupResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::ConsumerGroupHeartbeat(r) if elsewhere(state, &r.group_id.0) => {
            let mut x = ConsumerGroupHeartbeatResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::OffsetFetch(r) if ctx.version < 8 && elsewhere(state, &r.group_id.0) => {
            let mut x = OffsetFetchResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::OffsetCommit(r) if elsewhere(state, &r.group_id.0) => {
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
        Request::InitProducerId(r)
            if r.transactional_id
                .as_ref()
                .is_some_and(|id| elsewhere(state, id)) =>
        {
            let mut x = InitProducerIdResponse::default();
            x.error_code = code;
            x.producer_id = ProducerId(-1);
            x.producer_epoch = -1;
            ctx.reply(&x)
        }
        Request::EndTxn(r) if elsewhere(state, &r.transactional_id) => {
            let mut x = EndTxnResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        Request::AddOffsetsToTxn(r) if elsewhere(state, &r.transactional_id) => {
            let mut x = AddOffsetsToTxnResponse::default();
            x.error_code = code;
            ctx.reply(&x)
        }
        // Sent to the group's coordinator, which keeps the pending offsets.
        Request::TxnOffsetCommit(r) if elsewhere(state, &r.group_id.0) => {
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
        _ => return None,
    };
    Some(reply)
}
