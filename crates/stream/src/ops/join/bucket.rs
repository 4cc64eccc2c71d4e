//! A join side's state: the distinct rows of one join key (a [`Bucket`]), each with its
//! multiplicity and degree, in the state codec a checkpoint writes and a restore reads.
//!
//! A bucket is an insertion-ordered hash map (`IndexMap`) from row to its counts: a change
//! finds its row in O(1) (a hot join key, e.g. q5's window start, holds thousands of rows
//! that change one at a time), the match phase addresses rows by index, and the heap bytes
//! are a running total, so the memory accounting `KeyedState` runs on every update is O(1)
//! instead of a walk over every cell of the key.

use datafusion_common::ScalarValue;
use indexmap::IndexMap;

use crate::state::codec::{self, CodecError};
use crate::state::StateValue;

/// A row of a side's values.
pub(super) type Row = Vec<ScalarValue>;

/// Bytes a row costs beyond its cells: its `Vec` header, its counts, the index's hash and
/// slot.
const ROW_OVERHEAD: usize = 56;

/// How often a distinct row is held, and how many rows of the other side match it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) count: i64,
    /// Rows of the other side matching this one (kept only when this side is preserved).
    pub(super) degree: i64,
}

/// The rows of one side with one join key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    rows: IndexMap<Row, Counts>,
    /// Heap bytes of `rows`, kept as rows come and go.
    bytes: usize,
}

fn row_bytes(row: &[ScalarValue]) -> usize {
    ROW_OVERHEAD + row.iter().map(ScalarValue::size).sum::<usize>()
}

impl Bucket {
    /// Distinct rows held.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row at `index` (stable until a row of this bucket is removed).
    pub(super) fn get(&self, index: usize) -> Option<(&Row, &Counts)> {
        self.rows.get_index(index)
    }

    pub(super) fn counts_mut(&mut self, index: usize) -> Option<&mut Counts> {
        self.rows.get_index_mut(index).map(|(_, c)| c)
    }

    pub(super) fn contains(&self, row: &[ScalarValue]) -> bool {
        self.rows.contains_key(row)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Row, &Counts)> {
        self.rows.iter()
    }

    /// Adds `w` to `row`'s multiplicity (a new row starts with `degree`); a row whose
    /// multiplicity reaches 0 goes (the last row takes its index). False when `w` retracts
    /// a row the bucket does not hold (nothing changes then).
    pub(super) fn add(&mut self, row: Row, w: i64, degree: i64) -> bool {
        if let Some(i) = self.rows.get_index_of(&row) {
            let gone = match self.rows.get_index_mut(i) {
                Some((_, c)) => {
                    c.count += w;
                    c.count <= 0
                }
                None => false,
            };
            if gone {
                if let Some((row, _)) = self.rows.swap_remove_index(i) {
                    self.bytes = self.bytes.saturating_sub(row_bytes(&row));
                }
            }
            return true;
        }
        if w <= 0 {
            return false;
        }
        self.bytes += row_bytes(&row);
        self.rows.insert(row, Counts { count: w, degree });
        true
    }
}

impl StateValue for Bucket {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let width = self.rows.keys().next().map_or(0, Vec::len);
        let mut fields = Vec::with_capacity(2 + self.rows.len() * (width + 2));
        fields.push(ScalarValue::Int64(Some(self.rows.len() as i64)));
        fields.push(ScalarValue::Int64(Some(width as i64)));
        for (row, c) in &self.rows {
            fields.push(ScalarValue::Int64(Some(c.count)));
            fields.push(ScalarValue::Int64(Some(c.degree)));
            fields.extend(row.iter().cloned());
        }
        codec::encode_row(&fields, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let fields = codec::decode_row(bytes)?;
        let mut it = fields.into_iter();
        let (n, width) = (int(&mut it, "the row count")?, int(&mut it, "the width")?);
        let mut b = Bucket::default();
        for _ in 0..n {
            let count = int(&mut it, "a multiplicity")?;
            let degree = int(&mut it, "a degree")?;
            let row: Row = it.by_ref().take(width as usize).collect();
            if row.len() != width as usize {
                return Err(CodecError::Invalid("join state: a row is cut short".into()));
            }
            if count == 0 || b.contains(&row) {
                return Err(CodecError::Invalid(
                    "join state: a row held twice or zero times".into(),
                ));
            }
            b.add(row, count, degree);
        }
        if it.next().is_some() {
            return Err(CodecError::Invalid("join state: trailing values".into()));
        }
        Ok(b)
    }

    fn size(&self) -> usize {
        32 + self.bytes
    }
}

/// The next value of a state row as a non-negative integer.
pub(crate) fn int(
    it: &mut impl Iterator<Item = ScalarValue>,
    what: &str,
) -> Result<i64, CodecError> {
    match it.next() {
        Some(ScalarValue::Int64(Some(n))) if n >= 0 => Ok(n),
        other => Err(CodecError::Invalid(format!("state: {what} is {other:?}"))),
    }
}

/// The state key of the other side's bucket with the same join key.
pub(super) fn other_key(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    if let Some(side) = k.first_mut() {
        *side = 1 - *side;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(a: i64, s: &str) -> Row {
        vec![
            ScalarValue::Int64(Some(a)),
            ScalarValue::Utf8(Some(s.into())),
        ]
    }

    #[test]
    fn the_running_byte_total_equals_a_fresh_sum_and_survives_a_round_trip() {
        let mut b = Bucket::default();
        let fresh = |b: &Bucket| 32 + b.iter().map(|(r, _)| row_bytes(r)).sum::<usize>();
        for i in 0..50 {
            assert!(b.add(row(i, &"x".repeat(i as usize)), 1, 0));
        }
        assert!(b.add(row(3, "xxx"), 1, 0), "a second copy");
        for i in (0..50).step_by(3) {
            assert!(b.add(row(i, &"x".repeat(i as usize)), -1, 0));
        }
        assert!(!b.add(row(99, "absent"), -1, 0), "retracting an absent row");
        assert_eq!(b.len(), 50 - 17 + 1, "row 3 kept one copy");
        assert_eq!(b.size(), fresh(&b));
        assert_eq!(
            b.iter()
                .find(|(r, _)| **r == row(3, "xxx"))
                .map(|(_, c)| c.count),
            Some(1)
        );
        let mut bytes = Vec::new();
        b.encode(&mut bytes).expect("encode");
        let back = Bucket::decode(&bytes).expect("decode");
        assert_eq!(back, b);
        assert_eq!(back.size(), b.size());
        let order = |b: &Bucket| b.iter().map(|(r, c)| (r.clone(), *c)).collect::<Vec<_>>();
        assert_eq!(order(&back), order(&b), "the order (match indices) is kept");
    }

    #[test]
    fn a_bucket_holding_a_row_twice_is_refused() {
        let fields = [2, 2, 1, 0, 7, 0, 1, 0, 7, 0].map(|v| ScalarValue::Int64(Some(v)));
        let mut bytes = Vec::new();
        codec::encode_row(&fields[..], &mut bytes).expect("encode");
        assert!(Bucket::decode(&bytes).is_err());
    }
}
