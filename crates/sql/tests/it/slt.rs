//! The sqllogictest suites (`crates/sql/tests/slt/*.slt`, one file per operator family) run
//! against an in-process broker and SQL engine on a temporary directory, one engine per file.
//! Each file creates topics and sources, inserts records through the topics (`INSERT INTO
//! source VALUES`, so decoding is covered), creates views and queries them with the expected
//! rows written in the file. Views are computed asynchronously: their queries use
//! sqllogictest's `retry N backoff D`, so a query passes once the view shows the expected
//! rows (and fails with the last rows seen if it never does).
//!
//! Besides SQL, the runner knows two commands of its own:
//!
//! - `CREATE TOPIC name [PARTITIONS n] [COMPACTED]` (what `weir topic create` does before
//!   `CREATE SOURCE`);
//! - `CHECK ORACLE view [AS query]`: the correctness oracle of design §11. It waits (up to
//!   30 s) until `SELECT * FROM view` equals, as multisets, the view's own query (or the
//!   given one: for a view that emits closed windows only, say) run by DataFusion's batch
//!   engine over the same records, and fails with both answers if it never does. An empty
//!   batch answer fails too: it would prove nothing. So each file checks its views against
//!   the batch engine as well as against the rows it writes out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use futures::TryStreamExt;
use sqllogictest::{DBOutput, DefaultColumnType};
use weir_broker::state::State;
use weir_broker::testkit;
use weir_sql::engine::{Engine, Output, Session};
use weir_sql::parser::parse;
use weir_sql::{SqlConfig, SqlError};

/// One file's database: a broker state, the SQL engine over it and one session.
struct Weir {
    _dir: tempfile::TempDir,
    state: Arc<State>,
    engine: Arc<Engine>,
    session: Session,
}

/// What the runner's database can fail with.
#[derive(Debug, thiserror::Error)]
enum SltError {
    #[error("{0}")]
    Sql(#[from] SqlError),
    #[error("{0}")]
    Runner(String),
}

impl Weir {
    async fn open() -> Result<Weir, SltError> {
        let dir = tempfile::tempdir().map_err(|e| SltError::Runner(e.to_string()))?;
        let state = testkit::recovered(dir.path(), &[]);
        let config = SqlConfig {
            checkpoint_interval_ms: 200,
            ..SqlConfig::default()
        };
        let engine = Engine::start(state.clone(), config).await?;
        let session = engine.session();
        Ok(Weir {
            _dir: dir,
            state,
            engine,
            session,
        })
    }

    /// `CHECK ORACLE view [AS query]`, if `sql` is one.
    async fn check_oracle(&self, sql: &str) -> Option<Result<(), SltError>> {
        let sql = sql.trim().trim_end_matches(';');
        let mut words = sql.splitn(4, char::is_whitespace);
        let (check, oracle) = (words.next()?, words.next()?);
        if !check.eq_ignore_ascii_case("CHECK") || !oracle.eq_ignore_ascii_case("ORACLE") {
            return None;
        }
        let Some(view) = words.next() else {
            return Some(Err(SltError::Runner(format!("{sql}: CHECK ORACLE view"))));
        };
        Some(self.oracle(sql, view, words.next()).await)
    }

    async fn oracle(&self, sql: &str, view: &str, rest: Option<&str>) -> Result<(), SltError> {
        let query = match rest.map(str::trim) {
            Some(r) if r.len() > 3 && r[..3].eq_ignore_ascii_case("AS ") => r[3..].to_string(),
            Some(r) => return Err(SltError::Runner(format!("{sql}: unknown words {r}"))),
            None => {
                let entry = self
                    .engine
                    .catalog_entry(view)
                    .ok_or_else(|| SltError::Runner(format!("{sql}: no view {view}")))?;
                match parse(&entry.sql).map_err(SqlError::from)?.pop() {
                    Some(weir_sql::parser::WeirStatement::CreateView(v)) => v.query.to_string(),
                    _ => return Err(SltError::Runner(format!("{sql}: {view} is not a view"))),
                }
            }
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let want = sorted(text(&self.query(&query).await?)?);
            if want.is_empty() {
                return Err(SltError::Runner(format!(
                    "{sql}: the batch answer is empty, which would prove nothing"
                )));
            }
            let got = sorted(text(&self.query(&format!("SELECT * FROM {view}")).await?)?);
            if got == want {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(SltError::Runner(format!(
                    "{sql}:\n view  {got:?}\n batch {want:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The batches one query returns.
    async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, SltError> {
        let mut statements = parse(sql).map_err(SqlError::from)?;
        match statements.pop() {
            Some(statement) => Ok(self.execute(statement).await?.unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }

    /// Runs one statement: its rows, or `None` for a command.
    async fn execute(
        &self,
        statement: weir_sql::parser::WeirStatement,
    ) -> Result<Option<Vec<RecordBatch>>, SltError> {
        Ok(match self.session.execute(statement).await? {
            Output::Stream(_, stream) => Some(
                stream
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(SqlError::from)?,
            ),
            Output::Batches(_, batches) => Some(batches),
            Output::Command(_) => None,
        })
    }

    /// `CREATE TOPIC name [PARTITIONS n] [COMPACTED]`, if `sql` is one.
    async fn create_topic(&self, sql: &str) -> Option<Result<(), SltError>> {
        let words: Vec<&str> = sql
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .collect();
        let [create, topic, name, rest @ ..] = words.as_slice() else {
            return None;
        };
        if !create.eq_ignore_ascii_case("CREATE") || !topic.eq_ignore_ascii_case("TOPIC") {
            return None;
        }
        let mut partitions = 1;
        let mut configs = std::collections::BTreeMap::new();
        let mut it = rest.iter();
        while let Some(w) = it.next() {
            if w.eq_ignore_ascii_case("PARTITIONS") {
                match it.next().and_then(|n| n.parse().ok()) {
                    Some(n) => partitions = n,
                    None => return Some(Err(SltError::Runner(format!("{sql}: PARTITIONS n")))),
                }
            } else if w.eq_ignore_ascii_case("COMPACTED") {
                configs.insert("cleanup.policy".to_string(), "compact".to_string());
            } else {
                return Some(Err(SltError::Runner(format!("{sql}: unknown word {w}"))));
            }
        }
        Some(
            self.state
                .create_topic(name, partitions, 1, configs)
                .await
                .map(|_| ())
                .map_err(|e| SltError::Runner(format!("{sql}: {e}"))),
        )
    }
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

/// A value as sqllogictest files write it: `NULL`, `(empty)` for an empty string.
fn text(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(r) {
                        return Ok("NULL".to_string());
                    }
                    let v =
                        array_value_to_string(c, r).map_err(|e| SltError::Runner(e.to_string()))?;
                    Ok(if v.is_empty() {
                        "(empty)".to_string()
                    } else {
                        v
                    })
                })
                .collect::<Result<Vec<_>, SltError>>()?;
            rows.push(row);
        }
    }
    Ok(rows)
}

#[async_trait]
impl sqllogictest::AsyncDB for Weir {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        if let Some(done) = self.create_topic(sql).await {
            done?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(done) = self.check_oracle(sql).await {
            done?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let mut out = DBOutput::StatementComplete(0);
        for statement in parse(sql).map_err(SqlError::from)? {
            let Some(batches) = self.execute(statement).await? else {
                out = DBOutput::StatementComplete(0);
                continue;
            };
            let width = batches.first().map_or(0, RecordBatch::num_columns);
            out = DBOutput::Rows {
                types: vec![DefaultColumnType::Any; width],
                rows: text(&batches)?,
            };
        }
        Ok(out)
    }

    async fn shutdown(&mut self) {
        self.engine.stop().await;
    }

    fn engine_name(&self) -> &str {
        "weir"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }

    fn error_sql_state(err: &SltError) -> Option<String> {
        match err {
            SltError::Sql(e) => Some(e.sqlstate().to_string()),
            SltError::Runner(_) => None,
        }
    }
}

async fn run_file(name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/slt")
        .join(format!("{name}.slt"));
    let mut runner = sqllogictest::Runner::new(Weir::open);
    let result = runner.run_file_async(&path).await;
    runner.shutdown_async().await;
    if let Err(e) = result {
        panic!("{}: {}", path.display(), e.display(false));
    }
}

/// A test per `.slt` file.
macro_rules! slt_files {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_file(stringify!($name)).await;
            }
        )*
    };
}

slt_files!(
    filters,
    aggregates,
    windows,
    joins,
    topn,
    tables,
    semi_joins,
    sessions,
    subqueries,
    temporal,
    view_chains,
);
