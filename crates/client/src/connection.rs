//! One TCP connection to one broker: version negotiation and request/response framing.
//!
//! A request goes out as `i32 length | RequestHeader | body`; the answer comes back as
//! `i32 length | ResponseHeader | body`. Header versions depend on the API and its version
//! (flexible versions add tagged fields), which `kafka-protocol` knows. The framing is kept in
//! pure functions ([`encode_request`], [`decode_response`]) so it can be tested without a socket.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{codes, ClientError};
use crate::security::{ClientSecurity, Stream};

/// The client id sent in every request header.
pub const CLIENT_ID: &str = "weir";

/// The request timeout used unless [`Connection::set_request_timeout`] changes it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Responses larger than this are refused instead of allocated: a corrupt or hostile length
/// prefix must not make the client reserve gigabytes.
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;

/// The versions of `api` this client speaks.
///
/// This is the one place that caps the versions `kafka-protocol` could encode: Fetch above 12,
/// Produce above 9 and Metadata above 12 identify topics by id instead of by name, and this
/// client addresses topics by name.
pub fn client_versions(api: ApiKey) -> VersionRange {
    let supported = api.valid_versions();
    let cap = match api {
        ApiKey::Fetch => 12,
        ApiKey::Produce => 9,
        ApiKey::Metadata => 12,
        _ => supported.max,
    };
    VersionRange {
        min: supported.min,
        max: supported.max.min(cap),
    }
}

/// The highest version of `api` both sides speak, given the broker's advertised ranges.
pub fn pick_version(api: ApiKey, broker: &HashMap<i16, VersionRange>) -> Result<i16, ClientError> {
    let theirs = broker
        .get(&(api as i16))
        .ok_or(ClientError::Unsupported { api })?;
    let both = client_versions(api).intersect(theirs);
    if both.is_empty() {
        return Err(ClientError::Unsupported { api });
    }
    Ok(both.max)
}

fn api_key_of<R: Request>() -> ApiKey {
    // Every generated request type carries a key `ApiKey` knows.
    ApiKey::try_from(R::KEY).unwrap_or_else(|()| panic!("unknown api key {}", R::KEY))
}

/// Encodes a complete request frame, length prefix included.
pub fn encode_request<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
) -> Result<BytesMut, ClientError> {
    let api = api_key_of::<R>();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0); // length, filled in below
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(protocol_error(
            api,
            format_args!("encode v{version} request header"),
        ))?;
    req.encode(&mut buf, version).map_err(protocol_error(
        api,
        format_args!("encode v{version} request"),
    ))?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| ClientError::Protocol {
        api,
        message: format!("request of {} bytes is too large to frame", buf.len()),
    })?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Checks and strips the response header of `frame` (length prefix already removed) and
/// returns the body.
pub fn split_response(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, ClientError> {
    // ApiVersions answers with header v0 whatever the request version, so a broker can answer
    // a client whose version it does not know; `response_header_version` encodes that rule.
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).map_err(
        protocol_error(api, format_args!("decode v{version} response header")),
    )?;
    if header.correlation_id != correlation_id {
        return Err(ClientError::Protocol {
            api,
            message: format!(
                "response correlation id {} does not match request {correlation_id}",
                header.correlation_id
            ),
        });
    }
    Ok(frame)
}

/// Decodes a response body of `api` at `version`.
pub fn decode_body<T: Decodable>(
    mut body: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<T, ClientError> {
    T::decode(&mut body, version).map_err(protocol_error(
        api,
        format_args!("decode v{version} response"),
    ))
}

/// [`split_response`] then [`decode_body`].
pub fn decode_response<R: Request>(
    frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, ClientError> {
    let api = api_key_of::<R>();
    let body = split_response(frame, api, version, correlation_id)?;
    decode_body(body, api, version)
}

/// Maps a `kafka-protocol` encode/decode failure (an `anyhow::Error`, whose chain is flattened
/// into the message) to [`ClientError::Protocol`].
pub(crate) fn protocol_error<E: std::fmt::Display>(
    api: ApiKey,
    context: std::fmt::Arguments<'_>,
) -> impl FnOnce(E) -> ClientError {
    let context = context.to_string();
    move |e| ClientError::Protocol {
        api,
        message: format!("{context}: {e:#}"),
    }
}

/// A request written by [`Connection::send_pipelined`] whose answer has not been read yet.
#[derive(Debug)]
#[must_use = "the answer must be read with Connection::receive, in send order"]
pub struct Pending<R> {
    version: i16,
    correlation_id: i32,
    request: std::marker::PhantomData<fn() -> R>,
}

/// A connection to one broker, with the API versions it advertised.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: Stream,
    /// The broker's version range for each API key it supports.
    versions: HashMap<i16, VersionRange>,
    next_correlation_id: i32,
    request_timeout: Duration,
    /// Set when a request failed half-way (I/O error, timeout, garbled frame): the stream may
    /// be mid-frame, so nothing more can be sent on it.
    broken: bool,
}

impl Connection {
    /// Connects to `addr` ("host:port") and negotiates API versions.
    pub async fn connect(addr: &str) -> Result<Connection, ClientError> {
        Self::connect_with_timeout(addr, DEFAULT_REQUEST_TIMEOUT).await
    }

    /// Connects to `addr`, giving up on the TCP connect and on each request after `timeout`.
    pub async fn connect_with_timeout(
        addr: &str,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        Self::connect_secured(addr, timeout, &ClientSecurity::plaintext()).await
    }

    /// Connects to the first broker of `bootstrap` that answers: one "host:port" or a
    /// comma-separated list of them, as Kafka's `bootstrap.servers`, tried in order. A broker
    /// that refuses, times out or fails the handshake is skipped; an authentication failure
    /// is returned at once (other brokers hold the same credentials). With none answering,
    /// the error of the last one tried.
    pub async fn connect_bootstrap(
        bootstrap: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Connection, ClientError> {
        let mut last = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Self::connect_secured(addr, timeout, security).await {
                Ok(conn) => return Ok(conn),
                Err(e @ ClientError::Authentication { .. }) => return Err(e),
                Err(e) => {
                    tracing::debug!(addr, error = %e, "bootstrap broker did not answer, trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Io {
            addr: bootstrap.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no broker address in the bootstrap list",
            ),
        }))
    }

    /// Connects to `addr` with `security`'s TLS and SASL: TCP, the TLS handshake, API
    /// versions, then SASL authentication, each bounded by `timeout`.
    pub async fn connect_secured(
        addr: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Connection, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        let timed_out = |what: &str| {
            io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} timed out after {timeout:?}"),
            ))
        };
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(stream) => stream.map_err(io)?,
            Err(_) => return Err(timed_out("connect")),
        };
        tcp.set_nodelay(true).map_err(io)?;
        let stream = match &security.tls {
            None => Stream::Plain(tcp),
            Some(tls) => match tokio::time::timeout(timeout, tls.connect(addr, tcp)).await {
                Ok(stream) => Stream::Tls(Box::new(stream.map_err(io)?)),
                Err(_) => return Err(timed_out("TLS handshake")),
            },
        };
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream,
            versions: HashMap::new(),
            next_correlation_id: 0,
            request_timeout: timeout,
            broken: false,
        };
        conn.negotiate_versions().await?;
        if let Some(credentials) = &security.sasl {
            conn.authenticate(credentials).await?;
        }
        Ok(conn)
    }

    /// Asks the broker which versions it speaks: ApiVersions v3 (which also names this client),
    /// falling back to v0 when the broker answers UNSUPPORTED_VERSION.
    async fn negotiate_versions(&mut self) -> Result<(), ClientError> {
        let api = ApiKey::ApiVersions;
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self.round_trip(&req, 3, true).await?.unwrap_or_default();
        let peeked_error = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let resp: ApiVersionsResponse = if peeked_error == Some(codes::UNSUPPORTED_VERSION) {
            // The broker answers an ApiVersions version it does not know in the v0 layout.
            tracing::debug!(addr = %self.addr, "broker refused ApiVersions v3, retrying v0");
            let body = self
                .round_trip(&ApiVersionsRequest::default(), 0, true)
                .await?
                .unwrap_or_default();
            decode_body(body, api, 0)?
        } else {
            decode_body(body, api, 3)?
        };
        ClientError::check(api, resp.error_code, None)?;
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        Ok(())
    }

    /// The broker address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's advertised version range for `api`, if it supports it at all.
    pub fn broker_versions(&self, api: ApiKey) -> Option<VersionRange> {
        self.versions.get(&(api as i16)).copied()
    }

    /// The version [`Connection::send`] would use for `api`.
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        pick_version(api, &self.versions)
    }

    /// Whether a request failed half-way, leaving the stream unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Sets how long to wait for each response.
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// Sends `req` at the highest version both sides speak and waits for the response.
    pub async fn send<R: Request>(&mut self, req: R) -> Result<R::Response, ClientError> {
        let version = self.version(api_key_of::<R>())?;
        self.send_version(req, version).await
    }

    /// Sends `req` at `version` and waits for the response.
    pub async fn send_version<R: Request>(
        &mut self,
        req: R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let body = self
            .round_trip(&req, version, true)
            .await?
            .unwrap_or_default();
        decode_body(body, api_key_of::<R>(), version)
    }

    /// Sends `req` at `version` without waiting for an answer: a Produce with `acks = 0` gets
    /// none.
    pub async fn send_without_response<R: Request>(
        &mut self,
        req: R,
        version: i16,
    ) -> Result<(), ClientError> {
        self.round_trip(&req, version, false).await.map(|_| ())
    }

    /// Writes one request and, if `expect_response`, reads its answer and returns the body.
    async fn round_trip<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Option<Bytes>, ClientError> {
        let api = api_key_of::<R>();
        if self.broken {
            return Err(self.io_error(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection was abandoned after an earlier failure",
            )));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(req, version, correlation_id)?;
        tracing::trace!(addr = %self.addr, ?api, version, correlation_id, "request");

        // Any failure from here on may leave a partial frame on the wire.
        self.broken = true;
        let timeout = self.request_timeout;
        let stream = &mut self.stream;
        let addr = self.addr.as_str();
        let io = |source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        let exchange = async {
            stream.write_all(&frame).await.map_err(io)?;
            // TLS keeps records it could not write yet in its own buffer: push them out before
            // waiting for the answer (a no-op on plain TCP).
            stream.flush().await.map_err(io)?;
            if !expect_response {
                return Ok(None);
            }
            let len = stream.read_i32().await.map_err(io)?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&n| n <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| ClientError::Protocol {
                    api,
                    message: format!("response length {len} out of range"),
                })?;
            let mut buf = BytesMut::zeroed(len);
            stream.read_exact(&mut buf).await.map_err(io)?;
            Ok(Some(buf.freeze()))
        };
        let frame = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    api,
                    addr: self.addr.clone(),
                    after: timeout,
                })
            }
        };
        let body = match frame {
            Some(frame) => Some(split_response(frame, api, version, correlation_id)?),
            None => None,
        };
        self.broken = false;
        Ok(body)
    }

    /// Writes `req` at `version` and returns at once, so several requests can be in flight on
    /// this connection (as librdkafka's `max.in.flight` allows). The broker answers a
    /// connection's requests in order: pass the returned [`Pending`]s to
    /// [`Connection::receive`] in the order they were sent.
    pub async fn send_pipelined<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<Pending<R>, ClientError> {
        let api = api_key_of::<R>();
        self.check_usable()?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(req, version, correlation_id)?;
        tracing::trace!(addr = %self.addr, ?api, version, correlation_id, "pipelined request");
        self.broken = true;
        let stream = &mut self.stream;
        // Flushed: TLS may hold back records the socket did not take yet.
        let write = async {
            stream.write_all(&frame).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.request_timeout, write).await {
            Ok(result) => result.map_err(|e| self.io_error(e))?,
            Err(_) => return Err(self.timeout_error(api)),
        }
        self.broken = false;
        Ok(Pending {
            version,
            correlation_id,
            request: std::marker::PhantomData,
        })
    }

    /// Reads the answer to a request written by [`Connection::send_pipelined`]; it must be
    /// the oldest one not yet received, or the correlation id check fails.
    pub async fn receive<R: Request>(
        &mut self,
        pending: Pending<R>,
    ) -> Result<R::Response, ClientError> {
        let api = api_key_of::<R>();
        self.check_usable()?;
        self.broken = true;
        let stream = &mut self.stream;
        let read = read_frame(stream);
        let frame = match tokio::time::timeout(self.request_timeout, read).await {
            Ok(result) => result.map_err(|e| self.io_error(e))?,
            Err(_) => return Err(self.timeout_error(api)),
        };
        let body = split_response(frame, api, pending.version, pending.correlation_id)?;
        self.broken = false;
        decode_body(body, api, pending.version)
    }

    /// Writes `frame` (length prefix included) as is and returns the next answer frame
    /// (length prefix removed, response header included): for Weir's private APIs, which
    /// `kafka-protocol` does not know, over this connection's TLS and SASL.
    pub async fn round_trip_raw(
        &mut self,
        frame: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        self.check_usable()?;
        self.broken = true;
        let stream = &mut self.stream;
        let exchange = async {
            stream.write_all(frame).await?;
            stream.flush().await?;
            read_frame(stream).await
        };
        let answer = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result.map_err(|e| self.io_error(e))?,
            Err(_) => {
                return Err(self.io_error(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                )))
            }
        };
        self.broken = false;
        Ok(answer)
    }

    fn check_usable(&self) -> Result<(), ClientError> {
        if self.broken {
            return Err(self.io_error(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection was abandoned after an earlier failure",
            )));
        }
        Ok(())
    }

    fn timeout_error(&self, api: ApiKey) -> ClientError {
        ClientError::Timeout {
            api,
            addr: self.addr.clone(),
            after: self.request_timeout,
        }
    }

    fn io_error(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            addr: self.addr.clone(),
            source,
        }
    }
}

/// Reads the `i32` length prefix of a frame held in memory; used by tests that play broker.
/// Reads one answer frame: its length (at most `MAX_RESPONSE_BYTES`), then that many bytes.
async fn read_frame(stream: &mut Stream) -> std::io::Result<Bytes> {
    let len = stream.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("response length {len} out of range"),
            )
        })?;
    let mut buf = BytesMut::zeroed(len);
    stream.read_exact(&mut buf).await?;
    Ok(buf.freeze())
}

#[cfg(test)]
pub(crate) fn strip_length(mut frame: Bytes) -> Bytes {
    use bytes::Buf;
    let len = frame.get_i32() as usize;
    assert_eq!(len, frame.len(), "length prefix");
    frame
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
