//! Windowed aggregates in the stream planner (design §5.2, §6): a GROUP BY one of whose
//! columns is a window bound computed by [`super::window_tvf`]'s functions (the
//! `window_start` or `window_end` of TUMBLE or HOP) becomes a `WindowAggregate`, whose state
//! the watermark frees; with EMIT ON WINDOW CLOSE its output is append-only. A SESSION's
//! bounds make a `SessionAggregate` (EMIT ON WINDOW CLOSE only; GROUP BY its key columns).
//! Also the source's watermark from its `WATERMARK FOR col AS col - INTERVAL '..'` clause.
//!
//! Window columns are found by tracing a group column down the optimized plan (through
//! projections, filters, aliases and the UNION ALL of HOP's branches) to the function that
//! computed it; its time argument is traced the same way to a source column, which must be
//! the one the source declares its watermark on.

use std::sync::Arc;
use std::time::Duration;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as SqlExpr};
use weir_stream::graph::{AggSpec, HopSpec, SessionSpec, WatermarkSpec, WindowSpec};
use weir_stream::{Graph, NodeSpec};

use super::window_tvf::{interval_arg_ns, interval_ns, END, SESSION_END, SESSION_START, START};
use super::{refused, Out, Planner};
use crate::error::SqlError;
use crate::source::SourceDef;

/// Idle timeout of a source partition when `watermark.idle.timeout` is not set.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// What computes a window bound column.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// TUMBLE or HOP: the window's end is the column plus `end_offset_us`.
    Window { end_offset_us: i64 },
    /// SESSION: per row its own `[t, t + gap)` (start or end), merged by the operator.
    Session {
        start: bool,
        gap_us: i64,
        keys: Vec<String>,
    },
}

/// A window bound and the time column it was computed from: (source, column), if traced.
type Bound = (Kind, Option<(String, String)>);

impl Planner<'_> {
    /// The hook of `Planner::aggregate`: `Some` when `a` groups by a window bound, planned
    /// as a `WindowAggregate` (TUMBLE, HOP) or `SessionAggregate` over `child`.
    pub(super) fn window_aggregate(
        &mut self,
        a: &Aggregate,
        child: &Out,
        group: &[Arc<dyn PhysicalExpr>],
        aggs: &[AggSpec],
        hop: Option<HopSpec>,
    ) -> Result<Option<Out>, SqlError> {
        let bounds = find_bounds(a);
        let Some((first, (kind, time))) = bounds.first().cloned() else {
            return Ok(None);
        };
        if child.updating {
            return Err(refused(
                "a window over an updating input",
                "windows aggregate append-only streams (sources and append-only views)",
            ));
        }
        self.check_watermark(time.as_ref())?;
        let node = match kind {
            Kind::Window { end_offset_us } => NodeSpec::WindowAggregate {
                group: group.to_vec(),
                aggs: aggs.to_vec(),
                window: WindowSpec {
                    end_column: first,
                    end_offset_us,
                    emit_on_close: self.emit_on_window_close,
                    hop,
                },
            },
            Kind::Session { gap_us, keys, .. } => {
                if !self.emit_on_window_close {
                    return Err(SqlError::unsupported(
                        "SESSION windows need EMIT ON WINDOW CLOSE: a session's row is \
                         emitted once, when the watermark passes its end",
                    ));
                }
                let (mut start_column, mut end_column) = (None, None);
                for (i, (k, _)) in &bounds {
                    match k {
                        Kind::Session { start: true, .. } => start_column = Some(*i),
                        Kind::Session { start: false, .. } => end_column = Some(*i),
                        Kind::Window { .. } => {
                            return Err(SqlError::unsupported(
                                "GROUP BY mixes a SESSION window with another window",
                            ))
                        }
                    }
                }
                let mut grouped: Vec<String> = Vec::new();
                for (i, e) in a.group_expr.iter().enumerate() {
                    if bounds.iter().any(|(b, _)| *b == i) {
                        continue;
                    }
                    let column = match e.clone().unalias_nested().data {
                        Expr::Column(c) => a
                            .input
                            .schema()
                            .index_of_column(&c)
                            .ok()
                            .and_then(|idx| trace_source(&a.input, idx)),
                        _ => None,
                    };
                    grouped.push(column.map_or_else(|| e.to_string(), |(_, c)| c));
                }
                let (mut want, mut got) = (keys.clone(), grouped);
                want.sort();
                got.sort();
                if want != got {
                    return Err(SqlError::unsupported(format!(
                        "a SESSION window's GROUP BY is its key columns ({}) plus window_start \
                         and/or window_end; this one groups by [{}] besides them",
                        keys.join(", "),
                        got.join(", ")
                    )));
                }
                NodeSpec::SessionAggregate {
                    group: group.to_vec(),
                    aggs: aggs.to_vec(),
                    session: SessionSpec {
                        start_column,
                        end_column,
                        gap_us,
                    },
                }
            }
        };
        let updating =
            matches!(&node, NodeSpec::WindowAggregate { window, .. } if !window.emit_on_close);
        let node = self.graph.add(node);
        self.graph.connect_keyed(
            child.node,
            node,
            child.arrow(),
            true,
            child.key.clone().unwrap_or_default(),
        );
        self.windows += 1;
        Ok(Some(Out {
            node,
            schema: a.schema.clone(),
            updating,
            key: Some((0..a.group_expr.len()).collect()),
            hidden: 0,
        }))
    }

    /// The window's time column must carry its source's watermark, so windows close.
    fn check_watermark(&self, time: Option<&(String, String)>) -> Result<(), SqlError> {
        let Some((source, column)) = time else {
            return Err(SqlError::unsupported(
                "the window's time column must be a column of a source that declares a \
                 WATERMARK FOR it",
            ));
        };
        let declared = self
            .sources
            .iter()
            .find(|d| &d.name == source)
            .and_then(|d| d.create.watermark.as_ref())
            .map(|(c, _)| c.clone());
        if declared.as_deref() != Some(column.as_str()) {
            return Err(SqlError::unsupported(format!(
                "a window over {source}.{column} needs a watermark on that column, so windows \
                 can close: declare WATERMARK FOR {column} AS {column} - INTERVAL '..' in \
                 CREATE SOURCE {source}{}",
                match declared {
                    Some(c) => format!(" (its watermark is on {c})"),
                    None => String::new(),
                }
            )));
        }
        Ok(())
    }
}

/// SESSION's rows carry their own one-row sessions until a `SessionAggregate` merges them:
/// a continuous query that uses SESSION without grouping by its bounds is refused.
pub(super) fn check_sessions(plan: &LogicalPlan, graph: &Graph) -> Result<(), SqlError> {
    let mut used = false;
    plan.apply(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    used |= matches!(f.func.name(), SESSION_START | SESSION_END);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    let grouped = graph
        .nodes
        .iter()
        .any(|n| matches!(n, NodeSpec::SessionAggregate { .. }));
    if used && !grouped {
        return Err(SqlError::unsupported(
            "a continuous query over SESSION(..) must aggregate its sessions: GROUP BY the \
             session's key columns and window_start and/or window_end, with EMIT ON WINDOW \
             CLOSE",
        ));
    }
    Ok(())
}

/// The group expressions of `a` that are window bounds, by index.
fn find_bounds(a: &Aggregate) -> Vec<(usize, Bound)> {
    a.group_expr
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let bound = match e.clone().unalias_nested().data {
                Expr::Column(c) => {
                    let idx = a.input.schema().index_of_column(&c).ok()?;
                    trace_bound(&a.input, idx)?
                }
                Expr::ScalarFunction(f) => bound_of(f.func.name(), &f.args, &a.input)?,
                _ => return None,
            };
            Some((i, bound))
        })
        .collect()
}

/// What computes column `idx` of `plan`'s output, if it is a window bound.
fn trace_bound(plan: &LogicalPlan, idx: usize) -> Option<Bound> {
    match plan {
        LogicalPlan::Projection(p) => match p.expr.get(idx)?.clone().unalias_nested().data {
            Expr::Column(c) => {
                let i = p.input.schema().index_of_column(&c).ok()?;
                trace_bound(&p.input, i)
            }
            Expr::ScalarFunction(f) => bound_of(f.func.name(), &f.args, &p.input),
            _ => None,
        },
        LogicalPlan::Filter(f) => trace_bound(&f.input, idx),
        LogicalPlan::SubqueryAlias(a) => trace_bound(&a.input, idx),
        LogicalPlan::Union(u) => {
            // HOP's branches: each must be a bound of the same kind.
            let mut found = u.inputs.iter().map(|i| trace_bound(i, idx));
            let first = found.next()??;
            found
                .all(|b| b.as_ref().is_some_and(|b| b.0 == first.0))
                .then_some(first)
        }
        _ => None,
    }
}

/// A call of one of [`super::window_tvf`]'s bound functions over `input`.
fn bound_of(name: &str, args: &[Expr], input: &LogicalPlan) -> Option<Bound> {
    let literal_ns = |i: usize| match args.get(i) {
        Some(Expr::Literal(v, _)) => interval_arg_ns(v),
        _ => None,
    };
    let column_of = |e: &Expr| match e {
        Expr::Column(c) => input
            .schema()
            .index_of_column(c)
            .ok()
            .and_then(|i| trace_source(input, i)),
        _ => None,
    };
    let kind = match name {
        START | END => {
            let size = literal_ns(2)?;
            Kind::Window {
                end_offset_us: if name == START {
                    i64::try_from(size / 1_000).ok()?
                } else {
                    0
                },
            }
        }
        SESSION_START | SESSION_END => Kind::Session {
            start: name == SESSION_START,
            gap_us: i64::try_from(literal_ns(1)? / 1_000).ok()?,
            keys: args
                .iter()
                .skip(2)
                .map(|k| column_of(k).map_or_else(|| k.to_string(), |(_, c)| c))
                .collect(),
        },
        _ => return None,
    };
    Some((kind, column_of(args.first()?)))
}

/// The (source, column) that column `idx` of `plan` passes through unchanged.
pub(super) fn trace_source(plan: &LogicalPlan, idx: usize) -> Option<(String, String)> {
    match plan {
        LogicalPlan::Projection(p) => match p.expr.get(idx)?.clone().unalias_nested().data {
            Expr::Column(c) => {
                let i = p.input.schema().index_of_column(&c).ok()?;
                trace_source(&p.input, i)
            }
            _ => None,
        },
        LogicalPlan::Filter(f) => trace_source(&f.input, idx),
        LogicalPlan::SubqueryAlias(a) => trace_source(&a.input, idx),
        LogicalPlan::Union(u) => trace_source(u.inputs.first()?, idx),
        LogicalPlan::TableScan(s) => Some((
            s.table_name.table().to_string(),
            s.projected_schema.field(idx).name().clone(),
        )),
        _ => None,
    }
}

/// The watermark of `def`'s `WATERMARK FOR col AS col [- INTERVAL '..']` clause, with its
/// `watermark.idle.timeout` (default 5 s).
pub(super) fn watermark_spec(def: &SourceDef) -> Result<Option<WatermarkSpec>, SqlError> {
    let Some((column, expr)) = &def.create.watermark else {
        return Ok(None);
    };
    let bad = |why: &str| {
        SqlError::unsupported(format!(
            "source {}: WATERMARK FOR {column} AS {expr}: {why}",
            def.name
        ))
    };
    let is_column = |e: &SqlExpr| match e {
        SqlExpr::Identifier(i) => crate::parser::normalize(i) == *column,
        _ => false,
    };
    let delay_ns = match expr {
        e if is_column(e) => 0,
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if is_column(left.as_ref()) => interval_ns(right).map_err(|e| bad(&e))?,
        _ => return Err(bad(&format!("write it as {column} - INTERVAL '5' SECOND"))),
    };
    let index = def
        .schema
        .index_of(column)
        .map_err(|_| bad("no such column"))?;
    let idle_timeout = match def.create.options.get("watermark.idle.timeout") {
        None => IDLE_TIMEOUT,
        Some(text) => parse_duration(text).ok_or_else(|| {
            SqlError::Invalid(format!(
                "source {}: watermark.idle.timeout = '{text}': a duration like '5s', '500ms' \
                 or '1m'",
                def.name
            ))
        })?,
    };
    Ok(Some(WatermarkSpec {
        column: index,
        // Rounded up: never a shorter delay than declared.
        delay_ms: i64::try_from((delay_ns + 999_999) / 1_000_000).unwrap_or(i64::MAX),
        idle_timeout,
    }))
}

/// `500ms`, `5s`, `1m`, `1h` or a bare number of milliseconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim().to_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// When column `idx` of `plan`'s output is a TUMBLE or HOP bound, computed over a source
/// column that `watermarked(source, column)` accepts or grouped by a window aggregate
/// ([`window_end_offset`]), what added to it (µs) gives the window's end.
pub(super) fn window_bound_end(
    plan: &LogicalPlan,
    idx: usize,
    watermarked: impl Fn(&str, &str) -> bool,
) -> Option<i64> {
    match trace_bound(plan, idx) {
        Some((Kind::Window { end_offset_us }, Some((source, column))))
            if watermarked(&source, &column) =>
        {
            Some(end_offset_us)
        }
        _ => window_end_offset(plan, idx),
    }
}

/// When column `idx` of `plan`'s output is a window bound grouped by a TUMBLE or HOP
/// aggregate (directly, or through aggregates grouping by it, projections, filters and
/// aliases), what added to it (µs) gives the window's end: its rows change no more once the
/// watermark passes that end. A windowed join frees its state by it.
pub(super) fn window_end_offset(plan: &LogicalPlan, idx: usize) -> Option<i64> {
    match plan {
        LogicalPlan::Projection(p) => match p.expr.get(idx)?.clone().unalias_nested().data {
            Expr::Column(c) => {
                window_end_offset(&p.input, p.input.schema().index_of_column(&c).ok()?)
            }
            _ => None,
        },
        LogicalPlan::Filter(f) => window_end_offset(&f.input, idx),
        LogicalPlan::SubqueryAlias(a) => window_end_offset(&a.input, idx),
        LogicalPlan::Aggregate(a) if idx < a.group_expr.len() => {
            if let Some((_, (Kind::Window { end_offset_us }, _))) =
                find_bounds(a).into_iter().find(|(i, _)| *i == idx)
            {
                return Some(end_offset_us);
            }
            // An aggregate grouping by a windowed column changes only as its input does.
            match a.group_expr.get(idx)?.clone().unalias_nested().data {
                Expr::Column(c) => {
                    window_end_offset(&a.input, a.input.schema().index_of_column(&c).ok()?)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("100"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }
}
