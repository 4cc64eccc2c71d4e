//! The message browser (design §4): records of a topic read from memory and disk through
//! `Partition::read` (read_committed: control batches and aborted transactions skipped, up to
//! the last stable offset), filtered on key, value and header, within explicit budgets. The
//! answer says how much it scanned of what there was and why it stopped, and carries a cursor
//! (every unfinished partition's next offset) to continue from.

use std::time::{Duration, Instant};

use serde::Serialize;
use weir_broker::partition::{Isolation, Partition, ReadSpec};
use weir_broker::state::State;
use weir_storage::batch::{Batches, Check};
use weir_storage::records::{self, Record, RecordIter};

/// Bytes asked of one `Partition::read`.
const READ_BYTES: usize = 1 << 20;
/// The largest records area decompressed from one batch.
const MAX_DECOMPRESSED: usize = 64 << 20;
/// Bytes of a key or value shown; the rest is cut (and said so).
const SHOW_BYTES: usize = 16 << 10;

/// What one request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_records: u64,
    pub max_bytes: u64,
    pub max_time: Duration,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_records: 100_000,
            max_bytes: 64 << 20,
            max_time: Duration::from_secs(2),
        }
    }
}

/// Where the scan starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    Offset(i64),
    /// The first record at or after this time (ms).
    Timestamp(i64),
    /// The last N records before the last stable offset.
    End(i64),
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Substring of the key (read as UTF-8, lossy).
    pub key: String,
    /// Substring of the value.
    pub value: String,
    /// `name` (the record has the header) or `name=text` (its value contains `text`).
    pub header: String,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub partition: Option<i32>,
    pub start: Start,
    pub filter: Filter,
    /// Resumes a previous answer (`p:offset,...`), replacing `partition` and `start`.
    pub cursor: Option<String>,
    /// Matches shown at most.
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    /// The value parsed as JSON and is shown pretty-printed.
    pub value_json: bool,
    /// The key or value was longer than shown.
    pub truncated: bool,
    pub headers: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Every partition was read to its last stable offset.
    End,
    /// `limit` matches were found.
    MatchLimit,
    RecordBudget,
    ByteBudget,
    TimeBudget,
}

impl Stopped {
    fn words(self, b: &Budget, limit: usize) -> String {
        match self {
            Stopped::End => "it reached the end".to_string(),
            Stopped::MatchLimit => format!("{limit} matches were found"),
            Stopped::RecordBudget => format!("the budget of {} records was spent", b.max_records),
            Stopped::ByteBudget => format!("the budget of {} MiB was spent", b.max_bytes >> 20),
            Stopped::TimeBudget => format!("the time budget of {:?} was spent", b.max_time),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Browse {
    pub topic: String,
    pub partitions: usize,
    pub scanned_records: u64,
    pub scanned_bytes: u64,
    /// Offsets between the start positions and the last stable offsets: the records there
    /// were to scan (counting transaction markers and aborted records, which are skipped).
    pub total_records: u64,
    pub stopped: Stopped,
    /// "scanned X of Y records in P partitions, stopped because ...".
    pub summary: String,
    /// Continues the scan where it stopped; `None` at the end.
    pub cursor: Option<String>,
    pub messages: Vec<Message>,
    /// Every planned partition's next offset when the scan stopped (the live tail goes on
    /// from here; a finished partition's is its end).
    #[serde(skip)]
    pub positions: Vec<(i32, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("bad cursor {0:?}: expected partition:offset pairs separated by commas")]
    BadCursor(String),
    #[error("reading partition {partition}: {source}")]
    Read {
        partition: i32,
        #[source]
        source: weir_broker::partition::PartitionError,
    },
    #[error("partition {partition} at offset {offset}: {reason}")]
    Corrupt {
        partition: i32,
        offset: i64,
        reason: String,
    },
}

fn parse_cursor(c: &str) -> Option<Vec<(i32, i64)>> {
    c.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (p, o) = pair.split_once(':')?;
            Some((p.trim().parse().ok()?, o.trim().parse().ok()?))
        })
        .collect()
}

fn start_offset(p: &Partition, start: Start, end: i64) -> Result<i64, BrowseError> {
    let first = p.log_start_offset();
    let at = match start {
        Start::Beginning => first,
        Start::Offset(o) => o,
        Start::End(n) => end.saturating_sub(n.max(0)),
        Start::Timestamp(ts) => p
            .offset_for_timestamp(ts)
            .map_err(|source| BrowseError::Read {
                partition: p.index(),
                source,
            })?
            .map_or(end, |(o, _)| o),
    };
    Ok(at.clamp(first, end.max(first)))
}

fn text(b: &[u8]) -> (String, bool) {
    let cut = b.len() > SHOW_BYTES;
    let shown = b.get(..SHOW_BYTES).unwrap_or(b);
    (String::from_utf8_lossy(shown).into_owned(), cut)
}

impl Filter {
    fn matches(&self, r: &Record<'_>) -> bool {
        let contains = |hay: Option<&[u8]>, needle: &str| {
            needle.is_empty() || hay.is_some_and(|h| String::from_utf8_lossy(h).contains(needle))
        };
        if !contains(r.key, &self.key) || !contains(r.value, &self.value) {
            return false;
        }
        if self.header.is_empty() {
            return true;
        }
        let (name, want) = match self.header.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (self.header.as_str(), None),
        };
        r.headers
            .iter()
            .any(|h| h.key == name.as_bytes() && want.is_none_or(|w| contains(h.value, w)))
    }
}

fn message(partition: i32, r: &Record<'_>) -> Message {
    let key = r.key.map(text);
    let mut truncated = key.as_ref().is_some_and(|k| k.1);
    let mut value_json = false;
    let value = r.value.map(|v| {
        let pretty = (v.len() <= SHOW_BYTES && matches!(v.first(), Some(b'{' | b'[')))
            .then(|| serde_json::from_slice::<serde_json::Value>(v).ok())
            .flatten()
            .and_then(|j| serde_json::to_string_pretty(&j).ok());
        match pretty {
            Some(p) => {
                value_json = true;
                p
            }
            None => {
                let (t, cut) = text(v);
                truncated |= cut;
                t
            }
        }
    });
    Message {
        partition,
        offset: r.offset,
        timestamp_ms: r.timestamp,
        key: key.map(|k| k.0),
        value,
        value_json,
        truncated,
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(h.key).into_owned(),
                    h.value.map(|v| text(v).0),
                )
            })
            .collect(),
    }
}

pub fn browse(
    state: &State,
    topic: &str,
    req: &Request,
    budget: &Budget,
) -> Result<Browse, BrowseError> {
    let started = Instant::now();
    let t = state
        .topic(topic)
        .ok_or_else(|| BrowseError::UnknownTopic(topic.to_string()))?;
    let lookup = |p: i32| {
        t.partition(p).ok_or(BrowseError::UnknownPartition {
            topic: topic.to_string(),
            partition: p,
        })
    };
    // (partition, next offset, end): the end is the last stable offset when the scan starts.
    let mut plan: Vec<(std::sync::Arc<Partition>, i64, i64)> = Vec::new();
    match &req.cursor {
        Some(c) => {
            for (p, at) in parse_cursor(c).ok_or_else(|| BrowseError::BadCursor(c.clone()))? {
                let part = lookup(p)?;
                let end = part.last_stable_offset();
                let first = part.log_start_offset();
                plan.push((part, at.clamp(first, end.max(first)), end));
            }
        }
        None => {
            let parts = match req.partition {
                Some(p) => vec![lookup(p)?],
                None => t.all_partitions(),
            };
            for part in parts {
                let end = part.last_stable_offset();
                let at = start_offset(&part, req.start, end)?;
                plan.push((part, at, end));
            }
        }
    }
    let total: u64 = plan
        .iter()
        .map(|(_, at, end)| u64::try_from(end - at).unwrap_or(0))
        .sum();
    let mut scanned = 0u64;
    let mut bytes = 0u64;
    let mut messages = Vec::new();
    let mut stopped = Stopped::End;
    let mut cursor: Vec<(i32, i64)> = Vec::new();
    let mut positions: Vec<(i32, i64)> = Vec::with_capacity(plan.len());
    for (part, at, end) in &plan {
        let index = part.index();
        let mut pos = *at;
        while pos < *end && stopped == Stopped::End {
            if bytes >= budget.max_bytes {
                stopped = Stopped::ByteBudget;
                break;
            }
            if started.elapsed() >= budget.max_time {
                stopped = Stopped::TimeBudget;
                break;
            }
            let read = part
                .read(&ReadSpec {
                    offset: pos,
                    max_bytes: READ_BYTES,
                    min_one_batch: true,
                    isolation: Isolation::ReadCommitted,
                    leader_epoch: None,
                })
                .map_err(|source| BrowseError::Read {
                    partition: index,
                    source,
                })?;
            if read.records.is_empty() {
                break;
            }
            let aborted = read.aborted.as_deref().unwrap_or_default();
            let corrupt = |offset: i64, reason: String| BrowseError::Corrupt {
                partition: index,
                offset,
                reason,
            };
            let before = pos;
            'batches: for batch in Batches::new(&read.records, Check::Structure) {
                let batch = batch.map_err(|e| corrupt(pos, format!("{:?}", e.defect)))?;
                let h = batch.header;
                if h.base_offset >= *end {
                    break;
                }
                bytes += batch.bytes.len() as u64;
                let skip = h.is_control()
                    || (h.is_transactional()
                        && aborted.iter().any(|a| {
                            a.producer_id == h.producer_id
                                && a.first_offset <= h.base_offset
                                && h.base_offset <= a.last_offset
                        }));
                if !skip {
                    let body = records::body(&h, batch.bytes, MAX_DECOMPRESSED)
                        .map_err(|e| corrupt(h.base_offset, e.to_string()))?;
                    for r in RecordIter::new(&h, &body) {
                        let r = r.map_err(|e| corrupt(h.base_offset, format!("{e:?}")))?;
                        if r.offset < pos || r.offset >= *end {
                            continue;
                        }
                        // Checked before the record, so a scan that ends exactly on the
                        // budget says it reached the end.
                        if scanned >= budget.max_records {
                            stopped = Stopped::RecordBudget;
                            pos = r.offset;
                            break 'batches;
                        }
                        scanned += 1;
                        if req.filter.matches(&r) {
                            messages.push(message(index, &r));
                            if messages.len() >= req.limit {
                                stopped = Stopped::MatchLimit;
                                pos = r.offset + 1;
                                break 'batches;
                            }
                        }
                    }
                }
                pos = pos.max(h.last_offset() + 1);
                if bytes >= budget.max_bytes {
                    break;
                }
            }
            if pos == before {
                // Nothing at or after `pos` below the end (a gap compaction left).
                break;
            }
        }
        positions.push((index, pos));
        if pos < *end {
            cursor.push((index, pos));
        }
    }
    if stopped == Stopped::End && !cursor.is_empty() {
        // Every partition was walked, but one stopped short of its end: a gap (compaction
        // or retention) means nothing more can be read there.
        cursor.clear();
    }
    let summary = format!(
        "scanned {scanned} of {total} records in {} partition{}, stopped because {}",
        plan.len(),
        if plan.len() == 1 { "" } else { "s" },
        stopped.words(budget, req.limit)
    );
    Ok(Browse {
        topic: topic.to_string(),
        partitions: plan.len(),
        scanned_records: scanned,
        scanned_bytes: bytes,
        total_records: total,
        stopped,
        summary,
        cursor: (!cursor.is_empty()).then(|| {
            cursor
                .iter()
                .map(|(p, o)| format!("{p}:{o}"))
                .collect::<Vec<_>>()
                .join(",")
        }),
        messages,
        positions,
    })
}
