//! State retention of a regular inner join whose residual condition bounds each side's
//! event time by the other side's row (Nexmark q7: `bid B JOIN (max price per 10 s
//! window) B1 ON B.price = B1.maxprice AND B.date_time BETWEEN B1.date_time - INTERVAL
//! '10' SECOND AND B1.date_time`, where `B1.date_time` is the window's end and that side
//! updates while the window is open). Flink's interval-join retention, generalised to an
//! equi-join with a time-bounded residual over inputs that may update.
//!
//! **Why freeing is exact.** For each side `s`, `time[s]` is a column whose value in every
//! row reaching the join after watermark `W` is at least `W - lag[s]` ms: a source's
//! `WATERMARK FOR` column (lag 0: the source drops rows behind its watermark) or a window
//! bound of a windowed aggregate (a window changes only while the watermark is before its
//! end: lag = the bound's distance to the end, 0 for `window_end`). The join's watermark is
//! the minimum of its inputs', so this holds for both sides. A held row `x` of side `s`
//! puts upper bounds `upper[s]` on the other side's time (`other.t <= x.c + offset`, the
//! tightest `D(x)`; widened by a millisecond by the planner): the residual is false for
//! every pair whose other time exceeds `D(x)`. Once `D(x) + lag[o] < W`, every later row of
//! the other side `o` (insertions and retractions alike) has `t >= W - lag[o] > D(x)`, so
//! `x` matches none of them: nothing `x` would contribute to the output can change any
//! more. If `s` itself updates, `x` may still be retracted, and that retraction must find
//! it: a retraction carries `x`'s own time, so it can come only while
//! `x.time[s] >= W - lag[s]`; `x` is kept until `x.time[s] + lag[s] < W` too. Past both,
//! `x` is freed without output (the joined rows it produced stay). A NULL bound matches
//! nothing (the residual is not true); a NULL own time of an updating side keeps the row.
//! Only inner joins are bounded this way (an outer or anti join's padded rows would need
//! their degree tracked to the end).
//!
//! The deadline index (deadline ms -> state keys holding a row due then) is not
//! checkpointed: a restore rebuilds it from the restored rows.

use std::collections::{BTreeMap, HashSet};

use datafusion_common::ScalarValue;

use crate::ops::interval_join::{ms_of, TimeBound};

/// Bytes an index entry costs beyond its key (the set's slot and hash, the map's share).
const INDEX_OVERHEAD: usize = 48;

/// Where a regular inner join's residual bounds its sides' times (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinTimeBounds {
    /// Per side, the column no later row has below the watermark minus `lag_ms`.
    pub time: [usize; 2],
    /// Per side, how far below the join's watermark a later row's `time` may be (ms).
    pub lag_ms: [i64; 2],
    /// Per side, the upper bounds its rows put on the other side's `time`.
    pub upper: [Vec<TimeBound>; 2],
    /// Per side, whether it updates (its rows may be retracted).
    pub updating: [bool; 2],
}

impl JoinTimeBounds {
    /// The watermark (ms) past which the row `row` of `side` can neither match nor be
    /// retracted: it is freed once the watermark is above this. `None`: kept.
    pub fn deadline(&self, side: usize, row: &[ScalarValue]) -> Option<i64> {
        self.deadline_by(side, &mut |c| row.get(c).and_then(ms_of))
    }

    /// [`Self::deadline`] of a row given by its cells' times (ms): `ms(c)` is column `c`'s
    /// value as milliseconds, `None` when NULL (a row read from a batch, not yet decoded).
    pub fn deadline_by(
        &self,
        side: usize,
        ms: &mut impl FnMut(usize) -> Option<i64>,
    ) -> Option<i64> {
        let other = 1 - side.min(1);
        let bounds = self.upper.get(side)?;
        if bounds.is_empty() {
            return None;
        }
        let mut matches_until = Some(i64::MAX);
        for b in bounds {
            let v = ms(b.column);
            matches_until = match (matches_until, v) {
                (Some(m), Some(v)) => Some(m.min(v.saturating_add(b.offset_ms))),
                _ => None, // A NULL bound: the residual is never true.
            };
        }
        let lag = |s: usize| self.lag_ms.get(s).copied().unwrap_or(i64::MAX);
        let unmatched = matches_until.map_or(i64::MIN, |d| d.saturating_add(lag(other)));
        if !self.updating.get(side).copied().unwrap_or(true) {
            return Some(unmatched);
        }
        let own = ms(*self.time.get(side)?)?;
        Some(unmatched.max(own.saturating_add(lag(side))))
    }
}

/// The state keys holding rows due at each deadline, and the bytes that costs.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    by_time: BTreeMap<i64, HashSet<Vec<u8>>>,
    pub(super) bytes: usize,
}

impl Deadlines {
    pub(super) fn add(&mut self, at: i64, key: &[u8]) {
        let keys = self.by_time.entry(at).or_default();
        if !keys.contains(key) {
            keys.insert(key.to_vec());
            self.bytes += key.len() + INDEX_OVERHEAD;
        }
    }

    /// The keys with a row due before `watermark_ms` (each once), taken out of the index.
    pub(super) fn due(&mut self, watermark_ms: i64) -> HashSet<Vec<u8>> {
        let later = self.by_time.split_off(&watermark_ms);
        let mut out = HashSet::new();
        for (_, keys) in std::mem::replace(&mut self.by_time, later) {
            for k in keys {
                self.bytes = self.bytes.saturating_sub(k.len() + INDEX_OVERHEAD);
                out.insert(k);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> ScalarValue {
        ScalarValue::TimestampMicrosecond(Some(ms * 1_000), None)
    }

    /// q7's shape: left bids (time column 0, append-only), right windows (end column 0,
    /// updating); `B.t <= B1.end + 1` and `B1.end <= B.t + 10_001` after widening.
    fn q7() -> JoinTimeBounds {
        JoinTimeBounds {
            time: [0, 0],
            lag_ms: [0, 0],
            upper: [
                vec![TimeBound {
                    column: 0,
                    offset_ms: 10_001,
                }],
                vec![TimeBound {
                    column: 0,
                    offset_ms: 1,
                }],
            ],
            updating: [false, true],
        }
    }

    #[test]
    fn a_row_is_due_once_no_later_row_of_the_other_side_can_match_or_retract_it() {
        let b = q7();
        // A bid at 5 s matches windows ending up to 15 s (+1 ms of widening).
        assert_eq!(b.deadline(0, &[ts(5_000)]), Some(15_001));
        // A window ending at 20 s matches bids up to 20 s, and may be retracted until
        // the watermark passes its end: the later of both.
        assert_eq!(b.deadline(1, &[ts(20_000)]), Some(20_001));
        let lagging = JoinTimeBounds {
            lag_ms: [0, 10_000], // a window_start: its end is 10 s later
            ..q7()
        };
        assert_eq!(lagging.deadline(0, &[ts(5_000)]), Some(25_001));
        assert_eq!(lagging.deadline(1, &[ts(20_000)]), Some(30_000));
        // A NULL bound matches nothing: an append-only row is due at once; an updating
        // row without its own time is kept.
        let null = [ScalarValue::TimestampMicrosecond(None, None)];
        assert_eq!(b.deadline(0, &null), Some(i64::MIN));
        assert_eq!(b.deadline(1, &null), None);
        // A side whose rows bound nothing keeps them.
        let one_way = JoinTimeBounds {
            upper: [Vec::new(), q7().upper[1].clone()],
            ..q7()
        };
        assert_eq!(one_way.deadline(0, &[ts(5_000)]), None);
    }

    #[test]
    fn the_index_hands_out_each_due_key_once_and_accounts_its_bytes() {
        let mut d = Deadlines::default();
        d.add(10, b"a");
        d.add(10, b"a");
        d.add(12, b"a");
        d.add(20, b"b");
        let one = 1 + INDEX_OVERHEAD;
        assert_eq!(d.bytes, 3 * one);
        assert!(d.due(10).is_empty(), "due means before the watermark");
        assert_eq!(d.due(13), HashSet::from([b"a".to_vec()]));
        assert_eq!(d.bytes, one);
        assert_eq!(d.due(i64::MAX), HashSet::from([b"b".to_vec()]));
        assert_eq!(d.bytes, 0);
    }
}
