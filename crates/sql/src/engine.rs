//! The SQL engine: the catalog's sources, the DataFusion session each connection plans in,
//! and the execution of every statement.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan, Volatility};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ColumnDef, Ident, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use weir_broker::state::State;

use crate::catalog::{Catalog, ColumnInfo};
use crate::config::SqlConfig;
use crate::error::SqlError;
use crate::parser::{CreateSource, ObjectKind, WeirStatement};
use crate::pipelines::{Pipelines, VIEW};
use crate::records::PartitionReader;
use crate::source::{self, SourceDef};
use crate::table::TopicTable;
use crate::types;
use crate::views::{ViewDef, Views, PLAIN_VIEW};

/// What a statement returns.
pub enum Output {
    /// Rows as they are computed.
    Stream(SchemaRef, SendableRecordBatchStream),
    /// Rows already at hand (SHOW, DESCRIBE, session variables).
    Batches(SchemaRef, Vec<RecordBatch>),
    /// A command tag (`CREATE SOURCE`, `INSERT 0 3`).
    Command(String),
}

/// Shared by every connection.
pub struct Engine {
    pub(crate) state: Arc<State>,
    pub(crate) config: SqlConfig,
    pub(crate) catalog: Catalog,
    sources: Arc<RwLock<BTreeMap<String, Arc<SourceDef>>>>,
    /// Views that are not materialized, inlined into what reads them ([`crate::views`]).
    pub(crate) views: Views,
    runtime: Arc<RuntimeEnv>,
    pub(crate) pipelines: Pipelines,
}

impl Engine {
    /// Opens the catalog, defines every stored source again from its SQL, and resumes every
    /// materialized view's and sink's pipeline from its last committed epoch.
    pub async fn start(state: Arc<State>, config: SqlConfig) -> Result<Arc<Engine>, SqlError> {
        let catalog = Catalog::open(state.clone()).await?;
        let pipelines = Pipelines::start(state.clone(), &config)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(config.query_memory_bytes)))
            .build_arc()?;
        let engine = Arc::new(Engine {
            state,
            config,
            catalog,
            sources: Arc::new(RwLock::new(BTreeMap::new())),
            views: Arc::new(RwLock::new(BTreeMap::new())),
            runtime,
            pipelines,
        });
        for (name, entry) in engine.catalog.list() {
            if entry.state == "creating" {
                // A CREATE that crashed before it was answered: undo it.
                tracing::info!(name, "rolling back an unfinished CREATE");
                engine.catalog.remove(&name).await?;
                // A view's topic is its own: gone with it, so the name can be created again.
                if entry.kind == VIEW && engine.state.topic(&name).is_some() {
                    if let Err(e) = engine.state.delete_topic(&name).await {
                        tracing::warn!(name, error = %e, "cannot delete the rolled-back view's topic");
                    }
                }
                continue;
            }
            if entry.kind == PLAIN_VIEW {
                match ViewDef::restore(&name, &entry) {
                    Ok(def) => {
                        engine.views_mut().insert(name, Arc::new(def));
                    }
                    Err(e) => tracing::error!(name, error = %e, "cannot restore view"),
                }
                continue;
            }
            if entry.kind != "source" && entry.kind != "table" {
                continue;
            }
            let restored = async {
                let mut statements = crate::parser::parse(&entry.sql)?;
                let Some(WeirStatement::CreateSource(create)) = statements.pop() else {
                    return Err(SqlError::Invalid(format!(
                        "not a CREATE SOURCE or TABLE: {}",
                        entry.sql
                    )));
                };
                engine.define(*create).await
            }
            .await;
            match restored {
                Ok(mut def) => {
                    def.id = entry.id;
                    engine.sources_mut().insert(name, Arc::new(def));
                }
                Err(e) => tracing::error!(name, error = %e, "cannot restore source"),
            }
        }
        engine.resume_pipelines().await?;
        Ok(engine)
    }

    /// Stops every pipeline, each committing what it has processed (a clean shutdown).
    pub async fn stop(&self) {
        self.pipelines.stop_all().await;
    }

    /// Stops every pipeline without committing (this broker no longer hosts the engine:
    /// the next host resumes them from their last committed epoch).
    pub fn abandon(&self) {
        self.pipelines.abandon();
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Partition access for this engine's reads and appends (led here or elsewhere).
    pub fn access(&self) -> weir_broker::partition_access::PartitionAccess {
        weir_broker::partition_access::PartitionAccess::new(self.state.clone())
    }

    pub(crate) fn sources_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<SourceDef>>> {
        self.sources.write().unwrap_or_else(|e| e.into_inner())
    }

    fn sources(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<SourceDef>>> {
        self.sources.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The catalog's record of `name`.
    pub fn catalog_entry(&self, name: &str) -> Option<crate::catalog::Entry> {
        self.catalog.get(name)
    }

    pub fn source(&self, name: &str) -> Option<Arc<SourceDef>> {
        self.sources().get(name).cloned()
    }

    pub fn source_list(&self) -> Vec<Arc<SourceDef>> {
        self.sources().values().cloned().collect()
    }

    /// A new session: a DataFusion context whose `public` schema is the catalog's sources.
    pub fn session(self: &Arc<Self>) -> Session {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("weir", "public")
            .with_create_default_catalog_and_schema(true);
        // Strings read as Utf8: what sources decode to, so comparisons need no casts.
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        if let Some(catalog) = ctx.catalog("weir") {
            let schema = Arc::new(SourceSchema {
                state: self.state.clone(),
                sources: self.sources.clone(),
            });
            if let Err(e) = catalog.register_schema("public", schema) {
                tracing::error!(error = %e, "cannot register the sources' schema");
            }
        }
        crate::pg_catalog::register(&ctx, self.sources.clone(), self.views.clone());
        crate::plan::window_tvf::register(&ctx);
        crate::to_char::register(&ctx);
        Session {
            engine: self.clone(),
            ctx,
            vars: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Evaluates the DEFAULTs of `create` and checks it into a definition.
    pub(crate) async fn define(&self, create: CreateSource) -> Result<SourceDef, SqlError> {
        let mut defaults = HashMap::new();
        for c in &create.columns {
            if let Some(e) = source::default_expr(c) {
                let data_type = types::arrow_type(&c.data_type).ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "column {}: type {} is not supported in sources",
                        c.name.value, c.data_type
                    ))
                })?;
                let d = constant(&e.to_string(), &data_type).await.map_err(|e| {
                    SqlError::Invalid(format!("DEFAULT of column {}: {e}", c.name.value))
                })?;
                defaults.insert(c.name.value.clone(), d);
            }
        }
        SourceDef::define(create, &defaults)
    }

    async fn create_source(&self, mut create: CreateSource) -> Result<Output, SqlError> {
        let table = create.primary_key.is_some();
        let (tag, kind) = if table {
            ("CREATE TABLE", "table")
        } else {
            ("CREATE SOURCE", "source")
        };
        let _change = self.catalog.begin_change().await;
        if self.catalog.get(&create.name).is_some() {
            if create.if_not_exists {
                return Ok(Output::Command(tag.into()));
            }
            return Err(SqlError::Exists(create.name));
        }
        if table && create.columns.is_empty() {
            return Err(SqlError::Invalid(
                "a table needs its columns declared".into(),
            ));
        }
        let topic = create
            .options
            .get("topic")
            .cloned()
            .ok_or_else(|| SqlError::Invalid("a source needs WITH (topic = '...')".into()))?;
        let Ok(partitions) = self.access().partitions(&topic) else {
            return Err(SqlError::Invalid(format!(
                "topic {topic} does not exist (create it first, e.g. weir topic create {topic})"
            )));
        };
        if create.columns.is_empty() {
            create.columns = match source::format_of(&create.options)? {
                weir_format::Format::Json => {
                    infer_columns(&topic, &partitions, self.config.schema_sample_records).await?
                }
                weir_format::Format::Bytes => vec![column("value", "bytea")?],
                weir_format::Format::Text => vec![column("value", "varchar")?],
                weir_format::Format::Csv { .. } => {
                    return Err(SqlError::Invalid(
                        "a csv source needs its columns declared (csv has no field names)".into(),
                    ))
                }
            };
        }
        create.if_not_exists = false;
        let def = self.define(create).await?;
        let mut def = def;
        let entry = self.catalog.new_entry(
            kind,
            def.create.to_string(),
            def.column_infos(),
            def.create.options.clone(),
        );
        def.id = entry.id;
        self.catalog.put(&def.name, entry).await?;
        tracing::info!(name = %def.name, topic = %def.topic, kind, "source created");
        self.sources_mut().insert(def.name.clone(), Arc::new(def));
        Ok(Output::Command(tag.into()))
    }

    fn show(&self, kind: ObjectKind) -> Output {
        if kind == ObjectKind::View {
            return self.show_views();
        }
        let (mut names, mut topics, mut formats, mut statuses) = (vec![], vec![], vec![], vec![]);
        for [name, topic, format, status] in self.pipeline_rows(kind) {
            names.push(name);
            topics.push(topic);
            formats.push(format);
            statuses.push(status);
        }
        if matches!(kind, ObjectKind::Source | ObjectKind::Table) {
            for def in self.source_list().into_iter().filter(|d| d.kind == kind) {
                names.push(def.name.clone());
                topics.push(def.topic.clone());
                formats.push(def.format.name().to_string());
                let status = if self.state.topic(&def.topic).is_some() {
                    "ready"
                } else {
                    "failed: topic does not exist"
                };
                statuses.push(status.to_string());
            }
        }
        text_rows(&SHOW_COLUMNS, vec![names, topics, formats, statuses])
    }

    async fn describe(&self, name: &str) -> Result<Output, SqlError> {
        if let Some(view) = self.view(name) {
            return Ok(describe_rows(view.column_infos(), self.view_info(&view)));
        }
        let pipeline = self.pipeline_info(name);
        let Some(def) = self.source(name) else {
            // A sink: no columns of its own to read, only its pipeline.
            let info = pipeline.ok_or_else(|| SqlError::UnknownRelation(name.to_string()))?;
            let (names, values): (Vec<_>, Vec<_>) =
                info.into_iter().map(|(k, v)| (Some(k), Some(v))).unzip();
            let n = names.len();
            return Ok(nullable_text_rows(
                &DESCRIBE_COLUMNS,
                vec![names, vec![None; n], vec![None; n], values],
            ));
        };
        let mut info = pipeline.unwrap_or_else(|| {
            vec![
                ("kind".to_string(), def.kind.sql_name().to_lowercase()),
                ("topic".to_string(), def.topic.clone()),
                ("format".to_string(), def.format.name().to_string()),
            ]
        });
        if let (ObjectKind::Table, Some(key)) = (def.kind, &def.create.primary_key) {
            info.push(("primary key".to_string(), key.join(", ")));
        }
        if let Some((column, expr)) = &def.create.watermark {
            info.push(("watermark".to_string(), format!("{column} AS {expr}")));
        }
        for (k, v) in &def.create.options {
            if k != "topic"
                && k != "format"
                && matches!(def.kind, ObjectKind::Source | ObjectKind::Table)
            {
                info.push((format!("with {k}"), v.clone()));
            }
        }
        for p in self.access().partitions(&def.topic).unwrap_or_default() {
            // A partition whose leader cannot answer now is left out.
            if let Ok(m) = p.watermarks().await {
                info.push((
                    format!("partition {}", p.index()),
                    format!(
                        "log start {}, high watermark {}, last stable {}",
                        m.log_start_offset, m.high_watermark, m.last_stable_offset
                    ),
                ));
            }
        }
        Ok(describe_rows(def.column_infos(), info))
    }
}

/// DESCRIBE's rows: a row per column (name, type, nullable, default), then a row per
/// `info` line (its name, its value as the default).
fn describe_rows(columns: Vec<ColumnInfo>, info: Vec<(String, String)>) -> Output {
    let mut rows: Vec<[Option<String>; 4]> = columns
        .into_iter()
        .map(|c| {
            [
                Some(c.name),
                Some(c.sql_type),
                Some(if c.nullable { "YES" } else { "NO" }.to_string()),
                c.default
                    .or_else(|| c.metadata.then(|| "(record metadata)".to_string())),
            ]
        })
        .collect();
    rows.extend(
        info.into_iter()
            .map(|(k, v)| [Some(k), None, None, Some(v)]),
    );
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); 4];
    for row in rows {
        for (column, v) in columns.iter_mut().zip(row) {
            column.push(v);
        }
    }
    nullable_text_rows(&DESCRIBE_COLUMNS, columns)
}

/// One connection's session.
pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    vars: std::sync::Mutex<BTreeMap<String, String>>,
}

impl Session {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The DataFusion state statements are planned in (the catalog's sources and views).
    pub fn df_state(&self) -> datafusion::execution::session_state::SessionState {
        self.ctx.state()
    }

    /// Runs one statement.
    pub async fn execute(&self, statement: WeirStatement) -> Result<Output, SqlError> {
        match statement {
            WeirStatement::CreateSource(c) => self.engine.create_source(*c).await,
            WeirStatement::CreateView(v) => self.engine.create_view(*v, self.state_ttl()).await,
            WeirStatement::CreateSink(k) => self.engine.create_sink(*k, self.state_ttl()).await,
            WeirStatement::CreatePlainView(v) => self.engine.create_plain_view(*v).await,
            WeirStatement::Rename(r) => self.engine.rename(r).await,
            WeirStatement::Truncate(name) => self.truncate(&name).await,
            WeirStatement::Show(kind) => Ok(self.engine.show(kind)),
            WeirStatement::ShowCreate { kind, name } => self.engine.show_create(kind, &name),
            WeirStatement::Describe(name) => self.engine.describe(&name).await,
            WeirStatement::Drop {
                kind,
                if_exists,
                name,
                cascade,
            } => {
                self.engine
                    .drop_object(kind, if_exists, name, cascade)
                    .await
            }
            WeirStatement::ExplainCreate(s) => {
                self.engine.explain_create(*s, self.state_ttl()).await
            }
            WeirStatement::NotYet(message) => Err(SqlError::Unsupported(message)),
            WeirStatement::Sql(statement) => match self.session_statement(&statement) {
                Some(out) => out,
                None => {
                    let plan = self.plan(&statement).await?;
                    self.execute_plan(plan).await
                }
            },
        }
    }

    /// SET, SHOW and transaction statements: answered by the session itself.
    pub fn session_statement(&self, statement: &Statement) -> Option<Result<Output, SqlError>> {
        Some(Ok(match statement {
            Statement::Set(set) => {
                if let Some((name, value)) = set
                    .to_string()
                    .strip_prefix("SET ")
                    .and_then(|s| s.split_once(" = ").or_else(|| s.split_once(" TO ")))
                {
                    let value = value.trim().trim_matches('\'').to_string();
                    self.vars_lock().insert(name.trim().to_lowercase(), value);
                }
                Output::Command("SET".into())
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                let value = self
                    .vars_lock()
                    .get(&name)
                    .cloned()
                    .or_else(|| crate::pg_catalog::setting(&name).map(str::to_string));
                match value {
                    Some(v) => text_rows(&[&name], vec![vec![v]]),
                    None => {
                        return Some(Err(SqlError::Invalid(format!(
                            "unrecognized configuration parameter \"{name}\""
                        ))))
                    }
                }
            }
            Statement::StartTransaction { .. } => Output::Command("BEGIN".into()),
            Statement::Commit { .. } => Output::Command("COMMIT".into()),
            Statement::Rollback { .. } => Output::Command("ROLLBACK".into()),
            Statement::Discard { .. } => Output::Command("DISCARD ALL".into()),
            // psycopg sends DEALLOCATE ALL after DDL once it has prepared a statement (run
            // five times). A named statement is removed by the wire handler; ALL leaves them
            // to be replaced when a name is parsed again and dropped with the connection.
            Statement::Deallocate { name, .. } if name.value.eq_ignore_ascii_case("all") => {
                Output::Command("DEALLOCATE ALL".into())
            }
            Statement::Deallocate { .. } => Output::Command("DEALLOCATE".into()),
            _ => return None,
        }))
    }

    /// The idle-state TTL set for the views and sinks created next ([`crate::state_ttl`]).
    fn state_ttl(&self) -> Option<String> {
        let vars = self.vars_lock();
        vars.iter()
            .find(|(k, _)| crate::state_ttl::SESSION_VARS.contains(&k.trim_matches('\'')))
            .map(|(_, v)| v.clone())
    }

    fn vars_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.vars.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plans a statement DataFusion runs (queries, INSERT, EXPLAIN), refusing the rest.
    pub async fn plan(&self, statement: &Statement) -> Result<LogicalPlan, SqlError> {
        let mut statement = crate::pg_catalog::rewrite(statement.clone());
        let views = self.engine.views_read().clone();
        crate::views::check_dml_target(&statement, &views)?;
        crate::views::prepare(&mut statement, &views, false)?;
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        match &plan {
            LogicalPlan::Ddl(_) | LogicalPlan::Copy(_) | LogicalPlan::Statement(_) => {
                Err(SqlError::unsupported(format!(
                    "{} is not supported",
                    plan.display()
                        .to_string()
                        .split(':')
                        .next()
                        .unwrap_or("this statement")
                )))
            }
            _ => Ok(plan),
        }
    }

    /// Runs a plan from [`Session::plan`] (parameters bound).
    pub async fn execute_plan(&self, plan: LogicalPlan) -> Result<Output, SqlError> {
        let plan = crate::dml::inline_subqueries(&self.ctx, plan).await?;
        crate::dml::check(&plan)?;
        let dml = match &plan {
            LogicalPlan::Dml(d) => Some(d.op.clone()),
            _ => None,
        };
        if let Some(op) = &dml {
            // A condition the optimizer proves false (`WHERE false`, `WHERE id = 1 AND
            // 1 = 0`) replaces the table's scan by an empty relation, and DataFusion would
            // then hand the table no condition at all: every row would match.
            let optimized = self.ctx.state().optimize(&plan)?;
            if crate::dml::matches_nothing(&optimized)? {
                return Ok(Output::Command(crate::dml::tag(op, 0)));
            }
        }
        let df = self.ctx.execute_logical_plan(plan).await?;
        if let Some(op) = dml {
            let batches = df.collect().await?;
            let count = batches
                .first()
                .and_then(|b| b.columns().first())
                .and_then(|c| ScalarValue::try_from_array(c, 0).ok())
                .and_then(|v| match v {
                    ScalarValue::UInt64(Some(n)) => Some(n),
                    _ => None,
                })
                .unwrap_or(0);
            return Ok(Output::Command(crate::dml::tag(&op, count)));
        }
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await?;
        Ok(Output::Stream(schema, stream))
    }
}

/// The session's view of the catalog: each source as a [`TopicTable`].
struct SourceSchema {
    state: Arc<State>,
    sources: Arc<RwLock<BTreeMap<String, Arc<SourceDef>>>>,
}

impl std::fmt::Debug for SourceSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSchema").finish_non_exhaustive()
    }
}

#[async_trait]
impl SchemaProvider for SourceSchema {
    fn table_names(&self) -> Vec<String> {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let def = self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        Ok(def.map(|d| Arc::new(TopicTable::new(d, self.state.clone())) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
    }
}

/// Evaluates a constant expression (a DEFAULT) to `data_type`, refusing anything whose value
/// could change between evaluations: a replay must decode alike.
async fn constant(expr: &str, data_type: &DataType) -> Result<source::Default, SqlError> {
    let ctx = SessionContext::new();
    crate::to_char::register(&ctx);
    let sql = format!(
        "SELECT CAST(({expr}) AS {}) AS v",
        types::sql_name(data_type)
    );
    let df = ctx.sql(&sql).await?;
    let mut volatile = false;
    df.logical_plan().apply_expressions(|e| {
        e.apply(|e| {
            if let DfExpr::ScalarFunction(f) = e {
                if f.func.signature().volatility != Volatility::Immutable {
                    volatile = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    if volatile {
        return Err(SqlError::Invalid(format!(
            "{expr} is not a constant (a replay must decode alike)"
        )));
    }
    let batches = df.collect().await?;
    let column = batches
        .first()
        .map(|b| b.column(0).clone())
        .ok_or_else(|| SqlError::Invalid(format!("{expr} has no value")))?;
    let value = ScalarValue::try_from_array(&column, 0)?;
    let json = weir_format::encode::json_value(column.as_ref(), 0)?;
    Ok(source::Default {
        json,
        literal: DfExpr::Literal(value, None),
    })
}

pub(crate) fn column(name: &str, sql_type: &str) -> Result<ColumnDef, SqlError> {
    let data_type = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql_type)?
        .parse_data_type()?;
    Ok(ColumnDef {
        name: Ident::new(name),
        data_type,
        options: Vec::new(),
    })
}

/// Columns inferred from the first records of every partition.
async fn infer_columns(
    topic: &str,
    partitions: &[weir_broker::partition_access::PartitionHandle],
    per_partition: usize,
) -> Result<Vec<ColumnDef>, SqlError> {
    let mut values: Vec<Option<bytes::Bytes>> = Vec::new();
    for p in partitions {
        let mut reader =
            PartitionReader::open(p.clone(), 0)
                .await
                .map_err(|e| SqlError::Topic {
                    topic: topic.to_string(),
                    message: e.to_string(),
                })?;
        let mut taken = 0;
        while taken < per_partition {
            let Some(records) = reader.next_records().await.map_err(|e| SqlError::Topic {
                topic: topic.to_string(),
                message: e.to_string(),
            })?
            else {
                break;
            };
            for r in records.into_iter().take(per_partition - taken) {
                values.push(r.value);
                taken += 1;
            }
        }
    }
    let inferred = weir_format::infer::infer_json(values.iter().map(|v| v.as_deref()));
    if inferred.schema.fields().is_empty() {
        return Err(SqlError::Invalid(
            weir_format::infer::empty_sample_error(topic).to_string(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut columns = Vec::new();
    for f in inferred.schema.fields() {
        let lower = f.name().to_lowercase();
        let name = if seen.insert(lower.clone()) {
            lower
        } else {
            f.name().clone()
        };
        columns.push(column(&name, &types::sql_name(f.data_type()))?);
    }
    tracing::info!(
        topic,
        sampled = inferred.records,
        rejected = inferred.rejected,
        columns = columns.len(),
        "inferred source columns"
    );
    Ok(columns)
}

const SHOW_COLUMNS: [&str; 4] = ["name", "topic", "format", "status"];
const DESCRIBE_COLUMNS: [&str; 4] = ["name", "type", "nullable", "default"];

fn text_schema(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// The columns a statement answered by Weir itself returns (for Describe before Execute);
/// `None` for statements that return no rows.
pub fn result_schema(statement: &WeirStatement) -> Option<SchemaRef> {
    match statement {
        WeirStatement::Show(ObjectKind::View) => Some(text_schema(&crate::views::SHOW_COLUMNS)),
        WeirStatement::Show(_) => Some(text_schema(&SHOW_COLUMNS)),
        WeirStatement::ShowCreate { .. } => Some(text_schema(&crate::show_create::COLUMNS)),
        WeirStatement::Describe(_) => Some(text_schema(&DESCRIBE_COLUMNS)),
        WeirStatement::ExplainCreate(_) => Some(text_schema(&[crate::pipelines::EXPLAIN_COLUMN])),
        WeirStatement::Sql(s) => match s.as_ref() {
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                Some(text_schema(&[&name]))
            }
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn text_rows(names: &[&str], columns: Vec<Vec<String>>) -> Output {
    nullable_text_rows(
        names,
        columns
            .into_iter()
            .map(|c| c.into_iter().map(Some).collect())
            .collect(),
    )
}

pub(crate) fn nullable_text_rows(names: &[&str], columns: Vec<Vec<Option<String>>>) -> Output {
    let schema = text_schema(names);
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    match RecordBatch::try_new(schema.clone(), arrays) {
        Ok(batch) => Output::Batches(schema, vec![batch]),
        Err(e) => {
            tracing::error!(error = %e, "building a text result");
            Output::Batches(schema, Vec::new())
        }
    }
}
