//! Reads by offset (whole batches, one positional read) and lookups by timestamp
//! (ListOffsets), over the segments' sparse indexes.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;

use super::{relative, Log, ReadOutcome};
use crate::batch::{self, Check};
use crate::error::StorageError;

impl Log {
    /// Whole batches starting with the one holding `offset`, up to `max_bytes`, but always at
    /// least one whole batch if any exists at or after `offset` (KIP-74). Data from one
    /// segment per call.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadOutcome, StorageError> {
        self.read_batches(offset, max_bytes, true)
    }

    /// Like [`Log::read`], but never more than `max_bytes`: empty when the first batch alone
    /// is larger. KIP-74 lets only the first partition of a fetch answer exceed its limits.
    pub fn read_at_most(&self, offset: i64, max_bytes: usize) -> Result<ReadOutcome, StorageError> {
        self.read_batches(offset, max_bytes, false)
    }

    fn read_batches(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadOutcome, StorageError> {
        let interval = self.config().index_interval_bytes;
        let (mut segment, mut end, mut hint, log_start, log_end) = {
            let st = self.state_view();
            if offset < st.log_start || offset > st.log_end {
                return Err(StorageError::OffsetOutOfRange {
                    requested: offset,
                    log_start: st.log_start,
                    log_end: st.log_end,
                });
            }
            let i = st.segment_index_for(offset);
            let segment = st.segments.get(i).unwrap_or_else(|| st.active_segment());
            let hint = st.is_active(i).then(|| {
                u64::from(
                    st.active
                        .index
                        .index
                        .position_for(relative(offset, segment.base_offset())),
                )
            });
            (
                Arc::clone(segment),
                segment.len(),
                hint,
                st.log_start,
                st.log_end,
            )
        };
        let empty = ReadOutcome {
            records: Bytes::new(),
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        if offset == log_end {
            return Ok(empty);
        }
        loop {
            let mut pos = match hint {
                Some(p) => p,
                None => u64::from(
                    segment
                        .index(interval)?
                        .position_for(relative(offset, segment.base_offset())),
                ),
            };
            while let Some(header) = segment.read_header(pos, end)? {
                let size = header.total_size().map_err(|d| segment.damaged(pos, d))?;
                if header.last_offset() < offset {
                    pos += size as u64;
                    continue;
                }
                if !min_one && size > max_bytes {
                    return Ok(empty);
                }
                let want = max_bytes.max(size) as u64;
                let len = usize::try_from(want.min(end - pos)).unwrap_or(size);
                let mut buf = vec![0u8; len];
                segment.read_exact_at(&mut buf, pos)?;
                buf.truncate(batch::whole_batches_len(&buf));
                return Ok(ReadOutcome {
                    records: Bytes::from(buf),
                    ..empty
                });
            }
            // Past this segment's last batch: the offset's batch starts the next segment.
            let st = self.state_view();
            let next = st
                .segments
                .iter()
                .position(|s| s.base_offset() > segment.base_offset());
            let Some(i) = next else {
                return Ok(empty);
            };
            let Some(next_segment) = st.segments.get(i) else {
                return Ok(empty);
            };
            segment = Arc::clone(next_segment);
            end = segment.len();
            hint = Some(0);
        }
    }

    /// First offset at or after the log start whose record timestamp is ≥ `ts`, with that
    /// timestamp (ListOffsets by timestamp). Exact inside uncompressed batches; a compressed
    /// batch answers with its base offset and max timestamp. None if no such record.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let interval = self.config().index_interval_bytes;
        // (segment, committed end, start position if already known)
        let (candidates, log_start) = {
            let st = self.state_view();
            let mut candidates = Vec::new();
            for (i, segment) in st.segments.iter().enumerate() {
                if st.is_active(i) {
                    if st
                        .active
                        .index
                        .max_timestamp()
                        .is_some_and(|(max, _)| max >= ts)
                    {
                        let from = st
                            .active
                            .index
                            .index
                            .relative_offset_for_time(ts)
                            .max(relative(st.log_start, segment.base_offset()));
                        let pos = st.active.index.index.position_for(from);
                        candidates.push((Arc::clone(segment), segment.len(), Some(u64::from(pos))));
                    }
                } else if segment
                    .sealed()
                    .and_then(|s| s.max_timestamp)
                    .is_some_and(|(max, _)| max >= ts)
                {
                    candidates.push((Arc::clone(segment), segment.len(), None));
                }
            }
            (candidates, st.log_start)
        };
        for (segment, end, hint) in candidates {
            let start = match hint {
                Some(p) => p,
                None => {
                    let index = segment.index(interval)?;
                    let from = index
                        .relative_offset_for_time(ts)
                        .max(relative(log_start, segment.base_offset()));
                    u64::from(index.position_for(from))
                }
            };
            let mut found = None;
            let mut damaged = None;
            segment.scan(start, end, Check::Structure, |pos, h, bytes| {
                if h.max_timestamp < ts || h.last_offset() < log_start {
                    return Ok(ControlFlow::Continue(()));
                }
                match batch::find_record_by_timestamp(bytes, ts, log_start) {
                    Ok(Some(hit)) => {
                        found = Some(hit);
                        Ok(ControlFlow::Break(()))
                    }
                    Ok(None) => Ok(ControlFlow::Continue(())),
                    Err(d) => {
                        damaged = Some((pos, d));
                        Ok(ControlFlow::Break(()))
                    }
                }
            })?;
            if let Some((pos, d)) = damaged {
                return Err(segment.damaged(pos, d));
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// (max timestamp, base offset of the batch holding it) over the whole log, for
    /// ListOffsets `MAX_TIMESTAMP`. The earliest batch wins a tie. None if the log is empty
    /// or no batch has a timestamp (all -1).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.state_view();
        let mut best: Option<(i64, i64)> = None;
        for (i, segment) in st.segments.iter().enumerate() {
            let max = if st.is_active(i) {
                st.active.index.max_timestamp()
            } else {
                segment.sealed().and_then(|s| s.max_timestamp)
            };
            if let Some(m) = max {
                if best.is_none_or(|b| m.0 > b.0) {
                    best = Some(m);
                }
            }
        }
        best
    }
}
