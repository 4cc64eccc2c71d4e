//! Coordinator placement in cluster mode (design §7.1): a group's coordinator is the leader
//! of its `__consumer_offsets` partition, a transactional id's the leader of its
//! `__transaction_state` partition. The first FindCoordinator of each kind has the quorum
//! create the topic once enough brokers are unfenced.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use weir_metadata::{BrokerRegistration, MetadataImage};

use crate::group_router::{partition_for, OFFSETS_TOPIC};
use crate::state::State;
use crate::txn_router::TXN_STATE_TOPIC;

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka hashes coordinator keys
/// with: tools computing Kafka's placement agree on the hash.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Why a group or transactional id has no coordinator yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCoordinator {
    /// `__consumer_offsets` does not exist yet.
    NoTopic,
    /// The group's partition has no leader (or the leader is not registered).
    NoLeader,
}

/// The broker leading `group`'s `__consumer_offsets` partition.
pub fn group_coordinator<'a>(
    image: &'a MetadataImage,
    group: &str,
) -> Result<&'a BrokerRegistration, NoCoordinator> {
    shard_coordinator(image, OFFSETS_TOPIC, group)
}

/// The broker leading `transactional_id`'s `__transaction_state` partition.
pub fn txn_coordinator<'a>(
    image: &'a MetadataImage,
    transactional_id: &str,
) -> Result<&'a BrokerRegistration, NoCoordinator> {
    shard_coordinator(image, TXN_STATE_TOPIC, transactional_id)
}

/// The broker leading `key`'s partition of internal topic `topic`.
fn shard_coordinator<'a>(
    image: &'a MetadataImage,
    topic: &str,
    key: &str,
) -> Result<&'a BrokerRegistration, NoCoordinator> {
    let topic = image
        .topic_by_name(topic)
        .filter(|t| !t.partitions.is_empty())
        .ok_or(NoCoordinator::NoTopic)?;
    let p = partition_for(key, topic.partitions.len());
    let leader = topic
        .partitions
        .get(&p)
        .map(|reg| reg.leader)
        .ok_or(NoCoordinator::NoLeader)?;
    image.broker(leader).ok_or(NoCoordinator::NoLeader)
}

/// `offsets.topic.num.partitions` and the replication factor `__consumer_offsets` is created
/// with: min(`offsets.topic.replication.factor`, max(voters, registered brokers)), Kafka's
/// defaults 50 and 3. None while fewer brokers than that are unfenced.
pub fn offsets_topic_shape(state: &State, image: &MetadataImage) -> Option<(i32, i16)> {
    internal_topic_shape(
        state,
        image,
        "offsets.topic.num.partitions",
        "offsets.topic.replication.factor",
    )
}

/// The same for `__transaction_state`: `transaction.state.log.num.partitions` (50) and
/// `transaction.state.log.replication.factor` (3).
pub fn txn_state_topic_shape(state: &State, image: &MetadataImage) -> Option<(i32, i16)> {
    internal_topic_shape(
        state,
        image,
        "transaction.state.log.num.partitions",
        "transaction.state.log.replication.factor",
    )
}

/// The `min.insync.replicas` of `__transaction_state` at replication factor `rf`:
/// min(`transaction.state.log.min.isr` (2), `rf`), as Kafka's.
pub fn txn_state_min_isr(state: &State, rf: i16) -> i16 {
    state
        .config
        .raw
        .get("transaction.state.log.min.isr")
        .and_then(|v| v.trim().parse::<i16>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(2)
        .min(rf)
}

fn internal_topic_shape(
    state: &State,
    image: &MetadataImage,
    partitions_key: &str,
    replication_key: &str,
) -> Option<(i32, i16)> {
    let key = |k: &str, default: i64| -> i64 {
        state
            .config
            .raw
            .get(k)
            .and_then(|v| v.trim().parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    let partitions = i32::try_from(key(partitions_key, 50)).unwrap_or(50);
    let configured = key(replication_key, 3);
    let voters = i64::try_from(state.config.cluster.voters.len()).unwrap_or(0);
    let registered = i64::try_from(image.brokers().len()).unwrap_or(0);
    let rf = configured.min(voters.max(registered)).max(1);
    let unfenced = image.brokers().values().filter(|b| !b.fenced).count();
    (i64::try_from(unfenced).unwrap_or(0) >= rf)
        .then(|| (partitions, i16::try_from(rf).unwrap_or(3)))
}

impl State {
    /// Has the quorum create `__consumer_offsets` (compacted, like Kafka's) if enough
    /// brokers are unfenced; one attempt at a time, in the background: the FindCoordinator
    /// that asked answers COORDINATOR_NOT_AVAILABLE and the client asks again.
    pub fn ensure_offsets_topic(self: &Arc<Self>) {
        let image = self.image.image();
        let Some((partitions, rf)) = offsets_topic_shape(self, &image) else {
            return;
        };
        let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        self.ensure_internal_topic(OFFSETS_TOPIC, partitions, rf, configs, |s| {
            &s.groups.creating
        });
    }

    /// The same for `__transaction_state` (compacted, min ISR
    /// min(`transaction.state.log.min.isr` (2), RF), as Kafka's).
    pub fn ensure_txn_state_topic(self: &Arc<Self>) {
        let image = self.image.image();
        let Some((partitions, rf)) = txn_state_topic_shape(self, &image) else {
            return;
        };
        let min_isr = txn_state_min_isr(self, rf);
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("min.insync.replicas".to_string(), min_isr.to_string()),
        ]);
        self.ensure_internal_topic(TXN_STATE_TOPIC, partitions, rf, configs, |s| {
            &s.txns.creating
        });
    }

    /// One creation of internal topic `name` at a time (`creating` is its flag), in the
    /// background.
    fn ensure_internal_topic(
        self: &Arc<Self>,
        name: &'static str,
        partitions: i32,
        rf: i16,
        configs: BTreeMap<String, String>,
        creating: fn(&State) -> &std::sync::atomic::AtomicBool,
    ) {
        if creating(self).swap(true, Ordering::AcqRel) {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            match state
                .cluster_create_topic(name, partitions, rf, None, configs, false)
                .await
            {
                Ok(_) => tracing::info!(partitions, replication_factor = rf, "created {name}"),
                Err(crate::state::AdminError::TopicExists(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "creating {name} failed; the next FindCoordinator retries")
                }
            }
            creating(&state).store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // Values of "...".hashCode() in Java.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        // Overflows wrap as Java's int arithmetic does.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(
            crate::group_router::partition_for("polygenelubricants", 7),
            0
        );
    }
}
