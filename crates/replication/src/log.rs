//! The replica fetcher's view of a partition replica.

/// What a follower's fetcher needs of its local replica (the broker's `Partition`
/// implements it). Every method may block on disk I/O: call it off the async runtime.
pub trait ReplicaLog: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The offset the next appended record gets.
    fn log_end_offset(&self) -> i64;

    /// Everything below it is fsynced: under `weir.durability` acks-all and always, the
    /// offset a follower reports as its fetch offset (§5.4).
    fn durable_offset(&self) -> i64;

    /// The newest leader epoch in the replica's epoch cache; -1 when it has none.
    fn latest_epoch(&self) -> i32;

    /// The largest epoch at or below `epoch` the log knows and the offset where the next one
    /// starts (the log end for the latest); None when the log knows no such epoch.
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)>;

    /// Appends batches the leader wrote, offsets and epochs kept; the first batch starts at
    /// the log end. Returns the new log end.
    fn append_as_follower(&self, batches: &mut [u8], now_ms: i64) -> Result<i64, Self::Error>;

    /// Removes everything at and above `offset`; returns the new log end.
    fn truncate_to(&self, offset: i64) -> Result<i64, Self::Error>;

    /// Blocks until everything below `offset` is fsynced.
    fn flush_to(&self, offset: i64) -> Result<(), Self::Error>;

    /// The high watermark the leader reported (never moves back).
    fn set_follower_high_watermark(&self, high_watermark: i64);

    /// The leader's log start moved (retention, DeleteRecords): follow it. Returns the new
    /// log start.
    fn advance_log_start(&self, offset: i64) -> Result<i64, Self::Error>;
}
