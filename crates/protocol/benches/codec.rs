//! Request decoding and response encoding for the two bulk APIs, in bytes per second: a
//! Produce request carrying 1 MiB of record batches, and a Fetch response carrying 8 MiB,
//! encoded by copying the batches into the frame and by splicing them in ([`Splicer`]).

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_protocol::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData,
};
use weir_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use weir_protocol::kafka_protocol::messages::{
    FetchResponse, ProduceRequest, RequestHeader, TopicName,
};
use weir_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use weir_protocol::{decode_request, encode_response, ApiKey, Splicer};

const MIB: usize = 1 << 20;

fn produce_frame(records: Bytes) -> Bytes {
    let version = 9;
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Produce as i16;
    header.request_api_version = version;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, ApiKey::Produce.request_header_version(version))
        .expect("header");
    req.encode(&mut buf, version).expect("request");
    buf.freeze()
}

fn fetch_response(parts: &[Bytes]) -> FetchResponse {
    let mut topic = FetchableTopicResponse::default();
    topic.topic = TopicName(StrBytes::from_static_str("bench"));
    for (i, records) in parts.iter().enumerate() {
        let mut p = PartitionData::default();
        p.partition_index = i as i32;
        p.records = Some(records.clone());
        topic.partitions.push(p);
    }
    let mut response = FetchResponse::default();
    response.responses.push(topic);
    response
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let mut records = BytesMut::with_capacity(MIB);
    records.put_bytes(0x61, MIB);
    let records = records.freeze();

    let frame = produce_frame(records.clone());
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode Produce request, 1 MiB", |b| {
        b.iter(|| decode_request(frame.clone()).expect("decode"))
    });

    // Eight partitions of 1 MiB, as read from eight logs.
    let parts: Vec<Bytes> = (0..8).map(|_| Bytes::from(records.to_vec())).collect();
    group.throughput(Throughput::Bytes(8 * MIB as u64));
    group.bench_function("encode Fetch response, 8 MiB, copied", |b| {
        b.iter(|| encode_response(ApiKey::Fetch, 12, 1, &fetch_response(&parts)).expect("encode"))
    });
    group.bench_function("encode Fetch response, 8 MiB, spliced", |b| {
        b.iter(|| {
            let mut splicer = Splicer::new();
            let stand_ins: Vec<Bytes> = parts.iter().map(|p| splicer.stand_in(p.clone())).collect();
            splicer
                .encode(ApiKey::Fetch, 12, 1, &fetch_response(&stand_ins))
                .expect("encode")
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
