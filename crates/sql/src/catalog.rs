//! The durable catalog: `__weir_sql_catalog`, one partition, compacted. Key: the object's
//! name (one namespace, as PostgreSQL's relations); value: the JSON [`Entry`]; a tombstone on
//! DROP. Every change is on disk before the statement is answered; at start the topic is
//! replayed, last value per key.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use weir_broker::partition_access::{AccessError, PartitionAccess, PartitionHandle};
use weir_broker::state::State;

use crate::append::{append_durably, AppendError, NewRecord};
use crate::records::{PartitionReader, ReadError};

pub const CATALOG_TOPIC: &str = "__weir_sql_catalog";
const ENTRY_VERSION: u32 = 1;

/// One catalog object as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u32,
    /// Unique across the catalog's life: names internal topics and transactional ids, so a
    /// re-created name never meets its predecessor's state.
    pub id: u64,
    /// `source` (tables, views and sinks come with the streaming engine).
    pub kind: String,
    /// `creating` while its owned topics are being made, then `active`.
    pub state: String,
    /// The statement that re-creates the object (inferred columns written out).
    pub sql: String,
    pub columns: Vec<ColumnInfo>,
    pub options: BTreeMap<String, String>,
    pub depends_on: Vec<String>,
    /// A hash of the whole stream graph as printed (views and sinks).
    pub plan_fingerprint: Option<String>,
    /// A hash of the graph's state layout ([`weir_stream::layout`]): what its checkpoint
    /// was written for. Absent in entries written before it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_layout: Option<String>,
    /// When and why the pipeline's state was last reset (rebuilt from its sources after a
    /// plan change made its state unusable): shown by DESCRIBE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reset: Option<String>,
    /// A view this pipeline reads (directly or through plain views) was rebuilt: its
    /// offsets and state are of that view's old output, so it is rebuilt at its next start
    /// whatever its plan (`crate::upgrade`). Cleared by that rebuild.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild_after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub sql_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    /// Metadata columns from INCLUDE are shown by DESCRIBE as such.
    pub metadata: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("creating topic {CATALOG_TOPIC}: {0}")]
    CreateTopic(#[source] weir_broker::state::AdminError),
    #[error("topic {CATALOG_TOPIC} has no partition 0 here")]
    NoPartition,
    #[error("topic {CATALOG_TOPIC}, partition 0: {0}")]
    Access(#[source] AccessError),
    #[error("replaying {CATALOG_TOPIC}: {0}")]
    Replay(#[source] ReadError),
    #[error("catalog record of {name} at offset {offset}: {source}")]
    Decode {
        name: String,
        offset: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {CATALOG_TOPIC}: {0}")]
    Write(#[source] AppendError),
    #[error("encoding the catalog record of {name}: {source}")]
    Encode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

pub struct Catalog {
    partition: PartitionHandle,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Serialises changes: check-then-write of CREATE and DROP is atomic per catalog.
    writes: tokio::sync::Mutex<()>,
}

impl Catalog {
    /// Opens the catalog, creating its topic on first use, and replays it.
    pub async fn open(state: Arc<State>) -> Result<Catalog, CatalogError> {
        let topic = match state.topic(CATALOG_TOPIC) {
            Some(t) => t,
            None => {
                let configs =
                    BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
                state
                    .create_topic(CATALOG_TOPIC, 1, state.default_replication(), configs)
                    .await
                    .map_err(CatalogError::CreateTopic)?
            }
        };
        // A local-only fact: the engine runs on the broker that hosts the catalog's
        // partition (a broker without it retries, `service.rs`); its reads and writes then
        // go through partition access like every other partition's.
        if topic.partition(0).is_none() {
            return Err(CatalogError::NoPartition);
        }
        let partition = PartitionAccess::new(state.clone())
            .partition(&topic.name, 0)
            .map_err(CatalogError::Access)?;
        let mut entries = BTreeMap::new();
        let mut reader = PartitionReader::open(partition.clone(), 0)
            .await
            .map_err(CatalogError::Replay)?;
        while let Some(records) = reader.next_records().await.map_err(CatalogError::Replay)? {
            for r in records {
                let Some(key) = r.key else { continue };
                let name = String::from_utf8_lossy(&key).into_owned();
                match r.value {
                    None => {
                        entries.remove(&name);
                    }
                    Some(v) => {
                        let entry: Entry =
                            serde_json::from_slice(&v).map_err(|source| CatalogError::Decode {
                                name: name.clone(),
                                offset: r.offset,
                                source,
                            })?;
                        entries.insert(name, entry);
                    }
                }
            }
        }
        tracing::info!(objects = entries.len(), "SQL catalog replayed");
        Ok(Catalog {
            partition,
            entries: Mutex::new(entries),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<(String, Entry)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds off other catalog changes until the guard drops.
    pub async fn begin_change(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    /// An id above every id the catalog has seen.
    pub fn next_id(&self) -> u64 {
        self.lock().values().map(|e| e.id + 1).max().unwrap_or(1)
    }

    /// A new entry of this catalog's version.
    pub fn new_entry(
        &self,
        kind: &str,
        sql: String,
        columns: Vec<ColumnInfo>,
        options: BTreeMap<String, String>,
    ) -> Entry {
        Entry {
            version: ENTRY_VERSION,
            id: self.next_id(),
            kind: kind.to_string(),
            state: "active".to_string(),
            sql,
            columns,
            options,
            depends_on: Vec::new(),
            plan_fingerprint: None,
            state_layout: None,
            state_reset: None,
            rebuild_after: None,
        }
    }

    /// Writes `entry` under `name`, durably, then makes it visible.
    pub async fn put(&self, name: &str, entry: Entry) -> Result<(), CatalogError> {
        let value = serde_json::to_vec(&entry).map_err(|source| CatalogError::Encode {
            name: name.to_string(),
            source,
        })?;
        self.write(name, Some(value)).await?;
        self.lock().insert(name.to_string(), entry);
        Ok(())
    }

    /// Writes the tombstone of `name`, durably, then forgets it.
    pub async fn remove(&self, name: &str) -> Result<(), CatalogError> {
        self.write(name, None).await?;
        self.lock().remove(name);
        Ok(())
    }

    /// Writes several changes (an entry, or `None` for a tombstone) in one batch, so they
    /// are on disk together or not at all (a rename: the new name, the old one's
    /// tombstone and every rewritten reader), then makes them visible.
    pub async fn apply(&self, changes: Vec<(String, Option<Entry>)>) -> Result<(), CatalogError> {
        let mut records = Vec::with_capacity(changes.len());
        for (name, entry) in &changes {
            let value = entry
                .as_ref()
                .map(|e| {
                    serde_json::to_vec(e).map_err(|source| CatalogError::Encode {
                        name: name.clone(),
                        source,
                    })
                })
                .transpose()?;
            records.push(NewRecord {
                key: Some(name.as_bytes().to_vec()),
                value,
                headers: Vec::new(),
            });
        }
        append_durably(&self.partition, &records)
            .await
            .map_err(CatalogError::Write)?;
        let mut entries = self.lock();
        for (name, entry) in changes {
            match entry {
                Some(e) => entries.insert(name, e),
                None => entries.remove(&name),
            };
        }
        Ok(())
    }

    async fn write(&self, name: &str, value: Option<Vec<u8>>) -> Result<(), CatalogError> {
        let record = NewRecord {
            key: Some(name.as_bytes().to_vec()),
            value,
            headers: Vec::new(),
        };
        append_durably(&self.partition, &[record])
            .await
            .map_err(CatalogError::Write)?;
        Ok(())
    }
}
