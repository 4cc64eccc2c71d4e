//! Broker configs altered at run time, Kafka's dynamic broker configs (KIP-226).
//!
//! Four layers, highest first: this broker's dynamic configs, the cluster-wide dynamic default
//! (resource name ""), the static config (file, environment, `--set`) and the built-in
//! defaults. The dynamic layers are persisted in `meta/broker-configs.json` before they take
//! effect, and the effective [`BrokerConfig`] is rebuilt from all layers with the same
//! validation as at start-up, so a dynamic value is exactly as valid as a static one.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::broker_keys::{self, Mode};
use crate::config::BrokerConfig;
use crate::meta::{DynamicBrokerConfigs, MetaError, MetaStore};
use crate::topic_config::TopicKey;

/// DescribeConfigs `config_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Topic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// Where a key (or a key of the same meaning) is set, highest layer first: name, value,
/// source (DescribeConfigs synonyms).
pub type Synonyms = Vec<(String, Option<String>, ConfigSource)>;

/// Which dynamic layer an alter addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    ClusterDefault,
    Broker,
}

/// Why a broker config change is refused.
#[derive(Debug, thiserror::Error)]
pub enum AlterError {
    /// The request cannot be honoured whatever the values (read-only keys, a wrong resource).
    #[error("{0}")]
    InvalidRequest(String),
    /// A key or value is not valid.
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Meta(#[from] MetaError),
}

struct Inner {
    layers: DynamicBrokerConfigs,
    effective: Arc<BrokerConfig>,
}

/// The broker's config layers and the effective config built from them.
pub struct BrokerConfigs {
    static_config: BrokerConfig,
    store: MetaStore,
    inner: RwLock<Inner>,
    /// Serializes alters: validate, persist and swap as one step.
    alter: tokio::sync::Mutex<()>,
    /// Bumped after every change, for tasks that follow a config (flush period, connections).
    changed: watch::Sender<u64>,
}

impl BrokerConfigs {
    /// Loads the dynamic layers. Layers that no longer validate against the static config
    /// (edited by hand, or a static change made them invalid) are ignored with an error
    /// logged, rather than stopping the broker.
    pub fn open(static_config: BrokerConfig, store: MetaStore) -> Result<BrokerConfigs, MetaError> {
        let layers = store.load_broker_configs()?;
        let effective = match build(&static_config, &layers) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "dynamic broker configs in meta/broker-configs.json are invalid; using the static config");
                static_config.clone()
            }
        };
        let node = static_config.node_id.to_string();
        for (k, v) in layers
            .cluster_default
            .iter()
            .chain(layers.per_broker.get(&node).into_iter().flatten())
        {
            tracing::info!(key = %k, value = %v, "dynamic broker config");
        }
        let (changed, _) = watch::channel(0);
        Ok(BrokerConfigs {
            static_config,
            store,
            inner: RwLock::new(Inner {
                layers,
                effective: Arc::new(effective),
            }),
            alter: tokio::sync::Mutex::new(()),
            changed,
        })
    }

    /// The config in force: every layer applied.
    pub fn effective(&self) -> Arc<BrokerConfig> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .effective
            .clone()
    }

    /// The config as started, before any dynamic change.
    pub fn static_config(&self) -> &BrokerConfig {
        &self.static_config
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The level a BROKER resource name addresses: "" is the cluster-wide default, this
    /// node's id is this broker; no other broker exists.
    pub fn level(&self, resource_name: &str) -> Result<Level, AlterError> {
        if resource_name.is_empty() {
            return Ok(Level::ClusterDefault);
        }
        match resource_name.trim().parse::<i32>() {
            Ok(id) if id == self.static_config.node_id => Ok(Level::Broker),
            _ => Err(AlterError::InvalidRequest(format!(
                "unexpected broker id {resource_name:?}: this broker is {}, or use the empty name for the cluster-wide default",
                self.static_config.node_id
            ))),
        }
    }

    /// The dynamic configs set at `level`.
    pub fn layer(&self, level: Level) -> BTreeMap<String, String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        layer_of(&inner.layers, level, self.static_config.node_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the dynamic configs of `level` with `configs` after validating them; with
    /// `validate_only` nothing changes. Returns whether anything changed.
    pub async fn replace(
        &self,
        level: Level,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<bool, AlterError> {
        let _alter = self.alter.lock().await;
        check_keys(level, &configs)?;
        let mut layers = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .layers
            .clone();
        let node = self.static_config.node_id.to_string();
        match level {
            Level::ClusterDefault => layers.cluster_default = configs,
            Level::Broker if configs.is_empty() => {
                layers.per_broker.remove(&node);
            }
            Level::Broker => {
                layers.per_broker.insert(node, configs);
            }
        }
        let effective = build(&self.static_config, &layers)
            .map_err(|e| AlterError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(false);
        }
        let unchanged = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            inner.layers == layers
        };
        if unchanged {
            return Ok(false);
        }
        self.store.save_broker_configs(&layers)?;
        {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.layers = layers;
            inner.effective = Arc::new(effective);
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        Ok(true)
    }

    /// Where `name` is set, highest layer first: `(value, source)`.
    fn chain(&self, name: &str) -> Vec<(String, ConfigSource)> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let node = self.static_config.node_id;
        let mut out = Vec::new();
        let layers = [
            (
                layer_of(&inner.layers, Level::Broker, node),
                ConfigSource::DynamicBroker,
            ),
            (
                layer_of(&inner.layers, Level::ClusterDefault, node),
                ConfigSource::DynamicDefaultBroker,
            ),
            (Some(&self.static_config.raw), ConfigSource::StaticBroker),
        ];
        for (layer, source) in layers {
            if let Some(v) = layer.and_then(|l| l.get(name)) {
                out.push((v.clone(), source));
            }
        }
        out
    }

    /// The effective value and source of broker key `name`, and its synonyms (every layer
    /// where it or a key of the same meaning is set, highest first, then the default).
    pub fn describe(&self, name: &str) -> (Option<String>, ConfigSource, Synonyms) {
        let group = broker_keys::synonyms(name);
        let names: Vec<&str> = if group.is_empty() {
            vec![name]
        } else {
            group.to_vec()
        };
        let mut synonyms = Vec::new();
        for n in &names {
            for (v, source) in self.chain(n) {
                synonyms.push((n.to_string(), Some(v), source));
            }
        }
        for n in &names {
            if let Some(d) = broker_keys::lookup(n).and_then(|k| k.default) {
                synonyms.push((n.to_string(), Some(d.to_string()), ConfigSource::Default));
            }
        }
        let effective = self.effective();
        let (value, source) = match (self.chain(name).first(), derived(name, &effective)) {
            // The flags (--listen, --advertise, --data-dir) are what the broker uses, whatever
            // a listeners or log.dirs key says.
            (_, Some((v, true))) => (Some(v), ConfigSource::StaticBroker),
            (Some((v, s)), _) => (Some(v.clone()), *s),
            (None, Some((v, from_flags))) => {
                let source = match synonyms.first() {
                    Some((_, _, s)) if *s != ConfigSource::Default => *s,
                    _ if from_flags => ConfigSource::StaticBroker,
                    _ => ConfigSource::Default,
                };
                (Some(v), source)
            }
            (None, None) => (
                broker_keys::lookup(name)
                    .and_then(|k| k.default)
                    .map(str::to_string),
                ConfigSource::Default,
            ),
        };
        (value, source, synonyms)
    }

    /// The value and source of a topic key without an override (its broker synonym's), and
    /// the synonyms behind it.
    pub fn topic_default(&self, key: &TopicKey) -> (String, ConfigSource, Synonyms) {
        let Some(syn) = key.broker_synonym else {
            return (
                key.default.to_string(),
                ConfigSource::Default,
                vec![(
                    key.name.to_string(),
                    Some(key.default.to_string()),
                    ConfigSource::Default,
                )],
            );
        };
        let (value, source, mut synonyms) = self.describe(syn);
        if synonyms.is_empty() {
            synonyms.push((
                syn.to_string(),
                Some(key.default.to_string()),
                ConfigSource::Default,
            ));
        }
        let value = value.unwrap_or_else(|| key.default.to_string());
        (value, source, synonyms)
    }
}

/// Applies the effective config to every partition's log: topics without an override of a
/// key follow the new broker value at once (retention, segment size and age, batch size...).
pub fn apply_to_logs(state: &crate::state::State) {
    let effective = state.broker_configs.effective();
    for topic in state.topics() {
        let config = crate::topic_config::log_config(&topic.configs(), &effective);
        for p in topic.all_partitions() {
            p.set_config(config.clone());
        }
    }
}

fn layer_of(
    layers: &DynamicBrokerConfigs,
    level: Level,
    node: i32,
) -> Option<&BTreeMap<String, String>> {
    match level {
        Level::ClusterDefault => Some(&layers.cluster_default),
        Level::Broker => layers.per_broker.get(&node.to_string()),
    }
}

/// Values Weir computes rather than reads from one key: `(value, set by a flag)`.
fn derived(name: &str, c: &BrokerConfig) -> Option<(String, bool)> {
    Some(match name {
        "log.retention.ms" => (c.log_defaults.retention_ms.to_string(), false),
        "log.roll.ms" => (c.log_defaults.segment_ms.to_string(), false),
        "listeners" => (
            c.security
                .listeners
                .iter()
                .map(|l| format!("{}://{}", l.name, l.bind))
                .collect::<Vec<_>>()
                .join(","),
            true,
        ),
        "advertised.listeners" => (
            c.security
                .listeners
                .iter()
                .map(|l| {
                    let (host, port) = l
                        .advertise
                        .clone()
                        .unwrap_or_else(|| (l.bind.ip().to_string(), l.bind.port()));
                    format!("{}://{host}:{port}", l.name)
                })
                .collect::<Vec<_>>()
                .join(","),
            true,
        ),
        "log.dirs" | "log.dir" => (c.data_dir.display().to_string(), true),
        "node.id" | "broker.id" => (c.node_id.to_string(), false),
        _ => return None,
    })
}

/// Refuses keys that are unknown, read-only, or per-broker at the cluster-wide level,
/// and values of the wrong type.
fn check_keys(level: Level, configs: &BTreeMap<String, String>) -> Result<(), AlterError> {
    let mut read_only = Vec::new();
    let mut per_broker = Vec::new();
    for (name, value) in configs {
        let key = broker_keys::lookup(name)
            .ok_or_else(|| AlterError::InvalidConfig(format!("unknown broker config {name:?}")))?;
        match key.mode {
            Mode::ReadOnly => read_only.push(name.as_str()),
            Mode::PerBroker if level == Level::ClusterDefault => per_broker.push(name.as_str()),
            _ => {}
        }
        key.check_type(value).map_err(AlterError::InvalidConfig)?;
    }
    if !read_only.is_empty() {
        return Err(AlterError::InvalidRequest(format!(
            "cannot update these configs dynamically: {} (they are read-only; set them in the config file, environment or --set and restart)",
            read_only.join(", ")
        )));
    }
    if !per_broker.is_empty() {
        return Err(AlterError::InvalidRequest(format!(
            "cannot update these configs at the cluster-wide default level, name the broker: {}",
            per_broker.join(", ")
        )));
    }
    Ok(())
}

/// The effective config: static pairs overlaid with the dynamic default, then this broker's.
fn build(
    static_config: &BrokerConfig,
    layers: &DynamicBrokerConfigs,
) -> Result<BrokerConfig, crate::config::ConfigError> {
    let mut raw = static_config.raw.clone();
    raw.extend(layers.cluster_default.clone());
    if let Some(mine) = layers.per_broker.get(&static_config.node_id.to_string()) {
        raw.extend(mine.clone());
    }
    let (config, _) = BrokerConfig::from_pairs(
        static_config.listen,
        Some(static_config.advertise.clone()),
        static_config.data_dir.clone(),
        raw,
    )?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(dir: &std::path::Path, pairs: &[(&str, &str)]) -> BrokerConfigs {
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (c, _) = BrokerConfig::from_pairs(
            "127.0.0.1:9092".parse().expect("addr"),
            None,
            dir.to_path_buf(),
            raw,
        )
        .expect("config");
        BrokerConfigs::open(c, MetaStore::open(dir).expect("meta")).expect("open")
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn layers_take_precedence_in_order_and_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = configs(dir.path(), &[("log.retention.ms", "1000")]);
        assert_eq!(c.effective().log_defaults.retention_ms, 1000);
        let (v, s, _) = c.describe("log.retention.ms");
        assert_eq!(
            (v.as_deref(), s),
            (Some("1000"), ConfigSource::StaticBroker)
        );

        assert!(c
            .replace(
                Level::ClusterDefault,
                set(&[("log.retention.ms", "2000")]),
                false
            )
            .await
            .expect("default"));
        assert_eq!(c.effective().log_defaults.retention_ms, 2000);
        let (v, s, _) = c.describe("log.retention.ms");
        assert_eq!(
            (v.as_deref(), s),
            (Some("2000"), ConfigSource::DynamicDefaultBroker)
        );

        c.replace(Level::Broker, set(&[("log.retention.ms", "3000")]), false)
            .await
            .expect("broker");
        let (v, s, synonyms) = c.describe("log.retention.ms");
        assert_eq!(
            (v.as_deref(), s),
            (Some("3000"), ConfigSource::DynamicBroker)
        );
        let sources: Vec<ConfigSource> = synonyms.iter().map(|s| s.2).collect();
        assert_eq!(
            sources,
            vec![
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::StaticBroker,
                ConfigSource::Default,
            ],
            "{synonyms:?}"
        );
        assert_eq!(
            synonyms.last().map(|s| s.0.as_str()),
            Some("log.retention.hours")
        );

        // A restart keeps both layers.
        let c = configs(dir.path(), &[("log.retention.ms", "1000")]);
        assert_eq!(c.effective().log_defaults.retention_ms, 3000);
        // Deleting this broker's value falls back to the default layer, then to static.
        c.replace(Level::Broker, BTreeMap::new(), false)
            .await
            .expect("delete");
        assert_eq!(c.effective().log_defaults.retention_ms, 2000);
        c.replace(Level::ClusterDefault, BTreeMap::new(), false)
            .await
            .expect("delete");
        assert_eq!(c.effective().log_defaults.retention_ms, 1000);
        let (_, s, _) = c.describe("log.retention.ms");
        assert_eq!(s, ConfigSource::StaticBroker);
    }

    #[tokio::test]
    async fn refusals_and_validate_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = configs(dir.path(), &[]);
        let refused = |r: Result<bool, AlterError>| match r {
            Err(AlterError::InvalidRequest(m)) => ("request", m),
            Err(AlterError::InvalidConfig(m)) => ("config", m),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let (kind, m) = refused(
            c.replace(Level::Broker, set(&[("num.partitions", "3")]), false)
                .await,
        );
        assert_eq!(kind, "request");
        assert!(m.contains("num.partitions"), "{m}");
        let (kind, _) = refused(
            c.replace(Level::Broker, set(&[("log.segment.bytes", "big")]), false)
                .await,
        );
        assert_eq!(kind, "config");
        // Typed right but refused by the broker's own validation.
        let (kind, m) = refused(
            c.replace(Level::Broker, set(&[("log.segment.bytes", "0")]), false)
                .await,
        );
        assert_eq!(kind, "config");
        assert!(m.contains("log.segment.bytes"), "{m}");
        let (kind, _) = refused(
            c.replace(Level::Broker, set(&[("no.such", "1")]), false)
                .await,
        );
        assert_eq!(kind, "config");
        assert!(matches!(c.level("7"), Err(AlterError::InvalidRequest(_))));
        assert_eq!(c.level("0").expect("this broker"), Level::Broker);
        assert_eq!(c.level("").expect("default"), Level::ClusterDefault);

        assert!(!c
            .replace(Level::Broker, set(&[("message.max.bytes", "5000")]), true)
            .await
            .expect("validate only"));
        assert_eq!(c.effective().log_defaults.max_message_bytes, 1_048_588);
        assert!(c.layer(Level::Broker).is_empty());
        let (v, s, _) = c.describe("message.max.bytes");
        assert_eq!((v.as_deref(), s), (Some("1048588"), ConfigSource::Default));
        let (v, s, _) = c.describe("listeners");
        assert_eq!(
            (v.as_deref(), s),
            (
                Some("PLAINTEXT://127.0.0.1:9092"),
                ConfigSource::StaticBroker
            )
        );
    }
}
