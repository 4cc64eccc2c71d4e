//! `Log::read` and `Log::read_at_most`: KIP-74's soft limit (the first batch always comes back
//! whole) against the hard one (never more than asked).

use weir_storage::batch::{Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig};

fn sizes(bytes: &[u8]) -> Vec<usize> {
    Batches::new(bytes, Check::Full)
        .map(|b| b.expect("whole batches").bytes.len())
        .collect()
}

/// A log holding a 10 KiB-value batch, then two of 100-byte values.
fn log_with_one_big_batch(root: &std::path::Path) -> (Log, usize, usize) {
    let log = Log::create(root.join("t-0"), LogConfig::default()).expect("create");
    let mut big = BatchBuilder::new(0).records(1, 10 * 1024).build();
    let mut small = BatchBuilder::new(0).records(1, 100).build();
    let (big_len, small_len) = (big.len(), small.len());
    log.append(&mut big, 0).expect("big: 0");
    log.append(&mut small, 0).expect("small: 1");
    let mut small = BatchBuilder::new(0).records(1, 100).build();
    log.append(&mut small, 0).expect("small: 2");
    (log, big_len, small_len)
}

#[test]
fn read_returns_a_first_batch_larger_than_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, big, _) = log_with_one_big_batch(dir.path());
    let out = log.read(0, 100).expect("read");
    assert_eq!(sizes(&out.records), vec![big]);
    assert_eq!(out.log_end_offset, 3);
}

#[test]
fn read_at_most_never_exceeds_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, big, small) = log_with_one_big_batch(dir.path());
    // The first batch alone is too large: nothing, but the offsets are still reported.
    let out = log.read_at_most(0, big - 1).expect("read");
    assert!(out.records.is_empty());
    assert_eq!((out.log_start_offset, out.log_end_offset), (0, 3));
    // Exactly its size fits.
    let out = log.read_at_most(0, big).expect("read");
    assert_eq!(sizes(&out.records), vec![big]);
    // Whole batches only, as many as fit.
    let out = log.read_at_most(1, 2 * small - 1).expect("read");
    assert_eq!(sizes(&out.records), vec![small]);
    let out = log.read_at_most(1, 1 << 20).expect("read");
    assert_eq!(sizes(&out.records), vec![small, small]);
    assert!(log.read_at_most(1, 0).expect("read").records.is_empty());
}
