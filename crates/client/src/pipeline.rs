//! Produce and Fetch with several requests in flight on one connection, for load generators
//! such as `weir bench`.
//!
//! [`Client`](crate::Client) waits for each answer before sending the next request, which is
//! right for a command-line tool but leaves the broker idle for a round trip per request. A
//! [`ProducePipeline`] keeps up to `max_in_flight` Produce requests outstanding (librdkafka
//! defaults to 5 per connection) and takes record batches already encoded, so the caller
//! decides what encoding costs and when. A [`RawFetcher`] sends the next Fetch before the
//! caller decodes the previous answer and hands back the batches as bytes. Both talk to one
//! broker: the caller routes partitions to their leader.

use std::collections::VecDeque;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::client::FetchPosition;
use crate::connection::{Connection, Pending};
use crate::error::ClientError;
use crate::security::ClientSecurity;

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// Produce requests to one topic on one broker connection, answered in order.
#[derive(Debug)]
pub struct ProducePipeline {
    conn: Connection,
    topic: String,
    acks: i16,
    timeout_ms: i32,
    version: i16,
    max_in_flight: usize,
    /// Requests written but not yet answered, oldest first; bounded by `max_in_flight`.
    in_flight: VecDeque<Pending<ProduceRequest>>,
}

impl ProducePipeline {
    /// Opens a connection to `addr`, the leader of the partitions this pipeline will write.
    pub async fn connect(
        addr: &str,
        topic: &str,
        acks: i16,
        max_in_flight: usize,
    ) -> Result<ProducePipeline, ClientError> {
        Self::connect_secured(
            addr,
            &ClientSecurity::plaintext(),
            topic,
            acks,
            max_in_flight,
        )
        .await
    }

    /// [`ProducePipeline::connect`] over a connection secured by `security`.
    pub async fn connect_secured(
        addr: &str,
        security: &ClientSecurity,
        topic: &str,
        acks: i16,
        max_in_flight: usize,
    ) -> Result<ProducePipeline, ClientError> {
        let conn =
            Connection::connect_secured(addr, crate::connection::DEFAULT_REQUEST_TIMEOUT, security)
                .await?;
        let version = conn.version(ApiKey::Produce)?;
        Ok(ProducePipeline {
            conn,
            topic: topic.to_owned(),
            acks,
            timeout_ms: 30_000,
            version,
            max_in_flight: max_in_flight.max(1),
            in_flight: VecDeque::new(),
        })
    }

    /// Sends one Produce request carrying one encoded record batch per listed partition,
    /// first waiting for the oldest answer if `max_in_flight` requests are outstanding.
    pub async fn send(&mut self, batches: &[(i32, Bytes)]) -> Result<(), ClientError> {
        while self.in_flight.len() >= self.max_in_flight {
            self.complete_oldest().await?;
        }
        let req = ProduceRequest::default()
            .with_acks(self.acks)
            .with_timeout_ms(self.timeout_ms)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&self.topic))
                .with_partition_data(
                    batches
                        .iter()
                        .map(|(partition, batch)| {
                            PartitionProduceData::default()
                                .with_index(*partition)
                                .with_records(Some(batch.clone()))
                        })
                        .collect(),
                )]);
        let pending = self.conn.send_pipelined(&req, self.version).await?;
        // A broker does not answer acks=0 at all.
        if self.acks != 0 {
            self.in_flight.push_back(pending);
        }
        Ok(())
    }

    /// Waits for every outstanding answer.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        while !self.in_flight.is_empty() {
            self.complete_oldest().await?;
        }
        Ok(())
    }

    async fn complete_oldest(&mut self) -> Result<(), ClientError> {
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let resp = self.conn.receive(pending).await?;
        for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
            let message = p
                .error_message
                .as_deref()
                .map(|m| format!("{}/{}: {m}", self.topic, p.index));
            ClientError::check(ApiKey::Produce, p.error_code, message.as_deref())?;
        }
        Ok(())
    }
}

/// One partition of a Fetch answer, its record batches left encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPartitionData {
    pub topic: String,
    pub partition: i32,
    pub high_watermark: i64,
    /// Whole record batches, except that the last one may be cut short at the size limit.
    pub records: Bytes,
}

/// Fetch requests to one broker connection, answered in order.
#[derive(Debug)]
pub struct RawFetcher {
    conn: Connection,
    version: i16,
    max_wait_ms: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
    /// Requests written but not yet answered, oldest first.
    in_flight: VecDeque<Pending<FetchRequest>>,
}

impl RawFetcher {
    /// Opens a connection to `addr`, the leader of the partitions this fetcher will read.
    /// `max_bytes` bounds each answer and `partition_max_bytes` each partition in it.
    pub async fn connect(
        addr: &str,
        max_wait_ms: i32,
        max_bytes: i32,
        partition_max_bytes: i32,
    ) -> Result<RawFetcher, ClientError> {
        let plain = ClientSecurity::plaintext();
        Self::connect_secured(addr, &plain, max_wait_ms, max_bytes, partition_max_bytes).await
    }

    /// [`RawFetcher::connect`] over a connection secured by `security`.
    pub async fn connect_secured(
        addr: &str,
        security: &ClientSecurity,
        max_wait_ms: i32,
        max_bytes: i32,
        partition_max_bytes: i32,
    ) -> Result<RawFetcher, ClientError> {
        let conn =
            Connection::connect_secured(addr, crate::connection::DEFAULT_REQUEST_TIMEOUT, security)
                .await?;
        let version = conn.version(ApiKey::Fetch)?;
        Ok(RawFetcher {
            conn,
            version,
            max_wait_ms,
            max_bytes,
            partition_max_bytes,
            in_flight: VecDeque::new(),
        })
    }

    /// Writes a Fetch for `positions` without waiting for its answer.
    pub async fn send(&mut self, positions: &[FetchPosition]) -> Result<(), ClientError> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for pos in positions {
            let partition = FetchPartition::default()
                .with_partition(pos.partition)
                .with_fetch_offset(pos.offset)
                .with_partition_max_bytes(self.partition_max_bytes);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == pos.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(topic_name(&pos.topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let req = FetchRequest::default()
            .with_max_wait_ms(self.max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(self.max_bytes)
            .with_topics(topics);
        let pending = self.conn.send_pipelined(&req, self.version).await?;
        self.in_flight.push_back(pending);
        Ok(())
    }

    /// Reads the answer to the oldest outstanding Fetch; a partition error fails the call.
    pub async fn receive(&mut self) -> Result<Vec<RawPartitionData>, ClientError> {
        let api = ApiKey::Fetch;
        let pending = self.in_flight.pop_front().ok_or(ClientError::Protocol {
            api,
            message: "no fetch in flight".to_owned(),
        })?;
        let resp = self.conn.receive(pending).await?;
        ClientError::check(api, resp.error_code, None)?;
        let mut out = Vec::new();
        for t in resp.responses {
            for p in t.partitions {
                ClientError::check(api, p.error_code, None)?;
                out.push(RawPartitionData {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_index,
                    high_watermark: p.high_watermark,
                    records: p.records.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// Whether a Fetch is waiting for its answer.
    pub fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }
}
