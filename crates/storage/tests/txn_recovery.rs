//! Producer state and aborted transactions after a crash, over many segment rolls: a log
//! reopened in Scan (crash) mode, or with its producer snapshots or `.txnindex` files
//! damaged or missing, must answer exactly as the same log that never crashed: last stable
//! offset, aborted transactions, every producer's epoch, sequence and open transaction.

use std::fs;
use std::path::{Path, PathBuf};

use weir_storage::testkit::BatchBuilder;
use weir_storage::verify::{verify_log_dir, Mode};
use weir_storage::{
    AbortedTxn, ActiveProducer, Log, LogConfig, Marker, Recovery, PRODUCER_SNAPSHOT_SUFFIX,
    TXN_INDEX_SUFFIX,
};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

/// The long transaction: opened first, never ended by the workload.
const OPEN: i64 = 100;
const COMMITTER: i64 = 2;
const ABORTER: i64 = 3;
const IDEMPOTENT: i64 = 1;

/// Appends with the append clock equal to the batch's timestamp, so that a replay (which
/// can only use the batch's clock) rebuilds the same state.
fn append(log: &Log, mut b: Vec<u8>, ts: i64) -> i64 {
    log.append(&mut b, ts).expect("append").base_offset
}

fn txn(producer: i64, epoch: i16, seq: i32, ts: i64) -> Vec<u8> {
    BatchBuilder::new(ts)
        .records(2, 20)
        .producer(producer, epoch, seq)
        .transactional()
        .build()
}

/// A deterministic workload rolling many segments: one transaction stays open throughout,
/// one producer commits, one aborts (with an epoch bump now and then, as a timeout does),
/// an idempotent producer and plain batches fill the rest. Returns the expected aborts.
fn workload(log: &Log) -> Vec<AbortedTxn> {
    let mut aborts = Vec::new();
    let mut ts = 1_000;
    let mut tick = || {
        ts += 1;
        ts
    };
    let t = tick();
    let open_first = append(log, txn(OPEN, 0, 0, t), t);
    let (mut committer_seq, mut aborter_seq, mut idem_seq) = (0, 0, 0);
    let mut aborter_epoch = 0i16;
    let mut aborter_first = None;
    for step in 0..60 {
        let t = tick();
        append(log, BatchBuilder::new(t).records(1, 30).build(), t);
        let t = tick();
        let b = BatchBuilder::new(t)
            .records(3, 10)
            .producer(IDEMPOTENT, 0, idem_seq)
            .build();
        append(log, b, t);
        idem_seq += 3;
        let t = tick();
        append(log, txn(COMMITTER, 0, committer_seq, t), t);
        committer_seq += 2;
        if step % 3 == 2 {
            let t = tick();
            log.append_marker(COMMITTER, 0, Marker::Commit, 0, t)
                .expect("commit");
        }
        let t = tick();
        let first = append(log, txn(ABORTER, aborter_epoch, aborter_seq, t), t);
        aborter_first.get_or_insert(first);
        aborter_seq += 2;
        if step % 4 == 3 {
            // Every other abort comes with a bumped epoch (a coordinator timeout).
            if step % 8 == 7 {
                aborter_epoch += 1;
                aborter_seq = 0;
            }
            let t = tick();
            let marker = log
                .append_marker(ABORTER, aborter_epoch, Marker::Abort, 0, t)
                .expect("abort");
            aborts.push(AbortedTxn {
                producer_id: ABORTER,
                first_offset: aborter_first.take().expect("open"),
                last_offset: marker.base_offset,
            });
        }
    }
    assert_eq!(log.last_stable_offset(), open_first);
    aborts
}

/// Everything the producer state answers.
#[derive(Debug, PartialEq)]
struct Observed {
    log_end: i64,
    lso: i64,
    aborted: Vec<AbortedTxn>,
    producers: Vec<ActiveProducer>,
}

fn observe(log: &Log) -> Observed {
    Observed {
        log_end: log.log_end_offset(),
        lso: log.last_stable_offset(),
        aborted: log.aborted_transactions(0, i64::MAX),
        producers: log.active_producers(),
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn offset_of(path: &Path) -> i64 {
    let name = path.file_name().expect("name").to_string_lossy();
    name[..20].parse().expect("offset")
}

/// A log after the workload, as it is at the moment of a crash (dropped without close), and
/// what the same log answers.
fn crashed(root: &Path, name: &str) -> (PathBuf, Observed, Vec<AbortedTxn>) {
    let dir = root.join(name);
    let log = Log::create(dir.clone(), config()).expect("create");
    let aborts = workload(&log);
    assert!(log.segment_count() > 10, "{}", log.segment_count());
    let expected = observe(&log);
    assert_eq!(expected.aborted, aborts);
    drop(log);
    (dir, expected, aborts)
}

/// Ends the open transaction and checks the answers of both logs stay equal.
fn end_open_txn_in_both(reference: &Log, recovered: &Log) {
    for log in [reference, recovered] {
        log.append_marker(OPEN, 1, Marker::Abort, 0, 999_999)
            .expect("abort the open transaction");
    }
    let a = observe(reference);
    assert_eq!(a, observe(recovered));
    assert_eq!(a.lso, a.log_end, "nothing is open any more");
    let open = a
        .aborted
        .iter()
        .find(|t| t.producer_id == OPEN)
        .expect("the open transaction is aborted");
    assert_eq!(
        open.first_offset, 0,
        "from its first batch, many segments back"
    );
}

#[test]
fn crash_after_many_rolls_recovers_an_open_transaction() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, expected, _) = crashed(root.path(), "crash");
    let v = verify_log_dir(&dir, Mode::AfterCrash).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
    let (log, report) = Log::open(dir.clone(), config(), Recovery::Scan).expect("open");
    // Loaded from the snapshot of the last roll; only the active segment is replayed.
    let newest = files(&dir, PRODUCER_SNAPSHOT_SUFFIX)
        .last()
        .map(|p| offset_of(p))
        .expect("snapshots written at rolls");
    assert_eq!(report.producer_snapshot, Some(newest));
    assert!(report.replayed_batches < 20, "{}", report.replayed_batches);
    assert_eq!(observe(&log), expected);
    assert_eq!(expected.lso, 0, "the first transaction is still open");
    // An idempotent retry is still recognised.
    let retry = BatchBuilder::new(5)
        .records(3, 10)
        .producer(IDEMPOTENT, 0, 177)
        .build();
    assert!(log.append(&mut retry.clone(), 5).expect("retry").duplicate);

    let reference = Log::create(root.path().join("reference"), config()).expect("create");
    workload(&reference);
    assert!(
        reference
            .append(&mut retry.clone(), 5)
            .expect("retry")
            .duplicate
    );
    end_open_txn_in_both(&reference, &log);

    // A clean close and reopen keeps all of it, replaying nothing.
    let after = observe(&log);
    log.close().expect("close");
    drop(log);
    let v = verify_log_dir(&dir, Mode::Clean).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
    let (log, report) = Log::open(dir, config(), Recovery::Clean).expect("reopen");
    assert_eq!(report.producer_snapshot, Some(after.log_end));
    assert_eq!(report.replayed_batches, 0);
    assert_eq!(observe(&log), after);
}

#[test]
fn damaged_or_missing_snapshots_fall_back_to_older_ones_or_the_whole_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, expected, _) = crashed(root.path(), "crash");
    let snapshots = files(&dir, PRODUCER_SNAPSHOT_SUFFIX);
    assert!(snapshots.len() > 10, "one per roll: {}", snapshots.len());
    let keep = |p: &PathBuf| (p.clone(), fs::read(p).expect("read"));
    let originals: Vec<(PathBuf, Vec<u8>)> = snapshots.iter().map(keep).collect();
    let restore = || {
        for (p, bytes) in &originals {
            fs::write(p, bytes).expect("restore");
        }
    };

    // The newest cut short, the next one garbled: the third newest is used.
    let n = snapshots.len();
    let (newest, bytes) = &originals[n - 1];
    fs::write(newest, &bytes[..bytes.len() / 2]).expect("cut");
    let (second, bytes) = &originals[n - 2];
    let mut garbled = bytes.clone();
    garbled[10] ^= 0x40;
    fs::write(second, garbled).expect("garble");
    let (log, report) = Log::open(dir.clone(), config(), Recovery::Scan).expect("open");
    assert_eq!(report.producer_snapshot, Some(offset_of(&snapshots[n - 3])));
    assert_eq!(observe(&log), expected);
    drop(log);
    assert!(!newest.exists(), "a damaged snapshot is removed");
    restore();

    // None at all: the whole log is replayed, never "no producers".
    for p in &snapshots {
        fs::remove_file(p).expect("remove");
    }
    let (log, report) = Log::open(dir.clone(), config(), Recovery::Scan).expect("open");
    assert_eq!(report.producer_snapshot, None);
    assert!(report.replayed_batches > 200, "{}", report.replayed_batches);
    assert_eq!(observe(&log), expected);
    drop(log);
    restore();

    // A damaged `.txnindex` of a sealed segment: the replay starts below it and the file is
    // rewritten whole.
    let txn_indexes = files(&dir, TXN_INDEX_SUFFIX);
    assert!(txn_indexes.len() > 3, "{txn_indexes:?}");
    let damaged = &txn_indexes[2];
    let original = fs::read(damaged).expect("read");
    fs::write(damaged, &original[..original.len() - 3]).expect("cut");
    let (log, report) = Log::open(dir.clone(), config(), Recovery::Clean).expect("open");
    assert!(report
        .producer_snapshot
        .is_some_and(|o| o <= offset_of(damaged)));
    assert_eq!(observe(&log), expected);
    drop(log);
    assert_eq!(fs::read(damaged).expect("rewritten"), original);

    // A snapshot beyond the log end (its batches are gone) is never used.
    let beyond = dir.join(format!(
        "{:020}{PRODUCER_SNAPSHOT_SUFFIX}",
        expected.log_end + 5
    ));
    fs::copy(&snapshots[0], &beyond).expect("copy");
    let (log, _) = Log::open(dir.clone(), config(), Recovery::Scan).expect("open");
    assert_eq!(observe(&log), expected);
    assert!(!beyond.exists());
}

#[test]
fn retention_deletes_snapshots_and_indexes_with_their_segments() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, expected, aborts) = crashed(root.path(), "crash");
    let (log, _) = Log::open(dir.clone(), config(), Recovery::Scan).expect("open");
    // Deep into the log, past several aborts, but the open transaction stays open.
    let cut = aborts[aborts.len() / 2].last_offset + 1;
    log.delete_records_before(cut).expect("delete records");
    let first_base = offset_of(files(&dir, ".log").first().expect("a segment"));
    assert!(first_base > 0 && first_base <= cut);
    for p in files(&dir, PRODUCER_SNAPSHOT_SUFFIX) {
        assert!(offset_of(&p) >= first_base, "{p:?} outlived its segment");
    }
    for p in files(&dir, TXN_INDEX_SUFFIX) {
        assert!(offset_of(&p) >= first_base, "{p:?} outlived its segment");
    }
    // One snapshot per segment at most: the one at its base.
    let bases: Vec<i64> = files(&dir, ".log").iter().map(|p| offset_of(p)).collect();
    for p in files(&dir, PRODUCER_SNAPSHOT_SUFFIX) {
        assert!(bases.contains(&offset_of(&p)), "{p:?}");
    }
    let after = observe(&log);
    assert_eq!(after.lso, 0, "the open transaction's start stays the LSO");
    assert_eq!(after.producers, expected.producers);
    drop(log);
    let (log, _) = Log::open(dir, config(), Recovery::Scan).expect("reopen");
    let reopened = observe(&log);
    assert_eq!(reopened.producers, expected.producers);
    assert_eq!(reopened.lso, 0);
    // Aborts wholly below the log start may go with their segments; the rest stay.
    let kept: Vec<AbortedTxn> = expected
        .aborted
        .iter()
        .filter(|a| a.last_offset >= first_base)
        .copied()
        .collect();
    assert_eq!(reopened.aborted, kept);
}
