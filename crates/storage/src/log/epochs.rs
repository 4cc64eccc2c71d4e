//! Leader epochs (KIP-101): the ordered list of (epoch, first offset written in it) that a
//! follower compares with its leader's to find where their logs diverge. Kept in
//! `leader-epoch-checkpoint` (Kafka's text format: version, count, one `epoch offset` line
//! per entry), rewritten atomically whenever the list changes, and rebuilt from the batches'
//! `partitionLeaderEpoch` stamps when the file is missing or damaged.

use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;

use super::{Log, State};
use crate::batch::Check;
use crate::error::{IoOp, StorageError};
use crate::segment::write_atomically;

/// Name of the leader-epoch checkpoint file in a partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

const CHECKPOINT_VERSION: &str = "0";

/// The stamp of a batch written before leader epochs existed (what producers send).
const NO_EPOCH: i32 = -1;

/// One epoch and the offset of the first record its leader wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The leader-epoch cache: entries ordered by epoch and by start offset alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EpochCache {
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`. Entries that would break the ordering
    /// (an epoch at or above `epoch`, or a start at or above `start_offset`) were written by a
    /// leader that lost and are dropped. Returns whether the list changed.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let needed = self
            .latest()
            .is_none_or(|l| l.epoch != epoch || start_offset < l.start_offset);
        if !needed {
            return false;
        }
        if let Some(l) = self.latest() {
            if epoch < l.epoch {
                // A stale leader's stamp after a newer one's: keep the newer history.
                tracing::warn!(
                    epoch,
                    start_offset,
                    latest = l.epoch,
                    "ignoring an older leader epoch"
                );
                return false;
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Drops the entries starting at or after `end` (the log was truncated to `end`).
    pub(crate) fn truncate_from_end(&mut self, end: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end);
        self.entries.len() != before
    }

    /// The log start moved to `start`: entries wholly below it go, and the one holding it now
    /// starts there.
    pub(crate) fn truncate_from_start(&mut self, start: i64) -> bool {
        let holding = self.entries.partition_point(|e| e.start_offset <= start);
        let Some(first) = holding.checked_sub(1) else {
            return false;
        };
        let mut changed = first > 0;
        self.entries.drain(..first);
        if let Some(e) = self.entries.first_mut() {
            if e.start_offset < start {
                e.start_offset = start;
                changed = true;
            }
        }
        changed
    }

    /// Kafka's OffsetForLeaderEpoch answer: the largest epoch at or below `requested` and the
    /// offset where the next larger epoch starts (`log_end` for the latest epoch). A request
    /// below every known epoch gets the first known start offset under its own epoch (the log
    /// below it is gone); None (UNDEFINED) for a negative epoch or one above every known.
    /// `current` is the epoch this log leads in now, counted from `log_end` if it was never
    /// written in.
    pub(crate) fn end_offset_for(
        &self,
        requested: i32,
        current: Option<i32>,
        log_end: i64,
    ) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        let latest = self.latest().map(|l| l.epoch);
        let top = match (latest, current) {
            (Some(l), Some(c)) => Some(l.max(c)),
            (l, c) => l.or(c),
        };
        if top == Some(requested) {
            return Some((requested, log_end));
        }
        // The first start of an epoch above `requested` (the current epoch, if unwritten,
        // starts at the log end).
        let higher = self
            .entries
            .iter()
            .find(|e| e.epoch > requested)
            .map(|e| e.start_offset)
            .or_else(|| current.filter(|&c| c > requested).map(|_| log_end))?;
        let floor = self.entries.iter().rev().find(|e| e.epoch <= requested);
        Some((floor.map_or(requested, |e| e.epoch), higher))
    }

    /// The epoch in force at `offset`: the one with the largest start at or below it.
    pub(crate) fn epoch_at(&self, offset: i64) -> Option<i32> {
        let after = self.entries.partition_point(|e| e.start_offset <= offset);
        after
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.epoch)
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        out
    }
}

/// Parses a checkpoint's text; None unless whole and ordered (a cut or damaged file).
pub(crate) fn parse_epoch_checkpoint(text: &str) -> Option<EpochCache> {
    if !text.ends_with('\n') {
        return None;
    }
    let mut lines = text.lines();
    if lines.next()? != CHECKPOINT_VERSION {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries: Vec<EpochEntry> = Vec::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split_whitespace();
        let epoch: i32 = parts.next()?.parse().ok()?;
        let start_offset: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || epoch < 0 || start_offset < 0 {
            return None;
        }
        if entries
            .last()
            .is_some_and(|l| l.epoch >= epoch || l.start_offset >= start_offset)
        {
            return None;
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if entries.len() != count || lines.next().is_some() {
        return None;
    }
    Some(EpochCache { entries })
}

/// Loads the checkpoint; None when it is missing or damaged (the caller rebuilds the cache).
pub(crate) fn read_epoch_checkpoint(dir: &Path) -> Result<Option<EpochCache>, StorageError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(IoOp::Read, &path, e)),
    };
    let parsed = parse_epoch_checkpoint(&String::from_utf8_lossy(&bytes));
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "damaged leader-epoch checkpoint; rebuilding it from the log");
    }
    Ok(parsed)
}

/// Rebuilds the cache from every batch's `partitionLeaderEpoch` stamp.
pub(super) fn rebuild_epochs(st: &State) -> Result<EpochCache, StorageError> {
    let mut cache = EpochCache::default();
    for segment in &st.segments {
        let end = segment.scan(0, segment.len(), Check::Structure, |_, h, _| {
            if h.partition_leader_epoch != NO_EPOCH {
                cache.assign(h.partition_leader_epoch, h.base_offset);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if let Some((position, defect)) = end.fault {
            tracing::warn!(path = %segment.log_path().display(), position, %defect, "damaged batch while rebuilding leader epochs; skipping the rest of the segment");
        }
    }
    Ok(cache)
}

/// Loads the epoch cache at open (rebuilding and rewriting it if needed) and fits it to the
/// log's offsets: a crash may have cut the tail an entry started in, retention may have moved
/// the start.
pub(super) fn restore_epochs(dir: &Path, st: &mut State) -> Result<(), StorageError> {
    let loaded = read_epoch_checkpoint(dir)?;
    let mut dirty = loaded.is_none();
    let mut cache = match loaded {
        Some(c) => c,
        None => rebuild_epochs(st)?,
    };
    // An entry at the log end is an epoch elected but not yet written in (or whose first
    // batch a crash cut): it stays, as it would have without the crash.
    dirty |= cache.truncate_from_end(st.log_end.saturating_add(1));
    dirty |= cache.truncate_from_start(st.log_start);
    if dirty && (checkpoint_exists(dir) || !cache.entries.is_empty()) {
        write_atomically(dir, LEADER_EPOCH_CHECKPOINT, cache.encode().as_bytes())?;
    }
    st.leader_epoch = cache.latest().map_or(0, |e| e.epoch);
    st.epochs = cache;
    Ok(())
}

/// A checkpoint file exists (an empty cache then still needs writing, to replace it).
fn checkpoint_exists(dir: &Path) -> bool {
    dir.join(LEADER_EPOCH_CHECKPOINT).exists()
}

impl Log {
    /// Makes this log the leader's at `epoch`: later appends are stamped with it, and the
    /// epoch is recorded as starting at the log end (persisted) if it is newer than every
    /// known one. An older epoch is refused.
    pub fn set_leader_epoch(&self, epoch: i32) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut st = self.lock_state()?;
        if epoch < st.leader_epoch {
            return Err(StorageError::StaleLeaderEpoch {
                requested: epoch,
                current: st.leader_epoch,
            });
        }
        st.leader_epoch = epoch;
        let log_end = st.log_end;
        self.assign_epoch(&mut st, epoch, log_end)
    }

    /// The epoch leader appends are stamped with.
    pub fn leader_epoch(&self) -> i32 {
        self.state_view().leader_epoch
    }

    /// The known epochs and their start offsets, oldest first.
    pub fn leader_epochs(&self) -> Vec<EpochEntry> {
        self.state_view().epochs.entries().to_vec()
    }

    /// The epoch of the leader that wrote `offset` (ListOffsets answers it with an offset);
    /// None when no known epoch covers it.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.state_view().epochs.epoch_at(offset)
    }

    /// OffsetForLeaderEpoch: the largest known epoch at or below `epoch` and the offset where
    /// the next one starts, or the log end for the current one (see
    /// `EpochCache::end_offset_for`). None is Kafka's UNDEFINED (-1, -1).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let st = self.state_view();
        st.epochs
            .end_offset_for(epoch, Some(st.leader_epoch), st.log_end)
    }

    /// Records `epoch` as starting at `start_offset` and persists the cache if it changed
    /// (before the caller writes batches of that epoch: a crash then leaves an entry beyond
    /// the log end, which open drops, never a written epoch missing from the file).
    pub(super) fn assign_epoch(
        &self,
        st: &mut State,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), StorageError> {
        // The append path's usual case, without copying the cache.
        if st
            .epochs
            .latest()
            .is_some_and(|l| l.epoch == epoch && start_offset >= l.start_offset)
        {
            return Ok(());
        }
        let mut next = st.epochs.clone();
        if !next.assign(epoch, start_offset) {
            return Ok(());
        }
        self.persist_epochs(st, next)
    }

    /// Fits the cache to a moved log start, persisting it if it changed.
    pub(super) fn trim_epochs_to_start(&self, st: &mut State) -> Result<(), StorageError> {
        let mut next = st.epochs.clone();
        if next.truncate_from_start(st.log_start) {
            self.persist_epochs(st, next)?;
        }
        Ok(())
    }

    /// Writes `next` and, once durable, makes it the cache.
    pub(super) fn persist_epochs(
        &self,
        st: &mut State,
        next: EpochCache,
    ) -> Result<(), StorageError> {
        write_atomically(&self.dir, LEADER_EPOCH_CHECKPOINT, next.encode().as_bytes())
            .inspect_err(|e| {
                if e.is_fsync_failure() {
                    self.poison(e);
                }
            })?;
        st.epochs = next;
        Ok(())
    }
}
