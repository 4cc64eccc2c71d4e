//! Automatic preferred-leader balancing (`auto.leader.rebalance.enable`, §5.7 of the
//! cluster design): after failovers, leadership piles up on the brokers that stayed up.
//! Every `leader.imbalance.check.interval.seconds` the controller counts, per broker, the
//! partitions it is the preferred leader of (first replica) but does not lead; once that
//! share passes `leader.imbalance.per.broker.percentage`, each such partition whose
//! preferred replica is usable and in the ISR gets it back as leader (Kafka's rule).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{ControllerLogic, Pending};
use crate::image::MetadataImage;
use crate::records::{BrokerId, MetadataRecord, PartitionChange};

impl ControllerLogic {
    pub(crate) fn balance_leaders(&mut self, pending: &mut Pending, now_ms: u64) {
        if !self.config.auto_leader_rebalance_enable {
            return;
        }
        let interval = self.config.leader_imbalance_check_interval_ms.max(1);
        // The first check comes an interval after this controller became active, so
        // brokers restarting together get time to rejoin the ISRs first.
        let due = *self
            .next_balance_ms
            .get_or_insert(now_ms.saturating_add(interval));
        if now_ms < due {
            return;
        }
        self.next_balance_ms = Some(now_ms.saturating_add(interval));
        let percentage = self.config.leader_imbalance_per_broker_percentage;
        for (topic_id, partition, preferred) in imbalanced(&pending.image, percentage) {
            pending.push(MetadataRecord::PartitionChange(PartitionChange {
                topic_id,
                partition,
                leader: Some(preferred),
                ..PartitionChange::default()
            }));
        }
    }
}

/// The partitions to give back to their preferred leader: those of every broker whose
/// share of preferred-but-not-led partitions is above `percentage`, where the preferred
/// replica can lead now (usable, in the ISR). Partitions being reassigned are left to
/// the reassignment.
pub(crate) fn imbalanced(image: &MetadataImage, percentage: u32) -> Vec<(Uuid, i32, BrokerId)> {
    let mut per_broker: BTreeMap<BrokerId, Share> = BTreeMap::new();
    for (topic_id, partition, reg) in image.partitions() {
        let Some(preferred) = reg.preferred_leader() else {
            continue;
        };
        let entry = per_broker.entry(preferred).or_default();
        entry.preferred_for += 1;
        if reg.leader == preferred {
            continue;
        }
        entry.not_led += 1;
        let movable = reg.adding.is_empty()
            && reg.removing.is_empty()
            && reg.isr.contains(&preferred)
            && image.broker_usable(preferred);
        if movable {
            entry.movable.push((topic_id, partition));
        }
    }
    let mut out = Vec::new();
    for (broker, share) in per_broker {
        // not_led / preferred_for > percentage / 100, in integers.
        let limit = share.preferred_for.saturating_mul(u64::from(percentage));
        if share.not_led.saturating_mul(100) > limit {
            out.extend(share.movable.into_iter().map(|(t, p)| (t, p, broker)));
        }
    }
    out
}

/// One broker's preferred leaderships.
#[derive(Default)]
struct Share {
    /// Partitions whose first replica it is.
    preferred_for: u64,
    /// Of those, the ones another broker (or no one) leads.
    not_led: u64,
    /// Of those, the ones it can lead now.
    movable: Vec<(Uuid, i32)>,
}
