use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::*;
use crate::batch::{Batches, Marker};
use crate::config::{Compaction, LogConfig, Recovery};
use crate::testkit::BatchBuilder;
use crate::verify::{verify_log_dir, Mode};

pub(super) const NOW: i64 = 1_000_000;
pub(super) const DELETE_RETENTION: i64 = 10_000;

pub(super) fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        retention_ms: -1,
        compaction: Compaction {
            compact: true,
            delete: false,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: DELETE_RETENTION,
        },
        ..LogConfig::default()
    }
}

pub(super) fn put(log: &Log, key: &str, value: Option<&str>, ts: i64) -> i64 {
    let mut b = BatchBuilder::new(ts)
        .record(ts, Some(key.as_bytes()), value.map(str::as_bytes))
        .build();
    log.append(&mut b, ts).expect("append").base_offset
}

/// One entry per record or marker, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    Record {
        offset: i64,
        key: Option<String>,
        value: Option<String>,
        pid: i64,
    },
    Marker {
        offset: i64,
        pid: i64,
        commit: bool,
    },
    /// A batch whose records were all removed but which was kept.
    Empty {
        offset: i64,
        pid: i64,
    },
}

fn offset_of(e: &Entry) -> i64 {
    match e {
        Entry::Record { offset, .. }
        | Entry::Marker { offset, .. }
        | Entry::Empty { offset, .. } => *offset,
    }
}

pub(super) fn read_all(log: &Log) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20).expect("read");
        if r.records.is_empty() {
            break;
        }
        for b in Batches::new(&r.records, Check::Full) {
            let b = b.expect("valid batch");
            let h = b.header;
            if h.is_control() {
                out.push(Entry::Marker {
                    offset: h.base_offset,
                    pid: h.producer_id(),
                    commit: batch::marker_of(b.bytes) == Some(Marker::Commit),
                });
            } else {
                let body = records::body(&h, b.bytes).expect("body");
                let rs = records::records(&h, &body).expect("records");
                if rs.is_empty() {
                    out.push(Entry::Empty {
                        offset: h.base_offset,
                        pid: h.producer_id(),
                    });
                }
                for rec in rs {
                    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
                    out.push(Entry::Record {
                        offset: rec.offset,
                        key: rec.key.map(text),
                        value: (!rec.is_tombstone()).then(|| value_of(rec.bytes)),
                        pid: h.producer_id(),
                    });
                }
            }
            offset = h.last_offset() + 1;
        }
    }
    let offsets: Vec<i64> = out.iter().map(offset_of).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets ascend: {offsets:?}"
    );
    out
}

/// The value of a record (its last length-prefixed field before the headers count).
fn value_of(record: &[u8]) -> String {
    let mut pos = 0;
    let _len = batch::read_zigzag(record, &mut pos, 5);
    pos += 1;
    let _ts = batch::read_zigzag(record, &mut pos, 10);
    let _od = batch::read_zigzag(record, &mut pos, 5);
    let klen = batch::read_zigzag(record, &mut pos, 5).unwrap_or(-1);
    pos += usize::try_from(klen.max(0)).unwrap_or(0);
    let vlen = batch::read_zigzag(record, &mut pos, 5).unwrap_or(-1);
    let v = &record[pos..pos + usize::try_from(vlen.max(0)).unwrap_or(0)];
    String::from_utf8_lossy(v).into_owned()
}

/// key → (offset, value) of the records present.
pub(super) fn latest(entries: &[Entry]) -> BTreeMap<String, (i64, Option<String>)> {
    let mut m = BTreeMap::new();
    for e in entries {
        if let Entry::Record {
            offset,
            key: Some(k),
            value,
            ..
        } = e
        {
            m.insert(k.clone(), (*offset, value.clone()));
        }
    }
    m
}

fn keys_seen_twice(entries: &[Entry]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut twice = Vec::new();
    for e in entries {
        if let Entry::Record { key: Some(k), .. } = e {
            if !seen.insert(k.clone()) {
                twice.push(k.clone());
            }
        }
    }
    twice
}

pub(super) fn assert_verifies(dir: &Path, mode: Mode) {
    let v = verify_log_dir(dir, mode).expect("verify");
    assert!(v.is_consistent(), "{:?}", v.problems);
}

/// 20 keys, 10 rounds of updates (segments of a few batches each).
fn updates(log: &Log) -> BTreeMap<String, (i64, Option<String>)> {
    let mut expected = BTreeMap::new();
    for round in 0..10 {
        for k in 0..20 {
            let key = format!("k{k:02}");
            let value = format!("v{round}-{k}");
            let at = put(log, &key, Some(&value), NOW - 100_000 + round);
            expected.insert(key, (at, Some(value)));
        }
    }
    expected
}

#[test]
fn latest_value_per_key_survives_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config()).expect("create");
    let expected = updates(&log);
    let active_before = log
        .cleaner_view()
        .expect("view")
        .segments
        .last()
        .map(|s| (s.base_offset(), s.len()));
    let size_before = log.size_bytes();
    let due = cleanability(&log, NOW)
        .expect("cleanability")
        .expect("dirty");
    assert!(due.due && (due.dirty_ratio - 1.0).abs() < 1e-9, "{due:?}");

    let mut cleaner = Cleaner::new(1 << 20, None);
    let stats = cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
    assert!(!stats.map_full);
    assert!(stats.records_removed > 150, "{stats:?}");
    let after = read_all(&log);
    let active_base = active_before.map(|a| a.0).expect("active");
    // Below the active segment every key appears once, with its latest value, at the offset
    // it was written at.
    let cleaned: Vec<Entry> = after
        .iter()
        .filter(|e| offset_of(e) < active_base)
        .cloned()
        .collect();
    assert!(keys_seen_twice(&cleaned).is_empty(), "{cleaned:?}");
    assert_eq!(latest(&after), expected);
    // The active segment is untouched.
    let view = log.cleaner_view().expect("view");
    assert_eq!(
        view.segments.last().map(|s| (s.base_offset(), s.len())),
        active_before
    );
    assert!(log.size_bytes() < size_before / 2);
    assert_eq!(log.log_end_offset(), 200);
    // Nothing dirty any more; the checkpoint says so durably.
    assert_eq!(cleanability(&log, NOW).expect("cleanability"), None);
    assert_eq!(cleaner.clean(&log, NOW).expect("clean"), None);
    let cp = Checkpoint::load(&path).expect("load").expect("checkpoint");
    assert_eq!(cp.first_dirty, active_base);

    log.close().expect("close");
    drop(log);
    assert_verifies(&path, Mode::Clean);
    // The gaps are legal only because the checkpoint says the log is compacted.
    let saved = std::fs::read(path.join(CLEANER_CHECKPOINT)).expect("checkpoint");
    std::fs::remove_file(path.join(CLEANER_CHECKPOINT)).expect("rm");
    let v = verify_log_dir(&path, Mode::Clean).expect("verify");
    assert!(
        v.problems.iter().any(|p| p.what.contains("was expected")),
        "{:?}",
        v.problems
    );
    std::fs::write(path.join(CLEANER_CHECKPOINT), saved).expect("restore");
    let (log, _) = Log::open(path.clone(), config(), Recovery::Clean).expect("reopen");
    assert_eq!(read_all(&log), after);
    // Reads from any offset, gaps included, find the next record.
    for o in 0..200 {
        let r = log.read(o, 1).expect("read");
        let first = Batches::new(&r.records, Check::Full)
            .next()
            .expect("a batch")
            .expect("ok");
        assert!(first.header.last_offset() >= o);
    }
}

#[test]
fn tombstones_go_only_after_delete_retention_since_first_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config()).expect("create");
    put(&log, "a", Some("1"), NOW);
    put(&log, "b", Some("1"), NOW);
    let tomb = put(&log, "a", None, NOW);
    for i in 0..12 {
        put(
            &log,
            &format!("filler{i}"),
            Some("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            NOW,
        );
    }
    let mut cleaner = Cleaner::new(1 << 20, None);
    cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
    let m = latest(&read_all(&log));
    assert_eq!(
        m.get("a"),
        Some(&(tomb, None)),
        "the tombstone replaces the value"
    );
    // New dirty data makes later passes run; the tombstone stays until its clock runs out.
    let more = |log: &Log, round: i64| {
        for i in 0..12 {
            put(
                log,
                &format!("filler{i}"),
                Some(&format!("{round:040}")),
                NOW,
            );
        }
    };
    more(&log, 1);
    cleaner
        .clean(&log, NOW + DELETE_RETENTION - 1)
        .expect("clean")
        .expect("cleaned");
    assert_eq!(latest(&read_all(&log)).get("a"), Some(&(tomb, None)));
    more(&log, 2);
    let stats = cleaner
        .clean(&log, NOW + DELETE_RETENTION)
        .expect("clean")
        .expect("cleaned");
    assert_eq!(stats.tombstones_removed, 1, "{stats:?}");
    let m = latest(&read_all(&log));
    assert_eq!(m.get("a"), None);
    assert!(m.contains_key("b"));
}

pub(super) fn txn_batch(pid: i64, seq: i32, key: &str, value: &str) -> Vec<u8> {
    BatchBuilder::new(NOW)
        .producer(pid, 0, seq)
        .transactional()
        .record(NOW, Some(key.as_bytes()), Some(value.as_bytes()))
        .build()
}

#[test]
fn aborted_records_go_and_markers_follow_their_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config()).expect("create");
    put(&log, "x", Some("plain"), NOW);
    log.append(&mut txn_batch(7, 0, "x", "aborted-1"), NOW)
        .expect("append");
    log.append(&mut txn_batch(7, 1, "y", "aborted-2"), NOW)
        .expect("append");
    log.append_marker(7, 0, Marker::Abort, 0, NOW)
        .expect("abort");
    log.append(&mut txn_batch(8, 0, "z", "committed"), NOW)
        .expect("append");
    log.append_marker(8, 0, Marker::Commit, 0, NOW)
        .expect("commit");
    for i in 0..12 {
        put(
            &log,
            &format!("filler{i}"),
            Some("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            NOW,
        );
    }
    let mut cleaner = Cleaner::new(1 << 20, None);
    cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
    let entries = read_all(&log);
    let m = latest(&entries);
    assert_eq!(m.get("x").map(|v| v.1.as_deref()), Some(Some("plain")));
    assert!(!m.contains_key("y"), "aborted data removed: {entries:?}");
    assert_eq!(m.get("z").map(|v| v.1.as_deref()), Some(Some("committed")));
    // Producer 7's newest batch stays, emptied, so its sequence survives; so does its marker.
    assert!(
        entries.contains(&Entry::Empty { offset: 2, pid: 7 }),
        "{entries:?}"
    );
    assert!(entries.iter().any(|e| matches!(
        e,
        Entry::Marker {
            pid: 7,
            commit: false,
            ..
        }
    )));
    assert!(entries.iter().any(|e| matches!(
        e,
        Entry::Marker {
            pid: 8,
            commit: true,
            ..
        }
    )));
    // The aborted range is still reported to read_committed readers.
    assert_eq!(log.aborted_transactions(0, 10).len(), 1);

    // Producer 7 moves on; 8's value is superseded. After delete.retention.ms producer 7's
    // abort marker has no data left and goes; producer 8's newest batch stays (emptied), and
    // with it its commit marker.
    log.append(&mut txn_batch(7, 2, "w", "later"), NOW)
        .expect("append");
    log.append_marker(7, 0, Marker::Commit, 0, NOW)
        .expect("commit");
    put(&log, "z", Some("plain-z"), NOW);
    for i in 0..12 {
        put(
            &log,
            &format!("filler{i}"),
            Some("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"),
            NOW,
        );
    }
    cleaner
        .clean(&log, NOW + 1)
        .expect("clean")
        .expect("cleaned");
    for i in 0..12 {
        put(
            &log,
            &format!("filler{i}"),
            Some("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
            NOW,
        );
    }
    let stats = cleaner
        .clean(&log, NOW + 1 + DELETE_RETENTION)
        .expect("clean")
        .expect("cleaned");
    let entries = read_all(&log);
    assert_eq!(stats.markers_removed, 1, "{stats:?} {entries:?}");
    assert!(
        !entries.iter().any(|e| matches!(
            e,
            Entry::Marker {
                pid: 7,
                commit: false,
                ..
            }
        )),
        "{entries:?}"
    );
    assert!(!entries.contains(&Entry::Empty { offset: 2, pid: 7 }));
    assert!(entries.contains(&Entry::Empty { offset: 4, pid: 8 }));
    assert!(entries.contains(&Entry::Marker {
        offset: 5,
        pid: 8,
        commit: true
    }));
    let m = latest(&entries);
    assert_eq!(m.get("w").map(|v| v.1.as_deref()), Some(Some("later")));
    assert_eq!(m.get("z").map(|v| v.1.as_deref()), Some(Some("plain-z")));
    log.close().expect("close");
    drop(log);
    assert_verifies(&path, Mode::Clean);
}

#[test]
fn open_transactions_and_recent_records_are_not_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let lagged = LogConfig {
        compaction: Compaction {
            min_compaction_lag_ms: 50_000,
            ..config().compaction
        },
        ..config()
    };
    let log = Log::create(path.clone(), lagged).expect("create");
    // Old enough: cleanable.
    for i in 0..15 {
        put(&log, "old", Some(&format!("{i:030}")), NOW - 60_000);
    }
    let boundary = log.log_end_offset();
    // Newer than the lag: kept as written, in sealed segments too.
    for i in 0..15 {
        put(&log, "new", Some(&format!("{i:030}")), NOW - 10_000);
    }
    put(&log, "filler", Some("x"), NOW);
    let mut cleaner = Cleaner::new(1 << 20, None);
    cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
    let entries = read_all(&log);
    let news = entries
        .iter()
        .filter(|e| matches!(e, Entry::Record { key: Some(k), .. } if k == "new"))
        .count();
    assert_eq!(news, 15, "records newer than min.compaction.lag.ms stay");
    let olds: Vec<_> = entries
        .iter()
        .filter(|e| matches!(e, Entry::Record { key: Some(k), .. } if k == "old"))
        .collect();
    // Only the segment holding the lag boundary may keep older duplicates.
    assert!(olds.len() < 15, "{olds:?}");
    assert!(olds.iter().all(|e| offset_of(e) < boundary));

    // An open transaction bounds the cleanable range.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let log = Log::create(dir2.path().join("p-0"), config()).expect("create");
    log.append(&mut txn_batch(9, 0, "t", "open"), NOW)
        .expect("append");
    for i in 0..15 {
        put(&log, "k", Some(&format!("{i:030}")), NOW);
    }
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(cleaner.clean(&log, NOW).expect("clean"), None);
    assert_eq!(read_all(&log).len(), 16);
}

#[test]
fn a_full_map_cleans_the_prefix_that_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config()).expect("create");
    let expected = updates(&log);
    let segments_before = log.segment_count();
    // Room for 10 keys: half a round of 20 keys per pass.
    let mut cleaner = Cleaner::new(SLOT_BYTES * 12, None);
    assert_eq!(cleaner.map_capacity(), 10);
    let mut passes = 0;
    let mut last_first_dirty = 0;
    while let Some(stats) = cleaner.clean(&log, NOW).expect("clean") {
        passes += 1;
        assert!(stats.keys_mapped <= 10);
        assert!(stats.first_dirty_after > last_first_dirty);
        last_first_dirty = stats.first_dirty_after;
        assert!(passes < 50);
    }
    assert!(passes > 3, "{passes}");
    // Later passes merged the small cleaned segments.
    assert!(
        log.segment_count() < segments_before / 2,
        "{}",
        log.segment_count()
    );
    let entries = read_all(&log);
    assert_eq!(latest(&entries), expected);
    let active = log
        .cleaner_view()
        .expect("view")
        .segments
        .last()
        .map(|s| s.base_offset())
        .expect("active");
    let cleaned: Vec<Entry> = entries
        .iter()
        .filter(|e| offset_of(e) < active)
        .cloned()
        .collect();
    assert!(keys_seen_twice(&cleaned).is_empty(), "{cleaned:?}");
}

#[test]
fn a_crash_at_any_step_of_a_swap_loses_and_duplicates_nothing() {
    for step in [
        Step::Cleaned,
        Step::Committed,
        Step::OldRemoved,
        Step::Renamed,
        Step::Swapped,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p-0");
        let log = Log::create(path.clone(), config()).expect("create");
        let expected = updates(&log);
        let original = read_all(&log);
        let mut cleaner = Cleaner::new(1 << 20, None);
        cleaner.stop_after = Some(step);
        cleaner.clean(&log, NOW).expect_err("stopped");
        // The process dies here: nothing more is written.
        drop(log);
        assert_verifies(&path, Mode::AfterCrash);
        let (log, _) = Log::open(path.clone(), config(), Recovery::Scan).expect("reopen");
        let entries = read_all(&log);
        assert_eq!(latest(&entries), expected, "{step:?}");
        for e in &entries {
            assert!(original.contains(e), "{step:?}: {e:?} was never written");
        }
        let names: Vec<String> = std::fs::read_dir(&path)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".cleaned") || n.ends_with(".swap")),
            "{step:?}: {names:?}"
        );
        // A later pass finishes the job.
        cleaner.stop_after = None;
        cleaner.clean(&log, NOW).expect("clean");
        let entries = read_all(&log);
        assert_eq!(latest(&entries), expected);
        log.close().expect("close");
        drop(log);
        assert_verifies(&path, Mode::Clean);
    }
}

/// `batch` (uncompressed) with its records compressed by `codec`, CRC recomputed.
fn compressed(batch: &[u8], codec: crate::batch::Compression, bits: i16) -> Vec<u8> {
    use crate::batch::HEADER_LEN;
    let packed = crate::codec::compress(codec, &batch[HEADER_LEN..]).expect("compress");
    let mut out = batch[..HEADER_LEN].to_vec();
    out.extend_from_slice(&packed);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let attributes = i16::from_be_bytes([out[21], out[22]]) | bits;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn compressed_batches_are_cleaned_and_compressed_again() {
    use crate::batch::Compression;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let log = Log::create(path.clone(), config()).expect("create");
    let codecs = [
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ];
    let mut expected = BTreeMap::new();
    for round in 0..6 {
        for (i, &(codec, bits)) in codecs.iter().enumerate() {
            let mut b = BatchBuilder::new(NOW);
            for k in 0..5 {
                let key = format!("c{i}-{k}");
                b = b.record(
                    NOW,
                    Some(key.as_bytes()),
                    Some(format!("{round}").as_bytes()),
                );
            }
            let mut bytes = compressed(&b.build(), codec, bits);
            let base = log.append(&mut bytes, NOW).expect("append").base_offset;
            for k in 0..5 {
                expected.insert(format!("c{i}-{k}"), (base + k, Some(format!("{round}"))));
            }
        }
    }
    let before = read_all(&log);
    assert_eq!(before.len(), 120);
    let mut cleaner = Cleaner::new(1 << 20, None);
    let stats = cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
    let after = read_all(&log);
    assert_eq!(latest(&after), expected);
    let active = log
        .cleaner_view()
        .expect("view")
        .segments
        .last()
        .map(|s| s.base_offset())
        .expect("active");
    let cleaned: Vec<Entry> = after
        .iter()
        .filter(|e| offset_of(e) < active)
        .cloned()
        .collect();
    assert!(keys_seen_twice(&cleaned).is_empty(), "{cleaned:?}");
    assert!(stats.records_removed >= 60, "{stats:?}");
    // Every surviving batch still carries its codec.
    let mut offset = 0;
    let mut codecs_seen = HashSet::new();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20).expect("read");
        for b in Batches::new(&r.records, Check::Full) {
            let b = b.expect("valid");
            if b.header.records_count > 0 {
                assert!(b.header.is_compressed());
                codecs_seen.insert(format!("{:?}", b.header.compression()));
            }
            offset = b.header.last_offset() + 1;
        }
    }
    assert_eq!(codecs_seen.len(), 4, "{codecs_seen:?}");
    log.close().expect("close");
    drop(log);
    assert_verifies(&path, Mode::Clean);
}

#[test]
fn max_compaction_lag_rolls_and_cleans_a_quiet_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quiet = LogConfig {
        segment_bytes: 1 << 20,
        compaction: Compaction {
            max_compaction_lag_ms: 5_000,
            min_cleanable_dirty_ratio: 0.99,
            ..config().compaction
        },
        ..config()
    };
    let log = Log::create(dir.path().join("p-0"), quiet).expect("create");
    for i in 0..10 {
        put(&log, "k", Some(&format!("{i}")), NOW);
    }
    // All in the active segment: nothing to clean until it is older than the lag.
    assert_eq!(cleanability(&log, NOW).expect("cleanability"), None);
    log.enforce_retention(NOW + 4_000).expect("retention");
    assert_eq!(log.segment_count(), 1);
    log.enforce_retention(NOW + 6_000).expect("retention");
    assert_eq!(log.segment_count(), 2, "rolled past max.compaction.lag.ms");
    let c = cleanability(&log, NOW + 6_000)
        .expect("cleanability")
        .expect("dirty");
    assert!(c.overdue && c.due, "{c:?}");
    let mut cleaner = Cleaner::new(1 << 20, None);
    cleaner
        .clean(&log, NOW + 6_000)
        .expect("clean")
        .expect("cleaned");
    let entries = read_all(&log);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(latest(&entries).get("k"), Some(&(9, Some("9".to_string()))));
}
