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
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    /// Cluster mode: the block of producer ids the metadata quorum handed this broker is used
    /// up and no new one came (no active controller, this broker fenced). Retriable.
    #[error("no producer-id block from the metadata quorum: {0}")]
    NoProducerIds(String),
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

/// Broker configs altered at run time (AlterConfigs on the BROKER resource).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DynamicBrokerConfigs {
    /// The cluster-wide default (resource name "").
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
    /// Per broker, by node id.
    #[serde(default)]
    pub per_broker: BTreeMap<String, BTreeMap<String, String>>,
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
const BROKER_CONFIGS: &str = "broker-configs.json";
/// Space set aside for the topic-table write of a topic deletion on a full disk.
const RESERVE: &str = "reserved-space";
/// Enough for a topic table of several thousand topics.
pub const RESERVE_BYTES: u64 = 1 << 20;

/// The file system of `dir`: (total bytes, bytes available to an unprivileged writer). One
/// place for DescribeLogDirs, the free-space gauge and readiness.
pub fn fs_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::statvfs(dir)?;
    let fragment = st.f_frsize;
    Ok((
        st.f_blocks.saturating_mul(fragment),
        st.f_bavail.saturating_mul(fragment),
    ))
}

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
            Ok(bytes) => decode_cluster_id(&bytes).map_err(|source| MetaError::Corrupt {
                path: path.clone(),
                source,
            }),
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
                decode_topics(&bytes).map_err(|source| MetaError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    pub fn save_topics(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        self.write_atomic(TOPICS, &TopicsFile { topics })
    }

    /// Broker configs altered at run time (none on a new data directory).
    pub fn load_broker_configs(&self) -> Result<DynamicBrokerConfigs, MetaError> {
        let path = self.dir.join(BROKER_CONFIGS);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| MetaError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(DynamicBrokerConfigs::default())
            }
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    pub fn save_broker_configs(&self, configs: &DynamicBrokerConfigs) -> Result<(), MetaError> {
        self.write_atomic(BROKER_CONFIGS, configs)
    }

    /// The first producer id not yet reserved (0 on a new data directory).
    pub fn producer_id_block_start(&self) -> Result<i64, MetaError> {
        let path = self.dir.join(PRODUCER_IDS);
        match fs::read(&path) {
            Ok(bytes) => {
                decode_producer_ids(&bytes).map_err(|source| MetaError::Corrupt { path, source })
            }
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

    /// Saves the topic table for a change that frees space (a topic deletion). On a full
    /// disk it releases the reserved space (see [`Self::ensure_reserve`]) and tries again,
    /// so that deleting a topic can always make room.
    pub fn save_topics_to_free_space(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        let file = TopicsFile { topics };
        match self.write_atomic(TOPICS, &file) {
            Err(e) if e.is_disk_full() && self.release_reserve() => {
                self.write_atomic(TOPICS, &file)
            }
            other => other,
        }
    }

    /// Makes sure `meta/reserved-space` holds [`RESERVE_BYTES`] of real (not sparse) bytes:
    /// space set aside so that a topic can still be deleted when the disk is full. Best
    /// effort (a full disk at start leaves it short; it is retried at the next start).
    pub fn ensure_reserve(&self) {
        let path = self.dir.join(RESERVE);
        if fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES) {
            return;
        }
        let written = File::create(&path).and_then(|mut f| {
            f.write_all(&vec![0u8; RESERVE_BYTES as usize])?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            tracing::warn!(path = %path.display(), error = %e, "could not reserve space for deleting topics on a full disk");
        }
    }

    /// Frees the reserved space; false if there was none.
    fn release_reserve(&self) -> bool {
        let path = self.dir.join(RESERVE);
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::error!(path = %path.display(), "disk full: released the reserved space to delete a topic");
                true
            }
            Err(_) => false,
        }
    }

    fn write_atomic<T: Serialize>(&self, name: &str, value: &T) -> Result<(), MetaError> {
        let path = self.dir.join(name);
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| MetaError::Corrupt {
            path: path.clone(),
            source,
        })?;
        weir_storage::write_atomically(&self.dir, name, &bytes)?;
        Ok(())
    }
}

impl MetaError {
    /// True when the disk (or a quota) is full: ENOSPC or EDQUOT.
    pub fn is_disk_full(&self) -> bool {
        match self {
            MetaError::Io { source, .. } => matches!(source.raw_os_error(), Some(28 | 122)),
            MetaError::Storage(e) => e.is_disk_full(),
            MetaError::Corrupt { .. } | MetaError::NoProducerIds(_) => false,
        }
    }
}

/// Decodes `topics.json`.
pub fn decode_topics(bytes: &[u8]) -> Result<Vec<TopicRecord>, serde_json::Error> {
    serde_json::from_slice::<TopicsFile>(bytes).map(|f| f.topics)
}

/// Encodes `topics.json` as [`MetaStore::save_topics`] writes it.
pub fn encode_topics(topics: Vec<TopicRecord>) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec_pretty(&TopicsFile { topics })
}

/// Decodes `cluster.json` into the cluster id.
pub fn decode_cluster_id(bytes: &[u8]) -> Result<String, serde_json::Error> {
    serde_json::from_slice::<ClusterFile>(bytes).map(|f| f.cluster_id)
}

/// Decodes `broker-configs.json`.
pub fn decode_broker_configs(bytes: &[u8]) -> Result<DynamicBrokerConfigs, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Decodes `producer-ids.json` into the first producer id not yet reserved.
pub fn decode_producer_ids(bytes: &[u8]) -> Result<i64, serde_json::Error> {
    serde_json::from_slice::<ProducerIdsFile>(bytes).map(|f| f.next_block_start)
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
    fn leftover_or_truncated_temp_files_do_not_break_start_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetaStore::open(dir.path()).expect("open");
        let id = store.cluster_id().expect("id");
        let t = TopicRecord {
            name: "kept".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 2,
            configs: BTreeMap::new(),
        };
        store.save_topics(vec![t.clone()]).expect("save");
        let whole = serde_json::to_vec_pretty(&TopicsFile {
            topics: vec![t.clone(), t.clone()],
        })
        .expect("encode");
        // A crash mid-write leaves a temp file: whole, cut anywhere, or empty. Start-up reads
        // only the renamed files and the next write replaces the temp file.
        for cut in [0, 1, whole.len() / 2, whole.len()] {
            for name in [TOPICS, CLUSTER, PRODUCER_IDS, BROKER_CONFIGS] {
                let tmp = dir.path().join("meta").join(format!("{name}.tmp"));
                fs::write(&tmp, &whole[..cut]).expect("leftover");
            }
            let store = MetaStore::open(dir.path()).expect("reopen");
            assert_eq!(store.cluster_id().expect("id"), id, "cut {cut}");
            assert_eq!(
                store.load_topics().expect("load"),
                vec![t.clone()],
                "cut {cut}"
            );
            assert_eq!(store.producer_id_block_start().expect("ids"), 0);
            store
                .save_topics(vec![t.clone()])
                .expect("save over a leftover");
            store
                .reserve_producer_ids(0)
                .expect("reserve over a leftover");
        }
    }

    #[test]
    fn reserve_is_real_bytes_and_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetaStore::open(dir.path()).expect("open");
        store.ensure_reserve();
        let path = dir.path().join("meta").join(RESERVE);
        assert_eq!(fs::metadata(&path).expect("reserve").len(), RESERVE_BYTES);
        assert!(store.release_reserve());
        assert!(!store.release_reserve());
        store.save_topics_to_free_space(Vec::new()).expect("save");
        store.ensure_reserve();
        assert!(path.exists());
    }

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
        assert_eq!(
            store.load_broker_configs().expect("none yet"),
            DynamicBrokerConfigs::default()
        );
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic
            .cluster_default
            .insert("log.retention.ms".into(), "5".into());
        dynamic.per_broker.insert(
            "0".into(),
            [("message.max.bytes".to_string(), "100".to_string())]
                .into_iter()
                .collect(),
        );
        store.save_broker_configs(&dynamic).expect("save");
        assert_eq!(
            MetaStore::open(dir.path())
                .expect("reopen")
                .load_broker_configs()
                .expect("load"),
            dynamic
        );
        assert!(!store.take_clean_shutdown().expect("take"));
        store.mark_clean_shutdown().expect("mark");
        assert!(store.take_clean_shutdown().expect("take"));
        assert!(!store.take_clean_shutdown().expect("take again"));
    }
}
