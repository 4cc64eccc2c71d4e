use super::*;
use crate::*;

#[test]
fn single_member_joins_after_member_id_required_round() {
    let mut c = coordinator(0);
    let a = mid("a", 1);

    let out = c.join_answers(0, RequestId(1), join("", "a"));
    assert_eq!(out, vec![join_err(1, &a, ErrorCode::MEMBER_ID_REQUIRED)]);
    assert_eq!(state(&c), GroupState::Empty);

    // With no initial delay, the rebalance completes as soon as everyone has joined.
    let out = c.join_answers(5, RequestId(2), join(&a, "a"));
    assert_eq!(out, vec![joined(2, &a, 1, &a, vec![jm(&a, "a")])]);
    assert_eq!(state(&c), GroupState::CompletingRebalance);

    let out = c.sync_answers(6, RequestId(3), sync_req(1, &a, &[(&a, "p0")]));
    assert_eq!(out, vec![synced(3, "p0")]);
    assert_eq!(
        c.describe_group(GROUP),
        GroupDescription {
            error: ErrorCode::NONE,
            group_id: GROUP.to_owned(),
            state: GroupState::Stable,
            protocol_type: "consumer".to_owned(),
            protocol: "range".to_owned(),
            members: vec![MemberDescription {
                member_id: a.clone(),
                group_instance_id: None,
                client_id: "a".to_owned(),
                client_host: "/10.0.0.1".to_owned(),
                metadata: meta("a"),
                assignment: Bytes::from_static(b"p0"),
            }],
        }
    );
    assert_eq!(c.heartbeat(7, GROUP, 1, &a, None), ErrorCode::NONE);
}

#[test]
fn initial_delay_holds_the_first_rebalance_and_extends_for_new_members() {
    let mut c = coordinator(3_000);
    let (a, b) = (mid("a", 1), mid("b", 2));

    assert_eq!(
        c.join_answers(0, RequestId(1), join("", "a")),
        vec![join_err(1, &a, ErrorCode::MEMBER_ID_REQUIRED)]
    );
    assert_eq!(c.join_answers(0, RequestId(2), join(&a, "a")), vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(c.next_deadline(), Some(3_000));

    assert_eq!(
        c.join_answers(1_000, RequestId(3), join("", "b")),
        vec![join_err(3, &b, ErrorCode::MEMBER_ID_REQUIRED)]
    );
    // Everyone has joined, but the initial delay never completes early.
    assert_eq!(c.join_answers(1_000, RequestId(4), join(&b, "b")), vec![]);
    assert_eq!(c.tick_answers(2_999), vec![]);

    // B arrived during the delay: wait another delay (rebalance timeout permitting).
    assert_eq!(c.tick_answers(3_000), vec![]);
    assert_eq!(c.next_deadline(), Some(6_000));
    assert_eq!(c.tick_answers(5_999), vec![]);

    assert_eq!(
        c.tick_answers(6_000),
        vec![
            joined(2, &a, 1, &a, vec![jm(&a, "a"), jm(&b, "b")]),
            joined(4, &b, 1, &a, vec![]),
        ]
    );
}

#[test]
fn initial_delay_extension_is_capped_by_the_rebalance_timeout() {
    let mut c = coordinator(3_000);
    let join_v3 = |client: &str| JoinRequest {
        require_known_member_id: false,
        rebalance_timeout_ms: 5_000,
        ..join("", client)
    };
    let (a, b, d) = (mid("a", 1), mid("b", 2), mid("d", 3));
    assert_eq!(c.join_answers(0, RequestId(1), join_v3("a")), vec![]);
    assert_eq!(c.join_answers(100, RequestId(2), join_v3("b")), vec![]);
    // remaining = 5000 - 3000 = 2000: the extension is 2000, then nothing remains.
    assert_eq!(c.tick_answers(3_000), vec![]);
    assert_eq!(c.next_deadline(), Some(5_000));
    assert_eq!(c.join_answers(4_000, RequestId(3), join_v3("d")), vec![]);
    assert_eq!(
        c.tick_answers(5_000),
        vec![
            joined(1, &a, 1, &a, vec![jm(&a, "a"), jm(&b, "b"), jm(&d, "d")]),
            joined(2, &b, 1, &a, vec![]),
            joined(3, &d, 1, &a, vec![]),
        ]
    );
}

#[test]
fn three_members_form_one_generation_and_sync_distributes_assignments() {
    let mut c = coordinator(3_000);
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, client)| mid(client, i as u64 + 1))
        .collect();
    let (a, b, d) = (&ids[0], &ids[1], &ids[2]);
    for (i, (client, id)) in ["a", "b", "c"].iter().zip(&ids).enumerate() {
        let r = 10 * i as u64;
        assert_eq!(
            c.join_answers(100, RequestId(r), join("", client)),
            vec![join_err(r, id, ErrorCode::MEMBER_ID_REQUIRED)]
        );
        assert_eq!(
            c.join_answers(100, RequestId(r + 1), join(id, client)),
            vec![]
        );
    }
    assert_eq!(c.tick_answers(3_100), vec![]); // extended once
    assert_eq!(
        c.tick_answers(6_100),
        vec![
            joined(1, a, 1, a, vec![jm(a, "a"), jm(b, "b"), jm(d, "c")]),
            joined(11, b, 1, a, vec![]),
            joined(21, d, 1, a, vec![]),
        ]
    );

    // Followers wait for the leader.
    assert_eq!(
        c.sync_answers(6_200, RequestId(12), sync_req(1, b, &[])),
        vec![]
    );
    assert_eq!(
        c.sync_answers(6_200, RequestId(22), sync_req(1, d, &[])),
        vec![]
    );
    // Heartbeats while waiting are fine.
    assert_eq!(c.heartbeat(6_250, GROUP, 1, a, None), ErrorCode::NONE);
    let out = c.sync_answers(
        6_300,
        RequestId(2),
        sync_req(1, a, &[(a, "A"), (b, "B"), (d, "C"), ("stranger", "X")]),
    );
    assert_eq!(out, vec![synced(2, "A"), synced(12, "B"), synced(22, "C")]);
    assert_eq!(state(&c), GroupState::Stable);

    // A late sync in Stable gets the stored assignment.
    assert_eq!(
        c.sync_answers(6_400, RequestId(23), sync_req(1, d, &[])),
        vec![synced(23, "C")]
    );
}

#[test]
fn leader_leaving_out_a_member_gives_it_an_empty_assignment() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    // Force a new generation: the leader rejoins.
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(
        c.join_answers(300, RequestId(2), join(b, "b")),
        vec![
            joined(1, a, 2, a, vec![jm(a, "a"), jm(b, "b")]),
            joined(2, b, 2, a, vec![]),
        ]
    );
    assert_eq!(
        c.sync_answers(300, RequestId(3), sync_req(2, b, &[])),
        vec![]
    );
    assert_eq!(
        c.sync_answers(300, RequestId(4), sync_req(2, a, &[(a, "A")])),
        vec![synced(4, "A"), synced(3, "")]
    );
}

#[test]
fn fourth_member_triggers_rebalance_and_heartbeats_ask_to_rejoin() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b", "c"]);
    let (a, b, d) = (&ids[0], &ids[1], &ids[2]);
    let e = mid("e", 4);

    assert_eq!(
        c.join_answers(1_000, RequestId(1), join("", "e")),
        vec![join_err(1, &e, ErrorCode::MEMBER_ID_REQUIRED)]
    );
    // The id reservation alone does not rebalance.
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(c.heartbeat(1_000, GROUP, 1, a, None), ErrorCode::NONE);

    assert_eq!(c.join_answers(1_000, RequestId(2), join(&e, "e")), vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    for id in [a, b, d] {
        assert_eq!(
            c.heartbeat(1_100, GROUP, 1, id, None),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
    }
    // Commits are still accepted while preparing; the heartbeat does the signalling.
    let (errors, _) = c.commit_offsets(
        1_100,
        CommitRequest {
            group_id: GROUP.to_owned(),
            generation_id: 1,
            member_id: b.clone(),
            group_instance_id: None,
            offsets: vec![(tp("orders", 0), offset(5, None, 0))],
        },
    );
    assert_eq!(errors, vec![(tp("orders", 0), ErrorCode::NONE)]);

    assert_eq!(c.join_answers(1_200, RequestId(3), join(a, "a")), vec![]);
    assert_eq!(c.join_answers(1_200, RequestId(4), join(b, "b")), vec![]);
    assert_eq!(
        c.join_answers(1_300, RequestId(5), join(d, "c")),
        vec![
            joined(
                3,
                a,
                2,
                a,
                vec![jm(a, "a"), jm(b, "b"), jm(d, "c"), jm(&e, "e")]
            ),
            joined(4, b, 2, a, vec![]),
            joined(5, d, 2, a, vec![]),
            joined(2, &e, 2, a, vec![]),
        ]
    );
    assert_eq!(c.heartbeat(1_400, GROUP, 2, &e, None), ErrorCode::NONE);
}

#[test]
fn unchanged_follower_rejoin_in_stable_returns_current_generation() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(
        c.join_answers(300, RequestId(1), join(b, "b")),
        vec![joined(1, b, 1, a, vec![])]
    );
    assert_eq!(state(&c), GroupState::Stable);

    // Changed metadata forces a rebalance.
    let changed = join_req(b, "b", &[("range", meta("b2"))]);
    assert_eq!(c.join_answers(400, RequestId(2), changed), vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

#[test]
fn leave_triggers_a_rebalance() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);

    let (response, out) = c.leave_answers(
        500,
        GROUP,
        vec![
            LeaveMember {
                member_id: b.clone(),
                group_instance_id: None,
            },
            LeaveMember {
                member_id: "nobody".to_owned(),
                group_instance_id: None,
            },
        ],
    );
    assert_eq!(
        response,
        LeaveResponse {
            error: ErrorCode::NONE,
            members: vec![
                LeaveMemberResult {
                    member_id: b.clone(),
                    group_instance_id: None,
                    error: ErrorCode::NONE,
                },
                LeaveMemberResult {
                    member_id: "nobody".to_owned(),
                    group_instance_id: None,
                    error: ErrorCode::UNKNOWN_MEMBER_ID,
                },
            ],
        }
    );
    assert_eq!(out, vec![]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat(600, GROUP, 1, a, None),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        c.heartbeat(600, GROUP, 1, b, None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.join_answers(700, RequestId(1), join(a, "a")),
        vec![joined(1, a, 2, a, vec![jm(a, "a")])]
    );
}

#[test]
fn last_member_leaving_empties_the_group() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    for id in &ids {
        let leaving = LeaveMember {
            member_id: id.clone(),
            group_instance_id: None,
        };
        let (response, out) = c.leave_answers(500, GROUP, vec![leaving]);
        assert_eq!(response.members[0].error, ErrorCode::NONE);
        assert_eq!(out, vec![]);
    }
    assert_eq!(state(&c), GroupState::Empty);
    // The group is kept (with its generation) until the retention check forgets it.
    assert_eq!(c.next_deadline(), Some(500 + 600_000));
    assert_eq!(c.tick_answers(500 + 599_999), vec![]);
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(c.tick_answers(500 + 600_000), vec![]);
    assert_eq!(state(&c), GroupState::Dead);
    assert_eq!(c.list_groups(&[]), vec![]);
}

#[test]
fn leaving_while_parked_in_sync_answers_the_parked_request() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(c.join_answers(300, RequestId(2), join(b, "b")).len(), 2);
    assert_eq!(
        c.sync_answers(300, RequestId(3), sync_req(2, b, &[])),
        vec![]
    );
    let leaving = LeaveMember {
        member_id: b.clone(),
        group_instance_id: None,
    };
    let (_, out) = c.leave_answers(400, GROUP, vec![leaving]);
    // B's parked SyncGroup is answered; A must rejoin (alone: completes at once).
    assert_eq!(out, vec![sync_err(3, ErrorCode::UNKNOWN_MEMBER_ID)]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

#[test]
fn generation_fencing_rejects_stale_generations() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(c.join_answers(300, RequestId(2), join(b, "b")).len(), 2);
    // Generation 2 now; a zombie still on generation 1:
    assert_eq!(
        c.heartbeat(400, GROUP, 1, b, None),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        c.sync_answers(400, RequestId(3), sync_req(1, b, &[])),
        vec![sync_err(3, ErrorCode::ILLEGAL_GENERATION)]
    );
    let (errors, out) = c.commit_offsets(
        400,
        CommitRequest {
            group_id: GROUP.to_owned(),
            generation_id: 1,
            member_id: b.clone(),
            group_instance_id: None,
            offsets: vec![(tp("orders", 0), offset(1, None, 0))],
        },
    );
    assert_eq!(
        errors,
        vec![(tp("orders", 0), ErrorCode::ILLEGAL_GENERATION)]
    );
    assert_eq!(out, vec![]);
}

#[test]
fn sync_errors() {
    let mut c = coordinator(100);
    let unknown_group = c.sync_answers(0, RequestId(1), sync_req(1, "x", &[]));
    assert_eq!(
        unknown_group,
        vec![sync_err(1, ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let unknown_member = c.sync_answers(300, RequestId(2), sync_req(1, "x", &[]));
    assert_eq!(
        unknown_member,
        vec![sync_err(2, ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    let wrong_protocol = SyncRequest {
        protocol_name: Some("roundrobin".to_owned()),
        ..sync_req(1, b, &[])
    };
    assert_eq!(
        c.sync_answers(300, RequestId(3), wrong_protocol),
        vec![sync_err(3, ErrorCode::INCONSISTENT_GROUP_PROTOCOL)]
    );
    assert_eq!(c.join_answers(300, RequestId(4), join(a, "a")), vec![]);
    assert_eq!(
        c.sync_answers(300, RequestId(5), sync_req(1, b, &[])),
        vec![sync_err(5, ErrorCode::REBALANCE_IN_PROGRESS)]
    );
    let mut empty_id = sync_req(1, b, &[]);
    empty_id.group_id = String::new();
    assert_eq!(
        c.sync_answers(300, RequestId(6), empty_id),
        vec![sync_err(6, ErrorCode::INVALID_GROUP_ID)]
    );
}

#[test]
fn rebalance_during_completing_rebalance_fails_parked_syncs() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(c.join_answers(300, RequestId(2), join(b, "b")).len(), 2);
    assert_eq!(
        c.sync_answers(300, RequestId(3), sync_req(2, b, &[])),
        vec![]
    );
    // A new member arrives before the leader's assignment.
    let v3 = JoinRequest {
        require_known_member_id: false,
        ..join("", "d")
    };
    assert_eq!(
        c.join_answers(400, RequestId(4), v3),
        vec![sync_err(3, ErrorCode::REBALANCE_IN_PROGRESS)]
    );
    // The leader's late assignment is refused.
    assert_eq!(
        c.sync_answers(500, RequestId(5), sync_req(2, a, &[(a, "A")])),
        vec![sync_err(5, ErrorCode::REBALANCE_IN_PROGRESS)]
    );
}

#[test]
fn pending_member_blocks_completion_until_it_joins() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let d = mid("d", 3);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(
        c.join_answers(300, RequestId(2), join("", "d")),
        vec![join_err(2, &d, ErrorCode::MEMBER_ID_REQUIRED)]
    );
    // Everyone known has rejoined, but D holds an id: wait for it.
    assert_eq!(c.join_answers(300, RequestId(3), join(b, "b")), vec![]);
    assert_eq!(
        c.join_answers(400, RequestId(4), join(&d, "d")),
        vec![
            joined(1, a, 2, a, vec![jm(a, "a"), jm(b, "b"), jm(&d, "d")]),
            joined(3, b, 2, a, vec![]),
            joined(4, &d, 2, a, vec![]),
        ]
    );
}

#[test]
fn protocol_selection_votes_and_breaks_ties_in_join_order() {
    let mut c = coordinator(100);
    let both = |first: &str, second: &str, client: &str| JoinRequest {
        require_known_member_id: false,
        ..join_req("", client, &[(first, meta(client)), (second, meta(client))])
    };
    let (a, b) = (mid("a", 1), mid("b", 2));
    assert_eq!(
        c.join_answers(0, RequestId(1), both("range", "roundrobin", "a")),
        vec![]
    );
    assert_eq!(
        c.join_answers(0, RequestId(2), both("roundrobin", "range", "b")),
        vec![]
    );
    assert_eq!(c.tick_answers(100), vec![]);
    // One vote each: the first voter (A) wins the tie.
    assert_eq!(
        c.tick_answers(200),
        vec![
            joined_with(1, &a, 1, &a, "range", vec![jm(&a, "a"), jm(&b, "b")]),
            joined_with(2, &b, 1, &a, "range", vec![]),
        ]
    );

    // A third member preferring roundrobin tips the vote.
    let d = mid("d", 3);
    assert_eq!(
        c.join_answers(300, RequestId(3), both("roundrobin", "range", "d")),
        vec![]
    );
    let mut a_rejoin = both("range", "roundrobin", "a");
    a_rejoin.member_id = a.clone();
    assert_eq!(c.join_answers(300, RequestId(4), a_rejoin), vec![]);
    let mut b_rejoin = both("roundrobin", "range", "b");
    b_rejoin.member_id = b.clone();
    assert_eq!(
        c.join_answers(300, RequestId(5), b_rejoin),
        vec![
            joined_with(
                4,
                &a,
                2,
                &a,
                "roundrobin",
                vec![jm(&a, "a"), jm(&b, "b"), jm(&d, "d")]
            ),
            joined_with(5, &b, 2, &a, "roundrobin", vec![]),
            joined_with(3, &d, 2, &a, "roundrobin", vec![]),
        ]
    );
}

#[test]
fn inconsistent_group_protocol() {
    let mut c = coordinator(0);
    let a = mid("a", 1);
    assert_eq!(c.join_answers(0, RequestId(1), join("", "a")).len(), 1);
    assert_eq!(c.join_answers(0, RequestId(2), join(&a, "a")).len(), 1);

    // No protocol in common with A.
    let rr = join_req("", "b", &[("roundrobin", meta("b"))]);
    assert_eq!(
        c.join_answers(0, RequestId(3), rr),
        vec![join_err(3, "", ErrorCode::INCONSISTENT_GROUP_PROTOCOL)]
    );
    // Another protocol type.
    let connect = JoinRequest {
        protocol_type: "connect".to_owned(),
        ..join("", "b")
    };
    assert_eq!(
        c.join_answers(0, RequestId(4), connect),
        vec![join_err(4, "", ErrorCode::INCONSISTENT_GROUP_PROTOCOL)]
    );
    // No protocols at all.
    let none = join_req("", "b", &[]);
    assert_eq!(
        c.join_answers(0, RequestId(5), none),
        vec![join_err(5, "", ErrorCode::INCONSISTENT_GROUP_PROTOCOL)]
    );
    // A known member switching to an unsupported protocol.
    // A sole member may switch protocols; it rebalances (and, alone, completes at once).
    let switch = join_req(&a, "a", &[("roundrobin", meta("a"))]);
    assert_eq!(
        c.join_answers(0, RequestId(6), switch),
        vec![joined_with(6, &a, 2, &a, "roundrobin", vec![jm(&a, "a")])]
    );
}

#[test]
fn join_validation_errors() {
    let mut c = coordinator(0);
    let short = JoinRequest {
        session_timeout_ms: 5_999,
        ..join("", "a")
    };
    assert_eq!(
        c.join_answers(0, RequestId(1), short),
        vec![join_err(1, "", ErrorCode::INVALID_SESSION_TIMEOUT)]
    );
    let no_group = JoinRequest {
        group_id: String::new(),
        ..join("", "a")
    };
    assert_eq!(
        c.join_answers(0, RequestId(2), no_group),
        vec![join_err(2, "", ErrorCode::INVALID_GROUP_ID)]
    );
    assert_eq!(
        c.join_answers(0, RequestId(3), join("ghost", "a")),
        vec![join_err(3, "ghost", ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    assert_eq!(
        c.heartbeat(0, "", 0, "x", None),
        ErrorCode::INVALID_GROUP_ID
    );
    assert_eq!(
        c.heartbeat(0, "nope", 0, "x", None),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn group_max_size_is_enforced() {
    let mut c = Coordinator::new(CoordinatorConfig {
        initial_rebalance_delay_ms: 0,
        max_group_size: 1,
        ..CoordinatorConfig::default()
    });
    let a = mid("a", 1);
    assert_eq!(c.join_answers(0, RequestId(1), join("", "a")).len(), 1);
    assert_eq!(c.join_answers(0, RequestId(2), join(&a, "a")).len(), 1);
    assert_eq!(
        c.join_answers(0, RequestId(3), join("", "b")),
        vec![join_err(3, "", ErrorCode::GROUP_MAX_SIZE_REACHED)]
    );
}

#[test]
fn duplicate_join_answers_the_superseded_request() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(
        c.join_answers(300, RequestId(2), join(a, "a")),
        vec![join_err(1, a, ErrorCode::REBALANCE_IN_PROGRESS)]
    );
    assert_eq!(c.join_answers(300, RequestId(3), join(b, "b")).len(), 2);
}

#[test]
fn list_and_describe_groups() {
    let mut c = coordinator(100);
    stable_group(&mut c, &["a", "b"]);
    c.commit_offsets(
        0,
        CommitRequest {
            group_id: "simple".to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: vec![(tp("t", 0), offset(1, None, 0))],
        },
    );
    let listing = |id: &str, protocol_type: &str, state| GroupListing {
        group_id: id.to_owned(),
        protocol_type: protocol_type.to_owned(),
        state,
        group_type: GroupType::Classic,
    };
    assert_eq!(
        c.list_groups(&[]),
        vec![
            listing(GROUP, "consumer", GroupState::Stable),
            listing("simple", "", GroupState::Empty),
        ]
    );
    let empty: GroupState = "empty".parse().unwrap();
    assert_eq!(
        c.list_groups(&[empty]),
        vec![listing("simple", "", GroupState::Empty)]
    );
    assert_eq!(
        "Rebalancing".parse::<GroupState>(),
        Err(UnknownGroupState {
            name: "Rebalancing".to_owned()
        })
    );
    assert_eq!(
        c.describe_group("nope"),
        GroupDescription {
            error: ErrorCode::NONE,
            group_id: "nope".to_owned(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: vec![],
        }
    );
}
