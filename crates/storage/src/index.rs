//! Sparse offset and time indexes of a segment, in Kafka's file format.
//!
//! `.index`: (relative offset u32 BE, file position u32 BE), at most one entry per
//! `index.interval.bytes` of log. `.timeindex`: (timestamp i64 BE, relative offset u32 BE),
//! appended at the same points when the segment's max timestamp grew, plus one final entry
//! when the segment is sealed, so a sealed segment's last time entry is its max timestamp.
//!
//! Both are hints: every lookup lands at or before the wanted batch and the caller scans
//! forward, so a lost tail only costs scan time, and recovery can always rebuild them.

/// Bytes per offset index entry.
pub const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes per time index entry.
pub const TIME_ENTRY_LEN: usize = 12;

/// Timestamp meaning "none" (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Why an index file was rejected (and will be rebuilt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexDefect {
    /// The file does not exist.
    Missing,
    /// Size is not a multiple of the entry size.
    PartialEntry,
    /// Offsets, positions or timestamps do not strictly increase.
    NotIncreasing,
    /// An entry points at or beyond the end of the log file.
    BeyondLog,
}

/// Both sparse indexes of one segment, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
}

impl SegmentIndex {
    /// File position of the last indexed batch at or below `relative_offset` (0 if none):
    /// the place to start scanning for that offset.
    pub fn position_for(&self, relative_offset: u32) -> u32 {
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        i.checked_sub(1)
            .and_then(|i| self.offsets.get(i))
            .map_or(0, |e| e.position)
    }

    /// Relative offset of the batch from which to scan for the first record with timestamp ≥
    /// `ts`: the entry with the largest timestamp ≤ `ts` (batches before it all have smaller
    /// timestamps, because an entry is written only when the max first grows). 0 if none.
    pub fn relative_offset_for_time(&self, ts: i64) -> u32 {
        let i = self.times.partition_point(|e| e.timestamp <= ts);
        i.checked_sub(1)
            .and_then(|i| self.times.get(i))
            .map_or(0, |e| e.relative_offset)
    }

    pub fn last_time(&self) -> Option<TimeEntry> {
        self.times.last().copied()
    }

    pub fn encode_offsets(entries: &[OffsetEntry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(entries.len() * OFFSET_ENTRY_LEN);
        for e in entries {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    pub fn encode_times(entries: &[TimeEntry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(entries.len() * TIME_ENTRY_LEN);
        for e in entries {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Decodes and checks an offset index file against a log of `log_len` bytes.
    pub fn decode_offsets(bytes: &[u8], log_len: u64) -> Result<Vec<OffsetEntry>, IndexDefect> {
        let chunks = bytes.chunks_exact(OFFSET_ENTRY_LEN);
        if !chunks.remainder().is_empty() {
            return Err(IndexDefect::PartialEntry);
        }
        let mut out: Vec<OffsetEntry> = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_LEN);
        for chunk in chunks {
            let (rel, pos) = chunk.split_at(4);
            let entry = OffsetEntry {
                relative_offset: u32::from_be_bytes(
                    rel.try_into().map_err(|_| IndexDefect::PartialEntry)?,
                ),
                position: u32::from_be_bytes(
                    pos.try_into().map_err(|_| IndexDefect::PartialEntry)?,
                ),
            };
            if u64::from(entry.position) >= log_len {
                return Err(IndexDefect::BeyondLog);
            }
            if let Some(prev) = out.last() {
                if entry.relative_offset <= prev.relative_offset || entry.position <= prev.position
                {
                    return Err(IndexDefect::NotIncreasing);
                }
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Decodes and checks a time index file.
    pub fn decode_times(bytes: &[u8]) -> Result<Vec<TimeEntry>, IndexDefect> {
        let chunks = bytes.chunks_exact(TIME_ENTRY_LEN);
        if !chunks.remainder().is_empty() {
            return Err(IndexDefect::PartialEntry);
        }
        let mut out: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_LEN);
        for chunk in chunks {
            let (ts, rel) = chunk.split_at(8);
            let entry = TimeEntry {
                timestamp: i64::from_be_bytes(
                    ts.try_into().map_err(|_| IndexDefect::PartialEntry)?,
                ),
                relative_offset: u32::from_be_bytes(
                    rel.try_into().map_err(|_| IndexDefect::PartialEntry)?,
                ),
            };
            if let Some(prev) = out.last() {
                if entry.timestamp <= prev.timestamp || entry.relative_offset < prev.relative_offset
                {
                    return Err(IndexDefect::NotIncreasing);
                }
            }
            out.push(entry);
        }
        Ok(out)
    }
}

/// An [`IndexBuilder`]'s state before an append (see [`IndexBuilder::mark`]).
#[derive(Clone, Copy, Debug)]
pub struct IndexMark {
    offsets: usize,
    times: usize,
    bytes_since_entry: u64,
    max_timestamp: i64,
    offset_of_max: i64,
}

/// Builds a segment's indexes batch by batch, for the active segment and for rebuilds, so
/// both produce identical files.
#[derive(Clone, Debug)]
pub struct IndexBuilder {
    base_offset: i64,
    pub index: SegmentIndex,
    bytes_since_entry: u64,
    max_timestamp: i64,
    offset_of_max: i64,
}

impl IndexBuilder {
    pub fn new(base_offset: i64) -> IndexBuilder {
        IndexBuilder {
            base_offset,
            index: SegmentIndex::default(),
            bytes_since_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max: base_offset,
        }
    }

    /// Continues from indexes loaded from disk for a log of `log_len` bytes, whose max
    /// timestamp so far is `max` (timestamp, offset).
    pub fn resume(
        base_offset: i64,
        index: SegmentIndex,
        log_len: u64,
        max: Option<(i64, i64)>,
    ) -> IndexBuilder {
        let last_pos = index.offsets.last().map_or(0, |e| u64::from(e.position));
        let (max_timestamp, offset_of_max) = max.unwrap_or((NO_TIMESTAMP, base_offset));
        IndexBuilder {
            base_offset,
            index,
            bytes_since_entry: log_len.saturating_sub(last_pos),
            max_timestamp,
            offset_of_max,
        }
    }

    fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset.checked_sub(self.base_offset)?).ok()
    }

    /// Accounts for a batch of `size` bytes written at `position`. Adds an offset entry (and
    /// a time entry if the max timestamp grew since the last one) once at least `interval`
    /// bytes were written since the previous entry.
    pub fn on_batch(
        &mut self,
        position: u32,
        base_offset: i64,
        max_timestamp: i64,
        size: u64,
        interval: u32,
    ) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max = base_offset;
        }
        if self.bytes_since_entry >= u64::from(interval) {
            let later = self
                .index
                .offsets
                .last()
                .is_none_or(|e| e.position < position);
            if let (Some(rel), true) = (self.relative(base_offset), later) {
                self.index.offsets.push(OffsetEntry {
                    relative_offset: rel,
                    position,
                });
                self.maybe_append_time();
                self.bytes_since_entry = 0;
            }
        }
        self.bytes_since_entry = self.bytes_since_entry.saturating_add(size);
    }

    fn maybe_append_time(&mut self) {
        let grew = self
            .index
            .last_time()
            .is_none_or(|e| self.max_timestamp > e.timestamp);
        if self.max_timestamp > NO_TIMESTAMP && grew {
            if let Some(rel) = self.relative(self.offset_of_max) {
                self.index.times.push(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: rel,
                });
            }
        }
    }

    /// Where the builder is now, so a failed append can be undone with [`Self::rollback`].
    pub fn mark(&self) -> IndexMark {
        IndexMark {
            offsets: self.index.offsets.len(),
            times: self.index.times.len(),
            bytes_since_entry: self.bytes_since_entry,
            max_timestamp: self.max_timestamp,
            offset_of_max: self.offset_of_max,
        }
    }

    /// Forgets every batch accounted for since `mark`.
    pub fn rollback(&mut self, mark: IndexMark) {
        self.index.offsets.truncate(mark.offsets);
        self.index.times.truncate(mark.times);
        self.bytes_since_entry = mark.bytes_since_entry;
        self.max_timestamp = mark.max_timestamp;
        self.offset_of_max = mark.offset_of_max;
    }

    /// Appends the final time entry so the last entry is the segment's max timestamp. Done
    /// when sealing a segment and at clean shutdown; harmless if appends continue.
    pub fn seal(&mut self) {
        self.maybe_append_time();
    }

    /// (max timestamp, offset of the batch holding it), or None if no batch had a timestamp.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        (self.max_timestamp > NO_TIMESTAMP).then_some((self.max_timestamp, self.offset_of_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_every_interval_and_lookup() {
        let mut b = IndexBuilder::new(100);
        // Five 40-byte batches of 2 offsets each, interval 64.
        for i in 0..5u32 {
            b.on_batch(i * 40, 100 + i64::from(i) * 2, 1_000 + i64::from(i), 40, 64);
        }
        assert_eq!(
            b.index.offsets,
            vec![
                OffsetEntry {
                    relative_offset: 4,
                    position: 80
                },
                OffsetEntry {
                    relative_offset: 8,
                    position: 160
                },
            ]
        );
        assert_eq!(
            b.index.times,
            vec![
                TimeEntry {
                    timestamp: 1_002,
                    relative_offset: 4
                },
                TimeEntry {
                    timestamp: 1_004,
                    relative_offset: 8
                },
            ]
        );
        assert_eq!(b.index.position_for(0), 0);
        assert_eq!(b.index.position_for(3), 0);
        assert_eq!(b.index.position_for(4), 80);
        assert_eq!(b.index.position_for(7), 80);
        assert_eq!(b.index.position_for(100), 160);
        assert_eq!(b.index.relative_offset_for_time(0), 0);
        assert_eq!(b.index.relative_offset_for_time(1_003), 4);
        assert_eq!(b.max_timestamp(), Some((1_004, 108)));
    }

    #[test]
    fn seal_adds_final_max_entry_once() {
        let mut b = IndexBuilder::new(0);
        b.on_batch(0, 0, 500, 100, 4096);
        b.on_batch(100, 1, 700, 100, 4096);
        assert!(b.index.times.is_empty());
        b.seal();
        b.seal();
        assert_eq!(
            b.index.times,
            vec![TimeEntry {
                timestamp: 700,
                relative_offset: 1
            }]
        );
    }

    #[test]
    fn decode_round_trips_and_rejects_bad_files() {
        let offsets = vec![
            OffsetEntry {
                relative_offset: 3,
                position: 100,
            },
            OffsetEntry {
                relative_offset: 9,
                position: 300,
            },
        ];
        let bytes = SegmentIndex::encode_offsets(&offsets);
        assert_eq!(
            SegmentIndex::decode_offsets(&bytes, 301),
            Ok(offsets.clone())
        );
        assert_eq!(
            SegmentIndex::decode_offsets(&bytes, 300),
            Err(IndexDefect::BeyondLog)
        );
        assert_eq!(
            SegmentIndex::decode_offsets(&bytes[..7], 1_000),
            Err(IndexDefect::PartialEntry)
        );
        let reversed = SegmentIndex::encode_offsets(&[offsets[1], offsets[0]]);
        assert_eq!(
            SegmentIndex::decode_offsets(&reversed, 1_000),
            Err(IndexDefect::NotIncreasing)
        );
        let times = vec![
            TimeEntry {
                timestamp: 5,
                relative_offset: 0,
            },
            TimeEntry {
                timestamp: 9,
                relative_offset: 4,
            },
        ];
        let bytes = SegmentIndex::encode_times(&times);
        assert_eq!(SegmentIndex::decode_times(&bytes), Ok(times.clone()));
        let flat = SegmentIndex::encode_times(&[times[0], times[0]]);
        assert_eq!(
            SegmentIndex::decode_times(&flat),
            Err(IndexDefect::NotIncreasing)
        );
    }
}
