//! Writes valid seed inputs for every fuzz target into `<out>/<target>/`, in each target's
//! input layout (see the doc comment at the top of each file in `fuzz/fuzz_targets/`).
//!
//! Every seed comes from Weir's own encoders (reached through each crate's `fuzzing` module,
//! or by letting the real code write its files in a scratch directory), never from bytes
//! written out by hand here, so the seeds follow the formats when they change.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use weir_broker::fuzzing::{
    decode_internal_log, decode_offsets_log_record, encode_internal_log, offsets_log_record,
    txn_offsets_log_record,
};
use weir_broker::meta::{self, MetaStore, TopicRecord};
use weir_client::records::encode_batch;
use weir_client::ProducerRecord;
use weir_coordinator::txn::{TxnRecord, TxnState};
use weir_coordinator::{CommittedOffset, TopicPartition};
use weir_protocol::fuzzing::sample_requests;
use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use weir_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_storage::batch::{self, Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{
    Log, LogConfig, Marker, LOG_START_CHECKPOINT, PRODUCER_SNAPSHOT_SUFFIX, TXN_INDEX_SUFFIX,
};

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

fn request_seeds(out: &Path) {
    let mut frames = Seeds::new(out, "request_frame");
    let mut bodies = Seeds::new(out, "request_body");
    for sample in sample_requests(Bytes::from(sample_batches().remove(0))) {
        let (Ok(body), Ok(frame)) = (sample.encode_body(), sample.encode_frame("seed")) else {
            continue;
        };
        let min = weir_protocol::versions::SUPPORTED[sample.api_index].min;
        // request_body: API index, version offset, body.
        let mut b = vec![sample.api_index as u8, (sample.version - min) as u8];
        b.extend_from_slice(&body);
        bodies.add(&b);
        // request_frame: the whole frame.
        weir_protocol::decode_request(Bytes::from(frame.clone())).expect("a sample decodes");
        frames.add(&frame);
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
    checkpoint: Vec<u8>,
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
    // DeleteRecords within the active segment deletes nothing but writes the checkpoint.
    log.delete_records_before(1).expect("delete records");
    log.close().expect("close");
    let name = |suffix: &str| dir.join(format!("{:020}{suffix}", 0));
    let read = |p: PathBuf| fs::read(p).unwrap_or_default();
    let out = RealLog {
        log: read(name(".log")),
        index: read(name(".index")),
        timeindex: read(name(".timeindex")),
        snapshot: read(dir.join(format!(
            "{:020}{PRODUCER_SNAPSHOT_SUFFIX}",
            log.log_end_offset()
        ))),
        aborted: read(name(TXN_INDEX_SUFFIX)),
        checkpoint: read(dir.join(LOG_START_CHECKPOINT)),
    };
    assert!(
        !out.checkpoint.is_empty(),
        "no log start checkpoint written"
    );
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
    chunk(&mut input, &real.checkpoint);
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
    let committed = CommittedOffset {
        offset: 5,
        leader_epoch: None,
        metadata: Some("m".to_owned()),
        commit_timestamp_ms: 9,
    };
    let t0 = TopicPartition::new("t", 0);
    let pending = [(t0.clone(), committed.clone())];
    let records = vec![
        offsets_log_record("g", &t0, Some(&committed)),
        offsets_log_record("g", &TopicPartition::new("t", 1), None),
        txn_offsets_log_record("g", 9, 1, Some(&pending)),
        txn_offsets_log_record("g", 9, -1, None),
        (
            Bytes::copy_from_slice(record.key().as_bytes()),
            Some(Bytes::from(txn.clone())),
        ),
    ];
    // The broker writes them uncompressed; the other codecs reach the decompression paths.
    for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
        let batch = encode_internal_log(records.clone(), 1_000, compression)
            .expect("encode internal batch");
        let decoded = decode_internal_log(batch.clone()).expect("an internal batch decodes");
        assert_eq!(decoded.len(), records.len());
        for r in &decoded[..4] {
            decode_offsets_log_record(r).expect("an offsets log record decodes");
        }
        seeds.add(&[&[1u8][..], &batch].concat());
    }
    seeds.add(&[&[2u8][..], &real.snapshot].concat());
    seeds.add(&[&[3u8][..], &real.aborted].concat());
    seeds.add(&[&[4u8][..], &real.checkpoint].concat());
    let meta = real_meta();
    seeds.add(&[&[5u8][..], &meta.topics].concat());
    seeds.add(&[&[6u8][..], &meta.cluster].concat());
    seeds.add(&[&[6u8][..], &meta.producer_ids].concat());
    for (key, value) in &records[..3] {
        let mut input = vec![7u8, u8::from(value.is_none()) << 1];
        chunk(&mut input, key);
        input.extend_from_slice(value.as_deref().unwrap_or_default());
        seeds.add(&input);
    }

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
        let records: Vec<ProducerRecord> = (0..3)
            .map(|i| ProducerRecord {
                key: (i == 1).then(|| Bytes::from_static(b"key")),
                value: Some(Bytes::from_static(b"value value value")),
                headers: vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
                timestamp: 1_000 + i,
            })
            .collect();
        let batch = encode_batch(&records, compression).expect("encode batch");
        let mut input = vec![0u8];
        input.extend_from_slice(&0i64.to_be_bytes());
        input.extend_from_slice(&batch);
        seeds.add(&input);
    }
    response_seeds(&mut seeds);
}

/// A response frame as the broker encodes it, without its length prefix.
fn response<R: Encodable>(seeds: &mut Seeds, which: u8, key: ApiKey, version: i16, body: &R) {
    let frame = weir_protocol::encode_response(key, version, 0, body).expect("encode response");
    let mut input = vec![which | (version as u8) << 3];
    input.extend_from_slice(&0i64.to_be_bytes());
    input.extend_from_slice(&frame[4..]);
    seeds.add(&input);
}

fn response_seeds(seeds: &mut Seeds) {
    for v in [4i16, 12, 16] {
        response(seeds, 1, ApiKey::Fetch, v, &FetchResponse::default());
    }
    for v in [1i16, 9, 12] {
        response(seeds, 2, ApiKey::Metadata, v, &MetadataResponse::default());
    }
    for v in [3i16, 9, 11] {
        response(seeds, 3, ApiKey::Produce, v, &ProduceResponse::default());
    }
    for v in [0i16, 3] {
        response(
            seeds,
            4,
            ApiKey::ApiVersions,
            v,
            &ApiVersionsResponse::default(),
        );
    }
    for v in [1i16, 6] {
        response(
            seeds,
            5,
            ApiKey::ListOffsets,
            v,
            &ListOffsetsResponse::default(),
        );
    }
    for v in [1i16, 8] {
        response(
            seeds,
            6,
            ApiKey::OffsetFetch,
            v,
            &OffsetFetchResponse::default(),
        );
    }
    for v in [0i16, 5] {
        response(
            seeds,
            7,
            ApiKey::DescribeGroups,
            v,
            &DescribeGroupsResponse::default(),
        );
    }
}

/// `meta/*.json` as the broker writes them, from a scratch data directory.
struct RealMeta {
    topics: Vec<u8>,
    cluster: Vec<u8>,
    producer_ids: Vec<u8>,
}

fn real_meta() -> RealMeta {
    let dir = std::env::temp_dir().join(format!("weir-seedgen-meta-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let store = MetaStore::open(&dir).expect("open meta");
    store.cluster_id().expect("cluster id");
    store.reserve_producer_ids(1_000).expect("producer ids");
    store
        .save_topics(vec![TopicRecord {
            name: "t".into(),
            id: Default::default(),
            partitions: 3,
            configs: [("retention.ms".to_owned(), "1".to_owned())].into(),
        }])
        .expect("topics");
    let read = |name: &str| fs::read(dir.join("meta").join(name)).expect("meta file");
    let out = RealMeta {
        topics: read("topics.json"),
        cluster: read("cluster.json"),
        producer_ids: read("producer-ids.json"),
    };
    meta::decode_topics(&out.topics).expect("topics.json decodes");
    meta::decode_cluster_id(&out.cluster).expect("cluster.json decodes");
    assert_eq!(
        meta::decode_producer_ids(&out.producer_ids).ok(),
        Some(1_000)
    );
    let _ = fs::remove_dir_all(&dir);
    out
}

fn consumer_protocol_seeds(out: &Path) {
    let mut seeds = Seeds::new(out, "consumer_protocol");
    // As a client's JoinGroup metadata and SyncGroup assignment: a version, then the body.
    for version in [0i16, 1, 3] {
        let mut sub = ConsumerProtocolSubscription::default();
        sub.topics = vec![
            StrBytes::from_static_str("a"),
            StrBytes::from_static_str("topic-b"),
        ];
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        sub.encode(&mut buf, version).expect("encode subscription");
        assert_eq!(
            weir_coordinator::fuzzing::decode_subscription_topics(&buf),
            Some(BTreeSet::from(["a".to_owned(), "topic-b".to_owned()]))
        );
        seeds.add(&buf);
    }
    for version in [0i16, 1, 3] {
        let mut tp = consumer_protocol_assignment::TopicPartition::default();
        tp.topic = TopicName(StrBytes::from_static_str("t"));
        tp.partitions = vec![0, 2];
        let mut a = ConsumerProtocolAssignment::default();
        a.assigned_partitions = vec![tp];
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version).expect("encode assignment");
        seeds.add(&buf);
    }
}

/// `internal_listener`: the selector byte, then (metadata log) the offset to read from.
fn internal_listener_seeds(out: &Path) {
    let mut seeds = Seeds::new(out, "internal_listener");
    for (decoder, bytes) in weir_controller::fuzzing::samples() {
        let mut input = vec![decoder];
        if decoder == 1 {
            input.extend_from_slice(&0i64.to_be_bytes());
        }
        input.extend_from_slice(&bytes);
        seeds.add(&input);
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
    internal_listener_seeds(&out);
    for entry in fs::read_dir(&out).expect("list seeds") {
        let entry = entry.expect("entry");
        let n = fs::read_dir(entry.path()).expect("list").count();
        println!("{}: {n} seeds", entry.file_name().to_string_lossy());
    }
}
