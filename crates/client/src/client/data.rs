//! The data plane: ListOffsets, Produce and Fetch, each sent to the partition's leader
//! (found through cached Metadata, forgotten and asked again when it moved: [`Retry::Leader`]).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest,
};
use kafka_protocol::records::Compression;

use super::retry::{leader_moved, Retry};
use super::{name, unknown_partition, Client};
use crate::error::ClientError;
use crate::records::{decode_batches, encode_batch, ConsumerRecord, ProducerRecord};

/// Which offset ListOffsets should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (-2 on the wire).
    Earliest,
    /// The high watermark: the offset the next record will get (-1 on the wire).
    Latest,
    /// The first offset whose timestamp is at or after this many milliseconds since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// The answer to ListOffsets for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// -1 when a timestamp lookup found no record at or after the timestamp.
    pub offset: i64,
    pub timestamp: i64,
}

/// A partition and the offset to fetch it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What Fetch returned for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedData {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<ConsumerRecord>,
    /// Where the next fetch should start: past everything returned, or the requested offset
    /// when nothing came back.
    pub next_offset: i64,
}

/// One partition's outcome in [`Client::fetch_many`]; a per-partition error (such as
/// OFFSET_OUT_OF_RANGE) does not fail the others.
#[derive(Debug)]
pub struct PartitionFetch {
    pub topic: String,
    pub partition: i32,
    pub result: Result<FetchedData, ClientError>,
}

impl Client {
    /// Finds an offset of one partition (asks its leader).
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        self.retrying(Retry::Leader { topic, partition }, async |c| {
            c.list_offsets_once(topic, partition, spec).await
        })
        .await
    }

    async fn list_offsets_once(
        &mut self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        let api = ApiKey::ListOffsets;
        let leader = self.leader(topic, partition).await?;
        let timeout_ms = self.timeout_ms();
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_timeout_ms(timeout_ms)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(spec.wire())])]);
        let resp = self.broker(leader).await?.send(req).await?;
        let p = resp
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| unknown_partition(api, topic, Some(partition)))?;
        ClientError::check(api, p.error_code, None)?;
        Ok(ListedOffset {
            offset: p.offset,
            timestamp: p.timestamp,
        })
    }

    /// Appends `records` to one partition as a single batch and returns the offset the broker
    /// gave the first record (-1 with `acks = 0`, where the broker does not answer).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[ProducerRecord],
        acks: i16,
        compression: Compression,
    ) -> Result<i64, ClientError> {
        let batch = encode_batch(records, compression)?;
        self.retrying(Retry::Leader { topic, partition }, async |c| {
            c.produce_once(topic, partition, batch.clone(), acks).await
        })
        .await
    }

    async fn produce_once(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i64, ClientError> {
        let api = ApiKey::Produce;
        let leader = self.leader(topic, partition).await?;
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(self.timeout_ms())
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let conn = self.broker(leader).await?;
        let version = conn.version(api)?;
        if acks == 0 {
            conn.send_without_response(req, version).await?;
            return Ok(-1);
        }
        let resp = conn.send_version(req, version).await?;
        let p = resp
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| unknown_partition(api, topic, Some(partition)))?;
        let message = p.error_message.as_deref().map(str::to_owned).or_else(|| {
            let errs: Vec<_> = p
                .record_errors
                .iter()
                .map(|e| {
                    format!(
                        "record {}: {}",
                        e.batch_index,
                        e.batch_index_error_message.as_deref().unwrap_or("invalid")
                    )
                })
                .collect();
            (!errs.is_empty()).then(|| errs.join("; "))
        });
        ClientError::check(api, p.error_code, message.as_deref())?;
        Ok(p.base_offset)
    }

    /// Fetches one partition from `offset`, waiting up to `max_wait_ms` for data.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<FetchedData, ClientError> {
        let position = FetchPosition {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        // fetch_many already forgot a moved leader; the partition's own error is retried, a
        // failed request is not.
        self.retrying_inner(Retry::Leader { topic, partition }, async |c| {
            c.fetch_many(std::slice::from_ref(&position), max_wait_ms, max_bytes)
                .await?
                .into_iter()
                .next()
                .map(|p| p.result)
                .ok_or_else(|| unknown_partition(ApiKey::Fetch, topic, Some(partition)))
        })
        .await?
    }

    /// Fetches several partitions, one Fetch request per leader. `max_bytes` bounds each
    /// partition and each response. A partition whose leader moved is reported as an error
    /// and its cached leader forgotten, so the next call finds the new one.
    pub async fn fetch_many(
        &mut self,
        positions: &[FetchPosition],
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Vec<PartitionFetch>, ClientError> {
        let api = ApiKey::Fetch;
        let mut by_leader: BTreeMap<i32, Vec<&FetchPosition>> = BTreeMap::new();
        for pos in positions {
            let leader = self.leader(&pos.topic, pos.partition).await?;
            by_leader.entry(leader).or_default().push(pos);
        }
        let wait = Duration::from_millis(u64::try_from(max_wait_ms).unwrap_or(0));
        let normal_timeout = self.timeout;
        let timeout = normal_timeout + wait;
        let mut out = Vec::with_capacity(positions.len());
        for (leader, group) in by_leader {
            let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
            for pos in &group {
                topics.entry(&pos.topic).or_default().push(
                    FetchPartition::default()
                        .with_partition(pos.partition)
                        .with_fetch_offset(pos.offset)
                        .with_partition_max_bytes(max_bytes),
                );
            }
            let req = FetchRequest::default()
                .with_max_wait_ms(max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            FetchTopic::default()
                                .with_topic(name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                );
            let conn = self.broker(leader).await?;
            conn.set_request_timeout(timeout);
            let resp = conn.send(req).await;
            conn.set_request_timeout(normal_timeout);
            let resp = resp?;
            ClientError::check(api, resp.error_code, None)?;
            for pos in group {
                let data = resp
                    .responses
                    .iter()
                    .filter(|t| t.topic.0.as_str() == pos.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == pos.partition);
                let result = match data {
                    None => Err(unknown_partition(api, &pos.topic, Some(pos.partition))),
                    Some(p) => ClientError::check(api, p.error_code, None).and_then(|()| {
                        let decoded = decode_batches(
                            p.records.clone().unwrap_or_default(),
                            pos.partition,
                            pos.offset,
                        )?;
                        Ok(FetchedData {
                            high_watermark: p.high_watermark,
                            last_stable_offset: p.last_stable_offset,
                            log_start_offset: p.log_start_offset,
                            records: decoded.records,
                            next_offset: decoded.next_offset.unwrap_or(pos.offset).max(pos.offset),
                        })
                    }),
                };
                if result.as_ref().is_err_and(leader_moved) {
                    self.forget_leader(&pos.topic, pos.partition);
                }
                out.push(PartitionFetch {
                    topic: pos.topic.clone(),
                    partition: pos.partition,
                    result,
                });
            }
        }
        Ok(out)
    }
}
