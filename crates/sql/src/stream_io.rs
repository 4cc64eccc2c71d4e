//! A source's records into the rows a pipeline computes on, and rows into sink records: the
//! SQL layer's formats (`weir-format`) and metadata columns plugged into the streaming
//! runtime's [`SourceDecoder`] and [`SinkEncoder`].

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use weir_format::{Format, RecordDecoder};
use weir_stream::format::{DecodeFailure, RecordRef, SinkEncoder, SinkRecord, SourceDecoder};

use crate::source::SourceDef;
use crate::table::MetaColumns;

/// Decodes a source's records into its full schema: payload columns, then the `INCLUDE`d
/// metadata columns.
pub struct SqlDecoder {
    def: Arc<SourceDef>,
    decoder: RecordDecoder,
    meta: MetaColumns,
}

impl SqlDecoder {
    pub fn new(def: Arc<SourceDef>) -> Result<SqlDecoder, weir_format::FormatError> {
        let defaults: Vec<Option<serde_json::Value>> = def
            .defaults
            .iter()
            .map(|d| d.as_ref().map(|d| d.json.clone()))
            .collect();
        let decoder = RecordDecoder::new(def.format, def.payload.clone(), &defaults)?;
        Ok(SqlDecoder {
            def,
            decoder,
            meta: MetaColumns::default(),
        })
    }
}

impl SourceDecoder for SqlDecoder {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    fn push(&mut self, rec: &RecordRef<'_>) -> Result<(), DecodeFailure> {
        self.decoder.decode(rec.value).map_err(|e| DecodeFailure {
            kind: e.kind.as_str(),
            message: e.to_string(),
        })?;
        if !self.def.includes.is_empty() {
            let headers = rec
                .headers
                .iter()
                .map(|h| {
                    (
                        String::from_utf8_lossy(h.key).into_owned(),
                        h.value.map(Bytes::copy_from_slice),
                    )
                })
                .collect();
            self.meta.push_parts(
                rec.key.map(Bytes::copy_from_slice),
                rec.partition,
                rec.offset,
                rec.timestamp,
                headers,
            );
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = self.decoder.rows();
        let mut columns = self.decoder.finish();
        for (m, _) in &self.def.includes {
            columns.push(self.meta.finish(*m));
        }
        self.meta.clear();
        RecordBatch::try_new_with_options(
            self.def.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
    }
}

/// Writes each row as one keyless record value in `format` (§8: JSON objects named by the
/// columns), timestamped when encoded.
pub struct RowEncoder {
    pub format: Format,
}

impl SinkEncoder for RowEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<SinkRecord>) -> Result<(), String> {
        let values =
            weir_format::encode::encode_values(self.format, batch).map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        out.extend(
            values
                .into_iter()
                .map(|v| SinkRecord::new(None, v.map(Bytes::from), now)),
        );
        Ok(())
    }
}

/// Writes an updating result (or an append-only one given a key) as upserts (§8): the key is
/// the JSON object of the key columns, the value the row in `format`, a retraction a
/// tombstone. An update, a retraction then an insertion of the same key, collapses to the
/// new row in the sink.
pub struct UpsertEncoder {
    pub format: Format,
    /// Key columns (indices into the row without `_retract`); none: one row, key `{}`.
    pub key: Vec<usize>,
    /// Whether rows end in `_retract`.
    pub updating: bool,
    /// Trailing columns (before `_retract`) that only carry the key: not written as values
    /// (design §5.4, hidden columns).
    pub hidden: usize,
}

impl SinkEncoder for UpsertEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<SinkRecord>) -> Result<(), String> {
        let width = batch.num_columns() - usize::from(self.updating);
        let row = batch
            .project(&(0..width).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?;
        let values = row
            .project(&(0..width.saturating_sub(self.hidden)).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?;
        let retract = match self.updating {
            true => Some(
                batch
                    .column(width)
                    .as_boolean_opt()
                    .ok_or("_retract is not a boolean column")?
                    .clone(),
            ),
            false => None,
        };
        let keys = if self.key.is_empty() {
            vec![Some(b"{}".to_vec()); batch.num_rows()]
        } else {
            let key = row.project(&self.key).map_err(|e| e.to_string())?;
            weir_format::encode::encode_values(Format::Json, &key).map_err(|e| e.to_string())?
        };
        let encoded =
            weir_format::encode::encode_values(self.format, &values).map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for (row, (key, value)) in keys.into_iter().zip(encoded).enumerate() {
            let deleted = retract.as_ref().is_some_and(|r| r.value(row));
            let value = if deleted {
                None
            } else {
                value.map(Bytes::from)
            };
            out.push(SinkRecord::new(key.map(Bytes::from), value, now));
        }
        Ok(())
    }
}
