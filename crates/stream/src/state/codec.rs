//! The state codec: Weir's own versioned binary encoding of rows of `ScalarValue`s, for
//! operator state in the changelog topic. Arrow's row format is not promised stable across
//! versions; this one is: every value carries its type tag (and type parameters), so a row
//! decodes without a schema, and a change of layout takes a new [`VERSION`] while the old one
//! stays readable.
//!
//! ```text
//! row   := VERSION:u8 count:u32 value*
//! value := tag:u8 params valid:u8 payload?      (integers big-endian)
//! ```

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::IntervalMonthDayNano;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use datafusion_common::ScalarValue;

/// The layout written today.
pub const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("state codec: type {0} is not supported")]
    Unsupported(String),
    #[error("state codec: version {0} is unknown (this build reads {VERSION})")]
    Version(u8),
    #[error("state codec: truncated value")]
    Truncated,
    #[error("state codec: unknown type tag {0}")]
    Tag(u8),
    #[error("state codec: {0}")]
    Invalid(String),
}

const NULL: u8 = 0;
const BOOLEAN: u8 = 1;
const INT8: u8 = 2;
const INT16: u8 = 3;
const INT32: u8 = 4;
const INT64: u8 = 5;
const UINT8: u8 = 6;
const UINT16: u8 = 7;
const UINT32: u8 = 8;
const UINT64: u8 = 9;
const FLOAT32: u8 = 10;
const FLOAT64: u8 = 11;
const UTF8: u8 = 12;
const LARGE_UTF8: u8 = 13;
const UTF8_VIEW: u8 = 14;
const BINARY: u8 = 15;
const LARGE_BINARY: u8 = 16;
const BINARY_VIEW: u8 = 17;
const DATE32: u8 = 18;
const DATE64: u8 = 19;
const TS_SECOND: u8 = 20;
const TS_MILLI: u8 = 21;
const TS_MICRO: u8 = 22;
const TS_NANO: u8 = 23;
const DECIMAL128: u8 = 24;
const INTERVAL_MDN: u8 = 25;
const DURATION_SECOND: u8 = 26;
const DURATION_MILLI: u8 = 27;
const DURATION_MICRO: u8 = 28;
const DURATION_NANO: u8 = 29;
const TIME32_SECOND: u8 = 30;
const TIME32_MILLI: u8 = 31;
const TIME64_MICRO: u8 = 32;
const TIME64_NANO: u8 = 33;

/// Whether values of `t` can be kept in state.
pub fn supports(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Null
            | DataType::Boolean
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
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Interval(arrow_schema::IntervalUnit::MonthDayNano)
            | DataType::Duration(_)
            | DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
            | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
    )
}

/// Appends `row` (with the version byte and count) to `out`.
pub fn encode_row(row: &[ScalarValue], out: &mut Vec<u8>) -> Result<(), CodecError> {
    row_header(row.len(), out)?;
    encode_values(row, out)
}

/// Appends the values of `row` alone, without the row's version and count: cells kept
/// packed in memory and spliced into a row written later (a join bucket's rows).
pub fn encode_values(row: &[ScalarValue], out: &mut Vec<u8>) -> Result<(), CodecError> {
    for v in row {
        encode_value(v, out)?;
    }
    Ok(())
}

/// `n` values as [`encode_values`] wrote them, filling `bytes` exactly.
pub fn decode_values(bytes: &[u8], n: usize) -> Result<Vec<ScalarValue>, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let mut row = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        row.push(decode_value(&mut r)?);
    }
    if r.at != bytes.len() {
        return Err(CodecError::Invalid(
            "trailing bytes after the values".into(),
        ));
    }
    Ok(row)
}

/// The first `n` values [`encode_values`] wrote to `bytes`, which may hold more after them
/// (a prefix read without decoding the rest: a top-N row's order values).
pub fn decode_prefix(bytes: &[u8], n: usize) -> Result<Vec<ScalarValue>, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let mut row = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        row.push(decode_value(&mut r)?);
    }
    Ok(row)
}

/// The header [`encode_row`] writes before `n` values: a row assembled from packed values.
pub fn row_header(n: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.push(VERSION);
    let n = u32::try_from(n).map_err(|_| CodecError::Invalid("row too wide".into()))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// A row as [`encode_row`] wrote it.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<ScalarValue>, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let n = r.u32()? as usize;
    let mut row = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        row.push(decode_value(&mut r)?);
    }
    if r.at != bytes.len() {
        return Err(CodecError::Invalid("trailing bytes after the row".into()));
    }
    Ok(row)
}

fn opt<T>(out: &mut Vec<u8>, v: &Option<T>, payload: impl FnOnce(&T, &mut Vec<u8>)) {
    match v {
        Some(x) => {
            out.push(1);
            payload(x, out);
        }
        None => out.push(0),
    }
}

fn bytes_payload(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn tz(t: &Option<Arc<str>>, out: &mut Vec<u8>) {
    opt(out, t, |s, out| bytes_payload(s.as_bytes(), out));
}

fn encode_value(v: &ScalarValue, out: &mut Vec<u8>) -> Result<(), CodecError> {
    macro_rules! be {
        ($tag:expr, $x:expr) => {{
            out.push($tag);
            opt(out, $x, |x, out| out.extend_from_slice(&x.to_be_bytes()));
        }};
    }
    match v {
        ScalarValue::Null => out.push(NULL),
        ScalarValue::Boolean(x) => {
            out.push(BOOLEAN);
            opt(out, x, |b, out| out.push(u8::from(*b)));
        }
        ScalarValue::Int8(x) => be!(INT8, x),
        ScalarValue::Int16(x) => be!(INT16, x),
        ScalarValue::Int32(x) => be!(INT32, x),
        ScalarValue::Int64(x) => be!(INT64, x),
        ScalarValue::UInt8(x) => be!(UINT8, x),
        ScalarValue::UInt16(x) => be!(UINT16, x),
        ScalarValue::UInt32(x) => be!(UINT32, x),
        ScalarValue::UInt64(x) => be!(UINT64, x),
        ScalarValue::Float32(x) => be!(FLOAT32, &x.map(f32::to_bits)),
        ScalarValue::Float64(x) => be!(FLOAT64, &x.map(f64::to_bits)),
        ScalarValue::Utf8(x) | ScalarValue::LargeUtf8(x) | ScalarValue::Utf8View(x) => {
            out.push(match v {
                ScalarValue::Utf8(_) => UTF8,
                ScalarValue::LargeUtf8(_) => LARGE_UTF8,
                _ => UTF8_VIEW,
            });
            opt(out, x, |s, out| bytes_payload(s.as_bytes(), out));
        }
        ScalarValue::Binary(x) | ScalarValue::LargeBinary(x) | ScalarValue::BinaryView(x) => {
            out.push(match v {
                ScalarValue::Binary(_) => BINARY,
                ScalarValue::LargeBinary(_) => LARGE_BINARY,
                _ => BINARY_VIEW,
            });
            opt(out, x, |b, out| bytes_payload(b, out));
        }
        ScalarValue::Date32(x) => be!(DATE32, x),
        ScalarValue::Date64(x) => be!(DATE64, x),
        ScalarValue::TimestampSecond(x, z)
        | ScalarValue::TimestampMillisecond(x, z)
        | ScalarValue::TimestampMicrosecond(x, z)
        | ScalarValue::TimestampNanosecond(x, z) => {
            out.push(match v {
                ScalarValue::TimestampSecond(..) => TS_SECOND,
                ScalarValue::TimestampMillisecond(..) => TS_MILLI,
                ScalarValue::TimestampMicrosecond(..) => TS_MICRO,
                _ => TS_NANO,
            });
            tz(z, out);
            opt(out, x, |x, out| out.extend_from_slice(&x.to_be_bytes()));
        }
        ScalarValue::Decimal128(x, p, s) => {
            out.push(DECIMAL128);
            out.push(*p);
            out.extend_from_slice(&s.to_be_bytes());
            opt(out, x, |x, out| out.extend_from_slice(&x.to_be_bytes()));
        }
        ScalarValue::DurationSecond(x) => be!(DURATION_SECOND, x),
        ScalarValue::DurationMillisecond(x) => be!(DURATION_MILLI, x),
        ScalarValue::DurationMicrosecond(x) => be!(DURATION_MICRO, x),
        ScalarValue::DurationNanosecond(x) => be!(DURATION_NANO, x),
        ScalarValue::Time32Second(x) => be!(TIME32_SECOND, x),
        ScalarValue::Time32Millisecond(x) => be!(TIME32_MILLI, x),
        ScalarValue::Time64Microsecond(x) => be!(TIME64_MICRO, x),
        ScalarValue::Time64Nanosecond(x) => be!(TIME64_NANO, x),
        ScalarValue::IntervalMonthDayNano(x) => {
            out.push(INTERVAL_MDN);
            opt(out, x, |i, out| {
                out.extend_from_slice(&i.months.to_be_bytes());
                out.extend_from_slice(&i.days.to_be_bytes());
                out.extend_from_slice(&i.nanoseconds.to_be_bytes());
            });
        }
        other => return Err(CodecError::Unsupported(other.data_type().to_string())),
    }
    Ok(())
}

/// Appends the value at `row` of `array` exactly as [`encode_value`] writes
/// `ScalarValue::try_from_array(array, row)`, without building the `ScalarValue` (no heap
/// copy of a string cell): how operators pack keys and rows straight from a batch. Types
/// without a direct path here take the `ScalarValue` one.
pub fn encode_array_value(
    array: &dyn Array,
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    macro_rules! prim {
        ($tag:expr, $t:ty) => {{
            out.push($tag);
            if array.is_null(row) {
                out.push(0);
            } else {
                out.push(1);
                let v = array.as_primitive::<$t>().value(row);
                out.extend_from_slice(&v.to_be_bytes());
            }
        }};
    }
    macro_rules! bytes {
        ($tag:expr, $v:expr) => {{
            out.push($tag);
            if array.is_null(row) {
                out.push(0);
            } else {
                out.push(1);
                bytes_payload($v, out);
            }
        }};
    }
    use arrow_array::types as t;
    match array.data_type() {
        DataType::Boolean => {
            out.push(BOOLEAN);
            if array.is_null(row) {
                out.push(0);
            } else {
                out.push(1);
                out.push(u8::from(array.as_boolean().value(row)));
            }
        }
        DataType::Int8 => prim!(INT8, t::Int8Type),
        DataType::Int16 => prim!(INT16, t::Int16Type),
        DataType::Int32 => prim!(INT32, t::Int32Type),
        DataType::Int64 => prim!(INT64, t::Int64Type),
        DataType::UInt8 => prim!(UINT8, t::UInt8Type),
        DataType::UInt16 => prim!(UINT16, t::UInt16Type),
        DataType::UInt32 => prim!(UINT32, t::UInt32Type),
        DataType::UInt64 => prim!(UINT64, t::UInt64Type),
        DataType::Float32 => {
            out.push(FLOAT32);
            if array.is_null(row) {
                out.push(0);
            } else {
                out.push(1);
                let v = array.as_primitive::<t::Float32Type>().value(row);
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
        }
        DataType::Float64 => {
            out.push(FLOAT64);
            if array.is_null(row) {
                out.push(0);
            } else {
                out.push(1);
                let v = array.as_primitive::<t::Float64Type>().value(row);
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
        }
        DataType::Utf8 => bytes!(UTF8, array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => bytes!(LARGE_UTF8, array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => bytes!(UTF8_VIEW, array.as_string_view().value(row).as_bytes()),
        DataType::Binary => bytes!(BINARY, array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => bytes!(LARGE_BINARY, array.as_binary::<i64>().value(row)),
        DataType::BinaryView => bytes!(BINARY_VIEW, array.as_binary_view().value(row)),
        DataType::Date32 => prim!(DATE32, t::Date32Type),
        DataType::Date64 => prim!(DATE64, t::Date64Type),
        DataType::Timestamp(unit, zone) => {
            out.push(match unit {
                TimeUnit::Second => TS_SECOND,
                TimeUnit::Millisecond => TS_MILLI,
                TimeUnit::Microsecond => TS_MICRO,
                TimeUnit::Nanosecond => TS_NANO,
            });
            tz(zone, out);
            if array.is_null(row) {
                out.push(0);
            } else {
                out.push(1);
                // Every unit's values are i64: read them as such whatever the unit.
                let v = match unit {
                    TimeUnit::Second => array.as_primitive::<t::TimestampSecondType>().value(row),
                    TimeUnit::Millisecond => array
                        .as_primitive::<t::TimestampMillisecondType>()
                        .value(row),
                    TimeUnit::Microsecond => array
                        .as_primitive::<t::TimestampMicrosecondType>()
                        .value(row),
                    TimeUnit::Nanosecond => array
                        .as_primitive::<t::TimestampNanosecondType>()
                        .value(row),
                };
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        _ => {
            let v = ScalarValue::try_from_array(array, row)
                .map_err(|e| CodecError::Invalid(e.to_string()))?;
            encode_value(&v, out)?;
        }
    }
    Ok(())
}

/// Appends row `row` of `columns` as [`encode_values`] writes their `ScalarValue`s.
pub fn encode_array_values(
    columns: &[ArrayRef],
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    for c in columns {
        encode_array_value(c.as_ref(), row, out)?;
    }
    Ok(())
}

/// Appends row `row` of `columns` as [`encode_row`] writes their `ScalarValue`s.
pub fn encode_array_row(
    columns: &[ArrayRef],
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    row_header(columns.len(), out)?;
    encode_array_values(columns, row, out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self.at.checked_add(n).ok_or(CodecError::Truncated)?;
        let s = self.bytes.get(self.at..end).ok_or(CodecError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn valid(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(CodecError::Invalid(format!("validity byte {b}"))),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, CodecError> {
        String::from_utf8(self.bytes()?).map_err(|e| CodecError::Invalid(e.to_string()))
    }
}

fn decode_value(r: &mut Reader<'_>) -> Result<ScalarValue, CodecError> {
    macro_rules! be {
        ($variant:ident, $t:ty) => {{
            let v = if r.valid()? {
                Some(<$t>::from_be_bytes(r.array()?))
            } else {
                None
            };
            ScalarValue::$variant(v)
        }};
    }
    let tag = r.u8()?;
    Ok(match tag {
        NULL => ScalarValue::Null,
        BOOLEAN => ScalarValue::Boolean(if r.valid()? { Some(r.u8()? != 0) } else { None }),
        INT8 => be!(Int8, i8),
        INT16 => be!(Int16, i16),
        INT32 => be!(Int32, i32),
        INT64 => be!(Int64, i64),
        UINT8 => be!(UInt8, u8),
        UINT16 => be!(UInt16, u16),
        UINT32 => be!(UInt32, u32),
        UINT64 => be!(UInt64, u64),
        FLOAT32 => {
            let v = if r.valid()? {
                Some(f32::from_bits(u32::from_be_bytes(r.array()?)))
            } else {
                None
            };
            ScalarValue::Float32(v)
        }
        FLOAT64 => {
            let v = if r.valid()? {
                Some(f64::from_bits(u64::from_be_bytes(r.array()?)))
            } else {
                None
            };
            ScalarValue::Float64(v)
        }
        UTF8 | LARGE_UTF8 | UTF8_VIEW => {
            let s = if r.valid()? { Some(r.string()?) } else { None };
            match tag {
                UTF8 => ScalarValue::Utf8(s),
                LARGE_UTF8 => ScalarValue::LargeUtf8(s),
                _ => ScalarValue::Utf8View(s),
            }
        }
        BINARY | LARGE_BINARY | BINARY_VIEW => {
            let b = if r.valid()? { Some(r.bytes()?) } else { None };
            match tag {
                BINARY => ScalarValue::Binary(b),
                LARGE_BINARY => ScalarValue::LargeBinary(b),
                _ => ScalarValue::BinaryView(b),
            }
        }
        DATE32 => be!(Date32, i32),
        DATE64 => be!(Date64, i64),
        TS_SECOND | TS_MILLI | TS_MICRO | TS_NANO => {
            let zone: Option<Arc<str>> = if r.valid()? {
                Some(r.string()?.into())
            } else {
                None
            };
            let v = if r.valid()? {
                Some(i64::from_be_bytes(r.array()?))
            } else {
                None
            };
            match tag {
                TS_SECOND => ScalarValue::TimestampSecond(v, zone),
                TS_MILLI => ScalarValue::TimestampMillisecond(v, zone),
                TS_MICRO => ScalarValue::TimestampMicrosecond(v, zone),
                _ => ScalarValue::TimestampNanosecond(v, zone),
            }
        }
        DECIMAL128 => {
            let p = r.u8()?;
            let s = i8::from_be_bytes(r.array()?);
            let v = if r.valid()? {
                Some(i128::from_be_bytes(r.array()?))
            } else {
                None
            };
            ScalarValue::Decimal128(v, p, s)
        }
        INTERVAL_MDN => {
            let v = if r.valid()? {
                let months = i32::from_be_bytes(r.array()?);
                let days = i32::from_be_bytes(r.array()?);
                let nanoseconds = i64::from_be_bytes(r.array()?);
                Some(IntervalMonthDayNano::new(months, days, nanoseconds))
            } else {
                None
            };
            ScalarValue::IntervalMonthDayNano(v)
        }
        DURATION_SECOND => be!(DurationSecond, i64),
        DURATION_MILLI => be!(DurationMillisecond, i64),
        DURATION_MICRO => be!(DurationMicrosecond, i64),
        DURATION_NANO => be!(DurationNanosecond, i64),
        TIME32_SECOND => be!(Time32Second, i32),
        TIME32_MILLI => be!(Time32Millisecond, i32),
        TIME64_MICRO => be!(Time64Microsecond, i64),
        TIME64_NANO => be!(Time64Nanosecond, i64),
        other => return Err(CodecError::Tag(other)),
    })
}

/// The type of a timestamp column, for tests and the planner's checks.
pub fn timestamp_type(unit: TimeUnit, zone: Option<&str>) -> DataType {
    DataType::Timestamp(unit, zone.map(Arc::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> Vec<ScalarValue> {
        let tz: Option<Arc<str>> = Some("+00:00".into());
        vec![
            ScalarValue::Null,
            ScalarValue::Boolean(Some(true)),
            ScalarValue::Boolean(Some(false)),
            ScalarValue::Int8(Some(-8)),
            ScalarValue::Int16(Some(-1600)),
            ScalarValue::Int32(Some(i32::MIN)),
            ScalarValue::Int64(Some(i64::MAX)),
            ScalarValue::UInt8(Some(255)),
            ScalarValue::UInt16(Some(65535)),
            ScalarValue::UInt32(Some(u32::MAX)),
            ScalarValue::UInt64(Some(u64::MAX)),
            ScalarValue::Float32(Some(-1.5)),
            ScalarValue::Float64(Some(f64::MIN_POSITIVE)),
            ScalarValue::Float64(Some(-0.0)),
            ScalarValue::Utf8(Some("grüße".into())),
            ScalarValue::Utf8(Some(String::new())),
            ScalarValue::LargeUtf8(Some("large".into())),
            ScalarValue::Utf8View(Some("view".into())),
            ScalarValue::Binary(Some(vec![0, 1, 255])),
            ScalarValue::LargeBinary(Some(vec![])),
            ScalarValue::BinaryView(Some(vec![7; 40])),
            ScalarValue::Date32(Some(19_000)),
            ScalarValue::Date64(Some(1_700_000_000_000)),
            ScalarValue::TimestampSecond(Some(1), None),
            ScalarValue::TimestampMillisecond(Some(-2), tz.clone()),
            ScalarValue::TimestampMicrosecond(Some(3), tz.clone()),
            ScalarValue::TimestampNanosecond(Some(4), Some("Europe/Paris".into())),
            ScalarValue::Decimal128(Some(-123_456_789_012_345_678_901_234_567), 38, 10),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, -2, 3))),
            ScalarValue::DurationSecond(Some(-4)),
            ScalarValue::DurationMillisecond(None),
            ScalarValue::DurationMicrosecond(Some(3_723_000_000)),
            ScalarValue::DurationNanosecond(Some(i64::MIN)),
            ScalarValue::Time32Second(Some(86_399)),
            ScalarValue::Time32Millisecond(Some(1)),
            ScalarValue::Time64Microsecond(None),
            ScalarValue::Time64Nanosecond(Some(36_672_000_000_000)),
        ]
    }

    #[test]
    fn every_type_round_trips_with_and_without_nulls() {
        let row = every_type();
        // The same types holding NULL keep their type.
        let nulls: Vec<ScalarValue> = row
            .iter()
            .map(|v| ScalarValue::try_from(v.data_type()).expect("typed null"))
            .collect();
        for r in [row, nulls, Vec::new()] {
            let mut buf = Vec::new();
            encode_row(&r, &mut buf).expect("encode");
            let back = decode_row(&buf).expect("decode");
            assert_eq!(back, r);
            for (a, b) in back.iter().zip(&r) {
                assert_eq!(a.data_type(), b.data_type());
            }
            // Every strict prefix is refused, never misread.
            for cut in 0..buf.len() {
                assert!(decode_row(&buf[..cut]).is_err(), "prefix {cut}");
            }
        }
    }

    #[test]
    fn the_layout_is_stable() {
        // Bytes written by version 1: a change here breaks restoring existing state.
        let mut buf = Vec::new();
        encode_row(
            &[
                ScalarValue::Int64(Some(258)),
                ScalarValue::Utf8(None),
                ScalarValue::Utf8(Some("ab".into())),
                ScalarValue::Decimal128(Some(5), 10, 2),
            ],
            &mut buf,
        )
        .expect("encode");
        assert_eq!(
            buf,
            [
                1, 0, 0, 0, 4, // version, count
                5, 1, 0, 0, 0, 0, 0, 0, 1, 2, // Int64 258
                12, 0, // Utf8 NULL
                12, 1, 0, 0, 0, 2, b'a', b'b', // Utf8 "ab"
                24, 10, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, // Decimal128
            ]
        );
        assert_eq!(
            decode_row(&[2, 0, 0, 0, 0]),
            Err(CodecError::Version(2)),
            "an unknown version is named"
        );
        assert_eq!(decode_row(&[1, 0, 0, 0, 1, 99]), Err(CodecError::Tag(99)));
        let mut extra = buf.clone();
        extra.push(0);
        assert!(decode_row(&extra).is_err());
    }

    #[test]
    fn cells_packed_from_arrays_are_the_bytes_of_their_scalar_values() {
        // Every type, valid and NULL, in one-column arrays of three rows (the middle NULL).
        let mut types: Vec<ScalarValue> = every_type();
        types.push(ScalarValue::Utf8(Some("x".repeat(300))));
        for v in types {
            let null = ScalarValue::try_from(v.data_type()).expect("typed null");
            let array =
                ScalarValue::iter_to_array([v.clone(), null.clone(), v.clone()]).expect("array");
            for (row, want) in [(0, &v), (1, &null), (2, &v)] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                encode_array_value(array.as_ref(), row, &mut a).expect("from the array");
                encode_value(want, &mut b).expect("from the scalar");
                assert_eq!(a, b, "{want:?}");
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            encode_array_row(&[array.clone(), array.clone()], 2, &mut a).expect("row");
            encode_row(&[v.clone(), v.clone()], &mut b).expect("row");
            assert_eq!(a, b);
        }
        // A sliced array reads its own rows.
        let array = ScalarValue::iter_to_array((0..5).map(|i| ScalarValue::Int64(Some(i))))
            .expect("array")
            .slice(2, 2);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_array_value(array.as_ref(), 1, &mut a).expect("sliced");
        encode_value(&ScalarValue::Int64(Some(3)), &mut b).expect("scalar");
        assert_eq!(a, b);
    }

    #[test]
    fn unsupported_types_are_named() {
        let list = ScalarValue::new_list_nullable(&[ScalarValue::Int64(Some(1))], &DataType::Int64);
        let err = encode_row(&[ScalarValue::List(list)], &mut Vec::new()).expect_err("list");
        assert!(matches!(err, CodecError::Unsupported(_)), "{err}");
        assert!(!supports(&DataType::new_list(DataType::Int64, true)));
        assert!(supports(&timestamp_type(
            TimeUnit::Microsecond,
            Some("UTC")
        )));
    }
}
