//! [`Client`]: a cluster seen through one bootstrap broker, with requests for a partition
//! routed to that partition's leader.

mod acls;
mod configs;
mod consumer_groups;
mod data;
mod groups;
mod partitions;
mod retry;
mod txns;
mod users;

pub use acls::{AclEntry, AclQuery};
pub use consumer_groups::{ConsumerGroupDescription, ConsumerGroupMember};
pub use data::{FetchPosition, FetchedData, ListedOffset, OffsetSpec, PartitionFetch};
pub use groups::{
    decode_consumer_assignment, CommittedOffset, GroupDescription, GroupListing, GroupMember,
    PartitionOffset,
};
pub use partitions::{OngoingReassignment, PartitionOutcome, ELECTION_PREFERRED, ELECTION_UNCLEAN};
pub use txns::{ProducerDescription, TxnDescription, TxnListing};
pub use users::{ScramUpsertion, UserCredentials};

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeLogDirsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::{Connection, DEFAULT_REQUEST_TIMEOUT};
use crate::error::{codes, error_name, ClientError};
use crate::security::ClientSecurity;

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
