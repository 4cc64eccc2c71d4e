//! Request handlers, one module per family of APIs.
//!
//! [`handle`] runs a request's ordered part and returns a [`Reply`]: bytes to send now, a
//! future that produces them later (fsync waits, long polls), or an order to close.

mod acls;
#[cfg(test)]
mod acls_tests;
mod admin;
mod authz;
mod broker_configs;
mod cluster;
mod configs;
mod epochs;
mod fetch;
mod group_offsets;
mod groups;
mod leaders;
#[cfg(test)]
mod limits_tests;
mod log_dirs;
mod offsets;
mod placement;
mod produce;
mod producer_id;
mod scram_credentials;
#[cfg(test)]
pub(crate) mod testkit;
mod topic_partitions;
mod txn;
mod unregister;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use weir_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use weir_protocol::{encode_response, ApiKey, Request, RequestFrame};

use crate::metrics::ApiMetrics;
use crate::security::{Operation, Resource};
use crate::state::State;

/// What the connection sends back for one request.
pub enum Reply {
    /// A response ready now; `None` when the request gets no response (acks=0 produce).
    Now(Option<Bytes>),
    /// A response that is ready once the future completes.
    Later(Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>),
    /// Like `Later`, but the response comes in parts sent with one vectored write (a Fetch
    /// answer whose record batches are not copied into the frame).
    LaterParts(Pin<Box<dyn Future<Output = Option<Vec<Bytes>>> + Send>>),
    /// The connection must be closed (the response could not be encoded).
    Close,
}

/// Where a response is going: enough to encode it.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

impl Ctx {
    /// Encodes a response body for this request.
    pub fn encode<R: Encodable>(&self, body: &R) -> Option<Bytes> {
        match encode_response(self.api_key, self.version, self.correlation_id, body) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, "response encoding failed (a handler bug)");
                None
            }
        }
    }

    fn reply<R: Encodable>(&self, body: &R) -> Reply {
        match self.encode(body) {
            Some(b) => Reply::Now(Some(b)),
            None => Reply::Close,
        }
    }
}

/// Who sent a request (client id from the header, peer address), through which listener,
/// as which principal: what the authorizer decides on (docs/design/security.md).
#[derive(Debug, Clone)]
pub struct Conn {
    pub peer: std::net::SocketAddr,
    pub client_id: String,
    pub listener: Arc<crate::security::ListenerInfo>,
    pub principal: crate::security::Principal,
    /// The API of the request being handled (`None` between requests): the label of a
    /// denial's metric.
    pub api: Option<ApiKey>,
    /// Idempotent batches this connection's produces were refused before their append: a
    /// gap they leave is answered retriably (`produce_gaps.rs`). Shared by the per-request
    /// clones of this `Conn`.
    pub produce_gaps: Arc<crate::produce_gaps::ProduceGaps>,
}

impl Conn {
    /// A PLAINTEXT connection of `User:ANONYMOUS` advertising the configured address.
    pub fn plaintext(state: &State, peer: std::net::SocketAddr) -> Conn {
        Conn {
            peer,
            client_id: String::new(),
            listener: Arc::new(crate::security::ListenerInfo::plaintext(
                state.config.advertise.clone(),
            )),
            principal: crate::security::Principal::anonymous(),
            api: None,
            produce_gaps: Arc::default(),
        }
    }

    /// Whether this connection's principal may perform `operation` on `resource`; a denial
    /// is logged at debug and counted (`weir_authorization_denied_total{api,resource_type}`).
    pub fn may(&self, state: &State, operation: Operation, resource: Resource<'_>) -> bool {
        let decision =
            state
                .security
                .authorize(&self.principal, self.peer.ip(), operation, resource);
        if !decision.allowed() {
            self.denied(state, operation, resource, decision);
        }
        decision.allowed()
    }

    /// Kafka's authorized-operations bit field (`1 << code` per operation allowed) of
    /// `resource` for this connection, over the operations Kafka lists for its type; the
    /// answer when Metadata, DescribeGroups or DescribeCluster asks for it.
    pub fn authorized_operations(&self, state: &State, resource: Resource<'_>) -> i32 {
        use Operation as O;
        let ops: &[Operation] = match resource {
            Resource::Topic(_) => &[
                O::Read,
                O::Write,
                O::Create,
                O::Delete,
                O::Alter,
                O::Describe,
                O::DescribeConfigs,
                O::AlterConfigs,
            ],
            Resource::Group(_) => &[O::Read, O::Describe, O::Delete],
            Resource::Cluster => &[
                O::Create,
                O::ClusterAction,
                O::DescribeConfigs,
                O::AlterConfigs,
                O::IdempotentWrite,
                O::Alter,
                O::Describe,
            ],
            Resource::TransactionalId(_) => &[O::Write, O::Describe],
        };
        ops.iter()
            .filter(|&&op| self.sees(state, op, resource))
            .fold(0, |bits, op| bits | (1i32 << op.code()))
    }

    /// [`Conn::may`] without logging or counting a denial: for filtering lists (Metadata of
    /// all topics, ListGroups), where leaving something out is not a failure.
    pub fn sees(&self, state: &State, operation: Operation, resource: Resource<'_>) -> bool {
        state
            .security
            .authorize(&self.principal, self.peer.ip(), operation, resource)
            .allowed()
    }

    fn denied(
        &self,
        state: &State,
        operation: Operation,
        resource: Resource<'_>,
        decision: crate::security::acl::index::Decision,
    ) {
        tracing::debug!(principal = %self.principal, peer = %self.peer, api = ?self.api, %operation, ?resource, ?decision, "not authorized");
        if let Some(api) = self.api {
            state.metrics.denied(api, resource.acl().0.name());
        }
    }
}

pub async fn handle(state: &Arc<State>, req: RequestFrame, conn: &Conn) -> Reply {
    let conn = Conn {
        client_id: req
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        api: Some(req.api_key),
        ..conn.clone()
    };
    let ctx = Ctx {
        api_key: req.api_key,
        version: req.header.request_api_version,
        correlation_id: req.header.correlation_id,
    };
    let started = std::time::Instant::now();
    let reply = dispatch(state, req.body, ctx, &conn).await;
    timed(state.metrics.api(ctx.api_key).cloned(), started, reply)
}

/// Counts the request and its duration once its response is ready: now, or when a deferred
/// answer (fsync wait, long poll) completes.
fn timed(api: Option<Arc<ApiMetrics>>, started: std::time::Instant, reply: Reply) -> Reply {
    let Some(api) = api else { return reply };
    match reply {
        Reply::Later(fut) => Reply::Later(Box::pin(async move {
            let out = fut.await;
            api.done(started);
            out
        })),
        Reply::LaterParts(fut) => Reply::LaterParts(Box::pin(async move {
            let out = fut.await;
            api.done(started);
            out
        })),
        now => {
            api.done(started);
            now
        }
    }
}

async fn dispatch(state: &Arc<State>, body: Request, ctx: Ctx, conn: &Conn) -> Reply {
    let advertise = &conn.listener.advertise;
    if state.is_cluster() {
        placement::wait_for_catch_up(state, &body).await;
        if let Some(reply) = placement::redirect(state, &body, ctx) {
            return reply;
        }
    }
    if let Some(refusal) = authz::refuse(state, &body, ctx, conn) {
        return refusal;
    }
    match body {
        Request::ApiVersions(r) => ctx.reply(&cluster::api_versions(&r)),
        Request::Metadata(r) => ctx.reply(&cluster::metadata(state, r, ctx.version, conn).await),
        Request::FindCoordinator(r) => {
            ctx.reply(&groups::find_coordinator(state, &r, ctx.version, conn))
        }
        Request::JoinGroup(r) => ctx.reply(&groups::join_group(state, r, ctx.version, conn).await),
        Request::SyncGroup(r) => ctx.reply(&groups::sync_group(state, r, ctx.version).await),
        Request::Heartbeat(r) => ctx.reply(&groups::heartbeat(state, &r)),
        Request::LeaveGroup(r) => ctx.reply(&groups::leave_group(state, r, ctx.version)),
        Request::OffsetCommit(r) => {
            ctx.reply(&group_offsets::offset_commit(state, r, ctx.version, conn).await)
        }
        Request::OffsetFetch(r) => {
            ctx.reply(&group_offsets::offset_fetch(state, r, ctx.version, conn).await)
        }
        Request::DescribeGroups(r) => {
            ctx.reply(&groups::describe_groups(state, &r, ctx.version, conn))
        }
        Request::ListGroups(r) => ctx.reply(&groups::list_groups(state, &r, ctx.version, conn)),
        Request::DeleteGroups(r) => ctx.reply(&groups::delete_groups(state, r, conn).await),
        Request::ConsumerGroupHeartbeat(r) => {
            ctx.reply(&groups::consumer_group_heartbeat(state, r, conn).await)
        }
        Request::ConsumerGroupDescribe(r) => {
            ctx.reply(&groups::consumer_group_describe(state, &r, conn))
        }
        Request::OffsetDelete(r) => ctx.reply(&group_offsets::offset_delete(state, r, conn).await),
        Request::DescribeCluster(r) => {
            ctx.reply(&cluster::describe_cluster(state, &r, advertise, conn))
        }
        Request::DescribeLogDirs(r) => ctx.reply(&log_dirs::describe_log_dirs(state, &r)),
        Request::OffsetForLeaderEpoch(r) => {
            ctx.reply(&epochs::offset_for_leader_epoch(state, r, conn))
        }
        // On a SASL listener these never get here (security::sasl answers them).
        Request::SaslHandshake(r) => ctx.reply(&cluster::sasl_handshake(&r)),
        Request::SaslAuthenticate(_) => ctx.reply(&cluster::sasl_authenticate_unexpected()),
        Request::DescribeUserScramCredentials(r) => {
            ctx.reply(&scram_credentials::describe(state, r, conn))
        }
        Request::AlterUserScramCredentials(r) => {
            ctx.reply(&scram_credentials::alter(state, r, conn).await)
        }
        Request::Produce(r) => produce::handle(state, r, ctx, conn).await,
        Request::Fetch(r) => fetch::handle(state, r, ctx, conn),
        Request::ListOffsets(r) => {
            ctx.reply(&offsets::list_offsets(state, r, ctx.version, conn).await)
        }
        Request::InitProducerId(r) => ctx.reply(&producer_id::init(state, &r, ctx.version).await),
        Request::AddPartitionsToTxn(r) => {
            ctx.reply(&txn::add_partitions(state, r, ctx.version, conn).await)
        }
        Request::EndTxn(r) => ctx.reply(&txn::end_txn(state, &r, ctx.version).await),
        Request::AddOffsetsToTxn(r) => ctx.reply(&txn::add_offsets(state, &r, ctx.version).await),
        Request::TxnOffsetCommit(r) => ctx.reply(&txn::txn_offset_commit(state, r, conn).await),
        Request::DescribeProducers(r) => ctx.reply(&txn::describe_producers(state, &r, conn)),
        Request::DescribeTransactions(r) => ctx.reply(&txn::describe_transactions(state, &r, conn)),
        Request::ListTransactions(r) => {
            ctx.reply(&txn::list_transactions(state, &r, ctx.version, conn))
        }
        Request::DeleteRecords(r) => ctx.reply(&offsets::delete_records(state, r, conn).await),
        Request::CreateTopics(r) => {
            ctx.reply(&admin::create_topics(state, r, ctx.version, conn).await)
        }
        Request::DeleteTopics(r) => {
            ctx.reply(&admin::delete_topics(state, r, ctx.version, conn).await)
        }
        Request::CreatePartitions(r) => ctx.reply(&admin::create_partitions(state, r, conn).await),
        Request::DescribeConfigs(r) => ctx.reply(&configs::describe(state, r, ctx.version, conn)),
        Request::AlterConfigs(r) => ctx.reply(&configs::alter(state, r, conn).await),
        Request::IncrementalAlterConfigs(r) => {
            ctx.reply(&configs::incremental_alter(state, r, conn).await)
        }
        Request::ElectLeaders(r) => {
            ctx.reply(&leaders::elect_leaders(state, r, ctx.version, conn).await)
        }
        Request::AlterPartitionReassignments(r) => {
            ctx.reply(&leaders::alter_partition_reassignments(state, r, conn).await)
        }
        Request::ListPartitionReassignments(r) => {
            ctx.reply(&leaders::list_partition_reassignments(state, &r, conn))
        }
        Request::UnregisterBroker(r) => {
            ctx.reply(&unregister::unregister_broker(state, &r, conn).await)
        }
        Request::DescribeTopicPartitions(r) => ctx.reply(
            &topic_partitions::describe_topic_partitions(state, &r, conn),
        ),
        Request::CreateAcls(r) => ctx.reply(&acls::create(state, r, conn).await),
        Request::DescribeAcls(r) => ctx.reply(&acls::describe(state, &r, conn)),
        Request::DeleteAcls(r) => ctx.reply(&acls::delete(state, r, conn).await),
    }
}

/// An error message for a response field.
pub fn msg(s: impl std::fmt::Display) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.to_string()))
}

/// IncrementalAlterConfigs on one topic, for [`crate::config_ops`]: the handler's own code.
pub(crate) async fn incremental_alter_topic(
    state: &std::sync::Arc<crate::state::State>,
    name: &str,
    ops: &[(String, i8, Option<String>)],
    validate_only: bool,
) -> configs::Outcome {
    configs::incremental_topic(state, name, ops, validate_only).await
}

pub fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

#[cfg(test)]
mod testutil;

#[cfg(test)]
mod tests;
