//! Planning of `LogicalPlan::Join` into the runtime's `Join` node (design §6, joins): inner,
//! left, right and full equi-joins whose sides are any planned sub-plans (sources, filters,
//! aggregates...). The equi keys are cast to one type per pair (so a key encodes alike on
//! both sides), the residual condition becomes a physical expression over `left ++ right`.
//!
//! The output is append-only only for an inner join of append-only inputs; otherwise it
//! updates, keyed by both inputs' keys (known only when both inputs update with a key: an
//! append-only source has no key yet, design §5.4's `_row_id`). Refused here, at CREATE:
//! semi, anti and mark joins, joins without an equality between the sides, `IS NOT DISTINCT
//! FROM` keys, and columns the state codec cannot keep. An inner join of append-only inputs
//! whose condition bounds their watermarked event times is an `IntervalJoin`
//! ([`super::interval`]).

use datafusion::common::NullEquality;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{ExprSchemable, Join, JoinType};
use weir_stream::graph::JoinKind;
use weir_stream::NodeSpec;

use super::{refused, Out, Planner};
use crate::error::SqlError;

impl Planner<'_> {
    /// An equi-join: a `Join` node with the left sub-plan on port 0, the right on port 1.
    pub(super) fn join(&mut self, j: &Join) -> Result<Out, SqlError> {
        let kind = match j.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::Right => JoinKind::Right,
            JoinType::Full => JoinKind::Full,
            other => {
                return Err(refused(
                    &format!(
                        "a {other} join (from EXISTS, IN or NOT IN, or from an inner join \
                         whose one side is unique on the join key and gives no output column, \
                         which the optimizer rewrites so)"
                    ),
                    "streaming joins are inner, left, right and full equi-joins",
                ))
            }
        };
        if j.on.is_empty() {
            return Err(refused(
                "a join without an equality between its two sides (a cross or theta join)",
                "a streaming join keeps each side's rows by join key: add ON a.k = b.k",
            ));
        }
        if j.null_equality == NullEquality::NullEqualsNull || j.null_aware {
            return Err(refused(
                "a join on IS NOT DISTINCT FROM",
                "NULL join keys match nothing in a streaming join",
            ));
        }
        let left = self.walk(&j.left)?;
        let right = self.walk(&j.right)?;
        for (side, out) in [("left", &left), ("right", &right)] {
            for f in out.schema.fields() {
                if !weir_stream::state::codec::supports(f.data_type()) {
                    return Err(SqlError::unsupported(format!(
                        "JOIN: column {} of the {side} side is {}, which a join's state cannot \
                         keep; cast it or leave it out of the join's inputs",
                        f.name(),
                        f.data_type()
                    )));
                }
            }
        }
        let mut keys = [Vec::new(), Vec::new()];
        for (l, r) in &j.on {
            let lt = l.get_type(left.schema.as_ref())?;
            let rt = r.get_type(right.schema.as_ref())?;
            let t = if lt == rt {
                lt
            } else {
                comparison_coercion(&lt, &rt).ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "JOIN ON {l} = {r}: {lt} and {rt} cannot be compared"
                    ))
                })?
            };
            if !weir_stream::state::codec::supports(&t) {
                return Err(SqlError::unsupported(format!(
                    "JOIN ON {l} = {r}: a join key of type {t} cannot be kept in a continuous \
                     query's state"
                )));
            }
            let l = l.clone().cast_to(&t, left.schema.as_ref())?;
            let r = r.clone().cast_to(&t, right.schema.as_ref())?;
            keys[0].push(self.state.create_physical_expr(l, &left.schema)?);
            keys[1].push(self.state.create_physical_expr(r, &right.schema)?);
        }
        let filter = j
            .filter
            .as_ref()
            .map(|f| self.state.create_physical_expr(f.clone(), &j.schema))
            .transpose()?;
        if let Some(interval) = self.interval_of(j, &left, &right) {
            // Append-only in, append-only out; the watermarks free its state ([`super::interval`]).
            let node = self.graph.add(NodeSpec::IntervalJoin {
                keys,
                time: interval.time,
                bounds: interval.bounds,
                filter,
            });
            for side in [&left, &right] {
                self.graph
                    .connect_keyed(side.node, node, side.arrow(), true, Vec::new());
            }
            return Ok(Out {
                node,
                schema: j.schema.clone(),
                updating: false,
                key: Some(Vec::new()),
            });
        }
        let node = self.graph.add(NodeSpec::Join { kind, keys, filter });
        for side in [&left, &right] {
            let key = side.key.clone().unwrap_or_default();
            self.graph
                .connect_keyed(side.node, node, side.arrow(), !side.updating, key);
        }
        let updating = left.updating || right.updating || kind != JoinKind::Inner;
        let width = left.schema.fields().len();
        // A joined row is identified by its two input rows: both keys, where both have one.
        let key = match (&left.key, &right.key) {
            _ if !updating => Some(Vec::new()),
            (Some(lk), Some(rk)) if left.updating && right.updating => Some(
                lk.iter()
                    .copied()
                    .chain(rk.iter().map(|k| k + width))
                    .collect(),
            ),
            _ => None,
        };
        Ok(Out {
            node,
            schema: j.schema.clone(),
            updating,
            key,
        })
    }
}
