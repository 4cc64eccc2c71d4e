//! A source's records into the rows a pipeline computes on, and rows into sink records: the
//! SQL layer's formats (`weir-format`) and metadata columns plugged into the streaming
//! runtime's [`SourceDecoder`] and [`SinkEncoder`].

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
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
