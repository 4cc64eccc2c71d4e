//! Deduplication at the source (`dedup.key`, `dedup.within`, design §9 "Dedup shorthand"):
//! in each pipeline that reads a source declaring it, the rows a read decoded pass through
//! [`Dedup`] before the first operator sees them, after the source's watermark has observed
//! their event times (so a source's watermark is the same with or without it).
//!
//! A row is a duplicate when a row with the same key was kept at an event time `first`
//! with `first - within < t < first + within`: it is dropped and counted (the pipeline's
//! `duplicate_rows`), never dead-lettered. Otherwise it is kept, and when its key's entry is
//! absent or `within` or more behind, the row becomes the key's first-seen one. Rows without
//! an event time are kept and remembered by nothing.
//!
//! State: per key, `siphash128(encoded key) -> first-seen event time (ms)`: 24 bytes in the
//! map, 24 in the index by deadline (`first + within`) that frees an entry once the
//! watermark reaches it. No row at or after the watermark can be a duplicate of a freed
//! entry; a late row (behind the watermark, kept by pipelines without window operators) whose
//! key's entry was freed is kept. Two distinct keys share a 128-bit hash with probability
//! about n² / 2¹²⁹ for n keys held at once (10⁹ keys: below 10⁻²⁰); such a pair would drop
//! the second key's rows within the bound. Entries are checkpointed as deltas with the
//! epoch, like any operator's, under the source node's operator id.
//!
//! The key encoding is Weir's own and must never change (hashes are checkpointed): per key
//! column a null flag (0 null, 1 present) then the value: fixed-width values (integers,
//! floats, dates, timestamps, decimals) as their little-endian bytes, booleans as one byte,
//! text and bytes as a u32 little-endian length and the bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::DataType;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::error::StreamError;
use crate::source::event_time::event_times_ms;
use crate::state::codec::CodecError;
use crate::state::{Change, Stateful};

/// A source's deduplication as planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupSpec {
    /// The decoded columns making the key.
    pub key: Vec<usize>,
    /// The event-time column (the source's watermark column).
    pub time: usize,
    /// The bound, in milliseconds of event time (positive).
    pub within_ms: i64,
}

/// Whether a column of type `t` can be part of a dedup key.
pub fn key_type_supported(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    ) || (t.is_primitive() && t.primitive_width().is_some())
}

/// The 128-bit hash of an encoded key: SipHash-1-3 with fixed keys (specified, so equal
/// keys hash alike in every build; the state holds it).
fn hash(key: &[u8]) -> KeyHash {
    let mut h = SipHasher13::new_with_keys(0x5745_4952_4445_4455, 0x7000_0000_0000_0012);
    h.write(key);
    let h = h.finish128();
    KeyHash(h.h1, h.h2)
}

/// A key's 128-bit hash, as two halves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct KeyHash(u64, u64);

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniform: one half is the table's hash.
        state.write_u64(self.0);
    }
}

/// The table hasher of [`KeyHash`]: passes the written u64 through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Version byte of an entry's value.
const VALUE_VERSION: u8 = 1;
/// Bytes of one map slot (hash and time) and of one index entry (deadline and hash).
const SLOT_BYTES: usize = 24;

pub struct Dedup {
    spec: DedupSpec,
    /// Key hash -> first-seen event time (ms).
    first_seen: HashMap<KeyHash, i64, BuildHasherDefault<PassThrough>>,
    /// (first-seen + within, key): entries by deadline, smallest first. An entry whose key
    /// got a later first-seen time since is stale and skipped when it comes up.
    deadlines: BinaryHeap<Reverse<(i64, KeyHash)>>,
    /// Keys written or freed since the last checkpoint (duplicates removed at the checkpoint).
    dirty: Vec<KeyHash>,
    buf: Vec<u8>,
}

impl Dedup {
    pub fn new(spec: DedupSpec) -> Dedup {
        Dedup {
            spec,
            first_seen: HashMap::default(),
            deadlines: BinaryHeap::new(),
            dirty: Vec::new(),
            buf: Vec::with_capacity(64),
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }

    /// `batch` without its duplicates, and how many were dropped.
    pub fn process(&mut self, batch: RecordBatch) -> Result<(RecordBatch, u64), StreamError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok((batch, 0));
        }
        let times = event_times_ms(&batch, self.spec.time)?;
        let columns = self
            .spec
            .key
            .iter()
            .map(|&i| {
                batch
                    .columns()
                    .get(i)
                    .map(KeyColumn::new)
                    .ok_or_else(|| StreamError::Graph(format!("no dedup key column {i}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let within = self.spec.within_ms;
        let mut keep = Vec::with_capacity(n);
        let mut dropped = 0u64;
        for (row, t) in times.iter().enumerate() {
            let Some(t) = *t else {
                keep.push(true);
                continue;
            };
            self.buf.clear();
            for c in &columns {
                c.write(row, &mut self.buf);
            }
            let h = hash(&self.buf);
            let first = self.first_seen.get(&h).copied();
            let duplicate =
                first.is_some_and(|f| t > f.saturating_sub(within) && t < f.saturating_add(within));
            if duplicate {
                dropped += 1;
                keep.push(false);
                continue;
            }
            keep.push(true);
            if first.is_none_or(|f| t >= f.saturating_add(within)) {
                self.first_seen.insert(h, t);
                self.deadlines.push(Reverse((t.saturating_add(within), h)));
                self.dirty.push(h);
            }
        }
        if dropped == 0 {
            return Ok((batch, 0));
        }
        let keep = BooleanArray::from(keep);
        Ok((
            arrow_select::filter::filter_record_batch(&batch, &keep)?,
            dropped,
        ))
    }

    /// Frees the entries whose bound the watermark `w` (ms) reached: no row at or after it
    /// can be their duplicate.
    pub fn on_watermark(&mut self, w: i64) -> usize {
        let mut freed = 0;
        while let Some(Reverse((deadline, h))) = self.deadlines.peek().copied() {
            if deadline > w {
                break;
            }
            self.deadlines.pop();
            let current = self.first_seen.get(&h).copied();
            if current.is_some_and(|f| f.saturating_add(self.spec.within_ms) == deadline) {
                self.first_seen.remove(&h);
                self.dirty.push(h);
                freed += 1;
            }
        }
        freed
    }
}

impl Stateful for Dedup {
    fn state_bytes(&self) -> usize {
        // hashbrown allocates buckets for 8/7 of its capacity, with a control byte each.
        self.first_seen.capacity() * (SLOT_BYTES + 1) * 8 / 7
            + self.deadlines.capacity() * SLOT_BYTES
            + self.dirty.capacity() * 16
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let changes = dirty
            .iter()
            .map(|h| {
                let mut key = Vec::with_capacity(16);
                key.extend_from_slice(&h.0.to_be_bytes());
                key.extend_from_slice(&h.1.to_be_bytes());
                let value = self.first_seen.get(h).map(|t| {
                    let mut v = Vec::with_capacity(9);
                    v.push(VALUE_VERSION);
                    v.extend_from_slice(&t.to_be_bytes());
                    v
                });
                (key, value)
            })
            .collect();
        // Keeps the allocation for the next epoch.
        dirty.clear();
        self.dirty = dirty;
        Ok(changes)
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let half = |b: Option<&[u8]>| -> Result<u64, CodecError> {
            let b: [u8; 8] = b
                .and_then(|b| b.try_into().ok())
                .ok_or(CodecError::Truncated)?;
            Ok(u64::from_be_bytes(b))
        };
        if key.len() != 16 {
            return Err(CodecError::Invalid(format!(
                "dedup entry key of {} bytes (16 expected)",
                key.len()
            )));
        }
        let h = KeyHash(half(key.get(..8))?, half(key.get(8..))?);
        let t = match value.split_first() {
            Some((&VALUE_VERSION, rest)) if rest.len() == 8 => half(Some(rest))? as i64,
            Some((&v, _)) => return Err(CodecError::Version(v)),
            None => return Err(CodecError::Truncated),
        };
        self.first_seen.insert(h, t);
        self.deadlines
            .push(Reverse((t.saturating_add(self.spec.within_ms), h)));
        Ok(())
    }
}

/// One key column of a batch, typed once per batch.
enum KeyColumn<'a> {
    /// Little-endian values of `width` bytes, from the array's offset.
    Fixed {
        array: &'a ArrayRef,
        values: Buffer,
        offset: usize,
        width: usize,
    },
    Other(&'a ArrayRef),
}

impl<'a> KeyColumn<'a> {
    fn new(array: &'a ArrayRef) -> KeyColumn<'a> {
        match array.data_type().primitive_width() {
            Some(width) if array.data_type().is_primitive() => {
                let data = array.to_data();
                match data.buffers().first() {
                    Some(values) => KeyColumn::Fixed {
                        array,
                        values: values.clone(),
                        offset: data.offset(),
                        width,
                    },
                    None => KeyColumn::Other(array),
                }
            }
            _ => KeyColumn::Other(array),
        }
    }

    fn write(&self, row: usize, out: &mut Vec<u8>) {
        let array = match self {
            KeyColumn::Fixed { array, .. } | KeyColumn::Other(array) => *array,
        };
        if array.is_null(row) {
            out.push(0);
            return;
        }
        out.push(1);
        match self {
            KeyColumn::Fixed {
                values,
                offset,
                width,
                ..
            } => {
                let start = (offset + row) * width;
                if let Some(b) = values.as_slice().get(start..start + width) {
                    out.extend_from_slice(b);
                }
            }
            KeyColumn::Other(a) => {
                let bytes: &[u8] = match a.data_type() {
                    DataType::Boolean => {
                        out.push(u8::from(a.as_boolean().value(row)));
                        return;
                    }
                    DataType::Utf8 => a.as_string::<i32>().value(row).as_bytes(),
                    DataType::LargeUtf8 => a.as_string::<i64>().value(row).as_bytes(),
                    DataType::Utf8View => a.as_string_view().value(row).as_bytes(),
                    DataType::Binary => a.as_binary::<i32>().value(row),
                    DataType::LargeBinary => a.as_binary::<i64>().value(row),
                    DataType::BinaryView => a.as_binary_view().value(row),
                    // Refused at CREATE (`key_type_supported`).
                    _ => &[],
                };
                let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, TimestampMillisecondArray};
    use arrow_schema::{Field, Schema, TimeUnit};

    use super::*;

    /// Rows (id, tag, ts ms).
    fn batch(rows: &[(Option<i64>, &str, Option<i64>)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("tag", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let ids: Int64Array = rows.iter().map(|r| r.0).collect();
        let tags: StringArray = rows.iter().map(|r| Some(r.1)).collect();
        let ts: TimestampMillisecondArray = rows.iter().map(|r| r.2).collect();
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(tags), Arc::new(ts)])
            .expect("batch")
    }

    fn ids(b: &RecordBatch) -> Vec<Option<i64>> {
        b.column(0)
            .as_primitive::<arrow_array::types::Int64Type>()
            .iter()
            .collect()
    }

    fn dedup(key: Vec<usize>, within_ms: i64) -> Dedup {
        Dedup::new(DedupSpec {
            key,
            time: 2,
            within_ms,
        })
    }

    #[test]
    fn repeats_within_the_bound_are_dropped_and_later_ones_start_afresh() {
        let mut d = dedup(vec![0], 100);
        let (kept, dropped) = d
            .process(batch(&[
                (Some(1), "a", Some(1_000)),
                (Some(1), "b", Some(1_099)), // 99 ms after: duplicate
                (Some(2), "a", Some(1_050)),
                (Some(1), "c", Some(1_100)), // 100 ms after: new first-seen
                (Some(1), "d", Some(1_150)), // 50 ms after that one: duplicate
                (Some(1), "e", Some(1_001)), // 99 ms before it: duplicate
                (Some(1), "f", Some(900)),   // 200 ms before: kept, entry unchanged
                (None, "g", Some(1_000)),
                (None, "h", Some(1_010)), // NULL keys are one key, as in PARTITION BY
                (Some(3), "i", None),     // no event time: kept, remembered by nothing
                (Some(3), "j", None),
            ]))
            .expect("process");
        assert_eq!(dropped, 4);
        assert_eq!(
            ids(&kept),
            vec![Some(1), Some(2), Some(1), Some(1), None, Some(3), Some(3)]
        );
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn several_key_columns_make_one_key() {
        let mut d = dedup(vec![0, 1], 1_000);
        let (kept, dropped) = d
            .process(batch(&[
                (Some(1), "a", Some(0)),
                (Some(1), "b", Some(1)),
                (Some(1), "a", Some(2)),
            ]))
            .expect("process");
        assert_eq!((ids(&kept).len(), dropped), (2, 1));
    }

    #[test]
    fn the_watermark_frees_entries_and_checkpoints_carry_them() {
        let mut d = dedup(vec![0], 100);
        d.process(batch(&[
            (Some(1), "a", Some(1_000)),
            (Some(2), "a", Some(1_060)),
        ]))
        .expect("process");
        let changes = d.take_changes().expect("changes");
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|(k, v)| k.len() == 16 && v.is_some()));
        // A restored copy drops what the original drops.
        let mut back = dedup(vec![0], 100);
        for (k, v) in &changes {
            back.restore(k, v.as_deref().expect("value"))
                .expect("restore");
        }
        let again = batch(&[(Some(1), "b", Some(1_050)), (Some(2), "b", Some(1_070))]);
        assert_eq!(back.process(again.clone()).expect("p").1, 2);
        assert_eq!(d.process(again).expect("p").1, 2);
        // Watermark 1 100 reaches key 1's bound (1 000 + 100), not key 2's.
        assert_eq!(d.on_watermark(1_099), 0);
        assert_eq!(d.on_watermark(1_100), 1);
        assert_eq!(d.len(), 1);
        let changes = d.take_changes().expect("changes");
        assert_eq!(changes.len(), 1);
        assert!(changes[0].1.is_none(), "a freed entry is tombstoned");
        assert!(d.take_changes().expect("none").is_empty());
        assert!(d.state_bytes() > 0);
        assert!(back.restore(&[0; 15], &[1; 9]).is_err());
        assert!(back.restore(&[0; 16], &[9; 9]).is_err());
    }

    #[test]
    fn a_replaced_first_seen_time_is_freed_by_its_own_bound() {
        let mut d = dedup(vec![0], 100);
        d.process(batch(&[(Some(1), "a", Some(0)), (Some(1), "b", Some(150))]))
            .expect("process");
        // The stale deadline (100) comes up first and frees nothing.
        assert_eq!(d.on_watermark(100), 0);
        assert_eq!(d.on_watermark(250), 1);
        assert!(d.is_empty());
    }

    #[test]
    fn the_key_hash_is_pinned() {
        // Checkpointed: a change here would let duplicates through after an upgrade.
        let mut buf = Vec::new();
        let b = batch(&[(Some(7), "x", Some(0))]);
        for c in [KeyColumn::new(b.column(0)), KeyColumn::new(b.column(1))] {
            c.write(0, &mut buf);
        }
        assert_eq!(buf, [1, 7, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, b'x']);
        let h = hash(&buf);
        assert_eq!((h.0, h.1), (0x0a34_1465_36fe_a9ee, 0xd104_0dc8_58eb_3daf));
    }
}
