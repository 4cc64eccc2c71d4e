//! Expressions evaluated over a batch where one bad row must not stop a pipeline.
//!
//! A continuous query runs for months over whatever producers write: a `CAST(text AS INT)`
//! of one row that holds `"n/a"`, a division by a zero some row carries, `to_timestamp` of a
//! malformed string. Evaluated over the whole batch, DataFusion fails the batch; a pipeline
//! that failed on it would fail again at every restart (the row is still there), so one row
//! would stop the query for good. As RisingWave does in streaming ("non-strict" mode), a
//! row whose expression fails takes NULL there and the pipeline goes on; the rows are
//! counted (`DESCRIBE`'s "rows with expression errors", the metrics) and the error is
//! logged, at most every few seconds. Evaluation is deterministic, so a row's insertion and
//! its retraction fail alike and a view stays consistent, and a replay after a crash
//! counts the same rows again under the same checkpoint.
//!
//! Only errors of a row's values count (casts, parsing, arithmetic, a function refusing
//! its argument): an internal or planning error still fails the pipeline, as it is a
//! defect, not data.
//!
//! The failing rows are found by bisection (a batch with one bad row costs about
//! 2 log2(n) evaluations of slices, not n). The count reaches the pipeline through a
//! thread-local tally, taken after each operator call ([`take`]): operators run
//! synchronously on the pipeline's task, so nothing interleaves between an operator's
//! evaluation and the pipeline's reading of the tally.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::ArrowError;
use arrow_select::concat::concat;
use arrow_select::filter::filter_record_batch;
use datafusion_common::DataFusionError;
use datafusion_physical_expr::expressions::Column;
use datafusion_physical_expr::PhysicalExpr;

use crate::error::StreamError;

/// How often at most a thread logs expression errors.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    /// Rows that failed since the last [`take`].
    rows: u64,
    /// The last failure's text, since the last [`take`].
    last: Option<String>,
    /// Rows that failed since the last log line, and when that was.
    unlogged: u64,
    logged_at: Option<Instant>,
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

/// Rows whose expressions failed on this thread since the last call, and the last error.
pub fn take() -> (u64, Option<String>) {
    TALLY.with(|t| {
        let mut t = t.borrow_mut();
        (std::mem::take(&mut t.rows), t.last.take())
    })
}

fn note(rows: u64, error: &DataFusionError) {
    TALLY.with(|t| {
        let mut t = t.borrow_mut();
        t.rows += rows;
        t.unlogged += rows;
        t.last = Some(error.to_string());
        let now = Instant::now();
        if t.logged_at
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
        {
            tracing::warn!(
                rows = t.unlogged,
                error = %error,
                "expressions failed on rows of a continuous query; those values are NULL"
            );
            t.unlogged = 0;
            t.logged_at = Some(now);
        }
    });
}

/// Whether `e` is about a row's values (the row can take NULL), not a defect.
fn of_a_row(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::ArrowError(a, _) => matches!(
            a.as_ref(),
            ArrowError::CastError(_)
                | ArrowError::ParseError(_)
                | ArrowError::DivideByZero
                | ArrowError::ArithmeticOverflow(_)
                | ArrowError::ComputeError(_)
                | ArrowError::InvalidArgumentError(_)
        ),
        DataFusionError::Execution(_) => true,
        DataFusionError::Context(_, inner) => of_a_row(inner),
        DataFusionError::Shared(inner) => of_a_row(inner),
        _ => false,
    }
}

/// `batch` without the rows on which a group key that cannot be NULL fails (`None`: none
/// does, use `batch`): such a key's column is declared NOT NULL in the operator's output
/// (DataFusion's nullability: `CAST(code AS INT)` of a NOT NULL column), so its row cannot
/// take NULL and is dropped, counted, as [`crate::ops::map::MapOp`] drops it. Keys that are
/// columns never fail and cost nothing here.
pub fn drop_failed_keys(
    group: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> Result<Option<RecordBatch>, StreamError> {
    let schema = batch.schema();
    let mut dropped: Vec<usize> = Vec::new();
    for e in group {
        if e.downcast_ref::<Column>().is_some() || e.nullable(&schema)? {
            continue;
        }
        dropped.extend(evaluate(e, batch)?.1);
    }
    if dropped.is_empty() {
        return Ok(None);
    }
    Ok(Some(filter_record_batch(
        batch,
        &keep_all_but(batch.num_rows(), &dropped),
    )?))
}

/// A filter mask of `rows` rows keeping all but those listed in `dropped`.
pub fn keep_all_but(rows: usize, dropped: &[usize]) -> BooleanArray {
    let mut keep = vec![true; rows];
    for &i in dropped {
        keep[i] = false;
    }
    BooleanArray::from(keep)
}

/// `expr` over every row of `batch`. The rows on which it fails are NULL in the result and
/// listed, in order, in the second value.
pub fn evaluate(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> Result<(ArrayRef, Vec<usize>), StreamError> {
    let n = batch.num_rows();
    match expr.evaluate(batch).and_then(|v| v.into_array(n)) {
        Ok(a) => Ok((a, Vec::new())),
        Err(e) if of_a_row(&e) => {
            let data_type = expr.data_type(&batch.schema())?;
            let mut parts = Vec::new();
            let mut failed = Vec::new();
            // The whole batch failed: its halves next.
            let mid = n / 2;
            bisect(expr, batch, 0, mid, &data_type, &mut parts, &mut failed)?;
            bisect(expr, batch, mid, n, &data_type, &mut parts, &mut failed)?;
            if failed.is_empty() {
                // Not a row's values after all (the slices evaluate): the batch's error.
                return Err(e.into());
            }
            note(failed.len() as u64, &e);
            let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            Ok((concat(&parts)?, failed))
        }
        Err(e) => Err(e.into()),
    }
}

/// Evaluates rows `from..to` of `batch` (known to fail somewhere when called from
/// [`evaluate`]; re-evaluated here when a half is tried), pushing the results in order.
fn bisect(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
    from: usize,
    to: usize,
    data_type: &arrow_schema::DataType,
    parts: &mut Vec<ArrayRef>,
    failed: &mut Vec<usize>,
) -> Result<(), StreamError> {
    let len = to - from;
    if len == 0 {
        return Ok(());
    }
    let slice = batch.slice(from, len);
    match expr.evaluate(&slice).and_then(|v| v.into_array(len)) {
        Ok(a) => {
            parts.push(a);
            Ok(())
        }
        Err(e) if of_a_row(&e) => {
            if len == 1 {
                parts.push(new_null_array(data_type, 1));
                failed.push(from);
                return Ok(());
            }
            let mid = from + len / 2;
            bisect(expr, batch, from, mid, data_type, parts, failed)?;
            bisect(expr, batch, mid, to, data_type, parts, failed)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::StringArray;
    use arrow_schema::{DataType, Field, Schema};
    use datafusion_physical_expr::expressions::{col, CastExpr};

    fn texts(values: &[Option<&str>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(values.to_vec()))])
            .expect("batch")
    }

    fn cast_to_int(batch: &RecordBatch) -> Arc<dyn PhysicalExpr> {
        let t = col("t", &batch.schema()).expect("t");
        Arc::new(CastExpr::new(t, DataType::Int32, None))
    }

    #[test]
    fn failing_rows_take_null_and_are_counted() {
        take();
        let mut values: Vec<Option<&str>> = (0..100).map(|_| Some("7")).collect();
        values[3] = Some("n/a");
        values[64] = None;
        values[99] = Some("x");
        let batch = texts(&values);
        let (out, failed) = evaluate(&cast_to_int(&batch), &batch).expect("evaluate");
        assert_eq!(failed, [3, 99]);
        let out = out.as_primitive::<Int32Type>();
        assert_eq!(out.len(), 100);
        for i in 0..100 {
            match i {
                3 | 64 | 99 => assert!(out.is_null(i), "{i}"),
                _ => assert_eq!(out.value(i), 7, "{i}"),
            }
        }
        let (rows, last) = take();
        assert_eq!(rows, 2);
        assert!(last.expect("an error").contains("n/a"));
        assert_eq!(take(), (0, None));
    }

    #[test]
    fn good_batches_cost_one_evaluation_and_count_nothing() {
        take();
        let batch = texts(&[Some("1"), Some("2"), None]);
        let (out, failed) = evaluate(&cast_to_int(&batch), &batch).expect("evaluate");
        assert!(failed.is_empty());
        assert_eq!(out.null_count(), 1);
        assert_eq!(take(), (0, None));
    }
}
