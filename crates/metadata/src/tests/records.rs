use super::*;
use crate::{
    AlterConfigsResource, BrokerRegistration, ConfigResource, LeaderRecovery, PartitionChange,
};

fn every_record() -> Vec<MetadataRecord> {
    let topic_id = Uuid::new_v4();
    let mut reg = PartitionRegistration::new(vec![1, 2, 3]);
    reg.elr = vec![3];
    reg.last_known_elr = vec![2];
    reg.adding = vec![4];
    reg.removing = vec![1];
    reg.leader_recovery = LeaderRecovery::Recovering;
    vec![
        MetadataRecord::ClusterId {
            cluster_id: "c".into(),
        },
        MetadataRecord::FeatureLevel {
            name: crate::ELR_FEATURE.into(),
            level: 1,
        },
        MetadataRecord::RegisterBroker(BrokerRegistration {
            id: 1,
            incarnation: Uuid::new_v4(),
            epoch: 7,
            endpoints: vec![Endpoint {
                name: "INTERNAL".into(),
                host: "h".into(),
                port: 1,
            }],
            rack: Some("r".into()),
            fenced: true,
            in_controlled_shutdown: false,
        }),
        MetadataRecord::BrokerRegistrationChange {
            id: 1,
            epoch: 7,
            fenced: Some(false),
            in_controlled_shutdown: None,
        },
        MetadataRecord::UnregisterBroker { id: 1, epoch: 7 },
        MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        },
        MetadataRecord::RemoveTopic { topic_id },
        MetadataRecord::Partition {
            topic_id,
            partition: 2,
            registration: reg,
        },
        MetadataRecord::PartitionChange(PartitionChange {
            topic_id,
            partition: 2,
            leader: Some(-1),
            isr: Some(vec![2]),
            elr: Some(vec![]),
            last_known_elr: Some(vec![3]),
            replicas: Some(vec![2, 3]),
            adding: Some(vec![]),
            removing: None,
            leader_recovery: Some(LeaderRecovery::Recovered),
        }),
        MetadataRecord::Config {
            resource: ConfigResource::Broker(3),
            name: "k".into(),
            value: None,
        },
        MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "k".into(),
            value: Some("v".into()),
        },
        MetadataRecord::Config {
            resource: ConfigResource::ClusterDefault,
            name: "k".into(),
            value: Some("v".into()),
        },
        MetadataRecord::ProducerIds {
            broker_id: 1,
            broker_epoch: 7,
            next_producer_id: 2000,
        },
        MetadataRecord::AccessControlEntry(acl("t", "User:a")),
        MetadataRecord::RemoveAccessControlEntry(acl("t", "User:a")),
    ]
}

fn acl(name: &str, principal: &str) -> crate::AclEntry {
    crate::AclEntry {
        resource_type: 2,
        name: name.into(),
        pattern_type: 3,
        principal: principal.into(),
        host: "*".into(),
        operation: 3,
        permission: 3,
    }
}

#[test]
fn acls_are_created_once_deleted_once_and_survive_replay_and_snapshots() {
    let mut c = Cluster::with_brokers(1, &[]);
    let (a, b) = (acl("t", "User:a"), acl("t", "User:b"));
    assert_eq!(
        c.request(ControllerRequest::CreateAcls {
            acls: vec![a.clone(), b.clone(), a.clone()],
        }),
        ControllerReply::CreateAcls(Ok(()))
    );
    assert!(c.last_delta.acls_changed);
    assert_eq!(c.image.acls().len(), 2);
    // Existing ACLs make no records and no change.
    let (records, _) = c.decide(ControllerRequest::CreateAcls {
        acls: vec![a.clone()],
    });
    assert!(records.is_empty());
    let before = c.image.acls().clone();
    let reply = c.request(ControllerRequest::DeleteAcls {
        acls: vec![b.clone(), b.clone(), acl("x", "User:c")],
    });
    assert_eq!(reply, ControllerReply::DeleteAcls(Ok(vec![b.clone()])));
    assert_eq!(
        **c.image.acls(),
        std::collections::BTreeSet::from([a.clone()])
    );
    assert_eq!(
        before.len(),
        2,
        "an earlier image keeps its ACLs (copy on write)"
    );

    let mut replayed = MetadataImage::new();
    replayed.apply_all(&c.journal).unwrap();
    assert_eq!(replayed, c.image);
    let json = serde_json::to_string(&c.image).unwrap();
    assert_eq!(
        serde_json::from_str::<MetadataImage>(&json).unwrap(),
        c.image
    );
    // A snapshot written before ACLs were metadata has none.
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    old.as_object_mut().unwrap().remove("acls");
    let old: MetadataImage = serde_json::from_value(old).unwrap();
    assert!(old.acls().is_empty());
}

#[test]
fn every_record_round_trips_through_json() {
    for record in every_record() {
        let json = serde_json::to_string(&record).unwrap();
        let back: MetadataRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record, "{json}");
    }
}

#[test]
fn requests_and_replies_round_trip_through_json() {
    let mut c = Cluster::with_brokers(2, &[]);
    let req = create("j", 2, 2);
    let json = serde_json::to_string(&req).unwrap();
    assert_eq!(
        serde_json::from_str::<ControllerRequest>(&json).unwrap(),
        req
    );
    let reply = c.request(req);
    let json = serde_json::to_string(&reply).unwrap();
    assert_eq!(
        serde_json::from_str::<ControllerReply>(&json).unwrap(),
        reply
    );
    let refused = c.request(create("j", 1, 1));
    let back: ControllerReply =
        serde_json::from_str(&serde_json::to_string(&refused).unwrap()).unwrap();
    assert_eq!(create_error(&back), 36);
}

#[test]
fn replaying_the_journal_rebuilds_the_same_image() {
    let mut c = Cluster::with_brokers(4, &["a", "b"]);
    let t = c.create_topic("t", 6, 3);
    c.create_topic("u", 2, 2);
    c.request(ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource: ConfigResource::Topic("u".into()),
            ops: vec![("min.insync.replicas".into(), Some("2".into()))],
        }],
        validate_only: false,
    });
    c.heartbeat_with(1, false, true); // controlled shutdown
    c.now += SESSION + 1;
    for id in [0, 2] {
        c.heartbeat(id);
    }
    c.tick(); // 3 expires (1 is shutting down and silent too)
    c.request(ControllerRequest::AllocateProducerIds {
        broker_id: 0,
        broker_epoch: c.epoch(0),
    });
    c.request(ControllerRequest::DeleteTopics {
        names: vec!["u".into()],
    });
    c.register(3, Some("b".into()));
    c.heartbeat(3);
    c.request(ControllerRequest::ElectLeaders {
        election_type: crate::ElectionType::Preferred,
        partitions: None,
    });
    assert!(c.image.topic(t).is_some());

    let mut fresh = MetadataImage::new();
    fresh.apply_all(&c.journal).unwrap();
    assert_eq!(fresh, c.image);
    // Through JSON too, as the metadata log stores them.
    let json = serde_json::to_string(&c.journal).unwrap();
    let decoded: Vec<MetadataRecord> = serde_json::from_str(&json).unwrap();
    let mut from_json = MetadataImage::new();
    from_json.apply_all(&decoded).unwrap();
    assert_eq!(from_json, c.image);
}

#[test]
fn an_image_round_trips_through_a_json_snapshot() {
    let mut c = Cluster::with_brokers(3, &["a", "b"]);
    c.create_topic("t", 4, 3);
    c.request(ControllerRequest::AlterConfigs {
        resources: vec![
            AlterConfigsResource {
                resource: ConfigResource::Topic("t".into()),
                ops: vec![("retention.ms".into(), Some("1000".into()))],
            },
            AlterConfigsResource {
                resource: ConfigResource::ClusterDefault,
                ops: vec![("min.insync.replicas".into(), Some("2".into()))],
            },
        ],
        validate_only: false,
    });
    c.request(ControllerRequest::AllocateProducerIds {
        broker_id: 0,
        broker_epoch: c.epoch(0),
    });
    // A broker added after the topic holds nothing, so it may go while live.
    c.register(3, Some("a".into()));
    c.heartbeat(3);
    c.request(ControllerRequest::UnregisterBroker { id: 3 });
    let json = serde_json::to_string(&c.image).unwrap();
    let back: MetadataImage = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c.image, "{json}");
    // The rebuilt name index works, and epochs of unregistered brokers are not reused.
    assert!(back.topic_by_name("t").is_some());
    assert_eq!(back.last_broker_epoch(), c.image.last_broker_epoch());
    assert!(back.broker(3).is_none());
}

#[test]
fn contradicting_records_are_refused_and_change_nothing() {
    let mut image = MetadataImage::new();
    let topic_id = Uuid::new_v4();
    let change = MetadataRecord::PartitionChange(PartitionChange {
        topic_id,
        partition: 0,
        ..PartitionChange::default()
    });
    assert!(image.apply(&change).is_err());
    image
        .apply(&MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        })
        .unwrap();
    let other = MetadataRecord::Topic {
        name: "t".into(),
        topic_id: Uuid::new_v4(),
    };
    assert!(image.apply(&other).is_err());
    assert!(image
        .apply(&MetadataRecord::UnregisterBroker { id: 1, epoch: 1 })
        .is_err());
    let before = image.clone();
    assert!(image
        .apply(&MetadataRecord::ProducerIds {
            broker_id: 1,
            broker_epoch: 1,
            next_producer_id: 5
        })
        .is_err());
    assert_eq!(image, before);
}

#[test]
fn images_share_unchanged_topics() {
    let mut c = Cluster::with_brokers(1, &[]);
    let a = c.create_topic("a", 1, 1);
    let b = c.create_topic("b", 1, 1);
    let snapshot = c.image.clone();
    let mut c2 = snapshot.clone();
    let leader_change = MetadataRecord::PartitionChange(PartitionChange {
        topic_id: a,
        partition: 0,
        leader: Some(-1),
        ..PartitionChange::default()
    });
    c2.apply(&leader_change).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        c2.topic(b).unwrap(),
        snapshot.topic(b).unwrap()
    ));
    assert!(!std::sync::Arc::ptr_eq(
        c2.topic(a).unwrap(),
        snapshot.topic(a).unwrap()
    ));
    assert_eq!(c2.partition(a, 0).unwrap().leader_epoch, 1);
    assert_eq!(snapshot.partition(a, 0).unwrap().leader_epoch, 0);
}

#[test]
fn a_delta_over_many_records_keeps_first_old_and_last_new() {
    let mut c = Cluster::with_brokers(2, &[]);
    let t = c.create_topic("t", 1, 2);
    let before = c.partition(t, 0).clone();
    let mut records = c
        .logic
        .handle(
            &c.image,
            ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
                id: 0,
                epoch: c.epoch(0),
                caught_up: true,
                want_fence: true,
                want_shutdown: false,
            }),
            c.now,
        )
        .0;
    let mut scratch = c.image.clone();
    scratch.apply_all(&records).unwrap();
    records.extend(
        c.logic
            .handle(
                &scratch,
                ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
                    id: 0,
                    epoch: c.epoch(0),
                    caught_up: true,
                    want_fence: false,
                    want_shutdown: false,
                }),
                c.now,
            )
            .0,
    );
    let delta = c.image.clone().apply_all(&records).unwrap();
    // Fenced then unfenced: the publisher sees no fencing at all.
    assert!(delta.brokers_fenced.is_empty() && delta.brokers_unfenced.is_empty());
    let d = delta.partitions.get(&(t, 0)).unwrap();
    assert_eq!(d.old.as_ref(), Some(&before));
    assert_eq!(
        d.new.as_ref().unwrap().partition_epoch,
        before.partition_epoch + 1
    );
}
