//! The transaction log record and its encoding.
//!
//! A record is UTF-8 text, one field per line, each line `name value` and ending in `\n`,
//! fields in exactly this order:
//!
//! ```text
//! weir-txn 1
//! id <transactional id>
//! producer <producer id> <producer epoch>
//! last_producer <producer id> <producer epoch>
//! timeout_ms <transaction timeout>
//! state <Empty|Ongoing|PrepareCommit|PrepareAbort|CompleteCommit|CompleteAbort|Dead>
//! txn_start_ms <ms since the epoch, or -1>
//! last_update_ms <ms since the epoch>
//! partition <partition> <topic>      (zero or more, in order)
//! group <group id>                   (zero or more, in order)
//! end
//! ```
//!
//! Names (transactional id, topic, group id) run to the end of the line; in them `\` is
//! written `\\`, a line feed `\n` and a carriage return `\r`. The first line is a format
//! version: a decoder refuses versions it does not know rather than guess. The last line,
//! `end`, makes a record cut short after a whole line detectable. The encoding is
//! canonical: `encode(decode(bytes)) == bytes` for every accepted input.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::TopicPartition;

use super::{TxnError, TxnState};

const HEADER: &str = "weir-txn 1";

/// The durable state of one transactional id, as written to and replayed from the
/// transaction log. The coordinator's in-memory state is exactly the latest record per id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The producer id and epoch before the last InitProducerId (KIP-360), so a producer
    /// retrying an InitProducerId whose answer it lost gets the same answer again, also
    /// after a restart. Kafka does not log these; Weir does.
    pub last_producer_id: i64,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    /// Never `PrepareEpochFence`. `Dead` is a tombstone.
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    pub groups: BTreeSet<String>,
    pub txn_start_ms: Option<u64>,
    pub last_update_ms: u64,
}

impl TxnRecord {
    /// The key the record is logged under.
    pub fn key(&self) -> &str {
        &self.transactional_id
    }

    pub fn is_tombstone(&self) -> bool {
        self.state == TxnState::Dead
    }

    /// What to replay for a log entry whose value was removed (a null-value tombstone), if
    /// the broker's log stores tombstones that way.
    pub fn tombstone(transactional_id: impl Into<String>) -> Self {
        Self {
            transactional_id: transactional_id.into(),
            producer_id: super::NO_PRODUCER_ID,
            producer_epoch: super::NO_PRODUCER_EPOCH,
            last_producer_id: super::NO_PRODUCER_ID,
            last_producer_epoch: super::NO_PRODUCER_EPOCH,
            timeout_ms: 0,
            state: TxnState::Dead,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            txn_start_ms: None,
            last_update_ms: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{HEADER}\nid {}\nproducer {} {}\nlast_producer {} {}\ntimeout_ms {}\nstate {}\n\
             txn_start_ms {}\nlast_update_ms {}\n",
            escape(&self.transactional_id),
            self.producer_id,
            self.producer_epoch,
            self.last_producer_id,
            self.last_producer_epoch,
            self.timeout_ms,
            self.state,
            self.txn_start_ms.map_or(-1, i128::from),
            self.last_update_ms,
        );
        for tp in &self.partitions {
            let _ = writeln!(out, "partition {} {}", tp.partition, escape(&tp.topic));
        }
        for group in &self.groups {
            let _ = writeln!(out, "group {}", escape(group));
        }
        out.push_str("end\n");
        out.into_bytes()
    }

    /// Refuses anything [`TxnRecord::encode`] would not have written.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxnError> {
        let text = std::str::from_utf8(bytes).map_err(|_| malformed(0, "not UTF-8"))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(malformed(0, "does not end with a line feed"));
        };
        let mut lines = Lines {
            inner: body.split('\n').enumerate().peekable(),
        };
        let (line, header) = lines.next_line()?;
        if header != HEADER {
            return Err(malformed(line, "unknown header or format version"));
        }
        let transactional_id = lines.field("id", unescape)?;
        let (producer_id, producer_epoch) = lines.field("producer", producer)?;
        let (last_producer_id, last_producer_epoch) = lines.field("last_producer", producer)?;
        let timeout_ms = lines.field("timeout_ms", number::<i32>)?;
        let state = lines.field("state", |value| match value.parse() {
            Ok(TxnState::PrepareEpochFence) => Err("PrepareEpochFence is never logged"),
            Ok(state) => Ok(state),
            Err(_) => Err("unknown state"),
        })?;
        let txn_start_ms = lines.field("txn_start_ms", |value| match value {
            "-1" => Ok(None),
            _ => number::<u64>(value).map(Some),
        })?;
        let last_update_ms = lines.field("last_update_ms", number::<u64>)?;
        let mut partitions = BTreeSet::new();
        while lines.next_is("partition") {
            let tp = lines.field("partition", |value| {
                let (partition, topic) = value.split_once(' ').ok_or("missing topic")?;
                Ok(TopicPartition::new(unescape(topic)?, number(partition)?))
            })?;
            partitions.insert(tp);
        }
        let mut groups = BTreeSet::new();
        while lines.next_is("group") {
            groups.insert(lines.field("group", unescape)?);
        }
        let (line, end) = lines.next_line()?;
        if end != "end" {
            return Err(malformed(line, "expected end"));
        }
        let record = Self {
            transactional_id,
            producer_id,
            producer_epoch,
            last_producer_id,
            last_producer_epoch,
            timeout_ms,
            state,
            partitions,
            groups,
            txn_start_ms,
            last_update_ms,
        };
        if let Some((index, _)) = lines.inner.next() {
            return Err(malformed(index + 1, "unexpected line"));
        }
        // Out-of-order or duplicate lines would decode, but not to these bytes.
        if record.encode() != bytes {
            return Err(malformed(0, "not in canonical form"));
        }
        Ok(record)
    }
}

struct Lines<'a> {
    inner: std::iter::Peekable<std::iter::Enumerate<std::str::Split<'a, char>>>,
}

impl<'a> Lines<'a> {
    /// `(1-based line number, text)`.
    fn next_line(&mut self) -> Result<(usize, &'a str), TxnError> {
        self.inner
            .next()
            .map(|(index, text)| (index + 1, text))
            .ok_or_else(|| malformed(0, "truncated"))
    }

    fn next_is(&mut self, name: &str) -> bool {
        self.inner
            .peek()
            .is_some_and(|(_, text)| text.split_once(' ').is_some_and(|(n, _)| n == name))
    }

    fn field<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&'a str) -> Result<T, &'static str>,
    ) -> Result<T, TxnError> {
        let (line, text) = self.next_line()?;
        match text.split_once(' ') {
            Some((n, value)) if n == name => parse(value).map_err(|reason| malformed(line, reason)),
            _ => Err(malformed(line, &format!("expected field {name:?}"))),
        }
    }
}

fn malformed(line: usize, reason: &str) -> TxnError {
    TxnError::MalformedRecord {
        line,
        reason: reason.to_owned(),
    }
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, &'static str> {
    value.parse().map_err(|_| "not a number")
}

fn producer(value: &str) -> Result<(i64, i16), &'static str> {
    let (id, epoch) = value
        .split_once(' ')
        .ok_or("expected producer id and epoch")?;
    Ok((number(id)?, number(epoch)?))
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(value: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\r' => return Err("unescaped carriage return"),
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                _ => return Err("bad escape"),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}
