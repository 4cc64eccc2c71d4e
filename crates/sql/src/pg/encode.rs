//! Arrow values on the PostgreSQL wire: each column's type OID and its values in text or
//! binary format, as PostgreSQL itself writes them (its `*out` and `*send` functions).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float16Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, IntervalDayTimeType, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use pgwire::api::Type;

/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400_000_000;

/// The PostgreSQL type a column is sent as.
pub fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::TEXT,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::FixedSizeBinary(_) => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match pg_type(f.data_type()) {
                Type::BOOL => Type::BOOL_ARRAY,
                Type::INT2 => Type::INT2_ARRAY,
                Type::INT4 => Type::INT4_ARRAY,
                Type::INT8 => Type::INT8_ARRAY,
                Type::NUMERIC => Type::NUMERIC_ARRAY,
                Type::FLOAT4 => Type::FLOAT4_ARRAY,
                Type::FLOAT8 => Type::FLOAT8_ARRAY,
                Type::TEXT => Type::TEXT_ARRAY,
                Type::BYTEA => Type::BYTEA_ARRAY,
                Type::DATE => Type::DATE_ARRAY,
                Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
                Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
                Type::INTERVAL => Type::INTERVAL_ARRAY,
                // Arrays of structs or of arrays: JSON text.
                _ => Type::TEXT,
            }
        }
        // Structs, maps, unions: JSON text.
        _ => Type::TEXT,
    }
}

/// Appends `array[row]` in PostgreSQL's text format (the caller writes NULL itself).
pub fn text(array: &dyn Array, row: usize, out: &mut Vec<u8>) {
    use std::io::Write;
    let t = array.data_type();
    match t {
        DataType::Boolean => out.push(if array.as_boolean().value(row) {
            b't'
        } else {
            b'f'
        }),
        DataType::Float16 => float_text(
            f64::from(array.as_primitive::<Float16Type>().value(row)),
            out,
        ),
        DataType::Float32 => float_text(
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            out,
        ),
        DataType::Float64 => float_text(array.as_primitive::<Float64Type>().value(row), out),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            out.extend_from_slice(b"\\x");
            for b in binary(array, row) {
                let _ = write!(out, "{b:02x}");
            }
        }
        DataType::Date32 | DataType::Date64 => date_text(days(array, row), out),
        DataType::Timestamp(unit, tz) => {
            timestamp_text(micros(array, row, *unit), out);
            if tz.is_some() {
                out.extend_from_slice(b"+00");
            }
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
            if pg_type(t) != Type::TEXT =>
        {
            let values = list_values(array, row);
            out.push(b'{');
            for i in 0..values.len() {
                if i > 0 {
                    out.push(b',');
                }
                if values.is_null(i) {
                    out.extend_from_slice(b"NULL");
                    continue;
                }
                let mut item = Vec::new();
                text(values.as_ref(), i, &mut item);
                let quote = item.is_empty()
                    || item.eq_ignore_ascii_case(b"null")
                    || item.iter().any(|c| b"{},\"\\ \t\n".contains(c));
                if quote {
                    out.push(b'"');
                    for c in item {
                        if c == b'"' || c == b'\\' {
                            out.push(b'\\');
                        }
                        out.push(c);
                    }
                    out.push(b'"');
                } else {
                    out.extend_from_slice(&item);
                }
            }
            out.push(b'}');
        }
        DataType::Struct(_)
        | DataType::Map(..)
        | DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..) => match weir_format::encode::json_value(array, row) {
            Ok(v) => out.extend_from_slice(v.to_string().as_bytes()),
            Err(e) => out.extend_from_slice(e.to_string().as_bytes()),
        },
        _ => match ArrayFormatter::try_new(array, &FormatOptions::default()) {
            Ok(f) => {
                let _ = write!(out, "{}", f.value(row));
            }
            Err(e) => out.extend_from_slice(e.to_string().as_bytes()),
        },
    }
}

/// Appends `array[row]` in PostgreSQL's binary format for [`pg_type`]'s type.
pub fn binary_value(array: &dyn Array, row: usize, out: &mut Vec<u8>) {
    let t = array.data_type();
    match pg_type(t) {
        Type::BOOL => out.push(u8::from(array.as_boolean().value(row))),
        Type::INT2 => out.extend_from_slice(&(int(array, row) as i16).to_be_bytes()),
        Type::INT4 => out.extend_from_slice(&(int(array, row) as i32).to_be_bytes()),
        Type::INT8 => out.extend_from_slice(&(int(array, row) as i64).to_be_bytes()),
        Type::FLOAT4 => {
            let v = match t {
                DataType::Float16 => f32::from(array.as_primitive::<Float16Type>().value(row)),
                _ => array.as_primitive::<Float32Type>().value(row),
            };
            out.extend_from_slice(&v.to_be_bytes());
        }
        Type::FLOAT8 => {
            out.extend_from_slice(&array.as_primitive::<Float64Type>().value(row).to_be_bytes())
        }
        Type::NUMERIC => {
            let mut s = Vec::new();
            text(array, row, &mut s);
            numeric_binary(&String::from_utf8_lossy(&s), out);
        }
        Type::BYTEA => out.extend_from_slice(binary(array, row)),
        Type::DATE => {
            out.extend_from_slice(&((days(array, row) - PG_EPOCH_DAYS) as i32).to_be_bytes())
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let DataType::Timestamp(unit, _) = t else {
                return;
            };
            out.extend_from_slice(&(micros(array, row, *unit) - PG_EPOCH_MICROS).to_be_bytes());
        }
        Type::INTERVAL => {
            let (months, days, micros) = interval(array, row);
            out.extend_from_slice(&micros.to_be_bytes());
            out.extend_from_slice(&days.to_be_bytes());
            out.extend_from_slice(&months.to_be_bytes());
        }
        Type::TEXT => {
            if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                out.extend_from_slice(string(array, row).as_bytes());
            } else {
                text(array, row, out);
            }
        }
        elem_array => {
            // One-dimensional array: dims, has-null flag, element OID, length, lower bound.
            let values = list_values(array, row);
            let elem = pg_type(values.data_type());
            let _ = elem_array;
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&i32::from(values.null_count() > 0).to_be_bytes());
            out.extend_from_slice(&elem.oid().to_be_bytes());
            out.extend_from_slice(&(values.len() as i32).to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            for i in 0..values.len() {
                if values.is_null(i) {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                } else {
                    let mut item = Vec::new();
                    binary_value(values.as_ref(), i, &mut item);
                    out.extend_from_slice(&(item.len() as i32).to_be_bytes());
                    out.extend_from_slice(&item);
                }
            }
        }
    }
}

fn list_values(array: &dyn Array, row: usize) -> std::sync::Arc<dyn Array> {
    match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        DataType::LargeList(_) => array.as_list::<i64>().value(row),
        _ => array.as_fixed_size_list().value(row),
    }
}

fn string(array: &dyn Array, row: usize) -> &str {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        _ => array.as_string_view().value(row),
    }
}

fn binary(array: &dyn Array, row: usize) -> &[u8] {
    match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => array.as_binary_view().value(row),
    }
}

fn int(array: &dyn Array, row: usize) -> i128 {
    match array.data_type() {
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Decimal128(..) => array.as_primitive::<Decimal128Type>().value(row),
        _ => 0,
    }
}

fn days(array: &dyn Array, row: usize) -> i64 {
    match array.data_type() {
        DataType::Date32 => array.as_primitive::<Date32Type>().value(row).into(),
        _ => array
            .as_primitive::<Date64Type>()
            .value(row)
            .div_euclid(86_400_000),
    }
}

fn micros(array: &dyn Array, row: usize, unit: TimeUnit) -> i64 {
    use datafusion::arrow::datatypes::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1000),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1000),
    }
}

/// (months, days, microseconds) of an interval or duration.
fn interval(array: &dyn Array, row: usize) -> (i32, i32, i64) {
    match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => (
            array.as_primitive::<IntervalYearMonthType>().value(row),
            0,
            0,
        ),
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(row);
            (0, v.days, i64::from(v.milliseconds) * 1000)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            (v.months, v.days, v.nanoseconds / 1000)
        }
        DataType::Duration(unit) => (0, 0, micros_of_duration(array, row, *unit)),
        _ => (0, 0, 0),
    }
}

fn micros_of_duration(array: &dyn Array, row: usize, unit: TimeUnit) -> i64 {
    use datafusion::arrow::datatypes::{
        DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
        DurationSecondType,
    };
    match unit {
        TimeUnit::Second => array.as_primitive::<DurationSecondType>().value(row) * 1_000_000,
        TimeUnit::Millisecond => array.as_primitive::<DurationMillisecondType>().value(row) * 1000,
        TimeUnit::Microsecond => array.as_primitive::<DurationMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<DurationNanosecondType>().value(row) / 1000,
    }
}

fn float_text(v: f64, out: &mut Vec<u8>) {
    let s = if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        v.to_string()
    };
    out.extend_from_slice(s.as_bytes());
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01).
pub fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn date_text(days: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let (y, m, d) = civil(days);
    if y <= 0 {
        let _ = write!(out, "{:04}-{m:02}-{d:02} BC", 1 - y);
    } else {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    }
}

fn timestamp_text(micros: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    date_text(days, out);
    let (h, m, s, us) = (
        rest / 3_600_000_000,
        rest / 60_000_000 % 60,
        rest / 1_000_000 % 60,
        rest % 1_000_000,
    );
    let _ = write!(out, " {h:02}:{m:02}:{s:02}");
    if us != 0 {
        let frac = format!("{us:06}");
        out.push(b'.');
        out.extend_from_slice(frac.trim_end_matches('0').as_bytes());
    }
}

/// PostgreSQL's binary NUMERIC: base-10000 digits, weight, sign, display scale.
fn numeric_binary(text: &str, out: &mut Vec<u8>) {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits == "NaN" {
        out.extend_from_slice(&[0, 0, 0, 0, 0xC0, 0, 0, 0]);
        return;
    }
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let int_part = int_part.trim_start_matches('0');
    let dscale = frac_part.len() as u16;
    // Pad the integer part on the left and the fraction on the right to groups of four.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let all = format!(
        "{}{}{}{}",
        "0".repeat(int_pad),
        int_part,
        frac_part,
        "0".repeat(frac_pad)
    );
    let mut groups: Vec<i16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = ((int_part.len() + int_pad) / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
        Int32Array, ListArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Int32Type as I32;

    use super::*;

    fn text_of(a: &ArrayRef, row: usize) -> String {
        let mut out = Vec::new();
        text(a.as_ref(), row, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    fn binary_of(a: &ArrayRef, row: usize) -> Vec<u8> {
        let mut out = Vec::new();
        binary_value(a.as_ref(), row, &mut out);
        out
    }

    #[test]
    fn text_format_matches_postgresql() {
        let cases: Vec<(ArrayRef, &str)> = vec![
            (Arc::new(BooleanArray::from(vec![true])), "t"),
            (Arc::new(Float64Array::from(vec![f64::NAN])), "NaN"),
            (Arc::new(Float64Array::from(vec![0.1])), "0.1"),
            (
                Arc::new(BinaryArray::from(vec![&b"\x00\xab"[..]])),
                "\\x00ab",
            ),
            (Arc::new(Date32Array::from(vec![19844])), "2024-05-01"),
            (
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_714_557_600_123_000])
                        .with_timezone("+00:00"),
                ),
                "2024-05-01 10:00:00.123+00",
            ),
            (
                Arc::new(TimestampMicrosecondArray::from(vec![-1])),
                "1969-12-31 23:59:59.999999",
            ),
            (
                Arc::new(
                    Decimal128Array::from(vec![-1230])
                        .with_precision_and_scale(10, 2)
                        .expect("decimal"),
                ),
                "-12.30",
            ),
            (
                Arc::new(ListArray::from_iter_primitive::<I32, _, _>(vec![Some(
                    vec![Some(1), None, Some(3)],
                )])),
                "{1,NULL,3}",
            ),
        ];
        for (array, want) in cases {
            assert_eq!(text_of(&array, 0), want, "{:?}", array.data_type());
        }
    }

    #[test]
    fn binary_format_matches_postgresql() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![-2]));
        assert_eq!(binary_of(&a, 0), (-2i32).to_be_bytes());
        let a: ArrayRef = Arc::new(Date32Array::from(vec![10_957]));
        assert_eq!(binary_of(&a, 0), 0i32.to_be_bytes());
        let a: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![PG_EPOCH_MICROS + 5]));
        assert_eq!(binary_of(&a, 0), 5i64.to_be_bytes());
        // 12345.678 = 1 2345 6780 with weight 1, dscale 3.
        let a: ArrayRef = Arc::new(
            Decimal128Array::from(vec![12_345_678])
                .with_precision_and_scale(10, 3)
                .expect("decimal"),
        );
        let want: Vec<u8> = [3i16, 1, 0, 3, 1, 2345, 6780]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(binary_of(&a, 0), want);
        let a: ArrayRef = Arc::new(
            Decimal128Array::from(vec![-5])
                .with_precision_and_scale(10, 2)
                .expect("decimal"),
        );
        let want: Vec<u8> = [1i16, -1, 0x4000, 2, 500]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(binary_of(&a, 0), want);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19844), (2024, 5, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(11016), (2000, 2, 29));
    }
}
