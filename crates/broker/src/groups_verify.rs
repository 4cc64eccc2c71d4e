//! A group shard's half of KIP-890 verification: TxnOffsetCommit is verified with the
//! producer's transaction coordinator (`crate::txn_verify`) between
//! [`Groups::begin_verification`] and [`Groups::txn_commit_verified`]; a settlement of the
//! producer in between (its transaction's marker reached this shard) turns the commit away,
//! since nothing would settle the pending offsets it would write.

use weir_coordinator::{ErrorCode, TopicPartition, TxnCommitRequest};

use super::Groups;
use crate::txn_guard::Guard;

impl Groups {
    fn guards(&self) -> std::sync::MutexGuard<'_, crate::txn_guard::Guards> {
        self.guards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts verifying a TxnOffsetCommit of `producer_id` (see [`crate::txn_guard`]).
    pub fn begin_verification(&self, producer_id: i64) -> Guard {
        let _c = self.lock();
        self.guards().begin(producer_id)
    }

    /// The verification failed: its guard goes.
    pub fn abandon_verification(&self, producer_id: i64, guard: Guard) {
        let _c = self.lock();
        self.guards().abandon(producer_id, guard);
    }

    /// A marker for `producer_id` settles here (called under the coordinator lock).
    pub(super) fn void_guard(&self, producer_id: i64) {
        self.guards().clear(producer_id);
    }

    /// TxnOffsetCommit verified under `guard`: its pending offsets are written if no
    /// settlement of the producer passed since the verification began, else every partition
    /// answers INVALID_TXN_STATE (the transaction was decided meanwhile).
    pub async fn txn_commit_verified(
        &self,
        req: TxnCommitRequest,
        guard: Guard,
    ) -> Vec<(TopicPartition, ErrorCode)> {
        let partitions: Vec<TopicPartition> =
            req.offsets.iter().map(|(tp, _)| tp.clone()).collect();
        let refused = partitions.clone();
        self.commit_durably(partitions, |c, now| {
            if self.guards().take(req.producer_id, guard) {
                c.txn_commit_offsets(now, req)
            } else {
                tracing::debug!(group = %req.group_id, producer_id = req.producer_id, "TxnOffsetCommit after its transaction's marker: refused");
                let codes = refused
                    .into_iter()
                    .map(|tp| (tp, ErrorCode::INVALID_TXN_STATE))
                    .collect();
                (codes, Vec::new())
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use weir_coordinator::{CommittedOffset, CoordinatorConfig, TxnCommitRequest};
    use weir_storage::Recovery;

    use super::*;

    fn commit(producer_id: i64) -> TxnCommitRequest {
        TxnCommitRequest {
            group_id: "g1".to_owned(),
            producer_id,
            producer_epoch: 0,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: vec![(
                TopicPartition::new("orders", 0),
                CommittedOffset {
                    offset: 42,
                    leader_epoch: None,
                    metadata: None,
                    commit_timestamp_ms: 0,
                },
            )],
        }
    }

    fn open(dir: &std::path::Path) -> Groups {
        Groups::open(dir, Recovery::Scan, CoordinatorConfig::default()).expect("open")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_verified_commit_with_no_marker_since_is_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let groups = open(dir.path());
        let guard = groups.begin_verification(7);
        let codes = groups.txn_commit_verified(commit(7), guard).await;
        assert_eq!(
            codes,
            vec![(TopicPartition::new("orders", 0), ErrorCode::NONE)]
        );
        assert_eq!(
            groups.unstable_partitions("g1").len(),
            1,
            "pending until its marker"
        );
        groups.settle_producer(7, false).await.expect("settle");
        assert!(groups.unstable_partitions("g1").is_empty());
    }

    /// The race KIP-890's guard closes: Ongoing was answered, then the abort marker settled
    /// the producer here before the commit was written.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_marker_during_the_verification_refuses_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let groups = open(dir.path());
        let guard = groups.begin_verification(7);
        groups.settle_producer(7, false).await.expect("settle");
        let codes = groups.txn_commit_verified(commit(7), guard).await;
        assert_eq!(
            codes,
            vec![(
                TopicPartition::new("orders", 0),
                ErrorCode::INVALID_TXN_STATE
            )]
        );
        assert!(
            groups.unstable_partitions("g1").is_empty(),
            "nothing left pending"
        );
        // Another producer's marker does not void this one's guard.
        let guard = groups.begin_verification(7);
        groups.settle_producer(8, true).await.expect("settle");
        let codes = groups.txn_commit_verified(commit(7), guard).await;
        assert_eq!(codes[0].1, ErrorCode::NONE);
    }
}
