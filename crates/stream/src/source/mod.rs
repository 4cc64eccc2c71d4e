//! Sources: a reader per topic partition over `Partition::read`, read_committed, and the
//! per-partition watermarks of §6, and what becomes of rows behind them ([`late`]).

pub mod event_time;
pub mod late;
pub mod reader;
pub mod watermark;
