//! Console login, sessions and who sees what (docs/design/security.md, "Console").
//!
//! When a broker listener speaks SASL, every console page and `/api` route needs a session:
//! `/login` checks a SCRAM user's password against the stored credentials
//! ([`weir_broker::security::Security::check_password`], the broker's PLAIN check: no
//! password is kept), a failure is delayed and counted like a SASL failure, a success
//! creates a session whose random id travels in an `HttpOnly; SameSite=Strict` cookie
//! (`Secure` when `weir.http.cookie.secure` says the console is reached over TLS).
//!
//! Data flow: [`require_login`] runs before every route. It resolves the cookie into a
//! [`Viewer`] (the user, its principal and peer address, whether it may act) and puts it in
//! the request's extensions, where the console's handlers read it to hide the topics,
//! groups and transactional ids the user may not DESCRIBE. A read-only viewer (neither a
//! super user nor ALTER on the cluster) is refused every method but GET and HEAD here, so
//! an action added to the console is refused for it without code of its own.
//!
//! `/metrics`, `/livez` and `/readyz` never need a session (probes and scrapers have no
//! browser); with `weir.http.metrics.token` set they need `Authorization: Bearer <token>`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, Query, Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use weir_broker::security::{acl::AclOperation, Principal, Resource, Security};
use weir_broker::state::State;

use crate::console::csrf;
use crate::console::html::Html;
use crate::Shared;

/// The session cookie's name.
pub const COOKIE: &str = "weir_session";

/// Sessions kept at most; a login beyond it evicts the one closest to expiry, so a flood of
/// logins cannot grow the table without bound.
const MAX_SESSIONS: usize = 10_000;

/// Paths a probe or scraper reads: never behind a session, behind the bearer token if set.
const PROBES: [&str; 3] = ["/metrics", "/livez", "/readyz"];

/// The server-side sessions: random id to user and expiry. In memory: a restart logs every
/// user out, which is the safe direction.
pub struct Sessions {
    /// Taken for a lookup, a login or a logout; never across an await or a PBKDF2.
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    secure_cookie: bool,
}

struct Session {
    user: String,
    expires: Instant,
}

impl Sessions {
    pub fn new(ttl: Duration, secure_cookie: bool) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
            secure_cookie,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding it leaves a consistent map (every change is one insert or
        // remove): keep serving.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `user`; its id (32 random bytes, hex).
    pub fn create(&self, user: &str, now: Instant) -> String {
        let id: String = weir_broker::security::scram::random_bytes(32)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut map = self.map();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                user: user.to_string(),
                expires: now + self.ttl,
            },
        );
        id
    }

    /// The user of a live session; an expired one is removed.
    pub fn user(&self, id: &str, now: Instant) -> Option<String> {
        let mut map = self.map();
        match map.get(id) {
            Some(s) if s.expires > now => Some(s.user.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `Set-Cookie` value that hands `id` to the browser.
    pub fn cookie(&self, id: &str) -> String {
        let mut c = format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            self.ttl.as_secs()
        );
        if self.secure_cookie {
            c.push_str("; Secure");
        }
        c
    }

    /// The `Set-Cookie` value that makes the browser forget the session.
    pub fn clear_cookie(&self) -> String {
        let mut c = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
        if self.secure_cookie {
            c.push_str("; Secure");
        }
        c
    }
}

/// The session id in a request's `Cookie` headers.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then_some(v)
        })
}

/// Who is looking at the console: everyone (no SASL listener, so no login) or a logged-in
/// user, with what it may do.
#[derive(Clone)]
pub struct Viewer {
    who: Who,
    /// May act (POST actions, the debug bundle): a super user or ALTER on the cluster.
    pub admin: bool,
}

#[derive(Clone)]
enum Who {
    /// No login configured.
    Everyone,
    /// Outside a request that went through [`require_login`]: sees nothing (fail closed).
    Nobody,
    User(Login),
}

#[derive(Clone)]
struct Login {
    user: String,
    principal: Principal,
    host: IpAddr,
    security: Arc<Security>,
}

tokio::task_local! {
    /// The viewer of the request being handled, set by [`require_login`] around the route.
    static VIEWER: Viewer;
}

/// The viewer of the request being handled (inside a route); outside one, a viewer that
/// sees nothing and may do nothing.
pub fn current_viewer() -> Viewer {
    VIEWER.try_with(Clone::clone).unwrap_or(Viewer {
        who: Who::Nobody,
        admin: false,
    })
}

impl Viewer {
    /// No login configured: sees and may do everything, as before authentication existed.
    pub fn open() -> Viewer {
        Viewer {
            who: Who::Everyone,
            admin: true,
        }
    }

    /// `user`, logged in from `host`; its role from the ACLs at this moment.
    pub fn logged_in(security: Arc<Security>, user: &str, host: IpAddr) -> Viewer {
        let principal = Principal::user(user);
        let admin = security
            .authorize(&principal, host, AclOperation::Alter, Resource::Cluster)
            .allowed();
        Viewer {
            who: Who::User(Login {
                user: user.to_string(),
                principal,
                host,
                security,
            }),
            admin,
        }
    }

    pub fn user(&self) -> Option<&str> {
        match &self.who {
            Who::User(l) => Some(l.user.as_str()),
            _ => None,
        }
    }

    /// Whether the viewer may perform `operation` on `resource`.
    pub fn may(&self, operation: AclOperation, resource: Resource<'_>) -> bool {
        match &self.who {
            Who::Everyone => true,
            Who::Nobody => false,
            Who::User(l) => l
                .security
                .authorize(&l.principal, l.host, operation, resource)
                .allowed(),
        }
    }

    /// Whether the viewer may see `resource` at all (DESCRIBE, as Metadata and ListGroups).
    pub fn sees(&self, resource: Resource<'_>) -> bool {
        self.may(AclOperation::Describe, resource)
    }
}

/// Whether the console needs a login: some broker listener authenticates with SASL.
pub fn login_required(state: &State) -> bool {
    state
        .security
        .config
        .listeners
        .iter()
        .any(|l| l.protocol.sasl())
}

/// Runs `next` with `viewer` as the request's viewer (task-local and request extension).
pub(crate) async fn run_as(viewer: Viewer, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(viewer.clone());
    VIEWER.scope(viewer, next.run(req)).await
}

/// Runs before every route: the bearer token on the probes, the session on everything else.
pub(crate) async fn require_login(
    AxumState(shared): AxumState<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if PROBES.contains(&path.as_str()) {
        return match &shared.auth.metrics_token {
            Some(token) if !bearer_matches(req.headers(), token) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required (weir.http.metrics.token)\n",
            )
                .into_response(),
            _ => next.run(req).await,
        };
    }
    if path == "/login" || path == "/assets/console.css" {
        return next.run(req).await;
    }
    let Some(state) = shared.state.get().cloned() else {
        // Recovering: the pages answer 503 and show nothing yet.
        return run_as(Viewer::open(), req, next).await;
    };
    if !login_required(&state) {
        return run_as(Viewer::open(), req, next).await;
    }
    if path.starts_with("/api/") {
        if let Some(given) = crate::basic_auth::credentials(req.headers()) {
            return crate::basic_auth::login(state, given, peer, req, next).await;
        }
    }
    let sid = session_id(req.headers()).map(str::to_string);
    let user = sid
        .as_deref()
        .and_then(|id| shared.auth.sessions.user(id, Instant::now()));
    // A user whose credentials were deleted is logged out at its next request.
    let user = match (user, sid.as_deref()) {
        (Some(u), Some(id)) if state.security.credentials.all_of(&u).is_empty() => {
            tracing::info!(user = %u, "console session ended: the user no longer exists");
            shared.auth.sessions.remove(id);
            None
        }
        (u, _) => u,
    };
    let Some(user) = user else {
        if path == "/logout" {
            return redirect("/login", None);
        }
        return login_needed(&req);
    };
    let viewer = Viewer::logged_in(state.security.clone(), &user, peer.ip());
    if let Some(refused) = refuse_read_only(&viewer, &user, peer, &req) {
        return refused;
    }
    run_as(viewer, req, next).await
}

/// A read-only viewer is refused every method but GET and HEAD, and the debug bundle.
pub(crate) fn refuse_read_only(
    viewer: &Viewer,
    user: &str,
    peer: SocketAddr,
    req: &Request,
) -> Option<Response> {
    let path = req.uri().path();
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    let admin_only = path.starts_with("/api/debug/") || (!reading && path != "/logout");
    if admin_only && !viewer.admin {
        tracing::info!(%user, peer = %peer, method = %req.method(), path = %path, "console action refused: read-only user");
        return Some(forbidden(
            path,
            &format!("{user} is read-only: actions need ALTER on the cluster or a super user"),
        ));
    }
    None
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            weir_broker::security::constant_time_eq(given.trim().as_bytes(), token.as_bytes())
        })
}

/// No session: the API answers 401, a page sends the browser to the login form and back.
fn login_needed(req: &Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "login required (POST /login)" })),
        )
            .into_response();
    }
    let back = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    redirect("/login", Some(&back))
}

fn forbidden(path: &str, why: &str) -> Response {
    if path.starts_with("/api/") {
        (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": why })),
        )
            .into_response()
    } else {
        let page = crate::console::pages::message_page("Not allowed", "forbidden", why);
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response()
    }
}

fn redirect(to: &str, next: Option<&str>) -> Response {
    let location = match next {
        Some(n) => format!("{to}?next={}", crate::console::html::path_segment(n)),
        None => to.to_string(),
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Where to go after the login: a path on this console only (`/x`, never `//host` or
/// `https://...`, which would make the login form an open redirect).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

pub(crate) async fn login_page(
    AxumState(shared): AxumState<Shared>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    if shared.state.get().is_some_and(|s| !login_required(s)) {
        return redirect("/", None);
    }
    // The login form posts through the CSRF guard like every other form (no login CSRF).
    let (binding, set) = csrf::binding_for(&shared.csrf, &headers);
    let mut resp = html(
        StatusCode::OK,
        login_form(
            safe_next(q.next.as_deref()),
            None,
            &shared.csrf.token(&binding),
        ),
    );
    if let Some(v) = set {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) async fn login(
    AxumState(shared): AxumState<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(state) = shared.state.get().cloned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is recovering its logs\n",
        )
            .into_response();
    };
    let next = safe_next(form.next.as_deref()).to_string();
    if !login_required(&state) {
        return redirect(&next, None);
    }
    let security = state.security.clone();
    let user = form.user.clone();
    // A password of kilobytes costs PBKDF2 nothing more, but there is no reason to take it.
    let ok = form.password.len() <= 1024
        && tokio::task::spawn_blocking(move || security.check_password(&user, &form.password))
            .await
            .unwrap_or(false);
    if !ok {
        state.security.count_failed_console_login("form");
        tracing::info!(user = %form.user, peer = %peer, "console login failed: invalid credentials");
        // As a failed SASL authentication: a timer on this request only, no lock held.
        tokio::time::sleep(state.security.config.failed_authentication_delay).await;
        return html(
            StatusCode::UNAUTHORIZED,
            login_form(
                &next,
                Some("Invalid user name or password."),
                // The guard let this POST through, so it came with a binding cookie.
                &shared
                    .csrf
                    .token(&csrf::cookie(&headers).unwrap_or_default()),
            ),
        );
    }
    state.security.count_successful_authentication();
    let id = shared.auth.sessions.create(&form.user, Instant::now());
    tracing::info!(user = %form.user, peer = %peer, "console login");
    let mut resp = redirect(&next, None);
    if let Ok(v) = HeaderValue::from_str(&shared.auth.sessions.cookie(&id)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) async fn logout(AxumState(shared): AxumState<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        shared.auth.sessions.remove(id);
    }
    let mut resp = redirect("/login", None);
    if let Ok(v) = HeaderValue::from_str(&shared.auth.sessions.clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn html(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn login_form(next: &str, error: Option<&str>, csrf_token: &str) -> String {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>");
    h.el("html", &[("lang", "en")], |h| {
        h.el("head", &[], |h| {
            h.void("meta", &[("charset", "utf-8")]);
            h.text_el("title", &[], "Log in · Weir");
            h.void(
                "link",
                &[("rel", "stylesheet"), ("href", "/assets/console.css")],
            );
        });
        h.el("body", &[], |h| {
            h.el("main", &[], |h| {
                h.text_el("h1", &[], "Weir: log in");
                if let Some(e) = error {
                    h.text_el("p", &[("id", "login-error"), ("class", "error")], e);
                }
                h.el(
                    "form",
                    &[("id", "login"), ("method", "post"), ("action", "/login")],
                    |h| {
                        h.void(
                            "input",
                            &[("type", "hidden"), ("name", "next"), ("value", next)],
                        );
                        h.void(
                            "input",
                            &[
                                ("type", "hidden"),
                                ("name", csrf::FIELD),
                                ("value", csrf_token),
                            ],
                        );
                        h.el("label", &[], |h| {
                            h.text("User ");
                            h.void(
                                "input",
                                &[
                                    ("name", "user"),
                                    ("id", "user"),
                                    ("autocomplete", "username"),
                                    ("required", "required"),
                                ],
                            );
                        });
                        h.el("label", &[], |h| {
                            h.text(" Password ");
                            h.void(
                                "input",
                                &[
                                    ("name", "password"),
                                    ("id", "password"),
                                    ("type", "password"),
                                    ("autocomplete", "current-password"),
                                    ("required", "required"),
                                ],
                            );
                        });
                        h.el("button", &[("type", "submit"), ("id", "submit")], |h| {
                            h.text("Log in")
                        });
                    },
                );
            });
        });
    });
    h.finish()
}

/// What the HTTP listener keeps for logins: the sessions and the probes' token.
pub struct AuthState {
    pub sessions: Sessions,
    /// `weir.http.metrics.token`.
    pub metrics_token: Option<String>,
}

thread_local! {
    /// The viewer of the page being rendered on this (blocking pool) thread, for the
    /// navigation's user name and logout button; set only around a render.
    static SHOWN: RefCell<Option<(String, bool)>> = const { RefCell::new(None) };
}

/// Makes `viewer` the one [`session_bar`] shows until the guard drops.
pub struct ShownViewer(());

impl ShownViewer {
    pub fn set(viewer: &Viewer) -> ShownViewer {
        SHOWN.with(|s| *s.borrow_mut() = viewer.user().map(|u| (u.to_string(), viewer.admin)));
        ShownViewer(())
    }
}

impl Drop for ShownViewer {
    fn drop(&mut self) {
        SHOWN.with(|s| *s.borrow_mut() = None);
    }
}

/// The logged-in user, its role and a logout button (nothing without a login).
pub fn session_bar(h: &mut Html) {
    SHOWN.with(|s| {
        if let Some((user, admin)) = &*s.borrow() {
            h.el("span", &[("id", "session")], |h| {
                h.text_el("span", &[("id", "session-user")], user);
                h.text(" ");
                let role = if *admin { "admin" } else { "read-only" };
                h.text_el("span", &[("id", "session-role"), ("class", "role")], role);
                h.el(
                    "form",
                    &[
                        ("method", "post"),
                        ("action", "/logout"),
                        ("class", "logout"),
                    ],
                    |h| {
                        h.el("button", &[("type", "submit"), ("id", "logout")], |h| {
                            h.text("Log out")
                        })
                    },
                );
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_request_the_viewer_sees_nothing() {
        let v = current_viewer();
        assert!(!v.admin);
        assert!(!v.sees(Resource::Topic("t")));
        let open = Viewer::open();
        assert!(open.admin && open.sees(Resource::Topic("t")));
    }

    #[test]
    fn sessions_expire_are_removed_and_ids_are_random() {
        let s = Sessions::new(Duration::from_secs(60), false);
        let t0 = Instant::now();
        let a = s.create("alice", t0);
        let b = s.create("alice", t0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(
            s.user(&a, t0 + Duration::from_secs(59)).as_deref(),
            Some("alice")
        );
        assert_eq!(s.user(&a, t0 + Duration::from_secs(60)), None);
        assert_eq!(s.len(), 1, "the expired session is gone");
        s.remove(&b);
        assert_eq!(s.user(&b, t0), None);
        assert_eq!(s.user("nonsense", t0), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let s = Sessions::new(Duration::from_secs(60), false);
        let t0 = Instant::now();
        let first = s.create("u", t0);
        for i in 1..=MAX_SESSIONS {
            s.create("u", t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert_eq!(s.user(&first, t0), None, "the oldest was evicted");
    }

    #[test]
    fn cookies_carry_the_flags() {
        let plain = Sessions::new(Duration::from_secs(3600), false);
        let c = plain.cookie("abc");
        assert_eq!(
            c,
            "weir_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600"
        );
        let tls = Sessions::new(Duration::from_secs(3600), true);
        assert!(tls.cookie("abc").ends_with("; Secure"));
        assert!(tls.clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn the_session_id_is_read_from_any_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; weir_session=xyz; b=2"),
        );
        assert_eq!(session_id(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("other=1"));
        h.append(header::COOKIE, HeaderValue::from_static("weir_session=q"));
        assert_eq!(session_id(&h), Some("q"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("weir_session="));
        assert_eq!(session_id(&h), None);
    }

    #[test]
    fn next_never_leaves_the_console() {
        assert_eq!(safe_next(Some("/topics?q=a")), "/topics?q=a");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "evil",
            "/\\evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn bearer_tokens_compare_exactly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&h, "s3cre"));
        assert!(!bearer_matches(&h, "s3crets"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert!(!bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }
}
