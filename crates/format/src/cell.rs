//! One column's builder and the conversions of JSON and text values into its type. A record is
//! converted cell by cell first and appended only once every cell converted, so a failing
//! record leaves every builder untouched.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder,
    LargeBinaryBuilder, LargeStringBuilder, StringBuilder, StringViewBuilder, UInt64Builder,
};
use arrow_array::types::{Date32Type, IntervalMonthDayNano};
use arrow_array::{
    ArrayRef, DurationMicrosecondArray, DurationMillisecondArray, DurationNanosecondArray,
    DurationSecondArray, Time32MillisecondArray, Time32SecondArray, Time64MicrosecondArray,
    Time64NanosecondArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_cast::parse::Parser;
use arrow_schema::{DataType, IntervalUnit, TimeUnit};

use crate::json::Json;

/// A value already converted to its column's type, borrowing text and bytes from the record
/// where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(i128),
    Str(Cow<'a, str>),
    Bin(Cow<'a, [u8]>),
    Date(i32),
    /// In the column's time unit (timestamps, times of day, durations).
    Ts(i64),
    Interval(IntervalMonthDayNano),
}

impl Cell<'_> {
    /// The same value, owning its text and bytes.
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Null => Cell::Null,
            Cell::Bool(b) => Cell::Bool(b),
            Cell::Int(i) => Cell::Int(i),
            Cell::Float(f) => Cell::Float(f),
            Cell::Decimal(d) => Cell::Decimal(d),
            Cell::Str(s) => Cell::Str(Cow::Owned(s.into_owned())),
            Cell::Bin(b) => Cell::Bin(Cow::Owned(b.into_owned())),
            Cell::Date(d) => Cell::Date(d),
            Cell::Ts(t) => Cell::Ts(t),
            Cell::Interval(i) => Cell::Interval(i),
        }
    }
}

pub enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    /// `row_number()`'s type; values up to `i64::MAX`.
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Str(StringBuilder),
    LargeStr(LargeStringBuilder),
    ViewStr(StringViewBuilder),
    Bin(BinaryBuilder),
    LargeBin(LargeBinaryBuilder),
    Date(Date32Builder),
    Ts(Vec<Option<i64>>, TimeUnit, Option<Arc<str>>),
    /// A time of day (`Time32`/`Time64`), in its unit since midnight.
    Time(Vec<Option<i64>>, TimeUnit),
    Duration(Vec<Option<i64>>, TimeUnit),
    Interval(IntervalMonthDayNanoBuilder),
}

impl Builder {
    /// A builder for `data_type`, or `None` when records cannot be decoded into that type.
    pub fn new(data_type: &DataType) -> Option<Builder> {
        Some(match data_type {
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            DataType::Int16 => Builder::I16(Int16Builder::new()),
            DataType::Int32 => Builder::I32(Int32Builder::new()),
            DataType::Int64 => Builder::I64(Int64Builder::new()),
            DataType::UInt64 => Builder::U64(UInt64Builder::new()),
            DataType::Float32 => Builder::F32(Float32Builder::new()),
            DataType::Float64 => Builder::F64(Float64Builder::new()),
            DataType::Decimal128(p, s) => Builder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .ok()?,
                *p,
                *s,
            ),
            DataType::Utf8 => Builder::Str(StringBuilder::new()),
            DataType::LargeUtf8 => Builder::LargeStr(LargeStringBuilder::new()),
            DataType::Utf8View => Builder::ViewStr(StringViewBuilder::new()),
            DataType::Binary => Builder::Bin(BinaryBuilder::new()),
            DataType::LargeBinary => Builder::LargeBin(LargeBinaryBuilder::new()),
            DataType::Date32 => Builder::Date(Date32Builder::new()),
            DataType::Timestamp(unit, tz) => Builder::Ts(Vec::new(), *unit, tz.clone()),
            DataType::Time32(unit @ (TimeUnit::Second | TimeUnit::Millisecond))
            | DataType::Time64(unit @ (TimeUnit::Microsecond | TimeUnit::Nanosecond)) => {
                Builder::Time(Vec::new(), *unit)
            }
            DataType::Duration(unit) => Builder::Duration(Vec::new(), *unit),
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                Builder::Interval(IntervalMonthDayNanoBuilder::new())
            }
            _ => return None,
        })
    }

    /// Converts a JSON value to this column's type (`null` is NULL). Numbers widen (an integer
    /// fits a float column); a string is never read as a number, except for decimals, which
    /// JSON carries as strings to keep their digits.
    pub(crate) fn convert_json<'a>(&self, v: Json<'a>) -> Result<Cell<'a>, String> {
        let number = matches!(v, Json::I64(_) | Json::U64(_) | Json::F64(_));
        match (self, v) {
            (_, Json::Null) => Ok(Cell::Null),
            (Builder::Bool(_), Json::Bool(b)) => Ok(Cell::Bool(b)),
            (Builder::I16(_) | Builder::I32(_) | Builder::I64(_) | Builder::U64(_), n)
                if number =>
            {
                let i = n
                    .as_i64()
                    .ok_or_else(|| format!("{} is not an integer in range", n.text()))?;
                self.check_int(i)
            }
            (Builder::F32(_) | Builder::F64(_), n) if number => match n {
                Json::I64(i) => Ok(Cell::Float(i as f64)),
                Json::U64(u) => Ok(Cell::Float(u as f64)),
                Json::F64(f) => Ok(Cell::Float(f)),
                _ => unreachable!("a number"),
            },
            (Builder::Decimal(..), n) if number => self.convert_text(&n.text()),
            (Builder::Decimal(..), Json::Str(s)) => self.convert_text(&s),
            (Builder::Str(_) | Builder::LargeStr(_) | Builder::ViewStr(_), Json::Str(s)) => {
                Ok(Cell::Str(s))
            }
            // Any other JSON value in a text column is kept as its JSON text: lossless, and
            // what an inferred schema declares for fields of mixed types.
            (Builder::Str(_) | Builder::LargeStr(_) | Builder::ViewStr(_), other) => {
                Ok(Cell::Str(Cow::Owned(other.text())))
            }
            (Builder::Bin(_) | Builder::LargeBin(_), Json::Str(s)) => crate::base64::decode(&s)
                .map(|b| Cell::Bin(Cow::Owned(b)))
                .ok_or_else(|| "not base64".to_string()),
            (
                Builder::Date(_)
                | Builder::Ts(..)
                | Builder::Time(..)
                | Builder::Duration(..)
                | Builder::Interval(_),
                Json::Str(s),
            ) => self.convert_text(&s),
            // Epoch milliseconds, the usual integer timestamp of Kafka records.
            (Builder::Ts(_, unit, _), n) if number => {
                let ms = n.as_i64().ok_or_else(|| {
                    format!("{} is not an integer of epoch milliseconds", n.text())
                })?;
                let v = match unit {
                    TimeUnit::Second => Some(ms.div_euclid(1000)),
                    TimeUnit::Millisecond => Some(ms),
                    TimeUnit::Microsecond => ms.checked_mul(1000),
                    TimeUnit::Nanosecond => ms.checked_mul(1_000_000),
                };
                v.map(Cell::Ts)
                    .ok_or_else(|| format!("{ms} ms is out of range"))
            }
            (_, other) => Err(format!(
                "{} does not fit type {}",
                other.kind(),
                self.type_name()
            )),
        }
    }

    /// Converts text (a CSV field, a decimal or date string) to this column's type.
    pub fn convert_text(&self, s: &str) -> Result<Cell<'static>, String> {
        let bad = || format!("{s:?} is not a valid {}", self.type_name());
        match self {
            Builder::Bool(_) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "1" => Ok(Cell::Bool(true)),
                "false" | "f" | "0" => Ok(Cell::Bool(false)),
                _ => Err(bad()),
            },
            Builder::I16(_) | Builder::I32(_) | Builder::I64(_) | Builder::U64(_) => {
                let i = s.trim().parse::<i64>().map_err(|_| bad())?;
                self.check_int(i)
            }
            Builder::F32(_) | Builder::F64(_) => {
                s.trim().parse::<f64>().map(Cell::Float).map_err(|_| bad())
            }
            Builder::Decimal(_, p, sc) => crate::decimal::parse_decimal(s.trim(), *p, *sc)
                .map(Cell::Decimal)
                .map_err(|e| format!("{s:?}: {e}")),
            Builder::Str(_) | Builder::LargeStr(_) | Builder::ViewStr(_) => {
                Ok(Cell::Str(Cow::Owned(s.to_string())))
            }
            Builder::Bin(_) | Builder::LargeBin(_) => {
                Ok(Cell::Bin(Cow::Owned(s.as_bytes().to_vec())))
            }
            Builder::Date(_) => Date32Type::parse(s.trim()).map(Cell::Date).ok_or_else(bad),
            Builder::Ts(_, unit, _) => {
                let ns =
                    arrow_cast::parse::string_to_timestamp_nanos(s.trim()).map_err(|_| bad())?;
                Ok(Cell::Ts(from_nanos(ns, *unit)))
            }
            Builder::Time(_, unit) => {
                let ns =
                    arrow_cast::parse::string_to_time_nanoseconds(s.trim()).map_err(|_| bad())?;
                Ok(Cell::Ts(from_nanos(ns, *unit)))
            }
            Builder::Duration(_, unit) => {
                let ns = crate::temporal::duration_nanos(s.trim()).ok_or_else(bad)?;
                Ok(Cell::Ts(from_nanos(ns, *unit)))
            }
            Builder::Interval(_) => arrow_cast::parse::parse_interval_month_day_nano(s.trim())
                .map(Cell::Interval)
                .map_err(|_| bad()),
        }
    }

    fn check_int(&self, i: i64) -> Result<Cell<'static>, String> {
        let fits = match self {
            Builder::I16(_) => i16::try_from(i).is_ok(),
            Builder::I32(_) => i32::try_from(i).is_ok(),
            Builder::U64(_) => i >= 0,
            _ => true,
        };
        if fits {
            Ok(Cell::Int(i))
        } else {
            Err(format!("{i} is out of range for {}", self.type_name()))
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Builder::Bool(_) => "boolean",
            Builder::I16(_) => "smallint",
            Builder::I32(_) => "integer",
            Builder::I64(_) => "bigint",
            Builder::U64(_) => "numeric(20,0)",
            Builder::F32(_) => "real",
            Builder::F64(_) => "double precision",
            Builder::Decimal(..) => "numeric",
            Builder::Str(_) | Builder::LargeStr(_) | Builder::ViewStr(_) => "varchar",
            Builder::Bin(_) | Builder::LargeBin(_) => "bytea",
            Builder::Date(_) => "date",
            Builder::Ts(_, _, None) => "timestamp",
            Builder::Ts(_, _, Some(_)) => "timestamptz",
            Builder::Time(..) => "time",
            Builder::Duration(..) | Builder::Interval(_) => "interval",
        }
    }

    /// Appends a cell this builder converted (a NULL for a cell of another builder, which the
    /// decoder never passes).
    pub fn push(&mut self, cell: &Cell<'_>) {
        match (self, cell) {
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Builder::I16(b), Cell::Int(v)) => b.append_option(i16::try_from(*v).ok()),
            (Builder::I32(b), Cell::Int(v)) => b.append_option(i32::try_from(*v).ok()),
            (Builder::I64(b), Cell::Int(v)) => b.append_value(*v),
            (Builder::U64(b), Cell::Int(v)) => b.append_option(u64::try_from(*v).ok()),
            (Builder::F32(b), Cell::Float(v)) => b.append_value(*v as f32),
            (Builder::F64(b), Cell::Float(v)) => b.append_value(*v),
            (Builder::Decimal(b, ..), Cell::Decimal(v)) => b.append_value(*v),
            (Builder::Str(b), Cell::Str(v)) => b.append_value(v.as_ref()),
            (Builder::LargeStr(b), Cell::Str(v)) => b.append_value(v.as_ref()),
            (Builder::ViewStr(b), Cell::Str(v)) => b.append_value(v.as_ref()),
            (Builder::Bin(b), Cell::Bin(v)) => b.append_value(v.as_ref()),
            (Builder::LargeBin(b), Cell::Bin(v)) => b.append_value(v.as_ref()),
            (Builder::Date(b), Cell::Date(v)) => b.append_value(*v),
            (Builder::Ts(b, ..) | Builder::Time(b, _) | Builder::Duration(b, _), Cell::Ts(v)) => {
                b.push(Some(*v))
            }
            (Builder::Interval(b), Cell::Interval(v)) => b.append_value(*v),
            (builder, _) => builder.push_null(),
        }
    }

    fn push_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::U64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Decimal(b, ..) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::LargeStr(b) => b.append_null(),
            Builder::ViewStr(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
            Builder::LargeBin(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b, ..) | Builder::Time(b, _) | Builder::Duration(b, _) => b.push(None),
            Builder::Interval(b) => b.append_null(),
        }
    }

    /// The column built so far; the builder starts empty again.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::U64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, ..) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::LargeStr(b) => Arc::new(b.finish()),
            Builder::ViewStr(b) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
            Builder::LargeBin(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(values, unit, tz) => {
                let values = std::mem::take(values);
                let tz = tz.clone();
                match unit {
                    TimeUnit::Second => {
                        Arc::new(TimestampSecondArray::from(values).with_timezone_opt(tz))
                    }
                    TimeUnit::Millisecond => {
                        Arc::new(TimestampMillisecondArray::from(values).with_timezone_opt(tz))
                    }
                    TimeUnit::Microsecond => {
                        Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(tz))
                    }
                    TimeUnit::Nanosecond => {
                        Arc::new(TimestampNanosecondArray::from(values).with_timezone_opt(tz))
                    }
                }
            }
            Builder::Time(values, unit) => {
                let values = std::mem::take(values);
                let narrow = |v: Vec<Option<i64>>| -> Vec<Option<i32>> {
                    v.into_iter()
                        .map(|x| x.and_then(|x| i32::try_from(x).ok()))
                        .collect()
                };
                match unit {
                    TimeUnit::Second => Arc::new(Time32SecondArray::from(narrow(values))),
                    TimeUnit::Millisecond => Arc::new(Time32MillisecondArray::from(narrow(values))),
                    TimeUnit::Microsecond => Arc::new(Time64MicrosecondArray::from(values)),
                    TimeUnit::Nanosecond => Arc::new(Time64NanosecondArray::from(values)),
                }
            }
            Builder::Duration(values, unit) => {
                let values = std::mem::take(values);
                match unit {
                    TimeUnit::Second => Arc::new(DurationSecondArray::from(values)),
                    TimeUnit::Millisecond => Arc::new(DurationMillisecondArray::from(values)),
                    TimeUnit::Microsecond => Arc::new(DurationMicrosecondArray::from(values)),
                    TimeUnit::Nanosecond => Arc::new(DurationNanosecondArray::from(values)),
                }
            }
            Builder::Interval(b) => Arc::new(b.finish()),
        }
    }
}

/// Nanoseconds in `unit` (rounded toward negative infinity).
fn from_nanos(ns: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => ns.div_euclid(1_000_000_000),
        TimeUnit::Millisecond => ns.div_euclid(1_000_000),
        TimeUnit::Microsecond => ns.div_euclid(1_000),
        TimeUnit::Nanosecond => ns,
    }
}
