//! When an operator's keys can be freed without changing its output (design §6, state
//! cleaning): a key whose columns include a window bound is read no more once the watermark
//! passes the window's end (Nexmark q5's per-window maximum, ROW_NUMBER deduplication per
//! key and window), and with an opt-in idle-state TTL (`streaming.state_ttl`, Flink's
//! `table.exec.state.ttl`) a key not written for that long is dropped, as if never seen.
//!
//! Both are measured in **event time**: the watermark reaching the operator, not the wall
//! clock. So a replay (recovery, or a backlog read at full speed as in the bench) frees the
//! same keys at the same points of the input as the live run did, results do not depend on
//! how fast the engine reads, and a pipeline stopped for a day does not lose its state on
//! restart. A pipeline without a watermark measures the TTL by the wall clock instead
//! (`graph::TtlTime::Processing`): the runtime hands the clock to `advance` at checkpoints.
//!
//! [`Expiry`] computes a key's deadline (µs of event time) from its values and the
//! watermark; [`super::KeyedState`] keeps the deadlines indexed by time and frees the due
//! keys. TTL deadlines are rounded to a sixteenth of the TTL (a key written every batch
//! costs one index update per sixteenth, not one per row): a key is dropped after it has
//! been idle between the TTL and 17/16 of it.

use datafusion_common::ScalarValue;

/// A key column that holds a window bound: the key is read no more once the watermark
/// passes `column + end_offset_us` (the window's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyExpiry {
    /// The index of the column among the key's (group or partition) columns.
    pub column: usize,
    /// Added to the column's value (µs) gives the window's end: the window's size for
    /// `window_start`, 0 for `window_end`.
    pub end_offset_us: i64,
}

/// An operator's expiry rules and the watermark it has seen. A window bound in the key
/// decides alone (it is exact); a TTL applies to operators without one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expiry {
    window: Option<KeyExpiry>,
    ttl_us: Option<i64>,
    watermark_ms: Option<i64>,
}

impl Expiry {
    /// Keys freed by `window`, else after `ttl_ms` of event time without a write.
    pub fn new(window: Option<KeyExpiry>, ttl_ms: Option<i64>) -> Expiry {
        Expiry {
            window,
            ttl_us: ttl_ms
                .filter(|t| *t > 0 && window.is_none())
                .map(|t| t.saturating_mul(1_000)),
            watermark_ms: None,
        }
    }

    /// Whether keys expire by TTL: the operator then meets retractions of rows it dropped,
    /// and ignores them.
    pub fn has_ttl(&self) -> bool {
        self.ttl_us.is_some()
    }

    /// Whether no key ever expires.
    pub fn is_none(&self) -> bool {
        self.window.is_none() && self.ttl_us.is_none()
    }

    /// The deadline (µs of event time) of a key with values `key` by its window's end;
    /// `None` without a window rule or for a NULL bound.
    pub fn key_deadline(&self, key: &[ScalarValue]) -> Option<i64> {
        let w = self.window?;
        Some(micros_of(key.get(w.column)?)?.saturating_add(w.end_offset_us))
    }

    /// The TTL deadline of a key written now: the watermark rounded down to the grain, plus
    /// a grain, plus the TTL (so at least the TTL of idleness). `None` without a TTL or
    /// before the first watermark.
    pub fn write_deadline(&self) -> Option<i64> {
        let (ttl, w) = (self.ttl_us?, self.watermark_ms?);
        let grain = (ttl / 16).max(1);
        let now = w.saturating_mul(1_000);
        Some(
            now.saturating_sub(now.rem_euclid(grain))
                .saturating_add(grain)
                .saturating_add(ttl),
        )
    }

    /// The watermark moved to `w` (ms): the time (µs) up to which deadlines are due, and
    /// whether it is the first one with a TTL (keys written before it have no deadline).
    pub fn on_watermark(&mut self, w: i64) -> Option<(i64, bool)> {
        if self.is_none() || self.watermark_ms.is_some_and(|old| old >= w) {
            return None;
        }
        let first = self.watermark_ms.is_none();
        self.watermark_ms = Some(w);
        Some((w.saturating_mul(1_000), first && self.ttl_us.is_some()))
    }
}

/// A timestamp (or BIGINT milliseconds) in microseconds; `None` for NULL or another type.
pub fn micros_of(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampMicrosecond(t, _) => *t,
        ScalarValue::TimestampMillisecond(t, _) | ScalarValue::Int64(t) => {
            t.map(|t| t.saturating_mul(1_000))
        }
        ScalarValue::TimestampNanosecond(t, _) => t.map(|t| t.div_euclid(1_000)),
        ScalarValue::TimestampSecond(t, _) => t.map(|t| t.saturating_mul(1_000_000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_bound_key_expires_at_its_windows_end() {
        let e = Expiry::new(
            Some(KeyExpiry {
                column: 1,
                end_offset_us: 10_000_000,
            }),
            Some(1_000),
        );
        let key = [
            ScalarValue::Int64(Some(7)),
            ScalarValue::TimestampMicrosecond(Some(20_000_000), None),
        ];
        assert_eq!(e.key_deadline(&key), Some(30_000_000));
        assert_eq!(e.key_deadline(&[ScalarValue::Int64(Some(7))]), None);
        assert_eq!(e.write_deadline(), None, "the window decides, not the TTL");
    }

    #[test]
    fn ttl_deadlines_follow_the_watermark_rounded_to_a_sixteenth() {
        let mut e = Expiry::new(None, Some(16_000));
        assert_eq!(e.write_deadline(), None, "no watermark yet");
        assert_eq!(e.on_watermark(5_500), Some((5_500_000, true)));
        // Rounded down to 5 s, plus a 1 s grain, plus the 16 s TTL.
        assert_eq!(e.write_deadline(), Some(22_000_000));
        assert_eq!(e.on_watermark(5_000), None, "watermarks never go back");
        assert_eq!(e.on_watermark(6_000), Some((6_000_000, false)));
        assert_eq!(e.write_deadline(), Some(23_000_000));
        assert_eq!(e.key_deadline(&[]), None);
        assert!(Expiry::new(None, Some(0)).is_none());
    }
}
