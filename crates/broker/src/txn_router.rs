//! Routes transaction requests to the coordinator shard that holds the transactional id
//! (design §7.1, §7.2).
//!
//! Single node: one coordinator over `meta/transactions`, every id's, exactly as before
//! shards existed. Cluster mode: one shard per `__transaction_state` partition led here,
//! the id's partition being Java's `String.hashCode` of it, non-negative, modulo the
//! partition count (Kafka's mapping). Shards follow the leaderships through
//! `crate::shards`: a new leader epoch loads the partition's log (COORDINATOR_LOAD_IN_PROGRESS
//! meanwhile), then `Txns::recover` resumes the markers of every transaction being decided
//! and the shard's timer aborts open transactions past their timeout; a lost leadership
//! unloads it (NOT_COORDINATOR, its marker tasks and timer stop).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::broadcast;
use weir_coordinator::txn::{TxnConfig, TxnDescription, TxnError, TxnListing, TxnState};
use weir_coordinator::ErrorCode;
use weir_storage::StorageError;

use crate::cluster::ImageCell;
use crate::group_router::partition_for;
use crate::partition::Partition;
use crate::shards::Shards;
use crate::state::State;
use crate::txns::{Txns, TxnsError};

/// Kafka's name of the transaction coordinator's internal topic.
pub const TXN_STATE_TOPIC: &str = "__transaction_state";

pub struct TxnRouter {
    config: TxnConfig,
    /// The single node's one coordinator; None in cluster mode.
    local: Option<Arc<Txns>>,
    /// Cluster mode: the shards of this broker's `__transaction_state` leaderships.
    shards: Arc<Shards<Txns>>,
    image: Arc<ImageCell>,
    /// This broker's node id (cluster mode).
    local_node: i32,
    /// Stops the shards' timers when the broker stops.
    stop: broadcast::Sender<()>,
    /// A creation of `__transaction_state` is under way (`State::ensure_txn_state_topic`).
    pub(crate) creating: AtomicBool,
}

impl TxnRouter {
    /// The single node's router over its one coordinator.
    pub fn local(txns: Arc<Txns>, config: TxnConfig) -> TxnRouter {
        TxnRouter {
            config,
            local: Some(txns),
            shards: Arc::new(Shards::new("transaction")),
            image: Arc::default(),
            local_node: -1,
            stop: broadcast::channel(1).0,
            creating: AtomicBool::new(false),
        }
    }

    /// Cluster mode: shards come and go with the leaderships in `image`; `local_node` is
    /// this broker's id.
    pub fn cluster(config: TxnConfig, image: Arc<ImageCell>, local_node: i32) -> TxnRouter {
        TxnRouter {
            config,
            local: None,
            shards: Arc::new(Shards::new("transaction")),
            image,
            local_node,
            stop: broadcast::channel(1).0,
            creating: AtomicBool::new(false),
        }
    }

    /// The `__transaction_state` partition of `transactional_id` in the current image.
    pub fn partition_of(&self, transactional_id: &str) -> Option<i32> {
        let image = self.image.image();
        let count = image.topic_by_name(TXN_STATE_TOPIC)?.partitions.len();
        (count > 0).then(|| partition_for(transactional_id, count))
    }

    /// The coordinator of `transactional_id` when it is loaded here; else NOT_COORDINATOR,
    /// or COORDINATOR_LOAD_IN_PROGRESS while its shard loads.
    pub fn shard(&self, transactional_id: &str) -> Result<Arc<Txns>, ErrorCode> {
        if let Some(local) = &self.local {
            return Ok(local.clone());
        }
        // Without the lease (§4.9) the loaded shard may be a former one, moved while this
        // broker was paused or cut off: nothing is answered from its memory.
        // (A broker still catching up after its start has no lease yet either: it answers
        // COORDINATOR_LOAD_IN_PROGRESS as before, since its shards are about to load.)
        if !self.image.serving() {
            return Err(if self.image.is_caught_up() {
                ErrorCode::NOT_COORDINATOR
            } else {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            });
        }
        let Some(p) = self.partition_of(transactional_id) else {
            return Err(if self.image.is_caught_up() {
                ErrorCode::NOT_COORDINATOR
            } else {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            });
        };
        let pending = self
            .image
            .shard_pending(TXN_STATE_TOPIC, p, self.local_node);
        self.shards.get_or_pending(p, pending)
    }

    fn loaded(&self) -> Vec<Arc<Txns>> {
        match &self.local {
            Some(local) => vec![local.clone()],
            None => self.shards.loaded(),
        }
    }

    /// The publisher gave `__transaction_state`-`index` a role here: a leadership under a
    /// new epoch loads its shard, recovers it (resuming the markers of decided
    /// transactions) and starts its timer; any other role unloads it.
    pub fn partition_role(&self, state: &Arc<State>, index: i32, partition: &Arc<Partition>) {
        let config = self.config.clone();
        let stop = self.stop.clone();
        let state = state.clone();
        self.shards.partition_role(
            index,
            partition,
            move |p, epoch| Txns::load_shard(p, epoch, config.clone()).map_err(|e| e.to_string()),
            move |txns| {
                if let Err(e) = txns.recover(&state) {
                    tracing::error!(partition = index, error = %e, "recovering a transaction coordinator shard failed");
                }
                tokio::spawn(txns.clone().run_timer(state, stop.subscribe()));
            },
        );
    }

    /// `__transaction_state`-`index` is no longer led here (or no longer exists).
    pub fn unload(&self, index: i32) {
        self.shards.unload(index);
    }

    /// DescribeTransactions: each id from its shard, NOT_COORDINATOR (or
    /// COORDINATOR_LOAD_IN_PROGRESS) for one not coordinated here.
    pub fn describe(&self, transactional_ids: &[String]) -> Vec<TxnDescription> {
        if let Some(local) = &self.local {
            return local.describe(transactional_ids);
        }
        transactional_ids
            .iter()
            .map(|id| match self.shard(id) {
                Ok(txns) => txns
                    .describe(std::slice::from_ref(id))
                    .pop()
                    .unwrap_or_else(|| not_described(id, ErrorCode::COORDINATOR_NOT_AVAILABLE)),
                Err(code) => not_described(id, code),
            })
            .collect()
    }

    /// ListTransactions over every shard served here (Kafka's is per broker).
    pub fn list(
        &self,
        states: &[TxnState],
        producer_ids: &[i64],
        min_duration_ms: Option<u64>,
    ) -> Result<Vec<TxnListing>, TxnError> {
        let mut all = Vec::new();
        for txns in self.loaded() {
            all.extend(txns.list(states, producer_ids, min_duration_ms)?);
        }
        Ok(all)
    }

    /// Single node: finishes transactions that were being decided when the broker stopped.
    /// Cluster shards recover when they load.
    pub fn recover(&self, state: &Arc<State>) -> Result<(), TxnsError> {
        match &self.local {
            Some(local) => local.recover(state),
            None => Ok(()),
        }
    }

    /// Drives the single node's timer; in cluster mode each shard runs its own, stopped
    /// with this one.
    pub async fn run_timer(state: Arc<State>, mut stop: broadcast::Receiver<()>) {
        let router = state.txns.clone();
        match &router.local {
            Some(local) => local.clone().run_timer(state, stop).await,
            None => {
                let _ = stop.recv().await;
                let _ = router.stop.send(());
            }
        }
    }

    pub fn close(&self) -> Result<(), StorageError> {
        match &self.local {
            Some(local) => local.close(),
            None => Ok(()),
        }
    }

    /// The single node's coordinator (fault-injection tests reach it through this).
    #[cfg(test)]
    pub(crate) fn single(&self) -> &Arc<Txns> {
        self.local.as_ref().expect("a single node's coordinator")
    }
}

/// The description of an id this broker cannot describe.
fn not_described(transactional_id: &str, error: ErrorCode) -> TxnDescription {
    TxnDescription {
        error,
        transactional_id: transactional_id.to_owned(),
        state: TxnState::Dead,
        producer_id: -1,
        producer_epoch: -1,
        timeout_ms: 0,
        txn_start_ms: None,
        partitions: Vec::new(),
        groups: Vec::new(),
    }
}
