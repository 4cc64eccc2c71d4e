//! The SQL engine as a broker service: its listener bound before the broker serves (so a
//! taken port is an error at start), the engine started after transactions are recovered
//! (the catalog is replayed and every view's and sink's pipeline resumes then), stopped
//! before the logs close (in-flight INSERTs finish their appends, pipelines commit their
//! last epoch). With the listener disabled the pipelines still run.
//!
//! In a cluster one broker runs the engine, the leader of the catalog's partition
//! ([`host`], [`placement`]); every broker's listener takes connections and sends each
//! along the current [`Route`]: served here, forwarded to the host ([`forward`]), or refused
//! with SQLSTATE 57P03 and the reason. A connection ends when the route it took changes
//! (the host moved): clients reconnect and reach the new host. The catalog topic is created
//! on demand, by the first SQL connection to any broker (as Kafka creates its offsets topic
//! on the first group): a cluster that never runs SQL keeps no replicated topic for it, which
//! would pin a replica to every broker of a three-broker cluster and block draining one.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, Semaphore};
use weir_broker::state::State;

use crate::config::SqlConfig;
use crate::engine::Engine;
use crate::pg::{Connection, Handlers};

pub mod forward;
mod host;
pub mod placement;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen for SQL on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// How long connections may take to finish once the broker stops.
const DRAIN: Duration = Duration::from_secs(5);
/// How long a new connection waits for an engine that is starting on this broker.
const START_WAIT: Duration = Duration::from_secs(30);

/// The engine this broker runs now, for readers beside it (the HTTP console): empty while
/// it starts, when it failed to start, and in a cluster while another broker hosts it.
#[derive(Clone, Default)]
pub struct EngineSlot(Arc<RwLock<Option<Arc<Engine>>>>);

impl EngineSlot {
    pub fn get(&self) -> Option<Arc<Engine>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, engine: Option<Arc<Engine>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }
}

/// Where a new SQL connection goes.
#[derive(Clone)]
pub(crate) enum Route {
    /// The engine is starting here: wait for it.
    Starting,
    /// Served by this broker's engine.
    Host(Arc<Engine>),
    /// Forwarded to broker `broker`'s SQL listener at `addr`.
    Forward { broker: i32, addr: String },
    /// Refused with 57P03 and this reason.
    Unavailable(String),
    /// A cluster without the catalog topic yet: the first connection asks for it (through
    /// the demand flag) and waits for the engine.
    OnDemand,
}

impl Route {
    /// Whether a connection that took `self` may stay on `other`.
    fn same(&self, other: &Route) -> bool {
        match (self, other) {
            (Route::Starting, Route::Starting) => true,
            (Route::Host(a), Route::Host(b)) => Arc::ptr_eq(a, b),
            (Route::Forward { addr: a, .. }, Route::Forward { addr: b, .. }) => a == b,
            (Route::Unavailable(a), Route::Unavailable(b)) => a == b,
            (Route::OnDemand, Route::OnDemand) => true,
            _ => false,
        }
    }
}

pub struct SqlService {
    /// `None`: the listener is disabled (`weir.sql.listen` empty).
    listener: Option<TcpListener>,
    config: SqlConfig,
    engine: EngineSlot,
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
            engine: EngineSlot::default(),
        })
    }

    /// The engine while this broker runs one.
    pub fn engine(&self) -> EngineSlot {
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
            let (routes, routes_rx) = watch::channel(Route::Starting);
            let (halt, halt_rx) = watch::channel(false);
            let (demand, demand_rx) = watch::channel(false);
            let max_connections = config.max_connections;
            let hosting = tokio::spawn(host::run(state, config, slot, routes, halt_rx, demand_rx));
            match listener {
                Some(listener) => {
                    serve(listener, max_connections, routes_rx, demand, &mut stop).await
                }
                None => {
                    let _ = stop.recv().await;
                }
            }
            // After the connections: their INSERTs finish before the pipelines stop.
            let _ = halt.send(true);
            if let Err(e) = hosting.await {
                tracing::error!(error = %e, "the SQL engine's task failed");
            }
        })
    }
}

/// Accepts connections until `stop`, then lets them finish (for up to [`DRAIN`]).
async fn serve(
    listener: TcpListener,
    max_connections: usize,
    routes: watch::Receiver<Route>,
    demand: watch::Sender<bool>,
    stop: &mut broadcast::Receiver<()>,
) {
    let demand = Arc::new(demand);
    let local = listener.local_addr().ok();
    tracing::info!(listen = ?local, "SQL listening (PostgreSQL wire protocol)");
    let permits = Arc::new(Semaphore::new(max_connections));
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
                let routes = routes.clone();
                let demand = demand.clone();
                connections.spawn(async move {
                    connection(socket, peer, routes, &demand).await;
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
}

/// One connection, along the route current when it arrived, until it ends or the route
/// changes.
async fn connection(
    socket: TcpStream,
    peer: std::net::SocketAddr,
    mut routes: watch::Receiver<Route>,
    demand: &watch::Sender<bool>,
) {
    if matches!(*routes.borrow(), Route::OnDemand) {
        demand.send_if_modified(|asked| !std::mem::replace(asked, true));
    }
    // The borrow of `routes` ends with this block (the route is cloned out of it).
    let taken = {
        let waited = tokio::time::timeout(
            START_WAIT,
            routes.wait_for(|r| !matches!(r, Route::Starting | Route::OnDemand)),
        )
        .await;
        match waited {
            Ok(Ok(r)) => r.clone(),
            Ok(Err(_)) => Route::Unavailable("this broker is shutting down".into()),
            Err(_) => Route::Unavailable(format!(
                "the SQL engine is still starting on this broker after {START_WAIT:?}"
            )),
        }
    };
    let moved = {
        let mut routes = routes.clone();
        let taken = taken.clone();
        async move {
            let _ = routes.wait_for(|r| !taken.same(r)).await;
        }
    };
    match taken {
        Route::Host(engine) => {
            let handlers = Arc::new(Handlers(Arc::new(Connection::new(engine.session()))));
            tokio::select! {
                r = pgwire::tokio::process_socket(socket, None, handlers) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "SQL connection ended");
                    }
                }
                () = moved => tracing::info!(%peer, "the SQL engine left this broker; closing a connection"),
            }
        }
        Route::Forward { broker, addr } => match forward::connect(&addr).await {
            Ok(host) => forward::pipe(socket, host, moved).await,
            Err(e) => {
                tracing::warn!(%peer, broker, error = %e, "cannot forward an SQL connection");
                let reason =
                    format!("broker {broker} hosts the SQL engine but cannot be reached: {e}");
                forward::refuse(socket, &reason).await;
            }
        },
        Route::Unavailable(reason) => forward::refuse(socket, &reason).await,
        Route::Starting | Route::OnDemand => {
            forward::refuse(socket, "the SQL engine is starting; try again").await
        }
    }
}
