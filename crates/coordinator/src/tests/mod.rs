//! Event-in, output-out tests: every test drives the coordinator with explicit times and
//! asserts the exact outputs. Time is a number; nothing sleeps.

mod consumer;
mod consumer_persisted;
mod membership;
mod offsets;
mod persisted;
mod static_members;
mod timeouts;

use bytes::Bytes;

use crate::subscription::encode_v0;
use crate::*;

pub const SESSION: i32 = 10_000;
pub const REBALANCE: i32 = 30_000;
pub const GROUP: &str = "g";

pub fn coordinator(initial_delay_ms: u64) -> Coordinator {
    Coordinator::new(CoordinatorConfig {
        initial_rebalance_delay_ms: initial_delay_ms,
        ..CoordinatorConfig::default()
    })
}

/// The n-th member id the coordinator generates for `prefix` (seed 0).
pub fn mid(prefix: &str, n: u64) -> String {
    format!("{prefix}-00000000-0000-0000-0000-{n:012x}")
}

/// Each member subscribes to "orders" and to a topic named after itself, so metadata is
/// distinct per member and decodable.
pub fn meta(client: &str) -> Bytes {
    encode_v0(&["orders", client])
}

pub fn join_req(member_id: &str, client: &str, protocols: &[(&str, Bytes)]) -> JoinRequest {
    JoinRequest {
        group_id: GROUP.to_owned(),
        member_id: member_id.to_owned(),
        group_instance_id: None,
        protocol_type: "consumer".to_owned(),
        protocols: protocols
            .iter()
            .map(|(name, m)| ((*name).to_owned(), m.clone()))
            .collect(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        client_id: client.to_owned(),
        client_host: format!("/10.0.0.{}", client.len()),
        require_known_member_id: true,
        reason: None,
    }
}

/// A "range" consumer.
pub fn join(member_id: &str, client: &str) -> JoinRequest {
    join_req(member_id, client, &[("range", meta(client))])
}

pub fn static_join(member_id: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_owned()),
        ..join(member_id, instance)
    }
}

pub fn sync_req(generation: i32, member_id: &str, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        group_id: GROUP.to_owned(),
        generation_id: generation,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignments: assignments
            .iter()
            .map(|(m, a)| ((*m).to_owned(), Bytes::copy_from_slice(a.as_bytes())))
            .collect(),
    }
}

pub fn jm(member_id: &str, client: &str) -> JoinMember {
    JoinMember {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        metadata: meta(client),
    }
}

pub fn joined(
    request: u64,
    member_id: &str,
    generation: i32,
    leader: &str,
    members: Vec<JoinMember>,
) -> Output {
    joined_with(request, member_id, generation, leader, "range", members)
}

pub fn joined_with(
    request: u64,
    member_id: &str,
    generation: i32,
    leader: &str,
    protocol: &str,
    members: Vec<JoinMember>,
) -> Output {
    Output::Respond {
        request: RequestId(request),
        response: Response::Join(JoinResponse {
            error: ErrorCode::NONE,
            generation_id: generation,
            protocol_type: Some("consumer".to_owned()),
            protocol_name: Some(protocol.to_owned()),
            leader: leader.to_owned(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members,
        }),
    }
}

pub fn join_err(request: u64, member_id: &str, error: ErrorCode) -> Output {
    Output::Respond {
        request: RequestId(request),
        response: Response::Join(JoinResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }),
    }
}

pub fn synced(request: u64, assignment: &str) -> Output {
    Output::Respond {
        request: RequestId(request),
        response: Response::Sync(SyncResponse {
            error: ErrorCode::NONE,
            protocol_type: Some("consumer".to_owned()),
            protocol_name: Some("range".to_owned()),
            assignment: Bytes::copy_from_slice(assignment.as_bytes()),
        }),
    }
}

pub fn sync_err(request: u64, error: ErrorCode) -> Output {
    Output::Respond {
        request: RequestId(request),
        response: Response::Sync(SyncResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }),
    }
}

pub fn state(c: &Coordinator) -> GroupState {
    c.describe_group(GROUP).state
}

pub fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

pub fn offset(offset: i64, metadata: Option<&str>, at: u64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: Some(3),
        metadata: metadata.map(str::to_owned),
        commit_timestamp_ms: at,
    }
}

/// Brings `clients` (dynamic members, at least two) to Stable generation 1 by time 200 on a
/// coordinator with a 100 ms initial delay. Members join JoinGroup-v3 style (no
/// MEMBER_ID_REQUIRED round) at time 0; each is assigned "assign-{client}". Returns the
/// member ids; uses request ids 900 and up. Sessions then end at 10_200.
pub fn stable_group(c: &mut Coordinator, clients: &[&str]) -> Vec<String> {
    assert_eq!(c.config().initial_rebalance_delay_ms, 100);
    assert!(clients.len() >= 2, "one member would not extend the delay");
    let mut ids = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let req = JoinRequest {
            require_known_member_id: false,
            ..join("", client)
        };
        assert_eq!(c.join_answers(0, RequestId(900 + i as u64), req), vec![]);
        ids.push(mid(client, i as u64 + 1));
    }
    // 100: the delay is extended once because more members arrived; 200: complete.
    assert_eq!(c.tick_answers(100), vec![]);
    let joined = c.tick_answers(200);
    assert_eq!(joined.len(), clients.len());
    assert_eq!(state(c), GroupState::CompletingRebalance);
    let assignments: Vec<(String, String)> = ids
        .iter()
        .zip(clients)
        .map(|(id, client)| (id.clone(), format!("assign-{client}")))
        .collect();
    let assignments: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let out = c.sync_answers(200, RequestId(950), sync_req(1, &ids[0], &assignments));
    assert_eq!(out, vec![synced(950, &format!("assign-{}", clients[0]))]);
    for (i, id) in ids.iter().enumerate().skip(1) {
        let out = c.sync_answers(200, RequestId(950 + i as u64), sync_req(1, id, &[]));
        assert_eq!(
            out,
            vec![synced(950 + i as u64, &format!("assign-{}", clients[i]))]
        );
    }
    assert_eq!(state(c), GroupState::Stable);
    ids
}

/// The classic tests assert a call's answers exactly; `persisted` asserts the membership
/// records ([`Output::PersistGroup`]), which these variants leave out.
impl Coordinator {
    pub fn join_answers(&mut self, now: u64, request: RequestId, req: JoinRequest) -> Vec<Output> {
        answers(self.join_group(now, request, req))
    }

    pub fn sync_answers(&mut self, now: u64, request: RequestId, req: SyncRequest) -> Vec<Output> {
        answers(self.sync_group(now, request, req))
    }

    pub fn tick_answers(&mut self, now: u64) -> Vec<Output> {
        answers(self.tick(now))
    }

    pub fn leave_answers(
        &mut self,
        now: u64,
        group: &str,
        members: Vec<LeaveMember>,
    ) -> (LeaveResponse, Vec<Output>) {
        let (response, out) = self.leave_group(now, group, members);
        (response, answers(out))
    }
}

fn answers(out: Vec<Output>) -> Vec<Output> {
    out.into_iter()
        .filter(|o| !matches!(o, Output::PersistGroup { .. }))
        .collect()
}
