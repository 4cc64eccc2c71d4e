//! A table's topic read as a changelog (design §5.1, tables): each record upserts the row of
//! its record key, a null value (tombstone) deletes it. [`TableDecoder`] turns records into
//! rows of the table's columns plus the record's key, offset and a deleted flag; the planner
//! ([`crate::plan`]'s table scans) keeps the last row per record key in keyed state (a
//! `TopN` of 1 by offset, descending) and drops the deleted ones, so what flows on is the
//! table's changes as retractions and insertions.
//!
//! The Kafka record key is the row's identity, as for log compaction: producers key each
//! record by its primary key (any encoding, one key per primary-key value; Weir's own
//! `INSERT` writes the JSON object of the key columns, `{"id":1}`), and a tombstone carries
//! that key. The key columns' values come from the record value. A record without a key
//! cannot name its row and is dead-lettered.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryBuilder, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use weir_format::{Format, RecordDecoder};
use weir_stream::format::{DecodeFailure, RecordRef, SourceDecoder};

use crate::source::SourceDef;

/// The record key column of a table's changelog rows.
pub const KEY: &str = "_weir_key";
/// The record offset column (orders a key's records).
pub const OFFSET: &str = "_weir_offset";
/// True for a tombstone.
pub const DELETED: &str = "_weir_deleted";

/// The changelog rows' schema: the table's columns (nullable: a tombstone has no values),
/// then [`KEY`], [`OFFSET`], [`DELETED`].
pub fn schema(def: &SourceDef) -> SchemaRef {
    let mut fields: Vec<Field> = def
        .payload
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(KEY, DataType::Binary, false));
    fields.push(Field::new(OFFSET, DataType::Int64, false));
    fields.push(Field::new(DELETED, DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

/// Decodes a table's records into changelog rows (see the module's documentation).
pub struct TableDecoder {
    schema: SchemaRef,
    /// Every column, nullable, so a tombstone decodes as a row of NULLs.
    rows: RecordDecoder,
    /// The NOT NULL columns (the key among them), strict: a value must pass it before its
    /// row is kept, so a bad row is dead-lettered as a source's would be. Its rows are
    /// discarded.
    check: Option<RecordDecoder>,
    keys: BinaryBuilder,
    offsets: Vec<i64>,
    deleted: Vec<bool>,
}

impl TableDecoder {
    pub fn new(def: &SourceDef) -> Result<TableDecoder, weir_format::FormatError> {
        let defaults: Vec<Option<serde_json::Value>> = def
            .defaults
            .iter()
            .map(|d| d.as_ref().map(|d| d.json.clone()))
            .collect();
        let schema = schema(def);
        let width = def.payload.fields().len();
        let nullable = Arc::new(Schema::new(schema.fields()[..width].to_vec()));
        let rows = RecordDecoder::new(Format::Json, nullable, &defaults)?;
        let strict: Vec<usize> = (0..width)
            .filter(|&i| !def.payload.field(i).is_nullable())
            .collect();
        let check = if strict.is_empty() {
            None
        } else {
            let fields = Schema::new(
                strict
                    .iter()
                    .map(|&i| def.payload.field(i).clone())
                    .collect::<Vec<_>>(),
            );
            let d: Vec<_> = strict
                .iter()
                .map(|&i| defaults.get(i).cloned().flatten())
                .collect();
            Some(RecordDecoder::new(Format::Json, Arc::new(fields), &d)?)
        };
        Ok(TableDecoder {
            schema,
            rows,
            check,
            keys: BinaryBuilder::new(),
            offsets: Vec::new(),
            deleted: Vec::new(),
        })
    }
}

fn failure(e: weir_format::DecodeError) -> DecodeFailure {
    DecodeFailure {
        kind: e.kind.as_str(),
        message: e.to_string(),
    }
}

impl SourceDecoder for TableDecoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn push(&mut self, rec: &RecordRef<'_>) -> Result<(), DecodeFailure> {
        let Some(key) = rec.key else {
            return Err(DecodeFailure {
                kind: "key",
                message: "a table's record needs a key (the row it upserts or deletes)".to_string(),
            });
        };
        match rec.value {
            None => self.rows.decode(Some(b"{}")).map_err(failure)?,
            Some(v) => {
                if let Some(check) = self.check.as_mut() {
                    check.decode(Some(v)).map_err(failure)?;
                }
                self.rows.decode(Some(v)).map_err(failure)?;
            }
        }
        self.keys.append_value(key);
        self.offsets.push(rec.offset);
        self.deleted.push(rec.value.is_none());
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, ArrowError> {
        if let Some(check) = self.check.as_mut() {
            check.finish();
        }
        let mut columns = self.rows.finish();
        columns.push(Arc::new(self.keys.finish()) as ArrayRef);
        columns.push(Arc::new(Int64Array::from(std::mem::take(
            &mut self.offsets,
        ))));
        columns.push(Arc::new(BooleanArray::from(std::mem::take(
            &mut self.deleted,
        ))));
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}
