//! The listener: accepts connections up to `max.connections`, runs the background tasks
//! (retention, periodic flush) and shuts everything down in order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};

use crate::config::BrokerConfig;
use crate::connection;
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
    #[error("cannot open the data directory: {0}")]
    Open(#[source] AdminError),
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
    let listen = config.listen;
    let state = Arc::new(
        tokio::task::spawn_blocking(move || State::open(config))
            .await?
            .map_err(BrokerError::Open)?,
    );
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| BrokerError::Bind {
        addr: listen,
        source,
    })?;
    tracing::info!(%local, cluster_id = %state.cluster_id, "weir broker listening");
    ready(local);

    // Tells connections and background tasks to stop; each holds a receiver.
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let mut background = spawn_background(&state, &stop_tx);
    background.push(tokio::spawn(
        state.groups.clone().run_timer(stop_tx.subscribe()),
    ));
    // Bounds open connections: a permit per connection, released when it ends.
    let permits = Arc::new(Semaphore::new(state.config.max_connections));
    let mut connections = tokio::task::JoinSet::new();

    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let state = state.clone();
                let stop = stop_tx.subscribe();
                connections.spawn(async move {
                    connection::serve(stream, peer, state, stop).await;
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
    drop(listener);
    let _ = stop_tx.send(());
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still busy after 10 s; closing them");
        connections.abort_all();
    }
    for task in background {
        task.abort();
    }
    let closing = state.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await?
        .map_err(BrokerError::Close)?;
    tracing::info!("clean shutdown complete");
    Ok(())
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
                match p.log.enforce_retention(now) {
                    Ok(out) if out.segments_deleted > 0 => tracing::info!(
                        topic = %topic.name, partition = p.index,
                        segments = out.segments_deleted, bytes = out.bytes_deleted,
                        log_start = out.log_start_offset, "retention deleted segments"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed"),
                }
            }
        }
    })));
    if state.config.flush_interval_ms > 0 {
        let every = Duration::from_millis(state.config.flush_interval_ms);
        tasks.push(tokio::spawn(periodic(state.clone(), stop.subscribe(), every, |state| {
            for topic in state.topics() {
                for p in topic.all_partitions() {
                    if let Err(e) = p.log.flush_all() {
                        tracing::error!(topic = %topic.name, partition = p.index, error = %e, "periodic flush failed");
                    }
                }
            }
        })));
    }
    tasks
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
