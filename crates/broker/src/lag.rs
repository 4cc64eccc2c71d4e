//! Consumer-group lag, members and rebalances, and open transactions, computed on an interval
//! (`weir.metrics.lag.interval.ms`) from memory rather than per scrape: a scrape only reads
//! the gauges this task set.
//!
//! Lag in records is the high watermark minus the committed offset, summed over a topic's
//! partitions; lag in seconds is the age of the oldest unconsumed record, taken from the
//! base timestamp of the batch holding the committed offset (0 when caught up), the largest
//! over the topic's partitions. Each pass also feeds the lag history
//! ([`crate::lag_history`]) with the group's total.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::sync::broadcast;
use weir_metrics::OTHER;

use crate::partition::{Isolation, ReadSpec};
use crate::state::State;

/// Runs [`update`] every `weir.metrics.lag.interval.ms` on the blocking pool until stopped.
pub(crate) async fn run(state: Arc<State>, mut stop: broadcast::Receiver<()>) {
    let mut tick = tokio::time::interval(state.metrics.lag_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        let s = state.clone();
        if let Err(e) =
            tokio::task::spawn_blocking(move || update(&s, crate::server::now_ms())).await
        {
            tracing::error!(error = %e, "lag task panicked");
        }
    }
}

/// One pass: every group's lag per topic, its members and rebalances; series of groups and
/// topics that are gone are removed.
pub(crate) fn update(state: &State, now_ms: i64) {
    let m = &state.metrics;
    let mut groups = HashSet::new();
    let mut pairs = HashSet::new();
    let mut partition_keys = HashSet::new();
    let mut folded: BTreeMap<String, (i64, f64)> = BTreeMap::new();
    let mut folded_members = 0usize;
    for g in state.groups.stats() {
        m.members.with(&[&g.group_id]).set(g.members as f64);
        m.rebalances.with(&[&g.group_id]).raise_to(g.rebalances);
        let mut per_topic: BTreeMap<String, (i64, f64)> = BTreeMap::new();
        for (tp, committed) in &g.offsets {
            let Some(p) = state
                .topic(&tp.topic)
                .and_then(|t| t.partition(tp.partition))
            else {
                continue;
            };
            let lag = (p.high_watermark() - committed).max(0);
            let seconds = if lag > 0 {
                oldest_unconsumed_ms(&p, *committed)
                    .map_or(0.0, |ts| (now_ms - ts).max(0) as f64 / 1000.0)
            } else {
                0.0
            };
            // Groups beyond the cap get no per-partition series (a partition of "_other"
            // would mix groups).
            if let Some(f) = m.partition_lag.as_ref().filter(|f| f.admits(&g.group_id)) {
                let partition = tp.partition.to_string();
                f.with(&[&g.group_id, &tp.topic, &partition])
                    .set(lag as f64);
                partition_keys.insert((g.group_id.clone(), tp.topic.clone(), partition));
            }
            let e = per_topic.entry(tp.topic.clone()).or_insert((0, 0.0));
            e.0 += lag;
            e.1 = e.1.max(seconds);
        }
        let total = per_topic.values().map(|(lag, _)| *lag).sum::<i64>();
        let oldest = per_topic.values().map(|(_, s)| *s).fold(0.0, f64::max);
        state.lag().record(&g.group_id, now_ms, total, oldest);
        if !m.lag_records.admits(&g.group_id) {
            // Beyond weir.metrics.max.groups: summed into group="_other" below (`with` counts
            // the refusal), rather than each folded group overwriting the last one's value.
            m.members.with(&[&g.group_id]);
            folded_members += g.members;
            for (topic, (lag, seconds)) in per_topic {
                m.lag_records.with(&[&g.group_id, &topic]);
                let e = folded.entry(topic).or_insert((0, 0.0));
                e.0 += lag;
                e.1 = f64::max(e.1, seconds);
            }
            groups.insert(OTHER.to_string());
            continue;
        }
        for (topic, (lag, seconds)) in per_topic {
            m.lag_records.with(&[&g.group_id, &topic]).set(lag as f64);
            m.lag_seconds.with(&[&g.group_id, &topic]).set(seconds);
            pairs.insert((g.group_id.clone(), topic));
        }
        groups.insert(g.group_id);
    }
    if groups.contains(OTHER) {
        m.members.with(&[OTHER]).set(folded_members as f64);
    }
    for (topic, (lag, seconds)) in folded {
        m.lag_records.with(&[OTHER, &topic]).set(lag as f64);
        m.lag_seconds.with(&[OTHER, &topic]).set(seconds);
        pairs.insert((OTHER.to_string(), topic));
    }
    let listed = |labels: &[String]| match labels {
        [g, t] => pairs.contains(&(g.clone(), t.clone())),
        _ => false,
    };
    m.lag_records.retain(listed);
    m.lag_seconds.retain(listed);
    if let Some(f) = &m.partition_lag {
        f.retain(|labels| match labels {
            [g, t, p] => partition_keys.contains(&(g.clone(), t.clone(), p.clone())),
            _ => false,
        });
    }
    let known = |labels: &[String]| labels.first().is_some_and(|g| groups.contains(g));
    m.members.retain(known);
    m.rebalances.retain(known);
    state.lag().retain(&groups);
    use weir_coordinator::txn::TxnState;
    match state.txns.list(
        &[
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
        ],
        &[],
        None,
    ) {
        Ok(open) => m.open_transactions.set(open.len() as f64),
        Err(e) => tracing::debug!(error = %e, "listing transactions for metrics failed"),
    }
}

/// The timestamp of the first batch at or after `offset` (the oldest record a consumer
/// committed at `offset` has not read): one read of one batch, usually from the page cache.
fn oldest_unconsumed_ms(p: &crate::partition::Partition, offset: i64) -> Option<i64> {
    let spec = ReadSpec {
        offset: offset.max(p.log_start_offset()),
        max_bytes: 1,
        min_one_batch: true,
        isolation: Isolation::ReadUncommitted,
        leader_epoch: None,
    };
    let read = p.read(&spec).ok()?;
    let h = weir_storage::BatchHeader::parse(&read.records).ok()?;
    Some(h.base_timestamp)
}

#[cfg(test)]
mod tests {
    use weir_coordinator::{CommitRequest, CommittedOffset, TopicPartition};

    use super::*;
    use crate::partition::Acks;

    async fn append(state: &State, partition: i32, base_timestamp: i64, n: usize) {
        let p = state
            .topic("t")
            .and_then(|t| t.partition(partition))
            .expect("partition");
        let mut batch = weir_storage::testkit::BatchBuilder::new(base_timestamp)
            .records(n, 8)
            .build();
        let a = p
            .append(
                &mut batch,
                Acks::All,
                crate::Durability::AcksAll,
                base_timestamp,
            )
            .expect("append");
        if let Some(d) = a.wait.fsync {
            d.wait().await.expect("fsync");
        }
    }

    async fn commit(state: &State, partition: i32, offset: i64) {
        let codes = state
            .groups
            .commit(CommitRequest {
                group_id: "g".into(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                offsets: vec![(
                    TopicPartition {
                        topic: "t".into(),
                        partition,
                    },
                    CommittedOffset {
                        offset,
                        leader_epoch: None,
                        metadata: None,
                        commit_timestamp_ms: 0,
                    },
                )],
            })
            .await;
        assert!(codes
            .iter()
            .all(|(_, c)| *c == weir_coordinator::ErrorCode::NONE));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lag_in_records_and_seconds_per_group_and_topic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = crate::testkit::state(dir.path(), &[]);
        state
            .create_topic("t", 2, 1, Default::default())
            .await
            .expect("topic");
        // Partition 0: offsets 0-4 at t=1 s, 5-9 at t=5 s; partition 1: 0-2 at t=2 s.
        append(&state, 0, 1_000, 5).await;
        append(&state, 0, 5_000, 5).await;
        append(&state, 1, 2_000, 3).await;
        // Partition 0 committed inside its second batch; partition 1 caught up.
        commit(&state, 0, 7).await;
        commit(&state, 1, 3).await;
        update(&state, 10_000);
        let text = state.metrics.registry.render();
        assert!(
            text.contains("weir_group_lag_records{group=\"g\",topic=\"t\"} 3\n"),
            "{text}"
        );
        // The oldest unconsumed record is in the batch of t=5 s.
        assert!(
            text.contains("weir_group_lag_seconds{group=\"g\",topic=\"t\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("weir_group_members{group=\"g\"} 0\n"),
            "{text}"
        );
        let history = state.lag().history("g");
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0].lag_records, 3);
        assert_eq!(history[0].lag_seconds, 5.0);
        assert_eq!(history[0].timestamp_ms, 0);

        commit(&state, 0, 10).await;
        update(&state, 10_000);
        let text = state.metrics.registry.render();
        assert!(
            text.contains("weir_group_lag_records{group=\"g\",topic=\"t\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("weir_group_lag_seconds{group=\"g\",topic=\"t\"} 0\n"),
            "{text}"
        );
        // Same minute: the point keeps the larger lag; the next minute gets its own point.
        assert_eq!(state.lag().history("g")[0].lag_records, 3);
        update(&state, 60_000);
        let history = state.lag().history("g");
        assert_eq!(history.len(), 2, "{history:?}");
        assert_eq!(
            (history[1].timestamp_ms, history[1].lag_records),
            (60_000, 0)
        );

        // A deleted group's series go at the next pass.
        let deleted = state.groups.delete_groups(vec!["g".into()]).await;
        assert_eq!(deleted[0].1, weir_coordinator::ErrorCode::NONE);
        update(&state, 70_000);
        assert!(!state.metrics.registry.render().contains("group=\"g\""));
        assert!(
            state.lag().history("g").is_empty(),
            "removed with the group"
        );

        // A deleted topic's lag series go at once, with its produce and fetch counters.
        commit(&state, 0, 2).await;
        update(&state, 10_000);
        assert!(state
            .metrics
            .registry
            .render()
            .contains("weir_group_lag_records{group=\"g\",topic=\"t\"} 8\n"));
        state.delete_topic("t").await.expect("delete");
        assert!(!state.metrics.registry.render().contains("topic=\"t\""));
    }
}
