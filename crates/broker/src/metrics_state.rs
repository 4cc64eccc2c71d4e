//! Gauges read from the state at scrape time beyond the broker-wide ones: the per-partition
//! series (`weir.metrics.per.partition=true`) and, in cluster mode, under-replicated and
//! offline partitions from the metadata image this broker last published.

use std::sync::{Arc, Weak};

use weir_metadata::{MetadataImage, NO_LEADER};

use crate::state::State;

/// Registers the optional gauges `state`'s configuration asks for.
pub(crate) fn register(state: &Arc<State>) {
    if state.config.metrics.per_partition {
        register_per_partition(state);
    }
    if state.cluster {
        register_cluster(state);
    }
}

/// One gauge per partition hosted here, for the first `weir.metrics.max.topics` topics by
/// name (the topics beyond are left out rather than summed: a partition of `_other` means
/// nothing).
fn register_per_partition(state: &Arc<State>) {
    type Read = fn(&crate::partition::Partition) -> f64;
    let series: [(&'static str, &'static str, Read); 4] = [
        (
            "weir_partition_log_start_offset",
            "First offset of a partition's log.",
            |p| p.log_start_offset() as f64,
        ),
        (
            "weir_partition_high_watermark",
            "High watermark of a partition (the offset consumers read up to).",
            |p| p.high_watermark() as f64,
        ),
        (
            "weir_partition_log_end_offset",
            "Offset the next record appended to a partition gets.",
            |p| p.log_end_offset() as f64,
        ),
        (
            "weir_partition_size_bytes",
            "Bytes of a partition's log segments.",
            |p| p.size_bytes() as f64,
        ),
    ];
    let max_topics = state.config.metrics.max_topics;
    for (name, help, read) in series {
        let weak: Weak<State> = Arc::downgrade(state);
        state
            .metrics
            .registry
            .gauge_fn(name, help, &["topic", "partition"], move |sink| {
                let Some(s) = weak.upgrade() else { return };
                for t in s.topics().iter().take(max_topics) {
                    for p in t.all_partitions() {
                        sink.push(&[&t.name, &p.index().to_string()], read(&p));
                    }
                }
            });
    }
}

fn register_cluster(state: &Arc<State>) {
    let weak: Weak<State> = Arc::downgrade(state);
    state.metrics.registry.gauge_fn(
        "weir_under_replicated_partitions",
        "Partitions this broker leads whose ISR is smaller than their replica set.",
        &[],
        move |sink| {
            if let Some(s) = weak.upgrade() {
                let (under, _) = replication_health(&s.image.image(), s.config.node_id);
                sink.push(&[], under as f64);
            }
        },
    );
    let weak: Weak<State> = Arc::downgrade(state);
    state.metrics.registry.gauge_fn(
        "weir_offline_partitions",
        "Partitions of the cluster without a leader, as this broker's metadata image shows them \
         (every broker reports the cluster's count: aggregate with max, not sum).",
        &[],
        move |sink| {
            if let Some(s) = weak.upgrade() {
                let (_, offline) = replication_health(&s.image.image(), s.config.node_id);
                sink.push(&[], offline as f64);
            }
        },
    );
}

/// Under-replicated partitions led by `local` (Kafka's `UnderReplicatedPartitions`: ISR
/// smaller than the replica set) and the cluster's partitions without a leader (Kafka's
/// `OfflinePartitionsCount`).
pub(crate) fn replication_health(image: &MetadataImage, local: i32) -> (usize, usize) {
    let mut under = 0;
    let mut offline = 0;
    for (_, _, reg) in image.partitions() {
        if reg.leader == NO_LEADER {
            offline += 1;
        } else if reg.leader == local && reg.isr.len() < reg.replicas.len() {
            under += 1;
        }
    }
    (under, offline)
}

/// Counts the ISR changes `new` commits for the partitions `local` leads (before and after),
/// compared with `old`.
pub(crate) fn count_isr_changes(
    metrics: &crate::metrics::BrokerMetrics,
    old: &MetadataImage,
    new: &MetadataImage,
    changed: impl Iterator<Item = (uuid::Uuid, i32)>,
    local: i32,
) {
    for (id, p) in changed {
        let (Some(before), Some(after)) = (old.partition(id, p), new.partition(id, p)) else {
            continue;
        };
        if before.leader == local && after.leader == local {
            metrics.isr_changed(before.isr.len(), after.isr.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use weir_metadata::{MetadataRecord, PartitionRegistration};

    use super::*;
    use crate::config::MetricsConfig;

    fn partition(topic_id: Uuid, index: i32, leader: i32, isr: &[i32]) -> MetadataRecord {
        let mut registration = PartitionRegistration::new(vec![1, 2, 3]);
        registration.leader = leader;
        registration.isr = isr.to_vec();
        MetadataRecord::Partition {
            topic_id,
            partition: index,
            registration,
        }
    }

    fn image(parts: &[(i32, i32, &[i32])]) -> MetadataImage {
        let id = Uuid::from_u128(7);
        let mut records = vec![MetadataRecord::Topic {
            name: "t".into(),
            topic_id: id,
        }];
        records.extend(parts.iter().map(|(i, l, isr)| partition(id, *i, *l, isr)));
        let mut image = MetadataImage::new();
        image.apply_all(&records).expect("records apply");
        image
    }

    #[test]
    fn under_replicated_counts_led_partitions_and_offline_counts_leaderless_ones() {
        let img = image(&[
            (0, 1, &[1, 2, 3]), // led here, full ISR
            (1, 1, &[1, 3]),    // led here, one out: under-replicated
            (2, 2, &[2]),       // led elsewhere: not this broker's to report
            (3, -1, &[3]),      // no leader: offline
        ]);
        assert_eq!(replication_health(&img, 1), (1, 1));
        assert_eq!(replication_health(&img, 2), (1, 1));
        assert_eq!(replication_health(&img, 3), (0, 1));
    }

    #[test]
    fn isr_changes_of_led_partitions_are_counted() {
        let metrics = crate::metrics::BrokerMetrics::new(&MetricsConfig {
            max_topics: 10,
            max_groups: 10,
            lag_interval_ms: 1000,
            per_partition: false,
        });
        let id = Uuid::from_u128(7);
        let old = image(&[(0, 1, &[1, 2, 3]), (1, 1, &[1]), (2, 2, &[2, 3])]);
        let new = image(&[(0, 1, &[1, 3]), (1, 1, &[1, 2]), (2, 2, &[2])]);
        count_isr_changes(&metrics, &old, &new, (0..3).map(|p| (id, p)), 1);
        let text = metrics.registry.render();
        // Partition 0 shrank and 1 grew under this broker; 2 is another leader's.
        assert!(text.contains("weir_isr_shrinks_total 1\n"), "{text}");
        assert!(text.contains("weir_isr_expands_total 1\n"), "{text}");
    }
}
