//! Pipelines over an in-process broker on a temporary directory: output read back
//! read_committed, exactly-once across a crash, aborted epochs, watermarks and idleness,
//! union of two sources, the memory budget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use weir_broker::partition::Isolation;
use weir_broker::testkit;
use weir_stream::graph::WatermarkSpec;
use weir_stream::{Engine, Graph, NodeSpec, PipelineStatus, StreamConfig};

/// Runs pipeline `id` of `graph` until it has committed everything its sources hold, then
/// stops it (committing); the handle, for its progress.
async fn run_to_end(engine: &Engine, id: u64, graph: Graph) -> weir_stream::PipelineHandle {
    let mut p = engine.run_pipeline(id, graph).expect("run");
    p.wait_caught_up().await.expect("caught up");
    assert_eq!(p.stop().await, PipelineStatus::Stopped);
    p
}

/// Produces `n` records per partition, `v<p>-<i>`, timestamps from `ts0`; returns
/// `(partition, offset, value)` for each, offsets following what the partitions hold.
async fn fill(
    state: &weir_broker::state::State,
    parts: &[Arc<weir_broker::partition::Partition>],
    n: usize,
    ts0: i64,
    tag: &str,
) -> Vec<(i32, i64, String)> {
    let mut all = Vec::new();
    for p in parts {
        let base = p.log_end_offset();
        let recs: Vec<(i64, String)> = (0..n)
            .map(|i| (ts0 + i as i64, format!("{tag}{}-{i}", p.index())))
            .collect();
        // Several batches, so reads cross batch boundaries.
        for chunk in recs.chunks(7) {
            produce(state, p, chunk).await;
        }
        all.extend(
            recs.into_iter()
                .enumerate()
                .map(|(i, (_, v))| (p.index(), base + i as i64, v)),
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_pipeline_writes_the_filtered_projection_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let input = topic(&state, "in", 3).await;
    let output = topic(&state, "out", 1).await;
    let records = fill(&state, &input, 50, 1_000, "a").await;

    let engine = Engine::start(state.clone(), config(50)).expect("engine");
    let mut pipeline = engine
        .run_pipeline(1, even_offsets("in", "out", None))
        .expect("run");
    pipeline.wait_caught_up().await.expect("caught up");
    assert_eq!(
        sorted(consume(&output[0], Isolation::ReadCommitted)),
        expected_even(&records)
    );

    // More input while it runs, then a stop that commits.
    let more = fill(&state, &input, 20, 5_000, "b").await;
    pipeline.wait_caught_up().await.expect("caught up");
    assert_eq!(pipeline.stop().await, PipelineStatus::Stopped);
    let all: Vec<_> = records.iter().chain(&more).cloned().collect();
    assert_eq!(
        sorted(consume(&output[0], Isolation::ReadCommitted)),
        expected_even(&all)
    );
    let progress = pipeline.progress();
    assert!(progress.epoch >= 2, "{progress:?}");
    assert_eq!(progress.records_out as usize, expected_even(&all).len());
    // Nothing was aborted: read_uncommitted sees the same records.
    assert_eq!(
        sorted(consume(&output[0], Isolation::ReadUncommitted)),
        expected_even(&all)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_epoch_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all;
    {
        let state = testkit::recovered(dir.path(), &[]);
        let input = topic(&state, "in", 2).await;
        topic(&state, "out", 1).await;
        all = fill(&state, &input, 40, 1_000, "a").await;
        let engine = Engine::start(state.clone(), config(20)).expect("engine");
        run_to_end(&engine, 7, even_offsets("in", "out", None)).await;

        // A run that never reaches its checkpoint: it appends the new records' output in an
        // open transaction, and then the process dies.
        let more = fill(&state, &input, 30, 2_000, "b").await;
        all.extend(more.iter().cloned());
        let engine = Engine::start(state.clone(), config(3_600_000)).expect("engine");
        let _p = engine
            .run_pipeline(7, even_offsets("in", "out", None))
            .expect("run");
        let out = parts(&state, "out");
        let want = expected_even(&all).len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while consume(&out[0], Isolation::ReadUncommitted).len() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the open epoch never wrote"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            consume(&out[0], Isolation::ReadCommitted).len(),
            expected_even(&all[..80]).len(),
            "the open epoch is invisible to read_committed"
        );
        drop(engine); // no commit, no abort, no close: kill -9
    }
    let state = testkit::recovered(dir.path(), &[]);
    let out = parts(&state, "out");
    let input = parts(&state, "in");
    let last = fill(&state, &input, 10, 3_000, "c").await;
    all.extend(last);
    let engine = Engine::start(state.clone(), config(20)).expect("engine");
    run_to_end(&engine, 7, even_offsets("in", "out", None)).await;
    assert_eq!(
        sorted(consume(&out[0], Isolation::ReadCommitted)),
        expected_even(&all),
        "each record once"
    );
    // The crashed epoch's records are in the log, aborted.
    let uncommitted = consume(&out[0], Isolation::ReadUncommitted).len();
    assert!(uncommitted > expected_even(&all).len(), "{uncommitted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_budget_the_epoch_is_aborted_and_the_pipeline_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let input = topic(&state, "in", 2).await;
    let output = topic(&state, "out", 1).await;
    // Partition 0: small records, read and appended first; partition 1: one large record.
    let small: Vec<(i64, String)> = (0..4).map(|i| (1_000 + i, format!("s{i}"))).collect();
    produce(&state, &input[0], &small).await;
    produce(&state, &input[1], &[(1_000, "x".repeat(8_000))]).await;
    let engine = Engine::start(
        state.clone(),
        StreamConfig {
            memory_max_bytes: 2_000,
            ..config(3_600_000)
        },
    )
    .expect("engine");
    let mut p = engine
        .run_pipeline(3, even_offsets("in", "out", None))
        .expect("run");
    let status = match p.wait_caught_up().await {
        Err(status) => status,
        Ok(()) => panic!("caught up over budget"),
    };
    let PipelineStatus::Failed(message) = &status else {
        panic!("{status:?}")
    };
    assert!(message.contains("memory budget"), "{message}");
    assert!(status
        .to_string()
        .starts_with("failed: memory budget exceeded"));
    // Partition 0's rows were appended in the epoch, which was aborted.
    assert_eq!(consume(&output[0], Isolation::ReadUncommitted).len(), 2);
    assert!(consume(&output[0], Isolation::ReadCommitted).is_empty());
    assert_eq!(output[0].last_stable_offset(), output[0].log_end_offset());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_partition_does_not_hold_the_watermark_and_recovery_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let input = topic(&state, "in", 2).await;
    topic(&state, "out", 1).await;
    // Only partition 0 gets records; partition 1 stays empty.
    let recs: Vec<(i64, String)> = (0..10)
        .map(|i| (10_000 + i * 100, format!("r{i}")))
        .collect();
    produce(&state, &input[0], &recs).await;
    let spec = WatermarkSpec {
        column: 4,
        delay_ms: 500,
        idle_timeout: Duration::from_millis(200),
    };
    let engine = Engine::start(state.clone(), config(20)).expect("engine");
    let mut p = engine
        .run_pipeline(5, even_offsets("in", "out", Some(spec)))
        .expect("run");
    p.wait_caught_up().await.expect("caught up");
    let want = 10_900 - 500;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let progress = p.progress();
        match progress.watermarks.get("in") {
            Some(w) if *w == want => break,
            Some(w) => assert!(*w < want, "watermark {w} beyond {want}"),
            None => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle partition held the watermark: {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.stop().await, PipelineStatus::Stopped);

    // Restarted, the committed watermark is restored before anything is read.
    let engine = Engine::start(state.clone(), config(3_600_000)).expect("engine");
    let mut p = engine
        .run_pipeline(5, even_offsets("in", "out", Some(spec)))
        .expect("run");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while p.status() == PipelineStatus::Recovering {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(p.progress().watermarks.get("in"), Some(&want));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_union_of_two_sources_writes_both_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let left = topic(&state, "left", 2).await;
    let right = topic(&state, "right", 1).await;
    let output = topic(&state, "out", 2).await;
    let mut records = fill(&state, &left, 30, 1_000, "l").await;
    records.extend(fill(&state, &right, 25, 1_000, "r").await);

    let schema = weir_stream::format::BytesDecoder::output_schema();
    let mut g = Graph::default();
    let l = g.add(source("left", None));
    let r = g.add(source("right", None));
    let u = g.add(NodeSpec::Union);
    let m = g.add(NodeSpec::Map {
        exprs: vec![
            datafusion_physical_expr::expressions::col("value", &schema).expect("value"),
            datafusion_physical_expr::expressions::col("_offset", &schema).expect("offset"),
        ],
        filter: None,
    });
    let k = g.add(sink("out"));
    g.connect(l, u, schema.clone());
    g.connect(r, u, schema.clone());
    g.connect(u, m, schema.clone());
    let out_schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("value", arrow_schema::DataType::Binary, true),
        arrow_schema::Field::new("_offset", arrow_schema::DataType::Int64, false),
    ]));
    g.connect(m, k, out_schema);

    let engine = Engine::start(state.clone(), config(30)).expect("engine");
    run_to_end(&engine, 9, g).await;
    let mut got: Vec<_> = output
        .iter()
        .flat_map(|o| consume(o, Isolation::ReadCommitted))
        .collect();
    got.sort();
    let mut want: Vec<_> = records
        .iter()
        .map(|(_, o, v)| (Some(o.to_string()), v.clone()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // Keyed by the offset: every key went to Kafka's partition for it.
    for (i, o) in output.iter().enumerate() {
        for (k, _) in consume(o, Isolation::ReadCommitted) {
            let k = k.expect("key");
            assert_eq!(weir_stream::sink::partition_for_key(k.as_bytes(), 2), i);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_naming_a_missing_topic_or_malformed_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    topic(&state, "out", 1).await;
    let engine = Engine::start(state.clone(), config(30)).expect("engine");
    let err = engine
        .run_pipeline(1, even_offsets("nope", "out", None))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("nope"), "{err}");
    let mut g = Graph::default();
    g.add(NodeSpec::Union);
    assert!(engine.run_pipeline(2, g).is_err());
}

/// An encoder that panics on its first batch.
struct Panicking;

impl weir_stream::format::SinkEncoder for Panicking {
    fn encode(
        &mut self,
        _batch: &arrow_array::RecordBatch,
        _out: &mut Vec<weir_stream::format::SinkRecord>,
    ) -> Result<(), String> {
        panic!("encoder bug");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_pipeline_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let input = topic(&state, "in", 1).await;
    let output = topic(&state, "out", 1).await;
    fill(&state, &input, 10, 1_000, "a").await;
    let mut g = even_offsets("in", "out", None);
    if let Some(NodeSpec::Sink(s)) = g.nodes.last_mut() {
        s.encoder = Arc::new(|| Box::new(Panicking));
    }
    let engine = Engine::start(state.clone(), config(20)).expect("engine");
    let mut bad = engine.run_pipeline(1, g).expect("run");
    let status = bad.wait_caught_up().await.expect_err("failed");
    assert!(
        status
            .to_string()
            .starts_with("failed: the pipeline task panicked"),
        "{status}"
    );
    // The engine and the broker go on: another pipeline on the same engine runs.
    let mut good = engine
        .run_pipeline(2, even_offsets("in", "out", None))
        .expect("run");
    good.wait_caught_up().await.expect("caught up");
    assert_eq!(consume(&output[0], Isolation::ReadCommitted).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latest_source_commits_its_start_and_resumes_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let input = topic(&state, "in", 1).await;
    let output = topic(&state, "out", 1).await;
    fill(&state, &input, 10, 1_000, "old").await;
    let latest = || {
        let mut g = even_offsets("in", "out", None);
        if let Some(NodeSpec::Source(s)) = g.nodes.first_mut() {
            s.startup = weir_stream::graph::Startup::Latest;
        }
        g
    };
    let engine = Engine::start(state.clone(), config(20)).expect("engine");
    let p = run_to_end(&engine, 4, latest()).await;
    assert_eq!(p.progress().offsets.get(&("in".to_string(), 0)), Some(&10));
    // Records arriving while it is stopped are read by the next run.
    let new = fill(&state, &input, 6, 2_000, "new").await;
    let mut p = engine.run_pipeline(4, latest()).expect("run");
    p.wait_caught_up().await.expect("caught up");
    p.stop().await;
    assert_eq!(
        sorted(consume(&output[0], Isolation::ReadCommitted)),
        expected_even(&new)
    );
}

/// The source stage reads ahead of the operators (on two engine threads, in parallel with
/// them): a checkpoint commits the positions of the reads the operators applied, so after a
/// crash what was read ahead is read again, and every record is written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ahead_of_the_operators_are_committed_only_once_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parallel = StreamConfig {
        threads: 2,
        // One batch per read: many reads, so the stage is ahead at any moment.
        read_max_bytes: 1,
        ..config(5)
    };
    let mut all = Vec::new();
    {
        let state = testkit::recovered(dir.path(), &[]);
        let input = topic(&state, "in", 2).await;
        topic(&state, "out", 1).await;
        for i in 0..1_200 {
            all.extend(fill(&state, &input, 4, 1_000 + i * 4, "a").await);
        }
        let engine = Engine::start(state.clone(), parallel.clone()).expect("engine");
        let p = engine
            .run_pipeline(9, even_offsets("in", "out", None))
            .expect("run");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while p.progress().epoch < 2 {
            assert!(tokio::time::Instant::now() < deadline, "no epoch committed");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(engine); // kill -9, mid-input
        let committed: i64 = p.progress().offsets.values().sum();
        assert!(
            committed < all.len() as i64,
            "the pipeline finished before the crash"
        );
    }
    let state = testkit::recovered(dir.path(), &[]);
    let out = parts(&state, "out");
    let engine = Engine::start(state.clone(), parallel).expect("engine");
    run_to_end(&engine, 9, even_offsets("in", "out", None)).await;
    assert_eq!(
        sorted(consume(&out[0], Isolation::ReadCommitted)),
        expected_even(&all),
        "each record once"
    );
}
