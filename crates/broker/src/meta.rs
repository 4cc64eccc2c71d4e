//! Durable broker metadata: the cluster id and the topic table, as small JSON files under
//! `<data-dir>/meta/`, replaced atomically (write temp, fsync, rename, fsync dir).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A metadata file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid metadata: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One topic as persisted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    topics: Vec<TopicRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ClusterFile {
    cluster_id: String,
}

/// Paths of the metadata files.
#[derive(Debug, Clone)]
pub struct MetaStore {
    dir: PathBuf,
}

const TOPICS: &str = "topics.json";
const CLUSTER: &str = "cluster.json";
const CLEAN_SHUTDOWN: &str = "clean-shutdown";
const PRODUCER_IDS: &str = "producer-ids.json";

#[derive(Debug, Serialize, Deserialize)]
struct ProducerIdsFile {
    /// Every id below this may have been handed out.
    next_block_start: i64,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MetaError {
    let path = path.to_path_buf();
    move |source| MetaError::Io { op, path, source }
}

impl MetaStore {
    /// Opens (creating) `<data_dir>/meta`.
    pub fn open(data_dir: &Path) -> Result<MetaStore, MetaError> {
        let dir = data_dir.join("meta");
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(io("create", &dir))?;
            sync_dir(data_dir)?;
        }
        Ok(MetaStore { dir })
    }

    /// The cluster id, generated and persisted on first start.
    pub fn cluster_id(&self) -> Result<String, MetaError> {
        let path = self.dir.join(CLUSTER);
        match fs::read(&path) {
            Ok(bytes) => {
                let f: ClusterFile =
                    serde_json::from_slice(&bytes).map_err(|source| MetaError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                Ok(f.cluster_id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = short_uuid(uuid::Uuid::new_v4());
                self.write_atomic(
                    CLUSTER,
                    &ClusterFile {
                        cluster_id: id.clone(),
                    },
                )?;
                Ok(id)
            }
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    pub fn load_topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        let path = self.dir.join(TOPICS);
        match fs::read(&path) {
            Ok(bytes) => {
                let f: TopicsFile = serde_json::from_slice(&bytes)
                    .map_err(|source| MetaError::Corrupt { path, source })?;
                Ok(f.topics)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    pub fn save_topics(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        self.write_atomic(TOPICS, &TopicsFile { topics })
    }

    /// The first producer id not yet reserved (0 on a new data directory).
    pub fn producer_id_block_start(&self) -> Result<i64, MetaError> {
        let path = self.dir.join(PRODUCER_IDS);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<ProducerIdsFile>(&bytes)
                .map(|f| f.next_block_start)
                .map_err(|source| MetaError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Reserves producer ids below `end` durably, before any of them is handed out.
    pub fn reserve_producer_ids(&self, end: i64) -> Result<(), MetaError> {
        self.write_atomic(
            PRODUCER_IDS,
            &ProducerIdsFile {
                next_block_start: end,
            },
        )
    }

    /// Consumes the clean-shutdown marker: true if the last run stopped cleanly.
    pub fn take_clean_shutdown(&self) -> Result<bool, MetaError> {
        let path = self.dir.join(CLEAN_SHUTDOWN);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    /// Written last at a clean shutdown, after every log is flushed.
    pub fn mark_clean_shutdown(&self) -> Result<(), MetaError> {
        let path = self.dir.join(CLEAN_SHUTDOWN);
        let f = File::create(&path).map_err(io("create", &path))?;
        f.sync_all().map_err(io("fsync", &path))?;
        sync_dir(&self.dir)
    }

    fn write_atomic<T: Serialize>(&self, name: &str, value: &T) -> Result<(), MetaError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| MetaError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        sync_dir(&self.dir)
    }
}

/// fsync a directory so a create, rename or unlink in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), MetaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync dir", dir))
}

/// Kafka cluster ids are 22-character URL-safe base64 of a UUID.
fn short_uuid(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let v = id.as_u128();
    (0..22)
        .map(|i| {
            let shift = 128u32.saturating_sub(6 * (i + 1));
            let idx = ((v >> shift) & 0x3f) as usize;
            char::from(ALPHABET.get(idx).copied().unwrap_or(b'A'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_cluster_id_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetaStore::open(dir.path()).expect("open");
        let id = store.cluster_id().expect("id");
        assert_eq!(id.len(), 22);
        assert_eq!(store.cluster_id().expect("id again"), id);
        assert!(store.load_topics().expect("load").is_empty());
        let t = TopicRecord {
            name: "a".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: [("retention.ms".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        };
        store.save_topics(vec![t.clone()]).expect("save");
        let store = MetaStore::open(dir.path()).expect("reopen");
        assert_eq!(store.load_topics().expect("load"), vec![t]);
        assert!(!store.take_clean_shutdown().expect("take"));
        store.mark_clean_shutdown().expect("mark");
        assert!(store.take_clean_shutdown().expect("take"));
        assert!(!store.take_clean_shutdown().expect("take again"));
    }
}
