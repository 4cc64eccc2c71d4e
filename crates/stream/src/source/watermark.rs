//! Per-partition watermarks with idleness (§6): a partition's watermark is the largest event
//! time it has delivered minus the source's delay; the source's is the minimum over active
//! partitions and never moves back. A partition that is caught up and has delivered nothing
//! for the idle timeout leaves the minimum (an empty partition must not stall the source) and
//! rejoins with its next record; when every partition is idle the watermark holds (at the
//! minimum over the partitions that delivered records).

/// The watermark state of one source. Times are milliseconds; `now_ms` is passed in, so the
/// logic is tested without a clock.
#[derive(Clone, Debug)]
pub struct WatermarkTracker {
    delay_ms: i64,
    idle_timeout_ms: i64,
    parts: Vec<PartitionWatermark>,
    emitted: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
struct PartitionWatermark {
    max_event_time: Option<i64>,
    last_record_ms: i64,
    idle: bool,
}

impl WatermarkTracker {
    pub fn new(partitions: usize, delay_ms: i64, idle_timeout_ms: i64, now_ms: i64) -> Self {
        WatermarkTracker {
            delay_ms,
            idle_timeout_ms,
            parts: vec![
                PartitionWatermark {
                    max_event_time: None,
                    last_record_ms: now_ms,
                    idle: false,
                };
                partitions
            ],
            emitted: None,
        }
    }

    /// Restores checkpointed state: per partition the largest event time, and the emitted
    /// watermark (so recovery never moves it back).
    pub fn restore(&mut self, partition: usize, max_event_time: Option<i64>) {
        if let Some(p) = self.parts.get_mut(partition) {
            p.max_event_time = max_event_time;
        }
    }

    pub fn restore_emitted(&mut self, emitted: Option<i64>) {
        self.emitted = emitted;
    }

    pub fn max_event_time(&self, partition: usize) -> Option<i64> {
        self.parts.get(partition).and_then(|p| p.max_event_time)
    }

    /// Partition `partition` delivered records whose largest event time is `max`.
    pub fn observe(&mut self, partition: usize, max: Option<i64>, now_ms: i64) {
        if let Some(p) = self.parts.get_mut(partition) {
            p.idle = false;
            p.last_record_ms = now_ms;
            if let Some(max) = max {
                p.max_event_time = Some(p.max_event_time.map_or(max, |m| m.max(max)));
            }
        }
    }

    /// Partition `partition` had nothing to read.
    pub fn caught_up(&mut self, partition: usize, now_ms: i64) {
        let timeout = self.idle_timeout_ms;
        if let Some(p) = self.parts.get_mut(partition) {
            if now_ms.saturating_sub(p.last_record_ms) >= timeout {
                p.idle = true;
            }
        }
    }

    pub fn is_idle(&self, partition: usize) -> bool {
        self.parts.get(partition).is_some_and(|p| p.idle)
    }

    /// When partition `partition`, caught up, turns idle; `None` when it is idle already.
    pub fn idle_deadline(&self, partition: usize) -> Option<i64> {
        self.parts
            .get(partition)
            .filter(|p| !p.idle)
            .map(|p| p.last_record_ms.saturating_add(self.idle_timeout_ms))
    }

    /// The source's watermark: recomputed, never below what was emitted before.
    pub fn current(&mut self) -> Option<i64> {
        let delay = self.delay_ms;
        let mut active = self.parts.iter().filter(|p| !p.idle).peekable();
        let candidate = if active.peek().is_some() {
            // An active partition that has delivered nothing yet holds the watermark back.
            active.try_fold(i64::MAX, |m, p| {
                p.max_event_time.map(|t| m.min(t.saturating_sub(delay)))
            })
        } else {
            // All idle: the minimum over the partitions that delivered records. It is never
            // above what the last partitions to go idle allowed while active (they are in
            // it), so it only matters when they went idle at the same check.
            self.parts
                .iter()
                .filter_map(|p| p.max_event_time)
                .min()
                .map(|t| t.saturating_sub(delay))
        };
        if let Some(c) = candidate {
            if self.emitted.is_none_or(|e| c > e) {
                self.emitted = Some(c);
            }
        }
        self.emitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_active_partitions_with_delay() {
        let mut w = WatermarkTracker::new(2, 100, 1_000, 0);
        w.observe(0, Some(5_000), 10);
        assert_eq!(
            w.current(),
            None,
            "partition 1 has delivered nothing and is not idle"
        );
        w.observe(1, Some(3_000), 20);
        assert_eq!(w.current(), Some(2_900));
        w.observe(1, Some(9_000), 30);
        assert_eq!(w.current(), Some(4_900));
    }

    #[test]
    fn an_idle_partition_leaves_the_minimum_and_rejoins_with_its_next_record() {
        let mut w = WatermarkTracker::new(2, 0, 1_000, 0);
        w.observe(0, Some(5_000), 10);
        w.caught_up(1, 500);
        assert!(!w.is_idle(1), "not idle before the timeout");
        assert_eq!(w.current(), None);
        w.caught_up(1, 1_000);
        assert!(w.is_idle(1));
        assert_eq!(
            w.current(),
            Some(5_000),
            "the empty partition no longer stalls"
        );
        // It rejoins with an old record: the watermark does not move back.
        w.observe(1, Some(4_000), 1_100);
        assert!(!w.is_idle(1));
        assert_eq!(w.current(), Some(5_000));
        w.observe(0, Some(8_000), 1_200);
        assert_eq!(w.current(), Some(5_000), "partition 1 is the minimum again");
        w.observe(1, Some(7_000), 1_300);
        assert_eq!(w.current(), Some(7_000));
    }

    #[test]
    fn all_idle_holds_and_restore_never_regresses() {
        let mut w = WatermarkTracker::new(1, 0, 100, 0);
        w.observe(0, Some(2_000), 0);
        assert_eq!(w.current(), Some(2_000));
        w.caught_up(0, 200);
        assert!(w.is_idle(0));
        assert_eq!(w.current(), Some(2_000), "all idle: held");

        // Both idle at the same check: the empty one does not hold back the other.
        let mut both = WatermarkTracker::new(2, 10, 100, 0);
        both.observe(0, Some(3_000), 0);
        both.caught_up(0, 100);
        both.caught_up(1, 100);
        assert_eq!(both.current(), Some(2_990));

        let mut r = WatermarkTracker::new(1, 0, 100, 0);
        r.restore(0, Some(1_500));
        r.restore_emitted(Some(2_000));
        assert_eq!(r.current(), Some(2_000));
        r.observe(0, Some(2_500), 10);
        assert_eq!(r.current(), Some(2_500));
    }
}
