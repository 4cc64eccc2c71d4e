//! Record values into Arrow columns, one record at a time.

use std::borrow::Cow;

use arrow_array::ArrayRef;
use arrow_schema::{DataType, SchemaRef};
use serde_json::Value;

use crate::cell::{Builder, Cell};
use crate::error::{DecodeError, DecodeErrorKind, FormatError};
use crate::json::{self, Json, Slot};

/// How a topic's record values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON object per record; fields by column name.
    Json,
    /// One CSV line per record, fields in column order.
    Csv { delimiter: u8 },
    /// The whole value as one BYTEA column (a null value is NULL).
    Bytes,
    /// The whole value as one UTF-8 text column (a null value is NULL).
    Text,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv { .. } => "csv",
            Format::Bytes => "bytes",
            Format::Text => "text",
        }
    }
}

pub(crate) struct Column {
    pub(crate) name: String,
    nullable: bool,
    pub(crate) builder: Builder,
    /// The value of a missing field (a missing field without one is NULL).
    default: Option<Cell<'static>>,
}

/// Decodes record values into the columns of a schema; see the crate's documentation.
pub struct RecordDecoder {
    format: Format,
    columns: Vec<Column>,
    rows: usize,
}

impl RecordDecoder {
    /// A decoder for `schema`'s columns. `defaults[i]` is column i's DEFAULT as JSON (what
    /// [`crate::encode`] writes for the constant), converted once here.
    pub fn new(
        format: Format,
        schema: SchemaRef,
        defaults: &[Option<Value>],
    ) -> Result<RecordDecoder, FormatError> {
        if matches!(format, Format::Bytes | Format::Text) && schema.fields().len() != 1 {
            return Err(FormatError::OneColumn {
                format: format.name(),
                got: schema.fields().len(),
            });
        }
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let supported = match format {
                Format::Bytes => {
                    matches!(field.data_type(), DataType::Binary | DataType::LargeBinary)
                }
                Format::Text => matches!(
                    field.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ),
                Format::Json | Format::Csv { .. } => true,
            };
            let builder = Builder::new(field.data_type())
                .filter(|_| supported)
                .ok_or_else(|| FormatError::UnsupportedType {
                    column: field.name().clone(),
                    data_type: field.data_type().clone(),
                    format: format.name(),
                })?;
            let default = match defaults.get(i).and_then(Option::as_ref) {
                None => None,
                Some(v) => Some(
                    builder
                        .convert_json(Json::of(v))
                        .map(Cell::into_owned)
                        .map_err(|message| FormatError::Default {
                            column: field.name().clone(),
                            source: DecodeError::in_column(
                                DecodeErrorKind::Type,
                                field.name(),
                                message,
                            ),
                        })?,
                ),
            };
            columns.push(Column {
                name: field.name().clone(),
                nullable: field.is_nullable(),
                builder,
                default,
            });
        }
        Ok(RecordDecoder {
            format,
            columns,
            rows: 0,
        })
    }

    /// Rows decoded since the last [`RecordDecoder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes one record value (`None`: a null value) into a row, or says why it cannot,
    /// leaving the columns unchanged.
    pub fn decode(&mut self, value: Option<&[u8]>) -> Result<(), DecodeError> {
        let mut cells = Vec::with_capacity(self.columns.len());
        self.convert(value, &mut cells)?;
        for (column, cell) in self.columns.iter_mut().zip(&cells) {
            column.builder.push(cell);
        }
        self.rows += 1;
        Ok(())
    }

    fn convert<'a>(
        &self,
        value: Option<&'a [u8]>,
        cells: &mut Vec<Cell<'a>>,
    ) -> Result<(), DecodeError> {
        match self.format {
            Format::Bytes => cells.push(value.map_or(Cell::Null, |v| Cell::Bin(Cow::Borrowed(v)))),
            Format::Text => cells.push(match value {
                None => Cell::Null,
                Some(v) => Cell::Str(Cow::Borrowed(
                    std::str::from_utf8(v)
                        .map_err(|e| DecodeError::parse(format!("not UTF-8: {e}")))?,
                )),
            }),
            Format::Json => {
                let value = value.ok_or_else(|| DecodeError::parse("the record has no value"))?;
                let mut slots: Vec<Slot<'a>> = std::iter::repeat_with(|| Slot::Missing)
                    .take(self.columns.len())
                    .collect();
                json::read_object(value, &self.columns, &mut slots).map_err(|e| match e {
                    None => DecodeError::parse("not a JSON object"),
                    Some(e) => DecodeError::parse(format!("invalid JSON: {e}")),
                })?;
                for (column, slot) in self.columns.iter().zip(slots) {
                    let cell = match slot {
                        Slot::Missing => column.default.clone().unwrap_or(Cell::Null),
                        Slot::Exact(converted) | Slot::Folded(converted) => {
                            converted.map_err(|message| {
                                DecodeError::in_column(DecodeErrorKind::Type, &column.name, message)
                            })?
                        }
                    };
                    cells.push(check_null(column, cell)?);
                }
            }
            Format::Csv { delimiter } => {
                let value = value.ok_or_else(|| DecodeError::parse("the record has no value"))?;
                let line = std::str::from_utf8(value)
                    .map_err(|e| DecodeError::parse(format!("not UTF-8: {e}")))?;
                let fields = split_csv(line.trim_end_matches(['\r', '\n']), delimiter)?;
                if fields.len() > self.columns.len() {
                    return Err(DecodeError::parse(format!(
                        "{} fields for {} columns",
                        fields.len(),
                        self.columns.len()
                    )));
                }
                for (i, column) in self.columns.iter().enumerate() {
                    let cell = match fields.get(i) {
                        None => column.default.clone().unwrap_or(Cell::Null),
                        // An empty unquoted field is NULL, as in PostgreSQL's COPY CSV.
                        Some(CsvField {
                            text,
                            quoted: false,
                        }) if text.is_empty() => Cell::Null,
                        Some(f) => column.builder.convert_text(&f.text).map_err(|message| {
                            DecodeError::in_column(DecodeErrorKind::Type, &column.name, message)
                        })?,
                    };
                    cells.push(check_null(column, cell)?);
                }
            }
        }
        Ok(())
    }

    /// The columns decoded so far, in schema order; the decoder starts a new batch.
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.columns
            .iter_mut()
            .map(|c| c.builder.finish())
            .collect()
    }
}

fn check_null<'a>(column: &Column, cell: Cell<'a>) -> Result<Cell<'a>, DecodeError> {
    if cell == Cell::Null && !column.nullable {
        return Err(DecodeError::in_column(
            DecodeErrorKind::NotNull,
            &column.name,
            "null value in a NOT NULL column".to_string(),
        ));
    }
    Ok(cell)
}

struct CsvField {
    text: String,
    quoted: bool,
}

/// Splits one CSV record (RFC 4180 quoting: `"a ""b"""`, delimiters inside quotes).
fn split_csv(line: &str, delimiter: u8) -> Result<Vec<CsvField>, DecodeError> {
    let delimiter = char::from(delimiter);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut text = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(DecodeError::parse("unterminated quoted CSV field")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some(c) => text.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(CsvField { text, quoted });
                    return Ok(fields);
                }
                Some(c) if c == delimiter => {}
                Some(c) => {
                    return Err(DecodeError::parse(format!(
                        "unexpected {c:?} after a quoted CSV field"
                    )))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(CsvField { text, quoted });
                        return Ok(fields);
                    }
                    Some(c) if c == delimiter => break,
                    Some(c) => text.push(c),
                }
            }
        }
        fields.push(CsvField { text, quoted });
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
