//! Request decoding: header first, checked against the version table, then the body.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{self, ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::versions;

macro_rules! requests {
    ($($variant:ident($ty:ident)),* $(,)?) => {
        /// A decoded request body of an API Weir serves.
        #[derive(Debug, Clone)]
        pub enum Request {
            $($variant(messages::$ty),)*
        }

        fn decode_body(key: ApiKey, buf: &mut Bytes, version: i16) -> anyhow_like::Result<Request> {
            match key {
                $(ApiKey::$variant => Ok(Request::$variant(messages::$ty::decode(buf, version)?)),)*
                _ => Err(anyhow_like::Error::NotServed),
            }
        }

        impl Request {
            /// An empty (default) body of every served API; None for an API not served.
            pub(crate) fn empty(key: ApiKey) -> Option<Request> {
                match key {
                    $(ApiKey::$variant => Some(Request::$variant(Default::default())),)*
                    _ => None,
                }
            }

            /// Encodes the body at `version`: the inverse of decoding, for round-trip tests
            /// and the fuzz targets. The error is the codec's message.
            pub fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<(), String> {
                match self {
                    $(Request::$variant(body) => body.encode(buf, version),)*
                }
                .map_err(|e| format!("{e:#}"))
            }
        }
    };
}

requests! {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    SyncGroup(SyncGroupRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    SaslHandshake(SaslHandshakeRequest),
    SaslAuthenticate(SaslAuthenticateRequest),
    DescribeUserScramCredentials(DescribeUserScramCredentialsRequest),
    AlterUserScramCredentials(AlterUserScramCredentialsRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    DeleteRecords(DeleteRecordsRequest),
    InitProducerId(InitProducerIdRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    EndTxn(EndTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    DescribeProducers(DescribeProducersRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    CreateAcls(CreateAclsRequest),
    DescribeAcls(DescribeAclsRequest),
    DeleteAcls(DeleteAclsRequest),
    ElectLeaders(ElectLeadersRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    DescribeTopicPartitions(DescribeTopicPartitionsRequest),
    UnregisterBroker(UnregisterBrokerRequest),
}

/// The codec's errors are `anyhow` values; this keeps them out of Weir's public types.
mod anyhow_like {
    pub enum Error {
        NotServed,
        Codec(String),
    }
    impl<E: std::fmt::Display> From<E> for Error {
        fn from(e: E) -> Self {
            Error::Codec(format!("{e:#}"))
        }
    }
    pub type Result<T> = std::result::Result<T, Error>;
}

/// A decoded request: its header and body.
#[derive(Debug, Clone)]
pub struct RequestFrame {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: Request,
    /// Bytes left after the body; ignored, as Kafka does, but worth a debug line.
    pub trailing: usize,
}

/// Why a request frame could not be decoded. All are the peer's fault.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is too short for a request header")]
    Truncated(usize),
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    /// Weir does not serve this API or version. For ApiVersions the broker still answers (v0 with
    /// UNSUPPORTED_VERSION and the version list), as Kafka does.
    #[error("{api_key:?} v{version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    #[error(
        "malformed {api_key:?} v{version} request (correlation id {correlation_id}): {message}"
    )]
    Malformed {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        message: String,
    },
}

impl DecodeError {
    /// The correlation id, where the header got far enough to have one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            DecodeError::Truncated(_) => None,
            DecodeError::UnknownApiKey { correlation_id, .. }
            | DecodeError::UnsupportedVersion { correlation_id, .. }
            | DecodeError::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

/// Decodes one request frame (the bytes after the length prefix).
pub fn decode_request(mut frame: Bytes) -> Result<RequestFrame, DecodeError> {
    let len = frame.len();
    let fixed = frame.get(..8).ok_or(DecodeError::Truncated(len))?;
    let mut fixed = fixed;
    let raw_key = fixed.get_i16();
    let version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let api_key = ApiKey::try_from(raw_key).map_err(|()| DecodeError::UnknownApiKey {
        api_key: raw_key,
        correlation_id,
    })?;
    let range = versions::supported(api_key)
        .filter(|r| (r.min..=r.max).contains(&version))
        .ok_or(DecodeError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        })?;
    debug_assert_eq!(range.key, api_key);
    let malformed = |message: String| DecodeError::Malformed {
        api_key,
        version,
        correlation_id,
        message,
    };
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| malformed(format!("header: {e:#}")))?;
    let body = match decode_body(api_key, &mut frame, version) {
        Ok(body) => body,
        Err(anyhow_like::Error::NotServed) => {
            return Err(DecodeError::UnsupportedVersion {
                api_key,
                version,
                correlation_id,
            })
        }
        Err(anyhow_like::Error::Codec(m)) => return Err(malformed(m)),
    };
    // Kafka ignores bytes after the body, and librdkafka 2.16 sends three after a Metadata
    // v12 request for all topics: refusing them would cut such clients off.
    Ok(RequestFrame {
        header,
        api_key,
        body,
        trailing: frame.remaining(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encode<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = 7;
        header.client_id = Some(StrBytes::from_static_str("test"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        buf.freeze()
    }

    #[test]
    fn decodes_api_versions_v3() {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("x");
        req.client_software_version = StrBytes::from_static_str("1");
        let frame = decode_request(encode(ApiKey::ApiVersions, 3, &req)).expect("decode");
        assert_eq!(frame.header.correlation_id, 7);
        assert!(
            matches!(frame.body, Request::ApiVersions(r) if r.client_software_name.as_str() == "x")
        );
    }

    #[test]
    fn rejects_unknown_keys_versions_and_garbage() {
        let mut b = BytesMut::new();
        b.put_i16(999);
        b.put_i16(0);
        b.put_i32(5);
        let e = decode_request(b.freeze()).expect_err("unknown key");
        assert!(matches!(
            e,
            DecodeError::UnknownApiKey {
                api_key: 999,
                correlation_id: 5
            }
        ));

        let mut b = BytesMut::new();
        b.put_i16(3);
        b.put_i16(99);
        b.put_i32(6);
        let e = decode_request(b.freeze()).expect_err("bad version");
        assert!(matches!(
            e,
            DecodeError::UnsupportedVersion { version: 99, .. }
        ));

        let e = decode_request(Bytes::from_static(&[0, 3])).expect_err("short");
        assert!(matches!(e, DecodeError::Truncated(2)));

        // A Metadata v1 request whose topic array claims 2^31-1 entries must fail, not allocate.
        let mut b = BytesMut::new();
        b.put_i16(3);
        b.put_i16(1);
        b.put_i32(9);
        b.put_i16(-1);
        b.put_i32(i32::MAX);
        let e = decode_request(b.freeze()).expect_err("hostile array length");
        assert!(
            matches!(
                e,
                DecodeError::Malformed {
                    correlation_id: 9,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn trailing_bytes_are_ignored_as_kafka_does() {
        // librdkafka 2.16's Metadata v12 "all topics" request ends with three extra bytes.
        let mut b = BytesMut::from(&encode(ApiKey::Metadata, 12, &MetadataRequest::default())[..]);
        b.extend_from_slice(&[1, 0, 0]);
        let frame = decode_request(b.freeze()).expect("decode");
        assert!(matches!(frame.body, Request::Metadata(_)));
        assert_eq!(frame.trailing, 3);
    }
}
