//! Nexmark on Weir's streaming SQL: the event generator, the three sources and the standard
//! queries as RisingWave's public suite writes them, for the correctness tests
//! (`tests/it/nexmark.rs`) and `weir bench nexmark`.
//!
//! Data flow: [`generator::Generator`] makes event `n` (a person, an auction or a bid, 1 : 3 :
//! 46) → [`load`] encodes it as JSON and appends it, in batches, durably, to the topic of its
//! kind (`person`, `auction`, `bid`) through the broker's typed partition API in-process →
//! [`SOURCES`] declares those topics as JSON sources with `date_time` watermarks → each
//! [`QUERIES`] text (`bench/nexmark/qN.sql`, a `CREATE MATERIALIZED VIEW` around the query
//! text, unchanged) runs as a pipeline; [`select_of`] takes the query back out of it, for the
//! batch oracle.

pub mod generator;

use std::sync::Arc;

use weir_broker::partition_access::{PartitionAccess, PartitionHandle};
use weir_broker::state::State;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;

use crate::append::{append_durably, AppendError, NewRecord};
use crate::engine::Session;
use crate::parser::WeirStatement;
use crate::SqlError;
use generator::{Event, Generator, GeneratorConfig};

/// `CREATE SOURCE person`, `auction` and `bid`, with `date_time` watermarks 4 s behind.
pub const SOURCES: &str = include_str!("../../../../bench/nexmark/sources.sql");

/// The queries by name, each a `CREATE MATERIALIZED VIEW nexmark_<name> AS <query>;`.
pub const QUERIES: &[(&str, &str)] = &[
    ("q0", include_str!("../../../../bench/nexmark/q0.sql")),
    ("q1", include_str!("../../../../bench/nexmark/q1.sql")),
    ("q2", include_str!("../../../../bench/nexmark/q2.sql")),
    ("q3", include_str!("../../../../bench/nexmark/q3.sql")),
    ("q4", include_str!("../../../../bench/nexmark/q4.sql")),
    ("q5", include_str!("../../../../bench/nexmark/q5.sql")),
    ("q7", include_str!("../../../../bench/nexmark/q7.sql")),
    ("q8", include_str!("../../../../bench/nexmark/q8.sql")),
    ("q9", include_str!("../../../../bench/nexmark/q9.sql")),
    ("q15", include_str!("../../../../bench/nexmark/q15.sql")),
    ("q16", include_str!("../../../../bench/nexmark/q16.sql")),
    ("q17", include_str!("../../../../bench/nexmark/q17.sql")),
    ("q18", include_str!("../../../../bench/nexmark/q18.sql")),
    ("q20", include_str!("../../../../bench/nexmark/q20.sql")),
    ("q21", include_str!("../../../../bench/nexmark/q21.sql")),
    ("q22", include_str!("../../../../bench/nexmark/q22.sql")),
];

/// The three topics, in the order of [`Counts`].
pub const TOPICS: [&str; 3] = ["person", "auction", "bid"];

/// Records per appended batch (a bid is about 250 bytes of JSON: well under 1 MiB).
const BATCH: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum NexmarkError {
    #[error("creating topic {topic}: {source}")]
    CreateTopic {
        topic: String,
        #[source]
        source: weir_broker::state::AdminError,
    },
    #[error("topic {topic} has no partition 0")]
    NoPartition { topic: String },
    #[error("appending to {topic}: {source}")]
    Append {
        topic: String,
        #[source]
        source: AppendError,
    },
    #[error("{0}: not a CREATE MATERIALIZED VIEW ... AS query")]
    NotAView(String),
}

/// Events written per topic: persons, auctions, bids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [u64; 3]);

impl Counts {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Events of `topic`.
    pub fn of(&self, topic: &str) -> u64 {
        TOPICS
            .iter()
            .position(|t| *t == topic)
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(0)
    }
}

/// Creates the three topics (one partition each, unless they exist) and appends events
/// `first..first + events` of `config`'s run to them, durably. Returns what was written.
pub async fn load(
    state: &Arc<State>,
    config: GeneratorConfig,
    first: u64,
    events: u64,
) -> Result<Counts, NexmarkError> {
    let access = PartitionAccess::new(state.clone());
    let mut partitions: Vec<PartitionHandle> = Vec::new();
    for topic in TOPICS {
        if state.topic(topic).is_none() {
            state
                .create_topic(topic, 1, state.default_replication(), Default::default())
                .await
                .map_err(|source| NexmarkError::CreateTopic {
                    topic: topic.to_string(),
                    source,
                })?;
        }
        partitions.push(
            access
                .partition(topic, 0)
                .map_err(|_| NexmarkError::NoPartition {
                    topic: topic.to_string(),
                })?,
        );
    }
    let generator = Generator::new(config);
    let mut pending: [Vec<NewRecord>; 3] = Default::default();
    let mut counts = Counts::default();
    for n in first..first + events {
        let event = generator.event(n);
        let i = match event {
            Event::Person(_) => 0,
            Event::Auction(_) => 1,
            Event::Bid(_) => 2,
        };
        pending[i].push(NewRecord {
            key: None,
            value: Some(event.to_json().into_bytes()),
            headers: Vec::new(),
        });
        counts.0[i] += 1;
        if pending[i].len() >= BATCH {
            flush(&partitions, i, &mut pending[i]).await?;
        }
    }
    for (i, p) in pending.iter_mut().enumerate() {
        flush(&partitions, i, p).await?;
    }
    Ok(counts)
}

async fn flush(
    partitions: &[PartitionHandle],
    i: usize,
    records: &mut Vec<NewRecord>,
) -> Result<(), NexmarkError> {
    let (Some(partition), Some(topic)) = (partitions.get(i), TOPICS.get(i)) else {
        return Ok(());
    };
    append_durably(partition, records)
        .await
        .map_err(|source| NexmarkError::Append {
            topic: topic.to_string(),
            source,
        })?;
    records.clear();
    Ok(())
}

/// The view's name and its query: the text between `CREATE MATERIALIZED VIEW name AS` and
/// the final `;`.
pub fn select_of(create: &str) -> Result<(String, String), NexmarkError> {
    let bad = || NexmarkError::NotAView(create.lines().next().unwrap_or_default().to_string());
    let rest = create
        .trim_start()
        .strip_prefix("CREATE MATERIALIZED VIEW")
        .ok_or_else(bad)?
        .trim_start();
    let name_end = rest.find(char::is_whitespace).ok_or_else(bad)?;
    let (name, rest) = rest.split_at(name_end);
    let query = rest
        .trim_start()
        .strip_prefix("AS")
        .ok_or_else(bad)?
        .trim()
        .trim_end_matches(';');
    Ok((name.to_string(), query.to_string()))
}

/// The Nexmark sources `query` reads (of `person`, `auction`, `bid`), from its logical plan's
/// table scans.
pub async fn sources_of(session: &Session, query: &str) -> Result<Vec<&'static str>, SqlError> {
    let mut statements = crate::parser::parse(query)?;
    let Some(WeirStatement::Sql(statement)) = statements.pop() else {
        return Err(SqlError::Invalid(format!("not a query: {query}")));
    };
    let plan = session.plan(&statement).await?;
    let mut scanned = Vec::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scanned.push(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(TOPICS
        .into_iter()
        .filter(|t| scanned.iter().any(|s| s == t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_is_a_view_over_the_sources() {
        for (name, sql) in QUERIES {
            let (view, query) = select_of(sql).expect(name);
            assert_eq!(view, format!("nexmark_{name}"));
            assert!(
                query.to_uppercase().starts_with("SELECT"),
                "{name}: {query}"
            );
            assert!(!query.ends_with(';'), "{name}");
        }
        assert!(select_of("CREATE SINK s AS SELECT 1").is_err());
    }
}
