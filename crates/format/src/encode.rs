//! Arrow rows into record values: JSON objects with the column names (timestamps RFC 3339,
//! decimals as strings so no digit is lost, binary as base64, lists as arrays, structs as
//! objects), CSV lines, or the one column of `bytes`/`text`.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use serde_json::{Map, Number, Value};

use crate::decode::Format;
use crate::error::FormatError;

/// The JSON value of `array[row]`.
pub fn json_value(array: &dyn Array, row: usize) -> Result<Value, FormatError> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Value::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Value::from(array.as_string_view().value(row)),
        DataType::Binary => Value::from(crate::base64::encode(array.as_binary::<i32>().value(row))),
        DataType::LargeBinary => {
            Value::from(crate::base64::encode(array.as_binary::<i64>().value(row)))
        }
        DataType::BinaryView => {
            Value::from(crate::base64::encode(array.as_binary_view().value(row)))
        }
        DataType::List(_) => list(array.as_list::<i32>().value(row).as_ref())?,
        DataType::LargeList(_) => list(array.as_list::<i64>().value(row).as_ref())?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut object = Map::new();
            for (i, f) in fields.iter().enumerate() {
                object.insert(f.name().clone(), json_value(s.column(i).as_ref(), row)?);
            }
            Value::Object(object)
        }
        // Decimals, dates, times, timestamps (RFC 3339 with their offset), intervals: as
        // Arrow displays them, which the decoder parses back.
        _ => {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            Value::from(formatter.value(row).to_string())
        }
    })
}

fn list(values: &dyn Array) -> Result<Value, FormatError> {
    (0..values.len())
        .map(|i| json_value(values, i))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// JSON has no NaN nor infinities: those travel as strings, as PostgreSQL prints them.
pub(crate) fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::from("NaN"),
        None if f > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

/// Row `row` of `batch` as a JSON object keyed by column name.
pub fn json_object(batch: &RecordBatch, row: usize) -> Result<Map<String, Value>, FormatError> {
    let mut object = Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        object.insert(field.name().clone(), json_value(column.as_ref(), row)?);
    }
    Ok(object)
}

/// Whether [`encode_values`] can write rows of `schema` in `format`: `bytes` and `text` take
/// exactly one binary or string column. Checked where a sink is defined, so that a pipeline
/// never fails at run time for a shape it was allowed to have.
pub fn check_schema(format: Format, schema: &arrow_schema::Schema) -> Result<(), FormatError> {
    if !matches!(format, Format::Bytes | Format::Text) {
        return Ok(());
    }
    let [field] = schema.fields().as_ref() else {
        return Err(FormatError::OneColumn {
            format: format.name(),
            got: schema.fields().len(),
        });
    };
    match field.data_type() {
        DataType::Binary
        | DataType::LargeBinary
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View => Ok(()),
        other => Err(FormatError::UnsupportedType {
            column: field.name().clone(),
            data_type: other.clone(),
            format: format.name(),
        }),
    }
}

/// Every row of `batch` as a record value in `format` (`None`: a null value, for a NULL in
/// the one column of `bytes`/`text`).
pub fn encode_values(
    format: Format,
    batch: &RecordBatch,
) -> Result<Vec<Option<Vec<u8>>>, FormatError> {
    if format == Format::Json {
        return Ok(crate::json_rows::json_rows(batch)?
            .into_iter()
            .map(Some)
            .collect());
    }
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        out.push(match format {
            Format::Json => unreachable!("written above"),
            Format::Csv { delimiter } => Some(csv_line(batch, row, delimiter)?.into_bytes()),
            Format::Bytes | Format::Text => {
                let column = one_column(format, batch)?;
                if column.is_null(row) {
                    None
                } else {
                    Some(match column.data_type() {
                        DataType::Binary => column.as_binary::<i32>().value(row).to_vec(),
                        DataType::LargeBinary => column.as_binary::<i64>().value(row).to_vec(),
                        DataType::Utf8 => column.as_string::<i32>().value(row).as_bytes().to_vec(),
                        DataType::LargeUtf8 => {
                            column.as_string::<i64>().value(row).as_bytes().to_vec()
                        }
                        DataType::Utf8View => {
                            column.as_string_view().value(row).as_bytes().to_vec()
                        }
                        other => {
                            return Err(FormatError::UnsupportedType {
                                column: batch.schema().field(0).name().clone(),
                                data_type: other.clone(),
                                format: format.name(),
                            })
                        }
                    })
                }
            }
        });
    }
    Ok(out)
}

fn one_column(format: Format, batch: &RecordBatch) -> Result<&dyn Array, FormatError> {
    match batch.columns() {
        [c] => Ok(c.as_ref()),
        other => Err(FormatError::OneColumn {
            format: format.name(),
            got: other.len(),
        }),
    }
}

/// A CSV line in column order; NULL is an empty unquoted field, an empty string `""`.
fn csv_line(batch: &RecordBatch, row: usize, delimiter: u8) -> Result<String, FormatError> {
    let delimiter = char::from(delimiter);
    let mut line = String::new();
    for (i, column) in batch.columns().iter().enumerate() {
        if i > 0 {
            line.push(delimiter);
        }
        if column.is_null(row) {
            continue;
        }
        let text = match json_value(column.as_ref(), row)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if text.is_empty() || text.contains([delimiter, '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&text.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&text);
        }
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        BinaryArray, Decimal128Array, Float64Array, Int32Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow_schema::{Field, Schema, TimeUnit};

    use super::*;
    use crate::decode::RecordDecoder;

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("blob", DataType::Binary, true),
            Field::new("ratio", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
                Arc::new(
                    Decimal128Array::from(vec![Some(1230), None])
                        .with_precision_and_scale(10, 2)
                        .expect("decimal"),
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456), None])
                        .with_timezone("+00:00"),
                ),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), Some(f64::NAN)])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn json_object_uses_rfc3339_decimal_strings_and_base64() {
        let batch = sample();
        let row = Value::Object(json_object(&batch, 0).expect("encode"));
        assert_eq!(
            row,
            serde_json::json!({
                "id": 1, "name": "a,\"b\"", "price": "12.30",
                "at": "2023-11-14T22:13:20.123456Z", "blob": "AP8=", "ratio": 0.5
            })
        );
        let row = Value::Object(json_object(&batch, 1).expect("encode"));
        assert_eq!(row["name"], Value::Null);
        assert_eq!(row["ratio"], Value::from("NaN"));
    }

    /// The former writer: a tree per value, then its text.
    /// Row `row` of `batch` as JSON object text with the fields in column order (a
    /// `serde_json::Map` would sort them), so a schema inferred from it keeps the columns' order.
    fn json_text_reference(batch: &RecordBatch, row: usize) -> Result<String, FormatError> {
        let mut out = String::from("{");
        for (i, (field, column)) in batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::from(field.name().as_str()).to_string());
            out.push(':');
            out.push_str(&json_value(column.as_ref(), row)?.to_string());
        }
        out.push('}');
        Ok(out)
    }

    #[test]
    fn json_rows_are_the_text_of_each_value_in_column_order() {
        use arrow_array::{
            BooleanArray, Date32Array, Int64Array, IntervalMonthDayNanoArray, LargeStringArray,
            ListArray, StringViewArray, UInt64Array,
        };
        let mut columns: Vec<(&str, arrow_array::ArrayRef)> = vec![
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                "i64",
                Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])),
            ),
            ("u64", Arc::new(UInt64Array::from(vec![u64::MAX, 0, 7]))),
            (
                "f",
                Arc::new(Float64Array::from(vec![f64::INFINITY, -0.0, 1e-300 / 3.0])),
            ),
            (
                "esc \"key\"",
                Arc::new(StringArray::from(vec![
                    "tab\t nl\n \u{1} é \"q\" \\",
                    "",
                    "x",
                ])),
            ),
            (
                "large",
                Arc::new(LargeStringArray::from(vec![Some("l"), None, Some("ß")])),
            ),
            (
                "view",
                Arc::new(StringViewArray::from(vec![
                    "a much longer string than twelve",
                    "v",
                    "",
                ])),
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![Some(0), None, Some(19844)])),
            ),
            (
                "span",
                Arc::new(IntervalMonthDayNanoArray::from(vec![
                    arrow_buffer::IntervalMonthDayNano::new(1, 2, 3_000_000_000),
                    arrow_buffer::IntervalMonthDayNano::new(0, 0, 0),
                    arrow_buffer::IntervalMonthDayNano::new(-1, 0, 5),
                ])),
            ),
            (
                "list",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1), None]),
                    None,
                    Some(vec![]),
                ])),
            ),
        ];
        let base = sample();
        let base_schema = base.schema();
        for (i, f) in base_schema.fields().iter().enumerate() {
            let c = base.column(i);
            let third = arrow_select::concat::concat(&[c.as_ref(), c.slice(0, 1).as_ref()])
                .expect("concat");
            columns.push((f.name().as_str(), third));
        }
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let rows = encode_values(Format::Json, &batch).expect("encode");
        assert_eq!(rows.len(), 3);
        for (row, got) in rows.iter().enumerate() {
            let got = String::from_utf8(got.clone().expect("a value")).expect("utf-8");
            assert_eq!(
                got,
                json_text_reference(&batch, row).expect("reference"),
                "row {row}"
            );
            let _: Value = serde_json::from_str(&got).expect("valid JSON");
        }
        let empty = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .expect("batch");
        assert_eq!(
            encode_values(Format::Json, &empty).expect("encode"),
            vec![Some(b"{}".to_vec())]
        );
    }

    #[test]
    fn json_and_csv_round_trip_through_the_decoder() {
        let batch = sample();
        // NaN does not survive JSON as a number; compare the other columns.
        let schema = Arc::new(batch.schema().project(&[0, 1, 2, 3, 4]).expect("project"));
        let batch = batch.project(&[0, 1, 2, 3, 4]).expect("project");
        for format in [Format::Json, Format::Csv { delimiter: b',' }] {
            let values = encode_values(format, &batch).expect("encode");
            let mut decoder = RecordDecoder::new(format, schema.clone(), &[]).expect("decoder");
            for v in &values {
                decoder.decode(v.as_deref()).expect("decode");
            }
            let columns = decoder.finish();
            let back = RecordBatch::try_new(schema.clone(), columns).expect("batch");
            if format == Format::Json {
                assert_eq!(back, batch, "{format:?}");
            } else {
                // CSV carries bytes as base64 text, which a BYTEA column reads as its text.
                assert_eq!(
                    back.project(&[0, 1, 2, 3]).expect("p"),
                    batch.project(&[0, 1, 2, 3]).expect("p")
                );
            }
        }
    }

    #[test]
    fn csv_quotes_what_needs_it_and_leaves_null_empty() {
        let batch = sample().project(&[0, 1]).expect("project");
        let values = encode_values(Format::Csv { delimiter: b',' }, &batch).expect("encode");
        assert_eq!(values[0].as_deref(), Some(&b"1,\"a,\"\"b\"\"\""[..]));
        assert_eq!(values[1].as_deref(), Some(&b"2,"[..]));
    }

    #[test]
    fn text_and_bytes_take_one_column() {
        let batch = sample();
        assert!(matches!(
            encode_values(Format::Text, &batch),
            Err(FormatError::OneColumn { got: 6, .. })
        ));
        let names = batch.project(&[1]).expect("project");
        let values = encode_values(Format::Text, &names).expect("encode");
        assert_eq!(values, vec![Some(b"a,\"b\"".to_vec()), None]);
    }
}
