//! Verification guards (KIP-890's VerificationGuard): what keeps a transaction verification
//! from racing the transaction's marker. A partition leader or group shard begins a guard for
//! a producer before it asks the transaction coordinator (`crate::txn_verify`); every marker
//! of that producer written there clears it; the verified append or pending commit is taken
//! only if its guard is still there, checked under the same lock as the markers. So "Ongoing"
//! answered before an abort marker cannot let a request in after that marker.

use std::collections::HashMap;

/// One verification in progress, to present at the append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard(u64);

/// The guards of one partition or group shard, by producer id (one per producer: a newer
/// verification replaces an older one, which then fails and is retried by its client).
#[derive(Debug, Default)]
pub struct Guards {
    next: u64,
    by_producer: HashMap<i64, Guard>,
}

impl Guards {
    /// Starts a verification for `producer_id`.
    pub fn begin(&mut self, producer_id: i64) -> Guard {
        self.next += 1;
        let guard = Guard(self.next);
        self.by_producer.insert(producer_id, guard);
        guard
    }

    /// A marker for `producer_id` was written: verifications begun before it are void.
    pub fn clear(&mut self, producer_id: i64) {
        self.by_producer.remove(&producer_id);
    }

    /// Whether `guard` still holds (no marker since it began); it is used up either way.
    pub fn take(&mut self, producer_id: i64, guard: Guard) -> bool {
        if self.by_producer.get(&producer_id) == Some(&guard) {
            self.by_producer.remove(&producer_id);
            true
        } else {
            false
        }
    }

    /// A verification that failed: its guard is dropped (unless a newer one replaced it).
    pub fn abandon(&mut self, producer_id: i64, guard: Guard) {
        self.take(producer_id, guard);
    }

    /// How many verifications are in progress.
    pub fn len(&self) -> usize {
        self.by_producer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_holds_until_taken() {
        let mut g = Guards::default();
        let a = g.begin(7);
        assert!(g.take(7, a));
        assert!(!g.take(7, a), "used up");
        assert!(g.is_empty());
    }

    #[test]
    fn a_marker_between_verification_and_append_voids_the_guard() {
        let mut g = Guards::default();
        let a = g.begin(7);
        let other = g.begin(8);
        g.clear(7);
        assert!(!g.take(7, a));
        assert!(
            g.take(8, other),
            "another producer's marker leaves it alone"
        );
    }

    #[test]
    fn a_newer_verification_replaces_an_older_one() {
        let mut g = Guards::default();
        let old = g.begin(7);
        let new = g.begin(7);
        assert_ne!(old, new);
        g.abandon(7, old);
        assert_eq!(g.len(), 1, "the failed older one leaves the newer");
        assert!(!g.take(7, old));
        assert!(g.take(7, new));
    }
}
