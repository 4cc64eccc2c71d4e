//! Stream joins against the oracle (design §6, §11): records are fed through the topics,
//! views are created over every join kind, and once caught up each view's contents
//! (`SELECT * FROM view`) must equal the view's query run by DataFusion's batch engine over
//! the same records, as multisets, before and after restarts. Table-like inputs are keyed
//! aggregates with HAVING, so their rows are inserted, updated (retraction, insertion) and
//! deleted as input arrives; outer joins then emit and retract NULL-padded rows. Also: a
//! join feeding GROUP BY, multi-column keys, residual (non-equi) conditions, a self-join,
//! and the refusals at CREATE.

use crate::common::{assert_oracle, rows, run};

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

/// A keyed "table" with updates and deletes: per customer, the total of its orders while it
/// is over 5 (rows appear, change and disappear as amounts, some negative, arrive).
const SPENDERS: &str = "(SELECT customer, sum(amount) AS total, count(*) AS orders \
     FROM orders GROUP BY customer HAVING sum(amount) > 5)";
/// Another: per name, its profile rows while it has fewer than 3 (then deleted for good).
const PROFILES: &str = "(SELECT name, count(*) AS n, max(tier) AS top FROM customers \
     GROUP BY name HAVING count(*) < 3)";

/// The views of the oracle test: name and query.
fn views() -> Vec<(&'static str, String)> {
    vec![
        (
            "streams_inner",
            "SELECT o.id, o.customer, o.amount, c.region, c.tier FROM orders o \
             JOIN customers c ON o.customer = c.name"
                .into(),
        ),
        (
            // Two key columns (one computed) and a condition over both sides.
            "two_keys_and_filter",
            "SELECT o.id, c.name, c.tier, o.amount FROM orders o JOIN customers c \
             ON o.customer = c.name AND o.id % 4 = c.tier AND o.amount > c.tier - 2"
                .into(),
        ),
        (
            // A left join of append-only streams updates (padding retracted on the first
            // match): the aggregate above it folds the retractions.
            "left_then_group",
            "SELECT c.region, count(*) AS n, count(c.name) AS matched, sum(o.amount) AS total \
             FROM orders o LEFT JOIN customers c ON o.customer = c.name GROUP BY c.region"
                .into(),
        ),
        (
            "stream_table_then_group",
            format!(
                "SELECT p.top, count(*) AS n, sum(o.amount) AS total FROM orders o \
                 JOIN {PROFILES} p ON o.customer = p.name GROUP BY p.top"
            ),
        ),
        (
            "tables_inner",
            format!(
                "SELECT s.customer, s.total, p.name, p.n FROM {SPENDERS} s \
                 JOIN {PROFILES} p ON s.customer = p.name AND s.total > p.n"
            ),
        ),
        (
            "tables_left",
            format!(
                "SELECT s.customer, s.total, s.orders, p.name, p.top FROM {SPENDERS} s \
                 LEFT JOIN {PROFILES} p ON s.customer = p.name"
            ),
        ),
        (
            "tables_right",
            format!(
                "SELECT s.customer, s.total, p.name, p.n, p.top FROM {SPENDERS} s \
                 RIGHT JOIN {PROFILES} p ON s.customer = p.name"
            ),
        ),
        (
            "tables_full",
            format!(
                "SELECT s.customer, s.total, p.name, p.n FROM {SPENDERS} s \
                 FULL JOIN {PROFILES} p ON s.customer = p.name AND p.top >= 1"
            ),
        ),
        (
            "self_join",
            "SELECT a.id AS first, b.id AS second FROM orders a JOIN orders b \
             ON a.customer = b.customer AND a.amount = b.amount AND a.id < b.id"
                .into(),
        ),
        (
            // IN over two sources: an append-only semi join.
            "semi_in",
            "SELECT o.id, o.amount FROM orders o \
             WHERE o.customer IN (SELECT name FROM customers WHERE tier > 1)"
                .into(),
        ),
        (
            // EXISTS over an updating input: orders appear and go as spenders do; the
            // orders' rows are numbered (a hidden key).
            "exists_updating",
            format!(
                "SELECT o.id, o.customer FROM orders o \
                 WHERE EXISTS (SELECT 1 FROM {SPENDERS} s WHERE s.customer = o.customer \
                 AND s.total > o.amount)"
            ),
        ),
        (
            "not_exists_updating",
            format!(
                "SELECT o.id FROM orders o \
                 WHERE NOT EXISTS (SELECT 1 FROM {PROFILES} p WHERE p.name = o.customer)"
            ),
        ),
        (
            // A left join of two sources: both sides numbered, hidden.
            "left_sources",
            "SELECT o.id, c.region FROM orders o LEFT JOIN customers c ON o.customer = c.name"
                .into(),
        ),
        (
            // The key (customer) is not selected: kept hidden.
            "key_not_selected",
            format!("SELECT s.total, s.orders FROM {SPENDERS} s"),
        ),
    ]
}

async fn orders(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            let customer = match i % 9 {
                8 => "NULL".to_string(),
                k => format!("'c{}'", (k * 7 + i) % 6),
            };
            let amount = if i % 10 == 9 {
                "NULL".to_string()
            } else {
                (i % 7 - 2).to_string()
            };
            format!("({i}, {customer}, {amount})")
        })
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO orders (id, customer, amount) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("orders");
}

async fn customers(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            // Names c0..c7: c6 and c7 never order; every name gets several profile rows.
            let region = if i % 5 == 3 {
                "NULL".to_string()
            } else {
                format!("'r{}'", i % 3)
            };
            format!("('c{}', {region}, {})", (i * 3) % 8, i % 4)
        })
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO customers (name, region, tier) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("customers");
}

async fn open(state: &Arc<State>) -> Arc<Engine> {
    Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine")
}

async fn check_all(s: &Session, allow_empty: bool) {
    for (name, query) in views() {
        assert_oracle(s, name, &query, allow_empty).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_join_kind_equals_the_batch_oracle_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in ["orders", "customers"] {
        state
            .create_topic(topic, 2, 1, Default::default())
            .await
            .expect("topic");
    }
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders'); \
         CREATE SOURCE customers (name VARCHAR, region VARCHAR, tier BIGINT) \
         WITH (topic = 'customers')",
    )
    .await
    .expect("sources");
    orders(&s, 0, 30).await;
    customers(&s, 0, 4).await;
    for (name, query) in views() {
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    check_all(&s, false).await;
    // More of both sides: profiles pass 3 rows and are deleted, spenders change and drop.
    customers(&s, 4, 12).await;
    orders(&s, 30, 70).await;
    check_all(&s, true).await;

    // A clean restart (see aggregates.rs for why in-process is no kill -9; the Python
    // test covers the real binary), with input written while the engine is down.
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    orders(&s, 70, 100).await;
    customers(&s, 12, 16).await;
    check_all(&s, true).await;
    // A restart between checkpoints.
    customers(&s, 16, 20).await;
    orders(&s, 100, 120).await;
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    orders(&s, 120, 150).await;
    customers(&s, 20, 26).await;
    check_all(&s, true).await;
    for (name, _) in views() {
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }
    // EXPLAIN shows the join and its state.
    let plan = rows(
        &run(
            &s,
            &format!(
                "EXPLAIN CREATE MATERIALIZED VIEW x AS {}",
                views()[5].1 // tables_left
            ),
        )
        .await
        .expect("explain"),
    );
    let text = format!("{plan:?}");
    assert!(text.contains("Join(LEFT on ["), "{text}");
    assert!(text.contains("state: both sides"), "{text}");
    // Hidden key columns are not columns of the view: DESCRIBE lists the selected ones.
    for (view, want) in [
        ("left_sources", ["id", "region"]),
        ("key_not_selected", ["total", "orders"]),
    ] {
        let described = run(&s, &format!("DESCRIBE {view}"))
            .await
            .expect("describe");
        let names = described[0].column(0).as_string::<i32>();
        let types = described[0].column(1).as_string::<i32>();
        // Column rows have a type; the rows after them (kind, topic, ...) have none.
        let columns: Vec<&str> = (0..described[0].num_rows())
            .filter(|i| !types.is_null(*i))
            .map(|i| names.value(i))
            .collect();
        assert_eq!(columns, want, "{view}");
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_joins_cannot_do_is_refused_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in ["orders", "customers"] {
        state
            .create_topic(topic, 1, 1, Default::default())
            .await
            .expect("topic");
    }
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders'); \
         CREATE SOURCE customers (name VARCHAR, region VARCHAR, tier BIGINT) \
         WITH (topic = 'customers')",
    )
    .await
    .expect("sources");
    for (sql, says) in [
        (
            "SELECT o.id, c.region FROM orders o, customers c",
            "without an equality",
        ),
        (
            "SELECT o.id FROM orders o JOIN customers c ON o.amount > c.tier",
            "without an equality",
        ),
        (
            // NOT IN's NULLs match everything (a null-aware anti join).
            "SELECT id FROM orders WHERE customer NOT IN (SELECT name FROM customers)",
            "NOT EXISTS",
        ),
        (
            "SELECT o.id, c.region FROM orders o JOIN customers c \
             ON o.customer IS NOT DISTINCT FROM c.name",
            "IS NOT DISTINCT FROM|without an equality",
        ),
    ] {
        let err = run(&s, &format!("CREATE MATERIALIZED VIEW v AS {sql}"))
            .await
            .expect_err(sql);
        assert_eq!(err.sqlstate(), "0A000", "{sql}: {err}");
        let text = err.to_string();
        assert!(says.split('|').any(|w| text.contains(w)), "{sql}: {err}");
    }
    assert!(engine.catalog_entry("v").is_none());
    // The same updating join into an upsert sink keyed by the caller is accepted.
    run(
        &s,
        "CREATE SINK k INTO joined_out WITH (type = 'upsert', primary_key = 'id') AS \
         SELECT o.id, c.region FROM orders o LEFT JOIN customers c ON o.customer = c.name",
    )
    .await
    .expect("upsert sink of a left join");
    engine.stop().await;
}
