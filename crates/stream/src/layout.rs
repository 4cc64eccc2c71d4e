//! The state layout of a graph: what a pipeline's checkpoint was written for, so that a
//! pipeline planned again (after an upgrade of Weir or DataFusion) resumes over its state
//! only when that state means the same thing to the new graph (design §5.3).
//!
//! A checkpoint holds the sources' offsets and watermarks by topic and partition, and each
//! stateful operator's entries under its operator id (its node index + 1), encoded by the
//! state codec. So the layout pins, for every node that is stateful or feeds one: its index,
//! its operator and the parameters that shape its state (group and key expressions,
//! aggregates, windows, join kind, limits), with column *names* left out (hidden columns are
//! renamed freely; expressions are compared by column index), and the types, keys and
//! append-only flags of their input edges. It also pins what the output's records are keyed
//! and shaped by: the sink's input edge (names and types) and whether it upserts. It does not
//! pin what only post-processes a stateful operator's output (a final projection's
//! expressions), nor how names are printed: those may change without touching state.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;

use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_physical_expr::expressions::Column;
use datafusion_physical_expr::PhysicalExpr;

use crate::graph::{AggSpec, Graph, NodeSpec};

/// The version of this description: a change to what it prints is a change of layout.
const VERSION: u32 = 1;

/// Whether `node` keeps state in the checkpoint. Anything not known to be stateless counts
/// as stateful, so a new operator is pinned until this says otherwise.
pub fn keeps_state(node: &NodeSpec) -> bool {
    !matches!(
        node,
        NodeSpec::Source(_) | NodeSpec::Map { .. } | NodeSpec::Union | NodeSpec::Sink(_)
    )
}

/// The printed state layout of `graph` (see the module's doc); equal strings, compatible
/// checkpoints.
pub fn describe(graph: &Graph) -> String {
    // Nodes that keep state or feed one: their shape is pinned.
    let mut pinned: BTreeSet<usize> = BTreeSet::new();
    let mut todo: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| graph.nodes.get(i).is_some_and(keeps_state))
        .collect();
    while let Some(n) = todo.pop() {
        if pinned.insert(n) {
            todo.extend(graph.inputs(n).map(|e| e.from));
        }
    }
    let mut text = format!("layout {VERSION} codec {}", crate::state::codec::VERSION);
    for (i, node) in graph.nodes.iter().enumerate() {
        match node {
            NodeSpec::Source(s) => {
                let _ = write!(text, "|{i} Source({})", s.topic);
                // A deduplicating source keeps state; one without prints as before.
                if let Some(d) = &s.dedup {
                    let _ = write!(text, " dedup {:?} @{} {}ms", d.key, d.time, d.within_ms);
                }
            }
            NodeSpec::Sink(s) => {
                let _ = write!(text, "|{i} Sink({}, upsert {})", s.topic, s.upsert);
            }
            _ if pinned.contains(&i) => {
                let _ = write!(text, "|{i} {}", shape(node));
            }
            // Post-processing only: free to change.
            _ => {}
        }
    }
    for e in &graph.edges {
        let to_sink = matches!(graph.nodes.get(e.to), Some(NodeSpec::Sink(_)));
        if !(pinned.contains(&e.to) || to_sink) {
            continue;
        }
        let _ = write!(
            text,
            "|{}>{}:{} {} key {:?}",
            e.from,
            e.to,
            e.port,
            if e.append_only { "append" } else { "updating" },
            e.stream_key
        );
        for f in e.schema.fields() {
            // What the sink keys and writes by is named; elsewhere only types matter.
            if to_sink {
                let _ = write!(text, ",{} {}", f.name(), f.data_type());
            } else {
                let _ = write!(text, ",{}", f.data_type());
            }
        }
    }
    text
}

/// `expr` printed with its columns by index only (`@3`), names dropped.
fn norm(expr: &Arc<dyn PhysicalExpr>) -> String {
    let unnamed = expr.clone().transform(|e| {
        Ok(match e.downcast_ref::<Column>() {
            Some(c) => Transformed::yes(Arc::new(Column::new("", c.index())) as _),
            None => Transformed::no(e),
        })
    });
    match unnamed {
        Ok(t) => t.data.to_string(),
        // Unreachable (the closure never fails); the named form is still a layout.
        Err(_) => expr.to_string(),
    }
}

fn list(exprs: &[Arc<dyn PhysicalExpr>]) -> String {
    exprs.iter().map(norm).collect::<Vec<_>>().join(", ")
}

fn aggs(aggs: &[AggSpec]) -> String {
    aggs.iter()
        .map(|a| {
            let filter = a.filter.as_ref().map(norm).unwrap_or_default();
            format!(
                "{}({}) filter({filter}): {}",
                a.kind.name(),
                norm(&a.arg),
                a.output
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt(e: &Option<Arc<dyn PhysicalExpr>>) -> String {
    e.as_ref().map(norm).unwrap_or_default()
}

/// A pinned node: its operator and what shapes its state, by column index.
fn shape(node: &NodeSpec) -> String {
    match node {
        NodeSpec::Map { exprs, filter } => format!("Map({}; where {})", list(exprs), opt(filter)),
        // A key's expiry (when the watermark passes its window, or a TTL) changes when keys
        // are freed, not how they are stored: not pinned.
        NodeSpec::UpdatingAggregate {
            group,
            aggs: a,
            expiry: _,
        } => {
            format!("UpdatingAggregate([{}], [{}])", list(group), aggs(a))
        }
        NodeSpec::WindowAggregate {
            group,
            aggs: a,
            window,
        } => format!(
            "WindowAggregate([{}], [{}], {window:?})",
            list(group),
            aggs(a)
        ),
        NodeSpec::SessionAggregate {
            group,
            aggs: a,
            session,
        } => format!(
            "SessionAggregate([{}], [{}], {session:?})",
            list(group),
            aggs(a)
        ),
        // `bounds` (the residual's time bounds, Nexmark q7) are left out: they decide when
        // rows are freed, not how they are stored (the same buckets by join key; the
        // deadline index is rebuilt from the restored rows), so a join planned with them
        // resumes over the state of one planned before they existed, and the other way.
        NodeSpec::Join {
            kind,
            keys,
            filter,
            expiry,
            bounds: _,
        } => format!(
            "Join({}, [{}] = [{}], filter({}), expiry {:?})",
            kind.name(),
            list(&keys[0]),
            list(&keys[1]),
            opt(filter),
            expiry.as_ref().map(|e| (e.columns, e.end_offset_us))
        ),
        NodeSpec::IntervalJoin {
            keys,
            time,
            bounds,
            filter,
        } => format!(
            "IntervalJoin([{}] = [{}], time {time:?}, bounds {bounds:?}, filter({}))",
            list(&keys[0]),
            list(&keys[1]),
            opt(filter)
        ),
        NodeSpec::TopN {
            partition,
            order,
            limit,
            expiry: _,
        } => {
            let order: Vec<String> = order
                .iter()
                .map(|(e, o)| format!("{} {o:?}", norm(e)))
                .collect();
            format!(
                "TopN({limit}, [{}], [{}])",
                list(partition),
                order.join(", ")
            )
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{AggKind, SinkSpec};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    fn schema(names: &[&str]) -> SchemaRef {
        let mut fields: Vec<Field> = names
            .iter()
            .map(|n| Field::new(*n, DataType::Int64, true))
            .collect();
        fields.push(Field::new(crate::graph::RETRACT, DataType::Boolean, false));
        Arc::new(Schema::new(fields))
    }

    /// Source -> Map -> UpdatingAggregate -> Map (final projection) -> Sink, with the
    /// given column names and final projection.
    fn graph(names: &[&str], group_col: usize, last: Vec<Arc<dyn PhysicalExpr>>) -> Graph {
        let mut g = Graph::default();
        let source = g.add(NodeSpec::Source(crate::graph::SourceSpec {
            topic: "in".into(),
            decoder: Arc::new(|| Box::new(crate::format::BytesDecoder::new())),
            startup: crate::graph::Startup::Earliest,
            watermark: None,
            dead_letter: None,
            dedup: None,
        }));
        let input = Arc::new(Schema::new(vec![
            Field::new(names[0], DataType::Int64, true),
            Field::new(names[1], DataType::Int64, true),
        ]));
        let map = g.add(NodeSpec::Map {
            exprs: vec![
                Arc::new(Column::new(names[0], 0)),
                Arc::new(Column::new(names[1], 1)),
            ],
            filter: None,
        });
        g.connect(source, map, input.clone());
        let agg = g.add(NodeSpec::UpdatingAggregate {
            group: vec![Arc::new(Column::new(names[group_col], group_col))],
            aggs: vec![AggSpec {
                kind: AggKind::Count,
                arg: Arc::new(Column::new(names[1], 1)),
                filter: None,
                output: DataType::Int64,
            }],
            expiry: None,
        });
        g.connect(map, agg, input);
        let out = g.add(NodeSpec::Map {
            exprs: last,
            filter: None,
        });
        g.connect_keyed(agg, out, schema(&["k", "n"]), false, vec![0]);
        let sink = g.add(NodeSpec::Sink(SinkSpec {
            topic: "v".into(),
            encoder: Arc::new(|| {
                Box::new(crate::format::BytesEncoder {
                    value_col: 0,
                    key_col: None,
                })
            }),
            upsert: true,
        }));
        g.connect_keyed(out, sink, schema(&["k", "n"]), false, vec![0]);
        g
    }

    #[test]
    fn names_and_final_projections_are_free_state_shapes_are_pinned() {
        let k = |name: &str| -> Vec<Arc<dyn PhysicalExpr>> {
            vec![
                Arc::new(Column::new(name, 0)),
                Arc::new(Column::new("n", 1)),
            ]
        };
        let base = describe(&graph(&["a", "b"], 0, k("k")));
        // Renamed inputs (a planner that names hidden columns otherwise) and another final
        // projection expression: the same layout.
        assert_eq!(base, describe(&graph(&["x", "y"], 0, k("k"))));
        assert_eq!(base, describe(&graph(&["a", "b"], 0, k("other"))));
        // Another group column: the state's keys mean something else.
        assert_ne!(base, describe(&graph(&["a", "b"], 1, k("k"))));
        // The output's names are what the sink keys its records by: pinned.
        let mut renamed = graph(&["a", "b"], 0, k("k"));
        let last = renamed.edges.len() - 1;
        renamed.edges[last].schema = schema(&["key", "n"]);
        assert_ne!(base, describe(&renamed));
        // An operator inserted before the aggregate moves its operator id.
        let mut shifted = graph(&["a", "b"], 0, k("k"));
        shifted.nodes.insert(0, NodeSpec::Union);
        for e in &mut shifted.edges {
            e.from += 1;
            e.to += 1;
        }
        assert_ne!(base, describe(&shifted));
        assert!(keeps_state(&NodeSpec::RowId));
        assert!(!keeps_state(&NodeSpec::Union));
    }

    /// A join's residual time bounds (added after Nexmark q7 views were first created) do
    /// not change what its state holds, so the layout is the same with or without them;
    /// its keys still are pinned.
    #[test]
    fn a_joins_time_bounds_leave_its_layout_unchanged() {
        use crate::graph::{JoinKind, JoinTimeBounds, TimeBound};
        let with = |bounds: Option<JoinTimeBounds>, key: usize| {
            let mut g = graph(&["a", "b"], 0, vec![Arc::new(Column::new("k", 0))]);
            g.nodes[2] = NodeSpec::Join {
                kind: JoinKind::Inner,
                keys: [
                    vec![Arc::new(Column::new("a", key))],
                    vec![Arc::new(Column::new("a", 0))],
                ],
                filter: None,
                expiry: None,
                bounds,
            };
            describe(&g)
        };
        let bounds = JoinTimeBounds {
            time: [1, 1],
            lag_ms: [0, 1],
            upper: [
                vec![TimeBound {
                    column: 1,
                    offset_ms: 1,
                }],
                vec![TimeBound {
                    column: 1,
                    offset_ms: 10_001,
                }],
            ],
            updating: [false, true],
        };
        assert_eq!(with(None, 0), with(Some(bounds), 0));
        assert_ne!(with(None, 0), with(None, 1));
    }
}
