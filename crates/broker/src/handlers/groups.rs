//! Consumer group APIs (classic protocol): FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups, ListGroups, DeleteGroups, and KIP-848's
//! ConsumerGroupHeartbeat and ConsumerGroupDescribe (committed offsets: `group_offsets.rs`).
//! Wire structs are translated to `weir-coordinator` types and back; the
//! coordinator decides, `crate::groups` persists.

use std::sync::Arc;

use weir_coordinator::{ErrorCode, GroupState, JoinRequest, LeaveMember, SyncRequest};
use weir_protocol::kafka_protocol::messages::{
    consumer_group_describe_response, consumer_group_heartbeat_response, delete_groups_response,
    describe_groups_response, find_coordinator_response, join_group_response, leave_group_response,
    list_groups_response, BrokerId, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;

use super::{msg, str, Conn};
use crate::security::{Operation, Resource};
use crate::state::State;

fn opt(s: Option<String>) -> Option<StrBytes> {
    s.map(StrBytes::from_string)
}

pub(super) fn opt_string(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

/// `advertise`: the listener the request came through.
pub fn find_coordinator(
    state: &Arc<State>,
    req: &FindCoordinatorRequest,
    version: i16,
    conn: &Conn,
) -> FindCoordinatorResponse {
    let advertise = &conn.listener.advertise;
    // Key type 0 is a group, 1 a transactional id: this broker coordinates both.
    let error = (!matches!(req.key_type, 0 | 1)).then_some(ResponseError::InvalidRequest);
    let image = state.is_cluster().then(|| state.image.image());
    // (node, host, port) of the key's coordinator, or why there is none.
    let locate = |key: &str| -> Result<(i32, String, i32), (ResponseError, &'static str)> {
        if let Some(e) = error {
            return Err((e, "unknown coordinator key type"));
        }
        // DESCRIBE on the group or the transactional id, as Kafka.
        let denied = if req.key_type == 0 {
            (!conn.may(state, Operation::Describe, Resource::Group(key)))
                .then_some(ResponseError::GroupAuthorizationFailed)
        } else {
            (!conn.may(state, Operation::Describe, Resource::TransactionalId(key)))
                .then_some(ResponseError::TransactionalIdAuthorizationFailed)
        };
        if let Some(e) = denied {
            return Err((e, "not authorized"));
        }
        let Some(image) = &image else {
            return Ok((
                state.config.node_id,
                advertise.0.clone(),
                i32::from(advertise.1),
            ));
        };
        // Without the lease (§4.9) this broker's image may be behind moves the controller
        // made meanwhile: the client asks another broker.
        if !state.image.serving() {
            return Err((
                ResponseError::CoordinatorNotAvailable,
                "this broker has no current lease from the controller",
            ));
        }
        {
            use crate::cluster::coordinator::{group_coordinator, txn_coordinator, NoCoordinator};
            let group = req.key_type == 0;
            let found = if group {
                group_coordinator(image, key)
            } else {
                txn_coordinator(image, key)
            };
            match found {
                Ok(b) => crate::cluster::metadata::client_endpoint(b)
                    .map(|(host, port)| (b.id, host.to_string(), i32::from(port)))
                    .ok_or((
                        ResponseError::CoordinatorNotAvailable,
                        "the coordinator has no client listener",
                    )),
                Err(NoCoordinator::NoTopic) if group => {
                    state.ensure_offsets_topic();
                    Err((
                        ResponseError::CoordinatorNotAvailable,
                        "the offsets topic is being created",
                    ))
                }
                Err(NoCoordinator::NoTopic) => {
                    state.ensure_txn_state_topic();
                    Err((
                        ResponseError::CoordinatorNotAvailable,
                        "the transaction state topic is being created",
                    ))
                }
                Err(NoCoordinator::NoLeader) => Err((
                    ResponseError::CoordinatorNotAvailable,
                    "the key's coordinator partition has no leader",
                )),
            }
        }
    };
    let mut r = FindCoordinatorResponse::default();
    if version >= 4 {
        r.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = find_coordinator_response::Coordinator::default();
                c.key = key.clone();
                match locate(key) {
                    Err((e, m)) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = e.code();
                        c.error_message = msg(m);
                    }
                    Ok((node, host, port)) => {
                        c.node_id = BrokerId(node);
                        c.host = str(&host);
                        c.port = port;
                    }
                }
                c
            })
            .collect();
        return r;
    }
    match locate(&req.key) {
        Err((e, m)) => {
            r.error_code = e.code();
            r.node_id = BrokerId(-1);
            r.port = -1;
            if version >= 1 {
                r.error_message = msg(m);
            }
        }
        Ok((node, host, port)) => {
            r.node_id = BrokerId(node);
            r.host = str(&host);
            r.port = port;
        }
    }
    r
}

pub async fn join_group(
    state: &Arc<State>,
    req: JoinGroupRequest,
    version: i16,
    conn: &Conn,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: opt_string(&req.group_instance_id),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        client_id: conn.client_id.clone(),
        client_host: format!("/{}", conn.peer.ip()),
        require_known_member_id: version >= 4,
        reason: opt_string(&req.reason),
    };
    let j = state.groups.join(join).await;
    let mut r = JoinGroupResponse::default();
    r.error_code = j.error.0;
    r.generation_id = j.generation_id;
    if version >= 7 {
        r.protocol_type = opt(j.protocol_type);
        r.protocol_name = opt(j.protocol_name);
    } else {
        // Not nullable before v7.
        r.protocol_name = Some(StrBytes::from_string(j.protocol_name.unwrap_or_default()));
    }
    r.leader = StrBytes::from_string(j.leader);
    if version >= 9 {
        r.skip_assignment = j.skip_assignment;
    }
    r.member_id = StrBytes::from_string(j.member_id);
    r.members = j
        .members
        .into_iter()
        .map(|m| {
            let mut out = join_group_response::JoinGroupResponseMember::default();
            out.member_id = StrBytes::from_string(m.member_id);
            if version >= 5 {
                out.group_instance_id = opt(m.group_instance_id);
            }
            out.metadata = m.metadata;
            out
        })
        .collect();
    r
}

pub async fn sync_group(
    state: &Arc<State>,
    req: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: opt_string(&req.group_instance_id),
        protocol_type: opt_string(&req.protocol_type),
        protocol_name: opt_string(&req.protocol_name),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let s = state.groups.sync(sync).await;
    let mut r = SyncGroupResponse::default();
    r.error_code = s.error.0;
    if version >= 5 {
        r.protocol_type = opt(s.protocol_type);
        r.protocol_name = opt(s.protocol_name);
    }
    r.assignment = s.assignment;
    r
}

pub fn heartbeat(state: &State, req: &HeartbeatRequest) -> HeartbeatResponse {
    let instance = opt_string(&req.group_instance_id);
    let mut r = HeartbeatResponse::default();
    r.error_code = state
        .groups
        .heartbeat(
            &req.group_id.0,
            req.generation_id,
            &req.member_id,
            instance.as_deref(),
        )
        .0;
    r
}

pub fn leave_group(state: &State, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeaveMember {
                member_id: m.member_id.to_string(),
                group_instance_id: opt_string(&m.group_instance_id),
            })
            .collect()
    } else {
        vec![LeaveMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let resp = state.groups.leave(&req.group_id.0, members);
    let mut r = LeaveGroupResponse::default();
    if version >= 3 {
        r.error_code = resp.error.0;
        r.members = resp
            .members
            .into_iter()
            .map(|m| {
                let mut out = leave_group_response::MemberResponse::default();
                out.member_id = StrBytes::from_string(m.member_id);
                out.group_instance_id = opt(m.group_instance_id);
                out.error_code = m.error.0;
                out
            })
            .collect();
    } else {
        let member = resp.members.first().map_or(ErrorCode::NONE, |m| m.error);
        r.error_code = if resp.error == ErrorCode::NONE {
            member.0
        } else {
            resp.error.0
        };
    }
    r
}

pub fn describe_groups(
    state: &State,
    req: &DescribeGroupsRequest,
    version: i16,
    conn: &Conn,
) -> DescribeGroupsResponse {
    let mut r = DescribeGroupsResponse::default();
    for g in &req.groups {
        if !conn.may(state, Operation::Describe, Resource::Group(g)) {
            let mut out = describe_groups_response::DescribedGroup::default();
            out.error_code = ResponseError::GroupAuthorizationFailed.code();
            out.group_id = g.clone();
            r.groups.push(out);
            continue;
        }
        let d = state.groups.describe(&g.0);
        let mut out = describe_groups_response::DescribedGroup::default();
        out.error_code = d.error.0;
        out.group_id = g.clone();
        out.group_state = str(d.state.as_str());
        out.protocol_type = StrBytes::from_string(d.protocol_type);
        out.protocol_data = StrBytes::from_string(d.protocol);
        if version >= 3 && req.include_authorized_operations {
            out.authorized_operations = conn.authorized_operations(state, Resource::Group(g));
        }
        out.members = d
            .members
            .into_iter()
            .map(|m| {
                let mut o = describe_groups_response::DescribedGroupMember::default();
                o.member_id = StrBytes::from_string(m.member_id);
                if version >= 4 {
                    o.group_instance_id = opt(m.group_instance_id);
                }
                o.client_id = StrBytes::from_string(m.client_id);
                o.client_host = StrBytes::from_string(m.client_host);
                o.member_metadata = m.metadata;
                o.member_assignment = m.assignment;
                o
            })
            .collect();
        r.groups.push(out);
    }
    r
}

pub fn list_groups(
    state: &State,
    req: &ListGroupsRequest,
    version: i16,
    conn: &Conn,
) -> ListGroupsResponse {
    // Kafka: every group with DESCRIBE on the cluster, else those the principal may DESCRIBE.
    let all = conn.sees(state, Operation::Describe, Resource::Cluster);
    let states: Vec<GroupState> = req
        .states_filter
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut r = ListGroupsResponse::default();
    // Every Weir group is a classic group.
    let classic = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    if !classic {
        return r;
    }
    if let Some(code) = super::placement::listing_refused(state) {
        r.error_code = code;
        return r;
    }
    let listed = match state.groups.list(&states) {
        Ok(listed) => listed,
        Err(code) => {
            r.error_code = code.0;
            return r;
        }
    };
    r.groups = listed
        .into_iter()
        .filter(|g| all || conn.sees(state, Operation::Describe, Resource::Group(&g.group_id)))
        .map(|g| {
            let mut o = list_groups_response::ListedGroup::default();
            o.group_id = GroupId(StrBytes::from_string(g.group_id));
            o.protocol_type = StrBytes::from_string(g.protocol_type);
            if version >= 4 {
                o.group_state = str(g.state.as_str());
            }
            if version >= 5 {
                o.group_type = str(g.group_type.as_str());
            }
            o
        })
        .collect();
    r
}

pub async fn delete_groups(
    state: &Arc<State>,
    req: DeleteGroupsRequest,
    conn: &Conn,
) -> DeleteGroupsResponse {
    let (names, denied): (Vec<String>, Vec<String>) = req
        .groups_names
        .iter()
        .map(|g| g.0.to_string())
        .partition(|g| conn.may(state, Operation::Delete, Resource::Group(g)));
    let mut codes = if names.is_empty() {
        Vec::new()
    } else {
        state.groups.delete_groups(names).await
    };
    codes.extend(
        denied
            .into_iter()
            .map(|g| (g, ErrorCode(ResponseError::GroupAuthorizationFailed.code()))),
    );
    let mut r = DeleteGroupsResponse::default();
    r.results = codes
        .into_iter()
        .map(|(g, code)| {
            let mut o = delete_groups_response::DeletableGroupResult::default();
            o.group_id = GroupId(StrBytes::from_string(g));
            o.error_code = code.0;
            o
        })
        .collect();
    r
}

/// Topic name → id for assignments; names without a topic (deleted meanwhile) are dropped.
fn to_ids(state: &State, parts: Vec<(String, Vec<i32>)>) -> Vec<(uuid::Uuid, String, Vec<i32>)> {
    parts
        .into_iter()
        .filter_map(|(name, ps)| state.topic(&name).map(|t| (t.id, name, ps)))
        .collect()
}

pub async fn consumer_group_heartbeat(
    state: &State,
    req: ConsumerGroupHeartbeatRequest,
    conn: &Conn,
) -> ConsumerGroupHeartbeatResponse {
    let owned = req.topic_partitions.map(|tps| {
        tps.into_iter()
            .filter_map(|tp| {
                state
                    .topic_by_id(tp.topic_id)
                    .map(|t| (t.name.clone(), tp.partitions))
            })
            .collect()
    });
    let hb = weir_coordinator::ConsumerHeartbeat {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: opt_string(&req.instance_id),
        rack_id: opt_string(&req.rack_id),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        // librdkafka sends "" when it subscribes by name.
        subscribed_topic_regex: opt_string(&req.subscribed_topic_regex).filter(|r| !r.is_empty()),
        server_assignor: opt_string(&req.server_assignor),
        topic_partitions: owned,
        client_id: conn.client_id.clone(),
        client_host: format!("/{}", conn.peer.ip()),
    };
    let counts = |name: &str| state.topic(name).map(|t| t.partition_count());
    let (group, epoch) = (hb.group_id.clone(), hb.member_epoch);
    let out = state.groups.consumer_heartbeat(hb, &counts).await;
    if out.error != weir_coordinator::ErrorCode::NONE {
        tracing::info!(group, epoch, error = ?out.error, message = ?out.error_message, "ConsumerGroupHeartbeat refused");
    }
    let mut r = ConsumerGroupHeartbeatResponse::default();
    r.error_code = out.error.0;
    r.error_message = opt(out.error_message);
    r.member_id = (!out.member_id.is_empty()).then(|| StrBytes::from_string(out.member_id));
    r.member_epoch = out.member_epoch;
    r.heartbeat_interval_ms = out.heartbeat_interval_ms;
    r.assignment = out.assignment.map(|parts| {
        let mut a = consumer_group_heartbeat_response::Assignment::default();
        a.topic_partitions = to_ids(state, parts)
            .into_iter()
            .map(|(id, _, ps)| {
                let mut tp = consumer_group_heartbeat_response::TopicPartitions::default();
                tp.topic_id = id;
                tp.partitions = ps;
                tp
            })
            .collect();
        a
    });
    r
}

pub fn consumer_group_describe(
    state: &State,
    req: &ConsumerGroupDescribeRequest,
    conn: &Conn,
) -> ConsumerGroupDescribeResponse {
    let (ids, denied): (Vec<String>, Vec<String>) = req
        .group_ids
        .iter()
        .map(|g| g.0.to_string())
        .partition(|g| conn.may(state, Operation::Describe, Resource::Group(g)));
    let assignment = |parts: Vec<(String, Vec<i32>)>| {
        let mut a = consumer_group_describe_response::Assignment::default();
        a.topic_partitions = to_ids(state, parts)
            .into_iter()
            .map(|(id, name, ps)| {
                let mut tp = consumer_group_describe_response::TopicPartitions::default();
                tp.topic_id = id;
                tp.topic_name = TopicName(StrBytes::from_string(name));
                tp.partitions = ps;
                tp
            })
            .collect();
        a
    };
    let mut r = ConsumerGroupDescribeResponse::default();
    r.groups = state
        .groups
        .consumer_describe(&ids)
        .into_iter()
        .map(|d| {
            let mut g = consumer_group_describe_response::DescribedGroup::default();
            g.error_code = d.error.0;
            g.error_message = opt(d.error_message);
            g.group_id = GroupId(StrBytes::from_string(d.group_id));
            g.group_state = str(d.state.as_str());
            g.group_epoch = d.group_epoch;
            g.assignment_epoch = d.assignment_epoch;
            g.assignor_name = StrBytes::from_string(d.assignor_name);
            g.members = d
                .members
                .into_iter()
                .map(|m| {
                    let mut o = consumer_group_describe_response::Member::default();
                    o.member_id = StrBytes::from_string(m.member_id);
                    o.instance_id = opt(m.instance_id);
                    o.rack_id = opt(m.rack_id);
                    o.member_epoch = m.member_epoch;
                    o.client_id = StrBytes::from_string(m.client_id);
                    o.client_host = StrBytes::from_string(m.client_host);
                    o.subscribed_topic_names = m
                        .subscribed_topic_names
                        .into_iter()
                        .map(|t| TopicName(StrBytes::from_string(t)))
                        .collect();
                    o.assignment = assignment(m.assignment);
                    o.target_assignment = assignment(m.target_assignment);
                    o
                })
                .collect();
            g
        })
        .collect();
    r.groups.extend(denied.into_iter().map(|id| {
        let mut g = consumer_group_describe_response::DescribedGroup::default();
        g.error_code = ResponseError::GroupAuthorizationFailed.code();
        g.group_id = GroupId(StrBytes::from_string(id));
        g
    }));
    r
}
