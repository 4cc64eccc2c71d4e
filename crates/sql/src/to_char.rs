//! PostgreSQL's `to_char(timestamp | date, template)`, replacing DataFusion's (whose
//! templates are chrono's `%Y-%m-%d`) in every Weir session, ad-hoc and continuous queries
//! alike: users come from psql and write `to_char(ts, 'YYYY-MM-DD')`, which DataFusion's
//! takes for a constant string. DataFusion's stays reachable as `date_format`.
//!
//! A template is parsed once per distinct string ([`Template::parse`]) into literal text and
//! fields, then each value is split into its civil date and time (in its column's time
//! zone when it has one) and the fields written. The patterns (PostgreSQL's "Template
//! Patterns for Date/Time Formatting"; the exact-case keyword rules are PostgreSQL's too,
//! so `mm` is the month and `Mm` literal text):
//!
//! - year: `YYYY`, `YYY`, `YY`, `Y`, `Y,YYY`; ISO year `IYYY`, `IYY`, `IY`, `I`; era `AD`,
//!   `BC`, `A.D.`, `B.C.` (and lower case); century `CC`;
//! - month: `MM`, `MONTH`/`Month`/`month` (blank-padded to 9), `MON`/`Mon`/`mon`,
//!   `RM`/`rm` (Roman); quarter `Q`;
//! - day: `DD`, `DDD` (of year), `IDDD` (ISO), `D` (Sunday 1), `ID` (Monday 1),
//!   `DAY`/`Day`/`day` (blank-padded to 9), `DY`/`Dy`/`dy`; weeks `W` (of month), `WW`,
//!   `IW` (ISO); Julian day `J`;
//! - time: `HH`, `HH12`, `HH24`, `MI`, `SS`, `MS`, `US`, `FF1`..`FF6`, `SSSS`/`SSSSS`
//!   (seconds past midnight), `AM`/`PM`/`A.M.`/`P.M.` (and lower case);
//! - zone: `TZ`/`tz` (`UTC`, or the offset for another zone: abbreviations such as `CEST`
//!   are not known; empty for a timestamp without time zone, as in PostgreSQL), `OF`,
//!   `TZH`, `TZM`;
//! - modifiers: `FM` (no zero or blank padding on the next field), `TH`/`th` after a number
//!   (ordinal suffix), `FX` and `TM` (accepted, no effect: output is always C-locale
//!   English); `"quoted text"` is copied (`\"` is a quote), other text too.
//!
//! Numbers (`to_char(125, '999')`: integers, NUMERIC, REAL, DOUBLE PRECISION) follow
//! PostgreSQL's numeric patterns ([`number`]: `9 0 . , D G S MI PL SG PR L FM TH V EEEE
//! RN`), intervals the patterns above over their fields ([`interval`]). Other argument
//! types are refused at planning; a template PostgreSQL refuses fails with its message.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Weekday,
};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{exec_err, plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers PostgreSQL's `to_char` in `ctx`, in place of DataFusion's.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(ToChar::new()));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

impl ToChar {
    fn new() -> ToChar {
        ToChar {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// What `to_char` formats: a timestamp or date (kept), an interval (kept), a number (kept;
/// a half float as REAL); `None` for anything else.
fn formatted_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Date64
        | DataType::Interval(_)
        | DataType::Duration(_)
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..) => Some(t.clone()),
        DataType::Float16 => Some(DataType::Float32),
        DataType::Null => Some(DataType::Int64),
        _ => None,
    }
}

const USAGE: &str = "to_char takes a timestamp, date, interval or number and a template";

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let [value, template] = arg_types else {
            return plan_err!("{USAGE}");
        };
        let Some(value) = formatted_type(value) else {
            return plan_err!(
                "to_char formats timestamps, dates, intervals and numbers with PostgreSQL's \
                 template patterns; {value} is not supported"
            );
        };
        match template {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                Ok(vec![value, DataType::Utf8])
            }
            other => plan_err!("to_char: the template is {other}, not text"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first() {
            Some(t) if formatted_type(t).is_some() => Ok(DataType::Utf8),
            Some(other) => plan_err!(
                "to_char formats timestamps, dates, intervals and numbers with PostgreSQL's \
                 template patterns; {other} is not supported"
            ),
            None => plan_err!("{USAGE}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value, template] = args.args.as_slice() else {
            return exec_err!("{USAGE}");
        };
        let scalar = matches!(
            (value, template),
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
        );
        let values = value.to_array(args.number_rows)?;
        let templates = template.to_array(args.number_rows)?;
        let out = format_arrays(&values, &templates)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// Formats each value with its row's template (NULL when either is NULL).
fn format_arrays(values: &ArrayRef, templates: &ArrayRef) -> DfResult<ArrayRef> {
    let Some(templates) = templates.as_string_opt::<i32>() else {
        return exec_err!(
            "to_char: the template is {}, not text",
            templates.data_type()
        );
    };
    if number::is_number(values.data_type()) {
        return number::format_array(values, templates);
    }
    if interval::is_interval(values.data_type()) {
        return interval::format_array(values, templates);
    }
    let zone = match values.data_type() {
        DataType::Timestamp(_, Some(tz)) => match Tz::from_str(tz) {
            Ok(z) => Some(z),
            Err(e) => return exec_err!("to_char: time zone {tz}: {e}"),
        },
        _ => None,
    };
    format_rows(
        values,
        templates,
        16,
        |text| Ok(Template::parse(text)),
        |template, i| {
            let Some(utc) = naive(values, i) else {
                return exec_err!("to_char: value {i} is out of the supported range");
            };
            let stamp = match &zone {
                Some(z) => {
                    let offset = z.offset_from_utc_datetime(&utc).fix();
                    Stamp::new(utc + offset, Some(offset))
                }
                None => Stamp::new(utc, None),
            };
            Ok(template.format(&stamp))
        },
    )
}

/// `format(template, row)` of every row whose value and template are both non-NULL (NULL
/// otherwise), the rows' templates parsed by `parse` once per run of equal templates (a column
/// of one template, the usual case, parses it once). `bytes`: a guess of each result's length.
pub(super) fn format_rows<T>(
    values: &ArrayRef,
    templates: &StringArray,
    bytes: usize,
    parse: impl Fn(&str) -> DfResult<T>,
    mut format: impl FnMut(&T, usize) -> DfResult<String>,
) -> DfResult<ArrayRef> {
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * bytes);
    let mut parsed: Option<(&str, T)> = None;
    for i in 0..values.len() {
        if values.is_null(i) || templates.is_null(i) {
            out.append_null();
            continue;
        }
        let text = templates.value(i);
        let template = match parsed {
            Some((t, ref template)) if t == text => template,
            _ => &parsed.insert((text, parse(text)?)).1,
        };
        out.append_value(format(template, i)?);
    }
    Ok(Arc::new(out.finish()))
}

/// Row `i` of a date or timestamp array as a civil date-time (UTC for a zoned timestamp).
fn naive(values: &ArrayRef, i: usize) -> Option<NaiveDateTime> {
    use datafusion::arrow::array::temporal_conversions::as_datetime;
    match values.data_type() {
        DataType::Date32 => {
            as_datetime::<Date32Type>(values.as_primitive::<Date32Type>().value(i).into())
        }
        DataType::Date64 => as_datetime::<Date64Type>(values.as_primitive::<Date64Type>().value(i)),
        DataType::Timestamp(TimeUnit::Second, _) => as_datetime::<TimestampSecondType>(
            values.as_primitive::<TimestampSecondType>().value(i),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => as_datetime::<TimestampMillisecondType>(
            values.as_primitive::<TimestampMillisecondType>().value(i),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => as_datetime::<TimestampMicrosecondType>(
            values.as_primitive::<TimestampMicrosecondType>().value(i),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => as_datetime::<TimestampNanosecondType>(
            values.as_primitive::<TimestampNanosecondType>().value(i),
        ),
        _ => None,
    }
}

/// A value to format: its local date-time and, for a zoned timestamp, its UTC offset.
pub struct Stamp {
    at: NaiveDateTime,
    offset: Option<FixedOffset>,
}

impl Stamp {
    pub fn new(at: NaiveDateTime, offset: Option<FixedOffset>) -> Stamp {
        Stamp { at, offset }
    }

    /// From a zoned date-time (tests, and callers holding chrono values).
    pub fn zoned<T: TimeZone>(at: &DateTime<T>) -> Stamp {
        Stamp::new(at.naive_local(), Some(at.offset().fix()))
    }
}

/// How a name is written: `MONTH`, `Month` or `month`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Upper,
    Capital,
    Lower,
}

/// One template pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    YearComma,
    Year(u8),
    IsoYear(u8),
    Era { lower: bool, dots: bool },
    Century,
    Month,
    MonthName(Case),
    MonthAbbrev(Case),
    Roman(Case),
    Quarter,
    DayOfMonth,
    DayOfYear,
    IsoDayOfYear,
    DayOfWeek,
    IsoDayOfWeek,
    DayName(Case),
    DayAbbrev(Case),
    WeekOfMonth,
    WeekOfYear,
    IsoWeek,
    Julian,
    Hour12,
    Hour24,
    Minute,
    Second,
    Millis,
    Micros,
    Fraction(u8),
    SecondsOfDay,
    Meridiem { lower: bool, dots: bool },
    Zone { lower: bool },
    Offset,
    OffsetHours,
    OffsetMinutes,
}

#[path = "to_char_interval.rs"]
pub mod interval;
#[path = "to_char_keywords.rs"]
mod keywords;
#[path = "to_char_number.rs"]
pub mod number;
use keywords::{KEYWORDS, PREFIXES};

#[derive(Clone, Debug, PartialEq)]
enum Item {
    Text(String),
    Field {
        field: Field,
        /// `FM`: no padding.
        fill: bool,
        /// `TH` (`Some(false)`) or `th` (`Some(true)`): an ordinal suffix.
        ordinal: Option<bool>,
    },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    items: Vec<Item>,
}

impl Template {
    pub fn parse(text: &str) -> Template {
        let mut items = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut fill = false;
        while let Some(c) = rest.chars().next() {
            if let Some(&(p, f)) = PREFIXES.iter().find(|(p, _)| rest.starts_with(p)) {
                fill |= f;
                rest = &rest[p.len()..];
                continue;
            }
            let keyword = KEYWORDS
                .iter()
                .filter(|(k, _)| rest.starts_with(k))
                .max_by_key(|(k, _)| k.len());
            if let Some(&(k, field)) = keyword {
                rest = &rest[k.len()..];
                let ordinal = if !numeric(field) {
                    None
                } else if rest.starts_with("TH") {
                    Some(false)
                } else if rest.starts_with("th") {
                    Some(true)
                } else {
                    None
                };
                if ordinal.is_some() {
                    rest = &rest[2..];
                }
                if !literal.is_empty() {
                    items.push(Item::Text(std::mem::take(&mut literal)));
                }
                items.push(Item::Field {
                    field,
                    fill,
                    ordinal,
                });
                fill = false;
                continue;
            }
            take_literal(c, &mut rest, &mut literal);
        }
        if !literal.is_empty() {
            items.push(Item::Text(literal));
        }
        Template { items }
    }

    pub fn format(&self, stamp: &Stamp) -> String {
        self.format_with(|out, field, fill| {
            write_field(out, field, fill, stamp);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {})
    }

    /// The template with each field written by `write` (its output, the field, `FM`), an
    /// ordinal suffix after a field marked `TH`/`th`.
    fn format_with<E>(
        &self,
        mut write: impl FnMut(&mut String, Field, bool) -> Result<(), E>,
    ) -> Result<String, E> {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Text(t) => out.push_str(t),
                Item::Field {
                    field,
                    fill,
                    ordinal,
                } => {
                    let start = out.len();
                    write(&mut out, *field, *fill)?;
                    if let Some(lower) = ordinal {
                        let n = out[start..].trim().parse::<i64>().unwrap_or(0);
                        let s = suffix(n);
                        out.push_str(&if *lower {
                            s.to_string()
                        } else {
                            s.to_uppercase()
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Whether a field is a number (may take `TH`).
fn numeric(f: Field) -> bool {
    !matches!(
        f,
        Field::Era { .. }
            | Field::MonthName(_)
            | Field::MonthAbbrev(_)
            | Field::Roman(_)
            | Field::DayName(_)
            | Field::DayAbbrev(_)
            | Field::Meridiem { .. }
            | Field::Zone { .. }
            | Field::Offset
            | Field::OffsetHours
            | Field::OffsetMinutes
    )
}

/// The English ordinal suffix of `n`.
fn suffix(n: i64) -> &'static str {
    let n = n.abs();
    if (11..=13).contains(&(n % 100)) {
        return "th";
    }
    match n % 10 {
        1 => "st",
        2 => "nd",
        3 => "rd",
        _ => "th",
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const ROMAN: [&str; 12] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
];

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// `name` in `case`, cut to `len` characters (abbreviations), blank-padded to `pad`.
fn name(out: &mut String, name: &str, case: Case, len: usize, pad: usize) {
    let cut: String = name.chars().take(len).collect();
    let cased = match case {
        Case::Upper => cut.to_uppercase(),
        Case::Capital => cut,
        Case::Lower => cut.to_lowercase(),
    };
    let _ = write!(out, "{cased:<pad$}");
}

/// `n` zero-padded to `width` digits (a sign first), or bare in fill mode.
fn number(out: &mut String, n: i64, width: usize, fill: bool) {
    if fill {
        let _ = write!(out, "{n}");
    } else if n < 0 {
        let _ = write!(out, "-{:0width$}", n.unsigned_abs());
    } else {
        let _ = write!(out, "{n:0width$}");
    }
}

fn write_field(out: &mut String, field: Field, fill: bool, s: &Stamp) {
    let at = s.at;
    let date = at.date();
    // PostgreSQL's years have no 0: 1 BC is year 0 in chrono.
    let astronomical = i64::from(date.year());
    let year = if astronomical <= 0 {
        1 - astronomical
    } else {
        astronomical
    };
    let iso = date.iso_week();
    let iso_year = i64::from(iso.year());
    let pad = |width: usize| if fill { 0 } else { width };
    let secs = i64::from(at.num_seconds_from_midnight());
    let nanos = i64::from(at.nanosecond() % 1_000_000_000);
    let offset = s.offset.map_or(0, |o| i64::from(o.local_minus_utc()));
    match field {
        Field::YearComma => {
            let _ = write!(out, "{},{:03}", year / 1000, year % 1000);
        }
        Field::Year(4) => number(out, year, 4, fill),
        Field::Year(n) => number(out, year % 10_i64.pow(u32::from(n)), usize::from(n), fill),
        Field::IsoYear(4) => number(out, iso_year, 4, fill),
        Field::IsoYear(n) => number(
            out,
            iso_year % 10_i64.pow(u32::from(n)),
            usize::from(n),
            fill,
        ),
        Field::Era { lower, dots } => {
            let era = match (astronomical > 0, dots) {
                (true, false) => "AD",
                (true, true) => "A.D.",
                (false, false) => "BC",
                (false, true) => "B.C.",
            };
            out.push_str(&if lower {
                era.to_lowercase()
            } else {
                era.to_string()
            });
        }
        Field::Century => {
            let c = if astronomical > 0 {
                (astronomical + 99) / 100
            } else {
                -((99 - (astronomical - 1)) / 100)
            };
            number(out, c, 2, fill);
        }
        Field::Month => number(out, i64::from(date.month()), 2, fill),
        Field::MonthName(case) => {
            name(out, MONTHS[date.month0() as usize], case, 9, pad(9));
        }
        Field::MonthAbbrev(case) => name(out, MONTHS[date.month0() as usize], case, 3, 0),
        Field::Roman(case) => name(out, ROMAN[date.month0() as usize], case, 4, pad(4)),
        Field::Quarter => number(out, i64::from(date.month0() / 3 + 1), 1, fill),
        Field::DayOfMonth => number(out, i64::from(date.day()), 2, fill),
        Field::DayOfYear => number(out, i64::from(date.ordinal()), 3, fill),
        Field::IsoDayOfYear => {
            let d = (iso.week() - 1) * 7 + date.weekday().number_from_monday();
            number(out, i64::from(d), 3, fill);
        }
        Field::DayOfWeek => number(out, i64::from(date.weekday().number_from_sunday()), 1, fill),
        Field::IsoDayOfWeek => number(out, i64::from(date.weekday().number_from_monday()), 1, fill),
        Field::DayName(case) => name(out, day_name(date.weekday()), case, 9, pad(9)),
        Field::DayAbbrev(case) => name(out, day_name(date.weekday()), case, 3, 0),
        Field::WeekOfMonth => number(out, i64::from((date.day() - 1) / 7 + 1), 1, fill),
        Field::WeekOfYear => number(out, i64::from((date.ordinal() - 1) / 7 + 1), 2, fill),
        Field::IsoWeek => number(out, i64::from(iso.week()), 2, fill),
        Field::Julian => {
            // Days since 24 November 4714 BC (proleptic Gregorian): 2000-01-01 is 2451545.
            number(out, i64::from(date.num_days_from_ce()) + 1_721_425, 0, fill);
        }
        Field::Hour12 => {
            let h = at.hour() % 12;
            number(out, i64::from(if h == 0 { 12 } else { h }), 2, fill);
        }
        Field::Hour24 => number(out, i64::from(at.hour()), 2, fill),
        Field::Minute => number(out, i64::from(at.minute()), 2, fill),
        Field::Second => number(out, i64::from(at.second()), 2, fill),
        Field::Millis => number(out, nanos / 1_000_000, 3, fill),
        Field::Micros => number(out, nanos / 1_000, 6, fill),
        Field::Fraction(n) => {
            let digits = u32::from(n);
            number(out, nanos / 10_i64.pow(9 - digits), usize::from(n), fill);
        }
        Field::SecondsOfDay => number(out, secs, 0, fill),
        Field::Meridiem { lower, dots } => {
            let m = match (at.hour() < 12, dots) {
                (true, false) => "AM",
                (true, true) => "A.M.",
                (false, false) => "PM",
                (false, true) => "P.M.",
            };
            out.push_str(&if lower {
                m.to_lowercase()
            } else {
                m.to_string()
            });
        }
        Field::Zone { lower } => match s.offset {
            None => {}
            Some(_) if offset == 0 => out.push_str(if lower { "utc" } else { "UTC" }),
            Some(_) => write_offset(out, offset),
        },
        Field::Offset => write_offset(out, offset),
        Field::OffsetHours => {
            let sign = if offset < 0 { '-' } else { '+' };
            let _ = write!(out, "{sign}{:02}", offset.abs() / 3600);
        }
        Field::OffsetMinutes => {
            let _ = write!(out, "{:02}", offset.abs() % 3600 / 60);
        }
    }
}

/// A UTC offset as PostgreSQL's `OF` writes it: `+05`, `-03:30`.
fn write_offset(out: &mut String, offset: i64) {
    let sign = if offset < 0 { '-' } else { '+' };
    let (h, m) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
    let _ = write!(out, "{sign}{h:02}");
    if m != 0 {
        let _ = write!(out, ":{m:02}");
    }
}

/// A date at midnight, for tests and callers holding dates.
pub fn midnight(date: NaiveDate) -> Stamp {
    Stamp::new(date.and_time(chrono::NaiveTime::MIN), None)
}

/// Takes the template text starting with `c` (the first character of `rest`) into
/// `literal` and advances `rest` past it: a double-quoted run up to its closing quote (a
/// backslash inside quotes the next character), `\"` as a quote, any other character as
/// itself. Shared by the date/time and the number templates, which quote alike.
pub(crate) fn take_literal(c: char, rest: &mut &str, literal: &mut String) {
    *rest = &rest[c.len_utf8()..];
    match c {
        '"' => {
            let mut chars = rest.char_indices();
            let mut end = rest.len();
            while let Some((i, q)) = chars.next() {
                match q {
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, e)) => literal.push(e),
                        None => literal.push('\\'),
                    },
                    _ => literal.push(q),
                }
            }
            *rest = &rest[end..];
        }
        '\\' if rest.starts_with('"') => {
            literal.push('"');
            *rest = &rest[1..];
        }
        _ => literal.push(c),
    }
}

#[cfg(test)]
#[path = "to_char_tests.rs"]
mod tests;
