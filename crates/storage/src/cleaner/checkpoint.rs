//! The cleaner's durable per-partition state (`cleaner-checkpoint`): the first dirty offset
//! (everything below it was cleaned at least once) and when each stretch of the log was
//! first cleaned, which starts the `delete.retention.ms` clock of its tombstones and
//! transaction markers.
//!
//! Format: `0` (version), the first dirty offset, then `end cleaned_at_ms` lines: offsets
//! below `end` (and at or above the previous line's end) were first cleaned at
//! `cleaned_at_ms`. Written atomically; a missing or unreadable file means nothing was
//! cleaned yet, which is always safe (tombstones are then only kept longer).

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{IoOp, StorageError};
use crate::segment::write_atomically;

/// File name in the partition directory. Its presence also tells `weir debug verify` that
/// the log is compacted (offset gaps are legal in its sealed segments).
pub const CLEANER_CHECKPOINT: &str = "cleaner-checkpoint";
const VERSION: &str = "0";
/// Stretches kept; older neighbours are merged (conservatively: the later clock wins).
const MAX_STRETCHES: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub first_dirty: i64,
    /// `(end, cleaned_at_ms)`, ends and clocks increasing.
    pub cleaned: Vec<(i64, i64)>,
}

impl Checkpoint {
    /// Reads the checkpoint; `None` if there is none (or it does not parse).
    pub fn load(dir: &Path) -> Result<Option<Checkpoint>, StorageError> {
        let path = dir.join(CLEANER_CHECKPOINT);
        let text = match fs::read(&path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(IoOp::Read, &path, e)),
        };
        let parsed = Checkpoint::parse(&text);
        if parsed.is_none() {
            tracing::warn!(path = %path.display(), "unreadable cleaner checkpoint; cleaning from the log start");
        }
        Ok(parsed)
    }

    pub fn parse(text: &str) -> Option<Checkpoint> {
        if !text.ends_with('\n') {
            return None;
        }
        let mut lines = text.lines();
        if lines.next()? != VERSION {
            return None;
        }
        let first_dirty = lines.next()?.trim().parse().ok()?;
        let mut cleaned = Vec::new();
        for line in lines {
            let mut f = line.split_whitespace().map(str::parse::<i64>);
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(end)), Some(Ok(at)), None) => cleaned.push((end, at)),
                _ => return None,
            }
        }
        Some(Checkpoint {
            first_dirty,
            cleaned,
        })
    }

    pub fn save(&self, dir: &Path) -> Result<(), StorageError> {
        let mut text = format!("{VERSION}\n{}\n", self.first_dirty);
        for (end, at) in &self.cleaned {
            text.push_str(&format!("{end} {at}\n"));
        }
        write_atomically(dir, CLEANER_CHECKPOINT, text.as_bytes())
    }

    /// Records a pass that cleaned everything below `end` at `now_ms`.
    pub fn advance(&mut self, end: i64, now_ms: i64) {
        if end > self.first_dirty {
            self.first_dirty = end;
        }
        if self.cleaned.last().is_none_or(|&(e, _)| end > e) {
            self.cleaned.push((end, now_ms));
        }
        while self.cleaned.len() > MAX_STRETCHES {
            // Merge the first two: their offsets now count as cleaned at the later time.
            let (_, first_at) = self.cleaned.remove(0);
            if let Some(next) = self.cleaned.first_mut() {
                next.1 = next.1.max(first_at);
            }
        }
    }

    /// Offsets below the returned one were first cleaned at least `delete_retention_ms`
    /// ago: their tombstones and markers may go.
    pub fn delete_horizon(&self, now_ms: i64, delete_retention_ms: i64) -> i64 {
        let cutoff = now_ms.saturating_sub(delete_retention_ms);
        self.cleaned
            .iter()
            .take_while(|&&(_, at)| at <= cutoff)
            .last()
            .map_or(i64::MIN, |&(end, _)| end)
    }

    /// Drops what lies below the log start.
    pub fn forget_below(&mut self, log_start: i64) {
        self.first_dirty = self.first_dirty.max(log_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_horizon_and_merge() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Checkpoint::load(dir.path()).expect("load"), None);
        let mut c = Checkpoint::default();
        c.advance(100, 1_000);
        c.advance(250, 5_000);
        c.save(dir.path()).expect("save");
        let loaded = Checkpoint::load(dir.path()).expect("load").expect("some");
        assert_eq!(loaded, c);
        assert_eq!(loaded.first_dirty, 250);
        assert_eq!(c.delete_horizon(1_500, 1_000), i64::MIN);
        assert_eq!(c.delete_horizon(2_000, 1_000), 100);
        assert_eq!(c.delete_horizon(6_000, 1_000), 250);
        for i in 0..100 {
            c.advance(300 + i, 10_000 + i);
        }
        assert_eq!(c.cleaned.len(), MAX_STRETCHES);
        // Merged stretches only ever look cleaned later, never earlier.
        assert!(c.delete_horizon(6_000, 1_000) <= 250);
        assert_eq!(
            Checkpoint::parse("0\n5\n"),
            Some(Checkpoint {
                first_dirty: 5,
                cleaned: vec![]
            })
        );
        assert_eq!(Checkpoint::parse("0\n5"), None);
        assert_eq!(Checkpoint::parse("1\n5\n"), None);
    }
}
