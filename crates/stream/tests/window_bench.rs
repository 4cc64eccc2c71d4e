//! The window aggregate's cost, measured (ignored: run with `cargo nextest run -p
//! weir-stream --run-ignored only --no-capture window_cost`, best in a release build). Feeds
//! the same batches (100 keys, one 10 s tumbling window per 10,000 rows, the watermark a
//! window behind) to a `WindowAggregate` emitting on close and, as the reference measured in
//! the same run, to an `UpdatingAggregate` over the same groups, which frees nothing; prints
//! rows/s and the state each holds at the end.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion_physical_expr::expressions::col;
use weir_stream::graph::{AggKind, AggSpec, WindowSpec, RETRACT};
use weir_stream::ops::aggregate::UpdatingAggregateOp;
use weir_stream::ops::window::WindowAggregateOp;
use weir_stream::state::Stateful;

const ROWS: i64 = 1_000_000;
const PER_BATCH: i64 = 1_000;
const WINDOW_US: i64 = 10_000_000;

fn input() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
        Field::new(
            "window_start",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
    ]))
}

fn output(updating: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "window_start",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("k", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("total", DataType::Int64, true),
    ];
    if updating {
        fields.push(Field::new(RETRACT, DataType::Boolean, false));
    }
    Arc::new(Schema::new(fields))
}

#[test]
#[ignore]
fn window_cost() {
    let s = input();
    let batches: Vec<RecordBatch> = (0..ROWS / PER_BATCH)
        .map(|b| {
            let ids: Vec<i64> = (b * PER_BATCH..(b + 1) * PER_BATCH).collect();
            RecordBatch::try_new(
                s.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        ids.iter().map(|i| format!("key{}", i % 100)),
                    )),
                    Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 97))),
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        ids.iter().map(|i| i / 10_000 * WINDOW_US),
                    )),
                ],
            )
            .expect("batch")
        })
        .collect();
    let group = vec![
        col("window_start", &s).expect("ws"),
        col("k", &s).expect("k"),
    ];
    let aggs = vec![
        AggSpec {
            kind: AggKind::Count,
            arg: col("v", &s).expect("v"),
            filter: None,
            output: DataType::Int64,
        },
        AggSpec {
            kind: AggKind::Sum,
            arg: col("v", &s).expect("v"),
            filter: None,
            output: DataType::Int64,
        },
    ];

    let mut window = WindowAggregateOp::new(
        group.clone(),
        aggs.clone(),
        WindowSpec {
            end_column: 0,
            end_offset_us: WINDOW_US,
            emit_on_close: true,
            hop: None,
        },
        output(false),
    );
    let t = Instant::now();
    let mut emitted = 0;
    for (i, b) in batches.iter().enumerate() {
        window.process(b).expect("process");
        // The watermark one window behind the batch's rows.
        let first = (i as i64 * PER_BATCH) / 10_000 * WINDOW_US;
        if let Some(out) = window.on_watermark(first / 1_000 - 10_000).expect("wm") {
            emitted += out.num_rows();
        }
    }
    let window_secs = t.elapsed().as_secs_f64();

    let mut updating = UpdatingAggregateOp::new(group, aggs, output(true), false);
    let t = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        updating.process(b).expect("process");
        // A barrier every 100 batches: the epoch's net changes leave.
        if i % 100 == 99 {
            updating.flush().expect("barrier");
        }
    }
    let updating_secs = t.elapsed().as_secs_f64();

    println!(
        "WindowAggregate (emit on close): {ROWS} rows in {window_secs:.3} s = {:.0} rows/s, \
         {emitted} window rows emitted, {} groups / {} bytes held at the end",
        ROWS as f64 / window_secs,
        window.groups(),
        window.state_bytes()
    );
    println!(
        "UpdatingAggregate (same groups, reference): {ROWS} rows in {updating_secs:.3} s = \
         {:.0} rows/s, {} groups / {} bytes held at the end",
        ROWS as f64 / updating_secs,
        updating.groups(),
        updating.state_bytes()
    );
    assert!(window.groups() <= 200, "at most two windows of 100 keys");
    assert_eq!(updating.groups(), 100 * (ROWS / 10_000) as usize);
}
