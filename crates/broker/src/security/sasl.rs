//! The SASL stage of a connection on a SASL listener: every frame passes through the
//! [`Authenticator`] before dispatch (docs/design/security.md, "SASL, per connection").

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;
use weir_protocol::kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::{ApiKey, Request, RequestFrame, ResponseError};

use super::scram::{random_bytes, Mechanism, ScramCredential};
use super::scram_msg::{parse_client_final, parse_client_first};
use super::{Principal, Security};
use crate::handlers::{Ctx, Reply};

/// Tokens larger than this fail authentication: PLAIN and SCRAM tokens are well under 1 KiB.
pub const MAX_TOKEN: usize = 64 * 1024;

/// What the connection does with a frame after the SASL stage looked at it.
pub enum Gate {
    /// Authenticated (or an API allowed before): dispatch as usual.
    Pass(Box<RequestFrame>),
    /// The stage answered; close after sending when `close`.
    Answer { reply: Reply, close: bool },
}

/// How the SASL tokens travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// After SaslHandshake v0: bare length-prefixed tokens, no Kafka header.
    Raw,
    /// After SaslHandshake v1: SaslAuthenticate requests.
    Kafka,
}

enum Step {
    Plain,
    ScramFirst(Mechanism),
    ScramFinal(Box<ScramFinal>),
}

struct ScramFinal {
    mechanism: Mechanism,
    user: String,
    credential: ScramCredential,
    /// False for an unknown user: the exchange runs to its end and fails there.
    known: bool,
    gs2_header: String,
    /// The client's part of `nonce`.
    client_nonce: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

enum Phase {
    /// Nothing but ApiVersions and SaslHandshake yet.
    Start,
    Exchange {
        framing: Framing,
        step: Step,
    },
    Authenticated,
}

/// One connection's SASL state.
pub struct Authenticator {
    security: Arc<Security>,
    peer: SocketAddr,
    /// The listener's name, the label of the failure counter.
    listener: Arc<str>,
    phase: Phase,
    principal: Option<Principal>,
    /// KIP-368: when the session ends unless re-authenticated.
    expires: Option<Instant>,
}

/// Why an authentication failed; logged, never sent in more detail than Kafka does.
#[derive(Debug)]
struct Failure {
    user: Option<String>,
    mechanism: Option<Mechanism>,
    reason: String,
}

impl Authenticator {
    /// The stage of a connection from `peer` on the listener named `listener`.
    pub fn new(security: Arc<Security>, peer: SocketAddr, listener: &str) -> Authenticator {
        Authenticator {
            security,
            peer,
            listener: Arc::from(listener),
            phase: Phase::Start,
            principal: None,
            expires: None,
        }
    }

    /// The authenticated principal, once there is one.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub fn max_receive(&self) -> usize {
        self.security.config.max_receive_before_auth
    }

    /// Whether the next frame is a bare token rather than a Kafka request.
    pub fn expects_raw_token(&self) -> bool {
        matches!(
            self.phase,
            Phase::Exchange {
                framing: Framing::Raw,
                ..
            }
        )
    }

    /// A bare token after SaslHandshake v0: the reply, and whether to close after it. A
    /// successful exchange becomes `conn`'s principal.
    pub async fn raw_token(
        &mut self,
        token: Bytes,
        conn: &mut crate::handlers::Conn,
    ) -> (Reply, bool) {
        let Phase::Exchange { step, .. } = std::mem::replace(&mut self.phase, Phase::Start) else {
            return (Reply::Close, true);
        };
        let gate = match self.evaluate(step, &token).await {
            Ok((next, response)) => {
                let mut framed = BytesMut::with_capacity(4 + response.len());
                framed.put_u32(u32::try_from(response.len()).unwrap_or(u32::MAX));
                framed.put_slice(&response);
                self.phase = match next {
                    Some(step) => Phase::Exchange {
                        framing: Framing::Raw,
                        step,
                    },
                    None => Phase::Authenticated,
                };
                (Reply::Now(Some(framed.freeze())), false)
            }
            // The v0 flow has no way to say why: the connection just closes, after the delay.
            Err(failure) => match self.fail(failure, None) {
                Gate::Answer { reply, close } => (reply, close),
                Gate::Pass(_) => (Reply::Close, true),
            },
        };
        if let Some(p) = &self.principal {
            conn.principal = p.clone();
        }
        gate
    }

    /// A decoded request.
    pub async fn request(&mut self, req: RequestFrame) -> Gate {
        let ctx = Ctx {
            api_key: req.api_key,
            version: req.header.request_api_version,
            correlation_id: req.header.correlation_id,
        };
        enum Action {
            Pass,
            Handshake(String),
            Authenticate(Bytes),
            Illegal(&'static str),
            Close,
        }
        let action = match (&self.phase, &req.body) {
            // KIP-368 re-authentication starts with a v1 handshake on the live connection.
            (Phase::Authenticated, Request::SaslHandshake(_)) if ctx.version < 1 => {
                Action::Illegal("re-authentication needs SaslHandshake v1")
            }
            (Phase::Authenticated | Phase::Start, Request::SaslHandshake(h)) => {
                Action::Handshake(h.mechanism.to_string())
            }
            (Phase::Authenticated, Request::SaslAuthenticate(_)) => {
                Action::Illegal("SaslAuthenticate without SaslHandshake")
            }
            (Phase::Authenticated, _) => {
                if self.expires.is_some_and(|e| Instant::now() >= e) {
                    tracing::info!(peer = %self.peer, principal = ?self.principal, "session expired (connections.max.reauth.ms) without re-authentication; closing");
                    Action::Close
                } else {
                    Action::Pass
                }
            }
            (Phase::Start, Request::ApiVersions(_)) => Action::Pass,
            (
                Phase::Exchange {
                    framing: Framing::Kafka,
                    ..
                },
                Request::SaslAuthenticate(a),
            ) => Action::Authenticate(a.auth_bytes.clone()),
            _ => {
                tracing::info!(peer = %self.peer, api = ?ctx.api_key, "request before SASL authentication completed; closing");
                Action::Close
            }
        };
        match action {
            Action::Pass => Gate::Pass(Box::new(req)),
            Action::Handshake(m) => self.handshake(ctx, &m),
            Action::Authenticate(token) => self.authenticate(ctx, token).await,
            Action::Illegal(why) => self.illegal(ctx, why),
            Action::Close => close_now(),
        }
    }

    fn handshake(&mut self, ctx: Ctx, mechanism: &str) -> Gate {
        let enabled = &self.security.config.mechanisms;
        let mut r = SaslHandshakeResponse::default();
        r.mechanisms = enabled
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let chosen = Mechanism::parse(mechanism).filter(|m| enabled.contains(m));
        let Some(chosen) = chosen else {
            tracing::info!(peer = %self.peer, mechanism, "SASL mechanism not enabled; closing");
            self.security.count_failed_sasl(&self.listener, "unknown");
            r.error_code = ResponseError::UnsupportedSaslMechanism.code();
            return answer(ctx.encode(&r), true);
        };
        let step = match chosen {
            Mechanism::Plain => Step::Plain,
            m => Step::ScramFirst(m),
        };
        self.phase = Phase::Exchange {
            framing: if ctx.version == 0 {
                Framing::Raw
            } else {
                Framing::Kafka
            },
            step,
        };
        answer(ctx.encode(&r), false)
    }

    async fn authenticate(&mut self, ctx: Ctx, token: Bytes) -> Gate {
        let Phase::Exchange { step, .. } = std::mem::replace(&mut self.phase, Phase::Start) else {
            return close_now();
        };
        match self.evaluate(step, &token).await {
            Ok((next, response)) => {
                let mut r = SaslAuthenticateResponse::default();
                r.auth_bytes = Bytes::from(response);
                self.phase = match next {
                    Some(step) => Phase::Exchange {
                        framing: Framing::Kafka,
                        step,
                    },
                    None => {
                        r.session_lifetime_ms = self
                            .security
                            .config
                            .max_reauth
                            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                            .unwrap_or(0);
                        Phase::Authenticated
                    }
                };
                answer(ctx.encode(&r), false)
            }
            Err(failure) => {
                let mut r = SaslAuthenticateResponse::default();
                r.error_code = ResponseError::SaslAuthenticationFailed.code();
                r.error_message = Some(StrBytes::from_string(format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                    failure.mechanism.map(Mechanism::name).unwrap_or("?")
                )));
                let bytes = ctx.encode(&r);
                self.fail(failure, bytes)
            }
        }
    }

    /// Runs one step of the exchange: the next step (None: done) and the token to answer.
    async fn evaluate(
        &mut self,
        step: Step,
        token: &[u8],
    ) -> Result<(Option<Step>, Vec<u8>), Failure> {
        let mechanism = match &step {
            Step::Plain => Mechanism::Plain,
            Step::ScramFirst(m) => *m,
            Step::ScramFinal(f) => f.mechanism,
        };
        let failure = |user: Option<&str>, reason: &str| Failure {
            user: user.map(str::to_string),
            mechanism: Some(mechanism),
            reason: reason.to_string(),
        };
        if token.len() > MAX_TOKEN {
            return Err(failure(None, "token too large"));
        }
        match step {
            Step::Plain => {
                let (user, password) = parse_plain(token).map_err(|why| failure(None, why))?;
                let known = self.security.credentials.all_of(&user);
                let candidates = if known.is_empty() {
                    // The same work for an unknown user as for a known one.
                    vec![(
                        Mechanism::ScramSha256,
                        self.security
                            .credentials
                            .fake(&user, Mechanism::ScramSha256),
                    )]
                } else {
                    known
                };
                let pw = password.clone();
                // PBKDF2 is milliseconds of CPU: off the runtime's worker threads.
                let ok = tokio::task::spawn_blocking(move || {
                    candidates.iter().any(|(m, c)| c.matches_password(*m, &pw))
                })
                .await
                .unwrap_or(false);
                if !ok {
                    return Err(failure(Some(&user), "invalid credentials"));
                }
                self.authenticated(&user, Mechanism::Plain)
                    .map_err(|why| failure(Some(&user), &why))?;
                Ok((None, Vec::new()))
            }
            Step::ScramFirst(mechanism) => {
                let first = parse_client_first(token).map_err(|e| failure(None, &e.to_string()))?;
                if first.authzid.as_ref().is_some_and(|a| a != &first.user) {
                    return Err(failure(
                        Some(&first.user),
                        "authorization id differs from the user name",
                    ));
                }
                let (credential, known) =
                    match self.security.credentials.get(&first.user, mechanism) {
                        Some(c) => (c, true),
                        None => (
                            self.security.credentials.fake(&first.user, mechanism),
                            false,
                        ),
                    };
                let nonce = format!("{}{}", first.nonce, STANDARD.encode(random_bytes(18)));
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    STANDARD.encode(&credential.salt),
                    credential.iterations
                );
                let response = server_first.clone().into_bytes();
                Ok((
                    Some(Step::ScramFinal(Box::new(ScramFinal {
                        mechanism,
                        user: first.user,
                        credential,
                        known,
                        gs2_header: first.gs2_header.to_string(),
                        client_nonce: first.nonce.to_string(),
                        nonce,
                        client_first_bare: first.bare.to_string(),
                        server_first,
                    }))),
                    response,
                ))
            }
            Step::ScramFinal(state) => {
                let user = Some(state.user.as_str());
                let fin = parse_client_final(token).map_err(|e| failure(user, &e.to_string()))?;
                if fin.channel_binding != state.gs2_header.as_bytes() {
                    return Err(failure(
                        user,
                        "channel binding does not match the GS2 header",
                    ));
                }
                // librdkafka 2.0.x sends its own nonce again in front of the combined one. The
                // form still carries the whole server nonce (the freshness the check is for)
                // and the proof is verified over the message as sent, so it is accepted.
                let doubled = fin
                    .nonce
                    .strip_prefix(state.client_nonce.as_str())
                    .is_some_and(|rest| rest == state.nonce);
                if fin.nonce != state.nonce && !doubled {
                    return Err(failure(user, "nonce mismatch"));
                }
                let auth_message = format!(
                    "{},{},{}",
                    state.client_first_bare, state.server_first, fin.without_proof
                );
                let signature = state
                    .credential
                    .verify_proof(state.mechanism, auth_message.as_bytes(), &fin.proof)
                    .filter(|_| state.known);
                let Some(signature) = signature else {
                    let why = if state.known {
                        "invalid credentials"
                    } else {
                        "unknown user"
                    };
                    return Err(failure(user, why));
                };
                self.authenticated(&state.user, state.mechanism)
                    .map_err(|why| failure(user, &why))?;
                Ok((
                    None,
                    format!("v={}", STANDARD.encode(signature)).into_bytes(),
                ))
            }
        }
    }

    /// Records a successful exchange; a re-authentication must keep the principal.
    fn authenticated(&mut self, user: &str, mechanism: Mechanism) -> Result<(), String> {
        let principal = Principal::user(user);
        if let Some(previous) = &self.principal {
            if previous != &principal {
                return Err(format!(
                    "re-authentication as {principal} on a connection of {previous}"
                ));
            }
        }
        tracing::debug!(peer = %self.peer, %principal, mechanism = mechanism.name(), "authenticated");
        self.security.count_successful_authentication();
        self.principal = Some(principal);
        self.expires = self.security.config.max_reauth.map(|d| Instant::now() + d);
        Ok(())
    }

    /// Logs and counts a failure; the answer goes out after
    /// `connection.failed.authentication.delay.ms`, then the connection closes. The delay
    /// is this connection's own timer: no lock, no thread, nothing other clients wait on.
    fn fail(&mut self, failure: Failure, response: Option<Bytes>) -> Gate {
        tracing::info!(
            peer = %self.peer,
            user = failure.user.as_deref().unwrap_or("?"),
            mechanism = failure.mechanism.map(Mechanism::name).unwrap_or("?"),
            reason = %failure.reason,
            "SASL authentication failed"
        );
        let mechanism = failure.mechanism.map_or("unknown", Mechanism::name);
        self.security.count_failed_sasl(&self.listener, mechanism);
        self.phase = Phase::Start;
        let delay = self.security.config.failed_authentication_delay;
        Gate::Answer {
            reply: Reply::Later(Box::pin(async move {
                tokio::time::sleep(delay).await;
                response
            })),
            close: true,
        }
    }

    fn illegal(&self, ctx: Ctx, why: &str) -> Gate {
        tracing::info!(peer = %self.peer, api = ?ctx.api_key, why, "illegal SASL state; closing");
        let bytes = match ctx.api_key {
            ApiKey::SaslHandshake => {
                let mut r = SaslHandshakeResponse::default();
                r.error_code = ResponseError::IllegalSaslState.code();
                ctx.encode(&r)
            }
            _ => {
                let mut r = SaslAuthenticateResponse::default();
                r.error_code = ResponseError::IllegalSaslState.code();
                r.error_message = Some(StrBytes::from_string(why.to_string()));
                ctx.encode(&r)
            }
        };
        answer(bytes, true)
    }
}

/// The SASL stage of a connection on a SASL listener (without one, requests go straight to
/// the handlers). A successful (re-)authentication becomes the connection's principal.
pub async fn check(
    auth: &mut Authenticator,
    req: RequestFrame,
    conn: &mut crate::handlers::Conn,
) -> Gate {
    let gate = auth.request(req).await;
    if let Some(p) = auth.principal() {
        if &conn.principal != p {
            conn.principal = p.clone();
        }
    }
    gate
}

fn answer(bytes: Option<Bytes>, close: bool) -> Gate {
    match bytes {
        Some(b) => Gate::Answer {
            reply: Reply::Now(Some(b)),
            close,
        },
        None => close_now(),
    }
}

fn close_now() -> Gate {
    Gate::Answer {
        reply: Reply::Close,
        close: true,
    }
}

/// `[authzid] NUL authcid NUL passwd` (RFC 4616); the authzid, if any, must be the user.
fn parse_plain(token: &[u8]) -> Result<(String, String), &'static str> {
    let text = std::str::from_utf8(token).map_err(|_| "PLAIN token is not UTF-8")?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed PLAIN token");
    };
    if user.is_empty() || password.is_empty() {
        return Err("empty user name or password");
    }
    if !authzid.is_empty() && authzid != user {
        return Err("authorization id differs from the user name");
    }
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens() {
        assert_eq!(
            parse_plain(b"\0alice\0pw"),
            Ok(("alice".into(), "pw".into()))
        );
        assert_eq!(
            parse_plain(b"alice\0alice\0pw"),
            Ok(("alice".into(), "pw".into()))
        );
        assert!(parse_plain(b"bob\0alice\0pw").is_err());
        assert!(parse_plain(b"\0alice").is_err());
        assert!(parse_plain(b"\0alice\0pw\0x").is_err());
        assert!(parse_plain(b"\0\0pw").is_err());
    }
}
