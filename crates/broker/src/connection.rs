//! One client connection: frames in, responses out, in request order.
//!
//! The reader decodes each request and runs its ordered part (appends happen in the order they
//! arrived) before reading the next. What may wait (an acks=all produce waiting for fsync, a
//! fetch long-polling for data) becomes a future queued for the writer, which answers strictly
//! in request order. The queue's capacity bounds requests in flight per connection, so a client
//! that never reads its responses stops being read.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;
use weir_protocol::frame::{self, LENGTH_PREFIX};
use weir_protocol::{decode_request, encode_api_versions_fallback, ApiKey, DecodeError};

use crate::handlers::{self, Reply};
use crate::state::State;

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    mut stop: broadcast::Receiver<()>,
) {
    let span = tracing::info_span!("conn", %peer);
    async move {
        tracing::debug!("connected");
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Reply>(state.config.max_in_flight_per_connection);
        let writer = tokio::spawn(
            async move {
                while let Some(reply) = rx.recv().await {
                    let bytes = match reply {
                        Reply::Now(b) => b,
                        Reply::Later(fut) => fut.await,
                        Reply::Close => return,
                    };
                    if let Some(bytes) = bytes {
                        if let Err(e) = wr.write_all(&bytes).await {
                            tracing::debug!(error = %e, "write failed; closing");
                            return;
                        }
                    }
                }
                let _ = wr.shutdown().await;
            }
            .in_current_span(),
        );

        let conn = handlers::Conn { peer, client_id: String::new() };
        let max = state.config.socket_request_max_bytes;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            let frame = tokio::select! {
                _ = stop.recv() => break,
                f = read_frame(&mut rd, &mut buf, max) => f,
            };
            let frame = match frame {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "closing connection");
                    break;
                }
            };
            let reply = match decode_request(frame) {
                Ok(req) => {
                    if req.trailing > 0 {
                        tracing::debug!(api = ?req.api_key, trailing = req.trailing, "ignoring bytes after the request body");
                    }
                    let span = tracing::debug_span!(
                        "req",
                        api = ?req.api_key,
                        v = req.header.request_api_version,
                        corr = req.header.correlation_id
                    );
                    span.in_scope(|| tracing::trace!("request"));
                    handlers::handle(&state, req, &conn).instrument(span).await
                }
                Err(DecodeError::UnsupportedVersion {
                    api_key: ApiKey::ApiVersions,
                    correlation_id,
                    version,
                }) => {
                    tracing::info!(
                        version,
                        "ApiVersions at an unsupported version; answering v0"
                    );
                    match encode_api_versions_fallback(correlation_id) {
                        Ok(b) => Reply::Now(Some(b)),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot encode ApiVersions fallback");
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bad request; closing connection");
                    break;
                }
            };
            if matches!(reply, Reply::Close) {
                break;
            }
            if tx.send(reply).await.is_err() {
                break;
            }
        }
        drop(tx);
        // Answer what was already accepted before closing.
        let _ = writer.await;
        tracing::debug!("disconnected");
    }
    .instrument(span)
    .await
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed mid-frame ({0} bytes buffered)")]
    Truncated(usize),
}

/// Reads one frame body. `Ok(None)` is a clean close between frames.
async fn read_frame(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, ReadError> {
    loop {
        if let Some(len) = frame::body_length(buf, max)? {
            let total = LENGTH_PREFIX + len;
            if buf.len() >= total {
                let mut f = buf.split_to(total);
                let body = f.split_off(LENGTH_PREFIX);
                return Ok(Some(body.freeze()));
            }
            // Grow as bytes arrive: a length prefix alone must not reserve the whole frame.
            buf.reserve((total - buf.len()).min(1 << 20));
        } else if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        if rd.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Truncated(buf.len()))
            };
        }
    }
}
