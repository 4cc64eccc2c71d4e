//! `weir_broker::txn_api`, the in-process producer's transactions: appends committed and
//! aborted through it, read back under both isolations through `Partition::read`, fencing,
//! and the open transaction of a crashed producer aborted by the next init after a restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_broker::partition::{Acks, Isolation, Partition};
use weir_broker::state::State;
use weir_broker::testkit;
use weir_broker::txn_api::{self, TxnApiError};
use weir_coordinator::TopicPartition;
use weir_storage::testkit::BatchBuilder;

async fn topic(state: &Arc<State>, name: &str) -> Arc<Partition> {
    state
        .create_topic(name, 1, 1, BTreeMap::new())
        .await
        .expect("create topic");
    state
        .topic(name)
        .and_then(|t| t.partition(0))
        .expect("partition")
}

async fn append_txn(p: &Arc<Partition>, state: &State, pid: i64, epoch: i16, seq: i32, v: &str) {
    let mut batch = BatchBuilder::new(1_000)
        .producer(pid, epoch, seq)
        .transactional()
        .record(1_000, None, Some(v.as_bytes()))
        .build();
    let appended = p
        .append(&mut batch, Acks::All, state.config.durability, 1_000)
        .expect("append");
    if let Some(d) = appended.wait.fsync {
        d.wait().await.expect("fsync");
    }
}

/// The values a consumer at `isolation` sees from offset 0, as a Kafka consumer filters them:
/// control records dropped, and read_committed, the records of the aborted transactions. A
/// read stops at a segment's end, so it reads on until nothing is left.
fn values(p: &Partition, isolation: Isolation) -> Vec<String> {
    testkit::consume(p, isolation)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

async fn init_retrying(state: &Arc<State>, id: &str) -> (i64, i16) {
    for _ in 0..100 {
        match txn_api::init_transactional(state, id, 60_000).await {
            Ok(init) => return init,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("init: {e}"),
        }
    }
    panic!("init never stopped being retriable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_appends_read_back_under_both_isolations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let p = topic(&state, "out").await;
    let tp = || vec![TopicPartition::new("out".to_string(), 0)];

    let (pid, epoch) = txn_api::init_transactional(&state, "tx", 60_000)
        .await
        .expect("init");
    for (seq, (value, commit)) in [("a", true), ("b", false), ("c", true)].iter().enumerate() {
        txn_api::add_partitions(&state, "tx", pid, epoch, tp())
            .await
            .expect("add partitions");
        append_txn(&p, &state, pid, epoch, seq as i32, value).await;
        // Open: read_committed stops before it, read_uncommitted sees it.
        assert!(!values(&p, Isolation::ReadCommitted).contains(&value.to_string()));
        assert!(values(&p, Isolation::ReadUncommitted).contains(&value.to_string()));
        txn_api::end_txn(&state, "tx", pid, epoch, *commit)
            .await
            .expect("end txn");
    }
    assert_eq!(values(&p, Isolation::ReadCommitted), ["a", "c"]);
    assert_eq!(values(&p, Isolation::ReadUncommitted), ["a", "b", "c"]);
    // Three data batches and three markers.
    assert_eq!(p.last_stable_offset(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_init_aborts_the_open_transaction_and_fences_the_old_producer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let p = topic(&state, "out").await;
    let tp = || vec![TopicPartition::new("out".to_string(), 0)];
    let (pid, epoch) = init_retrying(&state, "tx").await;
    txn_api::add_partitions(&state, "tx", pid, epoch, tp())
        .await
        .expect("add");
    append_txn(&p, &state, pid, epoch, 0, "zombie").await;

    // The first re-init starts the abort and is told to retry (CONCURRENT_TRANSACTIONS).
    let first = txn_api::init_transactional(&state, "tx", 60_000).await;
    assert!(
        matches!(&first, Err(e @ TxnApiError::Concurrent(_)) if e.is_retriable()),
        "{first:?}"
    );
    let (pid2, epoch2) = init_retrying(&state, "tx").await;
    assert_eq!(pid2, pid);
    assert!(epoch2 > epoch);

    let old = txn_api::add_partitions(&state, "tx", pid, epoch, tp()).await;
    assert!(
        matches!(&old, Err(e) if e.is_fenced() && !e.is_retriable()),
        "{old:?}"
    );
    let old_end = txn_api::end_txn(&state, "tx", pid, epoch, true).await;
    assert!(matches!(&old_end, Err(e) if e.is_fenced()), "{old_end:?}");

    txn_api::add_partitions(&state, "tx", pid2, epoch2, tp())
        .await
        .expect("add");
    append_txn(&p, &state, pid2, epoch2, 0, "fresh").await;
    txn_api::end_txn(&state, "tx", pid2, epoch2, true)
        .await
        .expect("commit");
    assert_eq!(values(&p, Isolation::ReadCommitted), ["fresh"]);
    assert_eq!(values(&p, Isolation::ReadUncommitted), ["zombie", "fresh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_partitions_are_refused_before_the_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let (pid, epoch) = init_retrying(&state, "tx").await;
    let r = txn_api::add_partitions(
        &state,
        "tx",
        pid,
        epoch,
        vec![TopicPartition::new("missing".to_string(), 0)],
    )
    .await;
    assert!(matches!(&r, Err(TxnApiError::UnknownPartition(tp)) if tp.topic == "missing"));
    // Nothing was added: there is no open transaction to end.
    let end = txn_api::end_txn(&state, "tx", pid, epoch, true).await;
    assert!(matches!(&end, Err(TxnApiError::Refused(_))), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_next_init_aborts_the_crashed_producers_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let state = testkit::recovered(dir.path(), &[]);
        let p = topic(&state, "out").await;
        let (pid, epoch) = init_retrying(&state, "tx").await;
        let tp = vec![TopicPartition::new("out".to_string(), 0)];
        txn_api::add_partitions(&state, "tx", pid, epoch, tp.clone())
            .await
            .expect("add");
        append_txn(&p, &state, pid, epoch, 0, "committed").await;
        txn_api::end_txn(&state, "tx", pid, epoch, true)
            .await
            .expect("commit");
        txn_api::add_partitions(&state, "tx", pid, epoch, tp)
            .await
            .expect("add");
        append_txn(&p, &state, pid, epoch, 1, "in flight").await;
        // Dropped without close: no clean-shutdown marker, as after kill -9.
    }
    let state = testkit::recovered(dir.path(), &[]);
    let p = state.topic("out").and_then(|t| t.partition(0)).expect("p");
    assert_eq!(values(&p, Isolation::ReadCommitted), ["committed"]);
    init_retrying(&state, "tx").await;
    assert_eq!(values(&p, Isolation::ReadCommitted), ["committed"]);
    assert_eq!(
        values(&p, Isolation::ReadUncommitted),
        ["committed", "in flight"]
    );
    // The abort marker closed the transaction: nothing is left unstable.
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
}
