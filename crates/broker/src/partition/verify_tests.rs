//! The partition side of KIP-890 verification over a real log: an unverified first batch is
//! refused, a verified one is appended, and a marker between the verification and the
//! append voids it (the race the guard closes).

use std::sync::Arc;

use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Marker};

use super::super::{Acks, Partition, PartitionError};
use crate::config::Durability;

fn partition(root: &std::path::Path) -> Arc<Partition> {
    let log = Log::create(root.join("t-0"), LogConfig::default()).expect("log");
    Arc::new(Partition::leader(0, log))
}

fn txn_batch(producer_id: i64, seq: i32) -> Vec<u8> {
    BatchBuilder::new(0)
        .records(1, 16)
        .producer(producer_id, 0, seq)
        .transactional()
        .build()
}

fn append(
    p: &Arc<Partition>,
    producer_id: i64,
    guard: Option<crate::txn_guard::Guard>,
    seq: i32,
) -> Result<i64, PartitionError> {
    p.append_transactional(
        producer_id,
        guard,
        &mut txn_batch(producer_id, seq),
        Acks::Leader,
        Durability::None,
        0,
    )
    .map(|a| a.info.last_offset)
}

#[test]
fn the_first_batch_of_a_transaction_needs_a_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path());
    assert!(p.needs_verification(5));
    assert!(matches!(
        append(&p, 5, None, 0),
        Err(PartitionError::TxnNotVerified { producer_id: 5 })
    ));
    assert_eq!(p.log_end_offset(), 0, "nothing written");
    let guard = p.begin_verification(5);
    assert_eq!(append(&p, 5, Some(guard), 0).expect("verified"), 0);
    // The transaction is open here now: its next batches need no verification.
    assert!(!p.needs_verification(5));
    assert_eq!(append(&p, 5, None, 1).expect("open"), 1);
    assert_eq!(p.last_stable_offset(), 0);
    p.append_marker(5, 0, Marker::Commit, 0, 0).expect("commit");
    // Decided: a late batch of it (or of the next transaction) is verified again.
    assert!(p.needs_verification(5));
    assert!(matches!(
        append(&p, 5, None, 2),
        Err(PartitionError::TxnNotVerified { .. })
    ));
    assert_eq!(
        p.last_stable_offset(),
        p.log_end_offset(),
        "nothing left open"
    );
}

/// Ongoing was answered, then the transaction's abort marker reached this partition before
/// the batch: the batch would reopen the transaction behind its marker (the last stable
/// offset stuck forever), so it is refused.
#[test]
fn a_marker_during_the_verification_refuses_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = partition(dir.path());
    let guard = p.begin_verification(5);
    let other = p.begin_verification(6);
    p.append_marker(5, 0, Marker::Abort, 0, 0).expect("abort");
    let end = p.log_end_offset();
    assert!(matches!(
        append(&p, 5, Some(guard), 0),
        Err(PartitionError::TxnNotVerified { producer_id: 5 })
    ));
    assert_eq!(p.log_end_offset(), end, "nothing written");
    assert_eq!(p.last_stable_offset(), end);
    // Producer 6's verification is untouched by producer 5's marker.
    assert_eq!(append(&p, 6, Some(other), 0).expect("verified"), end);
    // A used guard is not accepted twice.
    p.append_marker(6, 0, Marker::Commit, 0, 0).expect("commit");
    assert!(append(&p, 6, Some(other), 1).is_err());
}
