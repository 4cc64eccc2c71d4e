//! A hopping window aggregate sliced into panes (§6, windows; [`HopSpec`]): GROUP BY over
//! `HOP(src, t, slide, size)` where a row lies in `size / slide` windows. The planner feeds
//! each row once, its group columns naming its **latest** window (the one starting at its
//! pane `floor(t / slide) * slide`); the operator folds it into that **pane**'s group (the
//! rows of one slide), one update per row instead of one per window. A window's value is
//! its panes' groups merged ([`Group::merge`]), computed only when it is emitted:
//!
//! - **updating** (the default): at each barrier, every open window holding a pane changed
//!   in the epoch emits the retraction of its old row and its new row (nothing if equal).
//!   Its old row merges each changed pane as it was before its first change in the epoch
//!   (kept aside then), so no window value is stored. When the watermark passes a window's
//!   end, its change leaves then: it is final, and no later change reaches it.
//! - **emit on window close**: when the watermark passes a window's end it emits its one
//!   final row, merged from its panes.
//!
//! A pane is freed when the watermark passes the end of its latest window, so the state
//! holds the panes of open windows: (watermark delay + size) / slide panes per group rather
//! than that many windows, each fed every row. Flink's window aggregates slice the same way.
//!
//! Keys: a pane's group is keyed as a window's in [`super::window`] (its latest window's
//! end, then the group key's codec row with that window's bounds), so a checkpoint writes
//! the panes changed in the epoch and a restore rebuilds the end index from the keys. A
//! window's pane `j` (0 = its first) is the pane whose latest window ends `j` slides after
//! it: its key is the window's with every bound column moved `j` slides later. The
//! checkpoint also keeps the watermark (a key of its own): a pane outlives its earlier
//! windows, so a restored operator must know which of them have closed and been emitted.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion_common::{HashMap, ScalarValue};
use datafusion_physical_expr::PhysicalExpr;

use crate::error::StreamError;
use crate::graph::{AggSpec, HopSpec, WindowSpec};
use crate::ops::aggregate::{rows_batch, Group};
use crate::ops::eval::drop_failed_keys;
use crate::ops::window::{end_of, end_prefix, fold_row, restore_group, WindowBatch};
use crate::state::codec::{self, CodecError};
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// Bytes the end index costs per pane group, for the memory budget.
const INDEX_OVERHEAD: usize = 48;
/// Bytes a changed pane costs beyond its key and its group as it was.
const TOUCHED_OVERHEAD: usize = 96;
/// The state key of the watermark the last checkpoint saw (shorter than any pane's key:
/// 8 bytes of end and a codec row's 5-byte header at least).
const WATERMARK_KEY: &[u8] = b"watermark";

pub struct HopAggregateOp {
    group: Vec<Arc<dyn PhysicalExpr>>,
    aggs: Vec<AggSpec>,
    window: WindowSpec,
    hop: HopSpec,
    /// Group columns, aggregate columns, then `_retract` unless emitting on close.
    schema: SchemaRef,
    /// Pane groups.
    state: KeyedState<Group>,
    /// Pane groups by the end of their latest window (microseconds).
    ends: BTreeMap<i64, Vec<Vec<u8>>>,
    /// The last watermark seen, in microseconds. Checkpointed: windows that ended by it
    /// have been emitted, and a restored operator must not emit them again from the panes
    /// that outlive them.
    watermark_us: Option<i64>,
    /// The watermark in the last checkpoint's changes.
    saved_watermark: Option<i64>,
    /// Rows dropped because every window of theirs had closed, or they had none (NULL time).
    dropped: u64,
    /// Updating output: the panes changed since the last barrier, each as it was before
    /// (`None`: new), and the same keys by their latest window's end.
    touched: HashMap<Vec<u8>, Option<Group>>,
    touched_ends: BTreeMap<i64, Vec<Vec<u8>>>,
    touched_bytes: usize,
}

/// The windows to emit: by end, then the group key's codec row; their group values.
type Windows = BTreeMap<(i64, Vec<u8>), Vec<ScalarValue>>;

impl HopAggregateOp {
    pub fn new(
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        window: WindowSpec,
        hop: HopSpec,
        schema: SchemaRef,
    ) -> HopAggregateOp {
        HopAggregateOp {
            group,
            aggs,
            window,
            hop,
            schema,
            state: KeyedState::default(),
            ends: BTreeMap::new(),
            watermark_us: None,
            saved_watermark: None,
            dropped: 0,
            touched: HashMap::new(),
            touched_ends: BTreeMap::new(),
            touched_bytes: 0,
        }
    }

    /// Pane groups held.
    pub fn groups(&self) -> usize {
        self.state.len()
    }

    /// Rows dropped because all their windows had closed (or they had none).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn panes(&self) -> i64 {
        i64::from(self.hop.panes)
    }

    /// Folds `batch` (each row in its latest window) into its panes' groups.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<(), StreamError> {
        let kept = drop_failed_keys(&self.group, batch)?;
        let batch = kept.as_ref().unwrap_or(batch);
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let b = WindowBatch::evaluate(batch, &self.group, &self.aggs, &self.window)?;
        let updating = !self.window.emit_on_close;
        let mut key = Vec::new();
        // A row's end is its pane's latest window's; its every window has closed at or before.
        for (row, end) in b.open_rows(self.watermark_us) {
            let Some(end) = end else {
                self.dropped += 1;
                continue;
            };
            b.key(&mut key, row, end)?;
            if updating && !self.touched.contains_key(key.as_slice()) {
                let before = self.state.get(&key).cloned();
                self.touched_bytes += touched_cost(&key, before.as_ref());
                self.touched.insert(key.clone(), before);
                self.touched_ends.entry(end).or_default().push(key.clone());
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

    /// The barrier: the changes of the open windows holding a pane changed since the last
    /// one (updating output).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, StreamError> {
        if self.touched.is_empty() {
            return Ok(None);
        }
        let mut windows = Windows::new();
        let open_after = self.watermark_us.unwrap_or(i64::MIN);
        for keys in self.touched_ends.values() {
            for key in keys {
                self.windows_of(key, open_after, i64::MAX, &mut windows)?;
            }
        }
        let rows = self.window_rows(windows)?;
        self.touched.clear();
        self.touched_ends.clear();
        self.touched_bytes = 0;
        self.batch(rows)
    }

    /// The watermark reached `watermark_ms`: windows ending at or before it close (updating:
    /// those holding a changed pane emit their last change; on close: each its final row),
    /// then the panes whose latest window closed are freed.
    pub fn on_watermark(&mut self, watermark_ms: i64) -> Result<Option<RecordBatch>, StreamError> {
        let w = watermark_ms.saturating_mul(1_000);
        if self.watermark_us.is_some_and(|old| old >= w) {
            return Ok(None);
        }
        let after = self.watermark_us.unwrap_or(i64::MIN);
        self.watermark_us = Some(w);
        // A window ending in (after, w] has its panes' latest windows ending up to
        // (panes - 1) slides later.
        let reach = w.saturating_add((self.panes() - 1).saturating_mul(self.hop.slide_us));
        let index = if self.window.emit_on_close {
            &self.ends
        } else {
            &self.touched_ends
        };
        let mut windows = Windows::new();
        for keys in index
            .range((
                std::ops::Bound::Excluded(after),
                std::ops::Bound::Included(reach),
            ))
            .map(|(_, k)| k)
        {
            for key in keys {
                self.windows_of(key, after, w, &mut windows)?;
            }
        }
        let rows = self.window_rows(windows)?;
        // Panes whose latest window closed: no window of theirs is open.
        let open = self.ends.split_off(&w.saturating_add(1));
        for key in std::mem::replace(&mut self.ends, open)
            .into_values()
            .flatten()
        {
            self.state.remove(&key);
        }
        let open = self.touched_ends.split_off(&w.saturating_add(1));
        for key in std::mem::replace(&mut self.touched_ends, open)
            .into_values()
            .flatten()
        {
            if let Some(before) = self.touched.remove(&key) {
                let size = touched_cost(&key, before.as_ref());
                self.touched_bytes = self.touched_bytes.saturating_sub(size);
            }
        }
        self.batch(rows)
    }

    /// Adds to `out` the windows of the pane at `key` that end in `(after, upto]`.
    fn windows_of(
        &self,
        key: &[u8],
        after: i64,
        upto: i64,
        out: &mut Windows,
    ) -> Result<(), StreamError> {
        let latest = end_of(key).map_err(StreamError::Codec)?;
        let mut values: Option<Vec<ScalarValue>> = None;
        for k in 0..self.panes() {
            let end = latest - k * self.hop.slide_us;
            if end <= after || end > upto {
                continue;
            }
            if values.is_none() {
                let row = key.get(8..).unwrap_or_default();
                values = Some(codec::decode_row(row).map_err(StreamError::Codec)?);
            }
            let Some(values) = values.as_deref() else {
                continue;
            };
            let window = self.shifted(values, -k * self.hop.slide_us)?;
            let mut row = Vec::new();
            codec::encode_row(&window, &mut row).map_err(StreamError::Codec)?;
            out.entry((end, row)).or_insert(window);
        }
        Ok(())
    }

    /// `values` with every window bound column moved by `us`.
    fn shifted(&self, values: &[ScalarValue], us: i64) -> Result<Vec<ScalarValue>, StreamError> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i < 64 && self.hop.columns & (1 << i) != 0 {
                    shift(v, us)
                } else {
                    Ok(v.clone())
                }
            })
            .collect()
    }

    /// Each window's row(s): on close, its values; updating, its retraction and new row
    /// when they differ.
    fn window_rows(&self, windows: Windows) -> Result<Vec<Vec<ScalarValue>>, StreamError> {
        let updating = !self.window.emit_on_close;
        let mut rows = Vec::new();
        let mut key = Vec::new();
        for ((end, _), values) in windows {
            let (mut now, mut was): (Option<Group>, Option<Group>) = (None, None);
            for j in 0..self.panes() {
                let pane = self.shifted(&values, j * self.hop.slide_us)?;
                key.clear();
                key.extend_from_slice(&end_prefix(end + j * self.hop.slide_us));
                codec::encode_row(&pane, &mut key).map_err(StreamError::Codec)?;
                let current = self.state.get(&key);
                merge_into(&mut now, current, &self.aggs)?;
                if updating {
                    let before = match self.touched.get(key.as_slice()) {
                        Some(b) => b.as_ref(),
                        None => current,
                    };
                    merge_into(&mut was, before, &self.aggs)?;
                }
            }
            let now = now.map(|g| g.values(&self.aggs)).transpose()?;
            if !updating {
                if let Some(now) = now {
                    rows.push(values.into_iter().chain(now).collect());
                }
                continue;
            }
            let was = was.map(|g| g.values(&self.aggs)).transpose()?;
            if now == was {
                continue;
            }
            let row = |aggs: Vec<ScalarValue>, retract: bool| -> Vec<ScalarValue> {
                values
                    .iter()
                    .cloned()
                    .chain(aggs)
                    .chain([ScalarValue::Boolean(Some(retract))])
                    .collect()
            };
            if let Some(was) = was {
                rows.push(row(was, true));
            }
            if let Some(now) = now {
                rows.push(row(now, false));
            }
        }
        Ok(rows)
    }

    fn batch(&self, rows: Vec<Vec<ScalarValue>>) -> Result<Option<RecordBatch>, StreamError> {
        rows_batch(&self.schema, rows)
    }
}

/// Bytes a changed pane costs while kept aside: its key twice (map and end index), its
/// group as it was, the entries.
fn touched_cost(key: &[u8], before: Option<&Group>) -> usize {
    2 * key.len() + TOUCHED_OVERHEAD + before.map_or(0, StateValue::size)
}

/// Merges `pane` (if any) into `into` (a fresh group on the first).
fn merge_into(
    into: &mut Option<Group>,
    pane: Option<&Group>,
    aggs: &[AggSpec],
) -> Result<(), StreamError> {
    let Some(pane) = pane else {
        return Ok(());
    };
    into.get_or_insert_with(|| Group::new(aggs, true))
        .merge(pane)
        .map_err(StreamError::Aggregate)
}

/// A timestamp moved by `us` microseconds (NULL stays NULL). The planner slices into
/// panes only where the slide is a whole number of the column's unit.
fn shift(v: &ScalarValue, us: i64) -> Result<ScalarValue, StreamError> {
    let add = |t: &Option<i64>, by: i64| t.map(|t| t.wrapping_add(by));
    Ok(match v {
        ScalarValue::TimestampSecond(t, tz) => {
            ScalarValue::TimestampSecond(add(t, us / 1_000_000), tz.clone())
        }
        ScalarValue::TimestampMillisecond(t, tz) => {
            ScalarValue::TimestampMillisecond(add(t, us / 1_000), tz.clone())
        }
        ScalarValue::TimestampMicrosecond(t, tz) => {
            ScalarValue::TimestampMicrosecond(add(t, us), tz.clone())
        }
        ScalarValue::TimestampNanosecond(t, tz) => {
            ScalarValue::TimestampNanosecond(add(t, us.saturating_mul(1_000)), tz.clone())
        }
        other => {
            return Err(StreamError::Aggregate(format!(
                "a hopping window bound of type {}",
                other.data_type()
            )))
        }
    })
}

impl Stateful for HopAggregateOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes() + self.state.len() * INDEX_OVERHEAD + self.touched_bytes
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        let mut changes = self.state.take_changes()?;
        if self.watermark_us != self.saved_watermark {
            if let Some(w) = self.watermark_us {
                changes.push((WATERMARK_KEY.to_vec(), Some(w.to_be_bytes().to_vec())));
            }
            self.saved_watermark = self.watermark_us;
        }
        Ok(changes)
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        if key == WATERMARK_KEY {
            let w = value
                .try_into()
                .map(i64::from_be_bytes)
                .map_err(|_| CodecError::Invalid("a window watermark of another size".into()))?;
            self.watermark_us = Some(w);
            self.saved_watermark = Some(w);
            return Ok(());
        }
        restore_group(&mut self.state, &mut self.ends, &self.aggs, key, value)
    }
}

#[cfg(test)]
#[path = "hop_tests.rs"]
mod tests;
