//! Records per second of the JSON decoder and of the JSON encoder alone, on 200,000
//! Nexmark-like bids held in memory (no log, no pipeline):
//! `cargo run --release -p weir-format --example json_rate [DIR/bid.json]`. `weir bench nexmark` measures
//! both inside pipelines ("read bid (limit)" decodes; q0 also encodes every row).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use weir_format::{encode, Format, RecordDecoder};

fn main() {
    // The columns of bench/nexmark/sources.sql's `bid`.
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("extra", DataType::Utf8, true),
    ]));
    // The records of a `weir bench nexmark --dump DIR` file (DIR/bid.json) when given, else
    // generated ones of the same shape.
    let records: Vec<String> = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(path)
            .expect("a file of JSON lines")
            .lines()
            .map(str::to_string)
            .collect(),
        None => (0..200_000)
            .map(|i| {
                format!(
                    r#"{{"auction":{},"bidder":{},"channel":"channel-{}","date_time":"2015-07-15 00:00:{:02}.{:03}","extra":"{}","price":{},"url":"https://www.nexmark.com/abc/item.htm?query=1&channel_id={}"}}"#,
                    1000 + i % 500,
                    2000 + i % 777,
                    i % 10,
                    i % 60,
                    i % 1000,
                    "x".repeat(i % 40),
                    100 + i * 7 % 10_000,
                    i % 1000,
                )
            })
            .collect(),
    };
    let mut d = RecordDecoder::new(Format::Json, schema.clone(), &[]).unwrap();
    let mut batches = Vec::new();
    for round in 0..3 {
        batches.clear();
        let t = Instant::now();
        for (i, r) in records.iter().enumerate() {
            d.decode(Some(r.as_bytes())).unwrap();
            if i % 1024 == 1023 {
                batches.push(d.finish());
            }
        }
        batches.push(d.finish());
        let s = t.elapsed().as_secs_f64();
        print!(
            "round {round}: decode {:.0} records/s",
            records.len() as f64 / s
        );
        let t = Instant::now();
        let mut bytes = 0;
        for columns in &batches {
            let batch = RecordBatch::try_new(schema.clone(), columns.clone()).unwrap();
            for v in encode::encode_values(Format::Json, &batch).unwrap() {
                bytes += v.map_or(0, |v| v.len());
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            ", encode {:.0} records/s ({bytes} bytes)",
            records.len() as f64 / s
        );
    }
}
