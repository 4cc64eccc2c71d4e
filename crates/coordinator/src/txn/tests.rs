//! Event-in, output-out tests of the transaction coordinator: explicit times, exact outputs.

use std::collections::BTreeSet;

use super::*;
use crate::{ErrorCode, TopicPartition};

const TID: &str = "tx";
const TIMEOUT: i32 = 60_000;
const EXPIRATION: u64 = 604_800_000;
const FIRST_PID: i64 = 1000;

/// A loaded coordinator with the default config and a producer id allocator counting up
/// from [`FIRST_PID`].
struct Harness {
    c: TxnCoordinator,
    next_pid: i64,
}

impl Harness {
    fn new() -> Self {
        let mut c = TxnCoordinator::new(TxnConfig::default());
        assert_eq!(c.recover(0), vec![]);
        Self {
            c,
            next_pid: FIRST_PID,
        }
    }

    fn init_req(
        &mut self,
        now: u64,
        req: InitRequest,
    ) -> (Vec<TxnOutput>, Result<InitResult, ErrorCode>) {
        let next = &mut self.next_pid;
        let mut alloc = || {
            let id = *next;
            *next += 1;
            id
        };
        codes(self.c.init_producer_id(now, req, &mut alloc))
    }

    /// InitProducerId for [`TID`] without KIP-360 fields.
    fn init(&mut self, now: u64) -> (Vec<TxnOutput>, Result<InitResult, ErrorCode>) {
        self.init_req(now, req(TID, -1, -1))
    }

    /// InitProducerId for [`TID`] and the producer it answered.
    fn init_ok(&mut self, now: u64) -> InitResult {
        let (out, result) = self.init(now);
        assert_eq!(out.len(), 1, "{out:?}");
        result.expect("init")
    }

    fn add(
        &mut self,
        now: u64,
        p: InitResult,
        partitions: &[(&str, i32)],
    ) -> (Vec<TxnOutput>, Result<(), ErrorCode>) {
        let partitions = partitions
            .iter()
            .map(|(topic, partition)| TopicPartition::new(*topic, *partition))
            .collect();
        codes(
            self.c
                .add_partitions(now, TID, p.producer_id, p.producer_epoch, partitions),
        )
    }

    fn end(
        &mut self,
        now: u64,
        p: InitResult,
        commit: bool,
    ) -> (Vec<TxnOutput>, Result<(), ErrorCode>) {
        codes(
            self.c
                .end_txn(now, TID, p.producer_id, p.producer_epoch, commit),
        )
    }
}

fn req(transactional_id: &str, producer_id: i64, producer_epoch: i16) -> InitRequest {
    InitRequest {
        transactional_id: Some(transactional_id.to_owned()),
        transaction_timeout_ms: TIMEOUT,
        producer_id,
        producer_epoch,
    }
}

fn codes<T>((out, result): TxnStep<T>) -> (Vec<TxnOutput>, Result<T, ErrorCode>) {
    (out, result.map_err(|e| e.code()))
}

fn producer(producer_id: i64, producer_epoch: i16) -> InitResult {
    InitResult {
        producer_id,
        producer_epoch,
    }
}

fn parts(partitions: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
    partitions
        .iter()
        .map(|(topic, partition)| TopicPartition::new(*topic, *partition))
        .collect()
}

fn groups(groups: &[&str]) -> BTreeSet<String> {
    groups.iter().map(|g| (*g).to_owned()).collect()
}

/// [`TID`] in state Empty, as InitProducerId leaves it.
fn empty(producer_id: i64, producer_epoch: i16, now: u64) -> TxnRecord {
    TxnRecord {
        transactional_id: TID.to_owned(),
        producer_id,
        producer_epoch,
        last_producer_id: producer_id,
        last_producer_epoch: -1,
        timeout_ms: TIMEOUT,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        groups: BTreeSet::new(),
        txn_start_ms: None,
        last_update_ms: now,
    }
}

fn persist(record: TxnRecord) -> TxnOutput {
    TxnOutput::PersistState(record)
}

fn markers(
    p: InitResult,
    commit: bool,
    partitions: &[(&str, i32)],
    group_ids: &[&str],
) -> TxnOutput {
    TxnOutput::WriteMarkers {
        transactional_id: TID.to_owned(),
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch,
        commit,
        partitions: parts(partitions).into_iter().collect(),
        groups: groups(group_ids).into_iter().collect(),
    }
}

const ORDERS: &[(&str, i32)] = &[("orders", 0), ("orders", 1)];

// ---- InitProducerId ----

#[test]
fn init_new_transactional_id_allocates_epoch_zero() {
    let mut h = Harness::new();
    assert_eq!(
        h.init(10),
        (vec![persist(empty(1000, 0, 10))], Ok(producer(1000, 0)))
    );
    assert_eq!(h.next_pid, 1001, "exactly one id allocated");
}

#[test]
fn init_idempotent_producer_gets_fresh_id_and_no_state() {
    let mut h = Harness::new();
    let idempotent = InitRequest {
        transactional_id: None,
        transaction_timeout_ms: i32::MAX,
        producer_id: -1,
        producer_epoch: -1,
    };
    assert_eq!(
        h.init_req(10, idempotent.clone()),
        (vec![], Ok(producer(1000, 0)))
    );
    assert_eq!(h.init_req(11, idempotent), (vec![], Ok(producer(1001, 0))));
    assert_eq!(h.c.list(&[], &[]), Ok(vec![]));
}

#[test]
fn init_rejects_bad_requests() {
    let mut h = Harness::new();
    assert_eq!(
        h.init_req(0, req("", -1, -1)),
        (vec![], Err(ErrorCode::INVALID_REQUEST))
    );
    assert_eq!(
        h.init_req(0, req(TID, 5, -1)),
        (vec![], Err(ErrorCode::INVALID_REQUEST))
    );
    for timeout in [0, -1, 900_001] {
        let r = InitRequest {
            transaction_timeout_ms: timeout,
            ..req(TID, -1, -1)
        };
        assert_eq!(
            h.init_req(0, r),
            (vec![], Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT))
        );
    }
    let max = InitRequest {
        transaction_timeout_ms: 900_000,
        ..req(TID, -1, -1)
    };
    assert_eq!(h.init_req(0, max).1, Ok(producer(1000, 0)));
    assert_eq!(h.next_pid, 1001, "no id allocated for refused requests");
}

#[test]
fn reinit_bumps_epoch_and_fences_the_old_epoch() {
    let mut h = Harness::new();
    let old = h.init_ok(10);
    assert_eq!(
        h.init(20),
        (vec![persist(empty(1000, 1, 20))], Ok(producer(1000, 1)))
    );
    assert_eq!(
        h.add(30, old, ORDERS),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    assert_eq!(
        h.end(30, old, true),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    // A future epoch is fenced too (Kafka checks equality).
    assert_eq!(
        h.add(30, producer(1000, 7), ORDERS),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    // Wrong producer id, unknown transactional id.
    assert_eq!(
        h.add(30, producer(999, 1), ORDERS),
        (vec![], Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING))
    );
    assert_eq!(
        codes(h.c.add_partitions(30, "other", 1000, 1, vec![])),
        (vec![], Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING))
    );
    assert_eq!(
        codes(h.c.add_partitions(30, "", 1000, 1, vec![])),
        (vec![], Err(ErrorCode::INVALID_REQUEST))
    );
}

#[test]
fn kip360_reinit_with_current_epoch_bumps_and_a_retry_gets_the_same_answer() {
    let mut h = Harness::new();
    h.init_ok(0);
    let bumped = TxnRecord {
        last_producer_epoch: 0,
        ..empty(1000, 1, 10)
    };
    assert_eq!(
        h.init_req(10, req(TID, 1000, 0)),
        (vec![persist(bumped)], Ok(producer(1000, 1)))
    );
    // The producer lost the answer and retries: same epoch, not another bump.
    let again = TxnRecord {
        last_producer_epoch: 0,
        ..empty(1000, 1, 20)
    };
    assert_eq!(
        h.init_req(20, req(TID, 1000, 0)),
        (vec![persist(again)], Ok(producer(1000, 1)))
    );
    // Neither current nor previous epoch, or another producer id: fenced.
    assert_eq!(
        h.init_req(30, req(TID, 1000, 5)),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    assert_eq!(
        h.init_req(30, req(TID, 999, 1)),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
}

#[test]
fn kip360_reinit_of_an_expired_id_gets_a_new_producer() {
    let mut h = Harness::new();
    // The producer still holds (42, 3) but the coordinator has forgotten the id.
    assert_eq!(
        h.init_req(10, req(TID, 42, 3)),
        (vec![persist(empty(1000, 0, 10))], Ok(producer(1000, 0)))
    );
}

#[test]
fn exhausted_epoch_rotates_the_producer_id() {
    let exhausted = i16::MAX - 1;
    let mut c = TxnCoordinator::new(TxnConfig::default());
    c.load(empty(7, exhausted, 0));
    assert_eq!(c.recover(0), vec![]);
    let mut h = Harness { c, next_pid: 2000 };
    let rotated = TxnRecord {
        last_producer_id: 7,
        ..empty(2000, 0, 10)
    };
    assert_eq!(h.init(10), (vec![persist(rotated)], Ok(producer(2000, 0))));

    // KIP-360 producer: the old epoch is remembered, so its retry gets the same answer.
    let mut c = TxnCoordinator::new(TxnConfig::default());
    c.load(empty(7, exhausted, 0));
    c.recover(0);
    let mut h = Harness { c, next_pid: 2000 };
    let rotated = TxnRecord {
        last_producer_id: 7,
        last_producer_epoch: exhausted,
        ..empty(2000, 0, 10)
    };
    assert_eq!(
        h.init_req(10, req(TID, 7, exhausted)),
        (vec![persist(rotated)], Ok(producer(2000, 0)))
    );
    let retried = TxnRecord {
        last_producer_epoch: exhausted,
        ..empty(2000, 0, 20)
    };
    assert_eq!(
        h.init_req(20, req(TID, 7, exhausted)),
        (vec![persist(retried)], Ok(producer(2000, 0)))
    );
    assert_eq!(h.next_pid, 2001);
}

#[test]
fn fencing_the_last_epoch_then_reinit_rotates() {
    let last = i16::MAX - 1;
    let mut c = TxnCoordinator::new(TxnConfig::default());
    c.load(TxnRecord {
        state: TxnState::Ongoing,
        partitions: parts(ORDERS),
        txn_start_ms: Some(0),
        ..empty(7, last, 0)
    });
    c.recover(0);
    let mut h = Harness { c, next_pid: 2000 };
    let (out, result) = h.init(10);
    assert_eq!(result, Err(ErrorCode::CONCURRENT_TRANSACTIONS));
    assert_eq!(out[1], markers(producer(7, i16::MAX), false, ORDERS, &[]));
    h.c.markers_written(20, TID).expect("markers");
    assert_eq!(h.init(30).1, Ok(producer(2000, 0)));
}

// ---- a transaction's life ----

#[test]
fn commit_path() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    let ongoing = TxnRecord {
        state: TxnState::Ongoing,
        partitions: parts(ORDERS),
        txn_start_ms: Some(100),
        ..empty(1000, 0, 100)
    };
    assert_eq!(
        h.add(100, p, ORDERS),
        (vec![persist(ongoing.clone())], Ok(()))
    );
    // Already in the transaction: nothing to log.
    assert_eq!(h.add(110, p, &[("orders", 1)]), (vec![], Ok(())));
    let with_group = TxnRecord {
        groups: groups(&["g1"]),
        last_update_ms: 120,
        ..ongoing.clone()
    };
    assert_eq!(
        codes(h.c.add_offsets(120, TID, 1000, 0, "g1")),
        (vec![persist(with_group.clone())], Ok(()))
    );
    let prepare = TxnRecord {
        state: TxnState::PrepareCommit,
        last_update_ms: 130,
        ..with_group.clone()
    };
    assert_eq!(
        h.end(130, p, true),
        (
            vec![persist(prepare), markers(p, true, ORDERS, &["g1"])],
            Ok(())
        )
    );
    // Nothing joins a transaction whose markers are being written.
    assert_eq!(
        h.add(135, p, &[("other", 0)]),
        (vec![], Err(ErrorCode::CONCURRENT_TRANSACTIONS))
    );
    assert_eq!(
        h.c.next_deadline(),
        None,
        "waiting on the broker, not on time"
    );
    let complete = TxnRecord {
        state: TxnState::CompleteCommit,
        partitions: BTreeSet::new(),
        groups: BTreeSet::new(),
        last_update_ms: 140,
        ..with_group
    };
    assert_eq!(h.c.markers_written(140, TID), Ok(vec![persist(complete)]));
    assert_eq!(
        h.c.markers_written(141, TID).map_err(|e| e.code()),
        Err(ErrorCode::INVALID_TXN_STATE),
        "a second completion is refused"
    );
    assert_eq!(
        h.c.markers_written(141, "nobody").map_err(|e| e.code()),
        Err(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND)
    );

    // The next transaction starts from CompleteCommit, same epoch (protocol v1).
    let next = TxnRecord {
        state: TxnState::Ongoing,
        partitions: parts(&[("orders", 2)]),
        txn_start_ms: Some(150),
        ..empty(1000, 0, 150)
    };
    assert_eq!(
        h.add(150, p, &[("orders", 2)]),
        (vec![persist(next)], Ok(()))
    );
}

#[test]
fn abort_path() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    let prepare = TxnRecord {
        state: TxnState::PrepareAbort,
        partitions: parts(ORDERS),
        txn_start_ms: Some(100),
        ..empty(1000, 0, 200)
    };
    assert_eq!(
        h.end(200, p, false),
        (
            vec![persist(prepare), markers(p, false, ORDERS, &[])],
            Ok(())
        )
    );
    let complete = TxnRecord {
        state: TxnState::CompleteAbort,
        txn_start_ms: Some(100),
        ..empty(1000, 0, 210)
    };
    assert_eq!(h.c.markers_written(210, TID), Ok(vec![persist(complete)]));
}

#[test]
fn end_txn_retry_with_the_same_decision() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    assert_eq!(h.end(200, p, true).0.len(), 2);
    // Decided but markers pending: the client backs off and retries, as with Kafka.
    assert_eq!(
        h.end(201, p, true),
        (vec![], Err(ErrorCode::CONCURRENT_TRANSACTIONS))
    );
    h.c.markers_written(210, TID).expect("markers");
    // Completed: the retry succeeds and changes nothing.
    assert_eq!(h.end(220, p, true), (vec![], Ok(())));
    assert_eq!(h.end(221, p, true), (vec![], Ok(())));

    // Same for abort.
    h.add(300, p, ORDERS).1.expect("add");
    assert_eq!(h.end(310, p, false).0.len(), 2);
    assert_eq!(
        h.end(311, p, false),
        (vec![], Err(ErrorCode::CONCURRENT_TRANSACTIONS))
    );
    h.c.markers_written(320, TID).expect("markers");
    assert_eq!(h.end(330, p, false), (vec![], Ok(())));
}

#[test]
fn end_txn_with_the_other_decision_or_nothing_open_is_invalid() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    // Empty: neither commit nor abort (protocol v1).
    assert_eq!(
        h.end(10, p, true),
        (vec![], Err(ErrorCode::INVALID_TXN_STATE))
    );
    assert_eq!(
        h.end(10, p, false),
        (vec![], Err(ErrorCode::INVALID_TXN_STATE))
    );

    h.add(100, p, ORDERS).1.expect("add");
    h.end(200, p, true).1.expect("commit");
    assert_eq!(
        h.end(201, p, false),
        (vec![], Err(ErrorCode::INVALID_TXN_STATE))
    );
    h.c.markers_written(210, TID).expect("markers");
    assert_eq!(
        h.end(220, p, false),
        (vec![], Err(ErrorCode::INVALID_TXN_STATE))
    );
    assert_eq!(
        h.c.describe(&[TID.to_owned()])[0].state,
        TxnState::CompleteCommit
    );
}

// ---- the coordinator aborts ----

#[test]
fn timed_out_transaction_is_aborted_with_a_bumped_epoch_and_the_zombie_is_fenced() {
    let mut h = Harness::new();
    let zombie = h.init_ok(0);
    h.add(1_000, zombie, ORDERS).1.expect("add");
    // Kafka aborts once start + timeout < now.
    assert_eq!(h.c.next_deadline(), Some(61_001));
    assert_eq!(h.c.tick(61_000), vec![]);
    let fenced = producer(1000, 1);
    let prepare = TxnRecord {
        state: TxnState::PrepareAbort,
        partitions: parts(ORDERS),
        txn_start_ms: Some(1_000),
        ..empty(1000, 1, 61_001)
    };
    assert_eq!(
        h.c.tick(61_001),
        vec![persist(prepare), markers(fenced, false, ORDERS, &[])]
    );
    assert_eq!(h.c.tick(61_002), vec![], "aborted once");

    // The zombie wakes up and tries to commit.
    assert_eq!(
        h.end(61_100, zombie, true),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    assert_eq!(
        h.add(61_100, zombie, ORDERS),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    h.c.markers_written(61_200, TID).expect("markers");
    assert_eq!(
        h.end(61_300, zombie, true),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    // Even through KIP-360: the fencing epoch is not a previous epoch it may resume from.
    assert_eq!(
        h.init_req(61_300, req(TID, 1000, 0)),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    // A new producer instance starts after the fencing epoch.
    assert_eq!(h.init(61_400).1, Ok(producer(1000, 2)));
}

#[test]
fn ticks_are_spaced_by_the_check_interval() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(0, p, ORDERS).1.expect("add");
    assert_eq!(h.c.tick(55_000), vec![]);
    assert_eq!(
        h.c.next_deadline(),
        Some(65_000),
        "not before 55_000 + 10_000"
    );
    assert_eq!(h.c.tick(65_000).len(), 2);
}

#[test]
fn reinit_during_ongoing_aborts_it_and_answers_concurrent_transactions() {
    let mut h = Harness::new();
    let old = h.init_ok(0);
    h.add(100, old, ORDERS).1.expect("add");
    let fence = producer(1000, 1);
    let prepare = TxnRecord {
        state: TxnState::PrepareAbort,
        partitions: parts(ORDERS),
        txn_start_ms: Some(100),
        ..empty(1000, 1, 200)
    };
    assert_eq!(
        h.init(200),
        (
            vec![persist(prepare), markers(fence, false, ORDERS, &[])],
            Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        )
    );
    // The new producer retries while the abort is in flight.
    assert_eq!(
        h.init(210),
        (vec![], Err(ErrorCode::CONCURRENT_TRANSACTIONS))
    );
    assert_eq!(
        h.end(210, old, true),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
    h.c.markers_written(220, TID).expect("markers");
    // Then it gets the epoch after the fencing one.
    assert_eq!(
        h.init(230),
        (vec![persist(empty(1000, 2, 230))], Ok(producer(1000, 2)))
    );
    assert_eq!(
        h.add(240, old, ORDERS),
        (vec![], Err(ErrorCode::PRODUCER_FENCED))
    );
}

// ---- expiry ----

#[test]
fn idle_transactional_ids_expire() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    // A second id with a transaction open is not expired; it times out instead.
    let (_, other) = h.init_req(0, req("busy", -1, -1));
    let other = other.expect("init busy");
    codes(h.c.add_partitions(
        EXPIRATION - 1,
        "busy",
        other.producer_id,
        0,
        vec![TopicPartition::new("t", 0)],
    ))
    .1
    .expect("add");
    assert_eq!(h.c.next_deadline(), Some(EXPIRATION));
    assert_eq!(h.c.tick(EXPIRATION - 1), vec![]);
    let tombstone = TxnRecord {
        state: TxnState::Dead,
        ..empty(1000, 0, EXPIRATION)
    };
    assert!(tombstone.is_tombstone());
    assert_eq!(h.c.tick(EXPIRATION), vec![persist(tombstone)]);
    assert_eq!(
        h.c.describe(&[TID.to_owned()])[0].error,
        ErrorCode::TRANSACTIONAL_ID_NOT_FOUND
    );
    assert_eq!(
        h.add(EXPIRATION, p, ORDERS),
        (vec![], Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING))
    );
    // The busy one is still there and will time out.
    assert_eq!(h.c.list(&[], &[]).map(|l| l.len()), Ok(1));
    assert_eq!(h.c.next_deadline(), Some(EXPIRATION - 1 + 60_001));
    // Coming back after expiry is a new producer.
    assert_eq!(h.init(EXPIRATION + 5).1, Ok(producer(1002, 0)));
}

#[test]
fn activity_postpones_expiry() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(1_000, p, ORDERS).1.expect("add");
    h.end(2_000, p, true).1.expect("commit");
    h.c.markers_written(3_000, TID).expect("markers");
    assert_eq!(h.c.next_deadline(), Some(3_000 + EXPIRATION));
    assert_eq!(h.c.tick(3_000 + EXPIRATION - 1), vec![]);
    assert_eq!(h.c.tick(3_000 + EXPIRATION).len(), 1);
}

#[test]
fn verify_member_for_txn_offset_commit() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    let g1 = TxnMember::Group("g1".to_owned());
    let verify = |h: &mut Harness, pid: i64, epoch: i16| {
        h.c.verify_member(TID, pid, epoch, &g1)
            .map_err(|e| e.code())
    };
    // No transaction open: the group was never added.
    assert_eq!(verify(&mut h, 1000, 0), Err(ErrorCode::INVALID_TXN_STATE));
    assert_eq!(h.add(100, p, ORDERS).1, Ok(()));
    assert_eq!(verify(&mut h, 1000, 0), Err(ErrorCode::INVALID_TXN_STATE));
    let (_, added) = codes(h.c.add_offsets(110, TID, 1000, 0, "g1"));
    assert_eq!(added, Ok(()));
    assert_eq!(verify(&mut h, 1000, 0), Ok(()));
    assert_eq!(verify(&mut h, 1000, 1), Err(ErrorCode::PRODUCER_FENCED));
    assert_eq!(
        verify(&mut h, 999, 0),
        Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
    );
    // Once the commit is decided, no more offsets join it.
    assert_eq!(h.end(120, p, true).1, Ok(()));
    assert_eq!(verify(&mut h, 1000, 0), Err(ErrorCode::INVALID_TXN_STATE));
}

#[path = "recovery_tests.rs"]
mod recovery;
#[path = "verify_tests.rs"]
mod verify;
