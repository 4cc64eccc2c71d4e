//! CSRF protection for every POST the HTTP listener takes (docs/design/operability.md §4).
//!
//! A browser gets a random **binding** in a `SameSite=Strict`, `HttpOnly` cookie the first
//! time it loads a console page; the token put in each form's hidden field is an HMAC-SHA256
//! of that binding under a per-process key. A POST passes when its token (the form's `csrf`
//! field, or the `x-csrf-token` header for the JSON API) verifies against the request's
//! cookie, compared in constant time by `ring::hmac::verify`. Another site can neither read
//! the cookie nor compute the token, and `SameSite=Strict` keeps the cookie off cross-site
//! requests in the first place. A restart draws a new key, so pages loaded before it must be
//! reloaded. A login session can later be the binding (the token is bound to whatever string
//! is passed), with nothing else here changing.
//!
//! [`guard`] is the middleware: every POST goes through it before any handler runs.

use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::Shared;

/// The cookie holding the browser's binding.
pub const COOKIE: &str = "weir_csrf";
/// The hidden form field holding the token.
pub const FIELD: &str = "csrf";
/// The header holding the token on JSON API requests.
pub const HEADER: &str = "x-csrf-token";
/// Random bytes of a binding (hex in the cookie).
const BINDING_BYTES: usize = 16;
/// The largest form body read to find the token.
const MAX_FORM_BYTES: usize = 2 << 20;

/// Why a POST was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error(
        "no CSRF cookie (weir_csrf) came with the request: load a console page first (it sets \
         the cookie), then submit from it"
    )]
    NoCookie,
    #[error(
        "no CSRF token: a form needs its hidden 'csrf' field and a JSON request the \
         'x-csrf-token' header (GET /api/csrf gives a cookie and its token)"
    )]
    NoToken,
    #[error(
        "the CSRF token does not match this browser's cookie or this broker process (it may \
         have restarted): reload the page and submit again"
    )]
    Mismatch,
    #[error("the form could not be read: {0}")]
    BadForm(String),
    #[error("no random value could be drawn for the CSRF key")]
    Random,
}

/// The per-process key and the random source for new bindings.
pub struct Csrf {
    key: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf { key: <secret> }")
    }
}

impl Csrf {
    /// Draws a fresh key: tokens of another process never verify here.
    pub fn new() -> Result<Csrf, CsrfError> {
        let rng = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| CsrfError::Random)?;
        Ok(Csrf { key, rng })
    }

    /// A new random binding for a browser without one.
    pub fn new_binding(&self) -> Result<String, CsrfError> {
        let mut b = [0u8; BINDING_BYTES];
        self.rng.fill(&mut b).map_err(|_| CsrfError::Random)?;
        Ok(hex(&b))
    }

    /// The token for `binding` (a browser's cookie, later perhaps a session id).
    pub fn token(&self, binding: &str) -> String {
        hex(hmac::sign(&self.key, binding.as_bytes()).as_ref())
    }

    /// Checks `token` against `binding` in constant time.
    pub fn verify(&self, binding: Option<&str>, token: Option<&str>) -> Result<(), CsrfError> {
        let binding = binding
            .filter(|b| valid_binding(b))
            .ok_or(CsrfError::NoCookie)?;
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(CsrfError::NoToken)?;
        let tag = unhex(token).ok_or(CsrfError::Mismatch)?;
        hmac::verify(&self.key, binding.as_bytes(), &tag).map_err(|_| CsrfError::Mismatch)
    }
}

/// A binding this module could have made: hex of the right length, so nothing else a
/// client sends in the cookie is ever echoed or signed.
fn valid_binding(b: &str) -> bool {
    b.len() == BINDING_BYTES * 2 && b.bytes().all(|c| c.is_ascii_hexdigit())
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The binding in the request's `Cookie` headers, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && valid_binding(value))
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value for a new binding.
pub fn set_cookie(binding: &str) -> String {
    format!("{COOKIE}={binding}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `csrf` field of a urlencoded form body.
pub fn form_token(body: &[u8]) -> Result<Option<String>, CsrfError> {
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| CsrfError::BadForm(e.to_string()))?;
    Ok(fields.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v))
}

/// The request's binding, or a new one with the `Set-Cookie` header to send with the page.
pub fn binding_for(csrf: &Csrf, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(b) = cookie(headers) {
        return (b, None);
    }
    match csrf.new_binding() {
        Ok(b) => {
            let set = HeaderValue::from_str(&set_cookie(&b)).ok();
            (b, set)
        }
        Err(e) => {
            // Without a binding the page's forms are refused with a clear message.
            tracing::error!(error = %e, "cannot draw a CSRF binding");
            (String::new(), None)
        }
    }
}

/// The middleware: lets every method but POST through; a POST needs a valid token, else it
/// is answered 403 with the reason (HTML for the pages, JSON under `/api`).
pub(crate) async fn guard(
    AxumState(shared): AxumState<Shared>,
    req: Request,
    next: Next,
) -> Response {
    // `/logout` only ends the session whose cookie comes with it, and that cookie is
    // `SameSite=Strict`: a cross-site POST arrives without it and ends nothing.
    if req.method() != Method::POST || req.uri().path() == "/logout" {
        return next.run(req).await;
    }
    // HTTP Basic on the API: no cookie, nothing a browser attaches on its own (basic_auth.rs).
    if req
        .extensions()
        .get::<crate::basic_auth::BasicAuthenticated>()
        .is_some()
    {
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    let binding = cookie(req.headers());
    let header_token = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (parts, body) = req.into_parts();
    let (token, body) = match header_token {
        Some(t) => (Ok(Some(t)), body),
        // The JSON API takes the token from the header only.
        None if api || !form => (Ok(None), body),
        None => match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => (form_token(&bytes), Body::from(bytes)),
            Err(e) => (Err(CsrfError::BadForm(e.to_string())), Body::empty()),
        },
    };
    let checked = token.and_then(|t| shared.csrf.verify(binding.as_deref(), t.as_deref()));
    match checked {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => {
            tracing::info!(path = %parts.uri.path(), reason = %e, "POST refused: CSRF check failed");
            refused(&e, api)
        }
    }
}

fn refused(e: &CsrfError, api: bool) -> Response {
    let what = format!("refused: {e}");
    if api {
        (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": what })),
        )
            .into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            super::pages::error_page("Forbidden", &what),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_binding_and_process() {
        let csrf = Csrf::new().expect("key");
        let b = csrf.new_binding().expect("binding");
        assert!(valid_binding(&b));
        let t = csrf.token(&b);
        assert_eq!(csrf.verify(Some(&b), Some(&t)), Ok(()));
        let other = csrf.new_binding().expect("binding");
        assert_ne!(other, b);
        assert_eq!(
            csrf.verify(Some(&other), Some(&t)),
            Err(CsrfError::Mismatch)
        );
        // Another process (a restart) draws another key.
        let restarted = Csrf::new().expect("key");
        assert_eq!(
            restarted.verify(Some(&b), Some(&t)),
            Err(CsrfError::Mismatch)
        );
    }

    #[test]
    fn missing_or_malformed_parts_are_refused_with_their_reason() {
        let csrf = Csrf::new().expect("key");
        let b = csrf.new_binding().expect("binding");
        let t = csrf.token(&b);
        assert_eq!(csrf.verify(None, Some(&t)), Err(CsrfError::NoCookie));
        assert_eq!(
            csrf.verify(Some("not-a-binding"), Some(&t)),
            Err(CsrfError::NoCookie)
        );
        assert_eq!(csrf.verify(Some(&b), None), Err(CsrfError::NoToken));
        assert_eq!(csrf.verify(Some(&b), Some("  ")), Err(CsrfError::NoToken));
        for bad in ["zz", "abc", &t[..t.len() - 2], &format!("{t}00")] {
            assert_eq!(
                csrf.verify(Some(&b), Some(bad)),
                Err(CsrfError::Mismatch),
                "{bad}"
            );
        }
        // Flipping one hex digit of a right token.
        let mut flipped = t.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            csrf.verify(Some(&b), Some(&flipped)),
            Err(CsrfError::Mismatch)
        );
    }

    #[test]
    fn the_cookie_is_found_among_others_and_junk_is_ignored() {
        let b = "0123456789abcdef0123456789abcdef";
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; weir_csrf=<x>"),
        );
        assert_eq!(cookie(&h), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE}={b}")).expect("header"),
        );
        assert_eq!(cookie(&h).as_deref(), Some(b));
        let set = set_cookie(b);
        assert!(
            set.contains("SameSite=Strict") && set.contains("HttpOnly"),
            "{set}"
        );
    }

    #[test]
    fn the_form_field_is_read_from_a_urlencoded_body() {
        assert_eq!(
            form_token(b"key=a%26b&csrf=00ff&value=x").expect("form"),
            Some("00ff".to_string())
        );
        assert_eq!(form_token(b"key=a").expect("form"), None);
        assert_eq!(form_token(b"").expect("form"), None);
    }
}
