//! Updating aggregates against the oracle (design §11): records are fed through the topic,
//! views are created, and once caught up each view's contents (`SELECT * FROM view`, the
//! upsert topic collapsed by key) must equal the view's query run by DataFusion's batch
//! engine over the same records, as multisets. Covers every aggregate, FILTER, HAVING,
//! NULL groups and values, retractions through an updating input with groups that
//! disappear, state restored across restarts between checkpoints, upsert sinks, the refusals
//! at CREATE and the memory budget.

use crate::common::{assert_oracle, rows, run};

use std::sync::Arc;
use std::time::Duration;

use weir_broker::partition::Isolation;
use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

/// The views of the oracle test: name and query.
const VIEWS: &[(&str, &str)] = &[
    (
        "every_aggregate",
        "SELECT customer, count(*) AS n, count(amount) AS counted, sum(amount) AS total, \
         avg(amount) AS mean, min(amount) AS lo, max(amount) AS hi, \
         count(DISTINCT amount) AS kinds, sum(amount) FILTER (WHERE paid) AS paid_total, \
         max(note) AS last_note, min(price) AS cheapest, sum(price) AS price_total \
         FROM orders GROUP BY customer",
    ),
    (
        "having",
        "SELECT customer, sum(amount) AS total FROM orders GROUP BY customer \
         HAVING count(*) > 2",
    ),
    (
        "distinct_only",
        "SELECT customer, count(DISTINCT amount) AS kinds FROM orders GROUP BY customer",
    ),
    (
        // The inner aggregate's updates are retractions into the outer one: a customer
        // moving from n = 1 to n = 2 leaves group 1, which disappears when it empties.
        "histogram",
        "SELECT n, count(*) AS customers, max(total) AS top, min(total) AS bottom, \
         sum(total) AS everything FROM \
         (SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer) \
         GROUP BY n",
    ),
    (
        "global",
        "SELECT count(*) AS n, sum(amount) AS total, max(price) AS top FROM orders \
         WHERE amount IS NOT NULL",
    ),
    ("distinct_customers", "SELECT DISTINCT customer FROM orders"),
    (
        "two_keys",
        "SELECT paid, amount % 3 AS bucket, count(*) AS n FROM orders GROUP BY paid, amount % 3",
    ),
];

async fn insert(s: &Session, from: i64, to: i64) {
    let mut values = Vec::new();
    for i in from..to {
        // Customers c0..c4 get unequal numbers of rows; NULL customers and amounts too.
        let customer = match i % 7 {
            6 => "NULL".to_string(),
            k => format!("'c{}'", (k * i) % 5),
        };
        let amount = if i % 5 == 4 {
            "NULL".to_string()
        } else {
            (i % 11 - 3).to_string()
        };
        values.push(format!(
            "({i}, {customer}, {amount}, {}, {}, 'n{}')",
            (i % 8) as f64 * 0.25,
            i % 3 == 0,
            i % 4
        ));
    }
    run(
        s,
        &format!(
            "INSERT INTO orders (id, customer, amount, price, paid, note) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("insert");
}

async fn open(state: &Arc<State>) -> Arc<Engine> {
    Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_aggregates_equal_the_batch_oracle_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("orders", 2, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT, \
         price DOUBLE, paid BOOLEAN, note VARCHAR) WITH (topic = 'orders')",
    )
    .await
    .expect("source");
    insert(&s, 0, 40).await;
    for (name, query) in VIEWS {
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    run(
        &s,
        "CREATE SINK per_customer INTO per_customer_out WITH (type = 'upsert') AS \
         SELECT customer, count(*) AS n FROM orders GROUP BY customer",
    )
    .await
    .expect("upsert sink");
    for (name, query) in VIEWS {
        assert_oracle(&s, name, query, true).await;
    }
    // More input, moving customers between histogram groups.
    insert(&s, 40, 100).await;
    for (name, query) in VIEWS {
        assert_oracle(&s, name, query, true).await;
    }

    // A restart. (Dropping the engine where it stands is no faithful crash in-process: an
    // epoch dropped inside `end_txn` leaves the coordinator in PrepareCommit, which only a
    // broker restart's recovery completes. The real kill -9 is tests/test_sql_pipelines.py's
    // test_aggregate_view_exactly_once_across_kill9.)
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    insert(&s, 100, 130).await;
    for (name, query) in VIEWS {
        assert_oracle(&s, name, query, true).await;
    }
    // A clean restart between checkpoints: each pipeline commits what it processed.
    insert(&s, 130, 150).await;
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    insert(&s, 150, 200).await;
    for (name, query) in VIEWS {
        assert_oracle(&s, name, query, true).await;
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }

    // DESCRIBE shows the state held against the budget.
    let info = rows(&run(&s, "DESCRIBE histogram").await.expect("describe"));
    let state_line = info
        .iter()
        .find(|r| r[0] == "state bytes")
        .expect("state bytes line");
    let held: usize = state_line[3]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number");
    assert!(held > 0, "{state_line:?}");
    assert!(
        state_line[3].ends_with(&format!("of {}", 256 << 20)),
        "{state_line:?}"
    );

    // The upsert sink: last value per key equals the batch answer; deletes are tombstones.
    let want = rows(
        &run(
            &s,
            "SELECT customer, count(*) AS n FROM orders GROUP BY customer",
        )
        .await
        .expect("oracle"),
    );
    let out = state
        .topic("per_customer_out")
        .expect("sink topic")
        .all_partitions();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut last = std::collections::BTreeMap::new();
        for (k, v) in testkit::consume(&out[0], Isolation::ReadCommitted) {
            last.insert(k, v);
        }
        let mut got: Vec<Vec<String>> = last
            .values()
            .map(|v| {
                let j: serde_json::Value = serde_json::from_str(v).expect("json");
                let c = j["customer"].as_str().map_or(String::new(), str::to_string);
                vec![c, j["n"].to_string()]
            })
            .collect();
        got.sort();
        if got == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sink ({:?}): {got:?} want {want:?}",
            engine.pipeline_status("per_customer")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_updating_aggregates_cannot_do_is_refused_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("orders", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT, \
         tags VARCHAR) WITH (topic = 'orders'); \
         CREATE MATERIALIZED VIEW totals AS \
         SELECT customer, sum(amount) AS total FROM orders GROUP BY customer",
    )
    .await
    .expect("setup");
    for (sql, says) in [
        (
            "CREATE MATERIALIZED VIEW v AS SELECT customer, median(amount) FROM orders \
             GROUP BY customer",
            "median",
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT customer, sum(DISTINCT amount), \
             sum(DISTINCT id) FROM orders GROUP BY customer",
            "sum DISTINCT",
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT customer, count(*) FROM orders \
             GROUP BY ROLLUP (customer)",
            "ROLLUP",
        ),
        (
            "CREATE SINK k INTO out AS SELECT customer, count(*) FROM orders GROUP BY customer",
            "type = 'upsert'",
        ),
    ] {
        let err = run(&s, sql).await.expect_err(sql);
        assert_eq!(err.sqlstate(), "0A000", "{sql}: {err}");
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    assert!(engine.catalog_entry("v").is_none());
    assert!(engine.catalog_entry("k").is_none());

    // EXPLAIN of a CREATE prints the stream graph and creates nothing.
    let graph: Vec<String> = rows(
        &run(
            &s,
            "EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT customer, count(*) AS n \
             FROM orders WHERE amount > 0 GROUP BY customer HAVING count(*) > 1",
        )
        .await
        .expect("explain"),
    )
    .into_iter()
    .flatten()
    .collect();
    let text = graph.join("\n");
    assert!(text.contains("Source(orders)"), "{text}");
    assert!(
        text.contains("UpdatingAggregate(group=[customer@"),
        "{text}"
    );
    assert!(
        text.contains("count(1): Int64") || text.contains("count("),
        "{text}"
    );
    assert!(text.contains("Sink(v)"), "{text}");
    assert!(
        text.contains("updating key [customer] (customer Utf8, n Int64, _retract Boolean)"),
        "{text}"
    );
    assert!(text.contains("append-only key []"), "{text}");
    assert!(engine.catalog_entry("v").is_none());
    assert!(state.topic("v").is_none());
    let err = run(
        &s,
        "EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT customer, median(amount) FROM orders \
         GROUP BY customer",
    )
    .await
    .expect_err("refused like CREATE");
    assert_eq!(err.sqlstate(), "0A000", "{err}");
    // An updating view is read as a changelog: its last row per key, kept in a TopN.
    let graph = rows(
        &run(
            &s,
            "EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT * FROM totals",
        )
        .await
        .expect("a view over an updating view"),
    )
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    assert!(graph.contains("TopN"), "{graph}");
    assert!(engine.catalog_entry("v").is_none());

    let err = run(
        &s,
        "CREATE SINK k INTO out WITH (type = 'upsert') AS SELECT id FROM orders",
    )
    .await
    .expect_err("append-only upsert without a key");
    assert!(err.to_string().contains("primary_key"), "{err}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_over_its_memory_budget_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("orders", 1, 1, Default::default())
        .await
        .expect("topic");
    let config = SqlConfig {
        pipeline_memory_max_bytes: 64 << 10,
        ..SqlConfig::default()
    };
    let engine = Engine::start(state.clone(), config).await.expect("engine");
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR) WITH (topic = 'orders'); \
         CREATE MATERIALIZED VIEW few AS SELECT count(*) AS n FROM orders; \
         CREATE MATERIALIZED VIEW many AS SELECT id, count(*) AS n FROM orders GROUP BY id",
    )
    .await
    .expect("setup");
    let values: Vec<String> = (0..3000).map(|i| format!("({i}, 'c')")).collect();
    run(
        &s,
        &format!(
            "INSERT INTO orders (id, customer) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("insert");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failed = loop {
        if let Some(PipelineStatus::Failed(e)) = engine.pipeline_status("many") {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "many did not fail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed.contains("memory budget exceeded"), "{failed}");
    assert!(
        failed.contains("weir.sql.pipeline.memory.max.bytes"),
        "{failed}"
    );
    // The other pipeline, one group, goes on.
    assert_oracle(&s, "few", "SELECT count(*) AS n FROM orders", true).await;
    assert_eq!(engine.pipeline_status("few"), Some(PipelineStatus::Running));
    engine.stop().await;
}
