//! `weir.sql.*` settings: the SQL service's part of the broker's layered configuration
//! (TOML file, `WEIR_SQL_*` environment, `--set`, flags), handed over by the CLI.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The keys this module reads, with their defaults and meaning.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "weir.sql.listen",
        "127.0.0.1:4566",
        "HOST:PORT of the PostgreSQL-wire SQL listener; empty disables SQL",
    ),
    (
        "weir.sql.max.connections",
        "100",
        "SQL connections served at once; more wait in the listen backlog",
    ),
    (
        "weir.sql.query.memory.bytes",
        "268435456",
        "memory pool of each ad-hoc query (sorts, aggregates, joins)",
    ),
    (
        "weir.sql.schema.sample.records",
        "1000",
        "records sampled per partition to infer a source's columns",
    ),
    (
        "weir.sql.checkpoint.interval.ms",
        "1000",
        "how often each view's and sink's pipeline commits an epoch (its output, dead letters \
         and source offsets in one transaction)",
    ),
    (
        "weir.sql.threads",
        "1",
        "worker threads of the streaming engine's own runtime; with 2 or more a pipeline's \
         source stage (reading, decoding) runs in parallel with its operators",
    ),
    (
        "weir.sql.hop.panes",
        "true",
        "plan a HOP aggregate grouped by its window bounds in panes of the slide (each row one \
         group update); false plans it as the union of its windows (a row per window), as \
         views created before panes were planned",
    ),
    (
        "weir.sql.shared.aggregates",
        "true",
        "two aggregates of one query over the same input and GROUP BY run as one operator; \
         false plans each apart, as views created before sharing were planned",
    ),
    (
        "weir.sql.pipeline.memory.max.bytes",
        "268435456",
        "bytes of operator state and pending output each view's or sink's pipeline may hold; \
         over it the pipeline fails (the broker and other pipelines go on)",
    ),
];

/// Whether `key` is one of the SQL service's keys.
pub fn is_key(key: &str) -> bool {
    KEYS.iter().any(|(k, _, _)| *k == key)
}

/// The SQL service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlConfig {
    /// `None`: the SQL listener is disabled.
    pub listen: Option<String>,
    pub max_connections: usize,
    pub query_memory_bytes: usize,
    pub schema_sample_records: usize,
    /// `weir.sql.checkpoint.interval.ms`.
    pub checkpoint_interval_ms: usize,
    /// `weir.sql.pipeline.memory.max.bytes`.
    pub pipeline_memory_max_bytes: usize,
    /// `weir.sql.threads`.
    pub threads: usize,
    /// `weir.sql.hop.panes`.
    pub hop_panes: bool,
    /// `weir.sql.shared.aggregates`.
    pub shared_aggregates: bool,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            listen: Some("127.0.0.1:4566".to_string()),
            max_connections: 100,
            query_memory_bytes: 256 << 20,
            schema_sample_records: 1000,
            checkpoint_interval_ms: 1000,
            pipeline_memory_max_bytes: 256 << 20,
            threads: 1,
            hop_panes: true,
            shared_aggregates: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqlConfigError {
    #[error("{key}: {value:?} is not a valid {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: &'static str,
    },
}

impl SqlConfig {
    /// How the planner plans what several parts of a query compute alike.
    pub fn plan_options(&self) -> crate::plan::PlanOptions {
        crate::plan::PlanOptions {
            hop_panes: self.hop_panes,
            shared_aggregates: self.shared_aggregates,
        }
    }

    /// Reads the `weir.sql.*` pairs of `raw` (other keys are ignored). Returns the config and
    /// the `weir.sql.*` keys it does not know, for the caller to warn about.
    pub fn from_pairs(
        raw: &BTreeMap<String, String>,
    ) -> Result<(SqlConfig, Vec<String>), SqlConfigError> {
        let mut config = SqlConfig::default();
        let mut unknown = Vec::new();
        for (key, value) in raw.iter().filter(|(k, _)| k.starts_with("weir.sql.")) {
            let value = value.trim();
            match key.as_str() {
                "weir.sql.listen" => {
                    config.listen = if value.is_empty() {
                        None
                    } else {
                        check_host_port(key, value)?;
                        Some(value.to_string())
                    }
                }
                "weir.sql.max.connections" => config.max_connections = positive(key, value)?,
                "weir.sql.query.memory.bytes" => config.query_memory_bytes = positive(key, value)?,
                "weir.sql.schema.sample.records" => {
                    config.schema_sample_records = positive(key, value)?
                }
                "weir.sql.checkpoint.interval.ms" => {
                    config.checkpoint_interval_ms = positive(key, value)?
                }
                "weir.sql.pipeline.memory.max.bytes" => {
                    config.pipeline_memory_max_bytes = positive(key, value)?
                }
                "weir.sql.threads" => config.threads = positive(key, value)?,
                "weir.sql.hop.panes" => config.hop_panes = boolean(key, value)?,
                "weir.sql.shared.aggregates" => config.shared_aggregates = boolean(key, value)?,
                _ => unknown.push(key.clone()),
            }
        }
        Ok((config, unknown))
    }
}

fn positive(key: &str, value: &str) -> Result<usize, SqlConfigError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| SqlConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            expected: "positive integer",
        })
}

fn boolean(key: &str, value: &str) -> Result<bool, SqlConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err(SqlConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            expected: "boolean (true or false)",
        }),
    }
}

fn check_host_port(key: &str, value: &str) -> Result<(), SqlConfigError> {
    let ok = value.parse::<SocketAddr>().is_ok()
        || value
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(SqlConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            expected: "HOST:PORT",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_overrides_and_unknown_keys() {
        let (c, unknown) = SqlConfig::from_pairs(&pairs(&[])).expect("defaults");
        assert_eq!(c, SqlConfig::default());
        assert!(unknown.is_empty());
        let (c, unknown) = SqlConfig::from_pairs(&pairs(&[
            ("weir.sql.listen", "0.0.0.0:15432"),
            ("weir.sql.max.connections", "7"),
            ("weir.sql.checkpoint.interval.ms", "250"),
            ("weir.sql.threads", "2"),
            ("weir.sql.bogus", "1"),
            ("log.retention.ms", "5"),
        ]))
        .expect("config");
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:15432"));
        assert_eq!(c.max_connections, 7);
        assert_eq!(c.checkpoint_interval_ms, 250);
        assert_eq!(c.threads, 2);
        assert_eq!(unknown, vec!["weir.sql.bogus".to_string()]);
    }

    #[test]
    fn empty_listen_disables_and_bad_values_are_refused() {
        let (c, _) = SqlConfig::from_pairs(&pairs(&[("weir.sql.listen", "")])).expect("ok");
        assert_eq!(c.listen, None);
        assert!(SqlConfig::from_pairs(&pairs(&[("weir.sql.listen", "nope")])).is_err());
        assert!(SqlConfig::from_pairs(&pairs(&[("weir.sql.max.connections", "0")])).is_err());
        assert!(SqlConfig::from_pairs(&pairs(&[("weir.sql.threads", "0")])).is_err());
        assert!(is_key("weir.sql.listen"));
        assert!(is_key("weir.sql.hop.panes") && is_key("weir.sql.shared.aggregates"));
        assert!(!is_key("weir.sql.nope"));
    }
}
