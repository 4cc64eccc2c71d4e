//! Deduplication at the source (`dedup.key` / `dedup.within`, design §9): views over a
//! deduplicating source against (1) the ROW_NUMBER query over the same topic read without
//! it, when every repeat falls within the bound, and (2) a reference computed here from the
//! rows in offset order, when keys recur after the bound; both across a restart, with the
//! drops counted in DESCRIBE. The options show in DESCRIBE and SHOW CREATE; bad values fail
//! at CREATE with SQLSTATE and message.

use crate::common::{assert_oracle, open, run, select};

use std::collections::HashMap;
use std::time::Duration;

use weir_broker::testkit;
use weir_sql::engine::Session;

/// Milliseconds of event time as a TIMESTAMP literal.
fn ts(ms: i64) -> String {
    let s = ms / 1000;
    format!(
        "TIMESTAMP '2026-01-01 {:02}:{:02}:{:02}.{:03}'",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// Rows `from..to` of the first data set: one each 100 ms; every fifth repeats the id of
/// the row three before (300 ms earlier, within the 10 s bound); `k` follows the id.
async fn feed_events(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = (from..to)
        .map(|i| {
            let id = if i % 5 == 4 { i - 3 } else { i };
            format!("({id}, 'k{}', {})", id % 13, ts(i * 100))
        })
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO ev_raw (id, k, ts) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("insert events");
}

/// Rows of the second data set: (id, event time ms), one a second, ids recurring at
/// irregular gaps around the 12 s bound.
fn clicks(from: i64, to: i64) -> Vec<(i64, i64)> {
    (from..to)
        .map(|i| ((i * i + 3 * i) % 17, i * 1000))
        .collect()
}

async fn feed_clicks(s: &Session, from: i64, to: i64) {
    let values: Vec<String> = clicks(from, to)
        .into_iter()
        .map(|(id, t)| format!("({id}, {})", ts(t)))
        .collect();
    run(
        s,
        &format!(
            "INSERT INTO clicks_raw (id, ts) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("insert clicks");
}

/// The rows a deduplication by id within `within_ms` keeps, reading `rows` in order: a row
/// is dropped when its id's first-seen time is less than the bound away.
fn reference(rows: &[(i64, i64)], within_ms: i64) -> Vec<Vec<String>> {
    let mut first: HashMap<i64, i64> = HashMap::new();
    let mut kept = Vec::new();
    for &(id, t) in rows {
        match first.get(&id) {
            Some(&f) if (t - f).abs() < within_ms => continue,
            Some(&f) if t < f => {}
            _ => {
                first.insert(id, t);
            }
        }
        kept.push((id, t));
    }
    let mut out: Vec<Vec<String>> = kept
        .into_iter()
        .map(|(id, t)| {
            let s = t / 1000;
            vec![
                id.to_string(),
                format!(
                    "2026-01-01T{:02}:{:02}:{:02}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                ),
            ]
        })
        .collect();
    out.sort();
    out
}

/// DESCRIBE `view`'s line `name`.
async fn describe_line(s: &Session, view: &str, name: &str) -> Option<String> {
    select(s, &format!("DESCRIBE {view}"))
        .await
        .into_iter()
        .find(|r| r[0] == name)
        .map(|r| r[3].clone())
}

/// Waits until DESCRIBE `view` counts `want` duplicate rows.
async fn assert_duplicates(s: &Session, view: &str, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = describe_line(s, view, "rows duplicate (dropped)").await;
        if got.as_deref() == Some(want.to_string().as_str()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{view}: duplicates {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `SELECT * FROM view` is `want` (sorted rows).
async fn assert_rows(s: &Session, view: &str, want: &[Vec<String>]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = select(s, &format!("SELECT * FROM {view}")).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{view}:\n got  {got:?}\n want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const SOURCES: &str = "\
    CREATE SOURCE ev (id BIGINT NOT NULL, k VARCHAR, ts TIMESTAMP, \
      WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
      WITH (topic = 'ev', dedup.key = 'id', dedup.within = '10 seconds', \
      watermark.idle.timeout = '60s'); \
    CREATE SOURCE ev_raw (id BIGINT NOT NULL, k VARCHAR, ts TIMESTAMP) WITH (topic = 'ev'); \
    CREATE SOURCE clicks (id BIGINT NOT NULL, ts TIMESTAMP, \
      WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
      WITH (topic = 'clicks', dedup.key = 'id', dedup.within = '12 s'); \
    CREATE SOURCE clicks_raw (id BIGINT NOT NULL, ts TIMESTAMP) WITH (topic = 'clicks')";

/// The ROW_NUMBER deduplication the shorthand replaces: the first row per id by time.
const FIRST_PER_ID: &str = "SELECT id, k FROM (SELECT id, k, ROW_NUMBER() OVER \
     (PARTITION BY id ORDER BY ts) AS rn FROM ev_raw) WHERE rn = 1";

async fn check(s: &Session, clicks_to: i64) {
    assert_oracle(s, "ev_first", FIRST_PER_ID, false).await;
    assert_oracle(
        s,
        "ev_count",
        "SELECT count(DISTINCT id) AS n FROM ev_raw",
        false,
    )
    .await;
    assert_rows(s, "clicks_kept", &reference(&clicks(0, clicks_to), 12_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_at_the_source_equals_row_number_and_the_reference_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    // Two partitions: a repeat may be read before the row it repeats; one partition for
    // the reference, which follows offset order.
    state
        .create_topic("ev", 2, 1, Default::default())
        .await
        .expect("topic");
    state
        .create_topic("clicks", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(&s, SOURCES).await.expect("sources");
    run(
        &s,
        "CREATE MATERIALIZED VIEW ev_first AS SELECT id, k FROM ev; \
         CREATE MATERIALIZED VIEW ev_count AS SELECT count(*) AS n FROM ev; \
         CREATE MATERIALIZED VIEW clicks_kept AS SELECT id, ts FROM clicks",
    )
    .await
    .expect("views");
    feed_events(&s, 0, 302).await;
    feed_clicks(&s, 0, 60).await;
    check(&s, 60).await;
    // Every pipeline reading the source drops the same rows: 60 of 302.
    assert_duplicates(&s, "ev_first", 60).await;
    assert_duplicates(&s, "ev_count", 60).await;
    engine.stop().await;
    drop(s);
    drop(engine);

    // Restarted: the entries come back from the checkpoint, so a repeat of a row read
    // before the restart is still dropped (row 304 repeats row 301's id).
    let engine = open(&state).await;
    let s = engine.session();
    feed_events(&s, 302, 700).await;
    feed_clicks(&s, 60, 150).await;
    check(&s, 150).await;
    assert_duplicates(&s, "ev_first", 140).await;
    let want_clicks = 150 - reference(&clicks(0, 150), 12_000).len() as u64;
    assert_duplicates(&s, "clicks_kept", want_clicks).await;
    println!(
        "clicks: {want_clicks} of 150 dropped; ev_first state {:?}",
        describe_line(&s, "ev_first", "state bytes").await
    );

    // The options show where a source's settings do.
    let described = select(&s, "DESCRIBE ev").await;
    for (line, value) in [
        ("with dedup.key", "id"),
        ("with dedup.within", "10 seconds"),
    ] {
        assert!(
            described.iter().any(|r| r[0] == line && r[3] == value),
            "{line}: {described:?}"
        );
    }
    let created = select(&s, "SHOW CREATE SOURCE ev").await;
    assert!(
        created[0][1].contains("dedup.key = 'id'")
            && created[0][1].contains("dedup.within = '10 seconds'"),
        "{created:?}"
    );
    engine.stop().await;
    state.close().expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dedup_options_fail_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("raw", 1, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    let wm = "id BIGINT, other VARCHAR, ts TIMESTAMP, WATERMARK FOR ts AS ts";
    for (columns, options, code, says) in [
        (
            wm,
            "dedup.key = 'nope', dedup.within = '1 minute'",
            "22023",
            "nope",
        ),
        (
            wm,
            "dedup.key = 'id, id', dedup.within = '1 minute'",
            "22023",
            "twice",
        ),
        (
            wm,
            "dedup.key = 'id', dedup.within = '-5 minutes'",
            "22023",
            "positive",
        ),
        (
            wm,
            "dedup.key = 'id', dedup.within = '0'",
            "22023",
            "positive",
        ),
        (
            wm,
            "dedup.key = 'id', dedup.within = 'soon'",
            "22023",
            "interval",
        ),
        (wm, "dedup.key = 'id'", "22023", "go together"),
        (wm, "dedup.within = '1 minute'", "22023", "go together"),
        (
            "id BIGINT, ts TIMESTAMP",
            "dedup.key = 'id', dedup.within = '1 minute'",
            "22023",
            "WATERMARK",
        ),
    ] {
        let sql = format!("CREATE SOURCE bad ({columns}) WITH (topic = 'raw', {options})");
        let err = run(&s, &sql).await.expect_err(&sql);
        assert_eq!(err.sqlstate(), code, "{sql}: {err}");
        assert!(err.to_string().contains(says), "{sql}: {err}");
    }
    // A key of several columns, and of a metadata column, is accepted.
    run(
        &s,
        "CREATE SOURCE ok (id BIGINT, other VARCHAR, ts TIMESTAMP, \
         WATERMARK FOR ts AS ts) INCLUDE key AS kafka_key \
         WITH (topic = 'raw', dedup.key = 'id, other', dedup.within = '1 minute'); \
         CREATE SOURCE ok2 (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) \
         INCLUDE key AS kafka_key \
         WITH (topic = 'raw', dedup.key = 'kafka_key', dedup.within = '1 hour')",
    )
    .await
    .expect("several columns, a metadata column");
    let sql = "CREATE SOURCE bad (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) \
               INCLUDE headers AS h \
               WITH (topic = 'raw', dedup.key = 'h', dedup.within = '1 minute')";
    let err = run(&s, sql).await.expect_err(sql);
    assert_eq!(err.sqlstate(), "0A000", "{sql}: {err}");
    engine.stop().await;
    state.close().expect("close");
}

/// An ad-hoc `SELECT` over a deduplicating source drops what a view over it drops: a
/// repeat just inside the bound (9.999 s after the first-seen row, or 4.999 s before it) is
/// dropped, one just outside (10 s, 10.001 s) is kept and starts a new bound, a row without
/// an event time is kept; `LIMIT` counts kept rows. Two partitions: a key repeated in both
/// is seen once (which copy is kept depends on read order, so counts are compared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_select_over_a_deduplicating_source_agrees_with_a_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = testkit::recovered(dir.path(), &[]);
    state
        .create_topic("once", 1, 1, Default::default())
        .await
        .expect("topic");
    state
        .create_topic("twice", 2, 1, Default::default())
        .await
        .expect("topic");
    let engine = open(&state).await;
    let s = engine.session();
    run(
        &s,
        "CREATE SOURCE once (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
           WITH (topic = 'once', dedup.key = 'id', dedup.within = '10 seconds'); \
         CREATE SOURCE once_raw (id BIGINT, ts TIMESTAMP) WITH (topic = 'once'); \
         CREATE MATERIALIZED VIEW once_kept AS SELECT id, to_char(ts, 'MI:SS.MS') AS t FROM once; \
         CREATE SOURCE twice (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) \
           WITH (topic = 'twice', dedup.key = 'id', dedup.within = '1 minute'); \
         CREATE SOURCE twice_raw (id BIGINT, ts TIMESTAMP) INCLUDE partition AS p \
           WITH (topic = 'twice'); \
         CREATE MATERIALIZED VIEW twice_count AS SELECT count(*) AS n FROM twice",
    )
    .await
    .expect("objects");
    // (id, event time ms) in offset order, and whether the rule keeps the row.
    let rows: [(i64, Option<i64>, bool); 12] = [
        (1, Some(0), true),
        (2, Some(1_000), true),
        (3, Some(5_000), true),
        (1, Some(9_999), false),  // just inside: 9.999 s after the first-seen
        (3, Some(1), false),      // 4.999 s before the first-seen: inside too
        (1, Some(10_000), true),  // just outside: exactly the bound; first-seen now 10 s
        (2, Some(11_001), true),  // 10.001 s after
        (1, Some(19_999), false), // inside the new bound
        (2, Some(21_000), false), // 9.999 s after 11.001
        (4, None, true),          // no event time: kept
        (4, None, true),
        (1, Some(20_000), true),
    ];
    let values: Vec<String> = rows
        .iter()
        .map(|(id, t, _)| match t {
            Some(t) => format!("({id}, {})", ts(*t)),
            None => format!("({id}, NULL)"),
        })
        .collect();
    run(
        &s,
        &format!("INSERT INTO once VALUES {}", values.join(", ")),
    )
    .await
    .expect("rows");
    let mut want: Vec<Vec<String>> = rows
        .iter()
        .filter(|(_, _, kept)| *kept)
        .map(|(id, t, _)| {
            let t = t.map_or(String::new(), |t| {
                format!("{:02}:{:02}.{:03}", t / 60_000, t / 1000 % 60, t % 1000)
            });
            vec![id.to_string(), t]
        })
        .collect();
    want.sort();
    assert_rows(&s, "once_kept", &want).await;
    let adhoc = "SELECT id, to_char(ts, 'MI:SS.MS') AS t FROM once";
    assert_eq!(
        select(&s, adhoc).await,
        want,
        "the SELECT agrees with the view"
    );
    let raw = select(&s, "SELECT count(*) FROM once_raw").await;
    assert_eq!(
        raw,
        vec![vec!["12".to_string()]],
        "the topic holds every row"
    );
    let limited = select(&s, &format!("{adhoc} LIMIT 4")).await;
    assert_eq!(limited.len(), 4);
    assert!(limited.iter().all(|r| want.contains(r)), "{limited:?}");
    let counted = select(&s, "SELECT id, count(*) FROM once GROUP BY id").await;
    assert_eq!(
        counted,
        vec![
            vec!["1".to_string(), "3".to_string()],
            vec!["2".to_string(), "2".to_string()],
            vec!["3".to_string(), "1".to_string()],
            vec!["4".to_string(), "2".to_string()],
        ]
    );

    // Two partitions: ids 0..20 in partition 0, then again in partition 1; the view and
    // the SELECT both count each id once.
    let values: Vec<String> = (0..40)
        .map(|i| format!("({}, {}, {})", i % 20, ts(i * 100), i / 20))
        .collect();
    run(
        &s,
        &format!("INSERT INTO twice_raw VALUES {}", values.join(", ")),
    )
    .await
    .expect("rows");
    let per_partition = select(&s, "SELECT p, count(*) FROM twice_raw GROUP BY p").await;
    assert_eq!(per_partition.len(), 2, "{per_partition:?}");
    assert_rows(&s, "twice_count", &[vec!["20".to_string()]]).await;
    assert_eq!(
        select(&s, "SELECT count(*) FROM twice").await,
        vec![vec!["20".to_string()]]
    );
    engine.stop().await;
}
