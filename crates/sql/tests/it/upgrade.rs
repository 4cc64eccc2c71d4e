//! Pipelines whose plan changed since CREATE (design §5.3, `weir_sql::upgrade`): the
//! catalog is rewritten between two runs as an older Weir left it (a plan fingerprint that
//! the current planner does not produce, and no state layout), over state the old run
//! checkpointed. At restart a view and an upsert sink over an updating join are rebuilt
//! from their sources (new id, state reset shown by DESCRIBE, old state topic deleted,
//! results equal to the batch oracle); a stateless sink resumes from its offsets (no row
//! written twice); an append-only sink with state is refused with the way out; a pipeline
//! whose plan changed but whose state layout did not resumes over its state. A view others
//! read is rebuilt with them, unless an append-only sink reads it (through any views).

use crate::common::{assert_oracle, open, restart, rows, run};

use std::sync::Arc;
use std::time::Duration;

use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::append::{append_durably, NewRecord};
use weir_sql::catalog::CATALOG_TOPIC;
use weir_sql::engine::{Engine, Session};
use weir_stream::checkpoint::state_topic;
use weir_stream::PipelineStatus;

const PER_CUSTOMER: &str =
    "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer";
const KEPT: &str = "SELECT customer, max(amount) AS top FROM orders GROUP BY customer";
const JOINED: &str = "SELECT o.id, c.region FROM orders o JOIN customers c ON o.customer = c.name";
/// What an older planner fingerprinted: no graph of today's planner hashes to it.
pub(crate) const OLD_FINGERPRINT: &str = "0000000000000000";

async fn orders(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            format!(
                "({i}, 'c{}', {}, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{i}' SECOND)",
                i % 4,
                i % 7
            )
        })
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO orders (id, customer, amount, ts) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("orders");
}

async fn count(s: &Session, sql: &str) -> i64 {
    let got = rows(&run(s, sql).await.expect(sql));
    got[0][0].parse().expect("a count")
}

/// Waits until `sql` (a count) answers `want`, then checks it stays there a while.
async fn settles_at(s: &Session, sql: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(s, sql).await != want {
        assert!(tokio::time::Instant::now() < deadline, "{sql}: want {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(s, sql).await, want, "{sql}");
}

/// Waits until `name`'s pipeline runs (it recovers first).
pub(crate) async fn running(engine: &Engine, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while engine.pipeline_status(name) != Some(PipelineStatus::Running) {
        let status = engine.pipeline_status(name);
        assert!(tokio::time::Instant::now() < deadline, "{name}: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rewrites `name`'s catalog entry as an older Weir wrote it.
pub(crate) async fn as_older_weir_left_it(
    state: &Arc<State>,
    engine: &Engine,
    name: &str,
    keep_layout: bool,
) {
    let mut entry = engine.catalog_entry(name).expect(name);
    entry.plan_fingerprint = Some(OLD_FINGERPRINT.into());
    if !keep_layout {
        entry.state_layout = None;
    }
    let partition = weir_broker::partition_access::PartitionAccess::new(state.clone())
        .partition(CATALOG_TOPIC, 0)
        .expect("catalog partition");
    append_durably(
        &partition,
        &[NewRecord {
            key: Some(name.as_bytes().to_vec()),
            value: Some(serde_json::to_vec(&entry).expect("json")),
            headers: Vec::new(),
        }],
    )
    .await
    .expect("catalog record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_changed_since_create_is_resumed_rebuilt_or_refused_never_run_over_old_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in ["orders", "customers", "out_join", "out_plain", "out_win"] {
        state
            .create_topic(topic, 1, 1, Default::default())
            .await
            .expect("topic");
    }
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT, \
         ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (topic = 'orders'); \
         CREATE TABLE customers (name VARCHAR PRIMARY KEY, region VARCHAR) \
         WITH (topic = 'customers', format = 'json'); \
         INSERT INTO customers VALUES ('c0', 'north'), ('c1', 'south'), ('c2', 'north')",
    )
    .await
    .expect("sources");
    orders(&s, 0, 40).await;
    run(
        &s,
        &format!(
            "CREATE MATERIALIZED VIEW per_customer AS {PER_CUSTOMER}; \
             CREATE MATERIALIZED VIEW kept AS {KEPT}; \
             CREATE SINK k_join INTO out_join AS {JOINED} \
             WITH (type = 'upsert', primary_key = 'id'); \
             CREATE SINK k_plain INTO out_plain AS SELECT id, amount * 2 AS twice FROM orders; \
             CREATE SINK k_win INTO out_win AS SELECT window_start, count(*) AS n \
             FROM TUMBLE(orders, ts, INTERVAL '10' SECOND) GROUP BY window_start \
             EMIT ON WINDOW CLOSE; \
             CREATE TABLE joined (id BIGINT PRIMARY KEY, region VARCHAR) \
             WITH (topic = 'out_join', format = 'json'); \
             CREATE SOURCE plain (id BIGINT, twice BIGINT) WITH (topic = 'out_plain')"
        ),
    )
    .await
    .expect("pipelines");
    assert_oracle(&s, "per_customer", PER_CUSTOMER, false).await;
    assert_oracle(&s, "kept", KEPT, false).await;
    assert_oracle(&s, "joined", JOINED, false).await;
    settles_at(&s, "SELECT count(*) FROM plain", 40).await;
    let ids: Vec<(&str, u64)> = ["per_customer", "kept", "k_join", "k_plain", "k_win"]
        .into_iter()
        .map(|n| (n, engine.catalog_entry(n).expect(n).id))
        .collect();
    let id = |name: &str| ids.iter().find(|(n, _)| *n == name).map(|(_, i)| *i);
    for (name, _) in &ids {
        assert!(
            engine
                .catalog_entry(name)
                .expect(name)
                .state_layout
                .is_some(),
            "{name}: CREATE stores the state layout"
        );
    }
    engine.stop().await;
    for name in ["per_customer", "k_join", "k_plain", "k_win"] {
        as_older_weir_left_it(&state, &engine, name, false).await;
    }
    as_older_weir_left_it(&state, &engine, "kept", true).await;
    drop(s);
    drop(engine);

    let engine = open(&state).await;
    let s = engine.session();
    orders(&s, 40, 60).await;
    run(&s, "INSERT INTO customers VALUES ('c3', 'west')")
        .await
        .expect("customer");

    // Rebuilt: a view and an upsert sink keyed by a named column.
    for name in ["per_customer", "k_join"] {
        let entry = engine.catalog_entry(name).expect(name);
        assert_ne!(Some(entry.id), id(name), "{name}: rebuilt under a new id");
        let reset = entry.state_reset.clone().unwrap_or_default();
        assert!(
            reset.contains("plan changed since CREATE"),
            "{name}: {reset}"
        );
        assert_ne!(entry.plan_fingerprint.as_deref(), Some(OLD_FINGERPRINT));
        assert!(
            state.topic(&state_topic(id(name).expect(name))).is_none(),
            "{name}: the old state topic is deleted"
        );
        running(&engine, name).await;
    }
    let described = rows(&run(&s, "DESCRIBE per_customer").await.expect("describe"));
    assert!(
        described.iter().any(|r| r[0] == "state reset"),
        "{described:?}"
    );
    assert_oracle(&s, "per_customer", PER_CUSTOMER, false).await;
    assert_oracle(&s, "joined", JOINED, false).await;

    // Resumed over its state: the plan changed, its state layout did not.
    let kept = engine.catalog_entry("kept").expect("kept");
    assert_eq!(Some(kept.id), id("kept"));
    assert_eq!(kept.state_reset, None);
    assert_ne!(kept.plan_fingerprint.as_deref(), Some(OLD_FINGERPRINT));
    assert_oracle(&s, "kept", KEPT, false).await;

    // Resumed from its offsets: no operator state, and no row written twice.
    let plain = engine.catalog_entry("k_plain").expect("k_plain");
    assert_eq!(Some(plain.id), id("k_plain"));
    assert_eq!(plain.state_reset, None);
    settles_at(&s, "SELECT count(*) FROM plain", 60).await;
    assert_eq!(count(&s, "SELECT count(DISTINCT id) FROM plain").await, 60);

    // Refused: an append-only sink with state cannot be rewritten; the message says how.
    match engine.pipeline_status("k_win") {
        Some(PipelineStatus::Failed(e)) => {
            assert!(e.contains("plan changed since CREATE"), "{e}");
            assert!(e.contains("DROP SINK k_win and CREATE it again"), "{e}");
        }
        other => panic!("k_win: {other:?}"),
    }
    assert_eq!(
        engine.catalog_entry("k_win").map(|e| e.id),
        id("k_win"),
        "a refused pipeline keeps its entry and state"
    );
    assert!(state
        .topic(&state_topic(id("k_win").expect("id")))
        .is_some());
    // The way out works.
    run(
        &s,
        "DROP SINK k_win; CREATE SINK k_win INTO out_win AS SELECT window_start, count(*) AS n \
         FROM TUMBLE(orders, ts, INTERVAL '10' SECOND) GROUP BY window_start \
         EMIT ON WINDOW CLOSE",
    )
    .await
    .expect("re-created");
    running(&engine, "k_win").await;

    // A second restart resumes the rebuilt pipelines over their new state.
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    orders(&s, 60, 70).await;
    assert_oracle(&s, "per_customer", PER_CUSTOMER, false).await;
    assert_oracle(&s, "joined", JOINED, false).await;
    settles_at(&s, "SELECT count(*) FROM plain", 70).await;
    engine.stop().await;
}

/// Closed 10 s windows of `orders` (append-only, with state), and two views reading it.
const WIN: &str = "SELECT window_start, count(*) AS n FROM TUMBLE(orders, ts, INTERVAL '10' \
     SECOND) GROUP BY window_start EMIT ON WINDOW CLOSE";
const BUSY: &str = "SELECT window_start, n FROM win WHERE n > 5";
const TOTAL: &str = "SELECT count(*) AS windows, sum(n) AS rows FROM win";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_others_read_is_rebuilt_with_them_unless_an_append_only_sink_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = crate::common::state_with(dir.path(), "orders").await;
    state
        .create_topic("out_all", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        &format!(
            "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT, \
             ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
             WITH (topic = 'orders'); \
             CREATE MATERIALIZED VIEW win AS {WIN}; \
             CREATE MATERIALIZED VIEW busy AS {BUSY}; \
             CREATE MATERIALIZED VIEW total AS {TOTAL}; \
             CREATE SINK k_all INTO out_all AS SELECT * FROM busy"
        ),
    )
    .await
    .expect("pipelines");
    // Rows at seconds 0..60: the watermark (58 s) closed the windows from 0 to 40 s.
    orders(&s, 0, 60).await;
    settles_at(&s, "SELECT count(*) FROM busy", 5).await;
    settles_at(&s, "SELECT rows FROM total", 50).await;
    let ids: Vec<(&str, u64)> = ["win", "busy", "total", "k_all"]
        .into_iter()
        .map(|n| (n, engine.catalog_entry(n).expect(n).id))
        .collect();
    let id = |name: &str| ids.iter().find(|(n, _)| *n == name).map(|(_, i)| *i);
    engine.stop().await;
    as_older_weir_left_it(&state, &engine, "win", false).await;

    // An append-only sink reads it through `busy`: refused, naming the sink; its readers
    // resume over their state.
    let (engine, s) = restart(engine, s, &state).await;
    match engine.pipeline_status("win") {
        Some(PipelineStatus::Failed(e)) => {
            assert!(e.contains("append-only sinks k_all"), "{e}");
            assert!(e.contains("DROP MATERIALIZED VIEW win"), "{e}");
        }
        other => panic!("win: {other:?}"),
    }
    for name in ["busy", "total", "k_all"] {
        running(&engine, name).await;
        assert_eq!(engine.catalog_entry(name).map(|e| e.id), id(name), "{name}");
    }

    // Without it, the view is rebuilt with both views reading it, whose own plans did not
    // change: each counts every closed window once.
    run(&s, "DROP SINK k_all").await.expect("drop");
    let (engine, s) = restart(engine, s, &state).await;
    for name in ["win", "busy", "total"] {
        running(&engine, name).await;
        let entry = engine.catalog_entry(name).expect(name);
        assert_ne!(Some(entry.id), id(name), "{name}: rebuilt under a new id");
        assert_eq!(entry.rebuild_after, None, "{name}: its mark is cleared");
        let reset = entry.state_reset.unwrap_or_default();
        if name != "win" {
            assert!(
                reset.contains("win, which it reads, was rebuilt"),
                "{reset}"
            );
        }
        assert!(state.topic(&state_topic(id(name).expect(name))).is_none());
    }
    orders(&s, 60, 80).await;
    settles_at(&s, "SELECT count(*) FROM win", 7).await;
    settles_at(&s, "SELECT count(*) FROM busy", 7).await;
    settles_at(&s, "SELECT windows FROM total", 7).await;
    settles_at(&s, "SELECT rows FROM total", 70).await;

    // A second restart resumes all three over their new state.
    let (engine, s) = restart(engine, s, &state).await;
    orders(&s, 80, 90).await;
    settles_at(&s, "SELECT rows FROM total", 80).await;
    for name in ["win", "busy", "total"] {
        let entry = engine.catalog_entry(name).expect(name);
        assert!(state.topic(&state_topic(entry.id)).is_some(), "{name}");
    }
    engine.stop().await;
    drop(s);
}
