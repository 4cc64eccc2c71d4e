//! The SQL engine's pipelines on `/metrics` (docs/design/operability.md §2): the engine's
//! snapshot ([`PipelineSource`]) rendered as Prometheus text after the broker's registry, one
//! series set per materialized view or sink. Read at scrape time from the engine's progress
//! (no registry entries to remove when a pipeline is dropped: its series simply stop).

use std::fmt::Write;

use crate::console::pipelines::PipelineSnapshot;

/// A label value escaped as the exposition format requires (`\\`, `\"`, `\n`).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The pipelines' families, each with its HELP and TYPE lines (nothing when there are none).
pub fn render(snapshot: &PipelineSnapshot) -> String {
    let mut out = String::new();
    if snapshot.pipelines.is_empty() {
        return out;
    }
    type Value = fn(&crate::console::pipelines::PipelineInfo) -> Option<f64>;
    let families: [(&str, &str, &str, Value); 9] = [
        (
            "weir_sql_pipeline_up",
            "gauge",
            "1 while the pipeline runs, 0 when it is stopped, recovering or failed.",
            |p| Some(if p.status == "running" { 1.0 } else { 0.0 }),
        ),
        (
            "weir_sql_pipeline_records_out_total",
            "counter",
            "Records the pipeline appended to its topic in committed epochs since it started.",
            |p| Some(p.records_out as f64),
        ),
        (
            "weir_sql_pipeline_dead_letters_total",
            "counter",
            "Input records its decoders refused (dead-lettered when the source has a topic).",
            |p| Some(p.dead_letters as f64),
        ),
        (
            "weir_sql_pipeline_late_rows_total",
            "counter",
            "Rows dropped as late (behind their source's watermark, or for a closed window) \
             since the pipeline started; dead-lettered when the source has a topic.",
            |p| Some(p.late_rows as f64),
        ),
        (
            "weir_sql_pipeline_duplicate_rows_total",
            "counter",
            "Rows dropped as duplicates by their source's dedup.key / dedup.within since the \
             pipeline started (intended drops, never dead-lettered).",
            |p| Some(p.duplicate_rows as f64),
        ),
        (
            "weir_sql_pipeline_expression_errors_total",
            "counter",
            "Values whose expression failed on their row (a bad cast, a division by zero) \
             since the pipeline started: NULL instead, or the row dropped where a column \
             cannot be NULL.",
            |p| Some(p.expression_errors as f64),
        ),
        (
            "weir_sql_pipeline_state_bytes",
            "gauge",
            "Bytes of operator state the pipeline holds.",
            |p| Some(p.state_bytes as f64),
        ),
        (
            "weir_sql_pipeline_memory_max_bytes",
            "gauge",
            "The pipeline's memory budget (weir.sql.pipeline.memory.max.bytes).",
            |p| Some(p.memory_max_bytes as f64),
        ),
        (
            "weir_sql_pipeline_committed_epoch",
            "gauge",
            "The last epoch the pipeline committed (absent while it is not running).",
            |p| p.epoch.map(|e| e as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in &snapshot.pipelines {
            if let Some(v) = value(p) {
                let _ = writeln!(
                    out,
                    "{name}{{pipeline=\"{}\",kind=\"{}\"}} {v}",
                    label(&p.name),
                    label(&p.kind)
                );
            }
        }
    }
    let name = "weir_sql_pipeline_watermark_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} The pipeline's committed event-time watermark per source topic, as a \
         Unix time.\n# TYPE {name} gauge"
    );
    for p in &snapshot.pipelines {
        for (topic, ms) in &p.watermarks {
            let _ = writeln!(
                out,
                "{name}{{pipeline=\"{}\",topic=\"{}\"}} {}",
                label(&p.name),
                label(topic),
                *ms as f64 / 1000.0
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::pipelines::PipelineInfo;

    #[test]
    fn every_pipeline_gets_its_series_with_escaped_labels() {
        let snap = PipelineSnapshot {
            sources: Vec::new(),
            pipelines: vec![
                PipelineInfo {
                    name: "big\"one".into(),
                    kind: "view".into(),
                    status: "running".into(),
                    epoch: Some(7),
                    records_out: 40,
                    dead_letters: 1,
                    late_rows: 3,
                    duplicate_rows: 9,
                    expression_errors: 4,
                    state_bytes: 123,
                    memory_max_bytes: 1 << 20,
                    watermarks: [("orders".to_string(), 1_500)].into(),
                    ..Default::default()
                },
                PipelineInfo {
                    name: "s".into(),
                    kind: "sink".into(),
                    status: "failed: boom".into(),
                    ..Default::default()
                },
            ],
        };
        let text = render(&snap);
        assert!(text.contains("weir_sql_pipeline_up{pipeline=\"big\\\"one\",kind=\"view\"} 1\n"));
        assert!(text.contains("weir_sql_pipeline_up{pipeline=\"s\",kind=\"sink\"} 0\n"));
        assert!(text.contains(
            "weir_sql_pipeline_records_out_total{pipeline=\"big\\\"one\",kind=\"view\"} 40\n"
        ));
        assert!(text.contains(
            "weir_sql_pipeline_late_rows_total{pipeline=\"big\\\"one\",kind=\"view\"} 3\n"
        ));
        assert!(text.contains(
            "weir_sql_pipeline_duplicate_rows_total{pipeline=\"big\\\"one\",kind=\"view\"} 9\n"
        ));
        assert!(text.contains(
            "weir_sql_pipeline_expression_errors_total{pipeline=\"big\\\"one\",kind=\"view\"} 4\n"
        ));
        assert!(text.contains("weir_sql_pipeline_committed_epoch{pipeline=\"big\\\"one\""));
        // A pipeline that is not running has no committed epoch series.
        assert!(!text.contains("weir_sql_pipeline_committed_epoch{pipeline=\"s\""));
        assert!(text.contains(
            "weir_sql_pipeline_watermark_seconds{pipeline=\"big\\\"one\",topic=\"orders\"} 1.5\n"
        ));
        assert_eq!(text.matches("# TYPE ").count(), 10, "{text}");
        assert_eq!(render(&PipelineSnapshot::default()), "");
    }
}
