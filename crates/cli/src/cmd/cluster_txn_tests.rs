//! Transactions across brokers (design §7.3): three nodes in one process (the `Member`s of
//! `cluster_data_tests`), three topics of replication factor 3 whose leaders the placement
//! spreads over the brokers. One broker's transaction coordinator commits and aborts
//! transactions holding a record in every topic: each partition, whichever broker leads it,
//! gets the marker (a remote one through WriteTxnMarkers on the internal listener), the
//! transaction completes only then, and read_committed readers see the committed records and
//! the aborted transaction. Then a partition's leader is crashed with a transaction open: the
//! commit completes once the marker reaches the partition's new leader.

use super::super::super::cluster_node::NodeController;
use weir_broker::partition::{Isolation, ReadSpec};
use weir_broker::txn_api;
use weir_coordinator::txn::TxnState;
use weir_coordinator::TopicPartition;

use super::*;

const TOPICS: [&str; 3] = ["ta", "tb", "tc"];
const TXN_ID: &str = "cross-broker";

/// The coordinator's view of the transactional id.
fn txn_state(m: &Member) -> TxnState {
    m.broker
        .state()
        .txns
        .describe(&[TXN_ID.to_string()])
        .first()
        .map(|d| d.state)
        .expect("the transactional id is known")
}

/// Appends one transactional record of `value` on `m`'s replica of `topic` (its leader) and
/// waits for acks=all.
fn produce_txn(m: &Member, topic: Uuid, pid: i64, epoch: i16, seq: i32, value: &[u8]) -> i64 {
    let p = m.replica(topic).expect("leader replica");
    let mut batch = BatchBuilder::new(now_ms())
        .producer(pid, epoch, seq)
        .transactional()
        .record(now_ms(), None, Some(value))
        .build();
    let appended = p
        .append(&mut batch, Acks::All, Durability::AcksAll, now_ms())
        .expect("transactional append");
    m.rt.block_on(async { appended.wait.wait(Duration::from_secs(10)).await })
        .expect("acks=all answered");
    appended.info.base_offset
}

/// What a read_committed reader of `m`'s replica sees: the last stable offset, the log end
/// and the producers of the aborted transactions.
fn committed_view(m: &Member, topic: Uuid) -> (i64, i64, Vec<i64>) {
    let p = m.replica(topic).expect("replica");
    let read = p
        .read(&ReadSpec {
            offset: 0,
            max_bytes: 1 << 20,
            min_one_batch: true,
            isolation: Isolation::ReadCommitted,
            leader_epoch: None,
        })
        .expect("read_committed read on the leader");
    let aborted = read
        .aborted
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.producer_id)
        .collect();
    (
        read.watermarks.last_stable_offset,
        p.log_end_offset(),
        aborted,
    )
}

#[test]
fn transactions_mark_partitions_led_by_other_brokers() {
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let voters = (1..=3)
        .map(|id| format!("{id}@127.0.0.1:{}", ports[id - 1]))
        .collect::<Vec<_>>()
        .join(",");
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|id| root.path().join(format!("n{id}")))
        .collect();
    let mut members: Vec<Option<Member>> = (1..=3)
        .map(|id| Some(Member::start(id, &dirs[id as usize - 1], &voters)))
        .collect();
    let idx = |id: i32| usize::try_from(id - 1).expect("id");
    until("three unfenced brokers", || {
        let image = members[0].as_ref().expect("member").node.image();
        (1..=3).all(|id| image.broker_usable(id))
    });
    let ids: Vec<Uuid> = TOPICS
        .iter()
        .map(|t| create_topic(members[0].as_ref().expect("member"), t, 3))
        .collect();
    let leader_of = |members: &[Option<Member>], topic: Uuid| -> Option<i32> {
        members
            .iter()
            .flatten()
            .next()?
            .registration(topic)
            .map(|r| r.leader)
            .filter(|l| *l > 0)
    };
    until("every partition with a full ISR on every broker", || {
        ids.iter().all(|id| {
            members.iter().flatten().all(|m| {
                m.registration(*id).is_some_and(|r| r.isr.len() == 3) && m.replica(*id).is_some()
            })
        })
    });
    let leaders: Vec<i32> = ids
        .iter()
        .map(|id| leader_of(&members, *id).expect("a leader"))
        .collect();
    // The coordinator runs on the broker leading the fewest of the topics, so that at least
    // two of the three markers go to other brokers.
    let coord_id = (1..=3)
        .min_by_key(|b| leaders.iter().filter(|l| *l == b).count())
        .expect("a broker");
    assert!(
        leaders.iter().filter(|l| **l != coord_id).count() >= 2,
        "leaders {leaders:?} leave at least two partitions to other brokers"
    );
    let coord = members[idx(coord_id)].as_ref().expect("coordinator");
    let state = coord.broker.state().clone();
    // As `weir serve` does: producer-id blocks come from the quorum.
    state.set_controller(Arc::new(NodeController(coord.node.clone())));
    // As the broker's server does at start (the members run no server): until then the
    // coordinator answers LOAD_IN_PROGRESS.
    coord
        .rt
        .block_on(async { state.txns.recover(&state) })
        .expect("recover");
    // Retried while retriable, as clients do (no producer-id block yet: LOAD_IN_PROGRESS).
    let deadline = Instant::now() + WAIT;
    let (pid, epoch) = loop {
        match coord
            .rt
            .block_on(txn_api::init_transactional(&state, TXN_ID, 60_000))
        {
            Ok(ids) => break ids,
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("init: {e:?}"),
        }
    };
    let partitions: Vec<TopicPartition> = TOPICS
        .iter()
        .map(|t| TopicPartition::new(t.to_string(), 0))
        .collect();

    // A committed transaction, then an aborted one, each with a record in every topic.
    let mut seq = 0;
    for commit in [true, false] {
        coord
            .rt
            .block_on(txn_api::add_partitions(
                &state,
                TXN_ID,
                pid,
                epoch,
                partitions.clone(),
            ))
            .expect("add partitions, wherever they are led");
        for (i, id) in ids.iter().enumerate() {
            let m = members[idx(leaders[i])].as_ref().expect("leader");
            produce_txn(m, *id, pid, epoch, seq, format!("v{seq}").as_bytes());
        }
        seq += 1;
        for (i, id) in ids.iter().enumerate() {
            let m = members[idx(leaders[i])].as_ref().expect("leader");
            let (lso, end, _) = committed_view(m, *id);
            assert!(
                lso < end,
                "an open transaction holds the LSO on {}",
                TOPICS[i]
            );
        }
        coord
            .rt
            .block_on(txn_api::end_txn(&state, TXN_ID, pid, epoch, commit))
            .expect("end");
        until("the transaction complete", || {
            let s = txn_state(coord);
            s == if commit {
                TxnState::CompleteCommit
            } else {
                TxnState::CompleteAbort
            }
        });
        // Completed means every marker was acknowledged: every leader already has it.
        for (i, id) in ids.iter().enumerate() {
            let m = members[idx(leaders[i])].as_ref().expect("leader");
            let (lso, end, aborted) = committed_view(m, *id);
            assert_eq!(lso, end, "{}: marker written and committed", TOPICS[i]);
            assert_eq!(
                aborted.contains(&pid),
                !commit,
                "{}: the abort is listed for read_committed readers exactly when aborted",
                TOPICS[i]
            );
        }
    }

    // A transaction open on a partition whose leader (not the coordinator) then crashes:
    // the commit's marker is retried until the partition's new leader takes it.
    let victim_topic = leaders
        .iter()
        .position(|l| *l != coord_id)
        .expect("a partition led elsewhere");
    let victim = leaders[victim_topic];
    let id = ids[victim_topic];
    coord
        .rt
        .block_on(txn_api::add_partitions(
            &state,
            TXN_ID,
            pid,
            epoch,
            vec![partitions[victim_topic].clone()],
        ))
        .expect("add");
    let m = members[idx(victim)].as_ref().expect("leader");
    let offset = produce_txn(m, id, pid, epoch, seq, b"survives");
    members[idx(victim)].take().expect("victim").crash();
    let coord = members[idx(coord_id)].as_ref().expect("coordinator");
    coord
        .rt
        .block_on(txn_api::end_txn(&state, TXN_ID, pid, epoch, true))
        .expect("the decision is durable although a marker waits");
    until("the commit complete on the new leader", || {
        txn_state(coord) == TxnState::CompleteCommit
    });
    let new = leader_of(&members, id).expect("a new leader");
    assert_ne!(new, victim);
    let m = members[idx(new)].as_ref().expect("new leader");
    let (lso, end, aborted) = committed_view(m, id);
    assert_eq!(lso, end, "the new leader has the marker, committed");
    assert_eq!(
        aborted.iter().filter(|p| **p == pid).count(),
        1,
        "only the second transaction is aborted; the last one committed"
    );
    assert!(
        offset < end,
        "the acknowledged transactional record is on the new leader"
    );
    for m in members.into_iter().flatten() {
        m.stop();
    }
}
