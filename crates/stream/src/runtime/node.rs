//! A running graph node: the operator a [`NodeSpec`](crate::graph::NodeSpec) becomes, how a
//! message on one of its inputs turns into messages on its outputs, and its state for
//! checkpoints and the memory budget. Sources and sinks are driven by the pipeline itself.

use arrow_schema::SchemaRef;

use crate::align::{Aligned, Aligner};
use crate::error::StreamError;
use crate::graph::{Graph, NodeSpec};
use crate::message::Message;
use crate::ops::aggregate::UpdatingAggregateOp;
use crate::ops::hop::HopAggregateOp;
use crate::ops::interval_join::IntervalJoinOp;
use crate::ops::join::JoinOp;
use crate::ops::map::MapOp;
use crate::ops::rank::TopNOp;
use crate::ops::row_id::RowIdOp;
use crate::ops::session::SessionAggregateOp;
use crate::ops::window::WindowAggregateOp;
use crate::sink::SinkOp;
use crate::source::dedup::Dedup;
use crate::state::expiry::Expiry;
use crate::state::Stateful;

pub(super) enum Node {
    /// Run by the pipeline; its deduplication, if it declares one, is its state.
    Source(Option<Box<Dedup>>),
    Map(MapOp),
    Union(Aligner),
    Aggregate(Box<UpdatingAggregateOp>),
    Window(Box<WindowAggregateOp>),
    /// A HOP window aggregate sliced into panes.
    Hop(Box<HopAggregateOp>),
    Session(Box<SessionAggregateOp>),
    /// The join and the alignment of its two inputs' barriers and watermarks.
    Join(Box<JoinOp>, Aligner),
    TopN(Box<TopNOp>),
    IntervalJoin(Box<IntervalJoinOp>, Aligner),
    RowId(RowIdOp),
    Sink(SinkOp),
}

impl Node {
    /// The operator of node `i` of `graph` (not a source or a sink), its state empty.
    pub(super) fn operator(graph: &Graph, i: usize, spec: &NodeSpec) -> Result<Node, StreamError> {
        let output = || {
            graph
                .outputs(i)
                .next()
                .map(|e| e.schema.clone())
                .ok_or_else(|| StreamError::Graph(format!("node {i} has no output")))
        };
        let input = |port: usize| -> Result<SchemaRef, StreamError> {
            graph
                .inputs(i)
                .find(|e| e.port == port)
                .map(|e| e.schema.clone())
                .ok_or_else(|| StreamError::Graph(format!("node {i} has no input {port}")))
        };
        Ok(match spec {
            NodeSpec::Map { exprs, filter } => {
                Node::Map(MapOp::new(exprs.clone(), filter.clone(), output()?))
            }
            NodeSpec::Union => Node::Union(Aligner::new(graph.inputs(i).count())),
            NodeSpec::UpdatingAggregate {
                group,
                aggs,
                expiry,
            } => {
                let updating = graph.inputs(i).any(|e| !e.append_only);
                let op = UpdatingAggregateOp::new(group.clone(), aggs.clone(), output()?, updating)
                    .with_expiry(Expiry::new(*expiry, graph.state_ttl_ms));
                Node::Aggregate(Box::new(op))
            }
            NodeSpec::WindowAggregate {
                group,
                aggs,
                window,
            } => match window.hop {
                Some(hop) => Node::Hop(Box::new(HopAggregateOp::new(
                    group.clone(),
                    aggs.clone(),
                    *window,
                    hop,
                    output()?,
                ))),
                None => Node::Window(Box::new(WindowAggregateOp::new(
                    group.clone(),
                    aggs.clone(),
                    *window,
                    output()?,
                ))),
            },
            NodeSpec::SessionAggregate {
                group,
                aggs,
                session,
            } => Node::Session(Box::new(SessionAggregateOp::new(
                group.clone(),
                aggs.clone(),
                *session,
                output()?,
            ))),
            NodeSpec::Join {
                kind,
                keys,
                filter,
                expiry,
                bounds,
            } => {
                let (l, r) = (input(0)?, input(1)?);
                let op = JoinOp::new(*kind, keys.clone(), filter.clone(), [&l, &r], output()?)?
                    .with_expiry(*expiry)?
                    .with_bounds(bounds.clone())?
                    .with_ttl(graph.state_ttl_ms);
                Node::Join(Box::new(op), Aligner::new(2))
            }
            NodeSpec::IntervalJoin {
                keys,
                time,
                bounds,
                filter,
            } => {
                let (l, r) = (input(0)?, input(1)?);
                let (keys, filter) = (keys.clone(), filter.clone());
                let bounds = bounds.clone();
                let op = IntervalJoinOp::new(keys, *time, bounds, filter, [&l, &r], output()?)?;
                Node::IntervalJoin(Box::new(op), Aligner::new(2))
            }
            NodeSpec::TopN {
                partition,
                order,
                limit,
                expiry,
            } => {
                let (p, o) = (partition.clone(), order.clone());
                let op = TopNOp::new(p, o, *limit, &input(0)?, output()?)?
                    .with_expiry(Expiry::new(*expiry, graph.state_ttl_ms));
                Node::TopN(Box::new(op))
            }
            NodeSpec::RowId => Node::RowId(RowIdOp::new(&input(0)?, output()?)?),
            NodeSpec::Source(_) | NodeSpec::Sink(_) => {
                return Err(StreamError::Graph(format!(
                    "node {i}: sources and sinks are run by the pipeline"
                )))
            }
        })
    }

    /// The operator's state, for checkpoints and the memory budget.
    pub(super) fn stateful(&mut self) -> Option<&mut dyn Stateful> {
        match self {
            Node::Aggregate(a) => Some(a.as_mut()),
            Node::Window(w) => Some(w.as_mut()),
            Node::Hop(w) => Some(w.as_mut()),
            Node::Session(w) => Some(w.as_mut()),
            Node::Join(j, _) => Some(j.as_mut()),
            Node::TopN(t) => Some(t.as_mut()),
            Node::IntervalJoin(j, _) => Some(j.as_mut()),
            Node::RowId(r) => Some(r),
            Node::Source(Some(d)) => Some(d.as_mut()),
            _ => None,
        }
    }

    /// A processing-time TTL's clock reached `now_ms` (at a checkpoint, after its barrier):
    /// the operator frees the keys idle for the TTL, without output. How many it freed.
    pub(super) fn expire_idle(&mut self, now_ms: i64) -> usize {
        match self {
            Node::Aggregate(a) => a.expire_idle(now_ms),
            Node::Join(j, _) => j.expire_idle(now_ms),
            Node::TopN(t) => t.expire_idle(now_ms),
            _ => 0,
        }
    }

    /// Bytes of operator state and of batches held behind barriers.
    pub(super) fn state_bytes(&self) -> usize {
        match self {
            Node::Aggregate(a) => a.state_bytes(),
            Node::Window(w) => w.state_bytes(),
            Node::Hop(w) => w.state_bytes(),
            Node::Session(w) => w.state_bytes(),
            Node::Join(j, al) => j.state_bytes() + al.buffered_bytes(),
            Node::TopN(t) => t.state_bytes(),
            Node::IntervalJoin(j, al) => j.state_bytes() + al.buffered_bytes(),
            Node::RowId(r) => r.state_bytes(),
            Node::Source(Some(d)) => d.state_bytes(),
            _ => 0,
        }
    }

    /// Takes `msg` from input `port`; appends what goes out to `out`. Operators pass
    /// watermarks and barriers on; multi-input ones after aligning them.
    pub(super) fn process(
        &mut self,
        port: usize,
        msg: Message,
        out: &mut Vec<Message>,
    ) -> Result<(), StreamError> {
        let single = |out: &mut Vec<Message>, b: Option<arrow_array::RecordBatch>| {
            if let Some(b) = b {
                out.push(Message::Batch(b));
            }
        };
        match (self, msg) {
            (Node::Source(_) | Node::Sink(_), _) => {}
            (Node::Map(op), Message::Batch(b)) => single(out, op.process(&b)?),
            (Node::Aggregate(op), Message::Batch(b)) => op.process(&b)?,
            (Node::TopN(op), Message::Batch(b)) => single(out, op.process(&b)?),
            (Node::RowId(op), Message::Batch(b)) => single(out, op.process(&b)?),
            (Node::Window(op), Message::Batch(b)) => op.process(&b)?,
            (Node::Hop(op), Message::Batch(b)) => op.process(&b)?,
            (Node::Session(op), Message::Batch(b)) => op.process(&b)?,
            // Closed windows' rows go before the watermark that closed them.
            (Node::Window(op), Message::Watermark(w)) => {
                single(out, op.on_watermark(w)?);
                out.push(Message::Watermark(w));
            }
            (Node::Hop(op), Message::Watermark(w)) => {
                single(out, op.on_watermark(w)?);
                out.push(Message::Watermark(w));
            }
            (Node::Session(op), Message::Watermark(w)) => {
                single(out, op.on_watermark(w)?);
                out.push(Message::Watermark(w));
            }
            // Keys that expire (a closed window, an idle-state TTL) are freed silently, after
            // their pending changes.
            (Node::Aggregate(op), Message::Watermark(w)) => {
                single(out, op.on_watermark(w)?);
                out.push(Message::Watermark(w));
            }
            // Updating aggregates emit an epoch's net changes before its barrier.
            (Node::Aggregate(op), Message::Barrier(n)) => {
                single(out, op.flush()?);
                out.push(Message::Barrier(n));
            }
            (Node::Window(op), Message::Barrier(n)) => {
                single(out, op.flush()?);
                out.push(Message::Barrier(n));
            }
            (Node::Hop(op), Message::Barrier(n)) => {
                single(out, op.flush()?);
                out.push(Message::Barrier(n));
            }
            (Node::TopN(op), Message::Watermark(w)) => {
                op.on_watermark(w);
                out.push(Message::Watermark(w));
            }
            (Node::Map(_) | Node::TopN(_) | Node::RowId(_) | Node::Session(_), other) => {
                out.push(other)
            }
            (Node::Union(aligner), msg) => {
                let mut aligned = Vec::new();
                aligner.push(port, msg, &mut aligned);
                out.extend(aligned.into_iter().map(|a| match a {
                    Aligned::Batch { batch, .. } => Message::Batch(batch),
                    Aligned::Watermark(w) => Message::Watermark(w),
                    Aligned::Barrier(n) => Message::Barrier(n),
                }));
            }
            (Node::IntervalJoin(op, aligner), msg) => {
                // Each input's own watermark frees the other side's rows; one arriving behind
                // a barrier is skipped (the next one, larger, frees as much).
                if let Message::Watermark(w) = &msg {
                    if !aligner.is_blocked(port) {
                        op.watermark(port, *w);
                    }
                }
                let mut aligned = Vec::new();
                aligner.push(port, msg, &mut aligned);
                for a in aligned {
                    match a {
                        Aligned::Batch { port, batch } => single(out, op.process(port, &batch)?),
                        Aligned::Watermark(w) => out.push(Message::Watermark(w)),
                        Aligned::Barrier(n) => out.push(Message::Barrier(n)),
                    }
                }
            }
            (Node::Join(op, aligner), msg) => {
                let mut aligned = Vec::new();
                aligner.push(port, msg, &mut aligned);
                for a in aligned {
                    match a {
                        Aligned::Batch { port, batch } => single(out, op.process(port, &batch)?),
                        // The minimum of both inputs': no window it closed changes any more.
                        Aligned::Watermark(w) => {
                            op.on_watermark(w);
                            out.push(Message::Watermark(w));
                        }
                        Aligned::Barrier(n) => out.push(Message::Barrier(n)),
                    }
                }
            }
        }
        Ok(())
    }
}
