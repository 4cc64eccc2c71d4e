//! KIP-848 groups through a real offsets log: a heartbeat that changes the group is
//! answered only once its record is in the log, a broker reopened on the log resumes the
//! group (members keep their epochs and partitions), and a failed append answers an error
//! and leaves the coordinator equal to its log.

use weir_coordinator::{
    ConsumerHeartbeat, ConsumerHeartbeatResponse, CoordinatorConfig, ErrorCode,
};
use weir_storage::fuzzing::inject_write_failures;
use weir_storage::Recovery;

use crate::groups::Groups;

fn topics(name: &str) -> Option<i32> {
    (name == "orders").then_some(4)
}

fn heartbeat(member: &str, epoch: i32) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".to_owned(),
        member_id: member.to_owned(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        subscribed_topic_names: (epoch == 0).then(|| vec!["orders".to_owned()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        topic_partitions: (epoch == 0).then(Vec::new),
        client_id: "c".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
    }
}

async fn beat(groups: &Groups, member: &str, epoch: i32) -> ConsumerHeartbeatResponse {
    groups
        .consumer_heartbeat(heartbeat(member, epoch), &topics)
        .await
}

fn open(dir: &std::path::Path) -> Groups {
    Groups::open(dir, Recovery::Scan, CoordinatorConfig::default()).expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_coordinator_resumes_a_consumer_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups = open(dir.path());
    let r = beat(&groups, "m1", 0).await;
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 1));
    let r = beat(&groups, "m2", 0).await;
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 2));
    let records = groups.log().log_end_offset();
    // A steady heartbeat appends nothing.
    let r = beat(&groups, "m2", 2).await;
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 2));
    assert_eq!(groups.log().log_end_offset(), records);
    let before = groups.consumer_describe(&["g".to_owned()]);
    groups.close().expect("close");
    drop(groups);

    let groups = open(dir.path());
    assert_eq!(groups.consumer_describe(&["g".to_owned()]), before);
    let r = beat(&groups, "m2", 2).await;
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 2));
    let r = beat(&groups, "m1", 1).await;
    assert_eq!(r.error, ErrorCode::NONE, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_whose_record_fails_is_refused_and_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups = open(dir.path());
    let r = beat(&groups, "m1", 0).await;
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 1));

    inject_write_failures(groups.log(), true);
    let r = beat(&groups, "m2", 0).await;
    assert_eq!(r.error, ErrorCode::COORDINATOR_NOT_AVAILABLE, "{r:?}");
    inject_write_failures(groups.log(), false);
    // The coordinator was rebuilt from its log: m2 never joined, m1 is still at epoch 1.
    let d = groups.consumer_describe(&["g".to_owned()]).remove(0);
    assert_eq!(d.group_epoch, 1);
    assert_eq!(d.members.len(), 1);
    let r = beat(&groups, "m1", 1).await;
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 1));
}
