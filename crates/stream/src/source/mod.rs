//! Sources: a reader per topic partition over `Partition::read`, read_committed, and the
//! per-partition watermarks of §6.

pub mod event_time;
pub mod reader;
pub mod watermark;
