use super::*;
use crate::*;

const RETENTION: u64 = 7 * 24 * 3_600_000;

fn commit(
    generation: i32,
    member_id: &str,
    offsets: Vec<(TopicPartition, CommittedOffset)>,
) -> CommitRequest {
    CommitRequest {
        group_id: GROUP.to_owned(),
        generation_id: generation,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        offsets,
    }
}

#[test]
fn simple_commit_creates_an_empty_group() {
    let mut c = coordinator(100);
    let big = "x".repeat(4097);
    let (errors, out) = c.commit_offsets(
        1_000,
        commit(
            -1,
            "",
            vec![
                (tp("t", 0), offset(42, Some("m"), 7)),
                (tp("t", 1), offset(43, Some(&big), 7)),
            ],
        ),
    );
    assert_eq!(
        errors,
        vec![
            (tp("t", 0), ErrorCode::NONE),
            (tp("t", 1), ErrorCode::OFFSET_METADATA_TOO_LARGE),
        ]
    );
    // The commit time is the coordinator's, not the client's.
    assert_eq!(
        out,
        vec![Output::PersistOffsets {
            group: GROUP.to_owned(),
            offsets: vec![(tp("t", 0), offset(42, Some("m"), 1_000))],
        }]
    );
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(
        c.fetch_offsets(GROUP, Some(vec![tp("t", 0), tp("t", 1)])),
        vec![
            (tp("t", 0), Some(offset(42, Some("m"), 1_000))),
            (tp("t", 1), None)
        ]
    );
    assert_eq!(
        c.fetch_offsets(GROUP, None),
        vec![(tp("t", 0), Some(offset(42, Some("m"), 1_000)))]
    );
    assert_eq!(c.fetch_offsets("other", None), vec![]);
}

#[test]
fn commit_with_a_generation_to_an_unknown_group_is_refused() {
    let mut c = coordinator(100);
    let (errors, out) = c.commit_offsets(0, commit(5, "m", vec![(tp("t", 0), offset(1, None, 0))]));
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::ILLEGAL_GENERATION)]);
    assert_eq!(out, vec![]);
    assert_eq!(state(&c), GroupState::Dead);
}

#[test]
fn commit_from_unknown_member_or_outsider_is_refused() {
    let mut c = coordinator(100);
    stable_group(&mut c, &["a", "b"]);
    let (errors, out) = c.commit_offsets(
        300,
        commit(1, "ghost", vec![(tp("t", 0), offset(1, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::UNKNOWN_MEMBER_ID)]);
    assert_eq!(out, vec![]);
    // A simple commit into a group with members.
    let (errors, _) = c.commit_offsets(300, commit(-1, "", vec![(tp("t", 0), offset(1, None, 0))]));
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::UNKNOWN_MEMBER_ID)]);
}

#[test]
fn member_commit_is_persisted_and_counts_as_activity() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    assert_eq!(c.heartbeat(5_000, GROUP, 1, &ids[1], None), ErrorCode::NONE);
    assert_eq!(c.next_deadline(), Some(10_200));
    let (errors, out) = c.commit_offsets(
        6_000,
        commit(1, &ids[0], vec![(tp("orders", 3), offset(9, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("orders", 3), ErrorCode::NONE)]);
    assert_eq!(
        out,
        vec![Output::PersistOffsets {
            group: GROUP.to_owned(),
            offsets: vec![(tp("orders", 3), offset(9, None, 6_000))],
        }]
    );
    assert_eq!(c.next_deadline(), Some(15_000));
}

#[test]
fn commit_during_completing_rebalance_is_refused() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(c.join_answers(300, RequestId(1), join(a, "a")), vec![]);
    assert_eq!(c.join_answers(300, RequestId(2), join(b, "b")).len(), 2);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    let (errors, out) = c.commit_offsets(
        400,
        commit(2, b, vec![(tp("orders", 0), offset(1, None, 0))]),
    );
    assert_eq!(
        errors,
        vec![(tp("orders", 0), ErrorCode::REBALANCE_IN_PROGRESS)]
    );
    assert_eq!(out, vec![]);
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    c.commit_offsets(
        1_000,
        commit(1, &ids[0], vec![(tp("orders", 0), offset(1, None, 0))]),
    );
    for id in &ids {
        let leaving = LeaveMember {
            member_id: id.clone(),
            group_instance_id: None,
        };
        c.leave_answers(2_000, GROUP, vec![leaving]);
    }
    assert_eq!(state(&c), GroupState::Empty);
    // Retention counts from when the group became empty.
    assert_eq!(c.next_deadline(), Some(2_000 + RETENTION));
    assert_eq!(c.tick_answers(2_000 + RETENTION - 1), vec![]);
    assert_eq!(
        c.tick_answers(2_000 + RETENTION),
        vec![Output::DeleteOffsets {
            group: GROUP.to_owned(),
            partitions: vec![tp("orders", 0)],
        }]
    );
    // Nothing left: the group is forgotten.
    assert_eq!(state(&c), GroupState::Dead);
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn offsets_of_a_simple_group_expire_per_commit() {
    let mut c = coordinator(100);
    c.commit_offsets(0, commit(-1, "", vec![(tp("t", 0), offset(1, None, 0))]));
    c.commit_offsets(
        5_000,
        commit(-1, "", vec![(tp("t", 1), offset(2, None, 0))]),
    );
    assert_eq!(c.next_deadline(), Some(RETENTION));
    assert_eq!(
        c.tick_answers(RETENTION),
        vec![Output::DeleteOffsets {
            group: GROUP.to_owned(),
            partitions: vec![tp("t", 0)],
        }]
    );
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(
        c.tick_answers(5_000 + RETENTION),
        vec![Output::DeleteOffsets {
            group: GROUP.to_owned(),
            partitions: vec![tp("t", 1)],
        }]
    );
    assert_eq!(state(&c), GroupState::Dead);
}

#[test]
fn stable_consumer_group_loses_offsets_of_unsubscribed_topics_only() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    // Subscribed: orders, a, b.
    c.commit_offsets(
        300,
        commit(
            1,
            &ids[0],
            vec![
                (tp("orders", 0), offset(1, None, 0)),
                (tp("legacy", 0), offset(2, None, 0)),
            ],
        ),
    );
    // Keep the members alive past retention.
    let mut now = 300;
    while now < 300 + RETENTION {
        now += 9_000;
        assert_eq!(c.heartbeat(now, GROUP, 1, &ids[0], None), ErrorCode::NONE);
        assert_eq!(c.heartbeat(now, GROUP, 1, &ids[1], None), ErrorCode::NONE);
        assert_eq!(c.tick_answers(now.min(300 + RETENTION - 1)), vec![]);
    }
    assert_eq!(
        c.tick_answers(now),
        vec![Output::DeleteOffsets {
            group: GROUP.to_owned(),
            partitions: vec![tp("legacy", 0)],
        }]
    );
    assert_eq!(
        c.fetch_offsets(GROUP, None),
        vec![(tp("orders", 0), Some(offset(1, None, 300)))]
    );
}

#[test]
fn delete_groups() {
    let mut c = coordinator(100);
    stable_group(&mut c, &["a", "b"]);
    let simple = CommitRequest {
        group_id: "simple".to_owned(),
        ..commit(
            -1,
            "",
            vec![
                (tp("t", 0), offset(1, None, 0)),
                (tp("t", 1), offset(1, None, 0)),
            ],
        )
    };
    c.commit_offsets(0, simple);
    let (errors, out) = c.delete_groups(vec![
        GROUP.to_owned(),
        "nope".to_owned(),
        "simple".to_owned(),
    ]);
    assert_eq!(
        errors,
        vec![
            (GROUP.to_owned(), ErrorCode::NON_EMPTY_GROUP),
            ("nope".to_owned(), ErrorCode::GROUP_ID_NOT_FOUND),
            ("simple".to_owned(), ErrorCode::NONE),
        ]
    );
    assert_eq!(
        out,
        vec![Output::DeleteOffsets {
            group: "simple".to_owned(),
            partitions: vec![tp("t", 0), tp("t", 1)],
        }]
    );
    assert_eq!(c.describe_group("simple").state, GroupState::Dead);
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn delete_offsets_refuses_topics_a_live_group_subscribes_to() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    c.commit_offsets(
        300,
        commit(
            1,
            &ids[0],
            vec![
                (tp("orders", 0), offset(1, None, 0)),
                (tp("legacy", 0), offset(2, None, 0)),
            ],
        ),
    );
    let (response, out) = c.delete_offsets(
        GROUP,
        vec![tp("orders", 0), tp("legacy", 0), tp("legacy", 1)],
    );
    assert_eq!(
        response,
        DeleteOffsetsResponse {
            error: ErrorCode::NONE,
            partitions: vec![
                (tp("orders", 0), ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC),
                (tp("legacy", 0), ErrorCode::NONE),
                (tp("legacy", 1), ErrorCode::NONE),
            ],
        }
    );
    assert_eq!(
        out,
        vec![Output::DeleteOffsets {
            group: GROUP.to_owned(),
            partitions: vec![tp("legacy", 0)],
        }]
    );
    let (response, out) = c.delete_offsets("nope", vec![tp("t", 0)]);
    assert_eq!(response.error, ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(out, vec![]);
}

#[test]
fn delete_offsets_treats_undecodable_subscriptions_as_subscribed() {
    let mut c = coordinator(0);
    let a = mid("a", 1);
    let garbage = join_req(&a, "a", &[("range", Bytes::from_static(b"\x01"))]);
    c.join_answers(0, RequestId(1), join("", "a"));
    assert_eq!(c.join_answers(0, RequestId(2), garbage).len(), 1);
    c.sync_answers(0, RequestId(3), sync_req(1, &a, &[]));
    let (response, out) = c.delete_offsets(GROUP, vec![tp("anything", 0)]);
    assert_eq!(
        response.partitions,
        vec![(tp("anything", 0), ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC)]
    );
    assert_eq!(out, vec![]);
}

#[test]
fn delete_offsets_of_a_non_consumer_group_with_members_is_refused() {
    let mut c = coordinator(0);
    let a = mid("a", 1);
    let connect = |member: &str| JoinRequest {
        protocol_type: "connect".to_owned(),
        ..join(member, "a")
    };
    c.join_answers(0, RequestId(1), connect(""));
    c.join_answers(0, RequestId(2), connect(&a));
    let (response, out) = c.delete_offsets(GROUP, vec![tp("t", 0)]);
    assert_eq!(
        response,
        DeleteOffsetsResponse {
            error: ErrorCode::NON_EMPTY_GROUP,
            partitions: vec![],
        }
    );
    assert_eq!(out, vec![]);
}

#[test]
fn delete_offsets_of_an_empty_group_forgets_it_when_nothing_is_left() {
    let mut c = coordinator(100);
    c.commit_offsets(0, commit(-1, "", vec![(tp("t", 0), offset(1, None, 0))]));
    let (response, out) = c.delete_offsets(GROUP, vec![tp("t", 0)]);
    assert_eq!(response.partitions, vec![(tp("t", 0), ErrorCode::NONE)]);
    assert_eq!(
        out,
        vec![Output::DeleteOffsets {
            group: GROUP.to_owned(),
            partitions: vec![tp("t", 0)],
        }]
    );
    assert_eq!(state(&c), GroupState::Dead);
}

#[test]
fn load_offsets_replays_the_log() {
    let mut c = coordinator(100);
    c.load_offsets(0, GROUP, tp("t", 0), Some(offset(1, None, 10)));
    c.load_offsets(0, GROUP, tp("t", 1), Some(offset(2, None, 20)));
    c.load_offsets(0, GROUP, tp("t", 0), Some(offset(3, None, 30)));
    c.load_offsets(0, GROUP, tp("t", 1), None);
    c.load_offsets(0, "gone", tp("t", 1), None);
    assert_eq!(
        c.fetch_offsets(GROUP, None),
        vec![(tp("t", 0), Some(offset(3, None, 30)))]
    );
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(c.describe_group("gone").state, GroupState::Dead);
    // Replayed offsets keep their commit time for retention.
    assert_eq!(c.next_deadline(), Some(30 + RETENTION));
    // A deleted group (all its offsets tombstoned) does not come back from replay.
    c.load_offsets(0, "deleted", tp("t", 0), Some(offset(5, None, 10)));
    c.load_offsets(0, "deleted", tp("t", 0), None);
    assert_eq!(c.describe_group("deleted").state, GroupState::Dead);
    assert!(c.list_groups(&[]).iter().all(|g| g.group_id != "deleted"));
}

#[test]
fn topic_deletion_drops_its_offsets_everywhere() {
    let mut c = coordinator(100);
    c.load_offsets(0, "g1", tp("t", 0), Some(offset(1, None, 0)));
    c.load_offsets(0, "g1", tp("u", 0), Some(offset(1, None, 0)));
    c.load_offsets(0, "g2", tp("t", 0), Some(offset(1, None, 0)));
    assert_eq!(
        c.topic_deleted("t"),
        vec![
            Output::DeleteOffsets {
                group: "g1".to_owned(),
                partitions: vec![tp("t", 0)],
            },
            Output::DeleteOffsets {
                group: "g2".to_owned(),
                partitions: vec![tp("t", 0)],
            },
        ]
    );
    assert_eq!(c.describe_group("g1").state, GroupState::Empty);
    assert_eq!(c.describe_group("g2").state, GroupState::Dead);
}

// ---- transactional commits (TxnOffsetCommit) ----

fn txn_commit(
    producer_id: i64,
    generation: i32,
    member_id: &str,
    offsets: Vec<(TopicPartition, CommittedOffset)>,
) -> TxnCommitRequest {
    TxnCommitRequest {
        group_id: GROUP.to_owned(),
        producer_id,
        producer_epoch: 2,
        generation_id: generation,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        offsets,
    }
}

#[test]
fn txn_commit_stays_pending_until_the_commit_marker() {
    let mut c = coordinator(100);
    let (errors, out) = c.txn_commit_offsets(
        1_000,
        txn_commit(7, -1, "", vec![(tp("t", 0), offset(10, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::NONE)]);
    assert_eq!(
        out,
        vec![Output::PersistTxnOffsets {
            group: GROUP.to_owned(),
            producer_id: 7,
            producer_epoch: 2,
            offsets: vec![(tp("t", 0), offset(10, None, 1_000))],
        }]
    );
    // Not visible, but unstable.
    assert_eq!(
        c.fetch_offsets(GROUP, Some(vec![tp("t", 0)])),
        vec![(tp("t", 0), None)]
    );
    assert_eq!(
        c.unstable_partitions(GROUP),
        [tp("t", 0)].into_iter().collect()
    );
    // A second commit in the same transaction replaces the partition's pending offset.
    let (_, _) = c.txn_commit_offsets(
        1_100,
        txn_commit(7, -1, "", vec![(tp("t", 0), offset(20, None, 0))]),
    );

    let out = c.settle_txn_offsets(2_000, GROUP, 7, true);
    assert_eq!(
        out,
        vec![
            Output::PersistOffsets {
                group: GROUP.to_owned(),
                offsets: vec![(tp("t", 0), offset(20, None, 2_000))],
            },
            Output::TxnOffsetsSettled {
                group: GROUP.to_owned(),
                producer_id: 7,
            },
        ]
    );
    assert_eq!(
        c.fetch_offsets(GROUP, Some(vec![tp("t", 0)])),
        vec![(tp("t", 0), Some(offset(20, None, 2_000)))]
    );
    assert!(c.unstable_partitions(GROUP).is_empty());
    // Settling again (a marker re-sent after a crash) does nothing.
    assert_eq!(c.settle_txn_offsets(2_100, GROUP, 7, true), vec![]);
}

#[test]
fn txn_commit_is_dropped_by_the_abort_marker() {
    let mut c = coordinator(100);
    c.commit_offsets(500, commit(-1, "", vec![(tp("t", 0), offset(5, None, 0))]));
    c.txn_commit_offsets(
        1_000,
        txn_commit(7, -1, "", vec![(tp("t", 0), offset(10, None, 0))]),
    );
    // Another producer's pending commit is independent.
    c.txn_commit_offsets(
        1_000,
        txn_commit(8, -1, "", vec![(tp("t", 1), offset(11, None, 0))]),
    );
    let out = c.settle_txn_offsets(2_000, GROUP, 7, false);
    assert_eq!(
        out,
        vec![Output::TxnOffsetsSettled {
            group: GROUP.to_owned(),
            producer_id: 7,
        }]
    );
    assert_eq!(
        c.fetch_offsets(GROUP, Some(vec![tp("t", 0)])),
        vec![(tp("t", 0), Some(offset(5, None, 500)))]
    );
    assert_eq!(
        c.unstable_partitions(GROUP),
        [tp("t", 1)].into_iter().collect()
    );
}

#[test]
fn txn_commit_checks_the_member_and_generation() {
    let mut c = coordinator(100);
    let ids = stable_group(&mut c, &["a", "b"]);
    let (errors, out) = c.txn_commit_offsets(
        300,
        txn_commit(7, 0, &ids[0], vec![(tp("t", 0), offset(1, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::ILLEGAL_GENERATION)]);
    assert!(out.is_empty());
    let (errors, _) = c.txn_commit_offsets(
        300,
        txn_commit(7, 1, "stranger", vec![(tp("t", 0), offset(1, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::UNKNOWN_MEMBER_ID)]);
    let (errors, out) = c.txn_commit_offsets(
        300,
        txn_commit(7, 1, &ids[0], vec![(tp("t", 0), offset(1, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("t", 0), ErrorCode::NONE)]);
    assert_eq!(out.len(), 1);
    // A pre-KIP-447 producer sends no member information: accepted even with members.
    let (errors, _) = c.txn_commit_offsets(
        300,
        txn_commit(8, -1, "", vec![(tp("t", 1), offset(1, None, 0))]),
    );
    assert_eq!(errors, vec![(tp("t", 1), ErrorCode::NONE)]);
}

#[test]
fn pending_txn_commits_replay_and_keep_the_group_alive() {
    let mut c = coordinator(100);
    c.load_txn_offsets(0, GROUP, 7, vec![(tp("t", 0), offset(10, None, 1))]);
    c.load_txn_offsets(0, GROUP, 7, vec![(tp("t", 1), offset(11, None, 1))]);
    c.load_txn_offsets(0, GROUP, 9, vec![(tp("t", 2), offset(12, None, 1))]);
    c.load_txn_settled(GROUP, 9);
    assert_eq!(
        c.pending_txn_offsets(),
        vec![(
            GROUP.to_owned(),
            7,
            vec![
                (tp("t", 0), offset(10, None, 1)),
                (tp("t", 1), offset(11, None, 1))
            ]
        )]
    );
    // The group is not forgotten while a commit is pending, however long it waits.
    assert!(c.tick_answers(RETENTION * 3).is_empty());
    assert_eq!(c.unstable_partitions(GROUP).len(), 2);
    c.load_txn_settled(GROUP, 7);
    assert!(c.pending_txn_offsets().is_empty());
    assert!(c.list_groups(&[]).is_empty());
}
