//! State freed without changing results, and the opt-in idle-state TTL (design §6, state
//! cleaning): ROW_NUMBER deduplication per key and TUMBLE window frees a key's entry once
//! the watermark passes its window's end (its view equals the batch oracle, while the same
//! deduplication over a bucket the planner cannot trace to a window keeps every entry); an
//! aggregate with `SET streaming.state_ttl` drops groups idle for the TTL of event time
//! (bounded state against the same aggregate without it); over sources without a watermark
//! the TTL is measured by the wall clock, idle or not.

use crate::common::{assert_oracle, rows, run, select};

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
    // Without a watermark, the wall clock.
    run(
        &s,
        "CREATE SOURCE plain (id BIGINT) WITH (topic = 'plain', format = 'json')",
    )
    .await
    .expect("plain");
    let plan = explain(&s, "SELECT id, count(*) FROM plain GROUP BY id").await;
    assert!(
        plan.contains("state TTL: 5000 ms of processing time"),
        "{plan}"
    );
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

/// Rows `(id, k)` into `plain`, in one batch.
async fn feed_plain(s: &Session, rows: &[(i64, i64)]) {
    let values: Vec<String> = rows.iter().map(|(i, k)| format!("({i}, {k})")).collect();
    let sql = format!("INSERT INTO plain (id, k) VALUES {}", values.join(", "));
    run(s, &sql).await.expect("insert");
}

/// Waits (up to 30 s) until `view`'s rows are `want`.
async fn await_rows(s: &Session, view: &str, want: &[&[&str]]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = rows(&run(s, &format!("SELECT * FROM {view}")).await.expect(view));
        if got
            .iter()
            .map(|r| r.iter().map(String::as_str).collect::<Vec<_>>())
            .eq(want.iter().map(|r| r.to_vec()))
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{view}: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 30 s) until `view` holds no state.
async fn await_no_state(s: &Session, view: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let bytes = state_bytes(s, view).await;
        if bytes == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{view}: {bytes} state bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_watermark_the_ttl_is_the_wall_clocks_and_frees_idle_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = crate::common::state_with(dir.path(), "plain").await;
    let config = SqlConfig {
        checkpoint_interval_ms: 100,
        ..SqlConfig::default()
    };
    let engine = Engine::start(state.clone(), config).await.expect("engine");
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE plain (id BIGINT, k BIGINT) WITH (topic = 'plain', format = 'json')",
    )
    .await
    .expect("plain");
    run(&s, "SET streaming.state_ttl = '1 second'")
        .await
        .expect("set");
    let counts = "SELECT k, count(*) AS n FROM plain GROUP BY k";
    let pairs = "SELECT a.k, a.id AS a, b.id AS b FROM plain a JOIN plain b ON a.k = b.k";
    let firsts = "SELECT k, id FROM (SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k \
         ORDER BY id) AS rn FROM plain) WHERE rn = 1";
    for (name, query) in [("counts", counts), ("pairs", pairs), ("firsts", firsts)] {
        assert!(explain(&s, query).await.contains("ms of processing time"));
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    run(&s, "SET streaming.state_ttl = 'none'")
        .await
        .expect("unset");
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW counts_kept AS {counts}"),
    )
    .await
    .expect("counts_kept");

    // Rows of one batch meet each other whatever the clock.
    feed_plain(&s, &[(1, 1), (2, 1), (3, 2)]).await;
    await_rows(&s, "counts", &[&["1", "2"], &["2", "1"]]).await;
    await_rows(&s, "firsts", &[&["1", "1"], &["2", "3"]]).await;
    assert_oracle(&s, "pairs", pairs, false).await;
    // With no input at all, the clock frees every key within the TTL (and a sixteenth, and
    // a checkpoint interval); expiring writes nothing to the views.
    for view in ["counts", "pairs", "firsts"] {
        await_no_state(&s, view).await;
    }
    assert!(state_bytes(&s, "counts_kept").await > 0);
    await_rows(&s, "counts", &[&["1", "2"], &["2", "1"]]).await;

    // A key that comes back starts afresh, as if never seen: counted from 1, the first row
    // again, joined only with rows written since.
    feed_plain(&s, &[(4, 1)]).await;
    await_rows(&s, "counts", &[&["1", "1"], &["2", "1"]]).await;
    await_rows(&s, "counts_kept", &[&["1", "3"], &["2", "1"]]).await;
    await_rows(&s, "firsts", &[&["1", "4"], &["2", "3"]]).await;
    let joined = select(&s, "SELECT a, b FROM pairs WHERE a = 4 OR b = 4").await;
    assert_eq!(joined, vec![vec!["4".to_string(), "4".to_string()]]);
    engine.stop().await;
    state.close().expect("close");
}
