//! Weir's HTTP listener (docs/design/operability.md): `/metrics` in the Prometheus text format,
//! `/livez`, `/readyz` and the web console with its JSON twins under `/api`.
//!
//! The listener is bound and served **before** the broker opens its data directory, so that
//! `/livez` answers and `/readyz` says "recovering" during a long recovery instead of the port
//! refusing connections (an orchestrator would kill a broker whose liveness probe fails while
//! it replays its logs). It becomes a broker [`Service`] once the state exists: `start` hands
//! it the state, and the broker's stop signal marks it draining and then ends it, after its
//! in-flight requests.
//!
//! When a broker listener speaks SASL, the console needs a login ([`auth`]): a middleware
//! in front of every route resolves the session cookie into the viewer the pages filter by.

pub mod auth;
pub mod basic_auth;
pub mod bundle;
mod config;
pub mod console;
mod health;
pub mod log_ring;
mod pipeline_metrics;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{broadcast, watch};
use weir_broker::state::State;
use weir_broker::weir_metrics::CONTENT_TYPE;

pub use config::{HttpConfig, HttpConfigError};
pub use health::Readiness;

/// Why the HTTP listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the console's CSRF key: {0}")]
    Csrf(#[source] console::csrf::CsrfError),
}

/// Where the binary puts the SQL engine's view for the pipelines page (set once).
type PipelineSlot = Arc<OnceLock<Arc<dyn console::pipelines::PipelineSource>>>;

/// What the handlers share: the broker's state once it is open, and whether it is draining.
#[derive(Clone)]
struct Shared {
    state: Arc<OnceLock<Arc<State>>>,
    draining: watch::Receiver<bool>,
    /// The console's produce and fetch rate rings.
    rates: Arc<console::rates::Rates>,
    /// The per-process key every POST's token is checked with.
    csrf: Arc<console::csrf::Csrf>,
    /// Live tails open, for `/api/tails`.
    tails: Arc<console::tail::Tails>,
    pipelines: PipelineSlot,
    /// Console sessions and the probes' bearer token.
    auth: Arc<auth::AuthState>,
}

/// The HTTP listener, already serving; a [`weir_broker::Service`] to hand to
/// `Broker::serve_with`.
pub struct HttpService {
    local: SocketAddr,
    state: Arc<OnceLock<Arc<State>>>,
    draining: watch::Sender<bool>,
    rates: Arc<console::rates::Rates>,
    pipelines: PipelineSlot,
    /// Ends the server (after its in-flight requests) when sent.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl HttpService {
    /// Binds `config.listen` and starts serving at once (`None` when the listener is
    /// disabled). Until [`weir_broker::Service::start`], `/readyz` answers "recovering".
    pub async fn bind(config: &HttpConfig) -> Result<Option<HttpService>, HttpError> {
        let Some(addr) = config.listen else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| HttpError::Bind { addr, source })?;
        let state = Arc::new(OnceLock::new());
        let (draining_tx, draining_rx) = watch::channel(false);
        let rates = Arc::new(console::rates::Rates::new(config.sample_interval));
        let pipelines: PipelineSlot = Arc::new(OnceLock::new());
        let shared = Shared {
            state: state.clone(),
            draining: draining_rx,
            rates: rates.clone(),
            csrf: Arc::new(console::csrf::Csrf::new().map_err(HttpError::Csrf)?),
            tails: Arc::new(console::tail::Tails::default()),
            pipelines: pipelines.clone(),
            auth: Arc::new(auth::AuthState {
                sessions: auth::Sessions::new(config.session_timeout, config.cookie_secure),
                metrics_token: config.metrics_token.clone(),
            }),
        };
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(shared);
        let server = tokio::spawn(async move {
            // The peer address: the ACL decisions of a logged-in user take its host.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        });
        Ok(Some(HttpService {
            local,
            state,
            draining: draining_tx,
            rates,
            pipelines,
            shutdown: Some(shutdown_tx),
            server,
        }))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Gives the pipelines page the SQL engine's view (the binary's implementation); later
    /// calls are ignored. Without it the page says SQL is off.
    pub fn set_pipelines(&self, source: Arc<dyn console::pipelines::PipelineSource>) {
        let _ = self.pipelines.set(source);
    }
}

impl weir_broker::Service for HttpService {
    fn name(&self) -> &str {
        "http"
    }

    fn start(
        mut self: Box<Self>,
        state: Arc<State>,
        mut stop: broadcast::Receiver<()>,
    ) -> tokio::task::JoinHandle<()> {
        health::register_gauge(&state, self.draining.subscribe());
        let _ = self.state.set(state.clone());
        let sampler = tokio::spawn(self.rates.clone().run(state));
        tokio::spawn(async move {
            let _ = stop.recv().await;
            sampler.abort();
            let _ = self.draining.send(true);
            if let Some(s) = self.shutdown.take() {
                let _ = s.send(());
            }
            if let Err(e) = (&mut self.server).await {
                tracing::error!(error = %e, "HTTP listener task failed");
            }
        })
    }
}

impl Drop for HttpService {
    fn drop(&mut self) {
        // Never started (the broker failed to open): stop serving rather than leak the task.
        if self.shutdown.is_some() {
            self.server.abort();
        }
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/api/debug/bundle", get(bundle::handler))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .merge(console::routes())
        // Every POST passes the CSRF check before its handler.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            console::csrf::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require_login,
        ))
        .with_state(shared)
}

async fn metrics(AxumState(shared): AxumState<Shared>) -> Response {
    let Some(state) = shared.state.get().cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "recovering\n").into_response();
    };
    // The gauges read at scrape time stat the log directory and walk the topic table: off the
    // async workers.
    let pipelines = shared.pipelines.get().cloned();
    let render = move || {
        let mut text = state.metrics.registry.render();
        if let Some(snapshot) = pipelines.and_then(|p| p.snapshot()) {
            text.push_str(&pipeline_metrics::render(&snapshot));
        }
        text
    };
    match tokio::task::spawn_blocking(render).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Answers while the runtime does: the handler itself is the probe.
async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(AxumState(shared): AxumState<Shared>) -> Response {
    let draining = *shared.draining.borrow();
    let state = shared.state.get().cloned();
    let readiness =
        match tokio::task::spawn_blocking(move || health::readiness(state.as_deref(), draining))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "readiness check panicked");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
    let code = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(readiness)).into_response()
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;
