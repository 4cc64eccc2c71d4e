//! Brokers beyond the voters (design §4.5): a node outside `controller.quorum.voters`
//! registers through the voters, becomes an openraft learner, follows every leader,
//! restarts from its own log, never votes, and leaves the membership when unregistered.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ServerState;
use weir_metadata::{ControllerReply, ControllerRequest, CreatableTopic, MetadataError};

use super::quorum::{all_unfenced, Cluster};
use crate::NodeId;

fn create(c: &Cluster, via: NodeId, name: &str, on: i32) {
    let reply = c
        .block_on(
            via,
            c.node(via).submit(ControllerRequest::CreateTopics {
                topics: vec![CreatableTopic {
                    name: name.into(),
                    num_partitions: -1,
                    replication_factor: -1,
                    assignment: Some(vec![vec![on]]),
                    configs: vec![],
                }],
                validate_only: false,
            }),
        )
        .expect("submit");
    assert!(
        matches!(&reply, ControllerReply::CreateTopics(v) if v[0].1.is_ok()),
        "{reply:?}"
    );
}

fn unregister(c: &Cluster, via: NodeId, id: i32) -> Result<(), MetadataError> {
    match c
        .block_on(
            via,
            c.node(via)
                .submit(ControllerRequest::UnregisterBroker { id }),
        )
        .expect("submit")
    {
        ControllerReply::UnregisterBroker(r) => r,
        other => panic!("unexpected reply {other:?}"),
    }
}

fn membership(c: &Cluster, id: NodeId) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
    let m = c.node(id).metrics().borrow().clone();
    let membership = m.membership_config.membership();
    (
        membership.voter_ids().collect(),
        membership.learner_ids().collect(),
    )
}

#[test]
fn a_broker_beyond_the_voters_learns_the_log_from_every_leader_and_can_be_unregistered() {
    let mut c = Cluster::new(3);
    c.wait_all("three unfenced voters", Duration::from_secs(30), |n| {
        all_unfenced(&n.image(), &[1, 2, 3])
    });
    c.start(4);
    let joined = c.wait_all(
        "broker 4 registered and unfenced everywhere",
        Duration::from_secs(30),
        |n| all_unfenced(&n.image(), &[1, 2, 3, 4]),
    );
    eprintln!("broker 4 joined in {joined:?}");
    for id in 1..=4 {
        let (voters, learners) = membership(&c, id);
        assert_eq!(voters, BTreeSet::from([1, 2, 3]), "node {id}");
        assert_eq!(learners, BTreeSet::from([4]), "node {id}");
    }
    assert_eq!(c.node(4).metrics().borrow().state, ServerState::Learner);
    // The active controller's view lists it as an observer with its log end.
    let quorum = c.block_on(4, c.node(4).describe_quorum());
    assert_eq!(quorum.voters.len(), 3, "{quorum:?}");
    assert!(
        quorum
            .observers
            .iter()
            .any(|o| o.id == 4 && o.log_end.is_some()),
        "{quorum:?}"
    );
    // A request through the learner is forwarded and applied on it before submit returns.
    create(&c, 4, "via-learner", 1);
    assert!(c.node(4).image().topic_by_name("via-learner").is_some());

    // The active controller dies: the next one keeps replicating to the learner, which
    // never stands for election.
    let leader = c.node(1).leader().expect("leader");
    c.kill(leader);
    c.wait_all("a new leader", Duration::from_secs(10), |n| {
        n.leader().is_some_and(|l| l != leader)
    });
    let voter = (1..=3).find(|id| *id != leader).expect("a voter");
    create(
        &c,
        voter,
        "after-failover",
        i32::try_from(voter).expect("id"),
    );
    c.wait_all(
        "the learner has the topic created after the failover",
        Duration::from_secs(10),
        |n| n.image().topic_by_name("after-failover").is_some(),
    );
    assert_eq!(c.node(4).metrics().borrow().state, ServerState::Learner);

    // It restarts from its own directory (still a learner) and registers anew. The old
    // incarnation's registration stays unfenced until its session lapses (the new one is
    // refused as a duplicate meanwhile): wait for the new registration's epoch.
    let before = c.node(voter).image().broker(4).map(|b| b.epoch);
    c.kill(4);
    c.start(4);
    c.wait_all(
        "broker 4 registered anew and unfenced, with the topics",
        Duration::from_secs(30),
        |n| {
            let image = n.image();
            image
                .broker(4)
                .is_some_and(|b| !b.fenced && Some(b.epoch) > before)
                && image.topic_by_name("after-failover").is_some()
        },
    );
    assert_eq!(c.node(4).metrics().borrow().state, ServerState::Learner);

    // UnregisterBroker: a voter is refused; a live learner holding a replica is refused;
    // once it holds none it goes, from the image and from the membership, and it does
    // not register again.
    let refused = unregister(&c, 4, i32::try_from(voter).expect("id"));
    assert!(
        matches!(&refused, Err(MetadataError::InvalidRequest(m)) if m.contains("voter")),
        "{refused:?}"
    );
    create(&c, voter, "on-4", 4);
    let refused = unregister(&c, voter, 4);
    assert!(
        matches!(&refused, Err(MetadataError::InvalidRequest(m)) if m.contains("holds 1 replicas")),
        "{refused:?}"
    );
    let reply = c
        .block_on(
            voter,
            c.node(voter).submit(ControllerRequest::DeleteTopics {
                names: vec!["on-4".into()],
            }),
        )
        .expect("submit");
    assert!(matches!(&reply, ControllerReply::DeleteTopics(v) if v[0].1.is_ok()));
    assert_eq!(unregister(&c, voter, 4), Ok(()));
    c.wait_all(
        "broker 4 gone from every image and membership",
        Duration::from_secs(10),
        |n| {
            // The removed learner itself is no longer replicated to.
            let m = n.metrics().borrow().clone();
            let learners: Vec<NodeId> = m.membership_config.membership().learner_ids().collect();
            n.id() == 4 || (n.image().broker(4).is_none() && learners.is_empty())
        },
    );
    // Its heartbeats are refused and it stays out (several heartbeat intervals).
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(
        c.node(voter).image().broker(4).is_none(),
        "{:?} learners {:?}",
        c.node(voter).image().broker(4),
        membership(&c, voter)
    );
    assert_eq!(
        c.block_on(4, async { c.node(4).broker_state().borrow().epoch }),
        None
    );
}
