//! Shared aggregates (`weir.sql.shared.aggregates`): two aggregates of one query over the
//! same input, grouped by the same expressions in another order, run as one operator (q5's
//! shape: counts per HOP window, and their maximum per window), windowed and updating; the
//! views equal the batch oracle across a restart; a view created while each aggregate was
//! planned apart resumes over its state with that plan after an upgrade.

use crate::common::{assert_oracle, layout, open, rows, run, state_with};
use crate::upgrade::running;

use std::time::Duration;

use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;

const SOURCE: &str = "CREATE SOURCE bids (id BIGINT NOT NULL, bidder VARCHAR, price BIGINT, \
     ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
     WITH (topic = 'bids', watermark.idle.timeout = '60s')";

/// Nexmark q5's shape: the bidders with the most bids of each HOP window.
const HOT: &str = "SELECT a.bidder, a.window_start, a.n FROM \
     (SELECT bidder, window_start, count(*) AS n \
      FROM HOP(bids, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
      GROUP BY window_start, bidder) AS a \
     JOIN (SELECT max(c.n) AS top, c.ws FROM \
           (SELECT count(*) AS n, window_start AS ws \
            FROM HOP(bids, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
            GROUP BY bidder, window_start) AS c \
           GROUP BY c.ws) AS b \
     ON a.window_start = b.ws AND a.n >= b.top";

/// The same without windows: updating aggregates, the shared one read in its own order.
const TOP: &str = "SELECT a.bidder, a.odd, a.n, a.total FROM \
     (SELECT bidder, price % 2 AS odd, count(*) AS n, sum(price) AS total \
      FROM bids GROUP BY bidder, price % 2) AS a \
     JOIN (SELECT max(x.n) AS top FROM \
           (SELECT sum(price) AS total, count(*) AS n FROM bids GROUP BY price % 2, bidder) AS x) \
           AS b \
     ON a.n = b.top";

async fn insert(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            format!(
                "({i}, 'b{}', {}, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{i}' SECOND)",
                (i * 7) % 5,
                i % 13
            )
        })
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO bids (id, bidder, price, ts) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("bids");
}

async fn explain(s: &Session, query: &str) -> String {
    let sql = format!("EXPLAIN CREATE MATERIALIZED VIEW v AS {query}");
    rows(&run(s, &sql).await.expect("explain"))
        .concat()
        .join("\n")
}

/// A row far ahead closes every window of the rows inserted.
async fn close_windows(s: &Session) {
    run(
        s,
        "INSERT INTO bids (id, bidder, price, ts) VALUES \
         (9999, 'zz', 1, TIMESTAMP '2026-01-01 03:00:00')",
    )
    .await
    .expect("sentinel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_aggregates_run_once_and_equal_the_oracle_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with(dir.path(), "bids").await;
    let engine = open(&state).await;
    let s = engine.session();
    run(&s, SOURCE).await.expect("source");
    // One counting operator each: the windowed counts (the max per window is another
    // aggregate, over them), the updating counts and sums (the max over them likewise; the
    // second copy needs only the counts: the optimizer dropped its sum).
    let text = explain(&s, HOT).await;
    assert_eq!(text.matches("WindowAggregate").count(), 1, "{text}");
    assert_eq!(text.matches("UpdatingAggregate").count(), 1, "{text}");
    let text = explain(&s, TOP).await;
    assert_eq!(text.matches("UpdatingAggregate").count(), 2, "{text}");
    run(&s, &format!("CREATE MATERIALIZED VIEW hot AS {HOT}"))
        .await
        .expect("hot");
    run(&s, &format!("CREATE MATERIALIZED VIEW top AS {TOP}"))
        .await
        .expect("top");
    insert(&s, 0, 100).await;
    assert_oracle(&s, "top", TOP, false).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.stop().await;
    drop(s);
    drop(engine);

    let engine = open(&state).await;
    let s = engine.session();
    for name in ["hot", "top"] {
        running(&engine, name).await;
    }
    insert(&s, 100, 200).await;
    close_windows(&s).await;
    assert_oracle(&s, "hot", HOT, false).await;
    assert_oracle(&s, "top", TOP, false).await;

    engine.stop().await;
    drop(s);
    drop(engine);

    // Planned apart (weir.sql.shared.aggregates = false): two counting operators.
    let config = SqlConfig {
        shared_aggregates: false,
        ..SqlConfig::default()
    };
    let apart = Engine::start(state.clone(), config).await.expect("engine");
    let s = apart.session();
    let text = explain(&s, HOT).await;
    assert_eq!(text.matches("WindowAggregate").count(), 2, "{text}");
    apart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_created_with_aggregates_apart_resumes_over_its_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with(dir.path(), "bids").await;
    let old = SqlConfig {
        shared_aggregates: false,
        ..SqlConfig::default()
    };
    let engine = Engine::start(state.clone(), old).await.expect("engine");
    let s = engine.session();
    run(&s, SOURCE).await.expect("source");
    run(&s, &format!("CREATE MATERIALIZED VIEW old_hot AS {HOT}"))
        .await
        .expect("view");
    let was = layout(&engine, "old_hot");
    insert(&s, 0, 100).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rows(&run(&s, "SELECT * FROM old_hot").await.expect("view")).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "old_hot lags");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let id = engine.catalog_entry("old_hot").expect("entry").id;
    engine.stop().await;
    drop(s);
    drop(engine);

    // Today's planner shares the counts; the old view keeps the plan it was created with.
    let engine = open(&state).await;
    let s = engine.session();
    running(&engine, "old_hot").await;
    let entry = engine.catalog_entry("old_hot").expect("entry");
    assert_eq!((entry.id, entry.state_reset), (id, None));
    assert_eq!(
        layout(&engine, "old_hot"),
        was,
        "the plan it was created with"
    );
    run(&s, &format!("CREATE MATERIALIZED VIEW new_hot AS {HOT}"))
        .await
        .expect("new view");
    assert_ne!(layout(&engine, "new_hot"), was, "shared");
    insert(&s, 100, 200).await;
    close_windows(&s).await;
    for view in ["old_hot", "new_hot"] {
        assert_oracle(&s, view, HOT, false).await;
    }
    engine.stop().await;
}
