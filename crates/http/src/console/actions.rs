//! The topic page's two writes: **produce** a record and **edit the topic's configs**.
//!
//! Produce encodes one v2 batch (`weir_client::records::encode_batch`, the CLI's encoder),
//! picks the partition as the Java client's default partitioner does for a key (murmur2), or
//! the next partition in turn without one, and appends through `Partition::append` with
//! acks=all, waiting for the broker's fsync and replication as a Kafka producer's acks=all
//! would: the answer's offset is acknowledged. Config edits go through
//! `weir_broker::config_ops::incremental_alter_topic`, the code the IncrementalAlterConfigs
//! handler runs, so validation and errors are the same as a Kafka admin client gets.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_broker::config_ops::{AlterTopicError, ConfigOp};
use weir_broker::partition::{Acks, PartitionError};
use weir_broker::state::State;
use weir_client::records::encode_batch;
use weir_client::{partition_for_key, Compression, ProducerRecord};

/// How long a produce waits for replication (the Kafka producer's `request.timeout.ms`).
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest key or value taken from the form.
pub const MAX_FIELD_BYTES: usize = 1 << 20;

/// A record to produce, as the form or the JSON API gives it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProduceForm {
    /// A partition (a number in JSON, text in a form), or empty/absent for the default
    /// partitioner.
    #[serde(default)]
    pub partition: Option<serde_json::Value>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    /// One header a line, `name: value` (or `name` alone for a null value).
    #[serde(default)]
    pub headers: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Produced {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// How the partition was chosen: "given", "key hash" or "round robin".
    pub partitioner: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("bad partition {0:?}: a number or empty for automatic")]
    BadPartition(String),
    #[error("topic {topic:?} has no partition {partition} (it has {count})")]
    NoPartition {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error("bad header line {line:?}: expected 'name: value'")]
    BadHeader { line: String },
    #[error("the {what} is {len} bytes; the console takes at most 1 MiB")]
    TooLarge { what: &'static str, len: usize },
    #[error("encoding the record batch: {0}")]
    Encode(#[source] weir_client::ClientError),
    #[error("appending to partition {partition}: {source}")]
    Append {
        partition: i32,
        #[source]
        source: PartitionError,
    },
    #[error("flushing partition {partition} failed: the task panicked")]
    Task { partition: i32 },
}

impl ProduceError {
    /// The requester's fault (400), or the broker's (500).
    pub fn is_bad_request(&self) -> bool {
        !matches!(
            self,
            ProduceError::Encode(_) | ProduceError::Append { .. } | ProduceError::Task { .. }
        )
    }
}

/// Parses the headers text: one `name: value` a line; blank lines are skipped.
pub fn parse_headers(text: &str) -> Result<Vec<(String, Option<Bytes>)>, ProduceError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => Ok((
                name.trim().to_string(),
                Some(Bytes::copy_from_slice(value.trim_start().as_bytes())),
            )),
            Some(_) => Err(ProduceError::BadHeader {
                line: line.to_string(),
            }),
            None => Ok((line.to_string(), None)),
        })
        .collect()
}

/// The partition to write to: the one asked for, the key's (as the Java client's default
/// partitioner), or the next in turn.
pub fn choose_partition(
    asked: Option<&str>,
    key: Option<&[u8]>,
    count: i32,
    turn: &AtomicU32,
) -> Result<(i32, &'static str), String> {
    match asked.map(str::trim).filter(|s| !s.is_empty()) {
        Some(p) => p
            .parse::<i32>()
            .map(|p| (p, "given"))
            .map_err(|_| p.to_string()),
        None if count <= 0 => Ok((0, "given")),
        None => Ok(match key {
            Some(k) => (partition_for_key(k, count), "key hash"),
            None => {
                let n = turn.fetch_add(1, Ordering::Relaxed);
                let p = i32::try_from(n % count.unsigned_abs()).unwrap_or(0);
                (p, "round robin")
            }
        }),
    }
}

/// The counter behind "round robin" for keyless records.
pub static ROUND_ROBIN: AtomicU32 = AtomicU32::new(0);

fn field(v: &Option<String>, what: &'static str) -> Result<Option<Bytes>, ProduceError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) if s.len() > MAX_FIELD_BYTES => Err(ProduceError::TooLarge { what, len: s.len() }),
        Some(s) => Ok(Some(Bytes::copy_from_slice(s.as_bytes()))),
    }
}

/// Appends the form's record with acks=all and answers once it is acknowledged.
pub async fn produce(
    state: &State,
    topic: &str,
    form: &ProduceForm,
) -> Result<Produced, ProduceError> {
    let t = state
        .topic(topic)
        .ok_or_else(|| ProduceError::UnknownTopic(topic.to_string()))?;
    let key = field(&form.key, "key")?;
    let value = field(&form.value, "value")?;
    let headers = parse_headers(form.headers.as_deref().unwrap_or(""))?;
    let count = t.partition_count();
    let asked = match &form.partition {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let (index, partitioner) =
        choose_partition(asked.as_deref(), key.as_deref(), count, &ROUND_ROBIN)
            .map_err(ProduceError::BadPartition)?;
    let partition = t.partition(index).ok_or(ProduceError::NoPartition {
        topic: topic.to_string(),
        partition: index,
        count,
    })?;
    let record = ProducerRecord {
        key,
        value,
        headers,
        timestamp: -1,
    };
    let batch = encode_batch(&[record], Compression::None).map_err(ProduceError::Encode)?;
    let mut buf = batch.to_vec();
    let append_err = |source| ProduceError::Append {
        partition: index,
        source,
    };
    let appended = partition
        .append(&mut buf, Acks::All, state.config.durability, now_ms())
        .map_err(append_err)?;
    let offset = appended.info.last_offset;
    // The fsync the durability policy owes and the replication, as a producer's acks=all.
    appended
        .wait
        .wait(REPLICATION_TIMEOUT)
        .await
        .map_err(append_err)?;
    tracing::info!(
        topic,
        partition = index,
        offset,
        "console produced a record"
    );
    Ok(Produced {
        topic: topic.to_string(),
        partition: index,
        offset,
        partitioner,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A config edit from the topic page (one key) or the JSON API (several).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigForm {
    /// One key from the page's form.
    #[serde(default)]
    pub name: Option<String>,
    /// `set` (default), `delete` (back to the default), `append` or `subtract` (lists).
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    /// Several edits at once (JSON): `[{"name", "op", "value"}]`.
    #[serde(default)]
    pub configs: Vec<ConfigEdit>,
    /// Validate only, as `validateOnly` of IncrementalAlterConfigs: `true` in JSON, the
    /// checkbox's "true" in a form.
    #[serde(default)]
    pub validate_only: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConfigEdit {
    pub name: String,
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigsAltered {
    pub topic: String,
    pub validate_only: bool,
    /// `name op value` for each edit.
    pub applied: Vec<String>,
}

impl ConfigForm {
    /// The edits, or why the form makes none.
    pub fn ops(&self) -> Result<Vec<(String, ConfigOp)>, String> {
        let mut edits = self.configs.clone();
        if let Some(name) = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            edits.push(ConfigEdit {
                name: name.to_string(),
                op: self.op.clone(),
                value: self.value.clone(),
            });
        }
        if edits.is_empty() {
            return Err("no config named: choose a key".to_string());
        }
        edits
            .into_iter()
            .map(|e| {
                let value = e.value.unwrap_or_default();
                let op = match e.op.as_deref().map(str::trim).unwrap_or("set") {
                    "" | "set" => ConfigOp::Set(value),
                    "delete" => ConfigOp::Delete,
                    "append" => ConfigOp::Append(value),
                    "subtract" => ConfigOp::Subtract(value),
                    other => {
                        return Err(format!(
                            "bad operation {other:?}: set, delete, append or subtract"
                        ))
                    }
                };
                Ok((e.name.trim().to_string(), op))
            })
            .collect()
    }

    pub fn validate_only(&self) -> bool {
        match &self.validate_only {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => matches!(s.as_str(), "true" | "on" | "1"),
            _ => false,
        }
    }
}

/// Alters the topic's configs as IncrementalAlterConfigs would.
pub async fn alter_configs(
    state: &Arc<State>,
    topic: &str,
    form: &ConfigForm,
) -> Result<ConfigsAltered, AlterTopicError> {
    let ops = form.ops().map_err(AlterTopicError::invalid)?;
    let validate_only = form.validate_only();
    weir_broker::config_ops::incremental_alter_topic(state, topic, &ops, validate_only).await?;
    tracing::info!(topic, ?ops, validate_only, "console altered topic configs");
    Ok(ConfigsAltered {
        topic: topic.to_string(),
        validate_only,
        applied: ops.iter().map(|(k, op)| format!("{k} {op}")).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_one_a_line() {
        let h = parse_headers("src: console\n\n trace-id:  abc:1 \nflag\n").expect("headers");
        assert_eq!(
            h,
            vec![
                ("src".to_string(), Some(Bytes::from_static(b"console"))),
                ("trace-id".to_string(), Some(Bytes::from_static(b"abc:1"))),
                ("flag".to_string(), None),
            ]
        );
        assert!(matches!(
            parse_headers(": x"),
            Err(ProduceError::BadHeader { .. })
        ));
    }

    #[test]
    fn partitions_are_given_hashed_from_the_key_or_taken_in_turn() {
        let turn = AtomicU32::new(0);
        assert_eq!(
            choose_partition(Some(" 2 "), Some(b"k"), 3, &turn),
            Ok((2, "given"))
        );
        assert_eq!(
            choose_partition(Some("x"), None, 3, &turn),
            Err("x".to_string())
        );
        // The Java client's partitioner: murmur2("foobar") = -790332482.
        let expected = (-790_332_482i32 & 0x7fff_ffff) % 7;
        assert_eq!(
            choose_partition(Some(""), Some(b"foobar"), 7, &turn),
            Ok((expected, "key hash"))
        );
        let turns: Vec<i32> = (0..4)
            .map(|_| choose_partition(None, None, 3, &turn).expect("p").0)
            .collect();
        assert_eq!(turns, [0, 1, 2, 0]);
    }

    #[test]
    fn config_forms_become_incremental_operations() {
        let f = ConfigForm {
            name: Some("retention.ms".into()),
            value: Some("1000".into()),
            ..ConfigForm::default()
        };
        assert_eq!(
            f.ops().expect("ops"),
            vec![("retention.ms".to_string(), ConfigOp::Set("1000".into()))]
        );
        let f = ConfigForm {
            name: Some("cleanup.policy".into()),
            op: Some("delete".into()),
            ..ConfigForm::default()
        };
        assert_eq!(
            f.ops().expect("ops"),
            vec![("cleanup.policy".to_string(), ConfigOp::Delete)]
        );
        let bad = ConfigForm {
            name: Some("x".into()),
            op: Some("replace".into()),
            ..ConfigForm::default()
        };
        assert!(bad.ops().is_err());
        assert!(ConfigForm::default().ops().is_err());
    }
}
