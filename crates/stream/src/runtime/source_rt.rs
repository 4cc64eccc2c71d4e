//! One source of a running pipeline on the operator side: the positions of the reads
//! applied, the watermark tracker and dead-letter topic, and one decoded read (from the
//! [source stage](super::stage)) turned into what goes downstream: drop late rows (when the
//! source feeds a watermark operator), observe event times, drop duplicates (a source
//! declaring `dedup.key`), then the batch and any new watermark.

use weir_broker::partition_access::{PartitionAccess, PartitionHandle};

use super::stage::{Fetched, StageSource};
use super::{partitions, StreamConfig};
use crate::checkpoint::SourceState;
use crate::error::StreamError;
use crate::format::{now_ms, SinkRecord};
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
    /// Each partition at the position after the last read applied (what a checkpoint
    /// commits); also how a late row's record is read again.
    pub(super) readers: Vec<PartitionReader>,
    /// Per partition: its last read applied found nothing more to read.
    caught_up: Vec<bool>,
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

/// One read of one source partition, applied.
pub(super) struct ReadOut {
    pub(super) messages: Vec<Message>,
    /// Where this partition's dead letters go.
    pub(super) dead_letter: Option<(String, PartitionHandle)>,
}

impl SourceRt {
    /// Source node `node` of `graph`, at the offsets and watermark of `restored`, and its
    /// part of the source stage; sets `fresh` when a partition has no checkpointed offset.
    pub(super) async fn open(
        node: usize,
        s: &SourceSpec,
        graph: &Graph,
        access: &PartitionAccess,
        restored: &SourceState,
        config: &StreamConfig,
        fresh: &mut bool,
    ) -> Result<(SourceRt, StageSource), StreamError> {
        let now = now_ms();
        let mut readers = Vec::new();
        for p in partitions(access, &s.topic)? {
            let stored = restored.offsets.get(&(s.topic.clone(), p.index()));
            *fresh |= stored.is_none();
            let start = match stored {
                Some((o, _)) => *o,
                None => {
                    let error = |source| StreamError::Partition {
                        topic: s.topic.clone(),
                        partition: p.index(),
                        source,
                    };
                    let marks = p.watermarks().await.map_err(error)?;
                    match s.startup {
                        Startup::Earliest => marks.log_start_offset,
                        Startup::Latest => marks.high_watermark,
                        Startup::Timestamp(ms) => match p.offset_for_timestamp(ms).await {
                            Ok(Some((offset, _))) => offset,
                            Ok(None) => marks.high_watermark,
                            Err(e) => return Err(error(e)),
                        },
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
        let stage = StageSource {
            readers: readers
                .iter()
                .map(|r| {
                    let (t, p) = (r.topic.clone(), r.partition.clone());
                    PartitionReader::new(t, p, r.next_offset, config.read_max_bytes)
                })
                .collect(),
            decoder: (s.decoder)(),
        };
        let rt = SourceRt {
            dead_letter,
            node,
            topic: s.topic.clone(),
            caught_up: vec![false; readers.len()],
            readers,
            watermark,
            emitted: restored.watermarks.get(&s.topic).copied(),
            drops_late: late::feeds_watermark_operator(graph, node),
        };
        Ok((rt, stage))
    }

    /// When the next caught-up partition turns idle (the operator side's timer).
    pub(super) fn next_idle_deadline(&self) -> Option<i64> {
        let (_, tracker) = self.watermark.as_ref()?;
        self.caught_up
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .filter_map(|(k, _)| tracker.idle_deadline(k))
            .min()
    }

    /// The clock moved: caught-up partitions may turn idle and the watermark move on
    /// without them.
    pub(super) fn tick(&mut self, dedup: Option<&mut Dedup>) -> Option<Message> {
        let (_, tracker) = self.watermark.as_mut()?;
        let now = now_ms();
        for (k, c) in self.caught_up.iter().enumerate() {
            if *c {
                tracker.caught_up(k, now);
            }
        }
        self.advance_watermark(dedup)
    }

    /// The source's watermark, when it moved past what was sent downstream.
    fn advance_watermark(&mut self, dedup: Option<&mut Dedup>) -> Option<Message> {
        let (_, tracker) = self.watermark.as_mut()?;
        let w = tracker.current()?;
        if self.emitted.is_some_and(|e| w <= e) {
            return None;
        }
        self.emitted = Some(w);
        if let Some(d) = dedup {
            d.on_watermark(w);
        }
        Some(Message::Watermark(w))
    }

    /// Applies the read `f` through `dedup` (the source node's, if it declares one): records
    /// refused or late go to `dead`. `None`: no such partition.
    pub(super) async fn apply(
        &mut self,
        f: Fetched,
        mut dedup: Option<&mut Dedup>,
        tally: &mut Tally,
        dead: &mut Vec<SinkRecord>,
    ) -> Result<Option<ReadOut>, StreamError> {
        let r = f.reader;
        let (Some(reader), Some(caught_up)) = (self.readers.get_mut(r), self.caught_up.get_mut(r))
        else {
            return Ok(None);
        };
        reader.next_offset = f.decoded.next_offset;
        let index = reader.index();
        *caught_up = f.decoded.step.caught_up;
        let step = f.decoded.step;
        tally.decode_failures += step.failed as u64;
        dead.extend(f.decoded.dead);
        let mut batch = f.batch;
        if let (Some((spec, _)), Some(w), true) =
            (self.watermark.as_ref(), self.emitted, self.drops_late)
        {
            if let Some(b) = batch.take() {
                // Behind the watermark already sent downstream: late (§6), dropped, counted
                // and dead-lettered; windows it belonged to may have closed.
                let (kept, late) = drop_late(b, spec.column, w)?;
                batch = Some(kept);
                tally.late_rows += late.len() as u64;
                if self.dead_letter.is_some() && !late.is_empty() {
                    let letters = late::dead_letters(reader, &f.decoded.offsets, &late, w).await?;
                    tally.late_dead_lettered += letters.len() as u64;
                    dead.extend(letters);
                }
            }
        }
        let now = now_ms();
        let mut messages = Vec::new();
        // (Caught-up partitions turn idle in `tick`, which follows every read applied.)
        if let (Some((spec, tracker)), true) = (self.watermark.as_mut(), step.decoded > 0) {
            let max = match &batch {
                Some(b) => max_event_time(b, spec.column)?,
                None => None,
            };
            tracker.observe(r, max, now);
        }
        // After the watermark saw their times: duplicates do not hold a source's
        // watermark back or move it on.
        if let Some(d) = dedup.as_mut() {
            if let Some(b) = batch.take() {
                let (kept, dropped) = d.process(b)?;
                batch = Some(kept);
                tally.duplicate_rows += dropped;
            }
        }
        if let Some(b) = batch.filter(|b| b.num_rows() > 0) {
            messages.push(Message::Batch(b));
        }
        messages.extend(self.advance_watermark(dedup));
        let dead_letter = self.dead_letter.as_ref().and_then(|(t, parts)| {
            let p = usize::try_from(index).unwrap_or(0) % parts.len().max(1);
            parts.get(p).map(|p| (t.clone(), p.clone()))
        });
        Ok(Some(ReadOut {
            messages,
            dead_letter,
        }))
    }
}
