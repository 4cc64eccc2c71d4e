//! Interval joins in the stream planner (design §6, joins): an inner equi-join of two
//! append-only inputs whose condition bounds one side's event time by the other's row,
//!
//! ```sql
//! a JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts + INTERVAL '5' SECOND
//! -- or, with bounds from other columns of the row (Nexmark q4, q9):
//! auction A JOIN bid B ON A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
//! ```
//!
//! (or the same with `>=`/`<=`, `>`/`<`, either side on the left), where each side's time
//! column is the one its source declares `WATERMARK FOR`, runs as the runtime's
//! `IntervalJoin`: its output is append-only and each side's rows are freed once the other
//! side's watermark passes the upper bound they put on its time (`a.ts + 5 s`, `A.expires`;
//! for a bid, `B.date_time` bounds the auction's time), so state stays bounded. Otherwise
//! the join stays a regular `Join` (exact, its state unbounded).
//!
//! Every conjunct `x [± interval] {<=,<,>=,>} y [± interval]` between a column of each side,
//! one of them a watermarked time column, is a bound: on that time, by the other side's
//! column. The bounds only decide what is kept and matched; the whole condition stays the
//! residual filter, so the result is exact. They are widened by a millisecond each side
//! (the operator compares milliseconds; sources keep microseconds), and of several on one
//! column the tightest is kept.
//!
//! A regular inner join (one side updates, as Nexmark q7's per-window maximum does) whose
//! residual has such bounds between a watermark column or a window bound per side gets
//! them as `JoinTimeBounds` ([`Planner::residual_time_bounds`]): the join then frees each
//! row once no later row can match or retract it.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, JoinType, Operator};
use weir_stream::graph::{JoinTimeBounds, SideBounds, TimeBound};

use super::window::{trace_source, window_end_offset};
use super::{Out, Planner};

/// An interval join's time column per side (indices into each side's schema) and the
/// bounds each side's rows put on the other side's time.
pub(super) struct Interval {
    pub time: [usize; 2],
    pub bounds: [SideBounds; 2],
}

/// One side of a comparison: a side's timestamp column plus a constant offset (ns).
struct Term {
    side: usize,
    column: usize,
    offset_ns: i128,
}

impl Planner<'_> {
    /// The interval `j` bounds its inputs' times by, when it is an interval join over
    /// watermarked time columns of append-only inputs that frees at least one side's rows.
    pub(super) fn interval_of(&self, j: &Join, left: &Out, right: &Out) -> Option<Interval> {
        if j.join_type != JoinType::Inner || left.updating || right.updating {
            return None;
        }
        self.time_bounds(j, &|side, column| self.watermarked(j, side, column))
    }

    /// The time bounds of a regular inner join's residual (Nexmark q7), where either
    /// side may update: each side's time column is its source's watermark column (an
    /// append-only side) or a window bound of a windowed aggregate (its later rows' bound
    /// is above the watermark minus the bound's distance to the window's end), so the join
    /// frees a row once no later row can match or retract it (`JoinTimeBounds`).
    pub(super) fn residual_time_bounds(
        &self,
        j: &Join,
        left: &Out,
        right: &Out,
    ) -> Option<JoinTimeBounds> {
        if j.join_type != JoinType::Inner {
            return None;
        }
        let sides = [left, right];
        let lag_of = |side: usize, column: usize| -> Option<i64> {
            let plan = if side == 0 { &j.left } else { &j.right };
            if let Some(offset_us) = window_end_offset(plan, column) {
                // value + offset > watermark: value >= watermark - offset (ms, rounded up).
                return Some(offset_us.div_euclid(1_000) + 1);
            }
            let append_only = sides.get(side).is_some_and(|s| !s.updating);
            (append_only && self.watermarked(j, side, column)).then_some(0)
        };
        let interval = self.time_bounds(j, &|side, column| lag_of(side, column).is_some())?;
        let [lt, rt] = interval.time;
        let lag_ms = [lag_of(0, lt)?, lag_of(1, rt)?];
        let [l, r] = interval.bounds;
        Some(JoinTimeBounds {
            time: interval.time,
            lag_ms,
            upper: [l.upper, r.upper],
            updating: [left.updating, right.updating],
        })
    }

    /// The bounds `j`'s condition puts between one time column per side (those `is_time`
    /// accepts), when they free at least one side's rows.
    fn time_bounds(&self, j: &Join, is_time: &dyn Fn(usize, usize) -> bool) -> Option<Interval> {
        let filter = j.filter.as_ref()?;
        let mut time: [Option<usize>; 2] = [None, None];
        let mut bounds: [SideBounds; 2] = Default::default();
        for conjunct in split_conjunction(filter) {
            let Expr::BinaryExpr(BinaryExpr {
                left: l,
                op,
                right: r,
            }) = conjunct
            else {
                continue;
            };
            // `a >= b` as `b <= a`: every bound is `small <= big`.
            let (small, big) = match op {
                Operator::LtEq | Operator::Lt => (l.as_ref(), r.as_ref()),
                Operator::GtEq | Operator::Gt => (r.as_ref(), l.as_ref()),
                _ => continue,
            };
            let (Some(small), Some(big)) = (self.term(j, small), self.term(j, big)) else {
                continue;
            };
            if small.side == big.side {
                continue;
            }
            if is_time(small.side, small.column) {
                // small.t <= big.c + (big.off - small.off): the upper bound big's row puts
                // on small's time.
                if *time[small.side].get_or_insert(small.column) != small.column {
                    return None; // Two time columns on one side: not one interval.
                }
                let ms = ms(big.offset_ns - small.offset_ns, true);
                tighten(&mut bounds[big.side].upper, big.column, ms, i64::min);
            }
            if is_time(big.side, big.column) {
                // big.t >= small.c + (small.off - big.off): the lower bound small's row puts
                // on big's time.
                if *time[big.side].get_or_insert(big.column) != big.column {
                    return None;
                }
                let ms = ms(small.offset_ns - big.offset_ns, false);
                tighten(&mut bounds[small.side].lower, small.column, ms, i64::max);
            }
        }
        let [Some(lt), Some(rt)] = time else {
            return None;
        };
        if bounds.iter().all(|b| b.upper.is_empty()) {
            return None; // Nothing would ever be freed: a regular join is as good.
        }
        Some(Interval {
            time: [lt, rt],
            bounds,
        })
    }

    /// Whether `column` of side `side` of `j` is the column its source declares `WATERMARK
    /// FOR` (so the input's watermark is on it).
    fn watermarked(&self, j: &Join, side: usize, column: usize) -> bool {
        let plan = if side == 0 { &j.left } else { &j.right };
        let Some((source, name)) = trace_source(plan, column) else {
            return false;
        };
        let declared = self
            .sources
            .iter()
            .find(|d| d.name == source)
            .and_then(|d| d.create.watermark.as_ref())
            .map(|(c, _)| c.as_str());
        if declared != Some(name.as_str()) {
            tracing::debug!(side, source, column = name, "not the watermark column");
            return false;
        }
        true
    }

    /// `col`, `col + interval` or `col - interval` over one side's timestamp column.
    fn term(&self, j: &Join, e: &Expr) -> Option<Term> {
        let (column, offset_ns) = match e {
            Expr::Column(c) => (c, 0),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let Expr::Column(c) = left.as_ref() else {
                    return None;
                };
                let Expr::Literal(v, _) = right.as_ref() else {
                    return None;
                };
                let ns = interval_ns(v)?;
                match op {
                    Operator::Plus => (c, ns),
                    Operator::Minus => (c, -ns),
                    _ => return None,
                }
            }
            Expr::Cast(c) => return self.term(j, &c.expr),
            _ => return None,
        };
        let (side, index) = match j.left.schema().index_of_column(column) {
            Ok(i) => (0, i),
            Err(_) => (1, j.right.schema().index_of_column(column).ok()?),
        };
        let plan = if side == 0 { &j.left } else { &j.right };
        let field = plan.schema().field(index);
        if !matches!(
            field.data_type(),
            datafusion::arrow::datatypes::DataType::Timestamp(..)
        ) {
            return None;
        }
        Some(Term {
            side,
            column: index,
            offset_ns,
        })
    }
}

/// Nanoseconds as milliseconds, widened by one: rounded up (`up`, an upper bound) or down.
fn ms(ns: i128, up: bool) -> i64 {
    let v = if up {
        (ns + 999_999).div_euclid(1_000_000) + 1
    } else {
        ns.div_euclid(1_000_000) - 1
    };
    i64::try_from(v).unwrap_or(if up { i64::MAX } else { i64::MIN })
}

/// Adds the bound `column + ms` to `list`, or tightens the one on the same column by `pick`
/// (`min` for upper bounds, `max` for lower ones).
fn tighten(list: &mut Vec<TimeBound>, column: usize, ms: i64, pick: fn(i64, i64) -> i64) {
    match list.iter_mut().find(|b| b.column == column) {
        Some(b) => b.offset_ms = pick(b.offset_ms, ms),
        None => list.push(TimeBound {
            column,
            offset_ms: ms,
        }),
    }
}

/// A fixed-length interval or duration literal in nanoseconds (months have no fixed length).
fn interval_ns(v: &ScalarValue) -> Option<i128> {
    const DAY_NS: i128 = 86_400_000_000_000;
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i128::from(i.days) * DAY_NS + i128::from(i.nanoseconds))
        }
        ScalarValue::IntervalDayTime(Some(i)) => {
            Some(i128::from(i.days) * DAY_NS + i128::from(i.milliseconds) * 1_000_000)
        }
        ScalarValue::DurationSecond(Some(s)) => Some(i128::from(*s) * 1_000_000_000),
        ScalarValue::DurationMillisecond(Some(s)) => Some(i128::from(*s) * 1_000_000),
        ScalarValue::DurationMicrosecond(Some(s)) => Some(i128::from(*s) * 1_000),
        ScalarValue::DurationNanosecond(Some(s)) => Some(i128::from(*s)),
        _ => None,
    }
}
