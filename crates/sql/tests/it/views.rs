//! Views that are not materialized (`CREATE VIEW`): inlined into ad-hoc queries, other
//! views, materialized views and sinks (against the query they name, across a restart),
//! SHOW / DESCRIBE / SHOW CREATE, DROP refusals and CASCADE; `ALTER .. RENAME TO` of every
//! kind (readers rewritten, a materialized view's state and topic kept, across a restart);
//! `TRUNCATE TABLE`. Each refusal with its SQLSTATE.

use crate::common::{assert_oracle, open, run, select, tag};

use std::sync::Arc;

use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::Session;
use weir_sql::parser::parse;
use weir_stream::PipelineStatus;

/// `sql` fails with `code`, its message containing `says`.
async fn refused(s: &Session, sql: &str, code: &str, says: &str) {
    let err = run(s, sql).await.expect_err(sql);
    assert_eq!(err.sqlstate(), code, "{sql}: {err}");
    assert!(err.to_string().contains(says), "{sql}: {err}");
}

async fn insert(s: &Session, source: &str, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| format!("({i}, 'c{}', {})", i % 5, i % 7))
        .collect();
    run(
        s,
        &format!("INSERT INTO {source} VALUES {}", values.join(", ")),
    )
    .await
    .expect("orders");
}

async fn with_topics(names: &[&str]) -> (tempfile::TempDir, Arc<State>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in names {
        state
            .create_topic(topic, 2, 1, Default::default())
            .await
            .expect("topic");
    }
    (dir, state)
}

const BIG: &str = "SELECT id, customer, amount FROM orders WHERE amount > 2";
const PER_WHO: &str = "SELECT customer AS who, count(*) AS n, sum(amount) AS total \
                       FROM orders WHERE amount > 2 GROUP BY customer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_inlined_where_they_are_read_and_survive_a_restart() {
    let (_dir, state) = with_topics(&["orders", "out"]).await;
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders')",
    )
    .await
    .expect("source");
    insert(&s, "orders", 0, 30).await;
    assert_eq!(
        tag(&s, &format!("CREATE VIEW big (oid, who, amt) AS {BIG}")).await,
        "CREATE VIEW"
    );
    // Ad hoc: the rows of the query it names, under its column names, qualified or not.
    let want = select(&s, BIG).await;
    assert!(!want.is_empty());
    assert_eq!(select(&s, "SELECT * FROM big").await, want);
    assert_eq!(
        select(
            &s,
            "SELECT b.oid, big2.who FROM big AS b JOIN big AS big2 ON b.oid = big2.oid"
        )
        .await
        .len(),
        want.len()
    );
    assert_eq!(
        select(&s, "SELECT big.amt FROM public.big WHERE big.oid < 10").await,
        select(&s, "SELECT amount FROM orders WHERE amount > 2 AND id < 10").await
    );
    // A CTE of the view's name hides the view.
    assert_eq!(
        select(&s, "WITH big AS (SELECT 1 AS x) SELECT * FROM big").await,
        vec![vec!["1"]]
    );
    // A view over the view, a materialized view and a sink over those.
    run(
        &s,
        "CREATE VIEW per_who AS SELECT who, count(*) AS n, sum(amt) AS total FROM big GROUP BY who; \
         CREATE MATERIALIZED VIEW per_who_mv AS SELECT * FROM per_who; \
         CREATE SINK k INTO out FROM big; \
         CREATE SOURCE out_rows (oid BIGINT, who VARCHAR, amt BIGINT) WITH (topic = 'out')",
    )
    .await
    .expect("readers");
    assert_eq!(
        select(&s, "SELECT * FROM per_who").await,
        select(&s, PER_WHO).await
    );
    assert_oracle(&s, "per_who_mv", PER_WHO, false).await;
    assert_oracle(&s, "out_rows", BIG, false).await;
    // SHOW, DESCRIBE, SHOW CREATE.
    let shown = select(&s, "SHOW VIEWS").await;
    let names: Vec<&str> = shown.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["big", "per_who"]);
    let described = select(&s, "DESCRIBE big").await;
    for (column, sql_type) in [("oid", "BIGINT"), ("who", "VARCHAR"), ("amt", "BIGINT")] {
        assert!(
            described
                .iter()
                .any(|r| r[0] == column && r[1].eq_ignore_ascii_case(sql_type)),
            "{column}: {described:?}"
        );
    }
    assert!(
        described.iter().any(|r| r[0] == "kind" && r[3] == "view"),
        "{described:?}"
    );
    let created = select(&s, "SHOW CREATE VIEW big").await;
    assert!(
        created[0][1].starts_with("CREATE VIEW big (oid, who, amt) AS SELECT"),
        "{created:?}"
    );
    assert_eq!(parse(&created[0][1]).expect("parses back").len(), 1);

    // Refusals.
    refused(&s, "CREATE VIEW big AS SELECT 1", "42P07", "already exists").await;
    refused(&s, "CREATE VIEW v AS SELECT * FROM nope", "42P01", "nope").await;
    refused(
        &s,
        "CREATE VIEW v AS SELECT nope FROM orders",
        "42703",
        "nope",
    )
    .await;
    assert!(
        run(&s, "CREATE VIEW v (a) AS SELECT id, amount FROM orders")
            .await
            .is_err()
    );
    refused(&s, "DELETE FROM big WHERE oid = 1", "42809", "view big").await;
    refused(
        &s,
        "INSERT INTO big VALUES (1, 'x', 3)",
        "42809",
        "view big",
    )
    .await;
    refused(&s, "DROP VIEW big", "22023", "CASCADE").await;
    refused(
        &s,
        "DROP MATERIALIZED VIEW big",
        "42809",
        "not a materialized view",
    )
    .await;
    refused(&s, "DROP VIEW per_who_mv", "42809", "not a view").await;
    assert!(
        engine.catalog_entry("v").is_none(),
        "a refused CREATE stores nothing"
    );

    // Across a restart: definitions back, readers running and following new rows.
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    insert(&s, "orders", 30, 60).await;
    assert_eq!(select(&s, "SELECT * FROM big").await, select(&s, BIG).await);
    assert_oracle(&s, "per_who_mv", PER_WHO, false).await;
    assert_oracle(&s, "out_rows", BIG, false).await;
    assert_eq!(
        engine.pipeline_status("per_who_mv"),
        Some(PipelineStatus::Running)
    );
    assert_eq!(select(&s, "SHOW VIEWS").await.len(), 2);

    // CASCADE drops the readers (views, materialized views, sinks), never the source.
    assert_eq!(tag(&s, "DROP VIEW big CASCADE").await, "DROP VIEW");
    for gone in ["big", "per_who", "per_who_mv", "k"] {
        assert!(engine.catalog_entry(gone).is_none(), "{gone}");
    }
    assert!(state.topic("per_who_mv").is_none());
    assert!(engine.catalog_entry("orders").is_some());
    refused(&s, "SELECT * FROM big", "42P01", "big").await;
    assert_eq!(tag(&s, "DROP VIEW IF EXISTS big").await, "DROP VIEW");
    assert!(select(&s, "SHOW VIEWS").await.is_empty());
    engine.stop().await;
}

const CHEAP: &str = "SELECT id, customer FROM purchases WHERE amount < 4";
const BUSY: &str = "SELECT customer, count(*) AS n FROM purchases WHERE amount < 4 \
                    GROUP BY customer";
const PER_CUSTOMER: &str = "SELECT customer, count(*) AS n FROM purchases GROUP BY customer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rewrites_readers_and_keeps_state_and_topics() {
    let (_dir, state) = with_topics(&["orders", "out"]).await;
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders'); \
         CREATE MATERIALIZED VIEW per_customer AS \
         SELECT customer, count(*) AS n FROM orders GROUP BY customer; \
         CREATE MATERIALIZED VIEW cheap AS SELECT id, customer FROM orders WHERE amount < 4; \
         CREATE MATERIALIZED VIEW busy AS \
         SELECT customer, count(*) AS n FROM cheap GROUP BY customer; \
         CREATE VIEW small AS SELECT orders.id FROM orders WHERE orders.amount < 3; \
         CREATE SINK k INTO out AS SELECT o.id, amount FROM orders o WHERE amount > 4",
    )
    .await
    .expect("objects");
    insert(&s, "orders", 0, 30).await;
    assert_oracle(
        &s,
        "per_customer",
        "SELECT customer, count(*) AS n FROM orders GROUP BY customer",
        false,
    )
    .await;
    let id = engine.catalog_entry("per_customer").expect("entry").id;

    assert_eq!(
        tag(&s, "ALTER SOURCE orders RENAME TO purchases").await,
        "ALTER SOURCE"
    );
    refused(&s, "SELECT * FROM orders", "42P01", "orders").await;
    let created = select(&s, "SHOW CREATE MATERIALIZED VIEW per_customer").await;
    assert!(
        created[0][1].contains("FROM purchases AS orders"),
        "{created:?}"
    );
    let created = select(&s, "SHOW CREATE SINK k").await;
    assert!(created[0][1].contains("FROM purchases o"), "{created:?}");
    assert_eq!(
        select(&s, "SELECT * FROM small").await,
        select(&s, "SELECT id FROM purchases WHERE amount < 3").await
    );
    // The source keeps its dead-letter topic, written out.
    let created = select(&s, "SHOW CREATE SOURCE purchases").await;
    assert!(
        created[0][1].contains("dead_letter = 'orders.dlq'"),
        "{created:?}"
    );

    assert_eq!(
        tag(
            &s,
            "ALTER MATERIALIZED VIEW per_customer RENAME TO customers"
        )
        .await,
        "ALTER MATERIALIZED VIEW"
    );
    assert_eq!(
        tag(&s, "ALTER MATERIALIZED VIEW cheap RENAME TO bargains").await,
        "ALTER MATERIALIZED VIEW"
    );
    assert_eq!(
        tag(&s, "ALTER VIEW small RENAME TO tiny").await,
        "ALTER VIEW"
    );
    assert_eq!(tag(&s, "ALTER SINK k RENAME TO k2").await, "ALTER SINK");
    let described = select(&s, "DESCRIBE customers").await;
    assert!(
        described
            .iter()
            .any(|r| r[0] == "topic" && r[3] == "per_customer"),
        "the view keeps its topic: {described:?}"
    );
    assert!(
        described.iter().any(|r| r[0] == "topic note"),
        "{described:?}"
    );
    assert!(state.topic("per_customer").is_some());
    assert!(state.topic("customers").is_none());
    let created = select(&s, "SHOW CREATE MATERIALIZED VIEW busy").await;
    assert!(
        created[0][1].contains("FROM bargains AS cheap"),
        "{created:?}"
    );
    let sinks = select(&s, "SHOW SINKS").await;
    assert_eq!(sinks.len(), 1);
    assert_eq!(sinks[0][0], "k2");

    // Refusals: a taken name, the wrong kind, a missing object.
    refused(
        &s,
        "ALTER SOURCE purchases RENAME TO customers",
        "42P07",
        "customers",
    )
    .await;
    refused(
        &s,
        "ALTER TABLE purchases RENAME TO x",
        "42809",
        "not a table",
    )
    .await;
    refused(&s, "ALTER VIEW nope RENAME TO x", "42P01", "nope").await;
    assert!(engine.catalog_entry("x").is_none());

    // The pipelines go on from their state, now and after a restart.
    insert(&s, "purchases", 30, 45).await;
    assert_oracle(&s, "customers", PER_CUSTOMER, false).await;
    assert_oracle(&s, "busy", BUSY, false).await;
    assert_oracle(&s, "bargains", CHEAP, false).await;
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    insert(&s, "purchases", 45, 60).await;
    assert_oracle(&s, "customers", PER_CUSTOMER, false).await;
    assert_oracle(&s, "busy", BUSY, false).await;
    for name in ["customers", "bargains", "busy", "k2"] {
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }
    let entry = engine.catalog_entry("customers").expect("entry");
    assert_eq!(entry.id, id, "same pipeline, same state");
    assert!(entry.state_reset.is_none(), "{:?}", entry.state_reset);
    assert_eq!(
        select(&s, "SELECT * FROM tiny").await,
        select(&s, "SELECT id FROM purchases WHERE amount < 3").await
    );
    // Its topic goes with it.
    run(&s, "DROP MATERIALIZED VIEW customers CASCADE")
        .await
        .expect("drop");
    assert!(state.topic("per_customer").is_none());
    assert!(
        engine.catalog_entry("busy").is_some(),
        "busy reads bargains"
    );
    run(&s, "DROP MATERIALIZED VIEW bargains CASCADE")
        .await
        .expect("drop");
    assert!(state.topic("cheap").is_none());
    assert!(engine.catalog_entry("busy").is_none());
    engine.stop().await;
}

const BY_NAME: &str = "SELECT name, count(*) AS n FROM t GROUP BY name";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_empties_a_table_and_refuses_other_kinds() {
    let (_dir, state) = with_topics(&["t", "events"]).await;
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR) WITH (topic = 't', format = 'json'); \
         CREATE SOURCE events (id BIGINT) WITH (topic = 'events'); \
         CREATE VIEW v AS SELECT * FROM t; \
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'a')",
    )
    .await
    .expect("objects");
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW by_name AS {BY_NAME}"),
    )
    .await
    .expect("view");
    assert_oracle(&s, "by_name", BY_NAME, false).await;
    assert_eq!(tag(&s, "TRUNCATE TABLE t").await, "TRUNCATE TABLE");
    assert!(select(&s, "SELECT * FROM t").await.is_empty());
    assert!(select(&s, "SELECT * FROM v").await.is_empty());
    assert_oracle(&s, "by_name", BY_NAME, true).await;
    assert_eq!(tag(&s, "TRUNCATE t").await, "TRUNCATE TABLE");
    run(&s, "INSERT INTO t VALUES (2, 'c')")
        .await
        .expect("insert");
    assert_eq!(select(&s, "SELECT * FROM t").await, vec![vec!["2", "c"]]);
    assert_oracle(&s, "by_name", BY_NAME, false).await;
    refused(&s, "TRUNCATE events", "42809", "source").await;
    refused(&s, "TRUNCATE v", "42809", "view").await;
    refused(&s, "TRUNCATE by_name", "42809", "materialized view").await;
    refused(&s, "TRUNCATE nope", "42P01", "nope").await;
    assert_eq!(
        engine.pipeline_status("by_name"),
        Some(PipelineStatus::Running)
    );
    engine.stop().await;
}
