//! Rows a pipeline's expressions fail on (`crates/stream/src/ops/eval.rs`): a bad cast, a
//! division by zero, a malformed timestamp make that value NULL (the row dropped where the
//! column cannot be NULL, a group key among them); the pipeline keeps running, DESCRIBE counts the failures and
//! shows the last one, and the count survives a restart. Also where a pipeline starts:
//! `scan.startup.mode = 'timestamp'` (the first record at or after the time, per partition)
//! and `'latest'`.

use crate::common::{open, restart, rows, run, select};

use std::sync::Arc;
use std::time::Duration;

use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::append::{append_durably, NewRecord};
use weir_sql::engine::Session;
use weir_stream::PipelineStatus;

/// Appends JSON `values` to partition 0 of `topic` with record timestamps `ts`.
async fn append(state: &Arc<State>, topic: &str, values: &[String]) {
    let p = weir_broker::partition_access::PartitionAccess::new(state.clone())
        .partition(topic, 0)
        .expect("p0");
    let records: Vec<NewRecord> = values
        .iter()
        .map(|v| NewRecord {
            key: None,
            value: Some(v.as_bytes().to_vec()),
            headers: Vec::new(),
        })
        .collect();
    append_durably(&p, &records).await.expect("append");
}

/// Waits until `SELECT * FROM view` equals `want` (sorted text rows; NULL is empty).
async fn wait_rows(s: &Session, view: &str, mut want: Vec<Vec<String>>) {
    want.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = select(s, &format!("SELECT * FROM {view}")).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{view}:\n got  {got:?}\n want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// DESCRIBE's value for `line` of `name`.
async fn describe(s: &Session, name: &str, line: &str) -> Option<String> {
    rows(&run(s, &format!("DESCRIBE {name}")).await.expect("describe"))
        .into_iter()
        .find(|r| r[0] == line)
        .map(|r| r[3].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_an_expression_fails_on_gets_null_and_the_pipeline_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("readings", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE readings (id BIGINT NOT NULL, t VARCHAR, d BIGINT, code VARCHAR NOT NULL) \
         WITH (topic = 'readings'); \
         CREATE MATERIALIZED VIEW cleaned AS SELECT id, CAST(t AS INT) AS n, 100 / d AS q \
         FROM readings; \
         CREATE MATERIALIZED VIEW coded AS SELECT id, CAST(code AS INT) AS c FROM readings; \
         CREATE MATERIALIZED VIEW summed AS SELECT count(*) AS n, sum(CAST(t AS INT)) AS total \
         FROM readings WHERE 10 / d > 1; \
         CREATE MATERIALIZED VIEW by_code AS SELECT CAST(code AS INT) AS c, count(*) AS n \
         FROM readings GROUP BY CAST(code AS INT)",
    )
    .await
    .expect("setup");
    let rows_in = |from: i64, to: i64| -> Vec<String> {
        (from..to)
            .map(|i| {
                let t = if i % 4 == 1 {
                    "n/a".to_string()
                } else {
                    i.to_string()
                };
                let d = if i % 5 == 2 { 0 } else { 2 };
                let code = if i % 6 == 3 {
                    "x".to_string()
                } else {
                    (i * 10).to_string()
                };
                format!(r#"{{"id":{i},"t":"{t}","d":{d},"code":"{code}"}}"#)
            })
            .collect()
    };
    append(&state, "readings", &rows_in(0, 12)).await;

    // cleaned: n is NULL where t is "n/a" (1, 5, 9), q where d is 0 (2, 7).
    let cleaned = |to: i64| -> Vec<Vec<String>> {
        (0..to)
            .map(|i| {
                let n = if i % 4 == 1 {
                    String::new()
                } else {
                    i.to_string()
                };
                let q = if i % 5 == 2 {
                    String::new()
                } else {
                    "50".to_string()
                };
                vec![i.to_string(), n, q]
            })
            .collect()
    };
    wait_rows(&s, "cleaned", cleaned(12)).await;
    // coded: c's column cannot be NULL (code is NOT NULL), so rows 3 and 9 are dropped.
    let coded = (0..12)
        .filter(|i| i % 6 != 3)
        .map(|i| vec![i.to_string(), (i * 10).to_string()])
        .collect();
    wait_rows(&s, "coded", coded).await;
    // summed: the WHERE fails where d is 0 (dropped: NULL is not true); sum skips NULLs.
    let kept: Vec<i64> = (0..12).filter(|i| i % 5 != 2).collect();
    let total: i64 = kept.iter().filter(|i| *i % 4 != 1).sum();
    wait_rows(
        &s,
        "summed",
        vec![vec![kept.len().to_string(), total.to_string()]],
    )
    .await;

    // by_code: a group key that cannot be NULL (code is NOT NULL) drops its row, as coded.
    let by_code = (0..12)
        .filter(|i| i % 6 != 3)
        .map(|i| vec![(i * 10).to_string(), "1".to_string()])
        .collect();
    wait_rows(&s, "by_code", by_code).await;

    // Counted per pipeline, with the last error's text.
    assert_eq!(
        describe(&s, "cleaned", "expression errors")
            .await
            .as_deref(),
        Some("5")
    );
    assert_eq!(
        describe(&s, "coded", "expression errors").await.as_deref(),
        Some("2")
    );
    let last = describe(&s, "coded", "last expression error")
        .await
        .expect("the last error is shown");
    assert!(last.contains("'x'"), "{last}");
    // Two WHERE failures (2, 7) and three casts of rows the filter kept (1, 5, 9).
    assert_eq!(
        describe(&s, "summed", "expression errors").await.as_deref(),
        Some("5")
    );

    // The count is checkpointed: it goes on from where it was after a restart.
    let (engine, s) = restart(engine, s, &state).await;
    append(&state, "readings", &rows_in(12, 20)).await;
    wait_rows(&s, "cleaned", cleaned(20)).await;
    // 13 and 17 fail the cast; 12 and 17 divide by zero.
    assert_eq!(
        describe(&s, "cleaned", "expression errors")
            .await
            .as_deref(),
        Some("9")
    );
    // 15's code is "x" too.
    let by_code = (0..20)
        .filter(|i| i % 6 != 3)
        .map(|i| vec![(i * 10).to_string(), "1".to_string()])
        .collect();
    wait_rows(&s, "by_code", by_code).await;
    assert_eq!(
        describe(&s, "by_code", "expression errors")
            .await
            .as_deref(),
        Some("3")
    );
    for name in ["cleaned", "coded", "summed", "by_code"] {
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_starts_at_a_timestamp_or_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("events", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    // Records appended now carry the broker's clock as their timestamp.
    append(
        &state,
        "events",
        &(0..5)
            .map(|i| format!(r#"{{"id":{i}}}"#))
            .collect::<Vec<_>>(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(
        &state,
        "events",
        &(5..8)
            .map(|i| format!(r#"{{"id":{i}}}"#))
            .collect::<Vec<_>>(),
    )
    .await;
    run(
        &s,
        &format!(
            "CREATE SOURCE since (id BIGINT) WITH (topic = 'events', \
             scan.startup.mode = 'timestamp', scan.startup.timestamp.millis = '{cut}'); \
             CREATE SOURCE future (id BIGINT) WITH (topic = 'events', \
             scan.startup.mode = 'timestamp', scan.startup.timestamp.millis = '{}'); \
             CREATE SOURCE fresh (id BIGINT) WITH (topic = 'events', \
             scan.startup.mode = 'latest'); \
             CREATE MATERIALIZED VIEW from_cut AS SELECT id FROM since; \
             CREATE MATERIALIZED VIEW from_future AS SELECT id FROM future; \
             CREATE MATERIALIZED VIEW from_end AS SELECT id FROM fresh",
            cut + 3_600_000
        ),
    )
    .await
    .expect("setup");
    // Each pipeline has placed its readers (it runs) before the next records arrive.
    for name in ["from_cut", "from_future", "from_end"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while engine.pipeline_status(name) != Some(PipelineStatus::Running) {
            assert!(tokio::time::Instant::now() < deadline, "{name} never ran");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    append(
        &state,
        "events",
        &(8..10)
            .map(|i| format!(r#"{{"id":{i}}}"#))
            .collect::<Vec<_>>(),
    )
    .await;
    let ids = |r: std::ops::Range<i64>| r.map(|i| vec![i.to_string()]).collect();
    wait_rows(&s, "from_cut", ids(5..10)).await;
    // No record is an hour from now: the log end, as `latest`.
    wait_rows(&s, "from_future", ids(8..10)).await;
    wait_rows(&s, "from_end", ids(8..10)).await;
    engine.stop().await;
}
