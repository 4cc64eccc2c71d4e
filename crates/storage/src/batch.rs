//! Kafka RecordBatch v2: header parsing, validation, in-place rewrites, iteration.
//!
//! Storage never decodes records except to answer "first record with timestamp ≥ t". Batches
//! are kept exactly as the producer sent them; only the base offset (not covered by the CRC)
//! and, for LogAppendTime topics, the attributes and max timestamp (CRC recomputed) change.

use std::fmt;

/// Bytes before `batchLength`'s coverage starts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, up to and including `recordsCount`.
pub const HEADER_LEN: usize = 61;
/// Smallest legal `batchLength`: a header with zero records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only record format storage accepts.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

pub(crate) const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// What is wrong with a batch. Carried by [`crate::StorageError::CorruptBatch`] /
/// [`crate::StorageError::InvalidBatch`], and used by recovery to decide where to truncate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchDefect {
    /// No bytes at all where at least one batch was required.
    Empty,
    /// The buffer ends before the batch does (a torn write, or a short request).
    Truncated { needed: usize, available: usize },
    /// `magic` is not 2.
    BadMagic(i8),
    /// `batchLength` is smaller than a bare header.
    BadLength(i32),
    /// The stored CRC-32C does not match the bytes.
    CrcMismatch { stored: u32, computed: u32 },
    /// `lastOffsetDelta` is negative.
    NegativeLastOffsetDelta(i32),
    /// `recordsCount` is negative (or zero in produce input).
    BadRecordCount(i32),
    /// A record inside the batch does not decode.
    BadRecord,
    /// Assigning offsets to this batch would overflow i64, or its offsets do not fit the
    /// segment's 32-bit relative offsets.
    OffsetOverflow,
    /// On disk: a batch whose base offset is below the end of the batch before it.
    OffsetWentBackwards { expected_at_least: i64, found: i64 },
    /// An idempotent producer sent more than one batch for one partition in one request.
    MultipleIdempotentBatches,
    /// A client sent a control batch; only the broker writes transaction markers.
    ControlFromClient,
}

impl BatchDefect {
    /// True for a checksum failure (Kafka `CORRUPT_MESSAGE`); every other defect is a
    /// malformed batch (`INVALID_RECORD`).
    pub fn is_checksum_failure(&self) -> bool {
        matches!(self, BatchDefect::CrcMismatch { .. })
    }
}

impl fmt::Display for BatchDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchDefect::Empty => write!(f, "no record batch"),
            BatchDefect::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            BatchDefect::BadMagic(m) => write!(f, "unsupported magic {m} (only v2)"),
            BatchDefect::BadLength(l) => {
                write!(f, "batchLength {l} is below the minimum {MIN_BATCH_LENGTH}")
            }
            BatchDefect::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            BatchDefect::NegativeLastOffsetDelta(d) => write!(f, "negative lastOffsetDelta {d}"),
            BatchDefect::BadRecordCount(c) => write!(f, "bad recordsCount {c}"),
            BatchDefect::BadRecord => write!(f, "a record does not decode"),
            BatchDefect::OffsetOverflow => write!(f, "offset overflow"),
            BatchDefect::OffsetWentBackwards {
                expected_at_least,
                found,
            } => write!(f, "base offset {found} is below {expected_at_least}"),
            BatchDefect::ControlFromClient => {
                write!(
                    f,
                    "control batches are written by the broker, not by clients"
                )
            }
            BatchDefect::MultipleIdempotentBatches => write!(
                f,
                "an idempotent producer must send one batch per partition per request"
            ),
        }
    }
}

/// Compression codec from attribute bits 0-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

/// The fixed 61-byte header of a v2 batch, decoded into plain fields (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> bool {
    match at
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(at..end))
    {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// Reads `batchLength` from the first 12 bytes and returns the total batch size, if the
/// buffer holds at least the log overhead. Used by walks that only need batch boundaries.
pub fn total_size_from_prefix(buf: &[u8]) -> Option<Result<usize, BatchDefect>> {
    let len = i32::from_be_bytes(array(buf, BATCH_LENGTH_AT)?);
    if len < MIN_BATCH_LENGTH {
        return Some(Err(BatchDefect::BadLength(len)));
    }
    // len >= 49 > 0, so the conversion cannot fail on any supported platform.
    Some(
        usize::try_from(len)
            .map(|l| l + LOG_OVERHEAD)
            .map_err(|_| BatchDefect::BadLength(len)),
    )
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`. Checks only that the header is present and
    /// that the magic byte is 2 (the layout differs for older formats).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchDefect> {
        let truncated = || BatchDefect::Truncated {
            needed: HEADER_LEN,
            available: buf.len(),
        };
        if buf.len() < HEADER_LEN {
            // Report a bad magic in preference to truncation when we can see it: a v0/v1
            // message can be shorter than a v2 header.
            if let Some([m]) = array::<1>(buf, MAGIC_AT) {
                let magic = i8::from_be_bytes([m]);
                if magic != MAGIC_V2 {
                    return Err(BatchDefect::BadMagic(magic));
                }
            }
            return Err(truncated());
        }
        let magic = i8::from_be_bytes(array(buf, MAGIC_AT).ok_or_else(truncated)?);
        if magic != MAGIC_V2 {
            return Err(BatchDefect::BadMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(array(buf, BASE_OFFSET_AT).ok_or_else(truncated)?),
            batch_length: i32::from_be_bytes(array(buf, BATCH_LENGTH_AT).ok_or_else(truncated)?),
            partition_leader_epoch: i32::from_be_bytes(
                array(buf, LEADER_EPOCH_AT).ok_or_else(truncated)?,
            ),
            magic,
            crc: u32::from_be_bytes(array(buf, CRC_AT).ok_or_else(truncated)?),
            attributes: i16::from_be_bytes(array(buf, ATTRIBUTES_AT).ok_or_else(truncated)?),
            last_offset_delta: i32::from_be_bytes(
                array(buf, LAST_OFFSET_DELTA_AT).ok_or_else(truncated)?,
            ),
            base_timestamp: i64::from_be_bytes(
                array(buf, BASE_TIMESTAMP_AT).ok_or_else(truncated)?,
            ),
            max_timestamp: i64::from_be_bytes(array(buf, MAX_TIMESTAMP_AT).ok_or_else(truncated)?),
            producer_id: i64::from_be_bytes(array(buf, PRODUCER_ID_AT).ok_or_else(truncated)?),
            producer_epoch: i16::from_be_bytes(
                array(buf, PRODUCER_EPOCH_AT).ok_or_else(truncated)?,
            ),
            base_sequence: i32::from_be_bytes(array(buf, BASE_SEQUENCE_AT).ok_or_else(truncated)?),
            records_count: i32::from_be_bytes(array(buf, RECORDS_COUNT_AT).ok_or_else(truncated)?),
        })
    }

    /// Whole batch size in bytes (`12 + batchLength`), or an error for a length below the
    /// minimum.
    pub fn total_size(&self) -> Result<usize, BatchDefect> {
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(BatchDefect::BadLength(self.batch_length));
        }
        usize::try_from(self.batch_length)
            .map(|l| l + LOG_OVERHEAD)
            .map_err(|_| BatchDefect::BadLength(self.batch_length))
    }

    /// Offset of the last record: `base_offset + last_offset_delta` (saturating).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Number of offsets the batch occupies (`lastOffsetDelta + 1`), which is what offset
    /// assignment advances by; may exceed `records_count` for compacted data.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    pub fn compression(&self) -> Compression {
        match self.attributes & COMPRESSION_MASK {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other as u8),
        }
    }

    pub fn is_compressed(&self) -> bool {
        self.attributes & COMPRESSION_MASK != 0
    }

    /// Attribute bit 3: the broker set the timestamps (LogAppendTime).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Producer id, or -1 for a non-idempotent producer.
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    pub fn base_sequence(&self) -> i32 {
        self.base_sequence
    }
}

/// Validates the batch at the start of `buf` (which may continue with further batches):
/// magic 2, `batchLength ≥ 49`, the whole batch present, CRC-32C correct, `lastOffsetDelta ≥
/// 0`, `recordsCount ≥ 0`. Returns the header; the batch is `&buf[..header.total_size()]`.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchDefect> {
    let header = validate_structure(buf)?;
    let size = header.total_size()?;
    let covered = buf.get(ATTRIBUTES_AT..size).ok_or(BatchDefect::Truncated {
        needed: size,
        available: buf.len(),
    })?;
    let computed = crc32c::crc32c(covered);
    if computed != header.crc {
        return Err(BatchDefect::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.last_offset_delta < 0 {
        return Err(BatchDefect::NegativeLastOffsetDelta(
            header.last_offset_delta,
        ));
    }
    if header.records_count < 0 {
        return Err(BatchDefect::BadRecordCount(header.records_count));
    }
    Ok(header)
}

/// The cheap checks only (header present, magic, length, batch fits): enough to walk batch
/// boundaries of data storage wrote itself.
pub fn validate_structure(buf: &[u8]) -> Result<BatchHeader, BatchDefect> {
    let header = BatchHeader::parse(buf)?;
    let size = header.total_size()?;
    if size > buf.len() {
        return Err(BatchDefect::Truncated {
            needed: size,
            available: buf.len(),
        });
    }
    Ok(header)
}

/// Rewrites the base offset of the batch at the start of `batch`. The base offset is outside
/// the CRC, so the checksum stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), BatchDefect> {
    if put(batch, BASE_OFFSET_AT, &base_offset.to_be_bytes()) {
        Ok(())
    } else {
        Err(BatchDefect::Truncated {
            needed: HEADER_LEN,
            available: batch.len(),
        })
    }
}

/// Stamps the batch at the start of `batch` with the leader epoch that appends it. Like the
/// base offset, the field is outside the CRC.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchDefect> {
    if put(batch, LEADER_EPOCH_AT, &epoch.to_be_bytes()) {
        Ok(())
    } else {
        Err(BatchDefect::Truncated {
            needed: HEADER_LEN,
            available: batch.len(),
        })
    }
}

/// Marks the batch at the start of `batch` as LogAppendTime with `max_timestamp = now_ms`
/// (what consumers then report for every record) and recomputes the CRC. `batch` must hold
/// the whole batch (validate it first).
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), BatchDefect> {
    let header = BatchHeader::parse(batch)?;
    let size = header.total_size()?;
    let truncated = BatchDefect::Truncated {
        needed: size,
        available: batch.len(),
    };
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    if !put(batch, ATTRIBUTES_AT, &attributes.to_be_bytes())
        || !put(batch, MAX_TIMESTAMP_AT, &now_ms.to_be_bytes())
    {
        return Err(truncated);
    }
    let crc = crc32c::crc32c(batch.get(ATTRIBUTES_AT..size).ok_or(truncated)?);
    if put(batch, CRC_AT, &crc.to_be_bytes()) {
        Ok(())
    } else {
        Err(truncated)
    }
}

/// How much an iterator checks of each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Header, magic, length and bounds only: for walking data storage already validated.
    Structure,
    /// Everything [`validate`] checks, including the CRC: for client input and recovery.
    Full,
}

/// One batch found in a buffer.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Byte position of the batch within the iterated buffer.
    pub position: usize,
    pub header: BatchHeader,
    /// The whole batch.
    pub bytes: &'a [u8],
}

/// A defect found by [`Batches`] at `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFault {
    pub position: usize,
    pub defect: BatchDefect,
}

/// Iterates the concatenated batches in a buffer. Yields an `Err` for the first torn or
/// corrupt batch (including trailing bytes too short to be a batch) and then stops;
/// [`Batches::valid_len`] is then the length of the valid prefix.
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
    check: Check,
    done: bool,
}

impl<'a> Batches<'a> {
    pub fn new(buf: &'a [u8], check: Check) -> Batches<'a> {
        Batches {
            buf,
            pos: 0,
            check,
            done: false,
        }
    }

    /// Bytes of whole valid batches seen so far (the truncation point after a fault).
    pub fn valid_len(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, BatchFault>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let checked = match self.check {
            Check::Structure => validate_structure(rest),
            Check::Full => validate(rest),
        };
        let result = checked.and_then(|header| {
            let size = header.total_size()?;
            let bytes = rest.get(..size).ok_or(BatchDefect::Truncated {
                needed: size,
                available: rest.len(),
            })?;
            Ok((header, bytes))
        });
        match result {
            Ok((header, bytes)) => {
                let position = self.pos;
                self.pos += bytes.len();
                Some(Ok(Batch {
                    position,
                    header,
                    bytes,
                }))
            }
            Err(defect) => {
                self.done = true;
                Some(Err(BatchFault {
                    position: self.pos,
                    defect,
                }))
            }
        }
    }
}

/// Length of the longest prefix of `buf` made of whole batches (by their length fields only).
pub fn whole_batches_len(buf: &[u8]) -> usize {
    let mut pos = 0usize;
    while let Some(Ok(size)) = buf.get(pos..).and_then(total_size_from_prefix) {
        match pos.checked_add(size) {
            Some(end) if end <= buf.len() => pos = end,
            _ => break,
        }
    }
    pos
}

/// Decodes a zigzag varint of at most `max_bytes` bytes.
pub fn read_zigzag(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Option<i64> {
    let mut raw: u64 = 0;
    let mut shift = 0u32;
    for _ in 0..max_bytes {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
        shift += 7;
    }
    None
}

/// The first record of `batch` (one whole batch) whose timestamp is ≥ `ts` and whose offset
/// is ≥ `min_offset`, as `(offset, timestamp)`. Exact for uncompressed CreateTime batches; a
/// compressed batch answers with its base offset (clamped to `min_offset`) and max timestamp,
/// and a LogAppendTime batch (where every record carries the max timestamp) likewise.
///
/// Appends check batch headers and CRCs, not records, so a producer can store records that do
/// not decode (as it can inside a compressed batch). Such a batch also answers as a whole:
/// the search must not fail, or report disk damage, because of what a client wrote.
pub fn find_record_by_timestamp(
    batch: &[u8],
    ts: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>, BatchDefect> {
    let header = validate_structure(batch)?;
    if header.max_timestamp < ts || header.last_offset() < min_offset {
        return Ok(None);
    }
    let whole_batch = Some((header.base_offset.max(min_offset), header.max_timestamp));
    if header.is_compressed() || header.is_log_append_time() {
        return Ok(whole_batch);
    }
    let size = header.total_size()?;
    let records = batch.get(..size).ok_or(BatchDefect::Truncated {
        needed: size,
        available: batch.len(),
    })?;
    match find_record(&header, records, ts, min_offset) {
        Err(BatchDefect::BadRecord) => Ok(whole_batch),
        found => found,
    }
}

/// The record search of [`find_record_by_timestamp`] in an uncompressed batch.
fn find_record(
    header: &BatchHeader,
    records: &[u8],
    ts: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>, BatchDefect> {
    let mut pos = HEADER_LEN;
    for _ in 0..header.records_count.max(0) {
        let len = read_zigzag(records, &mut pos, 5).ok_or(BatchDefect::BadRecord)?;
        let len = usize::try_from(len).map_err(|_| BatchDefect::BadRecord)?;
        let start = pos;
        let next = start.checked_add(len).ok_or(BatchDefect::BadRecord)?;
        if next > records.len() {
            return Err(BatchDefect::BadRecord);
        }
        pos += 1; // attributes
        let ts_delta = read_zigzag(records, &mut pos, 10).ok_or(BatchDefect::BadRecord)?;
        let offset_delta = read_zigzag(records, &mut pos, 5).ok_or(BatchDefect::BadRecord)?;
        let timestamp = header.base_timestamp.saturating_add(ts_delta);
        let offset = header.base_offset.saturating_add(offset_delta);
        if timestamp >= ts && offset >= min_offset {
            return Ok(Some((offset, timestamp)));
        }
        pos = next;
    }
    Ok(None)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;

/// A transaction marker's type, from the key of a control batch's single record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

/// Appends `v` as a zigzag varint (the record format's integers).
pub(crate) fn push_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Builds the control batch Kafka writes to end a transaction on a partition: one record whose
/// key is `(version 0, type 0 = abort | 1 = commit)` and value `(version 0, coordinator
/// epoch)`, attributes transactional + control. Offsets start at 0; `append` assigns them.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(if marker == Marker::Commit { 1i16 } else { 0 }).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut body = vec![0u8]; // record attributes
    push_zigzag(&mut body, 0); // timestamp delta
    push_zigzag(&mut body, 0); // offset delta
    push_zigzag(&mut body, key.len() as i64);
    body.extend_from_slice(&key);
    push_zigzag(&mut body, value.len() as i64);
    body.extend_from_slice(&value);
    push_zigzag(&mut body, 0); // headers
    let mut record = Vec::with_capacity(body.len() + 2);
    push_zigzag(&mut record, body.len() as i64);
    record.extend_from_slice(&body);

    let mut out = Vec::with_capacity(HEADER_LEN + record.len());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + record.len()) as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.extend_from_slice(&(TRANSACTIONAL_BIT | CONTROL_BIT).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&producer_epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&1i32.to_be_bytes()); // records count
    out.extend_from_slice(&record);
    let crc = crc32c::crc32c(out.get(21..).unwrap_or_default());
    put(&mut out, 17, &crc.to_be_bytes());
    out
}

/// The marker a control batch carries, or `None` if `batch` is not a well-formed control
/// batch (control batches are never compressed).
pub fn marker_of(batch: &[u8]) -> Option<Marker> {
    control_record(batch).map(|(marker, _)| marker)
}

/// The marker a control batch carries and the coordinator epoch of its value (-1 when the
/// value is missing or too short), or `None` if `batch` is not a well-formed control batch.
pub fn control_record(batch: &[u8]) -> Option<(Marker, i32)> {
    let header = validate_structure(batch).ok()?;
    if !header.is_control() || header.is_compressed() {
        return None;
    }
    let mut pos = HEADER_LEN;
    let _len = read_zigzag(batch, &mut pos, 5)?;
    pos += 1; // record attributes
    let _ts = read_zigzag(batch, &mut pos, 10)?;
    let _od = read_zigzag(batch, &mut pos, 5)?;
    let key_len = usize::try_from(read_zigzag(batch, &mut pos, 5)?).ok()?;
    let key = batch.get(pos..pos.checked_add(key_len)?)?;
    let marker = match array::<2>(key, 2).map(i16::from_be_bytes)? {
        0 => Marker::Abort,
        1 => Marker::Commit,
        _ => return None,
    };
    pos = pos.checked_add(key_len)?;
    // Value: version (i16), coordinator epoch (i32).
    let value_len = read_zigzag(batch, &mut pos, 5).and_then(|len| usize::try_from(len).ok());
    let coordinator_epoch = match (value_len, pos.checked_add(2)) {
        (Some(len), Some(at)) if len >= 6 => array::<4>(batch, at).map_or(-1, i32::from_be_bytes),
        _ => -1,
    };
    Some((marker, coordinator_epoch))
}

#[cfg(test)]
mod control_tests {
    use super::*;

    #[test]
    fn control_batches_round_trip() {
        for marker in [Marker::Abort, Marker::Commit] {
            let b = control_batch(7, 3, marker, 0, 1_000);
            let h = validate(&b).expect("valid batch with a correct CRC");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id(), h.producer_epoch(), h.records_count),
                (7, 3, 1)
            );
            assert_eq!(marker_of(&b), Some(marker));
            let fenced = control_batch(7, 3, marker, 42, 1_000);
            assert_eq!(control_record(&fenced), Some((marker, 42)));
        }
        let data = crate::testkit::BatchBuilder::new(0).records(1, 4).build();
        assert_eq!(marker_of(&data), None);
    }
}
