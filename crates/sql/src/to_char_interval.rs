//! `to_char(interval, template)`: PostgreSQL formats an interval with the timestamp
//! patterns over its fields as `interval2itm` splits them: years and months from its months
//! (`months / 12`, `months % 12`), its days, then hours (not wrapped at 24), minutes,
//! seconds and microseconds from its time, each keeping the interval's sign (C's truncating
//! division). So `to_char(interval '15h 2m 12s', 'HH24:MI:SS')` is `15:02:12` and 27 hours
//! print as `27` under `HH24`. A negative field takes one more place for its `-`.
//!
//! Patterns tied to a calendar date (day and month names, day of week, era, time zone) are
//! refused with PostgreSQL's "invalid format specification for an interval value"; ISO
//! weeks and years, `W` and `J`, which PostgreSQL computes as if the fields were a date,
//! are refused too.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::{exec_err, DataFusionError, Result as DfResult};

use super::{Field, Template};

/// An interval's fields as PostgreSQL's `to_char` sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalParts {
    year: i64,
    mon: i64,
    mday: i64,
    hour: i64,
    min: i64,
    sec: i64,
    /// Microseconds below the second.
    fsec: i64,
    /// `(year * 12 + mon) * 30 + mday`: what `DDD` shows.
    yday: i64,
}

impl IntervalParts {
    /// Months, days and microseconds (PostgreSQL's interval fields; Arrow's
    /// `MonthDayNano` holds the same with nanoseconds).
    pub fn new(months: i64, days: i64, micros: i64) -> IntervalParts {
        let year = months / 12;
        let mon = months % 12;
        let hour = micros / 3_600_000_000;
        let rest = micros - hour * 3_600_000_000;
        let min = rest / 60_000_000;
        let rest = rest - min * 60_000_000;
        let sec = rest / 1_000_000;
        IntervalParts {
            year,
            mon,
            mday: days,
            hour,
            min,
            sec,
            fsec: rest - sec * 1_000_000,
            yday: (year * 12 + mon) * 30 + days,
        }
    }
}

const ROMAN_DESCENDING: [&str; 12] = [
    "XII", "XI", "X", "IX", "VIII", "VII", "VI", "V", "IV", "III", "II", "I",
];

/// `v` zero-padded to `width` characters, its `-` included (C's `%0*d`).
fn padded(out: &mut String, v: i64, width: usize) {
    out.push_str(&format!("{v:0width$}"));
}

/// The width PostgreSQL gives a field of `digits` places: none under `FM`, one more for
/// a negative value's sign.
fn width(v: i64, digits: usize, fill: bool) -> usize {
    match (fill, v < 0) {
        (true, _) => 0,
        (false, false) => digits,
        (false, true) => digits + 1,
    }
}

fn refused(pattern: &str) -> String {
    format!(
        "invalid format specification for an interval value: {pattern} (intervals are not \
         tied to specific calendar dates)"
    )
}

/// Writes one field of `p`; an error for a pattern an interval has no value for.
fn write_field(
    out: &mut String,
    field: Field,
    fill: bool,
    p: &IntervalParts,
) -> Result<(), String> {
    match field {
        Field::YearComma => {
            let thousands = p.year / 1000;
            out.push_str(&format!("{thousands},{:03}", p.year - thousands * 1000));
        }
        Field::Year(n) => {
            let modulus = 10_i64.pow(u32::from(n));
            let v = if n == 4 { p.year } else { p.year % modulus };
            padded(out, v, width(p.year, usize::from(n), fill));
        }
        Field::Century => {
            let c = p.year / 100;
            if (-99..=99).contains(&c) {
                padded(out, c, width(c, 2, fill));
            } else {
                out.push_str(&c.to_string());
            }
        }
        Field::Month => padded(out, p.mon, width(p.mon, 2, fill)),
        Field::Roman(case) => {
            if p.mon == 0 && p.year == 0 {
                return Ok(());
            }
            // PostgreSQL's index into December-first numerals.
            let index = if p.mon == 0 {
                if p.year >= 0 {
                    0
                } else {
                    11
                }
            } else if p.mon < 0 {
                -(p.mon + 1)
            } else {
                12 - p.mon
            };
            let numeral = ROMAN_DESCENDING
                .get(usize::try_from(index).unwrap_or(0))
                .copied()
                .unwrap_or("I");
            let numeral = if case == super::Case::Lower {
                numeral.to_lowercase()
            } else {
                numeral.to_string()
            };
            let pad = if fill { 0 } else { 4 };
            out.push_str(&format!("{numeral:<pad$}"));
        }
        Field::Quarter => {
            if p.mon != 0 {
                out.push_str(&((p.mon - 1) / 3 + 1).to_string());
            }
        }
        Field::DayOfMonth => padded(out, p.mday, if fill { 0 } else { 2 }),
        Field::DayOfYear => padded(out, p.yday, if fill { 0 } else { 3 }),
        Field::WeekOfYear => padded(out, (p.yday - 1) / 7 + 1, if fill { 0 } else { 2 }),
        Field::Hour12 => {
            let h = if p.hour % 12 == 0 { 12 } else { p.hour % 12 };
            padded(out, h, width(p.hour, 2, fill));
        }
        Field::Hour24 => padded(out, p.hour, width(p.hour, 2, fill)),
        Field::Minute => padded(out, p.min, width(p.min, 2, fill)),
        Field::Second => padded(out, p.sec, width(p.sec, 2, fill)),
        // Fractions have fixed widths in PostgreSQL, FM or not.
        Field::Millis => padded(out, p.fsec / 1000, 3),
        Field::Micros => padded(out, p.fsec, 6),
        Field::Fraction(n) => {
            let n = u32::from(n.clamp(1, 6));
            padded(out, p.fsec / 10_i64.pow(6 - n), n as usize);
        }
        Field::SecondsOfDay => {
            out.push_str(&(p.hour * 3600 + p.min * 60 + p.sec).to_string());
        }
        Field::Meridiem { lower, dots } => {
            let pm = p.hour % 24 >= 12;
            let m = match (pm, dots) {
                (false, false) => "AM",
                (false, true) => "A.M.",
                (true, false) => "PM",
                (true, true) => "P.M.",
            };
            out.push_str(&if lower {
                m.to_lowercase()
            } else {
                m.to_string()
            });
        }
        Field::Era { .. } => return Err(refused("AD/BC")),
        Field::MonthName(_) | Field::MonthAbbrev(_) => return Err(refused("a month name")),
        Field::DayName(_) | Field::DayAbbrev(_) => return Err(refused("a day name")),
        Field::DayOfWeek | Field::IsoDayOfWeek => return Err(refused("a day of the week")),
        Field::Zone { .. } | Field::Offset | Field::OffsetHours | Field::OffsetMinutes => {
            return Err(refused("a time zone"))
        }
        Field::IsoYear(_) | Field::IsoDayOfYear | Field::IsoWeek => {
            return Err(refused("an ISO 8601 week date"))
        }
        Field::WeekOfMonth | Field::Julian => return Err(refused("W or J")),
    }
    Ok(())
}

impl Template {
    /// `parts` formatted by the template; an error for a pattern intervals have no value
    /// for.
    pub fn format_interval(&self, parts: &IntervalParts) -> Result<String, String> {
        self.format_with(|out, field, fill| write_field(out, field, fill, parts))
    }
}

/// Whether `to_char` formats values of type `t` as intervals (a duration is an interval of
/// its time alone).
pub(super) fn is_interval(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_) | DataType::Duration(_))
}

/// Row `i` of an interval or duration array.
fn parts_at(values: &ArrayRef, i: usize) -> Option<IntervalParts> {
    use datafusion::arrow::datatypes as t;
    Some(match values.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = values
                .as_primitive::<t::IntervalMonthDayNanoType>()
                .value(i);
            IntervalParts::new(i64::from(v.months), i64::from(v.days), v.nanoseconds / 1000)
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = values.as_primitive::<t::IntervalDayTimeType>().value(i);
            IntervalParts::new(0, i64::from(v.days), i64::from(v.milliseconds) * 1000)
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let v = values.as_primitive::<t::IntervalYearMonthType>().value(i);
            IntervalParts::new(i64::from(v), 0, 0)
        }
        DataType::Duration(unit) => {
            let micros = match unit {
                TimeUnit::Second => values
                    .as_primitive::<t::DurationSecondType>()
                    .value(i)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => values
                    .as_primitive::<t::DurationMillisecondType>()
                    .value(i)
                    .saturating_mul(1000),
                TimeUnit::Microsecond => {
                    values.as_primitive::<t::DurationMicrosecondType>().value(i)
                }
                TimeUnit::Nanosecond => {
                    values.as_primitive::<t::DurationNanosecondType>().value(i) / 1000
                }
            };
            IntervalParts::new(0, 0, micros)
        }
        _ => return None,
    })
}

/// Formats each interval with its row's template (NULL when either is NULL).
pub(super) fn format_array(values: &ArrayRef, templates: &StringArray) -> DfResult<ArrayRef> {
    super::format_rows(
        values,
        templates,
        12,
        |text| Ok(Template::parse(text)),
        |template, i| {
            let Some(parts) = parts_at(values, i) else {
                return exec_err!("to_char: {} is not an interval", values.data_type());
            };
            template
                .format_interval(&parts)
                .map_err(|e| DataFusionError::Execution(format!("to_char: {e}")))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{IntervalParts, Template};

    const HOUR: i64 = 3_600_000_000;

    /// PostgreSQL's results: the documented `to_char(interval '15h 2m 12s', 'HH24:MI:SS')`
    /// (<https://www.postgresql.org/docs/current/functions-formatting.html>, "Formatting
    /// Functions") and the fields `interval2itm` gives other intervals (hours past 24 not
    /// wrapped, a negative field one place wider, months split into years).
    #[test]
    fn intervals_format_their_fields_as_postgresql_does() {
        let cases: &[(IntervalParts, &str, &str)] = &[
            (
                IntervalParts::new(0, 0, 15 * HOUR + 2 * 60_000_000 + 12_000_000),
                "HH24:MI:SS",
                "15:02:12",
            ),
            (IntervalParts::new(0, 0, 27 * HOUR), "HH24", "27"),
            (IntervalParts::new(0, 0, 27 * HOUR), "HH12 AM", "03 AM"),
            (IntervalParts::new(0, 0, 15 * HOUR), "HH12 PM", "03 PM"),
            (
                IntervalParts::new(0, 3, 4 * HOUR + 5 * 60_000_000),
                "DD \"days\" HH24:MI",
                "03 days 04:05",
            ),
            (
                IntervalParts::new(0, 0, -(5 * HOUR + 60_000_000)),
                "HH24:MI",
                "-05:-01",
            ),
            (IntervalParts::new(0, 0, -(5 * HOUR)), "FMHH24", "-5"),
            (IntervalParts::new(14, 0, 0), "YYYY-MM", "0001-02"),
            (IntervalParts::new(14, 0, 0), "FMYYYY FMMM", "1 2"),
            (
                IntervalParts::new(0, 0, 1_234_567),
                "SS.MS US FF2",
                "01.234 234567 23",
            ),
            (
                IntervalParts::new(0, 0, 90 * 60_000_000 + 5_000_000),
                "SSSS",
                "5405",
            ),
            (IntervalParts::new(0, 2, 0), "DDD DDth", "002 02nd"),
            (IntervalParts::new(14, 0, 0), "RM", "II  "),
            (IntervalParts::new(25, 0, 0), "CC Y,YYY Q", "00 0,002 1"),
        ];
        let mut failures = Vec::new();
        for (parts, template, want) in cases {
            let got = Template::parse(template).format_interval(parts);
            if got.as_deref() != Ok(*want) {
                failures.push(format!("{parts:?} {template:?}: {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn calendar_patterns_are_refused_for_intervals() {
        for template in ["Day", "Month", "D", "TZ", "AD", "IYYY", "J"] {
            let err = Template::parse(template)
                .format_interval(&IntervalParts::new(1, 1, 1))
                .expect_err(template);
            assert!(
                err.contains("invalid format specification for an interval value"),
                "{template}: {err}"
            );
        }
    }
}
