//! Barrier alignment on a two-input operator with the graph split over tasks (§7.1): each
//! input is fed by its own task over a channel, the union runs in a third. Whatever the
//! interleaving, every batch of epoch N leaves the union before barrier N and none after.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use tokio::sync::mpsc;
use weir_stream::align::run_aligned;
use weir_stream::Message;

/// A one-row batch holding its epoch.
fn batch(epoch: i64) -> Message {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "epoch",
        DataType::Int64,
        false,
    )]));
    Message::Batch(
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![epoch]))]).expect("batch"),
    )
}

/// Sends `epochs` epochs of `per_epoch` batches, each followed by its barrier, pausing
/// `pause` between messages (the two inputs run at different speeds).
async fn feed(tx: mpsc::Sender<Message>, epochs: u64, per_epoch: usize, pause: Duration, wm0: i64) {
    for n in 1..=epochs {
        for _ in 0..per_epoch {
            tx.send(batch(n as i64)).await.expect("send");
            tokio::time::sleep(pause).await;
        }
        tx.send(Message::Watermark(wm0 + n as i64 * 10))
            .await
            .expect("send");
        tx.send(Message::Barrier(n)).await.expect("send");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barriers_align_across_tasks() {
    // Capacity 1: a blocked input's sender waits, as backpressure does.
    let (fast_tx, fast_rx) = mpsc::channel(1);
    let (slow_tx, slow_rx) = mpsc::channel(1);
    let (out_tx, mut out_rx) = mpsc::channel(1024);
    let union = tokio::spawn(run_aligned(vec![fast_rx, slow_rx], out_tx));
    let fast = tokio::spawn(feed(fast_tx, 4, 5, Duration::ZERO, 0));
    let slow = tokio::spawn(feed(slow_tx, 4, 3, Duration::from_millis(15), 1_000));

    let mut barriers = 0u64;
    let mut batches = 0;
    let mut watermarks = Vec::new();
    while let Some(m) = out_rx.recv().await {
        match m {
            Message::Batch(b) => {
                let epoch = b.column(0).as_primitive::<Int64Type>().value(0);
                assert_eq!(epoch as u64, barriers + 1, "a batch crossed a barrier");
                batches += 1;
            }
            Message::Barrier(n) => {
                assert_eq!(n, barriers + 1, "barriers in order, each once");
                barriers = n;
            }
            Message::Watermark(w) => watermarks.push(w),
        }
    }
    fast.await.expect("fast");
    slow.await.expect("slow");
    union.await.expect("union");
    assert_eq!(barriers, 4);
    assert_eq!(batches, 4 * (5 + 3));
    // The union's watermark is the minimum of its inputs': the fast input's, until it
    // closes and no longer holds the slow one back.
    assert_eq!(watermarks, vec![10, 20, 30, 40, 1_040]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_input_no_longer_holds_barriers_back() {
    let (a_tx, a_rx) = mpsc::channel(4);
    let (b_tx, b_rx) = mpsc::channel(4);
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let union = tokio::spawn(run_aligned(vec![a_rx, b_rx], out_tx));
    drop(b_tx);
    feed(a_tx, 2, 2, Duration::ZERO, 0).await;
    let mut got = Vec::new();
    while let Some(m) = out_rx.recv().await {
        if let Message::Barrier(n) = m {
            got.push(n);
        }
    }
    union.await.expect("union");
    assert_eq!(got, vec![1, 2]);
}
