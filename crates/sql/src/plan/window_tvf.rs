//! Window table functions in FROM (design §5.2), in RisingWave's dialect:
//!
//! ```sql
//! TUMBLE(src, time_col, size)          -- src's columns, window_start, window_end
//! HOP(src, time_col, slide, size)      -- a row in each of the size / slide windows holding it
//! ```
//!
//! Before DataFusion plans a statement, each such table factor is rewritten into a subquery
//! over `src` (aliased as the function's alias, else as `src`), so a window's meaning is
//! defined once for the streaming planner, ad-hoc queries and the test oracle alike:
//!
//! - TUMBLE: `SELECT *, weir_window_start(t, size, size, 0) AS window_start,
//!   weir_window_end(t, size, size, 0) AS window_end FROM src`;
//! - HOP: the `UNION ALL` of that select for k = 0 .. size / slide - 1 with `slide` and `k`
//!   (size must be a multiple of slide, at most [`MAX_HOPS`] windows per row).
//!
//! `weir_window_start(t, slide, size, k)` is the start of the k-th latest window of `size`,
//! aligned on `slide` from the epoch, that holds `t` (`floor(t / slide) * slide - k *
//! slide`); `weir_window_end` adds `size`. The streaming planner
//! ([`super::window`]) recognizes group columns computed by these two functions.
//!
//! `SESSION(src, time_col, gap [, key_col ...])` (Weir's syntax; sessions per key, as Flink's
//! `SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), gap)`): rows of one key whose event
//! times are less than `gap` apart share a session `[first, last + gap)`. A batch query
//! computes it with window functions (a row starts a session when its predecessor by time is
//! `gap` or more before it; a running sum numbers the sessions; `min`/`max` over each give
//! its bounds). A continuous query gets `weir_session_start(t, gap, keys..) = t` and
//! `weir_session_end(..) = t + gap`, each row's own session, which the `SessionAggregate`
//! operator merges as rows arrive.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, PrimitiveArray};
use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{exec_err, plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::SqlError;

/// The start of a row's window (a timestamp of the time column's type).
pub const START: &str = "weir_window_start";
/// The end of a row's window (exclusive).
pub const END: &str = "weir_window_end";
/// A row's own session start, in a continuous query (its event time).
pub const SESSION_START: &str = "weir_session_start";
/// A row's own session end, in a continuous query (its event time plus the gap).
pub const SESSION_END: &str = "weir_session_end";
/// The most windows HOP may put one row in (size / slide).
pub const MAX_HOPS: i64 = 64;

/// Registers `weir_window_start` and `weir_window_end` in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(WindowBound::new(false)));
    ctx.register_udf(ScalarUDF::from(WindowBound::new(true)));
    ctx.register_udf(ScalarUDF::from(SessionBound::new(false)));
    ctx.register_udf(ScalarUDF::from(SessionBound::new(true)));
}

/// Rewrites every TUMBLE, HOP and SESSION table factor of `statement` into its subquery;
/// `streaming` for a continuous query (SESSION's rows then carry their own sessions).
pub fn rewrite(statement: &mut Statement, streaming: bool) -> Result<(), SqlError> {
    match statement.visit(&mut Rewriter { streaming }) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Rewriter {
    streaming: bool,
}

impl VisitorMut for Rewriter {
    type Break = SqlError;

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<SqlError> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let function = name.to_string().to_lowercase();
        if !matches!(function.as_str(), "tumble" | "hop" | "session") {
            return ControlFlow::Continue(());
        }
        let alias = alias.as_ref().map(|a| a.name.to_string());
        match window_subquery(&function, &args.args, alias, self.streaming) {
            Ok(new) => {
                *factor = new;
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    }
}

/// The subquery a window table function stands for.
fn window_subquery(
    function: &str,
    args: &[FunctionArg],
    alias: Option<String>,
    streaming: bool,
) -> Result<TableFactor, SqlError> {
    let usage = match function {
        "tumble" => "TUMBLE(source, time_column, INTERVAL 'size')",
        "hop" => "HOP(source, time_column, INTERVAL 'slide', INTERVAL 'size')",
        _ => "SESSION(source, time_column, INTERVAL 'gap' [, key_column ...])",
    };
    let bad = |what: &str| SqlError::Invalid(format!("{usage}: {what}"));
    let exprs = args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            _ => Err(bad("arguments are positional expressions")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let column = |e: &&Expr, what: &str| match *e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Ok(e.to_string()),
        other => Err(bad(&format!("{what} must be a column, not {other}"))),
    };
    let (src, time, rest) = match exprs.as_slice() {
        [src, time, rest @ ..] => (*src, column(time, "the time column")?, rest),
        _ => return Err(bad(&format!("{} arguments", exprs.len()))),
    };
    let src = match src {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => src.to_string(),
        other => {
            return Err(bad(&format!(
                "the first argument must name a source or view, not {other}"
            )))
        }
    };
    let name = alias.unwrap_or_else(|| src.rsplit('.').next().unwrap_or(&src).to_string());
    let inner = match (function, rest) {
        ("tumble", [size]) => hops(&src, &time, size, size).map_err(|e| bad(&e))?,
        ("hop", [slide, size]) => hops(&src, &time, slide, size).map_err(|e| bad(&e))?,
        ("session", [gap, keys @ ..]) => {
            interval_ns(gap).map_err(|e| bad(&e))?;
            let keys = keys
                .iter()
                .map(|k| column(k, "a key"))
                .collect::<Result<Vec<_>, _>>()?;
            session(&src, &time, &gap.to_string(), &keys, streaming)
        }
        _ => return Err(bad(&format!("{} arguments", exprs.len()))),
    };
    let sql = format!("SELECT * FROM ({inner}) AS {name}");
    // The generic dialect: the same SQL as PostgreSQL's, plus `* EXCLUDE (..)`.
    let query = Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| bad(&format!("{e} (in {sql})")))?;
    let select = match *query.body {
        datafusion::sql::sqlparser::ast::SetExpr::Select(s) => s,
        _ => return Err(bad("internal: unexpected rewrite")),
    };
    select
        .from
        .into_iter()
        .next()
        .map(|t| t.relation)
        .ok_or_else(|| bad("internal: unexpected rewrite"))
}

/// TUMBLE (slide = size) and HOP: a select per window holding each row.
fn hops(src: &str, time: &str, slide: &Expr, size: &Expr) -> Result<String, String> {
    let slide_ns = interval_ns(slide)?;
    let size_ns = interval_ns(size)?;
    if size_ns % slide_ns != 0 {
        return Err("the size must be a multiple of the slide".into());
    }
    let hops = i64::try_from(size_ns / slide_ns).unwrap_or(i64::MAX);
    if hops > MAX_HOPS {
        return Err(format!(
            "size / slide is {hops}: at most {MAX_HOPS} windows per row"
        ));
    }
    let (slide, size) = (slide.to_string(), size.to_string());
    let branches: Vec<String> = (0..hops)
        .map(|k| {
            format!(
                "SELECT *, {START}({time}, {slide}, {size}, {k}) AS window_start, \
                 {END}({time}, {slide}, {size}, {k}) AS window_end FROM {src}"
            )
        })
        .collect();
    Ok(branches.join(" UNION ALL "))
}

/// SESSION: window functions for a batch query, each row's own session for a stream.
fn session(src: &str, time: &str, gap: &str, keys: &[String], streaming: bool) -> String {
    if streaming {
        let args: String = keys.iter().map(|k| format!(", {k}")).collect();
        return format!(
            "SELECT *, {SESSION_START}({time}, {gap}{args}) AS window_start, \
             {SESSION_END}({time}, {gap}{args}) AS window_end FROM {src}"
        );
    }
    let by = |extra: &str| {
        let cols: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .chain([extra])
            .filter(|c| !c.is_empty())
            .collect();
        if cols.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {}", cols.join(", "))
        }
    };
    let (per_key, per_session) = (by(""), by("__weir_session"));
    format!(
        "SELECT * EXCLUDE (__weir_new, __weir_session), \
         min({time}) OVER ({per_session}) AS window_start, \
         max({time}) OVER ({per_session}) + {gap} AS window_end FROM (\
         SELECT *, sum(__weir_new) OVER ({per_key} ORDER BY {time}) AS __weir_session FROM (\
         SELECT *, CASE WHEN lag({time}) OVER ({per_key} ORDER BY {time}) IS NULL \
         OR {time} >= lag({time}) OVER ({per_key} ORDER BY {time}) + {gap} THEN 1 ELSE 0 END \
         AS __weir_new FROM {src}) AS __weir_rows) AS __weir_sessions"
    )
}

/// A fixed interval (`INTERVAL '1' MINUTE`, `INTERVAL '90 seconds'` or `'1 minute'`) in
/// nanoseconds; months (of varying length) are refused.
pub fn interval_ns(e: &Expr) -> Result<i128, String> {
    let text = match e {
        Expr::Interval(iv) => {
            let value = match iv.value.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    Value::Number(n, _) => n.clone(),
                    other => return Err(format!("{other} is not an interval")),
                },
                other => return Err(format!("{other} is not a constant interval")),
            };
            if iv.last_field.is_some() || iv.fractional_seconds_precision.is_some() {
                return Err(format!("{e}: write the interval as INTERVAL '5 minutes'"));
            }
            match &iv.leading_field {
                Some(f) => format!("{value} {f}"),
                None => value,
            }
        }
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            other => return Err(format!("{other} is not an interval")),
        },
        other => return Err(format!("{other} is not a constant interval")),
    };
    let iv = parse_interval_month_day_nano(&text).map_err(|e| format!("{text:?}: {e}"))?;
    if iv.months != 0 {
        return Err(format!(
            "{text:?}: months and years vary in length; use days"
        ));
    }
    let ns = i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.nanoseconds);
    if ns <= 0 {
        return Err(format!("{text:?}: an interval must be positive"));
    }
    Ok(ns)
}

/// `weir_window_start` / `weir_window_end`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowBound {
    end: bool,
    signature: Signature,
}

impl WindowBound {
    fn new(end: bool) -> WindowBound {
        WindowBound {
            end,
            signature: Signature::any(4, Volatility::Immutable),
        }
    }
}

/// Nanoseconds of a window interval argument.
pub fn interval_arg_ns(v: &ScalarValue) -> Option<i128> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(iv)) if iv.months == 0 => {
            Some(i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.nanoseconds))
        }
        ScalarValue::IntervalDayTime(Some(iv)) => {
            Some(i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.milliseconds) * 1_000_000)
        }
        _ => None,
    }
}

impl ScalarUDFImpl for WindowBound {
    fn name(&self) -> &str {
        if self.end {
            END
        } else {
            START
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first() {
            Some(t @ DataType::Timestamp(..)) => Ok(t.clone()),
            Some(other) => plan_err!(
                "a window's time column must be a TIMESTAMP (with a WATERMARK), not {other}"
            ),
            None => plan_err!("{} takes 4 arguments", self.name()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [time, slide, size, k] = args.args.as_slice() else {
            return exec_err!("{} takes 4 arguments", self.name());
        };
        let scalar = |v: &ColumnarValue| match v {
            ColumnarValue::Scalar(s) => Some(s.clone()),
            ColumnarValue::Array(_) => None,
        };
        let (Some(slide), Some(size), Some(ScalarValue::Int64(Some(k)))) = (
            scalar(slide).as_ref().and_then(interval_arg_ns),
            scalar(size).as_ref().and_then(interval_arg_ns),
            scalar(k),
        ) else {
            return exec_err!("{}: slide, size and k must be constants", self.name());
        };
        let array = time.to_array(args.number_rows)?;
        let out: ArrayRef = match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => {
                bounds::<TimestampSecondType>(&array, 1_000_000_000, slide, size, k, self.end)?
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                bounds::<TimestampMillisecondType>(&array, 1_000_000, slide, size, k, self.end)?
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                bounds::<TimestampMicrosecondType>(&array, 1_000, slide, size, k, self.end)?
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                bounds::<TimestampNanosecondType>(&array, 1, slide, size, k, self.end)?
            }
            other => return exec_err!("{}: {other} is not a timestamp", self.name()),
        };
        Ok(match time {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(out),
        })
    }
}

/// `weir_session_start(t, gap, keys..)` = t and `weir_session_end(..)` = t + gap: a row's
/// own session in a continuous query, merged by the `SessionAggregate` operator.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionBound {
    end: bool,
    signature: Signature,
}

impl SessionBound {
    fn new(end: bool) -> SessionBound {
        SessionBound {
            end,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SessionBound {
    fn name(&self) -> &str {
        if self.end {
            SESSION_END
        } else {
            SESSION_START
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first() {
            Some(t @ DataType::Timestamp(..)) => Ok(t.clone()),
            Some(other) => plan_err!(
                "a window's time column must be a TIMESTAMP (with a WATERMARK), not {other}"
            ),
            None => plan_err!("{} takes the time column and the gap", self.name()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let (Some(time), Some(ColumnarValue::Scalar(gap))) = (args.args.first(), args.args.get(1))
        else {
            return exec_err!("{} takes the time column and the gap", self.name());
        };
        let Some(gap) = interval_arg_ns(gap) else {
            return exec_err!("{}: the gap must be a constant interval", self.name());
        };
        if !self.end {
            return Ok(time.clone());
        }
        let array = time.to_array(args.number_rows)?;
        let shifted = datafusion::arrow::compute::kernels::numeric::add(
            &array,
            &ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano::new(
                    0,
                    0,
                    i64::try_from(gap).unwrap_or(i64::MAX),
                ),
            ))
            .to_scalar()?,
        )?;
        Ok(match time {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&shifted, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(shifted),
        })
    }
}

/// Each timestamp's window bound, in the array's unit (`unit_ns` nanoseconds).
fn bounds<T: ArrowTimestampType>(
    array: &ArrayRef,
    unit_ns: i128,
    slide_ns: i128,
    size_ns: i128,
    k: i64,
    end: bool,
) -> DfResult<ArrayRef> {
    if slide_ns % unit_ns != 0 || size_ns % unit_ns != 0 {
        return exec_err!("a window interval finer than its time column's unit");
    }
    let (slide, size) = (
        i64::try_from(slide_ns / unit_ns).unwrap_or(i64::MAX),
        i64::try_from(size_ns / unit_ns).unwrap_or(i64::MAX),
    );
    let Some(times) = array.as_any().downcast_ref::<PrimitiveArray<T>>() else {
        return exec_err!("unexpected time array {}", array.data_type());
    };
    let out: PrimitiveArray<T> = times
        .iter()
        .map(|t| {
            t.and_then(|t| {
                let start = t
                    .div_euclid(slide)
                    .checked_mul(slide)?
                    .checked_sub(k.checked_mul(slide)?)?;
                if end {
                    start.checked_add(size)
                } else {
                    Some(start)
                }
            })
        })
        .collect();
    let tz = match array.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    Ok(Arc::new(out.with_timezone_opt(tz)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse, WeirStatement};

    fn rewritten(sql: &str) -> Result<String, SqlError> {
        let Some(WeirStatement::Sql(mut s)) = parse(sql).expect("parse").pop() else {
            panic!("not a query: {sql}");
        };
        rewrite(&mut s, false)?;
        Ok(s.to_string())
    }

    #[test]
    fn tumble_and_hop_become_subqueries_and_bad_arguments_are_refused() {
        let t = rewritten(
            "SELECT window_start, count(*) FROM TUMBLE(bids, ts, INTERVAL '1' MINUTE) \
             GROUP BY window_start",
        )
        .expect("tumble");
        assert!(t.contains("weir_window_start(ts, INTERVAL '1' MINUTE, INTERVAL '1' MINUTE, 0) AS window_start"), "{t}");
        assert!(t.contains(") AS bids GROUP BY"), "{t}");
        let h = rewritten(
            "SELECT * FROM HOP(bids, ts, INTERVAL '1' MINUTE, INTERVAL '3 minutes') AS h",
        )
        .expect("hop");
        assert_eq!(h.matches("UNION ALL").count(), 2, "{h}");
        assert!(h.contains(", 2) AS window_end FROM bids) AS h"), "{h}");
        for (sql, says) in [
            (
                "SELECT * FROM HOP(b, ts, INTERVAL '2' MINUTE, INTERVAL '3' MINUTE)",
                "multiple",
            ),
            ("SELECT * FROM TUMBLE(b, ts, INTERVAL '1' MONTH)", "months"),
            ("SELECT * FROM TUMBLE(b, ts)", "2 arguments"),
            (
                "SELECT * FROM TUMBLE(b, ts + 1, INTERVAL '1' SECOND)",
                "must be a column",
            ),
            (
                "SELECT * FROM HOP(b, ts, INTERVAL '1' SECOND, INTERVAL '1' HOUR)",
                "at most",
            ),
            ("SELECT * FROM SESSION(b, ts, INTERVAL '1' MONTH)", "months"),
            (
                "SELECT * FROM SESSION(b, ts, INTERVAL '1' SECOND, k + 1)",
                "a key must be",
            ),
        ] {
            let e = rewritten(sql).expect_err(sql);
            assert!(e.to_string().contains(says), "{sql}: {e}");
        }
    }

    #[tokio::test]
    async fn window_bounds_align_on_the_slide_from_the_epoch() {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx
            .sql(
                "SELECT weir_window_start(TIMESTAMP '2026-01-01 10:07:30', \
                 INTERVAL '5' MINUTE, INTERVAL '10' MINUTE, 1) AS s, \
                 weir_window_end(TIMESTAMP '2026-01-01 10:07:30', \
                 INTERVAL '5' MINUTE, INTERVAL '10' MINUTE, 1) AS e",
            )
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let b = &batches[0];
        let show = |c: usize| {
            datafusion::arrow::util::display::array_value_to_string(b.column(c), 0).expect("show")
        };
        assert_eq!(show(0), "2026-01-01T10:00:00");
        assert_eq!(show(1), "2026-01-01T10:10:00");
    }
}
