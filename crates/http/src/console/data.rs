//! What each console page shows, as serde structs: the HTML is rendered from these and the
//! `/api/...` twins serialize them, so a page and its JSON cannot disagree. Everything is
//! read from the broker's memory (the topic table, the coordinators), never through Kafka
//! requests to itself; only the rows of the page asked for are looked at in detail.
//!
//! Every builder takes the viewer's [`Sees`]: topics, groups and transactional ids it may not
//! DESCRIBE are left out before counting and paging, as Kafka's Metadata and ListGroups do,
//! and a detail page of one answers as if it did not exist.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use weir_broker::security::Resource;
use weir_broker::state::{State, Topic};
use weir_coordinator::{GroupState, GroupType};

use super::rates::{Rate, Rates};
use crate::health::Readiness;

/// Whether the viewer may see a resource (DESCRIBE), from `crate::auth::Viewer::sees`.
pub type Sees<'a> = &'a dyn Fn(Resource<'_>) -> bool;

/// A viewer that sees everything (no login configured; tests).
pub fn everything(_: Resource<'_>) -> bool {
    true
}

/// Rows on one page of a list.
pub const PER_PAGE: usize = 100;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub per_page: usize,
}

impl Page {
    /// The page `asked` (clamped) of `total` rows and the range of rows it holds.
    pub fn of(asked: usize, total: usize) -> (Page, std::ops::Range<usize>) {
        let pages = total.div_ceil(PER_PAGE).max(1);
        let page = asked.clamp(1, pages);
        let start = (page - 1) * PER_PAGE;
        let end = (start + PER_PAGE).min(total);
        (
            Page {
                page,
                pages,
                total,
                per_page: PER_PAGE,
            },
            start.min(end)..end,
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    /// The broker serving this page.
    pub this: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub cluster_id: String,
    pub cluster_mode: bool,
    pub brokers: Vec<BrokerInfo>,
    pub topics: usize,
    pub partitions: u64,
    pub groups: usize,
    pub open_transactions: usize,
    pub log_size_bytes: u64,
    pub disk_total_bytes: Option<u64>,
    pub disk_free_bytes: Option<u64>,
    pub readiness: Readiness,
    pub sample_interval_ms: u64,
    /// Broker-wide rates, oldest first (the last is the current rate).
    pub rates: Vec<Rate>,
}

pub fn overview(state: &State, rates: &Rates, readiness: Readiness, sees: Sees<'_>) -> Overview {
    let mut topics = state.topics();
    topics.retain(|t| sees(Resource::Topic(&t.name)));
    let mut partitions = 0u64;
    let mut log_size_bytes = 0u64;
    for t in &topics {
        partitions += u64::try_from(t.partition_count()).unwrap_or(0);
        log_size_bytes += t
            .all_partitions()
            .iter()
            .map(|p| p.size_bytes())
            .sum::<u64>();
    }
    let space = weir_broker::meta::fs_space(&state.config.data_dir).ok();
    let config = &state.config;
    let brokers = if state.image.image().brokers().is_empty() {
        vec![BrokerInfo {
            node_id: config.node_id,
            host: config.advertise.0.clone(),
            port: i32::from(config.advertise.1),
            this: true,
        }]
    } else {
        weir_broker::cluster::metadata::live_brokers(&state.image.image())
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                this: b.node_id.0 == config.node_id,
            })
            .collect()
    };
    Overview {
        cluster_id: state.cluster_id.clone(),
        cluster_mode: weir_broker::hw_checkpoint::cluster_mode(config),
        brokers,
        topics: topics.len(),
        partitions,
        groups: state.groups.list(&[]).map_or(0, |l| {
            l.iter()
                .filter(|g| sees(Resource::Group(&g.group_id)))
                .count()
        }),
        open_transactions: open_transactions(state, sees),
        log_size_bytes,
        disk_total_bytes: space.map(|s| s.0),
        disk_free_bytes: space.map(|s| s.1),
        readiness,
        sample_interval_ms: u64::try_from(rates.interval.as_millis()).unwrap_or(u64::MAX),
        rates: rates.broker(),
    }
}

fn open_transactions(state: &State, sees: Sees<'_>) -> usize {
    use weir_coordinator::txn::TxnState;
    let open = [
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
    ];
    state.txns.list(&open, &[], None).map_or(0, |l| {
        l.iter()
            .filter(|t| sees(Resource::TransactionalId(&t.transactional_id)))
            .count()
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicRow {
    pub name: String,
    pub partitions: i32,
    pub size_bytes: u64,
    pub retention_ms: String,
    pub retention_bytes: String,
    pub cleanup_policy: String,
    /// `None` for a topic beyond `weir.metrics.max.topics` (its counters are shared).
    pub produced_bytes_per_s: Option<f32>,
    pub produced_records_per_s: Option<f32>,
    /// Produced bytes per second, oldest first.
    pub sparkline: Vec<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicList {
    pub page: Page,
    /// The name filter (substring), empty for all.
    pub filter: String,
    pub topics: Vec<TopicRow>,
}

/// The effective value of a topic key: the topic's override, else the broker's.
fn topic_value(state: &State, t: &Topic, key: &str) -> String {
    if let Some(v) = t.configs().get(key) {
        return v.clone();
    }
    weir_broker::topic_config::lookup(key)
        .map(|k| state.broker_configs.topic_default(k).0)
        .unwrap_or_default()
}

pub fn topic_list(
    state: &State,
    rates: &Rates,
    page: usize,
    filter: &str,
    sees: Sees<'_>,
) -> TopicList {
    let topics: Vec<_> = state
        .topics()
        .into_iter()
        .filter(|t| filter.is_empty() || t.name.contains(filter))
        .filter(|t| sees(Resource::Topic(&t.name)))
        .collect();
    let (page, rows) = Page::of(page, topics.len());
    let topics = topics
        .get(rows)
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let ring = rates.topic(&t.name);
            let folded = t.metrics.folded;
            let last = ring.last().copied().unwrap_or_default();
            TopicRow {
                name: t.name.clone(),
                partitions: t.partition_count(),
                size_bytes: t.all_partitions().iter().map(|p| p.size_bytes()).sum(),
                retention_ms: topic_value(state, t, "retention.ms"),
                retention_bytes: topic_value(state, t, "retention.bytes"),
                cleanup_policy: topic_value(state, t, "cleanup.policy"),
                produced_bytes_per_s: (!folded).then_some(last.produced_bytes),
                produced_records_per_s: (!folded).then_some(last.produced_records),
                sparkline: ring.iter().map(|r| r.produced_bytes).collect(),
            }
        })
        .collect();
    TopicList {
        page,
        filter: filter.to_string(),
        topics,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionRow {
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub size_bytes: u64,
    /// A failed fsync poisoned the log: it refuses writes until restart.
    pub poisoned: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigRow {
    pub name: String,
    pub value: String,
    /// Kafka's source names: DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG...
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupLag {
    pub group_id: String,
    pub state: String,
    pub members: usize,
    /// Partitions of the topic with a committed offset.
    pub partitions: usize,
    /// Summed over them.
    pub lag: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProducerRow {
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    pub txn_start_offset: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicDetail {
    pub name: String,
    pub id: String,
    pub partition_count: i32,
    pub size_bytes: u64,
    /// Of the partition table (100 partitions a page).
    pub page: Page,
    pub partitions: Vec<PartitionRow>,
    pub configs: Vec<ConfigRow>,
    pub groups: Vec<GroupLag>,
    /// The producers the partitions of this page remember (`weir txn producers`).
    pub producers: Vec<ProducerRow>,
    pub rates_folded: bool,
    pub rates: Vec<Rate>,
}

fn source_name(s: weir_broker::dynamic_config::ConfigSource) -> &'static str {
    use weir_broker::dynamic_config::ConfigSource as S;
    match s {
        S::Topic => "DYNAMIC_TOPIC_CONFIG",
        S::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        S::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        S::StaticBroker => "STATIC_BROKER_CONFIG",
        S::Default => "DEFAULT_CONFIG",
    }
}

pub fn topic_detail(
    state: &State,
    rates: &Rates,
    name: &str,
    page: usize,
    sees: Sees<'_>,
) -> Option<TopicDetail> {
    if !sees(Resource::Topic(name)) {
        return None;
    }
    let t = state.topic(name)?;
    let all = t.all_partitions();
    let (page, rows) = Page::of(page, all.len());
    let shown = all.get(rows).unwrap_or_default();
    let partitions = shown
        .iter()
        .map(|p| {
            let w = p.watermarks();
            PartitionRow {
                partition: p.index(),
                log_start_offset: w.log_start_offset,
                log_end_offset: p.log_end_offset(),
                high_watermark: w.high_watermark,
                last_stable_offset: w.last_stable_offset,
                size_bytes: p.size_bytes(),
                poisoned: p.is_poisoned(),
            }
        })
        .collect();
    let producers = shown
        .iter()
        .flat_map(|p| {
            p.active_producers().into_iter().map(|a| ProducerRow {
                partition: p.index(),
                producer_id: a.producer_id,
                producer_epoch: a.producer_epoch,
                last_sequence: a.last_sequence,
                last_timestamp_ms: a.last_timestamp_ms,
                txn_start_offset: a.current_txn_start_offset,
            })
        })
        .collect();
    let overrides = t.configs();
    let configs = weir_broker::topic_config::TOPIC_KEYS
        .iter()
        .map(|k| match overrides.get(k.name) {
            Some(v) => ConfigRow {
                name: k.name.to_string(),
                value: v.clone(),
                source: "DYNAMIC_TOPIC_CONFIG",
            },
            None => {
                let (value, source, _) = state.broker_configs.topic_default(k);
                ConfigRow {
                    name: k.name.to_string(),
                    value,
                    source: source_name(source),
                }
            }
        })
        .collect();
    let listing = group_states(state);
    let mut groups: Vec<GroupLag> = Vec::new();
    for g in state.groups.stats() {
        if !sees(Resource::Group(&g.group_id)) {
            continue;
        }
        let mut lag = 0i64;
        let mut n = 0usize;
        for (tp, committed) in &g.offsets {
            if tp.topic != t.name {
                continue;
            }
            n += 1;
            if let Some(p) = t.partition(tp.partition) {
                lag += (p.high_watermark() - committed).max(0);
            }
        }
        if n > 0 {
            groups.push(GroupLag {
                state: listing
                    .get(&g.group_id)
                    .map_or("Dead", |(s, _)| s.as_str())
                    .to_string(),
                group_id: g.group_id,
                members: g.members,
                partitions: n,
                lag,
            });
        }
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Some(TopicDetail {
        name: t.name.clone(),
        id: t.id.to_string(),
        partition_count: t.partition_count(),
        size_bytes: all.iter().map(|p| p.size_bytes()).sum(),
        page,
        partitions,
        configs,
        groups,
        producers,
        rates_folded: t.metrics.folded,
        rates: rates.topic(&t.name),
    })
}

/// Every group's state and type, by id.
fn group_states(state: &State) -> HashMap<String, (GroupState, GroupType)> {
    state
        .groups
        .list(&[])
        .unwrap_or_default()
        .into_iter()
        .map(|l| (l.group_id, (l.state, l.group_type)))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub group_id: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
    pub protocol_type: String,
    pub state: String,
    pub members: usize,
    pub topics: usize,
    /// Summed over the committed partitions; `None` when the group committed nothing.
    pub lag: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupList {
    pub page: Page,
    pub filter: String,
    pub groups: Vec<GroupRow>,
}

/// Records between `committed` and the high watermark of `topic`/`partition`, with a cache of
/// topic lookups (a group list walks every committed offset of every group).
struct LagCalc<'a> {
    state: &'a State,
    topics: HashMap<String, Option<std::sync::Arc<Topic>>>,
}

impl LagCalc<'_> {
    fn high_watermark(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let state = self.state;
        self.topics
            .entry(topic.to_string())
            .or_insert_with(|| state.topic(topic))
            .as_ref()
            .and_then(|t| t.partition(partition))
            .map(|p| p.high_watermark())
    }
}

pub fn group_list(state: &State, page: usize, filter: &str, sees: Sees<'_>) -> GroupList {
    let mut listing = state.groups.list(&[]).unwrap_or_default();
    listing.retain(|l| filter.is_empty() || l.group_id.contains(filter));
    listing.retain(|l| sees(Resource::Group(&l.group_id)));
    listing.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let (page, rows) = Page::of(page, listing.len());
    let shown = listing.get(rows).unwrap_or_default();
    let wanted: std::collections::HashSet<&str> =
        shown.iter().map(|l| l.group_id.as_str()).collect();
    let stats: HashMap<String, weir_coordinator::GroupStats> = state
        .groups
        .stats()
        .into_iter()
        .filter(|s| wanted.contains(s.group_id.as_str()))
        .map(|s| (s.group_id.clone(), s))
        .collect();
    let mut calc = LagCalc {
        state,
        topics: HashMap::new(),
    };
    let groups = shown
        .iter()
        .map(|l| {
            let s = stats.get(&l.group_id);
            let offsets = s.map(|s| s.offsets.as_slice()).unwrap_or_default();
            let lag = (!offsets.is_empty()).then(|| {
                offsets
                    .iter()
                    .filter_map(|(tp, c)| {
                        calc.high_watermark(&tp.topic, tp.partition)
                            .map(|hw| (hw - c).max(0))
                    })
                    .sum()
            });
            let topics: std::collections::BTreeSet<&str> = offsets
                .iter()
                .map(|(tp, _)| tp.topic.as_str())
                .filter(|t| sees(Resource::Topic(t)))
                .collect();
            GroupRow {
                group_id: l.group_id.clone(),
                group_type: l.group_type.as_str(),
                protocol_type: l.protocol_type.clone(),
                state: l.state.to_string(),
                members: s.map_or(0, |s| s.members),
                topics: topics.len(),
                lag,
            }
        })
        .collect();
    GroupList {
        page,
        filter: filter.to_string(),
        groups,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Partitions by topic; `None` when the assignment is not the consumer protocol's (a
    /// classic group of another protocol type) or could not be read.
    pub assignment: Option<BTreeMap<String, Vec<i32>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OffsetRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    /// `None` when the topic or partition is gone.
    pub high_watermark: Option<i64>,
    pub lag: Option<i64>,
    pub member: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupDetail {
    pub group_id: String,
    pub group_type: &'static str,
    pub state: String,
    pub protocol_type: String,
    /// The assignor (classic: the protocol the members agreed on).
    pub protocol: String,
    pub members: Vec<MemberRow>,
    pub offsets: Vec<OffsetRow>,
    pub lag: i64,
    /// The broker's lag ring for this group (one point a minute, oldest first, at most 24 h).
    pub lag_history: Vec<weir_broker::lag_history::LagSample>,
}

pub fn group_detail(state: &State, group: &str, sees: Sees<'_>) -> Option<GroupDetail> {
    if !sees(Resource::Group(group)) {
        return None;
    }
    let group_type = state.groups.group_type(group)?;
    let (gstate, protocol_type, protocol, members): (GroupState, String, String, Vec<MemberRow>) =
        match group_type {
            GroupType::Consumer => {
                let d = state
                    .groups
                    .consumer_describe(&[group.to_string()])
                    .into_iter()
                    .next()?;
                let members = d
                    .members
                    .into_iter()
                    .map(|m| MemberRow {
                        member_id: m.member_id,
                        instance_id: m.instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        assignment: Some(m.assignment.into_iter().collect()),
                    })
                    .collect();
                (d.state, "consumer".to_string(), d.assignor_name, members)
            }
            GroupType::Classic => {
                let d = state.groups.describe(group);
                let consumer = d.protocol_type == "consumer";
                let members = d
                    .members
                    .into_iter()
                    .map(|m| MemberRow {
                        assignment: if consumer {
                            super::assignment::decode(&m.assignment)
                        } else {
                            None
                        },
                        member_id: m.member_id,
                        instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                    })
                    .collect();
                (d.state, d.protocol_type, d.protocol, members)
            }
        };
    // The topics the viewer may not see leave the assignments and the offsets.
    let members: Vec<MemberRow> = members
        .into_iter()
        .map(|mut m| {
            if let Some(a) = m.assignment.as_mut() {
                a.retain(|topic, _| sees(Resource::Topic(topic)));
            }
            m
        })
        .collect();
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    for m in &members {
        for (topic, ps) in m.assignment.iter().flatten() {
            for p in ps {
                owners.insert((topic.clone(), *p), m.member_id.clone());
            }
        }
    }
    let committed: BTreeMap<(String, i32), i64> = state
        .groups
        .stats()
        .into_iter()
        .find(|s| s.group_id == group)
        .map(|s| {
            s.offsets
                .into_iter()
                .filter(|(tp, _)| sees(Resource::Topic(&tp.topic)))
                .map(|(tp, o)| ((tp.topic, tp.partition), o))
                .collect()
        })
        .unwrap_or_default();
    let mut keys: std::collections::BTreeSet<(String, i32)> = committed.keys().cloned().collect();
    keys.extend(owners.keys().cloned());
    let mut calc = LagCalc {
        state,
        topics: HashMap::new(),
    };
    let offsets: Vec<OffsetRow> = keys
        .into_iter()
        .map(|(topic, partition)| {
            let c = committed.get(&(topic.clone(), partition)).copied();
            let hw = calc.high_watermark(&topic, partition);
            OffsetRow {
                member: owners.get(&(topic.clone(), partition)).cloned(),
                lag: c.zip(hw).map(|(c, hw)| (hw - c).max(0)),
                committed: c,
                high_watermark: hw,
                topic,
                partition,
            }
        })
        .collect();
    Some(GroupDetail {
        group_id: group.to_string(),
        group_type: group_type.as_str(),
        state: gstate.to_string(),
        protocol_type,
        protocol,
        lag: offsets.iter().filter_map(|o| o.lag).sum(),
        lag_history: state.lag().history(group),
        members,
        offsets,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TxnRow {
    pub transactional_id: String,
    pub state: &'static str,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the current (or last) transaction began, ms since the epoch.
    pub started_ms: Option<u64>,
    /// `topic/partition` of the open transaction.
    pub partitions: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transactions {
    pub page: Page,
    pub transactions: Vec<TxnRow>,
}

pub fn transactions(state: &State, page: usize, sees: Sees<'_>) -> Transactions {
    let mut ids: Vec<String> = state
        .txns
        .list(&[], &[], None)
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.transactional_id)
        .filter(|id| sees(Resource::TransactionalId(id)))
        .collect();
    ids.sort();
    let (page, rows) = Page::of(page, ids.len());
    let transactions = state
        .txns
        .describe(ids.get(rows).unwrap_or_default())
        .into_iter()
        .map(|d| TxnRow {
            transactional_id: d.transactional_id,
            state: d.state.as_str(),
            producer_id: d.producer_id,
            producer_epoch: d.producer_epoch,
            timeout_ms: d.timeout_ms,
            started_ms: d.txn_start_ms,
            partitions: d
                .partitions
                .iter()
                .filter(|tp| sees(Resource::Topic(&tp.topic)))
                .map(|tp| format!("{}/{}", tp.topic, tp.partition))
                .collect(),
            groups: d.groups,
        })
        .collect();
    Transactions { page, transactions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_clamp_and_cover_every_row() {
        let (p, r) = Page::of(0, 0);
        assert_eq!((p.page, p.pages, r), (1, 1, 0..0));
        let (p, r) = Page::of(3, 250);
        assert_eq!((p.page, p.pages, r), (3, 3, 200..250));
        let (p, r) = Page::of(9, 250);
        assert_eq!((p.page, r), (3, 200..250));
        let (_, r) = Page::of(1, 100);
        assert_eq!(r, 0..100);
    }
}
