//! TUMBLE and HOP windows against the oracle (design §6, "the contract the tests check"):
//! records with disorder within the watermark delay are fed through the topic over two
//! partitions, views with and without EMIT ON WINDOW CLOSE are created, the engine restarts
//! in the middle, and once all input is processed each view's contents equal the view's
//! query run by DataFusion's batch engine over the same records (for EMIT ON WINDOW CLOSE:
//! the windows the final watermark closed). Late rows are dropped and counted, closed
//! windows' state is freed, and what windows cannot do is refused at CREATE. SESSION windows
//! (per key, merged when a row bridges two) are checked the same way.

use crate::common::{rows, run};

use std::sync::Arc;
use std::time::Duration;

use weir_broker::partition::Isolation;
use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

const SOURCE: &str = "CREATE SOURCE bids (id BIGINT NOT NULL, bidder VARCHAR, price BIGINT, \
     ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '10' SECOND) \
     WITH (topic = 'bids', watermark.idle.timeout = '60s')";

/// Views: name, query, whether it emits on window close.
const VIEWS: &[(&str, &str, bool)] = &[
    (
        "tumble_updating",
        "SELECT window_start, window_end, bidder, count(*) AS n, sum(price) AS total, \
         max(price) AS top FROM TUMBLE(bids, ts, INTERVAL '1' MINUTE) \
         GROUP BY window_start, window_end, bidder",
        false,
    ),
    (
        "tumble_closed",
        "SELECT window_start, window_end, bidder, count(*) AS n, sum(price) AS total, \
         max(price) AS top FROM TUMBLE(bids, ts, INTERVAL '1' MINUTE) \
         GROUP BY window_start, window_end, bidder",
        true,
    ),
    (
        "hop_updating",
        "SELECT window_start, window_end, count(*) AS n, sum(price) AS total \
         FROM HOP(bids, ts, INTERVAL '20' SECOND, INTERVAL '1' MINUTE) \
         WHERE price > 10 GROUP BY window_start, window_end",
        false,
    ),
    (
        // Grouped by window_end alone (the end is the column itself), with a filter.
        "hop_closed",
        "SELECT window_end, bidder, min(price) AS low, max(price) AS high, count(*) AS n \
         FROM HOP(bids, ts, INTERVAL '30' SECOND, INTERVAL '90' SECOND) AS h \
         WHERE h.bidder <> 'b3' GROUP BY window_end, bidder",
        true,
    ),
    (
        // A bidder's rows come about 4 s apart, up to 8 s out of order: with a 5 s gap,
        // sessions of many lengths, and rows arriving late enough to bridge two.
        "sessions",
        "SELECT bidder, window_start, window_end, count(*) AS n, sum(price) AS total, \
         max(id) AS last_id FROM SESSION(bids, ts, INTERVAL '5' SECOND, bidder) \
         GROUP BY bidder, window_start, window_end",
        true,
    ),
];

/// The same groups without a window: no operator acts on the watermark.
const UNWINDOWED: &str = "SELECT date_bin(INTERVAL '1' MINUTE, ts) AS m, bidder, count(*) AS n, \
     sum(price) AS total, max(price) AS top FROM bids GROUP BY 1, 2";

/// The event time of row `i` as seconds after midnight: one a second, each up to 8 s early
/// (disorder within the 10 s delay), from a seeded generator.
fn second_of(i: u64, seed: u64) -> u64 {
    let mut x = (i ^ seed)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    x ^= x >> 29;
    (i + 10).saturating_sub(x % 9)
}

fn timestamp(second: u64) -> String {
    format!(
        "TIMESTAMP '2026-01-01 {:02}:{:02}:{:02}'",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

async fn insert(s: &Session, from: u64, to: u64, seed: u64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            format!(
                "({i}, 'b{}', {}, {})",
                i % 4,
                (i * 7) % 31,
                timestamp(second_of(i, seed))
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
    .expect("insert");
}

/// Waits until `SELECT * FROM view` equals `oracle` run as a batch query.
async fn assert_oracle(engine: &Engine, s: &Session, view: &str, oracle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let want = rows(&run(s, oracle).await.expect(oracle));
    assert!(!want.is_empty(), "{view}: the oracle has rows");
    loop {
        let got = rows(&run(s, &format!("SELECT * FROM {view}")).await.expect(view));
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{view} ({:?}):\n got  {got:?}\n want {want:?}",
            engine.pipeline_status(view)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A view's DESCRIBE line `key`.
async fn describe(s: &Session, view: &str, key: &str) -> String {
    let info = rows(&run(s, &format!("DESCRIBE {view}")).await.expect("describe"));
    info.into_iter()
        .find(|r| r[0] == key)
        .map(|r| r[3].clone())
        .unwrap_or_else(|| panic!("DESCRIBE {view} has no {key:?} line"))
}

async fn state_bytes(s: &Session, view: &str) -> usize {
    describe(s, view, "state bytes")
        .await
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

async fn open(state: &Arc<State>) -> Arc<Engine> {
    let config = SqlConfig {
        checkpoint_interval_ms: 200,
        ..SqlConfig::default()
    };
    Engine::start(state.clone(), config).await.expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_equal_the_batch_oracle_across_restarts() {
    let seed = std::env::var("WEIR_WINDOW_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_secs())
        });
    println!("WEIR_WINDOW_SEED={seed}");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("bids", 2, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(&s, SOURCE).await.expect("source");
    insert(&s, 0, 300, seed).await;
    for (name, query, eowc) in VIEWS {
        let emit = if *eowc { " EMIT ON WINDOW CLOSE" } else { "" };
        run(
            &s,
            &format!("CREATE MATERIALIZED VIEW {name} AS {query}{emit}"),
        )
        .await
        .expect(name);
    }
    // Without windows, the same groups kept forever: the state windows free, for comparison.
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW unwindowed AS {UNWINDOWED}"),
    )
    .await
    .expect("unwindowed");
    run(
        &s,
        "CREATE SINK per_minute INTO per_minute_out AS SELECT window_start, count(*) AS n \
         FROM TUMBLE(bids, ts, INTERVAL '1' MINUTE) GROUP BY window_start EMIT ON WINDOW CLOSE",
    )
    .await
    .expect("append-only sink of closed windows");
    for (name, query, eowc) in VIEWS {
        if !eowc {
            assert_oracle(&engine, &s, name, query).await;
        }
    }

    // A restart in the middle: state and watermarks resume from the last checkpoint.
    insert(&s, 300, 600, seed).await;
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    insert(&s, 600, 1200, seed).await;
    // Far-future rows on both partitions move the watermark past every window above.
    let last = 3 * 3600;
    run(
        &s,
        &format!(
            "INSERT INTO bids (id, bidder, price, ts) VALUES (5000, 'zz', 1, {t}), \
             (5001, 'zz', 1, {t})",
            t = timestamp(last)
        ),
    )
    .await
    .expect("sentinel");
    let watermark = timestamp(last - 10);
    for (name, query, eowc) in VIEWS {
        let oracle = if *eowc {
            format!("SELECT * FROM ({query}) AS q WHERE window_end <= {watermark}")
        } else {
            query.to_string()
        };
        assert_oracle(&engine, &s, name, &oracle).await;
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }

    // Closed windows' state is freed: only the far-future window is held, against every
    // group of the unwindowed aggregate.
    let query = "SELECT * FROM unwindowed";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rows(&run(&s, query).await.expect(query)).len() < 80 {
        assert!(tokio::time::Instant::now() < deadline, "unwindowed lags");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (windowed, kept) = (
        state_bytes(&s, "tumble_closed").await,
        state_bytes(&s, "unwindowed").await,
    );
    println!("state bytes: tumble_closed {windowed}, unwindowed {kept}");
    assert!(windowed > 0 && windowed * 20 < kept, "{windowed} vs {kept}");

    // The EOWC sink wrote each closed minute once, append-only, read_committed.
    let want = rows(
        &run(
            &s,
            &format!(
                "SELECT window_start, count(*) AS n FROM TUMBLE(bids, ts, INTERVAL '1' MINUTE) \
                 WHERE window_end <= {watermark} GROUP BY window_start"
            ),
        )
        .await
        .expect("oracle"),
    );
    let out = state
        .topic("per_minute_out")
        .expect("sink topic")
        .all_partitions();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got: Vec<String> = testkit::consume(&out[0], Isolation::ReadCommitted)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if got.len() >= want.len() {
            assert_eq!(
                got.len(),
                want.len(),
                "one record per closed window: {got:?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sink: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A late row (behind the watermark) is dropped and counted; no view changes.
    let before: Vec<_> = {
        let mut all = Vec::new();
        for (name, _, _) in VIEWS {
            all.push(rows(
                &run(&s, &format!("SELECT * FROM {name}")).await.expect(name),
            ));
        }
        all
    };
    run(
        &s,
        &format!(
            "INSERT INTO bids (id, bidder, price, ts) VALUES (6000, 'b1', 30, {})",
            timestamp(100)
        ),
    )
    .await
    .expect("late row");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while describe(&s, "tumble_updating", "rows late (dropped)").await != "1" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late row is not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ((name, _, _), want) in VIEWS.iter().zip(before) {
        let got = rows(&run(&s, &format!("SELECT * FROM {name}")).await.expect(name));
        assert_eq!(got, want, "{name} changed by a late row");
    }
    // Never silently: each pipeline that dropped it (the five views and the sink) wrote its
    // record to the source's dead-letter topic, in a committed epoch.
    let dlq = state
        .topic("bids.dlq")
        .expect("dead letters")
        .all_partitions();
    let dropping = VIEWS.len() + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let late: Vec<String> = dlq
            .iter()
            .flat_map(|p| testkit::consume(p, Isolation::ReadCommitted))
            .map(|(_, v)| v)
            .collect();
        if late.len() >= dropping {
            assert_eq!(late.len(), dropping, "{late:?}");
            assert!(late.iter().all(|v| v.contains("6000")), "{late:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters: {late:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        describe(&s, "tumble_closed", "rows late (dead-lettered)").await,
        "1"
    );
    // A pipeline without such an operator keeps the row, as the batch query does.
    assert_oracle(&engine, &s, "unwindowed", UNWINDOWED).await;
    assert_eq!(describe(&s, "unwindowed", "rows late (dropped)").await, "0");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_windows_cannot_do_is_refused_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("bids", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(&s, SOURCE).await.expect("source");
    run(
        &s,
        "CREATE SOURCE plain (id BIGINT, ts TIMESTAMP, other TIMESTAMP) WITH (topic = 'bids'); \
         CREATE SOURCE odd (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '1' \
         SECOND) WITH (topic = 'bids')",
    )
    .await
    .expect("sources");
    let tumble = "FROM TUMBLE(bids, ts, INTERVAL '1' MINUTE)";
    for (sql, says) in [
        (
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS n \
             FROM TUMBLE(plain, ts, INTERVAL '1' MINUTE) GROUP BY window_start"
                .to_string(),
            "WATERMARK FOR ts",
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS n \
             FROM TUMBLE(odd, ts, INTERVAL '1' MINUTE) GROUP BY window_start"
                .to_string(),
            "ts - INTERVAL",
        ),
        (
            format!(
                "CREATE MATERIALIZED VIEW v AS SELECT id {tumble} WHERE id > 0 \
                 EMIT ON WINDOW CLOSE"
            ),
            "needs a windowed aggregate",
        ),
        (
            format!(
                "CREATE MATERIALIZED VIEW v AS SELECT n, count(*) AS c FROM (SELECT \
                 window_start, count(*) AS n {tumble} GROUP BY window_start) AS w GROUP BY n \
                 EMIT ON WINDOW CLOSE"
            ),
            "append-only result",
        ),
        (
            format!(
                "CREATE SINK k INTO out AS SELECT window_start, count(*) AS n {tumble} \
                 GROUP BY window_start"
            ),
            "EMIT ON WINDOW CLOSE",
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS n \
             FROM SESSION(bids, ts, INTERVAL '1' MINUTE) GROUP BY window_start"
                .to_string(),
            "SESSION windows need EMIT ON WINDOW CLOSE",
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS n \
             FROM SESSION(bids, ts, INTERVAL '1' MINUTE, bidder) GROUP BY window_start \
             EMIT ON WINDOW CLOSE"
                .to_string(),
            "its key columns (bidder)",
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS n \
             FROM HOP(bids, ts, INTERVAL '40' SECOND, INTERVAL '1' MINUTE) GROUP BY window_start"
                .to_string(),
            "multiple of the slide",
        ),
    ] {
        let err = run(&s, &sql).await.expect_err(&sql);
        assert!(
            ["0A000", "42601", "22023", "42P17"].contains(&err.sqlstate()),
            "{sql}: {err} ({})",
            err.sqlstate()
        );
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    assert!(engine.catalog_entry("v").is_none());
    assert!(engine.catalog_entry("k").is_none());

    // EXPLAIN shows the window aggregate, what frees its state and its append-only output.
    let text = rows(
        &run(
            &s,
            &format!(
                "EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS n \
                 {tumble} GROUP BY window_start EMIT ON WINDOW CLOSE"
            ),
        )
        .await
        .expect("explain"),
    )
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    assert!(
        text.contains("WindowAggregate(group=[window_start@"),
        "{text}"
    );
    assert!(
        text.contains("end=group 0 + 60000000us, emit on window close"),
        "{text}"
    );
    assert!(text.contains("freed when the watermark passes"), "{text}");

    // HOP grouped by its bounds slices into panes of the slide: one branch of the union is
    // read, each row once. An aggregate that computes with a bound (max(window_end)) reads
    // the whole union instead, a row per window.
    let explain = |sql: String| {
        let s = &s;
        async move {
            rows(&run(s, &format!("EXPLAIN {sql}")).await.expect("explain"))
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let hop = "FROM HOP(bids, ts, INTERVAL '15' SECOND, INTERVAL '1' MINUTE)";
    let text = explain(format!(
        "CREATE MATERIALIZED VIEW v AS SELECT window_start, window_end, bidder, count(*) AS n \
         {hop} GROUP BY window_start, window_end, bidder"
    ))
    .await;
    assert!(text.contains("4 panes of 15000000us, updating"), "{text}");
    assert!(text.contains("per pane of the slide"), "{text}");
    assert!(!text.contains("Union"), "{text}");
    let text = explain(format!(
        "CREATE MATERIALIZED VIEW v AS SELECT window_start, max(window_end) AS e, count(*) AS n \
         {hop} GROUP BY window_start EMIT ON WINDOW CLOSE"
    ))
    .await;
    assert!(!text.contains("panes of"), "{text}");
    assert!(text.contains("Union"), "{text}");
    engine.stop().await;
}
