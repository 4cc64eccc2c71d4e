//! HOP sliced into panes (design §6, windows): `HOP(src, t, slide, size)` is the `UNION ALL`
//! of `size / slide` selects over `src` ([`super::window_tvf`]), the k-th putting each row
//! in the k-th latest window holding it. Planned as written, a window aggregate over it
//! updates `size / slide` groups per row. When the aggregate only groups by the window
//! bounds (never computes with them), the union is not planned: the aggregate reads the
//! branch with k = 0 (each row once, in its latest window, whose start is the row's pane of
//! the slide) and slices into panes ([`HopSpec`], `weir_stream::ops::hop`), one update per
//! row; the windows are merged from their panes when they are emitted.
//!
//! The branches must be the same select but for k (0 .. size / slide - 1, one each), with
//! the bound functions only as whole output columns of its top projection; the aggregate's
//! arguments and filters must not read a bound, and a bound grouped by must be the plain
//! column. Anything else plans the union as before.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use weir_stream::graph::HopSpec;

use super::window_tvf::{interval_arg_ns, END, START};

/// The branch the aggregate reads instead of the union, and how its windows slice.
pub(super) struct Panes<'a> {
    pub branch: &'a LogicalPlan,
    pub spec: HopSpec,
}

/// A call of a window bound function: (slide ns, size ns, k).
fn bound_call(e: &Expr) -> Option<(i128, i128, i64)> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if !matches!(f.func.name(), START | END) {
        return None;
    }
    let literal = |i: usize| match f.args.get(i) {
        Some(Expr::Literal(v, _)) => Some(v),
        _ => None,
    };
    let k = match literal(3)? {
        ScalarValue::Int64(Some(k)) => *k,
        other => other.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(k) => k,
            _ => None,
        })?,
    };
    Some((
        interval_arg_ns(literal(1)?)?,
        interval_arg_ns(literal(2)?)?,
        k,
    ))
}

fn mentions_bound(e: &Expr) -> bool {
    e.exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if matches!(f.func.name(), START | END))))
        .unwrap_or(true)
}

/// `e` with every bound call's k set to 0.
fn at_k0(e: &Expr) -> Option<Expr> {
    e.clone()
        .transform(|e| {
            Ok(match e {
                Expr::ScalarFunction(mut f) if matches!(f.func.name(), START | END) => {
                    if let Some(k) = f.args.get_mut(3) {
                        *k = Expr::Literal(ScalarValue::Int64(Some(0)), None);
                    }
                    Transformed::yes(Expr::ScalarFunction(f))
                }
                other => Transformed::no(other),
            })
        })
        .ok()
        .map(|t| t.data)
}

/// One branch: its projection's expressions with k = 0, its input, its k, slide and size,
/// and the output columns that are bounds.
struct Branch<'a> {
    plan: &'a LogicalPlan,
    exprs: Vec<Expr>,
    input: &'a LogicalPlan,
    k: i64,
    slide_ns: i128,
    size_ns: i128,
    columns: Vec<usize>,
}

fn branch(plan: &LogicalPlan) -> Option<Branch<'_>> {
    let mut p = plan;
    while let LogicalPlan::SubqueryAlias(a) = p {
        p = &a.input;
    }
    let LogicalPlan::Projection(proj) = p else {
        return None;
    };
    let below = proj
        .input
        .exists(|node| Ok(node.expressions().iter().any(mentions_bound)))
        .unwrap_or(true);
    if below {
        return None;
    }
    let mut call: Option<(i128, i128, i64)> = None;
    let mut columns = Vec::new();
    for (i, e) in proj.expr.iter().enumerate() {
        let inner = e.clone().unalias_nested().data;
        match bound_call(&inner) {
            Some(c) => {
                if call.is_some_and(|seen| seen != c) {
                    return None;
                }
                call = Some(c);
                columns.push(i);
            }
            None if mentions_bound(&inner) => return None,
            None => {}
        }
    }
    let (slide_ns, size_ns, k) = call?;
    Some(Branch {
        plan,
        exprs: proj.expr.iter().map(at_k0).collect::<Option<_>>()?,
        input: &proj.input,
        k,
        slide_ns,
        size_ns,
        columns,
    })
}

/// The pane form of aggregate `a`, when its input is a HOP that slices (see the module's
/// doc).
pub(super) fn panes(a: &Aggregate) -> Option<Panes<'_>> {
    let mut input = a.input.as_ref();
    while let LogicalPlan::SubqueryAlias(s) = input {
        input = &s.input;
    }
    let LogicalPlan::Union(u) = input else {
        return None;
    };
    let branches = u
        .inputs
        .iter()
        .map(|b| branch(b))
        .collect::<Option<Vec<_>>>()?;
    let first = branches.iter().find(|b| b.k == 0)?;
    let n = i64::try_from(branches.len()).ok()?;
    if n < 2 || first.size_ns != first.slide_ns * i128::from(n) {
        return None;
    }
    let mut ks: Vec<i64> = branches.iter().map(|b| b.k).collect();
    ks.sort_unstable();
    if ks != (0..n).collect::<Vec<_>>() {
        return None;
    }
    let same = |b: &Branch| {
        b.exprs == first.exprs
            && b.input == first.input
            && (b.slide_ns, b.size_ns) == (first.slide_ns, first.size_ns)
    };
    if !branches.iter().all(same) {
        return None;
    }
    // The slide in microseconds, a whole number of the bound columns' unit.
    if first.slide_ns % 1_000 != 0 {
        return None;
    }
    let slide_us = i64::try_from(first.slide_ns / 1_000).ok()?;
    for c in &first.columns {
        let unit_us = match first.plan.schema().field(*c).data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => 1_000_000,
            DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000,
            DataType::Timestamp(_, _) => 1,
            _ => return None,
        };
        if slide_us % unit_us != 0 {
            return None;
        }
    }
    // Group by the bound columns as they are; read them nowhere else.
    let schema = a.input.schema();
    let is_bound = |c: &datafusion::common::Column| {
        schema
            .index_of_column(c)
            .is_ok_and(|i| first.columns.contains(&i))
    };
    let mut mask = 0u64;
    for (i, e) in a.group_expr.iter().enumerate() {
        match e.clone().unalias_nested().data {
            Expr::Column(c) if is_bound(&c) => {
                if i >= 64 {
                    return None;
                }
                mask |= 1 << i;
            }
            other => {
                if other.column_refs().into_iter().any(is_bound) {
                    return None;
                }
            }
        }
    }
    if mask == 0
        || a.aggr_expr
            .iter()
            .any(|e| e.column_refs().into_iter().any(is_bound))
    {
        return None;
    }
    Some(Panes {
        branch: first.plan,
        spec: HopSpec {
            slide_us,
            panes: u32::try_from(n).ok()?,
            columns: mask,
        },
    })
}
