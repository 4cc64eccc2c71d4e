//! Continuous queries over a real broker state in a temporary directory: what the planner
//! accepts and refuses, views and sinks computing over sources, dead letters, and pipelines
//! resuming when the engine starts again.

use crate::common::{rows, run};

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use weir_broker::partition::Isolation;
use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::append::{append_durably, NewRecord};
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

fn count(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Polls `sql` (a `count(*)`) until it answers `want`.
async fn wait_count(session: &Session, sql: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = count(&run(session, sql).await.expect(sql));
        if n == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql}: {n}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup(state: &Arc<State>) {
    state
        .create_topic("orders", 2, 1, Default::default())
        .await
        .expect("topic");
    state
        .create_topic("returns", 1, 1, Default::default())
        .await
        .expect("topic");
}

async fn raw(state: &Arc<State>, topic: &str, value: &str) {
    let p = weir_broker::partition_access::PartitionAccess::new(state.clone())
        .partition(topic, 0)
        .expect("p0");
    append_durably(
        &p,
        &[NewRecord {
            key: None,
            value: Some(value.as_bytes().to_vec()),
            headers: Vec::new(),
        }],
    )
    .await
    .expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_refuses_what_the_runtime_cannot_run_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    setup(&state).await;
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine");
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT, customer VARCHAR, amount DOUBLE) \
         WITH (topic = 'orders'); \
         CREATE SOURCE returns (id BIGINT) WITH (topic = 'returns')",
    )
    .await
    .expect("sources");
    for (sql, construct) in [
        ("SELECT * FROM orders o, returns r", "cross"),
        (
            "SELECT * FROM orders WHERE id NOT IN (SELECT id FROM returns)",
            "NOT IN",
        ),
        ("SELECT * FROM orders ORDER BY id", "ORDER BY"),
        ("SELECT * FROM orders LIMIT 3", "LIMIT"),
        (
            "SELECT id, row_number() OVER (PARTITION BY customer ORDER BY id) FROM orders",
            "OVER",
        ),
        ("SELECT id, random() FROM orders", "random()"),
        ("SELECT now(), id FROM orders", "now()"),
        ("SELECT 1 AS one", "without a source"),
    ] {
        let err = run(&s, &format!("CREATE MATERIALIZED VIEW v AS {sql}"))
            .await
            .expect_err(sql);
        assert_eq!(err.sqlstate(), "0A000", "{sql}: {err}");
        assert!(err.to_string().contains(construct), "{sql}: {err}");
    }
    // Nothing of a refused CREATE was written.
    assert!(engine.catalog_entry("v").is_none());
    assert!(state.topic("v").is_none());
    let err = run(&s, "CREATE SINK k INTO out AS SELECT * FROM nope")
        .await
        .expect_err("unknown source");
    assert_eq!(err.sqlstate(), "42P01", "{err}");
    let err = run(&s, "CREATE SINK k AS SELECT * FROM orders")
        .await
        .expect_err("no topic");
    assert!(err.to_string().contains("needs a topic"), "{err}");
    // A sink format that cannot write the query's columns is refused at CREATE, not when the
    // first epoch encodes: text takes one string column.
    for sql in [
        "CREATE SINK k INTO out FORMAT text AS SELECT customer, id FROM orders",
        "CREATE SINK k INTO out FORMAT text AS SELECT id FROM orders",
    ] {
        let err = run(&s, sql).await.expect_err(sql);
        assert_eq!(err.sqlstate(), "22023", "{sql}: {err}");
    }
    assert!(engine.catalog_entry("k").is_none());
    run(
        &s,
        "CREATE SINK k INTO out FORMAT text AS SELECT customer FROM orders",
    )
    .await
    .expect("one string column");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_and_sinks_compute_dead_letter_and_resume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    setup(&state).await;
    {
        let engine = Engine::start(state.clone(), SqlConfig::default())
            .await
            .expect("engine");
        let s = engine.session();
        run(
            &s,
            "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE) \
             INCLUDE partition WITH (topic = 'orders'); \
             CREATE SOURCE returns (id BIGINT NOT NULL, customer VARCHAR) \
             WITH (topic = 'returns', dead_letter = 'none'); \
             INSERT INTO orders (id, customer, amount) VALUES \
               (1, 'ann', 5.5), (2, 'bob', 20.0), (3, NULL, 12.25), (4, 'dan', 0.5); \
             INSERT INTO returns (id, customer) VALUES (10, 'eve')",
        )
        .await
        .expect("sources");
        raw(&state, "orders", "{not json").await;
        run(
            &s,
            "CREATE MATERIALIZED VIEW big AS \
               SELECT id, upper(coalesce(customer, 'n/a')) AS who, \
                      CASE WHEN amount >= 20 THEN 'large' ELSE 'medium' END AS size, \
                      CAST(amount * 2 AS BIGINT) AS doubled, _partition >= 0 AS has_partition \
               FROM orders WHERE amount > 1; \
             CREATE SINK people INTO people_out AS \
               SELECT id, customer FROM orders WHERE id % 2 = 0 \
               UNION ALL SELECT id, customer FROM returns",
        )
        .await
        .expect("pipelines");
        wait_count(&s, "SELECT count(*) FROM big", 3).await;
        assert_eq!(
            rows(&run(&s, "SELECT * FROM big").await.expect("view")),
            vec![
                vec!["1", "ANN", "medium", "11", "true"],
                vec!["2", "BOB", "large", "40", "true"],
                vec!["3", "N/A", "medium", "24", "true"],
            ]
        );
        // A view over a view.
        run(
            &s,
            "CREATE MATERIALIZED VIEW large AS SELECT id, who FROM big WHERE size = 'large'",
        )
        .await
        .expect("view of a view");
        wait_count(&s, "SELECT count(*) FROM large", 1).await;

        let out = state
            .topic("people_out")
            .expect("sink topic")
            .all_partitions();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while testkit::consume(&out[0], Isolation::ReadCommitted).len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "sink");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut got: Vec<String> = testkit::consume(&out[0], Isolation::ReadCommitted)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                r#"{"id":10,"customer":"eve"}"#,
                r#"{"id":2,"customer":"bob"}"#,
                r#"{"id":4,"customer":"dan"}"#,
            ]
        );
        // The malformed record: dead-lettered by each pipeline reading it, in its epoch.
        let dlq = state.topic("orders.dlq").expect("dead-letter topic");
        assert_eq!(dlq.partition_count(), 2);
        let dead: Vec<String> = dlq
            .all_partitions()
            .iter()
            .flat_map(|p| testkit::consume(p, Isolation::ReadCommitted))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(dead, vec!["{not json", "{not json"]);
        assert!(state.topic("returns.dlq").is_none(), "dead_letter = 'none'");

        let show = rows(&run(&s, "SHOW MATERIALIZED VIEWS").await.expect("show"));
        assert_eq!(show.len(), 2);
        assert!(show.iter().all(|r| r[3] == "running"), "{show:?}");
        let show = rows(&run(&s, "SHOW SINKS").await.expect("show"));
        assert_eq!(show, vec![vec!["people", "people_out", "json", "running"]]);
        let err = run(&s, "DROP MATERIALIZED VIEW big")
            .await
            .expect_err("dependents");
        assert!(err.to_string().contains("large"), "{err}");
        let err = run(&s, "INSERT INTO big (id) VALUES (9)")
            .await
            .expect_err("insert");
        assert!(err.to_string().contains("materialized view"), "{err}");
        engine.stop().await;
    }
    // A CREATE that crashed between `creating` and `active`, its topic made.
    {
        let catalog = weir_sql::catalog::Catalog::open(state.clone())
            .await
            .expect("catalog");
        let mut ghost = catalog.new_entry(
            "view",
            "CREATE MATERIALIZED VIEW ghost AS SELECT id FROM orders".into(),
            Vec::new(),
            Default::default(),
        );
        ghost.state = "creating".into();
        catalog.put("ghost", ghost).await.expect("put");
        state
            .create_topic("ghost", 1, 1, Default::default())
            .await
            .expect("topic");
    }
    // Started again: the unfinished CREATE is rolled back, every pipeline resumes from its
    // committed epoch, nothing twice.
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine");
    assert!(engine.catalog_entry("ghost").is_none());
    assert!(state.topic("ghost").is_none());
    let s = engine.session();
    run(
        &s,
        "INSERT INTO orders (id, customer, amount) VALUES (6, 'fay', 30.0)",
    )
    .await
    .expect("insert");
    wait_count(&s, "SELECT count(*) FROM big", 4).await;
    wait_count(&s, "SELECT count(*) FROM large", 2).await;
    let out = state
        .topic("people_out")
        .expect("sink topic")
        .all_partitions();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while testkit::consume(&out[0], Isolation::ReadCommitted).len() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "sink after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(testkit::consume(&out[0], Isolation::ReadCommitted).len(), 4);
    assert_eq!(
        engine.pipeline_status("people"),
        Some(PipelineStatus::Running)
    );
    let stored = engine.catalog_entry("big").expect("big");
    assert_eq!(stored.state, "active");
    assert_eq!(stored.depends_on, vec!["orders".to_string()]);
    assert_eq!(stored.plan_fingerprint.as_ref().map(String::len), Some(16));

    run(
        &s,
        "DROP MATERIALIZED VIEW large; DROP MATERIALIZED VIEW big; DROP SINK people",
    )
    .await
    .expect("drop");
    assert!(state.topic("big").is_none(), "a view's topic is its own");
    assert!(
        state.topic("people_out").is_some(),
        "a sink's topic is the user's"
    );
    assert!(engine.pipeline_status("people").is_none());
    assert!(rows(&run(&s, "SHOW SINKS").await.expect("show")).is_empty());
    engine.stop().await;
}
