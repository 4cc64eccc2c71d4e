//! The engine's seam to record formats: a [`SourceDecoder`] turns records read from a topic
//! into Arrow rows, a [`SinkEncoder`] turns rows into records. The formats proper (JSON, CSV)
//! live elsewhere and plug in through these traits; [`BytesDecoder`] and [`BytesEncoder`]
//! (raw bytes and metadata columns) are the engine's own, for `format = 'bytes'` and tests.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int32Builder, Int64Builder, TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use weir_storage::records::Headers;

/// A record as read from a source partition, borrowed from the read buffer.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

/// Why one record could not be decoded. The record goes to its source's dead-letter topic
/// (when it has one) with this error in its headers, and is counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DecodeFailure {
    /// `parse`, `type`, `not_null`...
    pub kind: &'static str,
    pub message: String,
}

/// Decodes records into rows of [`SourceDecoder::schema`], buffered until [`flush`].
///
/// [`flush`]: SourceDecoder::flush
pub trait SourceDecoder: Send {
    fn schema(&self) -> SchemaRef;
    /// Appends `rec`'s row; on failure nothing of it is kept.
    fn push(&mut self, rec: &RecordRef<'_>) -> Result<(), DecodeFailure>;
    /// The rows pushed since the last flush (possibly none).
    fn flush(&mut self) -> Result<RecordBatch, ArrowError>;
}

/// A record to write to a sink topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: i64,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl SinkRecord {
    /// A record without headers.
    pub fn new(key: Option<Bytes>, value: Option<Bytes>, timestamp: i64) -> SinkRecord {
        SinkRecord {
            key,
            value,
            timestamp,
            headers: Vec::new(),
        }
    }

    /// Bytes held, for the memory budget.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 8)
            .sum();
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + headers
            + 24
    }
}

/// Encodes rows into records.
pub trait SinkEncoder: Send {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<SinkRecord>) -> Result<(), String>;
}

/// `format = 'bytes'`: the value as `value BYTEA`, with the record's metadata columns
/// `_key BYTEA, _partition INT, _offset BIGINT, _timestamp TIMESTAMP(ms)`.
pub struct BytesDecoder {
    schema: SchemaRef,
    value: BinaryBuilder,
    key: BinaryBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
}

impl BytesDecoder {
    pub fn new() -> BytesDecoder {
        BytesDecoder {
            schema: BytesDecoder::output_schema(),
            value: BinaryBuilder::new(),
            key: BinaryBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMillisecondBuilder::new(),
        }
    }

    pub fn output_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("value", DataType::Binary, true),
            Field::new("_key", DataType::Binary, true),
            Field::new("_partition", DataType::Int32, false),
            Field::new("_offset", DataType::Int64, false),
            Field::new(
                "_timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]))
    }
}

impl Default for BytesDecoder {
    fn default() -> Self {
        BytesDecoder::new()
    }
}

impl SourceDecoder for BytesDecoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn push(&mut self, rec: &RecordRef<'_>) -> Result<(), DecodeFailure> {
        self.value.append_option(rec.value);
        self.key.append_option(rec.key);
        self.partition.append_value(rec.partition);
        self.offset.append_value(rec.offset);
        self.timestamp.append_value(rec.timestamp);
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.value.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// Writes one binary or text column as the value, optionally another as the key (binary,
/// text, or a BIGINT written as its decimal text); the record timestamp is the append time.
pub struct BytesEncoder {
    pub value_col: usize,
    pub key_col: Option<usize>,
}

fn bytes_at(array: &dyn Array, row: usize) -> Result<Option<Bytes>, String> {
    if array.is_null(row) {
        return Ok(None);
    }
    Ok(Some(match array.data_type() {
        DataType::Binary => Bytes::copy_from_slice(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Bytes::copy_from_slice(array.as_binary::<i64>().value(row)),
        DataType::Utf8 => Bytes::copy_from_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::Int64 => Bytes::from(array.as_primitive::<Int64Type>().value(row).to_string()),
        other => return Err(format!("the bytes format cannot write a {other} column")),
    }))
}

impl SinkEncoder for BytesEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<SinkRecord>) -> Result<(), String> {
        let column = |i: usize| {
            batch
                .columns()
                .get(i)
                .cloned()
                .ok_or_else(|| format!("no column {i} in {}", batch.schema()))
        };
        let value = column(self.value_col)?;
        let key = self.key_col.map(column).transpose()?;
        let now = now_ms();
        for row in 0..batch.num_rows() {
            out.push(SinkRecord::new(
                match &key {
                    Some(k) => bytes_at(k.as_ref(), row)?,
                    None => None,
                },
                bytes_at(value.as_ref(), row)?,
                now,
            ));
        }
        Ok(())
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
