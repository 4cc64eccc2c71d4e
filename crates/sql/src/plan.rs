//! From DataFusion's logical plan to the streaming runtime's [`Graph`] (design §4.3): the
//! optimized plan is walked bottom-up; scans of sources become `Source` nodes, chains of
//! `Projection`/`Filter` become `Map`s whose expressions are DataFusion's physical
//! expressions (so types, casts, CASE and every scalar function behave as in a batch query),
//! `UNION ALL` a `Union`. Anything else is refused here, at CREATE, with the plan node named
//! (§5.5): a pipeline never fails at run time for a construct it cannot run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchemaRef;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Volatility};
use datafusion::physical_expr::PhysicalExpr;
use weir_stream::graph::{SinkSpec, SourceSpec, Startup};
use weir_stream::{Graph, NodeSpec};

use crate::error::SqlError;
use crate::source::SourceDef;
use crate::stream_io::SqlDecoder;
use crate::table::TopicTable;

/// What the constructs a continuous query may use today, for refusals.
const SUPPORTED: &str = "continuous queries support projections, filters, scalar functions, \
     CASE, casts and UNION ALL over sources and materialized views";

/// A continuous query planned into a stream graph, its sink not yet attached.
pub struct StreamPlan {
    pub graph: Graph,
    /// The node whose output is the query's result.
    pub output: usize,
    /// The result's columns.
    pub schema: SchemaRef,
    /// Sources (and views) read, by name.
    pub reads: BTreeSet<String>,
    /// Each source read, for its dead-letter topic.
    pub sources: Vec<Arc<SourceDef>>,
}

impl StreamPlan {
    /// Attaches the sink the result is written to.
    pub fn with_sink(mut self, sink: SinkSpec) -> Graph {
        let node = self.graph.add(NodeSpec::Sink(sink));
        self.graph.connect(self.output, node, self.schema.clone());
        self.graph
    }
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
    for e in &graph.edges {
        text.push_str(&format!("|{}>{}:{}", e.from, e.to, e.port));
        for f in e.schema.fields() {
            text.push_str(&format!(",{} {}", f.name(), f.data_type()));
        }
    }
    // FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Plans `plan` (a query's logical plan, unoptimized) as a stream graph.
pub fn to_stream(state: &SessionState, plan: &LogicalPlan) -> Result<StreamPlan, SqlError> {
    refuse_unstable(plan)?;
    let optimized = state.optimize(plan)?;
    let mut planner = Planner {
        state,
        graph: Graph::default(),
        scans: BTreeMap::new(),
        sources: Vec::new(),
    };
    let (output, schema) = planner.walk(&optimized)?;
    Ok(StreamPlan {
        graph: planner.graph,
        output,
        schema: Arc::new(schema.as_arrow().clone()),
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

struct Planner<'a> {
    state: &'a SessionState,
    graph: Graph,
    /// One `Source` node per source read (a source read twice fans out from one node, so
    /// its offsets are checkpointed once).
    scans: BTreeMap<String, usize>,
    sources: Vec<Arc<SourceDef>>,
}

impl Planner<'_> {
    /// Adds the nodes computing `plan`; returns the node producing its rows and its schema.
    fn walk(&mut self, plan: &LogicalPlan) -> Result<(usize, DFSchemaRef), SqlError> {
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
                let source = self.source(&def)?;
                let full = def.schema.clone();
                let mut node = source;
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
                    node = self.map(source, full, exprs, None);
                }
                let schema = scan.projected_schema.clone();
                if scan.filters.is_empty() {
                    return Ok((node, schema));
                }
                let predicate = scan
                    .filters
                    .iter()
                    .cloned()
                    .reduce(Expr::and)
                    .map(|p| self.state.create_physical_expr(p, &schema))
                    .transpose()?;
                let exprs = identity(&schema);
                let arrow = Arc::new(schema.as_arrow().clone());
                Ok((self.map(node, arrow, exprs, predicate), schema))
            }
            LogicalPlan::Projection(p) => {
                // A filter right below is fused into the same Map (filter first, as MapOp runs).
                let (input, predicate) = match p.input.as_ref() {
                    LogicalPlan::Filter(f) => (
                        f.input.as_ref(),
                        Some(
                            self.state
                                .create_physical_expr(f.predicate.clone(), f.input.schema())?,
                        ),
                    ),
                    other => (other, None),
                };
                let (child, child_schema) = self.walk(input)?;
                let exprs = p
                    .expr
                    .iter()
                    .map(|e| self.state.create_physical_expr(e.clone(), p.input.schema()))
                    .collect::<Result<Vec<_>, _>>()?;
                let node = self.map(
                    child,
                    Arc::new(child_schema.as_arrow().clone()),
                    exprs,
                    predicate,
                );
                Ok((node, p.schema.clone()))
            }
            LogicalPlan::Filter(f) => {
                let (child, child_schema) = self.walk(&f.input)?;
                let predicate = self
                    .state
                    .create_physical_expr(f.predicate.clone(), f.input.schema())?;
                let arrow = Arc::new(child_schema.as_arrow().clone());
                let exprs = identity(&child_schema);
                Ok((self.map(child, arrow, exprs, Some(predicate)), child_schema))
            }
            LogicalPlan::SubqueryAlias(a) => {
                let (child, _) = self.walk(&a.input)?;
                Ok((child, a.schema.clone()))
            }
            LogicalPlan::Union(u) => {
                let out = Arc::new(u.schema.as_arrow().clone());
                let union = self.graph.add(NodeSpec::Union);
                for input in &u.inputs {
                    let (child, child_schema) = self.walk(input)?;
                    // Each branch is cast and renamed to the union's columns, so that every
                    // batch leaving the union has one schema.
                    let exprs = u
                        .schema
                        .fields()
                        .iter()
                        .zip(child_schema.columns())
                        .map(|(target, column)| {
                            let e = Expr::Column(column)
                                .cast_to(target.data_type(), child_schema.as_ref())?;
                            Ok(self.state.create_physical_expr(e, &child_schema)?)
                        })
                        .collect::<Result<Vec<_>, SqlError>>()?;
                    let branch = self.map(
                        child,
                        Arc::new(child_schema.as_arrow().clone()),
                        exprs,
                        None,
                    );
                    self.graph.connect(branch, union, out.clone());
                }
                Ok((union, u.schema.clone()))
            }
            other => Err(refusal(other)),
        }
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
            Some(other) => {
                return Err(SqlError::unsupported(format!(
                    "source {}: scan.startup.mode = '{other}' is not supported by continuous \
                     queries yet (earliest or latest)",
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
            watermark: None,
            dead_letter: dead_letter_topic(def),
        }));
        self.scans.insert(def.name.clone(), node);
        self.sources.push(def.clone());
        Ok(node)
    }

    /// A `Map` over `input` (whose rows have `input_schema`); its output schema is carried by
    /// the edge its consumer connects with.
    fn map(
        &mut self,
        input: usize,
        input_schema: SchemaRef,
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
    ) -> usize {
        let node = self.graph.add(NodeSpec::Map { exprs, filter });
        self.graph.connect(input, node, input_schema);
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
        LogicalPlan::Aggregate(_) => (
            "GROUP BY, DISTINCT or an aggregate function (Aggregate)",
            "updating aggregates come in a later increment",
        ),
        LogicalPlan::Distinct(_) => ("DISTINCT", "updating aggregates come in a later increment"),
        LogicalPlan::Join(_) => ("JOIN", "stream joins come in a later increment"),
        LogicalPlan::Sort(_) => ("ORDER BY (Sort)", "a stream has no end to sort"),
        LogicalPlan::Limit(_) => ("LIMIT", "a stream has no end to limit"),
        LogicalPlan::Window(_) => (
            "a window function (OVER)",
            "ROW_NUMBER top-N comes in a later increment",
        ),
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
