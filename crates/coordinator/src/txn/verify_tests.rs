//! KIP-890 verification (`TxnCoordinator::verify`): what a partition leader or group
//! coordinator on another broker is told before it accepts a transactional Produce or
//! TxnOffsetCommit. Each case ends in the exact answer; none changes the state.

use super::*;

const OFFSETS_7: &str = "__consumer_offsets-7";

/// The question a leader of `topic`-`partition` asks.
fn partition(topic: &str, partition: i32) -> impl Fn(&TxnMember) -> bool {
    let wanted = TxnMember::Partition(TopicPartition::new(topic, partition));
    move |m| *m == wanted
}

/// The question a group coordinator asks for its shard: any group of the transaction that
/// maps to this `__consumer_offsets` partition (here: groups named "g1" and "g2" map to 7).
fn shard_7(m: &TxnMember) -> bool {
    matches!(m, TxnMember::Group(g) if g == "g1" || g == "g2")
}

fn verify(
    h: &mut Harness,
    p: InitResult,
    holds: impl Fn(&TxnMember) -> bool,
) -> Result<(), ErrorCode> {
    h.c.verify(TID, p.producer_id, p.producer_epoch, holds)
        .map_err(|e| e.code())
}

#[test]
fn ongoing_transaction_holding_the_partition_is_verified() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    assert_eq!(verify(&mut h, p, partition("orders", 1)), Ok(()));
    let (_, added) = codes(h.c.add_offsets(110, TID, p.producer_id, p.producer_epoch, "g2"));
    assert_eq!(added, Ok(()));
    assert_eq!(verify(&mut h, p, shard_7), Ok(()), "{OFFSETS_7}");
    // Verification writes nothing and moves no deadline.
    assert_eq!(h.c.tick(110), vec![]);
}

#[test]
fn partition_not_added_is_refused() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    // No transaction open at all.
    assert_eq!(
        verify(&mut h, p, partition("orders", 0)),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    h.add(100, p, ORDERS).1.expect("add");
    assert_eq!(
        verify(&mut h, p, partition("orders", 2)),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    assert_eq!(
        verify(&mut h, p, partition("payments", 0)),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    // A group in another shard does not stand for this one.
    let (_, added) = codes(h.c.add_offsets(110, TID, p.producer_id, p.producer_epoch, "g9"));
    assert_eq!(added, Ok(()));
    assert_eq!(
        verify(&mut h, p, shard_7),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
}

#[test]
fn wrong_epoch_or_producer_is_refused() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    assert_eq!(
        verify(&mut h, producer(p.producer_id, 1), partition("orders", 0)),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    assert_eq!(
        verify(
            &mut h,
            producer(p.producer_id + 1, 0),
            partition("orders", 0)
        ),
        Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        h.c.verify("", p.producer_id, 0, partition("orders", 0))
            .map_err(|e| e.code()),
        Err(ErrorCode::INVALID_REQUEST)
    );
}

#[test]
fn aborted_transaction_is_refused_before_and_after_its_markers() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    let (_, added) = codes(h.c.add_offsets(110, TID, p.producer_id, p.producer_epoch, "g1"));
    assert_eq!(added, Ok(()));
    assert_eq!(h.end(120, p, false).1, Ok(()));
    // PrepareAbort: the markers are on their way; a request verified now would land behind
    // them.
    assert_eq!(
        verify(&mut h, p, partition("orders", 0)),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    assert_eq!(
        verify(&mut h, p, shard_7),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    h.c.markers_written(130, TID).expect("markers");
    // CompleteAbort: the transaction no longer holds anything.
    assert_eq!(
        verify(&mut h, p, partition("orders", 0)),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    assert_eq!(
        verify(&mut h, p, shard_7),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
}

#[test]
fn committed_transaction_is_refused() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(100, p, ORDERS).1.expect("add");
    assert_eq!(h.end(120, p, true).1, Ok(()));
    assert_eq!(
        verify(&mut h, p, partition("orders", 0)),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
}

/// The bug of issue 11: the timeout aborted the transaction (and bumped the epoch); the
/// producer's delayed TxnOffsetCommit and a delayed batch carry the old epoch.
#[test]
fn transaction_aborted_by_its_timeout_refuses_the_late_requests() {
    let mut h = Harness::new();
    let p = h.init_ok(0);
    h.add(1_000, p, ORDERS).1.expect("add");
    let (_, added) = codes(h.c.add_offsets(1_010, TID, p.producer_id, p.producer_epoch, "g1"));
    assert_eq!(added, Ok(()));
    assert_eq!(verify(&mut h, p, shard_7), Ok(()), "before the timeout");
    assert_eq!(h.c.tick(61_011).len(), 2, "PrepareAbort and its markers");
    assert_eq!(verify(&mut h, p, shard_7), Err(ErrorCode::PRODUCER_FENCED));
    assert_eq!(
        verify(&mut h, p, partition("orders", 0)),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    h.c.markers_written(61_100, TID).expect("markers");
    assert_eq!(verify(&mut h, p, shard_7), Err(ErrorCode::PRODUCER_FENCED));
    // Nor does the fencing epoch itself open anything.
    assert_eq!(
        verify(&mut h, producer(p.producer_id, 1), shard_7),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
}
