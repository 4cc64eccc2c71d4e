//! The console's pipelines page over the SQL engine: the binary is the one place that knows
//! both `weir-http` (which must not depend on the SQL engine or DataFusion) and `weir-sql`,
//! so it implements the console's [`PipelineSource`] by copying the engine's reports into
//! the console's plain types.

use weir_http::console::pipelines::{PipelineInfo, PipelineSnapshot, PipelineSource, SourceInfo};
use weir_sql::parser::ObjectKind;

/// The SQL service's engine slot: empty until the engine has started, and while another
/// broker of a cluster hosts it.
pub struct SqlPipelines(pub weir_sql::service::EngineSlot);

impl PipelineSource for SqlPipelines {
    fn snapshot(&self) -> Option<PipelineSnapshot> {
        let engine = self.0.get()?;
        let sources = engine
            .source_list()
            .iter()
            .map(|s| SourceInfo {
                name: s.name.clone(),
                topic: s.topic.clone(),
                format: s.format.name().to_string(),
                kind: match s.kind {
                    ObjectKind::MaterializedView => "view",
                    ObjectKind::Table => "table",
                    _ => "source",
                }
                .to_string(),
            })
            .collect();
        let pipelines = engine
            .pipeline_reports()
            .into_iter()
            .map(|r| {
                let p = r.progress.unwrap_or_default();
                let running = r.status == "running" || p.epoch > 0;
                PipelineInfo {
                    name: r.name,
                    kind: r.kind.to_string(),
                    topic: r.topic,
                    format: r.format.to_string(),
                    status: r.status,
                    epoch: running.then_some(p.epoch),
                    records_out: p.records_out,
                    dead_letters: p.decode_failures,
                    late_rows: p.late_rows,
                    duplicate_rows: p.duplicate_rows,
                    expression_errors: p.expression_errors,
                    state_bytes: p.state_bytes as u64,
                    memory_max_bytes: p.memory_max_bytes as u64,
                    watermarks: p.watermarks.into_iter().collect(),
                    offsets: p
                        .offsets
                        .into_iter()
                        .map(|((t, part), o)| (format!("{t}/{part}"), o))
                        .collect(),
                }
            })
            .collect();
        Some(PipelineSnapshot { sources, pipelines })
    }
}
