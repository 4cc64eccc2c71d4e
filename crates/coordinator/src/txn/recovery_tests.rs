//! Recovery from the transaction log and the log's record format: a coordinator replayed
//! from the records an earlier one wrote, the pinned encoding, and the listings
//! (DescribeTransactions, ListTransactions) over the recovered state.

use super::*;

/// The broker side of the log: every PersistState appended, encoded.
fn append(log: &mut Vec<Vec<u8>>, out: &[TxnOutput]) {
    for output in out {
        if let TxnOutput::PersistState(record) = output {
            log.push(record.encode());
        }
    }
}

fn replay(log: &[Vec<u8>]) -> TxnCoordinator {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    for bytes in log {
        c.load(TxnRecord::decode(bytes).expect("decode"));
    }
    c
}

#[test]
fn broker_killed_after_prepare_commit_completes_the_commit_on_recovery() {
    let mut h = Harness::new();
    let mut log = Vec::new();
    let (out, _) = h.init(0);
    append(&mut log, &out);
    let p = producer(1000, 0);
    append(&mut log, &h.add(100, p, ORDERS).0);
    append(&mut log, &codes(h.c.add_offsets(110, TID, 1000, 0, "g1")).0);
    let (out, _) = h.end(200, p, true);
    append(&mut log, &out);
    // Killed here: PrepareCommit is durable, no marker was written.

    let mut c = replay(&log);
    assert_eq!(
        codes(c.add_partitions(300, TID, 1000, 0, vec![])),
        (vec![], Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS))
    );
    assert_eq!(
        c.describe(&[TID.to_owned()])[0].error,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(
        c.list(&[], &[]).map_err(|e| e.code()),
        Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
    );
    assert_eq!(c.tick(300), vec![]);
    assert_eq!(c.next_deadline(), None);

    assert_eq!(c.recover(300), vec![markers(p, true, ORDERS, &["g1"])]);
    let complete = TxnRecord {
        state: TxnState::CompleteCommit,
        txn_start_ms: Some(100),
        ..empty(1000, 0, 310)
    };
    assert_eq!(c.markers_written(310, TID), Ok(vec![persist(complete)]));
    // The producer's retried EndTxn now succeeds.
    assert_eq!(codes(c.end_txn(320, TID, 1000, 0, true)), (vec![], Ok(())));
}

#[test]
fn recovery_leaves_open_transactions_to_time_out_and_applies_tombstones() {
    let mut h = Harness::new();
    let mut log = Vec::new();
    let (out, _) = h.init(0);
    append(&mut log, &out);
    append(&mut log, &h.add(100, producer(1000, 0), ORDERS).0);
    // A tombstoned id and a null-value tombstone for another.
    log.push(
        TxnRecord {
            transactional_id: "gone".to_owned(),
            ..empty(5, 0, 0)
        }
        .encode(),
    );
    log.push(
        TxnRecord {
            transactional_id: "gone".to_owned(),
            state: TxnState::Dead,
            ..empty(5, 0, 1)
        }
        .encode(),
    );
    let mut c = replay(&log);
    c.load(TxnRecord {
        transactional_id: "null".to_owned(),
        ..empty(6, 0, 0)
    });
    c.load(TxnRecord::tombstone("null"));

    assert_eq!(c.recover(1_000), vec![]);
    assert_eq!(
        c.list(&[], &[]),
        Ok(vec![TxnListing {
            transactional_id: TID.to_owned(),
            producer_id: 1000,
            state: TxnState::Ongoing,
        }])
    );
    assert_eq!(c.next_deadline(), Some(60_101));
    let prepare = TxnRecord {
        state: TxnState::PrepareAbort,
        partitions: parts(ORDERS),
        txn_start_ms: Some(100),
        ..empty(1000, 1, 60_101)
    };
    assert_eq!(
        c.tick(60_101),
        vec![
            persist(prepare),
            markers(producer(1000, 1), false, ORDERS, &[])
        ]
    );
}

#[test]
fn recovery_of_a_prepare_abort_record_re_emits_abort_markers() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    c.load(TxnRecord {
        state: TxnState::PrepareAbort,
        partitions: parts(ORDERS),
        groups: groups(&["g"]),
        txn_start_ms: Some(5),
        ..empty(1000, 3, 9)
    });
    assert_eq!(
        c.recover(50),
        vec![markers(producer(1000, 3), false, ORDERS, &["g"])]
    );
}

// ---- the record format ----

#[test]
fn record_encoding_is_pinned() {
    let record = TxnRecord {
        state: TxnState::PrepareCommit,
        partitions: parts(&[("orders", 1), ("a b", 0)]),
        groups: groups(&["g\\1\n"]),
        txn_start_ms: Some(100),
        ..empty(1000, 2, 130)
    };
    let text = "weir-txn 1\nid tx\nproducer 1000 2\nlast_producer 1000 -1\ntimeout_ms 60000\n\
                state PrepareCommit\ntxn_start_ms 100\nlast_update_ms 130\npartition 0 a b\n\
                partition 1 orders\ngroup g\\\\1\\n\nend\n";
    assert_eq!(String::from_utf8(record.encode()).expect("utf-8"), text);
    assert_eq!(TxnRecord::decode(text.as_bytes()), Ok(record));
}

#[test]
fn record_round_trips() {
    let records = [
        empty(1000, 0, 0),
        TxnRecord {
            transactional_id: "weird id\n\r\\ é ✓".to_owned(),
            producer_id: i64::MAX,
            producer_epoch: i16::MAX,
            last_producer_id: -1,
            last_producer_epoch: i16::MIN,
            timeout_ms: i32::MIN,
            state: TxnState::Ongoing,
            partitions: parts(&[("t", 0), ("t", -1), ("", 3)]),
            groups: groups(&["", " ", "g"]),
            txn_start_ms: Some(u64::MAX),
            last_update_ms: u64::MAX,
        },
        TxnRecord::tombstone("x"),
    ];
    for record in records {
        assert_eq!(TxnRecord::decode(&record.encode()), Ok(record));
    }
}

#[test]
fn record_decoding_rejects_garbage() {
    let good = TxnRecord {
        state: TxnState::CompleteAbort,
        partitions: parts(ORDERS),
        groups: groups(&["g"]),
        ..empty(1000, 0, 0)
    }
    .encode();
    // Every cut, including ones at a line boundary.
    for len in 0..good.len() {
        assert!(
            TxnRecord::decode(&good[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
    let good = String::from_utf8(good).expect("utf-8");
    let bad: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"\xff\xfe\n".to_vec(),
        good.replace("weir-txn 1", "weir-txn 2").into_bytes(),
        good.replace("CompleteAbort", "Committed").into_bytes(),
        good.replace("CompleteAbort", "PrepareEpochFence")
            .into_bytes(),
        good.replace("producer 1000 0", "producer 1000 70000")
            .into_bytes(),
        good.replace("producer 1000 0", "producer +1000 0")
            .into_bytes(),
        good.replace("producer 1000 0", "producer 1000")
            .into_bytes(),
        good.replace("partition 0 orders", "partition x orders")
            .into_bytes(),
        good.replace("partition 0 orders", "partition 0")
            .into_bytes(),
        good.replace("group g", "group g\\x").into_bytes(),
        good.replace("group g", "group g\r").into_bytes(),
        good.replace("id tx", "ID tx").into_bytes(),
        // Reordered: valid lines, but not as encode writes them.
        good.replace(
            "partition 0 orders\npartition 1 orders",
            "partition 1 orders\npartition 0 orders",
        )
        .into_bytes(),
        format!("{good}end\n").into_bytes(),
        good.replace("\n", "\r\n").into_bytes(),
    ];
    for bytes in bad {
        let result = TxnRecord::decode(&bytes);
        assert!(
            matches!(result, Err(TxnError::MalformedRecord { .. })),
            "accepted {:?}: {result:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert_eq!(
        TxnRecord::decode(b"garbage").map_err(|e| e.code()),
        Err(ErrorCode::UNKNOWN_SERVER_ERROR)
    );
}

// ---- operators ----

#[test]
fn describe_and_list() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    codes(h.c.add_offsets(110, TID, 1000, 0, "g1"))
        .1
        .expect("add offsets");
    let (_, idle) = h.init_req(120, req("idle", -1, -1));
    assert_eq!(idle, Ok(producer(1001, 0)));

    let described =
        h.c.describe(&[TID.to_owned(), "idle".to_owned(), "nope".to_owned()]);
    assert_eq!(
        described,
        vec![
            TxnDescription {
                error: ErrorCode::NONE,
                transactional_id: TID.to_owned(),
                state: TxnState::Ongoing,
                producer_id: 1000,
                producer_epoch: 0,
                timeout_ms: TIMEOUT,
                txn_start_ms: Some(100),
                partitions: vec![
                    TopicPartition::new("orders", 0),
                    TopicPartition::new("orders", 1)
                ],
                groups: vec!["g1".to_owned()],
            },
            TxnDescription {
                error: ErrorCode::NONE,
                transactional_id: "idle".to_owned(),
                state: TxnState::Empty,
                producer_id: 1001,
                producer_epoch: 0,
                timeout_ms: TIMEOUT,
                txn_start_ms: None,
                partitions: vec![],
                groups: vec![],
            },
            TxnDescription {
                error: ErrorCode::TRANSACTIONAL_ID_NOT_FOUND,
                transactional_id: "nope".to_owned(),
                state: TxnState::Dead,
                producer_id: -1,
                producer_epoch: -1,
                timeout_ms: -1,
                txn_start_ms: None,
                partitions: vec![],
                groups: vec![],
            },
        ]
    );

    let listing = |id: &str, producer_id, state| TxnListing {
        transactional_id: id.to_owned(),
        producer_id,
        state,
    };
    let all = vec![
        listing("idle", 1001, TxnState::Empty),
        listing(TID, 1000, TxnState::Ongoing),
    ];
    assert_eq!(h.c.list(&[], &[]), Ok(all));
    assert_eq!(
        h.c.list(&[TxnState::Ongoing], &[]),
        Ok(vec![listing(TID, 1000, TxnState::Ongoing)])
    );
    assert_eq!(
        h.c.list(&[], &[1001, 5]),
        Ok(vec![listing("idle", 1001, TxnState::Empty)])
    );
    assert_eq!(h.c.list(&[TxnState::Ongoing], &[1001]), Ok(vec![]));
}

#[test]
fn state_names_are_kafkas() {
    let names: Vec<&str> = TxnState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "PrepareEpochFence",
            "Dead"
        ]
    );
    for state in TxnState::ALL {
        assert_eq!(state.as_str().parse(), Ok(state));
    }
    assert_eq!(
        "ongoing".parse::<TxnState>(),
        Err(UnknownTxnState {
            name: "ongoing".to_owned()
        })
    );
}
