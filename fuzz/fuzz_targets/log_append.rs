//! Produce input appended to a real partition log: `Log::append_from_client` validates the
//! client's batches (header, CRC, producer sequences, transactions) and writes them; what it
//! accepted must read back. Transaction markers, retention, DeleteRecords and a clean
//! close/reopen are mixed in. One log lives across iterations (recreated every 256) so state
//! builds up. Must never panic.
//!
//! Input: a flags byte, an operation argument, then the produce bytes (whose CRCs are
//! repaired when flag bit 0 is set).
#![no_main]

use std::path::PathBuf;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use weir_fuzz::{fix_crcs, scratch_dir, Input};
use weir_storage::batch::{Batches, Check};
use weir_storage::{Log, LogConfig, Marker, Recovery, StorageError, TimestampType};

struct State {
    dir: PathBuf,
    log: Log,
    runs: u32,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn config(flags: u8) -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 128,
        max_message_bytes: 2048,
        timestamp_type: if flags & 4 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        ..LogConfig::default()
    }
}

fn fresh() -> State {
    let dir = scratch_dir("log_append").join("p-0");
    let log = Log::create(dir.clone(), config(0)).expect("create log");
    State { dir, log, runs: 0 }
}

/// Reads `[from, to)` batch by batch; every read must succeed and make progress.
fn read_range(log: &Log, from: i64, to: i64) {
    let mut offset = from.max(log.log_start_offset());
    let mut reads = 0;
    while offset < to && reads < 32 {
        reads += 1;
        let out = log
            .read(offset, 1 << 14)
            .unwrap_or_else(|e| panic!("read at {offset}: {e}"));
        assert!(!out.records.is_empty(), "empty read at {offset} below {to}");
        let mut last = None;
        for b in Batches::new(&out.records, Check::Full) {
            let b = b.unwrap_or_else(|f| panic!("read at {offset} returned a bad batch: {f:?}"));
            last = Some(b.header.last_offset());
        }
        let last = last.expect("at least one batch");
        assert!(
            last >= offset,
            "read at {offset} returned batches ending at {last}"
        );
        offset = last + 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let arg = input.u32();
    let mut bytes = input.rest().to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut bytes);
    }

    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = guard.get_or_insert_with(fresh);
    state.runs += 1;
    if state.runs > 256 || state.log.is_poisoned() {
        *state = fresh();
    }
    let log = &state.log;
    log.set_config(config(flags));
    let now = 1_000_000 + i64::from(state.runs);

    let end_before = log.log_end_offset();
    match log.append_from_client(&mut bytes, now) {
        Ok(info) => {
            assert!(info.base_offset <= info.last_offset);
            if info.duplicate {
                assert!(info.last_offset < end_before);
            } else {
                assert_eq!(info.base_offset, end_before);
                assert_eq!(log.log_end_offset(), info.last_offset + 1);
            }
            read_range(log, info.base_offset, info.last_offset + 1);
        }
        Err(StorageError::Io { .. } | StorageError::Poisoned { .. }) => {
            panic!("I/O failure on tmpfs")
        }
        Err(_) => assert_eq!(log.log_end_offset(), end_before, "a refused append wrote"),
    }

    // A transaction marker for a producer named by the input.
    if flags & 2 != 0 {
        let marker = if arg & 1 != 0 {
            Marker::Commit
        } else {
            Marker::Abort
        };
        let pid = i64::from(arg >> 8);
        let end = log.log_end_offset();
        if let Ok(info) = log.append_marker(pid, (arg >> 1 & 0x7f) as i16, marker, 0, now) {
            read_range(log, info.base_offset, info.last_offset + 1);
        } else {
            assert_eq!(log.log_end_offset(), end);
        }
    }

    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let lso = log.last_stable_offset();
    assert!(
        start <= end && lso <= end,
        "start {start}, lso {lso}, end {end}"
    );
    let _ = log.aborted_transactions(start, end);
    let _ = log.max_timestamp();
    log.offset_for_timestamp(i64::from(arg))
        .expect("timestamp search over a valid log");

    match flags >> 5 {
        1 => {
            let to = start + i64::from(arg) % (end - start + 1);
            log.delete_records_before(to).expect("delete records");
            assert_eq!(log.log_start_offset(), to.max(start));
            read_range(log, to, end);
        }
        2 => {
            log.enforce_retention(now + i64::from(arg))
                .expect("retention");
            read_range(log, log.log_start_offset(), end);
        }
        3 => {
            // Clean close and reopen: nothing changes.
            log.close().expect("close");
            let dir = state.dir.clone();
            let (log, report) =
                Log::open(dir, config(flags), Recovery::Clean).expect("reopen after close");
            assert_eq!(report.truncated_bytes, 0);
            assert_eq!(log.log_end_offset(), end);
            assert_eq!(log.log_start_offset(), start);
            assert_eq!(log.last_stable_offset(), lso);
            read_range(&log, start, end);
            state.log = log;
        }
        4 => {
            // As after a crash: a scan finds the same log.
            let dir = state.dir.clone();
            let (log, report) =
                Log::open(dir, config(flags), Recovery::Scan).expect("reopen by scanning");
            assert_eq!(report.truncated_bytes, 0);
            assert_eq!(log.log_end_offset(), end);
            read_range(&log, log.log_start_offset(), end);
            state.log = log;
        }
        _ => {}
    }
});
