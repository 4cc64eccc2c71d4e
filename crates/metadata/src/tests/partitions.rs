use uuid::Uuid;

use super::*;
use crate::{
    AlterPartitionItem, AlterPartitionResult, ElectionType, IsrMember, LeaderRecovery,
    MetadataError, NO_LEADER,
};

fn item(c: &Cluster, t: Uuid, isr: &[BrokerId]) -> AlterPartitionItem {
    let reg = c.partition(t, 0);
    AlterPartitionItem {
        topic_id: t,
        partition: 0,
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
    }
}

fn alter(
    c: &mut Cluster,
    from: BrokerId,
    item: AlterPartitionItem,
) -> Result<AlterPartitionResult, MetadataError> {
    let broker_epoch = c.epoch(from);
    match c.request(ControllerRequest::AlterPartition {
        broker_id: from,
        broker_epoch,
        partitions: vec![item],
    }) {
        ControllerReply::AlterPartition(Ok(mut v)) => v.remove(0).2,
        ControllerReply::AlterPartition(Err(e)) => Err(e),
        other => panic!("{other:?}"),
    }
}

fn alter_isr(
    c: &mut Cluster,
    from: BrokerId,
    t: Uuid,
    isr: &[BrokerId],
) -> Result<AlterPartitionResult, MetadataError> {
    let it = item(c, t, isr);
    alter(c, from, it)
}

/// Brokers 0..3, topic "t" with one partition on replicas [0, 1, 2] led by 0.
fn setup() -> (Cluster, Uuid) {
    let mut c = Cluster::with_brokers(3, &[]);
    let ControllerReply::CreateTopics(v) = c.request(ControllerRequest::CreateTopics {
        topics: vec![CreatableTopic {
            name: "t".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignment: Some(vec![vec![0, 1, 2]]),
            configs: Vec::new(),
        }],
        validate_only: false,
    }) else {
        panic!()
    };
    let t = v[0].1.as_ref().unwrap().topic_id;
    (c, t)
}

#[test]
fn shrink_and_expand_bump_only_the_partition_epoch() {
    let (mut c, t) = setup();
    let shrunk = alter_isr(&mut c, 0, t, &[0, 1]).unwrap();
    assert_eq!(
        (shrunk.leader, shrunk.leader_epoch, shrunk.partition_epoch),
        (0, 0, 1)
    );
    assert_eq!(c.partition(t, 0).isr, vec![0, 1]);
    let delta = c.last_delta.partitions.get(&(t, 0)).unwrap();
    assert_eq!(delta.old.as_ref().unwrap().isr, vec![0, 1, 2]);
    let expanded = alter_isr(&mut c, 0, t, &[0, 1, 2]).unwrap();
    assert_eq!((expanded.leader_epoch, expanded.partition_epoch), (0, 2));
    assert_eq!(c.partition(t, 0).isr, vec![0, 1, 2]);
    // The same ISR again commits nothing and answers the current state.
    let (records, _) = c.decide(ControllerRequest::AlterPartition {
        broker_id: 0,
        broker_epoch: c.epoch(0),
        partitions: vec![item(&c, t, &[0, 1, 2])],
    });
    assert!(records.is_empty());
}

#[test]
fn stale_epochs_are_refused() {
    let (mut c, t) = setup();
    let stale = item(&c, t, &[0, 1]);
    alter_isr(&mut c, 0, t, &[0, 2]).unwrap();
    // The partition epoch moved on since `stale` was built.
    assert!(matches!(
        alter(&mut c, 0, stale.clone()),
        Err(MetadataError::InvalidUpdateVersion { .. })
    ));
    let mut old_leader_epoch = item(&c, t, &[0, 1]);
    old_leader_epoch.leader_epoch -= 1;
    assert_eq!(alter(&mut c, 0, old_leader_epoch).unwrap_err().code(), 74);
    // A request from a previous incarnation of the leader (KIP-903).
    let reply = c.request(ControllerRequest::AlterPartition {
        broker_id: 0,
        broker_epoch: c.epoch(0) - 1,
        partitions: vec![item(&c, t, &[0])],
    });
    assert!(matches!(
        reply,
        ControllerReply::AlterPartition(Err(MetadataError::StaleBrokerEpoch { .. }))
    ));
    assert_eq!(c.partition(t, 0).isr, vec![0, 2]);
}

#[test]
fn only_the_leader_may_alter_and_the_isr_must_be_valid() {
    let (mut c, t) = setup();
    assert_eq!(alter_isr(&mut c, 1, t, &[0, 1]).unwrap_err().code(), 6);
    let invalid = |c: &mut Cluster, isr: &[BrokerId]| alter_isr(c, 0, t, isr).unwrap_err().code();
    assert_eq!(invalid(&mut c, &[1, 2]), 42, "without the leader");
    assert_eq!(invalid(&mut c, &[0, 0]), 42, "twice");
    c.register(7, None);
    c.heartbeat(7);
    assert_eq!(invalid(&mut c, &[0, 7]), 42, "not a replica");
    let mut unknown = item(&c, t, &[0]);
    unknown.topic_id = Uuid::new_v4();
    assert_eq!(alter(&mut c, 0, unknown).unwrap_err().code(), 100);
    let mut no_partition = item(&c, t, &[0]);
    no_partition.partition = 3;
    assert_eq!(alter(&mut c, 0, no_partition).unwrap_err().code(), 3);
}

#[test]
fn fenced_or_stale_replicas_may_not_join_the_isr() {
    let (mut c, t) = setup();
    alter_isr(&mut c, 0, t, &[0, 1]).unwrap();
    c.heartbeat_with(2, true, false);
    assert_eq!(
        alter_isr(&mut c, 0, t, &[0, 1, 2]).unwrap_err(),
        MetadataError::IneligibleReplica(2)
    );
    c.heartbeat(2);
    let mut stale = item(&c, t, &[0, 1, 2]);
    stale.new_isr[2].broker_epoch -= 1;
    assert_eq!(alter(&mut c, 0, stale).unwrap_err().code(), 107);
    c.heartbeat_with(2, false, true);
    assert_eq!(alter_isr(&mut c, 0, t, &[0, 1, 2]).unwrap_err().code(), 107);
}

#[test]
fn recovering_leader_rules() {
    let config = ControllerConfig {
        unclean_leader_election_enable: true,
        ..ControllerConfig::default()
    };
    let mut c = Cluster::with_config(config);
    for id in 0..2 {
        c.register(id, None);
        c.heartbeat(id);
    }
    let t = c.create_topic("r", 1, 2);
    let [a, b] = [c.partition(t, 0).replicas[0], c.partition(t, 0).replicas[1]];
    let mut back = item(&c, t, &[a, b]);
    back.leader_recovery = LeaderRecovery::Recovering;
    assert_eq!(alter(&mut c, a, back).unwrap_err().code(), 42);
    c.heartbeat_with(b, true, false);
    c.heartbeat(b);
    c.heartbeat_with(a, true, false);
    assert_eq!(
        c.partition(t, 0).leader_recovery,
        LeaderRecovery::Recovering
    );
    let mut grow = item(&c, t, &[b, a]);
    grow.new_isr.truncate(1);
    grow.new_isr.push(IsrMember {
        id: a,
        broker_epoch: c.epoch(a),
    });
    assert_eq!(alter(&mut c, b, grow).unwrap_err().code(), 42);
    let mut recovered = item(&c, t, &[b]);
    recovered.leader_recovery = LeaderRecovery::Recovered;
    let r = alter(&mut c, b, recovered).unwrap();
    assert_eq!(r.leader_recovery, LeaderRecovery::Recovered);
}

#[test]
fn preferred_election_restores_the_first_replica() {
    let (mut c, t) = setup();
    c.heartbeat_with(0, true, false);
    assert_eq!(c.partition(t, 0).leader, 1);
    let elect = |c: &mut Cluster| match c.request(ControllerRequest::ElectLeaders {
        election_type: ElectionType::Preferred,
        partitions: Some(vec![("t".into(), 0), ("x".into(), 0)]),
    }) {
        ControllerReply::ElectLeaders(v) => {
            assert_eq!(v[1].2.as_ref().unwrap_err().code(), 3);
            v[0].2.clone()
        }
        other => panic!("{other:?}"),
    };
    // 0 is fenced, then unfenced but outside the ISR.
    assert_eq!(elect(&mut c).unwrap_err().code(), 80);
    c.heartbeat(0);
    assert_eq!(elect(&mut c).unwrap_err().code(), 80);
    alter_isr(&mut c, 1, t, &[1, 2, 0]).unwrap();
    let epoch = c.partition(t, 0).leader_epoch;
    assert_eq!(elect(&mut c), Ok(()));
    assert_eq!(c.partition(t, 0).leader, 0);
    assert_eq!(c.partition(t, 0).leader_epoch, epoch + 1);
    assert_eq!(elect(&mut c).unwrap_err().code(), 84);
}

#[test]
fn unclean_election_on_request_even_when_the_config_is_off() {
    let (mut c, t) = setup();
    alter_isr(&mut c, 0, t, &[0]).unwrap();
    c.heartbeat_with(0, true, false);
    assert_eq!(c.partition(t, 0).leader, NO_LEADER);
    let elect = |c: &mut Cluster| match c.request(ControllerRequest::ElectLeaders {
        election_type: ElectionType::Unclean,
        partitions: None,
    }) {
        ControllerReply::ElectLeaders(mut v) => v.remove(0).2,
        other => panic!("{other:?}"),
    };
    assert_eq!(elect(&mut c), Ok(()));
    let reg = c.partition(t, 0);
    assert_eq!((reg.leader, reg.isr.clone()), (1, vec![1]));
    assert_eq!(reg.leader_recovery, LeaderRecovery::Recovering);
    assert_eq!(elect(&mut c).unwrap_err().code(), 84);
}

#[test]
fn topic_config_enables_unclean_election_for_that_topic_only() {
    let mut c = Cluster::with_brokers(2, &[]);
    let on_0_and_1 = |name: &str, configs: Vec<(String, String)>| ControllerRequest::CreateTopics {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignment: Some(vec![vec![0, 1]]),
            configs,
        }],
        validate_only: false,
    };
    c.request(on_0_and_1(
        "dirty",
        vec![("unclean.leader.election.enable".into(), "true".into())],
    ));
    c.request(on_0_and_1("clean", Vec::new()));
    let dirty = c.image.topic_by_name("dirty").unwrap().id;
    let clean = c.image.topic_by_name("clean").unwrap().id;
    // Both ISRs become the leader 0 alone while 1 stays alive; then 0 is fenced.
    for t in [dirty, clean] {
        alter_isr(&mut c, 0, t, &[0]).unwrap();
    }
    c.heartbeat_with(0, true, false);
    assert_eq!(c.partition(dirty, 0).leader, 1);
    assert_eq!(
        c.partition(dirty, 0).leader_recovery,
        LeaderRecovery::Recovering
    );
    assert_eq!(c.partition(clean, 0).leader, NO_LEADER);
    assert_eq!(c.partition(clean, 0).isr, vec![0]);
}

#[test]
fn shrinking_below_min_insync_replicas_is_committed() {
    // The controller records the truth; the leader is what stops acks=all and the high
    // watermark while the committed ISR is below min.insync.replicas (design §5.3-5.4).
    let (mut c, t) = setup();
    c.request(ControllerRequest::AlterConfigs {
        resources: vec![crate::AlterConfigsResource {
            resource: crate::ConfigResource::Topic("t".into()),
            ops: vec![("min.insync.replicas".into(), Some("2".into()))],
        }],
        validate_only: false,
    });
    let r = alter_isr(&mut c, 0, t, &[0]).unwrap();
    assert_eq!(r.isr, vec![0]);
    assert_eq!(c.partition(t, 0).isr, vec![0]);
    assert_eq!(
        c.partition(t, 0).elr,
        vec![1, 2],
        "left while the ISR was below min.insync.replicas: eligible (KIP-966)"
    );
}
