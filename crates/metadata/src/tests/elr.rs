//! Eligible leader replicas (KIP-966 part 1): which replicas enter and leave the ELR and the
//! last known ELR, and who is elected when the ISR empties, asserted on the records.

use uuid::Uuid;

use super::*;
use crate::{
    AlterConfigsResource, AlterPartitionItem, ConfigResource, IsrMember, PartitionChange,
    ELR_FEATURE, NO_LEADER,
};

/// Brokers 0..3 whose static `min.insync.replicas` is `min_isr`, topic "t" on [0, 1, 2].
fn setup(min_isr: i32, elr: bool) -> (Cluster, Uuid) {
    let mut c = Cluster::with_config(ControllerConfig {
        min_insync_replicas: min_isr,
        eligible_leader_replicas: elr,
        ..ControllerConfig::default()
    });
    for id in 0..3 {
        c.register(id, None);
        c.heartbeat(id);
    }
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
    (c, v[0].1.as_ref().unwrap().topic_id)
}

/// The partition changes of the last request.
fn changes(c: &Cluster, since: usize) -> Vec<PartitionChange> {
    c.journal[since..]
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::PartitionChange(pc) => Some(pc.clone()),
            _ => None,
        })
        .collect()
}

fn fence(c: &mut Cluster, id: BrokerId) -> Vec<PartitionChange> {
    let n = c.journal.len();
    c.heartbeat_with(id, true, false);
    assert!(c.image.broker(id).unwrap().fenced);
    changes(c, n)
}

/// A restart: a new incarnation registers (fenced), catches up and is unfenced.
fn restart(c: &mut Cluster, id: BrokerId) -> Vec<PartitionChange> {
    let n = c.journal.len();
    c.register(id, None);
    c.heartbeat(id);
    assert!(!c.image.broker(id).unwrap().fenced);
    changes(c, n)
}

fn alter_isr(c: &mut Cluster, t: Uuid, isr: &[BrokerId]) {
    let reg = c.partition(t, 0).clone();
    let item = AlterPartitionItem {
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
    };
    let broker_epoch = c.epoch(reg.leader);
    let reply = c.request(ControllerRequest::AlterPartition {
        broker_id: reg.leader,
        broker_epoch,
        partitions: vec![item],
    });
    let ControllerReply::AlterPartition(Ok(v)) = reply else {
        panic!("{reply:?}")
    };
    v[0].2.as_ref().expect("ISR change accepted");
}

fn set_min_isr(c: &mut Cluster, value: &str) -> Vec<PartitionChange> {
    let n = c.journal.len();
    c.request(ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource: ConfigResource::Topic("t".into()),
            ops: vec![("min.insync.replicas".into(), Some(value.into()))],
        }],
        validate_only: false,
    });
    changes(c, n)
}

#[test]
fn a_new_cluster_turns_the_feature_on_and_an_older_one_at_its_next_controller() {
    let c = Cluster::new();
    assert!(c.journal.contains(&MetadataRecord::FeatureLevel {
        name: ELR_FEATURE.into(),
        level: 1
    }));
    assert_eq!(c.image.feature_level(ELR_FEATURE), 1);
    // Already on: nothing to write.
    assert_eq!(c.logic.bootstrap(&c.image, "other"), vec![]);
    // A cluster made before the feature: only the feature is written.
    let mut older = MetadataImage::new();
    older
        .apply(&MetadataRecord::ClusterId {
            cluster_id: "old".into(),
        })
        .unwrap();
    assert_eq!(
        c.logic.bootstrap(&older, "other"),
        vec![MetadataRecord::FeatureLevel {
            name: ELR_FEATURE.into(),
            level: 1
        }]
    );
    let off = ControllerLogic::new(ControllerConfig {
        eligible_leader_replicas: false,
        ..ControllerConfig::default()
    });
    assert_eq!(off.bootstrap(&older, "other"), vec![]);
}

#[test]
fn fences_below_min_isr_fill_the_elr_and_an_elr_member_leads_when_the_isr_empties() {
    let (mut c, t) = setup(2, true);
    // [0, 1, 2] -> [1, 2]: still at min ISR, so 0 is not eligible (the HW moves on
    // without it).
    let ch = fence(&mut c, 0);
    assert_eq!(ch.len(), 1);
    assert_eq!(
        (ch[0].leader, ch[0].isr.clone()),
        (Some(1), Some(vec![1, 2]))
    );
    assert_eq!(
        (ch[0].elr.clone(), ch[0].last_known_elr.clone()),
        (None, None)
    );
    // [1, 2] -> [2]: below min ISR, the HW stops; 1 holds every committed record.
    let ch = fence(&mut c, 1);
    assert_eq!(ch[0].leader, Some(2));
    assert_eq!(ch[0].isr, Some(vec![2]));
    assert_eq!(ch[0].elr, Some(vec![1]));
    // The last member goes: the ISR empties, both are eligible, 2 is the last known.
    let ch = fence(&mut c, 2);
    assert_eq!(ch[0].leader, Some(NO_LEADER));
    assert_eq!(ch[0].isr, Some(vec![]));
    assert_eq!(ch[0].elr, Some(vec![1, 2]));
    assert_eq!(ch[0].last_known_elr, Some(vec![2]));
    // 0 comes back first: not eligible, the partition stays offline (no unclean).
    assert!(restart(&mut c, 0).is_empty());
    assert_eq!(c.partition(t, 0).leader, NO_LEADER);
    // 1 comes back: elected from the ELR, the ISR is itself, the last leader 2 stays
    // eligible until the ISR is whole enough again.
    let before = c.partition(t, 0).leader_epoch;
    let ch = restart(&mut c, 1);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].leader, Some(1));
    assert_eq!(ch[0].isr, Some(vec![1]));
    assert_eq!(ch[0].elr, Some(vec![2]));
    assert_eq!(ch[0].last_known_elr, Some(vec![]));
    let reg = c.partition(t, 0);
    assert_eq!(reg.leader_epoch, before + 1);
    // 2 returns, catches up with 1 and joins: at min ISR again, the ELR is cleared.
    assert!(restart(&mut c, 2).is_empty());
    let n = c.journal.len();
    alter_isr(&mut c, t, &[1, 2]);
    let ch = changes(&c, n);
    assert_eq!(ch[0].elr, Some(vec![]));
    let reg = c.partition(t, 0);
    assert_eq!((reg.isr.clone(), reg.elr.clone()), (vec![1, 2], vec![]));
}

#[test]
fn the_last_known_elr_leads_when_no_elr_member_is_left() {
    let (mut c, t) = setup(2, true);
    for id in [0, 1, 2] {
        fence(&mut c, id);
    }
    assert_eq!(c.partition(t, 0).elr, vec![1, 2]);
    // A min ISR change clears the ELR (Kafka's rule); the last known ELR stays.
    let ch = set_min_isr(&mut c, "3");
    assert_eq!(ch.len(), 1);
    assert_eq!(
        (ch[0].elr.clone(), ch[0].last_known_elr.clone()),
        (Some(vec![]), None)
    );
    assert!(restart(&mut c, 1).is_empty(), "1 is no longer eligible");
    let ch = restart(&mut c, 2);
    assert_eq!((ch[0].leader, ch[0].isr.clone()), (Some(2), Some(vec![2])));
    assert_eq!(ch[0].last_known_elr, Some(vec![]));
}

#[test]
fn a_leader_shrink_below_min_isr_fills_the_elr_and_an_expand_clears_it() {
    // The topic's own min.insync.replicas, over a static default of 1.
    let (mut c, t) = setup(1, true);
    set_min_isr(&mut c, "2");
    alter_isr(&mut c, t, &[0, 1]);
    assert!(
        c.partition(t, 0).elr.is_empty(),
        "at min ISR: 2 is not eligible"
    );
    alter_isr(&mut c, t, &[0]);
    assert_eq!(c.partition(t, 0).elr, vec![1]);
    alter_isr(&mut c, t, &[0, 2]);
    let reg = c.partition(t, 0);
    assert_eq!((reg.isr.clone(), reg.elr.clone()), (vec![0, 2], vec![]));
}

#[test]
fn min_isr_one_or_the_feature_off_keeps_the_last_isr_member() {
    for (min_isr, feature) in [(1, true), (2, false)] {
        let (mut c, t) = setup(min_isr, feature);
        for id in [0, 1, 2] {
            fence(&mut c, id);
        }
        let reg = c.partition(t, 0).clone();
        assert_eq!(reg.isr, vec![2], "min ISR {min_isr}, feature {feature}");
        assert!(reg.elr.is_empty() && reg.last_known_elr.is_empty());
        assert_eq!(reg.leader, NO_LEADER);
        assert!(
            restart(&mut c, 1).is_empty(),
            "only the last member may lead"
        );
        let ch = restart(&mut c, 2);
        assert_eq!(ch[0].leader, Some(2));
    }
}

#[test]
fn an_unclean_election_clears_the_elr() {
    let (mut c, t) = setup(2, true);
    for id in [0, 1, 2] {
        fence(&mut c, id);
    }
    restart(&mut c, 0);
    let n = c.journal.len();
    let reply = c.request(ControllerRequest::ElectLeaders {
        election_type: crate::ElectionType::Unclean,
        partitions: Some(vec![("t".into(), 0)]),
    });
    let ControllerReply::ElectLeaders(v) = reply else {
        panic!("{reply:?}")
    };
    v[0].2.as_ref().expect("elected");
    let ch = changes(&c, n);
    assert_eq!((ch[0].leader, ch[0].isr.clone()), (Some(0), Some(vec![0])));
    let reg = c.partition(t, 0);
    assert!(reg.elr.is_empty() && reg.last_known_elr.is_empty());
}

#[test]
fn a_registration_written_before_the_last_known_elr_still_decodes() {
    let reg = PartitionRegistration::new(vec![1, 2]);
    let mut json: serde_json::Value = serde_json::to_value(&reg).unwrap();
    json.as_object_mut().unwrap().remove("last_known_elr");
    let old: PartitionRegistration = serde_json::from_value(json).unwrap();
    assert_eq!(old, reg);
    let change = PartitionChange {
        isr: Some(vec![2]),
        ..PartitionChange::default()
    };
    let mut json = serde_json::to_value(&change).unwrap();
    json.as_object_mut().unwrap().remove("last_known_elr");
    assert_eq!(
        serde_json::from_value::<PartitionChange>(json).unwrap(),
        change
    );
}
