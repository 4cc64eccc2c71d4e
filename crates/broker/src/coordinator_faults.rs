//! Fault injection into the coordinators' internal logs: a failed append or fsync must leave
//! the coordinator's memory equal to its log (rebuilt by replay), never answer a retry from
//! memory the log lacks, and a failed fsync must make the coordinator unavailable rather
//! than be retried.

use std::sync::Arc;
use std::time::Duration;

use weir_coordinator::txn::{InitRequest, TxnState};
use weir_coordinator::{
    CommitRequest, CommittedOffset, CoordinatorConfig, ErrorCode, TopicPartition, TxnCommitRequest,
};
use weir_storage::fuzzing::{inject_fsync_failures, inject_write_failures};
use weir_storage::Recovery;

use crate::groups::Groups;
use crate::state::State;

const NA: ErrorCode = ErrorCode::COORDINATOR_NOT_AVAILABLE;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t".to_owned(), p)
}

fn at(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: None,
        metadata: None,
        commit_timestamp_ms: 0,
    }
}

fn commit(group: &str, p: i32, offset: i64) -> CommitRequest {
    CommitRequest {
        group_id: group.to_owned(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![(tp(p), at(offset))],
    }
}

fn txn_commit(group: &str, producer_id: i64, offset: i64) -> TxnCommitRequest {
    TxnCommitRequest {
        group_id: group.to_owned(),
        producer_id,
        producer_epoch: 0,
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![(tp(0), at(offset))],
    }
}

async fn offset_of(groups: &Groups, group: &str, p: i32) -> Option<i64> {
    let fetched = groups
        .fetch_offsets(group, Some(vec![tp(p)]))
        .await
        .expect("fetch");
    fetched
        .first()
        .and_then(|(_, c)| c.as_ref())
        .map(|c| c.offset)
}

fn assert_matches_replay(groups: &Groups) {
    let live = groups.snapshot().expect("coordinator available");
    assert_eq!(
        live,
        groups.replayed_snapshot(),
        "memory differs from the log"
    );
}

/// Every offsets-log write path, failing once: the request fails, memory equals a replay of
/// the log, a retry during the failure fails too, and after it clears the retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_offsets_log_appends_rebuild_the_group_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups =
        Groups::open(dir.path(), Recovery::Scan, CoordinatorConfig::default()).expect("open");
    assert_eq!(
        groups.commit(commit("g", 0, 5)).await,
        vec![(tp(0), ErrorCode::NONE)]
    );
    assert_eq!(
        groups.commit(commit("g", 1, 7)).await,
        vec![(tp(1), ErrorCode::NONE)]
    );
    assert_eq!(
        groups.commit(commit("h", 0, 1)).await,
        vec![(tp(0), ErrorCode::NONE)]
    );

    // OffsetCommit.
    inject_write_failures(groups.log(), true);
    for _ in 0..2 {
        assert_eq!(groups.commit(commit("g", 0, 10)).await, vec![(tp(0), NA)]);
        assert_eq!(
            offset_of(&groups, "g", 0).await,
            Some(5),
            "answered ahead of the log"
        );
        assert_matches_replay(&groups);
    }
    // TxnOffsetCommit.
    assert_eq!(
        groups.txn_commit(txn_commit("g", 42, 20)).await,
        vec![(tp(0), NA)]
    );
    assert!(groups.unstable_partitions("g").is_empty());
    assert_matches_replay(&groups);
    // OffsetDelete.
    let deleted = groups.delete_offsets("g", vec![tp(1)]).await;
    assert_eq!(deleted.error, NA);
    assert_eq!(offset_of(&groups, "g", 1).await, Some(7));
    // DeleteGroups.
    assert_eq!(
        groups.delete_groups(vec!["h".into()]).await,
        vec![("h".into(), NA)]
    );
    assert_eq!(offset_of(&groups, "h", 0).await, Some(1));
    // A deleted topic's tombstones.
    groups.topic_deleted("t");
    assert_eq!(offset_of(&groups, "g", 0).await, Some(5));
    assert_matches_replay(&groups);

    inject_write_failures(groups.log(), false);
    assert_eq!(
        groups.commit(commit("g", 0, 10)).await,
        vec![(tp(0), ErrorCode::NONE)]
    );
    assert_eq!(offset_of(&groups, "g", 0).await, Some(10));
    assert_eq!(
        groups.txn_commit(txn_commit("g", 42, 20)).await,
        vec![(tp(0), ErrorCode::NONE)]
    );
    assert_eq!(groups.unstable_partitions("g").len(), 1);
    assert_matches_replay(&groups);

    // Settling the transaction's offsets.
    inject_write_failures(groups.log(), true);
    assert!(groups.settle_txn("g", 42, true).await.is_err());
    assert_eq!(offset_of(&groups, "g", 0).await, Some(10));
    assert_eq!(groups.unstable_partitions("g").len(), 1);
    assert_matches_replay(&groups);
    inject_write_failures(groups.log(), false);
    groups.settle_txn("g", 42, true).await.expect("settle");
    assert_eq!(offset_of(&groups, "g", 0).await, Some(20));
    assert!(groups.unstable_partitions("g").is_empty());
    assert_eq!(
        groups.delete_groups(vec!["h".into()]).await,
        vec![("h".into(), ErrorCode::NONE)]
    );
    assert_matches_replay(&groups);
}

/// Offset expiration whose tombstones cannot be appended: the offsets stay (as the log
/// says) and expire at a later tick once the log accepts writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_expiration_is_retried_by_the_timer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CoordinatorConfig {
        offsets_retention_ms: 300,
        offsets_retention_check_interval_ms: 50,
        ..CoordinatorConfig::default()
    };
    let groups = Arc::new(Groups::open(dir.path(), Recovery::Scan, config).expect("open"));
    assert_eq!(
        groups.commit(commit("g", 0, 5)).await,
        vec![(tp(0), ErrorCode::NONE)]
    );
    inject_write_failures(groups.log(), true);
    let (stop, _) = tokio::sync::broadcast::channel(1);
    let timer = tokio::spawn(groups.clone().run_timer(stop.subscribe()));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(offset_of(&groups, "g", 0).await, Some(5));
    assert_matches_replay(&groups);
    inject_write_failures(groups.log(), false);
    let mut expired = false;
    for _ in 0..100 {
        if offset_of(&groups, "g", 0).await.is_none() {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(expired, "the offset never expired");
    // The expired offset's group leaves memory on the timer's next pass (the log holds no
    // record of an empty group): until then memory has an empty "g" a replay does not.
    for _ in 0..100 {
        if groups.snapshot().expect("available") == groups.replayed_snapshot() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_matches_replay(&groups);
    let _ = stop.send(());
    timer.await.expect("timer");
}

/// A rebuild drops membership (it is not in the log): members are told to rejoin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_makes_members_rejoin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CoordinatorConfig {
        initial_rebalance_delay_ms: 0,
        ..CoordinatorConfig::default()
    };
    let groups = Groups::open(dir.path(), Recovery::Scan, config).expect("open");
    let joined = groups.join(join_request("g")).await;
    assert_eq!(joined.error, ErrorCode::NONE);
    inject_write_failures(groups.log(), true);
    assert_eq!(
        groups.commit(commit("other", 0, 3)).await,
        vec![(tp(0), NA)]
    );
    inject_write_failures(groups.log(), false);
    let code = groups.heartbeat("g", joined.generation_id, &joined.member_id, None);
    assert_eq!(code, ErrorCode::UNKNOWN_MEMBER_ID);
    assert_matches_replay(&groups);
}

fn join_request(group: &str) -> weir_coordinator::JoinRequest {
    weir_coordinator::JoinRequest {
        group_id: group.to_owned(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".to_owned(),
        protocols: vec![("range".to_owned(), bytes::Bytes::new())],
        client_id: "c".to_owned(),
        client_host: "h".to_owned(),
        require_known_member_id: false,
        reason: None,
    }
}

/// A failed fsync poisons the offsets log: the coordinator answers nothing from memory
/// until a restart, and does not rebuild from a log whose tail may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_offsets_log_fsync_makes_the_group_coordinator_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups = Arc::new(
        Groups::open(dir.path(), Recovery::Scan, CoordinatorConfig::default()).expect("open"),
    );
    assert_eq!(
        groups.commit(commit("g", 0, 5)).await,
        vec![(tp(0), ErrorCode::NONE)]
    );
    inject_fsync_failures(groups.log());
    assert_eq!(groups.commit(commit("g", 0, 10)).await, vec![(tp(0), NA)]);
    assert_eq!(groups.fetch_offsets("g", None).await, Err(NA));
    assert_eq!(groups.list(&[]), Err(NA));
    assert_eq!(groups.describe("g").error, NA);
    assert_eq!(groups.heartbeat("g", 1, "m", None), NA);
    assert_eq!(groups.join(join_request("g")).await.error, NA);
    assert_eq!(groups.commit(commit("g", 0, 10)).await, vec![(tp(0), NA)]);
    // The timer does not bring it back.
    let (stop, _) = tokio::sync::broadcast::channel(1);
    let timer = tokio::spawn(groups.clone().run_timer(stop.subscribe()));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(groups.snapshot().is_none());
    let _ = stop.send(());
    timer.await.expect("timer");
}

fn state(dir: &std::path::Path, extra: &[(&str, &str)]) -> Arc<State> {
    let mut pairs: std::collections::HashMap<String, String> = [(
        "group.initial.rebalance.delay.ms".to_string(),
        "0".to_string(),
    )]
    .into_iter()
    .collect();
    for (k, v) in extra {
        pairs.insert((*k).to_owned(), (*v).to_owned());
    }
    let (config, _) = crate::BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        pairs.into_iter().collect(),
    )
    .expect("config");
    Arc::new(State::open(config).expect("open"))
}

async fn init(state: &Arc<State>, id: &str, timeout_ms: i32) -> (i64, i16) {
    let alloc_state = state.clone();
    let request = InitRequest {
        transactional_id: Some(id.to_owned()),
        transaction_timeout_ms: timeout_ms,
        producer_id: -1,
        producer_epoch: -1,
    };
    let r = state
        .txns
        .single()
        .call(state, move |c, now| {
            let mut alloc = || alloc_state.allocate_producer_id().expect("id");
            c.init_producer_id(now, request, &mut alloc)
        })
        .await
        .expect("logged")
        .expect("init");
    (r.producer_id, r.producer_epoch)
}

fn txn_state(state: &State, id: &str) -> (TxnState, usize) {
    let all = state.txns.single().snapshot().expect("available");
    let d = all
        .iter()
        .find(|d| d.transactional_id == id)
        .expect("known");
    (d.state, d.partitions.len())
}

fn assert_txns_match_replay(state: &State) {
    let live = state
        .txns
        .single()
        .snapshot()
        .expect("coordinator available");
    assert_eq!(
        live,
        state.txns.single().replayed_snapshot(),
        "memory differs from the log"
    );
}

/// InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn failing to append: each
/// fails, memory equals the log, a retry is not answered from memory, and once the fault
/// clears the transaction commits and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_transaction_log_appends_rebuild_the_transaction_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path(), &[]);
    state.txns.recover(&state).expect("recover");
    state
        .create_topic("t", 1, 1, Default::default())
        .await
        .expect("create");
    let (pid, epoch) = init(&state, "tx", 60_000).await;
    let log = state.txns.single().log();

    inject_write_failures(log, true);
    let alloc_state = state.clone();
    let reinit = state
        .txns
        .single()
        .call(&state, move |c, now| {
            let request = InitRequest {
                transactional_id: Some("other".to_owned()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
            };
            let mut alloc = || alloc_state.allocate_producer_id().expect("id");
            c.init_producer_id(now, request, &mut alloc)
        })
        .await;
    assert!(reinit.is_err(), "{reinit:?}");
    assert_txns_match_replay(&state);
    let add = |state: Arc<State>| async move {
        state
            .txns
            .single()
            .call(&state, |c, now| {
                c.add_partitions(now, "tx", pid, epoch, vec![tp(0)])
            })
            .await
    };
    for _ in 0..2 {
        // Before the fix the retry found the partition added in memory and said yes.
        assert!(add(state.clone()).await.is_err());
        assert_eq!(txn_state(&state, "tx"), (TxnState::Empty, 0));
        assert_txns_match_replay(&state);
    }
    inject_write_failures(log, false);
    add(state.clone()).await.expect("logged").expect("added");
    assert_eq!(txn_state(&state, "tx"), (TxnState::Ongoing, 1));

    inject_write_failures(log, true);
    let offsets = state
        .txns
        .single()
        .call(&state, |c, now| c.add_offsets(now, "tx", pid, epoch, "g"))
        .await;
    assert!(offsets.is_err());
    assert_txns_match_replay(&state);
    let end = |state: Arc<State>| async move {
        state
            .txns
            .single()
            .call(&state, |c, now| c.end_txn(now, "tx", pid, epoch, true))
            .await
    };
    assert!(end(state.clone()).await.is_err());
    assert_eq!(txn_state(&state, "tx"), (TxnState::Ongoing, 1));
    assert_txns_match_replay(&state);

    inject_write_failures(log, false);
    end(state.clone()).await.expect("logged").expect("decided");
    state
        .txns
        .single()
        .wait_completed("tx", Duration::from_secs(5))
        .await;
    assert_eq!(txn_state(&state, "tx"), (TxnState::CompleteCommit, 0));
    assert_txns_match_replay(&state);
}

/// The completion record, appended by the marker task, fails: the coordinator is rebuilt in
/// PrepareCommit (as the log says) and re-sends the markers until the completion is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_completion_is_redone_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path(), &[]);
    state.txns.recover(&state).expect("recover");
    state
        .create_topic("t", 1, 1, Default::default())
        .await
        .expect("create");
    let (pid, epoch) = init(&state, "tx", 60_000).await;
    state
        .txns
        .single()
        .call(&state, |c, now| {
            c.add_partitions(now, "tx", pid, epoch, vec![tp(0)])
        })
        .await
        .expect("logged")
        .expect("added");
    // Hold the marker task at the partition until the transaction log is failing.
    let partition = state
        .topic("t")
        .and_then(|t| t.partition(0))
        .expect("partition");
    inject_write_failures(partition.log_for_tests(), true);
    state
        .txns
        .single()
        .call(&state, |c, now| c.end_txn(now, "tx", pid, epoch, true))
        .await
        .expect("logged")
        .expect("decided");
    inject_write_failures(state.txns.single().log(), true);
    inject_write_failures(partition.log_for_tests(), false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(txn_state(&state, "tx"), (TxnState::PrepareCommit, 1));
    assert_txns_match_replay(&state);

    inject_write_failures(state.txns.single().log(), false);
    state
        .txns
        .single()
        .wait_completed("tx", Duration::from_secs(5))
        .await;
    assert_eq!(txn_state(&state, "tx"), (TxnState::CompleteCommit, 0));
    assert_txns_match_replay(&state);
}

/// A timed-out transaction whose abort cannot be logged stays Ongoing (as logged) and is
/// aborted by a later tick once the log accepts writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_timeout_abort_is_retried_by_the_timer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(
        dir.path(),
        &[(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "10",
        )],
    );
    state.txns.recover(&state).expect("recover");
    state
        .create_topic("t", 1, 1, Default::default())
        .await
        .expect("create");
    let (pid, epoch) = init(&state, "tx", 200).await;
    state
        .txns
        .single()
        .call(&state, |c, now| {
            c.add_partitions(now, "tx", pid, epoch, vec![tp(0)])
        })
        .await
        .expect("logged")
        .expect("added");
    inject_write_failures(state.txns.single().log(), true);
    let (stop, _) = tokio::sync::broadcast::channel(1);
    let timer = tokio::spawn(crate::txn_router::TxnRouter::run_timer(
        state.clone(),
        stop.subscribe(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(txn_state(&state, "tx"), (TxnState::Ongoing, 1));
    assert_txns_match_replay(&state);
    inject_write_failures(state.txns.single().log(), false);
    let mut aborted = false;
    for _ in 0..100 {
        if txn_state(&state, "tx").0 == TxnState::CompleteAbort {
            aborted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(aborted, "{:?}", txn_state(&state, "tx"));
    assert_txns_match_replay(&state);
    let _ = stop.send(());
    timer.await.expect("timer");
}

/// A failed fsync of the transaction log: every call is refused until a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_transaction_log_fsync_makes_the_coordinator_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path(), &[]);
    state.txns.recover(&state).expect("recover");
    state
        .create_topic("t", 1, 1, Default::default())
        .await
        .expect("create");
    let (pid, epoch) = init(&state, "tx", 60_000).await;
    inject_fsync_failures(state.txns.single().log());
    let add = |state: Arc<State>| async move {
        state
            .txns
            .single()
            .call(&state, |c, now| {
                c.add_partitions(now, "tx", pid, epoch, vec![tp(0)])
            })
            .await
    };
    assert!(add(state.clone()).await.is_err());
    assert!(state.txns.single().snapshot().is_none());
    assert!(matches!(
        add(state.clone()).await,
        Err(crate::txns::TxnsError::Unavailable)
    ));
    assert!(
        state.txns.describe(&["tx".to_owned()])[0].error == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    );
}
