//! The broker lifecycle (§4.7): register with the active controller, then heartbeat every
//! `broker.heartbeat.interval.ms`. A heartbeat that is refused for a stale epoch registers
//! again; one refused because the registration is gone (UnregisterBroker) stops the task:
//! the broker stays out until it is restarted. Every answered heartbeat is published with its send time
//! ([`HeartbeatAnswer`]): the broker's lease (design §4.9) is renewed from it. The
//! registration's entry is applied here before `submit` returns, so every later heartbeat
//! reports the broker caught up (KIP-631).
//!
//! Controlled shutdown: once [`Node::controlled_shutdown`] asks, the next heartbeat goes at
//! once and every heartbeat says `want_shutdown` until the controller answers
//! `should_shut_down` (its leaderships moved, it left every ISR), or no controller answers
//! within a session.
//!
//! [`Node::controlled_shutdown`]: crate::Node::controlled_shutdown

use std::sync::Arc;
use std::time::Duration;

use weir_metadata::{
    BrokerHeartbeat, BrokerRegistrationRequest, ControllerReply, ControllerRequest, Endpoint,
    MetadataError,
};

use crate::node::{BrokerState, ControlledShutdown, HeartbeatAnswer, NodeInner};

pub(crate) async fn run(inner: Arc<NodeInner>) {
    let interval = Duration::from_millis(inner.config.heartbeat_interval_ms.max(1));
    let session = Duration::from_millis(inner.config.controller.session_timeout_ms.max(1));
    loop {
        // A new registration: nothing is served until one of its heartbeats is answered.
        inner.heartbeats.send_replace(None);
        let epoch = register(&inner, session).await;
        inner.broker.send_replace(BrokerState {
            epoch: Some(epoch),
            fenced: true,
        });
        tracing::info!(node = inner.id, epoch, "registered with the controller");
        if !heartbeat(&inner, epoch, interval, session).await {
            // Unregistered by an operator: as in Kafka, the broker does not come back by
            // itself (it would undo the unregistration); a restart registers it again.
            return;
        }
    }
}

fn endpoints(inner: &NodeInner) -> Vec<Endpoint> {
    let (host, port) = inner.config.client_endpoint.clone();
    let mut out = vec![Endpoint {
        name: "PLAINTEXT".into(),
        host,
        port,
    }];
    if let Some((host, port)) = inner.internal.rsplit_once(':') {
        out.push(Endpoint {
            name: "INTERNAL".into(),
            host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
            port: port.parse().unwrap_or(0),
        });
    }
    out.extend(inner.config.extra_endpoints.iter().cloned());
    out
}

async fn register(inner: &NodeInner, budget: Duration) -> i64 {
    let request = ControllerRequest::RegisterBroker(BrokerRegistrationRequest {
        id: i32::try_from(inner.id).unwrap_or(i32::MAX),
        incarnation: inner.incarnation,
        endpoints: endpoints(inner),
        rack: inner.config.rack.clone(),
    });
    loop {
        match inner.submit(request.clone(), budget).await {
            Ok(ControllerReply::RegisterBroker(Ok(epoch))) => return epoch,
            Ok(other) => {
                tracing::warn!(reply = ?other, "registration refused; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "registration not answered; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Heartbeats until the controller no longer knows this registration: true when a newer
/// one replaced it (register again), false when it was unregistered.
async fn heartbeat(inner: &NodeInner, epoch: i64, interval: Duration, session: Duration) -> bool {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            Ok(()) = shutdown.changed() => {}
        }
        let want_shutdown = *shutdown.borrow_and_update() != ControlledShutdown::Running;
        let request = ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            id: i32::try_from(inner.id).unwrap_or(i32::MAX),
            epoch,
            caught_up: true,
            want_fence: false,
            want_shutdown,
        });
        // Taken before the first attempt: the controller's session for this heartbeat
        // cannot start earlier, so the lease counted from here ends before it (§4.9).
        let sent_at = std::time::Instant::now();
        match inner.submit(request, session).await {
            Ok(ControllerReply::BrokerHeartbeat(Ok(reply))) => {
                inner.heartbeats.send_replace(Some(HeartbeatAnswer {
                    sent_at,
                    fenced: reply.is_fenced,
                    applied_index: inner.sm.applied().borrow().0.saturating_sub(1),
                }));
                if want_shutdown && reply.should_shut_down {
                    end_shutdown(inner, ControlledShutdown::Done);
                }
                let next = BrokerState {
                    epoch: Some(epoch),
                    fenced: reply.is_fenced,
                };
                let before = inner.broker.send_replace(next);
                if before.fenced != next.fenced {
                    tracing::info!(
                        node = inner.id,
                        fenced = next.fenced,
                        "broker fencing changed"
                    );
                }
            }
            Ok(ControllerReply::BrokerHeartbeat(Err(MetadataError::BrokerIdNotRegistered(_)))) => {
                tracing::error!(
                    node = inner.id,
                    epoch,
                    "this broker was unregistered (UnregisterBroker): it serves nothing and \
                     stays out of the cluster until it is restarted"
                );
                end_shutdown(inner, ControlledShutdown::Done);
                inner.heartbeats.send_replace(None);
                inner.broker.send_replace(BrokerState {
                    epoch: None,
                    fenced: true,
                });
                return false;
            }
            Ok(ControllerReply::BrokerHeartbeat(Err(MetadataError::StaleBrokerEpoch {
                ..
            }))) => {
                tracing::warn!(
                    node = inner.id,
                    epoch,
                    "registration no longer current; registering again"
                );
                // The controller fenced this registration: it leads nothing any more.
                end_shutdown(inner, ControlledShutdown::Done);
                return true;
            }
            Ok(other) => tracing::warn!(reply = ?other, "heartbeat refused"),
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat not answered");
                // `submit` retried for a whole session: no controller can move anything.
                if want_shutdown {
                    end_shutdown(inner, ControlledShutdown::Unanswered);
                }
            }
        }
    }
}

/// Ends a requested controlled shutdown with `outcome` (a finished one stays as it ended).
fn end_shutdown(inner: &NodeInner, outcome: ControlledShutdown) {
    inner.shutdown.send_if_modified(|s| {
        let ends = *s == ControlledShutdown::Requested;
        if ends {
            *s = outcome;
        }
        ends
    });
}
