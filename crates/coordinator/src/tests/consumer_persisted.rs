//! A consumer-protocol (KIP-848) group is persisted whenever what it decides with changes,
//! and a new coordinator (a restart, or a failover in a cluster) replaying the record
//! resumes it: members keep their epochs and their partitions.

use super::consumer::{describe, epochs, hb, join, ok, owning, topics, two_stable, ALL, HIGH, LOW};
use super::{coordinator, GROUP};
use crate::*;

const SESSION: u64 = 45_000;

/// The group record among a call's outputs: `None` if there is none, `Some(None)` for a
/// tombstone. At most one per call.
fn record(out: &[Output]) -> Option<Option<ConsumerGroupSnapshot>> {
    let mut records: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::PersistConsumerGroup { group, snapshot } => {
                assert_eq!(group, GROUP);
                Some(snapshot.clone())
            }
            _ => None,
        })
        .collect();
    assert!(records.len() <= 1, "one record at most: {out:?}");
    records.pop()
}

/// The snapshot a call persisted (it must have persisted one, not a tombstone).
fn snapshot(out: &[Output]) -> ConsumerGroupSnapshot {
    record(out)
        .expect("a record")
        .expect("a snapshot, not a tombstone")
}

/// [`two_stable`], then the record the log would hold: the coordinator's latest.
fn two_stable_persisted() -> (Coordinator, ConsumerGroupSnapshot) {
    let mut c = coordinator(0);
    two_stable(&mut c);
    let mut all = c.consumer_group_snapshots();
    assert_eq!(all.len(), 1);
    (c, all.remove(0).1)
}

fn loaded(at: u64, s: ConsumerGroupSnapshot) -> Coordinator {
    let mut c = coordinator(0);
    c.load_consumer_group(at, GROUP, Some(s));
    c
}

#[test]
fn each_change_is_persisted_and_a_steady_heartbeat_writes_nothing() {
    let mut c = coordinator(0);
    let (r, out) = c.consumer_heartbeat(0, join("m1", &["orders"]), &topics);
    assert_eq!(r, ok("m1", 1, Some(&[("orders", ALL)])));
    let s = snapshot(&out);
    assert_eq!((s.group_epoch, s.assignment_epoch), (1, 1));
    assert_eq!(s.assignor, "uniform");
    assert_eq!(s.partition_counts, vec![("orders".to_owned(), 6)]);
    let m = &s.members[0];
    assert_eq!((m.member_id.as_str(), m.member_epoch), ("m1", 1));
    assert_eq!(m.state, ConsumerMemberState::Stable);
    assert_eq!(m.subscribed_topics, vec!["orders".to_owned()]);
    assert_eq!(m.rebalance_timeout_ms, 30_000);
    assert_eq!(m.assigned, vec![("orders".to_owned(), ALL.to_vec())]);
    assert_eq!(m.target, m.assigned);
    assert!(m.pending_revocation.is_empty());

    // Steady heartbeats, bare or full, change nothing persisted: no record.
    let (r, out) = c.consumer_heartbeat(5_000, hb("m1", 1), &topics);
    assert_eq!(r, ok("m1", 1, None));
    assert_eq!(out, vec![]);
    let (_, out) = c.consumer_heartbeat(10_000, owning("m1", 1, &[("orders", ALL)]), &topics);
    assert_eq!(out, vec![]);
    assert_eq!(c.tick(20_000), vec![]);

    // A second member: a new epoch, a new record naming both.
    let (_, out) = c.consumer_heartbeat(11_000, join("m2", &["orders"]), &topics);
    let s = snapshot(&out);
    assert_eq!(s.group_epoch, 2);
    let ids: Vec<_> = s.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec!["m1", "m2"]);
}

#[test]
fn a_new_coordinator_resumes_members_with_their_epochs_and_partitions() {
    let (old, s) = two_stable_persisted();
    let c = &mut loaded(100_000, s.clone());
    assert_eq!(epochs(c), (GroupState::Stable, 2, 2));
    assert_eq!(describe(c), describe(&old));

    // Each member's next heartbeat with its epoch is accepted; nothing is revoked, and
    // resuming writes nothing (the record is what the log holds).
    let (r, out) = c.consumer_heartbeat(100_100, hb("m1", 2), &topics);
    assert_eq!(r, ok("m1", 2, None));
    assert_eq!(out, vec![]);
    // A full heartbeat (as a client sends after finding a new coordinator) gets the same
    // assignment back.
    let full = ConsumerHeartbeat {
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["orders".to_owned()]),
        ..owning("m2", 2, &[("orders", HIGH)])
    };
    let (r, out) = c.consumer_heartbeat(100_200, full, &topics);
    assert_eq!(r, ok("m2", 2, Some(&[("orders", HIGH)])));
    assert_eq!(out, vec![]);
    assert_eq!(epochs(c), (GroupState::Stable, 2, 2));

    // Commits carry the member epoch and are accepted.
    let commit = CommitRequest {
        group_id: GROUP.to_owned(),
        generation_id: 2,
        member_id: "m1".to_owned(),
        group_instance_id: None,
        offsets: vec![(super::tp("orders", 0), super::offset(7, None, 0))],
    };
    let (codes, _) = c.commit_offsets(100_300, commit);
    assert_eq!(codes, vec![(super::tp("orders", 0), ErrorCode::NONE)]);
}

#[test]
fn sessions_restart_at_load() {
    let (_, s) = two_stable_persisted();
    let c = &mut loaded(100_000, s);
    // Not the old deadlines (500 + 45 s): the load's.
    assert_eq!(c.next_deadline(), Some(100_000 + SESSION));
    assert_eq!(c.tick(100_000 + SESSION - 1), vec![]);
    let (_, out) = c.consumer_heartbeat(100_000 + SESSION - 1, hb("m1", 2), &topics);
    assert_eq!(out, vec![]);
    // m2 never came back: it is removed, and that is persisted.
    let out = c.tick(100_000 + SESSION);
    let s = snapshot(&out);
    assert_eq!(s.group_epoch, 3);
    assert_eq!(s.members.len(), 1);
    let (r, _) = c.consumer_heartbeat(100_000 + SESSION, hb("m2", 2), &topics);
    assert_eq!(r.error, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_member_removed_before_the_record_is_unknown_after() {
    let (mut old, _) = two_stable_persisted();
    let (r, out) = old.consumer_heartbeat(1_000, hb("m2", -1), &topics);
    assert_eq!(r.error, ErrorCode::NONE);
    let s = snapshot(&out);
    assert_eq!(s.group_epoch, 3);

    let c = &mut loaded(50_000, s);
    let (r, _) = c.consumer_heartbeat(50_100, owning("m2", 2, &[("orders", HIGH)]), &topics);
    assert_eq!(r.error, ErrorCode::UNKNOWN_MEMBER_ID);
    // m1 carries on and takes everything at the new epoch.
    let (r, out) = c.consumer_heartbeat(50_200, owning("m1", 2, &[("orders", LOW)]), &topics);
    assert_eq!(r, ok("m1", 3, Some(&[("orders", ALL)])));
    assert_eq!(snapshot(&out).members[0].member_epoch, 3);
}

#[test]
fn a_member_revoking_at_the_record_finishes_revoking_after_load() {
    let mut old = coordinator(0);
    old.consumer_heartbeat(0, join("m1", &["orders"]), &topics);
    old.consumer_heartbeat(100, join("m2", &["orders"]), &topics);
    let (r, out) = old.consumer_heartbeat(200, owning("m1", 1, &[("orders", ALL)]), &topics);
    assert_eq!(r, ok("m1", 1, Some(&[("orders", LOW)])));
    let s = snapshot(&out);
    let m1 = &s.members[0];
    assert_eq!(m1.state, ConsumerMemberState::UnrevokedPartitions);
    assert_eq!(
        m1.pending_revocation,
        vec![("orders".to_owned(), HIGH.to_vec())]
    );

    let c = &mut loaded(10_000, s);
    // Its rebalance timeout restarts at the load.
    assert_eq!(c.next_deadline(), Some(10_000 + 30_000));
    let (r, _) = c.consumer_heartbeat(10_100, owning("m2", 2, &[]), &topics);
    assert_eq!(r, ok("m2", 2, None), "still withheld");
    let (r, out) = c.consumer_heartbeat(10_200, owning("m1", 1, &[("orders", LOW)]), &topics);
    assert_eq!(r, ok("m1", 2, None));
    assert!(record(&out).is_some());
    let (r, _) = c.consumer_heartbeat(10_300, owning("m2", 2, &[]), &topics);
    assert_eq!(r, ok("m2", 2, Some(&[("orders", HIGH)])));
    assert_eq!(epochs(c), (GroupState::Stable, 2, 2));
}

#[test]
fn the_last_member_leaving_writes_a_tombstone() {
    let mut c = coordinator(0);
    let (_, out) = c.consumer_heartbeat(0, join("m1", &["orders"]), &topics);
    let s = snapshot(&out);
    let (_, out) = c.consumer_heartbeat(1_000, hb("m1", -1), &topics);
    assert_eq!(record(&out), Some(None));
    // Expiry too.
    c.consumer_heartbeat(2_000, join("m2", &["orders"]), &topics);
    assert_eq!(record(&c.tick(2_000 + SESSION)), Some(None));

    // Replay: the snapshot, then the tombstone: the group is gone.
    let mut replayed = loaded(5_000, s);
    replayed.load_consumer_group(5_000, GROUP, None);
    assert_eq!(describe(&replayed).error, ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(replayed.list_groups(&[]), vec![]);
}

#[test]
fn a_classic_group_taking_over_the_id_replays_as_classic() {
    let mut c = coordinator(0);
    let (_, out) = c.consumer_heartbeat(0, join("m1", &["orders"]), &topics);
    let s = snapshot(&out);
    c.consumer_heartbeat(1_000, hb("m1", -1), &topics);
    let classic = GroupSnapshot {
        generation: 1,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        leader: Some("a".to_owned()),
        members: vec![MemberSnapshot {
            member_id: "a".to_owned(),
            instance_id: None,
            client_id: "a".to_owned(),
            client_host: "/h".to_owned(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            subscription: super::meta("a"),
            assignment: bytes::Bytes::from_static(b"A"),
        }],
    };
    // The log: consumer snapshot, consumer tombstone, classic membership.
    let mut replayed = loaded(5_000, s);
    replayed.load_consumer_group(5_000, GROUP, None);
    replayed.load_group(5_000, GROUP, Some(classic));
    assert_eq!(replayed.group_type(GROUP), Some(GroupType::Classic));
    assert_eq!(replayed.describe_group(GROUP).state, GroupState::Stable);
    assert_eq!(
        replayed.heartbeat(5_100, GROUP, 1, "a", None),
        ErrorCode::NONE
    );
    let (r, _) = replayed.consumer_heartbeat(5_200, join("m9", &["orders"]), &topics);
    assert_eq!(r.error, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
}
