//! Writes valid seed inputs for every fuzz target into `<out>/<target>/`, in each target's
//! input layout (see the doc comment at the top of each file in `fuzz/fuzz_targets/`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use weir_broker::meta::{self, TopicRecord};
use weir_coordinator::txn::{TxnRecord, TxnState};
use weir_coordinator::TopicPartition;
use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use weir_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_protocol::versions::SUPPORTED;
use weir_storage::batch::{self, Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Marker, ABORTED_INDEX, PRODUCER_SNAPSHOT};

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(out: &Path, target: &str) -> Seeds {
        let dir = out.join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create seed directory");
        Seeds { dir, count: 0 }
    }

    fn add(&mut self, bytes: &[u8]) {
        self.count += 1;
        fs::write(self.dir.join(format!("seed-{:03}", self.count)), bytes).expect("write seed");
    }
}

/// Input of a chunk: u16 length, then the bytes.
fn chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A few valid batches of each kind storage sees.
fn sample_batches() -> Vec<Vec<u8>> {
    vec![
        BatchBuilder::new(1_000)
            .record(1_000, Some(b"k"), Some(b"v"))
            .record(1_005, None, Some(b"w"))
            .build(),
        BatchBuilder::new(2_000)
            .records(3, 8)
            .compression(4)
            .build(),
        BatchBuilder::new(3_000)
            .producer(7, 0, 0)
            .record(3_000, Some(b"a"), None)
            .build(),
        BatchBuilder::new(4_000)
            .producer(9, 1, 0)
            .transactional()
            .records(2, 4)
            .build(),
        batch::control_batch(9, 1, Marker::Abort, 3, 5_000),
    ]
}

fn request_body<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).ok()?;
    let _ = key;
    Some(buf.to_vec())
}

fn request_seeds(out: &Path) {
    let mut frames = Seeds::new(out, "request_frame");
    let mut bodies = Seeds::new(out, "request_body");
    let topic = TopicName(StrBytes::from_static_str("t"));
    for (i, r) in SUPPORTED.iter().enumerate() {
        for v in r.min..=r.max {
            let body = match r.key {
                ApiKey::Produce => {
                    let mut p = produce_request::PartitionProduceData::default();
                    p.records = Some(Bytes::from(sample_batches().remove(0)));
                    let mut t = produce_request::TopicProduceData::default();
                    t.name = topic.clone();
                    t.partition_data = vec![p];
                    let mut req = ProduceRequest::default();
                    req.topic_data = vec![t];
                    request_body(r.key, v, &req)
                }
                ApiKey::Fetch => {
                    let mut t = fetch_request::FetchTopic::default();
                    t.topic = topic.clone();
                    t.partitions = vec![fetch_request::FetchPartition::default()];
                    let mut req = FetchRequest::default();
                    req.topics = vec![t];
                    request_body(r.key, v, &req)
                }
                ApiKey::Metadata => {
                    let mut t = metadata_request::MetadataRequestTopic::default();
                    t.name = Some(topic.clone());
                    let mut req = MetadataRequest::default();
                    req.topics = Some(vec![t]);
                    request_body(r.key, v, &req)
                }
                ApiKey::CreateTopics => {
                    let mut t = create_topics_request::CreatableTopic::default();
                    t.name = topic.clone();
                    let mut req = CreateTopicsRequest::default();
                    req.topics = vec![t];
                    request_body(r.key, v, &req)
                }
                ApiKey::ListOffsets => request_body(r.key, v, &ListOffsetsRequest::default()),
                ApiKey::OffsetCommit => request_body(r.key, v, &OffsetCommitRequest::default()),
                ApiKey::OffsetFetch => request_body(r.key, v, &OffsetFetchRequest::default()),
                ApiKey::FindCoordinator => {
                    request_body(r.key, v, &FindCoordinatorRequest::default())
                }
                ApiKey::JoinGroup => request_body(r.key, v, &JoinGroupRequest::default()),
                ApiKey::Heartbeat => request_body(r.key, v, &HeartbeatRequest::default()),
                ApiKey::LeaveGroup => request_body(r.key, v, &LeaveGroupRequest::default()),
                ApiKey::SyncGroup => request_body(r.key, v, &SyncGroupRequest::default()),
                ApiKey::DescribeGroups => request_body(r.key, v, &DescribeGroupsRequest::default()),
                ApiKey::ListGroups => request_body(r.key, v, &ListGroupsRequest::default()),
                ApiKey::SaslHandshake => request_body(r.key, v, &SaslHandshakeRequest::default()),
                ApiKey::ApiVersions => request_body(r.key, v, &ApiVersionsRequest::default()),
                ApiKey::DeleteTopics => request_body(r.key, v, &DeleteTopicsRequest::default()),
                ApiKey::DeleteRecords => request_body(r.key, v, &DeleteRecordsRequest::default()),
                ApiKey::InitProducerId => request_body(r.key, v, &InitProducerIdRequest::default()),
                ApiKey::AddPartitionsToTxn => {
                    request_body(r.key, v, &AddPartitionsToTxnRequest::default())
                }
                ApiKey::EndTxn => request_body(r.key, v, &EndTxnRequest::default()),
                ApiKey::AddOffsetsToTxn => {
                    request_body(r.key, v, &AddOffsetsToTxnRequest::default())
                }
                ApiKey::TxnOffsetCommit => {
                    request_body(r.key, v, &TxnOffsetCommitRequest::default())
                }
                ApiKey::DescribeProducers => {
                    request_body(r.key, v, &DescribeProducersRequest::default())
                }
                ApiKey::DescribeTransactions => {
                    request_body(r.key, v, &DescribeTransactionsRequest::default())
                }
                ApiKey::ListTransactions => {
                    request_body(r.key, v, &ListTransactionsRequest::default())
                }
                ApiKey::DescribeConfigs => {
                    request_body(r.key, v, &DescribeConfigsRequest::default())
                }
                ApiKey::AlterConfigs => request_body(r.key, v, &AlterConfigsRequest::default()),
                ApiKey::CreatePartitions => {
                    request_body(r.key, v, &CreatePartitionsRequest::default())
                }
                ApiKey::IncrementalAlterConfigs => {
                    request_body(r.key, v, &IncrementalAlterConfigsRequest::default())
                }
                ApiKey::DeleteGroups => request_body(r.key, v, &DeleteGroupsRequest::default()),
                ApiKey::OffsetDelete => request_body(r.key, v, &OffsetDeleteRequest::default()),
                ApiKey::DescribeCluster => {
                    request_body(r.key, v, &DescribeClusterRequest::default())
                }
                ApiKey::ConsumerGroupHeartbeat => {
                    request_body(r.key, v, &ConsumerGroupHeartbeatRequest::default())
                }
                ApiKey::ConsumerGroupDescribe => {
                    request_body(r.key, v, &ConsumerGroupDescribeRequest::default())
                }
                _ => None,
            };
            let Some(body) = body else { continue };
            // request_body: API index, version offset, body.
            let mut b = vec![i as u8, (v - r.min) as u8];
            b.extend_from_slice(&body);
            bodies.add(&b);
            // request_frame: the whole frame.
            let mut header = RequestHeader::default();
            header.request_api_key = r.key as i16;
            header.request_api_version = v;
            header.correlation_id = 1;
            header.client_id = Some(StrBytes::from_static_str("seed"));
            let mut buf = BytesMut::new();
            header
                .encode(&mut buf, r.key.request_header_version(v))
                .expect("header");
            buf.put_slice(&body);
            frames.add(&buf);
        }
    }
}

fn record_batch_seeds(out: &Path) {
    let mut seeds = Seeds::new(out, "record_batch");
    for (i, b) in sample_batches().into_iter().enumerate() {
        let mut input = vec![i as u8 & 2];
        input.extend_from_slice(&1_002i64.to_be_bytes());
        input.extend_from_slice(&0i64.to_be_bytes());
        input.extend_from_slice(&b);
        seeds.add(&input);
    }
    let mut all = vec![1u8];
    all.extend_from_slice(&0i64.to_be_bytes());
    all.extend_from_slice(&0i64.to_be_bytes());
    for b in sample_batches() {
        all.extend_from_slice(&b);
    }
    seeds.add(&all);
}

/// Produced batches in every codec, with keyed, keyless and empty-keyed records.
fn produce_records_seeds(out: &Path) {
    let mut seeds = Seeds::new(out, "produce_records");
    let keys: [Option<&'static [u8]>; 3] = [Some(b"k"), None, Some(b"")];
    for (i, compression) in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let records: Vec<Record> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: n as i64,
                sequence: -1,
                timestamp: 1_000,
                key: k.map(Bytes::from_static),
                value: Some(Bytes::from_static(b"value")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        let mut input = vec![i as u8 & 1];
        input.extend_from_slice(&buf);
        seeds.add(&input);
    }
}

fn log_append_seeds(out: &Path) {
    let mut seeds = Seeds::new(out, "log_append");
    let batches = sample_batches();
    for (flags, arg, b) in [
        (0u8, 0u32, &batches[0]),
        (1 << 5, 1, &batches[1]),
        (2 << 5 | 4, 7, &batches[2]),
        (2, 9 << 8, &batches[3]),
        (3 << 5 | 2, 9 << 8 | 1, &batches[3]),
        (4 << 5, 0, &batches[0]),
    ] {
        let mut input = vec![flags];
        input.extend_from_slice(&arg.to_be_bytes());
        input.extend_from_slice(b);
        seeds.add(&input);
    }
}

/// A real partition directory's files after appends and a clean close.
struct RealLog {
    log: Vec<u8>,
    index: Vec<u8>,
    timeindex: Vec<u8>,
    snapshot: Vec<u8>,
    aborted: Vec<u8>,
}

fn real_log() -> RealLog {
    let dir = std::env::temp_dir().join(format!("weir-seedgen-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let config = LogConfig {
        index_interval_bytes: 64,
        ..LogConfig::default()
    };
    let log = Log::create(dir.clone(), config).expect("create log");
    for (i, mut b) in sample_batches().into_iter().enumerate() {
        if b.len() > 61 && batch::marker_of(&b).is_some() {
            log.append_marker(9, 1, Marker::Abort, 3, 5_000 + i as i64)
                .expect("marker");
        } else {
            log.append(&mut b, 10_000).expect("append");
        }
    }
    log.close().expect("close");
    let name = |suffix: &str| dir.join(format!("{:020}{suffix}", 0));
    let read = |p: PathBuf| fs::read(p).unwrap_or_default();
    let out = RealLog {
        log: read(name(".log")),
        index: read(name(".index")),
        timeindex: read(name(".timeindex")),
        snapshot: read(dir.join(PRODUCER_SNAPSHOT)),
        aborted: read(dir.join(ABORTED_INDEX)),
    };
    let _ = fs::remove_dir_all(&dir);
    out
}

fn storage_file_seeds(out: &Path) {
    let real = real_log();
    let mut seeds = Seeds::new(out, "segment_recovery");
    // Scan: a sealed segment of three batches, then the real active segment.
    let mut input = vec![0b0110_0011, 0];
    input.extend_from_slice(&0u32.to_be_bytes());
    input.extend_from_slice(&[3, 0, 1, 2, 3, 0, 2, 5, 0, 3, 0, 8]);
    chunk(&mut input, &real.log);
    input.extend_from_slice(&0i64.to_be_bytes());
    input.extend_from_slice(&64u16.to_be_bytes());
    seeds.add(&input);
    // Clean: the real segment with its indexes, snapshot, aborted index and checkpoint.
    let mut input = vec![0b1000_0000, 0b111];
    chunk(&mut input, &real.log);
    chunk(&mut input, &real.index);
    chunk(&mut input, &real.timeindex);
    chunk(&mut input, b"0\n1\n");
    chunk(&mut input, &real.snapshot);
    chunk(&mut input, &real.aborted);
    input.extend_from_slice(&1_000i64.to_be_bytes());
    input.extend_from_slice(&64u16.to_be_bytes());
    seeds.add(&input);
    // Scan of a torn tail, with stray files.
    let mut input = vec![0b0000_0001, 0b1000];
    chunk(&mut input, &real.log[..real.log.len() - 7]);
    input.extend_from_slice(&3i64.to_be_bytes());
    input.extend_from_slice(&64u16.to_be_bytes());
    seeds.add(&input);

    let mut seeds = Seeds::new(out, "index");
    let mut input = Vec::new();
    input.extend_from_slice(&(real.log.len() as u32).to_be_bytes());
    input.extend_from_slice(&2u32.to_be_bytes());
    input.extend_from_slice(&1_003i64.to_be_bytes());
    chunk(&mut input, &real.index);
    chunk(&mut input, &real.timeindex);
    input.push(64);
    for i in 0..4u8 {
        input.extend_from_slice(&[80, 1]);
        input.extend_from_slice(&100u16.to_be_bytes());
        input.extend_from_slice(&(6_000 + i64::from(i)).to_be_bytes());
    }
    seeds.add(&input);

    let mut seeds = Seeds::new(out, "internal_logs");
    let mut record = TxnRecord::tombstone("txn-1");
    record.producer_id = 9;
    record.producer_epoch = 1;
    record.timeout_ms = 60_000;
    record.state = TxnState::Ongoing;
    record.partitions = BTreeSet::from([TopicPartition::new("t\\opic\n", 3)]);
    record.groups = BTreeSet::from(["g".to_owned()]);
    record.txn_start_ms = Some(1_000);
    record.last_update_ms = 2_000;
    let txn = record.encode();
    seeds.add(&[&[0u8][..], &txn].concat());
    let records = [
        (
            br#"{"group":"g","topic":"t","partition":0}"#.to_vec(),
            Some(
                br#"{"offset":5,"leader_epoch":null,"metadata":"m","commit_timestamp_ms":9}"#
                    .to_vec(),
            ),
        ),
        (br#"{"group":"g","topic":"t","partition":1}"#.to_vec(), None),
        (b"txn-1".to_vec(), Some(txn.clone())),
    ];
    for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
        let recs: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: 1_000,
                key: Some(Bytes::from(k.clone())),
                value: v.clone().map(Bytes::from),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            recs.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode internal batch");
        seeds.add(&[&[1u8][..], &buf].concat());
    }
    seeds.add(&[&[2u8][..], &real.snapshot].concat());
    seeds.add(&[&[3u8][..], &real.aborted].concat());
    seeds.add(b"\x040\n42\n");
    let topics = vec![TopicRecord {
        name: "t".into(),
        id: Default::default(),
        partitions: 3,
        configs: [("retention.ms".to_owned(), "1".to_owned())].into(),
    }];
    let json = meta::encode_topics(topics).expect("topics");
    seeds.add(&[&[5u8][..], &json].concat());
    seeds.add(br#"{"cluster_id":"abc","next_block_start":1000}"#.as_slice());
    seeds.add(
        &[
            &[6u8][..],
            br#"{"cluster_id":"abc","next_block_start":1000}"#,
        ]
        .concat(),
    );
    let mut offsets = vec![7u8, 0];
    chunk(&mut offsets, &records[0].0);
    offsets.extend_from_slice(records[0].1.as_deref().unwrap_or_default());
    seeds.add(&offsets);

    // client_response: fetch data (plain and compressed), as decode_batches reads it.
    let mut seeds = Seeds::new(out, "client_response");
    let mut plain = vec![0u8];
    plain.extend_from_slice(&0i64.to_be_bytes());
    for b in Batches::new(&real.log, Check::Full).flatten() {
        plain.extend_from_slice(b.bytes);
    }
    seeds.add(&plain);
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let recs: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: -1,
                timestamp: 1_000,
                key: None,
                value: Some(Bytes::from_static(b"value value value")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        if RecordBatchEncoder::encode(
            &mut buf,
            recs.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .is_ok()
        {
            let mut input = vec![0u8];
            input.extend_from_slice(&0i64.to_be_bytes());
            input.extend_from_slice(&buf);
            seeds.add(&input);
        }
    }
    response_seeds(&mut seeds);
}

fn response<R: Encodable>(seeds: &mut Seeds, which: u8, version: i16, body: &R, flexible: bool) {
    let mut buf = BytesMut::new();
    buf.put_i32(0); // correlation id
    if flexible {
        buf.put_u8(0);
    }
    if body.encode(&mut buf, version).is_ok() {
        let mut input = vec![which | (version as u8) << 3];
        input.extend_from_slice(&0i64.to_be_bytes());
        input.extend_from_slice(&buf);
        seeds.add(&input);
    }
}

fn response_seeds(seeds: &mut Seeds) {
    let header_flexible = |key: ApiKey, v: i16| key.response_header_version(v) >= 1;
    for v in [4i16, 12, 16] {
        response(
            seeds,
            1,
            v,
            &FetchResponse::default(),
            header_flexible(ApiKey::Fetch, v),
        );
    }
    for v in [1i16, 9, 12] {
        response(
            seeds,
            2,
            v,
            &MetadataResponse::default(),
            header_flexible(ApiKey::Metadata, v),
        );
    }
    for v in [3i16, 9, 11] {
        response(
            seeds,
            3,
            v,
            &ProduceResponse::default(),
            header_flexible(ApiKey::Produce, v),
        );
    }
    for v in [0i16, 3] {
        response(seeds, 4, v, &ApiVersionsResponse::default(), false);
    }
    for v in [1i16, 6] {
        response(
            seeds,
            5,
            v,
            &ListOffsetsResponse::default(),
            header_flexible(ApiKey::ListOffsets, v),
        );
    }
    for v in [1i16, 8] {
        response(
            seeds,
            6,
            v,
            &OffsetFetchResponse::default(),
            header_flexible(ApiKey::OffsetFetch, v),
        );
    }
    for v in [0i16, 5] {
        response(
            seeds,
            7,
            v,
            &DescribeGroupsResponse::default(),
            header_flexible(ApiKey::DescribeGroups, v),
        );
    }
}

fn consumer_protocol_seeds(out: &Path) {
    let mut seeds = Seeds::new(out, "consumer_protocol");
    let mut sub = BytesMut::new();
    sub.put_i16(0);
    sub.put_i32(2);
    for t in ["a", "topic-b"] {
        sub.put_i16(t.len() as i16);
        sub.put_slice(t.as_bytes());
    }
    sub.put_i32(-1);
    seeds.add(&sub);
    for version in [0i16, 1, 3] {
        let mut tp = consumer_protocol_assignment::TopicPartition::default();
        tp.topic = TopicName(StrBytes::from_static_str("t"));
        tp.partitions = vec![0, 2];
        let mut a = ConsumerProtocolAssignment::default();
        a.assigned_partitions = vec![tp];
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        if a.encode(&mut buf, version).is_ok() {
            seeds.add(&buf);
        }
    }
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    request_seeds(&out);
    record_batch_seeds(&out);
    produce_records_seeds(&out);
    log_append_seeds(&out);
    storage_file_seeds(&out);
    consumer_protocol_seeds(&out);
    for entry in fs::read_dir(&out).expect("list seeds") {
        let entry = entry.expect("entry");
        let n = fs::read_dir(entry.path()).expect("list").count();
        println!("{}: {n} seeds", entry.file_name().to_string_lossy());
    }
}
