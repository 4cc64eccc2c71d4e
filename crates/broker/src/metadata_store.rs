//! The cluster metadata the broker persists (cluster id, the topic table, producer-id blocks),
//! behind a trait: today one node's JSON files ([`MetaStore`]), later a replicated controller
//! that implements the same operations.
//!
//! Node-local files (the clean-shutdown marker, the reserved space) are not metadata of the
//! cluster and stay on [`MetaStore`] itself.

use std::sync::Mutex;

use crate::meta::{MetaError, MetaStore, TopicRecord};

/// Durable cluster metadata. Every write is durable when it returns; a failed write leaves
/// the previous value in place.
pub trait MetadataStore: Send + Sync {
    /// The cluster's id, created on first use.
    fn cluster_id(&self) -> Result<String, MetaError>;
    /// Every topic, as last saved.
    fn load_topics(&self) -> Result<Vec<TopicRecord>, MetaError>;
    /// Replaces the topic table.
    fn save_topics(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError>;
    /// Replaces the topic table for a change that frees space (a deletion): it may use space
    /// set aside for it, so that it succeeds on a full disk.
    fn save_topics_to_free_space(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError>;
    /// The first producer id not yet reserved.
    fn producer_id_block_start(&self) -> Result<i64, MetaError>;
    /// Records that every producer id below `end` may have been handed out.
    fn reserve_producer_ids(&self, end: i64) -> Result<(), MetaError>;
}

impl MetadataStore for MetaStore {
    fn cluster_id(&self) -> Result<String, MetaError> {
        MetaStore::cluster_id(self)
    }

    fn load_topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        MetaStore::load_topics(self)
    }

    fn save_topics(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        MetaStore::save_topics(self, topics)
    }

    fn save_topics_to_free_space(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        MetaStore::save_topics_to_free_space(self, topics)
    }

    fn producer_id_block_start(&self) -> Result<i64, MetaError> {
        MetaStore::producer_id_block_start(self)
    }

    fn reserve_producer_ids(&self, end: i64) -> Result<(), MetaError> {
        MetaStore::reserve_producer_ids(self, end)
    }
}

/// Producer ids reserved per metadata write.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Hands out producer ids for InitProducerId. On one node, ids are reserved in the metadata
/// store a block at a time, so a restart (or another allocator over the same store) never
/// hands out an id twice, and only one write in [`PRODUCER_ID_BLOCK`] ids waits for the disk.
/// In cluster mode every broker hands out ids, so blocks come from the metadata quorum
/// (KIP-730's AllocateProducerIds, installed by `State::ensure_producer_ids`): a node-local
/// counter would give two producers the same id through two brokers, and their sequences
/// would collide on a shared partition (OUT_OF_ORDER_SEQUENCE_NUMBER, a fatal error).
pub struct ProducerIds {
    /// `(next, reserved_end)`.
    range: Mutex<(i64, i64)>,
    /// Blocks come from the quorum; the local store is never used.
    from_quorum: bool,
}

impl ProducerIds {
    /// Starts after every id the store has reserved so far.
    pub fn open(store: &dyn MetadataStore) -> Result<ProducerIds, MetaError> {
        let first = store.producer_id_block_start()?;
        Ok(ProducerIds {
            range: Mutex::new((first, first)),
            from_quorum: false,
        })
    }

    /// Cluster mode: no ids until the first quorum block is installed.
    pub fn from_quorum() -> ProducerIds {
        ProducerIds {
            range: Mutex::new((0, 0)),
            from_quorum: true,
        }
    }

    fn range(&self) -> std::sync::MutexGuard<'_, (i64, i64)> {
        self.range.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the next `allocate` needs a new quorum block first.
    pub fn needs_quorum_block(&self) -> bool {
        let range = self.range();
        self.from_quorum && range.0 >= range.1
    }

    /// Installs the quorum's block `[start, start + len)` unless ids are left in the current
    /// one (two callers raced for a block: the second block is dropped, its ids never used).
    pub fn install_block(&self, start: i64, len: i32) {
        let mut range = self.range();
        if range.0 >= range.1 {
            *range = (start, start.saturating_add(i64::from(len)));
        }
    }

    /// The next id, reserving a new block in `store` first when the current one is used up
    /// (one node), or failing with [`MetaError::NoProducerIds`] (cluster mode).
    pub fn allocate(&self, store: &dyn MetadataStore) -> Result<i64, MetaError> {
        let mut range = self.range();
        if range.0 >= range.1 {
            if self.from_quorum {
                return Err(MetaError::NoProducerIds(
                    "the current block is used up".to_string(),
                ));
            }
            let end = range.0 + PRODUCER_ID_BLOCK;
            store.reserve_producer_ids(end)?;
            range.1 = end;
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_are_never_handed_out_twice_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetaStore::open(dir.path()).expect("store");
        let ids = ProducerIds::open(&store).expect("open");
        let first: Vec<i64> = (0..3).map(|_| ids.allocate(&store).expect("id")).collect();
        assert_eq!(first, vec![0, 1, 2]);
        // A restart skips the rest of the reserved block rather than reuse any of it.
        let reopened =
            ProducerIds::open(&MetaStore::open(dir.path()).expect("store")).expect("open");
        let next = reopened.allocate(&store).expect("id");
        assert_eq!(next, PRODUCER_ID_BLOCK);
    }

    #[test]
    fn quorum_blocks_are_the_only_source_in_cluster_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetaStore::open(dir.path()).expect("store");
        let ids = ProducerIds::from_quorum();
        assert!(ids.needs_quorum_block());
        assert!(matches!(
            ids.allocate(&store),
            Err(MetaError::NoProducerIds(_))
        ));
        ids.install_block(5000, 2);
        // A block racing in while ids are left is dropped, not spliced in.
        ids.install_block(7000, 2);
        assert_eq!(ids.allocate(&store).expect("id"), 5000);
        assert!(!ids.needs_quorum_block());
        assert_eq!(ids.allocate(&store).expect("id"), 5001);
        assert!(ids.needs_quorum_block());
        assert!(ids.allocate(&store).is_err());
        ids.install_block(7000, 2);
        assert_eq!(ids.allocate(&store).expect("id"), 7000);
        // The local store reserved nothing.
        assert_eq!(store.producer_id_block_start().expect("start"), 0);
    }

    #[test]
    fn the_json_store_keeps_topics_through_the_trait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Box<dyn MetadataStore> = Box::new(MetaStore::open(dir.path()).expect("store"));
        let id = store.cluster_id().expect("id");
        assert_eq!(store.cluster_id().expect("same id"), id);
        let topic = TopicRecord {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: Default::default(),
        };
        store.save_topics(vec![topic.clone()]).expect("save");
        assert_eq!(store.load_topics().expect("load"), vec![topic]);
        store.save_topics_to_free_space(vec![]).expect("delete");
        assert!(store.load_topics().expect("load").is_empty());
    }
}
