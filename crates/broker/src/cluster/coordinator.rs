//! Coordinator placement in cluster mode (design §7.1). Groups: the leader of the group's
//! `__consumer_offsets` partition, which the first FindCoordinator has the quorum create
//! once enough brokers are unfenced. Transactions (interim, until their shards): every
//! broker computes the same coordinator for a key from the image, so all clients meet on one
//! broker, and the state stays in that broker's node-local `meta/transactions`; its failure
//! is not covered.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use weir_metadata::{BrokerRegistration, MetadataImage};

use crate::group_router::{partition_for, OFFSETS_TOPIC};
use crate::state::State;

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka hashes coordinator keys
/// with: tools computing Kafka's placement agree on the hash.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `Utils.abs`: non-negative, `i32::MIN` maps to 0.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The broker coordinating `key`: among the registered brokers sorted by id, the one at
/// `abs(hash(key)) % count`. Registered rather than unfenced, so a broker's short fence
/// (a missed heartbeat) does not move its groups; None without any broker.
pub fn coordinator_for<'a>(image: &'a MetadataImage, key: &str) -> Option<&'a BrokerRegistration> {
    // `brokers()` is a BTreeMap by id: already sorted.
    let n = image.brokers().len();
    if n == 0 {
        return None;
    }
    let index = usize::try_from(kafka_abs(java_string_hash(key))).unwrap_or(0) % n;
    image.brokers().values().nth(index)
}

/// Why a group has no coordinator yet.
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
    let topic = image
        .topic_by_name(OFFSETS_TOPIC)
        .filter(|t| !t.partitions.is_empty())
        .ok_or(NoCoordinator::NoTopic)?;
    let p = partition_for(group, topic.partitions.len());
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
    let key = |k: &str, default: i64| -> i64 {
        state
            .config
            .raw
            .get(k)
            .and_then(|v| v.trim().parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    let partitions = i32::try_from(key("offsets.topic.num.partitions", 50)).unwrap_or(50);
    let configured = key("offsets.topic.replication.factor", 3);
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
        if self.groups.creating.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
            match state
                .cluster_create_topic(OFFSETS_TOPIC, partitions, rf, None, configs, false)
                .await
            {
                Ok(_) => tracing::info!(
                    partitions,
                    replication_factor = rf,
                    "created {OFFSETS_TOPIC}"
                ),
                Err(crate::state::AdminError::TopicExists(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "creating {OFFSETS_TOPIC} failed; the next FindCoordinator retries")
                }
            }
            state.groups.creating.store(false, Ordering::Release);
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
        assert_eq!(kafka_abs(java_string_hash("polygenelubricants")), 0);
    }
}
