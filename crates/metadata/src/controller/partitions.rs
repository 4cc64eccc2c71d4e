//! Leader elections and ISR changes: the rules of §5.3-5.5 of the cluster design.

use uuid::Uuid;

use super::requests::{AlterPartitionItem, AlterPartitionResult, ElectionType};
use super::{elr, Pending};
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::{
    BrokerId, ConfigResource, LeaderRecovery, MetadataRecord, PartitionChange,
    PartitionRegistration, NO_LEADER,
};

pub(crate) const UNCLEAN_KEY: &str = "unclean.leader.election.enable";
pub(crate) const MIN_ISR_KEY: &str = "min.insync.replicas";

/// `unclean.leader.election.enable` for a topic: its own config, else the cluster
/// default, else `fallback` (the controller's static config).
pub(crate) fn unclean_enabled(image: &MetadataImage, topic: &str, fallback: bool) -> bool {
    image
        .config(&ConfigResource::Topic(topic.to_string()), UNCLEAN_KEY)
        .or_else(|| image.config(&ConfigResource::ClusterDefault, UNCLEAN_KEY))
        .map_or(fallback, |v| v.eq_ignore_ascii_case("true"))
}

/// The change that makes a partition consistent with the brokers' current state: members
/// that are fenced, shutting down or gone leave the ISR, and a leader that is no longer
/// usable is replaced. `None` when nothing changes.
///
/// Without ELRs (`elr_on` false) the ISR never becomes empty: if no member remains usable
/// it is kept as it is (with one broker at a time going away that is the last member, as in
/// KRaft) and the partition goes leaderless until a member comes back, unless `unclean`
/// allows another replica. With ELRs the ISR empties (its members become ELRs, `Pending`
/// records that) and the first usable ELR member, or else last known ELR member, leads
/// with an ISR of itself.
pub(crate) fn reconcile(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    reg: &PartitionRegistration,
    unclean: bool,
    elr_on: bool,
) -> Option<PartitionChange> {
    let usable = |b: BrokerId| image.broker_usable(b);
    let mut isr: Vec<BrokerId> = reg.isr.iter().copied().filter(|b| usable(*b)).collect();
    if isr.is_empty() && !elr_on {
        isr = reg.isr.clone();
    }
    let mut leader = reg.leader;
    let mut recovery = reg.leader_recovery;
    if !(usable(leader) && isr.contains(&leader)) {
        leader = elect(image, reg, &isr, elr_on);
        if leader != NO_LEADER && !isr.contains(&leader) {
            // Elected from the ELR: it holds every committed record; the others rejoin
            // by catching up with it.
            isr = vec![leader];
        }
        if leader == NO_LEADER && unclean {
            if let Some(b) = reg.replicas.iter().copied().find(|b| usable(*b)) {
                // KIP-704: the unclean leader is the ISR alone until it has recovered.
                leader = b;
                isr = vec![b];
                recovery = LeaderRecovery::Recovering;
            }
        }
    }
    let change = PartitionChange {
        topic_id,
        partition,
        leader: (leader != reg.leader).then_some(leader),
        isr: (isr != reg.isr).then_some(isr),
        leader_recovery: (recovery != reg.leader_recovery).then_some(recovery),
        ..PartitionChange::default()
    };
    (!change.is_empty()).then_some(change)
}

/// The first replica, in preference order, that is usable and in `isr`; else (ELR on) in
/// the ELR, else in the last known ELR; else `NO_LEADER`.
fn elect(
    image: &MetadataImage,
    reg: &PartitionRegistration,
    isr: &[BrokerId],
    elr_on: bool,
) -> BrokerId {
    let usable = |b: &&BrokerId| image.broker_usable(**b);
    let first_in = |set: &[BrokerId]| {
        reg.replicas
            .iter()
            .filter(|b| set.contains(b))
            .find(usable)
            .copied()
    };
    let mut found = first_in(isr);
    if elr_on {
        found = found
            .or_else(|| first_in(&reg.elr))
            .or_else(|| first_in(&reg.last_known_elr));
    }
    found.unwrap_or(NO_LEADER)
}

/// Reconciles every partition that has `broker` among its replicas, after the pending
/// records changed that broker's state.
pub(crate) fn reconcile_broker(pending: &mut Pending, broker: BrokerId, unclean_default: bool) {
    let mut changes = Vec::new();
    for topic in pending.image.topics() {
        let unclean = unclean_enabled(&pending.image, &topic.name, unclean_default);
        let elr_on = elr::enabled(&pending.image, &topic.name, pending.min_isr_default);
        for (p, reg) in &topic.partitions {
            if reg.replicas.contains(&broker) || reg.isr.contains(&broker) {
                if let Some(c) = reconcile(&pending.image, topic.id, *p, reg, unclean, elr_on) {
                    changes.push(c);
                }
            }
        }
    }
    for c in changes {
        let (topic_id, partition) = (c.topic_id, c.partition);
        pending.push(MetadataRecord::PartitionChange(c));
        // A removed replica leaving the ISR may leave only the target in it.
        super::reassign::try_complete(pending, topic_id, partition);
    }
}

/// AlterPartition for one partition, from the leader `broker_id` (already checked to be
/// registered with the request's epoch).
pub(crate) fn alter_partition(
    pending: &mut Pending,
    broker_id: BrokerId,
    item: &AlterPartitionItem,
) -> Result<AlterPartitionResult, MetadataError> {
    let image = &pending.image;
    let topic = image
        .topic(item.topic_id)
        .ok_or(MetadataError::UnknownTopicId(item.topic_id))?;
    let reg = topic.partitions.get(&item.partition).ok_or_else(|| {
        MetadataError::UnknownTopicOrPartition(format!("{}-{}", topic.name, item.partition))
    })?;
    if reg.leader != broker_id {
        return Err(MetadataError::NotLeaderOrFollower(broker_id));
    }
    if item.leader_epoch != reg.leader_epoch {
        return Err(MetadataError::FencedLeaderEpoch {
            request: item.leader_epoch,
            current: reg.leader_epoch,
        });
    }
    if item.partition_epoch != reg.partition_epoch {
        return Err(MetadataError::InvalidUpdateVersion {
            request: item.partition_epoch,
            current: reg.partition_epoch,
        });
    }
    let isr: Vec<BrokerId> = item.new_isr.iter().map(|m| m.id).collect();
    validate_isr(image, reg, broker_id, item, &isr)?;
    let change = PartitionChange {
        topic_id: item.topic_id,
        partition: item.partition,
        isr: (isr != reg.isr).then(|| isr.clone()),
        leader_recovery: (item.leader_recovery != reg.leader_recovery)
            .then_some(item.leader_recovery),
        ..PartitionChange::default()
    };
    let changed = !change.is_empty();
    if changed {
        pending.push(MetadataRecord::PartitionChange(change));
        // A replica being added that just joined the ISR may complete a reassignment.
        super::reassign::try_complete(pending, item.topic_id, item.partition);
    }
    // The registration as decided; with nothing to commit the leader learns the current
    // state (its retry after a lost answer lands here).
    let new = pending
        .image
        .partition(item.topic_id, item.partition)
        .cloned()
        .ok_or(MetadataError::UnknownTopicId(item.topic_id))?;
    Ok(AlterPartitionResult {
        leader: new.leader,
        leader_epoch: new.leader_epoch,
        partition_epoch: new.partition_epoch,
        isr: new.isr,
        leader_recovery: new.leader_recovery,
    })
}

fn validate_isr(
    image: &MetadataImage,
    reg: &PartitionRegistration,
    leader: BrokerId,
    item: &AlterPartitionItem,
    isr: &[BrokerId],
) -> Result<(), MetadataError> {
    let invalid = |m: &str| Err(MetadataError::InvalidRequest(m.to_string()));
    if reg.leader_recovery == LeaderRecovery::Recovered
        && item.leader_recovery == LeaderRecovery::Recovering
    {
        return invalid("a recovered partition cannot go back to recovering");
    }
    if item.leader_recovery == LeaderRecovery::Recovering && isr.len() > 1 {
        return invalid("a recovering leader must be the only ISR member");
    }
    if !isr.contains(&leader) {
        return invalid("the ISR must contain the leader");
    }
    for (i, b) in isr.iter().enumerate() {
        if !reg.replicas.contains(b) {
            return invalid("the ISR may only contain replicas");
        }
        if isr.iter().take(i).any(|x| x == b) {
            return invalid("the ISR lists a broker twice");
        }
    }
    for m in &item.new_isr {
        let registered = image.broker(m.id);
        // KIP-903: a member whose epoch is not the registered one fetched as an earlier
        // incarnation, which may have lost records it had acknowledged.
        let stale = registered.is_none_or(|b| m.broker_epoch != -1 && b.epoch != m.broker_epoch);
        // KIP-841: only unfenced brokers that are not shutting down may join.
        let joining = !reg.isr.contains(&m.id);
        if stale || (joining && !image.broker_usable(m.id)) {
            return Err(MetadataError::IneligibleReplica(m.id));
        }
    }
    Ok(())
}

/// ElectLeaders for one partition.
pub(crate) fn elect_leader(
    pending: &mut Pending,
    topic_id: Uuid,
    partition: i32,
    election: ElectionType,
) -> Result<(), MetadataError> {
    let image = &pending.image;
    let topic = image
        .topic(topic_id)
        .ok_or(MetadataError::UnknownTopicId(topic_id))?;
    let reg = topic.partitions.get(&partition).ok_or_else(|| {
        MetadataError::UnknownTopicOrPartition(format!("{}-{partition}", topic.name))
    })?;
    let change = match election {
        ElectionType::Preferred => {
            let preferred = reg.preferred_leader().unwrap_or(NO_LEADER);
            if reg.leader == preferred {
                return Err(MetadataError::ElectionNotNeeded);
            }
            if !(image.broker_usable(preferred) && reg.isr.contains(&preferred)) {
                return Err(MetadataError::PreferredLeaderNotAvailable);
            }
            PartitionChange {
                topic_id,
                partition,
                leader: Some(preferred),
                ..PartitionChange::default()
            }
        }
        ElectionType::Unclean => {
            if image.broker_usable(reg.leader) {
                return Err(MetadataError::ElectionNotNeeded);
            }
            // Asked for explicitly, so allowed whatever the topic's config says (KIP-460).
            let elr_on = elr::enabled(image, &topic.name, pending.min_isr_default);
            match reconcile(image, topic_id, partition, reg, true, elr_on) {
                Some(c) if c.leader.is_some_and(|l| l != NO_LEADER) => c,
                _ => return Err(MetadataError::EligibleLeadersNotAvailable),
            }
        }
    };
    pending.push(MetadataRecord::PartitionChange(change));
    Ok(())
}
