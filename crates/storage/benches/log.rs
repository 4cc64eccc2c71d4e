//! The partition log's hot paths, in bytes per second: append (validate every batch header
//! and CRC, assign offsets, one positional write, no fsync), read (whole batches from an
//! offset, one positional read) and index lookup (a small read at a random offset, which
//! finds its segment and position through the sparse index), and a transaction's cost on a
//! partition (a transactional batch and its abort marker) after a long history of aborts,
//! which must not grow with that history.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Log, LogConfig, Marker};

/// One 1000-record batch of 1 KiB values: what a producer sends per partition per request.
fn batch() -> Vec<u8> {
    BatchBuilder::new(1_700_000_000_000)
        .records(1000, 1024)
        .build()
}

fn config() -> LogConfig {
    LogConfig {
        // Small segments, so lookups cross segments and retention can bound the bench's disk.
        segment_bytes: 64 << 20,
        retention_bytes: 256 << 20,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::create(dir.path().join("p-0"), config()).expect("create");
    let mut data = batch();
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.measurement_time(Duration::from_secs(3));
    let mut appended = 0u64;
    group.bench_function("append 1 MiB batch", |b| {
        b.iter(|| {
            // The log rewrites the base offset in place; the CRC does not cover it.
            log.append(&mut data, 1_700_000_000_000).expect("append");
            appended += 1;
            if appended == 256 {
                appended = 0;
                log.enforce_retention(1_700_000_000_000).expect("retention");
            }
        })
    });
    group.finish();
}

/// A log of `batches` 1 MiB batches.
fn filled(batches: usize) -> (tempfile::TempDir, Log, i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::create(dir.path().join("p-0"), config()).expect("create");
    let mut data = batch();
    for _ in 0..batches {
        log.append(&mut data, 1_700_000_000_000).expect("append");
    }
    let end = log.log_end_offset();
    (dir, log, end)
}

fn read(c: &mut Criterion) {
    let (_dir, log, end) = filled(200);
    let mut group = c.benchmark_group("log");
    group.measurement_time(Duration::from_secs(3));
    let sample = log.read(0, 1 << 20).expect("read").records.len() as u64;
    group.throughput(Throughput::Bytes(sample));
    let mut offset = 0i64;
    group.bench_function("read 1 MiB from the page cache", |b| {
        b.iter(|| {
            let out = log.read(offset, 1 << 20).expect("read");
            offset = (offset + 1000) % end;
            out.records
        })
    });
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    let (_dir, log, end) = filled(200);
    let mut group = c.benchmark_group("log");
    group.measurement_time(Duration::from_secs(3));
    // A read of one byte returns the whole batch holding the offset (KIP-74).
    let sample = log.read(0, 1).expect("read").records.len() as u64;
    group.throughput(Throughput::Bytes(sample));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    group.bench_function("index lookup + read one batch at a random offset", |b| {
        b.iter_batched(
            || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % end as u64) as i64
            },
            |offset| log.read(offset, 1).expect("read").records,
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn aborted_transaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("log");
    group.measurement_time(Duration::from_secs(3));
    for history in [0usize, 10_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::create(dir.path().join("p-0"), LogConfig::default()).expect("create");
        let mut seq = 0;
        let mut abort = |log: &Log| {
            let mut b = BatchBuilder::new(1_700_000_000_000)
                .records(1, 100)
                .producer(7, 0, seq)
                .transactional()
                .build();
            seq += 1;
            log.append(&mut b, 1_700_000_000_000).expect("append");
            log.append_marker(7, 0, Marker::Abort, 0, 1_700_000_000_000)
                .expect("abort");
        };
        for _ in 0..history {
            abort(&log);
        }
        group.bench_function(format!("txn batch + abort after {history} aborts"), |b| {
            b.iter(|| abort(&log))
        });
    }
    group.finish();
}

criterion_group!(benches, append, read, index_lookup, aborted_transaction);
criterion_main!(benches);
