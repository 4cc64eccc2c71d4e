//! The pipelines page's data (design §4): the SQL engine's sources, materialized views and
//! sinks with their progress. The HTTP crate does not depend on the SQL engine (nor on
//! DataFusion): the binary implements [`PipelineSource`] from the engine and hands it to
//! [`crate::HttpService::set_pipelines`]. Without one (a binary built without SQL) the page
//! says SQL is off; before the engine has started it says so too. Rates are the produce
//! rates of the topics involved, from the console's own rate rings.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rates::Rates;

/// What the SQL engine reports; implemented by the binary over `weir_sql::Engine`.
pub trait PipelineSource: Send + Sync + 'static {
    /// `None` while the engine is still starting (or failed to start).
    fn snapshot(&self) -> Option<PipelineSnapshot>;
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineSnapshot {
    pub sources: Vec<SourceInfo>,
    /// Materialized views and sinks.
    pub pipelines: Vec<PipelineInfo>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceInfo {
    pub name: String,
    pub topic: String,
    pub format: String,
    /// "source", or "view" for a view read back as a source.
    pub kind: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineInfo {
    pub name: String,
    /// "view" or "sink".
    pub kind: String,
    /// The topic it writes.
    pub topic: String,
    pub format: String,
    /// "running", "recovering", "stopped", "failed: ...".
    pub status: String,
    /// The last committed epoch (`None` when the pipeline is not running).
    pub epoch: Option<u64>,
    /// Records appended to its topic in committed epochs (this run).
    pub records_out: u64,
    /// Records its decoders refused (each dead-lettered when its source has a topic for them).
    pub dead_letters: u64,
    /// Rows dropped as late: behind their source's watermark, or for a closed window.
    pub late_rows: u64,
    /// Rows dropped as duplicates by their source's `dedup.key` / `dedup.within`.
    pub duplicate_rows: u64,
    /// Values whose expression failed on their row (NULL instead, or the row dropped).
    pub expression_errors: u64,
    pub state_bytes: u64,
    pub memory_max_bytes: u64,
    /// Committed watermark per source topic (ms).
    pub watermarks: BTreeMap<String, i64>,
    /// Committed next offset per source `topic/partition`.
    pub offsets: BTreeMap<String, i64>,
}

/// The page: whether SQL runs, and its objects with rates.
#[derive(Debug, Clone, Serialize)]
pub struct Pipelines {
    /// "off" (built without SQL), "starting", or "running".
    pub sql: &'static str,
    pub sources: Vec<SourceRow>,
    pub pipelines: Vec<PipelineRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceRow {
    #[serde(flatten)]
    pub info: SourceInfo,
    /// Records per second produced to its topic (the last sample).
    pub records_per_s: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    #[serde(flatten)]
    pub info: PipelineInfo,
    /// Records per second appended to its topic (the last sample).
    pub output_records_per_s: Option<f32>,
}

pub fn pipelines(source: Option<&dyn PipelineSource>, rates: &Rates) -> Pipelines {
    let rate = |topic: &str| rates.topic(topic).last().map(|r| r.produced_records);
    let (sql, snap) = match source {
        None => ("off", PipelineSnapshot::default()),
        Some(s) => match s.snapshot() {
            None => ("starting", PipelineSnapshot::default()),
            Some(snap) => ("running", snap),
        },
    };
    let mut sources: Vec<SourceRow> = snap
        .sources
        .into_iter()
        .map(|info| SourceRow {
            records_per_s: rate(&info.topic),
            info,
        })
        .collect();
    sources.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let mut pipelines: Vec<PipelineRow> = snap
        .pipelines
        .into_iter()
        .map(|info| PipelineRow {
            output_records_per_s: rate(&info.topic),
            info,
        })
        .collect();
    pipelines.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    Pipelines {
        sql,
        sources,
        pipelines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Option<PipelineSnapshot>);

    impl PipelineSource for Fixed {
        fn snapshot(&self) -> Option<PipelineSnapshot> {
            self.0.clone()
        }
    }

    #[test]
    fn the_page_says_whether_sql_runs() {
        let rates = Rates::new(std::time::Duration::from_secs(10));
        let off = pipelines(None, &rates);
        assert_eq!((off.sql, off.sources.len()), ("off", 0));
        assert_eq!(pipelines(Some(&Fixed(None)), &rates).sql, "starting");
        let snap = PipelineSnapshot {
            sources: vec![SourceInfo {
                name: "orders".into(),
                topic: "orders".into(),
                format: "json".into(),
                kind: "source".into(),
            }],
            pipelines: vec![
                PipelineInfo {
                    name: "totals".into(),
                    kind: "view".into(),
                    ..PipelineInfo::default()
                },
                PipelineInfo {
                    name: "big".into(),
                    kind: "sink".into(),
                    ..PipelineInfo::default()
                },
            ],
        };
        let p = pipelines(Some(&Fixed(Some(snap))), &rates);
        assert_eq!(p.sql, "running");
        let names: Vec<&str> = p.pipelines.iter().map(|r| r.info.name.as_str()).collect();
        assert_eq!(names, ["big", "totals"]);
        // No samples yet for the topic: no rate rather than a made-up zero.
        assert_eq!(p.sources[0].records_per_s, None);
    }
}
