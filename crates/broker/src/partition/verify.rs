//! A partition leader's half of KIP-890 verification: the first transactional batch of a
//! producer with no open transaction here is appended only after its transaction
//! coordinator said the transaction is Ongoing and holds this partition
//! (`crate::txn_verify`), and only if no marker of that producer was written since the
//! verification began (`crate::txn_guard`). Batches of an open transaction need no
//! verification: its marker is still to come.

use std::sync::{Arc, MutexGuard};

use super::{Acks, Appended, Partition, PartitionError};
use crate::config::Durability;
use crate::txn_guard::{Guard, Guards};

impl Partition {
    pub(super) fn guards(&self) -> MutexGuard<'_, Guards> {
        self.txn_guards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a transactional batch of `producer_id` must be verified before it is
    /// appended: the producer has no open transaction here.
    pub fn needs_verification(&self, producer_id: i64) -> bool {
        !self.log.has_open_txn(producer_id)
    }

    /// Starts verifying a transactional batch of `producer_id`.
    pub fn begin_verification(&self, producer_id: i64) -> Guard {
        self.guards().begin(producer_id)
    }

    /// The verification failed: its guard goes.
    pub fn abandon_verification(&self, producer_id: i64, guard: Guard) {
        self.guards().abandon(producer_id, guard);
    }

    /// Appends a transactional producer's batches as [`Partition::append`] does, if the
    /// producer has an open transaction here or `guard` (its verification) still holds;
    /// otherwise nothing is written and the answer is [`PartitionError::TxnNotVerified`]:
    /// a marker passed since, the transaction is decided. Checked and appended under the
    /// lock markers take.
    pub fn append_transactional(
        self: &Arc<Self>,
        producer_id: i64,
        guard: Option<Guard>,
        batches: &mut [u8],
        acks: Acks,
        policy: Durability,
        now_ms: i64,
    ) -> Result<Appended, PartitionError> {
        let mut guards = self.guards();
        let verified = guard.is_some_and(|g| guards.take(producer_id, g));
        if !verified && !self.log.has_open_txn(producer_id) {
            return Err(PartitionError::TxnNotVerified { producer_id });
        }
        self.append(batches, acks, policy, now_ms)
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
