use super::*;
use crate::*;

fn sjm(member_id: &str, instance: &str) -> JoinMember {
    JoinMember {
        member_id: member_id.to_owned(),
        group_instance_id: Some(instance.to_owned()),
        metadata: meta(instance),
    }
}

fn static_sync(
    generation: i32,
    member_id: &str,
    instance: &str,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        group_instance_id: Some(instance.to_owned()),
        ..sync_req(generation, member_id, assignments)
    }
}

/// Static members "sa" (leader) and "sb", Stable at generation 1 with assignments "A", "B".
fn stable_static_group(c: &mut Coordinator) -> (String, String) {
    let (a, b) = (mid("sa", 1), mid("sb", 2));
    // Static members get their id at once: no MEMBER_ID_REQUIRED round.
    assert_eq!(
        c.join_answers(0, RequestId(1), static_join("", "sa")),
        vec![]
    );
    assert_eq!(
        c.join_answers(0, RequestId(2), static_join("", "sb")),
        vec![]
    );
    assert_eq!(c.tick_answers(100), vec![]);
    assert_eq!(
        c.tick_answers(200),
        vec![
            joined(1, &a, 1, &a, vec![sjm(&a, "sa"), sjm(&b, "sb")]),
            joined(2, &b, 1, &a, vec![]),
        ]
    );
    assert_eq!(
        c.sync_answers(
            200,
            RequestId(3),
            static_sync(1, &a, "sa", &[(&a, "A"), (&b, "B")])
        ),
        vec![synced(3, "A")]
    );
    assert_eq!(
        c.sync_answers(200, RequestId(4), static_sync(1, &b, "sb", &[])),
        vec![synced(4, "B")]
    );
    (a, b)
}

#[test]
fn static_member_rejoin_keeps_the_generation_and_fences_the_old_id() {
    let mut c = coordinator(100);
    let (a, b) = stable_static_group(&mut c);
    let a2 = mid("sa", 3);

    // The leader restarts. No rebalance: it gets the current generation, and the answer
    // names the old leader id so it does not compute an assignment.
    assert_eq!(
        c.join_answers(1_000, RequestId(5), static_join("", "sa")),
        vec![joined(5, &a2, 1, &a, vec![])]
    );
    assert_eq!(state(&c), GroupState::Stable);

    // The old incarnation is fenced everywhere.
    assert_eq!(
        c.heartbeat(1_100, GROUP, 1, &a, Some("sa")),
        ErrorCode::FENCED_INSTANCE_ID
    );
    assert_eq!(
        c.heartbeat(1_100, GROUP, 1, &a, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.sync_answers(1_100, RequestId(6), static_sync(1, &a, "sa", &[])),
        vec![sync_err(6, ErrorCode::FENCED_INSTANCE_ID)]
    );
    let (errors, _) = c.commit_offsets(
        1_100,
        CommitRequest {
            group_id: GROUP.to_owned(),
            generation_id: 1,
            member_id: a.clone(),
            group_instance_id: Some("sa".to_owned()),
            offsets: vec![(tp("orders", 0), offset(1, None, 0))],
        },
    );
    assert_eq!(
        errors,
        vec![(tp("orders", 0), ErrorCode::FENCED_INSTANCE_ID)]
    );

    // The new incarnation syncs and gets its previous assignment.
    assert_eq!(
        c.sync_answers(1_200, RequestId(7), static_sync(1, &a2, "sa", &[])),
        vec![synced(7, "A")]
    );
    assert_eq!(
        c.heartbeat(1_300, GROUP, 1, &a2, Some("sa")),
        ErrorCode::NONE
    );
    let members: Vec<(String, Option<String>)> = c
        .describe_group(GROUP)
        .members
        .into_iter()
        .map(|m| (m.member_id, m.group_instance_id))
        .collect();
    assert_eq!(
        members,
        vec![
            (a2.clone(), Some("sa".to_owned())),
            (b.clone(), Some("sb".to_owned()))
        ]
    );

    // The new id inherited the leadership.
    let changed = JoinRequest {
        group_instance_id: Some("sb".to_owned()),
        ..join_req(&b, "sb", &[("range", meta("sb2"))])
    };
    assert_eq!(c.join_answers(2_000, RequestId(8), changed), vec![]);
    let b_meta = JoinMember {
        metadata: meta("sb2"),
        ..sjm(&b, "sb")
    };
    assert_eq!(
        c.join_answers(2_000, RequestId(9), static_join(&a2, "sa")),
        vec![
            joined(9, &a2, 2, &a2, vec![sjm(&a2, "sa"), b_meta]),
            joined(8, &b, 2, &a2, vec![]),
        ]
    );
}

#[test]
fn static_member_rejoin_with_another_protocol_rebalances() {
    let mut c = coordinator(100);
    let (_, b) = stable_static_group(&mut c);
    let b2 = mid("sb", 3);
    let rr = JoinRequest {
        group_instance_id: Some("sb".to_owned()),
        ..join_req(
            "",
            "sb",
            &[("roundrobin", meta("sb")), ("range", meta("sb"))],
        )
    };
    // "range" still wins the vote (A prefers it; tie goes to A), so no rebalance.
    assert_eq!(
        c.join_answers(1_000, RequestId(5), rr),
        vec![joined(5, &b2, 1, &mid("sa", 1), vec![])]
    );
    assert_eq!(state(&c), GroupState::Stable);
    assert_ne!(b, b2);

    let only_rr = JoinRequest {
        group_instance_id: Some("sb".to_owned()),
        ..join_req("", "sb", &[("roundrobin", meta("sb"))])
    };
    // No common protocol with A left.
    assert_eq!(
        c.join_answers(1_000, RequestId(6), only_rr),
        vec![join_err(6, "", ErrorCode::INCONSISTENT_GROUP_PROTOCOL)]
    );
}

#[test]
fn static_member_rejoin_fences_a_parked_join_of_the_old_id() {
    let mut c = coordinator(100);
    let (a, b) = stable_static_group(&mut c);
    // The leader rejoining starts a rebalance; B's rejoin completes it.
    assert_eq!(
        c.join_answers(1_000, RequestId(5), static_join(&a, "sa")),
        vec![]
    );
    assert_eq!(
        c.join_answers(1_000, RequestId(6), static_join(&b, "sb"))
            .len(),
        2
    );
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    // sb restarts during CompletingRebalance: the leader's assignment would name the old
    // id, so the group rebalances.
    let b2 = mid("sb", 3);
    assert_eq!(
        c.join_answers(1_100, RequestId(7), static_join("", "sb")),
        vec![]
    );
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    // And again while it is parked: the parked request is answered FENCED_INSTANCE_ID.
    let b3 = mid("sb", 4);
    assert_eq!(
        c.join_answers(1_200, RequestId(8), static_join("", "sb")),
        vec![join_err(7, &b2, ErrorCode::FENCED_INSTANCE_ID)]
    );
    assert_eq!(
        c.join_answers(1_300, RequestId(9), static_join(&a, "sa")),
        vec![
            joined(9, &a, 3, &a, vec![sjm(&a, "sa"), sjm(&b3, "sb")]),
            joined(8, &b3, 3, &a, vec![]),
        ]
    );
}

#[test]
fn static_member_that_does_not_rejoin_is_kept_until_its_session_expires() {
    let mut c = coordinator(100);
    let (a, b) = stable_static_group(&mut c);
    // B triggers a rebalance; A keeps heartbeating but does not rejoin in time.
    let changed = JoinRequest {
        group_instance_id: Some("sb".to_owned()),
        ..join_req(&b, "sb", &[("range", meta("sb2"))])
    };
    assert_eq!(c.join_answers(1_000, RequestId(5), changed), vec![]);
    for t in [9_000, 18_000, 27_000] {
        assert_eq!(
            c.heartbeat(t, GROUP, 1, &a, Some("sa")),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
    }
    // Unlike dynamic members, static ones stay in the group (Kafka: KIP-345); B, having
    // rejoined, becomes leader and assigns for both.
    let b_meta = JoinMember {
        metadata: meta("sb2"),
        ..sjm(&b, "sb")
    };
    assert_eq!(
        c.tick_answers(31_000),
        vec![joined(5, &b, 2, &b, vec![sjm(&a, "sa"), b_meta])]
    );
    // A's next heartbeat sees the new generation and is told it is stale.
    assert_eq!(
        c.heartbeat(31_100, GROUP, 1, &a, Some("sa")),
        ErrorCode::ILLEGAL_GENERATION
    );
}

#[test]
fn static_member_removed_by_instance_id() {
    let mut c = coordinator(100);
    let (a, _) = stable_static_group(&mut c);
    let (response, out) = c.leave_answers(
        1_000,
        GROUP,
        vec![
            LeaveMember {
                member_id: String::new(),
                group_instance_id: Some("sb".to_owned()),
            },
            LeaveMember {
                member_id: String::new(),
                group_instance_id: Some("nobody".to_owned()),
            },
        ],
    );
    assert_eq!(out, vec![]);
    let errors: Vec<ErrorCode> = response.members.iter().map(|m| m.error).collect();
    assert_eq!(errors, vec![ErrorCode::NONE, ErrorCode::UNKNOWN_MEMBER_ID]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        c.join_answers(1_100, RequestId(5), static_join(&a, "sa")),
        vec![joined(5, &a, 2, &a, vec![sjm(&a, "sa")])]
    );
    // A member leaving with a stale static id is fenced.
    let (response, _) = c.leave_answers(
        1_200,
        GROUP,
        vec![LeaveMember {
            member_id: "old".to_owned(),
            group_instance_id: Some("sa".to_owned()),
        }],
    );
    assert_eq!(response.members[0].error, ErrorCode::FENCED_INSTANCE_ID);
}

#[test]
fn rebalance_with_no_rejoined_member_is_extended_for_absent_static_members() {
    let mut c = coordinator(100);
    let (a, b) = stable_static_group(&mut c);
    let v3 = JoinRequest {
        require_known_member_id: false,
        ..join("", "d")
    };
    let d = mid("d", 3);
    assert_eq!(c.join_answers(1_000, RequestId(5), v3), vec![]);
    let leaving = LeaveMember {
        member_id: d.clone(),
        group_instance_id: None,
    };
    assert_eq!(
        c.leave_answers(1_000, GROUP, vec![leaving]).1,
        vec![join_err(5, "", ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    // Both static members keep heartbeating but neither rejoins: at the deadline nobody
    // has joined, so the rebalance waits another rebalance timeout.
    for t in [9_000, 18_000, 27_000] {
        assert_eq!(
            c.heartbeat(t, GROUP, 1, &a, Some("sa")),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
        assert_eq!(
            c.heartbeat(t, GROUP, 1, &b, Some("sb")),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
    }
    assert_eq!(c.tick_answers(31_000), vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat(31_000, GROUP, 1, &a, Some("sa")),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    // B stops heartbeating (last at 27000); A rejoins; once B's session ends the rebalance
    // completes with A alone.
    assert_eq!(
        c.join_answers(32_000, RequestId(6), static_join(&a, "sa")),
        vec![]
    );
    assert_eq!(c.next_deadline(), Some(37_000));
    assert_eq!(
        c.tick_answers(37_000),
        vec![joined(6, &a, 2, &a, vec![sjm(&a, "sa")])]
    );
}
