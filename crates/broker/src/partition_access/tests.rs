use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use weir_coordinator::TopicPartition;
use weir_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_storage::AbortedTxn;

use super::*;
use crate::partition::{Isolation, ReadResult, ReadSpec, Watermarks};

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn every_request() -> Vec<Request> {
    vec![
        Request::Read {
            tp: tp("orders", 2),
            spec: ReadSpec {
                offset: 42,
                max_bytes: 1 << 20,
                min_one_batch: true,
                isolation: Isolation::ReadCommitted,
                leader_epoch: Some(7),
            },
        },
        Request::Read {
            tp: tp("ünïcode", 0),
            spec: ReadSpec {
                offset: 0,
                max_bytes: 10,
                min_one_batch: false,
                isolation: Isolation::ReadUncommitted,
                leader_epoch: None,
            },
        },
        Request::Watermarks { tp: tp("a", 0) },
        Request::OffsetForTimestamp {
            tp: tp("a", 1),
            timestamp: -2,
        },
        Request::Append {
            tp: tp("sink", 1),
            timeout_ms: 30_000,
            records: Bytes::from_static(b"\x00\x01raw batch bytes"),
        },
        Request::Wait {
            max_wait_ms: 500,
            items: vec![(tp("a", 0), 10), (tp("b", 3), i64::MAX)],
        },
        Request::Wait {
            max_wait_ms: 0,
            items: vec![],
        },
        Request::InitTransactional {
            transactional_id: "__weir_sql.7".into(),
            timeout_ms: 60_000,
        },
        Request::AddPartitions {
            transactional_id: "t".into(),
            producer_id: 1000,
            producer_epoch: 3,
            partitions: vec![tp("a", 0), tp("b", 1)],
        },
        Request::EndTxn {
            transactional_id: "t".into(),
            producer_id: 1000,
            producer_epoch: 3,
            commit: true,
        },
    ]
}

fn every_answer() -> Vec<Answer> {
    vec![
        Answer::Read(ReadResult {
            records: Bytes::from_static(b"batches"),
            watermarks: Watermarks {
                log_start_offset: 1,
                high_watermark: 9,
                last_stable_offset: 8,
            },
            aborted: Some(vec![AbortedTxn {
                producer_id: 5,
                first_offset: 2,
                last_offset: 4,
            }]),
        }),
        Answer::Read(ReadResult {
            records: Bytes::new(),
            watermarks: Watermarks {
                log_start_offset: 0,
                high_watermark: 0,
                last_stable_offset: 0,
            },
            aborted: None,
        }),
        Answer::Watermarks(Watermarks {
            log_start_offset: 3,
            high_watermark: 4,
            last_stable_offset: 4,
        }),
        Answer::Offset(None),
        Answer::Offset(Some((17, 1_700_000_000_000))),
        Answer::Appended { last_offset: 99 },
        Answer::Waited,
        Answer::Producer {
            producer_id: 4000,
            producer_epoch: 2,
        },
        Answer::Done,
        Answer::Failed(Failure {
            kind: FailureKind::Fenced,
            code: 90,
            message: "fenced".into(),
        }),
    ]
}

#[test]
fn every_request_and_answer_round_trips() {
    for r in every_request() {
        assert_eq!(Request::decode(r.encode()).as_ref(), Ok(&r));
    }
    for a in every_answer() {
        assert_eq!(Answer::decode(a.encode()).as_ref(), Ok(&a));
    }
}

#[test]
fn a_cut_or_extended_body_is_an_error() {
    for r in every_request() {
        let body = r.encode();
        for cut in 0..body.len() {
            assert!(
                Request::decode(body.slice(..cut)).is_err(),
                "{r:?} cut at {cut}"
            );
        }
        let mut longer = body.to_vec();
        longer.push(0);
        let err = Request::decode(Bytes::from(longer)).expect_err("trailing byte");
        assert_eq!(err.reason, "bytes after the body");
    }
    for a in every_answer() {
        let body = a.encode();
        for cut in 0..body.len() {
            assert!(
                Answer::decode(body.slice(..cut)).is_err(),
                "{a:?} cut at {cut}"
            );
        }
    }
    assert_eq!(
        Request::decode(Bytes::from_static(&[200]))
            .expect_err("tag")
            .reason,
        "unknown request tag"
    );
}

/// Fuzz-style: random and mutated bodies decode to an error or a value, never a panic, and
/// a huge declared count does not allocate ahead of the bytes.
#[test]
fn malformed_bodies_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid: Vec<Bytes> = every_request()
        .iter()
        .map(Request::encode)
        .chain(every_answer().iter().map(Answer::encode))
        .collect();
    for i in 0..20_000 {
        let mut body = valid[i % valid.len()].to_vec();
        let flips = 1 + (next() % 4) as usize;
        for _ in 0..flips {
            if body.is_empty() {
                break;
            }
            let at = (next() as usize) % body.len();
            body[at] = next() as u8;
        }
        if next() % 3 == 0 {
            let len = (next() as usize) % 64;
            body = (0..len).map(|_| next() as u8).collect();
        }
        let _ = Request::decode(Bytes::from(body.clone()));
        let _ = Answer::decode(Bytes::from(body));
    }
    // A Wait declaring u32::MAX items with none behind it.
    let mut huge = vec![4u8, 0, 0, 0, 0];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(Request::decode(Bytes::from(huge)).is_err());
}

/// The fuzz target's seeds (`fuzz/seeds/partition_access`) are valid bodies, so the fuzzer
/// starts from every kind of call.
#[test]
fn the_fuzz_seeds_decode() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/partition_access");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let bytes = Bytes::from(std::fs::read(entry.expect("entry").path()).expect("seed"));
        assert!(
            Request::decode(bytes.clone()).is_ok() || Answer::decode(bytes).is_ok(),
            "a seed that decodes as neither"
        );
        n += 1;
    }
    assert!(n >= 6);
}

fn batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> BytesMut {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.map_or(-1, |p| p.0),
            producer_epoch: producer.map_or(-1, |p| p.1),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: producer.map_or(-1, |p| p.2 + i as i32),
            timestamp: 1_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf
}

async fn single_node(dir: &std::path::Path, topic: &str, partitions: i32) -> Arc<State> {
    let state = crate::testkit::recovered(dir, &[]);
    state
        .create_topic(topic, partitions, 1, BTreeMap::new())
        .await
        .expect("topic");
    state
}

/// A link from one broker to another's `serve_access`, as the binary installs it.
fn loopback(to: Arc<State>) -> AccessLink {
    Arc::new(move |_broker, _channel, body: Bytes| {
        let to = to.clone();
        Box::pin(async move {
            serve_access(&to, body)
                .await
                .map_err(|e| Box::new(e) as crate::cluster::BoxError)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_is_served_locally() {
    let dir = tempfile::tempdir().expect("dir");
    let state = single_node(dir.path(), "t", 2).await;
    let access = PartitionAccess::new(state.clone());
    assert!(!access.is_cluster());
    let handles = access.partitions("t").expect("handles");
    assert_eq!(handles.len(), 2);
    let h = &handles[1];
    let appended = h
        .append(&mut batch(&["a", "b"], None))
        .await
        .expect("append");
    assert_eq!(appended.last_offset, 1);
    assert!(matches!(appended.ack, AppendAck::Local(_)));
    let read = h
        .read(&ReadSpec {
            offset: 0,
            max_bytes: 1 << 20,
            min_one_batch: true,
            isolation: Isolation::ReadCommitted,
            leader_epoch: None,
        })
        .await
        .expect("read");
    assert!(!read.result.records.is_empty());
    assert!(matches!(read.wake, Wake::Local(_, _)));
    assert_eq!(h.watermarks().await.expect("marks").last_stable_offset, 2);
    assert_eq!(
        h.offset_for_timestamp(1_001).await.expect("ts"),
        Some((1, 1_001))
    );
    assert!(matches!(
        access.partition("t", 2),
        Err(AccessError::UnknownPartition(_))
    ));
    assert!(matches!(
        access.partitions("missing"),
        Err(AccessError::UnknownPartition(_))
    ));
    // A transaction through the handle's coordinator calls.
    let (pid, epoch) = access.init_transactional("tx", 60_000).await.expect("init");
    access
        .add_partitions("tx", pid, epoch, vec![tp("t", 0)])
        .await
        .expect("add");
    handles[0]
        .append(&mut batch(&["x"], Some((pid, epoch, 0))))
        .await
        .expect("txn append");
    access
        .end_txn("tx", pid, epoch, true)
        .await
        .expect("commit");
    assert_eq!(
        handles[0]
            .watermarks()
            .await
            .expect("marks")
            .last_stable_offset,
        2,
        "record and commit marker"
    );
}

/// The remote path end to end without sockets: one broker's calls reach another's
/// `serve_access` through a loopback link, so the encoding, the leader's calls and the
/// mapping of its refusals (fencing, unknown partitions) are those of a real cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_link_are_served_by_the_leaders_own_calls() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = single_node(da.path(), "here", 1).await;
    let b = single_node(db.path(), "there", 1).await;
    a.set_access_link(loopback(b.clone()));
    let access = PartitionAccess::new(a);
    let there = tp("there", 0);
    let answer = access
        .call(
            2,
            &Request::Append {
                tp: there.clone(),
                timeout_ms: 1_000,
                records: batch(&["v1", "v2", "v3"], None).freeze(),
            },
        )
        .await
        .expect("append");
    assert_eq!(answer, Answer::Appended { last_offset: 2 });
    let spec = ReadSpec {
        offset: 1,
        max_bytes: 1 << 20,
        min_one_batch: true,
        isolation: Isolation::ReadCommitted,
        leader_epoch: None,
    };
    match access
        .call(
            2,
            &Request::Read {
                tp: there.clone(),
                spec,
            },
        )
        .await
        .expect("read")
    {
        Answer::Read(r) => {
            assert_eq!(r.watermarks.last_stable_offset, 3);
            assert_eq!(r.aborted, Some(vec![]));
            let local = b.topic("there").and_then(|t| t.partition(0)).expect("p");
            assert_eq!(r.records, local.read(&spec).expect("local read").records);
        }
        other => panic!("{other:?}"),
    }
    // Caught up: the wait answers after its bound; behind: at once.
    let started = std::time::Instant::now();
    let waited = access
        .call(
            2,
            &Request::Wait {
                max_wait_ms: 200,
                items: vec![(there.clone(), 3)],
            },
        )
        .await;
    assert_eq!(waited.expect("wait"), Answer::Waited);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let started = std::time::Instant::now();
    let waited = access
        .call(
            2,
            &Request::Wait {
                max_wait_ms: 5_000,
                items: vec![(there.clone(), 1)],
            },
        )
        .await;
    assert_eq!(waited.expect("wait"), Answer::Waited);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // A partition the leader does not have.
    let err = access
        .call(2, &Request::Watermarks { tp: tp("there", 5) })
        .await
        .expect_err("unknown");
    assert!(
        matches!(&err, AccessError::Remote { failure, .. } if failure.kind == FailureKind::UnknownPartition),
        "{err:?}"
    );
    assert!(!err.is_retriable());
    // Transactions at the remote coordinator: a second init fences the first producer.
    let init = |id: &str| Request::InitTransactional {
        transactional_id: id.into(),
        timeout_ms: 60_000,
    };
    let Answer::Producer {
        producer_id,
        producer_epoch,
    } = access.call(2, &init("p")).await.expect("init")
    else {
        panic!("not a producer")
    };
    access.call(2, &init("p")).await.expect("re-init");
    let err = access
        .call(
            2,
            &Request::AddPartitions {
                transactional_id: "p".into(),
                producer_id,
                producer_epoch,
                partitions: vec![there.clone()],
            },
        )
        .await
        .expect_err("fenced");
    assert!(err.is_fenced(), "{err:?}");
    assert!(!err.is_misrouted());
}

#[test]
fn refusals_say_whether_to_reroute() {
    let not_leader = AccessError::Remote {
        broker: 2,
        failure: Failure {
            kind: FailureKind::NotLeader,
            code: 0,
            message: String::new(),
        },
    };
    assert!(not_leader.is_misrouted() && not_leader.is_retriable());
    let not_coordinator = AccessError::Remote {
        broker: 2,
        failure: Failure {
            kind: FailureKind::Retriable,
            code: weir_coordinator::ErrorCode::NOT_COORDINATOR.0,
            message: String::new(),
        },
    };
    assert!(not_coordinator.is_misrouted());
    let concurrent = AccessError::Remote {
        broker: 2,
        failure: Failure {
            kind: FailureKind::Retriable,
            code: weir_coordinator::ErrorCode::CONCURRENT_TRANSACTIONS.0,
            message: String::new(),
        },
    };
    assert!(concurrent.is_retriable() && !concurrent.is_misrouted());
    assert!(AccessError::NoLeader(tp("a", 0)).is_misrouted());
    let wrong_role = AccessError::Partition {
        tp: tp("a", 0),
        source: crate::partition::PartitionError::WrongRole {
            role: crate::partition::Role::Follower,
        },
    };
    assert!(wrong_role.is_misrouted());
}
