//! SQL types of declared columns and their Arrow types, and the names Weir shows for them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo, TimezoneInfo};

/// TIMESTAMPTZ values are UTC instants, shown with their offset.
pub const UTC: &str = "+00:00";

pub fn timestamptz() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC)))
}

/// The Arrow type a declared column is decoded into, or `None` for types sources do not
/// decode yet.
pub fn arrow_type(t: &SqlType) -> Option<DataType> {
    Some(match t {
        SqlType::Bool | SqlType::Boolean => DataType::Boolean,
        SqlType::SmallInt(_) | SqlType::Int2(_) => DataType::Int16,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) => DataType::Int64,
        SqlType::Real | SqlType::Float4 => DataType::Float32,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 | SqlType::Float64 => {
            DataType::Float64
        }
        SqlType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => DataType::Float32,
        SqlType::Float(_) => DataType::Float64,
        SqlType::Numeric(info) | SqlType::Decimal(info) | SqlType::Dec(info) => match info {
            // PostgreSQL's unconstrained NUMERIC has no Arrow equivalent; DataFusion's choice.
            ExactNumberInfo::None => DataType::Decimal128(38, 10),
            ExactNumberInfo::Precision(p) => DataType::Decimal128(u8::try_from(*p).ok()?, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                DataType::Decimal128(u8::try_from(*p).ok()?, i8::try_from(*s).ok()?)
            }
        },
        SqlType::Varchar(_)
        | SqlType::CharacterVarying(_)
        | SqlType::CharVarying(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::Text
        | SqlType::String(_)
        | SqlType::JSON
        | SqlType::JSONB => DataType::Utf8,
        SqlType::Bytea | SqlType::Varbinary(_) | SqlType::Binary(_) | SqlType::Blob(_) => {
            DataType::Binary
        }
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => timestamptz(),
        SqlType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, None),
        // DataFusion's `CAST(.. AS TIME)`; a time zone has no meaning without a date.
        SqlType::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            DataType::Time64(TimeUnit::Nanosecond)
        }
        // PostgreSQL's interval: months, days and a time (`INTERVAL DAY TO SECOND` and the
        // like narrow what PostgreSQL accepts, not the type).
        SqlType::Interval { .. } => DataType::Interval(IntervalUnit::MonthDayNano),
        _ => return None,
    })
}

/// The PostgreSQL name of an Arrow type, as DESCRIBE shows it and as the catalog stores it
/// (it parses back through [`arrow_type`]).
pub fn sql_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("{}[]", sql_name(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(", "))
        }
        DataType::Null => "unknown".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// `_headers`: Kafka's record headers, in order.
pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Binary, true),
            ]
            .into(),
        ),
        true,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse_type(text: &str) -> SqlType {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(text)
            .expect("tokens")
            .parse_data_type()
            .expect(text)
    }

    #[test]
    fn names_parse_back_to_the_same_arrow_type() {
        for t in [
            DataType::Boolean,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            timestamptz(),
            DataType::Time64(TimeUnit::Nanosecond),
            DataType::Interval(IntervalUnit::MonthDayNano),
        ] {
            let name = sql_name(&t);
            assert_eq!(arrow_type(&parse_type(&name)).as_ref(), Some(&t), "{name}");
        }
        assert_eq!(
            arrow_type(&parse_type("TIMESTAMP WITH TIME ZONE")),
            Some(timestamptz())
        );
        assert_eq!(arrow_type(&parse_type("text")), Some(DataType::Utf8));
        assert_eq!(
            arrow_type(&parse_type("numeric")),
            Some(DataType::Decimal128(38, 10))
        );
        assert_eq!(arrow_type(&parse_type("time with time zone")), None);
        assert_eq!(
            arrow_type(&parse_type("interval day to second")),
            Some(DataType::Interval(IntervalUnit::MonthDayNano))
        );
    }
}
