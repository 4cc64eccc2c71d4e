//! State freed without changing results, and the opt-in idle-state TTL (design §6, state
//! cleaning): ROW_NUMBER deduplication per key and TUMBLE window frees a key's entry once
//! the watermark passes its window's end (its view equals the batch oracle, while the same
//! deduplication over a bucket the planner cannot trace to a window keeps every entry); an
//! aggregate with `SET streaming.state_ttl` drops groups idle for the TTL of event time
//! (bounded state against the same aggregate without it), which is refused over a source
//! without a watermark.

use crate::common::{assert_oracle, rows, run};

use std::time::Duration;

use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;

const SOURCE: &str = "CREATE SOURCE ev (id BIGINT NOT NULL, k BIGINT, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
     WITH (topic = 'ev', watermark.idle.timeout = '60s')";

/// First row per key and 10 s window: the window's bound is traced, so closed windows free.
const DEDUP: &str = "SELECT id, k, ts, window_start FROM (SELECT *, ROW_NUMBER() OVER \
     (PARTITION BY k, window_start ORDER BY ts, id) AS rn \
     FROM TUMBLE(ev, ts, INTERVAL '10' SECOND)) WHERE rn = 1";

/// The same rows, the bucket computed by `date_bin`: nothing proves a bucket closed.
const DEDUP_UNTRACED: &str = "SELECT id, k, ts, bucket FROM (SELECT *, ROW_NUMBER() OVER \
     (PARTITION BY k, bucket ORDER BY ts, id) AS rn FROM (SELECT id, k, ts, \
     date_bin(INTERVAL '10' SECOND, ts, TIMESTAMP '1970-01-01 00:00:00') AS bucket FROM ev)) \
     WHERE rn = 1";

/// A group per row: without a TTL its state grows with the stream.
const PER_ID: &str = "SELECT id, count(*) AS n FROM ev GROUP BY id";

fn timestamp(second: u64) -> String {
    format!(
        "TIMESTAMP '2026-01-01 {:02}:{:02}:{:02}'",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

/// Rows `from..to`: key `i % 7`, two rows a second, in order.
async fn feed(s: &Session, from: u64, to: u64) {
    let values: Vec<String> = (from..to)
        .map(|i| format!("({i}, {}, {})", i % 7, timestamp(i / 2)))
        .collect();
    run(
        s,
        &format!("INSERT INTO ev (id, k, ts) VALUES {}", values.join(", ")),
    )
    .await
    .expect("insert");
}

async fn state_bytes(s: &Session, view: &str) -> usize {
    let info = rows(&run(s, &format!("DESCRIBE {view}")).await.expect("describe"));
    info.into_iter()
        .find(|r| r[0] == "state bytes")
        .and_then(|r| r[3].split(' ').next().and_then(|n| n.parse().ok()))
        .expect("a state bytes line")
}

async fn explain(s: &Session, query: &str) -> String {
    let plan = run(s, &format!("EXPLAIN CREATE MATERIALIZED VIEW x AS {query}"))
        .await
        .expect("explain");
    format!("{:?}", rows(&plan))
}

/// Waits until `small`'s state is under a tenth of `large`'s (both views caught up on
/// growing input, as their oracle checks showed), printing both. The TTL's may be 0: its
/// clock is the watermark when a key was written, and a read of many rows at once ends with
/// a watermark past all their deadlines.
async fn assert_bounded(s: &Session, small: &str, large: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (a, b) = (state_bytes(s, small).await, state_bytes(s, large).await);
        if b > 0 && a * 10 < b {
            println!("state bytes: {small} {a}, {large} {b}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "state bytes: {small} {a}, {large} {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_per_window_frees_closed_windows_and_ttl_bounds_idle_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    for topic in ["ev", "plain"] {
        state
            .create_topic(topic, 1, 1, Default::default())
            .await
            .expect("topic");
    }
    let config = SqlConfig {
        checkpoint_interval_ms: 200,
        ..SqlConfig::default()
    };
    let engine = Engine::start(state.clone(), config).await.expect("engine");
    let s = engine.session();
    run(&s, SOURCE).await.expect("source");

    assert!(
        explain(&s, DEDUP)
            .await
            .contains("windows end at partition"),
        "the window bound is traced"
    );
    assert!(!explain(&s, DEDUP_UNTRACED)
        .await
        .contains("windows end at partition"));
    assert!(!explain(&s, PER_ID).await.contains("state TTL"));
    run(&s, "SET streaming.state_ttl = '5 seconds'")
        .await
        .expect("set");
    assert!(explain(&s, PER_ID)
        .await
        .contains("state TTL: 5000 ms of event time"));
    // Event time needs a watermark.
    run(
        &s,
        "CREATE SOURCE plain (id BIGINT) WITH (topic = 'plain', format = 'json')",
    )
    .await
    .expect("plain");
    let e = run(
        &s,
        "CREATE MATERIALIZED VIEW p AS SELECT id, count(*) FROM plain GROUP BY id",
    )
    .await
    .expect_err("a TTL without a watermark");
    assert_eq!(e.sqlstate(), "0A000", "{e}");
    assert!(e.to_string().contains("WATERMARK FOR"), "{e}");
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW per_id_ttl AS {PER_ID}"),
    )
    .await
    .expect("per_id_ttl");
    run(&s, "SET streaming.state_ttl = 'none'")
        .await
        .expect("unset");
    run(&s, &format!("CREATE MATERIALIZED VIEW per_id AS {PER_ID}"))
        .await
        .expect("per_id");
    run(&s, &format!("CREATE MATERIALIZED VIEW dedup AS {DEDUP}"))
        .await
        .expect("dedup");
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW dedup_untraced AS {DEDUP_UNTRACED}"),
    )
    .await
    .expect("dedup_untraced");

    for chunk in 0..6 {
        feed(&s, chunk * 500, (chunk + 1) * 500).await;
    }
    // Both deduplications equal the batch query; so do both aggregates (a group never
    // comes back after its TTL here, each id being new).
    assert_oracle(&s, "dedup", DEDUP, false).await;
    assert_oracle(&s, "dedup_untraced", DEDUP_UNTRACED, false).await;
    assert_oracle(&s, "per_id", PER_ID, false).await;
    assert_oracle(&s, "per_id_ttl", PER_ID, false).await;
    // 3,000 rows over 150 windows of 7 keys: the traced deduplication holds the open
    // windows' keys, the untraced one all 1,050; the TTL aggregate the ids of the last
    // seconds, the other all 3,000.
    assert_bounded(&s, "dedup", "dedup_untraced").await;
    assert_bounded(&s, "per_id_ttl", "per_id").await;
    engine.stop().await;
    drop(s);
    drop(engine);

    // The TTL is kept with the view: after a restart it still bounds its state.
    let engine = Engine::start(
        state.clone(),
        SqlConfig {
            checkpoint_interval_ms: 200,
            ..SqlConfig::default()
        },
    )
    .await
    .expect("engine");
    let s = engine.session();
    feed(&s, 3_000, 4_000).await;
    assert_oracle(&s, "per_id_ttl", PER_ID, false).await;
    // Then later rows: their watermark passes the deadlines of the rows before.
    feed(&s, 4_000, 4_100).await;
    assert_oracle(&s, "per_id_ttl", PER_ID, false).await;
    assert_oracle(&s, "dedup", DEDUP, false).await;
    assert_bounded(&s, "per_id_ttl", "per_id").await;
    assert_bounded(&s, "dedup", "dedup_untraced").await;
    engine.stop().await;
    state.close().expect("close");
}
