//! `IntervalJoin` (§6, joins): an inner equi-join of two append-only inputs with event times,
//! matching a left row `l` and a right row `r` when their keys are equal and
//! `l.t + lower <= r.t <= l.t + upper` (`r.t BETWEEN l.t - a AND l.t + b` gives `lower = -a`,
//! `upper = b`); append-only output `left ++ right`.
//!
//! Each side keeps its rows by join key with their event time, and the watermark of each
//! input frees the other side's rows that can match nothing more: no right row below the
//! right watermark `wr` will come (it would be late), so a left row is freed once
//! `l.t + upper < wr`, a right row once `r.t - lower < wl`. State is thus bounded by the rows
//! of `upper - lower` plus the watermark delays, not by the stream's length. A row that
//! arrives already past that point joins what is held and is not kept.
//!
//! State is one [`KeyedState`]: key = side byte ++ join key's codec row, value the side's
//! rows with their times; the watermarks themselves come back from the sources after a
//! restart.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;

use crate::error::StreamError;
use crate::ops::aggregate::to_array;
use crate::ops::join::int;
use crate::state::codec::{self, CodecError};
use crate::state::{Change, KeyedState, StateValue, Stateful};

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

pub struct IntervalJoinOp {
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// Per side, its event-time column (BIGINT ms or TIMESTAMP(ms)).
    time: [usize; 2],
    lower: i64,
    upper: i64,
    filter: Option<Arc<dyn PhysicalExpr>>,
    widths: [usize; 2],
    /// `left ++ right` with every column nullable, the filter's input.
    joined: SchemaRef,
    schema: SchemaRef,
    watermarks: [Option<i64>; 2],
    state: KeyedState<Timed>,
}

impl IntervalJoinOp {
    /// Joins where `l.t + lower <= r.t <= l.t + upper`; `inputs` are the append-only left
    /// and right edges' schemas, `schema` the (append-only) output's.
    pub fn new(
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
        time: [usize; 2],
        (lower, upper): (i64, i64),
        filter: Option<Arc<dyn PhysicalExpr>>,
        inputs: [&SchemaRef; 2],
        schema: SchemaRef,
    ) -> Result<IntervalJoinOp, StreamError> {
        let widths = inputs.map(|s| s.fields().len());
        if schema.fields().len() != widths[0] + widths[1]
            || lower > upper
            || time[0] >= widths[0]
            || time[1] >= widths[1]
            || keys[0].len() != keys[1].len()
        {
            return Err(StreamError::Graph(format!(
                "interval join: inputs of {widths:?} columns, output of {}, times {time:?}, \
                 bounds [{lower}, {upper}]",
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
            lower,
            upper,
            filter,
            widths,
            joined: Arc::new(Schema::new(joined)),
            schema,
            watermarks: [None, None],
            state: KeyedState::default(),
        })
    }

    /// Rows held on both sides.
    pub fn rows_held(&self) -> usize {
        self.state.iter().map(|(_, t)| t.rows.len()).sum()
    }

    /// The range of the other side's times a row of `side` at `t` matches.
    fn range(&self, side: usize, t: i64) -> (i64, i64) {
        if side == 0 {
            (t.saturating_add(self.lower), t.saturating_add(self.upper))
        } else {
            (t.saturating_sub(self.upper), t.saturating_sub(self.lower))
        }
    }

    /// Whether a row of `side` at `t` can still match a row of the other side: the other
    /// side's watermark has not passed the end of its range.
    fn alive(&self, side: usize, t: i64) -> bool {
        let (_, hi) = self.range(side, t);
        self.watermarks[1 - side].is_none_or(|w| hi >= w)
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
        let keys: Vec<Vec<u8>> = self
            .state
            .iter()
            .filter(|(k, v)| {
                k.first() == Some(&(side as u8))
                    && v.rows.iter().any(|(t, _)| !self.alive(side, *t))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let (lower, upper) = (self.lower, self.upper);
        for k in keys {
            self.state.update(&k, |slot| {
                if let Some(v) = slot {
                    v.rows.retain(|(t, _)| {
                        let hi = if side == 0 {
                            t.saturating_add(upper)
                        } else {
                            t.saturating_sub(lower)
                        };
                        hi >= w
                    });
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
            .map(|e| Ok(e.evaluate(batch)?.into_array(n)?))
            .collect::<Result<Vec<ArrayRef>, StreamError>>()?;
        let times = batch
            .columns()
            .get(self.time[side])
            .ok_or_else(|| StreamError::Graph("interval join: no time column".into()))?;
        let mut pairs: Vec<(Vec<ScalarValue>, Vec<ScalarValue>)> = Vec::new();
        for i in 0..n {
            let Some(t) = time_at(times, i)? else {
                continue; // A NULL time matches nothing.
            };
            if keys.iter().any(|k| k.is_null(i)) {
                continue;
            }
            let values = keys
                .iter()
                .map(|k| ScalarValue::try_from_array(k, i))
                .collect::<Result<Vec<_>, _>>()?;
            let mut key = vec![side as u8];
            codec::encode_row(&values, &mut key).map_err(StreamError::Codec)?;
            let row = batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, i))
                .collect::<Result<Vec<_>, _>>()?;
            let (lo, hi) = self.range(side, t);
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
            if self.alive(side, t) {
                self.state.update(&key, |slot| {
                    slot.get_or_insert_with(Timed::default).rows.push((t, row));
                });
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
        let mask = filter.evaluate(&all)?.into_array(count)?;
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

/// The event time of row `i` of `column` in milliseconds (finer units rounded down: the
/// planner widens the bounds by a millisecond on each side and keeps the exact condition
/// as the residual filter).
fn time_at(column: &ArrayRef, i: usize) -> Result<Option<i64>, StreamError> {
    use arrow_array::types::{
        Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    use arrow_schema::TimeUnit;
    if column.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().value(i),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            column.as_primitive::<TimestampMillisecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => column
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .div_euclid(1_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => column
            .as_primitive::<TimestampNanosecondType>()
            .value(i)
            .div_euclid(1_000_000),
        DataType::Timestamp(TimeUnit::Second, _) => column
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .saturating_mul(1_000),
        other => {
            return Err(StreamError::Graph(format!(
                "interval join: a time column of type {other}, not BIGINT or TIMESTAMP"
            )))
        }
    }))
}

impl Stateful for IntervalJoinOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let width = key.first().and_then(|s| self.widths.get(usize::from(*s)));
        let v = Timed::decode(value)?;
        if width.is_none() || v.rows.iter().any(|(_, r)| Some(&r.len()) != width) {
            return Err(CodecError::Invalid(
                "interval join state of another layout".into(),
            ));
        }
        self.state.restore(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use datafusion_physical_expr::expressions::col;

    fn side(p: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(format!("{p}k"), DataType::Utf8, true),
            Field::new(format!("{p}t"), DataType::Int64, true),
        ]))
    }

    fn op() -> IntervalJoinOp {
        let (l, r) = (side("l"), side("r"));
        let out = Arc::new(Schema::new(
            l.fields()
                .iter()
                .chain(r.fields().iter())
                .cloned()
                .collect::<Vec<_>>(),
        ));
        // r.t BETWEEN l.t - 2 AND l.t + 5
        IntervalJoinOp::new(
            [
                vec![col("lk", &l).expect("lk")],
                vec![col("rk", &r).expect("rk")],
            ],
            [1, 1],
            (-2, 5),
            None,
            [&l, &r],
            out,
        )
        .expect("op")
    }

    fn batch(p: &str, rows: &[(&str, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            side(p),
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
            ],
        )
        .expect("batch")
    }

    fn rows(b: Option<RecordBatch>) -> Vec<String> {
        let Some(b) = b else { return Vec::new() };
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
    fn rows_join_within_the_interval_only() {
        let mut j = op();
        j.process(0, &batch("l", &[("a", 10), ("b", 10)]))
            .expect("left");
        let out = j
            .process(
                1,
                &batch("r", &[("a", 7), ("a", 8), ("a", 15), ("a", 16), ("b", 12)]),
            )
            .expect("right");
        assert_eq!(rows(out), ["a,10,a,8", "a,10,a,15", "b,10,b,12"]);
        // And from the other side: right rows at 8, 15, 16 match a left row at 11..=13.
        let out = j.process(0, &batch("l", &[("a", 12)])).expect("left");
        assert_eq!(rows(out), ["a,12,a,15", "a,12,a,16"]);
    }

    #[test]
    fn watermarks_free_rows_that_can_match_nothing_more_so_state_stays_bounded() {
        let mut j = op();
        let mut peak = 0;
        for t in 0..1000 {
            j.process(0, &batch("l", &[("k", t)])).expect("left");
            j.process(1, &batch("r", &[("k", t)])).expect("right");
            // Both inputs' watermarks trail the times by 3 ms.
            j.watermark(0, t - 3);
            j.watermark(1, t - 3);
            peak = peak.max(j.rows_held());
        }
        // A left row lives until the right watermark passes t + 5, a right row until the
        // left one passes t + 2: at most 9 + 6 rows, whatever the stream's length.
        assert!(peak <= 15, "peak {peak}");
        let bytes = j.state_bytes();
        j.watermark(0, 2000);
        j.watermark(1, 2000);
        assert_eq!(j.rows_held(), 0);
        assert!(j.state_bytes() < bytes);
        // A row arriving past its range joins nothing and is not kept.
        assert!(j
            .process(0, &batch("l", &[("k", 10)]))
            .expect("late")
            .is_none());
        assert_eq!(j.rows_held(), 0);
    }

    #[test]
    fn checkpointed_rows_restore_and_join_alike() {
        let mut a = op();
        a.process(0, &batch("l", &[("a", 10), ("b", 3)]))
            .expect("left");
        let mut b = op();
        for (k, v) in a.take_changes().expect("changes") {
            b.restore(&k, &v.expect("value")).expect("restore");
        }
        assert_eq!(b.rows_held(), 2);
        let next = batch("r", &[("a", 12), ("b", 1)]);
        let (x, y) = (
            rows(a.process(1, &next).expect("a")),
            rows(b.process(1, &next).expect("b")),
        );
        assert_eq!(x, y);
        assert_eq!(x, ["a,10,a,12", "b,3,b,1"]);
        assert!(b.restore(&[5], &[]).is_err());
    }
}
