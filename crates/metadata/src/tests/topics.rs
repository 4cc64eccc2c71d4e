use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::{
    AlterConfigsResource, ConfigResource, ControllerReply, CreatePartitionsTopic, MetadataError,
};

#[test]
fn create_topic_writes_topic_and_partition_records() {
    let mut c = Cluster::with_brokers(3, &[]);
    let (records, reply) = c.decide(create("orders", 2, 3));
    let ControllerReply::CreateTopics(v) = &reply else {
        panic!()
    };
    let created = v[0].1.as_ref().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (2, 3));
    assert_eq!(records.len(), 3);
    assert!(
        matches!(&records[0], MetadataRecord::Topic { name, topic_id } if name == "orders" && *topic_id == created.topic_id)
    );
    for (i, r) in records[1..].iter().enumerate() {
        let MetadataRecord::Partition {
            partition,
            registration,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(*partition, i as i32);
        assert_eq!(registration.replicas.len(), 3);
        assert_eq!(registration.isr, registration.replicas);
        assert_eq!(registration.leader, registration.replicas[0]);
        assert_eq!(
            (registration.leader_epoch, registration.partition_epoch),
            (0, 0)
        );
    }
    c.commit(records);
    assert_eq!(
        c.last_delta.topics_created,
        vec![("orders".to_string(), created.topic_id)]
    );
    assert_eq!(c.last_delta.partitions.len(), 2);
}

#[test]
fn placement_spreads_leaders_and_replicas_over_brokers() {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("t", 6, 2);
    let mut leaders: BTreeMap<BrokerId, usize> = BTreeMap::new();
    let mut replicas: BTreeMap<BrokerId, usize> = BTreeMap::new();
    let mut sets = BTreeSet::new();
    for p in 0..6 {
        let reg = c.partition(t, p);
        *leaders.entry(reg.leader).or_default() += 1;
        for r in &reg.replicas {
            *replicas.entry(*r).or_default() += 1;
        }
        assert_ne!(reg.replicas[0], reg.replicas[1]);
        sets.insert(reg.replicas.clone());
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    assert_eq!(
        replicas.values().copied().collect::<Vec<_>>(),
        vec![4, 4, 4]
    );
    // The follower shift varies the pairs between rounds, not only the leader.
    assert!(sets.len() >= 4, "{sets:?}");
}

#[test]
fn placement_rotates_first_leader_across_topics() {
    let mut c = Cluster::with_brokers(3, &[]);
    let leaders: Vec<BrokerId> = (0..3)
        .map(|i| {
            let t = c.create_topic(&format!("t{i}"), 1, 1);
            c.partition(t, 0).leader
        })
        .collect();
    assert_eq!(
        leaders.iter().collect::<BTreeSet<_>>().len(),
        3,
        "{leaders:?}"
    );
}

#[test]
fn placement_puts_replicas_on_distinct_racks() {
    // Racks a, b, c with two brokers each: 0,3 in a; 1,4 in b; 2,5 in c.
    let mut c = Cluster::with_brokers(6, &["a", "b", "c"]);
    let t = c.create_topic("t", 12, 3);
    let rack = |b: BrokerId| c.image.broker(b).unwrap().rack.clone().unwrap();
    let mut leaders: BTreeMap<BrokerId, usize> = BTreeMap::new();
    for p in 0..12 {
        let reg = c.partition(t, p);
        let racks: BTreeSet<String> = reg.replicas.iter().map(|b| rack(*b)).collect();
        assert_eq!(racks.len(), 3, "partition {p}: {:?}", reg.replicas);
        *leaders.entry(reg.leader).or_default() += 1;
    }
    assert_eq!(leaders.len(), 6);
    assert!(leaders.values().all(|n| *n == 2), "{leaders:?}");
}

#[test]
fn placement_skips_fenced_and_shutting_down_brokers() {
    let mut c = Cluster::with_brokers(3, &[]);
    c.heartbeat_with(1, true, false);
    assert!(c.image.broker(1).unwrap().fenced);
    let t = c.create_topic("t", 4, 2);
    for p in 0..4 {
        assert!(!c.partition(t, p).replicas.contains(&1));
    }
    let reply = c.request(create("u", 1, 3));
    assert_eq!(create_error(&reply), 38);
}

#[test]
fn create_topic_validation_uses_kafkas_codes() {
    let mut c = Cluster::with_brokers(2, &[]);
    c.create_topic("exists", 1, 1);
    assert_eq!(create_error(&c.request(create("exists", 1, 1))), 36);
    assert_eq!(create_error(&c.request(create("bad name", 1, 1))), 17);
    assert_eq!(create_error(&c.request(create("..", 1, 1))), 17);
    assert_eq!(create_error(&c.request(create(&"x".repeat(250), 1, 1))), 17);
    assert_eq!(create_error(&c.request(create("zero", 0, 1))), 37);
    assert_eq!(create_error(&c.request(create("rf0", 1, 0))), 38);
    assert_eq!(create_error(&c.request(create("rf3", 1, 3))), 38);
    c.create_topic("a.b", 1, 1);
    assert_eq!(create_error(&c.request(create("a_b", 1, 1))), 17);
    let mut bad_config = create("cfg", 1, 1);
    if let ControllerRequest::CreateTopics { topics, .. } = &mut bad_config {
        topics[0].configs = vec![("min.insync.replicas".into(), "0".into())];
    }
    assert_eq!(create_error(&c.request(bad_config)), 40);
    // Nothing was written by any refused request.
    assert_eq!(c.image.topics().count(), 2);
}

#[test]
fn duplicate_names_in_one_request_are_all_refused() {
    let mut c = Cluster::with_brokers(1, &[]);
    let mut req = create("d", 1, 1);
    if let ControllerRequest::CreateTopics { topics, .. } = &mut req {
        topics.push(topics[0].clone());
    }
    let ControllerReply::CreateTopics(v) = c.request(req) else {
        panic!()
    };
    assert!(v.iter().all(|(_, r)| r.as_ref().unwrap_err().code() == 42));
    assert!(c.image.topic_by_name("d").is_none());
}

#[test]
fn explicit_assignment_is_validated_and_kept() {
    let mut c = Cluster::with_brokers(3, &[]);
    let with = |a: Vec<Vec<BrokerId>>, p: i32, rf: i16| ControllerRequest::CreateTopics {
        topics: vec![CreatableTopic {
            name: "m".into(),
            num_partitions: p,
            replication_factor: rf,
            assignment: Some(a),
            configs: Vec::new(),
        }],
        validate_only: false,
    };
    assert_eq!(create_error(&c.request(with(vec![vec![0, 1]], 1, 2))), 42);
    assert_eq!(create_error(&c.request(with(vec![vec![0, 0]], -1, -1))), 39);
    assert_eq!(create_error(&c.request(with(vec![vec![0, 7]], -1, -1))), 39);
    assert_eq!(
        create_error(&c.request(with(vec![vec![0, 1], vec![2]], -1, -1))),
        39
    );
    let ControllerReply::CreateTopics(v) = c.request(with(vec![vec![2, 0], vec![1, 2]], -1, -1))
    else {
        panic!()
    };
    let t = v[0].1.as_ref().unwrap().topic_id;
    assert_eq!(c.partition(t, 0).replicas, vec![2, 0]);
    assert_eq!(c.partition(t, 0).leader, 2);
    assert_eq!(c.partition(t, 1).replicas, vec![1, 2]);
}

#[test]
fn validate_only_writes_nothing() {
    let mut c = Cluster::with_brokers(1, &[]);
    let mut req = create("v", 3, 1);
    if let ControllerRequest::CreateTopics { validate_only, .. } = &mut req {
        *validate_only = true;
    }
    let (records, reply) = c.decide(req);
    assert!(records.is_empty());
    let ControllerReply::CreateTopics(v) = reply else {
        panic!()
    };
    assert_eq!(v[0].1.as_ref().unwrap().num_partitions, 3);
}

#[test]
fn delete_topic_removes_partitions_and_configs() {
    let mut c = Cluster::with_brokers(1, &[]);
    let t = c.create_topic("gone", 2, 1);
    c.request(ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource: ConfigResource::Topic("gone".into()),
            ops: vec![("retention.ms".into(), Some("1000".into()))],
        }],
        validate_only: false,
    });
    let reply = c.request(ControllerRequest::DeleteTopics {
        names: vec!["gone".into(), "never".into()],
    });
    let ControllerReply::DeleteTopics(v) = reply else {
        panic!()
    };
    assert_eq!(v[0].1, Ok(t));
    assert_eq!(v[1].1.as_ref().unwrap_err().code(), 3);
    assert!(c.image.topic(t).is_none());
    assert!(c
        .image
        .configs(&ConfigResource::Topic("gone".into()))
        .is_none());
    assert_eq!(c.last_delta.topics_deleted, vec![("gone".to_string(), t)]);
    assert_eq!(c.last_delta.partitions.len(), 2);
    assert!(c.last_delta.partitions.values().all(|d| d.new.is_none()));
    // The name is free again, under a new id.
    let again = c.create_topic("gone", 1, 1);
    assert_ne!(again, t);
}

#[test]
fn create_partitions_adds_with_the_topics_replication_factor() {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("grow", 2, 2);
    let req = |count, assignment| ControllerRequest::CreatePartitions {
        topics: vec![CreatePartitionsTopic {
            name: "grow".into(),
            count,
            assignment,
        }],
        validate_only: false,
    };
    let code = |r: ControllerReply| match r {
        ControllerReply::CreatePartitions(v) => v[0].1.as_ref().err().map(MetadataError::code),
        other => panic!("{other:?}"),
    };
    assert_eq!(code(c.request(req(2, None))), Some(37));
    assert_eq!(code(c.request(req(4, Some(vec![vec![0, 1]])))), Some(39));
    assert_eq!(code(c.request(req(3, Some(vec![vec![0]])))), Some(39));
    assert_eq!(code(c.request(req(5, None))), None);
    for p in 2..5 {
        assert_eq!(c.partition(t, p).replicas.len(), 2);
    }
    assert_eq!(code(c.request(req(6, Some(vec![vec![2, 1]])))), None);
    assert_eq!(c.partition(t, 5).replicas, vec![2, 1]);
    let unknown = ControllerRequest::CreatePartitions {
        topics: vec![CreatePartitionsTopic {
            name: "nope".into(),
            count: 2,
            assignment: None,
        }],
        validate_only: false,
    };
    assert_eq!(code(c.request(unknown)), Some(3));
}

#[test]
fn alter_configs_sets_deletes_and_validates() {
    let mut c = Cluster::with_brokers(1, &[]);
    c.create_topic("cfg", 1, 1);
    let topic = ConfigResource::Topic("cfg".into());
    let alter = |resource: ConfigResource, ops: Vec<(&str, Option<&str>)>| {
        ControllerRequest::AlterConfigs {
            resources: vec![AlterConfigsResource {
                resource,
                ops: ops
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                    .collect(),
            }],
            validate_only: false,
        }
    };
    let result = |r: ControllerReply| match r {
        ControllerReply::AlterConfigs(v) => v[0].1.clone(),
        other => panic!("{other:?}"),
    };
    assert!(result(c.request(alter(
        topic.clone(),
        vec![("min.insync.replicas", Some("2"))]
    )))
    .is_ok());
    assert_eq!(c.image.config(&topic, "min.insync.replicas"), Some("2"));
    assert!(c.last_delta.configs_changed.contains(&topic));
    assert_eq!(
        result(c.request(alter(
            topic.clone(),
            vec![("unclean.leader.election.enable", Some("maybe"))]
        )))
        .unwrap_err()
        .code(),
        40
    );
    assert!(result(c.request(alter(topic.clone(), vec![("min.insync.replicas", None)]))).is_ok());
    assert_eq!(c.image.config(&topic, "min.insync.replicas"), None);
    let unknown = ConfigResource::Topic("nope".into());
    assert_eq!(
        result(c.request(alter(unknown, vec![("a", Some("b"))])))
            .unwrap_err()
            .code(),
        3
    );
    assert!(result(c.request(alter(
        ConfigResource::ClusterDefault,
        vec![("x", Some("y"))]
    )))
    .is_ok());
    assert_eq!(
        c.image.config(&ConfigResource::ClusterDefault, "x"),
        Some("y")
    );
}
