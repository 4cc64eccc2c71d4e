//! Continuous queries over updating materialized views (design §8): an updating view's
//! topic is a changelog (upserts by the view's key, tombstones for rows that go), read the
//! way a table's is. Views over an updating view (a filter, an aggregate whose groups move
//! and disappear) and an upsert sink `FROM` it equal DataFusion's batch answer over the
//! source's records, across a clean restart; an append-only sink from it is refused at
//! CREATE.

use crate::common::{assert_oracle, open, restart, rows, run};

use std::time::Duration;

use weir_broker::partition::Isolation;
use weir_broker::testkit;
use weir_sql::engine::Session;

/// The views over `totals`, each with its oracle over the source itself (so the oracle does
/// not read the view under test's input as it stands).
const CHAINED: &[(&str, &str, &str)] = &[
    (
        "busy",
        "SELECT customer, total * 2 AS doubled FROM totals WHERE n > 2",
        "SELECT customer, sum(amount) * 2 AS doubled FROM orders GROUP BY customer \
         HAVING count(*) > 2",
    ),
    (
        // A customer's n grows: it leaves one group for the next, groups empty and go.
        "by_n",
        "SELECT n, count(*) AS customers, sum(total) AS everything, max(customer) AS last \
         FROM totals GROUP BY n",
        "SELECT n, count(*) AS customers, sum(total) AS everything, max(customer) AS last \
         FROM (SELECT customer, count(*) AS n, sum(amount) AS total FROM orders \
         GROUP BY customer) GROUP BY n",
    ),
];

async fn check(s: &Session) {
    for (name, _, oracle) in CHAINED {
        assert_oracle(s, name, oracle, false).await;
    }
}

async fn insert(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            // Customers get unequal counts; some customers and amounts are NULL.
            let customer = match i % 9 {
                8 => "NULL".to_string(),
                k => format!("'c{}'", (k * i) % 6),
            };
            let amount = if i % 7 == 3 {
                "NULL".to_string()
            } else {
                (i % 13 - 4).to_string()
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
    .expect("insert");
}

/// The upsert sink's last record per key, as `[customer, n, total]` rows (NULL empty, deleted keys
/// gone), once it equals `want` (up to 30 s).
async fn assert_sink(state: &std::sync::Arc<weir_broker::state::State>, want: &[Vec<String>]) {
    let out = state
        .topic("totals_out")
        .expect("sink topic")
        .all_partitions();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut last = std::collections::BTreeMap::new();
        for p in &out {
            for (k, v) in testkit::consume(p, Isolation::ReadCommitted) {
                last.insert(k, v);
            }
        }
        let mut got: Vec<Vec<String>> = last
            .values()
            .filter(|v| !v.is_empty())
            .map(|v| {
                let j: serde_json::Value = serde_json::from_str(v).expect("json");
                let text = |x: &serde_json::Value| match x {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                vec![text(&j["customer"]), text(&j["n"]), text(&j["total"])]
            })
            .collect();
        got.sort();
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sink: {got:?} want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_and_sinks_over_an_updating_view_equal_the_batch_oracle() {
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
        "CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT) \
         WITH (topic = 'orders'); \
         CREATE MATERIALIZED VIEW totals AS \
         SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer",
    )
    .await
    .expect("setup");
    insert(&s, 0, 30).await;
    for (name, query, _) in CHAINED {
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    run(
        &s,
        "CREATE SINK totals_sink FROM totals WITH (topic = 'totals_out', type = 'upsert')",
    )
    .await
    .expect("upsert sink from an updating view");

    // An updating view's changes cannot be appended as they are.
    let err = run(
        &s,
        "CREATE SINK appended FROM totals WITH (topic = 'appended_out')",
    )
    .await
    .expect_err("append-only sink from an updating view");
    assert_eq!(err.sqlstate(), "0A000", "{err}");
    assert!(err.to_string().contains("type = 'upsert'"), "{err}");

    let oracle = "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders \
                  GROUP BY customer";
    check(&s).await;
    assert_sink(&state, &rows(&run(&s, oracle).await.expect("oracle"))).await;

    // More input moves customers between by_n's groups; then a clean restart in between.
    insert(&s, 30, 80).await;
    check(&s).await;
    let (engine, s) = restart(engine, s, &state).await;
    insert(&s, 80, 120).await;
    check(&s).await;
    assert_sink(&state, &rows(&run(&s, oracle).await.expect("oracle"))).await;
    for name in ["busy", "by_n", "totals_sink"] {
        assert_eq!(
            engine.pipeline_status(name),
            Some(weir_stream::PipelineStatus::Running),
            "{name}"
        );
    }
    engine.stop().await;
}
