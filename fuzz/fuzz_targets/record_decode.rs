//! What the SQL engine reads from a topic's record values (`weir_format::RecordDecoder`):
//! the first byte picks the format (JSON, CSV, text, bytes), the rest is one record value,
//! decoded into columns of every type a source can declare. Must never panic; a record is a
//! row or an error, and a refused record leaves the columns as they were.
#![no_main]

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use libfuzzer_sys::fuzz_target;
use weir_format::{Format, RecordDecoder};

fn schema(format: Format) -> Arc<Schema> {
    let fields = match format {
        Format::Bytes => vec![Field::new("b", DataType::Binary, true)],
        Format::Text => vec![Field::new("t", DataType::Utf8, true)],
        _ => vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("small", DataType::Int16, true),
            Field::new("n", DataType::Int32, true),
            Field::new("u", DataType::UInt64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("r", DataType::Float32, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                true,
            ),
            Field::new("blob", DataType::Binary, true),
            Field::new("large", DataType::LargeUtf8, true),
            Field::new("view", DataType::Utf8View, true),
        ],
    };
    Arc::new(Schema::new(fields))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    let format = match pick % 4 {
        0 => Format::Json,
        1 => Format::Csv { delimiter: b',' },
        2 => Format::Text,
        _ => Format::Bytes,
    };
    let schema = schema(format);
    let mut decoder = RecordDecoder::new(format, schema.clone(), &[]).expect("decoder");
    let value = (pick & 0x80 == 0).then_some(value);
    let decoded = decoder.decode(value);
    assert_eq!(decoder.rows(), usize::from(decoded.is_ok()));
    for column in decoder.finish() {
        assert_eq!(column.len(), usize::from(decoded.is_ok()));
    }
});
