//! `Map`: a filter, then a projection, both DataFusion physical expressions evaluated over
//! whole Arrow batches (the planner fuses a chain of `Projection`/`Filter` into one).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use arrow_select::filter::{filter, filter_record_batch};
use datafusion_common::cast::as_boolean_array;
use datafusion_physical_expr::PhysicalExpr;

use super::eval::{evaluate, keep_all_but};
use crate::error::StreamError;

pub struct MapOp {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl MapOp {
    /// `schema` is the output's (the node's out-edge schema); `exprs` and `filter` refer to
    /// the input's columns.
    pub fn new(
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    ) -> MapOp {
        MapOp {
            exprs,
            filter,
            schema,
        }
    }

    /// The output rows of `batch`; `None` when the filter kept none.
    ///
    /// A row on which an expression fails ([`super::eval`]) is dropped when the filter
    /// fails on it (NULL is not true) or when the failing column cannot hold NULL; it takes
    /// NULL in a column that can.
    pub fn process(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>, StreamError> {
        let filtered;
        let input = match &self.filter {
            Some(predicate) => {
                let (mask, _) = evaluate(predicate, batch)?;
                // NULL is not true: SQL's WHERE drops it, and so does `filter`.
                filtered = filter_record_batch(batch, as_boolean_array(&mask)?)?;
                &filtered
            }
            None => batch,
        };
        if input.num_rows() == 0 {
            return Ok(None);
        }
        let mut dropped: Vec<usize> = Vec::new();
        let mut columns = Vec::with_capacity(self.exprs.len());
        for (i, e) in self.exprs.iter().enumerate() {
            let (column, failed) = evaluate(e, input)?;
            if !failed.is_empty() && !self.schema.field(i).is_nullable() {
                dropped.extend(failed);
            }
            columns.push(column);
        }
        let mut rows = input.num_rows();
        if !dropped.is_empty() {
            let keep = keep_all_but(rows, &dropped);
            columns = columns
                .iter()
                .map(|c| filter(c.as_ref(), &keep))
                .collect::<Result<Vec<ArrayRef>, _>>()?;
            rows = keep.true_count();
            if rows == 0 {
                return Ok(None);
            }
        }
        // With the row count: `count(*)` over a source projects no column at all.
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(Some(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};
    use datafusion_expr::Operator;
    use datafusion_physical_expr::expressions::{col, lit, BinaryExpr};

    #[test]
    fn filters_then_projects() {
        let input = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            input.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])),
                Arc::new(Int64Array::from(vec![10, 20, 30, 40])),
            ],
        )
        .expect("batch");
        let a = col("a", &input).expect("a");
        let b = col("b", &input).expect("b");
        // WHERE a > 1 (NULL is dropped), SELECT b * 2, a
        let filter = Arc::new(BinaryExpr::new(a.clone(), Operator::Gt, lit(1i64)));
        let doubled = Arc::new(BinaryExpr::new(b, Operator::Multiply, lit(2i64)));
        let out_schema = Arc::new(Schema::new(vec![
            Field::new("b2", DataType::Int64, false),
            Field::new("a", DataType::Int64, true),
        ]));
        let op = MapOp::new(vec![doubled, a], Some(filter), out_schema);
        let out = op.process(&batch).expect("process").expect("rows");
        let col0: Vec<i64> = out.column(0).as_primitive::<Int64Type>().values().to_vec();
        let col1: Vec<i64> = out.column(1).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(col0, [60, 80]);
        assert_eq!(col1, [3, 4]);

        let none = Arc::new(BinaryExpr::new(
            col("b", &input).expect("b"),
            Operator::Gt,
            lit(100i64),
        ));
        let op = MapOp::new(vec![], Some(none), Arc::new(Schema::empty()));
        assert!(op.process(&batch).expect("process").is_none());
    }
}
