//! `Client` against a scripted single-node broker: metadata routing, produce and fetch of a
//! compressed batch, and a broker error code surfacing by name.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_client::{Client, ClientError, Compression, ProducerRecord};

const BASE_OFFSET: i64 = 40;

async fn serve(mut s: TcpStream, port: u16) {
    let mut log: Option<Bytes> = None;
    loop {
        let Ok(len) = s.read_i32().await else { return };
        let mut frame = BytesMut::zeroed(len as usize);
        s.read_exact(&mut frame).await.unwrap();
        let mut frame = frame.freeze();
        let header = decode_request_header_from_buffer(&mut frame).unwrap();
        let version = header.request_api_version;
        let api = ApiKey::try_from(header.request_api_key).unwrap();
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        match api {
            ApiKey::ApiVersions => ApiVersionsResponse::default()
                .with_api_keys(
                    [
                        ApiKey::ApiVersions,
                        ApiKey::Metadata,
                        ApiKey::Produce,
                        ApiKey::Fetch,
                        ApiKey::CreateTopics,
                    ]
                    .iter()
                    .map(|k| {
                        ApiVersion::default()
                            .with_api_key(*k as i16)
                            .with_min_version(0)
                            .with_max_version(k.valid_versions().max)
                    })
                    .collect(),
                )
                .encode(&mut out, version)
                .unwrap(),
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut frame, version).unwrap();
                assert!(!req.allow_auto_topic_creation);
                let wanted = req.topics.unwrap_or_default();
                MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(BrokerId(7))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(port.into())])
                    .with_topics(
                        wanted
                            .iter()
                            .map(|t| {
                                let name = t.name.clone().unwrap();
                                if name.0.as_str() == "orders" {
                                    MetadataResponseTopic::default()
                                        .with_name(Some(name))
                                        .with_partitions(vec![MetadataResponsePartition::default()
                                            .with_partition_index(0)
                                            .with_leader_id(BrokerId(7))])
                                } else {
                                    MetadataResponseTopic::default()
                                        .with_name(Some(name))
                                        .with_error_code(3)
                                }
                            })
                            .collect(),
                    )
                    .encode(&mut out, version)
                    .unwrap()
            }
            ApiKey::CreateTopics => {
                let req = CreateTopicsRequest::decode(&mut frame, version).unwrap();
                CreateTopicsResponse::default()
                    .with_topics(vec![CreatableTopicResult::default()
                        .with_name(req.topics[0].name.clone())
                        .with_error_code(36)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Topic 'orders' already exists.",
                        )))])
                    .encode(&mut out, version)
                    .unwrap()
            }
            ApiKey::Produce => {
                assert_eq!(version, 9, "Produce is capped at v9");
                let req = ProduceRequest::decode(&mut frame, version).unwrap();
                let batch = req.topic_data[0].partition_data[0].records.clone().unwrap();
                // Assign offsets as a broker does: rewrite the base offset.
                let mut stored = BytesMut::from(&batch[..]);
                stored[..8].copy_from_slice(&BASE_OFFSET.to_be_bytes());
                log = Some(stored.freeze());
                ProduceResponse::default()
                    .with_responses(vec![TopicProduceResponse::default()
                        .with_name(req.topic_data[0].name.clone())
                        .with_partition_responses(vec![PartitionProduceResponse::default()
                            .with_index(0)
                            .with_base_offset(BASE_OFFSET)])])
                    .encode(&mut out, version)
                    .unwrap()
            }
            ApiKey::Fetch => {
                assert_eq!(version, 12, "Fetch is capped at v12");
                let req = FetchRequest::decode(&mut frame, version).unwrap();
                let topic = &req.topics[0];
                FetchResponse::default()
                    .with_responses(vec![FetchableTopicResponse::default()
                        .with_topic(topic.topic.clone())
                        .with_partitions(vec![PartitionData::default()
                            .with_partition_index(0)
                            .with_high_watermark(BASE_OFFSET + 3)
                            .with_log_start_offset(0)
                            .with_records(log.clone())])])
                    .encode(&mut out, version)
                    .unwrap()
            }
            other => panic!("unexpected {other:?}"),
        }
        s.write_i32(out.len() as i32).await.unwrap();
        s.write_all(&out).await.unwrap();
    }
}

async fn start() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(s, port));
        }
    });
    format!("127.0.0.1:{port}")
}

#[tokio::test]
async fn produce_then_fetch_through_the_leader() {
    let addr = start().await;
    let mut client = Client::connect(&addr).await.unwrap();
    let records: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|v| ProducerRecord {
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: vec![],
            timestamp: -1,
        })
        .collect();
    let base = client
        .produce("orders", 0, &records, -1, Compression::Zstd)
        .await
        .unwrap();
    assert_eq!(base, BASE_OFFSET);

    // Fetching from the middle of the batch skips the records before the requested offset.
    let fetched = client
        .fetch("orders", 0, BASE_OFFSET + 1, 0, 1 << 20)
        .await
        .unwrap();
    let values: Vec<_> = fetched
        .records
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")]
    );
    assert_eq!(fetched.next_offset, BASE_OFFSET + 3);
    assert_eq!(fetched.high_watermark, BASE_OFFSET + 3);
}

#[tokio::test]
async fn broker_errors_are_named() {
    let addr = start().await;
    let mut client = Client::connect(&addr).await.unwrap();
    let err = client
        .create_topic("orders", 1, 1, vec![])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "TOPIC_ALREADY_EXISTS (36): Topic 'orders' already exists."
    );
    let err = client.partition_count("missing").await.unwrap_err();
    assert!(matches!(err, ClientError::Kafka { code: 3, .. }), "{err}");
    // The fake broker does not advertise DescribeConfigs.
    let err = client.describe_configs("orders").await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Unsupported {
                api: ApiKey::DescribeConfigs
            }
        ),
        "{err}"
    );
}
