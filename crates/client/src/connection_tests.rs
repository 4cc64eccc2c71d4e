//! `Connection` against scripted brokers on loopback: framing, version negotiation,
//! bootstrap lists, timeouts.

use super::*;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::decode_request_header_from_buffer;
use tokio::net::TcpListener;

fn ranges(list: &[(ApiKey, i16, i16)]) -> HashMap<i16, VersionRange> {
    list.iter()
        .map(|&(k, min, max)| (k as i16, VersionRange { min, max }))
        .collect()
}

#[test]
fn picks_the_highest_common_version_within_the_caps() {
    let broker = ranges(&[
        (ApiKey::Fetch, 0, 17),
        (ApiKey::Produce, 0, 11),
        (ApiKey::Metadata, 0, 13),
        (ApiKey::CreateTopics, 0, 5),
        (ApiKey::ListOffsets, 0, 0),
    ]);
    assert_eq!(pick_version(ApiKey::Fetch, &broker).unwrap(), 12);
    assert_eq!(pick_version(ApiKey::Produce, &broker).unwrap(), 9);
    assert_eq!(pick_version(ApiKey::Metadata, &broker).unwrap(), 12);
    assert_eq!(pick_version(ApiKey::CreateTopics, &broker).unwrap(), 5);
    // The broker only speaks ListOffsets v0, which this client does not.
    assert!(matches!(
        pick_version(ApiKey::ListOffsets, &broker),
        Err(ClientError::Unsupported {
            api: ApiKey::ListOffsets
        })
    ));
    // Not advertised at all.
    assert!(matches!(
        pick_version(ApiKey::DescribeCluster, &broker),
        Err(ClientError::Unsupported { .. })
    ));
}

#[test]
fn a_request_frame_decodes_as_a_broker_would() {
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]));
    for version in [1, 9, 12] {
        let frame = encode_request(&req, version, 42).unwrap().freeze();
        let mut body = strip_length(frame);
        let header = decode_request_header_from_buffer(&mut body).unwrap();
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(header.request_api_version, version);
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id.as_deref(), Some("weir"));
        let decoded = MetadataRequest::decode(&mut body, version).unwrap();
        assert_eq!(decoded, req, "v{version}");
        assert!(body.is_empty(), "v{version}: trailing bytes");
    }
}

/// Encodes a response the way a broker does: header (v0 or v1 per the API) and body.
fn response_frame<T: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &T) -> Bytes {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

#[test]
fn a_response_frame_decodes_and_checks_the_correlation_id() {
    let resp =
        MetadataResponse::default().with_controller_id(kafka_protocol::messages::BrokerId(1));
    let frame = response_frame(ApiKey::Metadata, 12, 7, &resp);
    let decoded = decode_response::<MetadataRequest>(frame.clone(), 12, 7).unwrap();
    assert_eq!(decoded.controller_id.0, 1);
    let err = decode_response::<MetadataRequest>(frame, 12, 8).unwrap_err();
    assert!(
        err.to_string()
            .contains("correlation id 7 does not match request 8"),
        "{err}"
    );
}

#[test]
fn api_versions_response_header_is_v0_even_when_flexible() {
    let resp = ApiVersionsResponse::default();
    let frame = response_frame(ApiKey::ApiVersions, 3, 5, &resp);
    // Header v0 is the bare correlation id: no tagged-field byte before the body.
    assert_eq!(&frame[..4], &5i32.to_be_bytes());
    let decoded = decode_response::<ApiVersionsRequest>(frame, 3, 5).unwrap();
    assert_eq!(decoded, resp);
}

#[test]
fn a_truncated_body_is_a_protocol_error() {
    let resp = MetadataResponse::default();
    let frame = response_frame(ApiKey::Metadata, 12, 1, &resp);
    let cut = frame.slice(..frame.len() - 1);
    assert!(matches!(
        decode_response::<MetadataRequest>(cut, 12, 1),
        Err(ClientError::Protocol {
            api: ApiKey::Metadata,
            ..
        })
    ));
}

async fn read_frame(stream: &mut TcpStream) -> Bytes {
    let len = stream.read_i32().await.unwrap();
    let mut buf = BytesMut::zeroed(len as usize);
    stream.read_exact(&mut buf).await.unwrap();
    buf.freeze()
}

async fn write_frame(stream: &mut TcpStream, frame: Bytes) {
    stream.write_i32(frame.len() as i32).await.unwrap();
    stream.write_all(&frame).await.unwrap();
}

/// A broker that only knows ApiVersions v0 answers v3 with UNSUPPORTED_VERSION in the v0
/// layout; the client must retry with v0 and keep the ranges from that answer.
#[tokio::test]
async fn falls_back_to_api_versions_v0() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let keys = vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_max_version(0),
            ApiVersion::default()
                .with_api_key(ApiKey::Metadata as i16)
                .with_max_version(5),
        ];
        let mut seen = Vec::new();
        for code in [codes::UNSUPPORTED_VERSION, 0] {
            let mut req = read_frame(&mut s).await;
            let header = decode_request_header_from_buffer(&mut req).unwrap();
            seen.push(header.request_api_version);
            let resp = ApiVersionsResponse::default()
                .with_error_code(code)
                .with_api_keys(keys.clone());
            write_frame(
                &mut s,
                response_frame(ApiKey::ApiVersions, 0, header.correlation_id, &resp),
            )
            .await;
        }
        seen
    });
    let conn = Connection::connect(&addr).await.unwrap();
    assert_eq!(broker.await.unwrap(), vec![3, 0]);
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 5);
    assert!(matches!(
        conn.version(ApiKey::Fetch),
        Err(ClientError::Unsupported { .. })
    ));
}

/// A bootstrap list skips brokers that are down and connects to the first that answers;
/// with every broker down the error names the last one tried.
#[tokio::test]
async fn a_bootstrap_list_skips_brokers_that_are_down() {
    let dead = |_| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (dead1, dead2) = (dead(1), dead(2));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = read_frame(&mut s).await;
        let header = decode_request_header_from_buffer(&mut req).unwrap();
        let resp = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::Metadata as i16)
            .with_max_version(12)]);
        write_frame(
            &mut s,
            response_frame(ApiKey::ApiVersions, 3, header.correlation_id, &resp),
        )
        .await;
        s
    });
    let security = ClientSecurity::plaintext();
    let list = format!("{dead1}, {live},{dead2}");
    let conn = Connection::connect_bootstrap(&list, Duration::from_secs(5), &security)
        .await
        .unwrap();
    assert_eq!(conn.addr, live);
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 12);
    drop(broker.await.unwrap());

    let list = format!("{dead1},{dead2}");
    let err = Connection::connect_bootstrap(&list, Duration::from_secs(5), &security)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Io { addr, .. } if *addr == dead2),
        "{err}"
    );
    let err = Connection::connect_bootstrap(" , ", Duration::from_secs(5), &security)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::InvalidInput),
        "{err}"
    );
}

/// A request to a broker that never answers times out and leaves the connection unusable.
#[tokio::test]
async fn a_silent_broker_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = read_frame(&mut s).await;
        let header = decode_request_header_from_buffer(&mut req).unwrap();
        let resp = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::Metadata as i16)
            .with_max_version(12)]);
        write_frame(
            &mut s,
            response_frame(ApiKey::ApiVersions, 3, header.correlation_id, &resp),
        )
        .await;
        let _ = read_frame(&mut s).await;
        std::future::pending::<()>().await;
    });
    let mut conn = Connection::connect(&addr).await.unwrap();
    conn.set_request_timeout(Duration::from_millis(200));
    let err = conn.send(MetadataRequest::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                api: ApiKey::Metadata,
                ..
            }
        ),
        "{err}"
    );
    assert!(conn.is_broken());
    broker.abort();
}
