//! Broker configuration, keyed by Kafka's own broker property names.
//!
//! The binary gathers raw `key = value` pairs (defaults < TOML file < environment < `--set`)
//! and [`BrokerConfig::from_pairs`] validates them into typed fields. Nothing in the broker
//! reads the environment itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use weir_storage::{LogConfig, TimestampType};

/// When a produce is answered relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// acks=all is answered after its data is fsynced (group commit); acks=1 after the write
    /// reaches the OS. The default: survives kill -9 for everything, power loss for acks=all.
    AcksAll,
    /// Every acknowledged produce (acks=1 and acks=all) waits for fsync.
    Always,
    /// No produce waits for fsync; data reaches disk through the background flush
    /// (`log.flush.interval.ms`) or the OS. Survives kill -9, not power loss.
    None,
}

/// Replication settings, Kafka's keys and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// `replica.lag.time.max.ms` (30000): an ISR member not caught up for longer leaves it.
    pub lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms` (2000; Kafka's is 500): how long a follower's Fetch parks
    /// on the leader. Records end a park at once; an idle round costs every partition of the
    /// session a check on both sides, so a longer park is a cheaper idle cluster.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (1 MiB): per partition of a follower's Fetch.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB): per follower Fetch answer.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): the pause after a failed fetch round.
    pub fetch_backoff_ms: u64,
}

/// Why a configuration is refused: the operator's fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// The validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    /// host:port given to clients in Metadata.
    pub advertise: (String, u16),
    pub data_dir: PathBuf,
    pub node_id: i32,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    /// `max.connections.per.ip` and its overrides: checked at accept.
    pub per_ip: crate::connection_limits::PerIpLimits,
    /// Requests read ahead on one connection while earlier ones are still being answered.
    pub max_in_flight_per_connection: usize,
    /// Broker-wide budget of request bytes being read or held (`queued.max.request.bytes`);
    /// `None` is unlimited (-1).
    pub queued_max_request_bytes: Option<usize>,
    /// A connection that completes no request and is written nothing for this long is closed
    /// (`connections.max.idle.ms`); `None` never closes (-1).
    pub connections_max_idle_ms: Option<u64>,
    /// Once the first byte of a frame arrived, the whole frame must arrive within this
    /// (`weir.request.read.timeout.ms`, the slowloris guard); `None` waits forever (-1).
    pub request_read_timeout_ms: Option<u64>,
    pub retention_check_interval_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (cluster mode only).
    pub hw_checkpoint_interval_ms: u64,
    /// `replica.lag.time.max.ms` and `replica.fetch.*` (cluster mode only).
    pub replica: ReplicaConfig,
    pub durability: Durability,
    /// Background flush period; 0 disables it.
    pub flush_interval_ms: u64,
    /// Defaults for topic-level log settings (`log.segment.bytes` → `segment.bytes`, ...).
    pub log_defaults: LogConfig,
    /// The log cleaner (`log.cleaner.*`).
    pub cleaner: CleanerConfig,
    /// Consumer group settings (`group.*`, `offsets.*`).
    pub groups: weir_coordinator::CoordinatorConfig,
    /// Transaction coordinator settings (`transaction.*`, `transactional.id.*`).
    pub txns: weir_coordinator::txn::TxnConfig,
    /// The cluster keys; without `controller.quorum.voters`, the single-node default.
    pub cluster: crate::cluster_config::ClusterConfig,
    /// `weir.metrics.*`: label caps and the lag interval of `/metrics`.
    pub metrics: MetricsConfig,
    /// Listeners, TLS and SASL (`listeners`, `ssl.*`, `sasl.*`).
    pub security: crate::security::SecurityConfig,
    /// Every raw pair given, for DescribeConfigs on the broker resource.
    pub raw: BTreeMap<String, String>,
}

/// The metrics' settings (docs/design/operability.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `weir.metrics.max.topics`: distinct topic label values per family.
    pub max_topics: usize,
    /// `weir.metrics.max.groups`: distinct group label values per family.
    pub max_groups: usize,
    /// `weir.metrics.lag.interval.ms`: how often group lag is computed.
    pub lag_interval_ms: u64,
    /// `weir.metrics.per.partition`: export the `weir_partition_*` series (off by default: a
    /// broker with 10,000 partitions would expose tens of thousands of series).
    pub per_partition: bool,
}

/// The log cleaner's broker settings (compaction of `cleanup.policy=compact` topics).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`: logs cleaned at the same time.
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: memory of the key maps, shared by the threads.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`, shared by the threads; None: unlimited.
    pub io_max_bytes_per_second: Option<f64>,
}

impl BrokerConfig {
    /// Validates raw pairs. Unknown keys are returned so the caller can warn about them (Kafka
    /// ignores unknown keys; a typo should at least be visible).
    pub fn from_pairs(
        listen: SocketAddr,
        advertise: Option<(String, u16)>,
        data_dir: PathBuf,
        raw: BTreeMap<String, String>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let unknown = raw
            .keys()
            .filter(|k| crate::broker_keys::lookup(k).is_none())
            .cloned()
            .collect();
        let get = |key: &str| raw.get(key).map(String::as_str);
        let hours = get("log.retention.hours").map(|v| parse::<i64>("log.retention.hours", v));
        let minutes =
            get("log.retention.minutes").map(|v| parse::<i64>("log.retention.minutes", v));
        // Kafka's precedence: ms > minutes > hours.
        let retention_ms = match get("log.retention.ms") {
            Some(v) => parse::<i64>("log.retention.ms", v)?,
            None => match (minutes, hours) {
                (Some(m), _) => m?.saturating_mul(60_000),
                (None, Some(h)) => h?.saturating_mul(3_600_000),
                (None, None) => 604_800_000,
            },
        };
        let segment_ms = match get("log.roll.ms") {
            Some(v) => parse::<i64>("log.roll.ms", v)?,
            None => match get("log.roll.hours") {
                Some(h) => parse::<i64>("log.roll.hours", h)?.saturating_mul(3_600_000),
                None => 604_800_000,
            },
        };
        let num = |key: &str, default: &str| -> Result<i64, ConfigError> {
            parse::<i64>(key, get(key).unwrap_or(default))
        };
        let timestamp_type = parse_timestamp_type(
            "log.message.timestamp.type",
            get("log.message.timestamp.type").unwrap_or("CreateTime"),
        )?;
        let log_defaults = LogConfig {
            segment_bytes: positive("log.segment.bytes", num("log.segment.bytes", "1073741824")?)?,
            segment_ms,
            retention_ms,
            retention_bytes: num("log.retention.bytes", "-1")?,
            index_interval_bytes: u32_in(
                "log.index.interval.bytes",
                num("log.index.interval.bytes", "4096")?,
            )?,
            max_message_bytes: u32_in("message.max.bytes", num("message.max.bytes", "1048588")?)?,
            timestamp_type,
            producer_id_expiration_ms: i64::try_from(positive(
                "producer.id.expiration.ms",
                num("producer.id.expiration.ms", "86400000")?,
            )?)
            .unwrap_or(i64::MAX),
            compaction: compaction_defaults(&get)?,
        };
        let durability = match get("weir.durability").unwrap_or("acks-all") {
            "acks-all" => Durability::AcksAll,
            "always" => Durability::Always,
            "none" => Durability::None,
            other => {
                return Err(invalid(
                    "weir.durability",
                    other,
                    "expected acks-all, always or none",
                ))
            }
        };
        let groups = weir_coordinator::CoordinatorConfig {
            initial_rebalance_delay_ms: u64::try_from(num(
                "group.initial.rebalance.delay.ms",
                "300",
            )?)
            .map_err(|_| invalid("group.initial.rebalance.delay.ms", "", "must be >= 0"))?,
            min_session_timeout_ms: i32_in(
                "group.min.session.timeout.ms",
                num("group.min.session.timeout.ms", "6000")?,
            )?,
            max_session_timeout_ms: i32_in(
                "group.max.session.timeout.ms",
                num("group.max.session.timeout.ms", "1800000")?,
            )?,
            max_group_size: positive("group.max.size", num("group.max.size", "2147483647")?)?
                as usize,
            offsets_retention_ms: positive(
                "offsets.retention.minutes",
                num("offsets.retention.minutes", "10080")?,
            )?
            .saturating_mul(60_000),
            offsets_retention_check_interval_ms: positive(
                "offsets.retention.check.interval.ms",
                num("offsets.retention.check.interval.ms", "600000")?,
            )?,
            offset_metadata_max_bytes: positive(
                "offset.metadata.max.bytes",
                num("offset.metadata.max.bytes", "4096")?,
            )? as usize,
            consumer_session_timeout_ms: positive(
                "group.consumer.session.timeout.ms",
                num("group.consumer.session.timeout.ms", "45000")?,
            )?,
            consumer_heartbeat_interval_ms: positive(
                "group.consumer.heartbeat.interval.ms",
                num("group.consumer.heartbeat.interval.ms", "5000")?,
            )?,
            ..weir_coordinator::CoordinatorConfig::default()
        };
        let txns = weir_coordinator::txn::TxnConfig {
            transaction_timeout_max_ms: i32_in(
                "transaction.max.timeout.ms",
                positive(
                    "transaction.max.timeout.ms",
                    num("transaction.max.timeout.ms", "900000")?,
                )? as i64,
            )?,
            transactional_id_expiration_ms: positive(
                "transactional.id.expiration.ms",
                num("transactional.id.expiration.ms", "604800000")?,
            )?,
            abort_timed_out_check_interval_ms: positive(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                num(
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                    "10000",
                )?,
            )?,
        };
        // node.id and broker.id name the same thing; Kafka requires them to agree.
        let node_id = match (get("node.id"), get("broker.id")) {
            (Some(n), Some(b)) if n.trim() != b.trim() => {
                return Err(invalid("broker.id", b, "differs from node.id"))
            }
            (Some(_), _) | (None, None) => i32_in("node.id", num("node.id", "0")?)?,
            (None, Some(_)) => i32_in("broker.id", num("broker.id", "0")?)?,
        };
        let cluster = crate::cluster_config::ClusterConfig::parse(&get, node_id)?;
        let security = crate::security::SecurityConfig::parse(
            &|k| get(k).map(str::to_string),
            listen,
            advertise.clone(),
        )?;
        // With `listeners`, the first one is what single-address code (the cluster's broker
        // registration, DescribeConfigs) knows the broker by.
        let (listen, advertise) = match security.listeners.first() {
            Some(first) if get("listeners").is_some() => (first.bind, first.advertise.clone()),
            _ => (listen, advertise),
        };
        let config = BrokerConfig {
            security,
            groups,
            txns,
            cluster,
            advertise: advertise.unwrap_or_else(|| (listen.ip().to_string(), listen.port())),
            listen,
            data_dir,
            node_id,
            num_partitions: i32_in(
                "num.partitions",
                positive("num.partitions", num("num.partitions", "1")?)? as i64,
            )?,
            default_replication_factor: i16::try_from(num("default.replication.factor", "1")?)
                .map_err(|_| invalid("default.replication.factor", "", "out of range"))?,
            auto_create_topics: parse::<bool>(
                "auto.create.topics.enable",
                get("auto.create.topics.enable").unwrap_or("true"),
            )?,
            socket_request_max_bytes: positive(
                "socket.request.max.bytes",
                num("socket.request.max.bytes", "104857600")?,
            )? as usize,
            max_connections: positive("max.connections", num("max.connections", "10000")?)?
                as usize,
            per_ip: crate::connection_limits::PerIpLimits::parse(&|k| get(k).map(str::to_string))?,
            max_in_flight_per_connection: positive(
                "max.in.flight.requests.per.connection",
                num("max.in.flight.requests.per.connection", "16")?,
            )? as usize,
            queued_max_request_bytes: positive_or_unlimited(
                "queued.max.request.bytes",
                num("queued.max.request.bytes", "104857600")?,
            )?
            .map(|v| usize::try_from(v).unwrap_or(usize::MAX)),
            connections_max_idle_ms: positive_or_unlimited(
                "connections.max.idle.ms",
                num("connections.max.idle.ms", "600000")?,
            )?,
            request_read_timeout_ms: positive_or_unlimited(
                "weir.request.read.timeout.ms",
                num("weir.request.read.timeout.ms", "30000")?,
            )?,
            retention_check_interval_ms: positive(
                "log.retention.check.interval.ms",
                num("log.retention.check.interval.ms", "300000")?,
            )?,
            hw_checkpoint_interval_ms: positive(
                "replica.high.watermark.checkpoint.interval.ms",
                num("replica.high.watermark.checkpoint.interval.ms", "5000")?,
            )?,
            metrics: MetricsConfig {
                max_topics: usize::try_from(positive(
                    "weir.metrics.max.topics",
                    num("weir.metrics.max.topics", "1000")?,
                )?)
                .unwrap_or(usize::MAX),
                max_groups: usize::try_from(positive(
                    "weir.metrics.max.groups",
                    num("weir.metrics.max.groups", "1000")?,
                )?)
                .unwrap_or(usize::MAX),
                lag_interval_ms: positive(
                    "weir.metrics.lag.interval.ms",
                    num("weir.metrics.lag.interval.ms", "10000")?,
                )?,
                per_partition: parse::<bool>(
                    "weir.metrics.per.partition",
                    get("weir.metrics.per.partition").unwrap_or("false"),
                )?,
            },
            replica: ReplicaConfig {
                lag_time_max_ms: positive(
                    "replica.lag.time.max.ms",
                    num("replica.lag.time.max.ms", "30000")?,
                )?,
                fetch_wait_max_ms: i32_in(
                    "replica.fetch.wait.max.ms",
                    num("replica.fetch.wait.max.ms", "2000")?,
                )?,
                fetch_min_bytes: i32_in(
                    "replica.fetch.min.bytes",
                    positive(
                        "replica.fetch.min.bytes",
                        num("replica.fetch.min.bytes", "1")?,
                    )? as i64,
                )?,
                fetch_max_bytes: i32_in(
                    "replica.fetch.max.bytes",
                    positive(
                        "replica.fetch.max.bytes",
                        num("replica.fetch.max.bytes", "1048576")?,
                    )? as i64,
                )?,
                fetch_response_max_bytes: i32_in(
                    "replica.fetch.response.max.bytes",
                    positive(
                        "replica.fetch.response.max.bytes",
                        num("replica.fetch.response.max.bytes", "10485760")?,
                    )? as i64,
                )?,
                fetch_backoff_ms: positive(
                    "replica.fetch.backoff.ms",
                    num("replica.fetch.backoff.ms", "1000")?,
                )?,
            },
            durability,
            flush_interval_ms: u64::try_from(num("log.flush.interval.ms", "0")?)
                .map_err(|_| invalid("log.flush.interval.ms", "", "must be >= 0"))?,
            log_defaults,
            cleaner: cleaner_config(&get)?,
            raw,
        };
        Ok((config, unknown))
    }
}

/// `log.cleanup.policy` (`compact`, `delete` or both, comma-separated).
pub(crate) fn parse_cleanup_policy(key: &str, v: &str) -> Result<(bool, bool), ConfigError> {
    let mut policy = (false, false);
    for item in v.split(',').map(str::trim) {
        match item {
            "compact" => policy.0 = true,
            "delete" => policy.1 = true,
            other => return Err(invalid(key, other, "expected compact, delete or both")),
        }
    }
    Ok(policy)
}

/// The broker-wide defaults of the topic compaction keys.
fn compaction_defaults<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<weir_storage::Compaction, ConfigError> {
    let (compact, delete) = parse_cleanup_policy(
        "log.cleanup.policy",
        get("log.cleanup.policy").unwrap_or("delete"),
    )?;
    let ratio_key = "log.cleaner.min.cleanable.ratio";
    let ratio: f64 = parse(ratio_key, get(ratio_key).unwrap_or("0.5"))?;
    if !(0.0..=1.0).contains(&ratio) {
        return Err(invalid(
            ratio_key,
            &ratio.to_string(),
            "must be between 0 and 1",
        ));
    }
    let ms = |key: &str, default: &str, min: i64| -> Result<i64, ConfigError> {
        let v: i64 = parse(key, get(key).unwrap_or(default))?;
        if v < min {
            return Err(invalid(
                key,
                &v.to_string(),
                &format!("must be at least {min}"),
            ));
        }
        Ok(v)
    };
    Ok(weir_storage::Compaction {
        compact,
        delete,
        min_cleanable_dirty_ratio: ratio,
        min_compaction_lag_ms: ms("log.cleaner.min.compaction.lag.ms", "0", 0)?,
        max_compaction_lag_ms: ms(
            "log.cleaner.max.compaction.lag.ms",
            "9223372036854775807",
            1,
        )?,
        delete_retention_ms: ms("log.cleaner.delete.retention.ms", "86400000", 0)?,
    })
}

fn cleaner_config<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<CleanerConfig, ConfigError> {
    let num = |key: &str, default: &str| -> Result<i64, ConfigError> {
        parse::<i64>(key, get(key).unwrap_or(default))
    };
    let io_key = "log.cleaner.io.max.bytes.per.second";
    let io: f64 = parse(io_key, get(io_key).unwrap_or("1.7976931348623157E308"))?;
    if io.is_nan() || io <= 0.0 {
        return Err(invalid(io_key, &io.to_string(), "must be positive"));
    }
    let threads = positive("log.cleaner.threads", num("log.cleaner.threads", "1")?)? as usize;
    let dedupe = positive(
        "log.cleaner.dedupe.buffer.size",
        num("log.cleaner.dedupe.buffer.size", "134217728")?,
    )?;
    Ok(CleanerConfig {
        enable: parse(
            "log.cleaner.enable",
            get("log.cleaner.enable").unwrap_or("true"),
        )?,
        threads,
        backoff_ms: positive(
            "log.cleaner.backoff.ms",
            num("log.cleaner.backoff.ms", "15000")?,
        )?,
        dedupe_buffer_size: usize::try_from(dedupe).unwrap_or(usize::MAX),
        io_max_bytes_per_second: (io < 1e300).then_some(io),
    })
}

pub(crate) fn parse_timestamp_type(key: &str, v: &str) -> Result<TimestampType, ConfigError> {
    match v {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        other => Err(invalid(key, other, "expected CreateTime or LogAppendTime")),
    }
}

pub(crate) fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

pub(crate) fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse::<T>()
        .map_err(|e| invalid(key, value, &e.to_string()))
}

fn positive(key: &str, v: i64) -> Result<u64, ConfigError> {
    u64::try_from(v)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid(key, &v.to_string(), "must be positive"))
}

/// A positive value, or -1 for "no limit" (`None`).
fn positive_or_unlimited(key: &str, v: i64) -> Result<Option<u64>, ConfigError> {
    if v == -1 {
        return Ok(None);
    }
    u64::try_from(v)
        .ok()
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| invalid(key, &v.to_string(), "must be positive, or -1 for no limit"))
}

fn u32_in(key: &str, v: i64) -> Result<u32, ConfigError> {
    u32::try_from(v).map_err(|_| invalid(key, &v.to_string(), "out of range"))
}

fn i32_in(key: &str, v: i64) -> Result<i32, ConfigError> {
    i32::try_from(v).map_err(|_| invalid(key, &v.to_string(), "out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pairs: &[(&str, &str)]) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_pairs(
            "127.0.0.1:9092".parse().expect("addr"),
            None,
            "d".into(),
            raw,
        )
    }

    #[test]
    fn replica_keys_take_kafkas_defaults_and_overrides() {
        let (c, _) = build(&[]).expect("defaults");
        assert_eq!(
            c.replica,
            ReplicaConfig {
                lag_time_max_ms: 30_000,
                fetch_wait_max_ms: 2000,
                fetch_min_bytes: 1,
                fetch_max_bytes: 1_048_576,
                fetch_response_max_bytes: 10_485_760,
                fetch_backoff_ms: 1000,
            }
        );
        let (c, _) = build(&[
            ("replica.lag.time.max.ms", "4000"),
            ("replica.fetch.wait.max.ms", "50"),
        ])
        .expect("overrides");
        assert_eq!(c.replica.lag_time_max_ms, 4000);
        assert_eq!(c.replica.fetch_wait_max_ms, 50);
        assert!(build(&[("replica.lag.time.max.ms", "0")]).is_err());
        assert!(build(&[("replica.fetch.max.bytes", "-1")]).is_err());
    }

    #[test]
    fn defaults_are_kafkas() {
        let (c, unknown) = build(&[]).expect("config");
        assert!(unknown.is_empty());
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.log_defaults.segment_bytes, 1 << 30);
        assert_eq!(c.log_defaults.retention_ms, 7 * 24 * 3_600_000);
        assert_eq!(c.advertise, ("127.0.0.1".to_string(), 9092));
        assert_eq!(c.durability, Durability::AcksAll);
    }

    #[test]
    fn cleaner_keys() {
        let (c, _) = build(&[]).expect("config");
        assert_eq!(
            c.cleaner,
            CleanerConfig {
                enable: true,
                threads: 1,
                backoff_ms: 15_000,
                dedupe_buffer_size: 134_217_728,
                io_max_bytes_per_second: None,
            }
        );
        assert!(!c.log_defaults.compaction.compact && c.log_defaults.compaction.delete);
        let (c, _) = build(&[
            ("log.cleaner.threads", "2"),
            ("log.cleaner.backoff.ms", "100"),
            ("log.cleaner.dedupe.buffer.size", "1048576"),
            ("log.cleaner.io.max.bytes.per.second", "5e6"),
            ("log.cleaner.enable", "false"),
            ("log.cleanup.policy", "compact,delete"),
            ("log.cleaner.delete.retention.ms", "1000"),
        ])
        .expect("config");
        assert_eq!(c.cleaner.threads, 2);
        assert_eq!(c.cleaner.backoff_ms, 100);
        assert_eq!(c.cleaner.dedupe_buffer_size, 1 << 20);
        assert_eq!(c.cleaner.io_max_bytes_per_second, Some(5e6));
        assert!(!c.cleaner.enable);
        let d = &c.log_defaults.compaction;
        assert!(d.compact && d.delete);
        assert_eq!(d.delete_retention_ms, 1000);
        for bad in [
            ("log.cleaner.threads", "0"),
            ("log.cleaner.dedupe.buffer.size", "-1"),
            ("log.cleaner.io.max.bytes.per.second", "0"),
            ("log.cleanup.policy", "shred"),
            ("log.cleaner.min.cleanable.ratio", "1.5"),
        ] {
            let e = build(&[bad]).expect_err("invalid");
            assert!(e.to_string().contains(bad.0), "{e}");
        }
    }

    #[test]
    fn retention_precedence_and_errors() {
        let (c, _) = build(&[("log.retention.hours", "1")]).expect("config");
        assert_eq!(c.log_defaults.retention_ms, 3_600_000);
        let (c, _) =
            build(&[("log.retention.hours", "1"), ("log.retention.minutes", "2")]).expect("config");
        assert_eq!(c.log_defaults.retention_ms, 120_000);
        let (c, unknown) = build(&[("log.retention.ms", "5"), ("bogus.key", "1")]).expect("config");
        assert_eq!(c.log_defaults.retention_ms, 5);
        assert_eq!(unknown, vec!["bogus.key".to_string()]);
        let e = build(&[("num.partitions", "zero")]).expect_err("bad number");
        assert!(e.to_string().contains("num.partitions"), "{e}");
        assert!(build(&[("weir.durability", "sometimes")]).is_err());
    }

    #[test]
    fn memory_and_timeout_limits() {
        let (c, _) = build(&[]).expect("config");
        assert_eq!(c.queued_max_request_bytes, Some(104_857_600));
        assert_eq!(c.connections_max_idle_ms, Some(600_000));
        assert_eq!(c.request_read_timeout_ms, Some(30_000));
        let (c, unknown) = build(&[
            ("queued.max.request.bytes", "-1"),
            ("connections.max.idle.ms", "-1"),
            ("weir.request.read.timeout.ms", "2000"),
        ])
        .expect("config");
        assert!(unknown.is_empty());
        assert_eq!(c.queued_max_request_bytes, None);
        assert_eq!(c.connections_max_idle_ms, None);
        assert_eq!(c.request_read_timeout_ms, Some(2000));
        for key in [
            "queued.max.request.bytes",
            "connections.max.idle.ms",
            "weir.request.read.timeout.ms",
        ] {
            for bad in ["0", "-2", "x"] {
                let e = build(&[(key, bad)]).expect_err("bad value");
                assert!(e.to_string().contains(key), "{e}");
            }
        }
    }
}
