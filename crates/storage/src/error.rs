//! The storage error type, classified by whose fault it is.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchDefect;

/// The operation a [`StorageError::Io`] failed in. Typed, because the right reaction depends
/// on it: after a failed fsync the kernel may have dropped dirty pages, so the log poisons
/// itself; most other failures (a full disk on a write) can be undone and retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    CreateDirectory,
    ListDirectory,
    Create,
    Open,
    Stat,
    Read,
    /// Reading a stored batch whose bytes turn out damaged (`InvalidData`).
    ReadBatch,
    Write,
    /// fsync (or fdatasync) of a file.
    Fsync,
    /// fsync of a directory, the durability point of creates, renames and deletes in it.
    FsyncDirectory,
    Rename,
    /// The first step of deleting a segment's files (see `Log::delete_records_before`).
    RenameForDeletion,
    Remove,
    Truncate,
    LoadIndex,
    /// Creating a log in a directory that already holds segments.
    CreateLog,
    /// Encoding records to append (the broker's internal logs).
    Encode,
}

impl IoOp {
    /// True for a failed fsync of a file or directory: its outcome is unknown, and retrying
    /// could report success for data the kernel already dropped.
    pub fn is_fsync(self) -> bool {
        matches!(self, IoOp::Fsync | IoOp::FsyncDirectory)
    }
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoOp::CreateDirectory => "create directory",
            IoOp::ListDirectory => "list directory",
            IoOp::Create => "create",
            IoOp::Open => "open",
            IoOp::Stat => "stat",
            IoOp::Read => "read",
            IoOp::ReadBatch => "read batch",
            IoOp::Write => "write",
            IoOp::Fsync => "fsync",
            IoOp::FsyncDirectory => "fsync directory",
            IoOp::Rename => "rename",
            IoOp::RenameForDeletion => "rename for deletion",
            IoOp::Remove => "remove",
            IoOp::Truncate => "truncate",
            IoOp::LoadIndex => "load index",
            IoOp::CreateLog => "create log",
            IoOp::Encode => "encode records",
        })
    }
}

/// Everything that can go wrong in the storage layer.
///
/// The broker maps each variant to one Kafka error code in a single exhaustive `match`, so
/// variants are about *what the caller should do*, and the detail lives in their fields.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused an operation (environment fault). Also used for a log
    /// file whose contents no longer parse (`source.kind() == InvalidData`): that is disk
    /// corruption, not a client's fault.
    #[error("storage I/O failed: {op} {}", path.display())]
    Io {
        op: IoOp,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A batch whose checksum does not match its contents (client fault, Kafka
    /// `CORRUPT_MESSAGE`). `position` is the byte position of the batch in the input.
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptBatch {
        reason: BatchDefect,
        position: usize,
    },

    /// A batch that is structurally wrong: bad magic, bad length, truncated, negative counts,
    /// empty input (client fault, Kafka `INVALID_RECORD`).
    #[error("invalid record batch at byte {position}: {reason}")]
    InvalidBatch {
        reason: BatchDefect,
        position: usize,
    },

    /// One batch is larger than `max.message.bytes` (client fault, `MESSAGE_TOO_LARGE`).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    BatchTooLarge { size: usize, max: u32 },

    /// A read or DeleteRecords outside `[log_start, log_end]` (client fault).
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },

    /// An earlier fsync or write failed, so the on-disk state is unknown and the log refuses
    /// all further writes (environment fault; Kafka `KAFKA_STORAGE_ERROR`). Never retried:
    /// after a failed fsync the kernel may have dropped the dirty pages.
    #[error("log {} is poisoned by an earlier I/O failure and refuses writes", path.display())]
    Poisoned { path: PathBuf },

    /// An idempotent producer's batch does not follow its previous one (client fault, Kafka
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`).
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },

    /// A leader's gap in an idempotent producer's sequence at a batch the producer sent
    /// before this replica started leading (its last batch here precedes the current leader
    /// epoch): the missing batch is usually in the client's retry queue after the old leader
    /// refused it, so the gap is answered retriably and the client sends in order again. Kafka
    /// answers `OUT_OF_ORDER_SEQUENCE_NUMBER`, on which librdkafka bumps its epoch and
    /// re-sends unacknowledged records as new ones (issue 11's duplicate).
    #[error("producer {producer_id}: expected sequence {expected}, got {got}, the first batch since leader epoch {leader_epoch} started; send the missing batches first")]
    SequenceGapAfterLeaderChange {
        producer_id: i64,
        expected: i32,
        got: i32,
        leader_epoch: i32,
    },

    /// A batch from an older epoch of a producer (a zombie; Kafka `INVALID_PRODUCER_EPOCH`).
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },

    /// A transaction marker from a coordinator older than the one that wrote the producer's
    /// last marker here (Kafka `TRANSACTION_COORDINATOR_FENCED`).
    #[error("producer {producer_id}: marker from coordinator epoch {coordinator_epoch}, older than {current}")]
    TransactionCoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },

    /// The log was closed (shutdown or partition deletion in progress).
    #[error("log is closed")]
    Closed,

    /// A leader epoch older than the log's current one (Kafka `FENCED_LEADER_EPOCH`).
    #[error("leader epoch {requested} is older than the current epoch {current}")]
    StaleLeaderEpoch { requested: i32, current: i32 },
}

impl StorageError {
    /// True when this is a failed fsync (see [`IoOp::is_fsync`]).
    pub fn is_fsync_failure(&self) -> bool {
        matches!(self, StorageError::Io { op, .. } if op.is_fsync())
    }

    /// True when the request itself was wrong (bad batch, bad offset) and retrying the same
    /// request cannot succeed; false when the broker's storage failed.
    pub fn is_client_fault(&self) -> bool {
        match self {
            StorageError::CorruptBatch { .. }
            | StorageError::InvalidBatch { .. }
            | StorageError::BatchTooLarge { .. }
            | StorageError::OffsetOutOfRange { .. }
            | StorageError::OutOfOrderSequence { .. }
            | StorageError::SequenceGapAfterLeaderChange { .. }
            | StorageError::InvalidProducerEpoch { .. }
            | StorageError::TransactionCoordinatorFenced { .. }
            | StorageError::StaleLeaderEpoch { .. } => true,
            StorageError::Io { .. } | StorageError::Poisoned { .. } | StorageError::Closed => false,
        }
    }

    /// True when the disk (or a quota) is full: ENOSPC or EDQUOT. Such a failed write was
    /// undone; the same write may succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if matches!(source.raw_os_error(), Some(28 | 122)))
    }

    /// Builds the right variant (corrupt vs invalid) for a defect found in client input.
    pub(crate) fn from_defect(reason: BatchDefect, position: usize) -> StorageError {
        if reason.is_checksum_failure() {
            StorageError::CorruptBatch { reason, position }
        } else {
            StorageError::InvalidBatch { reason, position }
        }
    }

    pub(crate) fn io(op: IoOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn classification_and_source() {
        let crc = StorageError::from_defect(
            BatchDefect::CrcMismatch {
                stored: 1,
                computed: 2,
            },
            7,
        );
        assert!(matches!(
            crc,
            StorageError::CorruptBatch { position: 7, .. }
        ));
        assert!(crc.is_client_fault());
        let magic = StorageError::from_defect(BatchDefect::BadMagic(1), 0);
        assert!(matches!(magic, StorageError::InvalidBatch { .. }));
        assert!(magic.is_client_fault());
        let io = StorageError::io(IoOp::Fsync, "/d/x.log", io::Error::other("EIO"));
        assert!(!io.is_client_fault());
        assert!(io.is_fsync_failure());
        let write = StorageError::io(IoOp::Write, "/d/x.log", io::Error::other("ENOSPC"));
        assert!(!write.is_fsync_failure());
        assert_eq!(write.to_string(), "storage I/O failed: write /d/x.log");
        assert_eq!(io.to_string(), "storage I/O failed: fsync /d/x.log");
        assert_eq!(io.source().map(|s| s.to_string()), Some("EIO".to_string()));
        assert!(!StorageError::Closed.is_client_fault());
    }
}
