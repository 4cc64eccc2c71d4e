//! The broker lifecycle (§4.7 of the cluster design): registration, heartbeats, session
//! expiry, controlled shutdown, unregistration, and producer-id blocks.

use super::partitions::reconcile_broker;
use super::requests::{BrokerHeartbeat, BrokerRegistrationRequest, HeartbeatReply};
use super::{ControllerLogic, Pending, PRODUCER_ID_BLOCK_SIZE};
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::{BrokerId, BrokerRegistration, MetadataRecord};

/// The broker is registered with exactly this epoch (KIP-903).
pub(crate) fn check_epoch(
    image: &MetadataImage,
    id: BrokerId,
    epoch: i64,
) -> Result<(), MetadataError> {
    let broker = image
        .broker(id)
        .ok_or(MetadataError::BrokerIdNotRegistered(id))?;
    if broker.epoch != epoch {
        return Err(MetadataError::StaleBrokerEpoch {
            id,
            request: epoch,
            current: broker.epoch,
        });
    }
    Ok(())
}

pub(crate) fn allocate_producer_ids(
    pending: &mut Pending,
    broker_id: BrokerId,
    broker_epoch: i64,
) -> Result<(i64, i32), MetadataError> {
    check_epoch(&pending.image, broker_id, broker_epoch)?;
    let start = pending.image.next_producer_id();
    pending.push(MetadataRecord::ProducerIds {
        broker_id,
        broker_epoch,
        next_producer_id: start.saturating_add(i64::from(PRODUCER_ID_BLOCK_SIZE)),
    });
    Ok((start, PRODUCER_ID_BLOCK_SIZE))
}

impl ControllerLogic {
    pub(crate) fn register(
        &mut self,
        pending: &mut Pending,
        req: &BrokerRegistrationRequest,
        now_ms: u64,
    ) -> Result<i64, MetadataError> {
        if req.id < 0 {
            return Err(MetadataError::InvalidRequest(format!(
                "broker id {} is negative",
                req.id
            )));
        }
        if let Some(existing) = pending.image.broker(req.id) {
            if existing.incarnation == req.incarnation {
                // A retry of a registration that was committed: same answer, no record.
                return Ok(existing.epoch);
            }
            // Live = this controller heard from the old incarnation within its session. A
            // session inherited from an earlier controller proves nothing: after a crash
            // of the whole cluster every registration in the image looks live, and
            // refusing their restarts for a session only delays every election.
            let live = self.sessions.get(&req.id).is_some_and(|d| *d > now_ms)
                && self.heard.contains_key(&req.id);
            if live && !existing.fenced {
                return Err(MetadataError::DuplicateBrokerRegistration(req.id));
            }
        }
        let epoch = pending.image.last_broker_epoch().saturating_add(1);
        // Registered fenced: unfenced only once caught up with the metadata log, and the
        // new incarnation leaves every ISR its predecessor was in.
        pending.push(MetadataRecord::RegisterBroker(BrokerRegistration {
            id: req.id,
            incarnation: req.incarnation,
            epoch,
            endpoints: req.endpoints.clone(),
            rack: req.rack.clone(),
            fenced: true,
            in_controlled_shutdown: false,
        }));
        reconcile_broker(pending, req.id, self.config.unclean_leader_election_enable);
        self.sessions.insert(
            req.id,
            now_ms.saturating_add(self.config.session_timeout_ms),
        );
        self.heard.insert(req.id, now_ms);
        Ok(epoch)
    }

    pub(crate) fn heartbeat(
        &mut self,
        pending: &mut Pending,
        hb: &BrokerHeartbeat,
        now_ms: u64,
    ) -> Result<HeartbeatReply, MetadataError> {
        check_epoch(&pending.image, hb.id, hb.epoch)?;
        self.sessions
            .insert(hb.id, now_ms.saturating_add(self.config.session_timeout_ms));
        self.heard.insert(hb.id, now_ms);
        let unclean = self.config.unclean_leader_election_enable;
        let Some(broker) = pending.image.broker(hb.id).cloned() else {
            return Err(MetadataError::BrokerIdNotRegistered(hb.id));
        };
        if hb.want_shutdown {
            if !broker.fenced && !broker.in_controlled_shutdown {
                pending.push(MetadataRecord::BrokerRegistrationChange {
                    id: hb.id,
                    epoch: hb.epoch,
                    fenced: None,
                    in_controlled_shutdown: Some(true),
                });
                reconcile_broker(pending, hb.id, unclean);
            }
        } else if hb.want_fence {
            if !broker.fenced {
                self.fence(pending, &broker, unclean);
            }
        } else if broker.fenced && hb.caught_up {
            pending.push(MetadataRecord::BrokerRegistrationChange {
                id: hb.id,
                epoch: hb.epoch,
                fenced: Some(false),
                in_controlled_shutdown: None,
            });
            // Partitions left leaderless with this broker as their last ISR member get
            // it back as leader.
            reconcile_broker(pending, hb.id, unclean);
        }
        let now = pending.image.broker(hb.id);
        let is_fenced = now.is_none_or(|b| b.fenced);
        let leads_nothing = pending
            .image
            .partitions()
            .all(|(_, _, r)| r.leader != hb.id);
        let should_shut_down = hb.want_shutdown && (is_fenced || leads_nothing);
        if should_shut_down && !is_fenced {
            // KRaft's SHUTDOWN_NOW: the broker is about to stop, so it is fenced now rather
            // than a session later (its restart may register at once, and Metadata stops
            // naming it). It leads nothing and is in no ISR it could leave.
            if let Some(broker) = now.cloned() {
                self.fence(pending, &broker, unclean);
            }
        }
        Ok(HeartbeatReply {
            is_caught_up: hb.caught_up,
            is_fenced: is_fenced || should_shut_down,
            should_shut_down,
        })
    }

    pub(crate) fn unregister(
        &mut self,
        pending: &mut Pending,
        id: BrokerId,
    ) -> Result<(), MetadataError> {
        let broker = pending
            .image
            .broker(id)
            .cloned()
            .ok_or(MetadataError::BrokerIdNotRegistered(id))?;
        // Kafka's controller refuses only an unknown id and takes a live broker's replicas
        // offline. Weir also refuses a live broker that still holds replicas: unregistering
        // it would take them offline while it serves them, and it would register again at
        // its next heartbeat. Drain it first, or stop it (fenced, its replicas are already
        // out of every ISR). Whether it is a voter is the quorum glue's to check.
        if !broker.fenced {
            let held = pending
                .image
                .partitions()
                .filter(|(_, _, r)| r.replicas.contains(&id))
                .count();
            if held > 0 {
                return Err(MetadataError::InvalidRequest(format!(
                    "broker {id} is live and holds {held} replicas: move them off it first \
                     (weir cluster reassign --drain {id}) or stop it"
                )));
            }
        }
        pending.push(MetadataRecord::UnregisterBroker {
            id,
            epoch: broker.epoch,
        });
        reconcile_broker(pending, id, self.config.unclean_leader_election_enable);
        self.sessions.remove(&id);
        self.heard.remove(&id);
        Ok(())
    }

    pub(crate) fn expire_sessions(&mut self, pending: &mut Pending, now_ms: u64) {
        let timeout = self.config.session_timeout_ms;
        // A fenced broker's lapsed session has nothing left to expire; keeping it would
        // leave `next_deadline` in the past and have the caller tick in a loop.
        self.sessions.retain(|id, deadline| {
            pending
                .image
                .broker(*id)
                .is_some_and(|b| !b.fenced || *deadline > now_ms)
        });
        // Brokers registered before this controller became active get a full session
        // from now: their heartbeats went to the previous controller.
        for (id, b) in pending.image.brokers() {
            if !b.fenced {
                self.sessions
                    .entry(*id)
                    .or_insert(now_ms.saturating_add(timeout));
            }
        }
        let expired: Vec<BrokerRegistration> = pending
            .image
            .brokers()
            .values()
            .filter(|b| !b.fenced && self.sessions.get(&b.id).is_some_and(|d| *d <= now_ms))
            .cloned()
            .collect();
        for broker in expired {
            self.sessions.remove(&broker.id);
            self.heard.remove(&broker.id);
            self.fence(pending, &broker, self.config.unclean_leader_election_enable);
        }
    }

    fn fence(&self, pending: &mut Pending, broker: &BrokerRegistration, unclean: bool) {
        pending.push(MetadataRecord::BrokerRegistrationChange {
            id: broker.id,
            epoch: broker.epoch,
            fenced: Some(true),
            in_controlled_shutdown: None,
        });
        reconcile_broker(pending, broker.id, unclean);
    }
}
