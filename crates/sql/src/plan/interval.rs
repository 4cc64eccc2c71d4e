//! Interval joins in the stream planner (design §6, joins): an inner equi-join of two
//! append-only inputs whose condition bounds one side's event time by the other's,
//!
//! ```sql
//! a JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts + INTERVAL '5' SECOND
//! ```
//!
//! (or the same with `>=`/`<=`, `>`/`<`, either side on the left), where each time column is
//! the one its source declares `WATERMARK FOR`, runs as the runtime's `IntervalJoin`: its
//! output is append-only and each side's rows are freed once the other side's watermark
//! passes the range they can match, so state stays bounded. Otherwise the join stays a
//! regular `Join` (exact, its state unbounded).
//!
//! The bounds only decide what is kept and matched; the whole condition stays the residual
//! filter, so the result is exact: bounds are taken from every conjunct of the shape
//! `time [± interval] op time [± interval]` (the tightest of each direction) and widened by a
//! millisecond each side (the operator compares milliseconds; sources keep microseconds).

use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, JoinType, Operator};

use super::window::trace_source;
use super::{Out, Planner};

/// An interval join's time column per side (indices into each side's schema) and the
/// bounds of `right.t - left.t` in milliseconds.
pub(super) struct Interval {
    pub time: [usize; 2],
    pub bounds: (i64, i64),
}

/// One side of a comparison: a side's time column plus a constant offset (ns).
struct Term {
    side: usize,
    column: usize,
    offset_ns: i128,
}

impl Planner<'_> {
    /// The interval `j` bounds its inputs' times by, when it is an interval join over
    /// watermarked time columns of append-only inputs.
    pub(super) fn interval_of(&self, j: &Join, left: &Out, right: &Out) -> Option<Interval> {
        if j.join_type != JoinType::Inner || left.updating || right.updating {
            return None;
        }
        let filter = j.filter.as_ref()?;
        let mut time: [Option<usize>; 2] = [None, None];
        let (mut lower, mut upper): (Option<i128>, Option<i128>) = (None, None);
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
            for t in [&small, &big] {
                if *time[t.side].get_or_insert(t.column) != t.column {
                    return None; // Two time columns on one side: not one interval.
                }
            }
            if small.side == 0 {
                // l + s <= r + b: r - l >= s - b.
                let v = small.offset_ns - big.offset_ns;
                lower = Some(lower.map_or(v, |x| x.max(v)));
            } else {
                // r + s <= l + b: r - l <= b - s.
                let v = big.offset_ns - small.offset_ns;
                upper = Some(upper.map_or(v, |x| x.min(v)));
            }
        }
        let (lower, upper) = (lower?, upper?);
        let [Some(lt), Some(rt)] = time else {
            return None;
        };
        if lower > upper {
            return None; // Matches nothing: left to the regular join, which is exact.
        }
        for (side, plan, column) in [(0, &j.left, lt), (1, &j.right, rt)] {
            let (source, name) = trace_source(plan, column)?;
            let declared = self
                .sources
                .iter()
                .find(|d| d.name == source)
                .and_then(|d| d.create.watermark.as_ref())
                .map(|(c, _)| c.as_str());
            if declared != Some(name.as_str()) {
                tracing::debug!(
                    side,
                    source,
                    column = name,
                    "interval join without watermark"
                );
                return None;
            }
        }
        let ms = |ns: i128, up: bool| {
            let v = if up {
                (ns + 999_999).div_euclid(1_000_000) + 1
            } else {
                ns.div_euclid(1_000_000) - 1
            };
            i64::try_from(v).unwrap_or(if up { i64::MAX } else { i64::MIN })
        };
        Some(Interval {
            time: [lt, rt],
            bounds: (ms(lower, false), ms(upper, true)),
        })
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
