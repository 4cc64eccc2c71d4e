//! Cluster administration: controlled shutdown's end, preferred-leader balancing and
//! reassignment, asserted on the records the controller emits.

use uuid::Uuid;

use super::*;
use crate::{
    AlterPartitionItem, AlterPartitionResult, ControllerConfig, HeartbeatReply, IsrMember,
    MetadataError, PartitionChange, Reassignment, NO_LEADER,
};

/// Shorter than a session, so ticks one interval apart fence no one.
const INTERVAL: u64 = 5_000;

/// Brokers `0..n` and topic `name` with the given replicas per partition.
fn cluster(
    n: i32,
    config: ControllerConfig,
    name: &str,
    replicas: Vec<Vec<BrokerId>>,
) -> (Cluster, Uuid) {
    let mut c = Cluster::with_config(config);
    for id in 0..n {
        c.register(id, None);
        c.heartbeat(id);
    }
    let ControllerReply::CreateTopics(v) = c.request(ControllerRequest::CreateTopics {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignment: Some(replicas),
            configs: Vec::new(),
        }],
        validate_only: false,
    }) else {
        panic!()
    };
    let t = v[0].1.as_ref().unwrap().topic_id;
    (c, t)
}

fn balancing(percentage: u32) -> ControllerConfig {
    ControllerConfig {
        leader_imbalance_check_interval_ms: INTERVAL,
        leader_imbalance_per_broker_percentage: percentage,
        ..ControllerConfig::default()
    }
}

fn alter_isr(c: &mut Cluster, t: Uuid, p: i32, isr: &[BrokerId]) -> AlterPartitionResult {
    let reg = c.partition(t, p).clone();
    let item = AlterPartitionItem {
        topic_id: t,
        partition: p,
        leader_epoch: reg.leader_epoch,
        partition_epoch: reg.partition_epoch,
        new_isr: isr
            .iter()
            .map(|id| IsrMember {
                id: *id,
                broker_epoch: c.epoch(*id),
            })
            .collect(),
        leader_recovery: reg.leader_recovery,
    };
    let broker_epoch = c.epoch(reg.leader);
    match c.request(ControllerRequest::AlterPartition {
        broker_id: reg.leader,
        broker_epoch,
        partitions: vec![item],
    }) {
        ControllerReply::AlterPartition(Ok(mut v)) => v.remove(0).2.unwrap(),
        other => panic!("{other:?}"),
    }
}

/// Broker `b` fenced, then back as a new incarnation (unfenced, in no ISR).
fn bounce(c: &mut Cluster, b: BrokerId) {
    c.heartbeat_with(b, true, false);
    assert!(c.image.broker(b).unwrap().fenced);
    c.register(b, None);
    c.heartbeat(b);
    assert!(c.image.broker_usable(b));
}

fn reassign(
    c: &mut Cluster,
    topic: &str,
    p: i32,
    replicas: Option<Vec<BrokerId>>,
) -> Result<(), MetadataError> {
    match c.request(ControllerRequest::AlterPartitionReassignments {
        partitions: vec![Reassignment {
            topic: topic.into(),
            partition: p,
            replicas,
            allow_replication_factor_change: true,
        }],
    }) {
        ControllerReply::AlterPartitionReassignments(mut v) => v.remove(0).2,
        other => panic!("{other:?}"),
    }
}

#[test]
fn kip_860_refuses_a_replication_factor_change_when_asked_to() {
    let (mut c, t) = cluster(4, ControllerConfig::default(), "t", vec![vec![0, 1]]);
    let fixed = |c: &mut Cluster, replicas: Vec<BrokerId>| match c.request(
        ControllerRequest::AlterPartitionReassignments {
            partitions: vec![Reassignment {
                topic: "t".into(),
                partition: 0,
                replicas: Some(replicas),
                allow_replication_factor_change: false,
            }],
        },
    ) {
        ControllerReply::AlterPartitionReassignments(mut v) => v.remove(0).2,
        other => panic!("{other:?}"),
    };
    for bigger_or_smaller in [vec![0, 1, 2], vec![0]] {
        let e = fixed(&mut c, bigger_or_smaller).unwrap_err();
        assert_eq!(e.code(), 38, "{e}");
    }
    assert_eq!(c.partition(t, 0).replicas, vec![0, 1]);
    // Same size: allowed, and while it is in progress the factor is still the original's.
    fixed(&mut c, vec![2, 3]).unwrap();
    assert_eq!(c.partition(t, 0).adding, vec![2, 3]);
    fixed(&mut c, vec![3, 1]).unwrap();
    assert_eq!(fixed(&mut c, vec![3]).unwrap_err().code(), 38);
    // Without the flag (v0), the factor may change.
    reassign(&mut c, "t", 0, Some(vec![0, 1, 2])).unwrap();
}

fn heartbeat_reply(r: ControllerReply) -> HeartbeatReply {
    match r {
        ControllerReply::BrokerHeartbeat(Ok(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn controlled_shutdown_fences_the_broker_once_it_leads_nothing() {
    let (mut c, t) = cluster(3, ControllerConfig::default(), "t", vec![vec![0, 1, 2]]);
    let epoch = c.partition(t, 0).leader_epoch;
    let reply = heartbeat_reply(c.heartbeat_with(0, false, true));
    assert!(reply.should_shut_down && reply.is_fenced, "{reply:?}");
    let reg = c.partition(t, 0);
    assert_eq!((reg.leader, reg.leader_epoch), (1, epoch + 1));
    assert_eq!(reg.isr, vec![1, 2]);
    assert!(c.image.broker(0).unwrap().fenced);
    // Later shutdown heartbeats change nothing, and a restart registers at once.
    let (records, reply) = c.decide(ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
        id: 0,
        epoch: c.epoch(0),
        caught_up: true,
        want_fence: false,
        want_shutdown: true,
    }));
    assert!(records.is_empty(), "{records:?}");
    assert!(heartbeat_reply(reply).should_shut_down);
    c.register(0, None);
}

#[test]
fn controlled_shutdown_of_the_last_isr_member_leaves_the_partition_leaderless() {
    // The other replica is fenced, so the leadership cannot move. With unclean off,
    // KRaft's rule applies: the partition goes leaderless and the broker may stop (it
    // stays the last ISR member, so it leads again on return).
    let (mut c, t) = cluster(2, ControllerConfig::default(), "t", vec![vec![0, 1]]);
    c.heartbeat_with(1, true, false);
    assert_eq!(c.partition(t, 0).isr, vec![0]);
    let reply = heartbeat_reply(c.heartbeat_with(0, false, true));
    assert!(reply.should_shut_down);
    assert_eq!(c.partition(t, 0).leader, NO_LEADER);
    assert_eq!(c.partition(t, 0).isr, vec![0]);
}

#[test]
fn preferred_leaders_return_once_the_check_interval_passed() {
    let (mut c, t) = cluster(3, balancing(10), "t", vec![vec![0, 1, 2], vec![1, 2, 0]]);
    bounce(&mut c, 0);
    assert_eq!(c.partition(t, 0).leader, 1);
    // Not back in the ISR: nothing to balance yet.
    assert!(c.tick().is_empty());
    alter_isr(&mut c, t, 0, &[1, 2, 0]);
    c.now += INTERVAL - 1;
    assert!(c.tick().is_empty(), "before the interval");
    c.now += 1;
    let records = c.tick();
    assert_eq!(
        records,
        vec![MetadataRecord::PartitionChange(PartitionChange {
            topic_id: t,
            partition: 0,
            leader: Some(0),
            ..PartitionChange::default()
        })]
    );
    assert_eq!(c.partition(t, 0).leader, 0);
    assert_eq!(c.partition(t, 1).leader, 1);
    for b in 0..3 {
        c.heartbeat(b);
    }
    c.now += INTERVAL;
    assert!(c.tick().is_empty(), "balanced");
}

#[test]
fn balancing_waits_for_the_imbalance_percentage_and_can_be_off() {
    let assignment = vec![vec![0, 1], vec![0, 1], vec![0, 1], vec![1, 0]];
    for (config, moves) in [
        (balancing(50), false), // 1 of 3 not led: 33% is within 50%
        (balancing(10), true),
        (
            ControllerConfig {
                auto_leader_rebalance_enable: false,
                ..balancing(10)
            },
            false,
        ),
    ] {
        let (mut c, t) = cluster(2, config, "t", assignment.clone());
        // Partition 0 led by 1, as after a failover.
        c.commit(vec![MetadataRecord::PartitionChange(PartitionChange {
            topic_id: t,
            partition: 0,
            leader: Some(1),
            ..PartitionChange::default()
        })]);
        c.tick();
        c.now += INTERVAL;
        let records = c.tick();
        assert_eq!(!records.is_empty(), moves, "{records:?}");
        assert_eq!(c.partition(t, 0).leader == 0, moves);
    }
}

#[test]
fn reassignment_adds_then_completes_once_the_target_is_in_sync() {
    let (mut c, t) = cluster(4, ControllerConfig::default(), "t", vec![vec![0, 1, 2]]);
    let epoch = c.partition(t, 0).leader_epoch;
    reassign(&mut c, "t", 0, Some(vec![3, 1, 2])).unwrap();
    let reg = c.partition(t, 0).clone();
    assert_eq!(reg.replicas, vec![3, 1, 2, 0]);
    assert_eq!(
        (reg.adding.clone(), reg.removing.clone()),
        (vec![3], vec![0])
    );
    assert_eq!((reg.leader, reg.isr.clone()), (0, vec![0, 1, 2]));
    // The leader brings the new replica into the ISR: the move completes in that call,
    // and the removed leader hands over to the first target replica.
    let result = alter_isr(&mut c, t, 0, &[0, 1, 2, 3]);
    let reg = c.partition(t, 0).clone();
    assert_eq!(reg.replicas, vec![3, 1, 2]);
    assert_eq!(reg.isr, vec![1, 2, 3]);
    assert!(reg.adding.is_empty() && reg.removing.is_empty());
    assert_eq!((reg.leader, reg.leader_epoch), (3, epoch + 1));
    assert_eq!((result.leader, result.isr), (3, vec![1, 2, 3]));
}

#[test]
fn reassignment_keeps_the_leader_it_keeps_and_reorder_completes_at_once() {
    let (mut c, t) = cluster(4, ControllerConfig::default(), "t", vec![vec![0, 1, 2]]);
    reassign(&mut c, "t", 0, Some(vec![2, 1, 0])).unwrap();
    let reg = c.partition(t, 0).clone();
    assert_eq!((reg.replicas.clone(), reg.leader), (vec![2, 1, 0], 0));
    assert!(reg.adding.is_empty() && reg.removing.is_empty());
    // Drop one replica that is not the leader: done at once (the target is in sync).
    reassign(&mut c, "t", 0, Some(vec![0, 1])).unwrap();
    let reg = c.partition(t, 0).clone();
    assert_eq!(
        (reg.replicas.clone(), reg.isr.clone(), reg.leader),
        (vec![0, 1], vec![0, 1], 0)
    );
    assert!(reg.adding.is_empty() && reg.removing.is_empty());
}

#[test]
fn cancelling_returns_to_the_original_replicas() {
    let (mut c, t) = cluster(4, ControllerConfig::default(), "t", vec![vec![0, 1, 2]]);
    assert_eq!(reassign(&mut c, "t", 0, None).unwrap_err().code(), 85);
    reassign(&mut c, "t", 0, Some(vec![3, 1, 2])).unwrap();
    reassign(&mut c, "t", 0, None).unwrap();
    let reg = c.partition(t, 0).clone();
    // Kafka's revert: the replicas minus the added ones, in the moving order (the removed
    // replicas went last), so the preferred leader may change.
    assert_eq!(
        (reg.replicas.clone(), reg.isr.clone(), reg.leader),
        (vec![1, 2, 0], vec![0, 1, 2], 0)
    );
    assert!(reg.adding.is_empty() && reg.removing.is_empty());
}

#[test]
fn reassignment_refuses_bad_targets() {
    let (mut c, _) = cluster(3, ControllerConfig::default(), "t", vec![vec![0, 1, 2]]);
    for bad in [vec![], vec![0, 0], vec![0, 7]] {
        assert_eq!(reassign(&mut c, "t", 0, Some(bad)).unwrap_err().code(), 39);
    }
    assert_eq!(
        reassign(&mut c, "t", 5, Some(vec![0])).unwrap_err().code(),
        3
    );
    assert_eq!(
        reassign(&mut c, "nope", 0, Some(vec![0]))
            .unwrap_err()
            .code(),
        3
    );
}

#[test]
fn a_move_waits_for_a_fenced_target_and_completes_when_it_leaves_the_old_isr() {
    // Target [1, 2] while 2 is fenced: it cannot join, so the move stays open; broker 0
    // (being removed) leaving the ISR does not complete it either.
    let (mut c, t) = cluster(3, ControllerConfig::default(), "t", vec![vec![0, 1]]);
    c.heartbeat_with(2, true, false);
    reassign(&mut c, "t", 0, Some(vec![1, 2])).unwrap();
    c.heartbeat_with(0, true, false);
    let reg = c.partition(t, 0).clone();
    assert_eq!(
        (reg.adding.clone(), reg.removing.clone()),
        (vec![2], vec![0])
    );
    assert_eq!((reg.leader, reg.isr.clone()), (1, vec![1]));
    // 2 comes back and the leader adds it: done, 0 gone from the replicas.
    c.register(2, None);
    c.heartbeat(2);
    alter_isr(&mut c, t, 0, &[1, 2]);
    let reg = c.partition(t, 0).clone();
    assert_eq!(
        (reg.replicas.clone(), reg.isr.clone(), reg.leader),
        (vec![1, 2], vec![1, 2], 1)
    );
}
