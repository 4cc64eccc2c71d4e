//! Per-partition log settings (the validated subset of Kafka's topic configs storage uses).

/// Settings of one partition's log. The broker parses and validates topic configs and hands
/// storage this struct; [`crate::Log::set_config`] applies changes to later operations.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a non-empty segment older than this (by its first append).
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest timestamp is older; -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest sealed segments while the log stays at least this
    /// big without them; -1 = unlimited.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: log bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: largest accepted batch, including its 12-byte log overhead.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `producer.id.expiration.ms`: an idempotent producer idle this long is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `cleanup.policy` and the compaction keys (see [`crate::cleaner`]).
    pub compaction: Compaction,
}

impl LogConfig {
    /// Age at which the active segment rolls: `segment.ms`, or sooner `max.compaction.lag.ms`
    /// for a compacted log, since the cleaner never touches the active segment.
    pub fn roll_ms(&self) -> i64 {
        if self.compaction.compact {
            self.segment_ms.min(self.compaction.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

/// `cleanup.policy` and the topic keys of log compaction, with Kafka's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Compaction {
    /// `cleanup.policy` holds `compact`: the cleaner keeps the latest record per key.
    pub compact: bool,
    /// `cleanup.policy` holds `delete`: retention deletes old segments.
    pub delete: bool,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes are at least this share of the log.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment holding a record newer than this is not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose first dirty record is older than this is cleaned
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones and transaction markers stay after the
    /// pass that first cleaned them.
    pub delete_retention_ms: i64,
}

impl Default for Compaction {
    fn default() -> Compaction {
        Compaction {
            compact: false,
            delete: true,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            producer_id_expiration_ms: 86_400_000,
            compaction: Compaction::default(),
        }
    }
}

/// `message.timestamp.type`: whose clock the record timestamps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps are kept.
    CreateTime,
    /// The broker stamps each batch with the append time.
    LogAppendTime,
}

/// How [`crate::Log::open`] treats the active segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// After a clean shutdown: trust the index files (still checked for validity) and only
    /// walk the batch headers after the last index entry.
    Clean,
    /// After a crash: validate every batch of the active segment (CRC included), truncate at
    /// the first torn or corrupt one, and rebuild its indexes.
    Scan,
}
