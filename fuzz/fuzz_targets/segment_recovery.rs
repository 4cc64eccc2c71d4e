//! A partition directory as a crash (or a bad disk) may leave it: a sealed segment, the active
//! segment, their index files, the log start checkpoint, the producer snapshot, the
//! aborted-transaction index and stray files, all from the input. `Log::open` must recover
//! it without panicking, and the recovered log must then read back, accept an append and
//! survive a clean close and reopen unchanged.
//!
//! "Strict" inputs are those recovery promises to repair completely: scan recovery (after a
//! crash), with sealed segments as Weir writes them (they were fsynced before the roll) and
//! the active segment arbitrary. For them every read must succeed. Other inputs (garbage in
//! a sealed segment, index files that contradict their log, a clean open of a torn log) may
//! be refused with errors, never with a panic.
//!
//! Input: two flag bytes, then the fields the flags ask for, in order.
#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use weir_fuzz::{fix_crcs, fix_offsets, scratch_dir, Input};
use weir_storage::batch::{self, Batches, Check};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{
    Log, LogConfig, Recovery, LOG_START_CHECKPOINT, PRODUCER_SNAPSHOT_SUFFIX, TXN_INDEX_SUFFIX,
};

fn name(base: i64, suffix: &str) -> String {
    format!("{base:020}{suffix}")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write scratch file");
}

/// Reads the whole log batch by batch (bounded), then a few probes. In strict mode every
/// read must succeed and return whole valid batches covering the offset asked for.
fn read_back(log: &Log, strict: bool, probe: i64) {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    assert!(start <= end, "log start {start} > end {end}");
    let check = if strict {
        Check::Full
    } else {
        Check::Structure
    };
    let mut offset = start;
    let mut reads = 0;
    while offset < end && reads < 64 {
        reads += 1;
        let out = match log.read(offset, 1 << 13) {
            Ok(out) => out,
            Err(e) => {
                assert!(!strict, "read at {offset} of [{start}, {end}) failed: {e}");
                return;
            }
        };
        if out.records.is_empty() {
            assert!(!strict, "empty read at {offset} of [{start}, {end})");
            return;
        }
        let mut last = None;
        for b in Batches::new(&out.records, check) {
            match b {
                Ok(b) => last = Some(b.header.last_offset()),
                Err(f) => {
                    assert!(!strict, "read at {offset} returned a bad batch: {f:?}");
                    return;
                }
            }
        }
        let Some(last) = last else {
            assert!(!strict, "read at {offset} returned no batch");
            return;
        };
        if last < offset {
            assert!(
                !strict,
                "read at {offset} returned batches ending at {last}"
            );
            return;
        }
        offset = last.saturating_add(1);
    }
    let at_end = log.read(end, 1024).expect("a read at the log end");
    assert!(at_end.records.is_empty());
    if start < end {
        let offset = start + probe.rem_euclid(end - start);
        let read = log.read(offset, 1);
        assert!(!strict || read.is_ok_and(|r| !r.records.is_empty()));
    }
    let found = log.offset_for_timestamp(probe);
    assert!(!strict || found.is_ok(), "timestamp search: {found:?}");
    let _ = log.max_timestamp();
    let _ = log.last_stable_offset();
    let _ = log.aborted_transactions(start, end);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let files = input.u8();
    let scan = flags & 1 != 0;
    let dir = scratch_dir("segment_recovery").join("t-0");
    fs::create_dir_all(&dir).expect("partition directory");
    let mut strict = scan;

    // A sealed segment: batches as Weir writes them, or raw bytes.
    let mut active_base = 0i64;
    if flags & 2 != 0 {
        let base = i64::from(input.u32());
        let mut log = Vec::new();
        let mut next = base;
        if flags & 4 != 0 {
            log.extend_from_slice(input.chunk());
            strict = false;
        } else {
            for _ in 0..input.u8() % 8 {
                let ts = i64::from(input.u16());
                let mut b = BatchBuilder::new(ts)
                    .records(
                        1 + usize::from(input.u8() % 4),
                        usize::from(input.u8() % 32),
                    )
                    .build();
                batch::set_base_offset(&mut b, next).expect("rewrite");
                next += batch::validate(&b).expect("valid").offset_count();
                log.extend_from_slice(&b);
            }
        }
        write(&dir, &name(base, ".log"), &log);
        if flags & 8 != 0 {
            write(&dir, &name(base, ".index"), input.chunk());
            write(&dir, &name(base, ".timeindex"), input.chunk());
            strict = false;
        }
        active_base = next;
    }

    // The active segment: raw bytes, optionally with offsets and CRCs repaired so that
    // recovery gets past its first checks. Its base is where the sealed one ends, or
    // anything (a gap, or near the top of the offset range).
    if flags & 16 != 0 {
        active_base = input.i64() & i64::MAX;
        strict = false;
    }
    let mut active = input.chunk().to_vec();
    if flags & 32 != 0 {
        fix_offsets(&mut active, active_base);
    }
    if flags & 64 != 0 {
        fix_crcs(&mut active);
    }
    if flags & 2 == 0 || active_base != 0 || !active.is_empty() || flags & 128 != 0 {
        write(&dir, &name(active_base, ".log"), &active);
    }
    if flags & 128 != 0 {
        write(&dir, &name(active_base, ".index"), input.chunk());
        write(&dir, &name(active_base, ".timeindex"), input.chunk());
    }

    // The partition's other files.
    if files & 1 != 0 {
        write(&dir, LOG_START_CHECKPOINT, input.chunk());
    }
    if files & 2 != 0 {
        // Named by the offset it claims to describe (bytes 4..12 of a snapshot), so that a
        // real snapshot among the seeds is found where Weir would look for it.
        let snapshot = input.chunk();
        let offset = snapshot
            .get(4..12)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, |b| i64::from_be_bytes(b) & i64::MAX);
        write(&dir, &name(offset, PRODUCER_SNAPSHOT_SUFFIX), snapshot);
    }
    if files & 4 != 0 {
        write(&dir, &name(active_base, TXN_INDEX_SUFFIX), input.chunk());
    }
    if files & 8 != 0 {
        write(
            &dir,
            &format!("{}.tmp", name(active_base, ".log")),
            b"stray",
        );
        write(
            &dir,
            &name(active_base.saturating_add(7), ".index"),
            b"orphan",
        );
    }
    let probe = input.i64();
    let interval = 1 + u32::from(input.u16());
    let config = LogConfig {
        index_interval_bytes: interval,
        ..LogConfig::default()
    };

    let recovery = if scan {
        Recovery::Scan
    } else {
        Recovery::Clean
    };
    let (log, _report) = match Log::open(dir.clone(), config.clone(), recovery) {
        Ok(opened) => opened,
        Err(e) => {
            assert!(!strict, "strict recovery failed: {e}");
            return;
        }
    };
    read_back(&log, strict, probe);

    // The recovered log takes appends at its end.
    let end = log.log_end_offset();
    let mut b = BatchBuilder::new(5).records(2, 3).build();
    match log.append(&mut b, 10) {
        Ok(info) => {
            assert_eq!(info.base_offset, end);
            let out = log
                .read(info.base_offset, 1)
                .expect("read the appended batch");
            assert!(!out.records.is_empty());
        }
        Err(e) => assert!(!strict, "append after recovery: {e}"),
    }

    // A clean close and reopen changes nothing. Only promised for strict inputs: a clean open
    // trusts index files and checks only batch structure up to the last index entry, so damage
    // it did not see (a bad CRC, a negative lastOffsetDelta) can make the next open fall back
    // to a scan that truncates at it.
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    if log.close().is_err() {
        assert!(!strict, "close after recovery failed");
        return;
    }
    drop(log);
    match Log::open(dir, config, Recovery::Clean) {
        Ok((log, report)) => {
            if strict {
                assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
                assert_eq!(report.truncated_bytes, 0);
            }
            read_back(&log, strict, probe);
        }
        Err(e) => assert!(!strict, "reopen after a clean close failed: {e}"),
    }
});
