//! Authorization of the requests Kafka refuses whole (one group or transactional id per
//! request): checked before dispatch, answered with the API's own error. APIs with
//! per-topic or per-group answers check in their handlers.

use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::{Request, ResponseError};

use super::{Conn, Ctx, Reply};
use crate::security::acl::ResourceType;
use crate::security::{Operation, Resource};
use crate::state::State;

const GROUP_DENIED: ResponseError = ResponseError::GroupAuthorizationFailed;
const TXN_DENIED: ResponseError = ResponseError::TransactionalIdAuthorizationFailed;

/// The refusal to send instead of handling `body`, if `conn` may not make the request.
pub(super) fn refuse(state: &State, body: &Request, ctx: Ctx, conn: &Conn) -> Option<Reply> {
    let group_read = |g: &str| conn.may(state, Operation::Read, Resource::Group(g));
    let txn_write = |t: &str| conn.may(state, Operation::Write, Resource::TransactionalId(t));
    match body {
        Request::JoinGroup(r) if !group_read(&r.group_id) => {
            let mut resp = JoinGroupResponse::default();
            resp.error_code = GROUP_DENIED.code();
            resp.member_id = r.member_id.clone();
            resp.generation_id = -1;
            Some(ctx.reply(&resp))
        }
        Request::SyncGroup(r) if !group_read(&r.group_id) => {
            let mut resp = SyncGroupResponse::default();
            resp.error_code = GROUP_DENIED.code();
            Some(ctx.reply(&resp))
        }
        Request::Heartbeat(r) if !group_read(&r.group_id) => {
            let mut resp = HeartbeatResponse::default();
            resp.error_code = GROUP_DENIED.code();
            Some(ctx.reply(&resp))
        }
        Request::LeaveGroup(r) if !group_read(&r.group_id) => {
            let mut resp = LeaveGroupResponse::default();
            resp.error_code = GROUP_DENIED.code();
            Some(ctx.reply(&resp))
        }
        Request::ConsumerGroupHeartbeat(r) => {
            let error = if !group_read(&r.group_id) {
                Some(GROUP_DENIED)
            } else {
                let topics = r.subscribed_topic_names.iter().flatten();
                let hidden = topics
                    .filter(|t| !conn.may(state, Operation::Describe, Resource::Topic(t)))
                    .count();
                (hidden > 0).then_some(ResponseError::TopicAuthorizationFailed)
            };
            error.map(|e| {
                let mut resp = ConsumerGroupHeartbeatResponse::default();
                resp.error_code = e.code();
                resp.error_message = super::msg(format!("{} is not authorized", conn.principal));
                resp.member_epoch = -1;
                ctx.reply(&resp)
            })
        }
        Request::EndTxn(r) if !txn_write(&r.transactional_id) => {
            let mut resp = EndTxnResponse::default();
            resp.error_code = TXN_DENIED.code();
            resp.producer_id = ProducerId(-1);
            resp.producer_epoch = -1;
            Some(ctx.reply(&resp))
        }
        Request::AddOffsetsToTxn(r) => {
            let error = if !txn_write(&r.transactional_id) {
                Some(TXN_DENIED)
            } else if !group_read(&r.group_id) {
                Some(GROUP_DENIED)
            } else {
                None
            };
            error.map(|e| {
                let mut resp = AddOffsetsToTxnResponse::default();
                resp.error_code = e.code();
                ctx.reply(&resp)
            })
        }
        Request::InitProducerId(r) => {
            let error = match r.transactional_id.as_deref().filter(|t| !t.is_empty()) {
                Some(t) => (!txn_write(t)).then_some(TXN_DENIED),
                // KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or
                // WRITE on any topic.
                None => {
                    let ip = conn.peer.ip();
                    let allowed = conn.sees(state, Operation::IdempotentWrite, Resource::Cluster)
                        || state.security.authorize_any(
                            &conn.principal,
                            ip,
                            Operation::Write,
                            ResourceType::Topic,
                        );
                    if !allowed {
                        // Counted and logged as a cluster denial.
                        let _ = conn.may(state, Operation::IdempotentWrite, Resource::Cluster);
                    }
                    (!allowed).then_some(ResponseError::ClusterAuthorizationFailed)
                }
            };
            error.map(|e| {
                let mut resp = InitProducerIdResponse::default();
                resp.error_code = e.code();
                resp.producer_id = ProducerId(-1);
                resp.producer_epoch = -1;
                ctx.reply(&resp)
            })
        }
        Request::DescribeLogDirs(_) if !conn.may(state, Operation::Describe, Resource::Cluster) => {
            let mut resp = DescribeLogDirsResponse::default();
            if ctx.version >= 3 {
                resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
            }
            Some(ctx.reply(&resp))
        }
        _ => None,
    }
}
