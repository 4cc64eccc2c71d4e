//! Helpers the SQL integration tests share: running statements through a session and
//! reading results as sorted text rows.

use datafusion::arrow::array::RecordBatch;
use futures::TryStreamExt;
use weir_sql::engine::{Output, Session};
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
