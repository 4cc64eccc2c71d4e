//! Hidden key columns (design §5.4). An updating result is written by key: a view's topic
//! and an upsert sink keep the last row per key. Where the query does not select its key
//! (Nexmark q5 and q8 select neither `window_start` nor `window_end`), the projection keeps
//! the key columns it drops as hidden columns after its own; where an updating join reads
//! an append-only input (a source, Nexmark q7), a `RowId` node numbers that input's rows
//! and the number is its key. Hidden columns ride at the end of each row (before
//! `_retract`) through projections, filters, aliases and joins up to the sink, which keys its
//! records by them and never writes them as values, so `SELECT *` and `DESCRIBE` of a view
//! never show them. Every other operator takes its input without them ([`Planner::walk`]),
//! so plans that need no key are unchanged.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, DFSchemaRef, TableReference};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use weir_stream::NodeSpec;

use super::{identity, Out, Planner};
use crate::error::SqlError;

/// A qualified field of a DataFusion schema.
pub(super) type Qualified = (Option<TableReference>, FieldRef);

impl Planner<'_> {
    /// Adds the nodes computing `plan`, without hidden columns: what aggregates, windows,
    /// unions and top-N take (they key their output by their own columns).
    pub(super) fn walk(&mut self, plan: &LogicalPlan) -> Result<Out, SqlError> {
        let keep = std::mem::replace(&mut self.keep_hidden, false);
        let out = self.walk_keyed(plan);
        self.keep_hidden = keep;
        self.strip(out?)
    }

    /// `out` without its hidden columns (a `Map` when it has some); its key goes with them.
    pub(super) fn strip(&mut self, out: Out) -> Result<Out, SqlError> {
        if out.hidden == 0 {
            return Ok(out);
        }
        let visible = out.schema.fields().len() - out.hidden;
        let schema = prefix(&out.schema, visible)?;
        let key = out.key.clone().filter(|k| k.iter().all(|&i| i < visible));
        let node = self.map(
            out.node,
            out.arrow(),
            identity(&schema),
            None,
            out.updating,
            out.key.clone().unwrap_or_default(),
        );
        Ok(Out {
            node,
            schema,
            updating: out.updating,
            key,
            hidden: 0,
        })
    }

    /// An append-only `out` with its rows numbered: a `RowId` node whose hidden `_row_id`
    /// is the key.
    pub(super) fn number_rows(&mut self, out: Out) -> Result<Out, SqlError> {
        let node = self.graph.add(NodeSpec::RowId);
        self.graph.connect(out.node, node, out.arrow());
        let name = self.hidden_name(weir_stream::ops::row_id::ROW_ID);
        let field = Arc::new(Field::new(name, DataType::Int64, false));
        let width = out.schema.fields().len();
        Ok(Out {
            node,
            schema: append(&out.schema, vec![(None, field)])?,
            updating: false,
            key: Some(vec![width]),
            hidden: out.hidden + 1,
        })
    }

    /// The key of a projection of `child` (`exprs` over `input`, the child's logical
    /// schema) that drops key columns: the selected ones where selected, the others
    /// appended to `exprs` as hidden columns; with the hidden fields.
    pub(super) fn hide_key(
        &mut self,
        child: &Out,
        selected: &[Expr],
        input: &DFSchemaRef,
        exprs: &mut Vec<Arc<dyn PhysicalExpr>>,
    ) -> (Option<Vec<usize>>, Vec<Qualified>) {
        let Some(child_key) = &child.key else {
            return (None, Vec::new());
        };
        let mut key = Vec::with_capacity(child_key.len());
        let mut hidden: Vec<Qualified> = Vec::new();
        for &k in child_key {
            let at = selected.iter().position(|e| {
                matches!(e.clone().unalias(), Expr::Column(c)
                    if input.index_of_column(&c).ok() == Some(k))
            });
            if let Some(i) = at {
                key.push(i);
                continue;
            }
            let Some(f) = child.schema.fields().get(k) else {
                return (None, Vec::new());
            };
            let name = self.hidden_name(f.name());
            exprs.push(Arc::new(Column::new(&name, k)));
            key.push(selected.len() + hidden.len());
            hidden.push((None, Arc::new(f.as_ref().clone().with_name(name))));
        }
        (Some(key), hidden)
    }

    /// A name for a hidden column carrying `column`, unique in the plan.
    pub(super) fn hidden_name(&mut self, column: &str) -> String {
        self.hidden_names += 1;
        format!("_hidden{}_{column}", self.hidden_names)
    }
}

/// The hidden fields of `out` (its schema's last `out.hidden`), qualified.
pub(super) fn fields(out: &Out) -> Vec<Qualified> {
    let n = out.schema.fields().len();
    out.schema
        .iter()
        .skip(n - out.hidden)
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect()
}

/// `schema` followed by `more`.
pub(super) fn append(schema: &DFSchemaRef, more: Vec<Qualified>) -> Result<DFSchemaRef, SqlError> {
    if more.is_empty() {
        return Ok(schema.clone());
    }
    let mut all: Vec<Qualified> = schema
        .iter()
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect();
    all.extend(more);
    Ok(Arc::new(DFSchema::new_with_metadata(
        all,
        schema.metadata().clone(),
    )?))
}

/// The first `n` columns of `schema`.
pub(super) fn prefix(schema: &DFSchemaRef, n: usize) -> Result<DFSchemaRef, SqlError> {
    let fields = schema
        .iter()
        .take(n)
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect();
    Ok(Arc::new(DFSchema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )?))
}
