//! Response encoding: length prefix, response header, body.
//!
//! [`Splicer`] encodes a response whose large byte fields (the record batches of a Fetch)
//! stay in the buffers they were read into: the frame becomes a list of parts written with
//! one vectored write, instead of one buffer the batches were copied into.

use std::hash::BuildHasher;
use std::sync::OnceLock;

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

/// Byte fields shorter than this are copied into the frame: below it another part of a
/// vectored write costs more than the copy it saves.
pub const SPLICE_MIN_BYTES: usize = 4096;

const TOKEN_LEN: usize = 16;

/// Encodes a response with some byte fields left out of the copy.
///
/// The handler builds its response with each large byte field replaced by the stand-in
/// [`Splicer::stand_in`] returns: a 16-byte token made of a per-process random secret and the
/// field's number. The response is encoded as usual (cheap: it holds no bulk data), then cut
/// at every token, whose length prefix is rewritten for the real bytes. The codec thus keeps
/// deciding the layout at every version; this only swaps bytes it wrote. The secret never
/// leaves the process (every token is replaced), so no peer-chosen string such as a topic
/// name can imitate one, and each cut is checked against the length prefix the codec must
/// have written before it.
#[derive(Debug, Default)]
pub struct Splicer {
    fields: Vec<Bytes>,
}

impl Splicer {
    pub fn new() -> Splicer {
        Splicer::default()
    }

    /// What to put in the response in place of `data`: `data` itself when it is small, else
    /// a token that [`Splicer::encode`] replaces with `data`, uncopied.
    pub fn stand_in(&mut self, data: Bytes) -> Bytes {
        if data.len() < SPLICE_MIN_BYTES {
            return data;
        }
        let token = token(self.fields.len());
        self.fields.push(data);
        Bytes::copy_from_slice(&token)
    }

    /// Bytes the stand-ins will put back.
    pub fn spliced_bytes(&self) -> usize {
        self.fields.iter().map(Bytes::len).sum()
    }

    /// Frames `body` like [`encode_response`], as parts to be written in order.
    pub fn encode<R: Encodable>(
        self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &R,
    ) -> Result<Vec<Bytes>, EncodeError> {
        let framed = encode_response(api_key, version, correlation_id, body)?;
        if self.fields.is_empty() {
            return Ok(vec![framed]);
        }
        let err = |message: String| EncodeError {
            api_key,
            version,
            message,
        };
        // Where each token is, and the length prefix the codec wrote before it.
        let mut cuts = Vec::with_capacity(self.fields.len());
        let mut from = LENGTH;
        let mut size = framed.len() - LENGTH;
        for (i, data) in self.fields.iter().enumerate() {
            let token = token(i);
            let at = framed
                .get(from..)
                .and_then(|rest| find(rest, &token))
                .map(|p| from + p)
                .ok_or_else(|| err(format!("spliced field {i} is missing from the encoding")))?;
            let before = framed.get(..at).unwrap_or_default();
            let prefix = if before.ends_with(&(TOKEN_LEN as i32).to_be_bytes()) {
                Prefix::Int32
            } else if before.ends_with(&[TOKEN_LEN as u8 + 1]) {
                Prefix::UnsignedVarint
            } else {
                return Err(err(format!(
                    "spliced field {i} is not preceded by its length"
                )));
            };
            let new_prefix = prefix.encode(data.len()).map_err(err)?;
            size = size - prefix.len() - TOKEN_LEN + new_prefix.len() + data.len();
            cuts.push((at - prefix.len(), new_prefix, at + TOKEN_LEN));
            from = at + TOKEN_LEN;
        }
        let size = i32::try_from(size).map_err(|_| err(format!("{size} bytes is too long")))?;
        let mut parts = Vec::with_capacity(2 * cuts.len() + 1);
        let mut glue = BytesMut::new();
        glue.put_i32(size);
        let mut from = LENGTH;
        for ((start, new_prefix, end), data) in cuts.into_iter().zip(self.fields) {
            glue.extend_from_slice(framed.get(from..start).unwrap_or_default());
            glue.extend_from_slice(&new_prefix);
            parts.push(glue.split().freeze());
            parts.push(data);
            from = end;
        }
        let tail = framed.slice(from..);
        if !tail.is_empty() {
            parts.push(tail);
        }
        Ok(parts)
    }
}

/// Bytes of the frame's length prefix.
const LENGTH: usize = 4;

/// How the codec prefixed a byte field: `BYTES` (int32) or `COMPACT_BYTES` (length + 1 as an
/// unsigned varint).
#[derive(Debug, Clone, Copy)]
enum Prefix {
    Int32,
    UnsignedVarint,
}

impl Prefix {
    fn len(self) -> usize {
        match self {
            Prefix::Int32 => 4,
            Prefix::UnsignedVarint => 1,
        }
    }

    fn encode(self, len: usize) -> Result<Vec<u8>, String> {
        let too_long = || format!("field of {len} bytes is too long");
        match self {
            Prefix::Int32 => Ok(i32::try_from(len)
                .map_err(|_| too_long())?
                .to_be_bytes()
                .to_vec()),
            Prefix::UnsignedVarint => {
                let mut v = u32::try_from(len)
                    .ok()
                    .and_then(|l| l.checked_add(1))
                    .ok_or_else(too_long)?;
                let mut out = Vec::with_capacity(5);
                while v >= 0x80 {
                    out.push((v as u8) | 0x80);
                    v >>= 7;
                }
                out.push(v as u8);
                Ok(out)
            }
        }
    }
}

/// The `i`th token: the process's secret with `i` folded into its last four bytes.
fn token(i: usize) -> [u8; TOKEN_LEN] {
    static SECRET: OnceLock<[u8; TOKEN_LEN]> = OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        // RandomState is seeded from the OS's random source once per process.
        let state = std::collections::hash_map::RandomState::new();
        let (a, b) = (state.hash_one(1u64), state.hash_one(2u64));
        let mut s = [0u8; TOKEN_LEN];
        for (d, x) in s
            .iter_mut()
            .zip(a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
        {
            *d = x;
        }
        s
    });
    let mut t = *secret;
    for (b, x) in t
        .iter_mut()
        .skip(TOKEN_LEN - 4)
        .zip((i as u32).to_be_bytes())
    {
        *b ^= x;
    }
    t
}

fn find(haystack: &[u8], needle: &[u8; TOKEN_LEN]) -> Option<usize> {
    haystack.windows(TOKEN_LEN).position(|w| w == needle)
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
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn api_versions_fallback_is_v0_with_error_35() {
        let mut b = encode_api_versions_fallback(42).expect("encode");
        let len = b.get_i32() as usize;
        assert_eq!(len, b.remaining());
        assert_eq!(b.get_i32(), 42); // correlation id, header v0
        assert_eq!(b.get_i16(), 35);
        assert_eq!(b.get_i32() as usize, versions::SUPPORTED.len());
    }

    fn fetch_response(records: &[Bytes]) -> FetchResponse {
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        for (i, r) in records.iter().enumerate() {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.high_watermark = 1000 + i as i64;
            p.last_stable_offset = -1;
            p.records = Some(r.clone());
            p.aborted_transactions = Some(vec![AbortedTransaction::default()]);
            topic.partitions.push(p);
        }
        let mut response = FetchResponse::default();
        response.responses.push(topic);
        response
    }

    #[test]
    fn spliced_fetch_equals_the_copied_encoding_at_every_version() {
        let sizes = [
            SPLICE_MIN_BYTES,
            10,
            200_000,
            0,
            SPLICE_MIN_BYTES - 1,
            127,
            70_000,
        ];
        let records: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![i as u8 + 1; n]))
            .collect();
        for version in 4..=16 {
            let expected = encode_response(ApiKey::Fetch, version, 7, &fetch_response(&records))
                .expect("encode");
            let mut splicer = Splicer::new();
            let stand_ins: Vec<Bytes> = records
                .iter()
                .map(|r| splicer.stand_in(r.clone()))
                .collect();
            assert_eq!(splicer.spliced_bytes(), SPLICE_MIN_BYTES + 270_000);
            let parts = splicer
                .encode(ApiKey::Fetch, version, 7, &fetch_response(&stand_ins))
                .expect("splice");
            // The large fields are the original buffers, not copies.
            for r in records.iter().filter(|r| r.len() >= SPLICE_MIN_BYTES) {
                assert!(parts
                    .iter()
                    .any(|p| p.as_ptr() == r.as_ptr() && p.len() == r.len()));
            }
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, expected.to_vec(), "v{version}");
        }
    }

    #[test]
    fn a_response_without_stand_ins_is_one_part() {
        let parts = Splicer::new()
            .encode(
                ApiKey::Fetch,
                12,
                1,
                &fetch_response(&[Bytes::from_static(b"x")]),
            )
            .expect("encode");
        assert_eq!(parts.len(), 1);
    }
}
