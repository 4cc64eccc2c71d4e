//! The engine started, abandoned and started again within one process, as a broker of a
//! cluster does when it gains, loses and regains the catalog's leadership (design §14): an
//! abandoned engine commits nothing more, and the next one resumes every pipeline from its
//! last committed epoch, so a view holds each row once.

use crate::common::{rows, run};

use std::sync::Arc;
use std::time::Duration;

use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;

async fn start(state: &Arc<State>) -> (Arc<Engine>, Session) {
    let engine = Engine::start(state.clone(), SqlConfig::default())
        .await
        .expect("engine");
    let session = engine.session();
    (engine, session)
}

/// `count(*)` and `count(DISTINCT id)` of the view.
async fn counts(s: &Session) -> Vec<Vec<String>> {
    rows(
        &run(s, "SELECT count(*), count(DISTINCT id) FROM big")
            .await
            .expect("counts"),
    )
}

async fn wait_counts(s: &Session, n: i64) {
    let want = vec![vec![n.to_string(), n.to_string()]];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = counts(s).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn inserts(ids: std::ops::RangeInclusive<i64>) -> String {
    let values: Vec<String> = ids.map(|i| format!("({i}, {i}.0)")).collect();
    format!(
        "INSERT INTO orders (id, amount) VALUES {}",
        values.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_engine_commits_nothing_and_the_next_resumes_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("orders", 2, 1, Default::default())
        .await
        .expect("topic");
    let (first, s) = start(&state).await;
    run(
        &s,
        "CREATE SOURCE orders (id BIGINT NOT NULL, amount DOUBLE) WITH (topic = 'orders'); \
         CREATE MATERIALIZED VIEW big AS SELECT id, amount FROM orders WHERE amount > 10",
    )
    .await
    .expect("definitions");
    run(&s, &inserts(1..=20)).await.expect("insert");
    wait_counts(&s, 10).await;

    first.abandon();
    run(&s, &inserts(21..=30))
        .await
        .expect("insert after abandon");
    // Over a checkpoint interval (1 s) and more: the abandoned pipeline commits nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        counts(&s).await,
        vec![vec!["10".to_string(), "10".to_string()]]
    );
    let described = rows(&run(&s, "SHOW MATERIALIZED VIEWS").await.expect("show"));
    assert_eq!(described.len(), 1, "{described:?}");
    drop((s, first));

    let (second, s) = start(&state).await;
    wait_counts(&s, 20).await;
    run(&s, &inserts(31..=35)).await.expect("insert");
    wait_counts(&s, 25).await;
    second.abandon();
    drop((s, second));

    // And once more: the definitions and the view's rows are all there, each once.
    let (third, s) = start(&state).await;
    wait_counts(&s, 25).await;
    let sources = rows(&run(&s, "SHOW SOURCES").await.expect("show"));
    assert_eq!(sources.len(), 1, "{sources:?}");
    third.stop().await;
}
