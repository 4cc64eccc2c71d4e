//! Planning of ROW_NUMBER top-N and deduplication (design §6) into the runtime's `TopN`:
//! `Filter(rn <= N)` (or `rn < N + 1`, `rn = 1`, other conjuncts kept) over projections or
//! aliases of `Window(row_number() OVER (PARTITION BY p ORDER BY o))`, as DataFusion's
//! optimizer leaves `SELECT * FROM (SELECT *, row_number() OVER (..) AS rn FROM s) WHERE rn
//! <= N`. The filter notes the window and its limit, the walk goes on through the projections
//! above the window (so they plan as usual), and the window plans as the `TopN` whose output
//! is its input's columns and `rn`, updating, keyed by the partition columns and `rn` (the
//! partition columns alone when N = 1). Any other window function, or a ROW_NUMBER not
//! filtered this way, is refused at CREATE.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{BinaryExpr, Expr, Filter, LogicalPlan, Operator, Window};
use weir_stream::NodeSpec;

use super::{identity, refused, Out, Planner};
use crate::error::SqlError;

/// What a top-N query may look like, for refusals.
const SHAPE: &str = "a window function runs only as row_number() OVER (PARTITION BY .. ORDER \
     BY ..) filtered by rn <= N or rn = 1 in an outer query (top-N, deduplication)";

/// The window under `plan` through projections and aliases, and the index its `row_number()`
/// column has in `plan`'s schema (`None` when a projection drops or computes over it).
fn ranked(plan: &LogicalPlan) -> Option<(&Window, Option<usize>)> {
    match plan {
        LogicalPlan::Window(w) if w.window_expr.len() == 1 => {
            Some((w, w.schema.fields().len().checked_sub(1)))
        }
        LogicalPlan::SubqueryAlias(a) => ranked(&a.input),
        LogicalPlan::Projection(p) => {
            let (w, idx) = ranked(&p.input)?;
            let idx = idx.and_then(|idx| {
                p.expr.iter().position(|e| {
                    matches!(e.clone().unalias(), Expr::Column(c)
                        if p.input.schema().index_of_column(&c).ok() == Some(idx))
                })
            });
            Some((w, idx))
        }
        _ => None,
    }
}

/// Whether `f` filters the rank of a window: the Projection above it must not fuse it.
pub(super) fn is_ranked(f: &Filter) -> bool {
    ranked(&f.input).is_some()
}

/// `N` when `e` is `rn <= N`, `rn < N + 1`, `rn = 1` or their mirror, `rn` being column `idx`.
fn limit_of(e: &Expr, idx: usize, schema: &datafusion::common::DFSchema) -> Option<usize> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let is_rank = |e: &Expr| {
        let mut e = e;
        while let Expr::Cast(c) = e {
            e = c.expr.as_ref();
        }
        matches!(e, Expr::Column(c) if schema.index_of_column(c).ok() == Some(idx))
    };
    let number = |e: &Expr| match e {
        Expr::Literal(v, _) => match v.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(Some(n)) => Some(n),
            _ => None,
        },
        _ => None,
    };
    let (op, n) = if is_rank(left) {
        (*op, number(right)?)
    } else if is_rank(right) {
        (op.swap()?, number(left)?)
    } else {
        return None;
    };
    let n = match op {
        Operator::LtEq => n,
        Operator::Lt => n - 1,
        Operator::Eq if n == 1 => 1,
        _ => return None,
    };
    usize::try_from(n).ok().filter(|n| *n > 0)
}

impl Planner<'_> {
    /// A filter over a ranked window: notes the limit for [`Planner::window`], walks its
    /// input, then applies the other conjuncts. `None` when `f` is not a top-N filter.
    pub(super) fn top_n_filter(&mut self, f: &Filter) -> Result<Option<Out>, SqlError> {
        let Some((w, Some(idx))) = ranked(&f.input) else {
            return Ok(None);
        };
        let schema = f.input.schema();
        let conjuncts = split_conjunction(&f.predicate);
        let Some((at, limit)) = conjuncts
            .iter()
            .enumerate()
            .find_map(|(i, e)| limit_of(e, idx, schema).map(|n| (i, n)))
        else {
            return Ok(None);
        };
        let rest = conjunction(
            conjuncts
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, e)| (*e).clone()),
        );
        self.top_n = Some((std::ptr::from_ref(w) as usize, limit));
        let child = self.walk(&f.input);
        self.top_n = None;
        let child = child?;
        let Some(rest) = rest else {
            return Ok(Some(child));
        };
        let predicate = self.state.create_physical_expr(rest, schema)?;
        let node = self.map(
            child.node,
            child.arrow(),
            identity(&child.schema),
            Some(predicate),
            child.updating,
            child.key.clone().unwrap_or_default(),
        );
        Ok(Some(Out { node, ..child }))
    }

    /// A window: the `TopN` a filter above asked for, otherwise refused.
    pub(super) fn window(&mut self, w: &Window) -> Result<Out, SqlError> {
        let limit = match self.top_n {
            Some((addr, n)) if addr == std::ptr::from_ref(w) as usize => n,
            _ => return Err(refused("a window function (OVER)", SHAPE)),
        };
        let [expr] = w.window_expr.as_slice() else {
            return Err(refused("several window functions", SHAPE));
        };
        let Expr::WindowFunction(f) = expr.clone().unalias() else {
            return Err(refused(&format!("{expr}"), SHAPE));
        };
        let p = &f.params;
        if f.fun.name().to_lowercase() != "row_number"
            || !p.args.is_empty()
            || p.filter.is_some()
            || p.distinct
        {
            return Err(refused(&format!("{}()", f.fun.name()), SHAPE));
        }
        if p.order_by.is_empty() {
            return Err(refused(
                "row_number() without ORDER BY",
                "which rows come first would depend on arrival order",
            ));
        }
        let child = self.walk(&w.input)?;
        let input = w.input.schema();
        for f in input.fields() {
            if !weir_stream::state::codec::supports(f.data_type()) {
                return Err(SqlError::unsupported(format!(
                    "row_number(): column {} is {}, which a top-N's state cannot keep",
                    f.name(),
                    f.data_type()
                )));
            }
        }
        let partition = p
            .partition_by
            .iter()
            .map(|e| self.state.create_physical_expr(e.clone(), input))
            .collect::<Result<Vec<_>, _>>()?;
        let order = p
            .order_by
            .iter()
            .map(|s| {
                let opts = SortOptions {
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                };
                Ok((
                    self.state.create_physical_expr(s.expr.clone(), input)?,
                    opts,
                ))
            })
            .collect::<Result<Vec<_>, SqlError>>()?;
        let expiry = self.key_expiry(&w.input, &p.partition_by);
        let node = self.graph.add(NodeSpec::TopN {
            partition,
            order,
            limit,
            expiry,
        });
        let key = child.key.clone().unwrap_or_default();
        self.graph
            .connect_keyed(child.node, node, child.arrow(), !child.updating, key);
        // Keyed by the partition columns (where they are plain columns) and the rank.
        let width = input.fields().len();
        let mut key: Option<Vec<usize>> = p
            .partition_by
            .iter()
            .map(|e| match e {
                Expr::Column(c) => input.index_of_column(c).ok(),
                _ => None,
            })
            .collect();
        if limit > 1 {
            if let Some(k) = key.as_mut() {
                k.push(width);
            }
        }
        Ok(Out {
            node,
            schema: Arc::clone(&w.schema),
            updating: true,
            key,
            hidden: 0,
        })
    }
}
