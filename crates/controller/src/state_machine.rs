//! The state machine (§4.3): the `MetadataImage`, the last applied log id and the last
//! membership, in memory. Applying publishes `(index, image, change)` to subscribers; the
//! persistent side is the snapshot, JSON files under `meta/cluster-metadata-snapshots/`.
// openraft's traits return its `StorageError`, large as it is.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use weir_metadata::{MetadataDelta, MetadataImage};
use weir_storage::write_atomically;

use crate::types::{
    Entry, LogId, NodeId, NodeInfo, RaftStorageError, StoredMembership, TypeConfig,
};

pub const SNAPSHOT_DIR: &str = "cluster-metadata-snapshots";
/// Snapshot files kept: the newest, and the one before in case the newest is damaged.
const SNAPSHOTS_KEPT: usize = 2;

/// What one applied entry changed.
#[derive(Clone, Debug)]
pub enum Change {
    Delta(Box<MetadataDelta>),
    /// A snapshot replaced the image: reconcile everything against it.
    Reset,
}

/// One applied entry, as subscribers see it.
#[derive(Clone, Debug)]
pub struct Applied {
    pub index: u64,
    pub image: Arc<MetadataImage>,
    pub change: Change,
}

/// A snapshot file's content.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotFile {
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    pub(crate) image: MetadataImage,
}

struct SmState {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    subscribers: Vec<mpsc::UnboundedSender<Applied>>,
}

struct Inner {
    dir: PathBuf,
    state: Mutex<SmState>,
    /// `(last applied index + 1, image)`: 0 until something is applied.
    applied: watch::Sender<(u64, Arc<MetadataImage>)>,
}

/// openraft's state machine; clones share it (the node reads the image through one).
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

fn sm_err(e: impl std::error::Error + 'static) -> RaftStorageError {
    StorageIOError::write_state_machine(&e).into()
}

fn snapshot_name(log_id: Option<&LogId>) -> String {
    match log_id {
        Some(id) => format!("{}-{}.json", id.index, id.leader_id.term),
        None => "none.json".to_string(),
    }
}

/// Snapshot files, newest first (by index, then term).
fn snapshot_files(dir: &Path) -> Vec<(u64, u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json")?;
            let (index, term) = stem.split_once('-')?;
            Some((index.parse().ok()?, term.parse().ok()?, e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
    files
}

impl StateMachine {
    /// Loads the newest valid snapshot under `meta_dir` (a damaged one falls back to the
    /// older); openraft re-applies the log after it.
    pub fn open(meta_dir: &Path) -> Result<StateMachine, crate::ControllerError> {
        let dir = meta_dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::ControllerError::io(format!("creating {}", dir.display()), e))?;
        let mut loaded = None;
        for (_, _, path) in snapshot_files(&dir) {
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<SnapshotFile>(&b).map_err(|e| e.to_string()))
            {
                Ok(file) => {
                    loaded = Some(file);
                    break;
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), error, "skipping damaged metadata snapshot")
                }
            }
        }
        let file = loaded.unwrap_or(SnapshotFile {
            last_applied: None,
            membership: StoredMembership::default(),
            image: MetadataImage::new(),
        });
        let image = Arc::new(file.image);
        let next = file.last_applied.map_or(0, |l| l.index + 1);
        let (applied, _) = watch::channel((next, image.clone()));
        Ok(StateMachine {
            inner: Arc::new(Inner {
                dir,
                state: Mutex::new(SmState {
                    image,
                    last_applied: file.last_applied,
                    membership: file.membership,
                    subscribers: Vec::new(),
                }),
                applied,
            }),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.applied.borrow().1.clone()
    }

    /// `(last applied index + 1, image)`, watched.
    pub fn applied(&self) -> watch::Receiver<(u64, Arc<MetadataImage>)> {
        self.inner.applied.subscribe()
    }

    /// Every entry applied from now on, in order, never skipped.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Applied> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut st) = self.inner.state.lock() {
            st.subscribers.push(tx);
        }
        rx
    }

    fn publish(&self, st: &mut SmState, applied: Applied) {
        st.subscribers.retain(|tx| tx.send(applied.clone()).is_ok());
        self.inner
            .applied
            .send_replace((applied.index + 1, applied.image));
    }

    fn snapshot_of(&self) -> Result<(SnapshotMeta<NodeId, NodeInfo>, Vec<u8>), RaftStorageError> {
        let (meta, file) = {
            let st = self
                .inner
                .state
                .lock()
                .map_err(|_| sm_err(std::io::Error::other("poisoned")))?;
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.membership.clone(),
                snapshot_id: snapshot_name(st.last_applied.as_ref()),
            };
            let file = SnapshotFile {
                last_applied: st.last_applied,
                membership: st.membership.clone(),
                image: (*st.image).clone(),
            };
            (meta, file)
        };
        let bytes = serde_json::to_vec(&file).map_err(sm_err)?;
        Ok((meta, bytes))
    }

    fn store_snapshot(&self, name: &str, bytes: &[u8]) -> Result<(), RaftStorageError> {
        write_atomically(&self.inner.dir, name, bytes).map_err(sm_err)?;
        for (_, _, old) in snapshot_files(&self.inner.dir)
            .into_iter()
            .skip(SNAPSHOTS_KEPT)
        {
            if let Err(e) = std::fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), error = %e, "cannot remove an old metadata snapshot");
            }
        }
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, RaftStorageError> {
        let (meta, bytes) = self.snapshot_of()?;
        let this = self.clone();
        let name = meta.snapshot_id.clone();
        let data = bytes.clone();
        tokio::task::spawn_blocking(move || this.store_snapshot(&name, &data))
            .await
            .map_err(sm_err)??;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = bytes.len(), "metadata snapshot written");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), RaftStorageError> {
        let st = self
            .inner
            .state
            .lock()
            .map_err(|_| sm_err(std::io::Error::other("poisoned")))?;
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut st = self
            .inner
            .state
            .lock()
            .map_err(|_| sm_err(std::io::Error::other("poisoned")))?;
        for entry in entries {
            st.last_applied = Some(entry.log_id);
            let mut delta = MetadataDelta::default();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(records) => {
                    // Applied to a copy: a batch the image refuses is void as a whole, on
                    // every node alike (the controller decided it on a diverged image).
                    let mut next = (*st.image).clone();
                    match next.apply_all(&records) {
                        Ok(d) => {
                            delta = d;
                            st.image = Arc::new(next);
                        }
                        Err(error) => tracing::error!(
                            index = entry.log_id.index,
                            %error,
                            "metadata entry refused by the image; skipped"
                        ),
                    }
                }
                EntryPayload::Membership(m) => {
                    st.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            let applied = Applied {
                index: entry.log_id.index,
                image: st.image.clone(),
                change: Change::Delta(Box::new(delta)),
            };
            self.publish(&mut st, applied);
            out.push(());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(sm_err)?;
        let this = self.clone();
        let name = snapshot_name(meta.last_log_id.as_ref());
        let data = bytes.clone();
        tokio::task::spawn_blocking(move || this.store_snapshot(&name, &data))
            .await
            .map_err(sm_err)??;
        let mut st = self
            .inner
            .state
            .lock()
            .map_err(|_| sm_err(std::io::Error::other("poisoned")))?;
        st.image = Arc::new(file.image);
        st.last_applied = meta.last_log_id;
        st.membership = meta.last_membership.clone();
        tracing::info!(snapshot = %meta.snapshot_id, "metadata snapshot installed");
        let applied = Applied {
            index: meta.last_log_id.map_or(0, |l| l.index),
            image: st.image.clone(),
            change: Change::Reset,
        };
        self.publish(&mut st, applied);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, RaftStorageError> {
        let Some((_, _, path)) = snapshot_files(&self.inner.dir).into_iter().next() else {
            return Ok(None);
        };
        let bytes = std::fs::read(&path).map_err(sm_err)?;
        let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(sm_err)?;
        let meta = SnapshotMeta {
            last_log_id: file.last_applied,
            last_membership: file.membership,
            snapshot_id: snapshot_name(file.last_applied.as_ref()),
        };
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
