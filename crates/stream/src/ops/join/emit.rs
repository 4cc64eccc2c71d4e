//! How one input change of a [`JoinOp`] moves the state and what it emits: joined rows,
//! NULL-padded rows as degrees cross 0 (outer joins), kept rows alone (semi and anti joins),
//! then the fold into its own side's bucket; [`Output`] collects the rows of a batch and
//! `batch` builds the output `RecordBatch` (`_retract` last when the output updates).

use arrow_array::RecordBatch;
use datafusion_common::ScalarValue;

use super::bucket::{other_key, Bucket, Row};
use super::{JoinOp, RowChange};
use crate::error::StreamError;
use crate::ops::aggregate::to_array;

impl JoinOp {
    /// One change of `side` matching the other side's entries `m` (indices in its bucket).
    pub(super) fn apply(
        &mut self,
        side: usize,
        mut c: RowChange,
        m: &[usize],
        out: &mut Output,
    ) -> Result<(), StreamError> {
        let other = 1 - side;
        let (kind, w) = (self.kind, c.weight);
        let width = self.types[side].len();
        let Some(key) = c.key.take() else {
            // A NULL join key matches nothing and is not kept.
            if kind.preserves(side) {
                out.push(side, c.row(width)?, None, w, 1);
            }
            return Ok(());
        };
        if w < 0 && self.expired(&key, &c.packed) {
            return Ok(()); // Its output went with it (TTL): nothing to retract.
        }
        let other_k = other_key(&key);
        // The other side: joined rows, and its padded rows as degrees cross 0.
        let mut matched = 0;
        if !m.is_empty() {
            let track = kind.preserves(other);
            let b = self
                .state
                .get(&other_k)
                .ok_or_else(|| StreamError::Join("a matched bucket vanished".into()))?;
            for &e in m {
                let row = b.row(e).map_err(StreamError::Codec)?;
                let (Some(row), Some(entry)) = (row, b.counts(e)) else {
                    return Err(StreamError::Join("a match vanished".into()));
                };
                let row = &row;
                matched += entry.count;
                // w is +1 or -1: the degree leaves or reaches 0.
                let crosses = track && entry.degree == if w > 0 { 0 } else { 1 };
                if w > 0 {
                    if crosses {
                        out.push(other, row, None, -1, entry.count);
                    }
                    out.push(side, c.row(width)?, Some(row), 1, entry.count);
                } else {
                    out.push(side, c.row(width)?, Some(row), -1, entry.count);
                    if crosses {
                        out.push(other, row, None, 1, entry.count);
                    }
                }
            }
            if track {
                let lenient = !self.ttl.is_none();
                self.state.update(&other_k, |slot| {
                    let b = slot
                        .as_mut()
                        .ok_or_else(|| StreamError::Join("a matched bucket vanished".into()))?;
                    for &e in m {
                        if let Some(entry) = b.counts_mut(e) {
                            entry.degree += w;
                            if entry.degree < 0 && lenient {
                                entry.degree = 0;
                            } else if entry.degree < 0 {
                                return Err(StreamError::Join(
                                    "a row's match count fell below zero".into(),
                                ));
                            }
                        }
                    }
                    Ok(())
                })?;
            }
        }
        if matched == 0 && kind.preserves(side) {
            out.push(side, c.row(width)?, None, w, 1);
        }
        // This side's own state.
        let degree = if kind.preserves(side) { matched } else { 0 };
        self.fold(&key, c, width, degree)
    }

    /// A change of a semi or anti join, whose output is side `kept`'s rows alone: a kept
    /// row is emitted while its degree is above 0 (semi) or is 0 (anti), so a change of the
    /// other side emits or retracts the kept rows whose degree it moves across 0.
    pub(super) fn apply_semi(
        &mut self,
        kept: usize,
        side: usize,
        mut c: RowChange,
        m: &[usize],
        out: &mut Output,
    ) -> Result<(), StreamError> {
        let (anti, w) = (self.kind.anti(), c.weight);
        let width = self.types[side].len();
        let Some(key) = c.key.take() else {
            // A NULL join key matches nothing: an anti join keeps the row, a semi join not.
            if side == kept && anti {
                out.push(side, c.row(width)?, None, w, 1);
            }
            return Ok(());
        };
        if w < 0 && self.expired(&key, &c.packed) {
            return Ok(()); // Its output went with it (TTL): nothing to retract.
        }
        let other_k = other_key(&key);
        let mut matched = 0;
        if side == kept {
            if let Some(b) = self.state.get(&other_k) {
                matched = m.iter().filter_map(|&e| b.counts(e)).map(|e| e.count).sum();
            }
            if (matched > 0) != anti {
                out.push(side, c.row(width)?, None, w, 1);
            }
        } else if !m.is_empty() {
            let lenient = !self.ttl.is_none();
            self.state.update(&other_k, |slot| {
                let b = slot
                    .as_mut()
                    .ok_or_else(|| StreamError::Join("a matched bucket vanished".into()))?;
                for &e in m {
                    let Some(entry) = b.counts_mut(e) else {
                        continue;
                    };
                    let before = entry.degree;
                    entry.degree += w;
                    if entry.degree < 0 && lenient {
                        entry.degree = 0;
                    } else if entry.degree < 0 {
                        return Err(StreamError::Join(
                            "a row's match count fell below zero".into(),
                        ));
                    }
                    if (before == 0) != (entry.degree == 0) {
                        // Semi: the row appears as its first match arrives; anti: it goes.
                        let weight = if anti { -w } else { w };
                        let count = entry.count;
                        if let Some(row) = b.row(e).map_err(StreamError::Codec)? {
                            out.push(kept, &row, None, weight, count);
                        }
                    }
                }
                Ok(())
            })?;
        }
        let degree = if side == kept { matched } else { 0 };
        self.fold(&key, c, width, degree)
    }

    /// With a TTL: whether `row` is missing from its bucket `key` (it expired), so a
    /// retraction of it changes nothing.
    fn expired(&self, key: &[u8], packed: &[u8]) -> bool {
        !self.ttl.is_none() && self.state.get(key).is_none_or(|b| !b.contains(packed))
    }

    /// Folds the change `c` (of `width` cells) into its own side's bucket `key`; a new row
    /// starts with `degree`.
    fn fold(
        &mut self,
        key: &[u8],
        c: RowChange,
        width: usize,
        degree: i64,
    ) -> Result<(), StreamError> {
        let w = c.weight;
        if let Some(end) = c.end {
            let keys = self.ends.entry(end).or_default();
            if !keys.contains(key) {
                keys.insert(key.to_vec());
            }
        }
        if let (true, Some(at)) = (w > 0, c.deadline) {
            self.deadlines.add(at, key);
        }
        let lenient = !self.ttl.is_none();
        let packed = c.packed;
        self.state.update(key, |slot| {
            let b = slot.get_or_insert_with(Bucket::default);
            let held = b.add(packed, width, w, degree);
            if b.is_empty() {
                *slot = None;
            }
            if held || lenient {
                Ok(()) // Not held with a TTL: the row expired.
            } else {
                Err(StreamError::Join(
                    "a retraction of a row the join never received".into(),
                ))
            }
        })
    }

    pub(super) fn batch(&self, out: Output) -> Result<Option<RecordBatch>, StreamError> {
        if out.rows.is_empty() {
            return Ok(None);
        }
        let updating = self.updating_out();
        let only = self.kind.only();
        let width = match only {
            Some(s) => self.types[s].len(),
            None => self.types[0].len() + self.types[1].len(),
        };
        let mut columns: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(out.rows.len()); width + usize::from(updating)];
        for (side, row, other, w) in out.rows {
            if w < 0 && !updating {
                return Err(StreamError::Join(
                    "a retraction on an append-only join output".into(),
                ));
            }
            let pad = |s: usize| {
                self.types[s]
                    .iter()
                    .map(ScalarValue::try_from)
                    .collect::<Result<Vec<_>, _>>()
            };
            let flag = updating.then_some(ScalarValue::Boolean(Some(w < 0)));
            if only.is_some() {
                // A semi or anti join's row is its kept side's alone.
                for (col, v) in columns.iter_mut().zip(row.into_iter().chain(flag)) {
                    col.push(v);
                }
                continue;
            }
            let this = row;
            let that = match other {
                Some(o) => o,
                None => pad(1 - side)?,
            };
            let (l, r) = if side == 0 {
                (this, that)
            } else {
                (that, this)
            };
            for (col, v) in columns.iter_mut().zip(l.into_iter().chain(r).chain(flag)) {
                col.push(v);
            }
        }
        let arrays = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(v, f)| to_array(v, f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(RecordBatch::try_new(self.schema.clone(), arrays)?))
    }
}

/// Output rows collected for a batch: (side of `row`, `row`, the other side's row or `None`
/// for NULL padding, weight).
#[derive(Default)]
pub(super) struct Output {
    pub(super) rows: Vec<(usize, Row, Option<Row>, i64)>,
}

impl Output {
    pub(super) fn push(
        &mut self,
        side: usize,
        row: &[ScalarValue],
        other: Option<&Vec<ScalarValue>>,
        w: i64,
        times: i64,
    ) {
        for _ in 0..times.max(0) {
            self.rows.push((side, row.to_vec(), other.cloned(), w));
        }
    }
}
