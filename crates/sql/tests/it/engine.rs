//! The engine over a real broker state in a temporary directory: statements through to the
//! partitions, and the catalog replayed after the state is closed and opened again.

use crate::common::run;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use weir_broker::state::State;
use weir_broker::BrokerConfig;
use weir_sql::engine::Engine;
use weir_sql::SqlConfig;

fn open(dir: &std::path::Path) -> Arc<State> {
    let (config, _) = BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        Default::default(),
    )
    .expect("config");
    Arc::new(State::open(config).expect("state"))
}

fn single_i64(batches: &[RecordBatch]) -> i64 {
    let column = batches[0].column(0);
    assert_eq!(column.len(), 1);
    column.as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_reach_partitions_and_definitions_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = open(dir.path());
    state
        .create_topic("events", 3, 1, Default::default())
        .await
        .expect("topic");
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine");
    let session = engine.session();
    run(
        &session,
        "CREATE SOURCE ev (id BIGINT NOT NULL, kind VARCHAR DEFAULT 'none') \
         INCLUDE partition WITH (topic = 'events')",
    )
    .await
    .expect("create");
    let err = run(&session, "CREATE SOURCE ev (a INT) WITH (topic = 'events')")
        .await
        .expect_err("exists");
    assert_eq!(err.sqlstate(), "42P07");
    run(
        &session,
        "INSERT INTO ev (id, kind) VALUES (1, 'a'), (2, 'b'), (3, NULL); INSERT INTO ev (id) VALUES (4)",
    )
    .await
    .expect("insert");
    let n = run(&session, "SELECT count(*) FROM ev")
        .await
        .expect("count");
    assert_eq!(single_i64(&n), 4);
    let defaulted = run(&session, "SELECT count(*) FROM ev WHERE kind = 'none'")
        .await
        .expect("default");
    assert_eq!(
        single_i64(&defaulted),
        1,
        "a missing column takes its DEFAULT"
    );
    let nulls = run(&session, "SELECT count(*) FROM ev WHERE kind IS NULL")
        .await
        .expect("null");
    assert_eq!(single_i64(&nulls), 1, "an explicit NULL stays NULL");
    let limited = run(&session, "SELECT id FROM ev LIMIT 2")
        .await
        .expect("limit");
    assert_eq!(limited.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    run(
        &session,
        "CREATE SOURCE gone (a INT) WITH (topic = 'events')",
    )
    .await
    .expect("create");
    run(&session, "DROP SOURCE gone").await.expect("drop");
    let err = run(&session, "SELECT * FROM gone")
        .await
        .expect_err("dropped");
    assert_eq!(err.sqlstate(), "42P01");
    drop(session);
    drop(engine);
    state.close().expect("close");
    drop(state);

    let state = open(dir.path());
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine again");
    let names: Vec<String> = engine
        .source_list()
        .iter()
        .map(|d| d.name.clone())
        .collect();
    assert_eq!(names, vec!["ev".to_string()]);
    let session = engine.session();
    let n = run(&session, "SELECT count(*) FROM ev WHERE kind = 'none'")
        .await
        .expect("count again");
    assert_eq!(
        single_i64(&n),
        1,
        "the DEFAULT is restored with the definition"
    );
    let per_partition = run(&session, "SELECT count(DISTINCT _partition) FROM ev")
        .await
        .expect("partitions");
    assert!(single_i64(&per_partition) >= 1);
    state.close().expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_from_a_sample_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = open(dir.path());
    state
        .create_topic("raw", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine");
    let session = engine.session();
    let err = run(&session, "CREATE SOURCE guess WITH (topic = 'raw')")
        .await
        .expect_err("an empty topic has nothing to infer from");
    assert!(err.to_string().contains("declare the columns"), "{err}");
    run(
        &session,
        "CREATE SOURCE writer (id BIGINT, at TIMESTAMPTZ, note VARCHAR) WITH (topic = 'raw')",
    )
    .await
    .expect("writer");
    run(
        &session,
        "INSERT INTO writer VALUES (1, '2024-05-01T10:00:00Z', 'x'), (2, '2024-05-02T10:00:00Z', NULL)",
    )
    .await
    .expect("insert");
    run(&session, "CREATE SOURCE guess WITH (topic = 'raw')")
        .await
        .expect("inferred");
    let described = run(&session, "DESCRIBE guess").await.expect("describe");
    let names = described[0].column(0).as_string::<i32>();
    let types = described[0].column(1).as_string::<i32>();
    let columns: Vec<(String, String)> = (0..described[0].num_rows())
        .filter(|i| !types.is_null(*i))
        .map(|i| (names.value(i).to_string(), types.value(i).to_string()))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("id".to_string(), "bigint".to_string()),
            ("at".to_string(), "timestamptz".to_string()),
            ("note".to_string(), "varchar".to_string()),
        ]
    );
    // What psycopg sends after DDL once it has prepared statements.
    for sql in [
        "DEALLOCATE ALL",
        "DEALLOCATE _pg3_0",
        "DEALLOCATE PREPARE s1",
    ] {
        run(&session, sql).await.expect(sql);
    }
    for (sql, state_code) in [
        (
            "CREATE TABLE t (a INT, PRIMARY KEY (a)) WITH (topic = 'raw', format = 'csv')",
            "0A000",
        ),
        (
            "CREATE SOURCE bad (a INT DEFAULT random()) WITH (topic = 'raw')",
            "22023",
        ),
        (
            "CREATE SOURCE bad (a INT) WITH (topic = 'raw', bogus = 1)",
            "22023",
        ),
        (
            "CREATE SOURCE bad (a INT) WITH (topic = 'missing')",
            "22023",
        ),
        // Deduplication is measured in event time: a source without a watermark is refused.
        (
            "CREATE SOURCE bad (a INT) WITH (topic = 'raw', dedup.key = 'a', \
             dedup.within = '10 minutes')",
            "22023",
        ),
        ("SELEC 1", "42601"),
    ] {
        let err = run(&session, sql).await.expect_err(sql);
        assert_eq!(err.sqlstate(), state_code, "{sql}: {err}");
    }
    state.close().expect("close");
}

/// The catalog queries clients send (captured from psql's `\d` and `\d name`, and what
/// drivers run at connect) plan and answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_client_catalog_queries_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = open(dir.path());
    state
        .create_topic("cap", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine");
    let session = engine.session();
    run(
        &session,
        "CREATE SOURCE cap (id BIGINT NOT NULL, name VARCHAR) WITH (topic = 'cap')",
    )
    .await
    .expect("source");
    let oid = 16_384 + engine.source_list()[0].id;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/catalog_queries");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for file in files {
        // psql asks by the OID it found; the captures hold the OID of the capture's run.
        let sql = std::fs::read_to_string(&file)
            .expect("read")
            .replace("'16385'", &format!("'{oid}'"));
        let batches = run(&session, &sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{} answered no rows", file.display());
    }
    state.close().expect("close");
}

/// `to_char` of numbers and intervals through SQL (PostgreSQL's results: the "to_char
/// Examples" table of its documentation; the formatter's own tests cover the patterns):
/// literals as DataFusion types them (integers BIGINT, `148.5` DOUBLE), a DECIMAL column,
/// an interval, in an ad-hoc query and a materialized view alike; a bad template or type
/// is an error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_char_formats_numbers_and_intervals_as_postgresql() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Transactions recovered, as `weir serve` has them before SQL starts: the view's
    // pipeline commits through them.
    let state = weir_broker::testkit::recovered(dir.path(), &[]);
    state
        .create_topic("amounts", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = Engine::start(state.clone(), weir_sql::SqlConfig::default())
        .await
        .expect("engine");
    let s = engine.session();
    let got = crate::common::select(
        &s,
        "SELECT to_char(1485, '9G999'), to_char(-485, '999PR'), to_char(148.5, 'FM999.990'), \
         to_char(CAST(12.45 AS DECIMAL(6, 2)), '99V9'), to_char(0.0004859, '9.99EEEE'), \
         to_char(482, 'FM999th'), to_char(INTERVAL '15 hours 2 minutes 12 seconds', 'HH24:MI:SS'), \
         to_char(INTERVAL '27 hours', 'HH24 \"h\"'), to_char(CAST(NULL AS BIGINT), '999')",
    )
    .await;
    assert_eq!(
        got,
        vec![vec![
            " 1,485",
            "<485>",
            "148.500",
            " 125",
            " 4.86e-04",
            "482nd",
            "15:02:12",
            "27 h",
            ""
        ]]
    );
    crate::common::run(
        &s,
        "CREATE SOURCE amounts (id BIGINT, amount DECIMAL(10, 2)) WITH (topic = 'amounts'); \
         INSERT INTO amounts VALUES (1, 1234.5), (2, -7.25); \
         CREATE MATERIALIZED VIEW shown AS \
         SELECT id, to_char(amount, 'FM9,999.00MI') AS amount FROM amounts",
    )
    .await
    .expect("a view formatting numbers");
    crate::common::assert_oracle(
        &s,
        "shown",
        "SELECT id, to_char(amount, 'FM9,999.00MI') AS amount FROM amounts",
        false,
    )
    .await;
    assert_eq!(
        crate::common::select(&s, "SELECT * FROM shown").await,
        vec![vec!["1", "1,234.50"], vec!["2", "7.25-"]]
    );
    for (sql, says) in [
        ("SELECT to_char(1, '9.9.9')", "multiple decimal points"),
        ("SELECT to_char(INTERVAL '1 day', 'Day')", "interval value"),
        ("SELECT to_char('text', '999')", "not supported"),
    ] {
        let err = crate::common::run(&s, sql).await.expect_err(sql);
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    engine.stop().await;
}
