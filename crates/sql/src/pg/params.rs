//! Bind parameters ($1, $2, ...) into DataFusion values: text-format values are parsed as
//! the type the plan inferred for the placeholder; binary ones are read as the type the
//! client declared (or the inferred one), then cast.

use bytes::Bytes;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use pgwire::api::Type;

use crate::error::SqlError;

/// The PostgreSQL type to announce for a placeholder of this inferred type.
pub fn param_type(t: Option<&DataType>) -> Type {
    match t {
        Some(t) => super::encode::pg_type(t),
        None => Type::UNKNOWN,
    }
}

/// One parameter's value. `declared`: the client's type for it, if any; `inferred`: the
/// plan's type for the placeholder, if any.
pub fn value(
    bytes: Option<&Bytes>,
    binary: bool,
    declared: Option<&Type>,
    inferred: Option<&DataType>,
) -> Result<ScalarValue, SqlError> {
    let target = inferred.cloned().unwrap_or_else(|| match declared {
        Some(t) => declared_arrow(t),
        None => DataType::Utf8,
    });
    let Some(bytes) = bytes else {
        return Ok(ScalarValue::try_from(&target)?);
    };
    let raw = if binary {
        let t = declared
            .cloned()
            .unwrap_or_else(|| super::encode::pg_type(&target));
        binary_scalar(bytes, &t)?
    } else {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| SqlError::Invalid("a text parameter is not UTF-8".into()))?;
        if target == DataType::Boolean {
            // PostgreSQL's spellings; Arrow's parser knows only true/false.
            match text.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "yes" | "on" | "1" => ScalarValue::Boolean(Some(true)),
                "f" | "false" | "no" | "off" | "0" => ScalarValue::Boolean(Some(false)),
                _ => ScalarValue::Utf8(Some(text.to_string())),
            }
        } else {
            ScalarValue::Utf8(Some(text.to_string()))
        }
    };
    if raw.data_type() == target {
        return Ok(raw);
    }
    raw.cast_to(&target)
        .map_err(|e| SqlError::Invalid(format!("parameter {raw} does not fit type {target}: {e}")))
}

fn declared_arrow(t: &Type) -> DataType {
    match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::BYTEA => DataType::Binary,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => {
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
        }
        Type::TIMESTAMPTZ => crate::types::timestamptz(),
        _ => DataType::Utf8,
    }
}

fn binary_scalar(b: &[u8], t: &Type) -> Result<ScalarValue, SqlError> {
    let bad = || {
        SqlError::Invalid(format!(
            "binary parameter of type {t} has {} bytes",
            b.len()
        ))
    };
    let fixed = |n: usize| -> Result<&[u8], SqlError> {
        if b.len() == n {
            Ok(b)
        } else {
            Err(bad())
        }
    };
    Ok(match *t {
        Type::BOOL => ScalarValue::Boolean(Some(fixed(1)?[0] != 0)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(
            fixed(2)?.try_into().map_err(|_| bad())?,
        ))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(
            fixed(4)?.try_into().map_err(|_| bad())?,
        ))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(
            fixed(8)?.try_into().map_err(|_| bad())?,
        ))),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(
            fixed(4)?.try_into().map_err(|_| bad())?,
        ))),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(
            fixed(8)?.try_into().map_err(|_| bad())?,
        ))),
        Type::BYTEA => ScalarValue::Binary(Some(b.to_vec())),
        Type::NUMERIC => ScalarValue::Utf8(Some(numeric_text(b).ok_or_else(bad)?)),
        Type::DATE => {
            let d = i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad())?);
            ScalarValue::Date32(Some(d + 10_957))
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad())?);
            let tz = (*t == Type::TIMESTAMPTZ).then(|| crate::types::UTC.into());
            ScalarValue::TimestampMicrosecond(Some(us + 946_684_800_000_000), tz)
        }
        _ => ScalarValue::Utf8(Some(String::from_utf8(b.to_vec()).map_err(|_| {
            SqlError::Invalid(format!("binary parameter of type {t} is not text"))
        })?)),
    })
}

/// PostgreSQL's binary NUMERIC as decimal text.
fn numeric_text(b: &[u8]) -> Option<String> {
    let word =
        |i: usize| -> Option<i16> { Some(i16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?)) };
    let (n, weight, sign, dscale) = (word(0)?, word(2)?, word(4)? as u16, word(6)?);
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits: Vec<i16> = (0..n as usize)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    let mut int = String::new();
    let mut frac = String::new();
    for (i, d) in digits.iter().enumerate() {
        let pos = weight as i64 - i as i64;
        if pos >= 0 {
            int.push_str(&format!("{d:04}"));
        } else {
            // Zeros for the groups between the point and this one.
            while (frac.len() as i64) < (-pos - 1) * 4 {
                frac.push_str("0000");
            }
            frac.push_str(&format!("{d:04}"));
        }
    }
    // Groups of zeros between the last digit group and the point.
    let last_pos = weight as i64 - digits.len() as i64 + 1;
    for _ in 0..last_pos.max(0) {
        int.push_str("0000");
    }
    let int = int.trim_start_matches('0');
    let mut frac: String = frac
        .chars()
        .chain(std::iter::repeat('0'))
        .take(dscale.max(0) as usize)
        .collect();
    if dscale <= 0 {
        frac.clear();
    }
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    s.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parameters_take_the_inferred_type() {
        let v = value(
            Some(&Bytes::from("42")),
            false,
            None,
            Some(&DataType::Int64),
        )
        .expect("int");
        assert_eq!(v, ScalarValue::Int64(Some(42)));
        let v = value(
            Some(&Bytes::from("t")),
            false,
            None,
            Some(&DataType::Boolean),
        )
        .expect("bool");
        assert_eq!(v, ScalarValue::Boolean(Some(true)));
        let v = value(None, false, None, Some(&DataType::Int32)).expect("null");
        assert_eq!(v, ScalarValue::Int32(None));
        assert!(value(Some(&Bytes::from("x")), false, None, Some(&DataType::Int64)).is_err());
    }

    #[test]
    fn binary_parameters_are_read_as_declared_then_cast() {
        let b = Bytes::from(7i32.to_be_bytes().to_vec());
        let v = value(Some(&b), true, Some(&Type::INT4), Some(&DataType::Int64)).expect("int");
        assert_eq!(v, ScalarValue::Int64(Some(7)));
        let b: Vec<u8> = [3i16, 1, 0, 3, 1, 2345, 6780]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(numeric_text(&b).as_deref(), Some("12345.678"));
        let b: Vec<u8> = [1i16, -1, 0x4000, 2, 500]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(numeric_text(&b).as_deref(), Some("-0.05"));
        let b: Vec<u8> = [1i16, 1, 0, 0, 1]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(numeric_text(&b).as_deref(), Some("10000"));
    }
}
