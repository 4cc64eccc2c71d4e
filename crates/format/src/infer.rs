//! A schema proposed from a sample of JSON records: one column per top-level field, in the
//! order fields are first seen. Booleans, integers (BIGINT), numbers (DOUBLE PRECISION when
//! any is fractional), strings (TIMESTAMPTZ when every sampled one is an RFC 3339 timestamp);
//! objects, arrays and fields of conflicting types become VARCHAR holding the JSON text, which
//! the decoder produces for them. Fields only ever null become VARCHAR.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::Value;

use crate::error::DecodeError;

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    bool: bool,
    int: bool,
    float: bool,
    string: bool,
    /// Every string seen so far parses as an RFC 3339 timestamp.
    all_timestamps: bool,
    other: bool,
}

/// What sampling found: the schema and how many records were not JSON objects.
#[derive(Debug)]
pub struct Inferred {
    pub schema: Schema,
    pub records: usize,
    pub rejected: usize,
}

/// Infers a schema from record values (`None`: null values, skipped). Values that are not
/// JSON objects are counted, not fatal: a sample may hold a few bad records.
pub fn infer_json<'a>(values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Inferred {
    let mut fields: Vec<(String, Seen)> = Vec::new();
    let mut records = 0;
    let mut rejected = 0;
    for value in values.into_iter().flatten() {
        let object = match serde_json::from_slice::<Ordered>(value) {
            Ok(Ordered(Some(fields))) => fields,
            _ => {
                rejected += 1;
                continue;
            }
        };
        records += 1;
        for (name, v) in object {
            let i = match fields.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    fields.push((
                        name,
                        Seen {
                            all_timestamps: true,
                            ..Seen::default()
                        },
                    ));
                    fields.len() - 1
                }
            };
            let seen = &mut fields[i].1;
            match v {
                Value::Null => {}
                Value::Bool(_) => seen.bool = true,
                Value::Number(n) if n.is_i64() => seen.int = true,
                Value::Number(_) => seen.float = true,
                Value::String(s) => {
                    seen.string = true;
                    seen.all_timestamps &= is_rfc3339(&s);
                }
                Value::Array(_) | Value::Object(_) => seen.other = true,
            }
        }
    }
    let fields: Vec<Field> = fields
        .into_iter()
        .map(|(name, seen)| Field::new(name, data_type(seen), true))
        .collect();
    Inferred {
        schema: Schema::new(fields),
        records,
        rejected,
    }
}

/// A JSON object's fields in document order (`serde_json::Map` sorts them); `None` for any
/// other JSON value.
struct Ordered(Option<Vec<(String, Value)>>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.push((k, v));
                }
                Ok(Ordered(Some(fields)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Ordered(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
        }
        d.deserialize_any(Visit)
    }
}

fn data_type(seen: Seen) -> DataType {
    let kinds = [seen.bool, seen.int || seen.float, seen.string, seen.other]
        .iter()
        .filter(|k| **k)
        .count();
    if kinds != 1 {
        return DataType::Utf8;
    }
    if seen.bool {
        DataType::Boolean
    } else if seen.float {
        DataType::Float64
    } else if seen.int {
        DataType::Int64
    } else if seen.string && seen.all_timestamps {
        DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00")))
    } else {
        DataType::Utf8
    }
}

/// `2024-05-01T10:00:00Z`, `2024-05-01 10:00:00.5+02:00`: a date, a time and an offset.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let has_offset = s.ends_with('Z')
        || s.ends_with('z')
        || (b.len() > 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':');
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && has_offset
        && arrow_cast::parse::string_to_timestamp_nanos(s).is_ok()
}

/// Why a topic's sample gives no schema.
pub fn empty_sample_error(topic: &str) -> DecodeError {
    DecodeError::parse(format!(
        "topic {topic} has no JSON object records to infer columns from; declare the columns"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(records: &[&str]) -> Inferred {
        infer_json(records.iter().map(|r| Some(r.as_bytes())))
    }

    #[test]
    fn infers_types_in_first_seen_order() {
        let got = infer(&[
            r#"{"id": 1, "name": "a", "ok": true, "at": "2024-05-01T10:00:00Z", "x": 1}"#,
            r#"{"id": 2, "name": null, "ok": false, "at": "2024-05-01 10:00:00.5+02:00", "x": 1.5, "tags": [1]}"#,
            "not json",
        ]);
        assert_eq!((got.records, got.rejected), (2, 1));
        let types: Vec<(&str, &DataType)> = got
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("id", &DataType::Int64),
                ("name", &DataType::Utf8),
                ("ok", &DataType::Boolean),
                (
                    "at",
                    &DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00")))
                ),
                ("x", &DataType::Float64),
                ("tags", &DataType::Utf8),
            ]
        );
    }

    #[test]
    fn conflicts_and_non_timestamps_become_text() {
        let got = infer(&[
            r#"{"a": 1, "b": "2024-05-01T10:00:00Z", "c": "2024-05-01"}"#,
            r#"{"a": "one", "b": "later"}"#,
        ]);
        for f in got.schema.fields() {
            assert_eq!(f.data_type(), &DataType::Utf8, "{}", f.name());
        }
    }
}
