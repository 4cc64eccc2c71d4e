//! The stream graph: the contract between the planner, which builds it from a SQL plan, and
//! the runtime, which runs it. Nodes are operators; every edge carries the schema of its rows,
//! whether it is append-only, its stream key and its watermark column.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow_schema::SchemaRef;
use datafusion_physical_expr::PhysicalExpr;

use crate::error::StreamError;
use crate::format::{SinkEncoder, SourceDecoder};

/// Makes a fresh decoder (one per source, per run of the pipeline).
pub type DecoderFactory = Arc<dyn Fn() -> Box<dyn SourceDecoder> + Send + Sync>;
/// Makes a fresh encoder (one per sink, per run of the pipeline).
pub type EncoderFactory = Arc<dyn Fn() -> Box<dyn SinkEncoder> + Send + Sync>;

/// Where a source starts when no checkpoint holds its offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    Earliest,
    Latest,
}

/// Event time and watermarks of a source (§6): per partition, the largest event time seen
/// minus `delay_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkSpec {
    /// The decoded column holding event time (BIGINT milliseconds or TIMESTAMP(ms)).
    pub column: usize,
    pub delay_ms: i64,
    /// A caught-up partition with no record for this long leaves the minimum.
    pub idle_timeout: Duration,
}

#[derive(Clone)]
pub struct SourceSpec {
    pub topic: String,
    pub decoder: DecoderFactory,
    pub startup: Startup,
    pub watermark: Option<WatermarkSpec>,
    /// The topic records that do not decode go to, in the epoch's transaction (same
    /// partition, modulo its count); `None`: they are only counted.
    pub dead_letter: Option<String>,
}

#[derive(Clone)]
pub struct SinkSpec {
    pub topic: String,
    pub encoder: EncoderFactory,
}

/// An operator. Only `Source`, `Map`, `Union` and `Sink` run today; the planner's other nodes
/// (windows, aggregates, joins, TopN, sessions, views) join this enum as they are built.
#[derive(Clone)]
pub enum NodeSpec {
    Source(SourceSpec),
    /// Keeps the rows for which `filter` is true, then evaluates `exprs` over the input's
    /// columns (DataFusion's physical expressions: a fused `Projection(Filter(..))`).
    Map {
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
    },
    /// Merges its inputs (UNION ALL); the watermark is their minimum.
    Union,
    Sink(SinkSpec),
}

impl NodeSpec {
    fn name(&self) -> &'static str {
        match self {
            NodeSpec::Source(_) => "Source",
            NodeSpec::Map { .. } => "Map",
            NodeSpec::Union => "Union",
            NodeSpec::Sink(_) => "Sink",
        }
    }
}

impl fmt::Debug for NodeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSpec::Source(s) => write!(f, "Source({})", s.topic),
            NodeSpec::Map { exprs, filter } => {
                write!(f, "Map(")?;
                for (i, e) in exprs.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                match filter {
                    Some(p) => write!(f, " WHERE {p})"),
                    None => write!(f, ")"),
                }
            }
            NodeSpec::Union => write!(f, "Union"),
            NodeSpec::Sink(s) => write!(f, "Sink({})", s.topic),
        }
    }
}

/// An edge from `from`'s output to input `port` of `to`.
#[derive(Clone, Debug)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub port: usize,
    pub schema: SchemaRef,
    pub append_only: bool,
    pub stream_key: Vec<usize>,
    pub watermark_col: Option<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<NodeSpec>,
    pub edges: Vec<Edge>,
}

impl Graph {
    pub fn add(&mut self, node: NodeSpec) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Connects `from` to the next free input of `to`, append-only, with no stream key.
    pub fn connect(&mut self, from: usize, to: usize, schema: SchemaRef) {
        let port = self.edges.iter().filter(|e| e.to == to).count();
        self.edges.push(Edge {
            from,
            to,
            port,
            schema,
            append_only: true,
            stream_key: Vec::new(),
            watermark_col: None,
        });
    }

    pub fn inputs(&self, node: usize) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.to == node)
    }

    pub fn outputs(&self, node: usize) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.from == node)
    }

    /// Checks the shape the runtime relies on: edges between existing nodes, input ports
    /// 0..n of each node, the arity of each operator, one schema per node's output, no
    /// updating edge (no operator consumes retractions yet), no cycle.
    pub fn validate(&self) -> Result<(), StreamError> {
        let bad = |m: String| Err(StreamError::Graph(m));
        for e in &self.edges {
            if e.from >= self.nodes.len() || e.to >= self.nodes.len() {
                return bad(format!("edge {} -> {} names a missing node", e.from, e.to));
            }
            if !e.append_only {
                return bad(format!(
                    "edge {} -> {}: updating edges are not supported yet",
                    e.from, e.to
                ));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let mut ports: Vec<usize> = self.inputs(i).map(|e| e.port).collect();
            ports.sort_unstable();
            if ports.iter().enumerate().any(|(n, p)| n != *p) {
                return bad(format!(
                    "node {i} ({}): input ports {ports:?} are not 0..n",
                    node.name()
                ));
            }
            let (ins, outs) = (ports.len(), self.outputs(i).count());
            let ok = match node {
                NodeSpec::Source(_) => ins == 0 && outs > 0,
                NodeSpec::Map { .. } => ins == 1 && outs > 0,
                NodeSpec::Union => ins >= 1 && outs > 0,
                NodeSpec::Sink(_) => ins == 1 && outs == 0,
            };
            if !ok {
                return bad(format!(
                    "node {i} ({}) has {ins} inputs and {outs} outputs",
                    node.name()
                ));
            }
            let mut schemas = self.outputs(i).map(|e| &e.schema);
            if let Some(first) = schemas.next() {
                if schemas.any(|s| s != first) {
                    return bad(format!(
                        "node {i} ({}): its outputs differ in schema",
                        node.name()
                    ));
                }
            }
            if let NodeSpec::Map { exprs, .. } = node {
                let width = self
                    .outputs(i)
                    .next()
                    .map_or(0, |e| e.schema.fields().len());
                if width != exprs.len() {
                    return bad(format!(
                        "node {i} (Map): {} expressions for {width} columns",
                        exprs.len()
                    ));
                }
            }
        }
        self.topological_order().map(|_| ())
    }

    /// Nodes in an order where every edge goes forward.
    pub fn topological_order(&self) -> Result<Vec<usize>, StreamError> {
        let mut indegree: Vec<usize> = (0..self.nodes.len())
            .map(|i| self.inputs(i).count())
            .collect();
        let mut ready: Vec<usize> = (0..self.nodes.len())
            .filter(|i| indegree.get(*i) == Some(&0))
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(n) = ready.pop() {
            order.push(n);
            for e in self.outputs(n) {
                if let Some(d) = indegree.get_mut(e.to) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(e.to);
                    }
                }
            }
        }
        if order.len() != self.nodes.len() {
            return Err(StreamError::Graph("the graph has a cycle".into()));
        }
        Ok(order)
    }
}
