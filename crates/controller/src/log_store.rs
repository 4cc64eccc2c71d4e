//! The metadata log (§4.2): openraft's log on a `weir_storage::Log` at
//! `meta/cluster-metadata/`, one entry per record batch, raft index = offset; the vote and
//! the last purged log id in `meta/raft-state.json`, replaced atomically.
// openraft's traits return its `StorageError`, large as it is.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};
use weir_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_storage::{write_atomically, Log, LogConfig, Recovery};

use crate::types::{Entry, LogId, RaftStorageError, TypeConfig, Vote};

pub const LOG_DIR: &str = "cluster-metadata";
pub const RAFT_STATE: &str = "raft-state.json";

/// A 10,000-partition CreateTopics is one entry.
const MAX_ENTRY_BYTES: u32 = 64 << 20;
/// Bytes read from the log per step when serving entries.
const READ_STEP: usize = 4 << 20;

/// `meta/raft-state.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftState {
    #[serde(default)]
    pub vote: Option<Vote>,
    #[serde(default)]
    pub last_purged_log_id: Option<LogId>,
}

struct Inner {
    log: Log,
    meta_dir: PathBuf,
    state: Mutex<RaftState>,
}

/// openraft's log storage; its clones are the log readers.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("log", &self.inner.log)
            .finish()
    }
}

fn read_err(e: impl std::error::Error + 'static) -> RaftStorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> RaftStorageError {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    /// Opens (creating) the metadata log and the raft state under `meta_dir`. The log is
    /// always scanned: it is small, and a torn tail must go before openraft reads it.
    pub fn open(meta_dir: &Path) -> Result<LogStore, crate::ControllerError> {
        let dir = meta_dir.join(LOG_DIR);
        let config = LogConfig {
            segment_bytes: 64 << 20,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: MAX_ENTRY_BYTES,
            ..LogConfig::default()
        };
        let log = if dir.exists() {
            let (log, report) = Log::open(dir, config, Recovery::Scan)?;
            if report.truncated_bytes > 0 {
                tracing::warn!(
                    truncated_bytes = report.truncated_bytes,
                    "metadata log: torn tail truncated"
                );
            }
            log
        } else {
            Log::create(dir, config)?
        };
        let path = meta_dir.join(RAFT_STATE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                crate::ControllerError::io(
                    format!("reading {}", path.display()),
                    std::io::Error::other(e),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RaftState::default(),
            Err(e) => {
                return Err(crate::ControllerError::io(
                    format!("reading {}", path.display()),
                    e,
                ))
            }
        };
        Ok(LogStore {
            inner: Arc::new(Inner {
                log,
                meta_dir: meta_dir.to_path_buf(),
                state: Mutex::new(state),
            }),
        })
    }

    pub fn log(&self) -> &Log {
        &self.inner.log
    }

    /// Whether nothing was ever voted nor logged here (a voter that never took part).
    pub fn is_pristine(&self) -> bool {
        let st = self.raft_state();
        st.vote.is_none() && st.last_purged_log_id.is_none() && self.inner.log.log_end_offset() == 0
    }

    pub fn raft_state(&self) -> RaftState {
        self.inner
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    fn write_state(&self, next: RaftState) -> Result<(), RaftStorageError> {
        let json = serde_json::to_vec(&next).map_err(write_err)?;
        write_atomically(&self.inner.meta_dir, RAFT_STATE, &json).map_err(write_err)?;
        if let Ok(mut st) = self.inner.state.lock() {
            *st = next;
        }
        Ok(())
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, RaftStorageError> {
        let log = &self.inner.log;
        let mut offset = i64::try_from(start)
            .unwrap_or(i64::MAX)
            .max(log.log_start_offset());
        let end = i64::try_from(end)
            .unwrap_or(i64::MAX)
            .min(log.log_end_offset());
        let mut out = Vec::new();
        while offset < end {
            let read = log.read(offset, READ_STEP).map_err(read_err)?;
            if read.records.is_empty() {
                break;
            }
            let before = offset;
            offset = decode_entries(read.records.clone(), offset, end, &mut out)?;
            if offset == before {
                break;
            }
        }
        Ok(out)
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, RaftStorageError> {
        let log = &self.inner.log;
        let end = log.log_end_offset();
        if end <= log.log_start_offset() {
            return Ok(None);
        }
        let end = u64::try_from(end).unwrap_or(0);
        Ok(self
            .entries(end.saturating_sub(1), end)?
            .last()
            .map(|e| e.log_id))
    }
}

/// Decodes the entries in `[from, end)` of record batches read from the metadata log into
/// `out`; returns the offset after the last one.
pub(crate) fn decode_entries(
    mut bytes: Bytes,
    from: i64,
    end: i64,
    out: &mut Vec<Entry>,
) -> Result<i64, RaftStorageError> {
    let batches = RecordBatchDecoder::decode_all(&mut bytes)
        .map_err(|e| read_err(std::io::Error::other(format!("{e:#}"))))?;
    let mut next = from;
    for batch in batches {
        for r in batch.records {
            if r.offset < next || r.offset >= end {
                continue;
            }
            let value = r.value.unwrap_or_default();
            let entry: Entry = serde_json::from_slice(&value).map_err(read_err)?;
            out.push(entry);
            next = r.offset.saturating_add(1);
        }
    }
    Ok(next)
}

/// Encodes entries as record batches, one per entry, each at its raft index.
pub(crate) fn encode(entries: &[Entry]) -> Result<BytesMut, RaftStorageError> {
    let mut buf = BytesMut::new();
    for entry in entries {
        let value = serde_json::to_vec(entry).map_err(write_err)?;
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: i32::try_from(entry.log_id.leader_id.term).unwrap_or(-1),
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(entry.log_id.index).unwrap_or(i64::MAX),
            sequence: -1,
            // No clock in the metadata log: it never rolls or expires by time, and equal
            // entries encode to equal bytes on every node.
            timestamp: 0,
            key: None,
            value: Some(Bytes::from(value)),
            headers: Default::default(),
        };
        RecordBatchEncoder::encode(
            &mut buf,
            std::iter::once(&record),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| write_err(std::io::Error::other(format!("{e:#}"))))?;
    }
    Ok(buf)
}

fn range_to(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let (start, end) = range_to(&range);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.entries(start, end))
            .await
            .map_err(read_err)?
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftStorageError> {
        let last_purged_log_id = self.raft_state().last_purged_log_id;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), RaftStorageError> {
        // Vote and log writes must be durable in call order: entries appended before this
        // vote are fsynced first.
        let this = self.clone();
        let vote = *vote;
        tokio::task::spawn_blocking(move || {
            let log = &this.inner.log;
            log.flush_to(log.log_end_offset()).map_err(write_err)?;
            let mut next = this.raft_state();
            next.vote = Some(vote);
            this.write_state(next)
        })
        .await
        .map_err(write_err)?
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, RaftStorageError> {
        Ok(self.raft_state().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let log = &self.inner.log;
        // Entries at or below the purge point are already covered by a snapshot.
        let start = u64::try_from(log.log_start_offset()).unwrap_or(0);
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.log_id.index >= start)
            .collect();
        let Some(first) = entries.first() else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let first_index = i64::try_from(first.log_id.index).unwrap_or(i64::MAX);
        if first_index > log.log_end_offset() {
            // Only after a snapshot was installed past this log's end: the log restarts
            // where the leader's entries continue.
            tracing::info!(
                from = log.log_end_offset(),
                to = first_index,
                "metadata log restarts after a snapshot"
            );
            log.reset_to(first_index).map_err(write_err)?;
        }
        let mut buf = encode(&entries)?;
        let info = log.append_replicated(&mut buf, 0).map_err(write_err)?;
        let end = info.last_offset + 1;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = this
                .inner
                .log
                .flush_to(end)
                .map_err(|e| std::io::Error::other(e.to_string()));
            callback.log_io_completed(result);
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let offset = i64::try_from(log_id.index).unwrap_or(i64::MAX);
            let log = &this.inner.log;
            if offset < log.log_start_offset() {
                // Every entry left is at or above the cut: the log restarts there.
                log.reset_to(offset).map(|_| ())
            } else {
                log.truncate_to(offset).map(|_| ())
            }
        })
        .await
        .map_err(write_err)?
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // Recorded first: entries up to it are gone for openraft from now on, even if
            // the segments are deleted only later (or a crash comes in between).
            let mut next = this.raft_state();
            next.last_purged_log_id = Some(log_id);
            this.write_state(next)?;
            let log = &this.inner.log;
            let start = i64::try_from(log_id.index)
                .unwrap_or(i64::MAX)
                .saturating_add(1);
            let result = if start > log.log_end_offset() {
                log.reset_to(start).map(|_| ())
            } else {
                log.delete_records_before(start).map(|_| ())
            };
            result.map_err(write_err)
        })
        .await
        .map_err(write_err)?
    }
}
