//! Weir's internal logs (committed offsets, transaction state): a `weir_storage::Log` under
//! `<data-dir>/meta/NAME` of key/value records, kept forever (no retention), replayed at
//! start. Shared by `groups.rs` and `txns.rs`.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use weir_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_storage::{AppendInfo, IoOp, Log, LogConfig, Recovery, StorageError};

use crate::groups::GroupsError;

/// Opens (creating) the internal log `<data_dir>/meta/<name>`.
pub fn open(data_dir: &Path, name: &str, recovery: Recovery) -> Result<Log, StorageError> {
    let dir = data_dir.join("meta").join(name);
    let config = LogConfig {
        segment_bytes: 16 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    };
    if dir.exists() {
        Ok(Log::open(dir, config, recovery)?.0)
    } else {
        Log::create(dir, config)
    }
}

/// Calls `apply` with every record from the log start to its end, in order.
pub fn replay(
    log: &Log,
    mut apply: impl FnMut(Record) -> Result<(), GroupsError>,
) -> Result<(), GroupsError> {
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let out = log.read(offset, 4 << 20)?;
        if out.records.is_empty() {
            break;
        }
        let mut buf = out.records.clone();
        let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| GroupsError::Corrupt {
            offset,
            message: format!("{e:#}"),
        })?;
        for set in sets {
            for r in set.records {
                offset = offset.max(r.offset + 1);
                if r.offset >= log.log_start_offset() {
                    apply(r)?;
                }
            }
        }
    }
    Ok(())
}

/// Appends key/value records (a `None` value is a tombstone) as one batch.
pub fn append(
    log: &Log,
    entries: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
) -> Result<AppendInfo, StorageError> {
    let now = crate::server::now_ms();
    let mut buf = encode(entries, now, Compression::None).map_err(|e| StorageError::Io {
        op: IoOp::Encode,
        path: log.dir().to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    log.append(&mut buf, now)
}

/// Encodes key/value records as one record batch (offsets from 0), as they are appended.
pub fn encode(
    entries: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    now: i64,
    compression: Compression,
) -> Result<BytesMut, String> {
    let records: Vec<Record> = entries
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            sequence: -1,
            timestamp: now,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| format!("{e:#}"))?;
    Ok(buf)
}
