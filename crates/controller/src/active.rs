//! The active controller (§4.5): while this node leads the quorum it runs
//! `ControllerLogic` over the committed image, one request or tick at a time, each
//! decision's records committed as one entry before its reply goes out (pipeline depth 1,
//! so the committed image is also the speculative one). Losing leadership drops the soft
//! state (session deadlines); the next active controller starts every session afresh. A
//! heartbeat answered without records first confirms the leadership with a quorum: the
//! answer grants the broker its lease (§4.9), which a deposed controller must not do.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use weir_metadata::{ControllerLogic, ControllerReply, ControllerRequest, MetadataRecord};

use crate::node::{NodeInner, Queued};
use crate::types::now_ms;
use crate::wire::{Committed, RemoteFailure};

/// How often sessions are checked for expiry.
const TICK: Duration = Duration::from_millis(100);

pub(crate) async fn run(inner: Arc<NodeInner>) {
    let mut metrics = inner.raft.metrics();
    loop {
        let term = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader && m.current_leader == Some(inner.id))
                .then_some(m.current_term)
        };
        if let Some(term) = term {
            tracing::info!(node = inner.id, term, "became the active controller");
            let started = tokio::time::Instant::now();
            lead(&inner, term).await;
            tracing::info!(node = inner.id, term, "no longer the active controller");
            // A restarted leader whose peers are still down fails `ensure_linearizable` at
            // once, and every failed attempt changes the metrics: without a pause this loop
            // would spin on a core until a peer answers.
            tokio::time::sleep_until(started + TICK).await;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

fn still_leading(inner: &NodeInner, term: u64) -> bool {
    let m = inner.raft.metrics();
    let m = m.borrow();
    m.state == ServerState::Leader && m.current_term == term && m.current_leader == Some(inner.id)
}

/// Commits `records` as one entry; the index it was applied at.
async fn commit(inner: &NodeInner, records: Vec<MetadataRecord>) -> Result<u64, RemoteFailure> {
    let resp = inner.raft.client_write(records).await?;
    Ok(resp.log_id.index)
}

/// Confirms with a quorum (one round of raft heartbeats) that this node still leads (and
/// that what it decides on is applied).
async fn confirm_leadership(inner: &NodeInner) -> Result<(), RemoteFailure> {
    inner
        .raft
        .ensure_linearizable()
        .await
        .map(|_| ())
        .map_err(RemoteFailure::from)
}

/// The index of the last entry applied here: a reply decided on this image is valid once
/// the caller applied that far.
fn applied_index(inner: &NodeInner) -> u64 {
    inner.sm.applied().borrow().0.saturating_sub(1)
}

async fn lead(inner: &NodeInner, term: u64) {
    // Entries of earlier terms are applied before deciding on the image.
    if let Err(e) = inner.raft.ensure_linearizable().await {
        tracing::info!(error = %e, "cannot act as the controller");
        return;
    }
    let mut logic = ControllerLogic::new(inner.config.controller.clone());
    let bootstrap = logic.bootstrap(&inner.sm.image(), &new_cluster_id());
    if !bootstrap.is_empty() {
        if let Err(e) = commit(inner, bootstrap).await {
            tracing::warn!(error = %e, "writing the bootstrap records failed");
            return;
        }
        tracing::info!(cluster_id = ?inner.sm.image().cluster_id(), "bootstrap records written");
    }
    // Learners whose registration is gone (a controller lost its leadership between
    // committing an UnregisterBroker and removing the learner) leave the membership.
    crate::learners::remove_unregistered(inner).await;
    let mut queue = inner.queue_rx.lock().await;
    let mut metrics = inner.raft.metrics();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick before any request: a broker whose process is known gone (it refused
    // the election's vote request) is fenced before the others' registrations are decided,
    // so they cannot leave it as the last ISR member of their partitions.
    tick.tick().await;
    if let Err(e) = expire(inner, &mut logic).await {
        tracing::info!(error = %e, "committing expired sessions failed");
        return;
    }
    inner.serving.store(true, Ordering::Release);
    while still_leading(inner, term) {
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            queued = queue.recv() => {
                let Some(Queued { request, reply }) = queued else { break };
                // Brokers beyond the voters: a registration first makes the broker a
                // learner; a voter is never unregistered.
                let early = match &request {
                    ControllerRequest::RegisterBroker(r) => {
                        crate::learners::admit(inner, r).await.err().map(Err)
                    }
                    ControllerRequest::UnregisterBroker { id } => {
                        crate::learners::refuse_voter(inner, *id).map(|e| {
                            Ok(crate::wire::Committed {
                                reply: ControllerReply::UnregisterBroker(Err(e)),
                                index: applied_index(inner),
                            })
                        })
                    }
                    _ => None,
                };
                if let Some(outcome) = early {
                    let failed = outcome.is_err();
                    let _ = reply.send(outcome);
                    if failed && !still_leading(inner, term) {
                        break;
                    }
                    continue;
                }
                let heartbeat = matches!(request, ControllerRequest::BrokerHeartbeat(_));
                let unregistered = match &request {
                    ControllerRequest::UnregisterBroker { id } => Some(*id),
                    _ => None,
                };
                let (records, answer) = logic.handle(&inner.sm.image(), request, now_ms());
                let outcome = if records.is_empty() && heartbeat {
                    // An answered heartbeat grants the broker its lease (§4.9): only a
                    // controller a quorum still follows may grant it, since a deposed one
                    // (paused, cut off) cannot fence, and the new one's sessions started
                    // without this broker's heartbeat.
                    confirm_leadership(inner).await.map(|()| applied_index(inner))
                } else if records.is_empty() {
                    Ok(applied_index(inner))
                } else {
                    commit(inner, records).await
                };
                if let (Some(id), Ok(_), ControllerReply::UnregisterBroker(Ok(()))) =
                    (unregistered, &outcome, &answer)
                {
                    crate::learners::remove(inner, id).await;
                }
                let failed = outcome.is_err();
                let _ = reply.send(outcome.map(|index| Committed { reply: answer, index }));
                if failed {
                    break;
                }
            }
            _ = tick.tick() => {
                if let Err(e) = expire(inner, &mut logic).await {
                    tracing::info!(error = %e, "committing expired sessions failed");
                    break;
                }
            }
        }
    }
    inner.serving.store(false, Ordering::Release);
    let leader_hint = inner.raft.metrics().borrow().current_leader;
    while let Ok(Queued { reply, .. }) = queue.try_recv() {
        let _ = reply.send(Err(RemoteFailure::NotController { leader_hint }));
    }
}

/// One timer tick: brokers whose listener refuses connections lose their session, then
/// expired sessions are fenced (and leaders balanced) in one entry.
async fn expire(inner: &NodeInner, logic: &mut ControllerLogic) -> Result<(), RemoteFailure> {
    let image = inner.sm.image();
    for (id, since) in inner.peers.refused() {
        if let Ok(id) = i32::try_from(id) {
            logic.unreachable(&image, id, since);
        }
    }
    let records = logic.tick(&image, now_ms());
    if records.is_empty() {
        return Ok(());
    }
    let fenced: Vec<i32> = records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::BrokerRegistrationChange {
                id,
                fenced: Some(true),
                ..
            } => Some(*id),
            _ => None,
        })
        .collect();
    if !fenced.is_empty() {
        tracing::info!(brokers = ?fenced, "fencing brokers (session expired or listener gone)");
    }
    commit(inner, records).await.map(|_| ())
}

/// Kafka's cluster ids: 22 characters of URL-safe base64 of a random UUID.
pub(crate) fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let six = if shift >= 0 {
                (bits >> shift) & 0x3f
            } else {
                (bits << -shift) & 0x3f
            };
            char::from(ALPHABET.get(six as usize).copied().unwrap_or(b'A'))
        })
        .collect()
}
