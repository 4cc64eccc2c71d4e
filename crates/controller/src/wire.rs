//! The internal listener's framing and its client side (§4.4): Kafka's frames (size,
//! request header v2 with `client_id = "weir-node-<id>"`, response header v1) around JSON
//! bodies of typed structs, one connection per peer and purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use openraft::error::{ForwardToLeader, RaftError};
use openraft::TryAsRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_metadata::{ControllerReply, ControllerRequest};

use crate::types::{NodeId, NodeInfo};

/// Weir-private API keys of the internal listener.
pub mod keys {
    pub const RAFT_APPEND: i16 = 32001;
    pub const RAFT_VOTE: i16 = 32002;
    pub const RAFT_SNAPSHOT: i16 = 32003;
    /// A controller request forwarded to the active controller.
    pub const CONTROLLER: i16 = 32010;
    /// The first frame each way: who is speaking, of which cluster.
    pub const HELLO: i16 = 32011;
    /// The quorum as the active controller sees it (log ends of the voters).
    pub const DESCRIBE_QUORUM: i16 = 32012;
    /// Kafka's Fetch: a follower's replica fetch (data plane, served through the hook).
    pub const FETCH: i16 = 1;
    /// Kafka's WriteTxnMarkers: a transaction coordinator's markers for partitions led by
    /// the listener's broker (data plane, served through the hook).
    pub const WRITE_TXN_MARKERS: i16 = 27;
    /// Kafka's AddPartitionsToTxn v4 with `verify_only` (KIP-890): a partition leader or
    /// group coordinator asks the transaction coordinator of the listener's broker whether
    /// a transaction is ongoing and holds its partition (data plane, served through the
    /// hook).
    pub const ADD_PARTITIONS_TO_TXN: i16 = 24;
    /// Weir's partition access (`weir_broker::partition_access`): the SQL engine's reads,
    /// appends, long polls and transaction calls for partitions led (or transactional ids
    /// coordinated) by the listener's broker (data plane, served through the hook).
    pub const PARTITION_ACCESS: i16 = 32020;
}

/// Frames larger than this close the connection (an entry is at most 64 MiB).
pub const MAX_FRAME: usize = 96 << 20;

/// WeirHello: sent first on every connection, answered with the listener's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    #[serde(default)]
    pub cluster_id: Option<String>,
    pub node_id: NodeId,
    pub incarnation: uuid::Uuid,
    /// Whether this node ever voted or logged anything (§4.5).
    #[serde(default)]
    pub initialized: bool,
}

impl Hello {
    /// Two nodes that both know their cluster id must agree on it.
    pub fn conflicts_with(&self, other: &Hello) -> bool {
        matches!((&self.cluster_id, &other.cluster_id), (Some(a), Some(b)) if a != b)
    }
}

/// WeirController: a request forwarded to the active controller.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forwarded {
    #[serde(default)]
    pub cluster_id: Option<String>,
    pub from: NodeId,
    pub request: ControllerRequest,
}

/// The active controller's answer: the reply and the index of the entry that carried its
/// records (the caller waits until its own node applied that far).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Committed {
    pub reply: ControllerReply,
    pub index: u64,
}

/// Why a forwarded request was not decided.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteFailure {
    #[error("not the active controller (leader: {leader_hint:?})")]
    NotController { leader_hint: Option<NodeId> },
    #[error("{0}")]
    Unavailable(String),
}

/// A raft call this node made as the active controller (a write, a leadership check, a
/// membership change) failed: another node leads (the caller asks it instead), or the
/// quorum cannot answer now.
impl<E> From<RaftError<NodeId, E>> for RemoteFailure
where
    E: std::error::Error + TryAsRef<ForwardToLeader<NodeId, NodeInfo>>,
{
    fn from(e: RaftError<NodeId, E>) -> Self {
        match e.forward_to_leader() {
            Some(f) => RemoteFailure::NotController {
                leader_hint: f.leader_id,
            },
            None => RemoteFailure::Unavailable(e.to_string()),
        }
    }
}

impl RemoteFailure {
    /// `Unavailable` says what was being done (`what: cause`); `NotController` stays as it is.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            RemoteFailure::Unavailable(cause) => {
                RemoteFailure::Unavailable(format!("{what}: {cause}"))
            }
            other => other,
        }
    }
}

/// Why a call over the internal transport failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to node {target} at {addr}: {source}")]
    Connect {
        target: NodeId,
        addr: String,
        source: std::io::Error,
    },
    #[error("node {0} has no known internal address")]
    NoAddress(NodeId),
    #[error("node {target} timed out after {after:?}")]
    Timeout { target: NodeId, after: Duration },
    #[error("node {target}: {source}")]
    Io {
        target: NodeId,
        source: std::io::Error,
    },
    #[error("node {target} belongs to cluster {theirs}, this node to {ours}")]
    ClusterMismatch {
        target: NodeId,
        ours: String,
        theirs: String,
    },
    #[error("node {target} sent an undecodable answer: {message}")]
    Decode { target: NodeId, message: String },
}

/// Writes one request frame (version 0: the control plane's JSON keys have no versions).
pub fn encode_request(key: i16, correlation_id: i32, client_id: &str, body: &[u8]) -> Bytes {
    encode_request_versioned(key, 0, correlation_id, client_id, body)
}

/// Writes one request frame of `version` (the data plane's Kafka keys are versioned).
pub fn encode_request_versioned(
    key: i16,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &[u8],
) -> Bytes {
    let mut buf = BytesMut::with_capacity(body.len() + 32 + client_id.len());
    let header = 2 + 2 + 4 + 2 + client_id.len() + 1;
    buf.put_i32(i32::try_from(header + body.len()).unwrap_or(i32::MAX));
    buf.put_i16(key);
    buf.put_i16(version);
    buf.put_i32(correlation_id);
    buf.put_i16(i16::try_from(client_id.len()).unwrap_or(0));
    buf.put_slice(client_id.as_bytes());
    buf.put_u8(0); // no tagged fields
    buf.put_slice(body);
    buf.freeze()
}

/// Writes one response frame.
pub fn encode_response(correlation_id: i32, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(body.len() + 9);
    buf.put_i32(i32::try_from(4 + 1 + body.len()).unwrap_or(i32::MAX));
    buf.put_i32(correlation_id);
    buf.put_u8(0);
    buf.put_slice(body);
    buf.freeze()
}

/// A decoded request frame.
#[derive(Debug)]
pub struct RequestFrame {
    pub key: i16,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub body: Bytes,
}

/// Parses a request frame's bytes (without the size prefix).
pub fn decode_request(mut frame: Bytes) -> Option<RequestFrame> {
    if frame.len() < 11 {
        return None;
    }
    let key = frame.get_i16();
    let version = frame.get_i16();
    let correlation_id = frame.get_i32();
    let len = usize::try_from(frame.get_i16()).unwrap_or(0);
    if frame.len() < len + 1 {
        return None;
    }
    let client_id = String::from_utf8_lossy(&frame.split_to(len)).into_owned();
    // Tagged fields: an unsigned varint count; Weir sends none, and skipping others would
    // need their sizes, so any count but zero is refused.
    if frame.get_u8() != 0 {
        return None;
    }
    Some(RequestFrame {
        key,
        version,
        correlation_id,
        client_id,
        body: frame,
    })
}

/// Reads one size-prefixed frame; `None` at a clean end of stream.
pub async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<Bytes>> {
    let size = match stream.read_i32().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other(format!("bad frame size {size}")))?;
    let mut buf = vec![0u8; size];
    stream.read_exact(&mut buf).await?;
    Ok(Some(Bytes::from(buf)))
}

/// What a connection is for: raft traffic never waits behind a forwarded request, and
/// neither waits behind a replica fetch parked on the leader or carrying megabytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Raft,
    Controller,
    /// The data plane: replica Fetch (Kafka bodies, not JSON).
    ReplicaFetch,
    /// The data plane: transaction markers (WriteTxnMarkers), never behind a parked fetch.
    TxnMarkers,
    /// The data plane: transaction verification (AddPartitionsToTxn `verify_only`), never
    /// behind markers waiting for a high watermark.
    TxnVerify,
    /// The data plane: the SQL engine's partition access (reads, appends, transaction
    /// calls) to partitions led elsewhere, never behind replica fetches or markers.
    PartitionAccess,
    /// The data plane: the SQL engine's long polls on partitions led elsewhere, never
    /// holding up its partition access calls.
    PartitionWait,
}

type SharedConn = Arc<tokio::sync::Mutex<Conn>>;

/// One connection to a peer, opened lazily, used by one call at a time.
struct Conn {
    stream: Option<TcpStream>,
    correlation: i32,
}

/// How recent a refused connection must be to count as "refusing now": the raft leader
/// tries every peer at least every 500 ms (openraft's backoff after an unreachable one).
pub const REFUSED_FRESH_MS: u64 = 2_000;

/// The client side of the internal transport: addresses of the peers and one connection
/// per (peer, purpose).
pub struct Peers {
    me: NodeId,
    client_id: String,
    /// The voters' internal listeners (from `controller.quorum.voters`, fixed), then the
    /// learners' as openraft's membership names them ([`Peers::learn`]).
    addrs: Mutex<BTreeMap<NodeId, String>>,
    /// The configured voters: their addresses never change at run time.
    voters: std::collections::BTreeSet<NodeId>,
    /// A learner's address from its current broker registration (the image), which wins
    /// over the membership's: a restarted learner may listen elsewhere.
    resolve: Option<Resolver>,
    conns: Mutex<HashMap<(NodeId, Purpose), SharedConn>>,
    /// Peers whose internal listener refused a connection: the times (ms) of the first
    /// refusal since the last connection that succeeded, and of the latest. Nothing listens
    /// there, so the process is gone; the active controller fences their registrations
    /// without waiting out the session (`ControllerLogic::unreachable`).
    refused: Mutex<BTreeMap<NodeId, (u64, u64)>>,
    /// Peers with which an established connection failed lately (end of file, reset): the
    /// time (ms) of the latest failure. Only a hint that the process may be gone, which
    /// [`Peers::refuses_now`] settles (`Node::gone`).
    broken: Mutex<BTreeMap<NodeId, u64>>,
    hello: Box<dyn Fn() -> Hello + Send + Sync>,
}

/// Looks up a node's internal listener in the metadata image.
pub type Resolver = Box<dyn Fn(NodeId) -> Option<String> + Send + Sync>;

impl Peers {
    pub fn new(
        me: NodeId,
        addrs: BTreeMap<NodeId, String>,
        hello: impl Fn() -> Hello + Send + Sync + 'static,
    ) -> Peers {
        Peers {
            me,
            client_id: format!("weir-node-{me}"),
            voters: addrs.keys().copied().collect(),
            addrs: Mutex::new(addrs),
            resolve: None,
            conns: Mutex::new(HashMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            broken: Mutex::new(BTreeMap::new()),
            hello: Box::new(hello),
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Resolves nodes beyond the voters (learners) through `resolve` first.
    pub fn with_resolver(mut self, resolve: Resolver) -> Peers {
        self.resolve = Some(resolve);
        self
    }

    pub fn addr(&self, target: NodeId) -> Option<String> {
        if !self.voters.contains(&target) {
            if let Some(addr) = self.resolve.as_ref().and_then(|r| r(target)) {
                return Some(addr);
            }
        }
        self.addrs.lock().ok()?.get(&target).cloned()
    }

    /// A learner's internal listener as openraft's membership carries it (a voter's comes
    /// from the configuration and is kept).
    pub fn learn(&self, target: NodeId, addr: &str) {
        if addr.is_empty() || self.voters.contains(&target) {
            return;
        }
        if let Ok(mut addrs) = self.addrs.lock() {
            addrs.insert(target, addr.to_string());
        }
    }

    /// The other voters.
    pub fn ids(&self) -> Vec<NodeId> {
        self.voters
            .iter()
            .copied()
            .filter(|id| *id != self.me)
            .collect()
    }

    /// The peers refusing connections now (the latest refusal at most [`REFUSED_FRESH_MS`]
    /// ago, so an entry this node stopped checking is not taken for news), each with the
    /// time (ms) it started refusing.
    pub fn refused(&self) -> Vec<(NodeId, u64)> {
        let now = crate::types::now_ms();
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused
            .iter()
            .filter(|(_, (_, last))| now.saturating_sub(*last) <= REFUSED_FRESH_MS)
            .map(|(id, (since, _))| (*id, *since))
            .collect()
    }

    /// Peers that may be gone: a connection to them failed, or their listener refused one,
    /// within the last [`REFUSED_FRESH_MS`].
    pub fn suspects(&self) -> Vec<NodeId> {
        let now = crate::types::now_ms();
        let fresh = |at: u64| now.saturating_sub(at) <= REFUSED_FRESH_MS;
        let mut out: Vec<NodeId> = self
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, at)| fresh(**at))
            .map(|(id, _)| *id)
            .collect();
        out.extend(self.refused().into_iter().map(|(id, _)| id));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether `target`'s internal listener refuses a connection right now (a fresh
    /// connection, closed at once; the outcome is recorded as every connect's is). A
    /// timeout or any other error is not a refusal.
    pub async fn refuses_now(&self, target: NodeId, ttl: Duration) -> bool {
        let Some(addr) = self.addr(target) else {
            return false;
        };
        match tokio::time::timeout(ttl, TcpStream::connect(addr.as_str())).await {
            Ok(connected) => {
                self.note_connect(target, &connected);
                matches!(&connected, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
            }
            Err(_) => false,
        }
    }

    fn note_connect(&self, target: NodeId, outcome: &std::io::Result<TcpStream>) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(_) => {
                refused.remove(&target);
                self.broken
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                let now = crate::types::now_ms();
                refused.entry(target).or_insert((now, now)).1 = now;
            }
            // A timeout or an unreachable network says nothing about the process.
            Err(_) => {}
        }
    }

    fn conn(&self, target: NodeId, purpose: Purpose) -> SharedConn {
        let mut conns = match self.conns.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        conns
            .entry((target, purpose))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Conn {
                    stream: None,
                    correlation: 0,
                }))
            })
            .clone()
    }

    /// One request and its answer, within `ttl` (waiting for the connection and connecting
    /// included). The connection is taken out while in use: a call that fails or is cut
    /// off by its timeout drops it, so a late answer is never read as the next call's.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: NodeId,
        purpose: Purpose,
        key: i16,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(req).map_err(|e| CallError::Decode {
            target,
            message: e.to_string(),
        })?;
        let bytes = self.call_raw(target, purpose, key, 0, &body, ttl).await?;
        decode_answer(target, bytes)
    }

    /// [`Peers::call`] with a body already encoded (the data plane's Kafka bodies): the
    /// answer's body after the response header.
    pub async fn call_raw(
        &self,
        target: NodeId,
        purpose: Purpose,
        key: i16,
        version: i16,
        body: &[u8],
        ttl: Duration,
    ) -> Result<Bytes, CallError> {
        let addr = self.addr(target).ok_or(CallError::NoAddress(target))?;
        let conn = self.conn(target, purpose);
        let exchange = async {
            let mut conn = conn.lock().await;
            let stream = conn.stream.take();
            // Two ids: the hello of a new connection, then the request.
            conn.correlation = conn.correlation.wrapping_add(2);
            let correlation = conn.correlation;
            let request = Outgoing {
                key,
                version,
                correlation,
                body,
            };
            let (stream, answer) = self.exchange(stream, target, &addr, request).await;
            conn.stream = stream;
            answer
        };
        tokio::time::timeout(ttl, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout { target, after: ttl }))
    }

    /// Sends one request on `stream` (connecting and greeting first when there is none);
    /// gives the stream back only if the exchange succeeded.
    async fn exchange(
        &self,
        stream: Option<TcpStream>,
        target: NodeId,
        addr: &str,
        request: Outgoing<'_>,
    ) -> (Option<TcpStream>, Result<Bytes, CallError>) {
        let established = stream.is_some();
        let mut stream = match stream {
            Some(s) => s,
            None => match self
                .connect(request.correlation.wrapping_sub(1), target, addr)
                .await
            {
                Ok(s) => s,
                Err(e) => return (None, Err(e)),
            },
        };
        match roundtrip(&mut stream, target, request, &self.client_id).await {
            Ok(answer) => (Some(stream), Ok(answer)),
            Err(e) => {
                if established {
                    self.broken
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(target, crate::types::now_ms());
                }
                (None, Err(e))
            }
        }
    }

    /// Connects and exchanges WeirHello; another cluster's node is refused.
    async fn connect(
        &self,
        correlation: i32,
        target: NodeId,
        addr: &str,
    ) -> Result<TcpStream, CallError> {
        let connected = TcpStream::connect(addr).await;
        self.note_connect(target, &connected);
        let mut stream = connected.map_err(|source| CallError::Connect {
            target,
            addr: addr.to_string(),
            source,
        })?;
        let _ = stream.set_nodelay(true);
        let mine = (self.hello)();
        let body = serde_json::to_vec(&mine).map_err(|e| CallError::Decode {
            target,
            message: e.to_string(),
        })?;
        let hello = Outgoing {
            key: keys::HELLO,
            version: 0,
            correlation,
            body: &body,
        };
        let answer = roundtrip(&mut stream, target, hello, &self.client_id).await?;
        let theirs: Hello = decode_answer(target, answer)?;
        if mine.conflicts_with(&theirs) {
            return Err(CallError::ClusterMismatch {
                target,
                ours: mine.cluster_id.unwrap_or_default(),
                theirs: theirs.cluster_id.unwrap_or_default(),
            });
        }
        Ok(stream)
    }

    /// Asks a peer for its hello (formation: is anyone initialized?).
    pub async fn hello(&self, target: NodeId, ttl: Duration) -> Result<Hello, CallError> {
        let mine = (self.hello)();
        self.call(target, Purpose::Controller, keys::HELLO, &mine, ttl)
            .await
    }
}

fn decode_answer<T: DeserializeOwned>(target: NodeId, bytes: Bytes) -> Result<T, CallError> {
    serde_json::from_slice(&bytes).map_err(|e| CallError::Decode {
        target,
        message: e.to_string(),
    })
}

/// One request to send.
struct Outgoing<'a> {
    key: i16,
    version: i16,
    correlation: i32,
    body: &'a [u8],
}

async fn roundtrip(
    stream: &mut TcpStream,
    target: NodeId,
    request: Outgoing<'_>,
    client_id: &str,
) -> Result<Bytes, CallError> {
    let io = |source| CallError::Io { target, source };
    let correlation = request.correlation;
    let frame = encode_request_versioned(
        request.key,
        request.version,
        correlation,
        client_id,
        request.body,
    );
    stream.write_all(&frame).await.map_err(io)?;
    let Some(mut answer) = read_frame(stream).await.map_err(io)? else {
        return Err(io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)));
    };
    if answer.len() < 5 {
        return Err(io(std::io::Error::other("short response frame")));
    }
    let got = answer.get_i32();
    let _tags = answer.get_u8();
    if got != correlation {
        return Err(io(std::io::Error::other(format!(
            "correlation id {got}, expected {correlation}"
        ))));
    }
    Ok(answer)
}
