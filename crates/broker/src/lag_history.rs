//! The lag history (docs/design/operability.md §2): per consumer group, a bounded ring of
//! one-minute points (24 h), fed by the lag task and read by the console's lag chart.
//!
//! Memory is bounded twice: a group keeps at most [`POINTS`] points of [`POINT_BYTES`] bytes,
//! and at most `weir.metrics.max.groups` groups have a history (others are not recorded, as
//! their metric series fold into `_other`). With the defaults that is 1,000 × 1,440 × 16 B =
//! 23 MB at worst ([`LagHistory::max_bytes`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

/// Points per group: 24 hours of minutes.
pub const POINTS: usize = 24 * 60;

/// Bytes of one stored point.
pub const POINT_BYTES: usize = std::mem::size_of::<Point>();

const MINUTE_MS: i64 = 60_000;

/// One minute of a group's lag, as the console draws it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LagSample {
    /// The start of the minute, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The group's lag in records, summed over every partition it committed on; the largest
    /// seen during the minute.
    pub lag_records: i64,
    /// The age of the group's oldest unconsumed record (the largest over its topics); the
    /// largest seen during the minute.
    pub lag_seconds: f64,
}

/// A stored point, kept small: minutes since the epoch fit a `u32` until the year 10,000.
#[derive(Debug, Clone, Copy)]
struct Point {
    minute: u32,
    lag_seconds: f32,
    lag_records: i64,
}

impl Point {
    fn sample(&self) -> LagSample {
        LagSample {
            timestamp_ms: i64::from(self.minute) * MINUTE_MS,
            lag_records: self.lag_records,
            lag_seconds: f64::from(self.lag_seconds),
        }
    }
}

/// Every group's ring. One lock: the lag task writes once per interval, the console reads one
/// group at a time.
pub struct LagHistory {
    max_groups: usize,
    rings: Mutex<HashMap<String, VecDeque<Point>>>,
}

impl LagHistory {
    pub fn new(max_groups: usize) -> LagHistory {
        LagHistory {
            max_groups,
            rings: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Point>>> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most memory the points may take (the group cap times a full ring).
    pub fn max_bytes(&self) -> usize {
        self.max_groups.saturating_mul(POINTS * POINT_BYTES)
    }

    /// Records a group's lag at `now_ms`. Samples in the same minute keep the largest lag, so
    /// a spike between two minutes is not lost; a sample older than the newest point is
    /// dropped (clocks stepping back). Points older than 24 h fall off.
    pub fn record(&self, group: &str, now_ms: i64, lag_records: i64, lag_seconds: f64) {
        let Ok(minute) = u32::try_from(now_ms.div_euclid(MINUTE_MS)) else {
            return;
        };
        let mut rings = self.lock();
        if !rings.contains_key(group) && rings.len() >= self.max_groups {
            return;
        }
        let ring = rings
            .entry(group.to_string())
            .or_insert_with(|| VecDeque::with_capacity(POINTS));
        let seconds = lag_seconds as f32;
        match ring.back_mut() {
            Some(last) if last.minute == minute => {
                last.lag_records = last.lag_records.max(lag_records);
                last.lag_seconds = last.lag_seconds.max(seconds);
                return;
            }
            Some(last) if last.minute > minute => return,
            _ => {}
        }
        let oldest = minute.saturating_sub(POINTS as u32 - 1);
        while ring
            .front()
            .is_some_and(|p| p.minute < oldest || ring.len() >= POINTS)
        {
            ring.pop_front();
        }
        ring.push_back(Point {
            minute,
            lag_seconds: seconds,
            lag_records,
        });
    }

    /// A group's points, oldest first (empty for a group without history).
    pub fn history(&self, group: &str) -> Vec<LagSample> {
        self.lock()
            .get(group)
            .map(|ring| ring.iter().map(Point::sample).collect())
            .unwrap_or_default()
    }

    /// The groups that have a history.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.lock().keys().cloned().collect();
        groups.sort();
        groups
    }

    /// Drops the history of every group not in `known` (deleted or expired groups).
    pub fn retain(&self, known: &HashSet<String>) {
        self.lock().retain(|g, _| known.contains(g));
    }

    /// Drops one group's history.
    pub fn remove(&self, group: &str) {
        self.lock().remove(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000 / MINUTE_MS * MINUTE_MS;

    #[test]
    fn a_point_is_16_bytes_and_the_bound_follows() {
        assert_eq!(POINT_BYTES, 16);
        // The design's worst case: 1,000 groups of 24 h.
        assert_eq!(LagHistory::new(1000).max_bytes(), 23_040_000);
    }

    #[test]
    fn one_point_per_minute_keeping_the_largest() {
        let h = LagHistory::new(10);
        h.record("g", T0 + 1_000, 5, 1.0);
        h.record("g", T0 + 11_000, 9, 0.5);
        h.record("g", T0 + 21_000, 2, 3.0);
        h.record("g", T0 + MINUTE_MS, 1, 0.0);
        assert_eq!(
            h.history("g"),
            vec![
                LagSample {
                    timestamp_ms: T0,
                    lag_records: 9,
                    lag_seconds: 3.0
                },
                LagSample {
                    timestamp_ms: T0 + MINUTE_MS,
                    lag_records: 1,
                    lag_seconds: 0.0
                },
            ]
        );
        // A sample from before the newest minute is dropped.
        h.record("g", T0, 100, 100.0);
        assert_eq!(h.history("g")[0].lag_records, 9);
        assert!(h.history("other").is_empty());
    }

    #[test]
    fn the_ring_holds_24_hours_and_no_more() {
        let h = LagHistory::new(1);
        let minutes = POINTS as i64 + 100;
        for i in 0..minutes {
            h.record("g", T0 + i * MINUTE_MS, i, 0.0);
        }
        let points = h.history("g");
        assert_eq!(points.len(), POINTS);
        assert_eq!(points[0].lag_records, 100);
        assert_eq!(points[POINTS - 1].lag_records, minutes - 1);
        // After a gap longer than a day, the old points are gone at once.
        h.record("g", T0 + (minutes + POINTS as i64) * MINUTE_MS, 7, 0.0);
        assert_eq!(h.history("g").len(), 1);
    }

    #[test]
    fn groups_beyond_the_cap_have_no_history_and_removal_frees_a_slot() {
        let h = LagHistory::new(2);
        h.record("a", T0, 1, 0.0);
        h.record("b", T0, 1, 0.0);
        h.record("c", T0, 1, 0.0);
        assert_eq!(h.groups(), vec!["a".to_string(), "b".to_string()]);
        h.retain(&["b".to_string()].into_iter().collect());
        assert_eq!(h.groups(), vec!["b".to_string()]);
        h.record("c", T0, 1, 0.0);
        assert_eq!(h.groups(), vec!["b".to_string(), "c".to_string()]);
        h.remove("b");
        assert!(h.history("b").is_empty());
    }
}
