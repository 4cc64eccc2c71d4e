//! Uncorrelated scalar subqueries in continuous queries: `WHERE amount > (SELECT avg(amount)
//! FROM orders)`. DataFusion's optimizer turns a correlated scalar subquery into a join with
//! an aggregate grouped by the correlated columns, which a stream runs as it is; an
//! uncorrelated one it leaves in place, for the batch engine to evaluate once before the
//! rest. A stream has no "before": the subquery's value changes as its input arrives. So a
//! subquery that always returns exactly one row (a global aggregate, perhaps projected) is
//! joined to the rows that use it on a constant key:
//!
//! ```text
//! Filter(amount > (<subquery>))            Projection(outer columns)
//!   input                          ==>       Filter(amount > __weir_sq1.value)
//!                                              Join(__weir_one = __weir_sq1.one)
//!                                                Projection(input columns, 1 AS __weir_one)
//!                                                SubqueryAlias(__weir_sq1): Projection(value, 1 AS one)
//! ```
//!
//! The join keeps the subquery's one row and re-emits the rows that use it when it changes
//! (a retraction of each old pairing and the new one), so a view over it updates as the
//! batch answer would. Exactly one row makes the inner join exact; a subquery that may
//! return none or several (a filtered or grouped one) is left in place and refused at
//! CREATE.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::{
    lit, Expr, Filter, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, Subquery,
};

/// The left side's constant join key.
const ONE: &str = "__weir_one";

/// `plan` with every uncorrelated scalar subquery that returns exactly one row joined in
/// (see the module's documentation); other scalar subqueries stay.
pub(super) fn join_uncorrelated(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let mut next = 0usize;
    plan.transform_up(|node| match node {
        LogicalPlan::Filter(f) if f.predicate.exists(|e| Ok(joinable(e)))? => {
            let (joined, mut exprs) = join(&f.input, vec![f.predicate.clone()], &mut next)?;
            let predicate = exprs.remove(0);
            let filtered = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(joined))?);
            // Back to the input's columns: the constants and values stay below.
            let columns: Vec<Expr> = f
                .input
                .schema()
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect();
            Ok(Transformed::yes(
                LogicalPlanBuilder::from(filtered)
                    .project(columns)?
                    .build()?,
            ))
        }
        LogicalPlan::Projection(p) if any_joinable(&p.expr)? => {
            let (joined, exprs) = join(&p.input, p.expr.clone(), &mut next)?;
            Ok(Transformed::yes(LogicalPlan::Projection(
                Projection::try_new(exprs, Arc::new(joined))?,
            )))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn any_joinable(exprs: &[Expr]) -> DfResult<bool> {
    for e in exprs {
        if e.exists(|e| Ok(joinable(e)))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An uncorrelated scalar subquery that returns exactly one row.
fn joinable(e: &Expr) -> bool {
    matches!(e, Expr::ScalarSubquery(s) if s.outer_ref_columns.is_empty() && one_row(&s.subquery))
}

/// Whether `plan` returns exactly one row whatever its input: an aggregate without GROUP BY,
/// under projections and aliases only.
fn one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => a.group_expr.is_empty(),
        LogicalPlan::Projection(p) => one_row(&p.input),
        LogicalPlan::SubqueryAlias(s) => one_row(&s.input),
        _ => false,
    }
}

/// `input` with a constant column, joined with each joinable subquery of `exprs`, and
/// `exprs` reading the joined values instead of the subqueries.
fn join(
    input: &Arc<LogicalPlan>,
    exprs: Vec<Expr>,
    next: &mut usize,
) -> DfResult<(LogicalPlan, Vec<Expr>)> {
    let mut columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    columns.push(lit(1i64).alias(ONE));
    let mut joined = LogicalPlanBuilder::from(input.as_ref().clone())
        .project(columns)?
        .build()?;
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        let e = e.transform_up(|e| match e {
            Expr::ScalarSubquery(s) if joinable(&Expr::ScalarSubquery(s.clone())) => {
                *next += 1;
                let alias = format!("__weir_sq{next}");
                joined = join_one(joined.clone(), &s, &alias)?;
                Ok(Transformed::yes(Expr::Column(Column::new(
                    Some(alias),
                    "value",
                ))))
            }
            other => Ok(Transformed::no(other)),
        })?;
        out.push(e.data);
    }
    Ok((joined, out))
}

/// `left` (which has the [`ONE`] column) joined with subquery `s`'s one row, as `alias`
/// with columns `value` and `one`.
fn join_one(left: LogicalPlan, s: &Subquery, alias: &str) -> DfResult<LogicalPlan> {
    let value = Expr::Column(Column::from(s.subquery.schema().qualified_field(0)));
    let right = LogicalPlanBuilder::from(s.subquery.as_ref().clone())
        .project(vec![value.alias("value"), lit(1i64).alias("one")])?
        .alias(alias)?
        .build()?;
    LogicalPlanBuilder::from(left)
        .join(
            right,
            JoinType::Inner,
            (
                vec![Column::from_name(ONE)],
                vec![Column::new(Some(alias), "one")],
            ),
            None,
        )?
        .build()
}
