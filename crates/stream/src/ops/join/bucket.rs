//! A join side's state: the distinct rows of one join key (a [`Bucket`]), each with its
//! multiplicity and degree, in the state codec a checkpoint writes and a restore reads.
//!
//! A bucket is an insertion-ordered hash map (`IndexMap`) from a row to its counts: a change
//! finds its row in O(1) (a hot join key, e.g. q5's window start, holds thousands of rows
//! that change one at a time), the match phase addresses rows by index, and the heap bytes
//! are a running total, so the memory accounting `KeyedState` runs on every update is O(1)
//! instead of a walk over every cell of the key.
//!
//! Rows are held packed, as their cells' state codec bytes ([`codec::encode_values`]), not
//! as `ScalarValue`s (48 bytes a cell before any heap): a bid of q7 or q20 takes a third of
//! the memory, rows hash and compare as bytes, and a checkpoint splices them as they are. A
//! row is decoded when it is emitted or filtered ([`Bucket::row`]).

use datafusion_common::ScalarValue;
use indexmap::IndexMap;

use crate::state::codec::{self, CodecError};
use crate::state::StateValue;

/// A row of a side's values.
pub(super) type Row = Vec<ScalarValue>;

/// Bytes a row costs beyond its packed cells: the box, its counts, the index's hash and
/// slot.
const ROW_OVERHEAD: usize = 48;

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
    /// Packed rows ([`pack`]), all of `width` cells.
    rows: IndexMap<Box<[u8]>, Counts>,
    width: usize,
    /// Heap bytes of `rows`, kept as rows come and go.
    bytes: usize,
}

/// A row's cells in the state codec: how a bucket holds and finds it.
pub(super) fn pack(row: &[ScalarValue]) -> Result<Box<[u8]>, CodecError> {
    let mut out = Vec::with_capacity(row.len() * 12);
    codec::encode_values(row, &mut out)?;
    Ok(out.into_boxed_slice())
}

fn row_bytes(packed: &[u8]) -> usize {
    ROW_OVERHEAD + packed.len()
}

impl Bucket {
    /// Distinct rows held.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Cells per row.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// The counts of the row at `index` (stable until a row of this bucket is removed).
    pub(super) fn counts(&self, index: usize) -> Option<&Counts> {
        self.rows.get_index(index).map(|(_, c)| c)
    }

    pub(super) fn counts_mut(&mut self, index: usize) -> Option<&mut Counts> {
        self.rows.get_index_mut(index).map(|(_, c)| c)
    }

    /// The row at `index`, decoded.
    pub(super) fn row(&self, index: usize) -> Result<Option<Row>, CodecError> {
        match self.rows.get_index(index) {
            Some((packed, _)) => codec::decode_values(packed, self.width).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn contains(&self, packed: &[u8]) -> bool {
        self.rows.contains_key(packed)
    }

    /// The packed rows and their counts, in index order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (&[u8], &Counts)> {
        self.rows.iter().map(|(r, c)| (&**r, c))
    }

    /// Adds `w` to the multiplicity of the row `packed` of `width` cells (a new row starts
    /// with `degree`); a row whose multiplicity reaches 0 goes (the last row takes its
    /// index). False when `w` retracts a row the bucket does not hold (nothing changes then).
    pub(super) fn add(&mut self, packed: Box<[u8]>, width: usize, w: i64, degree: i64) -> bool {
        if let Some(i) = self.rows.get_index_of(&packed) {
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
        self.width = width;
        self.bytes += row_bytes(&packed);
        self.rows.insert(packed, Counts { count: w, degree });
        true
    }
}

impl Bucket {
    /// Keeps the rows `keep` accepts (given each packed row); the number removed.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> usize {
        let before = self.rows.len();
        let mut freed = 0;
        self.rows.retain(|row, _| {
            let k = keep(row);
            if !k {
                freed += row_bytes(row);
            }
            k
        });
        self.bytes = self.bytes.saturating_sub(freed);
        before - self.rows.len()
    }
}

impl StateValue for Bucket {
    /// The layout of a row of `ScalarValue`s: `n, width, (count, degree, cells...)*`, the
    /// packed cells spliced as they are.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let width = if self.rows.is_empty() { 0 } else { self.width };
        let packed: usize = self.rows.keys().map(|r| r.len()).sum();
        out.reserve(5 + 20 + self.rows.len() * 20 + packed);
        codec::row_header(2 + self.rows.len() * (width + 2), out)?;
        let int = |v: usize| ScalarValue::Int64(Some(v as i64));
        codec::encode_values(&[int(self.rows.len()), int(width)], out)?;
        for (row, c) in &self.rows {
            let counts = [c.count, c.degree].map(|v| ScalarValue::Int64(Some(v)));
            codec::encode_values(&counts, out)?;
            out.extend_from_slice(row);
        }
        Ok(())
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
            let packed = pack(&row)?;
            if count == 0 || b.contains(&packed) {
                return Err(CodecError::Invalid(
                    "join state: a row held twice or zero times".into(),
                ));
            }
            b.add(packed, row.len(), count, degree);
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

    fn add(b: &mut Bucket, r: &Row, w: i64) -> bool {
        b.add(pack(r).expect("pack"), r.len(), w, 0)
    }

    #[test]
    fn the_running_byte_total_equals_a_fresh_sum_and_survives_a_round_trip() {
        let mut b = Bucket::default();
        let fresh = |b: &Bucket| 32 + b.iter().map(|(r, _)| row_bytes(r)).sum::<usize>();
        for i in 0..50 {
            assert!(add(&mut b, &row(i, &"x".repeat(i as usize)), 1));
        }
        assert!(add(&mut b, &row(3, "xxx"), 1), "a second copy");
        for i in (0..50).step_by(3) {
            assert!(add(&mut b, &row(i, &"x".repeat(i as usize)), -1));
        }
        assert!(
            !add(&mut b, &row(99, "absent"), -1),
            "retracting an absent row"
        );
        assert_eq!(b.len(), 50 - 17 + 1, "row 3 kept one copy");
        assert_eq!(b.size(), fresh(&b));
        let three = (0..b.len()).find(|&i| b.row(i).expect("row") == Some(row(3, "xxx")));
        assert_eq!(three.and_then(|i| b.counts(i)).map(|c| c.count), Some(1));
        let mut bytes = Vec::new();
        b.encode(&mut bytes).expect("encode");
        let back = Bucket::decode(&bytes).expect("decode");
        assert_eq!(back, b);
        assert_eq!(back.size(), b.size());
        let order = |b: &Bucket| {
            (0..b.len())
                .map(|i| (b.row(i).expect("row"), b.counts(i).copied()))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&back), order(&b), "the order (match indices) is kept");
    }

    #[test]
    fn a_checkpoint_is_byte_for_byte_the_layout_of_unpacked_rows() {
        // What the bucket wrote when it held `ScalarValue` rows: restores of older
        // checkpoints and newer ones read the same bytes.
        let mut b = Bucket::default();
        let (r1, r2) = (row(1, "a"), row(2, "bé"));
        assert!(add(&mut b, &r1, 1));
        assert!(add(&mut b, &r1, 1));
        assert!(b.add(pack(&r2).expect("pack"), 2, 1, 3));
        let mut fields = [2, 2, 2, 0].map(|v| ScalarValue::Int64(Some(v))).to_vec();
        fields.extend(r1);
        fields.extend([1, 3].map(|v| ScalarValue::Int64(Some(v))));
        fields.extend(r2);
        let mut want = Vec::new();
        codec::encode_row(&fields, &mut want).expect("encode");
        let mut got = Vec::new();
        b.encode(&mut got).expect("encode");
        assert_eq!(got, want);
        let mut empty = Vec::new();
        Bucket::default().encode(&mut empty).expect("encode");
        let mut want = Vec::new();
        codec::encode_row(&[0, 0].map(|v| ScalarValue::Int64(Some(v))), &mut want).expect("e");
        assert_eq!(empty, want);
    }

    #[test]
    fn a_bucket_holding_a_row_twice_is_refused() {
        let fields = [2, 2, 1, 0, 7, 0, 1, 0, 7, 0].map(|v| ScalarValue::Int64(Some(v)));
        let mut bytes = Vec::new();
        codec::encode_row(&fields[..], &mut bytes).expect("encode");
        assert!(Bucket::decode(&bytes).is_err());
    }
}
