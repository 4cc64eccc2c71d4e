//! Response encoding: length prefix, response header, body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::versions;

/// A response struct could not be encoded at the requested version: a bug in a handler (a field
/// set that the version cannot carry), never the peer's fault.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {message}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub message: String,
}

/// Frames `body` as the response to request `correlation_id` of `api_key` at `version`.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let err = |e: anyhow_display::Shown| EncodeError {
        api_key,
        version,
        message: e.0,
    };
    let header_version = api_key.response_header_version(version);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let size = header
        .compute_size(header_version)
        .map_err(|e| err(e.into()))?
        + body.compute_size(version).map_err(|e| err(e.into()))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(i32::try_from(size).map_err(|e| err(e.into()))?);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| err(e.into()))?;
    body.encode(&mut buf, version).map_err(|e| err(e.into()))?;
    Ok(buf.freeze())
}

/// The answer to an ApiVersions request at a version Weir does not know: v0, error
/// UNSUPPORTED_VERSION, and the version list, so the client can retry with a version it shares.
pub fn encode_api_versions_fallback(correlation_id: i32) -> Result<Bytes, EncodeError> {
    let mut body = ApiVersionsResponse::default();
    body.error_code = crate::ResponseError::UnsupportedVersion.code();
    body.api_keys = versions::advertised();
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}

mod anyhow_display {
    /// A codec error rendered to text (the codec's error type is `anyhow`).
    pub struct Shown(pub String);
    impl<E: std::fmt::Display> From<E> for Shown {
        fn from(e: E) -> Self {
            Shown(format!("{e:#}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;

    #[test]
    fn api_versions_fallback_is_v0_with_error_35() {
        let mut b = encode_api_versions_fallback(42).expect("encode");
        let len = b.get_i32() as usize;
        assert_eq!(len, b.remaining());
        assert_eq!(b.get_i32(), 42); // correlation id, header v0
        assert_eq!(b.get_i16(), 35);
        assert_eq!(b.get_i32() as usize, versions::SUPPORTED.len());
    }
}
