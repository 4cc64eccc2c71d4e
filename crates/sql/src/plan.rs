//! From DataFusion's logical plan to the streaming runtime's [`Graph`] (design §4.3): the
//! optimized plan is walked bottom-up; scans of sources become `Source` nodes, chains of
//! `Projection`/`Filter` become `Map`s whose expressions are DataFusion's physical
//! expressions (so types, casts, CASE and every scalar function behave as in a batch query),
//! `UNION ALL` a `Union`, scans of tables their changelogs ([`table`]). Anything else is refused here, at CREATE, with the plan node named
//! (§5.5): a pipeline never fails at run time for a construct it cannot run.

mod expiry;
mod hidden;
mod hop;
mod interval;
mod join;
mod rank;
mod scalar_subquery;
mod shared;
mod table;
mod union;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchemaRef;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, Volatility};
use datafusion::physical_expr::PhysicalExpr;
use weir_stream::graph::{AggKind, AggSpec, SinkSpec, SourceSpec, Startup, RETRACT};
use weir_stream::{Graph, NodeSpec};

use crate::error::SqlError;
use crate::parser::ObjectKind;
use crate::source::SourceDef;
use crate::stream_io::SqlDecoder;
use crate::table::TopicTable;

mod window;
pub mod window_tvf;

/// What the constructs a continuous query may use today, for refusals.
const SUPPORTED: &str = "continuous queries support projections, filters, scalar functions, \
     CASE, casts, UNION ALL, inner/left/right/full equi-joins, interval joins, ROW_NUMBER top-N and GROUP BY \
     with count, sum, avg, min, max, count(DISTINCT) and FILTER, over TUMBLE, HOP and SESSION \
     windows too, over sources, tables and append-only materialized views";

/// A continuous query planned into a stream graph, its sink not yet attached.
pub struct StreamPlan {
    pub graph: Graph,
    /// The node whose output is the query's result.
    pub output: usize,
    /// The result's columns (without `_retract`): what a view shows and a sink writes.
    pub schema: SchemaRef,
    /// Columns after `schema` that only carry the stream key (design §5.4: a key column the
    /// query does not select, or a row number of an append-only input): they flow to the
    /// sink, which keys its records by them, and are never shown or written as values.
    pub hidden: Vec<FieldRef>,
    /// Whether the result updates (its rows carry `_retract`, §6).
    pub updating: bool,
    /// The result's stream key (column indices); `None` when a projection dropped it.
    pub key: Option<Vec<usize>>,
    /// Sources (and views) read, by name.
    pub reads: BTreeSet<String>,
    /// Each source read, for its dead-letter topic.
    pub sources: Vec<Arc<SourceDef>>,
}

impl StreamPlan {
    /// The schema of the result's rows as they flow: its columns, the hidden ones, and for
    /// an updating result `_retract`.
    pub fn edge_schema(&self) -> SchemaRef {
        let mut fields: Vec<FieldRef> = self.schema.fields().iter().cloned().collect();
        fields.extend(self.hidden.iter().cloned());
        let all = Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ));
        with_retract(&all, self.updating)
    }

    /// Attaches the sink the result is written to.
    pub fn with_sink(mut self, sink: SinkSpec) -> Graph {
        let mut graph = std::mem::take(&mut self.graph);
        self.attach(&mut graph, sink);
        graph
    }

    /// The graph with its sink attached, this plan kept (for its state layout).
    pub fn graph_with_sink(&self, sink: SinkSpec) -> Graph {
        let mut graph = self.graph.clone();
        self.attach(&mut graph, sink);
        graph
    }

    fn attach(&self, graph: &mut Graph, sink: SinkSpec) {
        let node = graph.add(NodeSpec::Sink(sink));
        let schema = self.edge_schema();
        let key = self.key.clone().unwrap_or_default();
        graph.connect_keyed(self.output, node, schema, !self.updating, key);
    }
}

/// `schema`, followed by `_retract` when `updating`.
pub fn with_retract(schema: &SchemaRef, updating: bool) -> SchemaRef {
    if !updating {
        return schema.clone();
    }
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(RETRACT, DataType::Boolean, false)));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The dead-letter topic of `def` (§9): `dead_letter` in its WITH options, `none` for none,
/// by default `<source>.dlq`.
pub fn dead_letter_topic(def: &SourceDef) -> Option<String> {
    match def.create.options.get("dead_letter").map(String::as_str) {
        Some(n) if n.eq_ignore_ascii_case("none") => None,
        Some(n) => Some(n.to_string()),
        None => Some(format!("{}.dlq", def.name)),
    }
}

/// A hash of the graph as printed (operators, expressions, edges and their columns), stored
/// at CREATE: a pipeline whose plan comes out differently after an upgrade must not resume
/// over state of another layout (§5.3).
pub fn fingerprint(graph: &Graph) -> String {
    let mut text = format!("{:?}", graph.nodes);
    let stateful = graph.nodes.iter().any(|n| {
        matches!(
            n,
            NodeSpec::UpdatingAggregate { .. }
                | NodeSpec::WindowAggregate { .. }
                | NodeSpec::SessionAggregate { .. }
                | NodeSpec::Join { .. }
                | NodeSpec::IntervalJoin { .. }
                | NodeSpec::RowId
        )
    });
    if stateful {
        // State of another codec version is another layout. (Not added to stateless graphs,
        // whose fingerprints predate operator state.)
        text.push_str(&format!("|codec {}", weir_stream::state::codec::VERSION));
    }
    for e in &graph.edges {
        text.push_str(&format!("|{}>{}:{}", e.from, e.to, e.port));
        if !e.append_only {
            text.push_str(&format!(" updating key {:?}", e.stream_key));
        }
        for f in e.schema.fields() {
            text.push_str(&format!(",{} {}", f.name(), f.data_type()));
        }
    }
    fnv(&text)
}

/// A hash of the state layout of `graph` (its sink attached): what its checkpoint is
/// written for ([`weir_stream::layout`]). A pipeline whose plan changed resumes over its
/// state when this did not ([`crate::upgrade`]).
pub fn state_layout(graph: &Graph) -> String {
    fnv(&weir_stream::layout::describe(graph))
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// How the planner may plan what more than one plan computes: the choices that changed
/// between versions of Weir, so that a view created by an older one is planned again as it
/// was (its checkpointed state is laid out for that plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// A HOP aggregate that can slices into panes of the slide ([`hop`];
    /// `weir.sql.hop.panes`).
    pub hop_panes: bool,
    /// Aggregates that compute the same groups of the same input share one operator
    /// ([`shared`]; `weir.sql.shared.aggregates`).
    pub shared_aggregates: bool,
}

impl PlanOptions {
    /// The options of older versions, newest first: a view whose stored plan is none of
    /// today's is planned again with each until one matches.
    pub fn older(self) -> impl Iterator<Item = PlanOptions> {
        [
            PlanOptions {
                hop_panes: self.hop_panes,
                shared_aggregates: false,
            },
            PlanOptions {
                hop_panes: false,
                shared_aggregates: false,
            },
        ]
        .into_iter()
        .filter(move |o| *o != self)
    }
}

/// Plans `plan` (a query's logical plan, unoptimized) as a stream graph; with
/// `emit_on_window_close` its window aggregates emit each window once, when it closes;
/// `options` as [`PlanOptions`] says.
pub fn to_stream(
    state: &SessionState,
    plan: &LogicalPlan,
    emit_on_window_close: bool,
    options: PlanOptions,
) -> Result<StreamPlan, SqlError> {
    refuse_unstable(plan)?;
    let optimized = scalar_subquery::join_uncorrelated(state.optimize(plan)?)?;
    refuse_scalar_subqueries(&optimized)?;
    let mut planner = Planner {
        state,
        graph: Graph::default(),
        scans: BTreeMap::new(),
        sources: Vec::new(),
        emit_on_window_close,
        options,
        aggregates: Vec::new(),
        windows: 0,
        top_n: None,
        keep_hidden: true,
        hidden_names: 0,
    };
    let out = planner.walk_keyed(&optimized)?;
    // Only an updating result needs its key; an append-only one has no hidden column.
    let out = if out.updating {
        out
    } else {
        planner.strip(out)?
    };
    window::check_sessions(&optimized, &planner.graph)?;
    if emit_on_window_close && (planner.windows == 0 || out.updating) {
        return Err(SqlError::unsupported(if planner.windows == 0 {
            "EMIT ON WINDOW CLOSE needs a windowed aggregate: GROUP BY window_start (or \
             window_end) of TUMBLE(..) or HOP(..)"
        } else {
            "EMIT ON WINDOW CLOSE needs an append-only result, and this query's result \
             updates (an aggregate over the windowed one): drop EMIT ON WINDOW CLOSE"
        }));
    }
    let all = out.schema.as_arrow();
    let visible = all.fields().len() - out.hidden;
    Ok(StreamPlan {
        graph: planner.graph,
        output: out.node,
        schema: Arc::new(Schema::new_with_metadata(
            all.fields()
                .iter()
                .take(visible)
                .cloned()
                .collect::<Vec<_>>(),
            all.metadata().clone(),
        )),
        hidden: all.fields().iter().skip(visible).cloned().collect(),
        updating: out.updating,
        key: out.key,
        reads: planner.scans.keys().cloned().collect(),
        sources: planner.sources,
    })
}

/// `now()`, `random()` and their kind would give a replay after a crash other rows than the
/// first run: refused, as every function that is not immutable.
fn refuse_unstable(plan: &LogicalPlan) -> Result<(), SqlError> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if f.func.signature().volatility != Volatility::Immutable {
                        found = Some(f.func.name().to_string());
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    match found {
        Some(name) => Err(SqlError::unsupported(format!(
            "{name}() is not allowed in a continuous query: its value would differ when the \
             pipeline replays input after a restart"
        ))),
        None => Ok(()),
    }
}

/// A scalar subquery left in the plan: one that does not refer to the outer query (which a
/// batch query evaluates once, first) and that [`scalar_subquery`] could not join (correlated
/// ones became joins with an aggregate).
fn refuse_scalar_subqueries(plan: &LogicalPlan) -> Result<(), SqlError> {
    let mut found = false;
    plan.apply(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                found |= matches!(e, Expr::ScalarSubquery(_));
                Ok(if found {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })
    })?;
    if found {
        return Err(SqlError::unsupported(
            "a scalar subquery that does not refer to the outer query runs continuously \
             when its value is a column of an aggregate without GROUP BY (SELECT \
             avg(amount) FROM orders) of count, sum, avg, min, max and the like: this one is \
             not; or join its result on a constant, e.g. SELECT o.id FROM (SELECT id, \
             amount, 1 AS one FROM orders) o JOIN (SELECT max(amount) AS m, 1 AS one FROM \
             orders) a ON o.one = a.one WHERE o.amount > a.m",
        ));
    }
    Ok(())
}

struct Planner<'a> {
    state: &'a SessionState,
    graph: Graph,
    /// One `Source` node per source read (a source read twice fans out from one node, so
    /// its offsets are checkpointed once).
    scans: BTreeMap<String, usize>,
    sources: Vec<Arc<SourceDef>>,
    /// EMIT ON WINDOW CLOSE: window aggregates emit once per window, append-only.
    emit_on_window_close: bool,
    options: PlanOptions,
    /// The aggregates planned so far, for [`shared`] (when the options allow it).
    aggregates: Vec<shared::Planned>,
    /// Window aggregates planned.
    windows: usize,
    /// The window (by address) a top-N filter above it is planning, and its N (see `rank`).
    top_n: Option<(usize, usize)>,
    /// Whether the sub-plan being planned should keep its stream key in hidden columns
    /// ([`hidden`]): under the result and join inputs, not under aggregates and the like.
    keep_hidden: bool,
    /// Hidden columns named so far (their names are numbered, so never collide).
    hidden_names: usize,
}

/// A planned sub-plan: the node producing its rows, their logical schema (without
/// `_retract`), whether they update, their stream key (`None`: dropped by a projection) and
/// how many of the schema's last columns are hidden (not in the logical plan's schema).
#[derive(Clone)]
struct Out {
    node: usize,
    schema: DFSchemaRef,
    updating: bool,
    key: Option<Vec<usize>>,
    hidden: usize,
}

impl Out {
    fn arrow(&self) -> SchemaRef {
        with_retract(&Arc::new(self.schema.as_arrow().clone()), self.updating)
    }
}

impl Planner<'_> {
    /// Adds the nodes computing `plan`; its rows may end in hidden key columns.
    fn walk_keyed(&mut self, plan: &LogicalPlan) -> Result<Out, SqlError> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return Err(refused("LIMIT", "a stream has no end to limit"));
                }
                let provider = datafusion::datasource::source_as_provider(&scan.source)?;
                let Some(table) = provider.downcast_ref::<TopicTable>() else {
                    return Err(SqlError::unsupported(format!(
                        "{} is not a source or materialized view: {SUPPORTED}",
                        scan.table_name
                    )));
                };
                let def = table.def().clone();
                // A table's changes update its rows, keyed by its primary key; so do an
                // updating view's, whose topic is the same kind of changelog (upserts by the
                // view's key, tombstones for deleted rows, compacted).
                let (source, updating, key) =
                    if def.kind == ObjectKind::Table || def.upsert_key.is_some() {
                        let width = def.payload.fields().len();
                        if def.upsert_key.iter().flatten().any(|&k| k >= width) {
                            return Err(SqlError::unsupported(format!(
                                "{} is keyed by columns it does not show (its rows are told \
                                 apart by a hidden key), so a continuous query cannot follow \
                                 its changes: select its key columns in its query (the GROUP \
                                 BY columns; a join's keys) and create it again, or query the \
                                 sources it reads",
                                def.name
                            )));
                        }
                        let node = self.table_changes(&def)?;
                        (node, true, def.upsert_key.clone().unwrap_or_default())
                    } else {
                        (self.source(&def)?, false, Vec::new())
                    };
                let full = with_retract(&def.schema, updating);
                let mut node = source;
                let mut out_key = Some(key.clone());
                if let Some(indices) = &scan.projection {
                    let exprs = indices
                        .iter()
                        .map(|&i| {
                            let f = full.field(i);
                            Ok(
                                Arc::new(datafusion::physical_expr::expressions::Column::new(
                                    f.name(),
                                    i,
                                )) as Arc<dyn PhysicalExpr>,
                            )
                        })
                        .collect::<Result<Vec<_>, SqlError>>()?;
                    node = self.map(source, full, exprs, None, updating, key.clone());
                    out_key = key
                        .iter()
                        .map(|k| indices.iter().position(|i| i == k))
                        .collect();
                }
                let schema = scan.projected_schema.clone();
                let out = Out {
                    node,
                    schema: schema.clone(),
                    updating,
                    key: out_key,
                    hidden: 0,
                };
                if scan.filters.is_empty() {
                    return Ok(out);
                }
                let predicate = scan
                    .filters
                    .iter()
                    .cloned()
                    .reduce(Expr::and)
                    .map(|p| self.state.create_physical_expr(p, &schema))
                    .transpose()?;
                let exprs = identity(&schema);
                let arrow = out.arrow();
                let key = out.key.clone().unwrap_or_default();
                Ok(Out {
                    node: self.map(node, arrow, exprs, predicate, updating, key),
                    ..out
                })
            }
            LogicalPlan::Projection(p) => {
                // A filter right below is fused into the same Map (filter first, as MapOp runs).
                let (input, predicate) = match p.input.as_ref() {
                    LogicalPlan::Filter(f) if !rank::is_ranked(f) => (
                        f.input.as_ref(),
                        Some(
                            self.state
                                .create_physical_expr(f.predicate.clone(), f.input.schema())?,
                        ),
                    ),
                    other => (other, None),
                };
                let child = self.walk_keyed(input)?;
                let mut exprs = p
                    .expr
                    .iter()
                    .map(|e| self.state.create_physical_expr(e.clone(), p.input.schema()))
                    .collect::<Result<Vec<_>, _>>()?;
                // The key survives where each key column is projected as it is.
                let key = child.key.as_ref().and_then(|key| {
                    key.iter()
                        .map(|&k| {
                            p.expr.iter().position(|e| {
                                matches!(e.clone().unalias(), Expr::Column(c)
                                    if p.input.schema().index_of_column(&c).ok() == Some(k))
                            })
                        })
                        .collect::<Option<Vec<usize>>>()
                });
                // An updating result keeps the key columns it does not select, hidden.
                let (key, hidden) = match key {
                    None if child.updating && self.keep_hidden => {
                        self.hide_key(&child, &p.expr, p.input.schema(), &mut exprs)
                    }
                    key => (key, Vec::new()),
                };
                let node = self.map(
                    child.node,
                    child.arrow(),
                    exprs,
                    predicate,
                    child.updating,
                    child.key.clone().unwrap_or_default(),
                );
                Ok(Out {
                    node,
                    schema: hidden::append(&p.schema, hidden.clone())?,
                    updating: child.updating,
                    key,
                    hidden: hidden.len(),
                })
            }
            LogicalPlan::Filter(f) => {
                if let Some(out) = self.top_n_filter(f)? {
                    return Ok(out);
                }
                let child = self.walk_keyed(&f.input)?;
                let predicate = self
                    .state
                    .create_physical_expr(f.predicate.clone(), f.input.schema())?;
                let exprs = identity(&child.schema);
                let node = self.map(
                    child.node,
                    child.arrow(),
                    exprs,
                    Some(predicate),
                    child.updating,
                    child.key.clone().unwrap_or_default(),
                );
                Ok(Out { node, ..child })
            }
            LogicalPlan::SubqueryAlias(a) => {
                let child = self.walk_keyed(&a.input)?;
                Ok(Out {
                    schema: hidden::append(&a.schema, hidden::fields(&child))?,
                    ..child
                })
            }
            LogicalPlan::Union(u) => self.union(u),
            LogicalPlan::Aggregate(a) => self.aggregate(a),
            LogicalPlan::Join(j) => self.join(j),
            LogicalPlan::Window(w) => self.window(w),
            other => Err(refusal(other)),
        }
    }

    /// GROUP BY: a `WindowAggregate` when a group column is a window bound
    /// ([`window`]), else an `UpdatingAggregate`; keyed by its group columns.
    fn aggregate(&mut self, a: &Aggregate) -> Result<Out, SqlError> {
        if !self.options.shared_aggregates {
            return self.plan_aggregate(a);
        }
        let signature = shared::Signature::of(a);
        if let Some(out) = self.reuse(a, &signature)? {
            return Ok(out);
        }
        let out = self.plan_aggregate(a)?;
        self.aggregates.push(shared::Planned::new(signature, &out));
        Ok(out)
    }

    /// [`aggregate`](Self::aggregate), planned anew.
    fn plan_aggregate(&mut self, a: &Aggregate) -> Result<Out, SqlError> {
        // A HOP that slices into panes: the aggregate reads one branch of its union.
        let panes = if self.options.hop_panes {
            hop::panes(a)
        } else {
            None
        };
        let child = match &panes {
            Some(p) => self.walk(p.branch)?,
            None => self.walk(&a.input)?,
        };
        let (group, aggs) = self.aggregate_parts(a)?;
        let hop = panes.map(|p| p.spec);
        if let Some(out) = self.window_aggregate(a, &child, &group, &aggs, hop)? {
            return Ok(out);
        }
        if hop.is_some() {
            return Err(SqlError::Invalid(
                "internal: a HOP sliced into panes did not plan as a window aggregate".into(),
            ));
        }
        let expiry = self.key_expiry(&a.input, &a.group_expr);
        let node = self.graph.add(NodeSpec::UpdatingAggregate {
            group,
            aggs,
            expiry,
        });
        let arrow = child.arrow();
        let key = child.key.clone().unwrap_or_default();
        self.graph
            .connect_keyed(child.node, node, arrow, !child.updating, key);
        Ok(Out {
            node,
            schema: a.schema.clone(),
            updating: true,
            key: Some((0..a.group_expr.len()).collect()),
            hidden: 0,
        })
    }

    /// An aggregate's group expressions and aggregates, or the refusal of what the
    /// runtime's aggregates cannot compute.
    #[allow(clippy::type_complexity)]
    fn aggregate_parts(
        &self,
        a: &Aggregate,
    ) -> Result<(Vec<Arc<dyn PhysicalExpr>>, Vec<AggSpec>), SqlError> {
        let input = a.input.schema();
        let mut group = Vec::with_capacity(a.group_expr.len());
        for e in &a.group_expr {
            if matches!(e, Expr::GroupingSet(_)) {
                return Err(refused(
                    "GROUPING SETS, ROLLUP or CUBE",
                    "an updating aggregate has one grouping",
                ));
            }
            let t = e.get_type(input.as_ref())?;
            if !weir_stream::state::codec::supports(&t) {
                return Err(SqlError::unsupported(format!(
                    "GROUP BY {e}: its type {t} cannot be kept in a continuous query's state"
                )));
            }
            group.push(self.state.create_physical_expr(e.clone(), input)?);
        }
        let mut aggs = Vec::with_capacity(a.aggr_expr.len());
        for (i, e) in a.aggr_expr.iter().enumerate() {
            let Expr::AggregateFunction(f) = e.clone().unalias() else {
                return Err(SqlError::unsupported(format!(
                    "{e} is not an aggregate function call"
                )));
            };
            let name = f.func.name().to_lowercase();
            let params = &f.params;
            let kind = match (name.as_str(), params.distinct) {
                ("count", false) => AggKind::Count,
                ("count", true) => AggKind::CountDistinct,
                ("sum", false) => AggKind::Sum,
                ("avg" | "mean", false) => AggKind::Avg,
                ("min", _) => AggKind::Min,
                ("max", _) => AggKind::Max,
                _ => {
                    return Err(SqlError::unsupported(format!(
                        "{}{}() in a continuous query: updating aggregates compute count, \
                         sum, avg, min, max and count(DISTINCT), with FILTER",
                        name,
                        if params.distinct { " DISTINCT" } else { "" }
                    )))
                }
            };
            if !params.order_by.is_empty() {
                return Err(refused(
                    &format!("{name}(.. ORDER BY ..)"),
                    "an ordered aggregate over a stream",
                ));
            }
            let [arg] = params.args.as_slice() else {
                return Err(SqlError::unsupported(format!(
                    "{name}() with {} arguments in a continuous query",
                    params.args.len()
                )));
            };
            let input_type = arg.get_type(input.as_ref())?;
            let output = a.schema.field(a.group_expr.len() + i).data_type().clone();
            if !kind.supports(&input_type, &output) {
                return Err(SqlError::unsupported(format!(
                    "{name}() of {input_type} (giving {output}) is not supported by updating \
                     aggregates yet"
                )));
            }
            let filter = params
                .filter
                .as_ref()
                .map(|p| self.state.create_physical_expr(p.as_ref().clone(), input))
                .transpose()?;
            aggs.push(AggSpec {
                kind,
                arg: self.state.create_physical_expr(arg.clone(), input)?,
                filter,
                output,
            });
        }
        Ok((group, aggs))
    }

    /// The `Source` node of `def`, added on first use.
    fn source(&mut self, def: &Arc<SourceDef>) -> Result<usize, SqlError> {
        if let Some(&n) = self.scans.get(&def.name) {
            return Ok(n);
        }
        let startup = match def
            .create
            .options
            .get("scan.startup.mode")
            .map(|m| m.to_lowercase())
            .as_deref()
        {
            None | Some("earliest") => Startup::Earliest,
            Some("latest") => Startup::Latest,
            Some("timestamp") => {
                let ms = def.create.options.get("scan.startup.timestamp.millis");
                match ms.and_then(|ms| ms.parse::<i64>().ok()) {
                    Some(ms) => Startup::Timestamp(ms),
                    // CREATE SOURCE checked it; a definition stored otherwise says why.
                    None => {
                        return Err(SqlError::Invalid(format!(
                            "source {}: scan.startup.mode = 'timestamp' needs \
                             scan.startup.timestamp.millis (milliseconds since the epoch)",
                            def.name
                        )))
                    }
                }
            }
            Some(other) => {
                return Err(SqlError::Invalid(format!(
                    "source {}: scan.startup.mode {other:?}: earliest, latest or timestamp",
                    def.name
                )))
            }
        };
        // Checked now, so the factory below cannot fail when the pipeline starts.
        SqlDecoder::new(def.clone())?;
        let factory_def = def.clone();
        let decoder: weir_stream::graph::DecoderFactory = Arc::new(move || {
            match SqlDecoder::new(factory_def.clone()) {
                Ok(d) => Box::new(d) as Box<dyn weir_stream::format::SourceDecoder>,
                // Unreachable: the same definition built a decoder at planning.
                Err(e) => {
                    tracing::error!(error = %e, "source decoder");
                    Box::new(weir_stream::format::BytesDecoder::new())
                }
            }
        });
        let node = self.graph.add(NodeSpec::Source(SourceSpec {
            topic: def.topic.clone(),
            decoder,
            startup,
            watermark: window::watermark_spec(def)?,
            dead_letter: dead_letter_topic(def),
            dedup: def.dedup_spec()?,
        }));
        self.scans.insert(def.name.clone(), node);
        self.sources.push(def.clone());
        Ok(node)
    }

    /// A `Map` over `input` (whose rows have `input_schema`); its output schema is carried by
    /// the edge its consumer connects with. Over an updating input `_retract` passes through
    /// as the last column.
    fn map(
        &mut self,
        input: usize,
        input_schema: SchemaRef,
        mut exprs: Vec<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        updating: bool,
        key: Vec<usize>,
    ) -> usize {
        if updating {
            let last = input_schema.fields().len().saturating_sub(1);
            exprs.push(Arc::new(
                datafusion::physical_expr::expressions::Column::new(RETRACT, last),
            ));
        }
        let node = self.graph.add(NodeSpec::Map { exprs, filter });
        self.graph
            .connect_keyed(input, node, input_schema, !updating, key);
        node
    }
}

fn identity(schema: &DFSchemaRef) -> Vec<Arc<dyn PhysicalExpr>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Arc::new(datafusion::physical_expr::expressions::Column::new(
                f.name(),
                i,
            )) as Arc<dyn PhysicalExpr>
        })
        .collect()
}

fn refused(what: &str, why: &str) -> SqlError {
    SqlError::unsupported(format!(
        "{what} is not supported in a continuous query ({why}); {SUPPORTED}"
    ))
}

/// The refusal of a plan node the runtime has no operator for (§5.5).
fn refusal(plan: &LogicalPlan) -> SqlError {
    let (what, why) = match plan {
        LogicalPlan::Distinct(_) => ("DISTINCT", "updating aggregates come in a later increment"),
        LogicalPlan::Sort(_) => ("ORDER BY (Sort)", "a stream has no end to sort"),
        LogicalPlan::Limit(_) => ("LIMIT", "a stream has no end to limit"),
        LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => (
            "a query without a source (VALUES or no FROM)",
            "a continuous query reads at least one source",
        ),
        LogicalPlan::Unnest(_) => ("UNNEST", "not supported by the streaming runtime yet"),
        LogicalPlan::RecursiveQuery(_) => ("WITH RECURSIVE", "recursion over a stream"),
        LogicalPlan::Subquery(_) => (
            "a subquery that does not decorrelate",
            "it needs a join the runtime does not have yet",
        ),
        other => {
            return SqlError::unsupported(format!(
                "{} is not supported in a continuous query; {SUPPORTED}",
                other.display()
            ))
        }
    };
    refused(what, why)
}
