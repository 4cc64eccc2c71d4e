//! The SASL stage driven as a client would, frame by frame: a SCRAM client computed here from
//! the RFC's formulas, PLAIN over the v0 raw-token flow, re-authentication and the failures.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use weir_protocol::kafka_protocol::messages::{
    ApiKey, MetadataRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use weir_protocol::kafka_protocol::protocol::{Decodable, StrBytes};
use weir_protocol::{Request, RequestFrame};

use super::credentials::upsert_offline;
use super::sasl::{Authenticator, Gate};
use super::scram::Mechanism;
use super::{CredentialStore, Principal, Security, SecurityConfig};
use crate::handlers::{Conn, Reply};

fn security(dir: &std::path::Path, pairs: &[(&str, &str)]) -> Arc<Security> {
    upsert_offline(dir, "alice", Mechanism::ScramSha256, "pw", 4096).expect("alice");
    upsert_offline(dir, "bob", Mechanism::ScramSha256, "pw2", 4096).expect("bob");
    let mut raw: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    raw.insert("listeners".into(), "SASL_PLAINTEXT://127.0.0.1:0".into());
    raw.entry("connection.failed.authentication.delay.ms".into())
        .or_insert_with(|| "50".into());
    let config = SecurityConfig::parse(
        &|k| raw.get(k).cloned(),
        "127.0.0.1:0".parse().expect("addr"),
        None,
    )
    .expect("config");
    Arc::new(Security::new(
        config,
        CredentialStore::open(dir).expect("store"),
        crate::security::AclStore::open(dir).expect("acls"),
    ))
}

fn frame(key: ApiKey, version: i16, body: Request) -> RequestFrame {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 9;
    RequestFrame {
        header,
        api_key: key,
        body,
        trailing: 0,
    }
}

async fn reply_bytes(reply: Reply) -> Option<Bytes> {
    match reply {
        Reply::Now(b) => b,
        Reply::Later(f) => f.await,
        Reply::LaterParts(_) | Reply::Close => None,
    }
}

async fn answer<R: Decodable>(gate: Gate, key: ApiKey, version: i16) -> (R, bool) {
    let Gate::Answer { reply, close } = gate else {
        panic!("expected an answer, got Pass");
    };
    let mut b = reply_bytes(reply).await.expect("a response");
    b.advance(4);
    ResponseHeader::decode(&mut b, key.response_header_version(version)).expect("header");
    (R::decode(&mut b, version).expect("body"), close)
}

async fn handshake(
    auth: &mut Authenticator,
    mechanism: &str,
    version: i16,
) -> SaslHandshakeResponse {
    let mut h = SaslHandshakeRequest::default();
    h.mechanism = StrBytes::from_string(mechanism.into());
    let gate = auth
        .request(frame(
            ApiKey::SaslHandshake,
            version,
            Request::SaslHandshake(h),
        ))
        .await;
    answer::<SaslHandshakeResponse>(gate, ApiKey::SaslHandshake, version)
        .await
        .0
}

async fn authenticate(auth: &mut Authenticator, token: &[u8]) -> (SaslAuthenticateResponse, bool) {
    let mut a = SaslAuthenticateRequest::default();
    a.auth_bytes = Bytes::copy_from_slice(token);
    let gate = auth
        .request(frame(
            ApiKey::SaslAuthenticate,
            2,
            Request::SaslAuthenticate(a),
        ))
        .await;
    answer(gate, ApiKey::SaslAuthenticate, 2).await
}

/// A SCRAM-SHA-256 client exchange; returns the final answer and whether the server's
/// signature checked out.
async fn scram(
    auth: &mut Authenticator,
    user: &str,
    password: &str,
) -> (SaslAuthenticateResponse, bool, bool) {
    let m = Mechanism::ScramSha256;
    assert_eq!(handshake(auth, m.name(), 1).await.error_code, 0);
    let client_first_bare = format!("n={user},r=clientnonce");
    let (first, close) = authenticate(auth, format!("n,,{client_first_bare}").as_bytes()).await;
    assert_eq!(first.error_code, 0);
    assert!(!close);
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).expect("utf8");
    let mut attrs = server_first.split(',');
    let nonce = attrs.next().and_then(|r| r.strip_prefix("r=")).expect("r");
    assert!(nonce.starts_with("clientnonce") && nonce.len() > "clientnonce".len());
    let salt = STANDARD
        .decode(attrs.next().and_then(|s| s.strip_prefix("s=")).expect("s"))
        .expect("salt");
    let iterations: u32 = attrs
        .next()
        .and_then(|i| i.strip_prefix("i="))
        .expect("i")
        .parse()
        .expect("iterations");
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let salted = m.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = m.hmac(&salted, b"Client Key");
    let signature = m.hmac(&m.hash(&client_key), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let (fin, close) = authenticate(
        auth,
        format!("{without_proof},p={}", STANDARD.encode(proof)).as_bytes(),
    )
    .await;
    let server_signature = m.hmac(&m.hmac(&salted, b"Server Key"), auth_message.as_bytes());
    let verified = fin.auth_bytes == format!("v={}", STANDARD.encode(server_signature)).as_bytes();
    (fin, close, verified)
}

fn metadata() -> RequestFrame {
    frame(
        ApiKey::Metadata,
        12,
        Request::Metadata(MetadataRequest::default()),
    )
}

#[tokio::test]
async fn scram_exchange_authenticates_and_only_then_requests_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sec = security(dir.path(), &[("connections.max.reauth.ms", "60000")]);
    let mut auth = Authenticator::new(
        sec.clone(),
        "127.0.0.1:1".parse().expect("addr"),
        "SASL_PLAINTEXT",
    );
    let (fin, close, verified) = scram(&mut auth, "alice", "pw").await;
    assert_eq!(fin.error_code, 0);
    assert!(!close);
    assert!(verified, "the server proved it knows the credential");
    assert_eq!(fin.session_lifetime_ms, 60000);
    assert_eq!(auth.principal(), Some(&Principal::user("alice")));
    assert!(matches!(auth.request(metadata()).await, Gate::Pass(_)));
    assert_eq!(sec.successful_authentications(), 1);

    // KIP-368: the same user re-authenticates on the live connection; another cannot.
    let (fin, _, _) = scram(&mut auth, "alice", "pw").await;
    assert_eq!(fin.error_code, 0);
    let (fin, close, _) = scram(&mut auth, "bob", "pw2").await;
    assert_eq!(fin.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    assert!(close);
}

#[tokio::test]
async fn failures_answer_after_the_delay_count_and_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sec = security(
        dir.path(),
        &[("connection.failed.authentication.delay.ms", "200")],
    );
    let peer = "127.0.0.1:1".parse().expect("addr");
    for (user, password) in [("alice", "wrong"), ("nobody", "pw")] {
        let mut auth = Authenticator::new(sec.clone(), peer, "SASL_PLAINTEXT");
        let started = std::time::Instant::now();
        let (fin, close, _) = scram(&mut auth, user, password).await;
        assert_eq!(fin.error_code, 58);
        assert!(close);
        assert!(started.elapsed() >= std::time::Duration::from_millis(190));
        assert!(auth.principal().is_none());
    }
    assert_eq!(sec.failed_authentications(), 2);

    // Nothing but ApiVersions and the handshake before authentication.
    let mut auth = Authenticator::new(sec.clone(), peer, "SASL_PLAINTEXT");
    let Gate::Answer { reply, close } = auth.request(metadata()).await else {
        panic!("metadata before authentication passed");
    };
    assert!(close && matches!(reply, Reply::Close));

    // A mechanism that is not enabled: the list, and the connection closes.
    let mut auth = Authenticator::new(sec, peer, "SASL_PLAINTEXT");
    let mut h = SaslHandshakeRequest::default();
    h.mechanism = StrBytes::from_static_str("GSSAPI");
    let gate = auth
        .request(frame(ApiKey::SaslHandshake, 1, Request::SaslHandshake(h)))
        .await;
    let (r, close) = answer::<SaslHandshakeResponse>(gate, ApiKey::SaslHandshake, 1).await;
    assert_eq!(r.error_code, 33);
    assert_eq!(r.mechanisms.len(), 3);
    assert!(close);
}

#[tokio::test]
async fn plain_over_the_v0_raw_token_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sec = security(dir.path(), &[]);
    let peer = "127.0.0.1:1".parse().expect("addr");
    let state_free_conn = || Conn {
        peer,
        client_id: String::new(),
        listener: Arc::new(super::ListenerInfo::plaintext(("h".into(), 1))),
        principal: Principal::anonymous(),
        api: None,
        produce_gaps: Default::default(),
    };
    let mut auth = Authenticator::new(sec.clone(), peer, "SASL_PLAINTEXT");
    assert_eq!(handshake(&mut auth, "PLAIN", 0).await.error_code, 0);
    assert!(auth.expects_raw_token());
    let mut conn = state_free_conn();
    let (reply, close) = auth
        .raw_token(Bytes::from_static(b"\0bob\0pw2"), &mut conn)
        .await;
    assert!(!close);
    // An empty token, length-prefixed, no Kafka header.
    assert_eq!(
        reply_bytes(reply).await.as_deref(),
        Some(&[0u8, 0, 0, 0][..])
    );
    assert_eq!(conn.principal, Principal::user("bob"));
    assert!(!auth.expects_raw_token());
    assert!(matches!(auth.request(metadata()).await, Gate::Pass(_)));

    let mut auth = Authenticator::new(sec.clone(), peer, "SASL_PLAINTEXT");
    handshake(&mut auth, "PLAIN", 0).await;
    let mut conn = state_free_conn();
    let (reply, close) = auth
        .raw_token(Bytes::from_static(b"\0bob\0nope"), &mut conn)
        .await;
    assert!(close);
    assert_eq!(reply_bytes(reply).await, None, "v0 failures just close");
    assert!(conn.principal.is_anonymous());

    // An oversized token fails without being parsed.
    let mut auth = Authenticator::new(sec, peer, "SASL_PLAINTEXT");
    handshake(&mut auth, "PLAIN", 1).await;
    let mut big = BytesMut::new();
    big.extend_from_slice(b"\0bob\0");
    big.resize(super::sasl::MAX_TOKEN + 1, b'a');
    let (r, close) = authenticate(&mut auth, &big).await;
    assert_eq!(r.error_code, 58);
    assert!(close);
}
