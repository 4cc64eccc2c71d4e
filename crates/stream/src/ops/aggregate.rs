//! `UpdatingAggregate` (§6): GROUP BY over an append-only or updating input, emitting an
//! updating edge keyed by the group columns. Per group it keeps the net row count and one
//! accumulator per aggregate ([`super::accumulators`]); a group whose count falls to zero
//! is retracted and freed. The groups changed in an epoch each emit, at its barrier, the
//! retraction of their old row and their new row, adjacent ([`super::fold`]); one back
//! where it was emits nothing.
//!
//! State is a [`KeyedState`] keyed by the group key's codec row, so a checkpoint writes the
//! groups changed in the epoch and a tombstone for each one freed. A group is also freed,
//! without output, when the watermark passes the end of the window its key holds (Nexmark
//! q5's maximum per window over a window aggregate's counts: no change reaches a closed
//! window) or, with an idle-state TTL, once it has not changed for that long
//! ([`crate::state::expiry`]); its pending change leaves first.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;

use super::eval::{drop_failed_keys, evaluate};
use crate::error::StreamError;
use crate::graph::AggSpec;
use crate::ops::accumulators::Acc;
use crate::ops::fold::{self, EpochFold};
use crate::state::codec::{self, CodecError};
use crate::state::expiry::Expiry;
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// One group's state: its net row count and its accumulators.
#[derive(Clone, Debug)]
pub struct Group {
    rows: i64,
    accs: Vec<Acc>,
}

impl StateValue for Group {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut fields = vec![ScalarValue::Int64(Some(self.rows))];
        for a in &self.accs {
            a.encode(&mut fields);
        }
        codec::encode_row(&fields, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let fields = codec::decode_row(bytes)?;
        let mut it = fields.iter();
        let rows = match it.next() {
            Some(ScalarValue::Int64(Some(n))) => *n,
            other => {
                return Err(CodecError::Invalid(format!(
                    "group state starts with {other:?}"
                )))
            }
        };
        let mut accs = Vec::new();
        while it.len() > 0 {
            accs.push(Acc::decode(&mut it)?);
        }
        Ok(Group { rows, accs })
    }

    fn size(&self) -> usize {
        64 + self
            .accs
            .iter()
            .map(|a| std::mem::size_of::<Acc>() + a.heap())
            .sum::<usize>()
    }
}

impl Group {
    /// An empty group of `aggs`; over an input that never retracts (`append_only`), `min`
    /// and `max` keep one value each instead of a multiset ([`Acc::append_only`]).
    pub(crate) fn new(aggs: &[AggSpec], append_only: bool) -> Group {
        let acc = |a: &AggSpec| {
            if append_only {
                Acc::append_only(a.kind, &a.output)
            } else {
                Acc::new(a.kind, &a.output)
            }
        };
        Group {
            rows: 0,
            accs: aggs.iter().map(acc).collect(),
        }
    }

    /// Folds row `row` of the evaluated arguments (see [`eval_inputs`]) in with `weight`
    /// (+1 insert, -1 retract).
    pub(crate) fn add_row(
        &mut self,
        row: usize,
        args: &[ArrayRef],
        filters: &[Option<BooleanArray>],
        weight: i64,
    ) -> Result<(), String> {
        self.rows += weight;
        for (i, acc) in self.accs.iter_mut().enumerate() {
            let passes = match filters.get(i).and_then(Option::as_ref) {
                // FILTER (WHERE p): only rows where p is true reach the aggregate.
                Some(f) => f.is_valid(row) && f.value(row),
                None => true,
            };
            if passes {
                let arg = args.get(i).ok_or("missing argument")?;
                let v = ScalarValue::try_from_array(arg, row).map_err(|e| e.to_string())?;
                acc.apply(v, weight)?;
            }
        }
        Ok(())
    }

    /// Folds in one row given as each aggregate's input (NULL where FILTER rejected it).
    pub(crate) fn add_values(
        &mut self,
        values: Vec<ScalarValue>,
        weight: i64,
    ) -> Result<(), String> {
        self.rows += weight;
        for (acc, v) in self.accs.iter_mut().zip(values) {
            acc.apply(v, weight)?;
        }
        Ok(())
    }

    /// Folds `other`, a group of the same aggregates over other rows, in
    /// ([`Acc::merge`]).
    pub(crate) fn merge(&mut self, other: &Group) -> Result<(), String> {
        if self.accs.len() != other.accs.len() {
            return Err("groups of different aggregate lists merged".into());
        }
        self.rows += other.rows;
        for (a, b) in self.accs.iter_mut().zip(&other.accs) {
            a.merge(b)?;
        }
        Ok(())
    }

    /// The aggregates' current values.
    pub(crate) fn values(&self, aggs: &[AggSpec]) -> Result<Vec<ScalarValue>, StreamError> {
        self.accs
            .iter()
            .zip(aggs)
            .map(|(a, spec)| a.value(&spec.output).map_err(StreamError::Aggregate))
            .collect()
    }

    /// Whether this state was written for `aggs` (restore refuses another list).
    pub(crate) fn fits(&self, aggs: &[AggSpec]) -> bool {
        self.accs.len() == aggs.len() && self.accs.iter().zip(aggs).all(|(a, s)| a.kind() == s.kind)
    }
}

/// Each aggregate's argument and `FILTER` mask evaluated over `batch`.
pub(crate) fn eval_inputs(
    aggs: &[AggSpec],
    batch: &RecordBatch,
) -> Result<(Vec<ArrayRef>, Vec<Option<BooleanArray>>), StreamError> {
    let eval =
        |e: &Arc<dyn PhysicalExpr>| -> Result<ArrayRef, StreamError> { Ok(evaluate(e, batch)?.0) };
    let args = aggs
        .iter()
        .map(|a| eval(&a.arg))
        .collect::<Result<Vec<_>, _>>()?;
    let filters = aggs
        .iter()
        .map(|a| {
            a.filter
                .as_ref()
                .map(|f| {
                    let mask = eval(f)?;
                    mask.as_boolean_opt().cloned().ok_or_else(|| {
                        StreamError::Aggregate(format!(
                            "FILTER (WHERE {f}) is {}, not BOOLEAN",
                            mask.data_type()
                        ))
                    })
                })
                .transpose()
        })
        .collect::<Result<Vec<Option<BooleanArray>>, _>>()?;
    Ok((args, filters))
}

pub struct UpdatingAggregateOp {
    group: Vec<Arc<dyn PhysicalExpr>>,
    aggs: Vec<AggSpec>,
    /// Group columns, aggregate columns, `_retract`.
    schema: SchemaRef,
    /// Whether the input carries `_retract` as its last column.
    input_updating: bool,
    state: KeyedState<Group>,
    expiry: Expiry,
    /// Groups changed since the last barrier.
    fold: EpochFold,
}

impl UpdatingAggregateOp {
    pub fn new(
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
        input_updating: bool,
    ) -> UpdatingAggregateOp {
        UpdatingAggregateOp {
            group,
            aggs,
            schema,
            input_updating,
            state: KeyedState::default(),
            expiry: Expiry::default(),
            fold: EpochFold::default(),
        }
    }

    /// Frees groups by a window bound among the group columns and/or an idle-state TTL.
    pub fn with_expiry(mut self, expiry: Expiry) -> UpdatingAggregateOp {
        self.expiry = expiry;
        self
    }

    /// The watermark reached `w` (ms): the pending changes of groups that may expire leave
    /// (those of closing windows; with a TTL, all), then the expired groups are freed
    /// without output.
    pub fn on_watermark(&mut self, w: i64) -> Result<Option<RecordBatch>, StreamError> {
        let mut out = None;
        if self.fold.len() > 0 && !self.expiry.is_none() {
            let now = w.saturating_mul(1_000);
            let (expiry, ttl) = (&self.expiry, self.expiry.has_ttl());
            let due = self
                .fold
                .flush_if(|p| ttl || expiry.key_deadline(&p.values).is_some_and(|at| at <= now));
            out = self.emit(due)?;
        }
        self.state.advance(&mut self.expiry, w);
        Ok(out)
    }

    /// A processing-time TTL's clock reached `now_ms`, just after a barrier (no change is
    /// pending): groups idle for the TTL are freed without output. How many were.
    pub fn expire_idle(&mut self, now_ms: i64) -> usize {
        if !self.expiry.has_ttl() {
            return 0;
        }
        debug_assert_eq!(
            self.fold.len(),
            0,
            "called between batches, after a barrier"
        );
        self.state.advance_clock(&mut self.expiry, now_ms)
    }

    /// The barrier: the changes of the groups changed since the last one.
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, StreamError> {
        let pending = self.fold.flush();
        self.emit(pending)
    }

    /// Groups held.
    pub fn groups(&self) -> usize {
        self.state.len()
    }

    fn output(&self, group: &Group) -> Result<Vec<ScalarValue>, StreamError> {
        group.values(&self.aggs)
    }

    /// Folds `batch` into the groups, recording those it changed for the next
    /// [`flush`](Self::flush).
    pub fn process(&mut self, batch: &RecordBatch) -> Result<(), StreamError> {
        let kept = drop_failed_keys(&self.group, batch)?;
        let batch = kept.as_ref().unwrap_or(batch);
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let eval = |e: &Arc<dyn PhysicalExpr>| -> Result<ArrayRef, StreamError> {
            Ok(evaluate(e, batch)?.0)
        };
        let keys = self.group.iter().map(eval).collect::<Result<Vec<_>, _>>()?;
        let (args, filters) = eval_inputs(&self.aggs, batch)?;
        let retract = if self.input_updating {
            let last = batch
                .num_columns()
                .checked_sub(1)
                .and_then(|i| batch.column(i).as_boolean_opt().cloned());
            Some(last.ok_or_else(|| {
                StreamError::Graph("an updating input without its _retract column".into())
            })?)
        } else {
            None
        };

        let mut key = Vec::new();
        for row in 0..n {
            key.clear();
            codec::encode_array_row(&keys, row, &mut key).map_err(StreamError::Codec)?;
            let (state, aggs) = (&self.state, &self.aggs);
            self.fold.touch_row(&key, &keys, row, || {
                state.get(&key).map(|g| g.values(aggs)).transpose()
            })?;
            let weight = match &retract {
                Some(r) if r.is_valid(row) && r.value(row) => -1,
                _ => 1,
            };
            let (aggs, append_only) = (&self.aggs, !self.input_updating);
            let lenient = self.expiry.has_ttl();
            let result = self.state.update(&key, |slot| -> Result<(), String> {
                if lenient && weight < 0 && slot.is_none() {
                    // A retraction of a row of a group that expired (TTL): ignored, as in
                    // Flink.
                    return Ok(());
                }
                let g = slot.get_or_insert_with(|| Group::new(aggs, append_only));
                let added = g.add_row(row, &args, &filters, weight);
                if lenient && (added.is_err() || g.rows < 0) {
                    // The group expired and came back: the retracted row is not in it. It
                    // cannot be trusted any more; it starts afresh with its next row.
                    *slot = None;
                    return Ok(());
                }
                added?;
                if g.rows < 0 {
                    return Err("a retraction of a row the aggregate never counted".into());
                }
                if g.rows == 0 {
                    // The group's last row is gone: free it (a tombstone at the checkpoint).
                    *slot = None;
                }
                Ok(())
            });
            result.map_err(StreamError::Aggregate)?;
        }
        Ok(())
    }

    /// The rows of `pending` groups' changes; each group still held gets its window's
    /// deadline.
    fn emit(&mut self, pending: Vec<fold::Pending>) -> Result<Option<RecordBatch>, StreamError> {
        if pending.is_empty() {
            return Ok(None);
        }
        for p in &pending {
            if let (true, Some(at)) = (
                self.state.get(&p.key).is_some(),
                self.expiry.key_deadline(&p.values),
            ) {
                self.state.set_deadline(&p.key, at);
            }
        }
        let rows = fold::changes(pending, |p| {
            self.state.get(&p.key).map(|g| self.output(g)).transpose()
        })?;
        rows_batch(&self.schema, rows)
    }
}

/// A batch of `schema` from rows of scalars; `None` for no rows.
pub(crate) fn rows_batch(
    schema: &SchemaRef,
    rows: Vec<Vec<ScalarValue>>,
) -> Result<Option<RecordBatch>, StreamError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns: Vec<Vec<ScalarValue>> =
        vec![Vec::with_capacity(rows.len()); schema.fields().len()];
    for r in rows {
        for (c, v) in columns.iter_mut().zip(r) {
            c.push(v);
        }
    }
    let arrays = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(values, field)| to_array(values, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(RecordBatch::try_new(schema.clone(), arrays)?))
}

/// A column of `t` from scalars (cast where DataFusion's scalar type differs, e.g. views).
pub(crate) fn to_array(values: Vec<ScalarValue>, t: &DataType) -> Result<ArrayRef, StreamError> {
    let values = values
        .into_iter()
        .map(|v| {
            if v.data_type() == *t {
                Ok(v)
            } else {
                v.cast_to(t)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ScalarValue::iter_to_array(values)?)
}

impl Stateful for UpdatingAggregateOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes() + self.fold.bytes()
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let g = Group::decode(value)?;
        if !g.fits(&self.aggs) {
            return Err(CodecError::Invalid(
                "group state of another aggregate list".into(),
            ));
        }
        if self.input_updating && g.accs.iter().any(|a| matches!(a, Acc::Best { .. })) {
            return Err(CodecError::Invalid(
                "group state of an append-only input, restored over an updating one".into(),
            ));
        }
        self.state.restore(key, value)?;
        if let Some(at) = self.expiry.key_deadline(&codec::decode_row(key)?) {
            self.state.set_deadline(key, at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use datafusion_expr::Operator;
    use datafusion_physical_expr::expressions::{col, lit, BinaryExpr};

    use crate::graph::{AggKind, RETRACT};
    use datafusion_common::HashMap;

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
            Field::new(RETRACT, DataType::Boolean, false),
        ]))
    }

    fn batch(rows: &[(Option<&str>, Option<i64>, bool)]) -> RecordBatch {
        RecordBatch::try_new(
            input(),
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| Some(r.2)).collect::<BooleanArray>()),
            ],
        )
        .expect("batch")
    }

    fn op() -> UpdatingAggregateOp {
        op_over(true)
    }

    /// `op()` over an updating input, or over an append-only one (whose `_retract` column
    /// the operator then ignores: the tests leave it false).
    fn op_over(updating: bool) -> UpdatingAggregateOp {
        let s = input();
        let v = col("v", &s).expect("v");
        let agg = |kind, output, filter| AggSpec {
            kind,
            arg: v.clone(),
            filter,
            output,
        };
        let positive: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(v.clone(), Operator::Gt, lit(0i64)));
        let out = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("count", DataType::Int64, false),
            Field::new("sum", DataType::Int64, true),
            Field::new("max", DataType::Int64, true),
            Field::new("pos", DataType::Int64, false),
            Field::new(RETRACT, DataType::Boolean, false),
        ]));
        UpdatingAggregateOp::new(
            vec![col("k", &s).expect("k")],
            vec![
                agg(AggKind::Count, DataType::Int64, None),
                agg(AggKind::Sum, DataType::Int64, None),
                agg(AggKind::Max, DataType::Int64, None),
                agg(AggKind::Count, DataType::Int64, Some(positive)),
            ],
            out,
            updating,
        )
    }

    /// A batch and its barrier: what the operator emits for it.
    fn step(
        a: &mut UpdatingAggregateOp,
        b: &RecordBatch,
    ) -> Result<Option<RecordBatch>, StreamError> {
        a.process(b)?;
        a.flush()
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
    fn groups_update_retract_and_disappear() {
        let mut a = op();
        let out = step(
            &mut a,
            &batch(&[
                (Some("x"), Some(5), false),
                (Some("x"), Some(-2), false),
                (None, None, false),
            ]),
        )
        .expect("process")
        .expect("rows");
        assert_eq!(rows(&out), ["x,2,3,5,1,false", ",0,,,0,false"]);
        // Retracting the maximum exposes the next; the NULL group disappears.
        let out = step(
            &mut a,
            &batch(&[(Some("x"), Some(5), true), (None, None, true)]),
        )
        .expect("process")
        .expect("rows");
        assert_eq!(
            rows(&out),
            ["x,2,3,5,1,true", "x,1,-2,-2,0,false", ",0,,,0,true"]
        );
        assert_eq!(a.groups(), 1, "the emptied group is freed");
        // A change that leaves the result as it was emits nothing.
        assert!(step(
            &mut a,
            &batch(&[(Some("x"), Some(7), false), (Some("x"), Some(7), true)])
        )
        .expect("process")
        .is_none());
        assert!(
            a.process(&batch(&[(Some("y"), Some(1), true)])).is_err(),
            "a retraction of a row never inserted"
        );
    }

    #[test]
    fn checkpointed_groups_restore_exactly() {
        let mut a = op();
        a.process(&batch(&[
            (Some("x"), Some(5), false),
            (Some("y"), Some(3), false),
            (Some("y"), Some(4), false),
        ]))
        .expect("process");
        a.flush().expect("barrier");
        let first = a.take_changes().expect("changes");
        assert_eq!(first.len(), 2);
        a.process(&batch(&[
            (Some("x"), Some(5), true),
            (Some("y"), Some(9), false),
        ]))
        .expect("process");
        a.flush().expect("barrier");
        let second = a.take_changes().expect("changes");
        // x was freed: a tombstone; y changed: its new state.
        assert_eq!(second.iter().filter(|(_, v)| v.is_none()).count(), 1);
        assert_eq!(second.len(), 2);
        let mut collapsed: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::default();
        for (k, v) in first.into_iter().chain(second) {
            collapsed.insert(k, v);
        }
        let mut b = op();
        for (k, v) in &collapsed {
            if let Some(v) = v {
                b.restore(k, v).expect("restore");
            }
        }
        assert_eq!(b.groups(), 1);
        assert_eq!(b.state_bytes(), a.state_bytes());
        // Both continue alike: the max of y retracted exposes 4 in both.
        let next = batch(&[(Some("y"), Some(9), true)]);
        let (ra, rb) = (
            step(&mut a, &next).expect("a").expect("rows"),
            step(&mut b, &next).expect("b").expect("rows"),
        );
        assert_eq!(rows(&ra), rows(&rb));
        assert_eq!(rows(&ra), ["y,3,16,9,3,true", "y,2,7,4,2,false"]);
    }

    #[test]
    fn over_an_append_only_input_max_keeps_one_value_and_restores_exactly() {
        let (mut multiset, mut best) = (op_over(true), op_over(false));
        let rows_in: Vec<(Option<&str>, Option<i64>, bool)> = (0..200)
            .map(|i| {
                (
                    Some(if i % 2 == 0 { "x" } else { "y" }),
                    Some((i * 37) % 101),
                    false,
                )
            })
            .collect();
        for chunk in rows_in.chunks(30) {
            let b = batch(chunk);
            let (m, o) = (
                step(&mut multiset, &b).expect("multiset"),
                step(&mut best, &b).expect("best"),
            );
            assert_eq!(m.map(|b| rows(&b)), o.map(|b| rows(&b)), "same output");
        }
        println!(
            "state bytes: multiset {}, one value {}",
            multiset.state_bytes(),
            best.state_bytes()
        );
        assert!(best.state_bytes() * 4 < multiset.state_bytes());
        let mut back = op_over(false);
        for (k, v) in best.take_changes().expect("changes") {
            let v = v.expect("value");
            back.restore(&k, &v).expect("restore");
            assert!(
                op_over(true).restore(&k, &v).is_err(),
                "one value cannot serve an input that retracts"
            );
        }
        assert_eq!(back.state_bytes(), best.state_bytes());
        let next = batch(&[
            (Some("x"), Some(1_000), false),
            (Some("y"), Some(-5), false),
        ]);
        let (a, b) = (
            step(&mut best, &next).expect("a").expect("rows"),
            step(&mut back, &next).expect("b").expect("rows"),
        );
        assert_eq!(rows(&a), rows(&b));
        assert!(
            step(&mut best, &batch(&[(Some("x"), Some(1), false)]))
                .expect("a smaller value")
                .is_some_and(|b| rows(&b).iter().any(|r| r.contains(",1000,"))),
            "the maximum stays 1000"
        );
    }

    #[test]
    fn with_a_ttl_idle_groups_expire_without_output() {
        // TTL 16 ms of event time: a grain of 1 ms.
        let mut a = op().with_expiry(Expiry::new(None, Some(16)));
        a.process(&batch(&[(Some("x"), Some(5), false)]))
            .expect("x");
        // x gets its deadline at the first watermark: 0 + 1 + 16 ms. With a TTL, pending
        // changes leave at every watermark.
        let out = a.on_watermark(0).expect("wm").expect("x's row");
        assert_eq!(rows(&out), ["x,1,5,5,1,false"]);
        a.process(&batch(&[(Some("y"), Some(1), false)]))
            .expect("y");
        a.on_watermark(10).expect("wm");
        a.process(&batch(&[(Some("y"), Some(2), false)]))
            .expect("y again"); // 10 + 1 + 16
        a.take_changes().expect("changes");
        assert_eq!(a.groups(), 2);
        let out = a.on_watermark(17).expect("wm").expect("y's pending change");
        assert_eq!(rows(&out), ["y,1,1,1,1,true", "y,2,3,2,2,false"]);
        assert_eq!(a.groups(), 1, "x expired, y was written at 10");
        let changes = a.take_changes().expect("changes");
        assert_eq!(changes.len(), 1);
        assert!(changes[0].1.is_none(), "a tombstone for x");
        // A retraction of x's expired row is ignored; a new x starts afresh.
        assert!(step(&mut a, &batch(&[(Some("x"), Some(5), true)]))
            .expect("ignored")
            .is_none());
        let out = step(&mut a, &batch(&[(Some("x"), Some(3), false)]))
            .expect("x")
            .expect("rows");
        assert_eq!(rows(&out), ["x,1,3,3,1,false"]);
    }

    #[test]
    fn a_group_holding_a_window_bound_is_freed_when_the_window_closes() {
        use arrow_array::TimestampMicrosecondArray;
        let s = Arc::new(Schema::new(vec![Field::new(
            "ws",
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None),
            true,
        )]));
        let out = Arc::new(Schema::new(vec![
            s.field(0).clone(),
            Field::new("n", DataType::Int64, false),
            Field::new(RETRACT, DataType::Boolean, false),
        ]));
        let ws = col("ws", &s).expect("ws");
        let expiry = Expiry::new(
            Some(crate::state::expiry::KeyExpiry {
                column: 0,
                end_offset_us: 10_000_000, // window_start + 10 s
            }),
            None,
        );
        let make = || {
            let count = AggSpec {
                kind: AggKind::Count,
                arg: ws.clone(),
                filter: None,
                output: DataType::Int64,
            };
            UpdatingAggregateOp::new(vec![ws.clone()], vec![count], out.clone(), false)
                .with_expiry(expiry)
        };
        let windows = |starts: &[i64]| {
            let a: TimestampMicrosecondArray = starts.iter().map(|s| Some(s * 1_000_000)).collect();
            RecordBatch::try_new(s.clone(), vec![Arc::new(a)]).expect("batch")
        };
        let mut a = make();
        a.process(&windows(&[0, 0, 10])).expect("rows");
        let mut b = make();
        for (k, v) in a.take_changes().expect("changes") {
            b.restore(&k, &v.expect("value")).expect("restore");
        }
        // a's changes are pending (no barrier yet): each window's leaves as it closes,
        // before its group is freed; b restored a checkpoint and has none.
        for (op, pending) in [(&mut a, true), (&mut b, false)] {
            assert!(op.on_watermark(9_999).expect("wm").is_none());
            assert_eq!(op.groups(), 2);
            let out = op.on_watermark(10_000).expect("wm");
            assert_eq!(
                out.map(|o| rows(&o)),
                pending.then(|| vec!["1970-01-01T00:00:00,2,false".to_string()]),
                "[0 s, 10 s) closed"
            );
            assert_eq!(op.groups(), 1);
            let out = op.on_watermark(20_000).expect("wm");
            assert_eq!(out.is_some(), pending);
            assert_eq!(op.groups(), 0);
            assert!(op.flush().expect("barrier").is_none(), "nothing left");
        }
    }

    #[test]
    fn an_epoch_emits_each_changed_groups_net_change_once() {
        let mut a = op();
        let out = step(&mut a, &batch(&[(Some("x"), Some(5), false)]))
            .expect("first epoch")
            .expect("rows");
        assert_eq!(rows(&out), ["x,1,5,5,1,false"]);
        // Three batches, then the barrier: one retraction and one row for x; y came and went.
        for b in [
            batch(&[(Some("x"), Some(1), false), (Some("y"), Some(2), false)]),
            batch(&[(Some("x"), Some(2), false)]),
            batch(&[(Some("x"), Some(5), true), (Some("y"), Some(2), true)]),
        ] {
            a.process(&b).expect("process");
        }
        assert!(a.state_bytes() > 0);
        let out = a.flush().expect("barrier").expect("rows");
        assert_eq!(rows(&out), ["x,1,5,5,1,true", "x,2,3,2,2,false"]);
        assert!(a.flush().expect("again").is_none());
    }
}
