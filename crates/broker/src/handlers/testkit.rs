//! Handler tests' harness: a real state over a temporary directory, and requests encoded as
//! a client would, decoded, handled and answered at one version.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use weir_protocol::kafka_protocol::messages::{RequestHeader, ResponseHeader};
use weir_protocol::kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use weir_protocol::{decode_request, ApiKey};

use super::{handle, Conn, Reply};
use crate::state::State;

pub fn state(dir: &std::path::Path) -> Arc<State> {
    state_with(dir, &[])
}

/// [`state`] with more broker keys (`super.users`, `allow.everyone.if.no.acl.found`).
pub fn state_with(dir: &std::path::Path, extra: &[(&str, &str)]) -> Arc<State> {
    let mut pairs: std::collections::BTreeMap<String, String> = [(
        "group.initial.rebalance.delay.ms".to_string(),
        "0".to_string(),
    )]
    .into_iter()
    .collect();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let (config, _) = crate::BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        pairs,
    )
    .expect("config");
    Arc::new(State::open(config).expect("open"))
}

pub async fn round_trip<Req: Encodable, Resp: Decodable + HeaderVersion>(
    state: &Arc<State>,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let reply = send(state, key, version, req).await;
    answer(key, version, reply).await
}

/// [`round_trip`] as `principal` (`User:alice`) from 127.0.0.1.
pub async fn round_trip_as<Req: Encodable, Resp: Decodable + HeaderVersion>(
    state: &Arc<State>,
    principal: &str,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let mut conn = Conn::plaintext(state, "127.0.0.1:1".parse().expect("addr"));
    if let Some(user) = principal.strip_prefix("User:") {
        conn.principal = crate::security::Principal::user(user);
    }
    let reply = send_on(state, &conn, key, version, req).await;
    answer(key, version, reply).await
}

/// [`round_trip`] on `conn`: requests of one connection, which share its state.
pub async fn round_trip_on<Req: Encodable, Resp: Decodable + HeaderVersion>(
    state: &Arc<State>,
    conn: &Conn,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let reply = send_on(state, conn, key, version, req).await;
    answer(key, version, reply).await
}

/// Handles `req` and returns the handler's reply, whose future has not run yet.
pub async fn send<Req: Encodable>(
    state: &Arc<State>,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Reply {
    let conn = Conn::plaintext(state, "127.0.0.1:1".parse().expect("addr"));
    send_on(state, &conn, key, version, req).await
}

async fn send_on<Req: Encodable>(
    state: &Arc<State>,
    conn: &Conn,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Reply {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 11;
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("header");
    req.encode(&mut buf, version).expect("encode request");
    let frame = decode_request(buf.freeze()).expect("decode request");
    handle(state, frame, conn).await
}

/// Waits for `reply` and decodes the response, checking its framing.
pub async fn answer<Resp: Decodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    reply: Reply,
) -> Resp {
    let mut bytes: bytes::Bytes = match reply {
        Reply::Now(Some(b)) => b,
        Reply::Later(f) => f.await.expect("a response"),
        Reply::LaterParts(f) => f.await.expect("a response").concat().into(),
        Reply::Now(None) => panic!("{key:?} v{version}: no response"),
        Reply::Close => panic!("{key:?} v{version}: response could not be encoded"),
    };
    let len = bytes.get_i32() as usize;
    assert_eq!(len, bytes.remaining());
    let h =
        ResponseHeader::decode(&mut bytes, Resp::header_version(version)).expect("response header");
    assert_eq!(h.correlation_id, 11);
    let resp = Resp::decode(&mut bytes, version).expect("decode response");
    assert_eq!(bytes.remaining(), 0, "{key:?} v{version}: trailing bytes");
    resp
}
