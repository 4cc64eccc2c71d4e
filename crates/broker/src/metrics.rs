//! The broker's metrics (docs/design/operability.md §2): the families, the handles the hot
//! paths update, the gauges read from the state at scrape time, and the lag task.
//!
//! Hot paths never look a label up: an API's handles are resolved at start into a table
//! indexed by API key, a topic's when its [`crate::state::Topic`] is built. A produce costs
//! two relaxed `fetch_add`s on its topic's counters, plus the request's own.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use weir_metrics::{Counter, Family, Gauge, Histogram, Registry};
use weir_protocol::{ApiKey, ResponseError};

use crate::config::MetricsConfig;

/// A request API's handles.
pub struct ApiMetrics {
    /// The `api` label (`Produce`).
    name: String,
    requests: Arc<Counter>,
    duration: Arc<Histogram>,
    /// This API's error counters by Kafka error code + 1, resolved on first use, so that an
    /// error storm (NOT_LEADER_OR_FOLLOWER during a failover) looks no label up. Allocated
    /// only for APIs that count errors. Safe to cache: the error family never drops series.
    errors: OnceLock<Box<[OnceLock<Arc<Counter>>]>>,
}

/// Kafka's error codes run from -1 to about 130; larger ones take the family lookup.
const ERROR_SLOTS: usize = 160;

impl ApiMetrics {
    /// Counts a request whose answer took `started.elapsed()` (until its response was ready,
    /// including an fsync wait or a long poll).
    pub fn done(&self, started: Instant) {
        self.requests.inc();
        self.duration.observe(started.elapsed());
    }
}

/// A topic's produce and fetch counters, resolved once when the topic is opened or created.
pub struct TopicMetrics {
    produced_bytes: Arc<Counter>,
    produced_records: Arc<Counter>,
    fetched_bytes: Arc<Counter>,
    fetched_records: Arc<Counter>,
    /// The topic came beyond `weir.metrics.max.topics`: its handles are the shared `_other`
    /// series, so [`TopicMetrics::totals`] are not this topic's own.
    pub folded: bool,
}

/// A topic's counters as read at one moment (the console samples them for its rates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicTotals {
    pub produced_bytes: u64,
    pub produced_records: u64,
    pub fetched_bytes: u64,
    pub fetched_records: u64,
}

impl TopicMetrics {
    pub fn produced(&self, bytes: u64, records: u64) {
        self.produced_bytes.add(bytes);
        self.produced_records.add(records);
    }

    pub fn fetched(&self, bytes: u64, records: u64) {
        self.fetched_bytes.add(bytes);
        self.fetched_records.add(records);
    }

    /// The counters now; `None` when [`TopicMetrics::folded`].
    pub fn totals(&self) -> Option<TopicTotals> {
        (!self.folded).then(|| TopicTotals {
            produced_bytes: self.produced_bytes.get(),
            produced_records: self.produced_records.get(),
            fetched_bytes: self.fetched_bytes.get(),
            fetched_records: self.fetched_records.get(),
        })
    }
}

/// Every metric of one broker. The registry is per broker (not process-wide) so tests running
/// several brokers in one process see each one's own numbers; only the storage's fsync
/// histogram is process-wide.
pub struct BrokerMetrics {
    pub registry: Arc<Registry>,
    /// Indexed by API key.
    apis: Vec<Option<Arc<ApiMetrics>>>,
    errors: Arc<Family<Counter>>,
    denied: Arc<Family<Counter>>,
    connections: Arc<Gauge>,
    accepted: Arc<Counter>,
    /// `weir_connections_rejected_total{reason}`: closed at accept (`per_ip`).
    rejected: Arc<Family<Counter>>,
    produced_bytes: Arc<Family<Counter>>,
    produced_records: Arc<Family<Counter>>,
    fetched_bytes: Arc<Family<Counter>>,
    fetched_records: Arc<Family<Counter>>,
    pub(crate) lag_records: Arc<Family<Gauge>>,
    pub(crate) lag_seconds: Arc<Family<Gauge>>,
    pub(crate) members: Arc<Family<Gauge>>,
    pub(crate) rebalances: Arc<Family<Counter>>,
    committed: Arc<Counter>,
    aborted: Arc<Counter>,
    pub(crate) open_transactions: Arc<Gauge>,
    pub(crate) lag_interval: Duration,
    /// `weir_partition_lag_records{group,topic,partition}`: only with
    /// `weir.metrics.per.partition=true`.
    pub(crate) partition_lag: Option<Arc<Family<Gauge>>>,
    /// ISR changes of partitions this broker leads, as committed in the cluster metadata.
    isr_shrinks: Arc<Counter>,
    isr_expands: Arc<Counter>,
}

impl BrokerMetrics {
    pub fn new(config: &MetricsConfig) -> BrokerMetrics {
        let r = Arc::new(Registry::new());
        let topics = Some(config.max_topics);
        let groups = Some(config.max_groups);
        let requests = r.counters(
            "weir_requests_total",
            "Requests handled, by Kafka API.",
            &["api"],
            None,
        );
        let errors = r.counters(
            "weir_request_errors_total",
            "Errors answered, by Kafka API and Kafka error name (Produce and Fetch: per partition).",
            &["api", "error"],
            None,
        );
        let denied = r.counters(
            "weir_authorization_denied_total",
            "Authorization checks that failed, by Kafka API and ACL resource type.",
            &["api", "resource_type"],
            None,
        );
        let duration = r.histograms(
            "weir_request_duration_seconds",
            "Time from a request's arrival to its response being ready, by Kafka API.",
            &["api"],
        );
        let mut apis: Vec<Option<Arc<ApiMetrics>>> = Vec::new();
        for range in weir_protocol::versions::SUPPORTED {
            let name = format!("{:?}", range.key);
            let Ok(i) = usize::try_from(range.key as i16) else {
                continue;
            };
            if apis.len() <= i {
                apis.resize(i + 1, None);
            }
            if let Some(slot) = apis.get_mut(i) {
                *slot = Some(Arc::new(ApiMetrics {
                    requests: requests.with(&[&name]),
                    duration: duration.with(&[&name]),
                    name,
                    errors: OnceLock::new(),
                }));
            }
        }
        let connections = r.gauge("weir_connections", "Open Kafka client connections.");
        let accepted = r.counter(
            "weir_connections_accepted_total",
            "Kafka client connections accepted.",
        );
        let rejected = r.counters(
            "weir_connections_rejected_total",
            "Kafka client connections closed at accept, by reason (per_ip: max.connections.per.ip).",
            &["reason"],
            None,
        );
        let produced_bytes = r.counters(
            "weir_topic_produced_bytes_total",
            "Record batch bytes appended by producers, by topic.",
            &["topic"],
            topics,
        );
        let produced_records = r.counters(
            "weir_topic_produced_records_total",
            "Records appended by producers, by topic.",
            &["topic"],
            topics,
        );
        let fetched_bytes = r.counters(
            "weir_topic_fetched_bytes_total",
            "Record batch bytes returned to Fetch requests (consumers and followers), by topic.",
            &["topic"],
            topics,
        );
        let fetched_records = r.counters(
            "weir_topic_fetched_records_total",
            "Records returned to Fetch requests, by topic.",
            &["topic"],
            topics,
        );
        r.static_histogram(
            "weir_fsync_duration_seconds",
            "Latency of the fsyncs that make appends durable.",
            &weir_storage::FSYNC_SECONDS,
        );
        let lag_records = r.gauges(
            "weir_group_lag_records",
            "Records between a group's committed offset and the high watermark, summed over a topic's partitions.",
            &["group", "topic"],
            groups,
        );
        let lag_seconds = r.gauges(
            "weir_group_lag_seconds",
            "Age of the oldest unconsumed record of a group on a topic (0 when caught up).",
            &["group", "topic"],
            groups,
        );
        let members = r.gauges(
            "weir_group_members",
            "Members of a consumer group.",
            &["group"],
            groups,
        );
        let rebalances = r.counters(
            "weir_group_rebalances_total",
            "Completed rebalances of a group (its generation or group epoch) since it was loaded.",
            &["group"],
            groups,
        );
        let outcomes = r.counters(
            "weir_transactions_total",
            "Transactions completed, by outcome (commit or abort).",
            &["outcome"],
            None,
        );
        let open_transactions = r.gauge(
            "weir_transactions_open",
            "Transactions open or being completed.",
        );
        let partition_lag = config.per_partition.then(|| {
            r.gauges(
                "weir_partition_lag_records",
                "Records between a group's committed offset and the high watermark of one partition.",
                &["group", "topic", "partition"],
                groups,
            )
        });
        let isr_shrinks = r.counter(
            "weir_isr_shrinks_total",
            "ISR shrinks of partitions this broker leads (cluster mode).",
        );
        let isr_expands = r.counter(
            "weir_isr_expands_total",
            "ISR expansions of partitions this broker leads (cluster mode).",
        );
        BrokerMetrics {
            partition_lag,
            isr_shrinks,
            isr_expands,
            apis,
            errors,
            connections,
            accepted,
            rejected,
            produced_bytes,
            produced_records,
            fetched_bytes,
            fetched_records,
            lag_records,
            lag_seconds,
            members,
            rebalances,
            committed: outcomes.with(&["commit"]),
            aborted: outcomes.with(&["abort"]),
            open_transactions,
            denied,
            lag_interval: Duration::from_millis(config.lag_interval_ms),
            registry: r,
        }
    }

    /// The handles of API `key`.
    pub fn api(&self, key: ApiKey) -> Option<&Arc<ApiMetrics>> {
        usize::try_from(key as i16)
            .ok()
            .and_then(|i| self.apis.get(i))
            .and_then(Option::as_ref)
    }

    /// Counts an error answered to an `api` request, under Kafka's error name.
    pub fn error(&self, api: ApiKey, error: ResponseError) {
        let cached = self.api(api).and_then(|a| {
            let i = usize::try_from(i32::from(error.code()) + 1).ok()?;
            let slots = a.errors.get_or_init(|| {
                std::iter::repeat_with(OnceLock::new)
                    .take(ERROR_SLOTS)
                    .collect()
            });
            let slot = slots.get(i)?;
            Some(slot.get_or_init(|| self.errors.with(&[&a.name, &kafka_error_name(error)])))
        });
        match cached {
            Some(counter) => counter.inc(),
            None => self
                .errors
                .with(&[&format!("{api:?}"), &kafka_error_name(error)])
                .inc(),
        }
    }

    /// Counts a failed authorization check of an `api` request on a resource of
    /// `resource_type` (Kafka's name: `TOPIC`, `GROUP`, `CLUSTER`, `TRANSACTIONAL_ID`).
    pub fn denied(&self, api: ApiKey, resource_type: &str) {
        self.denied
            .with(&[&format!("{api:?}"), resource_type])
            .inc();
    }

    /// A connection was closed at accept for `reason`.
    pub fn connection_rejected(&self, reason: &str) {
        self.rejected.with(&[reason]).inc();
    }

    /// A connection was accepted; the guard counts it open until dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.accepted.inc();
        self.connections.inc();
        ConnectionGuard(self.clone())
    }

    /// Resolves a topic's handles (once, when the topic is opened or created).
    pub fn topic(&self, name: &str) -> Arc<TopicMetrics> {
        let produced_bytes = self.produced_bytes.with(&[name]);
        Arc::new(TopicMetrics {
            folded: !self.produced_bytes.contains(&[name]),
            produced_bytes,
            produced_records: self.produced_records.with(&[name]),
            fetched_bytes: self.fetched_bytes.with(&[name]),
            fetched_records: self.fetched_records.with(&[name]),
        })
    }

    /// A topic was deleted: its series go (the lag task would drop its lag series at its next
    /// pass; they go now).
    pub fn topic_deleted(&self, name: &str) {
        for f in [
            &self.produced_bytes,
            &self.produced_records,
            &self.fetched_bytes,
            &self.fetched_records,
        ] {
            f.remove_first(name);
        }
        for f in [&self.lag_records, &self.lag_seconds]
            .into_iter()
            .chain(self.partition_lag.as_ref())
        {
            f.retain(|labels| labels.get(1).map(String::as_str) != Some(name));
        }
    }

    /// A partition this broker leads changed its ISR from `old` to `new` members.
    pub fn isr_changed(&self, old: usize, new: usize) {
        if new < old {
            self.isr_shrinks.inc();
        } else if new > old {
            self.isr_expands.inc();
        }
    }

    pub fn transaction_completed(&self, commit: bool) {
        if commit {
            self.committed.inc();
        } else {
            self.aborted.inc();
        }
    }
}

/// Counts a connection open while it lives.
pub struct ConnectionGuard(Arc<BrokerMetrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// Kafka's name of an error (`UNKNOWN_TOPIC_OR_PARTITION`), from the variant's name.
pub fn kafka_error_name(error: ResponseError) -> String {
    let camel = format!("{error:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Records in whole v2 batches `buf` (their header's record counts).
pub fn count_records(buf: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut rest = buf;
    while let Ok(h) = weir_storage::BatchHeader::parse(rest) {
        let Ok(size) = h.total_size() else { break };
        let Some(next) = rest.get(size..) else { break };
        n += u64::try_from(h.records_count).unwrap_or(0);
        rest = next;
    }
    n
}

/// The gauges read from the state at each scrape: partitions, log sizes, free space of the
/// log directory. Registered once the state exists; a dropped state reports nothing.
pub(crate) fn register_state_gauges(state: &Arc<crate::state::State>) {
    let r = &state.metrics.registry;
    let weak: Weak<crate::state::State> = Arc::downgrade(state);
    r.gauge_fn(
        "weir_partitions",
        "Partitions hosted by this broker.",
        &[],
        {
            let weak = weak.clone();
            move |sink| {
                if let Some(s) = weak.upgrade() {
                    let n: i64 = s
                        .topics()
                        .iter()
                        .map(|t| i64::from(t.partition_count()))
                        .sum();
                    sink.push(&[], n as f64);
                }
            }
        },
    );
    let max_topics = state.config.metrics.max_topics;
    r.gauge_fn(
        "weir_log_size_bytes",
        "Bytes of log segments, by topic (summed over its partitions).",
        &["topic"],
        {
            let weak = weak.clone();
            move |sink| {
                let Some(s) = weak.upgrade() else { return };
                let mut other = None::<u64>;
                for (i, t) in s.topics().iter().enumerate() {
                    let size: u64 = t.all_partitions().iter().map(|p| p.size_bytes()).sum();
                    if i < max_topics {
                        sink.push(&[&t.name], size as f64);
                    } else {
                        *other.get_or_insert(0) += size;
                    }
                }
                if let Some(size) = other {
                    sink.push(&[weir_metrics::OTHER], size as f64);
                }
            }
        },
    );
    r.gauge_fn(
        "weir_log_dir_total_bytes",
        "Size of the log directory's file system (for a free-space ratio).",
        &[],
        {
            let weak = weak.clone();
            move |sink| {
                let Some(s) = weak.upgrade() else { return };
                if let Ok((total, _)) = crate::meta::fs_space(&s.config.data_dir) {
                    sink.push(&[], total as f64);
                }
            }
        },
    );
    r.gauge_fn(
        "weir_log_dir_free_bytes",
        "Bytes available to the broker on the log directory's file system.",
        &[],
        move |sink| {
            let Some(s) = weak.upgrade() else { return };
            match crate::meta::fs_space(&s.config.data_dir) {
                Ok((_, available)) => sink.push(&[], available as f64),
                Err(e) => tracing::debug!(error = %e, "statvfs of the log dir failed"),
            }
        },
    );
    crate::metrics_state::register(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(
            kafka_error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            kafka_error_name(ResponseError::NotLeaderOrFollower),
            "NOT_LEADER_OR_FOLLOWER"
        );
        assert_eq!(
            kafka_error_name(ResponseError::KafkaStorageError),
            "KAFKA_STORAGE_ERROR"
        );
    }

    #[test]
    fn counts_records_of_whole_batches() {
        let a = weir_storage::testkit::BatchBuilder::new(0)
            .records(3, 8)
            .build();
        let b = weir_storage::testkit::BatchBuilder::new(3)
            .records(5, 8)
            .build();
        let mut buf = a.to_vec();
        buf.extend_from_slice(&b);
        assert_eq!(count_records(&buf), 8);
        assert_eq!(
            count_records(&buf[..buf.len() - 1]),
            3,
            "a partial batch is not counted"
        );
        assert_eq!(count_records(&[]), 0);
    }

    #[test]
    fn api_handles_exist_for_every_supported_api() {
        let m = BrokerMetrics::new(&MetricsConfig {
            max_topics: 10,
            max_groups: 10,
            lag_interval_ms: 1000,
            per_partition: false,
        });
        for r in weir_protocol::versions::SUPPORTED {
            assert!(m.api(r.key).is_some(), "{:?}", r.key);
        }
        m.api(ApiKey::Produce)
            .expect("produce")
            .done(Instant::now());
        m.error(ApiKey::Produce, ResponseError::UnknownTopicOrPartition);
        // The second one goes through the cached handle to the same series.
        m.error(ApiKey::Produce, ResponseError::UnknownTopicOrPartition);
        let text = m.registry.render();
        assert!(text.contains("weir_requests_total{api=\"Produce\"} 1\n"));
        assert!(text.contains(
            "weir_request_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"} 2\n"
        ));
        let t = m.topic("orders");
        t.produced(100, 2);
        assert_eq!(
            t.totals(),
            Some(TopicTotals {
                produced_bytes: 100,
                produced_records: 2,
                ..Default::default()
            })
        );
        assert!(m
            .registry
            .render()
            .contains("weir_topic_produced_records_total{topic=\"orders\"} 2\n"));
        m.topic_deleted("orders");
        assert!(!m.registry.render().contains("orders"));

        // Beyond the cap a topic's handles are `_other`'s: its totals are not its own.
        let within: Vec<_> = (0..10).map(|i| m.topic(&format!("t{i}"))).collect();
        assert!(within.iter().all(|t| !t.folded && t.totals().is_some()));
        let beyond = m.topic("t10");
        assert!(beyond.folded);
        assert_eq!(beyond.totals(), None);
    }
}
