//! A join side's state: the distinct rows of one join key (a [`Bucket`]), each with its
//! multiplicity and degree, in the state codec a checkpoint writes and a restore reads.

use datafusion_common::ScalarValue;

use crate::state::codec::{self, CodecError};
use crate::state::StateValue;

/// One distinct row of a side: its values, multiplicity and degree.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Entry {
    pub(super) row: Vec<ScalarValue>,
    pub(super) count: i64,
    /// Rows of the other side matching this one (kept only when this side is preserved).
    pub(super) degree: i64,
}

/// The rows of one side with one join key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    pub(super) entries: Vec<Entry>,
}

impl StateValue for Bucket {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let width = self.entries.first().map_or(0, |e| e.row.len());
        let mut fields = Vec::with_capacity(2 + self.entries.len() * (width + 2));
        fields.push(ScalarValue::Int64(Some(self.entries.len() as i64)));
        fields.push(ScalarValue::Int64(Some(width as i64)));
        for e in &self.entries {
            fields.push(ScalarValue::Int64(Some(e.count)));
            fields.push(ScalarValue::Int64(Some(e.degree)));
            fields.extend(e.row.iter().cloned());
        }
        codec::encode_row(&fields, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let fields = codec::decode_row(bytes)?;
        let mut it = fields.into_iter();
        let (n, width) = (int(&mut it, "the row count")?, int(&mut it, "the width")?);
        let mut entries = Vec::new();
        for _ in 0..n {
            let count = int(&mut it, "a multiplicity")?;
            let degree = int(&mut it, "a degree")?;
            let row: Vec<ScalarValue> = it.by_ref().take(width as usize).collect();
            if row.len() != width as usize {
                return Err(CodecError::Invalid("join state: a row is cut short".into()));
            }
            entries.push(Entry { row, count, degree });
        }
        if it.next().is_some() {
            return Err(CodecError::Invalid("join state: trailing values".into()));
        }
        Ok(Bucket { entries })
    }

    fn size(&self) -> usize {
        32 + self
            .entries
            .iter()
            .map(|e| 40 + e.row.iter().map(ScalarValue::size).sum::<usize>())
            .sum::<usize>()
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
