//! Kafka wire framing, request decoding and response encoding for Weir. No I/O.
//!
//! Data flow: the broker reads a length-prefixed frame off a socket ([`frame`]), hands its bytes
//! to [`decode_request`], which checks the API key and version against Weir's version table
//! ([`versions`]) before decoding the body with the `kafka-protocol` crate. Handlers build
//! response structs, and [`encode_response`] frames them with the right response header
//! version. Record batches inside Produce and Fetch stay opaque `Bytes`: the storage engine
//! reads their headers, nothing here decodes records.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod request;
mod response;
pub mod versions;

pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError;
pub use kafka_protocol::messages::ApiKey;
pub use request::{decode_request, DecodeError, Request, RequestFrame};
pub use response::{
    encode_api_versions_fallback, encode_response, EncodeError, Splicer, SPLICE_MIN_BYTES,
};
