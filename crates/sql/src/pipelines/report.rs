//! What a view's or sink's pipeline reports: `SHOW MATERIALIZED VIEWS | SINKS` rows,
//! DESCRIBE's lines (status, committed epoch, counters, offsets, the definition), the HTTP
//! console's [`PipelineReport`]s and a pipeline's status.

use weir_stream::{PipelineStatus, Progress};

use super::{SINK, VIEW};
use crate::engine::Engine;
use crate::parser::ObjectKind;

/// One view's or sink's pipeline as [`Engine::pipeline_reports`] gives it.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    pub name: String,
    /// [`VIEW`] or [`SINK`].
    pub kind: &'static str,
    pub topic: String,
    pub format: &'static str,
    /// "running", "recovering", "stopped" or "failed: ...".
    pub status: String,
    /// `None` when the pipeline is not running.
    pub progress: Option<Progress>,
}

impl Engine {
    /// `SHOW MATERIALIZED VIEWS | SINKS` rows: name, topic, format, status.
    pub(crate) fn pipeline_rows(&self, kind: ObjectKind) -> Vec<[String; 4]> {
        self.pipelines
            .lock()
            .iter()
            .filter(|(_, r)| r.kind == kind)
            .map(|(name, r)| {
                [
                    name.clone(),
                    r.topic.clone(),
                    r.format.to_string(),
                    r.status(),
                ]
            })
            .collect()
    }

    /// DESCRIBE's lines about a view's or sink's pipeline.
    pub(crate) fn pipeline_info(&self, name: &str) -> Option<Vec<(String, String)>> {
        let running = self.pipelines.lock();
        let r = running.get(name)?;
        let mut info = vec![
            ("kind".to_string(), r.kind.sql_name().to_lowercase()),
            ("topic".to_string(), r.topic.clone()),
            ("format".to_string(), r.format.to_string()),
            ("status".to_string(), r.status()),
        ];
        if r.kind == ObjectKind::MaterializedView {
            info.extend(crate::rename::topic_note(name, &r.topic));
        }
        if let Some(p) = r.progress() {
            info.push(("committed epoch".to_string(), p.epoch.to_string()));
            info.push(("records written".to_string(), p.records_out.to_string()));
            info.push((
                "records dead-lettered".to_string(),
                p.decode_failures.to_string(),
            ));
            info.push(("rows late (dropped)".to_string(), p.late_rows.to_string()));
            info.push((
                "rows late (dead-lettered)".to_string(),
                p.late_dead_lettered.to_string(),
            ));
            info.push((
                "rows duplicate (dropped)".to_string(),
                p.duplicate_rows.to_string(),
            ));
            info.push((
                "expression errors".to_string(),
                p.expression_errors.to_string(),
            ));
            if let Some(e) = &p.last_expression_error {
                info.push(("last expression error".to_string(), e.clone()));
            }
            info.push((
                "state bytes".to_string(),
                format!("{} of {}", p.state_bytes, p.memory_max_bytes),
            ));
            let mut offsets: Vec<_> = p.offsets.into_iter().collect();
            offsets.sort();
            for ((topic, partition), offset) in offsets {
                info.push((
                    format!("source {topic}-{partition}"),
                    format!("committed offset {offset}"),
                ));
            }
        }
        if let Some(e) = self.catalog.get(name) {
            if let Some(reset) = e.state_reset {
                info.push(("state reset".to_string(), reset));
            }
            if let Some(ttl) = e.options.get(crate::state_ttl::OPTION) {
                info.push(("state ttl".to_string(), ttl.clone()));
            }
            info.push(("definition".to_string(), e.sql));
        }
        Some(info)
    }

    /// Every view's and sink's pipeline with its progress, for the HTTP console's pipelines
    /// page (the binary turns these into the console's types).
    pub fn pipeline_reports(&self) -> Vec<PipelineReport> {
        self.pipelines
            .lock()
            .iter()
            .map(|(name, r)| PipelineReport {
                name: name.clone(),
                kind: if r.kind == ObjectKind::Sink {
                    SINK
                } else {
                    VIEW
                },
                topic: r.topic.clone(),
                format: r.format,
                status: r.status(),
                progress: r.progress(),
            })
            .collect()
    }

    /// The status of `name`'s pipeline, if it has one.
    pub fn pipeline_status(&self, name: &str) -> Option<PipelineStatus> {
        let running = self.pipelines.lock();
        let r = running.get(name)?;
        Some(match (&r.failed, &r.handle) {
            (Some(e), _) => PipelineStatus::Failed(e.clone()),
            (None, Some(h)) => h.status(),
            (None, None) => PipelineStatus::Stopped,
        })
    }
}
