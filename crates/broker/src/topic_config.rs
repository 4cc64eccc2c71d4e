//! Topic-level configs: names, Kafka's defaults, their broker-level synonyms and validation.

use std::collections::BTreeMap;

use weir_storage::LogConfig;

use crate::config::{parse, parse_cleanup_policy, parse_timestamp_type, BrokerConfig};

/// How a config value is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Long {
        min: i64,
    },
    Ratio,
    Bool,
    OneOf(&'static [&'static str]),
    /// A comma-separated list drawn from the given values.
    ListOf(&'static [&'static str]),
    /// A Kafka release or metadata version: `2.8`, `0.10.2`, `3.0-IV1`.
    Version,
}

/// A topic config key.
#[derive(Debug, Clone, Copy)]
pub struct TopicKey {
    pub name: &'static str,
    pub default: &'static str,
    /// The broker key whose value is the default, if any (`segment.bytes` → `log.segment.bytes`).
    pub broker_synonym: Option<&'static str>,
    kind: Kind,
    /// Whether Weir acts on the value today (others are accepted and stored for compatibility).
    pub enforced: bool,
}

const fn key(
    name: &'static str,
    default: &'static str,
    broker_synonym: Option<&'static str>,
    kind: Kind,
    enforced: bool,
) -> TopicKey {
    TopicKey {
        name,
        default,
        broker_synonym,
        kind,
        enforced,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Weir accepts.
pub const TOPIC_KEYS: &[TopicKey] = &[
    key(
        "cleanup.policy",
        "delete",
        Some("log.cleanup.policy"),
        Kind::ListOf(&["delete", "compact"]),
        true,
    ),
    key(
        "compression.type",
        "producer",
        None,
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        false,
    ),
    key(
        "delete.retention.ms",
        "86400000",
        Some("log.cleaner.delete.retention.ms"),
        Kind::Long { min: 0 },
        true,
    ),
    key(
        "file.delete.delay.ms",
        "60000",
        None,
        Kind::Long { min: 0 },
        false,
    ),
    key(
        "flush.messages",
        LONG_MAX,
        None,
        Kind::Long { min: 1 },
        false,
    ),
    key("flush.ms", LONG_MAX, None, Kind::Long { min: 0 }, false),
    key(
        "index.interval.bytes",
        "4096",
        Some("log.index.interval.bytes"),
        Kind::Long { min: 0 },
        true,
    ),
    key(
        "max.compaction.lag.ms",
        LONG_MAX,
        Some("log.cleaner.max.compaction.lag.ms"),
        Kind::Long { min: 1 },
        true,
    ),
    key(
        "max.message.bytes",
        "1048588",
        Some("message.max.bytes"),
        Kind::Long { min: 0 },
        true,
    ),
    key(
        "message.downconversion.enable",
        "true",
        None,
        Kind::Bool,
        false,
    ),
    key(
        "message.format.version",
        "3.0-IV1",
        None,
        Kind::Version,
        false,
    ),
    key(
        "message.timestamp.difference.max.ms",
        LONG_MAX,
        None,
        Kind::Long { min: 0 },
        false,
    ),
    key(
        "message.timestamp.type",
        "CreateTime",
        Some("log.message.timestamp.type"),
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        true,
    ),
    key(
        "message.timestamp.before.max.ms",
        LONG_MAX,
        None,
        Kind::Long { min: 0 },
        false,
    ),
    key(
        "message.timestamp.after.max.ms",
        LONG_MAX,
        None,
        Kind::Long { min: 0 },
        false,
    ),
    key(
        "min.cleanable.dirty.ratio",
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
        Kind::Ratio,
        true,
    ),
    key(
        "min.compaction.lag.ms",
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
        Kind::Long { min: 0 },
        true,
    ),
    key(
        "min.insync.replicas",
        "1",
        None,
        Kind::Long { min: 1 },
        false,
    ),
    key("preallocate", "false", None, Kind::Bool, false),
    key(
        "retention.bytes",
        "-1",
        Some("log.retention.bytes"),
        Kind::Long { min: -1 },
        true,
    ),
    key(
        "retention.ms",
        "604800000",
        Some("log.retention.ms"),
        Kind::Long { min: -1 },
        true,
    ),
    key(
        "segment.bytes",
        "1073741824",
        Some("log.segment.bytes"),
        Kind::Long { min: 14 },
        true,
    ),
    key(
        "segment.index.bytes",
        "10485760",
        None,
        Kind::Long { min: 8 },
        false,
    ),
    key("segment.jitter.ms", "0", None, Kind::Long { min: 0 }, false),
    key(
        "segment.ms",
        "604800000",
        Some("log.roll.ms"),
        Kind::Long { min: 1 },
        true,
    ),
    key(
        "unclean.leader.election.enable",
        "false",
        None,
        Kind::Bool,
        false,
    ),
];

/// Topic keys Kafka 3.9 still accepts but deprecates, and what Weir does with them. They are
/// accepted (and shown) for clients and tools that still send them, with a warning.
const DEPRECATED: &[(&str, &str)] = &[
    (
        "message.format.version",
        "deprecated and ignored: every batch is stored in the v2 record format",
    ),
    (
        "message.downconversion.enable",
        "deprecated and ignored: fetches are never down-converted to older record formats",
    ),
    (
        "message.timestamp.difference.max.ms",
        "deprecated: use message.timestamp.before.max.ms and message.timestamp.after.max.ms",
    ),
];

/// The deprecation warning for a topic key, if it is deprecated.
pub fn deprecation(name: &str) -> Option<&'static str> {
    DEPRECATED
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, why)| *why)
}

/// Logs a warning for each deprecated key a topic is given.
pub fn warn_deprecated<'a>(topic: &str, keys: impl IntoIterator<Item = &'a String>) {
    for key in keys {
        if let Some(why) = deprecation(key) {
            tracing::warn!(topic, key = %key, "topic config {key} is {why}");
        }
    }
}

/// Why a topic config is refused (maps to INVALID_CONFIG).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicConfigError {
    #[error("unknown topic config {0:?}")]
    Unknown(String),
    #[error("invalid value {value:?} for topic config {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

pub fn lookup(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// Checks one key/value pair.
pub fn validate(name: &str, value: &str) -> Result<(), TopicConfigError> {
    let k = lookup(name).ok_or_else(|| TopicConfigError::Unknown(name.to_string()))?;
    let bad = |reason: &str| TopicConfigError::Invalid {
        key: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match k.kind {
        Kind::Long { min } => {
            let v: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("not a whole number"))?;
            if v < min {
                return Err(bad(&format!("must be at least {min}")));
            }
        }
        Kind::Ratio => {
            let v: f64 = value.trim().parse().map_err(|_| bad("not a number"))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(bad("must be between 0 and 1"));
            }
        }
        Kind::Bool => {
            value
                .trim()
                .parse::<bool>()
                .map_err(|_| bad("expected true or false"))?;
        }
        Kind::OneOf(allowed) => {
            if !allowed.contains(&value.trim()) {
                return Err(bad(&format!("expected one of {}", allowed.join(", "))));
            }
        }
        Kind::Version => {
            let (release, iv) = match value.trim().split_once("-IV") {
                Some((r, iv)) => (r, Some(iv)),
                None => (value.trim(), None),
            };
            let parts: Vec<&str> = release.split('.').collect();
            let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !(2..=3).contains(&parts.len())
                || !parts.iter().all(|p| numeric(p))
                || iv.is_some_and(|iv| !numeric(iv))
            {
                return Err(bad("expected a Kafka version such as 2.8 or 3.0-IV1"));
            }
        }
        Kind::ListOf(allowed) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if items.is_empty() || items.iter().any(|i| !allowed.contains(i)) {
                return Err(bad(&format!("expected a list of {}", allowed.join(", "))));
            }
        }
    }
    Ok(())
}

/// The DescribeConfigs type of a topic key (Kafka's: a few sizes are INT, other numbers LONG).
pub fn config_type(key: &TopicKey) -> crate::broker_keys::ConfigType {
    use crate::broker_keys::ConfigType;
    const INTS: &[&str] = &[
        "index.interval.bytes",
        "max.message.bytes",
        "min.insync.replicas",
        "segment.bytes",
        "segment.index.bytes",
    ];
    match key.kind {
        Kind::Long { .. } if INTS.contains(&key.name) => ConfigType::Int,
        Kind::Long { .. } => ConfigType::Long,
        Kind::Ratio => ConfigType::Double,
        Kind::Bool => ConfigType::Boolean,
        Kind::ListOf(_) => ConfigType::List,
        Kind::OneOf(_) | Kind::Version => ConfigType::String,
    }
}

/// Where an effective value came from (DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Topic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// The effective value of `key` for a topic with `overrides`.
pub fn effective(
    key: &TopicKey,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> (String, Source) {
    if let Some(v) = overrides.get(key.name) {
        return (v.clone(), Source::Topic);
    }
    if let Some(syn) = key.broker_synonym {
        if let Some(v) = broker.raw.get(syn) {
            return (v.clone(), Source::StaticBroker);
        }
        // Broker keys derived from others (log.retention.hours, log.roll.hours).
        let derived = match key.name {
            "retention.ms" => Some(broker.log_defaults.retention_ms.to_string()),
            "segment.ms" => Some(broker.log_defaults.segment_ms.to_string()),
            _ => None,
        };
        if let Some(v) = derived.filter(|v| v != key.default) {
            return (v, Source::StaticBroker);
        }
    }
    (key.default.to_string(), Source::Default)
}

/// The storage settings for a topic: broker defaults overlaid with the topic's overrides.
/// Overrides were validated when they were set.
pub fn log_config(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> LogConfig {
    let mut c = broker.log_defaults.clone();
    for (k, v) in overrides {
        let long = || parse::<i64>(k, v).ok();
        match k.as_str() {
            "segment.bytes" => {
                if let Some(v) = long().and_then(|v| u64::try_from(v).ok()) {
                    c.segment_bytes = v;
                }
            }
            "segment.ms" => c.segment_ms = long().unwrap_or(c.segment_ms),
            "retention.ms" => c.retention_ms = long().unwrap_or(c.retention_ms),
            "retention.bytes" => c.retention_bytes = long().unwrap_or(c.retention_bytes),
            "index.interval.bytes" => {
                if let Some(v) = long().and_then(|v| u32::try_from(v).ok()) {
                    c.index_interval_bytes = v;
                }
            }
            "max.message.bytes" => {
                if let Some(v) = long().and_then(|v| u32::try_from(v).ok()) {
                    c.max_message_bytes = v;
                }
            }
            "cleanup.policy" => {
                if let Ok((compact, delete)) = parse_cleanup_policy(k, v) {
                    c.compaction.compact = compact;
                    c.compaction.delete = delete;
                }
            }
            "min.cleanable.dirty.ratio" => {
                if let Ok(r) = parse::<f64>(k, v) {
                    c.compaction.min_cleanable_dirty_ratio = r;
                }
            }
            "min.compaction.lag.ms" => {
                c.compaction.min_compaction_lag_ms =
                    long().unwrap_or(c.compaction.min_compaction_lag_ms);
            }
            "max.compaction.lag.ms" => {
                c.compaction.max_compaction_lag_ms =
                    long().unwrap_or(c.compaction.max_compaction_lag_ms);
            }
            "delete.retention.ms" => {
                c.compaction.delete_retention_ms =
                    long().unwrap_or(c.compaction.delete_retention_ms);
            }
            "message.timestamp.type" => {
                if let Ok(t) = parse_timestamp_type(k, v) {
                    c.timestamp_type = t;
                }
            }
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(validate("retention.ms", "1000"), Ok(()));
        assert_eq!(validate("retention.ms", "-1"), Ok(()));
        assert!(matches!(
            validate("retention.ms", "-2"),
            Err(TopicConfigError::Invalid { .. })
        ));
        assert!(matches!(
            validate("retention.ms", "soon"),
            Err(TopicConfigError::Invalid { .. })
        ));
        assert_eq!(validate("cleanup.policy", "compact,delete"), Ok(()));
        assert!(validate("cleanup.policy", "shred").is_err());
        for v in ["0.10.2", "2.8", "3.0-IV1"] {
            assert_eq!(validate("message.format.version", v), Ok(()), "{v}");
        }
        for v in ["", "banana", "3", "3.x", "3.0-IV", "3.0-IVx"] {
            assert!(validate("message.format.version", v).is_err(), "{v:?}");
        }
        assert_eq!(validate("message.downconversion.enable", "false"), Ok(()));
        assert!(deprecation("message.format.version").is_some());
        assert!(deprecation("message.downconversion.enable").is_some());
        assert!(deprecation("retention.ms").is_none());
        assert!(DEPRECATED.iter().all(|(k, _)| lookup(k).is_some()));
        assert_eq!(
            validate("no.such", "1"),
            Err(TopicConfigError::Unknown("no.such".into()))
        );
    }

    #[test]
    fn overrides_reach_the_log_config() {
        let raw = [("log.retention.ms".to_string(), "5000".to_string())]
            .into_iter()
            .collect();
        let (broker, _) =
            BrokerConfig::from_pairs("127.0.0.1:1".parse().expect("addr"), None, "d".into(), raw)
                .expect("config");
        let overrides: BTreeMap<String, String> =
            [("segment.bytes".to_string(), "16384".to_string())]
                .into_iter()
                .collect();
        let c = log_config(&overrides, &broker);
        assert_eq!(c.segment_bytes, 16384);
        assert_eq!(c.retention_ms, 5000);
        let retention = lookup("retention.ms").expect("key");
        assert_eq!(
            effective(retention, &overrides, &broker),
            ("5000".into(), Source::StaticBroker)
        );
        let compact: BTreeMap<String, String> = [
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "100"),
            ("min.compaction.lag.ms", "5"),
            ("max.compaction.lag.ms", "60000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = log_config(&compact, &broker).compaction;
        assert!(c.compact && !c.delete);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.01);
        assert_eq!(
            (
                c.delete_retention_ms,
                c.min_compaction_lag_ms,
                c.max_compaction_lag_ms
            ),
            (100, 5, 60000)
        );
        let both: BTreeMap<String, String> =
            [("cleanup.policy".to_string(), "compact,delete".to_string())]
                .into_iter()
                .collect();
        let c = log_config(&both, &broker).compaction;
        assert!(c.compact && c.delete);
        assert!(!broker.log_defaults.compaction.compact);
        let seg = lookup("segment.bytes").expect("key");
        assert_eq!(
            effective(seg, &overrides, &broker),
            ("16384".into(), Source::Topic)
        );
    }
}
