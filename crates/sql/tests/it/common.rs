//! Helpers the SQL integration tests share: running statements through a session and
//! reading results as sorted text rows.

use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use futures::TryStreamExt;
use weir_sql::engine::{Engine, Output, Session};
use weir_sql::parser::parse;
use weir_sql::SqlError;

/// Runs every statement of `sql` and collects what they return.
pub async fn run(session: &Session, sql: &str) -> Result<Vec<RecordBatch>, SqlError> {
    let mut out = Vec::new();
    for statement in parse(sql)? {
        match session.execute(statement).await? {
            Output::Stream(_, stream) => out.extend(
                stream
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(SqlError::from)?,
            ),
            Output::Batches(_, batches) => out.extend(batches),
            Output::Command(_) => {}
        }
    }
    Ok(out)
}

/// Rows as text (each column as DataFusion prints it), sorted: a multiset.
// Each test file is its own crate and not every one compares rows.
#[allow(dead_code)]
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        datafusion::arrow::util::display::array_value_to_string(c, r)
                            .expect("display")
                    })
                    .collect(),
            );
        }
    }
    out.sort();
    out
}

/// Waits (up to 30 s) until `SELECT * FROM view` equals `query` run as a batch query, as
/// multisets. Unless `allow_empty`, an empty batch answer fails: it would prove nothing.
// Each test file is its own crate and not every one uses the oracle.
#[allow(dead_code)]
pub async fn assert_oracle(s: &Session, view: &str, query: &str, allow_empty: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let want = rows(&run(s, query).await.expect(query));
        assert!(
            allow_empty || !want.is_empty(),
            "{view}: an empty oracle would prove nothing"
        );
        let got = rows(&run(s, &format!("SELECT * FROM {view}")).await.expect(view));
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

/// Starts the SQL engine over `state` with the default settings.
pub async fn open(state: &std::sync::Arc<weir_broker::state::State>) -> std::sync::Arc<Engine> {
    Engine::start(state.clone(), weir_sql::SqlConfig::default())
        .await
        .expect("engine")
}

/// Stops `engine` and starts another over `state`, with a new session.
#[allow(dead_code)]
pub async fn restart(
    engine: std::sync::Arc<Engine>,
    s: Session,
    state: &std::sync::Arc<weir_broker::state::State>,
) -> (std::sync::Arc<Engine>, Session) {
    engine.stop().await;
    drop(s);
    drop(engine);
    let engine = open(state).await;
    let s = engine.session();
    (engine, s)
}

/// The command tag of one statement.
pub async fn tag(s: &Session, sql: &str) -> String {
    let mut statements = parse(sql).expect(sql);
    match s.execute(statements.remove(0)).await.expect(sql) {
        Output::Command(t) => t,
        _ => panic!("{sql}: rows, not a command"),
    }
}

/// The rows of `sql`, as sorted text.
pub async fn select(s: &Session, sql: &str) -> Vec<Vec<String>> {
    rows(&run(s, sql).await.expect(sql))
}

/// The state layout stored for `name` (empty when none is).
pub fn layout(engine: &Engine, name: &str) -> String {
    engine
        .catalog_entry(name)
        .and_then(|e| e.state_layout)
        .unwrap_or_default()
}

/// A broker state recovered from `dir` holding `topic` (one partition).
pub async fn state_with(
    dir: &std::path::Path,
    topic: &str,
) -> std::sync::Arc<weir_broker::state::State> {
    let state = weir_broker::testkit::recovered(dir, &[]);
    state
        .create_topic(topic, 1, 1, Default::default())
        .await
        .expect("topic");
    state
}
