//! Test views of a group coordinator shard: what it holds, and what a replay of its log
//! would hold (the fault-injection tests compare the two).

use std::path::Path;

use weir_coordinator::{CommittedOffset, TopicPartition};
use weir_storage::{Log, Recovery};

use super::Groups;

/// Committed offsets by group, and pending transactional offsets, for tests.
pub(crate) type Snapshot = (
    Vec<(String, Vec<(TopicPartition, Option<CommittedOffset>)>)>,
    Vec<(String, i64, Vec<(TopicPartition, CommittedOffset)>)>,
);

impl Groups {
    /// The offsets log (fault-injection tests reach it through this).
    pub(crate) fn log(&self) -> &Log {
        self.log.log()
    }

    /// Every group's committed and pending offsets as the coordinator holds them, or None
    /// while it is unavailable.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let c = self.lock();
        if self.is_broken() {
            return None;
        }
        let mut committed: Vec<_> = c
            .list_groups(&[])
            .into_iter()
            .map(|l| {
                let mut offsets = c.fetch_offsets(&l.group_id, None);
                offsets.sort_by(|a, b| a.0.cmp(&b.0));
                (l.group_id, offsets)
            })
            .collect();
        committed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut pending = c.pending_txn_offsets();
        pending.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Some((committed, pending))
    }

    /// What a broker started on this log would hold.
    pub(crate) fn replayed_snapshot(&self) -> Snapshot {
        let data_dir = self.log.log().dir().parent().and_then(Path::parent);
        let fresh = Groups::open(
            data_dir.expect("data dir"),
            Recovery::Scan,
            self.config.clone(),
        )
        .expect("open");
        fresh.snapshot().expect("loaded")
    }
}
