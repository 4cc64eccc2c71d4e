//! Brokers restarting under a new active controller: the whole cluster crashed (every
//! registration in the image still looks unfenced), or the active controller died with a
//! partition leader. A fresh `ControllerLogic` over the old image stands for the new
//! controller.

use super::*;
use crate::{MetadataError, PartitionChange, NO_LEADER};

/// Three brokers (0, 1, 2) heard by the first controller, a topic of 3 partitions with 3
/// replicas each (every ISR whole), then a new controller over the same image.
fn crashed_cluster() -> (Cluster, Uuid) {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("t", 3, 3);
    for p in 0..3 {
        assert_eq!(c.partition(t, p).isr.len(), 3);
    }
    c.logic = ControllerLogic::new(ControllerConfig::default());
    c.now += 60_000;
    (c, t)
}

fn register_reply(c: &mut Cluster, id: BrokerId) -> ControllerReply {
    c.request(ControllerRequest::RegisterBroker(
        BrokerRegistrationRequest {
            id,
            incarnation: Uuid::new_v4(),
            endpoints: Vec::new(),
            rack: None,
        },
    ))
}

#[test]
fn a_new_controller_lets_a_restarted_broker_register_at_once() {
    let (mut c, t) = crashed_cluster();
    assert!(c.tick().is_empty(), "inherited sessions start afresh");
    let old = c.epoch(0);
    // The old incarnation's session is only inherited: nothing proves it still runs.
    let reply = register_reply(&mut c, 0);
    let ControllerReply::RegisterBroker(Ok(epoch)) = reply else {
        panic!("{reply:?}")
    };
    assert!(epoch > old);
    assert!(c.image.broker(0).unwrap().fenced);
    for p in 0..3 {
        assert!(!c.partition(t, p).isr.contains(&0));
    }
    // Once heard, a second process claiming the id within the session is refused.
    c.heartbeat(0);
    let reply = register_reply(&mut c, 0);
    assert!(
        matches!(
            reply,
            ControllerReply::RegisterBroker(Err(MetadataError::DuplicateBrokerRegistration(0)))
        ),
        "{reply:?}"
    );
}

#[test]
fn a_broker_whose_listener_refuses_is_fenced_at_the_next_tick() {
    let mut c = Cluster::with_brokers(3, &[]);
    let t = c.create_topic("t", 3, 3);
    let led: Vec<i32> = (0..3).filter(|p| c.partition(t, *p).leader == 1).collect();
    assert_eq!(led.len(), 1);
    let before = c.partition(t, led[0]).clone();
    c.now += 100;
    let since = c.now;
    c.now += 200;
    c.logic.unreachable(&c.image.clone(), 1, since);
    let records = c.tick();
    let mut expected = vec![MetadataRecord::BrokerRegistrationChange {
        id: 1,
        epoch: c.epoch(1),
        fenced: Some(true),
        in_controlled_shutdown: None,
    }];
    for p in 0..3 {
        let reg = c.partition(t, p);
        assert!(!reg.isr.contains(&1));
        expected.push(MetadataRecord::PartitionChange(PartitionChange {
            topic_id: t,
            partition: p,
            leader: (p == led[0]).then_some(reg.leader),
            isr: Some(reg.isr.clone()),
            ..PartitionChange::default()
        }));
    }
    assert_eq!(records, expected);
    let after = c.partition(t, led[0]);
    assert_eq!(
        after.leader, before.replicas[1],
        "the next ISR member leads"
    );
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
}

#[test]
fn a_refusal_older_than_the_last_heartbeat_is_ignored() {
    let mut c = Cluster::with_brokers(3, &[]);
    let since = c.now;
    c.now += 100;
    c.heartbeat(1); // heard after the refusal: the restarted process answered
    c.logic.unreachable(&c.image.clone(), 1, since);
    assert!(c.tick().is_empty());
    assert!(!c.image.broker(1).unwrap().fenced);
    // A fenced broker has nothing left to fence.
    c.heartbeat_with(2, true, false);
    c.logic.unreachable(&c.image.clone(), 2, c.now);
    assert!(c.tick().is_empty());
}

/// The whole cluster was SIGKILLed; brokers 0 and 1 restart at once, broker 2 late. Without
/// the refusal, each restarted broker's registration takes it out of the ISRs while 2's
/// inherited registration still looks live, so every ISR ends as [2]: every partition stays
/// leaderless until 2 returns, although 0 and 1 hold every committed record.
fn restart_without(late_refuses: bool) -> (Cluster, Uuid) {
    let (mut c, t) = crashed_cluster();
    if late_refuses {
        // The new controller's vote request to 2 was refused: 2 is fenced first.
        c.logic.unreachable(&c.image.clone(), 2, c.now - 500);
    }
    c.tick();
    for id in [0, 1] {
        c.register(id, None);
    }
    for id in [0, 1] {
        c.heartbeat(id);
    }
    (c, t)
}

#[test]
fn whole_cluster_restart_with_a_late_broker_elects_from_the_returned_isr_members() {
    let (c, t) = restart_without(true);
    assert!(c.image.broker(2).unwrap().fenced);
    for p in 0..3 {
        let reg = c.partition(t, p);
        assert_ne!(reg.leader, NO_LEADER, "partition {p}: {reg:?}");
        assert!(reg.isr.contains(&reg.leader), "{reg:?}");
        assert!(c.image.broker_usable(reg.leader));
        assert!(!reg.isr.contains(&2));
    }

    // The twin without the evidence: led by the dead incarnation of 2, then leaderless
    // once its inherited session lapses, until broker 2 comes back.
    let (mut c, t) = restart_without(false);
    for p in 0..3 {
        let reg = c.partition(t, p);
        assert_eq!((reg.leader, reg.isr.clone()), (2, vec![2]), "{reg:?}");
    }
    c.now += SESSION + 1;
    c.heartbeat(0);
    c.heartbeat(1);
    c.tick();
    for p in 0..3 {
        let reg = c.partition(t, p);
        assert_eq!(
            (reg.leader, reg.isr.clone()),
            (NO_LEADER, vec![2]),
            "{reg:?}"
        );
    }
    c.register(2, None);
    c.heartbeat(2);
    for p in 0..3 {
        assert_eq!(c.partition(t, p).leader, 2);
    }
}
