//! The listener: accepts connections up to `max.connections`, runs the background tasks
//! (retention, periodic flush) and shuts everything down in order.
//!
//! Beyond `max.connections` the broker stops calling accept: further clients wait in the
//! kernel's listen backlog (their TCP handshake completes, but nothing is read or answered)
//! until a connection ends, and beyond the backlog the kernel drops or refuses them. Nothing is
//! allocated in the broker for a client it has not accepted. A connection from an address
//! that already holds `max.connections.per.ip` (or its override) is closed right after
//! accept and counted (`connection_limits.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};

use crate::config::BrokerConfig;
use crate::connection::{self, Limits};
use crate::handlers::Conn;
use crate::security::transport::Stream;
use crate::security::{ListenerInfo, Principal};
use crate::state::{AdminError, State};

/// Why the broker could not start or stop cleanly. The operator's or the environment's fault.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] crate::security::tls::TlsError),
    #[error("cannot open the data directory: {0}")]
    Open(#[source] AdminError),
    #[error(transparent)]
    Locked(#[from] crate::dir_lock::DirLockError),
    #[error("clean shutdown failed: {0}")]
    Close(#[source] AdminError),
    #[error("a blocking task panicked: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs the broker until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish, flushes every log and writes the clean-shutdown marker.
///
/// `ready` is called with the bound address once the broker accepts connections.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), BrokerError> {
    let broker = Broker::open(config).await?;
    ready(broker.local_addr());
    broker.serve(shutdown).await
}

/// Something that runs in the broker's process beside the Kafka listener (the SQL engine and
/// its listener), with the broker's state, inside its shutdown order.
///
/// [`Broker::serve_with`] starts every service after transactions are recovered (a service
/// never meets a transaction still being decided) and, at shutdown, sends `stop`, drains the
/// Kafka connections, then awaits each service's task **before** the logs close, so a service
/// may append and wait for durability until it returns.
pub trait Service: Send {
    /// A name for logs.
    fn name(&self) -> &str;
    /// Starts the service's task. `stop` receives a message (or is closed) when the broker
    /// shuts down; the task should then finish its work and return.
    fn start(
        self: Box<Self>,
        state: Arc<State>,
        stop: broadcast::Receiver<()>,
    ) -> tokio::task::JoinHandle<()>;
}

/// How long a service may take to stop once told to, before the logs close regardless.
const SERVICE_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A broker's lifecycle: [`Broker::open`] opens the data directory and binds the Kafka
/// listener, [`Broker::state`] is the shared state other listeners (SQL, HTTP) can serve
/// beside it, and [`Broker::serve`] accepts Kafka connections until its shutdown future
/// completes, then stops everything in order.
pub struct Broker {
    state: Arc<State>,
    /// Every listener (`listeners`), each with what it advertises and speaks.
    listeners: Vec<Listener>,
    /// The first listener's address.
    local: std::net::SocketAddr,
    /// The data directory's lock: no second broker may open it while this one lives.
    _lock: crate::dir_lock::DirLock,
}

impl Broker {
    /// Opens (recovering if needed) every log and binds the listener; nothing is accepted
    /// or run in the background until [`Broker::serve`].
    pub async fn open(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let specs = config.security.listeners.clone();
        // Bad TLS material stops the broker here, not at the first client.
        let tls = match &config.security.tls {
            Some(files) if specs.iter().any(|s| s.protocol.tls()) => {
                Some(Arc::new(crate::security::tls::acceptor(files)?))
            }
            _ => None,
        };
        // Held by the Broker until `serve` returns, after the clean shutdown's last write.
        let lock = crate::dir_lock::DirLock::acquire(&config.data_dir)?;
        let state = Arc::new(
            tokio::task::spawn_blocking(move || State::open(config))
                .await?
                .map_err(BrokerError::Open)?,
        );
        crate::metrics::register_state_gauges(&state);
        let mut listeners = Vec::new();
        for spec in &specs {
            let bind = |source| BrokerError::Bind {
                addr: spec.bind,
                source,
            };
            let socket = TcpListener::bind(spec.bind).await.map_err(bind)?;
            let local = socket.local_addr().map_err(bind)?;
            let info = Arc::new(ListenerInfo::bound(spec, local));
            tracing::info!(listener = %info.name, protocol = info.protocol.name(), %local, advertised = %format!("{}:{}", info.advertise.0, info.advertise.1), "listener bound");
            listeners.push(Listener {
                socket,
                local,
                door: Door {
                    info,
                    tls: tls.clone().filter(|_| spec.protocol.tls()),
                },
            });
        }
        let local = listeners
            .first()
            .map(|l| l.local)
            .unwrap_or(state.config.listen);
        Ok(Broker {
            state,
            listeners,
            local,
            _lock: lock,
        })
    }

    /// The address the (first) Kafka listener is bound to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local
    }

    /// Every listener's name and bound address, in `listeners` order.
    pub fn listener_addrs(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.door.info.name.clone(), l.local))
            .collect()
    }

    /// The topic table, groups and transactions this broker serves.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Serves Kafka clients until `shutdown` completes; then stops accepting, wakes parked
    /// fetches, lets in-flight requests finish (10 s at most), stops the background tasks,
    /// flushes every log and writes the clean-shutdown marker.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        self.serve_with(shutdown, Vec::new()).await
    }

    /// [`Broker::serve`] with services running beside the Kafka listener (see [`Service`] for
    /// when they start and stop).
    pub async fn serve_with(
        self,
        shutdown: impl Future<Output = ()>,
        services: Vec<Box<dyn Service>>,
    ) -> Result<(), BrokerError> {
        let Broker {
            state,
            listeners,
            local,
            _lock,
        } = self;
        tracing::info!(%local, cluster_id = %state.cluster_id, "weir broker listening");
        check_open_files_limit(state.broker_configs.effective().max_connections);
        let limits = Arc::new(Limits::from_config(&state.config));
        if let Some(budget) = state.config.queued_max_request_bytes {
            if budget < state.config.socket_request_max_bytes {
                tracing::warn!(
                    queued_max_request_bytes = budget,
                    socket_request_max_bytes = state.config.socket_request_max_bytes,
                    "queued.max.request.bytes is below socket.request.max.bytes: \
                     frames larger than the budget will be refused"
                );
            }
        }

        // Tells connections and background tasks to stop; each holds a receiver.
        let (stop_tx, _) = broadcast::channel::<()>(1);
        let mut background = spawn_background(&state, &stop_tx);
        let cluster = crate::hw_checkpoint::cluster_mode(&state.config);
        if cluster {
            background.push(tokio::spawn(crate::hw_checkpoint::run(
                state.clone(),
                stop_tx.subscribe(),
                Duration::from_millis(state.config.hw_checkpoint_interval_ms),
            )));
        }
        let cleaners = crate::cleaner::spawn(&state, &stop_tx);
        background.push(tokio::spawn(
            state.groups.clone().run_timer(stop_tx.subscribe()),
        ));
        background.push(tokio::spawn(crate::lag::run(
            state.clone(),
            stop_tx.subscribe(),
        )));
        background.push(tokio::spawn(crate::txn_router::TxnRouter::run_timer(
            state.clone(),
            stop_tx.subscribe(),
        )));
        if let Err(e) = state.txns.recover(&state) {
            tracing::error!(error = %e, "recovering transactions failed");
        }
        let services: Vec<(String, tokio::task::JoinHandle<()>)> = services
            .into_iter()
            .map(|service| {
                let name = service.name().to_string();
                tracing::info!(service = %name, "starting service");
                (name, service.start(state.clone(), stop_tx.subscribe()))
            })
            .collect();
        // Bounds open connections: a permit per connection, released when it ends.
        let max_connections = state.broker_configs.effective().max_connections;
        let permits = Arc::new(Semaphore::new(max_connections));
        background.push(tokio::spawn(follow_max_connections(
            state.clone(),
            permits.clone(),
            max_connections,
            stop_tx.subscribe(),
        )));
        let mut connections = tokio::task::JoinSet::new();
        // Open connections by address, for `max.connections.per.ip`.
        let per_ip = Arc::new(crate::connection_limits::PerIpCounts::default());

        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (accepted, listener) = tokio::select! {
                _ = &mut shutdown => break,
                a = accept_any(&listeners) => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let limit = state.broker_configs.effective().per_ip.limit(peer.ip());
                    let Some(ip_slot) = per_ip.admit(peer.ip(), limit) else {
                        // Kafka's ConnectionQuotas: closed at once, before TLS or a read.
                        state.metrics.connection_rejected("per_ip");
                        tracing::debug!(%peer, limit, "connection closed: max.connections.per.ip reached");
                        drop(stream);
                        continue;
                    };
                    let state = state.clone();
                    let limits = limits.clone();
                    let stop = stop_tx.subscribe();
                    let open = state.metrics.connection_opened();
                    connections.spawn(async move {
                        if let Some((stream, conn)) = listener.handshake(stream, peer, &state).await
                        {
                            connection::serve(stream, conn, state, limits, stop).await;
                        }
                        drop(open);
                        drop(ip_slot);
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            while connections.try_join_next().is_some() {}
        }

        tracing::info!("shutting down: draining connections");
        drop(listeners);
        let _ = stop_tx.send(());
        // Parked fetches answer now rather than at their max_wait_ms.
        state.begin_shutdown();
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            tracing::warn!("connections still busy after 10 s; closing them");
            connections.abort_all();
        }
        // Services may still append (and wait for fsyncs): they end before any log closes.
        for (name, task) in services {
            match tokio::time::timeout(SERVICE_STOP_TIMEOUT, task).await {
                Ok(Ok(())) => tracing::info!(service = %name, "service stopped"),
                Ok(Err(e)) => tracing::error!(service = %name, error = %e, "service task failed"),
                Err(_) => tracing::warn!(service = %name, "service did not stop within 30 s"),
            }
        }
        for task in background {
            task.abort();
        }
        // A cleaner pass stops at its next batch on the stop signal; wait for it, so that no
        // cleaned file is being written while the logs close.
        for task in cleaners {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a log cleaner did not stop within 10 s");
            }
        }
        if cluster {
            // The last high watermarks before the logs close, so a clean restart resumes
            // exactly there.
            let s = state.clone();
            match tokio::task::spawn_blocking(move || crate::hw_checkpoint::checkpoint(&s, None))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "high-watermark checkpoint failed"),
                Err(e) => tracing::error!(error = %e, "high-watermark checkpoint task panicked"),
            }
        }
        let closing = state.clone();
        tokio::task::spawn_blocking(move || closing.close())
            .await?
            .map_err(BrokerError::Close)?;
        tracing::info!("clean shutdown complete");
        Ok(())
    }
}

/// A bound listener.
struct Listener {
    socket: TcpListener,
    local: std::net::SocketAddr,
    door: Door,
}

/// What a connection of a listener needs: its identity and TLS.
#[derive(Clone)]
struct Door {
    info: Arc<ListenerInfo>,
    /// Set on SSL and SASL_SSL listeners.
    tls: Option<Arc<tokio_rustls::TlsAcceptor>>,
}

impl Door {
    /// TLS (if the listener speaks it, bounded by `weir.ssl.handshake.timeout.ms`) and the
    /// connection's identity; `None` when the handshake failed (logged, counted).
    async fn handshake(
        &self,
        tcp: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        state: &State,
    ) -> Option<(Stream, Conn)> {
        let _ = tcp.set_nodelay(true);
        let timeout = state.config.security.handshake_timeout;
        match crate::security::transport::accept(tcp, self.tls.as_ref(), timeout).await {
            Ok((stream, cert_principal)) => Some((
                stream,
                Conn {
                    peer,
                    client_id: String::new(),
                    listener: self.info.clone(),
                    principal: cert_principal.unwrap_or_else(Principal::anonymous),
                    api: None,
                    produce_gaps: Default::default(),
                },
            )),
            Err(e) => {
                state.security.count_failed_tls_handshake(&self.info.name);
                tracing::info!(%peer, listener = %self.info.name, error = %e, "closing connection");
                None
            }
        }
    }
}

/// The next connection on any listener.
async fn accept_any(
    listeners: &[Listener],
) -> (
    std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>,
    Door,
) {
    std::future::poll_fn(|cx| {
        for l in listeners {
            if let std::task::Poll::Ready(r) = l.socket.poll_accept(cx) {
                return std::task::Poll::Ready((r, l.door.clone()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Logs the process's open-file limit and warns when it cannot hold `max.connections` plus
/// room for log segments, indexes and the rest (1000 descriptors).
fn check_open_files_limit(max_connections: usize) {
    let Some((soft, hard)) = open_files_limit() else {
        tracing::debug!("cannot read the open-file limit from /proc/self/limits");
        return;
    };
    let wanted = max_connections.saturating_add(1000);
    match soft.parse::<usize>() {
        Ok(n) if n < wanted => tracing::warn!(
            soft = %soft, hard = %hard, max_connections, wanted,
            "open-file limit is below max.connections + 1000: accept will fail with EMFILE \
             before max.connections is reached; raise it (ulimit -n, systemd LimitNOFILE=)"
        ),
        _ => tracing::info!(soft = %soft, hard = %hard, "open-file limit"),
    }
}

/// The soft and hard "Max open files" of this process ("unlimited" or a number).
fn open_files_limit() -> Option<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

fn parse_open_files_limit(limits: &str) -> Option<(String, String)> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    let mut fields = rest.split_whitespace();
    Some((fields.next()?.to_string(), fields.next()?.to_string()))
}

fn spawn_background(
    state: &Arc<State>,
    stop: &broadcast::Sender<()>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let retention = Duration::from_millis(state.config.retention_check_interval_ms);
    tasks.push(tokio::spawn(periodic(state.clone(), stop.subscribe(), retention, |state| {
        let now = now_ms();
        for topic in state.topics() {
            for p in topic.all_partitions() {
                match p.enforce_retention(now) {
                    Ok(out) if out.segments_deleted > 0 => tracing::info!(
                        topic = %topic.name, partition = p.index(),
                        segments = out.segments_deleted, bytes = out.bytes_deleted,
                        log_start = out.log_start_offset, "retention deleted segments"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(topic = %topic.name, partition = p.index(), error = %e, "retention failed"),
                }
            }
        }
    })));
    tasks.push(tokio::spawn(flush_periodically(
        state.clone(),
        stop.subscribe(),
    )));
    tasks
}

/// fsyncs every log every `log.flush.interval.ms` (0: never), following dynamic changes of it.
async fn flush_periodically(state: Arc<State>, mut stop: broadcast::Receiver<()>) {
    let mut changes = state.broker_configs.subscribe();
    loop {
        let every = state.broker_configs.effective().flush_interval_ms;
        let tick = async {
            if every == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(every)).await;
        };
        tokio::select! {
            _ = stop.recv() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            _ = tick => {}
        }
        let s = state.clone();
        let flushed = tokio::task::spawn_blocking(move || {
            for topic in s.topics() {
                for p in topic.all_partitions() {
                    if let Err(e) = p.flush_all() {
                        tracing::error!(topic = %topic.name, partition = p.index(), error = %e, "periodic flush failed");
                    }
                }
            }
        });
        if let Err(e) = flushed.await {
            tracing::error!(error = %e, "background task panicked");
        }
    }
}

/// Keeps the connection permits at `max.connections` as it is altered: more permits are
/// added at once; fewer are taken out of circulation as connections end.
async fn follow_max_connections(
    state: Arc<State>,
    permits: Arc<Semaphore>,
    mut current: usize,
    mut stop: broadcast::Receiver<()>,
) {
    let mut changes = state.broker_configs.subscribe();
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        let wanted = state.broker_configs.effective().max_connections;
        if wanted > current {
            permits.add_permits(wanted - current);
        } else if wanted < current {
            let fewer = u32::try_from(current - wanted).unwrap_or(u32::MAX);
            let permits = permits.clone();
            // Waits for connections to end if that many are not free now.
            tokio::spawn(async move {
                if let Ok(p) = permits.acquire_many_owned(fewer).await {
                    p.forget();
                }
            });
        }
        if wanted != current {
            tracing::info!(from = current, to = wanted, "max.connections changed");
            current = wanted;
        }
    }
}

/// Runs `work` on the blocking pool every `every` until stopped.
async fn periodic(
    state: Arc<State>,
    mut stop: broadcast::Receiver<()>,
    every: Duration,
    work: fn(&State),
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        let s = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || work(&s)).await {
            tracing::error!(error = %e, "background task panicked");
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_exposes_the_state_serve_accepts_and_shutdown_closes_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, _) = BrokerConfig::from_pairs(
            "127.0.0.1:0".parse().expect("addr"),
            None,
            dir.path().to_path_buf(),
            Default::default(),
        )
        .expect("config");
        let broker = Broker::open(config).await.expect("open");
        let addr = broker.local_addr();
        assert_ne!(addr.port(), 0);
        // Another listener would get the state like this, before or while Kafka is served.
        let state = broker.state().clone();
        state
            .create_topic("beside", 2, 1, Default::default())
            .await
            .expect("create through the state");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(broker.serve(async {
            let _ = stopped.await;
        }));
        tokio::net::TcpStream::connect(addr)
            .await
            .expect("the Kafka listener accepts");
        stop.send(()).expect("serving");
        tokio::time::timeout(Duration::from_secs(15), served)
            .await
            .expect("shut down in time")
            .expect("task")
            .expect("clean shutdown");
        assert!(dir.path().join("meta").join("clean-shutdown").exists());
        assert!(dir.path().join("beside-1").is_dir());
    }

    /// Records, at the moment it is told to stop, whether the logs are still open, then proves
    /// it can still append durably before returning.
    struct Probe {
        started: tokio::sync::oneshot::Sender<()>,
        stopped_with_open_logs: Arc<std::sync::Mutex<Option<bool>>>,
    }

    impl Service for Probe {
        fn name(&self) -> &str {
            "probe"
        }

        fn start(
            self: Box<Self>,
            state: Arc<State>,
            mut stop: broadcast::Receiver<()>,
        ) -> tokio::task::JoinHandle<()> {
            let _ = self.started.send(());
            let seen = self.stopped_with_open_logs.clone();
            tokio::spawn(async move {
                let _ = stop.recv().await;
                // Slower than the connection drain, so an early close would show.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let p = state
                    .topic("svc")
                    .and_then(|t| t.partition(0))
                    .expect("partition");
                let mut batch = weir_storage::testkit::BatchBuilder::new(0)
                    .records(1, 16)
                    .build();
                let appended = p.append(
                    &mut batch,
                    crate::partition::Acks::All,
                    crate::Durability::AcksAll,
                    now_ms(),
                );
                let ok = match appended {
                    Ok(a) => match a.wait.fsync {
                        Some(d) => d.wait().await.is_ok(),
                        None => true,
                    },
                    Err(_) => false,
                };
                *seen.lock().expect("lock") = Some(ok);
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn services_start_after_recovery_and_stop_before_logs_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, _) = BrokerConfig::from_pairs(
            "127.0.0.1:0".parse().expect("addr"),
            None,
            dir.path().to_path_buf(),
            Default::default(),
        )
        .expect("config");
        let broker = Broker::open(config).await.expect("open");
        broker
            .state()
            .create_topic("svc", 1, 1, Default::default())
            .await
            .expect("topic");
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let seen = Arc::new(std::sync::Mutex::new(None));
        let probe = Probe {
            started: started_tx,
            stopped_with_open_logs: seen.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(broker.serve_with(
            async {
                let _ = stopped.await;
            },
            vec![Box::new(probe)],
        ));
        tokio::time::timeout(Duration::from_secs(10), started)
            .await
            .expect("started in time")
            .expect("started");
        stop.send(()).expect("serving");
        tokio::time::timeout(Duration::from_secs(40), served)
            .await
            .expect("shut down in time")
            .expect("task")
            .expect("clean shutdown");
        assert_eq!(*seen.lock().expect("lock"), Some(true));
        // The service's append made it to disk before the clean shutdown.
        let (config, _) = BrokerConfig::from_pairs(
            "127.0.0.1:0".parse().expect("addr"),
            None,
            dir.path().to_path_buf(),
            Default::default(),
        )
        .expect("config");
        let reopened = Broker::open(config).await.expect("reopen");
        let p = reopened
            .state()
            .topic("svc")
            .and_then(|t| t.partition(0))
            .expect("partition");
        assert_eq!(p.high_watermark(), 1);
    }

    #[test]
    fn parses_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             95452                95452                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(
            parse_open_files_limit(text),
            Some(("1024".to_string(), "524288".to_string()))
        );
        assert_eq!(parse_open_files_limit("Max processes 1 2\n"), None);
    }
}
