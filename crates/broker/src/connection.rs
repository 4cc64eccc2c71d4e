//! One client connection: frames in, responses out, in request order.
//!
//! The reader decodes each request and runs its ordered part (appends happen in the order they
//! arrived) before reading the next. What may wait (an acks=all produce waiting for fsync, a
//! fetch long-polling for data) becomes a future queued for the writer, which answers strictly
//! in request order. The queue's capacity bounds requests in flight per connection, so a client
//! that never reads its responses stops being read.
//!
//! Memory per connection is bounded without trusting the client:
//! - request bodies are counted against the broker-wide `queued.max.request.bytes` budget
//!   ([`Limits::budget`]) before they are buffered; a connection waiting for budget stops
//!   reading (its bytes stay in the kernel's socket buffer) and is not closed;
//! - besides the body being read, a connection buffers at most [`READ_AHEAD`] bytes (length
//!   prefixes and small pipelined frames), allocated only once it sends something;
//! - a client that never reads its responses holds at most `max.in.flight.requests.per.connection`
//!   queued replies plus the one being written (the writer blocks on the full socket) and one
//!   more reply in the reader's hand; a response not taken for `connections.max.idle.ms` closes
//!   the connection;
//! - `connections.max.idle.ms` closes a connection with no activity; `weir.request.read.timeout.ms`
//!   closes one whose frame, once started, does not arrive in time (slowloris).

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;
use weir_protocol::frame::{self, LENGTH_PREFIX};
use weir_protocol::{decode_request, encode_api_versions_fallback, ApiKey, DecodeError};

use crate::handlers::{self, Reply};
use crate::security::sasl::{self, Authenticator, Gate};
use crate::security::transport::{ReadHalf as OwnedReadHalf, Stream, WriteHalf as OwnedWriteHalf};
use crate::state::State;

/// The most a connection reads ahead while looking for the next length prefix. Frames that fit
/// are decoded straight from this buffer; larger ones get a buffer of their exact size.
pub const READ_AHEAD: usize = 8 * 1024;

/// Limits shared by every connection, built once by the server from the config.
#[derive(Debug)]
pub struct Limits {
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub max_frame: usize,
    /// `queued.max.request.bytes` as a semaphore of bytes; `None` when unlimited.
    pub budget: Option<Arc<Semaphore>>,
    /// The budget's size: a frame larger than the whole budget can never be admitted.
    pub budget_bytes: usize,
    /// `connections.max.idle.ms`.
    pub idle: Option<Duration>,
    /// `weir.request.read.timeout.ms`.
    pub read_timeout: Option<Duration>,
}

impl Limits {
    pub fn from_config(config: &crate::config::BrokerConfig) -> Limits {
        let budget_bytes = config
            .queued_max_request_bytes
            .map(|b| b.min(Semaphore::MAX_PERMITS));
        Limits {
            max_frame: config.socket_request_max_bytes,
            budget: budget_bytes.map(|b| Arc::new(Semaphore::new(b))),
            budget_bytes: budget_bytes.unwrap_or(usize::MAX),
            idle: config.connections_max_idle_ms.map(Duration::from_millis),
            read_timeout: config.request_read_timeout_ms.map(Duration::from_millis),
        }
    }
}

/// When the connection last completed a request or wrote a response.
struct Activity {
    start: Instant,
    ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.ms.load(Ordering::Relaxed))
    }
}

/// Serves one connection, plain or TLS (handshake done), of `conn`'s listener; a SASL
/// listener's requests pass the authentication stage first (`security::sasl`).
pub async fn serve(
    stream: Stream,
    mut conn: handlers::Conn,
    state: Arc<State>,
    limits: Arc<Limits>,
    mut stop: broadcast::Receiver<()>,
) {
    let peer: SocketAddr = conn.peer;
    let span = tracing::info_span!("conn", %peer);
    async move {
        tracing::debug!("connected");
        let mut auth = conn
            .listener
            .protocol
            .sasl()
            .then(|| Authenticator::new(state.security.clone(), peer, &conn.listener.name));
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Reply>(state.config.max_in_flight_per_connection);
        let activity = Arc::new(Activity::new());
        let writer_activity = activity.clone();
        let write_timeout = limits.idle;
        let writer = tokio::spawn(
            async move {
                while let Some(reply) = rx.recv().await {
                    let parts = match reply {
                        Reply::Now(b) => b.map(|b| vec![b]),
                        Reply::Later(fut) => fut.await.map(|b| vec![b]),
                        Reply::LaterParts(fut) => fut.await,
                        Reply::Close => return,
                    };
                    if let Some(parts) = parts {
                        // A client that stops reading fills the socket and blocks this write;
                        // the queue behind it is bounded by its capacity. One that never
                        // resumes is closed after connections.max.idle.ms.
                        let written = match write_timeout {
                            Some(t) => tokio::time::timeout(t, write_parts(&mut wr, parts)).await,
                            None => Ok(write_parts(&mut wr, parts).await),
                        };
                        match written {
                            Ok(Ok(())) => writer_activity.touch(),
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "write failed; closing");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(
                                    "client took no response bytes for connections.max.idle.ms; closing"
                                );
                                return;
                            }
                        }
                    }
                }
                let _ = wr.shutdown().await;
            }
            .in_current_span(),
        );

        // No allocation until the client sends something: idle connections cost no buffer.
        let mut buf = BytesMut::new();
        loop {
            let frame = tokio::select! {
                _ = stop.recv() => break,
                f = read_frame(&mut rd, &mut buf, &limits, max_frame(&auth, &limits), &activity) => f,
            };
            let (frame, permit) = match frame {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e @ ReadError::Idle(_)) => {
                    tracing::debug!(error = %e, "closing idle connection");
                    break;
                }
                Err(e @ ReadError::Slow { .. }) => {
                    tracing::info!(error = %e, "closing connection");
                    break;
                }
                // A client resetting its connection (closing it with responses unread, say) is
                // not worth a warning.
                // TLS clients rarely send close_notify before closing (UnexpectedEof).
                Err(ReadError::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    tracing::debug!(error = %e, "connection reset by the client");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "closing connection");
                    break;
                }
            };
            activity.touch();
            // After a v0 SaslHandshake the frames are bare SASL tokens, no Kafka header.
            if let Some(a) = auth.as_mut().filter(|a| a.expects_raw_token()) {
                let (reply, close) = a.raw_token(frame, &mut conn).await;
                drop(permit);
                let sent = tokio::select! {
                    biased;
                    sent = tx.send(reply) => sent.is_ok(),
                    _ = stop.recv() => false,
                };
                if !sent || close {
                    break;
                }
                continue;
            }
            let mut close_after = false;
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
                    match auth.as_mut() {
                        None => handlers::handle(&state, req, &conn).instrument(span).await,
                        Some(auth) => match sasl::check(auth, req, &mut conn).await {
                            Gate::Pass(req) => {
                                handlers::handle(&state, *req, &conn).instrument(span).await
                            }
                            Gate::Answer { reply, close } => {
                                close_after = close;
                                reply
                            }
                        },
                    }
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
                Err(DecodeError::UnknownApiKey {
                    api_key: crate::cluster_admin::WEIR_DESCRIBE_CLUSTER,
                    correlation_id,
                }) if auth.as_ref().is_none_or(|a| a.principal().is_some()) => {
                    crate::cluster_admin::describe(&state, correlation_id)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bad request; closing connection");
                    break;
                }
            };
            // The request's bytes leave the budget here, after its ordered part, rather than
            // travelling with the Reply to the writer: by now the frame has been decoded and
            // handled (a produce copied its batches into the log) and what is queued is a
            // response or a future that builds one (fsync wait, fetch long-poll), which holds
            // no request bytes. Releasing before the send below also means a connection whose
            // client does not read its responses, blocked on the full queue, holds no budget.
            drop(permit);
            if matches!(reply, Reply::Close) {
                break;
            }
            tokio::select! {
                biased;
                sent = tx.send(reply) => if sent.is_err() { break },
                _ = stop.recv() => break,
            }
            if close_after {
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

/// Writes `parts` in order, as few vectored writes as the socket allows: the record batches
/// of a Fetch answer go from the buffers they were read into straight to the socket.
async fn write_parts(wr: &mut OwnedWriteHalf, mut parts: Vec<Bytes>) -> std::io::Result<()> {
    /// Parts per writev call; Linux allows 1024 (IOV_MAX).
    const MAX_SLICES: usize = 64;
    parts.retain(|p| !p.is_empty());
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts
            .iter()
            .skip(first)
            .take(MAX_SLICES)
            .map(|p| IoSlice::new(p))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while let Some(part) = parts.get_mut(first) {
            if n < part.len() {
                part.advance(n);
                break;
            }
            n -= part.len();
            first += 1;
        }
    }
    // TLS may hold the last record in its buffer until flushed; for TCP this is free.
    wr.flush().await
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed mid-frame ({0} bytes buffered)")]
    Truncated(usize),
    #[error("no activity for {0:?} (connections.max.idle.ms)")]
    Idle(Duration),
    #[error(
        "frame incomplete {timeout:?} after its first byte (weir.request.read.timeout.ms): \
         {got} of {expected} bytes arrived"
    )]
    Slow {
        timeout: Duration,
        got: usize,
        expected: usize,
    },
    #[error("frame of {size} bytes exceeds queued.max.request.bytes ({budget}); refused")]
    OverBudget { size: usize, budget: usize },
}

/// A request body and the share of `queued.max.request.bytes` it holds.
type Frame = (Bytes, Option<OwnedSemaphorePermit>);

/// Reads one frame body. `Ok(None)` is a clean close between frames.
///
/// Budget: the frame's full announced length is taken from the budget as soon as the length
/// prefix is known, before any of the body is buffered. That is simple and cannot deadlock
/// (a connection never holds part of the budget while waiting for more), at the price that a
/// slow sender holds budget for bytes it has not sent yet; `weir.request.read.timeout.ms` bounds
/// how long. Time spent waiting for budget is the broker's, not the client's, so it does not
/// count against the read timeout.
async fn read_frame(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    limits: &Limits,
    max_frame: usize,
    activity: &Activity,
) -> Result<Option<Frame>, ReadError> {
    // Bytes already buffered belong to this frame: its clock is running.
    let mut deadline = (!buf.is_empty())
        .then(|| limits.read_timeout.map(|t| Instant::now() + t))
        .flatten();
    let mut started = !buf.is_empty();
    let len = loop {
        if let Some(len) = frame::body_length(buf, max_frame)? {
            break len;
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(READ_AHEAD);
        }
        let n = if started {
            read_by(rd, buf, deadline)
                .await?
                .ok_or_else(|| slow(limits, buf.len(), LENGTH_PREFIX))?
        } else {
            read_idle(rd, buf, limits.idle, activity).await?
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Truncated(buf.len()))
            };
        }
        if !started {
            started = true;
            deadline = limits.read_timeout.map(|t| Instant::now() + t);
        }
    };

    let permit = match &limits.budget {
        None => None,
        Some(budget) => {
            let over = || ReadError::OverBudget {
                size: len,
                budget: limits.budget_bytes,
            };
            if len > limits.budget_bytes {
                return Err(over());
            }
            let n = u32::try_from(len).map_err(|_| over())?;
            match budget.clone().try_acquire_many_owned(n) {
                Ok(p) => Some(p),
                Err(_) => {
                    // Backpressure: stop reading until other requests release their bytes.
                    tracing::debug!(size = len, "waiting for queued.max.request.bytes budget");
                    let waiting = Instant::now();
                    let p = budget
                        .clone()
                        .acquire_many_owned(n)
                        .await
                        .map_err(|_| over())?;
                    if let Some(d) = deadline.as_mut() {
                        *d += waiting.elapsed();
                    }
                    Some(p)
                }
            }
        }
    };

    buf.advance(LENGTH_PREFIX);
    if buf.len() >= len {
        return Ok(Some((buf.split_to(len).freeze(), permit)));
    }
    // Exactly the frame's size: reads never go past its end, so the buffer never grows beyond
    // what the budget counted.
    let mut body = BytesMut::with_capacity(len);
    body.extend_from_slice(buf);
    buf.clear();
    while body.len() < len {
        let n = read_by(rd, &mut body, deadline)
            .await?
            .ok_or_else(|| slow(limits, LENGTH_PREFIX + body.len(), LENGTH_PREFIX + len))?;
        if n == 0 {
            return Err(ReadError::Truncated(LENGTH_PREFIX + body.len()));
        }
    }
    Ok(Some((body.freeze(), permit)))
}

/// The largest frame the connection reads next: before SASL authentication only handshakes
/// and tokens are expected, and `sasl.server.max.receive.size` keeps unauthenticated clients
/// from holding the shared request budget with large frames.
fn max_frame(auth: &Option<Authenticator>, limits: &Limits) -> usize {
    match auth {
        Some(a) if a.principal().is_none() => limits.max_frame.min(a.max_receive()),
        _ => limits.max_frame,
    }
}

fn slow(limits: &Limits, got: usize, expected: usize) -> ReadError {
    ReadError::Slow {
        timeout: limits.read_timeout.unwrap_or_default(),
        got,
        expected,
    }
}

/// One read into `buf`'s spare capacity; `Ok(None)` when `deadline` passed first.
async fn read_by(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    deadline: Option<Instant>,
) -> std::io::Result<Option<usize>> {
    match deadline {
        None => rd.read_buf(buf).await.map(Some),
        Some(d) => match tokio::time::timeout_at(d, rd.read_buf(buf)).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        },
    }
}

/// Waits for the first bytes of the next frame, for at most `idle` since the connection's
/// last activity (a request read or a response written).
async fn read_idle(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    idle: Option<Duration>,
    activity: &Activity,
) -> Result<usize, ReadError> {
    let Some(idle) = idle else {
        return Ok(rd.read_buf(buf).await?);
    };
    loop {
        if let Some(n) = read_by(rd, buf, Some(activity.last() + idle)).await? {
            return Ok(n);
        }
        // The writer may have answered something meanwhile: idle only if nothing happened.
        if activity.last() + idle <= Instant::now() {
            return Err(ReadError::Idle(idle));
        }
    }
}
