//! Statements an experienced user reaches for first: `DELETE` and `UPDATE` of a table
//! (tombstones and upserts to its topic, seen by SELECT and by the views over it, against
//! the oracle), their refusals (a source, a view, a primary key column, a subquery), `SHOW
//! CREATE`, `DROP .. CASCADE`, `EMIT ON WINDOW CLOSE` after a bare table name, and views
//! whose key is lost below a `UNION ALL` (keyed by branch, against the oracle, across a restart).

use crate::common::{assert_oracle, open, run, select, tag};

use weir_broker::testkit;
use weir_sql::engine::Session;
use weir_sql::parser::parse;
use weir_stream::PipelineStatus;

fn table(want: &[(i64, &str, Option<i64>)]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = want
        .iter()
        .map(|(id, name, score)| {
            vec![
                id.to_string(),
                name.to_string(),
                score.map_or(String::new(), |s| s.to_string()),
            ]
        })
        .collect();
    out.sort();
    out
}

const BY_NAME: &str = "SELECT name, count(*) AS n, sum(score) AS total FROM t GROUP BY name";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_update_of_a_table_write_its_changelog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in ["t", "events"] {
        state
            .create_topic(topic, 2, 1, Default::default())
            .await
            .expect("topic");
    }
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR, score BIGINT) \
         WITH (topic = 't', format = 'json'); \
         CREATE SOURCE events (id BIGINT) WITH (topic = 'events'); \
         INSERT INTO t VALUES (1, 'a', 10), (2, 'b', 20), (3, 'a', 30), (4, 'c', NULL), \
         (5, 'b', 50)",
    )
    .await
    .expect("table");
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW by_name AS {BY_NAME}"),
    )
    .await
    .expect("view");
    assert_oracle(&s, "by_name", BY_NAME, false).await;

    assert_eq!(tag(&s, "DELETE FROM t WHERE id = 2").await, "DELETE 1");
    assert_eq!(
        tag(&s, "UPDATE t SET score = score + 1 WHERE name = 'a'").await,
        "UPDATE 2"
    );
    // NULL is not true: row 4 is not touched.
    assert_eq!(
        tag(&s, "DELETE FROM t WHERE score > 40 OR score < 0").await,
        "DELETE 1"
    );
    assert_eq!(
        select(&s, "SELECT * FROM t").await,
        table(&[(1, "a", Some(11)), (3, "a", Some(31)), (4, "c", None)])
    );
    assert_oracle(&s, "by_name", BY_NAME, false).await;
    // A deleted key comes back with INSERT; nothing matched is zero rows.
    run(&s, "INSERT INTO t VALUES (2, 'b', 7)")
        .await
        .expect("insert");
    assert_eq!(tag(&s, "DELETE FROM t WHERE id = 99").await, "DELETE 0");
    // A condition the optimizer proves false matches nothing (it used to reach the table as
    // no condition at all, so every row was deleted or updated).
    for sql in [
        "DELETE FROM t WHERE false",
        "DELETE FROM t WHERE id = 1 AND 1 = 0",
        "DELETE FROM t WHERE NULL",
    ] {
        assert_eq!(tag(&s, sql).await, "DELETE 0", "{sql}");
    }
    assert_eq!(
        tag(&s, "UPDATE t SET name = 'q' WHERE 1 > 2").await,
        "UPDATE 0"
    );
    for (sql, says) in [
        ("DELETE FROM events WHERE false", "append-only"),
        ("UPDATE by_name SET n = 1 WHERE false", "materialized view"),
    ] {
        let err = run(&s, sql).await.expect_err(sql);
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    assert_eq!(
        tag(&s, "UPDATE t SET name = 'z' WHERE id = 4").await,
        "UPDATE 1"
    );
    assert_eq!(
        select(&s, "SELECT * FROM t").await,
        table(&[
            (1, "a", Some(11)),
            (2, "b", Some(7)),
            (3, "a", Some(31)),
            (4, "z", None)
        ])
    );
    assert_oracle(&s, "by_name", BY_NAME, false).await;

    // Uncorrelated subqueries run first: IN a list of ids, an empty one, a scalar in SET.
    run(&s, "INSERT INTO events VALUES (1), (3), (77)")
        .await
        .expect("events");
    assert_eq!(
        tag(
            &s,
            "UPDATE t SET score = 5 WHERE id IN (SELECT id FROM events)"
        )
        .await,
        "UPDATE 2"
    );
    assert_eq!(
        tag(
            &s,
            "DELETE FROM t WHERE id IN (SELECT id FROM events WHERE id > 100)"
        )
        .await,
        "DELETE 0"
    );
    assert_eq!(
        tag(
            &s,
            "UPDATE t SET score = (SELECT max(id) FROM events WHERE id < 10) \
             WHERE id NOT IN (SELECT id FROM events) AND name = 'b'"
        )
        .await,
        "UPDATE 1"
    );
    assert_eq!(
        select(&s, "SELECT * FROM t").await,
        table(&[
            (1, "a", Some(5)),
            (2, "b", Some(3)),
            (3, "a", Some(5)),
            (4, "z", None)
        ])
    );
    assert_oracle(&s, "by_name", BY_NAME, false).await;

    // A SELECT's scalar subquery: an uncorrelated one of several rows is refused, as in
    // PostgreSQL (it used to answer their maximum); a correlated one reads its row's match.
    assert_eq!(
        select(&s, "SELECT (SELECT id FROM events WHERE id > 50)").await,
        vec![vec!["77"]]
    );
    let err = run(&s, "SELECT (SELECT id FROM events)")
        .await
        .expect_err("a scalar subquery of three rows");
    assert!(err.to_string().contains("more than one row"), "{err}");
    assert_eq!(
        select(
            &s,
            "SELECT t.id, coalesce((SELECT e.id FROM events e WHERE e.id = t.id), -1) FROM t"
        )
        .await,
        vec![
            vec!["1", "1"],
            vec!["2", "-1"],
            vec!["3", "3"],
            vec!["4", "-1"]
        ]
    );

    // Refusals, each saying why.
    for (sql, says) in [
        ("UPDATE t SET id = 9 WHERE id = 1", "primary key"),
        ("DELETE FROM events WHERE id = 1", "append-only"),
        ("UPDATE events SET id = 2", "append-only"),
        ("DELETE FROM by_name", "materialized view"),
        (
            "DELETE FROM t WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = t.id)",
            "subquery",
        ),
        (
            "UPDATE t SET score = 0 WHERE score > (SELECT id FROM events)",
            "more than one row",
        ),
    ] {
        let err = run(&s, sql).await.expect_err(sql);
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    assert_eq!(select(&s, "SELECT count(*) FROM t").await, vec![vec!["4"]]);

    // Without WHERE: every row.
    assert_eq!(tag(&s, "DELETE FROM t").await, "DELETE 4");
    assert!(select(&s, "SELECT * FROM t").await.is_empty());
    assert_oracle(&s, "by_name", BY_NAME, true).await;
    assert_eq!(
        engine.pipeline_status("by_name"),
        Some(PipelineStatus::Running)
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_create_returns_the_statement_that_recreates_the_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in ["t", "events", "out"] {
        state
            .create_topic(topic, 1, 1, Default::default())
            .await
            .expect("topic");
    }
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR) WITH (topic = 't', format = 'json'); \
         CREATE SOURCE events (id BIGINT, kind VARCHAR) WITH (topic = 'events'); \
         CREATE MATERIALIZED VIEW IF NOT EXISTS per_kind AS \
         SELECT kind, count(*) AS n FROM events GROUP BY kind; \
         CREATE SINK k INTO out AS SELECT id FROM events WHERE id > 3",
    )
    .await
    .expect("objects");
    for (sql, name, has) in [
        (
            "SHOW CREATE MATERIALIZED VIEW per_kind",
            "per_kind",
            "GROUP BY kind",
        ),
        ("SHOW CREATE SINK k", "k", "topic = 'out'"),
        ("SHOW CREATE SOURCE events", "events", "topic"),
        ("SHOW CREATE TABLE t", "t", "PRIMARY KEY"),
        (
            "SHOW CREATE per_kind",
            "per_kind",
            "CREATE MATERIALIZED VIEW per_kind",
        ),
    ] {
        let got = select(&s, sql).await;
        assert_eq!(got.len(), 1, "{sql}");
        assert_eq!(got[0][0], name, "{sql}");
        let text = &got[0][1];
        assert!(text.contains(has), "{sql}: {text}");
        assert!(!text.contains("IF NOT EXISTS"), "{sql}: {text}");
        // What it shows parses back into one statement.
        assert_eq!(parse(text).expect(text).len(), 1, "{text}");
    }
    // DROP refuses while others read, and CASCADE drops them first, readers before what
    // they read; the sink's topic is the user's and stays.
    run(
        &s,
        "CREATE MATERIALIZED VIEW big AS SELECT id FROM events WHERE id > 5; \
         CREATE SINK k2 INTO out AS SELECT id FROM big",
    )
    .await
    .expect("a view over the source, a sink over the view");
    let err = run(&s, "DROP SOURCE events")
        .await
        .expect_err("read by others");
    assert!(err.to_string().contains("CASCADE"), "{err}");
    run(&s, "DROP SOURCE events CASCADE")
        .await
        .expect("cascade");
    for gone in ["events", "per_kind", "k", "big", "k2"] {
        assert!(engine.catalog_entry(gone).is_none(), "{gone}");
    }
    assert!(
        state.topic("per_kind").is_none(),
        "a view's topic goes with it"
    );
    assert!(state.topic("out").is_some() && state.topic("events").is_some());
    assert!(engine.catalog_entry("t").is_some());
    let err = run(&s, "SHOW CREATE SINK t").await.expect_err("kind");
    assert!(err.to_string().contains("not a sink"), "{err}");
    let err = run(&s, "SHOW CREATE MATERIALIZED VIEW nope")
        .await
        .expect_err("unknown");
    assert_eq!(err.sqlstate(), "42P01", "{err}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_on_window_close_follows_a_bare_table_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("bids", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE bids (id BIGINT, ts TIMESTAMP, \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (topic = 'bids'); \
         CREATE MATERIALIZED VIEW closed AS WITH w AS (SELECT window_start, count(*) AS n \
         FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY window_start) \
         SELECT * FROM w EMIT ON WINDOW CLOSE",
    )
    .await
    .expect("a view ending in a bare name, then EMIT ON WINDOW CLOSE");
    let values: Vec<String> = (0..35)
        .map(|i| format!("({i}, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{i}' SECOND)"))
        .collect();
    run(
        &s,
        &format!("INSERT INTO bids VALUES {}", values.join(", ")),
    )
    .await
    .expect("bids");
    // Watermark 33 s: the windows of 0 s, 10 s and 20 s closed, once each; 30 s is open.
    let want: Vec<Vec<String>> = ["00", "10", "20"]
        .iter()
        .map(|m| vec![format!("2026-01-01T00:00:{m}"), "10".to_string()])
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = select(&s, "SELECT * FROM closed").await;
        if got == want {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A table's alias still works, and EMIT after a non-window query is refused as before.
    let err = run(
        &s,
        "CREATE MATERIALIZED VIEW plain AS SELECT * FROM bids EMIT ON WINDOW CLOSE",
    )
    .await
    .expect_err("no window");
    assert!(
        err.to_string().contains("needs a windowed aggregate"),
        "{err}"
    );
    engine.stop().await;
}

/// Views whose key is lost below a UNION ALL: the branches' keys, tagged by branch.
const UNIONS: &[(&str, &str)] = &[
    (
        // Two aggregates keyed by the same column: equal keys in both branches.
        "two_aggregates",
        "SELECT customer, n FROM (SELECT customer, count(*) AS n FROM orders GROUP BY customer) a \
         UNION ALL SELECT customer, total FROM (SELECT customer, sum(amount) AS total \
         FROM orders GROUP BY customer) b",
    ),
    (
        // An updating branch and an append-only one (rows numbered).
        "aggregate_and_rows",
        "SELECT customer, count(*) AS n FROM orders GROUP BY customer \
         UNION ALL SELECT customer, amount FROM orders WHERE amount > 4",
    ),
    (
        // Key columns not selected, of other types per branch.
        "keys_not_selected",
        "SELECT n FROM (SELECT customer, count(*) AS n FROM orders GROUP BY customer) a \
         UNION ALL SELECT n FROM (SELECT amount, count(*) AS n FROM orders GROUP BY amount) b",
    ),
];

async fn orders(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| format!("({i}, 'c{}', {})", i % 5, i % 7))
        .collect();
    run(
        s,
        &format!("INSERT INTO orders VALUES {}", values.join(", ")),
    )
    .await
    .expect("orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_whose_key_is_lost_below_a_union_all_equal_the_oracle() {
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
        "CREATE SOURCE orders (id BIGINT, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders')",
    )
    .await
    .expect("source");
    orders(&s, 0, 30).await;
    for (name, query) in UNIONS {
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    for (name, query) in UNIONS {
        assert_oracle(&s, name, query, false).await;
    }
    // Hidden keys are not columns of the view.
    let described = select(&s, "DESCRIBE keys_not_selected").await;
    assert!(described.iter().any(|r| r[0] == "n"), "{described:?}");
    assert!(
        !described.iter().any(|r| r[0].starts_with("_hidden")),
        "{described:?}"
    );
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    orders(&s, 30, 60).await;
    for (name, query) in UNIONS {
        assert_oracle(&s, name, query, false).await;
        assert_eq!(engine.pipeline_status(name), Some(PipelineStatus::Running));
    }
    engine.stop().await;
}

/// A materialized view's definition is kept with its catalog entry: `pg_get_viewdef` (psql's
/// `\d+ mv`), `pg_matviews.definition` and `SHOW CREATE` agree, after a restart (the entry
/// re-planned from its SQL) and after a source it reads is renamed (its query rewritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_materialized_views_definition_is_shown_as_its_catalog_entry_stores_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("events", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE events (id BIGINT, kind VARCHAR) WITH (topic = 'events'); \
         CREATE MATERIALIZED VIEW per_kind AS \
         SELECT kind, count(*) AS n FROM events WHERE id > 3 GROUP BY kind; \
         CREATE VIEW plain AS SELECT id FROM events",
    )
    .await
    .expect("objects");
    let shown = |s: Session| async move {
        let viewdef = select(&s, "SELECT pg_get_viewdef('per_kind'::regclass, true)").await;
        let matviews = select(
            &s,
            "SELECT schemaname, matviewname, ispopulated, definition FROM pg_matviews",
        )
        .await;
        let created = select(&s, "SHOW CREATE MATERIALIZED VIEW per_kind").await;
        (viewdef[0][0].clone(), matviews, created[0][1].clone())
    };
    let (viewdef, matviews, created) = shown(engine.session()).await;
    assert_eq!(
        viewdef,
        "SELECT kind, count(*) AS n FROM events WHERE id > 3 GROUP BY kind"
    );
    assert_eq!(
        matviews,
        vec![vec![
            "public".to_string(),
            "per_kind".to_string(),
            "true".to_string(),
            viewdef.clone()
        ]]
    );
    assert!(created.ends_with(&viewdef), "{created}");
    // A plain view answers as before, and is not a materialized view.
    let plain = select(&s, "SELECT viewname, definition FROM pg_views").await;
    assert_eq!(
        plain,
        vec![vec![
            "plain".to_string(),
            "SELECT id FROM events".to_string()
        ]]
    );
    let plain = select(&s, "SELECT pg_get_viewdef('plain'::regclass)").await;
    assert_eq!(plain[0][0], "SELECT id FROM events");
    let none = select(&s, "SELECT pg_get_viewdef('events'::regclass)").await;
    assert_eq!(none[0][0], "", "a source has no definition (NULL)");

    // After a restart, from the stored entry.
    engine.stop().await;
    let engine = open(&state).await;
    assert_eq!(shown(engine.session()).await.0, viewdef);

    // Renaming the source rewrites the view's query, and every answer follows it.
    let s = engine.session();
    tag(&s, "ALTER SOURCE events RENAME TO ev").await;
    let (renamed, matviews, created) = shown(engine.session()).await;
    assert!(renamed.contains("FROM ev AS events"), "{renamed}");
    assert_eq!(matviews[0][3], renamed);
    assert!(created.ends_with(&renamed), "{created}");

    // EMIT ON WINDOW CLOSE is part of what the view computes, so it is shown.
    run(
        &s,
        "CREATE SOURCE timed (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) \
         WITH (topic = 'events'); \
         CREATE MATERIALIZED VIEW closed AS SELECT window_end, count(*) AS n \
         FROM TUMBLE(timed, ts, INTERVAL '1' SECOND) GROUP BY window_end EMIT ON WINDOW CLOSE",
    )
    .await
    .expect("a window view");
    let closed = select(&s, "SELECT pg_get_viewdef('closed'::regclass)").await;
    assert!(
        closed[0][0].ends_with("GROUP BY window_end EMIT ON WINDOW CLOSE"),
        "{closed:?}"
    );
    engine.stop().await;
}
