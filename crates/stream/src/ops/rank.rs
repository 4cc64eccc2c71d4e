//! `TopN` (§6, ROW_NUMBER): `row_number() OVER (PARTITION BY p ORDER BY o)` filtered by
//! `rn <= N` (`rn = 1` is deduplication). Per partition the rows are kept ordered; after a
//! batch, each partition it touched compares its top N before and after, position by
//! position, and emits the retraction of every (row, rn) that changed, then the insertion of
//! its replacement (all retractions first, so an upsert by (partition, rn) keeps the new row).
//!
//! On an append-only input only the N first rows of a partition are kept (a row pushed out can
//! never come back); on an updating input every row is kept, so retracting a top row promotes
//! the next. The output always updates: without watermarks a row arriving late may still
//! take the first place. Ties in the order are broken by the row's values (batch SQL leaves
//! them arbitrary).
//!
//! State is a [`KeyedState`] keyed by the partition key's codec row. A partition is freed,
//! without output, when the watermark passes the end of the window a partition column holds
//! (`PARTITION BY k, window_start`: deduplication per key and window keeps a key only while
//! its window is open) or, with an idle-state TTL, once it has not changed for that long
//! ([`crate::state::expiry`]).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef, SortOptions};
use datafusion_common::{HashMap, ScalarValue};
use datafusion_physical_expr::PhysicalExpr;

use super::eval::evaluate;
use crate::error::StreamError;
use crate::ops::aggregate::to_array;
use crate::ops::join::int;
use crate::state::codec::{self, CodecError};
use crate::state::expiry::Expiry;
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// One distinct row of a partition with its multiplicity: its order values then its cells,
/// packed as the state codec's values ([`codec::encode_values`]) rather than `ScalarValue`s
/// (48 bytes a cell before any heap), so a held row costs about its encoded size.
#[derive(Clone, Debug, PartialEq)]
struct Ranked {
    cells: Box<[u8]>,
    count: i64,
}

/// Bytes a held row costs beyond its packed cells: the entry (box and count) and the box's
/// allocation.
const ROW_OVERHEAD: usize = 40;

/// A row about to be ranked: its order values, and its order values then its cells packed
/// straight from the batch (as a [`Ranked`] holds them; the cells are decoded only to
/// break a tie).
struct Incoming {
    order: Vec<ScalarValue>,
    cells: Vec<u8>,
}

/// A partition's rows, in rank order, each of `order` order values and `width` cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranking {
    order: u32,
    width: u32,
    rows: Vec<Ranked>,
}

impl Ranking {
    fn with_capacity(order: usize, width: usize, capacity: usize) -> Ranking {
        Ranking {
            order: u32::try_from(order).unwrap_or(u32::MAX),
            width: u32::try_from(width).unwrap_or(u32::MAX),
            rows: Vec::with_capacity(capacity),
        }
    }

    fn order_of(&self, r: &Ranked) -> Result<Vec<ScalarValue>, CodecError> {
        codec::decode_prefix(&r.cells, self.order as usize)
    }

    /// `r`'s cells without its order values.
    fn row_of(&self, r: &Ranked) -> Result<Vec<ScalarValue>, CodecError> {
        self.row_of_cells(&r.cells)
    }

    /// The cells without the order values of a row packed as a [`Ranked`] holds it.
    fn row_of_cells(&self, cells: &[u8]) -> Result<Vec<ScalarValue>, CodecError> {
        let mut all = codec::decode_values(cells, (self.order + self.width) as usize)?;
        Ok(all.split_off(self.order as usize))
    }
}

impl StateValue for Ranking {
    /// `[rows, order width, width, (count, order values.., cells..)*]` as one codec row: the
    /// packed cells are spliced in as they are held.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let n = self.rows.len();
        let per_row = 1 + self.order as usize + self.width as usize;
        codec::row_header(3 + n * per_row, out)?;
        let int = |v: usize| ScalarValue::Int64(Some(v as i64));
        codec::encode_values(
            &[int(n), int(self.order as usize), int(self.width as usize)],
            out,
        )?;
        for r in &self.rows {
            codec::encode_values(&[ScalarValue::Int64(Some(r.count))], out)?;
            out.extend_from_slice(&r.cells);
        }
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut it = codec::decode_row(bytes)?.into_iter();
        let size = |it: &mut std::vec::IntoIter<ScalarValue>, what: &str| {
            int(it, what).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        let n = size(&mut it, "the row count")?;
        let o = size(&mut it, "the order width")?;
        let w = size(&mut it, "the width")?;
        let mut ranking = Ranking::with_capacity(o, w, n.min(1024));
        for _ in 0..n {
            let count = int(&mut it, "a multiplicity")?;
            let cells: Vec<ScalarValue> = it.by_ref().take(o + w).collect();
            if cells.len() != o + w {
                return Err(CodecError::Invalid(
                    "top-N state: a row is cut short".into(),
                ));
            }
            let mut packed = Vec::new();
            codec::encode_values(&cells, &mut packed)?;
            ranking.rows.push(Ranked {
                cells: packed.into_boxed_slice(),
                count,
            });
        }
        if it.next().is_some() {
            return Err(CodecError::Invalid("top-N state: trailing values".into()));
        }
        Ok(ranking)
    }

    fn size(&self) -> usize {
        32 + self
            .rows
            .iter()
            .map(|r| ROW_OVERHEAD + r.cells.len())
            .sum::<usize>()
    }
}

pub struct TopNOp {
    partition: Vec<Arc<dyn PhysicalExpr>>,
    order: Vec<(Arc<dyn PhysicalExpr>, SortOptions)>,
    limit: usize,
    /// Input columns (without `_retract`).
    width: usize,
    input_updating: bool,
    /// Input columns, `rn`, `_retract`.
    schema: SchemaRef,
    state: KeyedState<Ranking>,
    expiry: Expiry,
}

impl TopNOp {
    pub fn new(
        partition: Vec<Arc<dyn PhysicalExpr>>,
        order: Vec<(Arc<dyn PhysicalExpr>, SortOptions)>,
        limit: usize,
        input: &SchemaRef,
        schema: SchemaRef,
    ) -> Result<TopNOp, StreamError> {
        let input_updating = input
            .fields()
            .last()
            .is_some_and(|f| f.name() == crate::graph::RETRACT);
        let width = input.fields().len() - usize::from(input_updating);
        if schema.fields().len() != width + 2 || limit == 0 {
            return Err(StreamError::Graph(format!(
                "top-N: {width} input columns for {} output columns, limit {limit}",
                schema.fields().len()
            )));
        }
        Ok(TopNOp {
            partition,
            order,
            limit,
            width,
            input_updating,
            schema,
            state: KeyedState::default(),
            expiry: Expiry::default(),
        })
    }

    /// Frees partitions by a window bound among the partition columns and/or an idle-state
    /// TTL.
    pub fn with_expiry(mut self, expiry: Expiry) -> TopNOp {
        self.expiry = expiry;
        self
    }

    /// The watermark reached `w` (ms): frees the partitions that expired. Nothing is
    /// emitted.
    pub fn on_watermark(&mut self, w: i64) -> usize {
        self.state.advance(&mut self.expiry, w)
    }

    /// A processing-time TTL's clock reached `now_ms`: frees the partitions idle for the
    /// TTL, without output. How many were.
    pub fn expire_idle(&mut self, now_ms: i64) -> usize {
        if !self.expiry.has_ttl() {
            return 0;
        }
        self.state.advance_clock(&mut self.expiry, now_ms)
    }

    /// Partitions held.
    pub fn partitions(&self) -> usize {
        self.state.len()
    }

    /// Distinct rows held over all partitions.
    pub fn rows_held(&self) -> usize {
        self.state.iter().map(|(_, r)| r.rows.len()).sum()
    }

    /// The partition's top N rows, in rank order (a row of multiplicity k fills k ranks).
    fn top(&self, key: &[u8]) -> Result<Vec<Vec<ScalarValue>>, StreamError> {
        let mut out = Vec::new();
        if let Some(r) = self.state.get(key) {
            for ranked in &r.rows {
                let row = r.row_of(ranked).map_err(StreamError::Codec)?;
                for _ in 0..ranked.count {
                    if out.len() == self.limit {
                        return Ok(out);
                    }
                    out.push(row.clone());
                }
            }
        }
        Ok(out)
    }

    pub fn process(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, StreamError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let eval = |e: &Arc<dyn PhysicalExpr>| -> Result<ArrayRef, StreamError> {
            Ok(evaluate(e, batch)?.0)
        };
        let parts = self
            .partition
            .iter()
            .map(eval)
            .collect::<Result<Vec<_>, _>>()?;
        let orders = self
            .order
            .iter()
            .map(|(e, _)| eval(e))
            .collect::<Result<Vec<_>, _>>()?;
        let retract = if self.input_updating {
            let last = batch.columns().last().and_then(|c| c.as_boolean_opt());
            Some(last.cloned().ok_or_else(|| {
                StreamError::Graph("top-N: an updating input without _retract".into())
            })?)
        } else {
            None
        };
        let scalars = |cols: &[ArrayRef], i: usize| {
            cols.iter()
                .map(|c| ScalarValue::try_from_array(c, i))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut touched: HashMap<Vec<u8>, usize> = HashMap::default();
        let mut before: Vec<(Vec<u8>, Vec<Vec<ScalarValue>>)> = Vec::new();
        let columns = batch.columns().get(..self.width).unwrap_or_default();
        let mut key = Vec::new();
        for i in 0..n {
            key.clear();
            codec::encode_array_row(&parts, i, &mut key).map_err(StreamError::Codec)?;
            if !touched.contains_key(&key) {
                touched.insert(key.clone(), before.len());
                before.push((key.clone(), self.top(&key)?));
                if let Some(at) = self.expiry.key_deadline(&scalars(&parts, i)?) {
                    self.state.set_deadline(&key, at);
                }
            }
            let mut cells = Vec::with_capacity(16 * (orders.len() + self.width));
            codec::encode_array_values(&orders, i, &mut cells).map_err(StreamError::Codec)?;
            codec::encode_array_values(columns, i, &mut cells).map_err(StreamError::Codec)?;
            let new = Incoming {
                order: scalars(&orders, i)?,
                cells,
            };
            let weight = match &retract {
                Some(r) if r.is_valid(i) && r.value(i) => -1,
                _ => 1,
            };
            self.apply(&key, new, weight)?;
        }
        let (mut retracted, mut inserted) = (Vec::new(), Vec::new());
        for (key, old) in before {
            let new = self.top(&key)?;
            for rank in 0..old.len().max(new.len()) {
                let (o, n) = (old.get(rank), new.get(rank));
                if o == n {
                    continue;
                }
                if let Some(o) = o {
                    retracted.push((o.clone(), rank));
                }
                if let Some(n) = n {
                    inserted.push((n.clone(), rank));
                }
            }
        }
        if retracted.is_empty() && inserted.is_empty() {
            return Ok(None);
        }
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.width + 2];
        let rows = retracted
            .into_iter()
            .map(|(r, k)| (r, k, true))
            .chain(inserted.into_iter().map(|(r, k)| (r, k, false)));
        for (row, rank, retract) in rows {
            let tail = [
                ScalarValue::UInt64(Some(rank as u64 + 1)),
                ScalarValue::Boolean(Some(retract)),
            ];
            for (c, v) in columns.iter_mut().zip(row.into_iter().chain(tail)) {
                c.push(v);
            }
        }
        let arrays = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(v, f)| to_array(v, f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(RecordBatch::try_new(self.schema.clone(), arrays)?))
    }

    fn apply(&mut self, key: &[u8], new: Incoming, weight: i64) -> Result<(), StreamError> {
        let (limit, append_only, order) = (self.limit, !self.input_updating, &self.order);
        let (o, w) = (self.order.len(), self.width);
        let lenient = self.expiry.has_ttl();
        self.state.update(key, |slot| {
            // Over an append-only input a partition holds at most N rows: room for them
            // alone (a top-1 partition, Nexmark q18, is one allocation of one entry).
            let capacity = if append_only { limit.min(16) } else { 0 };
            let r = slot.get_or_insert_with(|| Ranking::with_capacity(o, w, capacity));
            let mut failed = None;
            let at = r.rows.binary_search_by(|probe| {
                compare(order, r, probe, &new).unwrap_or_else(|e| {
                    failed = Some(e);
                    Ordering::Equal
                })
            });
            if let Some(e) = failed {
                return Err(StreamError::Codec(e));
            }
            match (at, weight > 0) {
                (Ok(i), true) => {
                    if let Some(e) = r.rows.get_mut(i) {
                        e.count += 1;
                    }
                }
                (Err(i), true) => {
                    let filled: i64 = r.rows.iter().map(|e| e.count).sum();
                    if append_only && filled >= limit as i64 {
                        if i >= r.rows.len() {
                            // Ranked after N rows: it can never enter the top N.
                            return Ok(());
                        }
                        // It enters: the last rank goes (a row pushed out never comes back).
                        if let Some(last) = r.rows.last_mut() {
                            last.count -= 1;
                            if last.count == 0 {
                                r.rows.pop();
                            }
                        }
                    }
                    let at = i.min(r.rows.len());
                    r.rows.insert(
                        at,
                        Ranked {
                            cells: new.cells.into_boxed_slice(),
                            count: 1,
                        },
                    );
                }
                (Ok(i), false) => {
                    if let Some(e) = r.rows.get_mut(i) {
                        e.count -= 1;
                        if e.count == 0 {
                            r.rows.remove(i);
                        }
                    }
                }
                (Err(_), false) => {
                    if r.rows.is_empty() {
                        *slot = None;
                    }
                    if lenient {
                        return Ok(()); // The row's partition expired (TTL).
                    }
                    return Err(StreamError::TopN(
                        "a retraction of a row it never received".into(),
                    ));
                }
            }
            if append_only {
                // Rows past the N first can never come back: drop them.
                let mut kept = 0i64;
                r.rows.retain_mut(|e| {
                    let room = limit as i64 - kept;
                    if room <= 0 {
                        return false;
                    }
                    e.count = e.count.min(room);
                    kept += e.count;
                    true
                });
            }
            if r.rows.is_empty() {
                *slot = None;
            }
            Ok(())
        })
    }
}

/// Rank order of a held row against an incoming one: the ORDER BY, then the row's values (a
/// deterministic tie-break, decoded only on a tie).
fn compare(
    order: &[(Arc<dyn PhysicalExpr>, SortOptions)],
    ranking: &Ranking,
    held: &Ranked,
    new: &Incoming,
) -> Result<Ordering, CodecError> {
    let held_order = ranking.order_of(held)?;
    for ((x, y), (_, opts)) in held_order.iter().zip(&new.order).zip(order) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) if opts.nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if opts.nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => {
                let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
                if opts.descending {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    let row = ranking.row_of(held)?;
    let new_row = ranking.row_of_cells(&new.cells)?;
    Ok(row.partial_cmp(&new_row).unwrap_or(Ordering::Equal))
}

impl Stateful for TopNOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let r = Ranking::decode(value)?;
        if !r.rows.is_empty()
            && (r.width as usize != self.width || r.order as usize != self.order.len())
        {
            return Err(CodecError::Invalid("top-N state of another layout".into()));
        }
        self.state.restore(key, value)?;
        if let Some(at) = self.expiry.key_deadline(&codec::decode_row(key)?) {
            self.state.set_deadline(key, at);
        }
        Ok(())
    }
}

/// The `rn` column's type: DataFusion's `row_number()` is UInt64.
pub const RANK_TYPE: DataType = DataType::UInt64;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use datafusion_physical_expr::expressions::col;

    use crate::graph::RETRACT;

    fn input(updating: bool) -> SchemaRef {
        let mut f = vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
        ];
        if updating {
            f.push(Field::new(RETRACT, DataType::Boolean, false));
        }
        Arc::new(Schema::new(f))
    }

    fn op(limit: usize, updating: bool, descending: bool) -> TopNOp {
        let s = input(updating);
        let out = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
            Field::new("rn", RANK_TYPE, false),
            Field::new(RETRACT, DataType::Boolean, false),
        ]));
        let opts = SortOptions {
            descending,
            nulls_first: false,
        };
        TopNOp::new(
            vec![col("k", &s).expect("k")],
            vec![(col("ts", &s).expect("ts"), opts)],
            limit,
            &s,
            out,
        )
        .expect("top-N")
    }

    fn batch(updating: bool, rows: &[(&str, i64, bool)]) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
            Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
        ];
        if updating {
            cols.push(Arc::new(
                rows.iter().map(|r| Some(r.2)).collect::<BooleanArray>(),
            ));
        }
        RecordBatch::try_new(input(updating), cols).expect("batch")
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
    fn dedup_keeps_the_first_row_per_key_and_an_earlier_late_row_replaces_it() {
        let mut t = op(1, false, false);
        let out = t
            .process(&batch(
                false,
                &[("a", 5, false), ("a", 7, false), ("b", 1, false)],
            ))
            .expect("process");
        assert_eq!(rows(out), ["a,5,1,false", "b,1,1,false"]);
        assert_eq!(t.rows_held(), 2, "append-only input keeps only the top row");
        assert!(t
            .process(&batch(false, &[("a", 9, false)]))
            .expect("process")
            .is_none());
        let out = t.process(&batch(false, &[("a", 2, false)])).expect("late");
        assert_eq!(rows(out), ["a,5,1,true", "a,2,1,false"]);
    }

    #[test]
    fn updating_top_n_promotes_the_next_row_and_shifts_ranks() {
        let mut t = op(2, true, true);
        let out = t
            .process(&batch(
                true,
                &[("a", 1, false), ("a", 3, false), ("a", 2, false)],
            ))
            .expect("process");
        assert_eq!(rows(out), ["a,3,1,false", "a,2,2,false"]);
        assert_eq!(t.rows_held(), 3, "updating input keeps every row");
        let out = t.process(&batch(true, &[("a", 3, true)])).expect("retract");
        assert_eq!(
            rows(out),
            ["a,3,1,true", "a,2,2,true", "a,2,1,false", "a,1,2,false"]
        );
        let out = t
            .process(&batch(true, &[("a", 2, true), ("a", 1, true)]))
            .expect("empty");
        assert_eq!(rows(out), ["a,2,1,true", "a,1,2,true"]);
        assert_eq!(t.partitions(), 0, "an empty partition is freed");
        assert!(t.process(&batch(true, &[("a", 1, true)])).is_err());
    }

    #[test]
    fn checkpointed_rankings_restore_exactly() {
        let mut a = op(2, true, false);
        a.process(&batch(
            true,
            &[("a", 1, false), ("a", 2, false), ("b", 4, false)],
        ))
        .expect("process");
        let changes = a.take_changes().expect("changes");
        let mut b = op(2, true, false);
        for (k, v) in &changes {
            b.restore(k, v.as_deref().expect("value")).expect("restore");
        }
        assert_eq!(b.state_bytes(), a.state_bytes());
        let next = batch(true, &[("a", 1, true), ("a", 0, false)]);
        let (x, y) = (
            rows(a.process(&next).expect("a")),
            rows(b.process(&next).expect("b")),
        );
        assert_eq!(x, y);
        assert_eq!(x, ["a,1,1,true", "a,0,1,false"]);
    }

    #[test]
    fn dedup_per_key_and_window_frees_a_partition_when_its_window_closes() {
        let s = input(false);
        let out = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
            Field::new("rn", RANK_TYPE, false),
            Field::new(RETRACT, DataType::Boolean, false),
        ]));
        let opts = SortOptions {
            descending: false,
            nulls_first: false,
        };
        // PARTITION BY k, ts (a window start in ms here), windows of 10 ms.
        let expiry = Expiry::new(
            Some(crate::state::expiry::KeyExpiry {
                column: 1,
                end_offset_us: 10_000,
            }),
            None,
        );
        let mut t = TopNOp::new(
            vec![col("k", &s).expect("k"), col("ts", &s).expect("ts")],
            vec![(col("ts", &s).expect("ts"), opts)],
            1,
            &s,
            out,
        )
        .expect("top-N")
        .with_expiry(expiry);
        let mut peak = 0;
        for w in 0..100i64 {
            let rows: Vec<(String, i64)> = (0..5).map(|k| (format!("k{k}"), w * 10)).collect();
            let rows: Vec<(&str, i64, bool)> =
                rows.iter().map(|(k, t)| (k.as_str(), *t, false)).collect();
            // Twice: the second copy of each key is a duplicate.
            assert_eq!(
                t.process(&batch(false, &rows)).map(rows_of).expect("rows"),
                5
            );
            assert_eq!(
                t.process(&batch(false, &rows)).map(rows_of).expect("dup"),
                0
            );
            t.on_watermark(w * 10 + 9); // The watermark trails: window w - 1 closed.
            peak = peak.max(t.partitions());
        }
        assert!(peak <= 10, "the open windows' keys only: {peak}");
        t.on_watermark(10_000);
        assert_eq!(t.partitions(), 0);
        assert_eq!(t.state_bytes(), 0);
    }

    #[test]
    fn append_only_top_n_matches_the_full_ranking_holds_n_rows_and_restores() {
        // The same inserts into a top-2 over an append-only input (N rows a partition) and
        // over an updating one (every row): the same changes.
        let (mut kept, mut all) = (op(2, false, true), op(2, true, true));
        let keys = ["a", "b", "c"];
        for round in 0..40i64 {
            let rows: Vec<(&str, i64, bool)> = (0..6)
                .map(|i| (keys[(i % 3) as usize], (round * 7 + i * 13) % 50, false))
                .collect();
            let (x, y) = (
                rows_n(kept.process(&batch(false, &rows)).expect("kept")),
                rows_n(all.process(&batch(true, &rows)).expect("all")),
            );
            assert_eq!(x, y, "round {round}");
        }
        assert!(kept.rows_held() <= 2 * keys.len(), "{}", kept.rows_held());
        assert!(all.rows_held() > 10 * keys.len());
        println!(
            "state bytes: top-2 of append-only {}, every row {}",
            kept.state_bytes(),
            all.state_bytes()
        );
        let mut back = op(2, false, true);
        for (k, v) in kept.take_changes().expect("changes") {
            back.restore(&k, v.as_deref().expect("value"))
                .expect("restore");
        }
        assert_eq!(back.state_bytes(), kept.state_bytes());
        let next = [("a", 49, false), ("b", 0, false), ("c", 60, false)];
        assert_eq!(
            rows_n(back.process(&batch(false, &next)).expect("back")),
            rows_n(kept.process(&batch(false, &next)).expect("kept"))
        );
        // A partition's state as checkpointed, then restored, encodes to the same bytes.
        for (k, v) in back.take_changes().expect("changes") {
            let v = v.expect("value");
            let mut again = Vec::new();
            Ranking::decode(&v)
                .expect("decode")
                .encode(&mut again)
                .expect("encode");
            assert_eq!(again, v, "key {k:?}");
        }
    }

    /// Rows without the `_retract` column order: the changes as a sorted multiset.
    fn rows_n(b: Option<RecordBatch>) -> Vec<String> {
        let mut r = rows(b);
        r.sort();
        r
    }

    fn rows_of(b: Option<RecordBatch>) -> usize {
        b.map_or(0, |b| b.num_rows())
    }
}
