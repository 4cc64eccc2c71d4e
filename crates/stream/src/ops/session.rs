//! `SessionAggregate` (§6, sessions): GROUP BY key columns plus the bounds of a session
//! window (`SESSION(src, time_col, gap, key..)`), emitted on window close. Per key it keeps
//! an ordered set of open sessions `[start, last + gap)`; a row at `t` opens the session
//! `[t, t + gap)`, which absorbs every open session it overlaps (a row bridging two sessions
//! merges them). When the watermark reaches a session's end (`last + gap`) the session is
//! emitted, one append-only row (the group values with `window_start = start`, `window_end
//! = last + gap`, then the aggregates), and freed.
//!
//! Sessions keep their rows' aggregate inputs (each argument and FILTER outcome), since
//! merging needs them, and fold them into fresh accumulators when emitted: state is
//! proportional to the rows of open sessions, which the watermark bounds.
//!
//! State is a [`KeyedState`] keyed by the key's codec row, its value the key's sessions.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;

use super::eval::{drop_failed_keys, evaluate};
use crate::error::StreamError;
use crate::graph::{AggSpec, SessionSpec};
use crate::ops::aggregate::{eval_inputs, to_array, Group};
use crate::ops::window::micros;
use crate::state::codec::{self, CodecError};
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// One open session: its last event time and its rows' aggregate inputs (per row, per
/// aggregate: the argument, or NULL where FILTER rejected the row).
#[derive(Clone, Debug, Default, PartialEq)]
struct Session {
    last: i64,
    rows: Vec<Vec<ScalarValue>>,
}

/// A key's open sessions by start (microseconds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sessions {
    open: BTreeMap<i64, Session>,
    bytes: usize,
}

impl StateValue for Sessions {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut fields = vec![ScalarValue::Int64(Some(self.open.len() as i64))];
        for (start, s) in &self.open {
            fields.push(ScalarValue::Int64(Some(*start)));
            fields.push(ScalarValue::Int64(Some(s.last)));
            fields.push(ScalarValue::Int64(Some(s.rows.len() as i64)));
            fields.push(ScalarValue::Int64(Some(
                s.rows.first().map_or(0, Vec::len) as i64
            )));
            for r in &s.rows {
                fields.extend(r.iter().cloned());
            }
        }
        codec::encode_row(&fields, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let fields = codec::decode_row(bytes)?;
        let mut it = fields.into_iter();
        let mut out = Sessions::default();
        let n = int(&mut it)?;
        for _ in 0..n {
            let (start, last) = (int(&mut it)?, int(&mut it)?);
            let (rows, width) = (int(&mut it)?, int(&mut it)?);
            let mut s = Session {
                last,
                rows: Vec::new(),
            };
            for _ in 0..rows {
                let mut r = Vec::new();
                for _ in 0..width {
                    r.push(
                        it.next()
                            .ok_or_else(|| CodecError::Invalid("session row cut short".into()))?,
                    );
                }
                s.rows.push(r);
            }
            out.open.insert(start, s);
        }
        out.bytes = out.measure();
        Ok(out)
    }

    fn size(&self) -> usize {
        self.bytes
    }
}

/// The next field of a session state as an integer.
fn int(it: &mut impl Iterator<Item = ScalarValue>) -> Result<i64, CodecError> {
    match it.next() {
        Some(ScalarValue::Int64(Some(n))) => Ok(n),
        other => Err(CodecError::Invalid(format!("session state: {other:?}"))),
    }
}

/// Bytes a session costs beyond its rows.
const SESSION_BYTES: usize = 48;

/// Bytes one kept row costs.
fn row_bytes(row: &[ScalarValue]) -> usize {
    24 + row.iter().map(ScalarValue::size).sum::<usize>()
}

impl Sessions {
    fn measure(&self) -> usize {
        self.open
            .values()
            .map(|s| SESSION_BYTES + s.rows.iter().map(|r| row_bytes(r)).sum::<usize>())
            .sum()
    }
}

pub struct SessionAggregateOp {
    group: Vec<Arc<dyn PhysicalExpr>>,
    aggs: Vec<AggSpec>,
    spec: SessionSpec,
    /// Group columns (the bounds among them), then the aggregates.
    schema: SchemaRef,
    state: KeyedState<Sessions>,
    watermark_us: Option<i64>,
    dropped: u64,
}

impl SessionAggregateOp {
    pub fn new(
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        spec: SessionSpec,
        schema: SchemaRef,
    ) -> SessionAggregateOp {
        SessionAggregateOp {
            group,
            aggs,
            spec,
            schema,
            state: KeyedState::default(),
            watermark_us: None,
            dropped: 0,
        }
    }

    /// Open sessions over all keys.
    pub fn sessions(&self) -> usize {
        self.state.iter().map(|(_, s)| s.open.len()).sum()
    }

    /// Rows dropped: no event time, or their session had closed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn is_bound(&self, i: usize) -> bool {
        Some(i) == self.spec.start_column || Some(i) == self.spec.end_column
    }

    /// Adds `batch`'s rows to their keys' sessions, merging the sessions a row bridges.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<(), StreamError> {
        let kept = drop_failed_keys(&self.group, batch)?;
        let batch = kept.as_ref().unwrap_or(batch);
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = self
            .group
            .iter()
            .map(|e| Ok(evaluate(e, batch)?.0))
            .collect::<Result<Vec<ArrayRef>, StreamError>>()?;
        let (args, filters) = eval_inputs(&self.aggs, batch)?;
        let gap = self.spec.gap_us;
        for row in 0..n {
            let mut key_values = Vec::new();
            let mut time = None;
            for (i, k) in keys.iter().enumerate() {
                let v = ScalarValue::try_from_array(k, row)?;
                if Some(i) == self.spec.start_column {
                    time = micros(&v);
                } else if Some(i) == self.spec.end_column {
                    time = time.or_else(|| micros(&v).map(|e| e - gap));
                } else {
                    key_values.push(v);
                }
            }
            let Some(t) = time.filter(|t| self.watermark_us.is_none_or(|w| t + gap > w)) else {
                self.dropped += 1;
                continue;
            };
            let inputs = args
                .iter()
                .zip(&filters)
                .map(|(a, f)| {
                    let passes = f.as_ref().is_none_or(|f| f.is_valid(row) && f.value(row));
                    if passes {
                        ScalarValue::try_from_array(a, row)
                    } else {
                        ScalarValue::try_from(a.data_type())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut key = Vec::new();
            codec::encode_row(&key_values, &mut key).map_err(StreamError::Codec)?;
            self.state.update(&key, |slot| {
                let sessions = slot.get_or_insert_with(Sessions::default);
                // Every open session overlapping [t, t + gap) merges with the row.
                let overlapping: Vec<i64> = sessions
                    .open
                    .range(..t + gap)
                    .filter(|(_, s)| s.last + gap > t)
                    .map(|(start, _)| *start)
                    .collect();
                let mut merged = Session {
                    last: t,
                    rows: Vec::new(),
                };
                let mut start = t;
                let overlapping_count = overlapping.len();
                for s in overlapping {
                    if let Some(old) = sessions.open.remove(&s) {
                        start = start.min(s);
                        merged.last = merged.last.max(old.last);
                        merged.rows.extend(old.rows);
                    }
                }
                // The merged sessions' overhead goes, the row's bytes come (no re-measure:
                // a key's open sessions may hold many rows).
                let merged_away = SESSION_BYTES * overlapping_count;
                sessions.bytes = (sessions.bytes + SESSION_BYTES + row_bytes(&inputs))
                    .saturating_sub(merged_away);
                merged.rows.push(inputs);
                sessions.open.insert(start, merged);
            });
        }
        Ok(())
    }

    /// The watermark reached `watermark_ms`: sessions ending at or before it are emitted and
    /// freed.
    pub fn on_watermark(&mut self, watermark_ms: i64) -> Result<Option<RecordBatch>, StreamError> {
        let w = watermark_ms.saturating_mul(1_000);
        if self.watermark_us.is_some_and(|old| old >= w) {
            return Ok(None);
        }
        self.watermark_us = Some(w);
        let gap = self.spec.gap_us;
        let mut closing: Vec<Vec<u8>> = self
            .state
            .iter()
            .filter(|(_, s)| s.open.values().any(|s| s.last + gap <= w))
            .map(|(k, _)| k.clone())
            .collect();
        // Emitted in key order, so output does not depend on hash order.
        closing.sort_unstable();
        let mut rows = Vec::new();
        for key in closing {
            let key_values = codec::decode_row(&key).map_err(StreamError::Codec)?;
            let mut closed = Vec::new();
            self.state.update(&key, |slot| {
                if let Some(sessions) = slot {
                    let keep = sessions
                        .open
                        .iter()
                        .filter(|(_, s)| s.last + gap > w)
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>();
                    let all = std::mem::take(&mut sessions.open);
                    for (start, s) in all {
                        if keep.contains(&start) {
                            sessions.open.insert(start, s);
                        } else {
                            closed.push((start, s));
                        }
                    }
                    sessions.bytes = sessions.measure();
                    if sessions.open.is_empty() {
                        *slot = None;
                    }
                }
            });
            for (start, s) in closed {
                rows.push(self.output(&key_values, start, &s)?);
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.schema.fields().len()];
        for r in rows {
            for (c, v) in columns.iter_mut().zip(r) {
                c.push(v);
            }
        }
        let arrays = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(values, field)| to_array(values, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(RecordBatch::try_new(self.schema.clone(), arrays)?))
    }

    /// A closed session's row: group values (bounds in place), then the aggregates.
    fn output(
        &self,
        key_values: &[ScalarValue],
        start: i64,
        s: &Session,
    ) -> Result<Vec<ScalarValue>, StreamError> {
        let mut group = Group::new(&self.aggs, true);
        for r in &s.rows {
            group
                .add_values(r.clone(), 1)
                .map_err(StreamError::Aggregate)?;
        }
        let mut keys = key_values.iter();
        let mut out = Vec::with_capacity(self.schema.fields().len());
        for i in 0..self.group.len() {
            let v = if Some(i) == self.spec.start_column {
                ScalarValue::TimestampMicrosecond(Some(start), None)
            } else if Some(i) == self.spec.end_column {
                ScalarValue::TimestampMicrosecond(Some(s.last + self.spec.gap_us), None)
            } else {
                debug_assert!(!self.is_bound(i));
                keys.next().cloned().unwrap_or(ScalarValue::Null)
            };
            out.push(v);
        }
        out.extend(group.values(&self.aggs)?);
        Ok(out)
    }
}

impl Stateful for SessionAggregateOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        self.state.restore(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use datafusion_physical_expr::expressions::col;

    use crate::graph::AggKind;

    const SEC: i64 = 1_000_000;

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]))
    }

    /// Rows (key, value, event time in seconds).
    fn batch(rows: &[(&str, i64, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            input(),
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.2 * SEC))
                        .collect::<TimestampMicrosecondArray>(),
                ),
            ],
        )
        .expect("batch")
    }

    fn op() -> SessionAggregateOp {
        let s = input();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        SessionAggregateOp::new(
            vec![col("k", &s).expect("k"), col("t", &s).expect("t")],
            vec![AggSpec {
                kind: AggKind::Sum,
                arg: col("v", &s).expect("v"),
                filter: None,
                output: DataType::Int64,
            }],
            SessionSpec {
                start_column: Some(1),
                end_column: None,
                gap_us: 10 * SEC,
            },
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, true),
                Field::new("window_start", ts, true),
                Field::new("total", DataType::Int64, true),
            ])),
        )
    }

    fn rows(b: &RecordBatch) -> Vec<String> {
        (0..b.num_rows())
            .map(|r| {
                b.columns()
                    .iter()
                    .map(|c| arrow_cast::display::array_value_to_string(c, r).expect("display"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn a_bridging_row_merges_sessions_which_close_at_last_plus_gap() {
        let mut s = op();
        s.process(&batch(&[("a", 1, 0), ("a", 2, 25), ("b", 5, 3)]))
            .expect("process");
        assert_eq!(s.sessions(), 3);
        // 8 s joins [0, 10); then 17 s bridges that session and [25, 35).
        s.process(&batch(&[("a", 4, 8), ("a", 8, 17)]))
            .expect("process");
        assert_eq!(s.sessions(), 2, "a's sessions merged");
        let out = s.on_watermark(13_000).expect("wm").expect("b closed");
        assert_eq!(rows(&out), ["b,1970-01-01T00:00:03,5"]);
        assert!(s.on_watermark(34_000).expect("wm").is_none());
        let out = s.on_watermark(35_000).expect("wm").expect("a closed");
        assert_eq!(rows(&out), ["a,1970-01-01T00:00:00,15"]);
        assert_eq!((s.sessions(), s.state_bytes()), (0, 0));
        s.process(&batch(&[("a", 1, 20)])).expect("process");
        assert_eq!(s.dropped(), 1, "a row of a closed session");
    }

    #[test]
    fn sessions_restore_from_their_encoding() {
        let mut a = op();
        a.process(&batch(&[("a", 1, 0), ("a", 2, 5), ("a", 3, 40)]))
            .expect("process");
        let mut b = op();
        for (k, v) in a.take_changes().expect("changes") {
            b.restore(&k, &v.expect("value")).expect("restore");
        }
        assert_eq!(b.state_bytes(), a.state_bytes());
        let (ra, rb) = (
            a.on_watermark(60_000).expect("a").expect("rows"),
            b.on_watermark(60_000).expect("b").expect("rows"),
        );
        assert_eq!(rows(&ra), rows(&rb));
        assert_eq!(
            rows(&ra),
            ["a,1970-01-01T00:00:00,3", "a,1970-01-01T00:00:40,3"]
        );
    }
}
