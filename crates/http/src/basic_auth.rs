//! HTTP Basic auth on the `/api` routes, for tools (`weir debug bundle --http`, curl) that
//! have a SCRAM user's password but no browser session.
//!
//! `Authorization: Basic base64(user:password)` is checked like the login form's password
//! ([`weir_broker::security::Security::check_password`]: the stored SCRAM credential, no
//! password kept), on every request: there is no session and no cookie. That is why such a
//! request skips the CSRF check: CSRF rides on credentials a browser attaches on its own
//! (cookies), and a browser attaches Basic credentials only after a `WWW-Authenticate: Basic`
//! challenge, which Weir never sends. Only `/api/` routes take it, so a page is never
//! reached this way. A failure is counted (`weir_console_login_failures_total{method=
//! "basic"}`), logged and answered 401 after `connection.failed.authentication.delay.ms`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use weir_broker::state::State;

use crate::auth::{refuse_read_only, run_as, Viewer};

/// Longest header value taken: a user and a 1 KiB password fit well under it.
const MAX_VALUE: usize = 4096;

/// A request that authenticated with HTTP Basic (no cookie): the CSRF guard lets it pass.
#[derive(Debug, Clone, Copy)]
pub struct BasicAuthenticated;

/// Why an `Authorization: Basic` header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    #[error("the Authorization header is too long")]
    TooLong,
    #[error("the Basic credentials are not base64")]
    NotBase64,
    #[error("the Basic credentials are not UTF-8")]
    NotUtf8,
    #[error("the Basic credentials have no ':' between user and password")]
    NoColon,
    #[error("the Basic credentials name no user")]
    EmptyUser,
}

/// The credentials of a request's `Authorization` header: `None` when it carries no Basic
/// scheme (no header, `Bearer`, …), `Some(Err)` when it does but is malformed.
pub fn credentials(headers: &HeaderMap) -> Option<Result<(String, String), BasicError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    parse(value.as_bytes())
}

/// Serves a request that came with Basic credentials: checked against the SCRAM
/// credentials on the blocking pool (PBKDF2), then as the session's user would be.
pub(crate) async fn login(
    state: Arc<State>,
    given: Result<(String, String), BasicError>,
    peer: SocketAddr,
    mut req: Request,
    next: Next,
) -> Response {
    let (user, checked) = match given {
        Ok((user, password)) if password.len() <= 1024 => {
            let security = state.security.clone();
            let name = user.clone();
            let ok = tokio::task::spawn_blocking(move || security.check_password(&name, &password))
                .await
                .unwrap_or(false);
            (
                user,
                if ok {
                    Ok(())
                } else {
                    Err("invalid credentials".to_string())
                },
            )
        }
        Ok((user, _)) => (user, Err("password too long".to_string())),
        Err(e) => ("?".to_string(), Err(e.to_string())),
    };
    if let Err(why) = checked {
        state.security.count_failed_console_login("basic");
        tracing::info!(%user, %peer, reason = %why, "console Basic auth failed");
        tokio::time::sleep(state.security.config.failed_authentication_delay).await;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": format!("HTTP Basic auth failed: {why}") })),
        )
            .into_response();
    }
    state.security.count_successful_authentication();
    let viewer = Viewer::logged_in(state.security.clone(), &user, peer.ip());
    if let Some(refused) = refuse_read_only(&viewer, &user, peer, &req) {
        return refused;
    }
    req.extensions_mut().insert(BasicAuthenticated);
    run_as(viewer, req, next).await
}

/// Parses a header value (RFC 7617): the scheme case-insensitively, then base64 of
/// `user:password` (the user cannot hold a `:`; the password can).
pub fn parse(value: &[u8]) -> Option<Result<(String, String), BasicError>> {
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (value.get(..i)?, value.get(i + 1..)?),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"Basic") {
        return None;
    }
    Some(decode(rest))
}

fn decode(rest: &[u8]) -> Result<(String, String), BasicError> {
    if rest.len() > MAX_VALUE {
        return Err(BasicError::TooLong);
    }
    let trimmed = rest.trim_ascii();
    let raw = STANDARD
        .decode(trimmed)
        .map_err(|_| BasicError::NotBase64)?;
    let text = String::from_utf8(raw).map_err(|_| BasicError::NotUtf8)?;
    let (user, password) = text.split_once(':').ok_or(BasicError::NoColon)?;
    if user.is_empty() {
        return Err(BasicError::EmptyUser);
    }
    Ok((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!("Basic {}", STANDARD.encode(s))
    }

    #[test]
    fn parses_user_and_password_and_ignores_other_schemes() {
        assert_eq!(
            parse(basic("alice:pa:ss").as_bytes()),
            Some(Ok(("alice".into(), "pa:ss".into())))
        );
        assert_eq!(
            parse(format!("bAsIc  {}", STANDARD.encode("a:")).as_bytes()),
            Some(Ok(("a".into(), String::new())))
        );
        assert_eq!(parse(b"Bearer abc"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"Basicx abc"), None);
    }

    #[test]
    fn malformed_credentials_say_why() {
        let cases: [(&[u8], BasicError); 5] = [
            (b"Basic !!!", BasicError::NotBase64),
            (b"Basic", BasicError::NoColon),
            (b"Basic /w==", BasicError::NotUtf8),
            (b"Basic YWxpY2U=", BasicError::NoColon),
            (b"Basic OnB3", BasicError::EmptyUser),
        ];
        for (value, want) in cases {
            assert_eq!(parse(value), Some(Err(want.clone())), "{value:?}");
        }
        let long = format!("Basic {}", "A".repeat(MAX_VALUE + 1));
        assert_eq!(parse(long.as_bytes()), Some(Err(BasicError::TooLong)));
    }
}
