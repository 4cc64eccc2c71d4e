//! Materialized views and sinks: continuous queries planned into stream graphs
//! ([`crate::plan`]) and run by the streaming runtime ([`weir_stream::Engine`]) in the
//! broker's process. CREATE is two-phase in the catalog (`creating`, owned topics, `active`,
//! then the pipeline starts); at start every active one is planned again from its SQL and
//! resumes from its last committed epoch; DROP stops the pipeline before the catalog forgets
//! it. A view's rows go to the topic of its name as JSON (§8), which ad-hoc `SELECT`s read
//! and Kafka clients read directly: appended rows for an append-only query (other pipelines
//! read it as a source), upserts by the query's key and tombstones for an updating one (a
//! compacted topic whose scans keep the last record per key).
//!
//! Here: the registry of running pipelines and their lifecycle (create, run, resume, drop);
//! [`define`]: a definition planned into its graph and sink; [`report`]: what SHOW,
//! DESCRIBE and the console show of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use weir_broker::state::AdminError;
use weir_stream::checkpoint::state_topic;
use weir_stream::graph::SinkSpec;
use weir_stream::{PipelineHandle, Progress};

use crate::catalog::Entry;
use crate::engine::{Engine, Output};
use crate::error::SqlError;
use crate::parser::{CreateSink, CreateView, ObjectKind};
use crate::plan::{self, StreamPlan};
use crate::source::SourceDef;

mod define;
mod report;

use define::format_name;
pub(crate) use define::{view_def, view_definition_of};
pub use report::PipelineReport;

pub const VIEW: &str = "view";
/// The one column of `EXPLAIN CREATE ...`.
pub const EXPLAIN_COLUMN: &str = "stream graph";
pub const SINK: &str = "sink";

/// Topic settings of an updating view's topic (§8): compacted, cleaned early, so a scan
/// reads close to one record per live key.
const UPSERT_TOPIC: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("min.cleanable.dirty.ratio", "0.1"),
    ("segment.ms", "600000"),
];

/// The running pipelines of views and sinks, by name.
pub struct Pipelines {
    /// `None` once [`Pipelines::abandon`]ed: its runtime is gone with every pipeline task.
    stream: Mutex<Option<weir_stream::Engine>>,
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
            threads: config.threads,
            ..weir_stream::StreamConfig::default()
        };
        let stream = weir_stream::Engine::start(state, stream)
            .map_err(|e| SqlError::Invalid(format!("the streaming engine cannot start: {e}")))?;
        Ok(Pipelines {
            stream: Mutex::new(Some(stream)),
            running: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files the running pipeline `old` under `new` (ALTER .. RENAME TO): its graph reads
    /// and writes topics, which keep their names.
    pub(crate) fn rename(&self, old: &str, new: &str) {
        let mut running = self.lock();
        if let Some(r) = running.remove(old) {
            running.insert(new.to_string(), r);
        }
    }

    /// Starts pipeline `id` on the streaming runtime, unless it was abandoned.
    fn run_pipeline(
        &self,
        id: u64,
        graph: weir_stream::Graph,
    ) -> Result<PipelineHandle, weir_stream::StreamError> {
        match &*self.stream.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(stream) => stream.run_pipeline(id, graph),
            None => Err(weir_stream::StreamError::Stopped),
        }
    }

    /// Stops every pipeline where it stands, committing nothing, as a crash would: the
    /// streaming runtime is shut down with its tasks. Their open epochs are aborted by the
    /// next run's `init_transactional` (design §7.4), wherever it runs, so nothing is
    /// written twice. Used when this broker stops hosting the engine (§14).
    pub fn abandon(&self) {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner()).take();
        // The handles stay (until the engine is dropped): a pipeline whose stop channel
        // closed would stop as `stop` does, committing what it processed.
        let pipelines = self.lock().len();
        if stream.is_some() && pipelines > 0 {
            tracing::info!(pipelines, "pipelines stopped without committing");
        }
        drop(stream);
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

impl Engine {
    /// `ttl`: the session's idle-state TTL ([`crate::state_ttl`]), kept with the view; the
    /// view's own `WITH (state_ttl = ..)` wins.
    pub(crate) async fn create_view(
        self: &Arc<Self>,
        v: CreateView,
        ttl: Option<String>,
    ) -> Result<Output, SqlError> {
        let ttl = v.options.get(crate::state_ttl::OPTION).cloned().or(ttl);
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
        match self
            .state
            .create_topic(topic, partitions, self.state.default_replication(), configs)
            .await
        {
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
        let (handle, failed) = match self.pipelines.run_pipeline(id, graph) {
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
            // As it is now: a view rebuilt before it in this loop may have marked it.
            let entry = self.catalog.get(&name).unwrap_or(entry);
            let kind = if entry.kind == VIEW {
                ObjectKind::MaterializedView
            } else {
                ObjectKind::Sink
            };
            match self.plan_resume(&name, &entry).await {
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

    /// Plans stored `entry` to resume: as it was created if an older Weir planned it
    /// otherwise, then reconciled with its stored plan (crate::upgrade: resumed, rebuilt
    /// under a new id, or refused with the way out), its topics ensured. A refused view's
    /// definition is still registered: its topic holds what it wrote, so what reads it plans
    /// against it and resumes over its own state.
    async fn plan_resume(
        self: &Arc<Self>,
        name: &str,
        entry: &Entry,
    ) -> Result<(StreamPlan, SinkSpec, Option<SourceDef>, Entry), SqlError> {
        let ttl = entry.options.get(crate::state_ttl::OPTION);
        let (planned, sink, view) = self
            .plan_entry(name, &entry.sql, ttl.map(String::as_str))
            .await?;
        let (planned, sink, view) = match self.as_created(name, entry, &planned, &sink).await? {
            Some(old) => old,
            None => (planned, sink, view),
        };
        let resumed = async {
            let entry = self
                .reconcile_plan(name, entry.clone(), &planned, &sink)
                .await?;
            let upsert_view = view.as_ref().is_some_and(|v| v.upsert_key.is_some());
            self.ensure_topic_with(&sink.topic, 1, upsert_view).await?;
            self.ensure_dead_letters(&planned).await?;
            Ok::<_, SqlError>(entry)
        }
        .await;
        match resumed {
            Ok(resumed) => Ok((planned, sink, view, resumed)),
            Err(e) => {
                if let Some(mut def) = view {
                    def.id = entry.id;
                    self.sources_mut().insert(name.to_string(), Arc::new(def));
                }
                Err(e)
            }
        }
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
            owned.push(
                entry
                    .options
                    .get("topic")
                    .cloned()
                    .unwrap_or_else(|| name.to_string()),
            );
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
}
