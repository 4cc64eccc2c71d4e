//! Coordinator shards that follow a partition's leadership (design §7.1, §7.2): the part the
//! group coordinator (`__consumer_offsets`) and the transaction coordinator
//! (`__transaction_state`) share.
//!
//! The publisher reports every role it gives a shard partition here. A leadership under a
//! new leader epoch starts a load (the slot answers COORDINATOR_LOAD_IN_PROGRESS meanwhile):
//! the caller's loader replays the partition's log on the blocking pool, retried every
//! second while it fails and the slot still waits for that epoch, and the loaded shard is
//! served from then on. Any other role, or the replica's removal, unloads the shard
//! (NOT_COORDINATOR from then on, as for a key whose partition is led elsewhere).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use weir_coordinator::ErrorCode;

use crate::partition::{Partition, Role};

/// A coordinator loaded from one shard partition.
pub trait Shard: Send + Sync + 'static {
    /// Stops serving: the partition is no longer led here under the loaded epoch.
    fn unload(&self);
}

enum Slot<T> {
    /// Replaying the partition's log for this leader epoch.
    Loading(i32),
    Loaded(i32, Arc<T>),
}

impl<T> Slot<T> {
    fn epoch(&self) -> i32 {
        match self {
            Slot::Loading(e) | Slot::Loaded(e, _) => *e,
        }
    }
}

/// The shards of one internal topic led here, by partition.
pub struct Shards<T> {
    /// What the shards coordinate, for the log ("group", "transaction").
    what: &'static str,
    slots: RwLock<BTreeMap<i32, Slot<T>>>,
}

impl<T: Shard> Shards<T> {
    pub fn new(what: &'static str) -> Shards<T> {
        Shards {
            what,
            slots: RwLock::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<i32, Slot<T>>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<i32, Slot<T>>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard of partition `index` when it is served here; else NOT_COORDINATOR, or
    /// COORDINATOR_LOAD_IN_PROGRESS while it loads.
    pub fn get(&self, index: i32) -> Result<Arc<T>, ErrorCode> {
        match self.read().get(&index) {
            Some(Slot::Loaded(_, shard)) => Ok(shard.clone()),
            Some(Slot::Loading(_)) => Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            None => Err(ErrorCode::NOT_COORDINATOR),
        }
    }

    /// [`Shards::get`], except that a partition with no slot answers
    /// COORDINATOR_LOAD_IN_PROGRESS when its shard is `pending` here
    /// ([`crate::cluster::ImageCell::shard_pending`]).
    pub fn get_or_pending(&self, index: i32, pending: bool) -> Result<Arc<T>, ErrorCode> {
        match self.get(index) {
            Err(ErrorCode::NOT_COORDINATOR) if pending => {
                Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
            }
            other => other,
        }
    }

    /// Every shard served here.
    pub fn loaded(&self) -> Vec<Arc<T>> {
        self.read()
            .values()
            .filter_map(|s| match s {
                Slot::Loaded(_, shard) => Some(shard.clone()),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    /// The publisher gave partition `index` a role here: a leadership under a new epoch
    /// loads its shard with `load` (replacing one of an older epoch), any other role
    /// unloads. `serve` runs once the shard is loaded, before any request reaches it.
    pub fn partition_role<L, S>(
        self: &Arc<Self>,
        index: i32,
        partition: &Arc<Partition>,
        load: L,
        serve: S,
    ) where
        L: Fn(Arc<Partition>, i32) -> Result<T, String> + Send + Sync + 'static,
        S: FnOnce(&Arc<T>) + Send + 'static,
    {
        if partition.role() != Role::Leader {
            self.unload(index);
            return;
        }
        let epoch = partition.leader_epoch();
        {
            let mut slots = self.write();
            if slots.get(&index).is_some_and(|s| s.epoch() == epoch) {
                return;
            }
            if let Some(Slot::Loaded(_, old)) = slots.insert(index, Slot::Loading(epoch)) {
                old.unload();
            }
        }
        tracing::info!(
            partition = index,
            leader_epoch = epoch,
            "loading a {} coordinator shard",
            self.what
        );
        let shards = self.clone();
        let partition = partition.clone();
        tokio::spawn(async move {
            shards
                .load(index, epoch, partition, Arc::new(load), serve)
                .await
        });
    }

    /// Replays the shard's log on the blocking pool, retrying a failed replay while the
    /// leadership lasts, and serves it once loaded.
    async fn load<L, S>(
        self: Arc<Self>,
        index: i32,
        epoch: i32,
        partition: Arc<Partition>,
        load: Arc<L>,
        serve: S,
    ) where
        L: Fn(Arc<Partition>, i32) -> Result<T, String> + Send + Sync + 'static,
        S: FnOnce(&Arc<T>) + Send + 'static,
    {
        let mut serve = Some(serve);
        loop {
            let (l, p) = (load.clone(), partition.clone());
            let loaded = tokio::task::spawn_blocking(move || l(p, epoch)).await;
            let failure = {
                let mut slots = self.write();
                if !matches!(slots.get(&index), Some(Slot::Loading(e)) if *e == epoch) {
                    // Unloaded or replaced meanwhile.
                    return;
                }
                match loaded {
                    Ok(Ok(shard)) => {
                        let shard = Arc::new(shard);
                        if let Some(serve) = serve.take() {
                            serve(&shard);
                        }
                        slots.insert(index, Slot::Loaded(epoch, shard));
                        tracing::info!(
                            partition = index,
                            leader_epoch = epoch,
                            "{} coordinator shard loaded",
                            self.what
                        );
                        return;
                    }
                    Ok(Err(e)) => e,
                    Err(e) => e.to_string(),
                }
            };
            tracing::error!(partition = index, error = %failure, "loading a {} coordinator shard failed; retrying", self.what);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Partition `index` is no longer led here (or no longer exists).
    pub fn unload(&self, index: i32) {
        let slot = self.write().remove(&index);
        if let Some(slot) = slot {
            tracing::info!(
                partition = index,
                "unloading a {} coordinator shard",
                self.what
            );
            if let Slot::Loaded(_, shard) = slot {
                shard.unload();
            }
        }
    }
}
