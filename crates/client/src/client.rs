//! [`Client`]: a cluster seen through one bootstrap broker, with requests for a partition
//! routed to that partition's leader.

mod acls;
mod configs;
mod groups;
mod partitions;
mod retry;
mod txns;
mod users;

pub use acls::{AclEntry, AclQuery};
pub use groups::{
    decode_consumer_assignment, CommittedOffset, GroupDescription, GroupListing, GroupMember,
    PartitionOffset,
};
pub use partitions::{OngoingReassignment, PartitionOutcome, ELECTION_PREFERRED, ELECTION_UNCLEAN};
pub use txns::{ProducerDescription, TxnDescription, TxnListing};
pub use users::{ScramUpsertion, UserCredentials};

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeLogDirsRequest, FetchRequest, ListOffsetsRequest,
    MetadataRequest, MetadataResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use crate::connection::{Connection, DEFAULT_REQUEST_TIMEOUT};
use crate::error::{codes, error_name, ClientError};
use crate::records::{decode_batches, encode_batch, ConsumerRecord, ProducerRecord};
use crate::security::ClientSecurity;
use retry::{leader_moved, Retry};

/// `resource_type` of a topic in DescribeConfigs and IncrementalAlterConfigs.
pub const RESOURCE_TOPIC: i8 = 2;
/// `resource_type` of a broker ("" for the cluster-wide default).
pub const RESOURCE_BROKER: i8 = 4;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A broker as the cluster metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// "host:port", for connecting.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    pub error_code: i16,
    /// -1 while there is no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// One topic in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// The topic id as Kafka prints it, or `None` when the broker sent the nil id.
    pub topic_id: Option<String>,
    pub error_code: i16,
    pub is_internal: bool,
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    /// `Err` when the broker reported an error for this topic (e.g. it does not exist).
    pub fn check(&self) -> Result<(), ClientError> {
        ClientError::check(ApiKey::Metadata, self.error_code, None)
    }
}

/// Brokers, controller and topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicMetadata>,
}

/// Cluster-wide facts from DescribeCluster (or Metadata, for brokers without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: Option<String>,
    /// -1 when unknown.
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
}

/// Where a configuration value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Unknown,
    DynamicTopic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
    DynamicBrokerLogger,
    ClientMetrics,
    Group,
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::Group,
            _ => ConfigSource::Unknown,
        }
    }

    /// Kafka's name for the source, as `kafka-configs.sh` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::Unknown => "UNKNOWN",
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetrics => "CLIENT_METRICS_CONFIG",
            ConfigSource::Group => "GROUP_CONFIG",
        }
    }
}

/// One configuration entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive values and for values without a setting.
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
}

impl ConfigEntry {
    /// Whether the value is the built-in default rather than set anywhere.
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

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

/// A Kafka client bootstrapped from one broker address or a list of them.
///
/// Admin requests go to the bootstrap broker (in KRaft any broker forwards them to the
/// controller); Produce, Fetch and ListOffsets go to the partition leader, found through
/// cached Metadata that is refreshed when a leader is unknown or has moved.
#[derive(Debug)]
pub struct Client {
    bootstrap: String,
    timeout: Duration,
    /// TLS and SASL of every connection this client opens.
    security: ClientSecurity,
    /// The connection for admin requests and metadata.
    admin: Connection,
    brokers: HashMap<i32, BrokerInfo>,
    /// Connections to partition leaders, by broker id.
    connections: HashMap<i32, Connection>,
    /// Cached leader of each partition.
    leaders: HashMap<(String, i32), i32>,
    /// Cached partition count of each topic.
    partition_counts: HashMap<String, i32>,
}

impl Client {
    /// Connects to `bootstrap` ("host:port", or a comma-separated list of them tried in
    /// order) and reads the broker list.
    pub async fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        Self::connect_with_timeout(bootstrap, DEFAULT_REQUEST_TIMEOUT).await
    }

    /// Like [`Client::connect`], giving up on any single request after `timeout`.
    pub async fn connect_with_timeout(
        bootstrap: &str,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        Self::connect_secured(bootstrap, timeout, ClientSecurity::plaintext()).await
    }

    /// Like [`Client::connect_with_timeout`], every connection secured by `security` (TLS,
    /// SASL or both): the bootstrap one and those to partition leaders and coordinators.
    pub async fn connect_secured(
        bootstrap: &str,
        timeout: Duration,
        security: ClientSecurity,
    ) -> Result<Client, ClientError> {
        let admin = Connection::connect_bootstrap(bootstrap, timeout, &security).await?;
        let mut client = Client {
            bootstrap: bootstrap.to_owned(),
            timeout,
            security,
            admin,
            brokers: HashMap::new(),
            connections: HashMap::new(),
            leaders: HashMap::new(),
            partition_counts: HashMap::new(),
        };
        client.metadata(Some(Vec::new())).await?;
        Ok(client)
    }

    /// How this client's connections are secured.
    pub fn security(&self) -> &ClientSecurity {
        &self.security
    }

    /// The bootstrap connection, reopened if an earlier request broke it.
    pub async fn admin(&mut self) -> Result<&mut Connection, ClientError> {
        if self.admin.is_broken() {
            self.admin =
                Connection::connect_bootstrap(&self.bootstrap, self.timeout, &self.security)
                    .await?;
        }
        Ok(&mut self.admin)
    }

    /// Metadata for `topics`, or for every topic when `None`. Also refreshes the broker list
    /// and the leader cache.
    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<ClusterMetadata, ClientError> {
        let conn = self.admin().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut req = MetadataRequest::default().with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect()
        }));
        if version >= 4 {
            req.allow_auto_topic_creation = false;
        }
        let resp = conn.send_version(req, version).await?;
        let meta = cluster_metadata(resp);
        self.learn(&meta);
        Ok(meta)
    }

    fn learn(&mut self, meta: &ClusterMetadata) {
        for b in &meta.brokers {
            if self
                .brokers
                .get(&b.id)
                .is_some_and(|old| old.addr() != b.addr())
            {
                self.connections.remove(&b.id);
            }
            self.brokers.insert(b.id, b.clone());
        }
        for t in &meta.topics {
            if t.error_code != codes::NONE {
                self.partition_counts.remove(&t.name);
                continue;
            }
            self.partition_counts
                .insert(t.name.clone(), t.partitions.len() as i32);
            for p in &t.partitions {
                self.leaders.insert((t.name.clone(), p.partition), p.leader);
            }
        }
    }

    /// The metadata of one topic; `Err` if the broker reports an error for it.
    pub async fn topic(&mut self, topic: &str) -> Result<TopicMetadata, ClientError> {
        let meta = self.metadata(Some(vec![topic.to_owned()])).await?;
        let t = meta
            .topics
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(|| unknown_partition(ApiKey::Metadata, topic, None))?;
        t.check()?;
        Ok(t)
    }

    /// The number of partitions of `topic` (cached after the first lookup).
    pub async fn partition_count(&mut self, topic: &str) -> Result<i32, ClientError> {
        if let Some(&n) = self.partition_counts.get(topic) {
            return Ok(n);
        }
        Ok(self.topic(topic).await?.partitions.len() as i32)
    }

    async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        let key = (topic.to_owned(), partition);
        if let Some(&id) = self.leaders.get(&key).filter(|&&id| id >= 0) {
            return Ok(id);
        }
        let t = self.topic(topic).await?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| unknown_partition(ApiKey::Metadata, topic, Some(partition)))?;
        if p.leader < 0 {
            return Err(ClientError::Kafka {
                api: ApiKey::Metadata,
                code: codes::LEADER_NOT_AVAILABLE,
                name: error_name(codes::LEADER_NOT_AVAILABLE),
                message: Some(format!("{topic}/{partition} has no leader")),
            });
        }
        Ok(p.leader)
    }

    fn forget_leader(&mut self, topic: &str, partition: i32) {
        self.leaders.remove(&(topic.to_owned(), partition));
    }

    /// The connection to broker `id`, opened on first use.
    async fn broker(&mut self, id: i32) -> Result<&mut Connection, ClientError> {
        if self.connections.get(&id).is_none_or(Connection::is_broken) {
            let info = self.brokers.get(&id).ok_or_else(|| ClientError::Kafka {
                api: ApiKey::Metadata,
                code: codes::BROKER_NOT_AVAILABLE,
                name: error_name(codes::BROKER_NOT_AVAILABLE),
                message: Some(format!("broker {id} is not in the cluster metadata")),
            })?;
            let conn =
                Connection::connect_secured(&info.addr(), self.timeout, &self.security).await?;
            self.connections.insert(id, conn);
        }
        self.connections
            .get_mut(&id)
            .ok_or(ClientError::Unsupported {
                api: ApiKey::Metadata,
            })
    }

    /// Creates a topic. `partitions` and `replication_factor` of -1 take the broker defaults.
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: Vec<(String, String)>,
    ) -> Result<(), ClientError> {
        let api = ApiKey::CreateTopics;
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(text(k))
                                .with_value(Some(text(v)))
                        })
                        .collect(),
                )]);
        let resp = self.admin().await?.send(req).await?;
        let result = resp
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == topic)
            .ok_or_else(|| missing(api, topic))?;
        ClientError::check(api, result.error_code, result.error_message.as_deref())?;
        self.partition_counts.remove(topic);
        Ok(())
    }

    /// Deletes a topic by name.
    pub async fn delete_topic(&mut self, topic: &str) -> Result<(), ClientError> {
        let api = ApiKey::DeleteTopics;
        let timeout_ms = self.timeout_ms();
        let conn = self.admin().await?;
        let version = conn.version(api)?;
        let req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
        // v6 names topics in `topics` (which can also carry ids); older versions in
        // `topic_names`.
        let req = if version >= 6 {
            req.with_topics(vec![
                DeleteTopicState::default().with_name(Some(name(topic)))
            ])
        } else {
            req.with_topic_names(vec![name(topic)])
        };
        let resp = conn.send_version(req, version).await?;
        let result = resp
            .responses
            .iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .or(resp.responses.first())
            .ok_or_else(|| missing(api, topic))?;
        ClientError::check(api, result.error_code, result.error_message.as_deref())?;
        self.partition_counts.remove(topic);
        self.leaders.retain(|(t, _), _| t != topic);
        Ok(())
    }

    /// Grows `topic` to `total` partitions.
    pub async fn create_partitions(&mut self, topic: &str, total: i32) -> Result<(), ClientError> {
        let api = ApiKey::CreatePartitions;
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(name(topic))
                .with_count(total)]);
        let resp = self.admin().await?.send(req).await?;
        let result = resp
            .results
            .iter()
            .find(|r| r.name.0.as_str() == topic)
            .ok_or_else(|| missing(api, topic))?;
        ClientError::check(api, result.error_code, result.error_message.as_deref())?;
        self.partition_counts.remove(topic);
        Ok(())
    }

    /// Every configuration entry of `topic`.
    pub async fn describe_configs(&mut self, topic: &str) -> Result<Vec<ConfigEntry>, ClientError> {
        self.describe_resource_configs(RESOURCE_TOPIC, topic).await
    }

    /// Sets the `set` entries and removes the `delete` entries of `topic`'s configuration,
    /// leaving all others as they are.
    pub async fn incremental_alter_configs(
        &mut self,
        topic: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> Result<(), ClientError> {
        self.alter_resource_configs(RESOURCE_TOPIC, topic, set, delete)
            .await
    }

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

    /// Cluster id, controller and brokers: DescribeCluster where the broker has it, Metadata
    /// otherwise.
    pub async fn describe_cluster(&mut self) -> Result<ClusterInfo, ClientError> {
        let api = ApiKey::DescribeCluster;
        let conn = self.admin().await?;
        match conn.version(api) {
            Ok(version) => {
                let resp = conn
                    .send_version(DescribeClusterRequest::default(), version)
                    .await?;
                ClientError::check(api, resp.error_code, resp.error_message.as_deref())?;
                Ok(ClusterInfo {
                    cluster_id: Some(resp.cluster_id.to_string()),
                    controller_id: resp.controller_id.0,
                    brokers: resp
                        .brokers
                        .into_iter()
                        .map(|b| BrokerInfo {
                            id: b.broker_id.0,
                            host: b.host.to_string(),
                            port: b.port,
                            rack: b.rack.map(|r| r.to_string()),
                        })
                        .collect(),
                })
            }
            Err(ClientError::Unsupported { .. }) => {
                let meta = self.metadata(Some(Vec::new())).await?;
                Ok(ClusterInfo {
                    cluster_id: meta.cluster_id,
                    controller_id: meta.controller_id,
                    brokers: meta.brokers,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Bytes on disk of each partition of `topic`, from DescribeLogDirs on every broker that
    /// leads one of its partitions. `Err(Unsupported)` if a broker does not implement it.
    pub async fn partition_sizes(&mut self, topic: &str) -> Result<HashMap<i32, i64>, ClientError> {
        let api = ApiKey::DescribeLogDirs;
        let t = self.topic(topic).await?;
        let partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition).collect();
        let mut leaders: Vec<i32> = t
            .partitions
            .iter()
            .map(|p| p.leader)
            .filter(|&l| l >= 0)
            .collect();
        leaders.sort_unstable();
        leaders.dedup();
        let mut sizes = HashMap::new();
        for leader in leaders {
            let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(partitions.clone()),
            ]));
            let resp = self.broker(leader).await?.send(req).await?;
            ClientError::check(api, resp.error_code, None)?;
            for dir in resp.results {
                ClientError::check(api, dir.error_code, None)?;
                for p in dir
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == topic)
                    .flat_map(|t| t.partitions.iter())
                    .filter(|p| !p.is_future_key)
                {
                    // A replica on each broker reports its size: keep the largest, the leader's.
                    let size = sizes.entry(p.partition_index).or_insert(0);
                    *size = p.partition_size.max(*size);
                }
            }
        }
        Ok(sizes)
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

fn cluster_metadata(resp: MetadataResponse) -> ClusterMetadata {
    ClusterMetadata {
        cluster_id: resp.cluster_id.map(|c| c.to_string()),
        controller_id: resp.controller_id.0,
        brokers: resp
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect(),
        topics: resp
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<_> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionMetadata {
                        partition: p.partition_index,
                        error_code: p.error_code,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicMetadata {
                    name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    topic_id: (!t.topic_id.is_nil()).then(|| t.topic_id.to_string()),
                    error_code: t.error_code,
                    is_internal: t.is_internal,
                    partitions,
                }
            })
            .collect(),
    }
}

fn unknown_partition(api: ApiKey, topic: &str, partition: Option<i32>) -> ClientError {
    let code = codes::UNKNOWN_TOPIC_OR_PARTITION;
    ClientError::Kafka {
        api,
        code,
        name: error_name(code),
        message: Some(match partition {
            Some(p) => format!("no partition {topic}/{p} in the response"),
            None => format!("no topic {topic:?} in the response"),
        }),
    }
}

fn missing(api: ApiKey, resource: &str) -> ClientError {
    ClientError::Protocol {
        api,
        message: format!("the response has no result for {resource:?}"),
    }
}
