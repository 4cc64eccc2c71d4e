//! `Log::append_replicated`: a follower's copy keeps the leader's offsets and producer state.

use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Marker, StorageError};

fn log(root: &std::path::Path, name: &str) -> Log {
    Log::create(root.join(name), LogConfig::default()).expect("create")
}

#[test]
fn a_copy_of_the_leaders_batches_is_the_same_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = log(dir.path(), "leader-0");
    let follower = log(dir.path(), "follower-0");
    leader
        .append(&mut BatchBuilder::new(0).records(3, 10).build(), 0)
        .expect("0-2");
    let mut txn = BatchBuilder::new(0)
        .records(2, 10)
        .producer(7, 0, 0)
        .transactional()
        .build();
    leader.append(&mut txn, 0).expect("3-4, open");
    let copied = leader.read(0, 1 << 20).expect("read");
    follower
        .append_replicated(&mut copied.records.to_vec(), 0)
        .expect("copy");
    assert_eq!(follower.log_end_offset(), 5);
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
    assert_eq!(
        follower.read(0, 1 << 20).expect("read").records,
        copied.records
    );

    leader
        .append_marker(7, 0, Marker::Abort, 0, 0)
        .expect("abort: 5");
    let marker = leader.read(5, 1 << 20).expect("read marker");
    follower
        .append_replicated(&mut marker.records.to_vec(), 0)
        .expect("copy marker");
    assert_eq!(follower.last_stable_offset(), 6);
    assert_eq!(
        follower.aborted_transactions(0, 6),
        leader.aborted_transactions(0, 6)
    );
}

#[test]
fn a_copy_out_of_step_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = log(dir.path(), "leader-0");
    let follower = log(dir.path(), "follower-0");
    for _ in 0..2 {
        leader
            .append(&mut BatchBuilder::new(0).records(2, 10).build(), 0)
            .expect("append");
    }
    // The second batch alone (offsets 2-3) does not follow an empty log.
    let second = leader.read(2, 1 << 20).expect("read");
    let err = follower
        .append_replicated(&mut second.records.to_vec(), 0)
        .expect_err("a gap");
    assert!(
        matches!(
            err,
            StorageError::OffsetOutOfRange {
                requested: 2,
                log_end: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(follower.log_end_offset(), 0);
    assert_eq!(follower.size_bytes(), 0);
}
