//! Reading a partition's records, read_committed, up to an offset sampled before: what a
//! Kafka consumer does (skipping control batches, aborted transactions' batches and the
//! records before the asked offset in the first batch), over `PartitionHandle::read`
//! (in-process when the partition is led here, from its leader otherwise).
//!
//! Batches are walked with storage's record iterator (`weir_storage::records`); each record's
//! key, value and headers are slices of the read buffer (of the decompressed records area for
//! a compressed batch), and a header key that repeats stays repeated, in order, as Kafka
//! stores it.

use std::borrow::Cow;
use std::collections::HashSet;

use bytes::Bytes;
use weir_broker::partition::{Isolation, ReadSpec};
use weir_broker::partition_access::{AccessError, PartitionHandle};
use weir_storage::records::RecordIter;
use weir_storage::{AbortedTxn, BatchHeader};

/// One record as read: its bytes are slices of the read (no copy of an uncompressed batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    /// Milliseconds, as the batch gives it (create or log-append time).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    /// `None`: a tombstone.
    pub value: Option<Bytes>,
    /// In the record's order; a key may repeat. A key that is not UTF-8 is read lossily.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Bytes asked per read: a Fetch's default partition size.
const READ_BYTES: usize = 1 << 20;
/// The most a compressed batch may decompress to.
const MAX_DECOMPRESSED: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("partition {partition}: {source}")]
    Partition {
        partition: i32,
        #[source]
        source: AccessError,
    },
    #[error("partition {partition} at offset {offset}: undecodable batch: {message}")]
    Decode {
        partition: i32,
        offset: i64,
        message: String,
    },
}

/// A partition's committed records in `[next, end)`.
pub struct PartitionReader {
    partition: PartitionHandle,
    next: i64,
    end: i64,
    /// Aborted transactions not yet reached, oldest first.
    pending_aborts: Vec<AbortedTxn>,
    /// Producers whose current transaction was aborted: their data batches are skipped
    /// until their marker.
    aborting: HashSet<i64>,
}

impl PartitionReader {
    /// Reads from `start` (raised to the log start) to the last stable offset as of now.
    pub async fn open(
        partition: PartitionHandle,
        start: i64,
    ) -> Result<PartitionReader, ReadError> {
        let marks = partition
            .watermarks()
            .await
            .map_err(|source| ReadError::Partition {
                partition: partition.index(),
                source,
            })?;
        Ok(PartitionReader {
            next: start.max(marks.log_start_offset),
            end: marks.last_stable_offset,
            partition,
            pending_aborts: Vec::new(),
            aborting: HashSet::new(),
        })
    }

    /// Reads `[start, end)`, bounds sampled by the caller (`start` at or past the log start
    /// it sampled).
    pub fn bounded(partition: PartitionHandle, start: i64, end: i64) -> PartitionReader {
        PartitionReader {
            next: start,
            end,
            partition,
            pending_aborts: Vec::new(),
            aborting: HashSet::new(),
        }
    }

    pub fn partition(&self) -> i32 {
        self.partition.index()
    }

    /// The offset read up to (exclusive) when done.
    pub fn end(&self) -> i64 {
        self.end
    }

    pub fn done(&self) -> bool {
        self.next >= self.end
    }

    /// The next records (possibly none while batches are skipped), or `None` at the end.
    pub async fn next_records(&mut self) -> Result<Option<Vec<Record>>, ReadError> {
        if self.done() {
            return Ok(None);
        }
        let index = self.partition.index();
        let spec = ReadSpec {
            offset: self.next,
            max_bytes: READ_BYTES,
            min_one_batch: true,
            isolation: Isolation::ReadCommitted,
            leader_epoch: None,
        };
        // A positional read of the log when led here: off the async workers.
        let read = self
            .partition
            .read_offloaded(&spec)
            .await
            .map_err(|source| ReadError::Partition {
                partition: index,
                source,
            })?
            .result;
        if read.records.is_empty() {
            // Retention or a truncation moved the log under us: what is left is gone.
            self.next = self.end;
            return Ok(None);
        }
        for a in read.aborted.unwrap_or_default() {
            if !self.pending_aborts.contains(&a) {
                self.pending_aborts.push(a);
            }
        }
        self.pending_aborts.sort_by_key(|a| a.first_offset);
        let mut buf: Bytes = read.records;
        let mut out = Vec::new();
        while !buf.is_empty() && self.next < self.end {
            let at = self.next;
            let decode_error = |message: String| ReadError::Decode {
                partition: index,
                offset: at,
                message,
            };
            // The v2 header's last offset, attributes and producer: a batch whose records were
            // all compacted away still moves the position past it.
            let header = BatchHeader::parse(&buf).map_err(|e| decode_error(format!("{e:?}")))?;
            let size = header
                .total_size()
                .map_err(|e| decode_error(format!("{e:?}")))?;
            if size > buf.len() {
                return Err(decode_error(format!(
                    "batch of {size} bytes, {} read",
                    buf.len()
                )));
            }
            let batch = buf.split_to(size);
            let (last, producer) = (header.last_offset(), header.producer_id);
            while self
                .pending_aborts
                .first()
                .is_some_and(|a| a.first_offset <= last)
            {
                let a = self.pending_aborts.remove(0);
                self.aborting.insert(a.producer_id);
            }
            if header.is_control() {
                self.aborting.remove(&producer);
            } else if !(header.is_transactional() && self.aborting.contains(&producer)) {
                let body = match weir_storage::records::body(&header, &batch, MAX_DECOMPRESSED)
                    .map_err(|e| decode_error(e.to_string()))?
                {
                    Cow::Borrowed(area) => batch.slice_ref(area),
                    Cow::Owned(area) => Bytes::from(area),
                };
                for r in RecordIter::new(&header, &body) {
                    let r = r.map_err(|e| decode_error(format!("{e:?}")))?;
                    if r.offset < at || r.offset >= self.end {
                        continue;
                    }
                    let slice = |b: &[u8]| body.slice_ref(b);
                    out.push(Record {
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key.map(slice),
                        value: r.value.map(slice),
                        headers: r
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    String::from_utf8_lossy(h.key).into_owned(),
                                    h.value.map(slice),
                                )
                            })
                            .collect(),
                    });
                }
            }
            self.next = self.next.max(last + 1);
        }
        Ok(Some(out))
    }
}
