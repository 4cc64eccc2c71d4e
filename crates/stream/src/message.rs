//! What flows along a graph's edges.

use arrow_array::RecordBatch;

/// One message on an edge. Batches carry rows; a watermark promises that no later row on
/// this edge has an event time below it; barrier N separates epoch N's rows from the next
/// epoch's (aligned checkpoints: an operator forwards barrier N once every input delivered
/// it, see [`crate::align`]).
#[derive(Clone, Debug)]
pub enum Message {
    Batch(RecordBatch),
    /// Event time in milliseconds since the epoch.
    Watermark(i64),
    Barrier(u64),
}
