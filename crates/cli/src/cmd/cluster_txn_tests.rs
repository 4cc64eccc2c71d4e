//! Transactions across brokers (design §7.3): three nodes in one process (the `Member`s of
//! `cluster_data_tests`), three topics of replication factor 3 whose leaders the placement
//! spreads over the brokers, and `__transaction_state` of one partition, whose leader is the
//! transaction coordinator. It commits and aborts transactions holding a record in every
//! topic: each partition, whichever broker leads it, gets the marker (a remote one through
//! WriteTxnMarkers on the internal listener), the transaction completes only then, and
//! read_committed readers see the committed records and the aborted transaction. Then a
//! partition's leader is crashed with a transaction open: the commit completes once the
//! marker reaches the partition's new leader.
//!
//! The coordinator fails over (design §7.1, §7.2): its broker is crashed mid-transaction and,
//! after a restart of that broker, mid-commit; the shard's new leader loads it, a new
//! producer with the same transactional id aborts the open transaction (all of it), the
//! decided commit is completed by the new coordinator (all of it), a marker from the old
//! coordinator's epoch is refused, and restarting the crashed broker changes nothing.

use super::super::super::cluster_node::NodeController;
use weir_broker::partition::{Isolation, ReadSpec};
use weir_broker::txn_api;
use weir_broker::txn_router::TXN_STATE_TOPIC;
use weir_coordinator::txn::TxnState;
use weir_coordinator::TopicPartition;
use weir_storage::batch::{Batches, Check};
use weir_storage::{Marker, StorageError};

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
    let txn_topic = create_topic(members[0].as_ref().expect("member"), TXN_STATE_TOPIC, 3);
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
    // The coordinator runs on the leader of the transactional id's `__transaction_state`
    // partition; the placement spreads the four topics' leaders, so some markers go to
    // other brokers.
    let coord_id = coordinator(&members, txn_topic);
    assert!(
        leaders.iter().any(|l| *l != coord_id),
        "leaders {leaders:?} leave a partition to another broker than {coord_id}"
    );
    let coord = members[idx(coord_id)].as_ref().expect("coordinator");
    let state = coord.broker.state().clone();
    // As `weir serve` does: producer-id blocks come from the quorum.
    state.set_controller(Arc::new(NodeController(coord.node.clone())));
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

/// Starts three members with producer-id blocks from the quorum (as `weir serve` does).
fn start_members(dirs: &[PathBuf], voters: &str) -> Vec<Option<Member>> {
    (1..=3)
        .map(|id| {
            Some(start_member(
                id,
                &dirs[usize::try_from(id - 1).expect("id")],
                voters,
            ))
        })
        .collect()
}

fn start_member(id: i32, dir: &Path, voters: &str) -> Member {
    let m = Member::start(id, dir, voters);
    m.broker
        .state()
        .set_controller(Arc::new(NodeController(m.node.clone())));
    m
}

/// The broker serving `TXN_ID`: the leader of `__transaction_state`-0 (`txn_topic`), once its
/// shard is loaded there.
fn coordinator(members: &[Option<Member>], txn_topic: Uuid) -> i32 {
    let mut found = -1;
    until("a loaded transaction coordinator shard", || {
        let Some(leader) = members
            .iter()
            .flatten()
            .filter_map(|m| m.registration(txn_topic))
            .map(|r| r.leader)
            .find(|l| *l > 0)
        else {
            return false;
        };
        found = leader;
        members
            .iter()
            .flatten()
            .find(|m| m.id == leader)
            .is_some_and(|m| m.broker.state().txns.shard(TXN_ID).is_ok())
    });
    found
}

fn member(members: &[Option<Member>], id: i32) -> &Member {
    members
        .iter()
        .flatten()
        .find(|m| m.id == id)
        .expect("a live member")
}

/// InitProducerId for `TXN_ID` on `m`, retried while retriable as clients do (the shard
/// loading, the previous producer's transaction being aborted, no producer-id block yet).
fn init_retrying(m: &Member, timeout_ms: i32) -> (i64, i16) {
    let state = m.broker.state().clone();
    let deadline = Instant::now() + WAIT;
    loop {
        match m
            .rt
            .block_on(txn_api::init_transactional(&state, TXN_ID, timeout_ms))
        {
            Ok(ids) => return ids,
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("init: {e:?}"),
        }
    }
}

/// EndTxn on `m`, retried while retriable (a client's retry after its coordinator died).
fn end_retrying(m: &Member, pid: i64, epoch: i16, commit: bool) {
    let state = m.broker.state().clone();
    let deadline = Instant::now() + WAIT;
    loop {
        match m
            .rt
            .block_on(txn_api::end_txn(&state, TXN_ID, pid, epoch, commit))
        {
            Ok(()) => return,
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("end: {e:?}"),
        }
    }
}

/// The values the failover test writes (each unique, found in a batch by its bytes).
const VALUES: [&[u8]; 3] = [b"open-txn-value", b"commit-one-value", b"commit-two-value"];

/// The data partition as its leader's read_committed reader sees it, once its leader has no
/// open transaction: (log end, producers of the aborted transactions, committed values).
fn settled_view(members: &[Option<Member>], topic: Uuid) -> (i64, Vec<i64>, Vec<Vec<u8>>) {
    let mut view = None;
    until("the data partition settled on a live leader", || {
        let Some(leader) = members
            .iter()
            .flatten()
            .filter_map(|m| m.registration(topic))
            .map(|r| r.leader)
            .find(|l| *l > 0)
        else {
            return false;
        };
        let Some(m) = members.iter().flatten().find(|m| m.id == leader) else {
            return false;
        };
        let Some(p) = m.replica(topic) else {
            return false;
        };
        let Ok(read) = p.read(&ReadSpec {
            offset: 0,
            max_bytes: 1 << 20,
            min_one_batch: true,
            isolation: Isolation::ReadCommitted,
            leader_epoch: None,
        }) else {
            return false;
        };
        let end = p.log_end_offset();
        if read.watermarks.last_stable_offset != end || read.watermarks.high_watermark != end {
            return false;
        }
        let ranges = read.aborted.clone().unwrap_or_default();
        let aborted: Vec<i64> = ranges.iter().map(|a| a.producer_id).collect();
        // What a read_committed client keeps: data batches outside the aborted ranges.
        let mut values = Vec::new();
        for b in Batches::new(&read.records, Check::Structure).flatten() {
            let h = &b.header;
            let in_aborted = ranges.iter().any(|a| {
                a.producer_id == h.producer_id()
                    && (a.first_offset..=a.last_offset).contains(&h.base_offset)
            });
            if h.is_control() || (h.is_transactional() && in_aborted) {
                continue;
            }
            values.extend(
                VALUES
                    .iter()
                    .filter(|v| b.bytes.windows(v.len()).any(|w| w == **v))
                    .map(|v| v.to_vec()),
            );
        }
        view = Some((end, aborted, values));
        true
    });
    view.expect("settled")
}

#[test]
fn a_transaction_coordinator_crash_fails_over_all_or_none() {
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let voters = (1..=3)
        .map(|id| format!("{id}@127.0.0.1:{}", ports[id - 1]))
        .collect::<Vec<_>>()
        .join(",");
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|id| root.path().join(format!("n{id}")))
        .collect();
    let mut members = start_members(&dirs, &voters);
    let idx = |id: i32| usize::try_from(id - 1).expect("id");
    until("three unfenced brokers", || {
        let image = members[0].as_ref().expect("member").node.image();
        (1..=3).all(|id| image.broker_usable(id))
    });
    let data = create_topic(members[0].as_ref().expect("member"), "td", 3);
    let txn_topic = create_topic(members[0].as_ref().expect("member"), TXN_STATE_TOPIC, 3);
    let full_isr = |members: &[Option<Member>]| {
        [data, txn_topic].iter().all(|id| {
            members.iter().flatten().all(|m| {
                m.registration(*id).is_some_and(|r| r.isr.len() == 3) && m.replica(*id).is_some()
            })
        })
    };
    until("both partitions with a full ISR on every broker", || {
        full_isr(&members)
    });
    let td = TopicPartition::new("td".to_string(), 0);
    let data_leader = |members: &[Option<Member>]| -> i32 {
        let mut leader = -1;
        until("a data leader", || {
            leader = members
                .iter()
                .flatten()
                .filter_map(|m| m.registration(data))
                .map(|r| r.leader)
                .find(|l| members.iter().flatten().any(|m| m.id == *l))
                .unwrap_or(-1);
            leader > 0 && member(members, leader).replica(data).is_some()
        });
        leader
    };

    // 1. The coordinator crashes with a transaction open (a record written, acks=all).
    let first = coordinator(&members, txn_topic);
    let old_coordinator_epoch = member(&members, first)
        .registration(txn_topic)
        .expect("registration")
        .leader_epoch;
    let (pid, epoch) = init_retrying(member(&members, first), 60_000);
    {
        let m = member(&members, first);
        let state = m.broker.state().clone();
        m.rt.block_on(txn_api::add_partitions(
            &state,
            TXN_ID,
            pid,
            epoch,
            vec![td.clone()],
        ))
        .expect("add");
    }
    produce_txn(
        member(&members, data_leader(&members)),
        data,
        pid,
        epoch,
        0,
        VALUES[0],
    );
    members[idx(first)].take().expect("coordinator").crash();
    // Without restarting it: the shard's new leader loads it; a new producer with the same
    // transactional id aborts the open transaction (fencing the old producer) and goes on.
    let second = coordinator(&members, txn_topic);
    assert_ne!(second, first, "the shard moved to a live broker");
    let (pid2, epoch2) = init_retrying(member(&members, second), 60_000);
    assert_eq!(pid2, pid, "the transactional id keeps its producer id");
    assert!(epoch2 > epoch, "the new producer fences the old one");
    let (end1, aborted1, values1) = settled_view(&members, data);
    assert_eq!(
        aborted1,
        vec![pid],
        "the open transaction is aborted, all of it"
    );
    assert!(values1.is_empty(), "nothing of it is visible: {values1:?}");
    // The old coordinator's epoch is fenced on the data partition.
    {
        let leader = member(&members, data_leader(&members));
        let p = leader.replica(data).expect("leader replica");
        let refused = p.append_marker(
            pid2,
            epoch2,
            Marker::Commit,
            old_coordinator_epoch,
            now_ms(),
        );
        assert!(
            matches!(
                refused,
                Err(PartitionError::Storage(
                    StorageError::TransactionCoordinatorFenced { .. }
                ))
            ),
            "a marker from coordinator epoch {old_coordinator_epoch} is refused: {refused:?}"
        );
    }

    // The crashed broker comes back: nothing changes.
    members[idx(first)] = Some(start_member(first, &dirs[idx(first)], &voters));
    until("the restarted broker back in both ISRs", || {
        full_isr(&members)
    });
    assert_eq!(
        settled_view(&members, data),
        (end1, aborted1.clone(), values1)
    );

    // 2. The (current) coordinator crashes in the middle of a commit.
    let second = coordinator(&members, txn_topic);
    {
        let m = member(&members, second);
        let state = m.broker.state().clone();
        m.rt.block_on(txn_api::add_partitions(
            &state,
            TXN_ID,
            pid2,
            epoch2,
            vec![td.clone()],
        ))
        .expect("add");
    }
    produce_txn(
        member(&members, data_leader(&members)),
        data,
        pid2,
        epoch2,
        0,
        VALUES[1],
    );
    produce_txn(
        member(&members, data_leader(&members)),
        data,
        pid2,
        epoch2,
        1,
        VALUES[2],
    );
    {
        let m = member(&members, second);
        let state = m.broker.state().clone();
        // The commit runs on the coordinator; it is crashed as soon as the decision is
        // logged (PrepareCommit), its markers possibly not all written.
        m.rt.spawn(async move {
            let _ = txn_api::end_txn(&state, TXN_ID, pid2, epoch2, true).await;
        });
        until("the commit decided", || {
            m.broker.state().txns.describe(&[TXN_ID.to_string()])[0].state != TxnState::Ongoing
        });
    }
    members[idx(second)].take().expect("coordinator").crash();
    // The client retries EndTxn(commit) on the new coordinator: it completes the commit.
    let third = coordinator(&members, txn_topic);
    assert_ne!(third, second);
    end_retrying(member(&members, third), pid2, epoch2, true);
    until("the commit complete on the new coordinator", || {
        member(&members, third)
            .broker
            .state()
            .txns
            .describe(&[TXN_ID.to_string()])[0]
            .state
            == TxnState::CompleteCommit
    });
    let (end2, aborted2, values2) = settled_view(&members, data);
    assert_eq!(aborted2, vec![pid], "the commit is not aborted anywhere");
    assert_eq!(
        values2,
        vec![VALUES[1].to_vec(), VALUES[2].to_vec()],
        "the whole commit is visible"
    );

    // The crashed broker comes back: nothing changes.
    members[idx(second)] = Some(start_member(second, &dirs[idx(second)], &voters));
    until("the restarted broker back in both ISRs", || {
        full_isr(&members)
    });
    assert_eq!(settled_view(&members, data), (end2, aborted2, values2));
    let last = coordinator(&members, txn_topic);
    assert_eq!(
        member(&members, last)
            .broker
            .state()
            .txns
            .describe(&[TXN_ID.to_string()])[0]
            .state,
        TxnState::CompleteCommit
    );
    for m in members.into_iter().flatten() {
        m.stop();
    }
}
