use std::collections::BTreeSet;

use super::*;
use crate::{HeartbeatReply, MetadataError, NO_LEADER};

fn heartbeat_reply(r: ControllerReply) -> Result<HeartbeatReply, MetadataError> {
    match r {
        ControllerReply::BrokerHeartbeat(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn registration_is_fenced_until_a_caught_up_heartbeat() {
    let mut c = Cluster::new();
    let e0 = c.register(0, Some("r".into()));
    let e1 = c.register(1, None);
    assert!(e1 > e0);
    let b = c.image.broker(0).unwrap();
    assert!(b.fenced);
    assert_eq!(b.rack.as_deref(), Some("r"));
    let not_caught_up = c.request(ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
        id: 0,
        epoch: e0,
        caught_up: false,
        want_fence: false,
        want_shutdown: false,
    }));
    assert!(heartbeat_reply(not_caught_up).unwrap().is_fenced);
    let reply = heartbeat_reply(c.heartbeat(0)).unwrap();
    assert!(!reply.is_fenced && reply.is_caught_up && !reply.should_shut_down);
    assert!(!c.image.broker(0).unwrap().fenced);
    assert_eq!(c.last_delta.brokers_unfenced, BTreeSet::from([0]));
}

#[test]
fn heartbeat_with_stale_epoch_or_unknown_id_is_refused() {
    let mut c = Cluster::with_brokers(1, &[]);
    let epoch = c.epoch(0);
    let hb = |id, epoch| {
        ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            id,
            epoch,
            caught_up: true,
            want_fence: false,
            want_shutdown: false,
        })
    };
    let err = heartbeat_reply(c.request(hb(0, epoch - 1))).unwrap_err();
    assert_eq!(err.code(), 77);
    assert_eq!(
        heartbeat_reply(c.request(hb(5, 1))).unwrap_err().code(),
        102
    );
}

#[test]
fn retried_registration_keeps_its_epoch_and_a_live_duplicate_is_refused() {
    let mut c = Cluster::with_brokers(1, &[]);
    let reg = |incarnation| {
        ControllerRequest::RegisterBroker(BrokerRegistrationRequest {
            id: 0,
            incarnation,
            endpoints: Vec::new(),
            rack: None,
        })
    };
    let incarnation = c.image.broker(0).unwrap().incarnation;
    let epoch = c.epoch(0);
    let (records, reply) = c.decide(reg(incarnation));
    assert!(records.is_empty());
    assert_eq!(reply, ControllerReply::RegisterBroker(Ok(epoch)));
    // Another process claims the id while the first one's session is live.
    let other = Uuid::new_v4();
    let reply = c.request(reg(other));
    assert!(matches!(
        reply,
        ControllerReply::RegisterBroker(Err(MetadataError::DuplicateBrokerRegistration(0)))
    ));
    // Once the session expired (process gone), a new incarnation registers.
    c.now += SESSION + 1;
    c.tick();
    let ControllerReply::RegisterBroker(Ok(new_epoch)) = c.request(reg(other)) else {
        panic!()
    };
    assert!(new_epoch > epoch);
}

#[test]
fn session_expiry_fences_moves_leadership_and_shrinks_isr() {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("t", 3, 3);
    let led_by_1: Vec<i32> = (0..3).filter(|p| c.partition(t, *p).leader == 1).collect();
    assert_eq!(led_by_1.len(), 1);
    let before: Vec<_> = (0..3).map(|p| c.partition(t, p).clone()).collect();

    // 0 and 2 keep heartbeating, 1 goes silent.
    c.now += SESSION / 2;
    c.heartbeat(0);
    c.heartbeat(2);
    assert!(c.tick().is_empty());
    c.now += SESSION / 2 + 1;
    let records = c.tick();
    assert!(matches!(
        records[0],
        MetadataRecord::BrokerRegistrationChange {
            id: 1,
            fenced: Some(true),
            ..
        }
    ));
    assert_eq!(
        records.len(),
        4,
        "one fence and a change per partition: {records:?}"
    );
    assert!(c.image.broker(1).unwrap().fenced);
    assert_eq!(c.last_delta.brokers_fenced, BTreeSet::from([1]));
    for p in 0..3 {
        let (old, new) = (&before[p as usize], c.partition(t, p));
        assert!(!new.isr.contains(&1), "{new:?}");
        assert_eq!(new.partition_epoch, old.partition_epoch + 1);
        if led_by_1.contains(&p) {
            // The next ISR member in replica order leads, with a new leader epoch.
            let expected = old.replicas.iter().copied().find(|b| *b != 1).unwrap();
            assert_eq!(new.leader, expected);
            assert_eq!(new.leader_epoch, old.leader_epoch + 1);
        } else {
            assert_eq!(new.leader, old.leader);
            assert_eq!(new.leader_epoch, old.leader_epoch);
        }
    }
    // Fenced brokers have no session: no further records.
    c.now += SESSION * 2;
    c.heartbeat(0);
    c.heartbeat(2);
    assert!(c.tick().is_empty());
    assert_eq!(c.logic.next_deadline(), Some(c.now + SESSION));
}

#[test]
fn a_fenced_brokers_lapsed_session_does_not_keep_the_deadline_in_the_past() {
    let mut c = Cluster::with_brokers(2, &[]);
    c.heartbeat_with(1, true, false); // fenced on request, session refreshed
    c.now += SESSION + 1;
    c.heartbeat(0);
    assert!(c.tick().is_empty(), "1 is fenced already");
    assert_eq!(c.logic.next_deadline(), Some(c.now + SESSION));
}

#[test]
fn fencing_the_last_isr_member_leaves_the_partition_leaderless() {
    let mut c = Cluster::with_brokers(2, &[]);
    let t = c.create_topic("t", 1, 2);
    let first = c.partition(t, 0).leader;
    let second = c.partition(t, 0).replicas[1];
    c.heartbeat_with(first, true, false);
    assert_eq!(c.partition(t, 0).leader, second);
    assert_eq!(c.partition(t, 0).isr, vec![second]);
    let epoch = c.partition(t, 0).leader_epoch;
    c.heartbeat_with(second, true, false);
    let reg = c.partition(t, 0);
    // Both fenced: the ISR keeps its last member and the partition has no leader.
    assert_eq!(reg.leader, NO_LEADER);
    assert_eq!(reg.isr, vec![second]);
    assert_eq!(reg.leader_epoch, epoch + 1);
    // The last member coming back leads again.
    c.heartbeat(second);
    assert_eq!(c.partition(t, 0).leader, second);
    assert_eq!(c.partition(t, 0).leader_epoch, epoch + 2);
}

#[test]
fn never_elects_outside_the_isr_when_unclean_is_off() {
    let mut c = Cluster::with_brokers(2, &[]);
    let t = c.create_topic("t", 1, 2);
    let [a, b] = [c.partition(t, 0).replicas[0], c.partition(t, 0).replicas[1]];
    c.heartbeat_with(b, true, false); // b out of the ISR
    c.heartbeat(b); // b back, unfenced but not in the ISR
    assert_eq!(c.partition(t, 0).isr, vec![a]);
    c.heartbeat_with(a, true, false);
    let reg = c.partition(t, 0);
    assert_eq!(reg.leader, NO_LEADER);
    assert_eq!(reg.isr, vec![a]);
}

#[test]
fn unclean_election_when_enabled_recovers_with_the_leader_alone() {
    let config = ControllerConfig {
        unclean_leader_election_enable: true,
        ..ControllerConfig::default()
    };
    let mut c = Cluster::with_config(config);
    for id in 0..2 {
        c.register(id, None);
        c.heartbeat(id);
    }
    let t = c.create_topic("t", 1, 2);
    let [a, b] = [c.partition(t, 0).replicas[0], c.partition(t, 0).replicas[1]];
    c.heartbeat_with(b, true, false);
    c.heartbeat(b);
    c.heartbeat_with(a, true, false);
    let reg = c.partition(t, 0);
    assert_eq!(reg.leader, b);
    assert_eq!(reg.isr, vec![b]);
    assert_eq!(reg.leader_recovery, crate::LeaderRecovery::Recovering);
}

#[test]
fn controlled_shutdown_moves_leadership_then_allows_shutdown() {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("t", 3, 2);
    let leads = |c: &Cluster, b| (0..3).filter(|p| c.partition(t, *p).leader == b).count();
    assert!(leads(&c, 0) > 0);
    let reply = heartbeat_reply(c.heartbeat_with(0, false, true)).unwrap();
    assert!(reply.should_shut_down);
    assert!(c.image.broker(0).unwrap().in_controlled_shutdown);
    assert_eq!(leads(&c, 0), 0);
    for p in 0..3 {
        assert!(!c.partition(t, p).isr.contains(&0));
    }
    // New topics avoid it.
    let u = c.create_topic("u", 3, 2);
    assert!((0..3).all(|p| !c.partition(u, p).replicas.contains(&0)));
}

#[test]
fn controlled_shutdown_of_the_only_replica_goes_leaderless() {
    let mut c = Cluster::with_brokers(1, &[]);
    let t = c.create_topic("t", 1, 1);
    let reply = heartbeat_reply(c.heartbeat_with(0, false, true)).unwrap();
    assert!(reply.should_shut_down);
    assert_eq!(c.partition(t, 0).leader, NO_LEADER);
    assert_eq!(c.partition(t, 0).isr, vec![0]);
}

#[test]
fn unregister_removes_the_broker_and_its_leaderships() {
    let mut c = Cluster::with_brokers(2, &[]);
    let t = c.create_topic("t", 2, 2);
    // Live and holding replicas: refused, nothing written.
    let live = c.request(ControllerRequest::UnregisterBroker { id: 1 });
    assert!(
        matches!(
            &live,
            ControllerReply::UnregisterBroker(Err(MetadataError::InvalidRequest(m))) if m.contains("holds 2 replicas")
        ),
        "{live:?}"
    );
    assert!(c.image.broker(1).is_some());
    // Stopped (fenced once its session lapsed): its replicas stay listed, offline.
    c.now += SESSION + 1;
    c.heartbeat(0);
    c.tick();
    assert_eq!(c.image.broker(1).map(|b| b.fenced), Some(true));
    assert_eq!(
        c.request(ControllerRequest::UnregisterBroker { id: 1 }),
        ControllerReply::UnregisterBroker(Ok(()))
    );
    assert!(c.image.broker(1).is_none());
    for p in 0..2 {
        assert!(c.partition(t, p).replicas.contains(&1));
    }
    assert_eq!(c.last_delta.brokers_unregistered, BTreeSet::from([1]));
    for p in 0..2 {
        assert_eq!(c.partition(t, p).leader, 0);
        assert_eq!(c.partition(t, p).isr, vec![0]);
    }
    let again = c.request(ControllerRequest::UnregisterBroker { id: 1 });
    assert!(matches!(
        again,
        ControllerReply::UnregisterBroker(Err(MetadataError::BrokerIdNotRegistered(1)))
    ));
}

#[test]
fn a_live_broker_holding_nothing_may_be_unregistered() {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("t", 1, 2);
    let idle = (0..3)
        .find(|b| !c.partition(t, 0).replicas.contains(b))
        .unwrap();
    assert_eq!(
        c.request(ControllerRequest::UnregisterBroker { id: idle }),
        ControllerReply::UnregisterBroker(Ok(()))
    );
    assert!(c.image.broker(idle).is_none());
    // New topics are placed on the brokers left.
    let u = c.create_topic("u", 4, 2);
    assert!((0..4).all(|p| !c.partition(u, p).replicas.contains(&idle)));
}

#[test]
fn reregistration_of_a_new_incarnation_leaves_every_isr() {
    let mut c = Cluster::with_brokers(2, &[]);
    let t = c.create_topic("t", 2, 2);
    let old_epoch = c.epoch(1);
    c.now += SESSION + 1;
    c.heartbeat(0);
    c.tick(); // 1 fenced
    let epoch = c.register(1, None);
    assert!(epoch > old_epoch);
    assert!(c.image.broker(1).unwrap().fenced);
    for p in 0..2 {
        assert!(!c.partition(t, p).isr.contains(&1));
        assert_eq!(c.partition(t, p).leader, 0);
    }
}

#[test]
fn a_new_controller_gives_every_broker_a_fresh_session() {
    let mut c = Cluster::with_brokers(2, &[]);
    c.now += SESSION * 3;
    c.logic = ControllerLogic::new(ControllerConfig::default());
    assert!(c.tick().is_empty());
    assert_eq!(c.logic.next_deadline(), Some(c.now + SESSION));
    c.now += SESSION;
    assert_eq!(c.tick().len(), 2);
}

#[test]
fn producer_id_blocks_never_overlap() {
    let mut c = Cluster::with_brokers(3, &[]);
    let mut blocks = Vec::new();
    for round in 0..4 {
        for id in 0..3 {
            let epoch = c.epoch(id);
            let reply = c.request(ControllerRequest::AllocateProducerIds {
                broker_id: id,
                broker_epoch: epoch,
            });
            let ControllerReply::AllocateProducerIds(Ok((start, len))) = reply else {
                panic!("{round}: {reply:?}")
            };
            assert_eq!(len, 1_000);
            blocks.push((start, start + i64::from(len)));
        }
    }
    blocks.sort();
    for pair in blocks.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "{pair:?}");
    }
    assert_eq!(c.image.next_producer_id(), 12_000);
    let stale = c.request(ControllerRequest::AllocateProducerIds {
        broker_id: 0,
        broker_epoch: 0,
    });
    assert!(matches!(
        stale,
        ControllerReply::AllocateProducerIds(Err(MetadataError::StaleBrokerEpoch { .. }))
    ));
}
