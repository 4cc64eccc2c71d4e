//! The ACLs, durable in `<data-dir>/meta/acls.json` on a single node; in cluster mode a
//! mirror of the metadata image's ACLs ([`AclStore::replace_replicated`]), which the
//! metadata log keeps durable, and the file is not used.
//!
//! A change is written (temp file, fsync, rename, fsync dir) before it is applied in memory
//! and answered, so an acknowledged CreateAcls or DeleteAcls survives kill -9. A failed write
//! poisons the store: the file may or may not hold the change, so no later change is
//! accepted (checks keep using the ACLs in memory) until a restart reads the file again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::{AclBinding, AclFilter, AclIndex};
use crate::security::meta_file::{self, MetaFileError};

const FILE: &str = "acls.json";

#[derive(Debug, thiserror::Error)]
pub enum AclsError {
    #[error("the ACLs: {0}")]
    File(#[from] MetaFileError),
    #[error("the ACL write task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("an earlier write of the ACLs failed; restart the broker to reload them")]
    Poisoned,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AclsFile {
    acls: BTreeSet<AclBinding>,
}

#[derive(Debug, Default)]
struct Current {
    acls: BTreeSet<AclBinding>,
    index: Arc<AclIndex>,
}

#[derive(Debug)]
pub struct AclStore {
    /// `<data-dir>/meta`.
    dir: PathBuf,
    current: RwLock<Current>,
    /// Serializes changes so two never interleave their file writes.
    write: tokio::sync::Mutex<()>,
    poisoned: AtomicBool,
}

impl AclStore {
    /// Loads `<data_dir>/meta/acls.json` (none yet: no ACLs).
    pub fn open(data_dir: &Path) -> Result<AclStore, AclsError> {
        let dir = data_dir.join("meta");
        let acls = meta_file::load::<AclsFile>(&dir, FILE)?
            .map(|f| f.acls)
            .unwrap_or_default();
        Ok(AclStore {
            dir,
            current: RwLock::new(Current {
                index: Arc::new(AclIndex::new(&acls)),
                acls,
            }),
            write: tokio::sync::Mutex::new(()),
            poisoned: AtomicBool::new(false),
        })
    }

    /// The index checks run against (cheap to clone; replaced whole on a change).
    pub fn index(&self) -> Arc<AclIndex> {
        self.read().index.clone()
    }

    /// The ACLs `filter` selects, in a stable order.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.read()
            .acls
            .iter()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().acls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cluster mode: the ACLs become exactly `acls` (the metadata image's), in memory only:
    /// the metadata log is their durable home and replays them at start.
    pub fn replace_replicated(&self, acls: BTreeSet<AclBinding>) {
        let index = Arc::new(AclIndex::new(&acls));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Current { acls, index };
    }

    /// Adds `acls` (already validated); one that exists already is not an error, as Kafka.
    pub async fn create(&self, acls: Vec<AclBinding>) -> Result<(), AclsError> {
        self.change(|set| {
            for a in acls {
                set.insert(a);
            }
        })
        .await
    }

    /// Removes what each filter selects and returns, per filter, the ACLs it removed (an
    /// ACL two filters select is reported under both, as Kafka).
    pub async fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, AclsError> {
        let mut removed = Vec::new();
        self.change(|set| {
            removed = filters
                .iter()
                .map(|f| set.iter().filter(|a| f.matches(a)).cloned().collect())
                .collect();
            set.retain(|a| !filters.iter().any(|f| f.matches(a)));
        })
        .await?;
        Ok(removed)
    }

    async fn change(&self, f: impl FnOnce(&mut BTreeSet<AclBinding>)) -> Result<(), AclsError> {
        let _writing = self.write.lock().await;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(AclsError::Poisoned);
        }
        let mut next = self.read().acls.clone();
        f(&mut next);
        if next == self.read().acls {
            return Ok(());
        }
        let dir = self.dir.clone();
        let file = AclsFile { acls: next };
        let saved =
            tokio::task::spawn_blocking(move || meta_file::save(&dir, FILE, &file).map(|()| file))
                .await;
        let file = match saved {
            Ok(Ok(file)) => file,
            Ok(Err(e)) => {
                self.poisoned.store(true, Ordering::Release);
                return Err(e.into());
            }
            Err(e) => {
                self.poisoned.store(true, Ordering::Release);
                return Err(e.into());
            }
        };
        let index = Arc::new(AclIndex::new(&file.acls));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Current {
            acls: file.acls,
            index,
        };
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AclOperation, PatternType, Permission, ResourceType};
    use super::*;

    fn binding(name: &str, who: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern: PatternType::Literal,
            principal: who.into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: Permission::Allow,
        }
    }

    #[tokio::test]
    async fn changes_persist_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AclStore::open(dir.path()).expect("open");
        store
            .create(vec![
                binding("a", "User:x"),
                binding("b", "User:y"),
                binding("a", "User:x"),
            ])
            .await
            .expect("create");
        assert_eq!(store.len(), 2);
        let by_y = AclFilter::from_wire(1, None, 1, Some("User:y"), None, 1, 1).expect("filter");
        let removed = store.delete(&[by_y.clone(), by_y]).await.expect("delete");
        assert_eq!(
            removed,
            vec![vec![binding("b", "User:y")], vec![binding("b", "User:y")]]
        );
        let reopened = AclStore::open(dir.path()).expect("reopen");
        let all = AclFilter::from_wire(1, None, 1, None, None, 1, 1).expect("filter");
        assert_eq!(reopened.describe(&all), vec![binding("a", "User:x")]);
    }

    #[test]
    fn replicated_acls_replace_the_index_without_touching_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AclStore::open(dir.path()).expect("open");
        let a = binding("a", "User:x");
        // Through the metadata record's shape and back, as the publisher receives it.
        let back = AclBinding::from_entry(&a.to_entry()).expect("valid");
        assert_eq!(back, a);
        store.replace_replicated([back].into_iter().collect());
        let all = AclFilter::everything();
        assert_eq!(store.describe(&all), vec![a.clone()]);
        assert!(!dir.path().join("meta").join(FILE).exists());
        store.replace_replicated(BTreeSet::new());
        assert!(store.is_empty());
        // A record with a code this version does not know is refused, not guessed at.
        let mut unknown = a.to_entry();
        unknown.operation = 99;
        assert!(AclBinding::from_entry(&unknown).is_err());
    }

    #[tokio::test]
    async fn a_failed_write_poisons() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AclStore::open(dir.path()).expect("open");
        // `meta` as a file: the directory cannot be made.
        std::fs::write(dir.path().join("meta"), b"x").expect("block");
        assert!(store.create(vec![binding("a", "User:x")]).await.is_err());
        assert!(store.is_empty());
        std::fs::remove_file(dir.path().join("meta")).expect("unblock");
        assert!(matches!(
            store.create(vec![binding("a", "User:x")]).await,
            Err(AclsError::Poisoned)
        ));
    }
}
