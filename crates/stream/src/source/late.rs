//! Late rows (§6, windows): a row whose event time is behind the watermark its source has
//! already sent downstream. Windows it belongs to may have closed and an interval join may
//! have freed the rows it would match, so a pipeline whose source feeds such an operator
//! (window and session aggregates, interval joins, aggregates and top-N freeing keys by a
//! window's end) drops it at the source, as Flink's
//! window operators do. A pipeline without one keeps it: an aggregate, a filter or a TopN
//! over a source that declares a watermark gives the batch answer, late rows included.
//!
//! A dropped row never vanishes silently: it is counted (DESCRIBE's `rows late (dropped)`,
//! `/metrics`' `weir_sql_pipeline_late_rows_total`) and, when its source has a dead-letter
//! topic, its record is written there as read, with `weir.error.kind = late`, in the epoch's
//! transaction like a record that did not decode, so a replay after a crash writes it once.

use crate::error::StreamError;
use crate::format::{DecodeFailure, SinkRecord};
use crate::graph::{Graph, NodeSpec};
use crate::source::reader::{dead_letter, PartitionReader};

/// Whether rows from node `source` reach an operator that acts on watermarks.
pub fn feeds_watermark_operator(graph: &Graph, source: usize) -> bool {
    let mut seen = vec![false; graph.nodes.len()];
    let mut todo = vec![source];
    while let Some(n) = todo.pop() {
        let Some(slot) = seen.get_mut(n) else {
            continue;
        };
        if std::mem::replace(slot, true) {
            continue;
        }
        if matches!(
            graph.nodes.get(n),
            Some(
                NodeSpec::WindowAggregate { .. }
                    | NodeSpec::SessionAggregate { .. }
                    | NodeSpec::IntervalJoin { .. }
                    | NodeSpec::UpdatingAggregate {
                        expiry: Some(_),
                        ..
                    }
                    | NodeSpec::TopN {
                        expiry: Some(_),
                        ..
                    }
            )
        ) {
            return true;
        }
        todo.extend(graph.outputs(n).map(|e| e.to));
    }
    false
}

/// The dead letters of the late rows `late` (row index in a batch `reader` read, event time
/// in ms; `decoded` is the record offset of each row of that batch) behind `watermark_ms`:
/// their records read again.
pub async fn dead_letters(
    reader: &PartitionReader,
    decoded: &[i64],
    late: &[(usize, i64)],
    watermark_ms: i64,
) -> Result<Vec<SinkRecord>, StreamError> {
    let mut wanted: Vec<(i64, i64)> = late
        .iter()
        .filter_map(|(row, t)| decoded.get(*row).map(|o| (*o, *t)))
        .collect();
    wanted.sort_unstable();
    let offsets: Vec<i64> = wanted.iter().map(|(o, _)| *o).collect();
    let mut out = Vec::with_capacity(offsets.len());
    reader
        .reread(&offsets, |rec| {
            let t = wanted
                .binary_search_by_key(&rec.offset, |(o, _)| *o)
                .ok()
                .and_then(|i| wanted.get(i))
                .map_or(0, |(_, t)| *t);
            let why = DecodeFailure {
                kind: "late",
                message: format!(
                    "event time {t} ms is behind the watermark {watermark_ms} ms already sent"
                ),
            };
            out.push(dead_letter(&reader.topic, rec, &why));
        })
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::graph::{SourceSpec, Startup, WindowSpec};

    fn source() -> NodeSpec {
        NodeSpec::Source(SourceSpec {
            topic: "t".to_string(),
            decoder: Arc::new(|| Box::new(crate::format::BytesDecoder::new())),
            startup: Startup::Earliest,
            watermark: None,
            dead_letter: None,
            dedup: None,
        })
    }

    #[test]
    fn only_sources_that_reach_a_watermark_operator_drop_late_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let mut g = Graph::default();
        let s = g.add(source());
        let m = g.add(NodeSpec::Union);
        let w = g.add(NodeSpec::WindowAggregate {
            group: Vec::new(),
            aggs: Vec::new(),
            window: WindowSpec {
                end_column: 0,
                end_offset_us: 0,
                emit_on_close: true,
                hop: None,
            },
        });
        g.connect(s, m, schema.clone());
        g.connect(m, w, schema.clone());
        let other = g.add(source());
        let u = g.add(NodeSpec::Union);
        g.connect(other, u, schema);
        assert!(feeds_watermark_operator(&g, s));
        assert!(!feeds_watermark_operator(&g, other));
    }
}
