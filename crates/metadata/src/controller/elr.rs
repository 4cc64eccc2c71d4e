//! Eligible leader replicas (KIP-966 part 1, §5.5 of the cluster design). Under the strict
//! min-ISR rule a leader moves the high watermark only while its committed ISR has at least
//! `min.insync.replicas` members, so replicas that leave the ISR while it is below that hold
//! every committed record: they are the ELR and may be elected cleanly when the ISR empties.
//!
//! Every partition change passes through [`complete`] on its way into the pending records
//! (`Pending::push`), so the ELR rules live here alone; elections read the result.

use crate::image::MetadataImage;
use crate::records::{
    BrokerId, ConfigResource, LeaderRecovery, PartitionChange, PartitionRegistration, ELR_FEATURE,
};

use super::partitions::MIN_ISR_KEY;

/// `min.insync.replicas` of a topic as its leaders apply it: the topic's own config, else
/// the brokers' static default (`default`), at least 1.
pub(crate) fn min_isr(image: &MetadataImage, topic: &str, default: i32) -> i32 {
    image
        .config(&ConfigResource::Topic(topic.to_string()), MIN_ISR_KEY)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(default)
        .max(1)
}

/// Whether a topic keeps ELRs: the feature is on and `min.insync.replicas` > 1. With 1 the
/// ISR keeps its last member instead (an ELR of one, as before the feature).
pub(crate) fn enabled(image: &MetadataImage, topic: &str, min_isr_default: i32) -> bool {
    image.feature_level(ELR_FEATURE) > 0 && min_isr(image, topic, min_isr_default) > 1
}

/// `change` with the ELR fields that follow from it (unless it sets `elr` itself, as the
/// clearing after a `min.insync.replicas` change does):
/// - ISR at least `min.insync.replicas`, ELR off, or an unclean leader (its log decides
///   what is committed from now on): ELR and last known ELR are empty;
/// - else the ELR is every replica outside the new ISR that was in the old ISR or ELR;
/// - an ISR that becomes empty leaves its last members as the last known ELR, kept until
///   the ISR has a member again.
pub(crate) fn complete(
    image: &MetadataImage,
    min_isr_default: i32,
    mut change: PartitionChange,
) -> PartitionChange {
    if change.elr.is_some() {
        return change;
    }
    let Some(topic) = image.topic(change.topic_id) else {
        return change;
    };
    let Some(old) = topic.partitions.get(&change.partition) else {
        return change;
    };
    let new = change.apply_to(old);
    let (elr, last) = if !enabled(image, &topic.name, min_isr_default)
        || new.leader_recovery == LeaderRecovery::Recovering
        || new.isr.len()
            >= usize::try_from(min_isr(image, &topic.name, min_isr_default)).unwrap_or(1)
    {
        (Vec::new(), Vec::new())
    } else {
        (eligible(old, &new), last_known(old, &new))
    };
    change.elr = (elr != old.elr).then_some(elr);
    change.last_known_elr = (last != old.last_known_elr).then_some(last);
    change
}

fn eligible(old: &PartitionRegistration, new: &PartitionRegistration) -> Vec<BrokerId> {
    new.replicas
        .iter()
        .copied()
        .filter(|b| !new.isr.contains(b) && (old.isr.contains(b) || old.elr.contains(b)))
        .collect()
}

fn last_known(old: &PartitionRegistration, new: &PartitionRegistration) -> Vec<BrokerId> {
    if !new.isr.is_empty() {
        return Vec::new();
    }
    let from = if old.isr.is_empty() {
        &old.last_known_elr
    } else {
        &old.isr
    };
    new.replicas
        .iter()
        .copied()
        .filter(|b| from.contains(b))
        .collect()
}
