//! Sources: a reader per topic partition over `Partition::read`, read_committed, and the
//! per-partition watermarks of §6, what becomes of rows behind them ([`late`]), and the
//! deduplication a source may declare ([`dedup`]).

pub mod dedup;
pub mod event_time;
pub mod late;
pub mod reader;
pub mod watermark;
