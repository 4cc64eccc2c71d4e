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
pub use crate::ops::accumulators::AggKind;
pub use crate::ops::interval_join::{SideBounds, TimeBound};
pub use crate::ops::join::{JoinExpiry, JoinKind, JoinTimeBounds};
pub use crate::source::dedup::DedupSpec;
pub use crate::state::expiry::KeyExpiry;

/// The changelog column of an updating edge (§6): the last column, true for a retracted
/// row, false for an inserted one. Append-only edges have no such column.
pub const RETRACT: &str = "_retract";

/// Makes a fresh decoder (one per source, per run of the pipeline).
pub type DecoderFactory = Arc<dyn Fn() -> Box<dyn SourceDecoder> + Send + Sync>;
/// Makes a fresh encoder (one per sink, per run of the pipeline).
pub type EncoderFactory = Arc<dyn Fn() -> Box<dyn SinkEncoder> + Send + Sync>;

/// Where a source starts when no checkpoint holds its offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    Earliest,
    Latest,
    /// The first record whose timestamp is at least this many milliseconds since the
    /// epoch (Kafka's `ListOffsets` by time); the log end where none is.
    Timestamp(i64),
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
    /// `dedup.key` / `dedup.within`: duplicates dropped before the first operator.
    pub dedup: Option<DedupSpec>,
}

#[derive(Clone)]
pub struct SinkSpec {
    pub topic: String,
    pub encoder: EncoderFactory,
    /// The encoder writes upserts by key (a tombstone for a delete): the epoch's records are
    /// collapsed to the last per key and appended at the barrier (§6), so a hot key costs
    /// one record per checkpoint.
    pub upsert: bool,
}

/// One aggregate of an [`NodeSpec::UpdatingAggregate`].
#[derive(Clone)]
pub struct AggSpec {
    pub kind: AggKind,
    /// The argument, over the input's columns (`count(*)` counts a constant).
    pub arg: Arc<dyn PhysicalExpr>,
    /// `FILTER (WHERE ..)`: only rows where it is true reach the aggregate.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The result's type (DataFusion's for this aggregate).
    pub output: arrow_schema::DataType,
}

impl fmt::Debug for AggSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.kind.name(), self.arg)?;
        if let Some(p) = &self.filter {
            write!(f, " FILTER (WHERE {p})")?;
        }
        write!(f, ": {}", self.output)
    }
}

/// How a [`NodeSpec::WindowAggregate`] finds each group's window and emits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// The group column holding a window bound (a timestamp).
    pub end_column: usize,
    /// Added to that column's value (in microseconds) gives the window's end: the window's
    /// size for `window_start`, 0 for `window_end`.
    pub end_offset_us: i64,
    /// EMIT ON WINDOW CLOSE: one append-only row per group when the watermark passes the
    /// window's end; otherwise updating rows as input arrives.
    pub emit_on_close: bool,
    /// HOP sliced into panes: the input holds each row once, in its latest window, and the
    /// operator keeps a group per pane of the slide (`ops::hop`). `None`: each input row's
    /// group columns name its one window (TUMBLE, or HOP's rows once per window).
    pub hop: Option<HopSpec>,
}

/// A hopping window sliced into panes ([`WindowSpec::hop`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HopSpec {
    /// The slide in microseconds: a pane's length, and the step between windows.
    pub slide_us: i64,
    /// Panes per window (size / slide, at least 2).
    pub panes: u32,
    /// The group columns holding a window bound (bit i: group column i), shifted by a
    /// multiple of the slide from a pane's latest window to each of its windows.
    pub columns: u64,
}

/// The derived form, with `hop` only when set: a TUMBLE's spec prints as it always has, so
/// the state layouts and fingerprints of pipelines created before panes are unchanged.
impl fmt::Debug for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WindowSpec");
        d.field("end_column", &self.end_column)
            .field("end_offset_us", &self.end_offset_us)
            .field("emit_on_close", &self.emit_on_close);
        if let Some(h) = &self.hop {
            d.field("hop", h);
        }
        d.finish()
    }
}

/// How a [`NodeSpec::SessionAggregate`] finds a row's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// The group column holding `window_start` (per row, its event time), if grouped by.
    pub start_column: Option<usize>,
    /// The group column holding `window_end` (per row, its event time + gap), if grouped by.
    pub end_column: Option<usize>,
    /// A session ends `gap` after its last row.
    pub gap_us: i64,
}

/// An operator: every variant runs (`runtime/node.rs` makes each the operator it names).
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
    /// GROUP BY `group` (expressions over the input's columns) computing `aggs`; its output
    /// is the group columns, then the aggregates, then `_retract`, keyed by the group columns.
    UpdatingAggregate {
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        /// A group column holding a window bound (over an updating window aggregate, as
        /// Nexmark q5's maximum per window): a group is freed once the watermark passes
        /// its window's end.
        expiry: Option<KeyExpiry>,
    },
    /// GROUP BY with a window bound among `group` (TUMBLE, HOP): like `UpdatingAggregate`,
    /// but each group's state is freed when the watermark passes its window's end; its
    /// output is append-only when `window.emit_on_close`, else updating (`_retract` last).
    WindowAggregate {
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        window: WindowSpec,
    },
    /// GROUP BY the key columns and bounds of SESSION windows: sessions per key, merged
    /// when a row bridges them, each emitted once (append-only) when the watermark passes
    /// its end, then freed.
    SessionAggregate {
        group: Vec<Arc<dyn PhysicalExpr>>,
        aggs: Vec<AggSpec>,
        session: SessionSpec,
    },
    /// An equi-join of input 0 (left) and input 1 (right): rows whose `keys` (per side, over
    /// that side's columns) are equal and non-NULL, and for which `filter` (over `left ++
    /// right`) is true; its output is `left ++ right` (`++ _retract` when updating).
    Join {
        kind: JoinKind,
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
        filter: Option<Arc<dyn PhysicalExpr>>,
        /// Both inputs windowed on a join key: a window's rows are freed once the
        /// watermark passes its end.
        expiry: Option<JoinExpiry>,
        /// An inner join whose residual bounds each side's time by the other side's row
        /// (Nexmark q7): a row is freed once no later row can match or retract it.
        bounds: Option<JoinTimeBounds>,
    },
    /// An inner equi-join of two append-only inputs with event times (`time`: a column per
    /// side, the one its watermark is on) where each side's time lies within the bounds the
    /// other side's row puts on it (`bounds`, per side: constant offsets of its own time, as
    /// `l.t + a <= r.t <= l.t + b`, or other columns of its row, as Nexmark q4's
    /// `B.date_time BETWEEN A.date_time AND A.expires`); append-only output `left ++ right`;
    /// each input's watermark frees the other side's rows past their upper bound (§6,
    /// interval join).
    IntervalJoin {
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
        time: [usize; 2],
        bounds: [SideBounds; 2],
        filter: Option<Arc<dyn PhysicalExpr>>,
    },
    /// `row_number() OVER (PARTITION BY partition ORDER BY order) <= limit`: the input's
    /// columns, then the rank (`UInt64`, from 1), then `_retract`: its output always updates.
    TopN {
        partition: Vec<Arc<dyn PhysicalExpr>>,
        order: Vec<(Arc<dyn PhysicalExpr>, arrow_schema::SortOptions)>,
        limit: usize,
        /// A partition column holding a window bound (deduplication per key and window): a
        /// partition is freed once the watermark passes its window's end.
        expiry: Option<KeyExpiry>,
    },
    /// Appends `_row_id BIGINT` to each row of its append-only input: a number unique
    /// among the rows it has seen, checkpointed, the stream key of an append-only input
    /// that an updating operator needs ([`crate::ops::row_id`]).
    RowId,
    Sink(SinkSpec),
}

impl NodeSpec {
    fn name(&self) -> &'static str {
        match self {
            NodeSpec::Source(_) => "Source",
            NodeSpec::Map { .. } => "Map",
            NodeSpec::Union => "Union",
            NodeSpec::UpdatingAggregate { .. } => "UpdatingAggregate",
            NodeSpec::WindowAggregate { .. } => "WindowAggregate",
            NodeSpec::SessionAggregate { .. } => "SessionAggregate",
            NodeSpec::Join { .. } => "Join",
            NodeSpec::TopN { .. } => "TopN",
            NodeSpec::IntervalJoin { .. } => "IntervalJoin",
            NodeSpec::RowId => "RowId",
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
            NodeSpec::UpdatingAggregate {
                group,
                aggs,
                expiry,
            } => {
                write!(f, "UpdatingAggregate(group=[")?;
                for (i, e) in group.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "], aggs={aggs:?}")?;
                if let Some(e) = expiry {
                    write!(
                        f,
                        ", windows end at group {} + {}us",
                        e.column, e.end_offset_us
                    )?;
                }
                write!(f, ")")
            }
            NodeSpec::WindowAggregate {
                group,
                aggs,
                window,
            } => {
                write!(f, "WindowAggregate(group=[")?;
                for (i, e) in group.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                write!(
                    f,
                    "], aggs={aggs:?}, end=group {} + {}us, ",
                    window.end_column, window.end_offset_us,
                )?;
                if let Some(h) = &window.hop {
                    write!(f, "{} panes of {}us, ", h.panes, h.slide_us)?;
                }
                let emit = if window.emit_on_close {
                    "emit on window close"
                } else {
                    "updating"
                };
                write!(f, "{emit})")
            }
            NodeSpec::SessionAggregate {
                group,
                aggs,
                session,
            } => {
                write!(f, "SessionAggregate(group=[")?;
                for (i, e) in group.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                write!(
                    f,
                    "], aggs={aggs:?}, start={:?}, end={:?}, gap={}us, emit on window close)",
                    session.start_column, session.end_column, session.gap_us
                )
            }
            NodeSpec::Join {
                kind,
                keys,
                filter,
                expiry,
                bounds,
            } => {
                write!(f, "Join({} on [", kind.name())?;
                for (i, (l, r)) in keys[0].iter().zip(&keys[1]).enumerate() {
                    write!(f, "{}{l} = {r}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "]")?;
                if let Some(p) = filter {
                    write!(f, " filter {p}")?;
                }
                if let Some(e) = expiry {
                    write!(
                        f,
                        ", windows end at columns {:?} + {}us",
                        e.columns, e.end_offset_us
                    )?;
                }
                if let Some(b) = bounds {
                    write!(
                        f,
                        ", rows freed by time: columns {:?} lag {:?} ms, upper bounds {:?}",
                        b.time, b.lag_ms, b.upper
                    )?;
                }
                write!(f, ")")
            }
            NodeSpec::IntervalJoin {
                keys,
                time,
                bounds,
                filter,
            } => {
                write!(f, "IntervalJoin(on [")?;
                for (i, (l, r)) in keys[0].iter().zip(&keys[1]).enumerate() {
                    write!(f, "{}{l} = {r}", if i > 0 { ", " } else { "" })?;
                }
                match SideBounds::as_constant(bounds, *time) {
                    Some((lo, hi)) => {
                        write!(f, "] r.#{} - l.#{} in [{lo}, {hi}] ms", time[1], time[0])?
                    }
                    None => {
                        // Row-dependent: per side, the range its rows put on the other's time.
                        write!(f, "]")?;
                        for (side, (name, other)) in [("l", "r"), ("r", "l")].iter().enumerate() {
                            let b = &bounds[side];
                            let list = |v: &[TimeBound]| {
                                v.iter()
                                    .map(|t| format!("{name}.#{} + {}", t.column, t.offset_ms))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            };
                            write!(
                                f,
                                " {other}.#{} in [max({}), min({})] ms",
                                time[1 - side],
                                list(&b.lower),
                                list(&b.upper)
                            )?;
                        }
                    }
                }
                match filter {
                    Some(p) => write!(f, " filter {p})"),
                    None => write!(f, ")"),
                }
            }
            NodeSpec::TopN {
                partition,
                order,
                limit,
                expiry,
            } => {
                write!(f, "TopN({limit} per [")?;
                for (i, e) in partition.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "] by [")?;
                for (i, (e, o)) in order.iter().enumerate() {
                    let dir = if o.descending { "DESC" } else { "ASC" };
                    let nulls = if o.nulls_first { "FIRST" } else { "LAST" };
                    write!(
                        f,
                        "{}{e} {dir} NULLS {nulls}",
                        if i > 0 { ", " } else { "" }
                    )?;
                }
                write!(f, "]")?;
                if let Some(e) = expiry {
                    let c = e.column;
                    write!(f, ", windows end at partition {c} + {}us", e.end_offset_us)?;
                }
                write!(f, ")")
            }
            NodeSpec::RowId => write!(f, "RowId"),
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
    /// The opt-in idle-state TTL (`streaming.state_ttl`), in ms of [`state_ttl_time`]:
    /// updating aggregates, regular joins and top-N drop a key not written for that long
    /// ([`crate::state::expiry`]); their results may then differ from the batch query.
    ///
    /// [`state_ttl_time`]: Graph::state_ttl_time
    pub state_ttl_ms: Option<i64>,
    /// The clock of the TTL: the watermark, or the wall clock for a pipeline without one.
    pub state_ttl_time: TtlTime,
}

/// What measures an idle-state TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TtlTime {
    /// The watermark reaching each operator: a replay expires the same keys at the same
    /// points of the input as the live run.
    #[default]
    Event,
    /// The wall clock, read at each checkpoint (Flink's `table.exec.state.ttl`), for a
    /// pipeline whose sources declare no watermark: which keys expire depends on when rows
    /// arrive, and a restart gives restored keys the whole TTL again.
    Processing,
}

impl Graph {
    pub fn add(&mut self, node: NodeSpec) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Connects `from` to the next free input of `to`, append-only, with no stream key.
    pub fn connect(&mut self, from: usize, to: usize, schema: SchemaRef) {
        self.connect_keyed(from, to, schema, true, Vec::new());
    }

    /// Connects `from` to the next free input of `to`; an updating edge's schema ends with
    /// `_retract`.
    pub fn connect_keyed(
        &mut self,
        from: usize,
        to: usize,
        schema: SchemaRef,
        append_only: bool,
        stream_key: Vec<usize>,
    ) {
        let port = self.edges.iter().filter(|e| e.to == to).count();
        self.edges.push(Edge {
            from,
            to,
            port,
            schema,
            append_only,
            stream_key,
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
    /// 0..n of each node, the arity of each operator, one schema per node's output, `_retract`
    /// last on every updating edge and only there, an aggregate's output updating, no cycle.
    pub fn validate(&self) -> Result<(), StreamError> {
        let bad = |m: String| Err(StreamError::Graph(m));
        for e in &self.edges {
            if e.from >= self.nodes.len() || e.to >= self.nodes.len() {
                return bad(format!("edge {} -> {} names a missing node", e.from, e.to));
            }
            let last = e.schema.fields().last();
            let has_retract = last.is_some_and(|f| {
                f.name() == RETRACT && f.data_type() == &arrow_schema::DataType::Boolean
            });
            if has_retract == e.append_only {
                return bad(format!(
                    "edge {} -> {}: {} edge {} _retract as its last column",
                    e.from,
                    e.to,
                    if e.append_only {
                        "an append-only"
                    } else {
                        "an updating"
                    },
                    if e.append_only { "with" } else { "without" },
                ));
            }
            if e.stream_key.iter().any(|k| *k >= e.schema.fields().len()) {
                return bad(format!(
                    "edge {} -> {}: stream key out of range",
                    e.from, e.to
                ));
            }
            if matches!(
                self.nodes.get(e.from),
                Some(NodeSpec::UpdatingAggregate { .. } | NodeSpec::TopN { .. })
            ) && e.append_only
            {
                return bad(format!(
                    "edge {} -> {}: an aggregate's output updates",
                    e.from, e.to
                ));
            }
            if matches!(
                self.nodes.get(e.to),
                Some(NodeSpec::WindowAggregate { .. } | NodeSpec::SessionAggregate { .. })
            ) && !e.append_only
            {
                return bad(format!(
                    "edge {} -> {}: a window or session aggregate takes an append-only input",
                    e.from, e.to
                ));
            }
            if matches!(
                self.nodes.get(e.from),
                Some(NodeSpec::SessionAggregate { .. })
            ) && !e.append_only
            {
                return bad(format!(
                    "edge {} -> {}: a session aggregate's output is append-only",
                    e.from, e.to
                ));
            }
            if let Some(NodeSpec::WindowAggregate { window, .. }) = self.nodes.get(e.from) {
                if window.emit_on_close != e.append_only {
                    return bad(format!(
                        "edge {} -> {}: a window aggregate's output is append-only exactly \
                         when it emits on window close",
                        e.from, e.to
                    ));
                }
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
                NodeSpec::UpdatingAggregate { .. } => ins == 1 && outs > 0,
                NodeSpec::WindowAggregate { .. } => ins == 1 && outs > 0,
                NodeSpec::SessionAggregate { .. } => ins == 1 && outs > 0,
                NodeSpec::Join { .. } | NodeSpec::IntervalJoin { .. } => ins == 2 && outs > 0,
                NodeSpec::TopN { .. } | NodeSpec::RowId => ins == 1 && outs > 0,
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

    /// The graph as `EXPLAIN` prints it (§5.4): a line per node in topological order with
    /// its operator, then a line per output edge with its columns, whether it is append-only
    /// or updating, and its stream key.
    pub fn explain(&self) -> Vec<String> {
        let order = self
            .topological_order()
            .unwrap_or_else(|_| (0..self.nodes.len()).collect());
        let mut out = Vec::new();
        for i in order {
            let Some(node) = self.nodes.get(i) else {
                continue;
            };
            let state = match node {
                NodeSpec::UpdatingAggregate {
                    expiry: Some(_), ..
                } => {
                    " [state: per group, freed when its last row is retracted or the watermark passes its window's end]"
                }
                NodeSpec::UpdatingAggregate { .. } => {
                    " [state: per group, freed when its last row is retracted]"
                }
                NodeSpec::WindowAggregate {
                    window: WindowSpec { hop: Some(_), .. },
                    ..
                } => {
                    " [state: per pane of the slide and group, freed when the watermark passes the end of its last window]"
                }
                NodeSpec::WindowAggregate { .. } => {
                    " [state: per window and group, freed when the watermark passes the window's end]"
                }
                NodeSpec::SessionAggregate { .. } => {
                    " [state: open sessions per key with their rows, freed when the watermark passes last + gap]"
                }
                NodeSpec::Join {
                    expiry: Some(_), ..
                } => {
                    " [state: both sides' rows by join key, freed when retracted or when the watermark passes their window's end]"
                }
                NodeSpec::Join {
                    bounds: Some(_), ..
                } => {
                    " [state: both sides' rows by join key, each freed when the watermark shows no later row can match or retract it]"
                }
                NodeSpec::Join { kind, .. } if kind.only().is_some() => {
                    " [state: both sides' live rows by join key, the kept side's with their match counts, freed when retracted]"
                }
                NodeSpec::Join { .. } => {
                    " [state: both sides' live rows by join key, freed when retracted]"
                }
                NodeSpec::RowId => " [state: the next number]",
                NodeSpec::IntervalJoin { .. } => {
                    " [state: both sides' rows, freed as the other side's watermark passes them]"
                }
                NodeSpec::TopN {
                    expiry: Some(_), ..
                } => {
                    " [state: per partition its N first rows (all rows if the input updates), freed when the watermark passes its window's end]"
                }
                NodeSpec::TopN { .. } => {
                    " [state: per partition its N first rows (all rows if the input updates)]"
                }
                _ => "",
            };
            out.push(format!("{i}: {node:?}{state}"));
            for e in self.outputs(i) {
                let columns: Vec<String> = e
                    .schema
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect();
                let key: Vec<&str> = e
                    .stream_key
                    .iter()
                    .filter_map(|k| e.schema.fields().get(*k).map(|f| f.name().as_str()))
                    .collect();
                out.push(format!(
                    "   -> {}.{}: {} key [{}] ({})",
                    e.to,
                    e.port,
                    if e.append_only {
                        "append-only"
                    } else {
                        "updating"
                    },
                    key.join(", "),
                    columns.join(", ")
                ));
            }
        }
        if let (Some(ttl), TtlTime::Processing) = (self.state_ttl_ms, self.state_ttl_time) {
            out.push(format!(
                "state TTL: {ttl} ms of processing time, read at each checkpoint (keys of \
                 updating aggregates, joins and top-N not written for that long are dropped)"
            ));
        } else if let Some(ttl) = self.state_ttl_ms {
            out.push(format!(
                "state TTL: {ttl} ms of event time (keys of updating aggregates, joins and \
                 top-N not written for that long are dropped)"
            ));
        }
        out
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
