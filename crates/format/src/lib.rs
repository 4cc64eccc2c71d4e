//! Record formats and Arrow: how a topic's record values become Arrow rows and rows become
//! record values, shared by the streaming engine and the SQL layer.
//!
//! - [`RecordDecoder`] decodes one record at a time into column builders (JSON, CSV, or the
//!   whole value as one `bytes`/`text` column). A record that fails is reported with a
//!   [`DecodeError`] naming its kind (`parse`, `type`, `not_null`) and leaves the builders as
//!   they were, so the caller can route it to a dead-letter topic and keep going. JSON
//!   distinguishes a missing field (the column's default, else NULL) from an explicit `null`,
//!   and reads each object in one pass from its bytes into the columns' cells (`json`).
//! - [`encode`] turns Arrow rows into JSON objects (timestamps RFC 3339, decimals as strings,
//!   binary as base64), which the JSON decoder reads back to the same values; a batch's rows
//!   are written column by column (`json_rows`).
//! - [`infer`] proposes a schema from a sample of JSON records.

mod base64;
mod cell;
mod decimal;
mod decode;
pub mod encode;
mod error;
pub mod infer;
mod json;
mod json_rows;
mod temporal;

pub use decode::{Format, RecordDecoder};
pub use error::{DecodeError, DecodeErrorKind, FormatError};
