//! One connection's memory of idempotent batches its Produce requests were refused before
//! they were appended, so that a sequence gap the broker itself caused is answered as what it
//! is: a retriable refusal, not OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! Why (issue 11, a 200-episode fault run): a producer with several requests in flight sends
//! R1 (sequences 5775-5777) and R2 (5778-) to the broker the metadata names leader. R1 arrives
//! while this broker's replica is still a follower and is refused NOT_LEADER_OR_FOLLOWER; the
//! replica leads before R2 arrives, and the log, whose producer state rightly ends at 5774,
//! finds R2 out of order. Kafka's leader answers the same, and librdkafka treats an out-of-order
//! answer to a request that is not its oldest in flight by bumping the producer epoch and
//! re-sending every unacknowledged record of every partition under new sequences: a record an
//! old leader had written but not acknowledged is then written twice, and no broker can tell.
//!
//! Data flow: the Produce handler calls [`ProduceGaps::refused`] for each partition it refuses
//! before the append with a retriable code (the batch's producer id and first sequence), and
//! [`ProduceGaps::appended`] for each partition it appends (or finds a duplicate); when the log
//! answers out of order with `expected` = the first sequence of the batch this connection
//! refused, [`ProduceGaps::excuse`] hands back that refusal's code, which the handler answers
//! instead. The client then re-sends the refused batch first and the rest in order, as after
//! any retriable error. A few excuses per refusal at most (a producer keeps at most five
//! requests in flight), so a producer that really skipped the refused batch (it expired in the
//! client) still gets its out-of-order answer.
//!
//! Requests of one connection are handled in order (`connection.rs`), so "refused earlier on
//! this connection" is well defined; the lock is never contended.

use std::collections::HashMap;
use std::sync::Mutex;

use weir_protocol::ResponseError;

/// How many later batches one refusal excuses: the in-flight requests a producer can have
/// sent behind the refused one (Kafka caps idempotent producers at five).
pub const EXCUSES_PER_REFUSAL: u8 = 4;

/// Partitions remembered per connection at most; refusals beyond it are not remembered (the
/// client chooses topic names, so the map must not grow with them).
pub const MAX_REMEMBERED: usize = 1024;

/// A batch refused before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    producer_id: i64,
    first_seq: i32,
    code: ResponseError,
    excused: u8,
}

/// See the module documentation. One per connection, shared by the clones of its `Conn`.
#[derive(Debug, Default)]
pub struct ProduceGaps {
    /// (topic, partition) → the last refusal there; emptied as appends succeed.
    refusals: Mutex<HashMap<(String, i32), Refusal>>,
}

impl ProduceGaps {
    /// A batch of idempotent producer `producer_id` starting at `first_seq` was refused on
    /// `topic`/`partition` with `code` before it was appended. Only retriable codes count: the
    /// client re-sends such a batch, so a gap at its first sequence is this broker's doing.
    pub fn refused(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        first_seq: i32,
        code: ResponseError,
    ) {
        if producer_id < 0 || !code.is_retriable() {
            return;
        }
        let mut map = self.lock();
        let key = (topic.to_string(), partition);
        if map.len() >= MAX_REMEMBERED && !map.contains_key(&key) {
            return;
        }
        let refusal = Refusal {
            producer_id,
            first_seq,
            code,
            excused: 0,
        };
        match map.get_mut(&key) {
            // A later batch refused behind an earlier one: the gap still starts at the
            // earlier one, which the client re-sends first.
            Some(r) if r.producer_id == producer_id && r.code == code => {}
            Some(r) => *r = refusal,
            None => {
                map.insert(key, refusal);
            }
        }
    }

    /// A batch was appended (or recognised as a duplicate) on `topic`/`partition`: the
    /// producer's sequence there is whole again.
    pub fn appended(&self, topic: &str, partition: i32) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(&(topic.to_string(), partition));
        }
    }

    /// The log found a batch of `producer_id` out of order, expecting `expected`: when this
    /// connection refused the batch starting at `expected`, the code to answer instead.
    pub fn excuse(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        expected: i32,
    ) -> Option<ResponseError> {
        let mut map = self.lock();
        let r = map.get_mut(&(topic.to_string(), partition))?;
        if r.producer_id != producer_id
            || r.first_seq != expected
            || r.excused >= EXCUSES_PER_REFUSAL
        {
            return None;
        }
        r.excused += 1;
        Some(r.code)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Refusal>> {
        self.refusals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_LEADER: ResponseError = ResponseError::NotLeaderOrFollower;

    #[test]
    fn a_gap_at_a_refused_batch_is_excused_with_the_refusal() {
        let g = ProduceGaps::default();
        g.refused("t", 1, 1001, 5775, NOT_LEADER);
        // R2 found out of order right behind the refused R1.
        assert_eq!(g.excuse("t", 1, 1001, 5775), Some(NOT_LEADER));
        // Another partition, producer or gap is not this refusal's.
        assert_eq!(g.excuse("t", 2, 1001, 5775), None);
        assert_eq!(g.excuse("t", 1, 1002, 5775), None);
        assert_eq!(g.excuse("t", 1, 1001, 5770), None);
        // The client re-sends R1: appended, the memory is gone and gaps are real again.
        g.appended("t", 1);
        assert_eq!(g.excuse("t", 1, 1001, 5775), None);
    }

    #[test]
    fn later_refusals_keep_the_first_gap_and_excuses_are_bounded() {
        let g = ProduceGaps::default();
        g.refused("t", 0, 7, 10, NOT_LEADER);
        g.refused("t", 0, 7, 15, NOT_LEADER);
        for _ in 0..EXCUSES_PER_REFUSAL {
            assert_eq!(g.excuse("t", 0, 7, 10), Some(NOT_LEADER));
        }
        // A producer that never re-sends sequence 10 (expired in the client) gets its
        // out-of-order answer once its in-flight window is spent.
        assert_eq!(g.excuse("t", 0, 7, 10), None);
        // A refusal with another code starts over.
        g.refused("t", 0, 7, 20, ResponseError::NotEnoughReplicas);
        assert_eq!(
            g.excuse("t", 0, 7, 20),
            Some(ResponseError::NotEnoughReplicas)
        );
    }

    #[test]
    fn only_retriable_refusals_of_idempotent_batches_are_remembered() {
        let g = ProduceGaps::default();
        g.refused("t", 0, -1, 0, NOT_LEADER);
        g.refused("t", 1, 7, 3, ResponseError::TopicAuthorizationFailed);
        g.refused("t", 2, 7, 3, ResponseError::InvalidRecord);
        assert_eq!(g.excuse("t", 0, -1, 0), None);
        assert_eq!(g.excuse("t", 1, 7, 3), None);
        assert_eq!(g.excuse("t", 2, 7, 3), None);
        for i in 0..(MAX_REMEMBERED as i32 + 10) {
            g.refused("many", i, 7, 0, NOT_LEADER);
        }
        assert_eq!(g.lock().len(), MAX_REMEMBERED);
    }
}
