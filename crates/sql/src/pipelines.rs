//! Materialized views and sinks: continuous queries planned into stream graphs
//! ([`crate::plan`]) and run by the streaming runtime ([`weir_stream::Engine`]) in the
//! broker's process. CREATE is two-phase in the catalog (`creating`, owned topics, `active`,
//! then the pipeline starts); at start every active one is planned again from its SQL and
//! resumes from its last committed epoch; DROP stops the pipeline before the catalog forgets
//! it. A view's rows go to the topic of its name as JSON (§8), which ad-hoc `SELECT`s read
//! and Kafka clients read directly: appended rows for an append-only query (other pipelines
//! read it as a source), upserts by the query's key and tombstones for an updating one (a
//! compacted topic whose scans keep the last record per key).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ColumnOption, ColumnOptionDef, Query, Statement};
use weir_broker::state::AdminError;
use weir_format::Format;
use weir_stream::checkpoint::state_topic;
use weir_stream::graph::SinkSpec;
use weir_stream::{PipelineHandle, PipelineStatus, Progress};

use crate::catalog::Entry;
use crate::engine::{column, Engine, Output};
use crate::error::SqlError;
use crate::parser::{CreateSink, CreateSource, CreateView, ObjectKind, SinkInput, WeirStatement};
use crate::plan::{self, StreamPlan};
use crate::source::{self, SourceDef};
use crate::stream_io::{RowEncoder, UpsertEncoder};
use crate::types;

pub const VIEW: &str = "view";
/// The one column of `EXPLAIN CREATE ...`.
pub const EXPLAIN_COLUMN: &str = "stream graph";
pub const SINK: &str = "sink";

/// Options a sink accepts (`INTO` and `FORMAT` arrive as `topic` and `format`).
const SINK_OPTIONS: &[&str] = &[
    "topic",
    "format",
    "type",
    "primary_key",
    "csv.delimiter",
    crate::state_ttl::OPTION,
];

/// Topic settings of an updating view's topic (§8): compacted, cleaned early, so a scan
/// reads close to one record per live key.
const UPSERT_TOPIC: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("min.cleanable.dirty.ratio", "0.1"),
    ("segment.ms", "600000"),
];

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

/// The running pipelines of views and sinks, by name.
pub struct Pipelines {
    stream: weir_stream::Engine,
    running: Mutex<BTreeMap<String, Running>>,
}

struct Running {
    kind: ObjectKind,
    topic: String,
    format: &'static str,
    /// `None` when the pipeline could not be planned or started (see `failed`).
    handle: Option<PipelineHandle>,
    failed: Option<String>,
}

impl Running {
    fn status(&self) -> String {
        match (&self.failed, &self.handle) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(h)) => h.status().to_string(),
            (None, None) => "stopped".to_string(),
        }
    }

    fn progress(&self) -> Option<Progress> {
        self.handle.as_ref().map(PipelineHandle::progress)
    }
}

impl Pipelines {
    pub fn start(
        state: Arc<weir_broker::state::State>,
        config: &crate::SqlConfig,
    ) -> Result<Pipelines, SqlError> {
        let interval = std::time::Duration::from_millis(
            u64::try_from(config.checkpoint_interval_ms).unwrap_or(u64::MAX),
        );
        let stream = weir_stream::StreamConfig {
            checkpoint_interval: interval,
            memory_max_bytes: config.pipeline_memory_max_bytes,
            ..weir_stream::StreamConfig::default()
        };
        let stream = weir_stream::Engine::start(state, stream)
            .map_err(|e| SqlError::Invalid(format!("the streaming engine cannot start: {e}")))?;
        Ok(Pipelines {
            stream,
            running: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops every pipeline, each committing what it processed.
    pub async fn stop_all(&self) {
        let all: Vec<(String, Running)> = std::mem::take(&mut *self.lock()).into_iter().collect();
        for (name, mut r) in all {
            if let Some(h) = r.handle.as_mut() {
                let status = h.stop().await;
                tracing::info!(name, %status, "pipeline stopped");
            }
        }
    }
}

/// The sink's record format and checked options; whether it is an upsert sink.
fn sink_format(options: &BTreeMap<String, String>) -> Result<(Format, bool), SqlError> {
    for key in options.keys() {
        if !SINK_OPTIONS.contains(&key.as_str()) {
            return Err(SqlError::Invalid(format!(
                "unknown sink option {key} (known: {})",
                SINK_OPTIONS.join(", ")
            )));
        }
    }
    let upsert = match options.get("type").map(|t| t.to_lowercase()).as_deref() {
        None | Some("append-only") => false,
        Some("upsert") => true,
        Some(other) => {
            return Err(SqlError::Invalid(format!(
                "sink type {other:?}: 'append-only' or 'upsert'"
            )))
        }
    };
    Ok((source::format_of(options)?, upsert))
}

/// The key an upsert sink writes by: `primary_key` (column names) or the query's own.
fn sink_key(
    options: &BTreeMap<String, String>,
    planned: &StreamPlan,
) -> Result<Vec<usize>, SqlError> {
    if let Some(names) = options.get("primary_key") {
        return names
            .split(',')
            .map(|n| {
                let n = n.trim();
                planned.schema.index_of(n).map_err(|_| {
                    SqlError::Invalid(format!("primary_key: the query has no column {n}"))
                })
            })
            .collect();
    }
    match (&planned.key, planned.updating) {
        (Some(key), true) => Ok(key.clone()),
        (None, true) => Err(SqlError::unsupported(
            "the query's key (its GROUP BY columns) is not among its output columns: select \
             them, or name the key with primary_key = 'c1,c2'",
        )),
        (_, false) => Err(SqlError::Invalid(
            "an upsert sink over an append-only query needs primary_key = 'c1,c2'".into(),
        )),
    }
}

impl Engine {
    /// Plans a continuous query over the catalog's sources and views.
    async fn plan_query(
        self: &Arc<Self>,
        query: &Query,
        emit_on_window_close: bool,
    ) -> Result<StreamPlan, SqlError> {
        let session = self.session();
        let state = session.df_state();
        let mut statement = Statement::Query(Box::new(query.clone()));
        plan::window_tvf::rewrite(&mut statement, true)?;
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        plan::to_stream(&state, &plan, emit_on_window_close)
    }

    /// Plans `entry`'s statement into the graph its pipeline runs, and for a view the
    /// definition it is read back with.
    /// Plans a view's or sink's SQL with its idle-state TTL (`ttl`: the session's or the
    /// catalog's text; a sink's own option wins), checked here.
    async fn plan_entry(
        self: &Arc<Self>,
        name: &str,
        sql: &str,
        ttl: Option<&str>,
    ) -> Result<(StreamPlan, SinkSpec, Option<SourceDef>), SqlError> {
        let (mut planned, sink, view) = self.plan_sql(name, sql).await?;
        let option = match crate::parser::parse(sql)?.pop() {
            Some(WeirStatement::CreateSink(k)) => k.options.get(crate::state_ttl::OPTION).cloned(),
            _ => None,
        };
        if let Some(ms) = option
            .as_deref()
            .or(ttl)
            .map(crate::state_ttl::parse)
            .transpose()?
            .flatten()
        {
            if !planned.sources.iter().any(|d| d.create.watermark.is_some()) {
                return Err(SqlError::unsupported(format!(
                    "{name}: state_ttl is measured in event time, by the watermark, and no \
                     source this query reads declares one: add WATERMARK FOR to a source, or \
                     SET streaming.state_ttl = 'none'"
                )));
            }
            planned.graph.state_ttl_ms = Some(ms);
        }
        Ok((planned, sink, view))
    }

    async fn plan_sql(
        self: &Arc<Self>,
        name: &str,
        sql: &str,
    ) -> Result<(StreamPlan, SinkSpec, Option<SourceDef>), SqlError> {
        let mut statements = crate::parser::parse(sql)?;
        match statements.pop() {
            Some(WeirStatement::CreateView(v)) => {
                let planned = self.plan_query(&v.query, v.emit_on_window_close).await?;
                let mut def = view_def(name, planned.schema.clone())?;
                let sink = if planned.updating {
                    let Some(key) = planned.key.clone() else {
                        return Err(SqlError::unsupported(format!(
                            "materialized view {name}: an updating view is keyed by its \
                             query's stream key (its GROUP BY columns; a join's, both inputs' \
                             keys), and it has none among its output columns: select the \
                             GROUP BY columns; an updating join needs keyed inputs on both \
                             sides (aggregate a source before joining it, since a source has \
                             no key yet), or write it to a sink WITH (type = 'upsert', \
                             primary_key = '..')"
                        )));
                    };
                    def.upsert_key = Some(key.clone());
                    let hidden = planned.hidden.len();
                    SinkSpec {
                        topic: name.to_string(),
                        encoder: Arc::new(move || {
                            Box::new(UpsertEncoder {
                                format: Format::Json,
                                key: key.clone(),
                                updating: true,
                                hidden,
                            })
                        }),
                        upsert: true,
                    }
                } else {
                    SinkSpec {
                        topic: name.to_string(),
                        encoder: Arc::new(|| {
                            Box::new(RowEncoder {
                                format: Format::Json,
                            })
                        }),
                        upsert: false,
                    }
                };
                Ok((planned, sink, Some(def)))
            }
            Some(WeirStatement::CreateSink(k)) => {
                let (format, upsert) = sink_format(&k.options)?;
                let topic = k.options.get("topic").cloned().ok_or_else(|| {
                    SqlError::Invalid(
                        "a sink needs a topic: CREATE SINK name INTO topic ... or WITH (topic = \
                         '...')"
                            .into(),
                    )
                })?;
                let query = match &k.input {
                    SinkInput::Query(q) => q.clone(),
                    SinkInput::From(view) => {
                        if self.catalog.get(view).is_none() {
                            return Err(SqlError::UnknownRelation(view.clone()));
                        }
                        let sql = format!("SELECT * FROM {}", crate::parser::quote_ident(view));
                        match crate::parser::parse(&sql)?.pop() {
                            Some(WeirStatement::Sql(s)) => match *s {
                                Statement::Query(q) => q,
                                _ => return Err(SqlError::Invalid(sql)),
                            },
                            _ => return Err(SqlError::Invalid(sql)),
                        }
                    }
                };
                let planned = self.plan_query(&query, k.emit_on_window_close).await?;
                // Checked now: the encoder must write every column, of a type it can write.
                weir_format::encode::check_schema(format, &planned.schema)?;
                let sink = if upsert {
                    let key = sink_key(&k.options, &planned)?;
                    let updating = planned.updating;
                    let hidden = planned.hidden.len();
                    SinkSpec {
                        topic,
                        encoder: Arc::new(move || {
                            Box::new(UpsertEncoder {
                                format,
                                key: key.clone(),
                                updating,
                                hidden,
                            })
                        }),
                        upsert: true,
                    }
                } else {
                    if planned.updating {
                        return Err(SqlError::unsupported(
                            "the query updates its rows (an aggregate, or a window without \
                             EMIT ON WINDOW CLOSE), which an append-only sink cannot write: \
                             use type = 'upsert', or EMIT ON WINDOW CLOSE over a windowed \
                             aggregate",
                        ));
                    }
                    SinkSpec {
                        topic,
                        encoder: Arc::new(move || Box::new(RowEncoder { format })),
                        upsert: false,
                    }
                };
                Ok((planned, sink, None))
            }
            _ => Err(SqlError::Invalid(format!(
                "not a view or sink definition: {sql}"
            ))),
        }
    }

    /// `EXPLAIN CREATE ...`: plans the statement as CREATE would (every refusal included)
    /// and prints its stream graph, sink attached; nothing is written.
    pub(crate) async fn explain_create(
        self: &Arc<Self>,
        statement: WeirStatement,
        ttl: Option<String>,
    ) -> Result<Output, SqlError> {
        let (name, sql) = match statement {
            WeirStatement::CreateView(v) => (v.name.clone(), v.to_string()),
            WeirStatement::CreateSink(k) => (k.name.clone(), k.to_string()),
            _ => {
                return Err(SqlError::unsupported(
                    "EXPLAIN of CREATE explains materialized views and sinks",
                ))
            }
        };
        let (planned, sink, _) = self.plan_entry(&name, &sql, ttl.as_deref()).await?;
        let lines = planned.with_sink(sink).explain();
        Ok(crate::engine::text_rows(&[EXPLAIN_COLUMN], vec![lines]))
    }

    /// `ttl`: the session's idle-state TTL ([`crate::state_ttl`]), kept with the view.
    pub(crate) async fn create_view(
        self: &Arc<Self>,
        v: CreateView,
        ttl: Option<String>,
    ) -> Result<Output, SqlError> {
        let sql = CreateView {
            if_not_exists: false,
            ..v.clone()
        }
        .to_string();
        self.create_pipeline(
            ObjectKind::MaterializedView,
            v.name,
            v.if_not_exists,
            sql,
            ttl,
        )
        .await
    }

    pub(crate) async fn create_sink(
        self: &Arc<Self>,
        k: CreateSink,
        ttl: Option<String>,
    ) -> Result<Output, SqlError> {
        let sql = CreateSink {
            if_not_exists: false,
            ..k.clone()
        }
        .to_string();
        self.create_pipeline(ObjectKind::Sink, k.name, k.if_not_exists, sql, ttl)
            .await
    }

    async fn create_pipeline(
        self: &Arc<Self>,
        kind: ObjectKind,
        name: String,
        if_not_exists: bool,
        sql: String,
        ttl: Option<String>,
    ) -> Result<Output, SqlError> {
        let tag = format!("CREATE {}", kind.sql_name());
        let _change = self.catalog.begin_change().await;
        if self.catalog.get(&name).is_some() {
            if if_not_exists {
                return Ok(Output::Command(tag));
            }
            return Err(SqlError::Exists(name));
        }
        // (1) Every user error is raised here, before anything is written.
        let (planned, sink, view) = self.plan_entry(&name, &sql, ttl.as_deref()).await?;
        if view.is_some() && self.state.topic(&name).is_some() {
            return Err(SqlError::Invalid(format!(
                "topic {name} already exists; a materialized view writes to a topic of its name"
            )));
        }
        let entry_kind = if view.is_some() { VIEW } else { SINK };
        let mut entry = self
            .catalog
            .new_entry(entry_kind, sql, Vec::new(), BTreeMap::new());
        if let Some(v) = &view {
            entry.columns = v.column_infos();
        }
        entry.options.insert("topic".into(), sink.topic.clone());
        if let Some(ttl) = ttl {
            entry.options.insert(crate::state_ttl::OPTION.into(), ttl);
        }
        entry.depends_on = planned.reads.iter().cloned().collect();
        entry.plan_fingerprint = Some(plan::fingerprint(&planned.graph));
        entry.state_layout = Some(plan::state_layout(&planned.graph_with_sink(sink.clone())));
        // (2) `creating`: a crash from here on is rolled back at the next start.
        entry.state = "creating".into();
        self.catalog.put(&name, entry.clone()).await?;
        // (3) The topics it writes.
        let upsert_view = view.as_ref().is_some_and(|v| v.upsert_key.is_some());
        let owned = async {
            self.ensure_topic_with(&sink.topic, 1, upsert_view).await?;
            self.ensure_dead_letters(&planned).await
        }
        .await;
        if let Err(e) = owned {
            self.catalog.remove(&name).await?;
            return Err(e);
        }
        // (4) `active`, then (5) the pipeline.
        entry.state = "active".into();
        self.catalog.put(&name, entry.clone()).await?;
        self.run(
            &name,
            kind,
            entry.id,
            planned,
            sink,
            view,
            format_name(&entry),
        );
        tracing::info!(name, kind = entry_kind, "pipeline created");
        Ok(Output::Command(tag))
    }

    /// Creates `topic` when missing.
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), SqlError> {
        self.ensure_topic_with(topic, partitions, false).await
    }

    /// Creates `topic` when missing, compacted for upserts if `upsert`.
    async fn ensure_topic_with(
        &self,
        topic: &str,
        partitions: i32,
        upsert: bool,
    ) -> Result<(), SqlError> {
        if self.state.topic(topic).is_some() {
            return Ok(());
        }
        let configs = match upsert {
            true => UPSERT_TOPIC
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            false => Default::default(),
        };
        match self.state.create_topic(topic, partitions, 1, configs).await {
            Ok(_) | Err(AdminError::TopicExists(_)) => Ok(()),
            Err(e) => Err(SqlError::Topic {
                topic: topic.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Each source's dead-letter topic, with the source topic's partition count (§9).
    async fn ensure_dead_letters(&self, planned: &StreamPlan) -> Result<(), SqlError> {
        for def in &planned.sources {
            if let Some(dlq) = plan::dead_letter_topic(def) {
                let partitions = self
                    .state
                    .topic(&def.topic)
                    .map_or(1, |t| t.partition_count())
                    .max(1);
                self.ensure_topic(&dlq, partitions).await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        name: &str,
        kind: ObjectKind,
        id: u64,
        planned: StreamPlan,
        sink: SinkSpec,
        view: Option<SourceDef>,
        format: &'static str,
    ) {
        let topic = sink.topic.clone();
        if let Some(mut def) = view {
            def.id = id;
            self.sources_mut().insert(name.to_string(), Arc::new(def));
        }
        let graph = planned.with_sink(sink);
        let (handle, failed) = match self.pipelines.stream.run_pipeline(id, graph) {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.pipelines.lock().insert(
            name.to_string(),
            Running {
                kind,
                topic,
                format,
                handle,
                failed,
            },
        );
    }

    /// Plans and starts every stored view and sink, in creation order (a view before what
    /// reads it); one that fails shows `failed: <error>` and the others go on.
    pub(crate) async fn resume_pipelines(self: &Arc<Self>) -> Result<(), SqlError> {
        let mut entries: Vec<(String, Entry)> = self
            .catalog
            .list()
            .into_iter()
            .filter(|(_, e)| e.kind == VIEW || e.kind == SINK)
            .collect();
        entries.sort_by_key(|(_, e)| e.id);
        for (name, entry) in entries {
            let kind = if entry.kind == VIEW {
                ObjectKind::MaterializedView
            } else {
                ObjectKind::Sink
            };
            let planned = async {
                let ttl = entry.options.get(crate::state_ttl::OPTION);
                let (planned, sink, view) = self
                    .plan_entry(&name, &entry.sql, ttl.map(String::as_str))
                    .await?;
                // A plan that changed since CREATE resumes, is rebuilt under a new id, or is
                // refused with the way out (crate::upgrade).
                let entry = self
                    .reconcile_plan(&name, entry.clone(), &planned, &sink)
                    .await?;
                let upsert_view = view.as_ref().is_some_and(|v| v.upsert_key.is_some());
                self.ensure_topic_with(&sink.topic, 1, upsert_view).await?;
                self.ensure_dead_letters(&planned).await?;
                Ok::<_, SqlError>((planned, sink, view, entry))
            }
            .await;
            match planned {
                Ok((planned, sink, view, entry)) => {
                    tracing::info!(name, id = entry.id, "resuming pipeline");
                    self.run(
                        &name,
                        kind,
                        entry.id,
                        planned,
                        sink,
                        view,
                        format_name(&entry),
                    );
                }
                Err(e) => {
                    tracing::error!(name, error = %e, "cannot resume pipeline");
                    self.pipelines.lock().insert(
                        name.clone(),
                        Running {
                            kind,
                            topic: entry.options.get("topic").cloned().unwrap_or_default(),
                            format: format_name(&entry),
                            handle: None,
                            failed: Some(e.to_string()),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// DROP of a view or sink: its pipeline stopped, the catalog entry removed, its state
    /// topic and (a view's) result topic deleted. A sink's topic is the user's and stays.
    pub(crate) async fn drop_pipeline(&self, name: &str, entry: &Entry) -> Result<(), SqlError> {
        let running = self.pipelines.lock().remove(name);
        if let Some(mut r) = running {
            if let Some(h) = r.handle.as_mut() {
                h.stop().await;
            }
        }
        self.catalog.remove(name).await?;
        self.sources_mut().remove(name);
        let mut owned = vec![state_topic(entry.id)];
        if entry.kind == VIEW {
            owned.push(name.to_string());
        }
        for topic in owned {
            match self.state.delete_topic(&topic).await {
                Ok(_) | Err(AdminError::UnknownTopic(_)) => {}
                Err(e) => {
                    tracing::warn!(topic, error = %e, "cannot delete a dropped pipeline's topic")
                }
            }
        }
        tracing::info!(name, "pipeline dropped");
        Ok(())
    }

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

fn format_name(entry: &Entry) -> &'static str {
    if entry.kind == VIEW {
        return "json";
    }
    let Ok(mut statements) = crate::parser::parse(&entry.sql) else {
        return "json";
    };
    match statements.pop() {
        Some(WeirStatement::CreateSink(k)) => {
            sink_format(&k.options).map_or("json", |(f, _)| f.name())
        }
        _ => "json",
    }
}

/// A view read back from its topic: a JSON source of the query's columns (the format the
/// view writes), without dead letters (its records are Weir's own).
fn view_def(name: &str, schema: SchemaRef) -> Result<SourceDef, SqlError> {
    let mut columns = Vec::new();
    for f in schema.fields() {
        let mut c = column(f.name(), &types::sql_name(f.data_type()))?;
        if !f.is_nullable() {
            c.options.push(ColumnOptionDef {
                name: None,
                option: ColumnOption::NotNull,
            });
        }
        columns.push(c);
    }
    let create = CreateSource {
        name: name.to_string(),
        if_not_exists: false,
        columns,
        watermark: None,
        includes: Vec::new(),
        options: BTreeMap::from([
            ("topic".to_string(), name.to_string()),
            ("format".to_string(), "json".to_string()),
            ("dead_letter".to_string(), "none".to_string()),
        ]),
        primary_key: None,
    };
    // The view's own types, not the declared columns' parse-back (which may differ in
    // width), so what a reader decodes is what the pipeline wrote.
    weir_format::RecordDecoder::new(Format::Json, schema.clone(), &[]).map_err(|e| {
        SqlError::unsupported(format!(
            "materialized view {name}: its result cannot be stored as JSON: {e}"
        ))
    })?;
    Ok(SourceDef {
        id: 0,
        kind: ObjectKind::MaterializedView,
        name: name.to_string(),
        topic: name.to_string(),
        format: Format::Json,
        payload: schema.clone(),
        defaults: vec![None; schema.fields().len()],
        includes: Vec::new(),
        schema,
        create,
        upsert_key: None,
    })
}
