//! The pipeline's durable state in `__weir_sql_state.<id>` (compacted, one partition),
//! written in each epoch's transaction: key `(operator id: u16, entry)`, value a versioned
//! binary encoding. Operator 0 is the sources': per source partition its next offset and
//! largest event time, per source its emitted watermark, the last committed epoch and the
//! pipeline's counters (so DESCRIBE and `/metrics` count across restarts, each row once).
//! Recovery ([`crate::state::changelog::read`]) reads the topic read_committed up to its
//! last stable offset and keeps the last value per key, so state always matches the offsets
//! of the last committed epoch.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::StreamError;
use crate::format::SinkRecord;
use crate::state::changelog::SOURCES;

/// The state topic of pipeline `id`.
pub fn state_topic(id: u64) -> String {
    format!("__weir_sql_state.{id}")
}

/// The transactional id of pipeline `id`.
pub fn transactional_id(id: u64) -> String {
    format!("__weir_sql.{id}")
}

const VERSION: u8 = 1;
const TAG_OFFSET: u8 = b'o';
const TAG_WATERMARK: u8 = b'w';
const TAG_EPOCH: u8 = b'e';
const TAG_COUNTERS: u8 = b'c';
const NONE: i64 = i64::MIN;

/// What operator 0 checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceState {
    pub epoch: u64,
    /// (topic, partition) -> (next offset, largest event time)
    pub offsets: HashMap<(String, i32), (i64, Option<i64>)>,
    /// topic -> emitted watermark
    pub watermarks: HashMap<String, i64>,
    /// The pipeline's counters as of this epoch's commit (absent in state written before
    /// they were checkpointed: zero).
    pub counters: Counters,
}

/// What a pipeline counts since it was created, committed with each epoch: a row replayed
/// after a crash is counted once, as its output is written once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records the decoders refused.
    pub decode_failures: u64,
    /// Records appended to sinks.
    pub records_out: u64,
    /// Rows dropped as late (behind the watermark, or for a window that had closed).
    pub late_rows: u64,
    /// Of those, the ones written to their source's dead-letter topic.
    pub late_dead_lettered: u64,
    /// Rows dropped as duplicates by their source's deduplication (absent before: zero).
    pub duplicate_rows: u64,
    /// Values whose expression failed on their row (absent before: zero).
    pub expression_errors: u64,
}

impl Counters {
    fn fields(&self) -> [i64; 6] {
        [
            self.decode_failures,
            self.records_out,
            self.late_rows,
            self.late_dead_lettered,
            self.duplicate_rows,
            self.expression_errors,
        ]
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
    }
}

fn key(tag: u8, topic: Option<&str>, partition: Option<i32>) -> Bytes {
    let mut k = Vec::with_capacity(32);
    k.extend_from_slice(&SOURCES.to_be_bytes());
    k.push(tag);
    if let Some(t) = topic {
        k.extend_from_slice(&u16::try_from(t.len()).unwrap_or(u16::MAX).to_be_bytes());
        k.extend_from_slice(t.as_bytes());
    }
    if let Some(p) = partition {
        k.extend_from_slice(&p.to_be_bytes());
    }
    Bytes::from(k)
}

fn value(fields: &[i64]) -> Bytes {
    let mut v = Vec::with_capacity(1 + 8 * fields.len());
    v.push(VERSION);
    for f in fields {
        v.extend_from_slice(&f.to_be_bytes());
    }
    Bytes::from(v)
}

impl SourceState {
    /// The records of this state, to append in the epoch's transaction.
    pub fn records(&self, timestamp: i64) -> Vec<SinkRecord> {
        let mut out = Vec::with_capacity(self.offsets.len() + self.watermarks.len() + 1);
        let rec = |key, value| SinkRecord::new(Some(key), Some(value), timestamp);
        for ((topic, partition), (offset, max)) in &self.offsets {
            out.push(rec(
                key(TAG_OFFSET, Some(topic), Some(*partition)),
                value(&[*offset, max.unwrap_or(NONE)]),
            ));
        }
        for (topic, w) in &self.watermarks {
            out.push(rec(key(TAG_WATERMARK, Some(topic), None), value(&[*w])));
        }
        out.push(rec(
            key(TAG_EPOCH, None, None),
            value(&[i64::try_from(self.epoch).unwrap_or(i64::MAX)]),
        ));
        out.push(rec(
            key(TAG_COUNTERS, None, None),
            value(&self.counters.fields()),
        ));
        out
    }

    fn apply(&mut self, k: &[u8], v: &[u8]) -> Result<(), String> {
        let fields = |n: usize| -> Result<Vec<i64>, String> {
            match v.split_first() {
                Some((&VERSION, rest)) if rest.len() == 8 * n => Ok(rest
                    .chunks_exact(8)
                    .map(|c| i64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()),
                Some((version, _)) => Err(format!("value version {version} or length unknown")),
                None => Err("empty value".into()),
            }
        };
        let (op, rest) = k.split_at_checked(2).ok_or("short key")?;
        if op != SOURCES.to_be_bytes() {
            return Err(format!("operator {op:?}'s entry among the sources'"));
        }
        let (tag, rest) = rest.split_first().ok_or("short key")?;
        let topic = |rest: &[u8]| -> Result<(String, usize), String> {
            let (len, rest) = rest.split_at_checked(2).ok_or("short key")?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let name = rest.get(..len).ok_or("short key")?;
            let name = String::from_utf8(name.to_vec()).map_err(|e| e.to_string())?;
            Ok((name, 2 + len))
        };
        match *tag {
            TAG_OFFSET => {
                let (name, used) = topic(rest)?;
                let p = rest.get(used..used + 4).ok_or("short key")?;
                let partition = i32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                let f = fields(2)?;
                let max = (f[1] != NONE).then_some(f[1]);
                self.offsets.insert((name, partition), (f[0], max));
            }
            TAG_WATERMARK => {
                let (name, _) = topic(rest)?;
                self.watermarks.insert(name, fields(1)?[0]);
            }
            TAG_EPOCH => self.epoch = u64::try_from(fields(1)?[0]).unwrap_or(0),
            TAG_COUNTERS => {
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                // Four fields before duplicate rows were counted, five before expression
                // errors were.
                let f = fields(6).or_else(|_| fields(5)).or_else(|_| fields(4))?;
                let at = |i: usize| f.get(i).copied().map_or(0, n);
                self.counters = Counters {
                    decode_failures: at(0),
                    records_out: at(1),
                    late_rows: at(2),
                    late_dead_lettered: at(3),
                    duplicate_rows: at(4),
                    expression_errors: at(5),
                };
            }
            other => return Err(format!("unknown entry tag {other}")),
        }
        Ok(())
    }

    /// The sources' state among the committed entries (operator 0's).
    pub fn from_entries(
        topic: &str,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<SourceState, StreamError> {
        let mut state = SourceState::default();
        let mut key = Vec::with_capacity(64);
        for (k, v) in entries {
            key.clear();
            key.extend_from_slice(&SOURCES.to_be_bytes());
            key.extend_from_slice(k);
            state.apply(&key, v).map_err(|reason| StreamError::State {
                topic: topic.to_string(),
                reason,
            })?;
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut s = SourceState {
            epoch: 7,
            ..SourceState::default()
        };
        s.offsets.insert(("in".into(), 0), (42, Some(1_000)));
        s.offsets.insert(("in".into(), 3), (0, None));
        s.watermarks.insert("in".into(), 900);
        s.counters = Counters {
            decode_failures: 1,
            records_out: 2,
            late_rows: 3,
            late_dead_lettered: 4,
            duplicate_rows: 5,
            expression_errors: 6,
        };
        let mut back = SourceState::default();
        for r in s.records(0) {
            back.apply(&r.key.expect("key"), &r.value.expect("value"))
                .expect("apply");
        }
        assert_eq!(back, s);
        // State written before counters were checkpointed restores them as zero.
        let mut old = SourceState::default();
        for r in s.records(0).into_iter().filter(|r| {
            r.key
                .as_ref()
                .is_some_and(|k| k.get(2) != Some(&TAG_COUNTERS))
        }) {
            old.apply(&r.key.expect("key"), &r.value.expect("value"))
                .expect("apply");
        }
        assert_eq!(old.counters, Counters::default());
        assert_eq!(old.epoch, 7);
        // Four counters (before duplicate rows were counted): the fifth is zero.
        let mut four = SourceState::default();
        four.apply(&key(TAG_COUNTERS, None, None), &value(&[1, 2, 3, 4]))
            .expect("four counters");
        assert_eq!(
            (
                four.counters.late_dead_lettered,
                four.counters.duplicate_rows
            ),
            (4, 0)
        );
        // Five counters (before expression errors were counted): the sixth is zero.
        let mut five = SourceState::default();
        five.apply(&key(TAG_COUNTERS, None, None), &value(&[1, 2, 3, 4, 5]))
            .expect("five counters");
        assert_eq!(
            (
                five.counters.duplicate_rows,
                five.counters.expression_errors
            ),
            (5, 0)
        );
        let mut bad = SourceState::default();
        assert!(bad.apply(&key(TAG_EPOCH, None, None), &[9, 0]).is_err());
        assert!(bad.apply(&[0, 0, b'x'], &value(&[1])).is_err());
    }
}
