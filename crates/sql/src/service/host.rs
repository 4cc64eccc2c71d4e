//! Which engine this broker runs, and when (design §14). On a single node the engine starts
//! with the broker and stops with it, committing its pipelines' last epochs. In a cluster
//! it follows the leadership of `__weir_sql_catalog` partition 0 through the broker's
//! metadata image, as coordinator shards follow theirs: gaining it starts an engine (the
//! catalog replayed, every pipeline resumed from its checkpoint); losing it abandons the
//! engine (pipelines stop without committing; the next host's `init_transactional` fences
//! their open epochs, §7.4); the broker stopping stops it cleanly.
//!
//! Data flow: image -> [`placement::decide`] -> engine start/stop here -> the [`Route`]
//! the listener sends each new connection along, and the [`EngineSlot`] the console reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use weir_broker::partition::Role;
use weir_broker::state::State;

use super::placement::{self, NoHost, Placement};
use super::{EngineSlot, Route};
use crate::catalog::CATALOG_TOPIC;
use crate::config::SqlConfig;
use crate::engine::Engine;
use crate::error::SqlError;

/// How often the placement is looked at again without a new image (a lease, a start that
/// must be retried, a catalog that could not be created yet).
const POLL: Duration = Duration::from_millis(500);
/// How long a failed start waits before the next attempt, while this broker still leads.
const START_RETRY: Duration = Duration::from_secs(2);
/// How long a new catalog leader waits for its high watermark to cover its log: entries
/// acknowledged by the previous leader are in this log, but read only up to it.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Why this broker could not start the engine though it leads the catalog.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{CATALOG_TOPIC} partition 0 is not open on this broker yet")]
    NotOpen,
    #[error("this broker's replica of {CATALOG_TOPIC} partition 0 is not its leader yet")]
    NotLeader,
    #[error("{CATALOG_TOPIC}'s high watermark ({hw}) did not reach its log end ({end}) within {CATCH_UP:?}")]
    Behind { hw: i64, end: i64 },
    #[error(transparent)]
    Engine(#[from] SqlError),
}

/// Sets the route when it changed.
fn route(routes: &watch::Sender<Route>, new: Route) {
    routes.send_if_modified(|r| {
        if r.same(&new) {
            return false;
        }
        *r = new;
        true
    });
}

/// Runs until `halt` is set (the broker stops, after its SQL connections drained).
pub(super) async fn run(
    state: Arc<State>,
    config: SqlConfig,
    slot: EngineSlot,
    routes: watch::Sender<Route>,
    halt: watch::Receiver<bool>,
    demand: watch::Receiver<bool>,
) {
    if state.is_cluster() {
        follow_catalog(state, config, slot, routes, halt, demand).await;
    } else {
        single_node(state, config, slot, routes, halt).await;
    }
}

async fn halted(halt: &mut watch::Receiver<bool>) {
    let _ = halt.wait_for(|h| *h).await;
}

/// The engine for the broker's life; a failed start is final (SQL unavailable, logged).
async fn single_node(
    state: Arc<State>,
    config: SqlConfig,
    slot: EngineSlot,
    routes: watch::Sender<Route>,
    mut halt: watch::Receiver<bool>,
) {
    let started = tokio::select! {
        () = halted(&mut halt) => return,
        e = Engine::start(state, config) => e,
    };
    match started {
        Ok(engine) => {
            slot.set(Some(engine.clone()));
            route(&routes, Route::Host(engine.clone()));
            halted(&mut halt).await;
            slot.set(None);
            engine.stop().await;
        }
        Err(e) => {
            tracing::error!(error = %e, "the SQL engine cannot start; SQL is unavailable");
            route(
                &routes,
                Route::Unavailable(format!("the SQL engine cannot start: {e}")),
            );
            halted(&mut halt).await;
        }
    }
}

/// Cluster mode: host the engine while this broker leads the catalog partition.
async fn follow_catalog(
    state: Arc<State>,
    config: SqlConfig,
    slot: EngineSlot,
    routes: watch::Sender<Route>,
    mut halt: watch::Receiver<bool>,
    mut demand: watch::Receiver<bool>,
) {
    let local = state.config.node_id;
    // The engine and the catalog's leader epoch it started under: a leadership lost and
    // regained between two looks (another broker may have hosted and written meanwhile)
    // restarts it.
    let mut hosted: Option<(Arc<Engine>, i32)> = None;
    let mut failures = 0u32;
    let mut last: Option<Placement> = None;
    loop {
        if *halt.borrow() {
            break;
        }
        let index = state.image.index();
        let image = state.image.image();
        let placement = placement::decide(&image, local, state.image.is_caught_up());
        let epoch = catalog_leader_epoch(&image);
        let stale = |(_, at): &mut (Arc<Engine>, i32)| *at != epoch;
        if let Some((engine, at)) = hosted.take_if(|h| placement == Placement::Host && stale(h)) {
            slot.set(None);
            route(&routes, Route::Starting);
            engine.abandon();
            tracing::info!(
                from = at,
                to = epoch,
                "{CATALOG_TOPIC}'s leader epoch changed; restarting the SQL engine"
            );
        }
        if last.as_ref() != Some(&placement) {
            tracing::info!(?placement, "SQL engine placement");
            last = Some(placement.clone());
        }
        let mut wait = POLL;
        match placement {
            Placement::Host if hosted.is_none() => {
                route(&routes, Route::Starting);
                let started = tokio::select! {
                    () = halted(&mut halt) => break,
                    r = start(&state, &config) => r,
                };
                match started {
                    Ok(engine) => {
                        tracing::info!(
                            retries = failures,
                            "hosting the SQL engine: this broker leads {CATALOG_TOPIC}"
                        );
                        failures = 0;
                        slot.set(Some(engine.clone()));
                        route(&routes, Route::Host(engine.clone()));
                        hosted = Some((engine, epoch));
                        // The image may have moved on while the engine started.
                        continue;
                    }
                    Err(e) => {
                        if failures == 0 {
                            tracing::warn!(error = %e, "the SQL engine cannot start yet; retrying every {START_RETRY:?}");
                        } else {
                            tracing::debug!(error = %e, failures, "the SQL engine cannot start yet");
                        }
                        failures = failures.saturating_add(1);
                        route(
                            &routes,
                            Route::Unavailable(format!(
                                "broker {local} leads {CATALOG_TOPIC} but its SQL engine is not started yet: {e}"
                            )),
                        );
                        wait = START_RETRY;
                    }
                }
            }
            Placement::Host => {}
            other => {
                let no_catalog = other == Placement::NoHost(NoHost::NoCatalog);
                // The catalog is created on the first connection's demand, once enough
                // brokers are up to replicate it; meanwhile connections are told why.
                let create = no_catalog
                    && *demand.borrow()
                    && placement::catalog_shape(&state, &image).is_some();
                let next = match &other {
                    _ if create => Route::Starting,
                    Placement::NoHost(NoHost::NoCatalog) if !*demand.borrow() => Route::OnDemand,
                    Placement::Forward { broker, addr } => Route::Forward {
                        broker: *broker,
                        addr: addr.clone(),
                    },
                    Placement::NoHost(why) => Route::Unavailable(why.to_string()),
                    Placement::Host => Route::Starting,
                };
                // Connections close before the engine goes, so none sees it half-stopped.
                route(&routes, next);
                if let Some((engine, _)) = hosted.take() {
                    slot.set(None);
                    engine.abandon();
                    tracing::info!(
                        ?other,
                        "no longer hosting the SQL engine: pipelines stopped without committing"
                    );
                }
                failures = 0;
                if create {
                    tokio::select! {
                        () = halted(&mut halt) => break,
                        () = placement::ensure_catalog_topic(&state) => {}
                    }
                }
            }
        }
        tokio::select! {
            () = halted(&mut halt) => break,
            () = state.image.published(index.saturating_add(1)) => {}
            () = tokio::time::sleep(wait) => {}
            () = asked(&mut demand) => {}
        }
    }
    route(
        &routes,
        Route::Unavailable("this broker is shutting down".into()),
    );
    if let Some((engine, _)) = hosted {
        slot.set(None);
        engine.stop().await;
    }
}

/// Resolves when a connection first asks for the catalog (never again after that, nor when
/// no listener can ask).
async fn asked(demand: &mut watch::Receiver<bool>) {
    if *demand.borrow_and_update() || demand.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The leader epoch of the catalog's partition in `image` (-1 without one).
fn catalog_leader_epoch(image: &weir_metadata::MetadataImage) -> i32 {
    image
        .topic_by_name(CATALOG_TOPIC)
        .and_then(|t| t.partitions.get(&0))
        .map_or(-1, |p| p.leader_epoch)
}

/// Starts the engine on the catalog partition's new leader, once its log is readable to
/// its end.
async fn start(state: &Arc<State>, config: &SqlConfig) -> Result<Arc<Engine>, StartError> {
    let partition = state
        .topic(CATALOG_TOPIC)
        .and_then(|t| t.partition(0))
        .ok_or(StartError::NotOpen)?;
    if partition.role() != Role::Leader {
        return Err(StartError::NotLeader);
    }
    let end = partition.log_end_offset();
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let hw = partition.high_watermark();
        if hw >= end {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StartError::Behind { hw, end });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Engine::start(state.clone(), config.clone()).await?)
}
