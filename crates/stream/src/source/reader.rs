//! Reads a topic partition as a read_committed Kafka consumer does: whole batches from
//! `PartitionHandle::read` (in-process when led here, from its leader otherwise) up to the
//! last stable offset, skipping control batches, the batches of
//! the aborted transactions the read reports, and records below the position in the first
//! batch. Records are borrowed from the read buffer and handed to the decoder one by one.

use weir_broker::partition::{Isolation, ReadResult, ReadSpec};
use weir_broker::partition_access::{PartitionHandle, Wake};
use weir_storage::batch::{Batches, Check};
use weir_storage::records::{self, Record, RecordIter};

use bytes::Bytes;

use crate::error::StreamError;
use crate::format::{DecodeFailure, RecordRef, SinkRecord, SourceDecoder};

/// Largest records area decompressed from one batch (the broker accepts batches up to
/// `message.max.bytes` compressed; this bounds what a hostile ratio could inflate to).
const MAX_DECOMPRESSED: usize = 64 << 20;

/// Calls `f` for every record at or after `from` that a read_committed consumer would see
/// in `read`, and returns the offset after the last batch walked (at least `from`).
pub(crate) fn committed_records(
    topic: &str,
    partition: i32,
    read: &ReadResult,
    from: i64,
    mut f: impl FnMut(&Record<'_>),
) -> Result<i64, StreamError> {
    let aborted = read.aborted.as_deref().unwrap_or_default();
    let corrupt = |offset: i64, reason: String| StreamError::Corrupt {
        topic: topic.to_string(),
        partition,
        offset,
        reason,
    };
    let mut next = from;
    for batch in Batches::new(&read.records, Check::Structure) {
        let batch = batch.map_err(|e| corrupt(next, format!("{:?}", e.defect)))?;
        let h = batch.header;
        next = next.max(h.last_offset() + 1);
        if h.is_control() {
            continue;
        }
        let is_aborted = h.is_transactional()
            && aborted.iter().any(|a| {
                a.producer_id == h.producer_id
                    && a.first_offset <= h.base_offset
                    && h.base_offset <= a.last_offset
            });
        if is_aborted {
            continue;
        }
        let body = records::body(&h, batch.bytes, MAX_DECOMPRESSED)
            .map_err(|e| corrupt(h.base_offset, e.to_string()))?;
        for r in RecordIter::new(&h, &body) {
            let r = r.map_err(|e| corrupt(h.base_offset, format!("{e:?}")))?;
            if r.offset >= from {
                f(&r);
            }
        }
    }
    Ok(next)
}

/// What one read of a partition gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStep {
    /// Records decoded into the decoder.
    pub decoded: usize,
    /// Records the decoder refused (dead-lettered or counted).
    pub failed: usize,
    /// Nothing was left to read below the last stable offset.
    pub caught_up: bool,
}

/// One read decoded ([`decode`]): the rows are in the decoder, to flush.
#[derive(Debug, Default)]
pub struct Decoded {
    pub step: ReadStep,
    /// The position after the read.
    pub next_offset: i64,
    /// The offset of each decoded row's record, in row order: how a late row finds its
    /// record again.
    pub offsets: Vec<i64>,
    /// The dead letters of the records the decoder refused (§9).
    pub dead: Vec<SinkRecord>,
}

/// One source partition and the position of the next record to read.
pub struct PartitionReader {
    pub topic: String,
    pub partition: PartitionHandle,
    pub next_offset: i64,
    max_bytes: usize,
}

impl PartitionReader {
    pub fn new(
        topic: String,
        partition: PartitionHandle,
        next_offset: i64,
        max_bytes: usize,
    ) -> Self {
        PartitionReader {
            topic,
            partition,
            next_offset,
            max_bytes,
        }
    }

    pub fn index(&self) -> i32 {
        self.partition.index()
    }

    /// Reads the next batches (about `max_bytes`, at least one batch) from the position,
    /// to [`decode`]; also returns how to park on the partition after this read.
    pub async fn fetch(&self) -> Result<(ReadResult, Wake), StreamError> {
        self.read_committed_from(self.next_offset).await
    }
}

/// Pushes the records of `read` (of `topic`'s `partition`) at or after `from` into
/// `decoder`; each record it refuses becomes a dead letter.
pub fn decode(
    topic: &str,
    partition: i32,
    read: &ReadResult,
    from: i64,
    decoder: &mut dyn SourceDecoder,
) -> Result<Decoded, StreamError> {
    let mut out = Decoded {
        next_offset: from,
        ..Decoded::default()
    };
    if read.records.is_empty() {
        out.step.caught_up = true;
        return Ok(out);
    }
    let next = committed_records(topic, partition, read, from, |r| {
        let rec = RecordRef {
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        };
        match decoder.push(&rec) {
            Ok(()) => {
                out.step.decoded += 1;
                out.offsets.push(r.offset);
            }
            Err(e) => {
                out.step.failed += 1;
                tracing::debug!(topic, partition, offset = r.offset, error = %e, "record not decoded; dead-lettered");
                out.dead.push(dead_letter(topic, &rec, &e));
            }
        }
    })?;
    out.next_offset = next;
    out.step.caught_up = next >= read.watermarks.last_stable_offset;
    Ok(out)
}

impl PartitionReader {
    /// One read_committed read of up to `max_bytes` from `offset` (at least one batch).
    async fn read_committed_from(&self, offset: i64) -> Result<(ReadResult, Wake), StreamError> {
        let read = self
            .partition
            .read(&ReadSpec {
                offset,
                max_bytes: self.max_bytes,
                min_one_batch: true,
                isolation: Isolation::ReadCommitted,
                leader_epoch: None,
            })
            .await
            .map_err(|source| StreamError::Partition {
                topic: self.topic.clone(),
                partition: self.index(),
                source,
            })?;
        Ok((read.result, read.wake))
    }

    /// Calls `f` for each record at `offsets` (ascending, all below [`next_offset`], so read
    /// before), read again from the partition: late rows are rare, so their records are
    /// fetched when one is found rather than kept for every row.
    ///
    /// [`next_offset`]: Self::next_offset
    pub async fn reread(
        &self,
        offsets: &[i64],
        mut f: impl FnMut(&RecordRef<'_>),
    ) -> Result<(), StreamError> {
        let index = self.index();
        let mut todo = offsets.iter().copied().peekable();
        while let Some(&from) = todo.peek() {
            let (read, _) = self.read_committed_from(from).await?;
            let next = committed_records(&self.topic, index, &read, from, |r| {
                while todo.next_if(|o| *o < r.offset).is_some() {}
                if todo.next_if_eq(&r.offset).is_some() {
                    f(&RecordRef {
                        partition: index,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                }
            })?;
            // Offsets the read passed without finding (removed by compaction since): none
            // is waited for.
            while todo.next_if(|o| *o < next).is_some() {}
            if next <= from {
                break;
            }
        }
        Ok(())
    }
}

/// The dead letter of `rec`: its key, value, timestamp and headers as read, plus what failed
/// and where the record came from, in `weir.*` headers.
pub fn dead_letter(topic: &str, rec: &RecordRef<'_>, e: &DecodeFailure) -> SinkRecord {
    let mut headers: Vec<(String, Option<Bytes>)> = rec
        .headers
        .iter()
        .map(|h| {
            (
                String::from_utf8_lossy(h.key).into_owned(),
                h.value.map(Bytes::copy_from_slice),
            )
        })
        .collect();
    let text = |s: String| Some(Bytes::from(s));
    headers.extend([
        ("weir.error".to_string(), text(e.message.clone())),
        ("weir.error.kind".to_string(), text(e.kind.to_string())),
        ("weir.source.topic".to_string(), text(topic.to_string())),
        (
            "weir.source.partition".to_string(),
            text(rec.partition.to_string()),
        ),
        (
            "weir.source.offset".to_string(),
            text(rec.offset.to_string()),
        ),
    ]);
    SinkRecord {
        key: rec.key.map(Bytes::copy_from_slice),
        value: rec.value.map(Bytes::copy_from_slice),
        timestamp: rec.timestamp,
        headers,
    }
}
