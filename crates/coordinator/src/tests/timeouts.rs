//! Group membership under its timers: session expiry, the rebalance and join timeouts,
//! pending member ids, and the earliest deadline the broker wakes the coordinator for.

use super::*;
use crate::*;

#[test]
fn session_expiry_removes_a_member_and_rebalances() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    // Sessions started at 200 (sync); A keeps heartbeating, B goes silent.
    assert_eq!(c.next_deadline(), Some(10_200));
    assert_eq!(c.heartbeat(5_000, GROUP, 1, a, None), ErrorCode::NONE);
    assert_eq!(c.next_deadline(), Some(10_200));
    assert_eq!(c.tick_answers(10_199), vec![]);
    assert_eq!(c.tick_answers(10_200), vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(c.describe_group(GROUP).members.len(), 1);
    // A's session (15000) comes before the rebalance timeout (10200 + 30000).
    assert_eq!(c.next_deadline(), Some(15_000));
    assert_eq!(
        c.heartbeat(10_300, GROUP, 1, b, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.heartbeat(10_300, GROUP, 1, a, None),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        c.join_answers(10_400, RequestId(1), join(a, "a")),
        vec![joined(1, a, 2, a, vec![jm(a, "a")])]
    );
}

#[test]
fn rebalance_timeout_removes_a_member_that_did_not_rejoin() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let d = mid("d", 3);
    let v3 = JoinRequest {
        require_known_member_id: false,
        ..join("", "d")
    };
    assert_eq!(c.join_answers(1_000, RequestId(1), v3), vec![]);
    assert_eq!(c.join_answers(1_000, RequestId(2), join(a, "a")), vec![]);
    // B is alive (heartbeats) but stuck processing: it exceeds max.poll.interval.ms.
    assert_eq!(c.next_deadline(), Some(10_200)); // B's session
    assert_eq!(
        c.heartbeat(9_000, GROUP, 1, b, None),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        c.heartbeat(18_000, GROUP, 1, b, None),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        c.heartbeat(27_000, GROUP, 1, b, None),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(c.next_deadline(), Some(31_000));
    assert_eq!(c.tick_answers(30_999), vec![]);
    assert_eq!(
        c.tick_answers(31_000),
        vec![
            joined(2, a, 2, a, vec![jm(a, "a"), jm(&d, "d")]),
            joined(1, &d, 2, a, vec![]),
        ]
    );
    assert_eq!(
        c.heartbeat(31_100, GROUP, 1, b, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    let out = c.join_answers(31_100, RequestId(3), join(b, "b"));
    assert_eq!(out, vec![join_err(3, b, ErrorCode::UNKNOWN_MEMBER_ID)]);
}

#[test]
fn leader_that_does_not_rejoin_is_replaced() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(
        c.join_answers(1_000, RequestId(1), join(b, "b")),
        vec![joined(1, b, 1, a, vec![])]
    );
    // B's metadata changes: rebalance; A never rejoins and its session expires first.
    let changed = join_req(b, "b", &[("range", meta("b2"))]);
    assert_eq!(c.join_answers(1_000, RequestId(2), changed), vec![]);
    let b_meta = JoinMember {
        member_id: b.clone(),
        group_instance_id: None,
        metadata: meta("b2"),
    };
    assert_eq!(
        c.tick_answers(10_200),
        vec![joined(2, b, 2, b, vec![b_meta])]
    );
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(c.join_answers(300, RequestId(2), join(b, "b")).len(), 2);
    assert_eq!(
        c.sync_answers(400, RequestId(3), sync_req(2, a, &[(a, "A"), (b, "B")])),
        vec![synced(3, "A")]
    );
    // B heartbeats (so its session lives) but never sends SyncGroup.
    for t in [5_000, 14_000, 23_000] {
        assert_eq!(c.heartbeat(t, GROUP, 2, b, None), ErrorCode::NONE);
        assert_eq!(c.heartbeat(t, GROUP, 2, a, None), ErrorCode::NONE);
    }
    assert_eq!(c.next_deadline(), Some(30_300));
    assert_eq!(c.tick_answers(30_300), vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat(30_400, GROUP, 2, b, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.join_answers(30_400, RequestId(4), join(a, "a")),
        vec![joined(4, a, 3, a, vec![jm(a, "a")])]
    );
}

#[test]
fn pending_member_ids_expire_after_the_session_timeout() {
    let mut c = coordinator(0);
    let a = mid("a", 1);
    let out = c.join_answers(0, RequestId(1), join("", "a"));
    assert_eq!(out, vec![join_err(1, &a, ErrorCode::MEMBER_ID_REQUIRED)]);
    assert_eq!(c.next_deadline(), Some(10_000));
    assert_eq!(c.tick_answers(10_000), vec![]);
    let out = c.join_answers(10_001, RequestId(2), join(&a, "a"));
    assert_eq!(out, vec![join_err(2, &a, ErrorCode::UNKNOWN_MEMBER_ID)]);
}

#[test]
fn next_deadline_is_the_earliest_timer() {
    let mut c = coordinator(3_000);
    assert_eq!(c.next_deadline(), None);
    let a = mid("a", 1);
    // Pending id: reserved for one session timeout.
    assert_eq!(c.join_answers(1_000, RequestId(1), join("", "a")).len(), 1);
    assert_eq!(c.next_deadline(), Some(11_000));
    // Initial delay.
    assert_eq!(c.join_answers(2_000, RequestId(2), join(&a, "a")), vec![]);
    assert_eq!(c.next_deadline(), Some(5_000));
    assert_eq!(c.tick_answers(5_000).len(), 1);
    // The session restarts with the JoinGroup answer; it falls before the pending-sync
    // deadline (5000 + rebalance timeout).
    assert_eq!(c.next_deadline(), Some(15_000));
    assert_eq!(
        c.sync_answers(6_000, RequestId(3), sync_req(1, &a, &[(&a, "A")])),
        vec![synced(3, "A")]
    );
    // Stable: the session.
    assert_eq!(c.next_deadline(), Some(16_000));
    assert_eq!(c.heartbeat(9_000, GROUP, 1, &a, None), ErrorCode::NONE);
    assert_eq!(c.next_deadline(), Some(19_000));
    // A simple group's offset retention competes with it.
    let simple = CommitRequest {
        group_id: "simple".to_owned(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![(tp("t", 0), offset(1, None, 0))],
    };
    c.commit_offsets(9_000, simple);
    assert_eq!(c.next_deadline(), Some(19_000));
    let leaving = LeaveMember {
        member_id: a.clone(),
        group_instance_id: None,
    };
    c.leave_answers(9_500, GROUP, vec![leaving]);
    // GROUP is empty now: forgotten a check interval later; "simple" expires at 9000 + 7d.
    assert_eq!(c.next_deadline(), Some(9_500 + 600_000));
    assert_eq!(c.tick_answers(9_500 + 600_000), vec![]);
    assert_eq!(c.next_deadline(), Some(9_000 + 7 * 24 * 3_600_000));
}

#[test]
fn new_member_parked_in_a_long_rebalance_is_dropped_after_the_join_timeout() {
    let mut c = Coordinator::new(CoordinatorConfig {
        initial_rebalance_delay_ms: 100,
        new_member_join_timeout_ms: 5_000,
        ..CoordinatorConfig::default()
    });
    let ids = stable_group(&mut c, &["a", "b"]);
    let v3 = JoinRequest {
        require_known_member_id: false,
        ..join("", "d")
    };
    assert_eq!(c.join_answers(1_000, RequestId(1), v3), vec![]);
    assert_eq!(c.next_deadline(), Some(6_000));
    assert_eq!(
        c.tick_answers(6_000),
        vec![join_err(1, "", ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    // Still rebalancing for A and B.
    assert_eq!(
        c.heartbeat(6_100, GROUP, 1, &ids[0], None),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
}
