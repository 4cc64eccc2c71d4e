//! Helpers of the pipeline tests: a broker state on a temporary directory (the broker's
//! testkit), plain producers, and a consumer that filters as a Kafka consumer does.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion_expr::Operator;
use datafusion_physical_expr::expressions::{col, lit, BinaryExpr};
use weir_broker::partition::{Acks, Isolation, Partition};
use weir_broker::state::State;
use weir_storage::testkit::BatchBuilder;
use weir_stream::format::{BytesDecoder, BytesEncoder};
use weir_stream::graph::{SinkSpec, SourceSpec, Startup, WatermarkSpec};
use weir_stream::{Graph, NodeSpec, StreamConfig};

pub async fn topic(state: &Arc<State>, name: &str, partitions: i32) -> Vec<Arc<Partition>> {
    state
        .create_topic(name, partitions, 1, BTreeMap::new())
        .await
        .expect("create topic");
    parts(state, name)
}

pub fn parts(state: &State, name: &str) -> Vec<Arc<Partition>> {
    let t = state.topic(name).expect("topic");
    (0..t.partition_count())
        .map(|i| t.partition(i).expect("partition"))
        .collect()
}

/// Appends plain (non-transactional) records `(timestamp, value)` as one batch, acks=all.
pub async fn produce(state: &State, p: &Arc<Partition>, records: &[(i64, String)]) {
    let mut b = BatchBuilder::new(records.first().map_or(0, |r| r.0));
    for (ts, v) in records {
        b = b.record(*ts, None, Some(v.as_bytes()));
    }
    let mut bytes = b.build();
    let appended = p
        .append(&mut bytes, Acks::All, state.config.durability, 0)
        .expect("append");
    if let Some(d) = appended.wait.fsync {
        d.wait().await.expect("fsync");
    }
}

/// Every `(key, value)` a consumer at `isolation` reads from `p`, in offset order.
pub fn consume(p: &Partition, isolation: Isolation) -> Vec<(Option<String>, String)> {
    weir_broker::testkit::consume(p, isolation)
}

pub fn config(interval_ms: u64) -> StreamConfig {
    StreamConfig {
        checkpoint_interval: Duration::from_millis(interval_ms),
        ..StreamConfig::default()
    }
}

fn out_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("value", DataType::Binary, true),
        Field::new("_offset", DataType::Int64, false),
    ]))
}

pub fn source(topic: &str, watermark: Option<WatermarkSpec>) -> NodeSpec {
    NodeSpec::Source(SourceSpec {
        topic: topic.to_string(),
        decoder: Arc::new(|| Box::new(BytesDecoder::new())),
        startup: Startup::Earliest,
        watermark,
        dead_letter: None,
        dedup: None,
    })
}

pub fn sink(topic: &str) -> NodeSpec {
    NodeSpec::Sink(SinkSpec {
        topic: topic.to_string(),
        encoder: Arc::new(|| {
            Box::new(BytesEncoder {
                value_col: 0,
                key_col: Some(1),
            })
        }),
        upsert: false,
    })
}

/// `SELECT value, _offset FROM <input> WHERE _offset % 2 = 0`, written to `output` with the
/// offset as the key.
pub fn even_offsets(input: &str, output: &str, watermark: Option<WatermarkSpec>) -> Graph {
    let in_schema = BytesDecoder::output_schema();
    let offset = col("_offset", &in_schema).expect("_offset");
    let filter = Arc::new(BinaryExpr::new(
        Arc::new(BinaryExpr::new(offset.clone(), Operator::Modulo, lit(2i64))),
        Operator::Eq,
        lit(0i64),
    ));
    let mut g = Graph::default();
    let s = g.add(source(input, watermark));
    let m = g.add(NodeSpec::Map {
        exprs: vec![col("value", &in_schema).expect("value"), offset],
        filter: Some(filter),
    });
    let k = g.add(sink(output));
    g.connect(s, m, in_schema);
    g.connect(m, k, out_schema());
    g
}

/// What [`even_offsets`] must write for records `(partition, offset, value)`.
pub fn expected_even(records: &[(i32, i64, String)]) -> Vec<(Option<String>, String)> {
    let mut v: Vec<_> = records
        .iter()
        .filter(|(_, o, _)| o % 2 == 0)
        .map(|(_, o, v)| (Some(o.to_string()), v.clone()))
        .collect();
    v.sort();
    v
}

pub fn sorted(mut v: Vec<(Option<String>, String)>) -> Vec<(Option<String>, String)> {
    v.sort();
    v
}
