//! The records inside a v2 batch, borrowed from the batch bytes: offset, timestamp, key,
//! value and headers, without allocating per record. The log cleaner reads batches with it,
//! and so does an in-process consumer (the stream engine's sources decode values straight
//! from the read buffer into its column builders).
//!
//! [`body`] gives a batch's records area (decompressed when the batch is compressed, the one
//! copy a compressed batch costs); [`RecordIter`] walks it. Record layout (Kafka's):
//! `length attributes timestampDelta offsetDelta keyLen key valueLen value headerCount
//! [headerKeyLen headerKey headerValueLen headerValue]*`, every integer a zigzag varint.

use std::borrow::Cow;

use crate::batch::{read_zigzag, BatchDefect, BatchHeader, HEADER_LEN};
use crate::codec::{self, DecompressError};

/// One record of a batch, borrowed from the batch's records area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    /// `None`: a null value, a tombstone in a compacted topic.
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
    /// The whole record, length prefix included.
    pub bytes: &'a [u8],
}

impl Record<'_> {
    /// A null value: in a compacted topic, the deletion of its key.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A record's headers, checked when the record was read; iterating them cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    count: usize,
    /// The headers' bytes, after the count.
    bytes: &'a [u8],
}

/// One record header. Kafka allows a null header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter {
            left: self.count,
            bytes: self.bytes,
            pos: 0,
        }
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterates [`Headers`].
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    left: usize,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked by `read_header` when the record was read.
        read_header(self.bytes, &mut self.pos).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

fn read_header<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Header<'a>, BatchDefect> {
    let key = read_bytes(buf, pos)?.ok_or(BatchDefect::BadRecord)?;
    let value = read_bytes(buf, pos)?;
    Ok(Header { key, value })
}

fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, BatchDefect> {
    let len = read_zigzag(buf, pos, 5).ok_or(BatchDefect::BadRecord)?;
    if len < 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| BatchDefect::BadRecord)?;
    let end = pos.checked_add(len).ok_or(BatchDefect::BadRecord)?;
    let bytes = buf.get(*pos..end).ok_or(BatchDefect::BadRecord)?;
    *pos = end;
    Ok(Some(bytes))
}

/// Why a batch's records area could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("batch shorter than its header")]
    Truncated,
    #[error(transparent)]
    Decompress(#[from] DecompressError),
}

/// The records area of `batch` (one whole batch, as [`crate::batch::Batches`] yields it),
/// decompressed if need be, at most `limit` bytes decompressed.
pub fn body<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, BodyError> {
    let area = batch.get(HEADER_LEN..).ok_or(BodyError::Truncated)?;
    if !header.is_compressed() {
        return Ok(Cow::Borrowed(area));
    }
    Ok(Cow::Owned(codec::decompress_checked(
        header.compression(),
        area,
        limit,
    )?))
}

/// Iterates the records of a batch whose records area (decompressed) is `body`. Yields an
/// `Err` for the first record that does not decode, or if bytes are left after the header's
/// record count, and then stops.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    base_offset: i64,
    base_timestamp: i64,
    /// A LogAppendTime batch's max timestamp: every record's timestamp (Kafka's rule; the
    /// records' deltas are the producer's and mean nothing then).
    log_append_time: Option<i64>,
    body: &'a [u8],
    pos: usize,
    left: i64,
    done: bool,
}

impl<'a> RecordIter<'a> {
    pub fn new(header: &BatchHeader, body: &'a [u8]) -> RecordIter<'a> {
        RecordIter {
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_time: header.is_log_append_time().then_some(header.max_timestamp),
            body,
            pos: 0,
            left: i64::from(header.records_count.max(0)),
            done: false,
        }
    }

    fn read(&mut self) -> Result<Record<'a>, BatchDefect> {
        let body = self.body;
        let start = self.pos;
        let mut pos = self.pos;
        let len = read_zigzag(body, &mut pos, 5).ok_or(BatchDefect::BadRecord)?;
        let len = usize::try_from(len).map_err(|_| BatchDefect::BadRecord)?;
        let end = pos.checked_add(len).ok_or(BatchDefect::BadRecord)?;
        // Fields are read within the record, so a lying field cannot reach the next one.
        let record = body.get(..end).ok_or(BatchDefect::BadRecord)?;
        pos += 1; // record attributes (unused in v2)
        let ts_delta = read_zigzag(record, &mut pos, 10).ok_or(BatchDefect::BadRecord)?;
        let offset_delta = read_zigzag(record, &mut pos, 5).ok_or(BatchDefect::BadRecord)?;
        let key = read_bytes(record, &mut pos)?;
        let value = read_bytes(record, &mut pos)?;
        let count = read_zigzag(record, &mut pos, 5).ok_or(BatchDefect::BadRecord)?;
        let count = usize::try_from(count.max(0)).map_err(|_| BatchDefect::BadRecord)?;
        let headers_at = pos;
        for _ in 0..count {
            read_header(record, &mut pos)?;
        }
        if pos != end {
            return Err(BatchDefect::BadRecord);
        }
        self.pos = end;
        Ok(Record {
            offset: self.base_offset.saturating_add(offset_delta),
            timestamp: self
                .log_append_time
                .unwrap_or_else(|| self.base_timestamp.saturating_add(ts_delta)),
            key,
            value,
            headers: Headers {
                count,
                bytes: record.get(headers_at..end).ok_or(BatchDefect::BadRecord)?,
            },
            bytes: body.get(start..end).ok_or(BatchDefect::BadRecord)?,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchDefect>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            return (self.pos != self.body.len()).then_some(Err(BatchDefect::BadRecord));
        }
        self.left -= 1;
        let r = self.read();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// Every record of a batch whose records area (decompressed) is `body`.
pub fn records<'a>(header: &BatchHeader, body: &'a [u8]) -> Result<Vec<Record<'a>>, BatchDefect> {
    let mut out = Vec::with_capacity(usize::try_from(header.records_count).unwrap_or(0).min(4096));
    for r in RecordIter::new(header, body) {
        out.push(r?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{set_base_offset, validate};
    use crate::testkit::BatchBuilder;

    #[test]
    fn keys_values_and_tombstones_borrowed_from_the_batch() {
        let mut b = BatchBuilder::new(1_000)
            .record(1_000, Some(b"a"), Some(b"1"))
            .record(1_007, Some(b"b"), None)
            .record(1_003, None, Some(b"3"))
            .build();
        set_base_offset(&mut b, 100).expect("offset");
        let h = validate(&b).expect("valid");
        let area = body(&h, &b, 1 << 20).expect("body");
        assert!(matches!(area, Cow::Borrowed(_)), "uncompressed: no copy");
        let rs = records(&h, &area).expect("records");
        assert_eq!(
            rs.iter()
                .map(|r| (r.offset, r.timestamp, r.key, r.value, r.is_tombstone()))
                .collect::<Vec<_>>(),
            vec![
                (100, 1_000, Some(&b"a"[..]), Some(&b"1"[..]), false),
                (101, 1_007, Some(&b"b"[..]), None, true),
                (102, 1_003, None, Some(&b"3"[..]), false),
            ]
        );
        assert!(rs.iter().all(|r| r.headers.is_empty()));
    }

    #[test]
    fn a_log_append_time_batch_gives_every_record_its_max_timestamp() {
        let mut b = BatchBuilder::new(1_000)
            .record(1_000, Some(b"a"), Some(b"1"))
            .record(1_007, Some(b"b"), Some(b"2"))
            .build();
        crate::batch::set_log_append_time(&mut b, 5_000).expect("log append time");
        let h = validate(&b).expect("valid");
        let area = body(&h, &b, 1 << 20).expect("body");
        let rs = records(&h, &area).expect("records");
        assert_eq!(
            rs.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            [5_000, 5_000]
        );
    }

    #[test]
    fn headers_are_read_with_null_values() {
        let b = BatchBuilder::new(1_000)
            .record(1_005, Some(b"k"), Some(b"v"))
            .header(b"h1", Some(b"x"))
            .header(b"h2", None)
            .build();
        let h = validate(&b).expect("valid");
        let area = body(&h, &b, 1 << 20).expect("body");
        let rs = records(&h, &area).expect("records");
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].timestamp, 1_005);
        assert_eq!(rs[0].value, Some(&b"v"[..]));
        let hs: Vec<Header<'_>> = rs[0].headers.iter().collect();
        assert_eq!(
            hs,
            vec![
                Header {
                    key: b"h1",
                    value: Some(b"x")
                },
                Header {
                    key: b"h2",
                    value: None
                },
            ]
        );
    }

    #[test]
    fn compressed_batches_are_inflated_within_the_limit() {
        for codec in [1u8, 2, 3, 4] {
            let b = BatchBuilder::new(0)
                .compressed(codec)
                .record(0, Some(b"k"), Some(&[7u8; 300]))
                .record(1, Some(b"k"), Some(&[8u8; 300]))
                .build();
            let h = validate(&b).expect("valid");
            let area = body(&h, &b, 1 << 20).expect("body");
            let rs = records(&h, &area).expect("records");
            assert_eq!(rs.len(), 2, "codec {codec}");
            assert_eq!(rs[1].value, Some(&[8u8; 300][..]));
            assert!(matches!(
                body(&h, &b, 100),
                Err(BodyError::Decompress(
                    DecompressError::TooLarge { .. } | DecompressError::Failed { .. }
                ))
            ));
        }
    }

    #[test]
    fn damaged_records_end_the_iteration_with_an_error() {
        let b = BatchBuilder::new(0)
            .record(0, Some(b"key"), Some(b"value"))
            .record(1, Some(b"key"), Some(b"value"))
            .build();
        let h = validate(&b).expect("valid");
        let area = body(&h, &b, 1 << 20).expect("body").into_owned();
        // A record cut short.
        let cut = &area[..area.len() - 2];
        let got: Vec<_> = RecordIter::new(&h, cut).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(BatchDefect::BadRecord));
        // Bytes beyond the header's count.
        let mut long = area.clone();
        long.push(0);
        let got: Vec<_> = RecordIter::new(&h, &long).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Err(BatchDefect::BadRecord));
        // A key length past the record's end.
        let mut lying = area.clone();
        lying[4] = 0x7e; // the first key's length: zigzag 63, past the record
        assert!(records(&h, &lying).is_err());
    }
}
