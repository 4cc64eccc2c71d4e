//! `Join` (§6, joins): a symmetric hash equi-join (inner, left, right, full, and the semi and
//! anti joins DataFusion decorrelates `IN`/`EXISTS` into) of two inputs, each append-only or
//! updating. A batch from one side is joined against the other side's
//! state, then folded into its own side's state:
//!
//! - each side keeps `join key -> bucket` of its distinct rows, each with its multiplicity and
//!   its **degree** (how many rows of the other side it matches, residual filter included;
//!   RisingWave's name), so an outer join emits a NULL-padded row while the degree is 0 and
//!   retracts it when the degree leaves 0;
//! - a change of weight `w` (+1 insert, -1 retract) emits the joined rows with weight `w`:
//!   `l XOR r` in the changelog; rows with a NULL in their join key match nothing (SQL's `=`)
//!   and are not kept, an outer side passes them through NULL-padded;
//! - order within a change: for an insertion, padded rows it replaces are retracted before the
//!   joined rows are inserted; for a retraction, joined rows are retracted before the padded
//!   rows come back. An upsert view or sink collapsing by key then keeps the live row.
//! - a semi (anti) join emits a kept-side row, alone, while its degree is above 0 (is 0): the
//!   kept side tracks degrees as an outer join's preserved side does, and a change of the
//!   other side emits or retracts the kept rows whose degree it moves across 0. Its output
//!   is append-only only for a semi join of append-only inputs (a match never goes).
//!
//! The residual (non-equi) filter is a DataFusion `PhysicalExpr` over `left ++ right`,
//! evaluated once per input batch over all candidate pairs.
//!
//! State is one [`KeyedState`]: key = side byte (0 left, 1 right) ++ the join key's codec row,
//! value = the bucket, so a checkpoint writes the buckets changed in the epoch and a tombstone
//! for each emptied one. Live rows stay, bounded by the pipeline's memory budget, unless both
//! inputs are windowed on a join key ([`JoinExpiry`], Nexmark q5 and q8): a window's rows
//! then stop changing once the watermark (the minimum of both inputs') passes its end, so
//! its buckets are freed then, without output (what was emitted stays). An inner join
//! whose residual bounds each side's time by the other's row (Nexmark q7) frees each row
//! once the watermark shows nothing can match or retract it any more ([`JoinTimeBounds`],
//! `bounds`: the argument why that is exact).
//!
//! Here: the operator, its configuration and how a batch becomes changes and matches;
//! `bucket`: a side's state per join key and its codec; `emit`: how a change moves the
//! state and what it outputs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;

use super::eval::evaluate;
use crate::error::StreamError;
use crate::graph::RETRACT;
use crate::ops::aggregate::to_array;
use crate::ops::interval_join::ms_of;
use crate::state::codec::{self, CodecError};
use crate::state::expiry::Expiry;
use crate::state::{Change, KeyedState, StateValue, Stateful};

mod bounds;
mod bucket;
mod emit;

use bounds::Deadlines;
pub use bounds::JoinTimeBounds;

pub(crate) use bucket::int;
use bucket::other_key;
pub use bucket::Bucket;
use emit::Output;

/// Which rows without a match an equi-join keeps (NULL-padded); semi and anti joins output
/// one side's rows alone, while they have a match (semi) or none (anti).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    LeftSemi,
    RightSemi,
    LeftAnti,
    RightAnti,
}

impl JoinKind {
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
            JoinKind::LeftSemi => "LEFT SEMI",
            JoinKind::RightSemi => "RIGHT SEMI",
            JoinKind::LeftAnti => "LEFT ANTI",
            JoinKind::RightAnti => "RIGHT ANTI",
        }
    }

    /// A semi or anti join's output side (0 left, 1 right), whose rows alone it emits.
    pub fn only(self) -> Option<usize> {
        match self {
            JoinKind::LeftSemi | JoinKind::LeftAnti => Some(0),
            JoinKind::RightSemi | JoinKind::RightAnti => Some(1),
            _ => None,
        }
    }

    /// An anti join: a row is emitted while nothing matches it.
    pub fn anti(self) -> bool {
        matches!(self, JoinKind::LeftAnti | JoinKind::RightAnti)
    }

    /// Whether rows of `side` (0 left, 1 right) without a match are emitted NULL-padded.
    pub fn preserves(self, side: usize) -> bool {
        matches!(
            (self, side),
            (JoinKind::Left, 0) | (JoinKind::Right, 1) | (JoinKind::Full, _)
        )
    }
}

/// Frees a windowed join's state (§6, joins): both inputs are windowed aggregates joined on
/// a window bound, so rows of a window change no more once the watermark passes its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinExpiry {
    /// Per side, the column holding the window bound (a timestamp, a join key).
    pub columns: [usize; 2],
    /// Added to the bound (µs) gives the end of the later of the two sides' windows.
    pub end_offset_us: i64,
}

/// A row of an input batch, ready to join. It is packed straight from the batch's arrays;
/// its `ScalarValue`s are decoded only when it is emitted or filtered (most rows of a join
/// like Nexmark q20's are folded into their bucket and never emitted).
struct RowChange {
    /// The state key (side ++ join key); `None` when the join key holds a NULL.
    key: Option<Vec<u8>>,
    /// The row's values: always for a NULL key (never packed), else on first use ([`RowChange::row`]).
    row: Option<Vec<ScalarValue>>,
    /// The row packed as its bucket holds it (empty when `key` is `None`: never held).
    packed: Box<[u8]>,
    weight: i64,
    /// With [`JoinExpiry`]: the end (µs) of the row's window.
    end: Option<i64>,
    /// With [`JoinTimeBounds`]: the watermark (ms) past which the row is freed.
    deadline: Option<i64>,
}

impl RowChange {
    /// The row's values (of `width` cells), decoded from its packed cells on first use.
    fn row(&mut self, width: usize) -> Result<&[ScalarValue], StreamError> {
        let row = match self.row.take() {
            Some(r) => r,
            None => codec::decode_values(&self.packed, width).map_err(StreamError::Codec)?,
        };
        Ok(self.row.insert(row))
    }
}

pub struct JoinOp {
    kind: JoinKind,
    /// Per side, its join key expressions over that side's columns.
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// The residual condition over `left ++ right`.
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// Per side, its columns' types (without `_retract`).
    types: [Vec<DataType>; 2],
    /// Per side, whether its rows carry `_retract`.
    updating_in: [bool; 2],
    /// `left ++ right`, the filter's input.
    joined: SchemaRef,
    /// `left ++ right` (`++ _retract` when the output updates).
    schema: SchemaRef,
    state: KeyedState<Bucket>,
    expiry: Option<JoinExpiry>,
    /// With `expiry`: the buckets by their window's end (µs); a freed key may linger.
    ends: BTreeMap<i64, HashSet<Vec<u8>>>,
    /// The last watermark (µs) that freed state: changes of windows it closed are late.
    watermark_us: Option<i64>,
    /// The residual's time bounds: each row is freed once nothing can match or retract it.
    bounds: Option<JoinTimeBounds>,
    /// With `bounds`: the keys holding rows by the watermark that frees them.
    deadlines: Deadlines,
    /// An idle-state TTL: a join key's rows on a side are dropped once not written for it.
    /// Changes may then meet rows that expired: a retraction of an expired row is ignored
    /// and match counts stop at zero, as in Flink (results may differ from the batch query).
    ttl: Expiry,
}

impl JoinOp {
    /// `inputs` are the left and right edges' schemas (ending in `_retract` when updating),
    /// `schema` the output edge's.
    pub fn new(
        kind: JoinKind,
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
        filter: Option<Arc<dyn PhysicalExpr>>,
        inputs: [&SchemaRef; 2],
        schema: SchemaRef,
    ) -> Result<JoinOp, StreamError> {
        let updating = |s: &SchemaRef| s.fields().last().is_some_and(|f| f.name() == RETRACT);
        let data = |s: &SchemaRef| {
            let n = s.fields().len() - usize::from(updating(s));
            s.fields().iter().take(n).cloned().collect::<Vec<_>>()
        };
        let out = data(&schema);
        let (l, r) = (data(inputs[0]), data(inputs[1]));
        let width = match kind.only() {
            Some(0) => l.len(),
            Some(_) => r.len(),
            None => l.len() + r.len(),
        };
        if out.len() != width || keys[0].len() != keys[1].len() {
            return Err(StreamError::Graph(format!(
                "join: {} + {} input columns for {} output columns, {} and {} keys",
                l.len(),
                r.len(),
                out.len(),
                keys[0].len(),
                keys[1].len()
            )));
        }
        // The filter sees unpadded pairs, `left ++ right` (also for semi and anti joins).
        let joined = l
            .iter()
            .chain(&r)
            .map(|f| Arc::new(Field::new(f.name(), f.data_type().clone(), true)))
            .collect::<Vec<_>>();
        let types = [l, r].map(|f| f.iter().map(|f| f.data_type().clone()).collect());
        Ok(JoinOp {
            kind,
            keys,
            filter,
            types,
            updating_in: [updating(inputs[0]), updating(inputs[1])],
            joined: Arc::new(Schema::new(joined)),
            schema,
            state: KeyedState::default(),
            expiry: None,
            ends: BTreeMap::new(),
            watermark_us: None,
            bounds: None,
            deadlines: Deadlines::default(),
            ttl: Expiry::default(),
        })
    }

    /// Frees rows by the time bounds of the residual condition (an inner join only; the
    /// sides' updating flags are the inputs').
    pub fn with_bounds(mut self, bounds: Option<JoinTimeBounds>) -> Result<JoinOp, StreamError> {
        if let Some(mut b) = bounds {
            if self.kind != JoinKind::Inner {
                return Err(StreamError::Graph(format!(
                    "join: time bounds free the rows of an inner join only, not of a {} join",
                    self.kind.name()
                )));
            }
            for side in 0..2 {
                let width = self.types[side].len();
                let columns = b.upper[side].iter().map(|t| t.column);
                if let Some(c) = columns.chain([b.time[side]]).find(|c| *c >= width) {
                    return Err(StreamError::Graph(format!(
                        "join: time bound column {c} of side {side}, of {width} columns"
                    )));
                }
            }
            b.updating = self.updating_in;
            self.bounds = Some(b);
        }
        Ok(self)
    }

    /// Registers the row `row` of bucket `key` with the watermark that frees it.
    fn register(&mut self, key: &[u8], row: &[ScalarValue]) {
        let side = usize::from(key.first().copied().unwrap_or(0));
        if let Some(at) = self.bounds.as_ref().and_then(|b| b.deadline(side, row)) {
            self.deadlines.add(at, key);
        }
    }

    /// Frees the rows the time bounds say no later row can match or retract; how many.
    fn free_bounded(&mut self, watermark_ms: i64) -> usize {
        let Some(bounds) = &self.bounds else {
            return 0;
        };
        let mut freed = 0;
        for key in self.deadlines.due(watermark_ms) {
            let side = usize::from(key.first().copied().unwrap_or(0));
            let width = self.types.get(side).map_or(0, Vec::len);
            self.state.update(&key, |slot| {
                if let Some(b) = slot {
                    freed += b.retain(|packed| {
                        let due = codec::decode_values(packed, width)
                            .ok()
                            .and_then(|row| bounds.deadline(side, &row));
                        // Kept: not due yet (it is indexed at its own deadline), or never.
                        due.is_none_or(|d| d >= watermark_ms)
                    });
                    if b.is_empty() {
                        *slot = None;
                    }
                }
            });
        }
        freed
    }

    /// Drops a side's rows of a join key once they have not been written for `ttl_ms` of
    /// event time (`None`: kept until retracted or their window ends).
    pub fn with_ttl(mut self, ttl_ms: Option<i64>) -> JoinOp {
        self.ttl = Expiry::new(None, ttl_ms);
        self
    }

    /// Frees each window's rows once the watermark passes its end.
    pub fn with_expiry(mut self, expiry: Option<JoinExpiry>) -> Result<JoinOp, StreamError> {
        if let Some(e) = expiry {
            for (side, &c) in e.columns.iter().enumerate() {
                let t = self.types.get(side).and_then(|t| t.get(c));
                if !matches!(t, Some(DataType::Timestamp(..))) {
                    return Err(StreamError::Graph(format!(
                        "join: the window column {c} of side {side} is {t:?}, not a timestamp"
                    )));
                }
            }
        }
        self.expiry = expiry;
        Ok(self)
    }

    /// The end (µs) of the window of `row`, of `side`, when the join expires state.
    fn end_of(&self, side: usize, row: &[ScalarValue]) -> Option<i64> {
        let e = self.expiry?;
        self.end_from(row.get(*e.columns.get(side)?)?)
    }

    /// The end (µs) of the window whose bound (of `side`'s window column) is `bound`.
    fn end_from(&self, bound: &ScalarValue) -> Option<i64> {
        let e = self.expiry?;
        let bound = match bound {
            ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000)?,
            ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000)?,
            ScalarValue::TimestampMicrosecond(Some(v), _) => *v,
            ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000),
            _ => return None,
        };
        bound.checked_add(e.end_offset_us)
    }

    /// A processing-time TTL's clock reached `now_ms`: frees the rows of join keys idle for
    /// the TTL, without output. How many keys were.
    pub fn expire_idle(&mut self, now_ms: i64) -> usize {
        self.state.advance_clock(&mut self.ttl, now_ms)
    }

    /// Frees the rows of the windows that end at or before `watermark_ms`: no input changes
    /// them any more. Nothing is emitted.
    pub fn on_watermark(&mut self, watermark_ms: i64) {
        self.state.advance(&mut self.ttl, watermark_ms);
        let freed = self.free_bounded(watermark_ms);
        if freed > 0 {
            tracing::trace!(
                freed,
                watermark_ms,
                "join: rows past their time bounds freed"
            );
        }
        if self.expiry.is_none() {
            return;
        }
        let w = watermark_ms.saturating_mul(1_000);
        if self.watermark_us.is_some_and(|old| old >= w) {
            return;
        }
        self.watermark_us = Some(w);
        let open = self.ends.split_off(&w.saturating_add(1));
        for (_, keys) in std::mem::replace(&mut self.ends, open) {
            for key in keys {
                self.state.remove(&key);
            }
        }
    }

    fn updating_out(&self) -> bool {
        self.schema
            .fields()
            .last()
            .is_some_and(|f| f.name() == RETRACT)
    }

    /// Distinct rows held on both sides.
    pub fn rows_held(&self) -> usize {
        self.state.iter().map(|(_, b)| b.len()).sum()
    }

    /// The rows of `batch`, from input `side`, as changes.
    fn changes(&self, side: usize, batch: &RecordBatch) -> Result<Vec<RowChange>, StreamError> {
        let n = batch.num_rows();
        let keys = self.keys[side]
            .iter()
            .map(|e| Ok(evaluate(e, batch)?.0))
            .collect::<Result<Vec<ArrayRef>, StreamError>>()?;
        let retract = if self.updating_in[side] {
            let last = batch.columns().last().and_then(|c| c.as_boolean_opt());
            Some(last.cloned().ok_or_else(|| {
                StreamError::Graph("join: an updating input without _retract".into())
            })?)
        } else {
            None
        };
        let width = self.types[side].len();
        let columns = batch.columns().get(..width).unwrap_or_default();
        let cell = |c: usize, i: usize| -> Result<ScalarValue, StreamError> {
            let column = columns.get(c).ok_or_else(|| {
                StreamError::Join(format!("join: column {c} of {width} on side {side}"))
            })?;
            Ok(ScalarValue::try_from_array(column, i)?)
        };
        let end_column = self.expiry.and_then(|e| e.columns.get(side).copied());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let weight = match &retract {
                Some(r) if r.is_valid(i) && r.value(i) => -1,
                _ => 1,
            };
            let end = match end_column {
                Some(c) => self.end_from(&cell(c, i)?),
                None => None,
            };
            if keys.iter().any(|k| k.is_null(i)) {
                let row = (0..width)
                    .map(|c| cell(c, i))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(RowChange {
                    key: None,
                    row: Some(row),
                    packed: Box::default(),
                    weight,
                    end,
                    deadline: None,
                });
                continue;
            }
            let mut key = vec![side as u8];
            codec::encode_array_values(&keys, i, &mut key).map_err(StreamError::Codec)?;
            let mut packed = Vec::with_capacity(width * 12);
            codec::encode_array_values(columns, i, &mut packed).map_err(StreamError::Codec)?;
            let deadline = match &self.bounds {
                Some(b) => {
                    let mut ms = |c: usize| cell(c, i).ok().as_ref().and_then(ms_of);
                    b.deadline_by(side, &mut ms)
                }
                None => None,
            };
            out.push(RowChange {
                key: Some(key),
                row: None,
                packed: packed.into_boxed_slice(),
                weight,
                end,
                deadline,
            });
        }
        Ok(out)
    }

    /// Per change, which of the other side's entries (by index in its bucket) it matches,
    /// residual filter applied: one filter evaluation over every candidate pair.
    fn matches(
        &self,
        side: usize,
        changes: &mut [RowChange],
    ) -> Result<Vec<Vec<usize>>, StreamError> {
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            if let Some(b) = c.key.as_ref().and_then(|k| self.state.get(&other_key(k))) {
                candidates.extend((0..b.len()).map(|e| (i, e)));
            }
        }
        let mut out = vec![Vec::new(); changes.len()];
        let Some(filter) = &self.filter else {
            for (i, e) in candidates {
                if let Some(m) = out.get_mut(i) {
                    m.push(e);
                }
            }
            return Ok(out);
        };
        if candidates.is_empty() {
            return Ok(out);
        }
        let mut columns: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(candidates.len()); self.joined.fields().len()];
        let width = self.types[side].len();
        for &(i, e) in &candidates {
            let Some(c) = changes.get_mut(i) else {
                continue;
            };
            let other = c
                .key
                .as_ref()
                .and_then(|k| self.state.get(&other_key(k)))
                .map(|b| b.row(e))
                .transpose()
                .map_err(StreamError::Codec)?
                .flatten()
                .ok_or_else(|| StreamError::Join("a candidate vanished".into()))?;
            let this = c.row(width)?;
            let (l, r): (&[ScalarValue], &[ScalarValue]) = if side == 0 {
                (this, &other)
            } else {
                (&other, this)
            };
            for (col, v) in columns.iter_mut().zip(l.iter().chain(r)) {
                col.push(v.clone());
            }
        }
        let arrays = columns
            .into_iter()
            .zip(self.joined.fields())
            .map(|(v, f)| to_array(v, f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(candidates.len()));
        let pairs = RecordBatch::try_new_with_options(self.joined.clone(), arrays, &options)?;
        let mask = evaluate(filter, &pairs)?.0;
        let mask = mask.as_boolean_opt().ok_or_else(|| {
            StreamError::Join(format!("the join condition {filter} is not BOOLEAN"))
        })?;
        for (p, (i, e)) in candidates.into_iter().enumerate() {
            if mask.is_valid(p) && mask.value(p) {
                if let Some(m) = out.get_mut(i) {
                    m.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Joins `batch`, from input `port` (0 left, 1 right), and folds it into the state; the
    /// output's changes.
    pub fn process(
        &mut self,
        port: usize,
        batch: &RecordBatch,
    ) -> Result<Option<RecordBatch>, StreamError> {
        if port > 1 {
            return Err(StreamError::Graph(format!("join: no input {port}")));
        }
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let side = port;
        let mut changes = self.changes(side, batch)?;
        if let Some(w) = self.watermark_us {
            // A window the watermark closed changes no more; a change would find its rows
            // freed (a retraction of a row never received).
            let before = changes.len();
            changes.retain(|c| c.end.is_none_or(|end| end > w));
            if changes.len() < before {
                tracing::warn!(
                    dropped = before - changes.len(),
                    "join: changes of windows the watermark closed"
                );
            }
        }
        let matches = self.matches(side, &mut changes)?;
        let mut out = Output::default();
        for (c, m) in changes.into_iter().zip(matches) {
            match self.kind.only() {
                Some(kept) => self.apply_semi(kept, side, c, &m, &mut out)?,
                None => self.apply(side, c, &m, &mut out)?,
            }
        }
        self.batch(out)
    }
}

impl Stateful for JoinOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes() + self.deadlines.bytes
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let side = key.first().copied().unwrap_or(u8::MAX);
        let width = self.types.get(usize::from(side)).map(Vec::len);
        let bucket = Bucket::decode(value)?;
        if width.is_none() || (!bucket.is_empty() && Some(bucket.width()) != width) {
            return Err(CodecError::Invalid(
                "join state of another layout (side or row width)".into(),
            ));
        }
        let end = bucket
            .row(0)?
            .and_then(|row| self.end_of(usize::from(side), &row));
        if let Some(end) = end {
            self.ends.entry(end).or_default().insert(key.to_vec());
        }
        if self.bounds.is_some() {
            for i in 0..bucket.len() {
                if let Some(row) = bucket.row(i)? {
                    self.register(key, &row);
                }
            }
        }
        self.state.restore(key, value)
    }
}

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
