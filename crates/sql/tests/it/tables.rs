//! Tables (`CREATE TABLE .. PRIMARY KEY`, design §5.1) against a model and the oracle: a
//! table's topic is a changelog upserted by record key, tombstones delete. Ad-hoc `SELECT`
//! shows the last row per key (checked against a model kept by the test); views over the
//! table (an aggregate, a filter, a join of a source with the table feeding an aggregate)
//! equal DataFusion's batch result over the same records as rows are updated and deleted,
//! across clean restarts. Also: SHOW TABLES, DESCRIBE, DROP, keyless records dead-lettered,
//! and the refusals at CREATE.

use crate::common::{assert_oracle, restart, rows, run};

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::append::{append_durably, NewRecord};
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

const VIEWS: &[(&str, &str)] = &[
    (
        "per_region",
        "SELECT region, count(*) AS n, sum(tier) AS tiers, max(name) AS last \
         FROM customers GROUP BY region",
    ),
    (
        "high_tier",
        "SELECT name, region, tier * 10 AS score FROM customers WHERE tier >= 2",
    ),
    (
        "spend_per_region",
        "SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o \
         JOIN customers c ON o.customer = c.name GROUP BY c.region",
    ),
    (
        "spend_per_tier_left",
        "SELECT c.tier, count(*) AS n, count(c.name) AS matched FROM orders o \
         LEFT JOIN customers c ON o.customer = c.name GROUP BY c.tier",
    ),
];

/// The table as the test expects it: name -> (region, tier).
type Model = BTreeMap<String, (Option<String>, i64)>;

/// Customer changes `from..to`: upserts by name (names repeat: updates), every fifth a
/// delete (a tombstone appended as a Kafka producer would), mirrored in `model`.
async fn customers(state: &Arc<State>, s: &Session, model: &mut Model, from: i64, to: i64) {
    let partition = weir_broker::partition_access::PartitionAccess::new(state.clone())
        .partition("customers", 0)
        .expect("customers-0");
    for i in from..to {
        if i % 5 == 4 {
            let name = format!("c{}", (i * 7) % 8);
            let key = format!(r#"{{"name":"{name}"}}"#);
            append_durably(
                &partition,
                &[NewRecord {
                    key: Some(key.into_bytes()),
                    value: None,
                    headers: Vec::new(),
                }],
            )
            .await
            .expect("tombstone");
            model.remove(&name);
            continue;
        }
        let name = format!("c{}", (i * 3) % 8);
        let region = (i % 6 != 5).then(|| format!("r{}", i % 3));
        let tier = i % 4;
        let sql_region = region
            .as_ref()
            .map_or("NULL".to_string(), |r| format!("'{r}'"));
        run(
            s,
            &format!(
                "INSERT INTO customers (name, region, tier) VALUES ('{name}', {sql_region}, {tier})"
            ),
        )
        .await
        .expect("upsert");
        model.insert(name, (region, tier));
    }
}

async fn orders(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            let customer = match i % 9 {
                8 => "NULL".to_string(),
                k => format!("'c{}'", (k * 5 + i) % 9),
            };
            format!("({i}, {customer}, {})", i % 7 - 2)
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

async fn open(state: &Arc<State>) -> Arc<Engine> {
    Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine")
}

/// Ad-hoc `SELECT` over the table equals the model; every view equals its oracle.
async fn check(s: &Session, model: &Model) {
    let got = rows(
        &run(s, "SELECT name, region, tier FROM customers")
            .await
            .expect("select"),
    );
    let mut want: Vec<Vec<String>> = model
        .iter()
        .map(|(n, (r, t))| vec![n.clone(), r.clone().unwrap_or_default(), t.to_string()])
        .collect();
    want.sort();
    assert_eq!(got, want, "SELECT over the table: last row per key");
    for (name, query) in VIEWS {
        assert_oracle(s, name, query, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_update_and_delete_equal_the_batch_oracle_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("orders", 2, 1, Default::default())
        .await
        .expect("orders topic");
    let compacted = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    state
        .create_topic("customers", 1, 1, compacted)
        .await
        .expect("customers topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders'); \
         CREATE TABLE customers (name VARCHAR, region VARCHAR, tier BIGINT NOT NULL, \
         PRIMARY KEY (name)) WITH (topic = 'customers', format = 'json')",
    )
    .await
    .expect("source and table");
    let mut model = Model::new();
    customers(&state, &s, &mut model, 0, 12).await;
    orders(&s, 0, 30).await;
    // A record without a key names no row: skipped by SELECT, dead-lettered by pipelines.
    let partition = weir_broker::partition_access::PartitionAccess::new(state.clone())
        .partition("customers", 0)
        .expect("customers-0");
    append_durably(
        &partition,
        &[NewRecord {
            key: None,
            value: Some(br#"{"name":"keyless","region":"r9","tier":1}"#.to_vec()),
            headers: Vec::new(),
        }],
    )
    .await
    .expect("keyless");
    for (name, query) in VIEWS {
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    check(&s, &model).await;
    let dead: u64 = engine
        .pipeline_reports()
        .iter()
        .filter(|r| r.name == "per_region")
        .filter_map(|r| r.progress.as_ref().map(|p| p.decode_failures))
        .sum();
    assert_eq!(
        dead, 1,
        "the keyless record is dead-lettered once by per_region"
    );

    // Updates and deletes of rows the views have seen.
    customers(&state, &s, &mut model, 12, 40).await;
    orders(&s, 30, 60).await;
    check(&s, &model).await;

    let (engine, s) = restart(engine, s, &state).await;
    customers(&state, &s, &mut model, 40, 60).await;
    orders(&s, 60, 80).await;
    check(&s, &model).await;
    // Changes written while the engine is down.
    customers(&state, &s, &mut model, 60, 70).await;
    let (engine, s) = restart(engine, s, &state).await;
    orders(&s, 80, 100).await;
    customers(&state, &s, &mut model, 70, 90).await;
    check(&s, &model).await;
    for (name, _) in VIEWS {
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }

    // SHOW, DESCRIBE, EXPLAIN and DROP.
    let shown = rows(&run(&s, "SHOW TABLES").await.expect("show tables"));
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0][0], "customers");
    let sources = rows(&run(&s, "SHOW SOURCES").await.expect("show sources"));
    assert!(sources.iter().all(|r| r[0] != "customers"), "{sources:?}");
    let described = format!(
        "{:?}",
        rows(&run(&s, "DESCRIBE customers").await.expect("describe"))
    );
    assert!(
        described.contains("\"primary key\", \"\", \"\", \"name\""),
        "{described}"
    );
    assert!(
        described.contains("\"kind\", \"\", \"\", \"table\""),
        "{described}"
    );
    let plan = format!(
        "{:?}",
        rows(
            &run(
                &s,
                &format!("EXPLAIN CREATE MATERIALIZED VIEW x AS {}", VIEWS[0].1)
            )
            .await
            .expect("explain")
        )
    );
    assert!(plan.contains("TopN"), "{plan}");
    let err = run(&s, "DROP TABLE customers")
        .await
        .expect_err("dependents");
    assert!(err.to_string().contains("per_region"), "{err}");
    let err = run(&s, "DROP SOURCE customers").await.expect_err("a table");
    assert!(err.to_string().contains("not a source"), "{err}");
    for (name, _) in VIEWS {
        run(&s, &format!("DROP MATERIALIZED VIEW {name}"))
            .await
            .expect("drop view");
    }
    run(&s, "DROP TABLE customers").await.expect("drop table");
    assert!(rows(&run(&s, "SHOW TABLES").await.expect("show")).is_empty());
    engine.stop().await;
    drop(s);
    drop(engine);
    // The drop is durable.
    let engine = open(&state).await;
    assert!(engine.catalog_entry("customers").is_none());
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_tables_cannot_do_is_refused_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("t", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    for (sql, code, says) in [
        (
            "CREATE TABLE x (k INT, PRIMARY KEY (k)) WITH (topic = 't', format = 'csv')",
            "0A000",
            "JSON",
        ),
        (
            "CREATE TABLE x (k INT, PRIMARY KEY (k)) INCLUDE offset WITH (topic = 't')",
            "0A000",
            "INCLUDE",
        ),
        (
            "CREATE TABLE x (k INT, PRIMARY KEY (k)) \
             WITH (topic = 't', scan.startup.mode = 'latest')",
            "0A000",
            "scan.startup.mode",
        ),
        (
            "CREATE TABLE x (k INT, PRIMARY KEY (j)) WITH (topic = 't')",
            "22023",
            "does not exist",
        ),
        ("CREATE TABLE x (k INT, PRIMARY KEY (k))", "22023", "topic"),
    ] {
        let err = run(&s, sql).await.expect_err(sql);
        assert_eq!(err.sqlstate(), code, "{sql}: {err}");
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    assert!(engine.catalog_entry("x").is_none());
    run(
        &s,
        "CREATE TABLE x (k INT, v VARCHAR, PRIMARY KEY (k)) WITH (topic = 't')",
    )
    .await
    .expect("table");
    // Its key is NOT NULL: an INSERT without one fails clearly.
    let err = run(&s, "INSERT INTO x (k, v) VALUES (NULL, 'a')")
        .await
        .expect_err("null key");
    assert!(err.to_string().contains("null"), "{err}");
    run(&s, "INSERT INTO x VALUES (1, 'a'), (2, 'b'), (1, 'c')")
        .await
        .expect("insert");
    assert_eq!(
        rows(&run(&s, "SELECT k, v FROM x").await.expect("select")),
        vec![
            vec!["1".to_string(), "c".to_string()],
            vec!["2".to_string(), "b".to_string()]
        ]
    );
    engine.stop().await;
}
