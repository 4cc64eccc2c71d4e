//! A view's or sink's definition planned into what its pipeline runs: the stream graph
//! ([`crate::plan`]), the sink it writes through (a view's topic, upserted by the query's
//! key when it updates; a sink's topic in its format) and, for a view, the source it is
//! read back as. CREATE, EXPLAIN CREATE and the restart all plan through here, so every
//! refusal is raised before anything is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ColumnOption, ColumnOptionDef, Query, Statement};
use weir_format::Format;
use weir_stream::graph::SinkSpec;

use super::{EXPLAIN_COLUMN, VIEW};
use crate::catalog::Entry;
use crate::engine::{column, Engine, Output};
use crate::error::SqlError;
use crate::parser::{CreateSource, CreateView, ObjectKind, SinkInput, WeirStatement};
use crate::plan::{self, PlanOptions, StreamPlan};
use crate::source::{self, SourceDef};
use crate::stream_io::{RowEncoder, UpsertEncoder};
use crate::types;

/// Options a sink accepts (`INTO` and `FORMAT` arrive as `topic` and `format`).
const SINK_OPTIONS: &[&str] = &[
    "topic",
    "format",
    "type",
    "primary_key",
    "csv.delimiter",
    crate::state_ttl::OPTION,
];

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
    /// The topic materialized view `name` writes: the one stored at CREATE (its name then,
    /// which `ALTER .. RENAME TO` keeps, crate::rename), or its name for a new view.
    pub(crate) fn view_topic(&self, name: &str) -> String {
        self.catalog
            .get(name)
            .and_then(|e| e.options.get("topic").cloned())
            .unwrap_or_else(|| name.to_string())
    }

    /// Plans a continuous query over the catalog's sources and views.
    async fn plan_query(
        self: &Arc<Self>,
        query: &Query,
        emit_on_window_close: bool,
        options: PlanOptions,
    ) -> Result<StreamPlan, SqlError> {
        let session = self.session();
        let state = session.df_state();
        let mut statement = Statement::Query(Box::new(query.clone()));
        // Views it reads are inlined: it depends on them, and runs their queries.
        let views = self.views_read().clone();
        let used = crate::views::prepare(&mut statement, &views, true)?;
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        let mut planned = plan::to_stream(&state, &plan, emit_on_window_close, options)?;
        planned.reads.extend(used);
        Ok(planned)
    }

    /// Plans a view's or sink's SQL with its idle-state TTL (`ttl`: the session's or the
    /// catalog's text; a sink's own option wins), checked here; with the configured
    /// [`PlanOptions`].
    pub(super) async fn plan_entry(
        self: &Arc<Self>,
        name: &str,
        sql: &str,
        ttl: Option<&str>,
    ) -> Result<(StreamPlan, SinkSpec, Option<SourceDef>), SqlError> {
        self.plan_entry_with(name, sql, ttl, self.config.plan_options())
            .await
    }

    /// [`plan_entry`](Self::plan_entry) with `options`.
    pub(crate) async fn plan_entry_with(
        self: &Arc<Self>,
        name: &str,
        sql: &str,
        ttl: Option<&str>,
        options: PlanOptions,
    ) -> Result<(StreamPlan, SinkSpec, Option<SourceDef>), SqlError> {
        let (mut planned, sink, view) = self.plan_sql(name, sql, options).await?;
        let option = match crate::parser::parse(sql)?.pop() {
            Some(WeirStatement::CreateSink(k)) => k.options.get(crate::state_ttl::OPTION).cloned(),
            Some(WeirStatement::CreateView(v)) => v.options.get(crate::state_ttl::OPTION).cloned(),
            _ => None,
        };
        if let Some(ms) = option
            .as_deref()
            .or(ttl)
            .map(crate::state_ttl::parse)
            .transpose()?
            .flatten()
        {
            // Event time where a source has a watermark; the wall clock otherwise.
            if !planned.sources.iter().any(|d| d.create.watermark.is_some()) {
                planned.graph.state_ttl_time = weir_stream::graph::TtlTime::Processing;
            }
            planned.graph.state_ttl_ms = Some(ms);
        }
        Ok((planned, sink, view))
    }

    async fn plan_sql(
        self: &Arc<Self>,
        name: &str,
        sql: &str,
        options: PlanOptions,
    ) -> Result<(StreamPlan, SinkSpec, Option<SourceDef>), SqlError> {
        let mut statements = crate::parser::parse(sql)?;
        match statements.pop() {
            Some(WeirStatement::CreateView(v)) => {
                let planned = self
                    .plan_query(&v.query, v.emit_on_window_close, options)
                    .await?;
                let topic = self.view_topic(name);
                let mut def = view_def(name, &topic, planned.schema.clone())?;
                def.definition = Some(view_definition(&v));
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
                        topic,
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
                        topic,
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
                let planned = self
                    .plan_query(&query, k.emit_on_window_close, options)
                    .await?;
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
}

pub(super) fn format_name(entry: &Entry) -> &'static str {
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
pub(crate) fn view_def(name: &str, topic: &str, schema: SchemaRef) -> Result<SourceDef, SqlError> {
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
            ("topic".to_string(), topic.to_string()),
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
        topic: topic.to_string(),
        format: Format::Json,
        payload: schema.clone(),
        defaults: vec![None; schema.fields().len()],
        includes: Vec::new(),
        schema,
        create,
        upsert_key: None,
        dedup: None,
        definition: None,
    })
}

/// A materialized view's definition as `pg_get_viewdef` and `pg_matviews.definition` show
/// it: its query as stored, with `EMIT ON WINDOW CLOSE` when it has it (the query alone
/// would mean updating output). `SHOW CREATE` prints the whole statement around it.
pub(crate) fn view_definition(view: &CreateView) -> String {
    let query = view.query.to_string();
    if view.emit_on_window_close {
        format!("{query} EMIT ON WINDOW CLOSE")
    } else {
        query
    }
}

/// [`view_definition`] of a stored `CREATE MATERIALIZED VIEW` (`None` for other SQL).
pub(crate) fn view_definition_of(sql: &str) -> Option<String> {
    match crate::parser::parse(sql).ok()?.pop()? {
        WeirStatement::CreateView(v) => Some(view_definition(&v)),
        _ => None,
    }
}
