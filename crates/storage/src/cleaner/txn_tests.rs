//! The cleaner with transactions and idempotent producers: the `.txnindex` files and the
//! producer snapshots of the segments it replaces, across crashes at each swap step.

use std::collections::BTreeSet;
use std::path::Path;

use super::tests::{
    assert_verifies, config, latest, put, read_all, txn_batch, Entry, DELETE_RETENTION, NOW,
};
use super::*;
use crate::batch::Marker;
use crate::config::Recovery;
use crate::producer::SNAPSHOT_SUFFIX;
use crate::segment::{parse_file_name, LOG_SUFFIX};
use crate::testkit::BatchBuilder;
use crate::txn_index::{self, TXN_INDEX_SUFFIX};
use crate::verify::Mode;

fn idempotent(pid: i64, seq: i32, key: &str) -> Vec<u8> {
    BatchBuilder::new(NOW)
        .producer(pid, 0, seq)
        .record(NOW, Some(key.as_bytes()), Some(b"idempotent"))
        .build()
}

/// Enough updates of the same 12 keys to roll a few segments.
fn filler(log: &Log, round: usize) {
    for i in 0..12 {
        put(
            log,
            &format!("filler{i}"),
            Some(&format!("{round:040}")),
            NOW,
        );
    }
}

/// Offsets named by the files of `dir` ending in `suffix`.
fn offsets_of(dir: &Path, suffix: &str) -> BTreeSet<i64> {
    std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| parse_file_name(&e.expect("entry").file_name().to_string_lossy(), suffix))
        .collect()
}

/// What a reopen must rebuild: aborted transactions (producer, marker offset), the last
/// stable offset, and each producer's (id, epoch, last sequence, open transaction).
///
/// An aborted transaction's first offset is not compared: a replay of a cleaned log starts
/// it at its first batch still there (the cleaner keeps a producer's newest batch, emptied),
/// which hides the same records from read_committed readers, since the ones before it are
/// gone; `assert_no_aborted_records` checks that.
#[derive(Debug, PartialEq)]
struct TxnState {
    aborted: Vec<(i64, i64)>,
    last_stable: i64,
    producers: Vec<(i64, i16, i32, Option<i64>)>,
}

fn txn_state(log: &Log) -> TxnState {
    let mut producers: Vec<_> = log
        .active_producers()
        .into_iter()
        .map(|p| {
            (
                p.producer_id,
                p.producer_epoch,
                p.last_sequence,
                p.current_txn_start_offset,
            )
        })
        .collect();
    producers.sort_unstable();
    TxnState {
        aborted: log
            .aborted_transactions(0, log.log_end_offset())
            .iter()
            .map(|a| (a.producer_id, a.last_offset))
            .collect(),
        last_stable: log.last_stable_offset(),
        producers,
    }
}

/// An idempotent producer, an aborted and a committed transaction in the sealed segments,
/// and a transaction left open at the end.
fn mixed_log(log: &Log) {
    log.append(&mut idempotent(5, 0, "i"), NOW).expect("append");
    log.append(&mut txn_batch(7, 0, "x", "aborted-1"), NOW)
        .expect("append");
    log.append(&mut txn_batch(7, 1, "y", "aborted-2"), NOW)
        .expect("append");
    log.append_marker(7, 0, Marker::Abort, 0, NOW)
        .expect("abort");
    filler(log, 0);
    log.append(&mut idempotent(5, 1, "i"), NOW).expect("append");
    log.append(&mut txn_batch(8, 0, "z", "committed"), NOW)
        .expect("append");
    log.append_marker(8, 0, Marker::Commit, 0, NOW)
        .expect("commit");
    filler(log, 1);
    log.append(&mut txn_batch(9, 0, "open", "pending"), NOW)
        .expect("append");
}

/// No record of an aborted transaction is readable outside the aborted ranges the log
/// reports (the cleaner removed them all).
fn assert_no_aborted_records(log: &Log, aborted: &[(i64, i64)]) {
    let ranges = log.aborted_transactions(0, log.log_end_offset());
    for e in read_all(log) {
        if let Entry::Record { offset, pid, .. } = e {
            let in_aborted_txn = aborted
                .iter()
                .any(|&(p, marker)| p == pid && offset < marker && offset > marker - 10);
            let hidden = ranges.iter().any(|a| {
                a.producer_id == pid && a.first_offset <= offset && offset <= a.last_offset
            });
            assert!(
                !in_aborted_txn || hidden,
                "record {offset} of {pid} readable"
            );
        }
    }
}

fn assert_no_orphans(dir: &Path) {
    let logs = offsets_of(dir, LOG_SUFFIX);
    let txn = offsets_of(dir, TXN_INDEX_SUFFIX);
    assert!(
        txn.is_subset(&logs),
        "txn indexes {txn:?}, segments {logs:?}"
    );
}

#[test]
fn a_crash_at_each_swap_step_rebuilds_producers_and_aborted_transactions() {
    for step in [
        Some(Step::Cleaned),
        Some(Step::Committed),
        Some(Step::OldRemoved),
        Some(Step::Renamed),
        Some(Step::Swapped),
        None,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let log = Log::create(path.clone(), config()).expect("create");
        mixed_log(&log);
        let before = txn_state(&log);
        assert_eq!(before.aborted.len(), 1, "{before:?}");
        assert!(before.last_stable < log.log_end_offset());
        // The aborted records ("x", "y") go with the first pass that gets to them.
        let committed = |log: &Log| {
            let mut m = latest(&read_all(log));
            m.retain(|k, _| k != "x" && k != "y");
            m
        };
        let records = committed(&log);
        let mut cleaner = Cleaner::new(1 << 20, None);
        cleaner.stop_after = step;
        match step {
            Some(_) => drop(cleaner.clean(&log, NOW).expect_err("stopped")),
            None => drop(cleaner.clean(&log, NOW).expect("clean").expect("cleaned")),
        }
        assert_eq!(txn_state(&log), before, "{step:?}: in memory");
        // The process dies here.
        drop(log);
        assert_verifies(&path, Mode::AfterCrash);
        let (log, _) = Log::open(path.clone(), config(), Recovery::Scan).expect("reopen");
        assert_eq!(txn_state(&log), before, "{step:?}: reopened");
        assert_no_aborted_records(&log, &before.aborted);
        assert_eq!(committed(&log), records, "{step:?}");
        assert_no_orphans(&path);
        // The newest snapshot lost too: a replay of the (cleaned) log from its first segment.
        drop(log);
        for offset in offsets_of(&path, SNAPSHOT_SUFFIX) {
            std::fs::remove_file(path.join(crate::segment::file_name(offset, SNAPSHOT_SUFFIX)))
                .expect("rm");
        }
        let (log, report) = Log::open(path.clone(), config(), Recovery::Scan).expect("reopen");
        assert_eq!(report.producer_snapshot, None);
        assert_eq!(txn_state(&log), before, "{step:?}: replayed");
        assert_no_aborted_records(&log, &before.aborted);
        // A later pass finishes the job; a clean close leaves files that verify strictly.
        cleaner.stop_after = None;
        cleaner.clean(&log, NOW).expect("clean");
        assert_eq!(txn_state(&log), before, "{step:?}: cleaned again");
        log.close().expect("close");
        drop(log);
        assert_verifies(&path, Mode::Clean);
        assert_no_orphans(&path);
    }
}

/// Every aborted-transaction entry in the `.txnindex` files of `dir`.
fn txn_index_entries(dir: &Path) -> Vec<AbortedTxn> {
    offsets_of(dir, TXN_INDEX_SUFFIX)
        .into_iter()
        .flat_map(|base| {
            let bytes = std::fs::read(dir.join(crate::segment::file_name(base, TXN_INDEX_SUFFIX)))
                .expect("read");
            txn_index::decode(&bytes).expect("valid txn index")
        })
        .collect()
}

#[test]
fn a_removed_abort_marker_takes_its_index_entry_and_older_snapshots_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config()).expect("create");
    // Producer 7's aborted transaction spans a roll: the snapshot at that roll holds it open.
    log.append(&mut txn_batch(7, 0, "x", "aborted"), NOW)
        .expect("append");
    filler(&log, 0);
    let abort = log
        .append_marker(7, 0, Marker::Abort, 0, NOW)
        .expect("abort")
        .base_offset;
    let inside: Vec<i64> = offsets_of(&path, SNAPSHOT_SUFFIX)
        .into_iter()
        .filter(|&o| o > 0 && o <= abort)
        .collect();
    assert!(!inside.is_empty(), "a snapshot with the transaction open");
    // Its later transaction is its newest batch, so the aborted one's batch can go.
    log.append(&mut txn_batch(7, 1, "w", "later"), NOW)
        .expect("append");
    log.append_marker(7, 0, Marker::Commit, 0, NOW)
        .expect("commit");
    filler(&log, 1);
    let mut cleaner = Cleaner::new(1 << 20, None);
    cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
    assert_eq!(log.aborted_transactions(0, log.log_end_offset()).len(), 1);
    assert_eq!(txn_index_entries(&path).len(), 1);
    filler(&log, 2);
    let stats = cleaner
        .clean(&log, NOW + 1 + DELETE_RETENTION)
        .expect("clean")
        .expect("cleaned");
    assert_eq!(stats.markers_removed, 1, "{stats:?}");
    let entries = read_all(&log);
    assert!(
        !entries
            .iter()
            .any(|e| matches!(e, Entry::Marker { offset, .. } if *offset == abort)),
        "{entries:?}"
    );
    // Nothing left to skip: the entry is gone, in memory and on disk.
    assert_eq!(log.aborted_transactions(0, log.log_end_offset()), vec![]);
    assert_eq!(txn_index_entries(&path), vec![]);
    let snapshots = offsets_of(&path, SNAPSHOT_SUFFIX);
    assert!(
        snapshots.iter().all(|&o| o > abort),
        "snapshots inside the cleaned range go: {snapshots:?}"
    );
    let before = txn_state(&log);
    assert_eq!(before.last_stable, log.log_end_offset());
    log.close().expect("close");
    drop(log);
    assert_verifies(&path, Mode::Clean);

    // The snapshots after the removed marker lost: the replay must not start from one that
    // holds the transaction open, which no marker would ever close.
    for offset in offsets_of(&path, SNAPSHOT_SUFFIX) {
        std::fs::remove_file(path.join(crate::segment::file_name(offset, SNAPSHOT_SUFFIX)))
            .expect("rm");
    }
    let (log, _) = Log::open(path.clone(), config(), Recovery::Scan).expect("reopen");
    let after = txn_state(&log);
    assert_eq!(after.last_stable, log.log_end_offset(), "{after:?}");
    assert_eq!(after, before);
}
