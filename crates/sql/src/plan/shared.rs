//! Shared aggregates: two aggregates of one query that group the same input by the same
//! expressions and compute the same aggregates, in whatever order, are one operator. Nexmark
//! q5 counts the bids of each auction per HOP window twice (once for the counts, once for
//! their maximum per window), written with the GROUP BY columns in another order; planned
//! apart, every bid updated two identical sets of groups, and the state was kept twice.
//!
//! The second aggregate reads the first one's node: directly when its columns come in the
//! same order, else through a `Map` that puts them in its own (a projection: no state). It
//! may compute fewer aggregates than the first (their extra columns are not read).
//! Nothing else is shared (a source read twice already fans out from one node).

use std::sync::Arc;

use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;

use super::{Out, Planner};
use crate::error::SqlError;

/// What makes two aggregates the same: their input, and their group and aggregate
/// expressions as sets (an output column is found by its expression). One whose aggregates
/// are a subset of the other's reads the other's too, the extra columns projected away.
pub(super) struct Signature {
    input: Arc<LogicalPlan>,
    groups: Vec<Expr>,
    aggs: Vec<Expr>,
}

impl Signature {
    pub(super) fn of(a: &Aggregate) -> Signature {
        Signature {
            input: a.input.clone(),
            groups: a.group_expr.clone(),
            aggs: a.aggr_expr.clone(),
        }
    }

    /// For each column of `self`'s output (its groups, then its aggregates), the column of
    /// `planned`'s output computing the same; `None` unless both group alike and `planned`
    /// computes every aggregate of `self` (it may compute more: the optimizer drops the
    /// aggregates a query does not read, so two copies of one subquery can differ so).
    fn columns_in(&self, planned: &Signature) -> Option<Vec<usize>> {
        if self.input != planned.input || self.groups.len() != planned.groups.len() {
            return None;
        }
        let groups = matching(&self.groups, &planned.groups)?;
        let aggs = matching(&self.aggs, &planned.aggs)?;
        let offset = planned.groups.len();
        Some(
            groups
                .into_iter()
                .chain(aggs.into_iter().map(|i| i + offset))
                .collect(),
        )
    }
}

/// Where each of `wanted` is in `have` (each used once), if all are.
fn matching(wanted: &[Expr], have: &[Expr]) -> Option<Vec<usize>> {
    let mut used = vec![false; have.len()];
    wanted
        .iter()
        .map(|w| {
            let i = (0..have.len()).find(|&i| !used[i] && have[i] == *w)?;
            used[i] = true;
            Some(i)
        })
        .collect()
}

/// An aggregate planned in this query: its signature and what it planned.
pub(super) struct Planned {
    signature: Signature,
    out: Out,
}

impl Planned {
    pub(super) fn new(signature: Signature, out: &Out) -> Planned {
        Planned {
            signature,
            out: out.clone(),
        }
    }
}

impl Planner<'_> {
    /// The rows of `a` from an aggregate planned before that computes the same, if any.
    pub(super) fn reuse(
        &mut self,
        a: &Aggregate,
        signature: &Signature,
    ) -> Result<Option<Out>, SqlError> {
        let Some((columns, planned)) = self
            .aggregates
            .iter()
            .find_map(|p| Some((signature.columns_in(&p.signature)?, p.out.clone())))
        else {
            return Ok(None);
        };
        let key = Some((0..a.group_expr.len()).collect());
        let same_order = columns.iter().enumerate().all(|(i, &c)| i == c);
        let out = Out {
            schema: a.schema.clone(),
            key,
            ..planned.clone()
        };
        // Every edge leaving a node carries one schema: the same columns, named alike.
        if same_order && out.arrow() == planned.arrow() {
            return Ok(Some(out));
        }
        let input = planned.arrow();
        let exprs = columns
            .iter()
            .map(|&c| {
                let f = input.field(c);
                Arc::new(datafusion::physical_expr::expressions::Column::new(
                    f.name(),
                    c,
                )) as Arc<dyn PhysicalExpr>
            })
            .collect();
        let node = self.map(
            planned.node,
            input,
            exprs,
            None,
            planned.updating,
            planned.key.clone().unwrap_or_default(),
        );
        Ok(Some(Out { node, ..out }))
    }
}
