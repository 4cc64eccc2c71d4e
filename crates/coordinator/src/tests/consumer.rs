//! The consumer group protocol (KIP-848): ConsumerGroupHeartbeat, server-side assignment,
//! reconciliation, timers, commits with member epochs, and ConsumerGroupDescribe.

use std::cell::Cell;

use super::{coordinator, tp, GROUP};
use crate::*;

pub(super) const ORDERS: i32 = 6;

/// "orders" has 6 partitions, "events" 2; nothing else exists.
pub(super) fn topics(name: &str) -> Option<i32> {
    match name {
        "orders" => Some(ORDERS),
        "events" => Some(2),
        _ => None,
    }
}

pub(super) fn hb(member: &str, epoch: i32) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: GROUP.to_owned(),
        member_id: member.to_owned(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        subscribed_topic_regex: None,
        server_assignor: None,
        topic_partitions: None,
        client_id: format!("client-{member}"),
        client_host: "/10.0.0.1".to_owned(),
    }
}

/// A first heartbeat: epoch 0, 30 s rebalance timeout, the given subscription.
pub(super) fn join(member: &str, subscription: &[&str]) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(subscription.iter().map(|t| (*t).to_owned()).collect()),
        topic_partitions: Some(Vec::new()),
        ..hb(member, 0)
    }
}

/// A heartbeat reporting the partitions the member owns.
pub(super) fn owning(member: &str, epoch: i32, owned: &[(&str, &[i32])]) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        topic_partitions: Some(tps(owned)),
        ..hb(member, epoch)
    }
}

pub(super) fn tps(entries: &[(&str, &[i32])]) -> TopicPartitions {
    entries
        .iter()
        .map(|(t, ps)| ((*t).to_owned(), ps.to_vec()))
        .collect()
}

impl Coordinator {
    /// A heartbeat's answer (`consumer_persisted` checks its outputs).
    fn answer(
        &mut self,
        now_ms: u64,
        req: ConsumerHeartbeat,
        topics: &dyn Fn(&str) -> Option<i32>,
    ) -> ConsumerHeartbeatResponse {
        self.consumer_heartbeat(now_ms, req, topics).0
    }
}

pub(super) fn ok(
    member: &str,
    epoch: i32,
    assignment: Option<&[(&str, &[i32])]>,
) -> ConsumerHeartbeatResponse {
    ConsumerHeartbeatResponse {
        error: ErrorCode::NONE,
        error_message: None,
        member_id: member.to_owned(),
        member_epoch: epoch,
        heartbeat_interval_ms: 5_000,
        assignment: assignment.map(tps),
    }
}

pub(super) fn left(member: &str, epoch: i32) -> ConsumerHeartbeatResponse {
    ConsumerHeartbeatResponse {
        heartbeat_interval_ms: 0,
        ..ok(member, epoch, None)
    }
}

pub(super) fn describe(c: &Coordinator) -> ConsumerGroupDescription {
    c.consumer_group_describe(&[GROUP.to_owned()]).remove(0)
}

pub(super) fn epochs(c: &Coordinator) -> (GroupState, i32, i32) {
    let d = describe(c);
    (d.state, d.group_epoch, d.assignment_epoch)
}

pub(super) const ALL: &[i32] = &[0, 1, 2, 3, 4, 5];
pub(super) const LOW: &[i32] = &[0, 1, 2];
pub(super) const HIGH: &[i32] = &[3, 4, 5];

/// m1 joins at 0 and gets everything; m2 joins at 100; m1 revokes 3-5 (200, 400); m2
/// receives them at 500. Both Stable at group epoch 2.
pub(super) fn two_stable(c: &mut Coordinator) {
    let r = c.answer(0, join("m1", &["orders"]), &topics);
    assert_eq!(r, ok("m1", 1, Some(&[("orders", ALL)])));
    // m2's target (3-5) is still owned by m1: it moves to epoch 2 with nothing yet.
    let r = c.answer(100, join("m2", &["orders"]), &topics);
    assert_eq!(r, ok("m2", 2, Some(&[])));
    assert_eq!(epochs(c), (GroupState::Reconciling, 2, 2));
    // m1 is told to give up 3-5 and stays at epoch 1 until it has.
    let r = c.answer(200, owning("m1", 1, &[("orders", ALL)]), &topics);
    assert_eq!(r, ok("m1", 1, Some(&[("orders", LOW)])));
    // Still withheld from m2: m1 has not confirmed.
    let r = c.answer(300, owning("m2", 2, &[]), &topics);
    assert_eq!(r, ok("m2", 2, None));
    // m1 confirms; it moves to epoch 2, its assignment unchanged.
    let r = c.answer(400, owning("m1", 1, &[("orders", LOW)]), &topics);
    assert_eq!(r, ok("m1", 2, None));
    let r = c.answer(500, owning("m2", 2, &[]), &topics);
    assert_eq!(r, ok("m2", 2, Some(&[("orders", HIGH)])));
    assert_eq!(epochs(c), (GroupState::Stable, 2, 2));
}

#[test]
fn first_member_gets_every_partition() {
    let mut c = coordinator(0);
    let r = c.answer(0, join("m1", &["orders", "events"]), &topics);
    assert_eq!(
        r,
        ok("m1", 1, Some(&[("events", &[0, 1]), ("orders", ALL)]))
    );
    assert_eq!(epochs(&c), (GroupState::Stable, 1, 1));
    // A plain heartbeat: nothing changed, no assignment.
    let r = c.answer(1_000, hb("m1", 1), &topics);
    assert_eq!(r, ok("m1", 1, None));
}

#[test]
fn member_id_is_generated_when_empty() {
    let mut c = coordinator(0);
    let r = c.answer(0, join("", &["orders"]), &topics);
    let id = "00000000-0000-0000-0000-000000000001";
    assert_eq!(r, ok(id, 1, Some(&[("orders", ALL)])));
}

#[test]
fn second_member_waits_for_revocation() {
    let mut c = coordinator(0);
    two_stable(&mut c);
    let d = describe(&c);
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.members[0].target_assignment, tps(&[("orders", LOW)]));
    assert_eq!(d.members[1].target_assignment, tps(&[("orders", HIGH)]));
}

#[test]
fn range_assignor_splits_each_topic() {
    let mut c = coordinator(0);
    let range = |member: &str| ConsumerHeartbeat {
        server_assignor: Some("range".to_owned()),
        ..join(member, &["orders", "events"])
    };
    let r = c.answer(0, range("m1"), &topics);
    assert_eq!(
        r,
        ok("m1", 1, Some(&[("events", &[0, 1]), ("orders", ALL)]))
    );
    let r = c.answer(0, range("m2"), &topics);
    assert_eq!(r, ok("m2", 2, Some(&[])));
    let d = describe(&c);
    assert_eq!(d.assignor_name, "range");
    assert_eq!(
        d.members[0].target_assignment,
        tps(&[("events", &[0]), ("orders", LOW)])
    );
    assert_eq!(
        d.members[1].target_assignment,
        tps(&[("events", &[1]), ("orders", HIGH)])
    );
    let all = [("events", &[0, 1][..]), ("orders", ALL)];
    let r = c.answer(10, owning("m1", 1, &all), &topics);
    assert_eq!(r, ok("m1", 1, Some(&[("events", &[0]), ("orders", LOW)])));
    let r = c.answer(
        20,
        owning("m1", 1, &[("events", &[0]), ("orders", LOW)]),
        &topics,
    );
    assert_eq!(r, ok("m1", 2, None));
    let r = c.answer(30, owning("m2", 2, &[]), &topics);
    assert_eq!(r, ok("m2", 2, Some(&[("events", &[1]), ("orders", HIGH)])));
    assert_eq!(epochs(&c), (GroupState::Stable, 2, 2));
}

#[test]
fn leaving_member_hands_everything_to_the_rest() {
    let mut c = coordinator(0);
    two_stable(&mut c);
    let r = c.answer(600, hb("m2", -1), &topics);
    assert_eq!(r, left("m2", -1));
    assert_eq!(epochs(&c), (GroupState::Reconciling, 3, 3));
    let r = c.answer(700, owning("m1", 2, &[("orders", LOW)]), &topics);
    assert_eq!(r, ok("m1", 3, Some(&[("orders", ALL)])));
    assert_eq!(epochs(&c), (GroupState::Stable, 3, 3));
    // Leaving again: unknown.
    let r = c.answer(800, hb("m2", -1), &topics);
    assert_eq!((r.error, r.member_epoch), (ErrorCode::UNKNOWN_MEMBER_ID, 0));
}

#[test]
fn session_expiry_removes_member() {
    let mut c = coordinator(0);
    two_stable(&mut c);
    // m1 last heartbeat at 400, m2 at 500; session 45 s.
    assert_eq!(c.next_deadline(), Some(45_400));
    let r = c.answer(40_000, owning("m2", 2, &[("orders", HIGH)]), &topics);
    assert_eq!(r, ok("m2", 2, None));
    assert_eq!(c.tick(45_399), vec![]);
    assert_eq!(describe(&c).members.len(), 2);
    let out = c.tick(45_400);
    assert!(
        matches!(&out[..], [Output::PersistConsumerGroup { snapshot: Some(s), .. }] if s.members.len() == 1),
        "the removal is persisted: {out:?}"
    );
    assert_eq!(epochs(&c), (GroupState::Reconciling, 3, 3));
    assert_eq!(c.next_deadline(), Some(85_000));
    let r = c.answer(45_500, owning("m2", 2, &[("orders", HIGH)]), &topics);
    assert_eq!(r, ok("m2", 3, Some(&[("orders", ALL)])));
    // m1 is gone.
    let r = c.answer(45_600, hb("m1", 2), &topics);
    assert_eq!(r.error, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn member_that_does_not_revoke_is_removed_after_rebalance_timeout() {
    let mut c = coordinator(0);
    c.answer(0, join("m1", &["orders"]), &topics);
    c.answer(100, join("m2", &["orders"]), &topics);
    let r = c.answer(200, owning("m1", 1, &[("orders", ALL)]), &topics);
    assert_eq!(r, ok("m1", 1, Some(&[("orders", LOW)])));
    // Rebalance timeout 30 s from 200; sessions end later.
    assert_eq!(c.next_deadline(), Some(30_200));
    // Still holding 3-5 at 20 s: no progress, the deadline stays.
    let r = c.answer(20_000, owning("m1", 1, &[("orders", ALL)]), &topics);
    assert_eq!(r, ok("m1", 1, None));
    assert_eq!(c.next_deadline(), Some(30_200));
    let out = c.tick(30_200);
    assert!(
        matches!(&out[..], [Output::PersistConsumerGroup { snapshot: Some(s), .. }] if s.group_epoch == 3),
        "the removal is persisted: {out:?}"
    );
    assert_eq!(epochs(&c), (GroupState::Reconciling, 3, 3));
    let r = c.answer(30_300, owning("m2", 2, &[]), &topics);
    assert_eq!(r, ok("m2", 3, Some(&[("orders", ALL)])));
}

#[test]
fn epochs_are_checked() {
    let mut c = coordinator(0);
    two_stable(&mut c);
    let r = c.answer(600, hb("m1", 5), &topics);
    assert_eq!(
        (r.error, r.member_epoch),
        (ErrorCode::FENCED_MEMBER_EPOCH, 0)
    );
    // The previous epoch is accepted with partitions within the assignment (the answer
    // that bumped the epoch may have been lost)...
    let r = c.answer(600, owning("m1", 1, &[("orders", LOW)]), &topics);
    assert_eq!(r, ok("m1", 2, None));
    // ...but not while claiming more, nor without saying what it owns.
    let r = c.answer(600, owning("m1", 1, &[("orders", ALL)]), &topics);
    assert_eq!(r.error, ErrorCode::FENCED_MEMBER_EPOCH);
    let r = c.answer(600, hb("m1", 1), &topics);
    assert_eq!(r.error, ErrorCode::FENCED_MEMBER_EPOCH);
    // A fenced member rejoins with epoch 0 and its id; it owns nothing now.
    let r = c.answer(700, join("m1", &["orders"]), &topics);
    assert_eq!(r, ok("m1", 2, Some(&[("orders", LOW)])));
}

#[test]
fn unknown_members_and_groups() {
    let mut c = coordinator(0);
    let r = c.answer(0, hb("m1", 3), &topics);
    assert_eq!((r.error, r.member_epoch), (ErrorCode::UNKNOWN_MEMBER_ID, 0));
    c.answer(0, join("m1", &["orders"]), &topics);
    let r = c.answer(0, hb("zz", 1), &topics);
    assert_eq!(r.error, ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(r.member_id, "");
}

#[test]
fn malformed_requests_are_refused() {
    let mut c = coordinator(0);
    let cases = [
        (
            ConsumerHeartbeat {
                subscribed_topic_names: None,
                ..join("m1", &[])
            },
            ErrorCode::INVALID_REQUEST,
        ),
        (
            ConsumerHeartbeat {
                rebalance_timeout_ms: -1,
                ..join("m1", &["orders"])
            },
            ErrorCode::INVALID_REQUEST,
        ),
        (
            ConsumerHeartbeat {
                subscribed_topic_regex: Some("o.*".to_owned()),
                ..join("m1", &[])
            },
            ErrorCode::INVALID_REQUEST,
        ),
        (
            owning("m1", 0, &[("orders", &[0])]),
            ErrorCode::INVALID_REQUEST,
        ),
        (hb("", 1), ErrorCode::INVALID_REQUEST),
        (hb("m1", -2), ErrorCode::INVALID_REQUEST),
        (hb("m1", -3), ErrorCode::INVALID_REQUEST),
        (
            ConsumerHeartbeat {
                group_id: String::new(),
                ..join("m1", &["orders"])
            },
            ErrorCode::INVALID_REQUEST,
        ),
        (
            ConsumerHeartbeat {
                server_assignor: Some("sticky".to_owned()),
                ..join("m1", &["orders"])
            },
            ErrorCode::UNSUPPORTED_ASSIGNOR,
        ),
    ];
    for (req, error) in cases {
        let r = c.answer(0, req.clone(), &topics);
        assert_eq!(r.error, error, "{req:?}");
    }
    assert_eq!(c.list_groups(&[]), vec![]);
}

#[test]
fn subscription_and_partition_changes_start_a_new_epoch() {
    let mut c = coordinator(0);
    let orders = Cell::new(ORDERS);
    let topics = |name: &str| match name {
        "orders" => Some(orders.get()),
        "events" => Some(2),
        _ => None,
    };
    c.answer(0, join("m1", &["orders"]), &topics);
    let subscribe = ConsumerHeartbeat {
        subscribed_topic_names: Some(vec!["orders".to_owned(), "events".to_owned()]),
        ..owning("m1", 1, &[("orders", ALL)])
    };
    let r = c.answer(100, subscribe, &topics);
    assert_eq!(
        r,
        ok("m1", 2, Some(&[("events", &[0, 1]), ("orders", ALL)]))
    );
    // The same subscription again changes nothing.
    let same = ConsumerHeartbeat {
        subscribed_topic_names: Some(vec!["events".to_owned(), "orders".to_owned()]),
        ..hb("m1", 2)
    };
    assert_eq!(c.answer(200, same, &topics), ok("m1", 2, None));
    orders.set(8);
    let r = c.answer(300, hb("m1", 2), &topics);
    assert_eq!(
        r,
        ok(
            "m1",
            3,
            Some(&[("events", &[0, 1]), ("orders", &[0, 1, 2, 3, 4, 5, 6, 7])])
        )
    );
    // A topic that does not exist contributes nothing until it does.
    let missing = ConsumerHeartbeat {
        subscribed_topic_names: Some(vec!["nope".to_owned()]),
        ..owning(
            "m1",
            3,
            &[("events", &[0, 1]), ("orders", &[0, 1, 2, 3, 4, 5, 6, 7])],
        )
    };
    // Everything is revoked; the member moves to epoch 4 once it has let go.
    assert_eq!(c.answer(400, missing, &topics), ok("m1", 3, Some(&[])));
    assert_eq!(epochs(&c), (GroupState::Reconciling, 4, 4));
    let r = c.answer(500, owning("m1", 3, &[]), &topics);
    assert_eq!(r, ok("m1", 4, None));
    assert_eq!(epochs(&c), (GroupState::Stable, 4, 4));
}

#[test]
fn commits_carry_the_member_epoch() {
    let mut c = coordinator(0);
    two_stable(&mut c);
    let commit = |member: &str, epoch: i32| CommitRequest {
        group_id: GROUP.to_owned(),
        generation_id: epoch,
        member_id: member.to_owned(),
        group_instance_id: None,
        offsets: vec![(tp("orders", 0), super::offset(42, None, 0))],
    };
    let (errors, out) = c.commit_offsets(1_000, commit("m1", 2));
    assert_eq!(errors, vec![(tp("orders", 0), ErrorCode::NONE)]);
    assert_eq!(
        out,
        vec![Output::PersistOffsets {
            group: GROUP.to_owned(),
            offsets: vec![(tp("orders", 0), super::offset(42, None, 1_000))],
        }]
    );
    let (errors, out) = c.commit_offsets(1_000, commit("m1", 1));
    assert_eq!(
        errors,
        vec![(tp("orders", 0), ErrorCode::STALE_MEMBER_EPOCH)]
    );
    assert_eq!(out, vec![]);
    let (errors, _) = c.commit_offsets(1_000, commit("zz", 2));
    assert_eq!(
        errors,
        vec![(tp("orders", 0), ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    let (errors, _) = c.commit_offsets(1_000, commit("", -1));
    assert_eq!(
        errors,
        vec![(tp("orders", 0), ErrorCode::UNKNOWN_MEMBER_ID)]
    );
    // Once everyone has left, simple commits are allowed.
    c.answer(1_100, hb("m1", -1), &topics);
    c.answer(1_100, hb("m2", -1), &topics);
    let (errors, _) = c.commit_offsets(1_200, commit("", -1));
    assert_eq!(errors, vec![(tp("orders", 0), ErrorCode::NONE)]);
    assert_eq!(epochs(&c), (GroupState::Empty, 4, 4));
}

#[test]
fn describe_reports_members_and_targets() {
    let mut c = coordinator(0);
    let join_static = ConsumerHeartbeat {
        instance_id: Some("i1".to_owned()),
        rack_id: Some("r1".to_owned()),
        ..join("m1", &["orders"])
    };
    c.answer(0, join_static, &topics);
    c.answer(0, join("m2", &["orders"]), &topics);
    let d = c.consumer_group_describe(&[GROUP.to_owned(), "nope".to_owned()]);
    assert_eq!(
        d[0],
        ConsumerGroupDescription {
            error: ErrorCode::NONE,
            error_message: None,
            group_id: GROUP.to_owned(),
            state: GroupState::Reconciling,
            group_epoch: 2,
            assignment_epoch: 2,
            assignor_name: "uniform".to_owned(),
            members: vec![
                ConsumerMemberDescription {
                    member_id: "m1".to_owned(),
                    instance_id: Some("i1".to_owned()),
                    rack_id: Some("r1".to_owned()),
                    member_epoch: 1,
                    client_id: "client-m1".to_owned(),
                    client_host: "/10.0.0.1".to_owned(),
                    subscribed_topic_names: vec!["orders".to_owned()],
                    assignment: tps(&[("orders", ALL)]),
                    target_assignment: tps(&[("orders", LOW)]),
                },
                ConsumerMemberDescription {
                    member_id: "m2".to_owned(),
                    instance_id: None,
                    rack_id: None,
                    member_epoch: 2,
                    client_id: "client-m2".to_owned(),
                    client_host: "/10.0.0.1".to_owned(),
                    subscribed_topic_names: vec!["orders".to_owned()],
                    assignment: vec![],
                    target_assignment: tps(&[("orders", HIGH)]),
                },
            ],
        }
    );
    assert_eq!(d[1].error, ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(d[1].state, GroupState::Dead);
}

#[test]
fn static_member_leaves_and_comes_back() {
    let mut c = coordinator(0);
    let join_static = |member: &str| ConsumerHeartbeat {
        instance_id: Some("i1".to_owned()),
        ..join(member, &["orders"])
    };
    assert_eq!(
        c.answer(0, join_static("s1"), &topics),
        ok("s1", 1, Some(&[("orders", ALL)]))
    );
    // The instance id is taken while s1 is live.
    let r = c.answer(10, join_static("s2"), &topics);
    assert_eq!(r.error, ErrorCode::UNRELEASED_INSTANCE_ID);
    let leave = ConsumerHeartbeat {
        instance_id: Some("i1".to_owned()),
        ..hb("s1", -2)
    };
    assert_eq!(c.answer(100, leave, &topics), left("s1", -2));
    // No new epoch: the partitions wait for the instance.
    assert_eq!(epochs(&c), (GroupState::Reconciling, 1, 1));
    assert_eq!(c.next_deadline(), Some(45_100));
    let r = c.answer(200, join_static("s2"), &topics);
    assert_eq!(r, ok("s2", 1, Some(&[("orders", ALL)])));
    assert_eq!(epochs(&c), (GroupState::Stable, 1, 1));
    let r = c.answer(300, hb("s1", 1), &topics);
    assert_eq!(r.error, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn static_member_that_does_not_return_expires() {
    let mut c = coordinator(0);
    let join_static = ConsumerHeartbeat {
        instance_id: Some("i1".to_owned()),
        ..join("s1", &["orders"])
    };
    c.answer(0, join_static, &topics);
    let leave = ConsumerHeartbeat {
        instance_id: Some("i1".to_owned()),
        ..hb("s1", -2)
    };
    let (_, out) = c.consumer_heartbeat(100, leave, &topics);
    // The member keeps its place, at epoch -2: that is persisted too.
    assert!(
        matches!(&out[..], [Output::PersistConsumerGroup { snapshot: Some(s), .. }] if s.members[0].member_epoch == -2),
        "{out:?}"
    );
    let tombstone = Output::PersistConsumerGroup {
        group: GROUP.to_owned(),
        snapshot: None,
    };
    assert_eq!(c.tick(45_100), vec![tombstone]);
    assert_eq!(epochs(&c), (GroupState::Empty, 2, 2));
}

#[test]
fn classic_and_consumer_groups_do_not_mix() {
    let mut c = coordinator(0);
    c.answer(0, join("m1", &["orders"]), &topics);
    let out = c.join_group(0, RequestId(1), super::join("", "a"));
    assert_eq!(
        out,
        vec![super::join_err(
            1,
            "",
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        )]
    );
    assert_eq!(
        c.list_groups(&[]),
        vec![GroupListing {
            group_id: GROUP.to_owned(),
            protocol_type: "consumer".to_owned(),
            state: GroupState::Stable,
            group_type: GroupType::Consumer,
        }]
    );
    assert_eq!(c.list_groups(&[GroupState::Reconciling]), vec![]);
    assert_eq!(c.group_type(GROUP), Some(GroupType::Consumer));
    assert_eq!(c.describe_group(GROUP).state, GroupState::Dead);
    let (results, out) = c.delete_groups(vec![GROUP.to_owned()]);
    assert_eq!(
        results,
        vec![(GROUP.to_owned(), ErrorCode::NON_EMPTY_GROUP)]
    );
    assert_eq!(out, vec![]);
    c.answer(10, hb("m1", -1), &topics);
    let (results, _) = c.delete_groups(vec![GROUP.to_owned()]);
    assert_eq!(results, vec![(GROUP.to_owned(), ErrorCode::NONE)]);

    // And the other way round: a classic group with members refuses consumer members.
    let mut c = coordinator(0);
    let req = JoinRequest {
        require_known_member_id: false,
        ..super::join("", "a")
    };
    c.join_group(0, RequestId(1), req);
    let r = c.answer(0, join("m1", &["orders"]), &topics);
    assert_eq!(r.error, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn empty_consumer_group_is_forgotten() {
    let mut c = coordinator(0);
    c.answer(0, join("m1", &["orders"]), &topics);
    c.answer(1_000, hb("m1", -1), &topics);
    // Forgotten one retention-check interval (10 min) after it emptied.
    assert_eq!(c.next_deadline(), Some(601_000));
    assert_eq!(c.tick(601_000), vec![]);
    assert_eq!(c.list_groups(&[]), vec![]);
}
