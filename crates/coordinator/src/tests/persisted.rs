//! A classic group's membership is persisted at the end of each rebalance and replayed by a
//! new coordinator (a restart, or a failover in a cluster), whose members carry on without
//! a rebalance.

use super::*;
use crate::*;

/// The membership changes among a call's outputs.
fn changes(out: &[Output]) -> Vec<(String, Option<GroupSnapshot>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::PersistGroup { group, snapshot } => Some((group.clone(), snapshot.clone())),
            _ => None,
        })
        .collect()
}

/// The one membership change among a call's outputs.
fn persisted(out: &[Output]) -> Option<GroupSnapshot> {
    let mut changes = changes(out);
    assert_eq!(changes.len(), 1, "one membership change in {out:?}");
    let (group, snapshot) = changes.remove(0);
    assert_eq!(group, GROUP);
    snapshot
}

/// "a" (leader) and "b" Stable at generation 1 with assignments "A" and "B"; returns the
/// member ids and the snapshot the leader's SyncGroup asked to persist.
fn stable(c: &mut Coordinator) -> (String, String, GroupSnapshot) {
    let (a, b) = (mid("a", 1), mid("b", 2));
    let no_round = |client| JoinRequest {
        require_known_member_id: false,
        ..join("", client)
    };
    assert_eq!(c.join_group(0, RequestId(1), no_round("a")), vec![]);
    assert_eq!(c.join_group(0, RequestId(2), no_round("b")), vec![]);
    assert_eq!(c.tick(100), vec![]);
    let joined = c.tick(200);
    assert_eq!(joined.len(), 2);
    assert_eq!(changes(&joined), vec![], "nothing before the assignment");
    let out = c.sync_group(200, RequestId(3), sync_req(1, &a, &[(&a, "A"), (&b, "B")]));
    // The answer first, then the record (no answer waits for it).
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], synced(3, "A"));
    let snapshot = persisted(&out).expect("a snapshot, not a tombstone");
    assert_eq!(
        c.sync_group(200, RequestId(4), sync_req(1, &b, &[])),
        vec![synced(4, "B")]
    );
    (a, b, snapshot)
}

#[test]
fn a_completed_rebalance_is_persisted_with_members_and_assignments() {
    let mut c = coordinator(100);
    let (a, b, s) = stable(&mut c);
    assert_eq!(s.generation, 1);
    assert_eq!(s.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(s.protocol_name.as_deref(), Some("range"));
    assert_eq!(s.leader.as_deref(), Some(a.as_str()));
    let members: Vec<_> = s
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                m.assignment.clone(),
                m.subscription.clone(),
            )
        })
        .collect();
    assert_eq!(
        members,
        vec![
            (a.as_str(), Bytes::from_static(b"A"), meta("a")),
            (b.as_str(), Bytes::from_static(b"B"), meta("b")),
        ]
    );
    assert_eq!(s.members[0].session_timeout_ms, SESSION as u64);
    assert_eq!(s.members[0].rebalance_timeout_ms, REBALANCE as u64);
}

#[test]
fn a_new_coordinator_replaying_the_snapshot_keeps_the_members_without_a_rebalance() {
    let mut old = coordinator(100);
    let (a, b, s) = stable(&mut old);

    let mut c = coordinator(100);
    c.load_group(50_000, GROUP, Some(s));
    assert_eq!(state(&c), GroupState::Stable);
    // The replayed sessions start at the load, not at the rebalance long before it.
    assert!(c.tick(50_001).is_empty());
    assert_eq!(state(&c), GroupState::Stable);
    // Heartbeats and commits of the current generation are accepted.
    assert_eq!(c.heartbeat(50_100, GROUP, 1, &a, None), ErrorCode::NONE);
    assert_eq!(c.heartbeat(50_100, GROUP, 1, &b, None), ErrorCode::NONE);
    assert_eq!(
        c.heartbeat(50_100, GROUP, 0, &a, None),
        ErrorCode::ILLEGAL_GENERATION
    );
    // A member that re-syncs gets its assignment back.
    assert_eq!(
        c.sync_group(50_200, RequestId(7), sync_req(1, &b, &[])),
        vec![synced(7, "B")]
    );
    let described = c.describe_group(GROUP);
    assert_eq!(described.members.len(), 2);

    // Sessions run as before: "b" keeps beating, "a" goes silent after its heartbeat at
    // 50_100 and is removed at 50_100 + SESSION, which starts a rebalance.
    assert_eq!(c.heartbeat(59_000, GROUP, 1, &b, None), ErrorCode::NONE);
    assert!(c.tick(60_099).is_empty());
    assert_eq!(state(&c), GroupState::Stable);
    c.tick(60_100);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat(60_101, GROUP, 1, &a, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_group_that_became_empty_is_tombstoned_and_replays_empty() {
    let mut c = coordinator(100);
    let (a, b, s) = stable(&mut c);
    let leave = |id: &str| LeaveMember {
        member_id: id.to_owned(),
        group_instance_id: None,
    };
    let (_, out) = c.leave_group(300, GROUP, vec![leave(&a), leave(&b)]);
    assert_eq!(persisted(&out), None, "a tombstone");
    assert_eq!(state(&c), GroupState::Empty);

    // Replay: the snapshot, then the tombstone. Without offsets the group is gone.
    let mut replayed = coordinator(100);
    replayed.load_group(1_000, GROUP, Some(s.clone()));
    replayed.load_group(1_000, GROUP, None);
    assert_eq!(replayed.describe_group(GROUP).state, GroupState::Dead);

    // With offsets it stays, Empty.
    let mut replayed = coordinator(100);
    replayed.load_offsets(1_000, GROUP, tp("orders", 0), Some(offset(5, None, 900)));
    replayed.load_group(1_000, GROUP, Some(s));
    replayed.load_group(1_000, GROUP, None);
    assert_eq!(state(&replayed), GroupState::Empty);
    assert_eq!(
        replayed.heartbeat(1_100, GROUP, 1, &a, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_static_member_replaced_without_a_rebalance_is_persisted_under_its_new_id() {
    let mut c = coordinator(100);
    let (a, b) = (mid("sa", 1), mid("sb", 2));
    assert_eq!(c.join_group(0, RequestId(1), static_join("", "sa")), vec![]);
    assert_eq!(c.join_group(0, RequestId(2), static_join("", "sb")), vec![]);
    c.tick(100);
    c.tick(200);
    let sync = |g, m: &str, i: &str, asg: &[(&str, &str)]| SyncRequest {
        group_instance_id: Some(i.to_owned()),
        ..sync_req(g, m, asg)
    };
    c.sync_group(
        200,
        RequestId(3),
        sync(1, &a, "sa", &[(&a, "A"), (&b, "B")]),
    );
    c.sync_group(200, RequestId(4), sync(1, &b, "sb", &[]));

    // "sb" restarts and gets a new member id in the same generation.
    let out = c.join_group(1_000, RequestId(5), static_join("", "sb"));
    let b2 = mid("sb", 3);
    let s = persisted(&out).expect("a snapshot");
    let ids: Vec<_> = s.members.iter().map(|m| m.member_id.clone()).collect();
    assert_eq!(ids, vec![a.clone(), b2.clone()]);

    let mut replayed = coordinator(100);
    replayed.load_group(2_000, GROUP, Some(s));
    assert_eq!(
        replayed.heartbeat(2_100, GROUP, 1, &b2, Some("sb")),
        ErrorCode::NONE
    );
    assert_eq!(
        replayed.heartbeat(2_100, GROUP, 1, &b, Some("sb")),
        ErrorCode::FENCED_INSTANCE_ID
    );
}
