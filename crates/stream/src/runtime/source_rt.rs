//! One source of a running pipeline: its partition readers, decoder, watermark tracker and
//! dead-letter topic, and one read of one partition turned into what goes downstream:
//! decode, drop late rows (when the source feeds a watermark operator), observe event times,
//! drop duplicates (a source declaring `dedup.key`), then the batch and any new watermark.

use weir_broker::partition_access::{PartitionAccess, PartitionHandle, Wake};

use super::{partitions, StreamConfig};
use crate::checkpoint::SourceState;
use crate::error::StreamError;
use crate::format::{now_ms, SinkRecord, SourceDecoder};
use crate::graph::{Graph, SourceSpec, Startup, WatermarkSpec};
use crate::message::Message;
use crate::source::dedup::Dedup;
use crate::source::event_time::{drop_late, max_event_time};
use crate::source::late;
use crate::source::reader::PartitionReader;
use crate::source::watermark::WatermarkTracker;

pub(super) struct SourceRt {
    pub(super) node: usize,
    pub(super) topic: String,
    pub(super) readers: Vec<PartitionReader>,
    decoder: Box<dyn SourceDecoder>,
    pub(super) watermark: Option<(WatermarkSpec, WatermarkTracker)>,
    pub(super) emitted: Option<i64>,
    /// Rows behind `emitted` are dropped (and dead-lettered): the source feeds an operator
    /// that acts on watermarks ([`late`]).
    drops_late: bool,
    /// The dead-letter topic and its partitions.
    dead_letter: Option<(String, Vec<PartitionHandle>)>,
}

/// What reads counted, added to the pipeline's counters.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) decode_failures: u64,
    pub(super) late_rows: u64,
    pub(super) late_dead_lettered: u64,
    pub(super) duplicate_rows: u64,
}

/// One read of one source partition.
pub(super) struct ReadOut {
    /// How to park on the partition after the read.
    pub(super) watched: Wake,
    /// The read position moved.
    pub(super) moved: bool,
    pub(super) messages: Vec<Message>,
    /// Where this partition's dead letters go.
    pub(super) dead_letter: Option<(String, PartitionHandle)>,
}

impl SourceRt {
    /// Source node `node` of `graph`, at the offsets and watermark of `restored`; sets
    /// `fresh` when a partition has no checkpointed offset.
    pub(super) async fn open(
        node: usize,
        s: &SourceSpec,
        graph: &Graph,
        access: &PartitionAccess,
        restored: &SourceState,
        config: &StreamConfig,
        fresh: &mut bool,
    ) -> Result<SourceRt, StreamError> {
        let now = now_ms();
        let mut readers = Vec::new();
        for p in partitions(access, &s.topic)? {
            let stored = restored.offsets.get(&(s.topic.clone(), p.index()));
            *fresh |= stored.is_none();
            let start = match stored {
                Some((o, _)) => *o,
                None => {
                    let marks = p
                        .watermarks()
                        .await
                        .map_err(|source| StreamError::Partition {
                            topic: s.topic.clone(),
                            partition: p.index(),
                            source,
                        })?;
                    match s.startup {
                        Startup::Earliest => marks.log_start_offset,
                        Startup::Latest => marks.high_watermark,
                    }
                }
            };
            readers.push(PartitionReader::new(
                s.topic.clone(),
                p,
                start,
                config.read_max_bytes,
            ));
        }
        let watermark = s.watermark.map(|spec| {
            let timeout = i64::try_from(spec.idle_timeout.as_millis()).unwrap_or(i64::MAX);
            let mut t = WatermarkTracker::new(readers.len(), spec.delay_ms, timeout, now);
            for (k, r) in readers.iter().enumerate() {
                let max = restored
                    .offsets
                    .get(&(s.topic.clone(), r.index()))
                    .and_then(|(_, m)| *m);
                t.restore(k, max);
            }
            t.restore_emitted(restored.watermarks.get(&s.topic).copied());
            (spec, t)
        });
        let dead_letter = match &s.dead_letter {
            Some(t) => Some((t.clone(), partitions(access, t)?)),
            None => None,
        };
        Ok(SourceRt {
            dead_letter,
            node,
            topic: s.topic.clone(),
            readers,
            decoder: (s.decoder)(),
            watermark,
            emitted: restored.watermarks.get(&s.topic).copied(),
            drops_late: late::feeds_watermark_operator(graph, node),
        })
    }

    /// Reads partition `r` once through `dedup` (the source node's, if it declares one);
    /// records refused or late go to `dead`. `None`: no such partition.
    pub(super) async fn read_partition(
        &mut self,
        r: usize,
        mut dedup: Option<&mut Dedup>,
        tally: &mut Tally,
        dead: &mut Vec<SinkRecord>,
    ) -> Result<Option<ReadOut>, StreamError> {
        let Some(reader) = self.readers.get_mut(r) else {
            return Ok(None);
        };
        let before = reader.next_offset;
        let (step, watched) = reader.read(self.decoder.as_mut(), dead).await?;
        let moved = reader.next_offset != before;
        let mut batch = self.decoder.flush()?;
        tally.decode_failures += step.failed as u64;
        if let (Some((spec, _)), Some(w), true) =
            (self.watermark.as_ref(), self.emitted, self.drops_late)
        {
            // Behind the watermark already sent downstream: late (§6), dropped, counted and
            // dead-lettered; windows it belonged to may have closed.
            let (kept, late) = drop_late(batch, spec.column, w)?;
            batch = kept;
            tally.late_rows += late.len() as u64;
            if self.dead_letter.is_some() && !late.is_empty() {
                let letters = late::dead_letters(reader, &late, w).await?;
                tally.late_dead_lettered += letters.len() as u64;
                dead.extend(letters);
            }
        }
        let now = now_ms();
        let mut messages = Vec::new();
        if let Some((spec, tracker)) = self.watermark.as_mut() {
            if batch.num_rows() > 0 || step.decoded > 0 {
                tracker.observe(r, max_event_time(&batch, spec.column)?, now);
            } else if step.caught_up {
                tracker.caught_up(r, now);
            }
        }
        // After the watermark saw their times: duplicates do not hold a source's
        // watermark back or move it on.
        if let Some(d) = dedup.as_mut() {
            let (kept, dropped) = d.process(batch)?;
            batch = kept;
            tally.duplicate_rows += dropped;
        }
        if batch.num_rows() > 0 {
            messages.push(Message::Batch(batch));
        }
        if let Some((_, tracker)) = self.watermark.as_mut() {
            if let Some(w) = tracker.current() {
                if self.emitted.is_none_or(|e| w > e) {
                    self.emitted = Some(w);
                    if let Some(d) = dedup.as_mut() {
                        d.on_watermark(w);
                    }
                    messages.push(Message::Watermark(w));
                }
            }
        }
        let dead_letter = self.dead_letter.as_ref().and_then(|(t, parts)| {
            let p = usize::try_from(reader.index()).unwrap_or(0) % parts.len().max(1);
            parts.get(p).map(|p| (t.clone(), p.clone()))
        });
        Ok(Some(ReadOut {
            watched,
            moved,
            messages,
            dead_letter,
        }))
    }
}
