//! Errors of decoding one record and of setting a decoder up.

use arrow_schema::{ArrowError, DataType};

/// What went wrong with a record, as dead-letter headers name it (`weir.error.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The value is not valid JSON / CSV / UTF-8.
    Parse,
    /// A field's value does not fit its column's type.
    Type,
    /// A NOT NULL column got NULL (explicitly, or missing without a default).
    NotNull,
}

impl DecodeErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Parse => "parse",
            DecodeErrorKind::Type => "type",
            DecodeErrorKind::NotNull => "not_null",
        }
    }
}

/// One record could not be decoded; the decoder's builders are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", column.as_ref().map(|c| format!("column {c}: ")).unwrap_or_default())]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// The column concerned, when there is one.
    pub column: Option<String>,
    pub message: String,
}

impl DecodeError {
    pub(crate) fn parse(message: impl Into<String>) -> DecodeError {
        DecodeError {
            kind: DecodeErrorKind::Parse,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_column(kind: DecodeErrorKind, column: &str, message: String) -> DecodeError {
        DecodeError {
            kind,
            column: Some(column.to_string()),
            message,
        }
    }
}

/// A decoder or encoder cannot be built for this schema, or Arrow refused a batch.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("column {column}: type {data_type} is not supported by format {format}")]
    UnsupportedType {
        column: String,
        data_type: DataType,
        format: &'static str,
    },
    #[error("format {format} has exactly one column, got {got}")]
    OneColumn { format: &'static str, got: usize },
    #[error("default of column {column}: {source}")]
    Default {
        column: String,
        #[source]
        source: DecodeError,
    },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}
