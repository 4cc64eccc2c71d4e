//! The follower's truncation decision (KIP-101, KIP-279, KIP-595's `DivergingEpoch`).
//!
//! A follower whose log may have diverged from its leader's (it led, or followed a leader
//! that was replaced, and wrote records the new leader never had) asks where its newest
//! epoch ends on the leader; the leader answers with the largest epoch at or below it that
//! it knows and where that epoch ends. Comparing that with its own epoch cache, the follower
//! cuts its log to the first offset where the two may differ. When the leader's epoch is one
//! the follower never had, one answer is not enough: the follower cuts to where its own
//! older epoch ends and asks again for that epoch.

/// A leader's answer about one epoch: OffsetForLeaderEpoch's `(leader_epoch, end_offset)`
/// or a Fetch answer's `DivergingEpoch`. Kafka's -1 (UNDEFINED) is kept as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch at or below the asked one the leader knows; -1 when none.
    pub epoch: i32,
    /// Where that epoch ends on the leader; -1 when the leader knows no epochs at all.
    pub end_offset: i64,
}

/// Where to cut the follower's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Truncate to this offset (everything at and above it goes); equal to the log end when
    /// nothing is cut.
    pub offset: i64,
    /// None: the logs agree below `offset`, fetching resumes there. Some(epoch): the leader
    /// named an epoch this replica never had; after cutting, ask the leader again for
    /// `epoch` (the largest local epoch below the leader's).
    pub ask_again_for: Option<i32>,
}

/// Decides the follower's truncation from its leader's answer. `local_end_for_epoch(e)` is
/// the follower's own epoch cache (the largest local epoch at or below `e` and where it ends,
/// the log end for the newest; None when it has none), `log_end` its log end, and
/// `high_watermark` the last high watermark it learnt.
pub fn decide_truncation(
    leader: EpochEndOffset,
    local_end_for_epoch: impl Fn(i32) -> Option<(i32, i64)>,
    log_end: i64,
    high_watermark: i64,
) -> Truncation {
    let done = |offset: i64| Truncation {
        offset: offset.min(log_end),
        ask_again_for: None,
    };
    if leader.end_offset < 0 {
        // The leader has no epochs to compare with: only the high watermark is known to be
        // on both replicas.
        return done(high_watermark);
    }
    if leader.epoch < 0 {
        return done(leader.end_offset);
    }
    match local_end_for_epoch(leader.epoch) {
        // This replica knows no epoch that old: everything it has is newer than what the
        // leader kept of it, so only the leader's end bounds the agreement.
        None => done(leader.end_offset),
        Some((epoch, end)) if epoch == leader.epoch => done(end.min(leader.end_offset)),
        Some((epoch, end)) => Truncation {
            offset: end.min(log_end),
            ask_again_for: Some(epoch),
        },
    }
}
