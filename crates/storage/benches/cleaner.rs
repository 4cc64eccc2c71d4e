//! The log cleaner's throughput, in bytes of log read per second: one pass over a compacted
//! log of 200,000 updates of 10,000 keys (100-byte values, 500-record batches, 4 MiB
//! segments), which keeps about one record in twenty.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_storage::cleaner::Cleaner;
use weir_storage::testkit::BatchBuilder;
use weir_storage::{Compaction, Log, LogConfig};

const NOW: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 20,
        retention_ms: -1,
        compaction: Compaction {
            compact: true,
            delete: false,
            ..Compaction::default()
        },
        ..LogConfig::default()
    }
}

fn dirty_log(dir: &std::path::Path) -> (Log, u64) {
    let log = Log::create(dir.join("p-0"), config()).expect("create");
    let value = [7u8; 100];
    let mut n = 0u64;
    for _ in 0..400 {
        let mut b = BatchBuilder::new(NOW);
        for _ in 0..500 {
            let key = format!("key-{:05}", (n * 7919) % 10_000);
            b = b.record(NOW, Some(key.as_bytes()), Some(&value));
            n += 1;
        }
        log.append(&mut b.build(), NOW).expect("append");
    }
    let size = log.size_bytes();
    (log, size)
}

fn clean(c: &mut Criterion) {
    let probe = tempfile::tempdir().expect("tempdir");
    let (_, size) = dirty_log(probe.path());
    let mut group = c.benchmark_group("cleaner");
    group.throughput(Throughput::Bytes(size));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let mut cleaner = Cleaner::new(16 << 20, None);
    group.bench_function("one pass, 200k updates of 10k keys", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let (log, _) = dirty_log(dir.path());
                (dir, log)
            },
            |(dir, log)| {
                let stats = cleaner.clean(&log, NOW).expect("clean").expect("cleaned");
                assert!(stats.records_removed > 150_000);
                drop(log);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, clean);
criterion_main!(benches);
