//! The log cleaner's hooks (`crate::cleaner`): a consistent view of the log to plan a pass,
//! and the switch of cleaned segments into the segment list, with the side files that
//! describe the replaced offsets (aborted-transaction entries, producer snapshots).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::producers::{remove_snapshots, take_snapshots};
use super::{Log, State};
use crate::error::StorageError;
use crate::producer::AbortedTxn;
use crate::segment::Segment;

/// The log as the cleaner sees it when it plans a pass (see [`Log::cleaner_view`]).
pub(crate) struct CleanerView {
    /// Every segment, oldest first; the last one is active (never cleaned).
    pub segments: Vec<Arc<Segment>>,
    pub log_start: i64,
    pub last_stable: i64,
    /// Last offset of each known producer's newest data batch.
    pub producer_last_offsets: HashMap<i64, i64>,
}

impl Log {
    /// A consistent snapshot of what a cleaning pass needs. Fails if the log is closed or
    /// poisoned: it must not be cleaned then.
    pub(crate) fn cleaner_view(&self) -> Result<CleanerView, StorageError> {
        self.check_writable()?;
        let st = self.lock_state()?;
        Ok(CleanerView {
            segments: st.segments.clone(),
            log_start: st.log_start,
            last_stable: st
                .producers
                .first_unstable_offset()
                .unwrap_or(st.log_end)
                .min(st.log_end),
            producer_last_offsets: st.producers.last_batch_offsets(),
        })
    }

    /// Replaces the consecutive sealed segments `old` (offsets `[B, E)`, E the base of the
    /// segment after them) by the one segment `install` puts in place of their files.
    /// `install` gets the aborted transactions the new segment's `.txnindex` must hold: those
    /// whose markers lie in `[B, E)`, less the ones whose markers the cleaner removed
    /// (`removed_markers`, marker offsets), which are forgotten in memory too.
    ///
    /// Before `install` runs, every producer snapshot below E is removed: a snapshot
    /// describes the producers after the batches below its offset, and the cleaner may have
    /// removed, with all the data of their transactions, markers that a replay from such a
    /// snapshot would need to close the transactions it holds open. Those at or above E (the
    /// one at the active segment's base, at least) stay valid, and without one a reopen
    /// replays the cleaned log from its first segment.
    ///
    /// Holds the maintenance lock throughout (so retention and DeleteRecords cannot remove
    /// `old` meanwhile) and the append lock only for in-memory work. Returns false, having
    /// run nothing, if `old` are no longer all in the log. An `install` failure poisons the
    /// log: its files may be half-way between the two states, which only [`Log::open`]
    /// finishes.
    pub(crate) fn replace_segments(
        &self,
        old: &[Arc<Segment>],
        removed_markers: &HashSet<i64>,
        install: impl FnOnce(&[AbortedTxn]) -> Result<Segment, StorageError>,
    ) -> Result<bool, StorageError> {
        self.check_writable()?;
        let _maintenance = self.maintenance.lock().map_err(|_| self.poisoned_error())?;
        let (base, end, entries, stale) = {
            let mut st = self.lock_state()?;
            let Some(i) = find_run(&st, old) else {
                return Ok(false);
            };
            let (Some(first), Some(next)) = (st.segments.get(i), st.segments.get(i + old.len()))
            else {
                return Ok(false);
            };
            let (base, end) = (first.base_offset(), next.base_offset());
            let entries: Vec<AbortedTxn> = st
                .aborted
                .iter()
                .filter(|a| (base..end).contains(&a.last_offset))
                .filter(|a| !removed_markers.contains(&a.last_offset))
                .copied()
                .collect();
            let stale = take_snapshots(&mut st.snapshots, |o| o < end);
            (base, end, entries, stale)
        };
        // Unlinks made durable by the directory fsync of the swap's commit point.
        remove_snapshots(&self.dir, stale)?;
        let segment = install(&entries).inspect_err(|e| self.poison(e))?;
        let mut st = self.lock_state()?;
        // Retention and DeleteRecords wait on the maintenance lock and a roll only appends,
        // so `old` is still where it was.
        let Some(i) = find_run(&st, old) else {
            let e = self.poisoned_error();
            self.poison(&e);
            return Err(e);
        };
        st.segments.splice(i..i + old.len(), [Arc::new(segment)]);
        // Transactions without data or marker any more: no reader needs to skip them.
        st.aborted.retain(|a| {
            !((base..end).contains(&a.last_offset) && removed_markers.contains(&a.last_offset))
        });
        Ok(true)
    }
}

/// Where the consecutive segments `old` start in the log's list, if they are all still
/// there and sealed.
fn find_run(st: &State, old: &[Arc<Segment>]) -> Option<usize> {
    let first = old.first()?;
    let i = st.segments.iter().position(|s| Arc::ptr_eq(s, first))?;
    let run = st.segments.get(i..i + old.len())?;
    let same = run.iter().zip(old).all(|(a, b)| Arc::ptr_eq(a, b));
    // Never the active segment.
    (same && i + old.len() < st.segments.len()).then_some(i)
}
