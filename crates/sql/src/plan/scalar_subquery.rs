//! Uncorrelated scalar subqueries in continuous queries: `WHERE amount > (SELECT avg(amount)
//! FROM orders)`. DataFusion's optimizer turns a correlated scalar subquery into a join with
//! an aggregate grouped by the correlated columns, which a stream runs as it is; an
//! uncorrelated one it leaves in place, for the batch engine to evaluate once before the
//! rest. A stream has no "before": the subquery's value changes as its input arrives. So a
//! subquery whose value is one column of a global aggregate (no GROUP BY: one row in a batch
//! query) is left-joined to the rows that use it on a constant key:
//!
//! ```text
//! Filter(amount > (<subquery>))      Projection(outer columns)
//!   input                    ==>       Filter(amount > __weir_sq2.__weir_sq2_value)
//!                                        Left Join(__weir_one1 = __weir_sq2.__weir_sq2_one)
//!                                          Projection(input columns, 1 AS __weir_one1)
//!                                          SubqueryAlias(__weir_sq2): Projection(value, 1)
//! ```
//!
//! The join keeps the aggregate's row and re-emits the rows that use it when it changes (a
//! retraction of each old pairing and the new one), so a view over it updates as the batch
//! answer would. A streaming global aggregate has no row before its first input (nor once
//! every input row is retracted) where a batch one has a row over empty input: the left
//! join gives NULL then, which is what `sum`, `avg`, `min`, `max` and the like give over
//! nothing, and a `count` reads `coalesce(value, 0)` (as a CASE). Other subqueries (filtered after the
//! aggregate, grouped, computed from the aggregate, or of an aggregate whose value over
//! nothing is something else) stay in place and are refused at CREATE. The join holds every
//! outer row (its state is its input's), as any join without a time bound does.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::{
    lit, when, Expr, Filter, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, Subquery,
};

/// Aggregates whose value over no rows is NULL (what a left join's missing row gives).
const NULL_WHEN_EMPTY: &[&str] = &[
    "sum",
    "avg",
    "mean",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "first_value",
    "last_value",
    "median",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "var_pop",
    "var_samp",
];

/// A subquery's value over no rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Empty {
    Null,
    /// `count`: 0.
    Zero,
}

/// `plan` with every uncorrelated scalar subquery over a global aggregate joined in (see the
/// module's documentation); other scalar subqueries stay.
pub(super) fn join_uncorrelated(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    join_uncorrelated_from(plan, &mut 0)
}

/// [`join_uncorrelated`], numbering the names it adds after `next`.
fn join_uncorrelated_from(plan: LogicalPlan, next: &mut usize) -> DfResult<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::Filter(f) if any_joinable(std::slice::from_ref(&f.predicate))? => {
            let (joined, mut exprs) = join(&f.input, vec![f.predicate.clone()], next)?;
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
            let (joined, exprs) = join(&p.input, p.expr.clone(), next)?;
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
        if e.exists(|e| Ok(joinable(e).is_some()))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An uncorrelated scalar subquery whose value is a global aggregate's column: what it gives
/// over no rows.
fn joinable(e: &Expr) -> Option<Empty> {
    match e {
        Expr::ScalarSubquery(s) if s.outer_ref_columns.is_empty() => {
            value_over_nothing(&s.subquery, 0)
        }
        _ => None,
    }
}

/// Column `i` of `plan` over no input, when `plan` is a global aggregate (no GROUP BY) under
/// projections of plain columns and aliases, and the aggregate's value over nothing is known.
fn value_over_nothing(plan: &LogicalPlan, i: usize) -> Option<Empty> {
    let unalias = |e: &Expr| match e {
        Expr::Alias(a) => a.expr.as_ref().clone(),
        other => other.clone(),
    };
    match plan {
        LogicalPlan::Projection(p) => match unalias(p.expr.get(i)?) {
            Expr::Column(c) => {
                value_over_nothing(&p.input, p.input.schema().index_of_column(&c).ok()?)
            }
            _ => None,
        },
        LogicalPlan::SubqueryAlias(s) => value_over_nothing(&s.input, i),
        LogicalPlan::Aggregate(a) if a.group_expr.is_empty() => {
            match unalias(a.aggr_expr.get(i)?) {
                Expr::AggregateFunction(f) if f.params.filter.is_none() => {
                    let name = f.func.name().to_ascii_lowercase();
                    if name == "count" {
                        Some(Empty::Zero)
                    } else if NULL_WHEN_EMPTY.contains(&name.as_str()) {
                        Some(Empty::Null)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `input` with a constant column, left-joined with each joinable subquery of `exprs`, and
/// `exprs` reading the joined values instead of the subqueries.
fn join(
    input: &Arc<LogicalPlan>,
    exprs: Vec<Expr>,
    next: &mut usize,
) -> DfResult<(LogicalPlan, Vec<Expr>)> {
    *next += 1;
    let one = format!("__weir_one{next}");
    let mut columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    columns.push(lit(1i64).alias(&one));
    let mut joined = LogicalPlanBuilder::from(input.as_ref().clone())
        .project(columns)?
        .build()?;
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        let e = e.transform_up(|e| {
            let Some(empty) = joinable(&e) else {
                return Ok(Transformed::no(e));
            };
            let Expr::ScalarSubquery(s) = e else {
                return Ok(Transformed::no(e));
            };
            *next += 1;
            let alias = format!("__weir_sq{next}");
            joined = join_one(joined.clone(), &one, &s, &alias, next)?;
            let value = Expr::Column(Column::new(Some(alias.clone()), format!("{alias}_value")));
            Ok(Transformed::yes(match empty {
                // coalesce(value, 0), as the CASE the optimizer makes of it (this plan is
                // past the optimizer, and DataFusion evaluates no unsimplified coalesce).
                Empty::Zero => when(value.clone().is_null(), lit(0i64)).otherwise(value)?,
                Empty::Null => value,
            }))
        })?;
        out.push(e.data);
    }
    Ok((joined, out))
}

/// `left` (which has the constant column `one`) left-joined with subquery `s`'s row, as
/// `alias` with columns `<alias>_value` and `<alias>_one`; subqueries inside `s` first.
fn join_one(
    left: LogicalPlan,
    one: &str,
    s: &Subquery,
    alias: &str,
    next: &mut usize,
) -> DfResult<LogicalPlan> {
    let sub = join_uncorrelated_from(s.subquery.as_ref().clone(), next)?;
    let value = Expr::Column(Column::from(sub.schema().qualified_field(0)));
    let right = LogicalPlanBuilder::from(sub)
        .project(vec![
            value.alias(format!("{alias}_value")),
            lit(1i64).alias(format!("{alias}_one")),
        ])?
        .alias(alias)?
        .build()?;
    LogicalPlanBuilder::from(left)
        .join(
            right,
            JoinType::Left,
            (
                vec![Column::from_name(one)],
                vec![Column::new(Some(alias), format!("{alias}_one"))],
            ),
            None,
        )?
        .build()
}
