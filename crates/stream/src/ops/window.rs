//! `WindowAggregate` (§6, windows): GROUP BY over an append-only input where one group
//! column is a window bound (`window_start` or `window_end` of TUMBLE or HOP), so every group
//! belongs to one window whose end is known. Rows fold into per-group accumulators as in
//! [`super::aggregate`]; the watermark frees windows:
//!
//! - **updating** (the default): the groups changed in an epoch emit, at its barrier, the
//!   retraction of their old row and their new row ([`super::fold`]), keyed by the group
//!   columns, like an updating aggregate; when the watermark passes a window's end its
//!   groups' pending changes leave and the groups are freed (their last rows stay in the
//!   view).
//! - **emit on window close**: nothing is emitted while a window is open; when the watermark
//!   passes its end each group emits its one final row (append-only output) and is freed.
//!
//! Either way the state holds only open windows: (watermark delay + window size) × rate. A
//! row whose window already closed (possible only for rows the source did not drop as late,
//! e.g. a NULL event time) is dropped and counted.
//!
//! State is a [`KeyedState`] keyed by the window's end (8 bytes, order-preserving) followed
//! by the group key's codec row, so a checkpoint writes changed groups and a tombstone per
//! freed one, and a restore rebuilds the index of windows by end from the keys alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;

use super::eval::{drop_failed_keys, evaluate};
use crate::error::StreamError;
use crate::graph::{AggSpec, WindowSpec};
use crate::ops::aggregate::{eval_inputs, rows_batch, Group};
use crate::ops::fold::{self, EpochFold};
use crate::state::codec::{self, CodecError};
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// Bytes the end index costs per group, for the memory budget.
const INDEX_OVERHEAD: usize = 48;

pub struct WindowAggregateOp {
    group: Vec<Arc<dyn PhysicalExpr>>,
    aggs: Vec<AggSpec>,
    window: WindowSpec,
    /// Group columns, aggregate columns, then `_retract` unless emitting on close.
    schema: SchemaRef,
    state: KeyedState<Group>,
    /// Open windows by end (microseconds): their groups' state keys.
    ends: BTreeMap<i64, Vec<Vec<u8>>>,
    /// The last watermark seen, in microseconds.
    watermark_us: Option<i64>,
    /// Rows dropped because their window had closed or had no end (NULL event time).
    dropped: u64,
    /// Groups changed since the last barrier (updating output only).
    fold: EpochFold,
}

/// A timestamp (any unit) or integer value as microseconds.
pub fn micros(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(ms), _) => ms.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(*us),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns.div_euclid(1_000)),
        _ => None,
    }
}

/// Each row's value of a timestamp column as microseconds, as [`micros`] reads one value
/// (NULL, or a column of another type: `None`), without a scalar per row.
pub(crate) fn micros_column(column: &dyn Array) -> Vec<Option<i64>> {
    fn each<T: arrow_array::ArrowPrimitiveType<Native = i64>>(
        column: &dyn Array,
        f: impl Fn(i64) -> Option<i64>,
    ) -> Vec<Option<i64>> {
        let a = column.as_primitive::<T>();
        (0..a.len())
            .map(|i| if a.is_valid(i) { f(a.value(i)) } else { None })
            .collect()
    }
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            each::<TimestampSecondType>(column, |s| s.checked_mul(1_000_000))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            each::<TimestampMillisecondType>(column, |ms| ms.checked_mul(1_000))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            each::<TimestampMicrosecondType>(column, Some)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            each::<TimestampNanosecondType>(column, |ns| Some(ns.div_euclid(1_000)))
        }
        _ => vec![None; column.len()],
    }
}

/// An order-preserving encoding of `end` (the sign bit flipped, big-endian).
pub(crate) fn end_prefix(end: i64) -> [u8; 8] {
    ((end as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn end_of(key: &[u8]) -> Result<i64, CodecError> {
    let b: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(CodecError::Truncated)?;
    Ok((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// A batch evaluated for a window (or pane) aggregate: its group columns, its aggregates'
/// inputs and each row's window end (the end column plus the offset, in microseconds).
pub(crate) struct WindowBatch {
    keys: Vec<ArrayRef>,
    args: Vec<ArrayRef>,
    filters: Vec<Option<BooleanArray>>,
    ends: Vec<Option<i64>>,
}

impl WindowBatch {
    pub(crate) fn evaluate(
        batch: &RecordBatch,
        group: &[Arc<dyn PhysicalExpr>],
        aggs: &[AggSpec],
        window: &WindowSpec,
    ) -> Result<WindowBatch, StreamError> {
        let n = batch.num_rows();
        let keys = group
            .iter()
            .map(|e| Ok(evaluate(e, batch)?.0))
            .collect::<Result<Vec<ArrayRef>, StreamError>>()?;
        let (args, filters) = eval_inputs(aggs, batch)?;
        let ends = match keys.get(window.end_column) {
            Some(k) => micros_column(k.as_ref())
                .into_iter()
                .map(|e| e.and_then(|v| v.checked_add(window.end_offset_us)))
                .collect(),
            None => vec![None; n],
        };
        Ok(WindowBatch {
            keys,
            args,
            filters,
            ends,
        })
    }

    /// The group columns.
    pub(crate) fn keys(&self) -> &[ArrayRef] {
        &self.keys
    }

    /// Each row and its window's end, when it has one that `watermark` has not closed;
    /// `None` for a row to drop.
    pub(crate) fn open_rows(
        &self,
        watermark: Option<i64>,
    ) -> impl Iterator<Item = (usize, Option<i64>)> + '_ {
        self.ends
            .iter()
            .map(move |e| e.filter(|e| watermark.is_none_or(|w| *e > w)))
            .enumerate()
    }

    /// Writes row `row`'s group key in the window ending at `end` into `key`: the end,
    /// order-preserving, then the group columns.
    pub(crate) fn key(&self, key: &mut Vec<u8>, row: usize, end: i64) -> Result<(), StreamError> {
        key.clear();
        key.extend_from_slice(&end_prefix(end));
        codec::encode_array_row(&self.keys, row, key).map_err(StreamError::Codec)
    }

    /// Row `row`'s aggregate inputs, for [`fold_row`].
    pub(crate) fn input(&self, row: usize) -> (usize, &[ArrayRef], &[Option<BooleanArray>]) {
        (row, &self.args, &self.filters)
    }
}

/// Folds row `row` of the evaluated aggregate inputs `(row, args, filters)` into the group at
/// `key` (its window ends at `end`), creating it, and indexing it by `end`, if new: the step
/// the window and pane aggregates share.
pub(crate) fn fold_row(
    state: &mut KeyedState<Group>,
    ends: &mut BTreeMap<i64, Vec<Vec<u8>>>,
    aggs: &[AggSpec],
    key: &[u8],
    end: i64,
    (row, args, filters): (usize, &[ArrayRef], &[Option<BooleanArray>]),
) -> Result<(), StreamError> {
    let created = state
        .update(key, |slot| {
            let created = slot.is_none();
            slot.get_or_insert_with(|| Group::new(aggs, true))
                .add_row(row, args, filters, 1)
                .map(|()| created)
        })
        .map_err(StreamError::Aggregate)?;
    if created {
        ends.entry(end).or_default().push(key.to_vec());
    }
    Ok(())
}

/// Restores the group at `key` (end prefix, group row) written for `aggs`, indexed by end.
pub(crate) fn restore_group(
    state: &mut KeyedState<Group>,
    ends: &mut BTreeMap<i64, Vec<Vec<u8>>>,
    aggs: &[AggSpec],
    key: &[u8],
    value: &[u8],
) -> Result<(), CodecError> {
    let end = end_of(key)?;
    let g = Group::decode(value)?;
    if !g.fits(aggs) {
        return Err(CodecError::Invalid(
            "window state of another aggregate list".into(),
        ));
    }
    if state.get(key).is_none() {
        ends.entry(end).or_default().push(key.to_vec());
    }
    state.restore(key, value)
}

impl WindowAggregateOp {
    pub fn new(
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        window: WindowSpec,
        schema: SchemaRef,
    ) -> WindowAggregateOp {
        WindowAggregateOp {
            group,
            aggs,
            window,
            schema,
            state: KeyedState::default(),
            ends: BTreeMap::new(),
            watermark_us: None,
            dropped: 0,
            fold: EpochFold::default(),
        }
    }

    /// Groups held (of open windows).
    pub fn groups(&self) -> usize {
        self.state.len()
    }

    /// Open windows.
    pub fn windows(&self) -> usize {
        self.ends.len()
    }

    /// Rows dropped because their window was closed (or had no end) when they arrived.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Folds `batch` in; with updating output, records the groups it changed for the next
    /// [`flush`](Self::flush).
    pub fn process(&mut self, batch: &RecordBatch) -> Result<(), StreamError> {
        let kept = drop_failed_keys(&self.group, batch)?;
        let batch = kept.as_ref().unwrap_or(batch);
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let b = WindowBatch::evaluate(batch, &self.group, &self.aggs, &self.window)?;
        let emit_changes = !self.window.emit_on_close;
        let mut key = Vec::new();
        for (row, end) in b.open_rows(self.watermark_us) {
            let Some(end) = end else {
                self.dropped += 1;
                continue;
            };
            b.key(&mut key, row, end)?;
            if emit_changes {
                let (state, aggs) = (&self.state, &self.aggs);
                self.fold.touch_row(&key, b.keys(), row, || {
                    state.get(&key).map(|g| g.values(aggs)).transpose()
                })?;
            }
            let input = b.input(row);
            fold_row(
                &mut self.state,
                &mut self.ends,
                &self.aggs,
                &key,
                end,
                input,
            )?;
        }
        Ok(())
    }

    /// The barrier: the changes of the groups changed since the last one (updating output).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, StreamError> {
        let pending = self.fold.flush();
        let rows = self.change_rows(pending)?;
        self.batch(rows)
    }

    fn change_rows(
        &self,
        pending: Vec<fold::Pending>,
    ) -> Result<Vec<Vec<ScalarValue>>, StreamError> {
        fold::changes(pending, |p| {
            self.state
                .get(&p.key)
                .map(|g| g.values(&self.aggs))
                .transpose()
        })
    }

    /// The watermark reached `watermark_ms`: windows ending at or before it close. Updating,
    /// their groups' pending changes; emitting on close, their final rows.
    pub fn on_watermark(&mut self, watermark_ms: i64) -> Result<Option<RecordBatch>, StreamError> {
        let w = watermark_ms.saturating_mul(1_000);
        if self.watermark_us.is_some_and(|old| old >= w) {
            return Ok(None);
        }
        self.watermark_us = Some(w);
        let open = self.ends.split_off(&w.saturating_add(1));
        let closed = std::mem::replace(&mut self.ends, open);
        // Updating: the closing windows' last changes leave before their groups are freed.
        let due: Vec<fold::Pending> = closed
            .values()
            .flatten()
            .filter_map(|key| self.fold.take(key))
            .collect();
        let mut rows = self.change_rows(due)?;
        for (_, keys) in closed {
            for key in keys {
                let Some(group) = self.state.remove(&key) else {
                    continue;
                };
                if self.window.emit_on_close {
                    let values = codec::decode_row(key.get(8..).unwrap_or_default())
                        .map_err(StreamError::Codec)?;
                    rows.push(
                        values
                            .into_iter()
                            .chain(group.values(&self.aggs)?)
                            .collect(),
                    );
                }
            }
        }
        self.batch(rows)
    }

    fn batch(&self, rows: Vec<Vec<ScalarValue>>) -> Result<Option<RecordBatch>, StreamError> {
        rows_batch(&self.schema, rows)
    }
}

impl Stateful for WindowAggregateOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes() + self.state.len() * INDEX_OVERHEAD + self.fold.bytes()
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        restore_group(&mut self.state, &mut self.ends, &self.aggs, key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use datafusion_physical_expr::expressions::col;

    use crate::graph::{AggKind, RETRACT};

    const MIN: i64 = 60_000_000;

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
            Field::new(
                "window_start",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
        ]))
    }

    /// Rows (key, value, window start in minutes).
    fn batch(rows: &[(&str, i64, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            input(),
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.2 * MIN))
                        .collect::<TimestampMicrosecondArray>(),
                ),
            ],
        )
        .expect("batch")
    }

    fn op(emit_on_close: bool) -> WindowAggregateOp {
        let s = input();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let mut fields = vec![
            Field::new("window_start", ts, true),
            Field::new("k", DataType::Utf8, true),
            Field::new("total", DataType::Int64, true),
        ];
        if !emit_on_close {
            fields.push(Field::new(RETRACT, DataType::Boolean, false));
        }
        WindowAggregateOp::new(
            vec![
                col("window_start", &s).expect("ws"),
                col("k", &s).expect("k"),
            ],
            vec![AggSpec {
                kind: AggKind::Sum,
                arg: col("v", &s).expect("v"),
                filter: None,
                output: DataType::Int64,
            }],
            WindowSpec {
                end_column: 0,
                end_offset_us: MIN,
                emit_on_close,
                hop: None,
            },
            Arc::new(Schema::new(fields)),
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
    fn emit_on_close_emits_each_window_once_when_the_watermark_passes_its_end() {
        let mut w = op(true);
        w.process(&batch(&[("a", 1, 0), ("a", 2, 0), ("b", 5, 1)]))
            .expect("process");
        assert!(
            w.flush().expect("barrier").is_none(),
            "nothing before close"
        );
        assert_eq!(w.windows(), 2);
        // 59 s: the first minute's window [0, 1 min) is still open.
        assert!(w.on_watermark(59_000).expect("wm").is_none());
        let out = w.on_watermark(60_000).expect("wm").expect("closed");
        assert_eq!(rows(&out), ["1970-01-01T00:00:00,a,3"]);
        assert_eq!(
            (w.windows(), w.groups()),
            (1, 1),
            "the closed window is freed"
        );
        // A row for the closed window is dropped and counted; the open one takes rows.
        w.process(&batch(&[("a", 7, 0), ("b", 1, 1)]))
            .expect("process");
        assert_eq!(w.dropped(), 1);
        let out = w.on_watermark(10 * 60_000).expect("wm").expect("closed");
        assert_eq!(rows(&out), ["1970-01-01T00:01:00,b,6"]);
        assert_eq!((w.windows(), w.groups(), w.state_bytes()), (0, 0, 0));
    }

    #[test]
    fn updating_output_retracts_and_state_stays_bounded_over_many_windows() {
        let mut w = op(false);
        w.process(&batch(&[("a", 1, 0), ("a", 2, 0)]))
            .expect("process");
        let out = w.flush().expect("barrier").expect("rows");
        assert_eq!(rows(&out), ["1970-01-01T00:00:00,a,3,false"]);
        // Two batches in one epoch: one net change.
        w.process(&batch(&[("a", 3, 0)])).expect("process");
        w.process(&batch(&[("a", 1, 0)])).expect("process");
        let out = w.flush().expect("barrier").expect("rows");
        assert_eq!(
            rows(&out),
            [
                "1970-01-01T00:00:00,a,3,true",
                "1970-01-01T00:00:00,a,7,false"
            ]
        );
        // A thousand minutes of input, the watermark one minute behind: at most two
        // windows are ever held, and the bytes stay at the first windows' size.
        let mut peak = 0;
        for minute in 1..1000 {
            w.process(&batch(&[("a", 1, minute), ("b", 2, minute)]))
                .expect("process");
            // The previous minute's window closes: its groups' pending rows leave first.
            let out = w.on_watermark(minute * 60_000).expect("wm");
            let closing = out.map(|o| rows(&o)).unwrap_or_default();
            let prev = if (minute - 1) % 100 == 0 { 0 } else { 2 };
            assert_eq!(closing.len(), prev, "minute {minute}: {closing:?}");
            if minute % 100 == 0 {
                assert_eq!(w.flush().expect("barrier").map(|o| o.num_rows()), Some(2));
            }
            assert!(
                w.windows() <= 2,
                "{} windows at minute {minute}",
                w.windows()
            );
            peak = peak.max(w.state_bytes());
        }
        assert_eq!(w.windows(), 1);
        assert!(
            peak <= 4 * w.state_bytes(),
            "peak {peak}, now {}",
            w.state_bytes()
        );
    }

    #[test]
    fn restored_state_closes_like_the_original() {
        let mut a = op(true);
        a.process(&batch(&[("a", 1, 0), ("b", 2, 1), ("b", 3, 2)]))
            .expect("process");
        a.on_watermark(60_000).expect("wm");
        let mut b = op(true);
        let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (k, v) in a.take_changes().expect("changes") {
            last.insert(k, v);
        }
        for (k, v) in &last {
            if let Some(v) = v {
                b.restore(k, v).expect("restore");
            }
        }
        assert_eq!((b.windows(), b.groups()), (2, 2));
        assert_eq!(b.state_bytes(), a.state_bytes());
        let (ra, rb) = (
            a.on_watermark(3 * 60_000).expect("a").expect("rows"),
            b.on_watermark(3 * 60_000).expect("b").expect("rows"),
        );
        assert_eq!(rows(&ra), rows(&rb));
        assert_eq!(
            rows(&ra),
            ["1970-01-01T00:01:00,b,2", "1970-01-01T00:02:00,b,3"]
        );
        assert!(b.restore(b"short", b"x").is_err());
    }
}
