//! The SQL engine as a broker service: its listener bound before the broker serves (so a
//! taken port is an error at start), started after transactions are recovered (the catalog
//! is replayed and every view's and sink's pipeline resumes then), stopped before the logs
//! close (in-flight INSERTs finish their appends, pipelines commit their last epoch). With
//! the listener disabled the pipelines still run.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};
use weir_broker::state::State;

use crate::config::SqlConfig;
use crate::engine::Engine;
use crate::pg::{Connection, Handlers};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen for SQL on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Cluster mode: how long to wait before opening the catalog again.
const CATALOG_RETRY: Duration = Duration::from_secs(2);

/// Starts the engine (`None`: SQL is unavailable, logged). In cluster mode the catalog may
/// not be ready when the broker starts: its topic cannot be created before any broker is
/// unfenced, and after a restart it exists in the quorum before this broker published it.
/// Opening the catalog is the engine's first step (nothing else has started when it
/// fails), so it is retried until it works; any other failure is final.
async fn start_engine(state: Arc<State>, config: &SqlConfig) -> Option<Arc<Engine>> {
    let mut retries = 0u32;
    loop {
        match Engine::start(state.clone(), config.clone()).await {
            Ok(engine) => {
                if retries > 0 {
                    tracing::info!(retries, "the SQL engine started");
                }
                return Some(engine);
            }
            Err(e @ crate::error::SqlError::Catalog(_)) if state.is_cluster() => {
                if retries == 0 {
                    tracing::warn!(error = %e, "the SQL catalog is not ready; retrying every {CATALOG_RETRY:?}");
                } else {
                    tracing::debug!(error = %e, retries, "the SQL catalog is not ready");
                }
                retries = retries.saturating_add(1);
                tokio::time::sleep(CATALOG_RETRY).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "the SQL engine cannot start; SQL is unavailable");
                return None;
            }
        }
    }
}

/// How long connections may take to finish once the broker stops.
const DRAIN: Duration = Duration::from_secs(5);

pub struct SqlService {
    /// `None`: the listener is disabled (`weir.sql.listen` empty).
    listener: Option<TcpListener>,
    config: SqlConfig,
    /// Set once the engine has started, for readers beside it (the HTTP console).
    engine: Arc<OnceLock<Arc<Engine>>>,
}

impl SqlService {
    /// Binds `config.listen` unless SQL connections are disabled.
    pub async fn bind(config: SqlConfig) -> Result<SqlService, ServiceError> {
        let listener = match config.listen.clone() {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(&addr)
                    .await
                    .map_err(|source| ServiceError::Bind { addr, source })?,
            ),
        };
        Ok(SqlService {
            listener,
            config,
            engine: Arc::new(OnceLock::new()),
        })
    }

    /// The engine once it has started (empty before, and if it failed to start).
    pub fn engine(&self) -> Arc<OnceLock<Arc<Engine>>> {
        self.engine.clone()
    }

    /// The listener's address; `None` when it is disabled.
    pub fn local_addr(&self) -> std::io::Result<Option<std::net::SocketAddr>> {
        self.listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
    }
}

impl weir_broker::Service for SqlService {
    fn name(&self) -> &str {
        "sql"
    }

    fn start(
        self: Box<Self>,
        state: Arc<State>,
        mut stop: broadcast::Receiver<()>,
    ) -> tokio::task::JoinHandle<()> {
        let SqlService {
            listener,
            config,
            engine: slot,
        } = *self;
        tokio::spawn(async move {
            let engine = tokio::select! {
                _ = stop.recv() => return,
                e = start_engine(state, &config) => match e {
                    Some(e) => e,
                    None => return,
                },
            };
            let _ = slot.set(engine.clone());
            let Some(listener) = listener else {
                let _ = stop.recv().await;
                engine.stop().await;
                return;
            };
            let local = listener.local_addr().ok();
            tracing::info!(listen = ?local, "SQL listening (PostgreSQL wire protocol)");
            let permits = Arc::new(Semaphore::new(config.max_connections));
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let permit = tokio::select! {
                    _ = stop.recv() => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let accepted = tokio::select! {
                    _ = stop.recv() => break,
                    a = listener.accept() => a,
                };
                match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        let handlers =
                            Arc::new(Handlers(Arc::new(Connection::new(engine.session()))));
                        connections.spawn(async move {
                            if let Err(e) =
                                pgwire::tokio::process_socket(socket, None, handlers).await
                            {
                                tracing::debug!(%peer, error = %e, "SQL connection ended");
                            }
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SQL accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                while connections.try_join_next().is_some() {}
            }
            drop(listener);
            let drain = async { while connections.join_next().await.is_some() {} };
            if tokio::time::timeout(DRAIN, drain).await.is_err() {
                tracing::warn!("SQL connections still open after 5 s; closing them");
                connections.abort_all();
            }
            engine.stop().await;
        })
    }
}
