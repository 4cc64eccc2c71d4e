//! Nexmark q7's join time bounds at the SQL level (design §6, joins; the operator's own
//! tests are in `weir-stream`): the view of `bench/nexmark/q7.sql` is planned with the
//! bounds (EXPLAIN shows them), its contents equal the batch oracle over 20 windows, and its
//! state holds the bids of the last windows only, while the same query written so the
//! planner sees no bound (`OR B.price < 0`, never true) keeps every bid. Then the upgrade:
//! a q7 view and an upsert sink over q7 created before the bounds existed (their entries
//! rewritten with another plan fingerprint) resume over their state at restart: the bounds
//! are not part of the state layout, so no rebuild and no failed pipeline.

use crate::common::{rows, run};
use crate::nexmark::check_oracle;
use crate::upgrade::{as_older_weir_left_it, OLD_FINGERPRINT};

use std::time::Duration;

use weir_broker::testkit;
use weir_sql::engine::Engine;
use weir_sql::nexmark::generator::GeneratorConfig;
use weir_sql::nexmark::{load, select_of, QUERIES, SOURCES};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

/// 10 ms apart: 20,000 events are 200 s of event time, twenty 10 s windows.
const INTER_EVENT_US: i64 = 10_000;
const EVENTS: u64 = 20_000;

fn q7() -> (String, String) {
    let sql = QUERIES
        .iter()
        .find(|(n, _)| *n == "q7")
        .map(|(_, sql)| *sql)
        .expect("q7");
    let (_, query) = select_of(sql).expect("q7");
    (sql.to_string(), query)
}

/// q7 with a disjunct that is never true (prices are positive): the same rows, but the
/// residual is no conjunction of time bounds, so the join keeps every row.
fn unbounded(query: &str) -> String {
    let q = query.trim().trim_end_matches(';');
    format!("{q} OR B.price < 0")
}

async fn start(state: &std::sync::Arc<weir_broker::state::State>) -> std::sync::Arc<Engine> {
    Engine::start(
        state.clone(),
        SqlConfig {
            checkpoint_interval_ms: 200,
            ..SqlConfig::default()
        },
    )
    .await
    .expect("engine")
}

fn state_bytes(engine: &Engine, name: &str) -> u64 {
    engine
        .pipeline_reports()
        .into_iter()
        .find(|r| r.name == name)
        .and_then(|r| r.progress)
        .map_or(0, |p| p.state_bytes as u64)
}

async fn explain(s: &weir_sql::engine::Session, create: &str) -> String {
    format!(
        "{:?}",
        rows(&run(s, &format!("EXPLAIN {create}")).await.expect(create))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q7_frees_its_join_by_time_and_survives_the_upgrade_that_added_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    let config = GeneratorConfig {
        seed: 7,
        inter_event_us: INTER_EVENT_US,
        ..GeneratorConfig::default()
    };
    load(&state, config, 0, EVENTS / 2).await.expect("load");
    state
        .create_topic("q7_out", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = start(&state).await;
    let s = engine.session();
    run(&s, SOURCES).await.expect("sources");
    let (create, query) = q7();
    let plan = explain(&s, &create).await;
    assert!(
        plan.contains("rows freed by time") && plan.contains("each freed when the watermark"),
        "{plan}"
    );
    let loose = unbounded(&query);
    let loose_create = format!("CREATE MATERIALIZED VIEW q7_loose AS {loose}");
    let plan = explain(&s, &loose_create).await;
    assert!(!plan.contains("rows freed by time"), "{plan}");
    let sink = format!("CREATE SINK q7_sink INTO q7_out AS {query} WITH (type = 'upsert')");
    run(&s, &format!("{create}; {loose_create}; {sink}"))
        .await
        .expect("q7, its unbounded twin and a sink");
    let topics = ["bid"];
    for (view, q) in [("nexmark_q7", &query), ("q7_loose", &loose)] {
        let n = check_oracle(&engine, &s, view, q, &topics)
            .await
            .expect(view);
        println!("{view}: {n} rows, equal to the oracle");
    }
    let ids: Vec<u64> = ["nexmark_q7", "q7_sink"]
        .iter()
        .map(|n| engine.catalog_entry(n).expect(n).id)
        .collect();
    engine.stop().await;
    // As a Weir before the bounds left them: another fingerprint, the layout it stored
    // (bounds are no part of a layout: `weir_stream::layout`'s test).
    for name in ["nexmark_q7", "q7_sink"] {
        as_older_weir_left_it(&state, &engine, name, true).await;
    }
    drop(s);
    drop(engine);

    load(&state, config, EVENTS / 2, EVENTS / 2)
        .await
        .expect("load");
    let engine = start(&state).await;
    let s = engine.session();
    for (name, id) in ["nexmark_q7", "q7_sink"].iter().zip(&ids) {
        let entry = engine.catalog_entry(name).expect(name);
        assert_eq!(entry.id, *id, "{name}: resumed under its id, not rebuilt");
        assert_eq!(entry.state_reset, None, "{name}");
        assert_ne!(entry.plan_fingerprint.as_deref(), Some(OLD_FINGERPRINT));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while engine.pipeline_status(name) != Some(PipelineStatus::Running) {
            let status = engine.pipeline_status(name);
            assert!(tokio::time::Instant::now() < deadline, "{name}: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (view, q) in [("nexmark_q7", &query), ("q7_loose", &loose)] {
        let n = check_oracle(&engine, &s, view, q, &topics)
            .await
            .expect(view);
        println!("{view} after the restart: {n} rows, equal to the oracle");
    }
    // 20 windows read: the bounded join holds the last ones' bids, the other every bid.
    let (bounded, loose) = (
        state_bytes(&engine, "nexmark_q7"),
        state_bytes(&engine, "q7_loose"),
    );
    println!("state bytes: q7 {bounded}, unbounded {loose}");
    assert!(
        bounded > 0 && bounded * 4 < loose,
        "q7 {bounded}, unbounded {loose}"
    );
    engine.stop().await;
    state.close().expect("close");
}
