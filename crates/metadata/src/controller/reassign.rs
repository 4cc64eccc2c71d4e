//! Partition reassignment the Kafka way (KIP-455, §5.7 of the cluster design). Starting a
//! move sets `adding` / `removing` and `replicas = target ++ (current - target)`, so the
//! target's first broker is the preferred leader and the added replicas start fetching;
//! the ISR is untouched. Once every target replica is in the ISR (the leader's
//! AlterPartition brings them in), the move completes in the same call: `replicas =
//! target`, the removed replicas leave the ISR, and a removed leader is replaced by the
//! first target replica that may lead. Cancelling returns to the original replicas.

use uuid::Uuid;

use super::requests::Reassignment;
use super::Pending;
use crate::error::MetadataError;
use crate::records::{BrokerId, MetadataRecord, PartitionChange, PartitionRegistration};

/// AlterPartitionReassignments for one partition.
pub(crate) fn alter(pending: &mut Pending, r: &Reassignment) -> Result<(), MetadataError> {
    let name = format!("{}-{}", r.topic, r.partition);
    let (topic_id, reg) = pending
        .image
        .topic_by_name(&r.topic)
        .and_then(|t| {
            t.partitions
                .get(&r.partition)
                .map(|reg| (t.id, reg.clone()))
        })
        .ok_or_else(|| MetadataError::UnknownTopicOrPartition(name.clone()))?;
    let original: Vec<BrokerId> = reg
        .replicas
        .iter()
        .copied()
        .filter(|b| !reg.adding.contains(b))
        .collect();
    let Some(target) = &r.replicas else {
        if reg.adding.is_empty() && reg.removing.is_empty() {
            return Err(MetadataError::NoReassignmentInProgress(name));
        }
        return revert(pending, topic_id, r.partition, &reg, &original);
    };
    validate(pending, target)?;
    // KIP-860: the replication factor is the original replica set's (a move in progress
    // counts without the replicas it adds).
    if !r.allow_replication_factor_change && target.len() != original.len() {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "{name}: the replication factor would change from {} to {}, and \
             allow_replication_factor_change is false",
            original.len(),
            target.len()
        )));
    }
    if *target == reg.replicas && reg.adding.is_empty() && reg.removing.is_empty() {
        return Ok(());
    }
    let adding: Vec<BrokerId> = target
        .iter()
        .copied()
        .filter(|b| !original.contains(b))
        .collect();
    let removing: Vec<BrokerId> = original
        .iter()
        .copied()
        .filter(|b| !target.contains(b))
        .collect();
    let mut replicas = target.clone();
    replicas.extend(removing.iter().copied());
    // A replica added by an earlier, overridden move and not in the new target leaves
    // the ISR now: it is not one of the replicas any more.
    let isr: Vec<BrokerId> = reg
        .isr
        .iter()
        .copied()
        .filter(|b| replicas.contains(b))
        .collect();
    if isr.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "{name}: no in-sync replica would remain"
        )));
    }
    let change = PartitionChange {
        topic_id,
        partition: r.partition,
        replicas: (replicas != reg.replicas).then_some(replicas),
        isr: (isr != reg.isr).then_some(isr),
        adding: (adding != reg.adding).then_some(adding),
        removing: (removing != reg.removing).then_some(removing),
        ..PartitionChange::default()
    };
    if !change.is_empty() {
        pending.push(MetadataRecord::PartitionChange(change));
    }
    try_complete(pending, topic_id, r.partition);
    Ok(())
}

/// Target replicas: at least one, no broker twice, every broker registered.
fn validate(pending: &Pending, target: &[BrokerId]) -> Result<(), MetadataError> {
    let invalid = |m: String| Err(MetadataError::InvalidReplicaAssignment(m));
    if target.is_empty() {
        return invalid("the target replicas are empty".into());
    }
    for (i, b) in target.iter().enumerate() {
        if target.iter().take(i).any(|x| x == b) {
            return invalid(format!("broker {b} is listed twice"));
        }
        if pending.image.broker(*b).is_none() {
            return invalid(format!("broker {b} is not registered"));
        }
    }
    Ok(())
}

/// Completes the move of a partition once every target replica is in the ISR; no-op
/// otherwise (and for a partition not being moved).
pub(crate) fn try_complete(pending: &mut Pending, topic_id: Uuid, partition: i32) {
    let Some(reg) = pending.image.partition(topic_id, partition).cloned() else {
        return;
    };
    if reg.adding.is_empty() && reg.removing.is_empty() {
        return;
    }
    let target: Vec<BrokerId> = reg
        .replicas
        .iter()
        .copied()
        .filter(|b| !reg.removing.contains(b))
        .collect();
    if !target.iter().all(|b| reg.isr.contains(b)) {
        return;
    }
    let isr: Vec<BrokerId> = reg
        .isr
        .iter()
        .copied()
        .filter(|b| target.contains(b))
        .collect();
    let leader = if target.contains(&reg.leader) {
        reg.leader
    } else {
        match target
            .iter()
            .copied()
            .find(|b| isr.contains(b) && pending.image.broker_usable(*b))
        {
            Some(b) => b,
            // No target replica may lead yet: keep the move open until one can.
            None => return,
        }
    };
    pending.push(MetadataRecord::PartitionChange(PartitionChange {
        topic_id,
        partition,
        leader: (leader != reg.leader).then_some(leader),
        isr: (isr != reg.isr).then_some(isr),
        replicas: (target != reg.replicas).then_some(target),
        adding: Some(Vec::new()),
        removing: Some(Vec::new()),
        ..PartitionChange::default()
    }));
}

/// Cancels a move: back to the original replicas; replicas it added leave the ISR, and a
/// leader among them is replaced by the first original replica that may lead.
fn revert(
    pending: &mut Pending,
    topic_id: Uuid,
    partition: i32,
    reg: &PartitionRegistration,
    original: &[BrokerId],
) -> Result<(), MetadataError> {
    let isr: Vec<BrokerId> = reg
        .isr
        .iter()
        .copied()
        .filter(|b| original.contains(b))
        .collect();
    let mut leader = reg.leader;
    if !original.contains(&leader) {
        leader = original
            .iter()
            .copied()
            .find(|b| isr.contains(b) && pending.image.broker_usable(*b))
            .unwrap_or(crate::records::NO_LEADER);
    }
    if isr.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "cannot cancel: no original replica of partition {partition} is in sync"
        )));
    }
    pending.push(MetadataRecord::PartitionChange(PartitionChange {
        topic_id,
        partition,
        leader: (leader != reg.leader).then_some(leader),
        isr: (isr != reg.isr).then_some(isr),
        replicas: (original != reg.replicas.as_slice()).then(|| original.to_vec()),
        adding: Some(Vec::new()),
        removing: Some(Vec::new()),
        ..PartitionChange::default()
    }));
    Ok(())
}
