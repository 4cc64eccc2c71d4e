//! A batch's rows as JSON object texts, column by column: each column's writer (and, for the
//! types Arrow displays, its formatter) and each quoted key are prepared once per batch, and
//! every value is written straight into its row's bytes with serde_json's escaping. The text
//! is the one [`crate::encode::json_value`] gives, field by field in column order.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;

use crate::encode::{float, json_value};
use crate::error::FormatError;

/// How one column's values are written.
enum Writer<'a> {
    Int(Box<dyn Fn(usize) -> i64 + 'a>),
    UInt(&'a PrimitiveArray<UInt64Type>),
    Float(Box<dyn Fn(usize) -> f64 + 'a>),
    Bool(&'a arrow_array::BooleanArray),
    Str(Box<dyn Fn(usize) -> &'a str + 'a>),
    /// Decimals, dates, times, timestamps, intervals: Arrow's display, as a JSON string.
    Display(ArrayFormatter<'a>),
    /// Binary, lists, structs and the rest: through the value tree (rare in streams).
    Tree(&'a dyn Array),
}

fn int<'a, T>(array: &'a dyn Array) -> Writer<'a>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    let a = array.as_primitive::<T>();
    Writer::Int(Box::new(move |row| a.value(row).into()))
}

impl<'a> Writer<'a> {
    fn new(array: &'a dyn Array) -> Result<Writer<'a>, FormatError> {
        Ok(match array.data_type() {
            DataType::Boolean => Writer::Bool(array.as_boolean()),
            DataType::Int8 => int::<Int8Type>(array),
            DataType::Int16 => int::<Int16Type>(array),
            DataType::Int32 => int::<Int32Type>(array),
            DataType::Int64 => int::<Int64Type>(array),
            DataType::UInt8 => int::<UInt8Type>(array),
            DataType::UInt16 => int::<UInt16Type>(array),
            DataType::UInt32 => int::<UInt32Type>(array),
            DataType::UInt64 => Writer::UInt(array.as_primitive::<UInt64Type>()),
            DataType::Float32 => {
                let a = array.as_primitive::<Float32Type>();
                Writer::Float(Box::new(move |row| f64::from(a.value(row))))
            }
            DataType::Float64 => {
                let a = array.as_primitive::<Float64Type>();
                Writer::Float(Box::new(move |row| a.value(row)))
            }
            DataType::Utf8 => {
                let a = array.as_string::<i32>();
                Writer::Str(Box::new(move |row| a.value(row)))
            }
            DataType::LargeUtf8 => {
                let a = array.as_string::<i64>();
                Writer::Str(Box::new(move |row| a.value(row)))
            }
            DataType::Utf8View => {
                let a = array.as_string_view();
                Writer::Str(Box::new(move |row| a.value(row)))
            }
            DataType::Null
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::Struct(_) => Writer::Tree(array),
            _ => Writer::Display(ArrayFormatter::try_new(array, &FormatOptions::default())?),
        })
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut String,
        row: usize,
    ) -> Result<(), FormatError> {
        match self {
            Writer::Int(value) => write_json(out, &value(row)),
            Writer::UInt(a) => write_json(out, &a.value(row)),
            Writer::Bool(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            Writer::Float(value) => match value(row) {
                f if f.is_finite() => write_json(out, &f),
                // JSON has no NaN nor infinities: the strings `json_value` writes.
                f => write_json(out, &float(f)),
            },
            Writer::Str(value) => write_json(out, value(row)),
            Writer::Display(formatter) => {
                scratch.clear();
                formatter.value(row).write(scratch)?;
                write_json(out, scratch.as_str());
            }
            Writer::Tree(array) => write_json(out, &json_value(*array, row)?),
        }
        Ok(())
    }
}

/// Appends `value`'s JSON text (serde_json writing into a `Vec` cannot fail).
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).expect("serializing into memory");
}

/// Every row of `batch` as a JSON object's text, the fields in column order (a
/// `serde_json::Map` would sort them, and a schema inferred from the records keeps this order).
pub(crate) fn json_rows(batch: &RecordBatch) -> Result<Vec<Vec<u8>>, FormatError> {
    let schema = batch.schema();
    let mut keys = Vec::with_capacity(batch.num_columns());
    let mut writers = Vec::with_capacity(batch.num_columns());
    for (i, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
        let mut key = Vec::from(if i == 0 { &b"{"[..] } else { &b","[..] });
        write_json(&mut key, field.name().as_str());
        key.push(b':');
        keys.push(key);
        writers.push((column.as_ref(), Writer::new(column.as_ref())?));
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut scratch = String::new();
    let mut size = 16;
    for row in 0..batch.num_rows() {
        let mut out = Vec::with_capacity(size);
        if keys.is_empty() {
            out.push(b'{');
        }
        for (key, (array, writer)) in keys.iter().zip(&writers) {
            out.extend_from_slice(key);
            if array.is_null(row) {
                out.extend_from_slice(b"null");
            } else {
                writer.write(&mut out, &mut scratch, row)?;
            }
        }
        out.push(b'}');
        size = size.max(out.len());
        rows.push(out);
    }
    Ok(rows)
}
