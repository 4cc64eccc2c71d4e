//! HOP in panes across an upgrade (design §6, windows; `weir.sql.hop.panes`): a view and an
//! append-only sink created while HOP was planned as the union of its windows (as every
//! Weir before panes did) resume under today's planner over their state, with their ids and
//! no state reset, while a view created now slices into panes; the views equal the batch
//! oracle and the sink holds each closed window once.

use crate::common::{assert_oracle, layout, open, rows, run, state_with};
use crate::upgrade::running;

use std::time::Duration;

use weir_broker::partition::Isolation;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;

const SOURCE: &str = "CREATE SOURCE bids (id BIGINT NOT NULL, bidder VARCHAR, price BIGINT, \
     ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
     WITH (topic = 'bids', watermark.idle.timeout = '60s')";

const HOP: &str = "SELECT window_start, window_end, bidder, count(*) AS n, \
     sum(price) AS total, max(price) AS top \
     FROM HOP(bids, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
     GROUP BY window_start, window_end, bidder";

async fn insert(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            format!(
                "({i}, 'b{}', {}, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{i}' SECOND)",
                i % 3,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_and_sinks_created_before_panes_resume_over_their_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with(dir.path(), "bids").await;
    let old = SqlConfig {
        hop_panes: false,
        ..SqlConfig::default()
    };
    let engine = Engine::start(state.clone(), old).await.expect("engine");
    let s = engine.session();
    run(&s, SOURCE).await.expect("source");
    run(&s, &format!("CREATE MATERIALIZED VIEW old_view AS {HOP}"))
        .await
        .expect("view");
    run(
        &s,
        &format!("CREATE SINK old_sink INTO old_out AS {HOP} EMIT ON WINDOW CLOSE"),
    )
    .await
    .expect("sink");
    let explain = format!("EXPLAIN CREATE MATERIALIZED VIEW v AS {HOP}");
    let text = rows(&run(&s, &explain).await.expect("explain"))
        .concat()
        .join("\n");
    assert!(!text.contains("panes of"), "{text}");
    let layouts: Vec<String> = ["old_view", "old_sink"]
        .iter()
        .map(|n| layout(&engine, n))
        .collect();
    insert(&s, 0, 120).await;
    // 14 windows of 3 bidders; some closed and emitted, panes of later ones held: the
    // state to resume over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rows(&run(&s, "SELECT * FROM old_view").await.expect("view")).len() < 40 {
        assert!(tokio::time::Instant::now() < deadline, "old_view lags");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ids: Vec<u64> = ["old_view", "old_sink"]
        .iter()
        .map(|n| engine.catalog_entry(n).expect(n).id)
        .collect();
    engine.stop().await;
    drop(s);
    drop(engine);

    // Today's planner slices HOP into panes; the old pipelines keep the plan they were
    // created with.
    let engine = open(&state).await;
    let s = engine.session();
    for ((name, id), was) in ["old_view", "old_sink"].iter().zip(&ids).zip(&layouts) {
        running(&engine, name).await;
        let entry = engine.catalog_entry(name).expect(name);
        assert_eq!((entry.id, entry.state_reset), (*id, None), "{name}");
        assert_eq!(
            &layout(&engine, name),
            was,
            "{name}: the plan it was created with"
        );
    }
    let text = rows(&run(&s, &explain).await.expect("explain"))
        .concat()
        .join("\n");
    assert!(text.contains("3 panes of 10000000us"), "{text}");
    run(&s, &format!("CREATE MATERIALIZED VIEW new_view AS {HOP}"))
        .await
        .expect("new view");
    assert_ne!(layout(&engine, "new_view"), layouts[0], "sliced into panes");
    insert(&s, 120, 240).await;
    // A row far ahead closes every window above.
    run(
        &s,
        "INSERT INTO bids (id, bidder, price, ts) VALUES \
         (9999, 'zz', 1, TIMESTAMP '2026-01-01 03:00:00')",
    )
    .await
    .expect("sentinel");
    for view in ["old_view", "new_view"] {
        assert_oracle(&s, view, HOP, false).await;
    }
    // The sink wrote each closed window once, none twice, none partial.
    let closed =
        format!("SELECT * FROM ({HOP}) AS q WHERE window_end <= TIMESTAMP '2026-01-01 02:59:55'");
    let want = rows(&run(&s, &closed).await.expect("oracle")).len();
    let out = state.topic("old_out").expect("sink topic").all_partitions();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got: Vec<String> = testkit::consume(&out[0], Isolation::ReadCommitted)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if got.len() >= want {
            let mut unique = got.clone();
            unique.sort();
            unique.dedup();
            assert_eq!((got.len(), unique.len()), (want, want), "{got:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sink: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.stop().await;
}
