//! Valid requests of every served API and version, shared by the fuzz seed generator
//! (`fuzz/seedgen`) and the decoder robustness tests, so both start from what real clients
//! send, encoded by the codec itself. Not a stable API.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    create_topics_request, fetch_request, metadata_request, offset_for_leader_epoch_request,
    produce_request, ApiKey, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::versions::SUPPORTED;
use crate::Request;

/// One valid request.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// The API's index in [`SUPPORTED`].
    pub api_index: usize,
    pub key: ApiKey,
    pub version: i16,
    pub body: Request,
}

impl SampleRequest {
    /// The body's bytes at the sample's version.
    pub fn encode_body(&self) -> Result<Vec<u8>, String> {
        let mut buf = BytesMut::new();
        self.body.encode_body(&mut buf, self.version)?;
        Ok(buf.to_vec())
    }

    /// The whole frame (header and body, without the length prefix).
    pub fn encode_frame(&self, client_id: &str) -> Result<Vec<u8>, String> {
        let mut header = RequestHeader::default();
        header.request_api_key = self.key as i16;
        header.request_api_version = self.version;
        header.correlation_id = 1;
        header.client_id = Some(StrBytes::from_string(client_id.to_owned()));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, self.key.request_header_version(self.version))
            .map_err(|e| format!("{e:#}"))?;
        self.body.encode_body(&mut buf, self.version)?;
        Ok(buf.to_vec())
    }
}

/// A request of every served API at every served version, with a topic (and a partition)
/// in the arrays where the API has them, so decoding reaches past empty arrays. `records`
/// is Produce's record set.
pub fn sample_requests(records: Bytes) -> Vec<SampleRequest> {
    let topic = TopicName(StrBytes::from_static_str("t"));
    let mut out = Vec::new();
    for (api_index, r) in SUPPORTED.iter().enumerate() {
        let Some(mut body) = Request::empty(r.key) else {
            continue;
        };
        match &mut body {
            Request::Produce(req) => {
                let mut p = produce_request::PartitionProduceData::default();
                p.records = Some(records.clone());
                let mut t = produce_request::TopicProduceData::default();
                t.name = topic.clone();
                t.partition_data = vec![p];
                req.topic_data = vec![t];
            }
            Request::Fetch(req) => {
                let mut t = fetch_request::FetchTopic::default();
                t.topic = topic.clone();
                t.partitions = vec![fetch_request::FetchPartition::default()];
                req.topics = vec![t];
            }
            Request::Metadata(req) => {
                let mut t = metadata_request::MetadataRequestTopic::default();
                t.name = Some(topic.clone());
                req.topics = Some(vec![t]);
            }
            Request::OffsetForLeaderEpoch(req) => {
                let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
                t.topic = topic.clone();
                t.partitions = vec![Default::default()];
                req.topics = vec![t];
            }
            Request::CreateTopics(req) => {
                let mut t = create_topics_request::CreatableTopic::default();
                t.name = topic.clone();
                req.topics = vec![t];
            }
            _ => {}
        }
        for version in r.min..=r.max {
            let sample = SampleRequest {
                api_index,
                key: r.key,
                version,
                body: body.clone(),
            };
            // A field the version cannot carry makes the codec refuse: skip that version.
            if sample.encode_body().is_ok() {
                out.push(sample);
            }
        }
    }
    out
}
