//! Interval joins against the oracle (design §6, joins): two sources with watermarks, rows
//! out of order within the watermark delay over two partitions each, joined on a key with
//! one side's event time bounded by the other's (`BETWEEN`, and `>=`/`<` with the sides
//! swapped). Once caught up each view (append-only) equals the batch result, across a
//! restart; the planner chose `IntervalJoin`, and its state stays bounded while the same
//! join written so the planner cannot see the interval (a regular join) keeps every row.

use crate::common::{rows, run};

use std::sync::Arc;
use std::time::Duration;

use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Session};
use weir_sql::SqlConfig;
use weir_stream::PipelineStatus;

const SOURCES: &str = "CREATE SOURCE imps (id BIGINT NOT NULL, ad BIGINT, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '10' SECOND) \
     WITH (topic = 'imps', watermark.idle.timeout = '60s'); \
     CREATE SOURCE clicks (id BIGINT NOT NULL, ad BIGINT, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '10' SECOND) \
     WITH (topic = 'clicks', watermark.idle.timeout = '60s')";

const VIEWS: &[(&str, &str)] = &[
    (
        "between",
        "SELECT i.id AS imp, c.id AS click, i.ad, i.ts AS shown, c.ts AS clicked \
         FROM imps i JOIN clicks c ON i.ad = c.ad \
         AND c.ts BETWEEN i.ts - INTERVAL '2' SECOND AND i.ts + INTERVAL '5' SECOND",
    ),
    (
        // Sides swapped in the comparisons, a strict bound, and another condition.
        "swapped",
        "SELECT c.id AS click, i.id AS imp FROM clicks c JOIN imps i ON c.ad = i.ad \
         AND i.ts >= c.ts - INTERVAL '3' SECOND AND c.ts > i.ts AND i.id % 3 <> 0",
    ),
    (
        // A bound from another column of the row (as Nexmark q4's `A.expires`): the click
        // between the impression and its own `until`, which varies per impression.
        "until",
        "SELECT i.id AS imp, c.id AS click FROM \
         (SELECT id, ad, ts, CASE WHEN id % 2 = 0 THEN ts + INTERVAL '1' SECOND \
         ELSE ts + INTERVAL '4' SECOND END AS until FROM imps) i \
         JOIN clicks c ON i.ad = c.ad AND c.ts BETWEEN i.ts AND i.until",
    ),
];

/// The same join as `between` (times are whole seconds), its bounds over a function of the
/// time the planner does not trace: a regular join.
const UNBOUNDED: &str = "SELECT i.id AS imp, c.id AS click FROM imps i JOIN clicks c \
     ON i.ad = c.ad AND date_trunc('second', c.ts) \
     BETWEEN i.ts - INTERVAL '2' SECOND AND i.ts + INTERVAL '5' SECOND";

/// Row `i`'s event time in seconds: one a second, up to 8 s early (within the 10 s delay).
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

async fn insert(s: &Session, table: &str, from: u64, to: u64, seed: u64) {
    let values: Vec<String> = (from..to)
        .map(|i| format!("({i}, {}, {})", i % 5, timestamp(second_of(i, seed))))
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO {table} (id, ad, ts) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("insert");
}

async fn feed(s: &Session, from: u64, to: u64, seed: u64) {
    insert(s, "imps", from, to, seed).await;
    insert(s, "clicks", from, to, seed.wrapping_add(1)).await;
}

async fn open(state: &Arc<State>) -> Arc<Engine> {
    let config = SqlConfig {
        checkpoint_interval_ms: 200,
        ..SqlConfig::default()
    };
    Engine::start(state.clone(), config).await.expect("engine")
}

async fn assert_oracle(engine: &Engine, s: &Session, view: &str, query: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let want = rows(&run(s, query).await.expect(query));
    assert!(!want.is_empty(), "{view}: the oracle has rows");
    loop {
        let got = rows(&run(s, &format!("SELECT * FROM {view}")).await.expect(view));
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{view} ({:?}): {} rows, want {}\n got  {got:?}\n want {want:?}",
            engine.pipeline_status(view),
            got.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn state_bytes(s: &Session, view: &str) -> usize {
    let info = rows(&run(s, &format!("DESCRIBE {view}")).await.expect("describe"));
    info.into_iter()
        .find(|r| r[0] == "state bytes")
        .and_then(|r| r[3].split(' ').next().and_then(|n| n.parse().ok()))
        .expect("a state bytes line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_joins_equal_the_batch_oracle_with_bounded_state() {
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
    for topic in ["imps", "clicks"] {
        state
            .create_topic(topic, 2, 1, Default::default())
            .await
            .expect("topic");
    }
    let engine = open(&state).await;
    let s = engine.session();
    run(&s, SOURCES).await.expect("sources");
    for (name, query) in VIEWS {
        let plan = format!(
            "{:?}",
            rows(
                &run(
                    &s,
                    &format!("EXPLAIN CREATE MATERIALIZED VIEW {name} AS {query}")
                )
                .await
                .expect("explain")
            )
        );
        assert!(plan.contains("IntervalJoin"), "{name}: {plan}");
    }
    let plan = format!(
        "{:?}",
        rows(
            &run(
                &s,
                &format!("EXPLAIN CREATE MATERIALIZED VIEW u AS {UNBOUNDED}")
            )
            .await
            .expect("explain")
        )
    );
    assert!(!plan.contains("IntervalJoin"), "{plan}");
    feed(&s, 0, 200, seed).await;
    for (name, query) in VIEWS {
        run(&s, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .expect(name);
    }
    run(
        &s,
        &format!("CREATE MATERIALIZED VIEW unbounded AS {UNBOUNDED}"),
    )
    .await
    .expect("unbounded");
    for (name, query) in VIEWS {
        assert_oracle(&engine, &s, name, query).await;
    }
    feed(&s, 200, 400, seed).await;
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(&state).await;
    let s = engine.session();
    feed(&s, 400, 900, seed).await;
    for (name, query) in VIEWS {
        assert_oracle(&engine, &s, name, query).await;
        assert_eq!(
            engine.pipeline_status(name),
            Some(PipelineStatus::Running),
            "{name}"
        );
    }
    assert_oracle(&engine, &s, "unbounded", UNBOUNDED).await;
    // Bounded: the interval join holds the rows of its interval plus the watermark delay
    // (tens), the regular join all 1,800.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (bounded, unbounded) = (
            state_bytes(&s, "between").await,
            state_bytes(&s, "unbounded").await,
        );
        if bounded > 0 && bounded * 10 < unbounded {
            println!("state bytes: interval join {bounded}, regular join {unbounded}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "state bytes: interval join {bounded}, regular join {unbounded}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.stop().await;
}
