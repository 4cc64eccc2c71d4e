//! Brokers beyond the voters (design §4.5): openraft *learners*, KRaft's observers. They
//! receive the metadata log and never vote. The active controller adds a broker to the
//! membership as a learner (`add_learner`, non-blocking: the registration's own commit
//! waits for nothing the learner does) before it decides the broker's registration, and
//! removes it (`change_membership(RemoveNodes)`) once an UnregisterBroker committed. A
//! learner is in the membership config, so whichever voter leads next keeps replicating
//! to it. Voters are fixed by `controller.quorum.voters` and never unregistered.

use std::collections::{BTreeMap, BTreeSet};

use openraft::ChangeMembers;
use weir_metadata::{BrokerRegistrationRequest, MetadataError};

use crate::node::{internal_address, NodeInner};
use crate::types::{NodeId, NodeInfo};
use crate::wire::RemoteFailure;

fn is_voter(inner: &NodeInner, id: NodeId) -> bool {
    let m = inner.raft.metrics();
    let m = m.borrow();
    let voter = m
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id);
    voter || inner.config.voters.contains_key(&id)
}

/// Before a registration is decided: a broker that is not a voter becomes (or stays) a
/// learner with the internal listener it registers. A learner that moved (a restart on
/// another address) gets its entry replaced: it does not vote, so the replacement cannot
/// split a vote.
pub(crate) async fn admit(
    inner: &NodeInner,
    req: &BrokerRegistrationRequest,
) -> Result<(), RemoteFailure> {
    let Ok(id) = NodeId::try_from(req.id) else {
        return Ok(()); // The logic refuses a negative id.
    };
    if is_voter(inner, id) {
        return Ok(());
    }
    let Some(internal) = internal_address(&req.endpoints) else {
        return Ok(()); // Without an internal listener it cannot follow; nothing to add.
    };
    let current = {
        let m = inner.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.internal.clone())
    };
    let node = NodeInfo {
        internal: internal.clone(),
    };
    let changed = match current {
        Some(known) if known == internal => return Ok(()),
        Some(_) => {
            inner
                .raft
                .change_membership(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])), true)
                .await
        }
        None => inner.raft.add_learner(id, node, false).await,
    };
    changed.map_err(|e| {
        RemoteFailure::from(e).context(format_args!("adding broker {id} as a learner"))
    })?;
    inner.peers.learn(id, &internal);
    tracing::info!(broker = id, %internal, "broker beyond the voters added as a learner of the metadata quorum");
    Ok(())
}

/// UnregisterBroker of a voter: refused (the quorum's voters are fixed by
/// `controller.quorum.voters`; Kafka's KRaft would need KIP-853's RemoveRaftVoter).
pub(crate) fn refuse_voter(inner: &NodeInner, id: i32) -> Option<MetadataError> {
    let nid = NodeId::try_from(id).ok()?;
    is_voter(inner, nid).then(|| {
        MetadataError::InvalidRequest(format!(
            "broker {id} is a voter of the metadata quorum (controller.quorum.voters); \
             only a broker beyond the voters can be unregistered"
        ))
    })
}

/// After an UnregisterBroker committed: the learner leaves the membership, so no leader
/// replicates to it any more.
pub(crate) async fn remove(inner: &NodeInner, id: i32) {
    let Ok(id) = NodeId::try_from(id) else { return };
    remove_learners(inner, BTreeSet::from([id])).await;
}

/// Learners without a registration in the image leave the membership (run by a new
/// active controller: its predecessor may have stopped between the two steps).
pub(crate) async fn remove_unregistered(inner: &NodeInner) {
    let image = inner.sm.image();
    let learners: BTreeSet<NodeId> = {
        let m = inner.raft.metrics();
        let m = m.borrow();
        m.membership_config.membership().learner_ids().collect()
    };
    let gone: BTreeSet<NodeId> = learners
        .into_iter()
        .filter(|id| {
            i32::try_from(*id)
                .ok()
                .is_none_or(|b| image.broker(b).is_none())
        })
        .collect();
    if !gone.is_empty() {
        remove_learners(inner, gone).await;
    }
}

async fn remove_learners(inner: &NodeInner, ids: BTreeSet<NodeId>) {
    let present: BTreeSet<NodeId> = {
        let m = inner.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .learner_ids()
            .filter(|l| ids.contains(l))
            .collect()
    };
    if present.is_empty() {
        return;
    }
    match inner
        .raft
        .change_membership(ChangeMembers::RemoveNodes(present.clone()), false)
        .await
    {
        Ok(_) => tracing::info!(learners = ?present, "learners removed from the metadata quorum"),
        Err(e) => tracing::warn!(learners = ?present, error = %e, "removing learners failed"),
    }
}
