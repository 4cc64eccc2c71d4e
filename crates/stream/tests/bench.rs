//! The cost of an epoch's commit, measured (ignored: run with
//! `cargo nextest run -p weir-stream --run-ignored only --no-capture epoch_cost`, best in a
//! release build). Prints records/s of a raw acks=all append loop, and records/s and
//! epochs/s of a Map pipeline over the same records at two checkpoint intervals.

mod common;

use std::time::{Duration, Instant};

use common::*;
use weir_broker::partition::Isolation;
use weir_broker::testkit;
use weir_stream::{Engine, StreamConfig};

const RECORDS: usize = 200_000;
const PER_BATCH: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn epoch_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let value = "x".repeat(100);
    let batches: Vec<Vec<(i64, String)>> = (0..RECORDS / PER_BATCH)
        .map(|b| {
            (0..PER_BATCH)
                .map(|i| (1_000 + (b * PER_BATCH + i) as i64, value.clone()))
                .collect()
        })
        .collect();

    // Raw: the same records appended by a producer waiting for each fsync.
    let raw = topic(&state, "raw", 1).await;
    let t = Instant::now();
    for b in &batches {
        produce(&state, &raw[0], b).await;
    }
    let raw_secs = t.elapsed().as_secs_f64();
    println!(
        "raw append loop: {RECORDS} records in {raw_secs:.3} s = {:.0} records/s (acks=all, {PER_BATCH} per batch)",
        RECORDS as f64 / raw_secs
    );

    let mut results = Vec::new();
    for (id, interval_ms) in [(1u64, 0u64), (2, 1_000)] {
        let input = format!("in{id}");
        let output = format!("out{id}");
        let parts_in = topic(&state, &input, 1).await;
        let parts_out = topic(&state, &output, 1).await;
        for b in &batches {
            produce(&state, &parts_in[0], b).await;
        }
        let engine = Engine::start(
            state.clone(),
            StreamConfig {
                checkpoint_interval: Duration::from_millis(interval_ms),
                // Interval 0 commits after every round of reads: small reads, many epochs.
                read_max_bytes: if interval_ms == 0 { 64 << 10 } else { 1 << 20 },
                ..StreamConfig::default()
            },
        )
        .expect("engine");
        let t = Instant::now();
        let mut p = engine
            .run_pipeline(id, even_offsets(&input, &output, None))
            .expect("run");
        // Processing alone: until the sink holds every output record (not yet committed
        // at a long interval).
        while parts_out[0].log_end_offset() < (RECORDS / 2) as i64 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let appended_secs = t.elapsed().as_secs_f64();
        p.wait_caught_up().await.expect("caught up");
        let secs = t.elapsed().as_secs_f64();
        let progress = p.progress();
        p.stop().await;
        assert_eq!(
            consume(&parts_out[0], Isolation::ReadCommitted).len(),
            RECORDS / 2
        );
        println!(
            "Map pipeline, checkpoint every {interval_ms} ms: {RECORDS} records in {secs:.3} s = {:.0} records/s in, {} epochs = {:.1} epochs/s ({:.2} ms per epoch)",
            RECORDS as f64 / secs,
            progress.epoch,
            progress.epoch as f64 / secs,
            secs * 1_000.0 / progress.epoch.max(1) as f64
        );
        println!(
            "  output appended after {appended_secs:.3} s = {:.0} records/s processed",
            RECORDS as f64 / appended_secs
        );
        results.push((secs, appended_secs, progress.epoch));
    }
    // Commit cost: the every-round run's time beyond the processing time of the 1 s run,
    // per epoch.
    if let [(secs0, _, epochs0), (_, appended1, _)] = results[..] {
        println!(
            "commit cost: ({secs0:.3} s - {appended1:.3} s) / {epochs0} epochs = {:.2} ms per epoch",
            (secs0 - appended1) * 1_000.0 / epochs0.max(1) as f64
        );
    }
}
