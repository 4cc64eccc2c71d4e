//! `IntervalJoin` (§6, joins): an inner equi-join of two append-only inputs with event times,
//! matching a left row `l` and a right row `r` when their keys are equal and each side's
//! event time lies within bounds computed from the other side's row. The bounds are
//! constant offsets of the other side's time (`r.t BETWEEN l.t - a AND l.t + b`) or, as in
//! Nexmark q4 and q9 (`B.date_time BETWEEN A.date_time AND A.expires`), other columns of
//! the other side's row ([`SideBounds`]: Flink's time-bounded join with row-dependent
//! bounds); append-only output `left ++ right`.
//!
//! Each side keeps its rows by join key with their event time, and the watermark of each
//! input frees the other side's rows that can match nothing more: no right row below the
//! right watermark `wr` will come (it would be late), so a left row is freed once the upper
//! bound it puts on the right time (`l.t + b`, `A.expires`) is below `wr`, and likewise for
//! right rows. State is thus bounded by the rows within those bounds plus the watermark
//! delays, not by the stream's length. A row that arrives already past that point joins
//! what is held and is not kept. A side without an upper bound keeps its rows.
//!
//! State is one [`KeyedState`]: key = side byte ++ join key's codec row, value the side's
//! rows with their times; beside it, not checkpointed, an index per side of keys by the
//! earliest watermark that frees one of their rows (rebuilt at restore), so a watermark
//! visits only what it frees. The watermarks themselves come back from the sources after a
//! restart.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;

use super::eval::evaluate;
use crate::error::StreamError;
use crate::ops::aggregate::to_array;
use crate::ops::join::int;
use crate::state::codec::{self, CodecError};
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// A bound a row puts on the other side's event time: its column `column` (a timestamp or
/// BIGINT milliseconds) plus `offset_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeBound {
    pub column: usize,
    pub offset_ms: i64,
}

/// What a row of one side can match: rows of the other side whose event time lies within
/// `[max(lower), min(upper)]` (an empty list: no bound that way; a NULL bound: nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SideBounds {
    pub lower: Vec<TimeBound>,
    pub upper: Vec<TimeBound>,
}

impl SideBounds {
    /// The bounds of `l.t + lower <= r.t <= l.t + upper`, per side, for time columns `time`.
    pub fn constant(time: [usize; 2], (lower, upper): (i64, i64)) -> [SideBounds; 2] {
        let b = |column, offset_ms| TimeBound { column, offset_ms };
        [
            SideBounds {
                lower: vec![b(time[0], lower)],
                upper: vec![b(time[0], upper)],
            },
            SideBounds {
                lower: vec![b(time[1], upper.saturating_neg())],
                upper: vec![b(time[1], lower.saturating_neg())],
            },
        ]
    }

    /// `(lower, upper)` when `bounds` are [`SideBounds::constant`]'s for `time`.
    pub fn as_constant(bounds: &[SideBounds; 2], time: [usize; 2]) -> Option<(i64, i64)> {
        let [l, _] = bounds;
        let (lo, hi) = (l.lower.first()?.offset_ms, l.upper.first()?.offset_ms);
        (SideBounds::constant(time, (lo, hi)) == *bounds).then_some((lo, hi))
    }

    /// The range of the other side's times `row` matches; `None` when a bound is NULL (the
    /// condition is then not true: the row matches nothing).
    fn range(&self, row: &[ScalarValue]) -> Option<(i64, i64)> {
        let value = |b: &TimeBound| Some(ms_of(row.get(b.column)?)?.saturating_add(b.offset_ms));
        let mut lo = i64::MIN;
        for b in &self.lower {
            lo = lo.max(value(b)?);
        }
        let mut hi = i64::MAX;
        for b in &self.upper {
            hi = hi.min(value(b)?);
        }
        Some((lo, hi))
    }

    fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.lower.iter().chain(&self.upper).map(|b| b.column)
    }
}

/// A side's rows with one join key, each with its event time (ms).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timed {
    rows: Vec<(i64, Vec<ScalarValue>)>,
}

impl StateValue for Timed {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let width = self.rows.first().map_or(0, |(_, r)| r.len());
        let mut fields = vec![
            ScalarValue::Int64(Some(self.rows.len() as i64)),
            ScalarValue::Int64(Some(width as i64)),
        ];
        for (t, row) in &self.rows {
            fields.push(ScalarValue::Int64(Some(*t)));
            fields.extend(row.iter().cloned());
        }
        codec::encode_row(&fields, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut it = codec::decode_row(bytes)?.into_iter();
        let n = int(&mut it, "the row count")?;
        let width = usize::try_from(int(&mut it, "the width")?).unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        for _ in 0..n {
            let t = match it.next() {
                Some(ScalarValue::Int64(Some(t))) => t,
                other => {
                    return Err(CodecError::Invalid(format!(
                        "interval join state: a time is {other:?}"
                    )))
                }
            };
            let row: Vec<ScalarValue> = it.by_ref().take(width).collect();
            if row.len() != width {
                return Err(CodecError::Invalid(
                    "interval join state: a row is cut short".into(),
                ));
            }
            rows.push((t, row));
        }
        if it.next().is_some() {
            return Err(CodecError::Invalid(
                "interval join state: trailing values".into(),
            ));
        }
        Ok(Timed { rows })
    }

    fn size(&self) -> usize {
        32 + self
            .rows
            .iter()
            .map(|(_, r)| 40 + r.iter().map(ScalarValue::size).sum::<usize>())
            .sum::<usize>()
    }
}

/// Bytes an index entry costs beyond its key (the tree's node share, the time).
const INDEX_OVERHEAD: usize = 48;

pub struct IntervalJoinOp {
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// Per side, its event-time column (BIGINT ms or TIMESTAMP), the one its watermark is on.
    time: [usize; 2],
    /// Per side, the bounds its rows put on the other side's time.
    bounds: [SideBounds; 2],
    filter: Option<Arc<dyn PhysicalExpr>>,
    widths: [usize; 2],
    /// `left ++ right` with every column nullable, the filter's input.
    joined: SchemaRef,
    schema: SchemaRef,
    watermarks: [Option<i64>; 2],
    state: KeyedState<Timed>,
    /// Per side, (upper bound of a held row, its state key): a row is freed once the other
    /// side's watermark passes its upper bound. Rows without one are not indexed.
    index: [BTreeSet<(i64, Vec<u8>)>; 2],
    index_bytes: usize,
}

impl IntervalJoinOp {
    /// Joins rows whose times lie within the bounds each puts on the other's (`bounds`,
    /// per side); `inputs` are the append-only left and right edges' schemas, `schema` the
    /// (append-only) output's.
    pub fn new(
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
        time: [usize; 2],
        bounds: [SideBounds; 2],
        filter: Option<Arc<dyn PhysicalExpr>>,
        inputs: [&SchemaRef; 2],
        schema: SchemaRef,
    ) -> Result<IntervalJoinOp, StreamError> {
        let widths = inputs.map(|s| s.fields().len());
        let timely = |side: usize, c: usize| {
            inputs[side]
                .fields()
                .get(c)
                .is_some_and(|f| matches!(f.data_type(), DataType::Int64 | DataType::Timestamp(..)))
        };
        let ok = (0..2).all(|s| timely(s, time[s]) && bounds[s].columns().all(|c| timely(s, c)));
        if schema.fields().len() != widths[0] + widths[1] || !ok || keys[0].len() != keys[1].len() {
            return Err(StreamError::Graph(format!(
                "interval join: inputs of {widths:?} columns, output of {}, times {time:?}, \
                 bounds {bounds:?} (each a BIGINT or TIMESTAMP column of its side)",
                schema.fields().len()
            )));
        }
        let joined = schema
            .fields()
            .iter()
            .map(|f| Arc::new(Field::new(f.name(), f.data_type().clone(), true)))
            .collect::<Vec<_>>();
        Ok(IntervalJoinOp {
            keys,
            time,
            bounds,
            filter,
            widths,
            joined: Arc::new(Schema::new(joined)),
            schema,
            watermarks: [None, None],
            state: KeyedState::default(),
            index: [BTreeSet::new(), BTreeSet::new()],
            index_bytes: 0,
        })
    }

    /// Rows held on both sides.
    pub fn rows_held(&self) -> usize {
        self.state.iter().map(|(_, t)| t.rows.len()).sum()
    }

    /// Whether a row of `side` whose bounds end at `hi` can still match a row of the other
    /// side: the other side's watermark has not passed it.
    fn alive(&self, side: usize, hi: i64) -> bool {
        self.watermarks[1 - side].is_none_or(|w| hi >= w)
    }

    fn index(&mut self, side: usize, hi: i64, key: &[u8]) {
        if hi == i64::MAX {
            return; // No upper bound: never freed by a watermark.
        }
        if let Some(index) = self.index.get_mut(side) {
            if index.insert((hi, key.to_vec())) {
                self.index_bytes += key.len() + INDEX_OVERHEAD;
            }
        }
    }

    /// Input `port`'s watermark moved to `w`: frees the other side's rows it outdates.
    pub fn watermark(&mut self, port: usize, w: i64) {
        let Some(slot) = self.watermarks.get_mut(port) else {
            return;
        };
        if slot.is_some_and(|old| old >= w) {
            return;
        }
        *slot = Some(w);
        let side = 1 - port;
        let mut due = Vec::new();
        if let Some(index) = self.index.get_mut(side) {
            while index.first().is_some_and(|(hi, _)| *hi < w) {
                if let Some((_, key)) = index.pop_first() {
                    self.index_bytes = self.index_bytes.saturating_sub(key.len() + INDEX_OVERHEAD);
                    due.push(key);
                }
            }
        }
        due.sort_unstable();
        due.dedup();
        let bounds = &self.bounds[side];
        for k in due {
            self.state.update(&k, |slot| {
                if let Some(v) = slot {
                    // A row whose bound is NULL was never kept.
                    v.rows
                        .retain(|(_, row)| bounds.range(row).is_some_and(|(_, hi)| hi >= w));
                    if v.rows.is_empty() {
                        *slot = None;
                    }
                }
            });
        }
    }

    /// Joins `batch` from input `port` (0 left, 1 right) with what the other side holds.
    pub fn process(
        &mut self,
        port: usize,
        batch: &RecordBatch,
    ) -> Result<Option<RecordBatch>, StreamError> {
        let (side, n) = (port.min(1), batch.num_rows());
        if n == 0 {
            return Ok(None);
        }
        let keys = self.keys[side]
            .iter()
            .map(|e| Ok(evaluate(e, batch)?.0))
            .collect::<Result<Vec<ArrayRef>, StreamError>>()?;
        let mut pairs: Vec<(Vec<ScalarValue>, Vec<ScalarValue>)> = Vec::new();
        for i in 0..n {
            if keys.iter().any(|k| k.is_null(i)) {
                continue; // NULL keys match nothing.
            }
            let row = batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, i))
                .collect::<Result<Vec<_>, _>>()?;
            // A NULL time or bound: the condition is not true for any row of the other side.
            let Some(t) = row.get(self.time[side]).and_then(ms_of) else {
                continue;
            };
            let Some((lo, hi)) = self.bounds[side].range(&row) else {
                continue;
            };
            let values = keys
                .iter()
                .map(|k| ScalarValue::try_from_array(k, i))
                .collect::<Result<Vec<_>, _>>()?;
            let mut key = vec![side as u8];
            codec::encode_row(&values, &mut key).map_err(StreamError::Codec)?;
            let mut other_key = key.clone();
            if let Some(b) = other_key.first_mut() {
                *b = 1 - *b;
            }
            if let Some(other) = self.state.get(&other_key) {
                for (_, o) in other.rows.iter().filter(|(ot, _)| (lo..=hi).contains(ot)) {
                    pairs.push(if side == 0 {
                        (row.clone(), o.clone())
                    } else {
                        (o.clone(), row.clone())
                    });
                }
            }
            if self.alive(side, hi) {
                self.state.update(&key, |slot| {
                    slot.get_or_insert_with(Timed::default).rows.push((t, row));
                });
                self.index(side, hi, &key);
            }
        }
        self.output(pairs)
    }

    fn output(
        &self,
        pairs: Vec<(Vec<ScalarValue>, Vec<ScalarValue>)>,
    ) -> Result<Option<RecordBatch>, StreamError> {
        if pairs.is_empty() {
            return Ok(None);
        }
        let count = pairs.len();
        let mut columns: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(count); self.widths[0] + self.widths[1]];
        for (l, r) in pairs {
            for (c, v) in columns.iter_mut().zip(l.into_iter().chain(r)) {
                c.push(v);
            }
        }
        let build = |schema: &SchemaRef, columns: Vec<Vec<ScalarValue>>| {
            let arrays = columns
                .into_iter()
                .zip(schema.fields())
                .map(|(v, f)| to_array(v, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(count));
            Ok::<_, StreamError>(RecordBatch::try_new_with_options(
                schema.clone(),
                arrays,
                &options,
            )?)
        };
        let Some(filter) = &self.filter else {
            return Ok(Some(build(&self.schema, columns)?));
        };
        let all = build(&self.joined, columns)?;
        let mask = evaluate(filter, &all)?.0;
        let mask = mask.as_boolean_opt().ok_or_else(|| {
            StreamError::Join(format!("the join condition {filter} is not BOOLEAN"))
        })?;
        let kept = arrow_select::filter::filter_record_batch(&all, mask)?;
        if kept.num_rows() == 0 {
            return Ok(None);
        }
        Ok(Some(RecordBatch::try_new(
            self.schema.clone(),
            kept.columns().to_vec(),
        )?))
    }
}

/// A time value in milliseconds (finer units rounded down: the planner widens the bounds by
/// a millisecond on each side and keeps the exact condition as the residual filter); `None`
/// for NULL or a type that is no time.
pub(crate) fn ms_of(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int64(t) | ScalarValue::TimestampMillisecond(t, _) => *t,
        ScalarValue::TimestampMicrosecond(t, _) => t.map(|t| t.div_euclid(1_000)),
        ScalarValue::TimestampNanosecond(t, _) => t.map(|t| t.div_euclid(1_000_000)),
        ScalarValue::TimestampSecond(t, _) => t.map(|t| t.saturating_mul(1_000)),
        _ => None,
    }
}

impl Stateful for IntervalJoinOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes() + self.index_bytes
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let side = key.first().map(|s| usize::from(*s));
        let width = side.and_then(|s| self.widths.get(s));
        let v = Timed::decode(value)?;
        let (Some(side), Some(_)) = (side, width) else {
            return Err(CodecError::Invalid(
                "interval join state of another layout".into(),
            ));
        };
        if v.rows.iter().any(|(_, r)| Some(&r.len()) != width) {
            return Err(CodecError::Invalid(
                "interval join state of another layout".into(),
            ));
        }
        let his: Vec<i64> = v
            .rows
            .iter()
            .filter_map(|(_, r)| self.bounds[side].range(r).map(|(_, hi)| hi))
            .collect();
        for hi in his {
            self.index(side, hi, key);
        }
        self.state.restore(key, value)
    }
}

#[cfg(test)]
#[path = "interval_join_tests.rs"]
mod tests;
